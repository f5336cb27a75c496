r"""Rényi DP → (ε, δ) conversions, optimised over a *continuous* order.

Every conversion here is valid at **every** order α > 1, so minimising over α only affects
tightness, never soundness: whatever order the optimiser returns, the ε it reports is an UPPER
bound, recomputed at that order (with a relative 1e-12 rounding allowance upward).

Conversions (``conversion=``):

``"improved"`` (default)
    ε(α) = ρ(α) + log((α−1)/α) − (log δ + log α)/(α−1),   clamped at 0;
    log δ(α) = (α−1)(ρ(α) − ε) + (α−1)·log(1 − 1/α) − log α.
    Balle, Barthe, Gaboardi, Hsu & Sato 2020, arXiv 1905.09982, Thm 21; Canonne, Kamath &
    Steinke 2020, arXiv 2004.00010, Prop. 12; Asoodeh et al. 2020, arXiv 2001.05990, Eq. 20.
    Never larger than Mironov's at the same order.
``"mironov"``
    ε(α) = ρ(α) + log(1/δ)/(α−1);   log δ(α) = (α−1)(ρ(α) − ε).
    Mironov 2017, arXiv 1702.07476, Prop. 3.

A Rényi bound is a **curve** α ↦ ρ(α) (callable or array over orders); no function here accepts
one scalar "Rényi ε" in place of a curve (the flat-α pitfall, docs/theory.md §13.1). The one scalar that
is accepted, in :func:`linear_epsilon`, is the *coefficient* a of the linear curve ρ(α) = a·α.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize_scalar

from . import _validate as v
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "CONVERSIONS",
    "epsilon_at_order",
    "log_delta_at_order",
    "curve_epsilon",
    "curve_log_delta",
    "linear_epsilon",
    "linear_log_delta",
    "max_linear_coefficient",
]

CONVERSIONS = ("improved", "mironov")

#: relative allowance for float64 rounding in the conversion formulas (applied upward on ε)
_ROUND = 1e-12

_FLOAT_MAX = float(np.finfo(np.float64).max)

#: default continuous search range for the order, as u = log(α − 1)
_U_MIN = math.log(1e-4)
_U_MAX = math.log(1e7)


def _check_conversion(conversion) -> str:
    if conversion not in CONVERSIONS:
        raise InvalidParameterError("conversion", conversion, "must be 'improved' or 'mironov'")
    return conversion


def _eps_formula(alpha, rdp, log_delta, conversion):
    """Unclamped ε at order alpha (numpy, vectorised). rdp may be +inf (gives +inf)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    am1 = alpha - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conversion == "mironov":
            eps = rdp - log_delta / am1
        else:
            eps = rdp + np.log1p(-1.0 / alpha) - (log_delta + np.log(alpha)) / am1
    eps = np.where(np.isinf(rdp), np.inf, eps)
    return eps


def _round_up(eps):
    return np.where(np.isfinite(eps), np.maximum(eps, 0.0) * (1.0 + _ROUND) + 1e-300, eps)


def epsilon_at_order(order, rdp_value, *, delta, conversion="improved"):
    """ε certified at one order (or elementwise over arrays): UPPER bound, clamped at 0.

    ``rdp_value`` is the curve's value ρ(order) (an upper bound on D_α in both directions).
    """
    conversion = _check_conversion(conversion)
    d = v.check_delta(delta)
    alpha = v.check_orders(order, "order")
    rdp = np.asarray(rdp_value, dtype=np.float64)
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise InvalidParameterError("rdp_value", rdp_value, "must be >= 0 (or +inf), not NaN")
    eps = _round_up(_eps_formula(alpha, rdp, math.log(d), conversion))
    if np.ndim(order) == 0 and np.ndim(rdp_value) == 0:
        return float(eps.reshape(-1)[0])
    return eps


def log_delta_at_order(order, rdp_value, *, epsilon, conversion="improved"):
    """log δ certified at ``epsilon`` by one order: UPPER bound, clamped at log 1 = 0.

    Formulas in the module docstring, with a relative 1e-12 rounding allowance upward. Where
    the exact log δ lies below float range (about −1.8e308) the most negative finite float is
    returned (still an upper bound; never −inf or NaN for a finite ``rdp_value``).
    """
    conversion = _check_conversion(conversion)
    e = v.check_epsilon(epsilon)
    alpha = v.check_orders(order, "order")
    rdp = np.asarray(rdp_value, dtype=np.float64)
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise InvalidParameterError("rdp_value", rdp_value, "must be >= 0 (or +inf), not NaN")
    out = _log_delta_formula(alpha, rdp, e, conversion)
    if np.ndim(order) == 0 and np.ndim(rdp_value) == 0:
        return float(out.reshape(-1)[0])
    return out


