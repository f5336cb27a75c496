"""Tests for unlearn_theory.subspace: block-wise scheduling (Dolgova & Stich 2026; docs/theory.md §8)."""

from __future__ import annotations

import math

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import certify, gaussian, iteration, subspace
from unlearn_theory.errors import InvalidParameterError

from .test_gaussian import DPS, _ratio, mp_eps

P = dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=5.0)


def test_one_block_equals_gradient_clipping():
    sched = subspace.blockwise_schedule(epsilon=1.0, delta=1e-5, blocks=1, **P)
    from unlearn_theory import plan

    p = plan("gradient_clipping", epsilon=1.0, delta=1e-5, **P)
    assert sched.steps_per_block == p.steps
    assert sched.noise_std == pytest.approx(p.noise_std, rel=1e-9)


@pytest.mark.parametrize("k", [2, 4, 16])
def test_per_block_noise_is_sqrt_k(k):
    s1 = subspace.blockwise_noise_std(epsilon=1.0, delta=1e-5, blocks=1, steps_per_block=50, **P)
    sk = subspace.blockwise_noise_std(epsilon=1.0, delta=1e-5, blocks=k, steps_per_block=50, **P)
    assert sk == pytest.approx(math.sqrt(k) * s1, rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    eps=st.floats(0.1, 8.0),
    logd=st.floats(-20, -3),
    k=st.integers(1, 12),
    c0=st.floats(0.1, 10.0),
    wd=st.floats(0.0, 20.0),
    tb=st.one_of(st.none(), st.integers(1, 300)),
)
def test_schedule_certifies_target(eps, logd, k, c0, wd, tb):
    d = math.exp(logd)
    kw = dict(P, clip_initial=c0, weight_decay=wd)
    sched = subspace.blockwise_schedule(epsilon=eps, delta=d, blocks=k, steps_per_block=tb, **kw)
    e = float(
        subspace.blockwise_epsilon(
            delta=d,
            noise_std=sched.noise_std,
            blocks=k,
            steps_per_block=sched.steps_per_block,
            **kw,
        )
    )
    assert e <= eps
    assert sched.epsilon <= eps
    assert isinstance(sched.steps_per_block, int)


def test_one_step_per_block_is_exact_gaussian_composition():
    k = 3
    s = subspace.blockwise_noise_std(epsilon=1.0, delta=1e-5, blocks=k, steps_per_block=1, **P)
    b = iteration.constant_B(steps=1, **P)
    mu = math.sqrt(k) * b / s
    assert gaussian.delta(1.0, mu=mu) <= 1e-5
    assert gaussian.delta(1.0, mu=mu * (1 + 1e-6)) > 1e-5


def test_floored_T_overshoots_paper_budget():
    """The official code computes σ at the real T* and runs ⌊T*⌋ (docs/theory.md §13.5)."""
    k = 4
    code = subspace.dolgova_stich_schedule(epsilon=1.0, delta=1e-5, blocks=k, **P)
    assert code["real_steps"] != math.floor(code["real_steps"])
    spent = subspace.blockwise_coefficient(
        noise_std=code["noise_std"], blocks=k, steps_per_block=code["steps_per_block"], **P
    )
    assert spent > code["budget_coefficient"]  # exceeds the Mironov budget it was planned for
    # our schedule for the integer T that runs is certified
    ours = subspace.blockwise_schedule(epsilon=1.0, delta=1e-5, blocks=k, **P)
    assert ours.epsilon <= 1.0


def test_zero_gradient_block_toy_bracket():
    """Zero gradients: exact per-block divergence uses d_i = ‖P_iΔ‖ (Σ d_i² = (2C0)²);
    exact total ≤ certified total (and looser by about k, docs/theory.md §8.5)."""
    k, T, s = 4, 20, 2.0
    kw = dict(clip_initial=1.0, clip_gradient=0.0, learning_rate=0.01, weight_decay=2.0)
    rho = 1 - 0.02
    W = iteration.constant_W(steps=T, learning_rate=0.01, weight_decay=2.0)
    d2 = [4.0 / k] * k  # equal split of ‖Δ‖² = (2C0)²
    exact_total = sum(di * rho ** (2 * T) / (2 * s * s * W) for di in d2)
    cert = subspace.blockwise_coefficient(noise_std=s, blocks=k, steps_per_block=T, **kw)
    assert exact_total <= cert
    assert cert == pytest.approx(k * exact_total, rel=1e-9)


