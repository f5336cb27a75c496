"""Regression tests for the extreme-input fuzz findings in group, conversions, renyi and
_validate (findings U1, U1b, U2, U3, U5, C1, C3, C4, N1 of the fuzz report), plus hypothesis
properties of the group-privacy rounding against an mpmath oracle."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from unlearn_theory import _validate as v
from unlearn_theory import conversions, group, renyi
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError


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


# --- U1 / U1b: budget splits land on the feasible side, never a silent 0 --------------------


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


# --- U2: group_privacy is an upper bound ----------------------------------------------------


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


# --- U3: subsampled-Gaussian RDP never negative ----------------------------------------------


@pytest.mark.parametrize("fractional", ["interpolate", "series"])
def test_u3_subsampled_gaussian_nonnegative(fractional):
    got = renyi.subsampled_gaussian(
        1.5, sample_rate=1e-20, noise_multiplier=1e10, fractional=fractional
    )
    assert got >= 0.0
    # to_dp accepts the curve (it rejected the negative value)
    orders = np.array([1.5, 2.0, 3.0])
    rdp = renyi.subsampled_gaussian(orders, sample_rate=1e-20, noise_multiplier=1e10)
    eps = float(renyi.to_dp(orders, rdp, delta=1e-5))
    assert eps >= 0.0


def test_u3_integer_orders_are_upper_against_mpmath():
    # cancellation in gammaln made these fall below the exact value by up to 2e-9 (relative)
    cases = [
        (300, 0.0006353252757115689, 22.591835352175647),
        (30, 0.0466, 13.9),
        (100, 0.0037, 25),
    ]
    for a, q, z in cases:
        got = renyi.subsampled_gaussian(float(a), sample_rate=q, noise_multiplier=z)
        with mp.workdps(50):
            Q, u = mp.mpf(q), 1 / (2 * mp.mpf(z) ** 2)
            A = mp.fsum(
                mp.binomial(a, k) * (1 - Q) ** (a - k) * Q**k * mp.exp(k * (k - 1) * u)
                for k in range(a + 1)
            )
            exact = mp.log(A) / (a - 1)
        assert exact <= got <= exact * (1 + 1e-6)


# --- C4: huge orders: no giant tables -----------------------------------------------------------


def test_c4_huge_orders_use_the_joint_convexity_bound():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = renyi.subsampled_gaussian(
            [1e9, 1e300, 1e6 + 0.5], sample_rate=0.01, noise_multiplier=1.0
        )
    assert out[1] == math.inf and not np.any(np.isnan(out))
    for a, val in [(1e9, out[0]), (1e6 + 0.5, out[2])]:
        # log(1 − q + q e^{α(α−1)/2})/(α−1) lies between these two (z = 1, q = 0.01)
        assert (math.log(0.01) + a * (a - 1) / 2) / (a - 1) <= val <= a / 2 * (1 + 1e-12)
    with pytest.raises(InvalidParameterError, match="orders"):
        renyi.log_a_integer_table(0.5, 10**9, 0.01)


# --- U5 / C3: max_linear_coefficient -----------------------------------------------------------


@pytest.mark.parametrize(
    "eps,delta,conversion",
    [(1e-3, 1e-310, "improved"), (1e-20, 1 - 1e-16, "mironov"), (0.7, 1e-9, "improved")],
)
def test_u5_max_linear_coefficient_certifies_through_linear_epsilon(eps, delta, conversion):
    a = conversions.max_linear_coefficient(epsilon=eps, delta=delta, conversion=conversion)
    assert a > 0.0
    assert float(conversions.linear_epsilon(a, delta=delta, conversion=conversion)) <= eps


@pytest.mark.parametrize("conversion", ["mironov", "improved"])
def test_c3_underflowing_coefficient_raises(conversion):
    with pytest.raises(NumericalPrecisionError, match="epsilon"):
        conversions.max_linear_coefficient(epsilon=5e-324, delta=5e-324, conversion=conversion)


# --- N1: huge orders with zero RDP: no NaN -----------------------------------------------------


@pytest.mark.parametrize("conversion", ["improved", "mironov"])
def test_n1_log_delta_at_huge_order_is_finite(conversion):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ld = conversions.log_delta_at_order(1.7e308, 0.0, epsilon=2.0, conversion=conversion)
        assert not math.isnan(ld) and -math.inf < ld < -1e308
        _b = renyi.to_delta([1.7e308], [0.0], epsilon=2.0, conversion=conversion)
        d, order = _b.value, _b.order
        assert d > 0.0 and order == 1.7e308
        ld2 = float(renyi.to_log_delta([2.0, 1.7e308], [0.0, 0.0], epsilon=2.0))
        assert not math.isnan(ld2)


def test_linear_log_delta_no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ld = float(conversions.linear_log_delta(1e300, epsilon=1.0))
    assert ld == 0.0


# --- C1: huge Python ints ------------------------------------------------------------------------


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
