r"""Exact privacy profile of the Gaussian mechanism, its inverses and calibrations.

The pair P = N(0, 1), Q = N(mu, 1) (equivalently one Gaussian release with sensitivity Δ and
noise_std σ, mu = Δ/σ) has the privacy profile

.. math::

    \delta(\varepsilon; \mu) = \Phi(\mu/2 - \varepsilon/\mu) - e^{\varepsilon}\,\Phi(-\mu/2 - \varepsilon/\mu),
    \qquad \varepsilon \ge 0,

which is EXACT (necessary and sufficient) and symmetric in the two directions.
References: Balle & Wang 2018, "Improving the Gaussian mechanism for differential privacy",
arXiv 1805.06530, Thm 8; Dong, Roth & Su 2019, "Gaussian differential privacy", arXiv 1905.02383,
Cor. 2.13 (mu-GDP is equivalent to this profile for every epsilon).

Numerics (all log space; e^ε is never formed):

* ``a = mu/2 - eps/mu >= 0``: log δ = log Φ(a) + log(1 - exp(ε + log Φ(b) - log Φ(a))).
* ``a < 0`` (small δ): with x = -a, y = x + mu and the Mills ratio R(t) = Q(t)/φ(t),
  δ = φ(x)·[R(x) - R(y)]. When mu >= max(x, 1/2) the difference is taken directly through
  ``erfcx``; otherwise (weak mechanisms, mu << x) it is integrated as ∫_x^y (1 - tR(t)) dt by
  Gauss-Legendre quadrature of a positive integrand (the asymptotic series of 1 - tR(t) is used
  for t > 12), which avoids the cancellation that costs log10(x/mu) digits in the direct form.
  The rule's order adapts to mu/x (2 to 12 nodes) with a proven relative error <= 1e-16
  (see ``_GL_RATIO_MAX``).
* ``a >= 0`` and mu <= 2: δ = ∫_b^a φ - expm1(ε)·Φ(b), the first term by Gauss-Legendre.

Validated against 50-digit mpmath (tests/theory/test_gaussian.py, scripts/make_gaussian_oracles.py):
relative error below 1e-12 over δ in [1e-300, 0.5], ε in [0, 1e3], mu in [1e-3, 1e3] for the kernel;
the public log_delta and delta round UPWARD (never below the exact value; relative excess below
4e-12 on that domain).

Inverses land on the feasible side: :func:`epsilon` never returns an ε whose δ exceeds the
target and :func:`mu` never returns a mu whose δ exceeds the target; after the root solve the
answer is stepped outward until δ is below the target by more than the evaluator's error bound.

Scalar calls of :func:`epsilon` and :func:`mu` (Python or numpy real scalars) take a fast path
on plain floats: the same formulas, branches, error margin and feasible-side stepping, with
safeguarded Newton started at a bracket end (a few tens of microseconds per call instead of the
vectorised solver's ~1 ms; tests/theory/test_gaussian_fastpath.py checks the two paths agree).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from . import _validate as v
from ._logspace import exp_upper, log1mexp
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "delta",
    "log_delta",
    "epsilon",
    "mu",
    "compose",
    "noise_std",
    "classical_noise_std",
    "total_variation",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT1_2 = math.sqrt(0.5)
_TINY = np.finfo(np.float64).tiny

# Relative error bound of log_delta's δ (checked against mpmath in the tests with a wide margin).
_REL_ERROR = 3e-13
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(12)
# Adaptive Gauss-Legendre order for the weak-mechanism integral ∫_x^{x+mu} g(t) dt, g = 1 - tR(t).
# g(t) = ∫_0^∞ s·e^{-s²/2}·e^{-ts} ds (integrate R(t) = ∫_0^∞ e^{-ts - s²/2} ds by parts), so g is
# completely monotone with |g^(k)(t)| <= (k+1)!/t^(k+2), and g(t) >= 1/(t² + 3) (checked against
# mpmath in the tests). The n-point rule's error (h^(2n+1)(n!)^4/((2n+1)((2n)!)^3)·g^(2n)(ξ))
# relative to the integral (>= h·g(x + h)) is therefore, for x >= 1 and h = mu <= x,
#     rel <= 7·(n!)^4/((2n)!)^2 · (mu/x)^(2n).
# The order used is the smallest n in _GL_ORDERS with that bound <= 1e-16; x < 1 always uses 12.
_GL_ORDERS = (2, 3, 4, 6, 8, 12)
_GL_RULES = {n: np.polynomial.legendre.leggauss(n) for n in _GL_ORDERS}
_GL_RULES_PY = {n: (tuple(map(float, r[0])), tuple(map(float, r[1]))) for n, r in _GL_RULES.items()}
_GL_RATIO_MAX = tuple(
    (1e-16 / (7.0 * math.factorial(n) ** 4 / math.factorial(2 * n) ** 2)) ** (1.0 / (2 * n))
    for n in _GL_ORDERS[:-1]
)
# Asymptotic series 1 - tR(t) = sum_{k>=1} (-1)^{k+1} (2k-1)!! t^{-2k}, used for t > 12.
_ASYMP_T = 12.0
_ASYMP_COEF = np.array(
    [(-1.0) ** (k + 1) * float(special.factorial2(2 * k - 1)) for k in range(1, 26)]
)


def _mills(t):
    """R(t) = Q(t)/φ(t) = sqrt(pi/2)·erfcx(t/sqrt 2)."""
    return _SQRT_HALF_PI * special.erfcx(t * _SQRT1_2)


def _gl_order(x, m):
    """Gauss-Legendre order for ∫_x^{x+m} (1 - tR(t)) dt (scalar; see _GL_RATIO_MAX)."""
    if x >= 1.0:
        r = m / x
        for n, rmax in zip(_GL_ORDERS, _GL_RATIO_MAX):
            if r <= rmax:
                return n
    return 12


def _gl_orders(x, m):
    """Vectorised :func:`_gl_order`."""
    r = np.where(x >= 1.0, m / np.maximum(x, 1.0), np.inf)
    out = np.full(x.shape, 12, dtype=np.int64)
    for n, rmax in reversed(list(zip(_GL_ORDERS, _GL_RATIO_MAX))):
        out = np.where(r <= rmax, n, out)
    return out


def _one_minus_t_mills(t):
    """g(t) = 1 - t·R(t) > 0 for t >= 0, accurate to a few ulps times t² (t <= 12) or better."""
    t = np.asarray(t, dtype=np.float64)
    big = t > _ASYMP_T
    # the direct form only where it is used (t·R(t) is inf·0 for t = inf)
    direct = 1.0 - np.where(big, 0.0, t) * _mills(np.where(big, 0.0, t))
    if np.any(big):
        tb = np.where(big, t, _ASYMP_T + 1.0)
        inv2 = 1.0 / (tb * tb)
        # Horner evaluation of sum_k c_k inv2^k
        acc = np.zeros_like(tb)
        for c in _ASYMP_COEF[::-1]:
            acc = (acc + c) * inv2
        direct = np.where(big, acc, direct)
    return direct


def _log_eps_phi_b(a, b):
    """ε + log Φ(b) = -a²/2 - log 2 + log erfcx(-b/√2), for b < 0 (no cancellation)."""
    return -0.5 * a * a - _LOG2 + np.log(special.erfcx(-b * _SQRT1_2))


def _log_delta_kernel(eps: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log δ(ε; mu) for validated, broadcast float arrays (ε >= 0, mu > 0)."""
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        return _log_delta_kernel_unguarded(eps, m)