def test_paper_needs_interior_optimum():
    with pytest.raises(InvalidParameterError, match="weight_decay"):
        subspace.dolgova_stich_schedule(
            epsilon=1.0,
            delta=1e-5,
            blocks=2,
            clip_initial=1.0,
            clip_gradient=10.0,
            learning_rate=0.001,
            weight_decay=50.0,
        )


def test_bad_blocks():
    with pytest.raises(InvalidParameterError, match="blocks"):
        subspace.blockwise_schedule(epsilon=1.0, delta=1e-5, blocks=0, **P)


# ---------------------------------------------------------------------------------------------
# joint initial-distance allocation (docs/blockwise_joint_allocation.md)


def _toy(k, tb, s, c0, c1, lr, wd, split, field="saturating"):
    from verification import toys

    return toys.BlockwiseChain(s, k, tb, c0, c1, lr, wd, field, split)


@pytest.mark.parametrize("tb", [1, 2, 7, 40])
@pytest.mark.parametrize("k", [2, 5, 16])
def test_joint_allocation_is_exact_on_the_worst_case_toy(k, tb):
    """Uniform split + saturating opposite clipped gradients attain the joint bound: the exact
    Rényi coefficient μ²/2 of the toy equals the certified one (up to the rounding margins)."""
    kw = dict(clip_initial=0.7, clip_gradient=3.0, learning_rate=0.01, weight_decay=2.0)
    t = _toy(k, tb, 0.9, 0.7, 3.0, 0.01, 2.0, (1.0,) * k)
    a = subspace.blockwise_coefficient(
        noise_std=0.9, blocks=k, steps_per_block=tb, allocation="joint", **kw
    )
    assert a >= t.mu**2 / 2
    assert a == pytest.approx(t.mu**2 / 2, rel=1e-12)
    # Gaussian DP (T_b = 1: composed Gaussians; T_b ≥ 2: the shifted-interpolation route):
    # the certified ε is the exact ε of the worst case, both directions, for every T_b
    b = subspace.blockwise_epsilon(
        delta=1e-5, noise_std=0.9, blocks=k, steps_per_block=tb, allocation="joint", **kw
    )
    exact = mp_eps(1e-5, t.mu)
    assert float(b) >= exact and _ratio(float(b), exact) <= 1 + 1e-9
    for direction in ("PQ", "QP"):
        assert float(t.delta(float(b), direction=direction)) <= 1e-5 * (1 + 1e-9)
    if tb > 1:
        assert b.details["route"] == "gaussian_dp" and "blockwise, joint" in b.source
        renyi = subspace.blockwise_epsilon(
            delta=1e-5,
            noise_std=0.9,
            blocks=k,
            steps_per_block=tb,
            allocation="joint",
            analysis="renyi",
            **kw,
        )
        assert float(renyi) > float(b) * 1.03


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 8),
    tb=st.integers(1, 30),
    s=st.floats(0.05, 5.0),
    c0=st.floats(0.01, 10.0),
    c1=st.floats(0.0, 10.0),
    lr=st.floats(1e-3, 0.5),
    wd=st.floats(0.0, 1.9),
    split=st.lists(st.floats(-1.0, 1.0), min_size=8, max_size=8),
    field=st.sampled_from(["saturating", "zero"]),
    logd=st.floats(-25.0, -2.0),
)
def test_joint_allocation_dominates_every_split_and_is_below_per_block(
    k, tb, s, c0, c1, lr, wd, split, field, logd
):
    split = tuple(split[:k])
    if max(abs(x) for x in split) < 1e-3:
        split = (1.0,) * k
    wd = min(wd, 0.9 / lr)
    d = math.exp(logd)
    kw = dict(clip_initial=c0, clip_gradient=c1, learning_rate=lr, weight_decay=wd)
    t = _toy(k, tb, s, c0, c1, lr, wd, split, field)
    common = dict(noise_std=s, blocks=k, steps_per_block=tb, **kw)
    a_joint = subspace.blockwise_coefficient(allocation="joint", **common)
    a_per = subspace.blockwise_coefficient(allocation="per_block", **common)
    assert t.mu**2 / 2 <= a_joint * (1 + 1e-12) <= a_per * (1 + 1e-9)
    e_joint = float(subspace.blockwise_epsilon(delta=d, allocation="joint", **common))
    e_per = float(subspace.blockwise_epsilon(delta=d, **common))
    assert t.epsilon(d) <= e_joint * (1 + 1e-9) and e_joint <= e_per * (1 + 1e-9)
    # the certificate is the minimum of the routes: never above the shifted-Rényi one
    for allocation in ("joint", "per_block"):
        e_best = subspace.blockwise_epsilon(delta=d, allocation=allocation, **common)
        e_renyi = subspace.blockwise_epsilon(
            delta=d, allocation=allocation, analysis="renyi", **common
        )
        assert float(e_best) <= float(e_renyi)
        if t.mu > 0:
            assert float(e_best) >= mp_eps(d, t.mu)


