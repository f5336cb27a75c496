"""Adversarial soundness review of the certified numbers (reviewer's file).

Every certified ε (or δ) is compared with an EXACT value computed here in mpmath (≥ 50 digits):
the certificate may only err toward more privacy loss. Anchors (docs/theory.md §6.3, §5, §7, §8, §9,
§11): gradient clipping with T = 1 and saturating opposite gradients (one Gaussian, μ = B/σ),
noisy GD on a quadratic whose maps satisfy the bounded-perturbation property (exact Gaussian
chain, contraction |κ| ≤ ρ, shift ≤ 2γC1), pure weight decay with time-varying schedules,
model clipping in 1-D against a "sign" adversary whose laws stay two-point Gaussian mixtures
(closed-form hockey-stick), output perturbation, block-wise on orthogonal blocks, DP-SGD group
privacy at sample_rate = 1, PLD at δ ≤ 1e-12, Langevin noisy GD on a 1-D quadratic, ridge
Rényi/hockey-stick. Also: plans re-certify ≤ target in edge regimes, paper-mode side
conditions, the flat-α exposure, integer steps.

Findings that are genuine but not fixed here are ``xfail(strict=True)`` with their reproducer.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from unlearn_theory import certify, gaussian, iteration, plan, ridge
from unlearn_theory.bounds import certifies
from unlearn_theory.contraction import _log_theta_scalar, model_clipping_log_delta
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

DPS = 60


# ---------------------------------------------------------------------------------------------
# mpmath oracles


def mp_delta(eps, mu):
    """Exact Gaussian profile δ(ε; μ) (Balle & Wang 2018, Thm 8), tails taken directly."""
    with mp.workdps(DPS):
        eps, mu = mp.mpf(eps), mp.mpf(mu)
        return mp.ncdf(mu / 2 - eps / mu) - mp.exp(eps) * mp.ncdf(-mu / 2 - eps / mu)


def mp_eps(delta, mu):
    """A LOWER edge of the exact ε(δ; μ) (bisection keeps δ(lo) > δ): certified must be ≥ it."""
    with mp.workdps(DPS):
        delta, mu = mp.mpf(delta), mp.mpf(mu)
        if mp_delta(0, mu) <= delta:
            return mp.mpf(0)
        lo, hi = mp.mpf(0), mp.mpf(1)
        while mp_delta(hi, mu) > delta:
            hi *= 2
        for _ in range(120):
            mid = (lo + hi) / 2
            if mp_delta(mid, mu) > delta:
                lo = mid
            else:
                hi = mid
        return lo


def _ratio(certified, exact):
    return float(mp.mpf(certified) / exact) if exact > 0 else math.inf


# ---------------------------------------------------------------------------------------------
# gradient clipping (docs/theory.md §6.3 anchors)


@pytest.mark.parametrize(
    "c0, c1, lr, gl, sigma, delta",
    [
        (20.0, 10.0, 0.01, 0.5, 5.0, 1e-5),
        (1.0, 0.0, 0.1, 0.0, 0.3, 1e-12),
        (3.0, 100.0, 1e-3, 0.999, 50.0, 1e-300),
        (0.5, 2.0, 0.2, 1e-9, 0.05, 1e-8),
    ],
)
def test_gradient_clipping_t1_is_the_exact_gaussian(c0, c1, lr, gl, sigma, delta):
    """T = 1 from two point masses 2C0 apart, gradients saturating C1 in opposite directions:
    exactly N(m, σ²) vs N(m', σ²) with |m − m'| = B = 2C0ρ + 2γC1. Certified ≥ exact, tight."""
    r = certify(
        "gradient_clipping",
        delta=delta,
        noise_std=sigma,
        steps=1,
        clip_initial=c0,
        clip_gradient=c1,
        learning_rate=lr,
        weight_decay=gl / lr,
    )
    with mp.workdps(DPS):
        b = 2 * mp.mpf(c0) * (1 - mp.mpf(lr) * (gl / lr)) + 2 * mp.mpf(lr) * c1
        exact = mp_eps(delta, b / sigma)
    assert r.epsilon >= exact
    assert _ratio(r.epsilon, exact) <= 1 + 1e-9


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    c0=st.floats(0.1, 30.0),
    c1=st.sampled_from([0.0, 0.01, 1.0, 20.0]),
    lr=st.floats(1e-3, 0.5),
    gl=st.sampled_from([0.0, 1e-7, 0.01, 0.3, 0.95]),
    steps=st.sampled_from([1, 2, 3, 7, 40, 300]),
    kappa_frac=st.sampled_from([1.0, 0.5, 0.0, -0.7, -1.0]),
    shift_frac=st.sampled_from([1.0, 0.3, 0.0]),
    target_mu=st.floats(0.05, 15.0),
    delta=st.sampled_from([1e-2, 1e-6, 1e-12]),
)
def test_gradient_clipping_dominates_exact_quadratic_chain(
    c0, c1, lr, gl, steps, kappa_frac, shift_frac, target_mu, delta
):
    """Noisy GD on a quadratic with different centres for the two chains: x ↦ κx + const with
    |κ| ≤ ρ and a per-step gap ≤ 2γC1 satisfies the bounded-perturbation property, and both laws
    are Gaussian: μ = |2C0κ^T + sΣκ^k| / (σ √Σκ^{2k}). Covers pure weight decay (s = 0, κ = ρ)."""
    rho = 1.0 - gl
    kappa = kappa_frac * rho
    s = shift_frac * 2.0 * lr * c1
    with mp.workdps(DPS):
        k = mp.mpf(kappa)
        d_t = abs(2 * mp.mpf(c0) * k**steps + mp.mpf(s) * mp.fsum(k**j for j in range(steps)))
        var = mp.fsum(k ** (2 * j) for j in range(steps))
        if d_t == 0:
            return
        sigma = float(d_t / (mp.sqrt(var) * target_mu))
        if not (sigma > 0 and math.isfinite(sigma)):
            return  # the exact gap underflows float64: no configuration to certify
        mu = d_t / (mp.mpf(sigma) * mp.sqrt(var))
        exact = mp_eps(delta, mu)
    r = certify(
        "gradient_clipping",
        delta=delta,
        noise_std=sigma,
        steps=steps,
        clip_initial=c0,
        clip_gradient=c1,
        learning_rate=lr,
        weight_decay=gl / lr,
    )
    assert certifies(r.kind) and math.isfinite(r.epsilon)
    assert r.epsilon >= exact


def test_time_varying_pure_weight_decay_is_exact():
    """Zero gradients, time-varying (γ_t, λ_t, σ_t): X_T − Y_T = 2C0∏ρ_t exactly, variance
    Σ_t w_t²σ_t²; the certified coefficient equals a_exact = (2C0∏ρ)²/(2Σw²σ²) to 1e-10 and is
    never below it."""
    rng = np.random.default_rng(np.random.SeedSequence(20261202))
    for _ in range(30):
        T = int(rng.integers(1, 30))
        lr = 10 ** rng.uniform(-3, 0, T)
        gl = rng.uniform(0, 0.9, T) * (rng.random(T) > 0.3)
        sig = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.2)
        sig[-1] = max(sig[-1], 0.5)
        c0 = float(10 ** rng.uniform(-1, 1))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr,
            weight_decay=gl / lr,
            clip_gradient=0.0,
            noise_std=sig,
            clip_initial=c0,
        )
        with mp.workdps(DPS):
            rho = [1 - mp.mpf(x) * (mp.mpf(g) / mp.mpf(x)) for x, g in zip(lr, gl)]
            w = [mp.fprod(rho[t + 1 :]) for t in range(T)]
            exact = (2 * mp.mpf(c0) * mp.fprod(rho)) ** 2 / (
                2 * mp.fsum((w[t] * mp.mpf(sig[t])) ** 2 for t in range(T))
            )
        coef = iteration.constrained_coefficient(sch).coefficient
        assert coef >= exact
        assert _ratio(coef, exact) <= 1 + 1e-10


def test_schedule_allocation_is_feasible_and_not_beaten_by_a_qp():
    """Time-varying schedules (σ_t = 0 steps included): the returned shifts keep Z_t ≥ 0, end at
    Z_T = 0, cost ≤ the certified coefficient, and an SLSQP solve of the constrained QP (seeded
    with the library's shifts and random points) finds nothing smaller than the coefficient."""
    rng = np.random.default_rng(np.random.SeedSequence(5))
    n_invalid_closed_form = 0
    for _ in range(60):
        T = int(rng.integers(2, 7))
        lr = 10 ** rng.uniform(-2, 0, T)
        gl = rng.uniform(0, 0.9, T) * (rng.random(T) > 0.3)
        c1 = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.2)
        sig = 10 ** rng.uniform(-1, 1, T) * (rng.random(T) > 0.15)
        sig[-1] = max(sig[-1], 0.3)
        c0 = float(10 ** rng.uniform(-1, 1))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr, weight_decay=gl / lr, clip_gradient=c1, noise_std=sig, clip_initial=c0
        )
        al = iteration.constrained_coefficient(sch)
        n_invalid_closed_form += not al.closed_form_valid
        assert iteration.verify_allocation(sch, al.shifts, rtol=1e-8)
        nz = sig > 0
        cost = float(np.sum(al.shifts[nz] ** 2 / (2 * sig[nz] ** 2)))
        assert cost <= al.coefficient * (1 + 1e-9)
        assert al.coefficient >= al.closed_form * (1 - 1e-12)
        rho, s = sch.contraction, sch.shift

        def zs(a, rho=rho, s=s, c0=c0):
            z, out = 2 * c0, []
            for t in range(len(a)):
                z = rho[t] * z + s[t] - a[t]
                out.append(z)
            return np.array(out)

        cons = [
            {"type": "eq", "fun": lambda a, zs=zs: zs(a)[-1]},
            {"type": "ineq", "fun": lambda a, zs=zs: zs(a)[:-1]},
        ]
        bounds = [(0, None) if sig[t] > 0 else (0, 0) for t in range(T)]
        for x0 in (al.shifts, rng.uniform(0, 2 * c0 + s.sum(), T) * nz):
            res = minimize(
                lambda a, nz=nz, sig=sig: np.sum(a[nz] ** 2 / (2 * sig[nz] ** 2)),
                x0,
                bounds=bounds,
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-15, "maxiter": 500},
            )
            z = zs(res.x)
            if res.success and np.all(z[:-1] >= -1e-10) and abs(z[-1]) <= 1e-10:
                assert res.fun >= al.coefficient * (1 - 1e-6)
    assert n_invalid_closed_form > 0  # the constrained path was exercised