def _log_delta_kernel_unguarded(eps: np.ndarray, m: np.ndarray) -> np.ndarray:
    eps, m = np.broadcast_arrays(eps, m)
    out = np.empty(eps.shape, dtype=np.float64)
    a = 0.5 * m - eps / m
    pos = a >= 0.0

    if np.any(pos):
        ep, mp_, ap = eps[pos], m[pos], a[pos]
        bp = -0.5 * mp_ - ep / mp_
        res = np.empty(ap.shape, dtype=np.float64)
        small = mp_ <= 2.0
        big = ~small
        if np.any(big):
            la = special.log_ndtr(ap[big])
            # ε + log Φ(b) without cancellation: e^ε φ(b) = φ(a), so
            # ε + log Φ(b) = -a²/2 - log 2 + log erfcx(-b/√2)   (b < 0 always)
            s_b = _log_eps_phi_b(ap[big], bp[big])
            res[big] = la + log1mexp(np.minimum(s_b - la, 0.0))
        if np.any(small):
            # δ = [Φ(a) - Φ(b)] - expm1(ε)·Φ(b); Φ(a) - Φ(b) = ∫_b^a φ by Gauss-Legendre
            # (a - b = mu <= 2), which avoids subtracting two numbers near 1/2 for small mu.
            ms, bs, es = mp_[small], bp[small], ep[small]
            half = 0.5 * ms
            nodes = (bs + half)[:, None] + half[:, None] * _GL_NODES[None, :]
            mass = half * (np.exp(-0.5 * nodes * nodes - _LOG_SQRT_2PI) @ _GL_WEIGHTS)
            val = mass - np.expm1(es) * special.ndtr(bs)
            with np.errstate(divide="ignore"):
                res[small] = np.log(val)
        out[pos] = res

    neg = ~pos
    if np.any(neg):
        en, mn = eps[neg], m[neg]
        x = -a[neg]
        y = x + mn
        log_phi_x = -0.5 * x * x - _LOG_SQRT_2PI
        res = np.empty(x.shape, dtype=np.float64)
        quad = (mn < x) | (mn <= 0.5)
        direct = ~quad
        if np.any(direct):
            xd, yd = x[direct], y[direct]
            diff = _mills(xd) - _mills(yd)
            with np.errstate(divide="ignore"):
                res[direct] = log_phi_x[direct] + np.log(diff)
        if np.any(quad):
            xq, mq = x[quad], mn[quad]
            orders = _gl_orders(xq, mq)
            integral = np.empty(xq.shape, dtype=np.float64)
            for n in _GL_ORDERS:
                sel = orders == n
                if not np.any(sel):
                    continue
                gl_x, gl_w = _GL_RULES[n]
                half = 0.5 * mq[sel]
                mid = xq[sel] + half
                nodes = mid[:, None] + half[:, None] * gl_x[None, :]
                integral[sel] = half * (_one_minus_t_mills(nodes) @ gl_w)
            res[quad] = log_phi_x[quad] + np.log(integral)
        del en
        out[neg] = res
    return out


