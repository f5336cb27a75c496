"""Tests for unlearn_theory.group: group privacy for the DP-SGD baseline (docs/theory.md §7.2)."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from unlearn_theory import _validate as v
from unlearn_theory import group, renyi
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError


@pytest.mark.parametrize("eps,k", [(0.0, 5), (0.1, 1), (0.1, 10), (2.0, 7), (300.0, 4)])
def test_log_factor_matches_mpmath(eps, k):
    with mp.workdps(50):
        want = mp.log(mp.fsum(mp.exp(i * mp.mpf(eps)) for i in range(k)))
    assert group.log_group_delta_factor(eps, k) == pytest.approx(float(want), rel=1e-13, abs=1e-15)


@settings(max_examples=50, deadline=None)
@given(eps=st.floats(0.01, 20.0), logd=st.floats(-30, -1), k=st.integers(1, 200))
def test_split_inverts_group_privacy(eps, logd, k):
    d = math.exp(logd)
    e1, d1 = group.split_group_budget(eps, d, k)
    g = group.group_privacy(e1, d1, k)
    ge, gd = float(g.epsilon), float(g.delta)
    assert ge == pytest.approx(eps, rel=1e-12)
    assert gd <= d  # never on the wrong side
    assert gd == pytest.approx(d, rel=1e-9)
    # the simplification is valid (smaller δ') ...
    e1s, d1s = group.split_group_budget_simplified(eps, d, k)
    assert e1s == e1 and d1s <= d1 * (1 + 1e-12)
    assert float(group.group_privacy(e1s, d1s, k).delta) <= d


@settings(max_examples=50, deadline=None)
@given(eps=st.floats(0.01, 5.0), k=st.integers(2, 100))
def test_stair_lab_bug_is_optimistic_by_up_to_k(eps, k):
    """PUBLISHED BUG (labelled comparison): δ' = δ e^{-(k-1)ε/k} drops the 1/k."""
    d = 1e-5
    e1, d_bug = group.stair_lab_split(eps, d, k)
    gd = float(group.group_privacy(e1, d_bug, k).delta)
    ratio = gd / d
    assert 1.0 < ratio <= k * (1 + 1e-12)  # the implied group δ exceeds the target


def test_large_k_epsilon_no_overflow():
    e1, d1 = group.split_group_budget(800.0, 1e-5, 2)
    assert e1 == 400.0 and 0.0 < d1 < 1e-5
    assert math.isfinite(math.log(d1))


@pytest.mark.parametrize(
    "args,name",
    [((1.0, 0.0, 3), "delta"), ((1.0, 1e-5, 0), "group_size"), ((-1.0, 1e-5, 3), "epsilon")],
)
def test_bad_input(args, name):
    with pytest.raises(InvalidParameterError, match=name):
        group.split_group_budget(*args)


# ---------------------------------------------------------------------------------------------
# budget splits and group privacy at extreme scales: feasible side or a clear refusal,
# upper bounds against an mpmath oracle


def _exact_group_delta(eps: float, delta: float, k: int) -> mp.mpf:
    """δ·Σ_{i<k} e^{iε} for the float inputs, at 60 digits."""
    with mp.workdps(60):
        e, d = mp.mpf(eps), mp.mpf(delta)
        if k == 1:
            return d
        if e == 0:
            return d * k
        return d * mp.expm1(k * e) / mp.expm1(e)


def _assert_feasible_split(eps, delta, k, e1, d1):
    assert e1 > 0.0 and d1 > 0.0
    assert k * Fraction(e1) <= Fraction(eps)  # k·ε' ≤ ε exactly
    assert k * e1 <= eps
    assert _exact_group_delta(e1, d1, k) <= delta
    _g = group.group_privacy(e1, d1, k)
    ge, gd = float(_g.epsilon), float(_g.delta)
    assert ge <= eps and gd <= delta


@pytest.mark.parametrize("split", [group.split_group_budget, group.split_group_budget_simplified])
@pytest.mark.parametrize(
    "eps,delta,k",
    [
        (10.0, 1e-300, 10**20),
        (56.73554829904291, 3.2083511256930125e-300, 30),
        (10.0, 1e-300, 10),
        (1.0, 1e-310, 3),
        (0.3, 1e-5, 7),
    ],
)
def test_u1_split_is_feasible_or_refused(split, eps, delta, k):
    try:
        e1, d1 = split(eps, delta, k)
    except NumericalPrecisionError:  # the per-record δ' underflows float64
        assert float(_exact_group_delta(eps / k, 5e-324, k)) > delta * 0.5
        return
    _assert_feasible_split(eps, delta, k, e1, d1)