@pytest.mark.parametrize("tiny", [1e-3, 1e-14, 1e-16, 1e-20])
def test_shift_after_last_noisy_step_is_never_finite(tiny):
    """Regression (fixed in iteration.constrained_coefficient): a final noiseless step with any
    positive clip shift needs a shift after the last noise, so the shifted-Rényi bound is +inf
    (different oracles can make the outputs mutually singular). Before the fix, a shift below
    1e-15 relative to 2C0 was lost in the rounded U_t and a finite ε (10.72 at δ = 1e-5) came back.
    """
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=0.0,
        clip_gradient=[0.0, tiny],
        noise_std=[1.0, 0.0],
        clip_initial=1.0,
    )
    assert iteration.constrained_coefficient(sch).coefficient == math.inf
    with pytest.raises(NumericalPrecisionError):
        certify(
            "gradient_clipping",
            delta=1e-5,
            noise_std=[1.0, 0.0],
            steps=2,
            clip_initial=1.0,
            clip_gradient=[0.0, tiny],
            learning_rate=1.0,
            weight_decay=0.0,
        )
    # noiseless trailing steps with weight decay only (no shift) stay finite
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=[0.0, 0.5],
        clip_gradient=[1.0, 0.0],
        noise_std=[1.0, 0.0],
        clip_initial=1.0,
    )
    assert math.isfinite(iteration.constrained_coefficient(sch).coefficient)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    log_a=st.floats(-22.0, 5.0),
    log_delta=st.sampled_from([-2.0, -5.0, -12.0, -40.0, -300.0]),
)
def test_linear_curve_conversion_dominates_the_exact_gaussian(log_a, log_delta):
    """α ↦ α·a is the exact Rényi curve of N(0,1) vs N(√(2a),1): converting it can never
    certify less than the exact profile (tiny a, δ down to 1e-300)."""
    a, delta = 10.0**log_a, 10.0**log_delta
    eps = float(iteration.linear_epsilon(a, delta=delta))
    assert eps >= mp_eps(delta, mp.sqrt(2 * mp.mpf(a)))


