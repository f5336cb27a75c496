"""Log-space building blocks shared by the accountants.

All functions are numpy-vectorised and never form ``exp`` of a large argument.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOG2", "log1mexp", "log_sub_exp", "log_expm1", "exp_upper"]

LOG2 = float(np.log(2.0))


def log1mexp(x):
    """log(1 - e^x) for x <= 0, accurate in both regimes.

    Uses log(-expm1(x)) for x > -log 2 and log1p(-exp(x)) otherwise (Mächler 2012,
    "Accurately computing log(1 - exp(-|a|))"). Returns -inf at x = 0.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(
            x > -LOG2,
            np.log(-np.expm1(np.minimum(x, 0.0))),
            np.log1p(-np.exp(np.minimum(x, -LOG2))),
        )
    return out[()] if out.ndim == 0 else out


def log_sub_exp(a, b):
    """log(e^a - e^b) for a >= b (returns -inf where a == b)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = a + log1mexp(b - a)
    return out[()] if np.ndim(out) == 0 else out


def log_expm1(x):
    """log(e^x - 1) for x > 0, stable for small and large x."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(
            x > 30.0,
            x + np.log1p(-np.exp(-np.maximum(x, 30.0))),
            np.log(np.expm1(np.minimum(x, 30.0))),
        )
    return out[()] if out.ndim == 0 else out


_LOG_TINY = float(np.log(np.finfo(np.float64).tiny))
_SMALLEST = float(np.finfo(np.float64).smallest_subnormal)


def exp_upper(x):
    """e^x for an upper bound given in log space: never rounded down, never 0.

    Where e^x is subnormal or underflows (x < log of the smallest normal float), the result is
    stepped up one ulp and is at least the smallest positive float. That includes x = -inf,
    which callers' log-space kernels also return when log δ itself overflows below -1.8e308
    (a positive δ), so a bound never becomes δ = 0.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.exp(x)
    under = x < _LOG_TINY
    if np.any(under):
        out = np.where(under, np.maximum(np.nextafter(out, np.inf), _SMALLEST), out)
    return out[()] if out.ndim == 0 else out