@pytest.mark.parametrize("k", [2, 4, 16])
def test_joint_allocation_gain_is_k_without_gradients_and_one_when_shifts_dominate(k):
    kw = dict(clip_initial=1.0, learning_rate=0.1, weight_decay=0.5)
    common = dict(noise_std=1.0, blocks=k, steps_per_block=5)
    per = subspace.blockwise_coefficient(clip_gradient=0.0, **common, **kw)
    joint = subspace.blockwise_coefficient(clip_gradient=0.0, allocation="joint", **common, **kw)
    assert per / joint == pytest.approx(k, rel=1e-12)
    kw = dict(clip_initial=1e-9, learning_rate=0.1, weight_decay=0.5)
    per = subspace.blockwise_coefficient(clip_gradient=1.0, **common, **kw)
    joint = subspace.blockwise_coefficient(clip_gradient=1.0, allocation="joint", **common, **kw)
    assert per / joint == pytest.approx(1.0, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    d_frac=st.floats(0.0, 1.0),
    c1=st.floats(0.0, 10.0),
    lr=st.floats(1e-3, 0.9),
    wd=st.floats(0.0, 1.0),
    steps=st.integers(1, 300),
)
def test_closed_form_allocation_is_valid_for_every_starting_distance(d_frac, c1, lr, wd, steps):
    """The lemma of the docs: constant (ρ, s, σ) and any Z_0 ∈ [0, 2C0] keep every Z_t ≥ 0, so
    the exact constrained optimum equals the closed form B²/(2σ²W)."""
    c0 = 1.0
    sched = iteration.Schedule.from_arrays(
        learning_rate=[lr] * steps,
        weight_decay=[wd] * steps,
        clip_gradient=[c1] * steps,
        noise_std=[1.0] * steps,
        clip_initial=c0 * d_frac,  # Z_0 = 2·clip_initial = d ∈ [0, 2C0]
    )
    alloc = iteration.constrained_coefficient(sched)
    # (the hull may split a degenerate path where every Z_t = 0, e.g. Z_0 = 0 and λ = 0: the
    # flag then reads False although the optimum is the closed form, which is what matters)
    assert alloc.coefficient == pytest.approx(alloc.closed_form, rel=1e-9, abs=1e-300)