@pytest.mark.parametrize("eps, delta", [(1e-3, 1e-250), (8e-4, 2e-287), (0.5, 1e-12), (50.0, 1e-5)])
def test_gradient_clipping_plans_never_overshoot_in_edge_regimes(eps, delta):
    """Note: linear_epsilon(max_coefficient(ε, δ)) can exceed ε by ~1e-15 relative at tiny ε and
    δ (its order search differs from max_coefficient's); the planner's re-check absorbs it."""
    for wd, c1, steps in ((0.0, 1.0, None), (50.0, 10.0, None), (0.5, 0.0, 3), (5.0, 1e-8, 1)):
        p = plan(
            "gradient_clipping",
            epsilon=eps,
            delta=delta,
            clip_initial=2.0,
            clip_gradient=c1,
            learning_rate=0.01,
            weight_decay=wd,
            steps=steps,
            max_steps=2000,
        )
        r = certify(
            "gradient_clipping",
            delta=delta,
            noise_std=p.noise_std,
            steps=p.steps,
            clip_initial=2.0,
            clip_gradient=c1,
            learning_rate=0.01,
            weight_decay=wd,
        )
        assert p.epsilon <= eps and r.epsilon <= eps and p.noise_std > 0


def test_integer_steps_and_paper_side_conditions():
    p = dict(clip_initial=20.0, clip_gradient=10.0, learning_rate=0.01)
    with pytest.raises(InvalidParameterError):
        certify("gradient_clipping", delta=1e-5, noise_std=5.0, steps=2.5, weight_decay=1.0, **p)
    with pytest.raises(InvalidParameterError):
        certify("gradient_clipping", delta=1e-5, noise_std=5.0, steps=True, weight_decay=1.0, **p)
    assert certify(
        "gradient_clipping", delta=1e-5, noise_std=5.0, steps=3.0, weight_decay=1.0, **p
    ) == certify("gradient_clipping", delta=1e-5, noise_std=5.0, steps=3, weight_decay=1.0, **p)
    # ε ≤ 3 log(1/δ); (1 − γλ)^{2T} ≤ 1/2; γλ < 1
    with pytest.raises(InvalidParameterError, match="epsilon"):
        plan(
            "gradient_clipping",
            epsilon=40.0,
            delta=1e-5,
            accounting="paper",
            steps=100,
            weight_decay=50.0,
            **p,
        )
    with pytest.raises(InvalidParameterError, match="steps"):
        plan(
            "gradient_clipping",
            epsilon=1.0,
            delta=1e-5,
            accounting="paper",
            steps=1,
            weight_decay=10.0,
            **p,
        )
    with pytest.raises(InvalidParameterError, match="weight_decay"):
        plan(
            "gradient_clipping",
            epsilon=1.0,
            delta=1e-5,
            accounting="paper",
            steps=100,
            weight_decay=100.0,
            **p,
        )
    # λ = 0 with constant 9: the published noise does not certify ε = 10 (docs/theory.md §6.5 flag);
    # the plan reports the TRUE ε and says so.
    pp = plan(
        "gradient_clipping", epsilon=10.0, delta=1e-5, accounting="paper", weight_decay=0.0, **p
    )
    true = certify(
        "gradient_clipping",
        delta=1e-5,
        noise_std=pp.noise_std,
        steps=pp.steps,
        weight_decay=0.0,
        **p,
    )
    assert pp.epsilon == true.epsilon > 10.0 and not pp.certifies_target


