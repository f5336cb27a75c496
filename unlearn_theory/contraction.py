r"""Hockey-stick contraction coefficients and the model-clipping δ-recursion (docs/theory.md §5).

Everything is in log space: δ_t drops below 1e-300 after a handful of steps, so the recursion
runs on log δ_t and θ is evaluated through :func:`unlearn_theory.gaussian.log_delta` (log_ndtr /
erfcx branches, finite far beyond float64 underflow).

θ function [EXACT]
    θ_ε(r) = E_{e^ε}(N(0, I) ‖ N(r·e1, I)) = δ_Gauss(ε; mu=r) = Φ(r/2 − ε/r) − e^ε Φ(−r/2 − ε/r).

Contraction coefficient of a Gaussian kernel whose means lie in a set of diameter D [UPPER]
    η_{e^ε}(K) ≤ θ_ε(D/σ)   (Dobrushin-type formula; Asoodeh, Diaz & Calmon 2020, arXiv
    2012.11035, Thm 2, with equality when two means are D apart).

Refined δ-recursion [UPPER on δ; derived in docs/theory.md §5.3, re-derived in docs/optimal_steps.md]
    For any kernel K, γ ≥ 1 and E = E_γ(μ‖ν) > 0:
        E_γ(μK‖νK) ≤ E·η_{γ'}(K),   γ' = 1 + (γ − 1)/E.
    Model clipping (Koloskova et al. 2025, arXiv 2506.06985, eq. (4)):
        x_0 = Π_{C0}(x̂) + N(0, σ0² I) (σ0 optional),
        x_{t+1} = Π_{C2}(x_t − γ(g_t + λ x_t)) + N(0, σ² I),
    gives
        δ_0 = θ_ε(2C0/σ0) if σ0 > 0 else 1,
        ε̃_t = log(1 + (e^ε − 1)/δ_t),   δ_{t+1} = δ_t·θ_{ε̃_t}(2C2/σ),
    and after T steps both directions are (ε, δ_T)-indistinguishable. g(E) = E·θ_{log(1+(γ−1)/E)}(r)
    is non-decreasing in E, so feeding an upper bound δ_t keeps δ_{t+1} an upper bound. No
    smoothness or convexity is needed; learning_rate and weight_decay do not enter.

For comparison only (valid, looser): the plain per-step bound δ_{t+1} = δ_t·θ_ε(r) (the paper's
statement (ε, θ_ε(r)^T δ_0)) and the total-variation (Dobrushin) bound δ_{t+1} = δ_t·θ_0(r).

Rounding: every log δ_t the recursion returns is inflated by a relative margin that exceeds the
accumulated float64 error of the log-space evaluation (``_LOG_MARGIN`` per step), so certified
numbers only err towards more privacy loss.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from . import _validate as v
from . import gaussian
from ._logspace import exp_upper, log_expm1
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "log_theta",
    "theta",
    "log_contraction_coefficient",
    "model_clipping_log_deltas",
    "model_clipping_log_delta",
    "model_clipping_delta",
    "model_clipping_epsilon",
    "model_clipping_steps",
    "model_clipping_noise_std",
    "plain_log_deltas",
    "total_variation_log_deltas",
]

# Relative safety margin added to each log δ_t (absolute floor 1e-12 nats): far above the
# few-ulp error of gaussian.log_delta, far below anything that moves a plan.
_LOG_MARGIN = 1e-11
_MAX_STEPS_DEFAULT = 100_000
# Root searches (never certified values) clamp log δ at this floor so that the searched function
# stays finite; every certified value is checked separately.
_LOG_FLOOR = -1e6
# The only floor of certified values: the most negative double. Raising a log δ that would
# underflow to −inf up to it is sound (δ_t only grows), and the refined and plain recursions share
# it, so "refined ≤ plain" holds at every step, for every δ (no artificial floor at −1e6).
_LOG_MIN = -float(np.finfo(np.float64).max)


def log_theta(epsilon, r):
    """log θ_ε(r) = log δ_Gauss(ε; mu=r) [EXACT], vectorised; -inf where r == 0.

    Validity: ε ≥ 0 (finite), r ≥ 0 (finite). Finite wherever θ > 0, even far below 1e-308.
    Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8 (exact Gaussian profile).
    """
    eps = v.as_float_array("epsilon", epsilon)
    rr = v.as_float_array("r", r)
    if np.any(eps < 0):
        raise InvalidParameterError("epsilon", epsilon, "must be >= 0")
    if np.any(rr < 0):
        raise InvalidParameterError("r", r, "must be >= 0")
    eps, rr = np.broadcast_arrays(eps, rr)
    out = np.full(eps.shape, -np.inf)
    pos = rr > 0
    if np.any(pos):
        out[pos] = np.asarray(gaussian.log_delta(eps[pos], mu=rr[pos]), dtype=np.float64)
    return out[()] if out.ndim == 0 else out


def theta(epsilon, r):
    """θ_ε(r) = E_{e^ε}(N(0,I) ‖ N(r e1, I)) [EXACT]; see :func:`log_theta`."""
    return np.exp(log_theta(epsilon, r))


def _log_theta_scalar(eps: float, r: float) -> float:
    if r <= 0.0:
        return -math.inf
    try:
        out = float(gaussian.log_delta(eps, mu=r))
    except NumericalPrecisionError:
        out = math.nan
    if not math.isfinite(out):
        # Far tail: θ_ε(r) ≤ Φ(r/2 − ε/r) ≤ ½·exp(−x²/2) with x = ε/r − r/2 > 0 (Chernoff),
        # an UPPER bound, hence sound to use in the recursion.
        x = eps / r - r / 2.0
        if x <= 0.0:  # pragma: no cover - gaussian.log_delta is finite here
            return 0.0
        out = -0.5 * x * x - math.log(2.0)
    # −x²/2 can overflow to −inf: log θ < −max double there, so the most negative double is
    # still an upper bound (and keeps every later sum finite)
    return min(max(out, _LOG_MIN), 0.0)


def _log_theta_upper(eps: float, r: float) -> float:
    """Finite UPPER bound on log θ_ε(r) for ε ≥ 0 possibly +inf (θ_∞ = 0), r > 0."""
    if not math.isfinite(eps):
        return _LOG_MIN
    return _log_theta_scalar(eps, r)


def log_contraction_coefficient(epsilon, *, diameter, noise_std) -> float:
    """log of the UPPER bound θ_ε(D/σ) on η_{e^ε}(K) for K(x) = N(m(x), σ²I), diam{m(x)} ≤ D.

    Asoodeh, Diaz & Calmon 2020 (arXiv 2012.11035, Thm 2): η_γ(K) = sup_{x,x'} E_γ(K_x‖K_x'),
    which for Gaussians with means at distance ≤ D is θ_{log γ}(D/σ) (attained at distance D).
    """
    eps = v.check_epsilon(epsilon)
    d = v.check_nonnegative("diameter", diameter)
    s = v.check_positive("noise_std", noise_std)
    return _log_theta_scalar(eps, d / s)


def _check_model_clipping(epsilon, clip_initial, clip_model, noise_std, initial_noise_std):
    eps = v.check_epsilon(epsilon)
    c0 = v.check_positive("clip_initial", clip_initial)
    c2 = v.check_positive("clip_model", clip_model)
    s = v.check_positive("noise_std", noise_std)
    s0 = None
    if initial_noise_std is not None:
        s0 = v.check_nonnegative("initial_noise_std", initial_noise_std)
        if s0 == 0.0:
            s0 = None
    return eps, c0, c2, s, s0


def _initial_log_delta(eps: float, c0: float, s0: float | None) -> float:
    if s0 is None:
        return 0.0
    return max(_log_theta_scalar(eps, 2.0 * c0 / s0), _LOG_MIN)


def _margin(x: float) -> float:
    return _LOG_MARGIN * abs(x) + 1e-12


def _refined_step(log_e: float, eps: float, log_em1: float, r: float) -> float:
    """One refined step: log δ_{t+1} from log δ_t (UPPER; rounded upward; finite)."""
    log_e = float(log_e)
    # ε̃ = log(1 + (e^ε − 1)/δ_t) = logaddexp(0, log(e^ε − 1) − log δ_t); +inf when that
    # overflows (θ_∞ = 0, handled by _log_theta_upper)
    with np.errstate(over="ignore"):
        eps_t = float(np.logaddexp(0.0, log_em1 - log_e)) if math.isfinite(log_em1) else 0.0
    eps_t = max(eps_t, eps)  # ε̃ ≥ ε always (δ_t ≤ 1); never let rounding push it below
    nxt = max(log_e + _log_theta_upper(eps_t, r), _LOG_MIN)  # raising to _LOG_MIN is sound
    # θ ≤ 1, so δ_{t+1} ≤ δ_t: never let the rounding margin make the bound grow.
    return min(nxt + _margin(nxt), log_e)


def _plain_per_step(eps: float, r: float) -> float:
    """log θ_ε(r) rounded upward (the plain bound's per-step factor), finite, ≤ 0."""
    lt = _log_theta_scalar(eps, r)
    return min(lt + _margin(lt), 0.0)


def _plain_sequence(log_d0: float, lt: float, steps: int) -> np.ndarray:
    """log δ_0 + t·lt for t = 0..steps, raised to _LOG_MIN where the product overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        seq = log_d0 + lt * np.arange(steps + 1, dtype=np.float64)
    return np.maximum(np.nan_to_num(seq, nan=_LOG_MIN, neginf=_LOG_MIN), _LOG_MIN)


def model_clipping_log_deltas(
    *, epsilon, clip_initial, clip_model, noise_std, steps, initial_noise_std=None
) -> np.ndarray:
    """log δ_t for t = 0..steps of the refined recursion (docs/theory.md §5.3) [UPPER on δ].

    Returns an array of length ``steps + 1``; entry t certifies (ε, δ_t) after t noisy steps, in
    both directions. ``initial_noise_std`` (σ0) is the optional noise after the initial
    projection; None or 0 means none (δ_0 = 1).
    """
    eps, c0, c2, s, s0 = _check_model_clipping(
        epsilon, clip_initial, clip_model, noise_std, initial_noise_std
    )
    steps = v.check_int("steps", steps, minimum=0)
    log_em1 = float(log_expm1(eps)) if eps > 0 else -math.inf
    r = 2.0 * c2 / s
    out = np.empty(steps + 1)
    out[0] = _initial_log_delta(eps, c0, s0)
    # the plain bound is valid too: each step keeps the smaller of the two (so refined ≤ plain
    # holds exactly, float for float, at every step and every δ)
    plain = _plain_sequence(out[0], _plain_per_step(eps, r), steps)
    for t in range(steps):
        out[t + 1] = min(_refined_step(out[t], eps, log_em1, r), plain[t + 1])
    return out


def model_clipping_log_delta(
    *, epsilon, clip_initial, clip_model, noise_std, steps, initial_noise_std=None
) -> float:
    """log δ_T after ``steps`` refined steps [UPPER]; see :func:`model_clipping_log_deltas`."""
    return float(
        model_clipping_log_deltas(
            epsilon=epsilon,
            clip_initial=clip_initial,
            clip_model=clip_model,
            noise_std=noise_std,
            steps=steps,
            initial_noise_std=initial_noise_std,
        )[-1]
    )


def model_clipping_delta(
    *, epsilon, clip_initial, clip_model, noise_std, steps, initial_noise_std=None
) -> float:
    """δ_T = exp(log δ_T) [UPPER]. Where exp underflows, returns the smallest positive float
    (still an upper bound, never a silent 0); use the log form to certify small δ."""
    ld = model_clipping_log_delta(
        epsilon=epsilon,
        clip_initial=clip_initial,
        clip_model=clip_model,
        noise_std=noise_std,
        steps=steps,
        initial_noise_std=initial_noise_std,
    )
    return float(exp_upper(ld))


def plain_log_deltas(
    *, epsilon, clip_initial, clip_model, noise_std, steps, initial_noise_std=None
) -> np.ndarray:
    """Plain per-step bound log δ_t = log δ_0 + t·log θ_ε(2C2/σ) [UPPER; looser than refined].

    This is the form (ε, θ_ε(2C2/σ)^T·δ_0) stated by Koloskova et al. 2025 (arXiv 2506.06985,
    model clipping theorem [2nd]); used by paper mode and for comparison.
    """
    eps, c0, c2, s, s0 = _check_model_clipping(
        epsilon, clip_initial, clip_model, noise_std, initial_noise_std
    )
    steps = v.check_int("steps", steps, minimum=0)
    return _plain_sequence(
        _initial_log_delta(eps, c0, s0), _plain_per_step(eps, 2.0 * c2 / s), steps
    )


def total_variation_log_deltas(
    *, epsilon, clip_initial, clip_model, noise_std, steps, initial_noise_std=None
) -> np.ndarray:
    """Dobrushin (total-variation) bound log δ_t = log δ_0 + t·log θ_0(2C2/σ) [UPPER; loosest].

    Uses η_γ(K) ≤ η_TV(K) = θ_0(D/σ) = 2Φ(D/(2σ)) − 1 for every γ ≥ 1.
    """
    eps, c0, c2, s, s0 = _check_model_clipping(
        epsilon, clip_initial, clip_model, noise_std, initial_noise_std
    )
    steps = v.check_int("steps", steps, minimum=0)
    return _plain_sequence(
        _initial_log_delta(eps, c0, s0), _plain_per_step(0.0, 2.0 * c2 / s), steps
    )


def model_clipping_steps(
    *,
    epsilon,
    delta,
    clip_initial,
    clip_model,
    noise_std,
    initial_noise_std=None,
    max_steps=_MAX_STEPS_DEFAULT,
    refined: bool = True,
) -> int:
    """Fewest T ≥ 0 with δ_T ≤ delta under the refined recursion (or the plain one).

    Raises InvalidParameterError naming ``noise_std`` when no T ≤ ``max_steps`` certifies.
    """
    eps, c0, c2, s, s0 = _check_model_clipping(
        epsilon, clip_initial, clip_model, noise_std, initial_noise_std
    )
    delta = v.check_delta(delta)
    max_steps = v.check_int("max_steps", max_steps, minimum=0)
    log_target = math.log(delta)
    log_e = _initial_log_delta(eps, c0, s0)
    if log_e <= log_target:
        return 0
    r = 2.0 * c2 / s
    log_em1 = float(log_expm1(eps)) if eps > 0 else -math.inf
    plain = _plain_per_step(eps, r)
    if plain >= 0.0 or not math.isfinite(log_e):
        raise InvalidParameterError(
            "noise_std", noise_std, "too small: the per-step contraction is numerically 1"
        )
    log_d0 = log_e
    for t in range(1, max_steps + 1):
        plain_t = max(log_d0 + plain * t, _LOG_MIN)  # as in plain_log_deltas
        log_e = min(_refined_step(log_e, eps, log_em1, r), plain_t) if refined else plain_t
        if log_e <= log_target:
            return t
    raise InvalidParameterError(
        "noise_std",
        noise_std,
        f"too small: no steps <= max_steps={max_steps} certify (epsilon={eps}, delta={delta})",
    )


def model_clipping_noise_std(
    *,
    epsilon,
    delta,
    steps,
    clip_initial,
    clip_model,
    initial_noise_std=None,
    refined: bool = True,
    rtol: float = 1e-7,
) -> float:
    """Smallest noise_std (to relative ``rtol``, feasible side) with δ_T ≤ delta at T = ``steps``.

    δ_T is non-increasing in σ (θ is increasing in r = 2C2/σ, and the recursion is monotone in
    its input), so a bracketed root search on log σ applies (Brent, then a step to the feasible
    side); the returned σ was evaluated and certifies.
    """
    eps = v.check_epsilon(epsilon)
    delta = v.check_delta(delta)
    steps = v.check_int("steps", steps, minimum=1)
    c0 = v.check_positive("clip_initial", clip_initial)
    c2 = v.check_positive("clip_model", clip_model)
    if initial_noise_std is not None:
        v.check_nonnegative("initial_noise_std", initial_noise_std)
    rtol = v.check_in_range("rtol", rtol, 0.0, 1.0)
    log_target = math.log(delta)
    fn = model_clipping_log_deltas if refined else plain_log_deltas
    s0 = v.check_nonnegative("initial_noise_std", initial_noise_std) if initial_noise_std else None
    if _initial_log_delta(eps, c0, s0) <= log_target:
        raise InvalidParameterError(
            "initial_noise_std",
            initial_noise_std,
            "already certifies (epsilon, delta) with no noisy step: any noise_std works "
            "(give noise_std to plan the steps, or use fewer steps)",
        )

    final = _final_log_delta(fn, c0, c2, steps, initial_noise_std)

    def ok(s: float) -> bool:
        return final(eps, s) <= log_target

    def f(u: float) -> float:  # decreasing in u = log σ; root = smallest certifying σ
        return max(float(final(eps, math.exp(u))), _LOG_FLOOR) - log_target

    guess = _plain_noise_std_guess(eps, log_target, steps, c0, c2, initial_noise_std)
    hi = 2.0 * c2
    if guess is not None:
        for i in range(4):
            if ok(guess):
                if not refined:
                    return guess  # the plain bound's inverse, evaluated on the feasible side
                hi = guess
                break
            guess *= 1.0 + 1e-8 * 10.0**i
    n = 0
    while not ok(hi):
        hi *= 2.0
        n += 1
        if n > 200:
            raise NumericalPrecisionError(
                f"no noise_std certifies epsilon={eps}, delta={delta} in {steps} steps "
                "(the initial term alone may exceed delta: add steps or initial noise)"
            )
    lo = hi / 2.0
    while ok(lo):
        hi, lo = lo, lo / 2.0
        if lo < 1e-30 * c2:  # pragma: no cover - δ_0 > δ makes a tiny σ fail
            return hi
    return _land_feasible(f, math.log(lo), math.log(hi), rtol, lambda u: ok(math.exp(u)), math.exp)


def _final_log_delta(fn, c0, c2, steps, initial_noise_std):
    """(ε, σ) ↦ log δ_T of the recursion ``fn`` for the fixed radii, steps and σ0."""

    def final(e: float, s: float) -> float:
        return fn(
            epsilon=e,
            clip_initial=c0,
            clip_model=c2,
            noise_std=s,
            steps=steps,
            initial_noise_std=initial_noise_std,
        )[-1]

    return final


def _plain_noise_std_guess(eps, log_target, steps, c0, c2, initial_noise_std):
    """σ solving the plain bound log δ_0 + T·log θ_ε(2C2/σ) = log δ exactly (one Gaussian
    calibration, :func:`unlearn_theory.gaussian.mu`), nudged up by 1e-9; the refined recursion
    needs no more noise. None when undefined (δ_0 ≤ δ already, or μ not computable)."""
    s0 = initial_noise_std if initial_noise_std else None
    log_d0 = _initial_log_delta(eps, c0, s0)
    per_step = (log_target - log_d0) / steps
    if not (per_step < 0.0) or per_step < -700.0:
        return None
    try:
        mu = float(gaussian.mu(epsilon=eps, delta=math.exp(per_step)))
    except (InvalidParameterError, NumericalPrecisionError):
        return None
    if not (mu > 0.0 and math.isfinite(mu)):
        return None
    return 2.0 * c2 / mu * (1.0 + 1e-9)


def _land_feasible(f, lo, hi, rtol, ok, transform):
    """Brent root of the monotone ``f`` on [lo, hi] (f(lo) > 0 ≥ f(hi)), then step to the
    feasible side: returns transform(x) for the smallest evaluated x with ok(x), within about
    ``rtol`` (relative in transform(x)) of the threshold. The returned value WAS evaluated."""
    if hi - lo > rtol / 4.0:
        try:
            x = brentq(f, lo, hi, xtol=rtol / 8.0, rtol=4 * np.finfo(float).eps, maxiter=200)
        except (ValueError, RuntimeError):  # pragma: no cover - bracket guaranteed by callers
            x = hi
        x = min(x + rtol / 4.0, hi)
        step = rtol / 4.0
        while x < hi and not ok(x):
            x = min(x + step, hi)
            step *= 2.0
    else:
        x = hi
    return transform(x)


def model_clipping_epsilon(
    *,
    delta,
    clip_initial,
    clip_model,
    noise_std,
    steps,
    initial_noise_std=None,
    refined: bool = True,
    rtol: float = 1e-9,
    epsilon_hint=None,
) -> float:
    """Smallest ε (to relative ``rtol``, feasible side) with δ_T(ε) ≤ delta [UPPER on ε].

    δ_T(ε) is non-increasing in ε (θ_ε decreases in ε and ε̃_t increases with ε), so a bracketed
    root search applies (Brent on the monotone log δ_T(ε) − log δ, then a step to the feasible
    side); the returned ε was evaluated and certifies. Returns 0.0 when ε = 0 already does.
    ``epsilon_hint``: optional starting point of the bracket search (e.g. a target ε).
    """
    delta = v.check_delta(delta)
    c0 = v.check_positive("clip_initial", clip_initial)
    c2 = v.check_positive("clip_model", clip_model)
    s = v.check_positive("noise_std", noise_std)
    steps = v.check_int("steps", steps, minimum=0)
    log_target = math.log(delta)
    fn = model_clipping_log_deltas if refined else plain_log_deltas

    final = _final_log_delta(fn, c0, c2, steps, initial_noise_std)

    def ok(e: float) -> bool:
        return final(e, s) <= log_target

    if ok(0.0):
        return 0.0

    def f(e: float) -> float:  # decreasing in ε
        return max(float(final(e, s)), _LOG_FLOOR) - log_target

    hi = 1.0 if epsilon_hint is None else v.check_positive("epsilon_hint", epsilon_hint)
    n = 0
    while not ok(hi):
        hi *= 2.0
        n += 1
        if n > 60:
            raise NumericalPrecisionError(
                f"no finite epsilon certifies delta={delta} (steps={steps}, noise_std={s}); "
                "with steps=0 and no initial noise delta_0 = 1"
            )
    lo = 0.0
    while hi > 1e-12:
        if not ok(hi / 4.0):
            lo = hi / 4.0
            break
        hi = hi / 4.0
    # work in units of hi so that rtol is relative
    return _land_feasible(
        lambda t: f(t * hi), lo / hi, 1.0, rtol, lambda t: ok(t * hi), lambda t: t * hi
    )
