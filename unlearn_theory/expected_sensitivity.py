r"""Gaussian release with a sensitivity bounded in expectation (docs/declared_assumptions.md §3).

Setting. The unlearned parameters θ_U and the retrained ones θ_R are random (mini-batch order,
sampling) and admit a coupling with

    E‖θ_U − θ_R‖ ≤ Δ̄   (equivalently W1(law θ_U, law θ_R) ≤ Δ̄),

optionally also ‖θ_U − θ_R‖ ≤ M almost surely (for instance M = 2C0 after a projection onto the
C0 ball). This is the kind of sensitivity proved for stochastic descent-to-delete and
rewind-to-delete by Mu & Klabjan 2025 ("Descend or Rewind? Stochastic Gradient Descent
Unlearning", arXiv 2511.15983, a sensitivity bound "that holds in expectation"); the library takes
Δ̄ as a declared number and does not re-derive it. The release is θ + N(0, σ²I) with fresh noise.

Bound [UPPER on δ, both directions; tight as a function of (Δ̄, M, σ)]. Write D = ‖θ_U − θ_R‖ and
θ_ε(r) = δ_Gauss(ε; mu = r). Joint convexity of the hockey-stick divergence over the coupling
gives E_{e^ε}(law(θ_U + Z) ‖ law(θ_R + Z)) ≤ E[θ_ε(D/σ)], and the worst law of D with
E D ≤ Δ̄, D ≤ M gives

    δ(ε) = ĝ_ε(x; m) = x · max_{r ∈ [x, m]} θ_ε(r)/r,    x = Δ̄/σ,  m = M/σ (∞ if none),

the least concave majorant of θ_ε on [0, m] at x (θ_ε is convex on [0, √(2ε)] and concave after,
so θ_ε(r)/r is unimodal with its maximum at the tangent point r* solving r·φ(r/2 − ε/r) = θ_ε(r)).
The bound is attained in the limit by two worlds made of far-apart point masses, a fraction
x/r* of which differ by r*·σ: nothing smaller follows from (Δ̄, M) alone. This is a guarantee on
the output laws, not "in expectation": the expectation is over the algorithm's internal
randomness, which the certificate already integrates. If Δ̄ was computed from the data at hand
the guarantee is per-instance (the noise level then depends on the data; docs/theory.md §10.1).

Numerics: θ via :func:`unlearn_theory.gaussian.log_delta` (rounded upward); r* is bracketed, and
the maximum over the bracket is bounded above by θ(r_hi)/r_lo, so every value is an upper bound.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as v
from . import gaussian
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "log_delta",
    "delta",
    "epsilon",
    "noise_std",
    "tangent_point",
    "markov_log_delta",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_theta(eps: float, r: float) -> float:
    return float(gaussian.log_delta(eps, mu=r))


def _slope_sign(eps: float, r: float) -> float:
    """g(r) = log r + log φ(r/2 − ε/r) − log θ_ε(r): > 0 where θ/r increases, < 0 past r*."""
    a = 0.5 * r - eps / r
    return math.log(r) - 0.5 * a * a - _LOG_SQRT_2PI - _log_theta(eps, r)


def tangent_point(epsilon) -> tuple[float, float]:
    """Bracket (r_lo, r_hi) of the maximiser r* of θ_ε(r)/r (ε > 0), with g(r_lo) > 0 > g(r_hi)
    verified by a margin far above g's rounding error. θ/r increases on (0, r_lo], decreases on
    [r_hi, ∞). Relative width about 1e-6."""
    eps = v.check_positive("epsilon", epsilon)
    lo = math.sqrt(2.0 * eps)  # inflection point of θ_ε: g > 0 on (0, √(2ε)]
    hi = 2.0 * lo
    for _ in range(200):
        if _slope_sign(eps, hi) < 0.0:
            break
        lo, hi = hi, hi * 2.0
    else:  # pragma: no cover - θ/r → 0 as r → ∞
        raise NumericalPrecisionError(f"no tangent point found for epsilon={eps}")
    for _ in range(200):  # bisection in log r
        mid = math.sqrt(lo * hi)
        if _slope_sign(eps, mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1.0 < 1e-9:
            break
    for width in (1e-6, 1e-4, 1e-2):
        r_lo, r_hi = lo * (1.0 - width), hi * (1.0 + width)
        if _slope_sign(eps, r_lo) > 1e-9 and _slope_sign(eps, r_hi) < -1e-9:
            return r_lo, r_hi
    raise NumericalPrecisionError(  # only where g is flat to rounding (ε → 0)
        f"could not bracket the tangent point of theta at epsilon={eps}"
    )


def _check(expected_mu, max_mu):
    x = v.check_positive("expected_mu", expected_mu)
    m = math.inf if max_mu is None else v.check_positive("max_mu", max_mu)
    return min(x, m), m


def _log_majorant(eps: float, x: float, m: float) -> float:
    """log ĝ_ε(x; m) rounded upward (x ≤ m, x > 0)."""
    if eps == 0.0:  # θ_0(r) = 2Φ(r/2) − 1 is concave: ĝ = θ_0
        return _log_theta(0.0, x)
    try:
        r_lo, r_hi = tangent_point(eps)
    except NumericalPrecisionError:
        # r* not resolvable in float64 (ε → 0): θ_ε ≤ θ_0, which is concave, so ĝ_ε ≤ θ_0(x)
        return _log_theta(0.0, x)
    if m <= r_lo:  # θ/r increasing on [x, m]: the chord to m
        log_ratio = _log_theta(eps, m) - math.log(m)
    elif x >= r_hi:  # decreasing on [x, m]: ĝ = θ(x)
        return _log_theta(eps, x)
    else:  # max over [x, m] ≤ θ(min(r_hi, m)) / max(r_lo, x)
        log_ratio = _log_theta(eps, min(r_hi, m)) - math.log(max(r_lo, x))
    out = math.log(x) + log_ratio
    return min(out + 1e-15 * abs(out) + 1e-15, 0.0)


def log_delta(epsilon, *, expected_mu, max_mu=None) -> float:
    r"""log δ(ε) = log ĝ_ε(x; m), x = Δ̄/σ (``expected_mu``), m = M/σ (``max_mu``) [UPPER].

    Both directions; tight given (x, m) (module docstring). Domain: ε ≥ 0, expected_mu > 0,
    max_mu > 0 or None; expected_mu > max_mu is read as max_mu (E D ≤ M when D ≤ M).
    Reference: joint convexity of E_γ (an f-divergence, f(t) = (t − γ)₊); Gaussian profile:
    Balle & Wang 2018, arXiv 1805.06530, Thm 8; the setting: Mu & Klabjan 2025, arXiv
    2511.15983. Proof: docs/declared_assumptions.md §3.
    """
    eps = v.check_epsilon(epsilon)
    x, m = _check(expected_mu, max_mu)
    return _log_majorant(eps, x, m)


def delta(epsilon, *, expected_mu, max_mu=None) -> float:
    """δ(ε) = exp(:func:`log_delta`) [UPPER], never rounded to 0."""
    from ._logspace import exp_upper

    return float(exp_upper(log_delta(epsilon, expected_mu=expected_mu, max_mu=max_mu)))


def epsilon(delta, *, expected_mu, max_mu=None, rtol: float = 1e-10) -> float:
    """Smallest ε (to relative ``rtol``, feasible side) with ĝ_ε(x; m) ≤ delta [UPPER on ε].

    ĝ_ε decreases in ε (θ_ε(r) does for every r), so bisection applies; the returned ε was
    evaluated and certifies. Returns 0.0 when ε = 0 already does."""
    d = v.check_delta(delta)
    x, m = _check(expected_mu, max_mu)
    log_t = math.log(d)

    def ok(e: float) -> bool:
        return _log_majorant(e, x, m) <= log_t

    if ok(0.0):
        return 0.0
    hi = 1.0
    for _ in range(1100):
        if ok(hi):
            break
        hi *= 2.0
        if not math.isfinite(hi):
            break
    else:  # pragma: no cover
        hi = math.inf
    if not (math.isfinite(hi) and ok(hi)):
        raise NumericalPrecisionError(f"no finite epsilon certifies delta={d} (x={x}, m={m})")
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def noise_std(*, epsilon, delta, expected_sensitivity, max_sensitivity=None, rtol=1e-9) -> float:
    """Smallest σ (to relative ``rtol``, feasible side) with ĝ_ε(Δ̄/σ; M/σ) ≤ delta.

    ĝ increases with 1/σ at a fixed ratio Δ̄/M (module docstring), so bisection on log σ applies;
    the returned σ was evaluated and certifies. With M given, σ ≤ M/mu(ε, δ) (the worst-case
    Gaussian calibration, which the majorant never exceeds)."""
    eps = v.check_epsilon(epsilon)
    d = v.check_delta(delta)
    dbar = v.check_positive("expected_sensitivity", expected_sensitivity)
    big = None if max_sensitivity is None else v.check_positive("max_sensitivity", max_sensitivity)
    log_t = math.log(d)

    def ok(s: float) -> bool:
        m = math.inf if big is None else big / s
        return _log_majorant(eps, min(dbar / s, m), m) <= log_t

    if big is not None:
        hi = big / float(gaussian.mu(epsilon=eps, delta=d)) * (1.0 + 1e-12)
    else:
        hi = dbar / float(gaussian.mu(epsilon=eps, delta=d))
    for _ in range(2000):
        if ok(hi):
            break
        hi *= 2.0
    else:  # pragma: no cover
        raise NumericalPrecisionError("no noise_std certifies the target")
    lo = hi / 2.0
    while ok(lo):
        hi, lo = lo, lo / 2.0
        if lo < 1e-300:  # pragma: no cover
            return hi
    while hi / lo - 1.0 > rtol:
        mid = math.sqrt(lo * hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def markov_log_delta(epsilon, *, expected_mu) -> float:
    """Comparison only: the Markov route min_t [θ_ε(t) + x/t] (P(D > tσ) ≤ Δ̄/(tσ), then the
    Gaussian bound on the good event; docs/theory.md §11.5 coupling lemma) [UPPER, looser than
    :func:`log_delta` by construction]. Minimised on a grid (any t is valid)."""
    eps = v.check_epsilon(epsilon)
    x = v.check_positive("expected_mu", expected_mu)
    ts = x * np.logspace(0, 6, 600)
    vals = [np.logaddexp(_log_theta(eps, float(t)), math.log(x / t)) for t in ts]
    out = float(min(vals))
    if not math.isfinite(out):
        raise InvalidParameterError("expected_mu", expected_mu, "gives a non-finite bound")
    return min(out, 0.0)