def test_flat_alpha_label_is_exposed():
    p = dict(clip_initial=20.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=50.0)
    r = certify("gradient_clipping", delta=1e-5, noise_std=5.0, steps=11, **p)
    flat = r.details["flat_alpha_epsilon"]
    assert flat < r.epsilon / 5
    r2 = certify(
        "gradient_clipping", delta=1e-5, noise_std=5.0, steps=11, claimed_epsilon=flat, **p
    )
    assert r2.claim_holds is False and "flat" in r2.note


# ---------------------------------------------------------------------------------------------
# model clipping (docs/theory.md §5)


def _sign_chain(c0, c2, sigma, sigma0, steps, tau):
    """Weights of N(+C2) in the two chains under the map x ↦ C2·sign(x − τ) (then + noise)."""
    c0, c2, sigma, tau = (mp.mpf(x) for x in (c0, c2, sigma, tau))
    if sigma0:
        p, q = mp.ncdf((c0 - tau) / sigma0), mp.ncdf((-c0 - tau) / sigma0)
    else:
        p, q = mp.mpf(c0 > tau), mp.mpf(-c0 > tau)
    up, dn = mp.ncdf((c2 - tau) / sigma), mp.ncdf((-c2 - tau) / sigma)
    for _ in range(steps - 1):
        p, q = p * up + (1 - p) * dn, q * up + (1 - q) * dn
    return p, q


def _mixture_hockey(p, q, eps, c2, sigma):
    """E_{e^ε}(pN(C2,σ²)+(1−p)N(−C2,σ²) ‖ qN(C2,σ²)+(1−q)N(−C2,σ²)), exact (monotone ratio)."""
    g, c2, sigma = mp.exp(eps), mp.mpf(c2), mp.mpf(sigma)
    a, b = p - g * q, (1 - p) - g * (1 - q)
    if a <= 0:
        return mp.mpf(0)
    if b >= 0:
        return a + b
    x = sigma**2 / (2 * c2) * mp.log(-b / a)
    return a * mp.ncdf((c2 - x) / sigma) + b * mp.ncdf((-c2 - x) / sigma)


@pytest.mark.parametrize(
    "c0, c2, sigma, sigma0, steps, eps",
    [
        (1.0, 1.0, 2.0, 0.0, 1, 0.5),
        (1.0, 1.0, 1.0, 0.0, 2, 0.2),
        (1.0, 1.0, 1.0, 0.0, 3, 0.05),
        (5.0, 0.5, 0.6, 0.0, 5, 0.1),
        (2.0, 3.0, 4.0, 2.0, 2, 0.1),
        (0.3, 2.0, 3.0, 0.5, 3, 0.01),
        (1.0, 1.0, 0.5, 0.0, 6, 0.5),
        (1.0, 0.2, 0.2, 1.0, 4, 0.3),
        (1.0, 1.0, 0.3, 0.0, 10, 1.0),
        (1.0, 2.0, 1.0, 0.5, 4, 0.05),
    ],
)
def test_model_clipping_dominates_a_sign_adversary(c0, c2, sigma, sigma0, steps, eps):
    """1-D model clipping against the update x ↦ C2·sign(x − τ) (a valid projected update): the
    laws stay two-point Gaussian mixtures and the hockey-stick is closed form. The refined
    recursion's δ_T(ε) must dominate it in both directions, for every threshold τ tried;
    at T = 1 without initial noise it is exact (θ_ε(2C2/σ)). Measured: the recursion is within
    0.01%-4% of this adversary's δ (log-margin 1e-11 at T = 1, 8e-5 to 4e-2 after)."""
    ld = model_clipping_log_delta(
        epsilon=eps,
        clip_initial=c0,
        clip_model=c2,
        noise_std=sigma,
        steps=steps,
        initial_noise_std=sigma0 or None,
    )
    with mp.workdps(DPS):
        best = mp.mpf(0)
        for tau in np.linspace(-0.9, 0.9, 7) * min(c0, c2):
            p, q = _sign_chain(c0, c2, sigma, sigma0, steps, tau)
            best = max(
                best, _mixture_hockey(p, q, eps, c2, sigma), _mixture_hockey(q, p, eps, c2, sigma)
            )
        assert best > 0
        assert ld >= float(mp.log(best))
        if steps == 1 and not sigma0:
            assert ld - float(mp.log(best)) <= 1e-9