@pytest.mark.parametrize(
    "split",
    [group.split_group_budget, group.split_group_budget_simplified, group.stair_lab_split],
)
@pytest.mark.parametrize("args", [(5e-324, 5e-324, 3), (5e-324, 5e-324, 2), (1.0, 5e-324, 1000)])
def test_u1b_underflowing_split_raises(split, args):
    with pytest.raises(NumericalPrecisionError):
        split(*args)


def test_u1_epsilon_is_rounded_down():
    bad = 0
    for i in range(2000):
        eps = 0.001 + 0.0137 * i
        k = 3 + i % 97
        e1, _ = group.split_group_budget(eps, 1e-6, k)
        bad += k * Fraction(e1) > Fraction(eps)
    assert bad == 0


def test_u2_group_privacy_repro_is_upper():
    eps, d, k = 1.2402234524931714e-05, 1.6507887030320187e-239, 24
    _g = group.group_privacy(eps, d, k)
    ge, gd = float(_g.epsilon), float(_g.delta)
    assert Fraction(ge) >= k * Fraction(eps)
    assert mp.mpf(gd) >= _exact_group_delta(eps, d, k)


@settings(max_examples=60, deadline=None)
@given(
    log10_eps=st.floats(-320.0, 2.5),
    log10_delta=st.floats(-323.3, -1e-6),
    k=st.one_of(st.integers(1, 5000), st.sampled_from([10**6, 2**40, 10**20])),
)
def test_u2_group_privacy_upper_against_mpmath(log10_eps, log10_delta, k):
    eps, d = 10.0**log10_eps, 10.0**log10_delta
    assume(0.0 < d < 1.0)
    _g = group.group_privacy(eps, d, k)
    ge, gd = float(_g.epsilon), float(_g.delta)
    exact = _exact_group_delta(eps, d, k)
    assert ge == math.inf or Fraction(ge) >= k * Fraction(eps)
    if exact < mp.mpf("1e300"):  # below the e^700 cap
        assert mp.mpf(gd) >= exact
        assert mp.mpf(gd) <= exact * (1 + mp.mpf("1e-9")) + mp.mpf("1e-323")


@settings(max_examples=60, deadline=None)
@given(
    log10_eps=st.floats(-300.0, 2.5),
    log10_delta=st.floats(-323.3, -1e-6),
    k=st.one_of(st.integers(1, 5000), st.sampled_from([10**6, 10**20])),
)
def test_u1_split_feasible_against_mpmath(log10_eps, log10_delta, k):
    eps, d = 10.0**log10_eps, 10.0**log10_delta
    assume(0.0 < eps and 0.0 < d < 1.0)
    for split in (group.split_group_budget, group.split_group_budget_simplified):
        try:
            e1, d1 = split(eps, d, k)
        except NumericalPrecisionError:
            continue
        _assert_feasible_split(eps, d, k, e1, d1)
        if split is group.split_group_budget and d1 > 1e-300:  # and nearly tight
            assert _exact_group_delta(e1, d1, k) >= d * (1 - 1e-9)


# ---------------------------------------------------------------------------------------------
# integers too large for float64 are refused by argument name (shared validation)


def test_c1_huge_ints_are_refused_by_name():
    with pytest.raises(InvalidParameterError, match="too large for float64"):
        v.check_real("x", 10**400)
    with pytest.raises(InvalidParameterError, match="y"):
        v.as_float_array("y", [1, 10**400])
    with pytest.raises(InvalidParameterError, match="group_size"):
        group.group_privacy(1.0, 0.5, 10**400)
    with pytest.raises(InvalidParameterError, match="group_size"):
        group.split_group_budget(1.0, 0.5, 10**400)
    with pytest.raises(InvalidParameterError, match="orders"):
        renyi.subsampled_gaussian(10**400, sample_rate=0.1, noise_multiplier=1.0)
    assert v.check_int("n", 10**400) == 10**400  # integers stay integers


# ------------------------------------------------------------------------------------------
# group privacy by amplification (docs/group_amplification.md)

from unlearn_theory import certify, group_amplification  # noqa: E402


