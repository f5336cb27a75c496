r"""Rényi differential privacy curves: Gaussian, Poisson-subsampled Gaussian, composition, → DP.

A Rényi bound is a **curve** α ↦ ρ(α), here an array over ``orders`` (or a callable, for the
continuous-order conversions in :mod:`unlearn_theory.conversions`). It is never one scalar.

Curves
    ``gaussian(orders, *, mu)``: D_α(N(0,1)‖N(μ,1)) = α·μ²/2, EXACT in both directions
    (Mironov 2017, arXiv 1702.07476, Prop. 7).

    ``subsampled_gaussian(orders, *, sample_rate, noise_multiplier)``: Poisson-subsampled
    Gaussian under add/remove, P = (1−q)N(0,z²) + qN(1,z²) against Q = N(0,z²),
    ρ(α) = log A_α/(α−1) with A_α = E_Q[(p/q)^α]. Integer α: EXACT binomial expansion
    (Mironov, Talwar & Zhang 2019, arXiv 1908.10530), summed in log space.
    Fractional α (``fractional=``):
      * ``"interpolate"`` (default, UPPER): log A_α is convex in α (a log-moment-generating
        function), so the chord between ⌊α⌋ and ⌈α⌉ (log A_1 = 0) bounds it from above;
      * ``"series"`` (EXACT up to a truncation whose tail is checked to be negligible, not
        proven): the two-sided expansion of MTZ 2019 §3.3 with signed generalised binomials.
    The direction D_α(P‖Q) is the one MTZ show dominates (second-hand, see docs/theory.md §3.2); the
    tests check the reverse direction by quadrature on a grid of cases.

    ``compose(*curves)``: pointwise sum over the same orders (adaptive composition, Mironov
    2017, Prop. 1) — add curves first, convert once.

Conversion
    ``to_dp(orders, rdp, *, delta, conversion="improved") -> Bound``: the smallest certified ε
    (an UPPER :class:`~unlearn_theory.bounds.Bound`; ``float(b)`` is ε, ``b.order`` the order).
    Between two given orders the curve is extended by the chord of (α−1)·ρ(α) (convex in α for
    any true Rényi curve, so the chord is an upper bound); the order is then optimised
    continuously over [min(orders), max(orders)]. UPPER at every order. ``to_log_delta`` and
    ``to_delta`` return Bounds on log δ and δ the same way.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, gammasgn, log_ndtr, logsumexp

from . import _validate as v
from . import conversions
from ._logspace import exp_upper
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "gaussian",
    "subsampled_gaussian",
    "compose",
    "to_dp",
    "to_delta",
    "to_log_delta",
]


def _shape_out(orders, arr):
    if np.ndim(orders) == 0:
        return float(arr.reshape(-1)[0])
    return arr


def gaussian(orders: ArrayLike, *, mu: float) -> float | np.ndarray:
    """EXACT Rényi curve of the Gaussian mechanism: ρ(α) = α·μ²/2 (both directions).

    Domain: orders α > 1 (scalar or 1-D), mu >= 0. Reference: Mironov 2017, "Rényi
    differential privacy", arXiv 1702.07476, Prop. 7.

    >>> gaussian([2.0, 4.0], mu=0.5)
    array([0.25, 0.5 ])
    >>> gaussian(2.0, mu=0.5)
    0.25
    """
    alphas = v.check_orders(orders)
    m = v.check_nonnegative("mu", mu)
    return _shape_out(orders, alphas * (m * m / 2.0))


# ---------------------------------------------------------------------------------------------
# Poisson-subsampled Gaussian


#: largest integer order whose binomial table (α + 1 terms) is built; beyond it
#: :func:`subsampled_gaussian` uses the joint-convexity bound, which needs no table
MAX_TABLE_ORDER = 1_000_000

#: binomial coefficients C(α, k) with min(k, α − k) up to this are formed as products
_SMALL_K = 64

#: float64 unit roundoff (rounding allowances below are multiples of it)
_ULP = 2.2e-16


def log_a_integer_table(u, alpha: int, sample_rate: float) -> np.ndarray:
    """log A_α(u) = log Σ_k C(α,k)(1−q)^{α−k} q^k e^{k(k−1)u} for integer α ≥ 0, for every u in
    the array ``u`` (u = s²/(2z²) for sensitivity s and noise multiplier z) [UPPER: the exact
    value plus the float64 rounding allowance of :func:`_log_a_integer_upper`, per u].

    Positive terms, summed in log space. Used by the per-instance accountant (a table over u).
    Refuses α > ``MAX_TABLE_ORDER`` (the table has α + 1 terms per u) with
    InvalidParameterError naming ``orders``. A term that overflows gives +inf (or NaN where
    −inf + inf meets; callers map NaN to +inf).
    """
    u = np.asarray(u, dtype=np.float64)
    base, mag, kk = _log_a_base(alpha, sample_rate)
    uu = u.reshape(-1)[:, None]
    terms = base[None, :] + kk[None, :] * uu
    la = logsumexp(terms, axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.exp(terms - la[:, None])
        mags = mag[None, :] + kk[None, :] * np.abs(uu)
        wm = np.where(w > 0.0, w * mags, 0.0)  # (q = 1: −inf terms carry infinite magnitudes)
        err = 32 * _ULP * np.sum(wm, axis=1) + 8 * _ULP * (
            np.maximum(1.0, np.abs(la)) + math.log2(alpha + 2.0)
        )
    out = np.where(np.isfinite(la), la + err, la)
    out = np.where(uu[:, 0] == 0.0, 0.0, out)  # A_α(0) = ((1 − q) + q)^α = 1 exactly
    return out.reshape(u.shape)


def _log_a_base(alpha: int, sample_rate: float):
    """u-free part of the term exponents, the sum of the absolute values of its float64
    components (for rounding allowances), and k(k−1), for k = 0..α."""
    if alpha > MAX_TABLE_ORDER:
        raise InvalidParameterError(
            "orders",
            alpha,
            f"an integer order above {MAX_TABLE_ORDER} needs a binomial table of "
            f"{alpha + 1} terms (too large)",
        )
    k = np.arange(alpha + 1, dtype=np.float64)
    g_a, g_k, g_ak = gammaln(alpha + 1.0), gammaln(k + 1.0), gammaln(alpha - k + 1.0)
    lq = math.log(sample_rate)
    l1q = math.log1p(-sample_rate) if sample_rate < 1.0 else -math.inf
    with np.errstate(invalid="ignore"):  # q == 1: only k = α survives
        l1q_term = np.where(alpha - k == 0, 0.0, (alpha - k) * l1q)
    log_binom = g_a - g_k - g_ak
    mag_binom = abs(g_a) + np.abs(g_k) + np.abs(g_ak)
    # k or α − k ≤ 64: log C(α, k) = Σ_{j≤k} log((α−j+1)/j), free of the gammaln cancellation
    # (exact 0 at k = 0, α); error ≤ (k+2) ulps of the sum of |logs| (recursive summation)
    m = min(alpha, _SMALL_K)
    j = np.arange(1.0, m + 1.0)
    la_j, lj = np.log(alpha - j + 1.0), np.log(j)
    cs = np.concatenate(([0.0], np.cumsum(la_j - lj)))
    cm = np.concatenate(([0.0], np.cumsum(np.abs(la_j) + lj))) * (np.arange(m + 1.0) + 2.0)
    kmin = np.minimum(k, alpha - k).astype(np.int64)  # C(α, k) = C(α, α − k)
    small = kmin <= m
    log_binom[small], mag_binom[small] = cs[kmin[small]], cm[kmin[small]]
    base = log_binom + l1q_term + k * lq
    mag = mag_binom + np.abs(l1q_term) + np.abs(k * lq)
    return base, mag, k * (k - 1.0)


def _log_a_integer_upper(u: float, alpha: int, sample_rate: float) -> float:
    """log A_α(u) for integer α plus an allowance for its float64 rounding [UPPER].

    Each term exponent t_k is a sum of components (gammaln values, k·log q, ...) that can
    cancel, so its error is a few ulps of the sum m_k of their absolute values; the error of
    log Σ e^{t_k} is then at most Σ_k w_k·err_k (w_k = e^{t_k}/Σ, weights summing to 1), plus
    the summation error of the log-sum-exp itself.
    """
    base, mag, kk = _log_a_base(alpha, sample_rate)
    with np.errstate(over="ignore", invalid="ignore"):
        terms = base + kk * u
        mags = mag + kk * abs(u)
    la = float(logsumexp(terms))
    if not math.isfinite(la):  # a term overflowed: +inf is an upper bound
        return math.inf
    w = np.exp(terms - la)
    err = 32 * _ULP * float(np.sum(w * mags)) + 8 * _ULP * (
        max(1.0, abs(la)) + math.log2(alpha + 2.0)
    )
    return la + err


def _log_a_series(alpha: float, q: float, z: float, max_terms: int = 2_000_000) -> float:
    """log A_α for real α > 1 by the two-sided series of MTZ 2019 §3.3 (signed terms).

    For i > α the generalised binomial C(α, i) alternates in sign and the paired terms decay
    like i^(−α−1); once their magnitudes decrease, the truncation error of the alternating
    tail is at most the first omitted term, which is added (upward) to the sum. Summed in
    chunks, in log space with signs.
    """
    log_q, log_1mq = math.log(q), math.log1p(-q)
    z2 = z * z
    z0 = z2 * math.log(1.0 / q - 1.0) + 0.5
    lg_a1 = gammaln(alpha + 1.0)
    sg_a1 = gammasgn(alpha + 1.0)
    logs: list[np.ndarray] = []
    signs: list[np.ndarray] = []
    start, chunk = 0, 4096
    while start < max_terms:
        i = np.arange(start, start + chunk, dtype=np.float64)
        j = alpha - i
        log_c = lg_a1 - gammaln(i + 1.0) - gammaln(j + 1.0)
        sign = sg_a1 * gammasgn(j + 1.0)
        t1 = log_c + i * log_q + j * log_1mq + (i * i - i) / (2.0 * z2)
        t1 = t1 + log_ndtr(-(i - z0) / z)
        t2 = log_c + j * log_q + i * log_1mq + (j * j - j) / (2.0 * z2)
        t2 = t2 + log_ndtr(-(z0 - j) / z)
        pair = np.logaddexp(t1, t2)  # both terms share the sign of C(α, i)
        logs.append(pair)
        signs.append(sign)
        total = logsumexp(np.concatenate(logs), b=np.abs(np.concatenate(signs)))
        tail = pair[i > alpha + 1.0]
        if tail.size > 2 and np.all(np.diff(tail) <= 0) and tail[-1] < total - 35.0:
            allpairs, allsigns = np.concatenate(logs), np.concatenate(signs)
            val, sgn = logsumexp(allpairs, b=allsigns, return_sign=True)
            if not sgn > 0:
                break
            # alternating tail with decreasing magnitudes: error ≤ first omitted term ≤ last;
            # plus a float64 summation allowance relative to the sum of magnitudes (upward)
            rounding = 64 * 2.2e-16 * math.exp(min(total - val, 700.0))
            return float(np.logaddexp(val, tail[-1]) + rounding)
        start += chunk
        chunk = min(chunk * 4, 1 << 20)
    raise NumericalPrecisionError(f"subsampled-Gaussian series did not converge at order {alpha}")


def subsampled_gaussian(
    orders: ArrayLike,
    *,
    sample_rate: float,
    noise_multiplier: float,
    fractional: str = "interpolate",
) -> float | np.ndarray:
    """Rényi curve of the Poisson-subsampled Gaussian (add/remove adjacency, sensitivity 1).

    ρ(α) = log A_α / (α−1); see the module docstring for the integer (EXACT) and fractional
    (``"interpolate"``: UPPER by convexity; ``"series"``: MTZ expansion) cases.
    Edge cases: sample_rate = 1 gives α/(2z²); noise_multiplier = 0 gives +inf.
    Valid for every α > 1; returns +inf (never NaN) where A_α overflows. Orders α >
    ``MAX_TABLE_ORDER`` (10⁶, where the binomial table would be too large) use the
    joint-convexity bound log(1 − q + q·e^{α(α−1)/(2z²)})/(α−1) [UPPER], which also caps the
    fractional orders. Every value carries an upward float64 rounding allowance and is ≥ 0.

    >>> rdp = subsampled_gaussian([2.0, 8.0], sample_rate=0.01, noise_multiplier=1.0)
    >>> [f"{x:.4g}" for x in rdp]
    ['0.0001718', '0.0008936']
    >>> bool(np.all(rdp <= gaussian([2.0, 8.0], mu=1.0)))  # subsampling amplifies privacy
    True
    """
    alphas = v.check_orders(orders)
    q = v.check_sample_rate(sample_rate)
    z = v.check_nonnegative("noise_multiplier", noise_multiplier)
    if fractional not in ("interpolate", "series"):
        raise InvalidParameterError("fractional", fractional, "must be 'interpolate' or 'series'")
    flat = np.atleast_1d(alphas).astype(np.float64)
    two_z2 = 2.0 * z * z
    if two_z2 < 1e-300:  # z = 0, or 1/(2z²) beyond float range: the curve is +inf
        return _shape_out(orders, np.full(flat.shape, math.inf))
    inv_2z2 = 1.0 / two_z2
    if q == 1.0:
        with np.errstate(over="ignore"):  # α/(2z²), rounded up by 4 ulps (three roundings)
            return _shape_out(orders, flat * inv_2z2 * (1.0 + 4 * _ULP))
    log_q, log_1mq = math.log(q), math.log1p(-q)
    cache: dict[int, float] = {}

    def log_a_int(k: int) -> float:
        if k not in cache:
            cache[k] = _log_a_integer_upper(inv_2z2, k, q)
        return cache[k]

    out = np.empty_like(flat)
    for idx, a in enumerate(flat.tolist()):
        cap = _log_a_cap(a, log_q, log_1mq, inv_2z2)
        top = int(a) if a.is_integer() else math.floor(a) + 1  # largest table order needed
        if top > MAX_TABLE_ORDER:  # no table: the joint-convexity bound only
            la = cap
        else:
            if a.is_integer():
                la = log_a_int(int(a))
            elif fractional == "series":
                la = _log_a_series(a, q, z)
            else:
                lo = math.floor(a)
                w = a - lo
                la = (1.0 - w) * log_a_int(lo) + w * log_a_int(lo + 1)
            # upward allowance for the chord / series rounding (the integer values carry
            # their own, see _log_a_integer_upper)
            la = la + 8 * _ULP * max(1.0, abs(la))
            if not a.is_integer():
                la = min(la, cap)  # both are UPPER bounds (each with its own allowance)
        # log A_α ≥ 0 always (A_α ≥ 1 by Jensen): RDP is never negative
        la = max(la, 0.0)
        out[idx] = la / (a - 1.0) if math.isfinite(la) else math.inf
    return _shape_out(orders, out)


def _log_a_cap(a: float, log_q: float, log_1mq: float, inv_2z2: float) -> float:
    """UPPER bound on log A_α for EVERY real α > 1, by joint convexity of (P, Q) ↦ E_Q[(P/Q)^α]:
    A_α ≤ 1 − q + q·e^{α(α−1)/(2z²)}; computed in log space plus an allowance for the float64
    rounding of its inputs (+inf where the exponent overflows)."""
    x = a * (a - 1.0) * inv_2z2  # Python floats: overflow gives inf, no warning
    if not math.isfinite(x):
        return math.inf
    val = float(np.logaddexp(log_1mq, log_q + x))
    return val + 8 * _ULP * (1.0 + abs(val) + abs(log_q) + abs(log_1mq) + x)


# ---------------------------------------------------------------------------------------------
# composition and conversion


def compose(*curves):
    """Pointwise sum of Rényi curves evaluated at the same orders (adaptive composition)."""
    if not curves:
        raise InvalidParameterError("curves", curves, "need at least one curve")
    arrays = [np.asarray(c, dtype=np.float64) for c in curves]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise InvalidParameterError(
                f"curves[{i}]", _repr_array(a), f"must have shape {shape} like curves[0]"
            )
        if np.any(np.isnan(a)) or np.any(a < 0):
            raise InvalidParameterError(f"curves[{i}]", _repr_array(a), "must be >= 0 and not NaN")
    total = np.sum(arrays, axis=0)
    return float(total) if total.ndim == 0 else total


def _repr_array(a) -> str:
    """Short text of an array for error messages."""
    return np.array2string(np.asarray(a), threshold=6)


def _check_curve(orders, rdp):
    alphas = v.check_orders(orders)
    alphas = np.atleast_1d(alphas)
    vals = np.atleast_1d(np.asarray(rdp, dtype=np.float64))
    if vals.shape != alphas.shape:
        raise InvalidParameterError(
            "rdp", _repr_array(vals), f"must have the same shape as orders {alphas.shape}"
        )
    if np.any(np.isnan(vals)) or np.any(vals < 0):
        raise InvalidParameterError("rdp", _repr_array(vals), "must be >= 0 (or +inf), never NaN")
    if np.any(np.isneginf(vals)):
        raise InvalidParameterError("rdp", _repr_array(vals), "must not be -inf")
    order = np.argsort(alphas)
    alphas, vals = alphas[order], vals[order]
    if np.any(np.diff(alphas) == 0):
        raise InvalidParameterError("orders", _repr_array(alphas), "must not contain duplicates")
    return alphas, vals


def _chord_curve(alphas, vals):
    """Callable upper extension of a curve known at ``alphas``: chord of (α−1)ρ(α)."""
    psi = (alphas - 1.0) * vals  # may be inf

    def fn(a):
        a = np.asarray(a, dtype=np.float64)
        j = np.clip(np.searchsorted(alphas, a, side="right") - 1, 0, len(alphas) - 1)
        j2 = np.minimum(j + 1, len(alphas) - 1)
        a0, a1 = alphas[j], alphas[j2]
        same = a1 == a0
        w = np.where(same, 0.0, (a - a0) / np.where(same, 1.0, a1 - a0))
        w = np.clip(w, 0.0, 1.0)
        with np.errstate(invalid="ignore"):
            p = np.where(
                w == 0.0, psi[j], np.where(w == 1.0, psi[j2], (1 - w) * psi[j] + w * psi[j2])
            )
        return p / (a - 1.0)

    return fn


def _best_order(alphas, vals, per_order, refine):
    """Minimise a conversion over the given orders, then continuously between the neighbours
    of the best one on the chord extension (an upper bound by convexity)."""
    grid = np.atleast_1d(per_order(alphas, vals))
    i = int(np.argmin(grid))
    best, order = float(grid[i]), float(alphas[i])
    if len(alphas) > 1 and math.isfinite(best):
        lo = float(alphas[max(i - 1, 0)])
        hi = float(alphas[min(i + 1, len(alphas) - 1)])
        if hi > lo:
            refined = refine(_chord_curve(alphas, vals), lo, hi)
            value, at = refined.value, refined.order
            if value < best:
                best, order = value, at
    return best, order


def _bound(value, order, source, conversion, **details) -> Bound:
    return Bound(
        value,
        BoundKind.UPPER,
        source=f"renyi.{source} ({conversion} RDP conversion, chord-refined orders)",
        details={"order": order, "conversion": conversion, **details},
    )


def to_dp(
    orders: ArrayLike, rdp: ArrayLike, *, delta: float, conversion: str = "improved"
) -> Bound:
    """Smallest certified ε at ``delta`` of an RDP curve given on ``orders``.

    Returns an UPPER :class:`~unlearn_theory.bounds.Bound`: ``float(b)`` is ε, ``b.order`` the
    (possibly fractional) order it was converted at. With one order, the conversion at that order. With several, the order is
    optimised continuously over [min(orders), max(orders)] using the chord of (α−1)ρ(α) between
    neighbouring given orders (an upper bound by convexity), and never worse than the best
    given order. Conversion formulas: :mod:`unlearn_theory.conversions`.

    >>> orders = np.arange(2.0, 65.0)
    >>> b = to_dp(orders, gaussian(orders, mu=1.0), delta=1e-5)
    >>> str(b.kind), round(float(b), 3)
    ('upper', 4.753)
    >>> from unlearn_theory import gaussian as exact
    >>> bool(float(b) >= exact.epsilon(1e-5, mu=1.0))  # never below the exact ε (4.377)
    True
    """
    alphas, vals = _check_curve(orders, rdp)
    d = v.check_delta(delta)
    eps, order = _best_order(
        alphas,
        vals,
        lambda a, r: conversions.epsilon_at_order(a, r, delta=d, conversion=conversion),
        lambda fn, lo, hi: conversions.curve_epsilon(
            fn, delta=d, conversion=conversion, min_order=lo, max_order=hi
        ),
    )
    return _bound(eps, order, "to_dp", conversion, delta=d)


def to_log_delta(orders, rdp, *, epsilon, conversion="improved") -> Bound:
    """Smallest certified log δ at ``epsilon`` of an RDP curve on ``orders``.

    An UPPER :class:`~unlearn_theory.bounds.Bound` whose value is log δ (``b.order``: the
    order), in log space (finite where δ underflows float64); same order search as
    :func:`to_dp`.
    """
    alphas, vals = _check_curve(orders, rdp)
    e = v.check_epsilon(epsilon)
    ld, order = _best_order(
        alphas,
        vals,
        lambda a, r: conversions.log_delta_at_order(a, r, epsilon=e, conversion=conversion),
        lambda fn, lo, hi: conversions.curve_log_delta(
            fn, epsilon=e, conversion=conversion, min_order=lo, max_order=hi
        ),
    )
    return _bound(ld, order, "to_log_delta", conversion, epsilon=e)


def to_delta(orders, rdp, *, epsilon, conversion="improved") -> Bound:
    """Smallest certified δ at ``epsilon``: an UPPER :class:`~unlearn_theory.bounds.Bound`
    (value δ, ``b.order`` the order).

    Where δ underflows float64 the smallest positive float is returned (still an upper bound,
    never 0); :func:`to_log_delta` gives the value in log space.
    """
    ld = to_log_delta(orders, rdp, epsilon=epsilon, conversion=conversion)
    return _bound(
        float(exp_upper(ld.value)), ld.order, "to_delta", conversion, epsilon=ld.details["epsilon"]
    )