def test_refined_recursion_map_is_monotone():
    """Plugging an upper bound δ_t into the refined step is sound only if
    g(E) = E·θ_{log(1+(e^ε−1)/E)}(r) is non-decreasing in E (docs/theory.md §5.3): checked on a grid."""
    for eps in (1e-3, 0.1, 1.0, 5.0, 20.0):
        lem1 = math.log(math.expm1(eps))
        for r in (0.01, 0.3, 1.0, 3.0, 10.0, 40.0):
            log_e = np.linspace(-60.0, 0.0, 600)
            g = [le + _log_theta_scalar(float(np.logaddexp(0.0, lem1 - le)), r) for le in log_e]
            assert np.all(np.diff(g) >= -1e-9)


# ---------------------------------------------------------------------------------------------
# output perturbation, block-wise, DP-SGD + group, PLD, Langevin


@pytest.mark.parametrize(
    "c0, sigma, delta", [(1.0, 0.5, 1e-5), (3.0, 40.0, 1e-12), (0.1, 1e-3, 1e-200)]
)
def test_output_perturbation_is_exact(c0, sigma, delta):
    r = certify("output_perturbation", delta=delta, noise_std=sigma, clip_initial=c0)
    exact = mp_eps(delta, 2 * mp.mpf(c0) / sigma)
    assert r.epsilon >= exact and _ratio(r.epsilon, exact) <= 1 + 1e-9


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


def test_dp_sgd_group_full_batch_against_exact_gaussian():
    """sample_rate = 1: per record, T Gaussian steps are exactly √T/z-GDP. The certified group ε
    must satisfy δ'_exact(ε/k)·Σ_{i<k} e^{iε/k} ≤ δ, and be ≥ the exact group value (μ·k)."""
    z, T, k, delta = 5.0, 1, 3, 1e-6
    r = certify(
        "dp_sgd_group", delta=delta, noise_multiplier=z, steps=T, sample_rate=1.0, forget_size=k
    )
    e1 = r.epsilon / k
    with mp.workdps(DPS):
        mu = mp.sqrt(T) / z
        factor = mp.fsum(mp.exp(i * mp.mpf(e1)) for i in range(k))
        assert mp_delta(e1, mu) * factor <= delta
        assert r.epsilon >= mp_eps(delta, k * mu)


@pytest.mark.parametrize(
    "mu, steps, delta", [(0.35, 10, 3e-13), (0.05, 100, 1.6e-11), (1.3, 1000, 1e-15)]
)
def test_pld_gaussian_composition_at_tiny_delta(mu, steps, delta):
    """docs/theory.md §13.8: a Gaussian composed through the PLD must bracket the exact √T·μ profile."""
    from unlearn_theory.pld import PrivacyLossDistribution

    pld = PrivacyLossDistribution.from_gaussian(mu=mu).self_compose(steps)
    mt = mp.sqrt(steps) * mu
    exact = mp_eps(delta, mt)
    e = pld.epsilon(delta, lower=True)
    assert e.lower <= exact <= e.upper
    d = pld.delta(float(exact))
    dex = mp_delta(float(exact), mt)
    assert d.lower <= dex <= d.upper


@pytest.mark.parametrize("route", ["pabi", "lsi"])
@pytest.mark.parametrize(
    "m, eta, n, k, s, delta",
    [
        (0.5, 0.5, 100, 5, 0.3, 1e-5),
        (2.0, 0.1, 10, 0, 1.0, 1e-8),
        (0.05, 1.0, 1000, 50, 0.05, 1e-3),
    ],
)
def test_langevin_dominates_exact_quadratic(route, m, eta, n, k, s, delta):
    """PNGD (no projection) on f(x; d) = m/2 (x − c_d)², replacement moving the mean centre by
    2M/(nm): both laws are N(·, s²/(1 − c²)) in the well-trained regime, μ = c^K·2M/(nm)·√(1−c²)/s."""
    M = 1.0
    r = certify(
        "langevin",
        delta=delta,
        noise_std=s,
        steps=k,
        learning_rate=eta,
        strong_convexity=m,
        smoothness=m,
        lipschitz=M,
        dataset_size=n,
        route=route,
    )
    with mp.workdps(DPS):
        c = 1 - mp.mpf(eta) * m
        mu = c**k * (2 * mp.mpf(M) / (n * m)) * mp.sqrt(1 - c**2) / s
        assert r.epsilon >= mp_eps(delta, mu)


# ---------------------------------------------------------------------------------------------
# ridge (docs/theory.md §11) and the Gaussian inverse