def test_joint_plans_certify_and_need_less_noise():
    kw = dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=0.0)
    from unlearn_theory import certify, plan

    for k in (1, 4, 16):
        per = plan("blockwise_gradient_clipping", epsilon=1.0, delta=1e-5, blocks=k, **kw)
        joint = plan(
            "blockwise_gradient_clipping",
            epsilon=1.0,
            delta=1e-5,
            blocks=k,
            allocation="joint",
            **kw,
        )
        assert joint.certifies_target and joint.details["allocation"] == "joint"
        assert "joint" in joint.accountant
        e = certify(
            "blockwise_gradient_clipping",
            delta=1e-5,
            noise_std=joint.noise_std,
            steps=joint.steps,
            blocks=k,
            allocation="joint",
            **kw,
        )
        assert e.epsilon <= 1.0
        # λ = 0: T* and σ_b² scale as C0 (docs/theory.md §6.4), so joint σ_b is k^{-1/4} of per-block
        assert joint.noise_std == pytest.approx(per.noise_std * k**-0.25, rel=2e-2)
    with pytest.raises(InvalidParameterError, match="allocation"):
        plan("blockwise_gradient_clipping", epsilon=1.0, delta=1e-5, blocks=2, allocation="x", **kw)
    with pytest.raises(InvalidParameterError, match="allocation"):
        plan(
            "blockwise_gradient_clipping",
            epsilon=1.0,
            delta=1e-5,
            blocks=2,
            allocation="joint",
            accounting="paper",
            **kw,
        )


# ---------------------------------------------------------------------------------------------
# extreme inputs: the Dolgova–Stich rule refuses unusable step counts and budgets


def test_dolgova_stich_rule_refuses_unusable_step_counts_and_budgets():
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        subspace.dolgova_stich_schedule(
            epsilon=541.0,
            delta=0.48,
            blocks=1,
            clip_initial=7e5,
            clip_gradient=541.0,
            learning_rate=1e-310,
            weight_decay=1e-150,
        )
    with pytest.raises(InvalidParameterError, match="epsilon"):
        subspace.dolgova_stich_schedule(
            epsilon=5e-324,
            delta=0.35,
            blocks=29,
            clip_initial=7e4,
            clip_gradient=1.8e-197,
            learning_rate=0.9999999999999999,
            weight_decay=2.2e-308,
        )


# ---------------------------------------------------------------------------------------------
# the block-wise certificate dominates exact orthogonal blocks (mpmath)


@pytest.mark.parametrize(
    "k, tb, gl, c1, split",
    [
        (1, 1, 0.0, 1.0, False),
        (4, 1, 0.2, 1.0, True),
        (3, 5, 0.0, 0.5, False),
        (8, 30, 0.05, 2.0, True),
        (2, 7, 0.3, 0.0, False),
    ],
)
def test_blockwise_dominates_exact_orthogonal_blocks(k, tb, gl, c1, split):
    """Orthogonal blocks, constant opposite gradients, initial gap in one block or spread
    evenly: all laws Gaussian, μ² = Σ_i (d_iρ^T + S)²/(σ_b²W), S = 2γC1Σρ^j."""
    c0, lr, delta = 2.0, 0.1, 1e-6
    with mp.workdps(DPS):
        rho = 1 - mp.mpf(lr) * (gl / lr)
        s_tot = 2 * mp.mpf(lr) * c1 * mp.fsum(rho**j for j in range(tb))
        w = mp.fsum(rho ** (2 * j) for j in range(tb))
        ds = [2 * mp.mpf(c0) / mp.sqrt(k)] * k if split else [2 * mp.mpf(c0)] + [0] * (k - 1)
        num = mp.fsum((d * rho**tb + s_tot) ** 2 for d in ds)
        sigma_b = float(mp.sqrt(num / w)) / 2.0
        exact = mp_eps(delta, mp.sqrt(num / (mp.mpf(sigma_b) ** 2 * w)))
    r = certify(
        "blockwise_gradient_clipping",
        delta=delta,
        noise_std=sigma_b,
        steps=k * tb,
        blocks=k,
        clip_initial=c0,
        clip_gradient=c1,
        learning_rate=lr,
        weight_decay=gl / lr,
    )
    assert r.epsilon >= exact
