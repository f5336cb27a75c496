"""Finite-sample one-sided confidence bounds (docs/theory.md §12.2, §12.4).

Clopper & Pearson (1934) exact binomial bounds; Hoeffding (1963) and the empirical-Bernstein
bound of Maurer & Pontil (2009, arXiv 0907.3740, Thm 4) for means of variables in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from unlearn_theory._validate import check_in_range, check_int, check_real
from unlearn_theory.errors import InvalidParameterError

__all__ = [
    "clopper_pearson_upper",
    "clopper_pearson_lower",
    "hoeffding",
    "empirical_bernstein",
    "empirical_bernstein_from_sums",
]


def _integer_array(name, value):
    """A finite, integer-valued real scalar or array (bool rejected), as float64."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise InvalidParameterError(name, value, "too large for float64") from None
    arr = np.asarray(value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InvalidParameterError(name, value, "must be an integer count (or array of them)")
    try:
        out = arr.astype(np.float64)
    except OverflowError:  # a Python int beyond float64
        raise InvalidParameterError(name, value, "too large for float64") from None
    if not np.all(np.isfinite(out)) or np.any(out != np.round(out)):
        raise InvalidParameterError(name, value, "must be a finite integer count")
    return out


def _counts(successes, trials):
    """Validate counts: ``trials`` integer(s) > 0, ``successes`` integer(s) in [0, trials]."""
    if not isinstance(trials, np.ndarray):
        check_int("trials", trials)
    n = _integer_array("trials", trials)
    k = _integer_array("successes", successes)
    if np.any(n <= 0):
        raise InvalidParameterError("trials", trials, "must be > 0")
    if np.any(k < 0) or np.any(k > n):
        raise InvalidParameterError("successes", successes, "must lie in [0, trials]")
    return k, n


def clopper_pearson_upper(successes, trials, *, alpha):
    """One-sided upper bound p_up with P(p <= p_up) >= 1 - alpha: Beta^-1(1-alpha; k+1, n-k)."""
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    k, n = _counts(successes, trials)
    with np.errstate(all="ignore"):
        out = stats.beta.ppf(1.0 - alpha, k + 1.0, np.maximum(n - k, 1e-300))
    return np.where(k >= n, 1.0, out)


def clopper_pearson_lower(successes, trials, *, alpha):
    """One-sided lower bound p_lo with P(p >= p_lo) >= 1 - alpha: Beta^-1(alpha; k, n-k+1)."""
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    k, n = _counts(successes, trials)
    with np.errstate(all="ignore"):
        out = stats.beta.ppf(alpha, np.maximum(k, 1e-300), n - k + 1.0)
    return np.where(k <= 0, 0.0, out)


def _mean_checks(values, alpha):
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise InvalidParameterError("values", values, "must be non-empty")
    if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise InvalidParameterError("values", "array", "must be finite and lie in [0, 1]")
    return x, alpha


def _check_side(side):
    if side not in ("upper", "lower"):
        raise InvalidParameterError("side", side, "must be 'upper' or 'lower'")
    return side


def hoeffding(values, *, alpha, side="upper"):
    """Hoeffding one-sided bound for the mean of [0,1] variables: mean +- sqrt(log(1/a)/(2n)).

    ``side`` is "upper" (mean + half, capped at 1) or "lower" (mean − half, floored at 0).
    """
    _check_side(side)
    x, alpha = _mean_checks(values, alpha)
    half = math.sqrt(math.log(1.0 / alpha) / (2.0 * x.size))
    m = float(x.mean())
    return min(1.0, m + half) if side == "upper" else max(0.0, m - half)


def empirical_bernstein(values, *, alpha, side="upper"):
    """Maurer–Pontil empirical Bernstein one-sided bound for [0,1] variables.

    mean +- sqrt(2 V log(2/a) / n) + 7 log(2/a) / (3 (n - 1)), V the unbiased sample variance.
    ``side`` is "upper" or "lower" (InvalidParameterError otherwise).
    """
    _check_side(side)
    x, alpha = _mean_checks(values, alpha)
    n = x.size
    if n < 2:
        raise InvalidParameterError("values", values, "need at least 2 values")
    v = float(x.var(ddof=1))
    lg = math.log(2.0 / alpha)
    half = math.sqrt(2.0 * v * lg / n) + 7.0 * lg / (3.0 * (n - 1))
    m = float(x.mean())
    return min(1.0, m + half) if side == "upper" else max(0.0, m - half)


def empirical_bernstein_from_sums(total, total_sq, n, *, alpha, side="upper"):
    """Same bound as :func:`empirical_bernstein` from sufficient statistics (sum, sum of squares).

    ``total`` = Σx and ``total_sq`` = Σx² of n values in [0, 1]: both finite, 0 ≤ total ≤ n and
    0 ≤ total_sq ≤ total (x² ≤ x), up to a 1e-9·n summation allowance; InvalidParameterError
    naming the argument otherwise.
    """
    _check_side(side)
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    n = check_int("n", n, minimum=2)
    total = check_real("total", total)
    total_sq = check_real("total_sq", total_sq)
    slack = 1e-9 * n  # floating-point summation of n values in [0, 1]
    if not (0.0 <= total <= n + slack):
        raise InvalidParameterError("total", total, f"must lie in [0, n={n}] (values in [0, 1])")
    if not (0.0 <= total_sq <= total + slack):
        raise InvalidParameterError(
            "total_sq", total_sq, f"must lie in [0, total={total!r}] (x**2 <= x on [0, 1])"
        )
    m = total / n
    v = max((total_sq - n * m * m) / (n - 1), 0.0)
    lg = math.log(2.0 / alpha)
    half = math.sqrt(2.0 * v * lg / n) + 7.0 * lg / (3.0 * (n - 1))
    return min(1.0, m + half) if side == "upper" else max(0.0, m - half)