def _prepare(name_e: str, e, name_m: str, m):
    ea = v.as_float_array(name_e, e)
    ma = v.as_float_array(name_m, m)
    try:
        np.broadcast_shapes(ea.shape, ma.shape)
    except ValueError as exc:
        raise InvalidParameterError(
            name_m, m, f"shape {ma.shape} does not broadcast with {name_e} shape {ea.shape}"
        ) from exc
    return ea, ma


def _scalar_or_array(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


def log_delta(epsilon: ArrayLike, *, mu: ArrayLike) -> float | np.ndarray:
    r"""log δ(ε; mu) of the Gaussian mechanism, finite where δ underflows float64.

    Formula: log[Φ(mu/2 - ε/mu) - e^ε Φ(-mu/2 - ε/mu)] (EXACT, both directions), rounded
    UPWARD: the result is never below the exact value (inputs nudged outward by 2 ulps and an
    additive margin above the evaluator's error bound, as the inverses do; relative excess in δ
    below 2e-12 + 4e-15·|log δ|).
    Domain: ε >= 0 finite, mu > 0 finite; numpy-broadcast over both arguments.
    Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8.

    >>> round(log_delta(200.0, mu=1.0), 2)  # δ = e^-19911.64 underflows float64
    -19911.64
    >>> bool(abs(log_delta(1.0, mu=1.0) - math.log(delta(1.0, mu=1.0))) < 1e-12)
    True
    """
    if _is_plain_scalar(epsilon) and _is_plain_scalar(mu) and epsilon >= 0.0 and mu > 0.0:
        try:  # scalar twin of the kernel (same formulas), ~20x faster per call
            val = _log_delta_upper_scalar(float(epsilon), float(mu))
            if math.isfinite(val):
                return val
        except (OverflowError, ValueError):
            pass  # the vectorised path decides
    eps, m = _prepare("epsilon", epsilon, "mu", mu)
    if eps.size and np.any(eps < 0):
        raise InvalidParameterError("epsilon", epsilon, "must be >= 0")
    if m.size and np.any(m <= 0):
        raise InvalidParameterError("mu", mu, "must be > 0")
    out = _log_delta_upper(eps, m)
    if np.any(~np.isfinite(out)):  # pragma: no cover - guarded by the kernel's design
        raise NumericalPrecisionError("log_delta could not be evaluated to a finite value")
    return _scalar_or_array(out)


#: Outward rounding of :func:`log_delta` and :func:`delta` (docs/theory.md §2.2). The kernel's
#: error has two parts. (i) Input rounding: in the small-δ branch the kernel depends on (ε, mu)
#: through x = ε/mu − mu/2 and mu, and the exact log δ = F(x, mu) is decreasing in x and
#: increasing in mu; the float64 x carries an absolute error of at most u/2·(ε/mu + x) ≤ u·ε/mu
#: (u = 2^-52). Evaluating at ε·(1 − 2u), mu·(1 + 2u) lowers the exact x by at least
#: u·(2ε/mu + mu/2), more than that error, so the value computed at the nudged inputs is >= the
#: exact value at the given ones up to part (ii). In the other branches (ε ≤ mu²/2) a and b carry
#: errors ≤ u·mu, δ moves by φ(a)·(Δa − Δb) (∂δ/∂a = φ(a) = −∂δ/∂b at fixed ε), and the nudge
#: raises δ by at least φ(a)·2u·mu: again enough. (ii) The remaining arithmetic (x², the log of
#: the quadrature or erfcx difference, the final sums): a few ulps of |log δ| plus the kernel's
#: relative error on δ (_REL_ERROR), covered by the additive margin 2·_REL_ERROR + 8u·|log δ|.
#: The price is a relative excess on δ of at most about 2·_REL_ERROR + 16u·|log δ| (3e-12 at
#: δ = 1e-300). Before this, log_delta rounded to nearest and could sit one ulp below the exact
#: value in the far tail (mu = 3.537e-5, ε = 0.526: log δ ≈ −1.1e8, 1.5e-8 nats low).
_NUDGE = 2 * 2.220446049250313e-16
_MARGIN_ULPS = 8 * 2.220446049250313e-16
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _log_delta_upper(eps: np.ndarray, m: np.ndarray) -> np.ndarray:
    """UPPER bound on the exact log δ(ε; mu): the kernel at outward-nudged inputs plus a margin
    exceeding its rounding error (see ``_NUDGE``), capped at 0 (δ <= 1)."""
    eps, m = np.broadcast_arrays(np.asarray(eps, np.float64), np.asarray(m, np.float64))
    with np.errstate(over="ignore"):
        m_up = np.minimum(m * (1.0 + _NUDGE), _FLOAT_MAX)
    ld = _log_delta_kernel(eps * (1.0 - _NUDGE), m_up)
    finite = np.isfinite(ld)  # (−inf past the float range: the callers decide)
    margin = np.where(
        finite, 2.0 * _REL_ERROR + _MARGIN_ULPS * np.abs(np.where(finite, ld, 0.0)), 0.0
    )
    return np.minimum(ld + margin, 0.0)


def _meets(ld_up: np.ndarray, log_t: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Feasibility as the public functions report it: log_delta <= log(delta) and
    delta(...) <= delta (the inverses' final check, so their answers meet both)."""
    return (ld_up <= log_t) & (exp_upper(ld_up) <= d)


def _meets_scalar(ld_up: float, log_t: float, d: float) -> bool:
    return ld_up <= log_t and float(exp_upper(ld_up)) <= d


def _log_delta_upper_scalar(eps: float, m: float) -> float:
    """Scalar twin of :func:`_log_delta_upper`."""
    ld = _log_delta_scalar(eps * (1.0 - _NUDGE), min(m * (1.0 + _NUDGE), _FLOAT_MAX))
    if not math.isfinite(ld):
        return ld  # past the float range: the caller decides
    return min(ld + (2.0 * _REL_ERROR + _MARGIN_ULPS * abs(ld)), 0.0)


def delta(epsilon: ArrayLike, *, mu: ArrayLike) -> float | np.ndarray:
    r"""Exact δ(ε) of N(0,1) vs N(mu,1): Φ(mu/2 - ε/mu) - e^ε Φ(-mu/2 - ε/mu).

    EXACT, rounded upward (never below; relative excess < 4e-12 where δ >= 1e-300). Where the true δ is below the float64
    range the smallest positive double is returned (an upper bound); use :func:`log_delta`
    for the value. Domain: ε >= 0, mu > 0, numpy-broadcast.
    Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8; Dong, Roth & Su 2019, Cor. 2.13.

    >>> round(delta(1.0, mu=1.0), 6)
    0.126937
    >>> delta([0.5, 1.0, 2.0], mu=1.0).round(4)
    array([0.2384, 0.1269, 0.0209])
    >>> delta(200.0, mu=1.0)  # below float64: the smallest positive double, never 0
    5e-324
    """
    eps, m = _prepare("epsilon", epsilon, "mu", mu)
    if eps.size and np.any(eps < 0):
        raise InvalidParameterError("epsilon", epsilon, "must be >= 0")
    if m.size and np.any(m <= 0):
        raise InvalidParameterError("mu", mu, "must be > 0")
    return _scalar_or_array(np.asarray(exp_upper(_log_delta_upper(eps, m))))


def total_variation(*, mu):
    """δ(0; mu) = 2Φ(mu/2) - 1, the total variation distance of N(0,1) and N(mu,1) (EXACT)."""
    return delta(0.0, mu=mu)


#: Final outward rounding of the inverses. At huge arguments (mu ≳ 1e3, ε ≳ 1e6) the float64
#: inputs a = mu/2 − ε/mu of the evaluator carry an absolute error of about ulp(ε), more than the
#: log-space margin resolves; 8 ulps outward cover it (a relative 1.8e-15, far below accuracy).
_ULP_UP = 1.0 + 8 * 2.220446049250313e-16
_ULP_DOWN = 1.0 - 8 * 2.220446049250313e-16


def _margin(log_target: np.ndarray) -> np.ndarray:
    """Log-space safety margin exceeding the evaluator's error bound."""
    return 2.0 * _REL_ERROR + 4e-16 * np.abs(log_target)


def _solve_monotone(fun, lo, hi, *, decreasing: bool, iters: int = 200):
    """Vectorised safeguarded Newton/bisection for a monotone f with a sign change on [lo, hi].

    ``fun(x)`` returns (f, f') with f(root) = 0. ``decreasing``: f(lo) >= 0 >= f(hi).
    """
    lo = lo.copy()
    hi = hi.copy()
    x = 0.5 * (lo + hi)
    for _ in range(iters):
        f, fp = fun(x)
        # shrink the bracket
        if decreasing:
            go_right = f > 0
        else:
            go_right = f < 0
        lo = np.where(go_right, x, lo)
        hi = np.where(go_right, hi, x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.where(fp != 0, f / fp, 0.0)
        x_new = x - step
        bad = ~np.isfinite(x_new) | (x_new <= lo) | (x_new >= hi)
        x_new = np.where(bad, 0.5 * (lo + hi), x_new)
        done = np.all(np.abs(x_new - x) <= 4e-16 * np.maximum(np.abs(x), 1e-300)) or np.all(
            hi - lo <= 4e-16 * np.maximum(np.abs(hi), 1e-300)
        )
        x = x_new
        if done:
            break
    return x


def epsilon(delta: ArrayLike, *, mu: ArrayLike) -> float | np.ndarray:
    r"""Smallest ε >= 0 with δ(ε; mu) <= delta (EXACT, rounded to the feasible side).

    Newton on log δ(ε) - log(delta) with ∂δ/∂ε = -e^ε Φ(b), bracketed by
    [0, mu²/2 + mu·Φ⁻¹(1-delta)]; the result is then stepped upward until the re-evaluated δ is
    below ``delta`` by more than the evaluator's error bound. Returns 0 when
    delta >= 2Φ(mu/2) - 1. Domain: delta in (0, 1), mu > 0; numpy-broadcast.
    Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8.

    >>> eps = epsilon(1e-5, mu=1.0)
    >>> round(eps, 4)
    4.3772
    >>> bool(delta(eps, mu=1.0) <= 1e-5)  # the feasible side
    True
    >>> epsilon([1e-3, 1e-5], mu=0.5).round(3)
    array([1.352, 1.993])
    """
    if _is_plain_scalar(delta) and _is_plain_scalar(mu) and 0.0 < delta < 1.0 and mu > 0.0:
        try:
            return _epsilon_scalar(float(delta), float(mu))
        except (OverflowError, _ScalarFallback):
            pass  # far outside the accuracy domain: the vectorised path decides
    d, m = _prepare("delta", delta, "mu", mu)
    if d.size and np.any((d <= 0) | (d >= 1)):
        raise InvalidParameterError("delta", delta, "must lie in (0, 1)")
    if m.size and np.any(m <= 0):
        raise InvalidParameterError("mu", mu, "must be > 0")
    d, m = np.broadcast_arrays(d, m)
    shape = d.shape
    d = d.ravel().astype(np.float64)
    m = m.ravel().astype(np.float64)
    log_t = np.log(d)
    out = np.zeros_like(d)
    need = ~_meets(_log_delta_upper(np.zeros_like(m), m), log_t, d)
    if np.any(need):
        lt, mm = log_t[need], m[need]
        target = lt - _margin(lt)
        z = -special.ndtri(np.exp(target))
        with np.errstate(over="ignore"):
            hi = np.maximum(mm * mm / 2.0 + mm * z, 0.0)
        if not np.all(np.isfinite(hi)):
            raise NumericalPrecisionError(
                f"epsilon for mu={mm[~np.isfinite(hi)][0]!r} exceeds the float64 range"
            )
        # δ(hi) <= Φ(-z) = target by construction; guard against rounding
        hi = hi * (1 + 1e-12) + 1e-300

        def fun(e):
            ld = _log_delta_kernel(e, mm)
            b = -0.5 * mm - e / mm
            with np.errstate(over="ignore"):  # an infinite slope only shortens the Newton step
                deriv = -np.exp(_log_eps_phi_b(0.5 * mm - e / mm, b) - ld)
            return ld - target, deriv

        x = _solve_monotone(fun, np.zeros_like(hi), hi, decreasing=True)
        x = _step_until(
            lambda e: _meets(_log_delta_upper(e, mm), lt, d[need]),
            x,
            lambda e: np.maximum(np.abs(e) * 4e-16, 1e-300) * 1.0,
            upward=True,
            what="epsilon",
        )
        out[need] = x * _ULP_UP
    out = out.reshape(shape)
    return _scalar_or_array(out)


def _step_until(ok_fn, x, step_fn, *, upward: bool, what: str, max_steps: int = 64):
    """Move x outward (doubling the step) until ok_fn(x) holds everywhere."""
    x = x.copy()
    step = step_fn(x)
    for _ in range(max_steps):
        ok = ok_fn(x)
        if np.all(ok):
            return x
        x = np.where(ok, x, x + step if upward else x - step)
        step = step * 2.0
    raise NumericalPrecisionError(f"could not land {what} on the feasible side in float64")


def mu(*, epsilon: ArrayLike, delta: ArrayLike) -> float | np.ndarray:
    r"""Largest mu with δ(ε; mu) <= delta (EXACT calibration, rounded to the feasible side).

    The analytic Gaussian mechanism: noise_std = sensitivity / mu(ε, δ) is the least noise
    giving (ε, δ). Lower bracket √(z² + 2ε) - z with z = Φ⁻¹(1 - δ) (and δ·√(2π), feasible at
    every ε), doubled until infeasible, then Newton in log mu with ∂δ/∂mu = φ(a); finally stepped
    downward until the re-evaluated δ is below ``delta`` by more than the evaluator's error bound.
    Domain: ε >= 0, delta in (0, 1); numpy-broadcast. ε = +inf gives mu = +inf (δ(∞; mu) = 0
    for every finite mu, so no finite mu is the largest); every finite ε, up to the largest
    double, gives a finite mu (about √(2ε) for huge ε).
    Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8 / Alg. 1.

    >>> m = mu(epsilon=1.0, delta=1e-5)
    >>> round(m, 4)  # noise_std = sensitivity / m is the least noise giving (1, 1e-5)
    0.2681
    >>> bool(delta(1.0, mu=m) <= 1e-5)
    True
    """
    if _is_positive_infinity(epsilon):
        v.check_delta(delta)
        return math.inf  # δ(∞; mu) = 0 for every finite mu: no largest finite mu
    if (
        _is_plain_scalar(epsilon)
        and _is_plain_scalar(delta)
        and epsilon >= 0.0
        and 0.0 < delta < 1.0
    ):
        try:
            return _mu_scalar(float(epsilon), float(delta))
        except (OverflowError, _ScalarFallback):
            pass  # far outside the accuracy domain: the vectorised path decides
    e_in = np.asarray(epsilon) if not isinstance(epsilon, (list, tuple)) else np.asarray(epsilon)
    infinite = None
    if e_in.dtype.kind == "f" and np.any(np.isposinf(e_in)):
        infinite = np.isposinf(e_in)
        epsilon = np.where(infinite, 0.0, e_in)  # solved at 0, replaced by inf below
    e, d = _prepare("epsilon", epsilon, "delta", delta)
    if e.size and np.any(e < 0):
        raise InvalidParameterError("epsilon", epsilon, "must be >= 0")
    if d.size and np.any((d <= 0) | (d >= 1)):
        raise InvalidParameterError("delta", delta, "must lie in (0, 1)")
    if infinite is not None:
        out = np.asarray(mu(epsilon=epsilon, delta=delta), dtype=np.float64)
        out = np.where(np.broadcast_to(infinite, out.shape), np.inf, out)
        return _scalar_or_array(out)
    e, d = np.broadcast_arrays(e, d)
    shape = e.shape
    e = e.ravel().astype(np.float64)
    d = d.ravel().astype(np.float64)
    lt = np.log(d)
    target = lt - _margin(lt)
    z = -special.ndtri(np.exp(target))
    root = np.hypot(z, np.sqrt(2.0) * np.sqrt(e))  # √(z² + 2ε) without overflow at huge ε
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_formula = np.where(z > 0, 2.0 * (e / (root + z)), root - z)
    lo = np.maximum(lo_formula * (1 - 1e-9), np.exp(target) * math.sqrt(2 * math.pi) * (1 - 1e-9))
    lo = np.maximum(lo, _TINY)
    # make sure lo is feasible (it is by construction; shrink if rounding says otherwise)
    for _ in range(64):
        bad = _log_delta_kernel(e, lo) > target
        if not np.any(bad):
            break
        lo = np.where(bad, lo * 0.5, lo)
    hi = lo * 2.0
    for _ in range(2100):
        feas = _log_delta_kernel(e, hi) <= target
        if not np.any(feas):
            break
        lo = np.where(feas, hi, lo)
        hi = np.where(feas, hi * 2.0, hi)
    ulo, uhi = np.log(lo), np.log(hi)

    def fun(u):
        mm = np.exp(u)
        ld = _log_delta_kernel(e, mm)
        a = 0.5 * mm - e / mm
        log_phi_a = -0.5 * a * a - _LOG_SQRT_2PI
        return ld - target, np.exp(u + log_phi_a - ld)

    u = _solve_monotone(fun, ulo, uhi, decreasing=False)
    mm = np.exp(u)
    mm = _step_until(
        lambda x: _meets(_log_delta_upper(e, x), lt, d),
        mm,
        lambda x: x * 4e-16,
        upward=False,
        what="mu",
    )
    return _scalar_or_array((mm * _ULP_DOWN).reshape(shape))


def compose(mus):
    r"""Exact composition of Gaussian mechanisms: mu_total = sqrt(sum_t mu_t²) (GDP, EXACT).

    Holds under adaptive composition. Reference: Dong, Roth & Su 2019, arXiv 1905.02383,
    Cor. 3.3.
    """
    arr = v.as_float_array("mus", mus)
    if arr.ndim > 1:
        raise InvalidParameterError("mus", mus, "must be a scalar or 1-D array")
    if arr.size == 0:
        raise InvalidParameterError("mus", mus, "must not be empty")
    if np.any(arr < 0):
        raise InvalidParameterError("mus", mus, "every mu must be >= 0")
    scale = float(np.max(arr))
    if scale == 0.0:
        raise InvalidParameterError("mus", mus, "at least one mu must be > 0")
    return scale * float(np.sqrt(np.sum((arr / scale) ** 2)))


def noise_std(*, epsilon, delta, sensitivity):
    r"""Least noise_std giving (ε, δ) for one Gaussian release: sensitivity / mu(ε, δ).

    Analytic Gaussian calibration (EXACT, rounded up). Domain: ε >= 0, δ in (0, 1),
    sensitivity > 0. Reference: Balle & Wang 2018, arXiv 1805.06530, Thm 8.
    """
    s = v.as_float_array("sensitivity", sensitivity)
    if s.size and np.any(s <= 0):
        raise InvalidParameterError("sensitivity", sensitivity, "must be > 0")
    m = np.asarray(mu(epsilon=epsilon, delta=delta))
    with np.errstate(over="ignore"):
        out = np.nextafter(s / m, np.inf)
    if not np.all(np.isfinite(out)):
        raise InvalidParameterError(
            "epsilon", epsilon, "the calibrated noise_std overflows float range (budget too small)"
        )
    return _scalar_or_array(np.asarray(out))


def classical_noise_std(*, epsilon, delta, sensitivity):
    r"""Dwork-Roth classical calibration: sensitivity·sqrt(2 log(1.25/δ))/ε.

    UPPER bound only for 0 < ε < 1 (Dwork & Roth 2014, "The algorithmic foundations of
    differential privacy", Thm A.1); it FAILS for large ε (its true δ exceeds the target once ε
    is of order 10). Provided for the paper-compatible modes only; always re-certify the result
    with :func:`epsilon`. Domain: ε > 0, δ in (0, 1), sensitivity > 0 (ε >= 1 is allowed here so
    that paper mode can report what it really gives).
    """
    e = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    s = v.check_positive("sensitivity", sensitivity)
    return s * math.sqrt(2.0 * math.log(1.25 / d)) / e


# ---------------------------------------------------------------------------------------------
# Scalar fast path: the same formulas, branches, quadrature orders, error margin and feasible-side
# stepping as the vectorised code, on plain Python floats (no 0-d numpy arrays in the loops).
# ---------------------------------------------------------------------------------------------


class _ScalarFallback(Exception):
    """Raised by the scalar fast path where it hands over to the vectorised code."""


_ASYMP_COEF_REV = tuple(float(c) for c in _ASYMP_COEF[::-1])
_LOG2 = math.log(2.0)


def _is_plain_scalar(value) -> bool:
    """A finite Python/numpy real scalar (not bool); anything else takes the vectorised path."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (float, int, np.floating, np.integer)):
        return math.isfinite(float(value))
    return False


def _is_positive_infinity(value) -> bool:
    """A Python/numpy real scalar equal to +inf (not bool)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (float, np.floating)) and value == math.inf


def _log1mexp_scalar(x: float) -> float:
    if x > -_LOG2:
        val = -math.expm1(min(x, 0.0))
    else:
        return math.log1p(-math.exp(x))
    return math.log(val) if val > 0.0 else -math.inf


def _one_minus_t_mills_scalar(t: float) -> float:
    if t > _ASYMP_T:
        inv2 = 1.0 / (t * t)
        acc = 0.0
        for c in _ASYMP_COEF_REV:
            acc = (acc + c) * inv2
        return acc
    return 1.0 - t * (_SQRT_HALF_PI * float(special.erfcx(t * _SQRT1_2)))


def _log_delta_scalar(eps: float, m: float) -> float:
    """Scalar twin of :func:`_log_delta_kernel` (ε >= 0, mu > 0 finite floats)."""
    a = 0.5 * m - eps / m
    if a >= 0.0:
        b = -0.5 * m - eps / m
        if m > 2.0:
            la = float(special.log_ndtr(a))
            s_b = -0.5 * a * a - _LOG2 + math.log(float(special.erfcx(-b * _SQRT1_2)))
            return la + _log1mexp_scalar(min(s_b - la, 0.0))
        half = 0.5 * m
        mid = b + half
        mass = 0.0
        for node, w in zip(_GL_NODES_PY, _GL_WEIGHTS_PY):
            t = mid + half * node
            mass += w * math.exp(-0.5 * t * t - _LOG_SQRT_2PI)
        val = half * mass - math.expm1(eps) * float(special.ndtr(b))  # eps <= m²/2 <= 2
        return math.log(val) if val > 0.0 else -math.inf
    x = -a
    y = x + m
    log_phi_x = -0.5 * x * x - _LOG_SQRT_2PI
    if (m < x) or (m <= 0.5):
        gl_x, gl_w = _GL_RULES_PY[_gl_order(x, m)]
        half = 0.5 * m
        mid = x + half
        acc = 0.0
        for node, w in zip(gl_x, gl_w):
            acc += w * _one_minus_t_mills_scalar(mid + half * node)
        integral = half * acc
        return log_phi_x + math.log(integral) if integral > 0.0 else -math.inf
    diff = _SQRT_HALF_PI * (float(special.erfcx(x * _SQRT1_2)) - float(special.erfcx(y * _SQRT1_2)))
    return log_phi_x + math.log(diff) if diff > 0.0 else -math.inf


_GL_NODES_PY = tuple(map(float, _GL_NODES))
_GL_WEIGHTS_PY = tuple(map(float, _GL_WEIGHTS))


def _margin_scalar(log_target: float) -> float:
    return 2.0 * _REL_ERROR + 4e-16 * abs(log_target)


def _newton_scalar(fun, x, lo, hi, *, increasing: bool, iters: int = 200) -> float:
    """Safeguarded Newton for a monotone f with a sign change on [lo, hi], starting at x."""
    for _ in range(iters):
        f, fp = fun(x)
        if f == 0.0:
            return x
        if (f < 0.0) == increasing:
            lo = x
        else:
            hi = x
        x_new = x - f / fp if (fp != 0.0 and math.isfinite(fp)) else math.nan
        if abs(x_new - x) <= 4e-16 * max(abs(x), 1e-300):
            return min(max(x_new, lo), hi)  # converged Newton step (no NaN reaches here)
        if not (lo < x_new < hi):
            x_new = 0.5 * (lo + hi)
        if hi - lo <= 4e-16 * max(abs(hi), 1e-300):
            return x_new
        x = x_new
    return x


def _epsilon_scalar(d: float, m: float) -> float:
    log_t = math.log(d)
    target = log_t - _margin_scalar(log_t)
    if _meets_scalar(_log_delta_upper_scalar(0.0, m), log_t, d):
        return 0.0
    z = -float(special.ndtri(math.exp(target)))
    hi = max(m * m / 2.0 + m * z, 0.0) * (1 + 1e-12) + 1e-300
    if not math.isfinite(hi):
        raise _ScalarFallback

    def fun(e):
        ld = _log_delta_scalar(e, m)
        b = -0.5 * m - e / m
        s_b = -0.5 * (0.5 * m - e / m) ** 2 - _LOG2 + math.log(float(special.erfcx(-b * _SQRT1_2)))
        return ld - target, -math.exp(s_b - ld)

    # Start at the upper bracket end: δ(ε) <= Φ(a) there, and Newton on the convex-in-ε log δ
    # moves monotonically toward the root from either side after one step.
    x = _newton_scalar(fun, hi, 0.0, hi, increasing=False)
    step = max(abs(x) * 4e-16, 1e-300)
    for _ in range(64):
        if _meets_scalar(_log_delta_upper_scalar(x, m), log_t, d):
            return x * _ULP_UP
        x += step
        step *= 2.0
    raise NumericalPrecisionError("could not land epsilon on the feasible side in float64")


def _mu_scalar(e: float, d: float) -> float:
    lt = math.log(d)
    target = lt - _margin_scalar(lt)
    z = -float(special.ndtri(math.exp(target)))
    root = math.hypot(z, math.sqrt(2.0) * math.sqrt(e))  # no overflow at huge ε
    lo_formula = 2.0 * (e / (root + z)) if z > 0 else root - z
    lo = max(lo_formula * (1 - 1e-9), math.exp(target) * math.sqrt(2 * math.pi) * (1 - 1e-9))
    lo = max(lo, _TINY)
    for _ in range(64):
        if _log_delta_scalar(e, lo) <= target:
            break
        lo *= 0.5

    def fun(u):
        mm = math.exp(u)
        ld = _log_delta_scalar(e, mm)
        a = 0.5 * mm - e / mm
        return ld - target, math.exp(u + (-0.5 * a * a - _LOG_SQRT_2PI) - ld)

    hi = lo * 2.0
    for _ in range(2100):
        if _log_delta_scalar(e, hi) > target:
            break
        lo, hi = hi, hi * 2.0
    if not math.isfinite(hi):
        raise _ScalarFallback
    ulo, uhi = math.log(lo), math.log(hi)
    u = _newton_scalar(fun, ulo, ulo, uhi, increasing=True)
    mm = math.exp(u)
    step = mm * 4e-16
    for _ in range(64):
        if _meets_scalar(_log_delta_upper_scalar(e, mm), lt, d):
            return mm * _ULP_DOWN
        mm -= step
        step *= 2.0
    raise NumericalPrecisionError("could not land mu on the feasible side in float64")