def _mp_group_delta(eps, q, z, k, direction, dps=40):
    """Exact δ(ε) of M = Σ_j Bin(j;k,q) N(j, z²) against B = N(0, z²) in mpmath [oracle].

    The loss L = log dM/dB is increasing in x, so {L > ε} is a half-line found by bisection on
    x; δ is then a sum of normal tails per component (closed form given the threshold)."""
    with mp.workdps(dps):
        q, z, eps = mp.mpf(q), mp.mpf(z), mp.mpf(eps)
        w = [mp.binomial(k, j) * q**j * (1 - q) ** (k - j) for j in range(k + 1)]

        def loss(x):
            return mp.log(
                mp.fsum(w[j] * mp.exp((2 * j * x - j * j) / (2 * z * z)) for j in range(k + 1))
            )

        def tail(t):  # P(N(0,1) > t)
            return mp.erfc(t / mp.sqrt(2)) / 2

        level = eps if direction == "remove" else -eps
        if direction == "add" and level <= mp.log(w[0]):
            return mp.mpf(0)
        lo, hi = mp.mpf(-1), mp.mpf(1)
        while loss(lo) > level:
            lo *= 2
        while loss(hi) < level:
            hi *= 2
        for _ in range(200):
            mid = (lo + hi) / 2
            if loss(mid) > level:
                hi = mid
            else:
                lo = mid
        x = (lo + hi) / 2
        if direction == "remove":
            d = mp.fsum(w[j] * tail((x - j) / z) for j in range(k + 1)) - mp.exp(eps) * tail(x / z)
        else:
            d = (1 - tail(x / z)) - mp.exp(eps) * mp.fsum(
                w[j] * (1 - tail((x - j) / z)) for j in range(k + 1)
            )
        return max(d, mp.mpf(0))


@pytest.mark.parametrize("q,z,k", [(0.1, 1.0, 2), (0.01, 1.0, 10), (0.3, 0.8, 3), (1.0, 2.0, 3)])
def test_mixture_route_at_one_step_is_exact_against_mpmath(q, z, k):
    """T = 1: the certified ε is never below the exact one (both orderings) and within 1e-4
    (discretisation interval 2e-3; the default interval is finer)."""
    delta = 1e-5
    eps = float(
        group_amplification.group_mixture_epsilon(
            sample_rate=q, noise_multiplier=z, steps=1, forget_size=k, delta=delta, grid=2e-3
        )
    )
    exact = [_mp_group_delta(eps, q, z, k, d) for d in ("remove", "add")]
    assert max(exact) <= delta  # never below the exact value
    below = [_mp_group_delta(eps * (1 - 1e-4), q, z, k, d) for d in ("remove", "add")]
    assert max(below) > delta  # tight to 1e-4 relative


@settings(max_examples=8, deadline=None)
@given(
    q=st.floats(0.01, 0.5),
    z=st.floats(0.6, 3.0),
    k=st.integers(2, 6),
    log10_delta=st.floats(-8, -2),
)
def test_mixture_route_never_below_exact_at_one_step(q, z, k, log10_delta):
    delta = 10.0**log10_delta
    eps = float(
        group_amplification.group_mixture_epsilon(
            sample_rate=q, noise_multiplier=z, steps=1, forget_size=k, delta=delta, grid=0.01
        )
    )
    assert max(_mp_group_delta(eps, q, z, k, d) for d in ("remove", "add")) <= delta


def test_issue_example_induction_infinite_mixture_finite():
    """q = 0.01, z = 1, T = 100, k = 10, δ = 1e-5: the induction route certifies nothing, the
    mixture route certifies ε ≈ 8.61 (dp-accounting's MixtureGaussian PLD at interval 1e-3:
    8.6107; slow cross-check in test_mixture_route_against_dp_accounting_issue_example)."""
    r = certify(
        "dp_sgd_group", delta=1e-5, noise_std=1.0, sample_rate=0.01, steps=100, forget_size=10
    )
    assert math.isinf(r.details["induction_epsilon"])
    assert r.details["route"] == "mixture"
    assert 8.6 < r.epsilon < 8.7


def _dp_accounting_mixture_epsilon(q, z, k, steps, delta, interval):
    import numpy as np
    from dp_accounting.pld import privacy_loss_distribution as pldm
    from scipy import stats

    j = np.arange(k + 1)
    w = stats.binom.pmf(j, k, q)
    pld = pldm.from_mixture_gaussian_mechanism(
        z, [float(x) for x in j], [float(x) for x in w], value_discretization_interval=interval
    )
    return pld.self_compose(steps).get_epsilon_for_delta(delta)


def test_mixture_route_against_dp_accounting():
    """Peer cross-check (dp-accounting's pessimistic mixture-of-Gaussians PLD, both
    adjacencies): agreement within 0.5%."""
    ours = float(
        group_amplification.group_mixture_epsilon(
            sample_rate=0.05, noise_multiplier=1.0, steps=5, forget_size=3, delta=1e-5
        )
    )
    peer = _dp_accounting_mixture_epsilon(0.05, 1.0, 3, 5, 1e-5, 1e-3)
    assert ours == pytest.approx(peer, rel=5e-3)