def _log_delta_formula(alpha, rdp, eps, conversion):
    am1 = alpha - 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        ld = am1 * (rdp - eps)
        if conversion == "improved":
            ld = ld + am1 * np.log1p(-1.0 / alpha) - np.log(alpha)
    ld = np.where(np.isinf(rdp), 0.0, ld)
    # (α−1)(ρ−ε) below −1.8e308 overflows to −inf although log δ is finite: the most negative
    # float is still an upper bound (and keeps the allowance below free of −inf + inf = NaN)
    ld = np.maximum(ld, -_FLOAT_MAX)
    # rounding allowance upward (toward more privacy loss), then clamp to δ ≤ 1
    ld = ld + _ROUND * np.maximum(np.abs(ld), 1.0)
    return np.minimum(ld, 0.0)


def _evaluate_curve(rdp_fn, alphas):
    vals = np.asarray(rdp_fn(alphas), dtype=np.float64)
    if vals.shape != np.shape(alphas):
        vals = np.broadcast_to(vals, np.shape(alphas)).astype(np.float64)
    if np.any(np.isnan(vals)):
        raise NumericalPrecisionError("the Rényi curve returned NaN")
    if np.any(vals < 0):
        raise NumericalPrecisionError("the Rényi curve returned a negative divergence")
    return vals