def _mp_renyi_1d(a, w, ell):
    with mp.workdps(DPS):
        a, w, ell = mp.mpf(a), mp.mpf(w), mp.mpf(ell)
        va = 1 + a * (ell - 1)
        if va <= 0:
            return mp.inf
        return a * w * w / (2 * va) - (mp.log(va) - a * mp.log(ell)) / (2 * (a - 1))


def _mp_hockey_1d(eps, c, ell, dps=100):
    """E_{e^ε}(N(0,1) ‖ N(−c, ℓ)) by the roots of the quadratic, tails evaluated directly."""
    with mp.workdps(dps):
        eps, c, ell = mp.mpf(eps), mp.mpf(c), mp.mpf(ell)
        g, sd = mp.exp(eps), mp.sqrt(ell)

        def prob(lo, hi):
            return mp.ncdf(hi) - mp.ncdf(lo) if hi <= 0 else mp.ncdf(-lo) - mp.ncdf(-hi)

        a2, a1 = (1 - ell) / (2 * ell), c / ell
        a0 = c * c / (2 * ell) + mp.log(ell) / 2 - eps
        disc = a1 * a1 - 4 * a2 * a0
        if a2 == 0:  # equal variances: a half-line (or nothing / everything)
            if a1 == 0:
                ivs = [(-mp.inf, mp.inf)] if a0 > 0 else []
            else:
                ivs = [(-a0 / a1, mp.inf)] if a1 > 0 else [(-mp.inf, -a0 / a1)]
        elif disc <= 0:
            ivs = [(-mp.inf, mp.inf)] if a2 > 0 else []
        else:
            r1, r2 = sorted([(-a1 - mp.sqrt(disc)) / (2 * a2), (-a1 + mp.sqrt(disc)) / (2 * a2)])
            ivs = [(-mp.inf, r1), (r2, mp.inf)] if a2 > 0 else [(r1, r2)]
        return mp.fsum(prob(lo, hi) - g * prob((lo + c) / sd, (hi + c) / sd) for lo, hi in ivs)


def test_ridge_renyi_and_hockey_stick_against_mpmath():
    rng = np.random.default_rng(np.random.SeedSequence(12))
    for _ in range(60):
        a = 1 + 10 ** rng.uniform(-2, 2)
        w = 10 ** rng.uniform(-3, 1) * rng.choice([-1, 1])
        ell = 10 ** rng.uniform(-1.5, 1.5)
        exact = _mp_renyi_1d(a, w, ell)
        got = float(ridge.renyi_1d(a, shift=w, variance_ratio=ell))
        if exact == mp.inf:
            assert got == math.inf
        else:
            # kind "exact" (not rounded upward): within 1e-12 relative after the fix below
            assert abs(_ratio(got, exact) - 1) <= 1e-12
        eps = 10 ** rng.uniform(-2, 1.3)
        hs = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-w, var1=ell)
        assert hs >= _mp_hockey_1d(eps, w, ell)


@pytest.mark.parametrize(
    "eps, c, ell",
    [
        (0.10798857728320793, 0.003230915997309322, 1.0000001259716453),
        (0.07229836470381705, -0.0020321940586811955, 0.9999999722368513),
        (0.0035889508726835843, 0.00011379801538188119, 1.0),
    ],
)
def test_ridge_hockey_stick_near_unit_variance_ratio(eps, c, ell):
    got = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-c, var1=ell)
    assert got >= _mp_hockey_1d(eps, c, ell)


def test_ridge_renyi_near_order_one_regression():
    """Regression (fixed in ridge._renyi_1d): log1p(αx) − α·log1p(x) was formed as a difference
    of O(1) logs and divided by α − 1, losing log10(1/(α−1)) digits: 7e-6 relative BELOW the
    exact D_α at α − 1 = 1.4e-9 (and ~1e-12 at α − 1 = 2e-3). Now written as
    log1p((α−1)x/ℓ)/(α−1) − log1p(x)."""
    for a, w, ell in (
        (1.0000000014137744, 0.00026377542951551446, 1.0665240967671479),
        (1.0000000011802794, 0.0, 0.9633925823863286),
        (1.0019824759971472, -0.0011253819343047759, 0.9998733521581894),
        (1.0000879745661286, 7.775010263503596e-07, 0.9887843956150265),
    ):
        exact = _mp_renyi_1d(a, w, ell)
        got = float(ridge.renyi_1d(a, shift=w, variance_ratio=ell))
        assert abs(_ratio(got, exact) - 1) <= 1e-12


def test_gaussian_epsilon_rounds_up_at_huge_mu():
    """Was a finding: at mu ≳ 2000 (ε ≳ 1e6) the result landed < 1 ulp below the exact ε; the
    inverses now round 8 ulps outward (gaussian._ULP_UP)."""
    mu, delta = 5741.982494943316, 1.7248715724651233e-169
    assert float(gaussian.epsilon(delta, mu=mu)) >= mp_eps(delta, mu)
    assert float(gaussian.epsilon(np.array([delta]), mu=mu)[0]) >= mp_eps(delta, mu)
    rng = np.random.default_rng(7)
    for _ in range(12):
        m = float(10 ** rng.uniform(3.0, 3.9))
        d = float(10 ** rng.uniform(-250, -5))
        assert float(gaussian.epsilon(d, mu=m)) >= mp_eps(d, m)