@pytest.mark.slow
def test_mixture_route_against_dp_accounting_issue_example():
    ours = float(
        group_amplification.group_mixture_epsilon(
            sample_rate=0.01, noise_multiplier=1.0, steps=100, forget_size=10, delta=1e-5
        )
    )
    peer = _dp_accounting_mixture_epsilon(0.01, 1.0, 10, 100, 1e-5, 1e-3)
    assert ours == pytest.approx(peer, rel=2e-3)


def _check_mixture_not_above_induction(q, z, k, steps):
    r = certify("dp_sgd_group", delta=1e-5, noise_std=z, sample_rate=q, steps=steps, forget_size=k)
    ind, mix = r.details["induction_epsilon"], r.details["mixture_epsilon"]
    assert math.isfinite(mix)
    if math.isfinite(ind):
        assert mix <= ind * (1 + 1e-3)
    assert r.epsilon == min(ind, mix)


def test_mixture_route_not_above_induction_example():
    """The mixture pair is the group's exact worst case, so its certificate is below the
    induction route's wherever both are finite (up to the PLD's discretisation, 1e-3)."""
    _check_mixture_not_above_induction(0.1, 2.0, 3, 4)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(
    q=st.floats(0.02, 0.3),
    z=st.floats(0.8, 3.0),
    k=st.integers(2, 5),
    steps=st.integers(1, 20),
)
def test_mixture_route_not_above_induction(q, z, k, steps):
    """Property version (slow: the induction route calibrates a PLD at a tiny per-record δ)."""
    _check_mixture_not_above_induction(q, z, k, steps)


def _hockey_2d(atoms, weights, z, eps, n=1601, half=9.0):
    """E_{e^eps} of Σ w N(atom, z² I₂) vs N(0, z² I₂) (and reverse) on a fine 2-D grid."""
    import numpy as np

    g = np.linspace(-half, half + 4.0, n)
    h = g[1] - g[0]
    x, y = np.meshgrid(g, g, indexing="ij")
    q0 = np.exp(-(x**2 + y**2) / (2 * z * z)) / (2 * math.pi * z * z)
    p = sum(
        w * np.exp(-((x - a[0]) ** 2 + (y - a[1]) ** 2) / (2 * z * z)) / (2 * math.pi * z * z)
        for a, w in zip(atoms, weights)
    )
    ge = math.exp(eps)
    return (
        float(np.sum(np.maximum(p - ge * q0, 0)) * h * h),
        float(np.sum(np.maximum(q0 - ge * p, 0)) * h * h),
    )


@pytest.mark.parametrize("g2", [(0.0, 1.0), (-1.0, 0.0), (0.6, 0.8), (0.5, 0.0)])
def test_aligned_gradients_dominate_two_members(g2):
    """The domination theorem on k = 2: member 1 at (1, 0), member 2 anywhere in the unit ball
    (orthogonal, opposite, oblique, shorter): both hockey-stick orderings stay below those of
    the aligned pair (2-D quadrature against the exact 1-D mixture)."""
    q, z = 0.3, 1.0
    g1 = (1.0, 0.0)
    atoms = [(0.0, 0.0), g1, g2, (g1[0] + g2[0], g1[1] + g2[1])]
    weights = [(1 - q) ** 2, q * (1 - q), q * (1 - q), q * q]
    for eps in (0.0, 0.2, 0.6):
        general = _hockey_2d(atoms, weights, z, eps)
        aligned = (
            float(_mp_group_delta(eps, q, z, 2, "remove")),
            float(_mp_group_delta(eps, q, z, 2, "add")),
        )
        assert general[0] <= aligned[0] + 1e-6
        assert general[1] <= aligned[1] + 1e-6


def test_group_components_merge_tail_outward():
    comps = group_amplification.group_mixture_components(sample_rate=0.001, forget_size=2000)
    assert len(comps) < 100
    weights = [math.exp(lw) for lw, _ in comps]
    assert sum(weights) == pytest.approx(1.0, rel=1e-10)
    assert comps[-1][1] == 2000.0  # the merged tail sits at the largest shift
    assert group_amplification.group_mixture_components(sample_rate=1.0, forget_size=3) == [
        (0.0, 3.0)
    ]


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(sample_rate=0.0), "sample_rate"),
        (dict(noise_multiplier=-1.0), "noise_multiplier"),
        (dict(forget_size=0), "forget_size"),
        (dict(steps=0), "steps"),
        (dict(delta=1.5), "delta"),
    ],
)
def test_mixture_route_bad_input(kw, name):
    args = dict(sample_rate=0.1, noise_multiplier=1.0, steps=1, forget_size=2, delta=1e-5)
    args.update(kw)
    with pytest.raises(InvalidParameterError, match=name):
        group_amplification.group_mixture_epsilon(**args)
