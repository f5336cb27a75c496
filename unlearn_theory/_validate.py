"""Central argument validators: each names the argument and the value in its error.

Every public function of :mod:`unlearn_theory` routes its arguments through these helpers so
that bad input always raises :class:`~unlearn_theory.errors.InvalidParameterError` (a
``ValueError``) and never propagates NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .errors import InvalidParameterError

__all__ = [
    "as_float_array",
    "check_real",
    "check_positive",
    "check_nonnegative",
    "check_probability_open",
    "check_delta",
    "check_epsilon",
    "check_sample_rate",
    "check_int",
    "check_orders",
    "check_in_range",
    "check_decay_product",
]


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a finite Python float or raise naming ``name``.

    Values beyond float64 range (a Python int such as 10**400) are refused, not rounded to inf.
    """
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if isinstance(value, np.ndarray) and value.shape == ():
            return check_real(name, value.item())
        raise InvalidParameterError(name, value, "must be a finite real number")
    try:
        out = float(value)
    except OverflowError as exc:  # e.g. a Python int beyond 1.8e308
        raise InvalidParameterError(name, value, "too large for float64") from exc
    if not math.isfinite(out):
        raise InvalidParameterError(name, value, "must be finite")
    return out


def check_positive(name: str, value: object) -> float:
    out = check_real(name, value)
    if out <= 0.0:
        raise InvalidParameterError(name, value, "must be > 0")
    return out


def check_nonnegative(name: str, value: object) -> float:
    out = check_real(name, value)
    if out < 0.0:
        raise InvalidParameterError(name, value, "must be >= 0")
    return out


def check_in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    out = check_real(name, value)
    bad_low = out <= low if low_open else out < low
    bad_high = out >= high if high_open else out > high
    if bad_low or bad_high:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise InvalidParameterError(name, value, f"must lie in {lb}{low}, {high}{hb}")
    return out


def check_probability_open(name: str, value: object) -> float:
    return check_in_range(name, value, 0.0, 1.0)


def check_delta(value: object, name: str = "delta") -> float:
    """delta must lie in the open interval (0, 1)."""
    return check_in_range(name, value, 0.0, 1.0)


def check_epsilon(value: object, name: str = "epsilon") -> float:
    """epsilon must be finite and >= 0."""
    return check_nonnegative(name, value)


def check_sample_rate(value: object, name: str = "sample_rate") -> float:
    """Poisson sampling probability q in (0, 1]."""
    return check_in_range(name, value, 0.0, 1.0, high_open=False)


def check_int(name: str, value: object, *, minimum: int | None = 0) -> int:
    """An integer (Python or numpy, or an integral float such as 10.0), >= ``minimum``.

    Returned as a Python int of any size; callers that need it as a float convert it through
    :func:`check_real` (which refuses values beyond float64 range, naming ``name``).
    """
    if _is_bool(value):
        raise InvalidParameterError(name, value, "must be an integer")
    if isinstance(value, (numbers.Integral, np.integer)):
        out = int(value)
    elif (
        isinstance(value, (float, np.floating))
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        out = int(value)
    else:
        raise InvalidParameterError(name, value, "must be an integer")
    if minimum is not None and out < minimum:
        raise InvalidParameterError(name, value, f"must be an integer >= {minimum}")
    return out


def as_float_array(name: str, value: object, *, ndim: int | None = None) -> np.ndarray:
    """Convert to a float64 array; reject non-numeric, non-finite entries and wrong ``ndim``."""
    if _is_bool(value):
        raise InvalidParameterError(name, value, "must be numeric, not bool")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError as exc:  # e.g. a Python int beyond 1.8e308
        raise InvalidParameterError(name, value, "too large for float64") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(name, value, "must be a real number or array of reals") from exc
    if ndim is not None and arr.ndim != ndim:
        raise InvalidParameterError(
            name, value, f"must be a {ndim}-dimensional array, got shape {arr.shape}"
        )
    if arr.size and not np.all(np.isfinite(arr)):
        raise InvalidParameterError(name, value, "must contain only finite values")
    return arr


def check_orders(orders: object, name: str = "orders") -> np.ndarray:
    """Rényi orders: a scalar or 1-D array of finite reals > 1 (returned as a float array)."""
    arr = as_float_array(name, orders)
    if arr.ndim > 1:
        raise InvalidParameterError(
            name, orders, f"must be a scalar or 1-D array, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidParameterError(name, orders, "must not be empty")
    if np.any(arr <= 1.0):
        raise InvalidParameterError(name, orders, "every order must be > 1")
    return arr


def check_sequence_length(name: str, value: Sequence, length: int) -> None:
    if len(value) != length:
        raise InvalidParameterError(name, value, f"must have length {length}, got {len(value)}")


def check_decay_product(learning_rate: float, weight_decay, *, value=None) -> None:
    """Raise naming "weight_decay" unless γλ < 1 (the decay x ← (1 − γλ)x contracts; the
    condition 0 < γλ < 1 of the gradient-clipping bounds). ``value``: what to report (default
    ``weight_decay``; a schedule reports itself)."""
    if learning_rate * weight_decay >= 1.0:
        raise InvalidParameterError(
            "weight_decay",
            weight_decay if value is None else value,
            "learning_rate * weight_decay must be < 1 (condition 0 < γλ < 1)",
        )