def _mp_subsampled_delta(eps, q, z):
    """Exact δ(ε) of one Poisson-subsampled Gaussian step, max over both directions: the
    likelihood ratio (1−q) + q·exp((2x−1)/(2z²)) is monotone, so each side is a Φ-difference."""
    with mp.workdps(DPS):
        g, q, z = mp.exp(eps), mp.mpf(q), mp.mpf(z)
        half = mp.mpf(1) / 2
        x1 = z * z * mp.log((g - 1 + q) / q) + half

        def up(m):
            return mp.ncdf(-(x1 - m) / z)

        d_remove = (1 - q) * up(0) + q * up(1) - g * up(0)
        d_add = mp.mpf(0)
        if 1 / g > 1 - q:
            x2 = z * z * mp.log((1 / g - 1 + q) / q) + half

            def lo(m):
                return mp.ncdf((x2 - m) / z)

            d_add = lo(0) - g * ((1 - q) * lo(0) + q * lo(1))
        return max(d_remove, d_add)


@pytest.mark.parametrize(
    "q, z, eps",
    [
        (0.00106, 0.79, 0.386),
        (0.0091, 2.84, 0.344),
        (0.135, 1.42, 1.97),
    ],
)
def test_pld_subsampled_single_step_brackets_exact(q, z, eps):
    """One Poisson-subsampled Gaussian step (δ from 0.1 down to 1e-30): PLD lower ≤ exact ≤ upper."""
    from unlearn_theory.pld import PrivacyLossDistribution

    d = PrivacyLossDistribution.from_subsampled_gaussian(sample_rate=q, noise_multiplier=z).delta(
        eps
    )
    exact = _mp_subsampled_delta(eps, q, z)
    assert d.lower <= exact <= d.upper


@settings(max_examples=40, deadline=None, derandomize=True)
@given(log_eps=st.floats(-5.0, 2.8), log_delta=st.floats(-300.0, -0.5))
def test_gaussian_mu_calibration_never_overshoots(log_eps, log_delta):
    eps, delta = 10.0**log_eps, 10.0**log_delta
    mu = float(gaussian.mu(epsilon=eps, delta=delta))
    assert mp_delta(eps, mu) <= delta


def test_no_silent_zero_delta_from_underflow():
    """Regression (fixed in contraction.model_clipping_delta and ridge._hs1d): a finite log δ is
    a positive δ; where exp underflows the functions now return the smallest positive float
    (an upper bound), as gaussian.delta does, instead of 0.0. True zeros stay 0."""
    ld = model_clipping_log_delta(
        epsilon=1.0, clip_initial=1.0, clip_model=1.0, noise_std=0.5, steps=50
    )
    assert ld < -800
    from unlearn_theory.contraction import model_clipping_delta

    assert model_clipping_delta(
        epsilon=1.0, clip_initial=1.0, clip_model=1.0, noise_std=0.5, steps=50
    ) == pytest.approx(5e-324)
    # E_{e^40}(N(0,1) ‖ N(1,1)) = e^{-1233.9...} > 0
    assert float(gaussian.log_delta(40.0, mu=1.0)) > -math.inf
    assert ridge.hockey_stick_1d(40.0, mean0=0.0, var0=1.0, mean1=1.0, var1=1.0) > 0.0
    assert float(gaussian.delta(40.0, mu=1.0)) > 0.0
    # bounded privacy loss: δ(6) is exactly 0 and stays 0
    assert ridge.hockey_stick_1d(6.0, mean0=0.0, var0=1.0, mean1=0.5, var1=1.05) == 0.0


@pytest.mark.parametrize("sigma_last", [1e-3, 1.3e-3, 1.7e-3, 2e-3, 1e-2])
def test_schedule_allocation_resolves_tiny_increments(sigma_last):
    """Regression (fixed in iteration.constrained_coefficient): σ = [1e5, σ₁], C1 = [0, 5], γ = 1,
    λ = 0, C0 = 1. The last step's ΔY = σ₁² is ~1 ulp of the cumulative Y = 1e10, so the edge
    energy taken from differences of cumulative sums was wrong by O(1): at σ₁ = 1.3e-3 the
    certified coefficient was 2.2518e7 against the allocation problem's optimum 2.9586e7 (24 %
    BELOW the proven bound), at σ₁ = 1e-3 it was +inf. Exact optimum: A₁ = min(2, 12Y₁/(Y₁+σ₁²)),
    a* = A₁²/(2Y₁) + (12 − A₁)²/(2σ₁²)."""
    sch = iteration.Schedule.from_arrays(
        learning_rate=1.0,
        weight_decay=0.0,
        clip_gradient=[0.0, 5.0],
        noise_std=[1e5, sigma_last],
        clip_initial=1.0,
    )
    al = iteration.constrained_coefficient(sch)
    with mp.workdps(DPS):
        y1, v = mp.mpf(1e5) ** 2, mp.mpf(sigma_last) ** 2
        a1 = min(mp.mpf(2), 12 * y1 / (y1 + v))
        exact = a1**2 / (2 * y1) + (12 - a1) ** 2 / (2 * v)
    assert al.coefficient >= exact and _ratio(al.coefficient, exact) <= 1 + 1e-9
    assert iteration.verify_allocation(sch, al.shifts, rtol=1e-9)