def _minimise_over_u(objective_u, u_lo, u_hi, n_grid=240):
    """Coarse log-grid scan then bounded Brent refinement; returns (u*, f(u*))."""
    us = np.linspace(u_lo, u_hi, n_grid)
    vals = objective_u(us)
    vals = np.where(np.isnan(vals), np.inf, vals)
    i = int(np.argmin(vals))
    best_u, best = float(us[i]), float(vals[i])
    if not math.isfinite(best):
        return best_u, best
    lo, hi = us[max(i - 1, 0)], us[min(i + 1, n_grid - 1)]
    if hi > lo:
        res = minimize_scalar(
            lambda u: float(objective_u(np.array([u]))[0]),
            bounds=(float(lo), float(hi)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        if math.isfinite(res.fun) and res.fun < best:
            best_u, best = float(res.x), float(res.fun)
    return best_u, best


def _order_range(min_order, max_order):
    u_lo = (
        _U_MIN
        if min_order is None
        else math.log(float(v.check_orders(min_order, "min_order")) - 1.0)
    )
    if max_order is None or max_order == math.inf:
        u_hi = _U_MAX
    else:
        u_hi = math.log(float(v.check_orders(max_order, "max_order")) - 1.0)
    if u_hi <= u_lo:
        raise InvalidParameterError("max_order", max_order, "must exceed min_order")
    return u_lo, u_hi


def _optimise_order(objective, min_order, max_order) -> tuple[float, float]:
    """Minimise ``objective(alphas)`` over u = log(α − 1); return (value at α*, α*)."""
    u_lo, u_hi = _order_range(min_order, max_order)

    def obj(us):
        return objective(1.0 + np.exp(us))

    u, _ = _minimise_over_u(obj, u_lo, u_hi)
    alpha = 1.0 + math.exp(u)
    return float(objective(np.array([alpha]))[0]), alpha


def _bound(value, order, source, conversion, **details) -> Bound:
    """An UPPER :class:`Bound` of a conversion, with the order it was taken at."""
    return Bound(
        value,
        BoundKind.UPPER,
        source=f"{source} ({conversion} RDP conversion)",
        details={"order": order, "conversion": conversion, **details},
    )


def curve_epsilon(
    rdp_fn: Callable,
    *,
    delta,
    conversion="improved",
    min_order=None,
    max_order=None,
) -> Bound:
    """Smallest certified ε of a Rényi curve over continuous orders: an UPPER :class:`Bound`.

    ``rdp_fn`` maps an array of orders α > 1 to an array of upper bounds ρ(α) on
    max(D_α(P‖Q), D_α(Q‖P)) (+inf allowed, never NaN). The order is searched over
    α − 1 ∈ [1e-4, 1e7] (or [min_order, max_order]) on a logarithmic grid, refined by Brent;
    the returned ε is recomputed at the returned order and rounded up [UPPER at every order,
    so the optimiser affects tightness only]. ``float(b)`` is ε, ``b.order`` the order used
    (``b.details`` also holds ``conversion`` and ``delta``). If ρ is +inf everywhere, the value
    is inf at the smallest searched order.
    """
    conversion = _check_conversion(conversion)
    ld = math.log(v.check_delta(delta))

    def objective(alphas):
        eps = _eps_formula(alphas, _evaluate_curve(rdp_fn, alphas), ld, conversion)
        return _round_up(eps)

    eps, order = _optimise_order(objective, min_order, max_order)
    return _bound(eps, order, "curve_epsilon", conversion, delta=math.exp(ld))


def curve_log_delta(
    rdp_fn: Callable,
    *,
    epsilon,
    conversion="improved",
    min_order=None,
    max_order=None,
) -> Bound:
    """Smallest certified log δ at ``epsilon`` over continuous orders: an UPPER :class:`Bound`
    whose value is log δ (``b.order``: the order used; ``b.details["epsilon"]``: ε)."""
    conversion = _check_conversion(conversion)
    e = v.check_epsilon(epsilon)

    def objective(alphas):
        return _log_delta_formula(alphas, _evaluate_curve(rdp_fn, alphas), e, conversion)

    ld, order = _optimise_order(objective, min_order, max_order)
    return _bound(ld, order, "curve_log_delta", conversion, epsilon=e)


def linear_epsilon(coefficient, *, delta, conversion="improved") -> Bound:
    """Certified ε (UPPER :class:`Bound`) of the linear curve ρ(α) = a·α, at its optimal order.

    Mironov: closed form ε = a + 2√(aL) at α* = 1 + √(L/a), L = log(1/δ).
    Improved: continuous 1-D minimisation. a = 0 gives ε = 0 with order None.
    Valid for every Gaussian mechanism (a = μ²/2) and every shifted-Rényi (PABI) bound.
    """
    a = v.check_nonnegative("coefficient", coefficient)
    conversion = _check_conversion(conversion)
    d = v.check_delta(delta)
    if a == 0.0:
        return _bound(0.0, None, "linear_epsilon", conversion, delta=d, coefficient=a)
    L = -math.log(d)
    if conversion == "mironov":
        alpha = 1.0 + math.sqrt(L / a)
        eps = float(_round_up(_eps_formula(alpha, a * alpha, -L, "mironov")))
        return _bound(eps, alpha, "linear_epsilon", conversion, delta=d, coefficient=a)

    def curve(al):
        with np.errstate(over="ignore"):  # a·α = +inf past float range: a valid upper bound
            return a * al

    b = curve_epsilon(curve, delta=d, conversion=conversion)
    return _bound(b.value, b.order, "linear_epsilon", conversion, delta=d, coefficient=a)


def linear_log_delta(coefficient, *, epsilon, conversion="improved") -> Bound:
    """Certified log δ (UPPER :class:`Bound`, value log δ) at ``epsilon`` of ρ(α) = a·α.

    a = 0 gives log δ = −inf with order None."""
    a = v.check_nonnegative("coefficient", coefficient)
    if a == 0.0:
        e = v.check_epsilon(epsilon)
        conversion = _check_conversion(conversion)
        return _bound(-math.inf, None, "linear_log_delta", conversion, epsilon=e, coefficient=a)

    def curve(al):
        with np.errstate(over="ignore"):  # a·α = +inf past float range: a valid upper bound
            return a * al

    b = curve_log_delta(curve, epsilon=epsilon, conversion=conversion)
    conv, e = b.details["conversion"], b.details["epsilon"]
    return _bound(b.value, b.order, "linear_log_delta", conv, epsilon=e, coefficient=a)


def _coefficient_at_order(alpha, eps, log_delta, conversion):
    """Largest a with ε(α; a·α) ≤ eps at the fixed order alpha (can be negative)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    am1 = alpha - 1.0
    if conversion == "mironov":
        slack = eps + log_delta / am1
    else:
        slack = eps - np.log1p(-1.0 / alpha) + (log_delta + np.log(alpha)) / am1
    return slack / alpha


def max_linear_coefficient(*, epsilon, delta, conversion="improved") -> float:
    """Largest a whose linear curve α ↦ a·α certifies (ε, δ) — FEASIBLE side.

    a_max = max_α a(α), with a(α) the largest coefficient certified at the fixed order α
    (closed form from the conversion formula). Mironov gives a_max = (√(L+ε) − √L)², L =
    log(1/δ); the improved conversion is always at least that. The returned a is shrunk by a
    relative 2e-12 and then stepped down (relative 1e-12 per step) until the forward check
    ``float(linear_epsilon(a, delta=δ, conversion=...)) ≤ ε`` holds — the same conversion, at the
    order :func:`linear_epsilon` itself picks. Raises NumericalPrecisionError where a
    underflows float64 (ε tiny against log(1/δ)), where the improved optimum lies beyond the
    searched orders (α − 1 ≤ 1e7), or where the check cannot be met.
    """
    e = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    conversion = _check_conversion(conversion)
    ld = math.log(d)
    L = -ld
    if conversion == "mironov":
        a = e * e / (math.sqrt(L + e) + math.sqrt(L)) ** 2
    else:

        def obj(us):
            return -_coefficient_at_order(1.0 + np.exp(us), e, ld, conversion)

        _, neg = _minimise_over_u(obj, _U_MIN, _U_MAX)
        a = -neg
    a *= 1.0 - 2e-12
    if not (a > 0.0 and math.isfinite(a)):
        raise NumericalPrecisionError(
            f"no positive float64 coefficient certifies epsilon={e!r}, delta={d!r} "
            f"({conversion}): it underflows, or its optimal order lies beyond the searched "
            f"alpha - 1 <= {math.exp(_U_MAX):.3g}"
        )
    for _ in range(200):  # feasible side: re-check through linear_epsilon itself
        got = float(linear_epsilon(a, delta=d, conversion=conversion))
        if got <= e:
            return a
        if not math.isfinite(got):  # a·α* overflows: a smaller a cannot be evaluated either
            break
        a = min(a * (1.0 - 1e-12), math.nextafter(a, 0.0))
        if not a > 0.0:
            break
    raise NumericalPrecisionError(
        f"could not land max_linear_coefficient on the feasible side for epsilon={e!r}, "
        f"delta={d!r} ({conversion})"
    )
