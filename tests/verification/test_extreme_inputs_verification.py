"""Regression tests for the extreme-input fuzz findings in verification.estimators/confidence.

IDs as in the fuzz report (U4, N9, N10, C8, and the unvalidated ``side``). Contract: never NaN;
an empirical UPPER bound never below the truth, a LOWER bound never above it; bad arguments
raise InvalidParameterError naming the argument.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

from unlearn_theory.errors import InvalidParameterError
from verification import confidence, estimators


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _renyi_interval_mpmath(losses, order, b, alpha=0.05):
    """The Hoeffding interval of renyi_bounded_loss evaluated at 60 digits (reference)."""
    with mp.workdps(60):
        k, B = mp.mpf(order) - 1, mp.mpf(b)
        lo_v, hi_v = mp.exp(-k * B), mp.exp(k * B)
        y = [(mp.exp(k * mp.mpf(x)) - lo_v) / (hi_v - lo_v) for x in losses]
        m = mp.fsum(y) / len(y)
        half = mp.sqrt(mp.log(2 / mp.mpf(alpha)) / (2 * len(y)))

        def d(u):
            return mp.log(lo_v + (hi_v - lo_v) * min(max(u, 0), 1)) / k

        return max(d(m - half), 0), max(d(m + half), 0)


def test_u4_renyi_bounded_loss_degenerate_range_is_sound():
    lo, hi, est = estimators.renyi_bounded_loss(
        np.array([1e-300, -1e-300]), order=1.5, loss_bound=1e-300
    )
    # was hi = -inf (0/0 when e^{-kb} == e^{kb} in float64)
    assert all(math.isfinite(x.value) for x in (lo, hi, est))
    assert 0.0 <= lo.value <= hi.value
    # the exact interval for kb → 0 is b·(2u − 1) with u = min(1/2 + half, 1) = 1: hi ≥ b
    assert hi.value >= 1e-300


@pytest.mark.parametrize(
    "losses, order, b",
    [
        ([0.3, -0.2, 0.9, 0.1], 1.0001, 1.0),
        ([0.3, -0.2, 0.9, 0.1, 0.5, 0.5], 3.0, 1.0),
        ([1e-8, -2e-8, 3e-8], 2.0, 5e-8),
        ([10.0, -40.0, 5.0], 9.0, 50.0),
    ],
)
def test_renyi_bounded_loss_brackets_mpmath_reference(losses, order, b):
    lo, hi, _ = estimators.renyi_bounded_loss(losses, order=order, loss_bound=b)
    ref_lo, ref_hi = _renyi_interval_mpmath(losses, order, b)
    assert mp.mpf(hi.value) >= ref_hi
    assert mp.mpf(lo.value) <= ref_lo


def test_c8_renyi_bounded_loss_overflow_near_order_one():
    # exp((order − 1)·b) overflowed; now the log-space map gives a finite sound interval
    lo, hi, est = estimators.renyi_bounded_loss(
        [0.0, 0.0], order=1.000000000000001, loss_bound=1.7e308
    )
    assert lo.value == 0.0 and est.value == 0.0
    assert math.isfinite(hi.value) and hi.value > 1e307
    lo, hi, _ = estimators.renyi_bounded_loss([1.0, 0.5, 0.2], order=1e300, loss_bound=1.0)
    assert 0.0 <= lo.value <= hi.value and hi.value >= 1.0


def test_n9_clopper_pearson_validates_successes():
    for bad in (float("nan"), 2.5, -1, 6, True):
        with pytest.raises(InvalidParameterError, match="successes"):
            confidence.clopper_pearson_upper(bad, 5, alpha=0.05)
        with pytest.raises(InvalidParameterError, match="successes"):
            confidence.clopper_pearson_lower(bad, 5, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="successes"):
        confidence.clopper_pearson_upper(np.array([0.0, np.nan]), 5, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="trials"):
        confidence.clopper_pearson_upper(0, 10**400, alpha=0.05)
    out = confidence.clopper_pearson_upper(np.array([0, 2, 5]), 5, alpha=0.05)
    assert out[2] == 1.0 and 0 < out[0] < out[1] < 1


def test_n9_empirical_bernstein_from_sums_validates_sums():
    with pytest.raises(InvalidParameterError, match="total"):
        confidence.empirical_bernstein_from_sums(float("nan"), 0.0, 2, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="total"):
        confidence.empirical_bernstein_from_sums(3.0, 1.0, 2, alpha=0.05)  # total > n
    with pytest.raises(InvalidParameterError, match="total_sq"):
        confidence.empirical_bernstein_from_sums(1.0, float("inf"), 2, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="total_sq"):
        confidence.empirical_bernstein_from_sums(1.0, 1.5, 2, alpha=0.05)  # Σx² > Σx
    x = np.array([0.1, 0.4, 0.9, 0.3])
    for side in ("upper", "lower"):
        a = confidence.empirical_bernstein(x, alpha=0.05, side=side)
        b = confidence.empirical_bernstein_from_sums(
            x.sum(), (x * x).sum(), 4, alpha=0.05, side=side
        )
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("fn", [confidence.hoeffding, confidence.empirical_bernstein])
def test_side_is_validated(fn):
    for bad in ("Lower", "up", None):
        with pytest.raises(InvalidParameterError, match="side"):
            fn([0.5, 0.2], alpha=0.05, side=bad)
    with pytest.raises(InvalidParameterError, match="side"):
        confidence.empirical_bernstein_from_sums(0.7, 0.29, 2, alpha=0.05, side="both")


def test_n10_threshold_estimate_validates_delta():
    for bad in (float("nan"), -1.0, 1.5, 0.0):
        with pytest.raises(InvalidParameterError, match="delta"):
            estimators.threshold_estimate([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], delta=bad)
    b = estimators.threshold_estimate([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], delta=0.1)
    assert math.isfinite(b.value) and b.kind == "estimate"


def test_c8_empty_or_bad_thresholds_name_the_argument():
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_epsilon_lower([0.0], [1.0], delta=0.1, thresholds=[])
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_epsilon_lower(
            [0.0, 1.0],
            [1.0, 2.0],
            delta=0.1,
            thresholds=[],
            protocol="split",
            rng=np.random.default_rng(0),
        )
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_delta_lower([0.0], [1.0], epsilon=0.5, thresholds=[])
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_delta_lower([0.0], [1.0], epsilon=0.5, thresholds=[np.nan])
    with pytest.raises(InvalidParameterError, match="threshold"):
        estimators.gdp_mu_lower([0.0], [1.0], threshold=float("nan"))


def test_c8_threshold_delta_lower_huge_epsilon():
    b = estimators.threshold_delta_lower([0.0], [1.0], epsilon=710.0, thresholds=[0.5])
    assert b.value == 0.0 and b.kind == "lower"
    # unchanged in the ordinary range
    x0, x1 = [0.0] * 100, [1.0] * 100
    lo = estimators.threshold_delta_lower(x0, x1, epsilon=0.5, thresholds=[0.5])
    assert 0.85 < lo.value < 1.0