def test_schedule_allocation_matches_high_precision_hull_on_extreme_schedules():
    """σ_t over 12 decades, C1_t over 12 decades, γλ up to 1 − 1e-12, σ_t = 0 steps: the
    coefficient is never below the 80-digit lower-convex-hull optimum (computed here with the
    library's float ρ_t, see the ρ-rounding finding below) and the shifts are feasible."""
    rng = np.random.default_rng(np.random.SeedSequence(41))
    for _ in range(40):
        T = int(rng.choice([2, 5, 12]))
        lr = 10 ** rng.uniform(-4, 0, T)
        gl = np.where(
            rng.random(T) < 0.2,
            1 - 10 ** rng.uniform(-12, -1, T),
            rng.uniform(0, 0.5, T) * (rng.random(T) > 0.5),
        )
        c1 = 10 ** rng.uniform(-6, 6, T) * (rng.random(T) > 0.3)
        sig = 10 ** rng.uniform(-6, 6, T) * (rng.random(T) > 0.3)
        sig[-1] = max(sig[-1], 1e-3)
        c0 = float(10 ** rng.uniform(-6, 6))
        sch = iteration.Schedule.from_arrays(
            learning_rate=lr, weight_decay=gl / lr, clip_gradient=c1, noise_std=sig, clip_initial=c0
        )
        al = iteration.constrained_coefficient(sch)
        with mp.workdps(80):
            rho = [mp.mpf(float(r)) for r in sch.contraction]
            s = [mp.mpf(float(x)) for x in sch.shift]
            w = [mp.fprod(rho[t + 1 :]) for t in range(T)]
            xs, ys = [mp.mpf(0)], [mp.mpf(0)]
            u, y = 2 * mp.mpf(c0) * mp.fprod(rho), mp.mpf(0)
            for t in range(T):
                u += w[t] * s[t]
                y += (w[t] * mp.mpf(float(sig[t]))) ** 2
                xs.append(y)
                ys.append(u)
            if any(xs[t] >= xs[T] and ys[t] < ys[T] for t in range(1, T)):
                assert al.coefficient == math.inf
                continue
            hull = [0]
            for t in range(1, T + 1):
                if xs[t] <= xs[hull[-1]] and t < T:
                    continue
                while len(hull) >= 2:
                    i, j = hull[-2], hull[-1]
                    cross = (xs[j] - xs[i]) * (ys[t] - ys[i]) - (ys[j] - ys[i]) * (xs[t] - xs[i])
                    if cross <= 0:
                        hull.pop()
                    else:
                        break
                hull.append(t)
            opt = mp.fsum(
                (ys[j] - ys[i]) ** 2 / (2 * (xs[j] - xs[i])) for i, j in zip(hull[:-1], hull[1:])
            )
        assert al.coefficient >= opt
        assert iteration.verify_allocation(sch, al.shifts, rtol=1e-8)


def test_contraction_rounding_near_gamma_lambda_one():
    """Was a finding: ρ = 1 − γλ formed in float64 lost relative accuracy near γλ = 1; ρ is
    now formed from the exact product and rounded up (iteration.contraction_factor)."""
    lr, wd = 0.3, 3.33333333333  # γλ = 1 − 1.0e-12 (exact product), ρ ≈ 1e-12
    with mp.workdps(DPS):
        rho = 1 - mp.mpf(lr) * mp.mpf(wd)
        sched_exact = (2 * rho * rho) ** 2 / (2 * (rho * rho + 1))
        const_exact = (2 * rho**3) ** 2 / (2 * (1 + rho**2 + rho**4))
    sch = iteration.Schedule.from_arrays(
        learning_rate=lr, weight_decay=wd, clip_gradient=0.0, noise_std=[1.0, 1.0], clip_initial=1.0
    )
    const = iteration.constant_coefficient(
        steps=3,
        noise_std=1.0,
        clip_initial=1.0,
        clip_gradient=0.0,
        learning_rate=lr,
        weight_decay=wd,
    )
    assert iteration.constrained_coefficient(sch).coefficient >= sched_exact
    assert const >= const_exact


def test_ridge_hockey_stick_sweep_near_unit_ratio_and_tiny_delta():
    """Fixed finding: cancellation near ℓ = 1 and upper-tail precision at tiny δ."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        ell = 1.0 + rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-12, -2)
        c = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-5, 0.5)
        eps = 10 ** rng.uniform(-3, 1.3)
        got = ridge.hockey_stick_1d(eps, mean0=0.0, var0=1.0, mean1=-c, var1=ell)
        exact = _mp_hockey_1d(eps, c, ell)
        assert got >= exact
        if exact > 0:
            assert got <= exact * (1 + 1e-8) + 1e-300
