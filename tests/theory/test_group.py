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
