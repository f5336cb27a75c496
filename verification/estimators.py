"""Monte Carlo lower bounds / estimates of hockey-stick divergences (docs/theory.md §12).

All certified lower bounds here are valid at joint confidence ``confidence`` (default 0.95;
the older ``alpha`` = 1 − confidence is a deprecated alias that warns). Choosing a threshold by
maximising over thresholds on the evaluation data is NOT valid and is only exposed as
``threshold_estimate`` (kind "estimate").

Every estimator returns :class:`unlearn_theory.bounds.Bound` (kind lower, upper or estimate;
``source`` names the estimator, ``details["confidence"]`` the joint confidence level, None for
an estimate). Only the library's accountants produce kinds that certify; nothing here is exact
or an upper bound on the true privacy loss except the Monte Carlo upper confidence ends, which
hold with the stated confidence only.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
from scipy import special

from unlearn_theory import gaussian
from unlearn_theory._validate import (
    check_delta,
    check_epsilon,
    check_in_range,
    check_int,
    check_positive,
    check_real,
)
from unlearn_theory.bounds import Bound
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

from .confidence import clopper_pearson_upper, empirical_bernstein, hoeffding

__all__ = [
    "Bound",
    "threshold_epsilon_lower",
    "threshold_delta_lower",
    "threshold_estimate",
    "gdp_mu_lower",
    "plrv_delta",
    "gdp_epsilon_lower",
    "gaussian_tilted_plrv",
    "tilted_delta",
    "plrv_delta_mc",
    "renyi_bounded_loss",
    "renyi_thermodynamic",
    "renyi_plain_estimate",
]


def _miscoverage(confidence, alpha, where):
    """The error probability a = 1 − confidence (rounded DOWN, so the stated confidence is
    met), from ``confidence`` (default 0.95) or the deprecated ``alpha`` (= 1 − confidence,
    DeprecationWarning). Returns (a, confidence). Both given: InvalidParameterError."""
    if alpha is not None:
        if confidence is not None:
            raise InvalidParameterError(
                "alpha", alpha, "give confidence (preferred) or the deprecated alpha, not both"
            )
        warnings.warn(
            f"{where}(alpha=...) is deprecated: pass confidence=1 - alpha "
            "(the joint confidence level, as in verification.runner)",
            DeprecationWarning,
            stacklevel=3,
        )
        confidence = 1.0 - check_in_range("alpha", alpha, 0.0, 1.0)
    c = 0.95 if confidence is None else check_in_range("confidence", confidence, 0.0, 1.0)
    a = 1.0 - c  # exact for c >= 1/2 (Sterbenz); otherwise rounded down below
    if Fraction(a) > 1 - Fraction(c):
        a = math.nextafter(a, 0.0)
    return a, c


def _bound(value, kind, method, confidence=None) -> Bound:
    """A :class:`~unlearn_theory.bounds.Bound` from an estimator: ``source`` is the estimator
    (``method``), ``details["confidence"]`` its joint confidence level (None: no confidence,
    an estimate)."""
    return Bound(value, kind, source=method, details={"confidence": confidence})


def _clean(scores, name):
    x = np.asarray(scores, dtype=float).ravel()
    if x.size == 0:
        raise InvalidParameterError(name, "empty", "must be non-empty")
    if not np.all(np.isfinite(x)):
        raise InvalidParameterError(name, "array with NaN/inf", "must be finite")
    return np.sort(x)


def _thresholds(thresholds):
    """A pre-registered threshold grid: non-empty, finite (InvalidParameterError otherwise)."""
    if thresholds is None:
        raise InvalidParameterError("thresholds", None, "a pre-registered grid is required")
    try:
        t = np.asarray(thresholds, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InvalidParameterError("thresholds", thresholds, "must be real numbers") from None
    if t.size == 0:
        raise InvalidParameterError("thresholds", thresholds, "must be a non-empty grid")
    if not np.all(np.isfinite(t)):
        raise InvalidParameterError("thresholds", thresholds, "must be finite")
    return t


def _exp_times(epsilon, p):
    """e^ε·p (p ≥ 0 array), never rounded down: +inf past float64, 0 where p = 0."""
    if epsilon < 709.0:
        return math.exp(epsilon) * p
    with np.errstate(over="ignore", divide="ignore"):
        out = np.exp(epsilon + np.log(np.where(p > 0, p, 1.0))) * (1.0 + 1e-12)
    return np.where(p > 0, out, 0.0)


def _rates(s0, s1, t):
    """Test 'answer 1 when score > t': FPR = P0(S > t), FNR = P1(S <= t) as counts."""
    fp = s0.size - np.searchsorted(s0, t, side="right")
    fn = np.searchsorted(s1, t, side="right")
    return fp, fn


def _eps_from(fpr_up, fnr_up, delta):
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1 - delta - fpr_up, 0) / fnr_up)
        b = np.log(np.maximum(1 - delta - fnr_up, 0) / fpr_up)
    return np.fmax(a, b)


def _eps_at(s0, s1, thresholds, delta, alpha_each):
    fp, fn = _rates(s0, s1, thresholds)
    fpr = clopper_pearson_upper(fp, s0.size, alpha=alpha_each)
    fnr = clopper_pearson_upper(fn, s1.size, alpha=alpha_each)
    return _eps_from(fpr, fnr, delta)


def threshold_epsilon_lower(
    scores0,
    scores1,
    *,
    delta,
    confidence=None,
    alpha=None,
    thresholds=None,
    protocol="bonferroni",
    rng=None,
):
    """Certified lower bound on epsilon at ``delta`` from a threshold test (docs/theory.md §12.1-12.2).

    eps >= max(log((1-delta-FPR)/FNR), log((1-delta-FNR)/FPR)) with one-sided Clopper–Pearson
    upper bounds on both rates. protocol="bonferroni": ``thresholds`` is a pre-registered grid of K
    values, each rate bounded at a/(2K), a = 1 − ``confidence``. protocol="split": a random half
    chooses the best threshold from the grid (or all distinct scores), the other half evaluates
    at a/2 per rate. ``alpha`` (= a) is a deprecated alias of ``confidence``.
    Returns Bound(kind="lower"), value 0.0 when no evidence (never negative).
    """
    delta = check_delta(delta)
    alpha, conf = _miscoverage(confidence, alpha, "threshold_epsilon_lower")
    s0, s1 = _clean(scores0, "scores0"), _clean(scores1, "scores1")
    if protocol == "bonferroni":
        if thresholds is None:
            raise InvalidParameterError(
                "thresholds", None, "bonferroni needs a pre-registered grid"
            )
        t = _thresholds(thresholds)
        eps = _eps_at(s0, s1, t, delta, alpha / (2 * t.size))
        val = float(np.max(eps))
    elif protocol == "split":
        if rng is None:
            raise InvalidParameterError("rng", None, "split protocol needs a numpy Generator")
        a0, b0 = _halves(s0, rng)
        a1, b1 = _halves(s1, rng)
        grid = _thresholds(thresholds) if thresholds is not None else np.unique(a0)
        est = _eps_at(a0, a1, grid, delta, alpha / 2)
        t = grid[int(np.argmax(est))]
        val = float(_eps_at(b0, b1, np.array([t]), delta, alpha / 2)[0])
    else:
        raise InvalidParameterError("protocol", protocol, "must be 'bonferroni' or 'split'")
    return _bound(max(val, 0.0), "lower", f"threshold-{protocol}", conf)


def _halves(s, rng):
    p = rng.permutation(s.size)
    h = s.size // 2
    return np.sort(s[p[:h]]), np.sort(s[p[h:]])


def threshold_delta_lower(scores0, scores1, *, epsilon, thresholds, confidence=None, alpha=None):
    """Certified lower bound on delta(eps) (both orientations): TPR_lo - e^eps FPR_up,
    Bonferroni over a pre-registered grid: both orientations use only the 2K upper bounds
    (FPR_up, FNR_up at each threshold), each at a/(2K), a = 1 − ``confidence``. e^eps·FPR_up is rounded up (+inf
    past float64, so a huge epsilon gives the trivial lower bound 0)."""
    epsilon = check_epsilon(epsilon)
    alpha, conf = _miscoverage(confidence, alpha, "threshold_delta_lower")
    s0, s1 = _clean(scores0, "scores0"), _clean(scores1, "scores1")
    t = _thresholds(thresholds)
    a = alpha / (2 * t.size)
    fp, fn = _rates(s0, s1, t)
    fpr_up = clopper_pearson_upper(fp, s0.size, alpha=a)
    fnr_up = clopper_pearson_upper(fn, s1.size, alpha=a)
    d1 = (1 - fnr_up) - _exp_times(epsilon, fpr_up)  # orientation P1 || P0
    # reversed test: answer 0 when S <= t : TPR under P0 = 1 - FPR, FPR under P1 = FNR
    d2 = (1 - fpr_up) - _exp_times(epsilon, fnr_up)
    return _bound(max(float(np.max(np.fmax(d1, d2))), 0.0), "lower", "threshold-bonferroni", conf)


def threshold_estimate(scores0, scores1, *, delta):
    """Max over all thresholds on the same data, WITHOUT confidence. kind="estimate", never certified.

    ``delta`` must lie in (0, 1) (InvalidParameterError otherwise).
    """
    delta = check_delta(delta)
    s0, s1 = _clean(scores0, "scores0"), _clean(scores1, "scores1")
    t = np.unique(np.concatenate([s0, s1]))
    fp, fn = _rates(s0, s1, t)
    eps = _eps_from(
        np.maximum(fp / s0.size, 1 / s0.size), np.maximum(fn / s1.size, 1 / s1.size), delta
    )
    return _bound(max(float(np.max(eps)), 0.0), "estimate", "threshold-max-same-data")


def gdp_mu_lower(scores0, scores1, *, threshold, confidence=None, alpha=None):
    """mu_LB = Phi^-1(1 - FPR_up) - Phi^-1(FNR_up) at one pre-registered threshold (§12.3).

    Valid lower bound on any GDP mu. Converting to (eps, delta) via gaussian.delta is valid only
    for Gaussian-shift pairs (see ``gdp_epsilon_lower``).
    """
    alpha, conf = _miscoverage(confidence, alpha, "gdp_mu_lower")
    threshold = check_real("threshold", threshold)
    s0, s1 = _clean(scores0, "scores0"), _clean(scores1, "scores1")
    fp, fn = _rates(s0, s1, np.array([threshold]))
    fpr = float(clopper_pearson_upper(fp, s0.size, alpha=alpha / 2)[0])
    fnr = float(clopper_pearson_upper(fn, s1.size, alpha=alpha / 2)[0])
    mu = float(special.ndtri(1 - fpr) - special.ndtri(fnr))
    return _bound(max(mu, 0.0), "lower", "gdp-mu", conf)


def gdp_epsilon_lower(
    scores0, scores1, *, threshold, delta, confidence=None, alpha=None, gaussian_shift=False
):
    """eps lower bound from mu_LB; only valid when the pair is a known Gaussian shift."""
    alpha, conf = _miscoverage(confidence, alpha, "gdp_epsilon_lower")
    if not gaussian_shift:
        raise InvalidParameterError(
            "gaussian_shift", gaussian_shift, "GDP->(eps,delta) is valid only for Gaussian shifts"
        )
    mu = gdp_mu_lower(scores0, scores1, threshold=threshold, confidence=conf).value
    val = 0.0 if mu <= 0 else float(gaussian.epsilon(check_delta(delta), mu=mu))
    return _bound(max(val, 0.0), "lower", "gdp-mu-to-eps", conf)


def plrv_delta(
    losses,
    *,
    epsilon,
    confidence=None,
    alpha=None,
    log_weights=None,
    bound="bernstein",
    weight_sup=1.0,
):
    """delta(eps) = E[(1 - e^{eps - L})_+ * w] by MC with a two-sided finite-sample interval.

    ``losses`` are privacy-loss values L drawn under the proposal; ``log_weights`` the
    importance weights log(p/p_c) (exponential tilting, §12.4), with sup of the summand <=
    ``weight_sup`` (must hold; summands are divided by it to lie in [0,1]). Returns
    (lower Bound, upper Bound, estimate) at joint level ``confidence`` (a/2 each side,
    a = 1 − confidence).
    """
    epsilon = check_epsilon(epsilon)
    alpha, conf = _miscoverage(confidence, alpha, "plrv_delta")
    weight_sup = check_positive("weight_sup", weight_sup)
    if bound not in ("bernstein", "hoeffding"):
        raise InvalidParameterError("bound", bound, "must be 'bernstein' or 'hoeffding'")
    L = np.asarray(losses, dtype=float).ravel()
    if L.size < 2 or not np.all(np.isfinite(L)):
        raise InvalidParameterError("losses", "array", "need >= 2 finite values")
    y = -np.expm1(np.minimum(epsilon - L, 0.0))
    if log_weights is not None:
        y = y * np.exp(np.asarray(log_weights, dtype=float).ravel())
    y = y / weight_sup
    if y.max() > 1.0 + 1e-12:
        raise InvalidParameterError("weight_sup", weight_sup, "summand exceeds the declared sup")
    y = np.clip(y, 0.0, 1.0)
    f = empirical_bernstein if bound == "bernstein" else hoeffding
    lo = f(y, alpha=alpha / 2, side="lower") * weight_sup
    hi = f(y, alpha=alpha / 2, side="upper") * weight_sup
    est = float(y.mean()) * weight_sup
    return (
        _bound(lo, "lower", f"plrv-{bound}", conf),
        _bound(hi, "upper", f"plrv-{bound}", conf),
        _bound(est, "estimate", "plrv-mean"),
    )


def gaussian_tilted_plrv(mu, epsilon, n, rng, *, confidence=None, alpha=None):
    """delta(eps) of N(0,1) vs N(mu,1) by exponentially tilted MC (docs/theory.md §12.4).

    P = N(0,1), L = log p/q = -mu x + mu^2/2, {L > eps} = {x < c}, c = mu/2 - eps/mu. Proposal
    N(c,1), weight w = exp(-c x + c^2/2); when c < 0 the summand is <= e^{-c^2/2} (an a-priori sup),
    when c >= 0 no tilt is used (c = 0, sup 1). Returns plrv_delta's (lower, upper, estimate).
    """
    alpha, conf = _miscoverage(confidence, alpha, "gaussian_tilted_plrv")
    mu = check_positive("mu", mu)
    epsilon = check_epsilon(epsilon)
    n = check_int("n", n, minimum=2)
    c = min(mu / 2.0 - epsilon / mu, 0.0)
    x = c + rng.standard_normal(n)
    L = -mu * x + mu * mu / 2.0
    lw = -c * x + c * c / 2.0
    return plrv_delta(
        L, epsilon=epsilon, confidence=conf, log_weights=lw, weight_sup=math.exp(-c * c / 2.0)
    )


def tilted_delta(toy, epsilon, n, rng, *, confidence=None, alpha=None):
    """Tilted MC for any Gaussian-pair toy (``toy.gaussian_shift`` and ``toy.mu``): the pair is
    N(0,1) vs N(mu,1) after the known affine map, so :func:`gaussian_tilted_plrv` applies.
    Both directions coincide. Returns (lower, upper, estimate)."""
    alpha, conf = _miscoverage(confidence, alpha, "tilted_delta")
    if not getattr(toy, "gaussian_shift", False):
        raise InvalidParameterError("toy", toy, "tilting along mu needs a Gaussian-shift toy")
    return gaussian_tilted_plrv(float(toy.mu), epsilon, n, rng, confidence=conf)


def plrv_delta_mc(
    toy, epsilon, n, rng, *, direction="PQ", confidence=None, alpha=None, bound="bernstein"
):
    """Plain MC over the privacy-loss variable of a toy with known log-densities (§12.4).

    PQ: delta = E_{P1}[(1 - e^{eps - L})_+], L = log p1/p0 drawn under P1; QP: L' = log p0/p1
    under P0. The summand lies in [0, 1], so the empirical-Bernstein (default) or Hoeffding
    interval is valid at any n (joint level ``confidence``). Fails (wide interval) at small delta:
    use :func:`tilted_delta` there. Returns (lower, upper, estimate).
    """
    alpha, conf = _miscoverage(confidence, alpha, "plrv_delta_mc")
    n = check_int("n", n, minimum=2)
    x0, x1 = toy.sample(n, rng)
    if direction == "PQ":
        L = np.asarray(toy.privacy_loss(x1), dtype=float)
    elif direction == "QP":
        L = -np.asarray(toy.privacy_loss(x0), dtype=float)
    else:
        raise InvalidParameterError("direction", direction, "must be 'PQ' or 'QP'")
    if not np.all(np.isfinite(L)):
        raise InvalidParameterError("toy", toy, "privacy_loss returned NaN or infinite values")
    return plrv_delta(L, epsilon=epsilon, confidence=conf, bound=bound)


def _renyi_from_mgf(m, order):
    return math.log(m) / (order - 1.0) if m > 0 else -math.inf


def renyi_bounded_loss(losses, *, order, loss_bound, confidence=None, alpha=None):
    """Renyi divergence D_alpha(P||Q) with a valid confidence interval when |L| <= loss_bound.

    D_alpha = log E_P[e^{(alpha-1)L}]/(alpha-1), L = log p/q drawn under P. With |L| <= b a.s.
    the summand lies in [e^{-(alpha-1)b}, e^{(alpha-1)b}], so Hoeffding's interval on the mean
    is valid at joint level ``confidence`` (a/2 per side, a = 1 − confidence) and maps
    monotonically to D_alpha.
    Only for bounded losses (e.g. Laplace, b = eps0); unbounded losses are heavy-tailed and
    this route is invalid there. Returns (lower Bound, upper Bound, estimate Bound).

    Numerics: with k = alpha - 1, r = L/b and x = 2kb the summand is normalised to
    y = expm1(kb(r+1))/expm1(x) in [0, 1] and a mean u in [0, 1] maps back to
    D(u) = b(2h - 1), h = log1p(u expm1(x))/x, all without forming e^{kb}: valid for every
    finite b and order (no 0/0 as kb -> 0, no overflow as kb -> inf). The upper value is
    rounded up and clamped at 0 (D_alpha >= 0), the lower value rounded down, never NaN.
    """
    order = check_in_range("order", order, 1.0, math.inf)
    b = check_positive("loss_bound", loss_bound)
    alpha, conf = _miscoverage(confidence, alpha, "renyi_bounded_loss")
    L = np.asarray(losses, dtype=float).ravel()
    if L.size < 2 or not np.all(np.isfinite(L)):
        raise InvalidParameterError("losses", "array", "need >= 2 finite values")
    if np.max(np.abs(L)) > b * (1 + 1e-12):
        raise InvalidParameterError("loss_bound", b, "a loss exceeds the declared bound")
    k = order - 1.0
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        kb = k * b  # may overflow to +inf or be subnormal: both handled below
        r = np.clip(L / b, -1.0, 1.0)
        y = _normalised_summand(r, kb)
    # Hoeffding half-width, plus an allowance for the rounding of y and of the mean
    half = math.sqrt(math.log(2.0 / alpha) / (2.0 * y.size)) + 64 * _EPS_MACH
    m = float(np.clip(y.mean(), 0.0, 1.0))
    lo = max(_renyi_at_mean(max(m - half, 0.0), k, b, kb, "lower"), 0.0)
    hi = max(_renyi_at_mean(min(m + half, 1.0), k, b, kb, "upper"), 0.0)
    est = max(_renyi_at_mean(m, k, b, kb, "estimate"), 0.0)
    return (
        _bound(lo, "lower", "renyi-hoeffding(bounded loss)", conf),
        _bound(hi, "upper", "renyi-hoeffding(bounded loss)", conf),
        _bound(est, "estimate", "renyi-plugin"),
    )


_EPS_MACH = 2.0**-52


def _expm1_ratio(t):
    """expm1(t)/t (1 at t = 0), for 0 <= t <= 700."""
    t = np.asarray(t, dtype=float)
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, np.expm1(safe) / safe, 1.0)


def _normalised_summand(r, kb):
    """y = (e^{kbr} − e^{−kb})/(e^{kb} − e^{−kb}) in [0, 1] for r in [−1, 1], any kb > 0."""
    if 2.0 * kb <= 700.0:  # y = (r+1)·f(kb(r+1))/(2 f(2kb)), f(t) = expm1(t)/t: no 0/0
        return np.clip(
            (r + 1.0) * _expm1_ratio(kb * (r + 1.0)) / (2.0 * _expm1_ratio(2.0 * kb)), 0, 1
        )
    # y = e^{kb(r−1)}·(1 − e^{−kb(r+1)})/(1 − e^{−2kb}): no overflow; r = ±1 exact (kb may be inf)
    e_top = np.exp(np.where(r == 1.0, 0.0, kb * (r - 1.0)))
    e_bot = -np.expm1(-np.where(r == -1.0, 0.0, kb * (r + 1.0)))
    return np.clip(e_top * e_bot / -math.expm1(-2.0 * kb), 0.0, 1.0)


def _renyi_at_mean(u, k, b, kb, side):
    """D(u) = log(e^{−kb}(1 − u) + e^{kb}u)/k for a mean u of the normalised summand,
    rounded up ("upper") or down ("lower"); always >= −b, never NaN."""
    x = 2.0 * kb
    if u <= 0.0:
        return -b
    if x <= 700.0:
        if x < 1e-150:  # h = u + u(1 − u)x/2 + O(x²): u ≤ h ≤ u(1 + x)
            h = u * (1.0 + x) if side == "upper" else u
        else:
            h = math.log1p(u * math.expm1(x)) / x
        d = b * (2.0 * h - 1.0)
    else:  # D = b + ℓ/k, ℓ = log(u + (1 − u)e^{−x}) ∈ [log u, 0]
        ell = float(np.logaddexp(math.log(u), math.log1p(-u) - x)) if u < 1.0 else 0.0
        d = b + ell / k
    err = 16.0 * _EPS_MACH * abs(d) + 16.0 * _EPS_MACH * b  # no overflow of |d| + b
    if side == "upper":
        return d + err
    if side == "lower":
        return max(d - err, -b)
    return d


def renyi_plain_estimate(losses, *, order):
    """Plug-in log-mean-exp estimate of D_alpha from losses L = log p/q drawn under P.

    kind "estimate" ONLY: E_P[e^{(alpha-1)L}] is heavy-tailed for unbounded losses and the
    plug-in is biased low with no finite-sample guarantee (docs/theory.md §12.4).
    """
    order = check_in_range("order", order, 1.0, math.inf)
    L = np.asarray(losses, dtype=float).ravel()
    if L.size < 1 or not np.all(np.isfinite(L)):
        raise InvalidParameterError("losses", "array", "need finite values")
    val = float(special.logsumexp((order - 1) * L) - math.log(L.size)) / (order - 1)
    return _bound(val, "estimate", "renyi-plugin")


def _geometric_gaussian(s, mp, sp, mq, sq):
    """r_s proportional to p^s q^{1-s} for Gaussians p = N(mp, Sp), q = N(mq, Sq): Gaussian with
    precision s Sp^-1 + (1-s) Sq^-1 (must be positive definite)."""
    ip, iq = np.linalg.inv(sp), np.linalg.inv(sq)
    prec = s * ip + (1 - s) * iq
    try:
        np.linalg.cholesky(prec)
    except np.linalg.LinAlgError:
        return None
    cov = np.linalg.inv(prec)
    return cov @ (s * ip @ mp + (1 - s) * iq @ mq), 0.5 * (cov + cov.T)


def renyi_thermodynamic(toy, *, order, n, rng, nodes=12, direction="PQ"):
    """Thermodynamic-integration estimate of D_alpha (docs/theory.md §12.4) for Gaussian toys.

    (alpha - 1) D_alpha(P||Q) = int_1^alpha E_{r_s}[log p/q] ds, r_s ~ p^s q^{1-s}, evaluated by
    Gauss-Legendre in s (``nodes`` points) with ``n`` exact draws from each r_s (Gaussian for
    Gaussian pairs, so no MCMC). Every summand has finite variance, unlike the exponential
    moment. kind "estimate" (Monte Carlo standard error in ``confidence``-free form: the value
    of ``Bound.details["confidence"]`` is None; the standard error is returned separately).
    Works for :class:`~verification.toys.GaussianPair` (any d), ridge toys and Gaussian-shift
    toys. Raises NumericalPrecisionError where r_s is not normalisable (D_alpha = +inf).
    Returns (Bound(kind="estimate"), standard_error).
    """
    order = check_in_range("order", order, 1.0, math.inf)
    n = check_int("n", n, minimum=2)
    nodes = check_int("nodes", nodes, minimum=1)
    pair = getattr(toy, "pair", toy)
    if hasattr(pair, "mean0"):
        m0, s0, m1, s1 = pair.mean0, pair.cov0, pair.mean1, pair.cov1
    elif getattr(toy, "gaussian_shift", False):
        m0, s0, m1, s1 = np.zeros(1), np.eye(1), np.array([float(toy.mu)]), np.eye(1)
    else:
        raise InvalidParameterError("toy", toy, "needs a Gaussian pair (equal or unequal cov)")
    if direction == "PQ":
        mp, sp, mq, sq = m1, s1, m0, s0
    elif direction == "QP":
        mp, sp, mq, sq = m0, s0, m1, s1
    else:
        raise InvalidParameterError("direction", direction, "must be 'PQ' or 'QP'")
    ip, iq = np.linalg.inv(sp), np.linalg.inv(sq)
    _, ldp = np.linalg.slogdet(sp)
    _, ldq = np.linalg.slogdet(sq)

    def loss(x):  # log p/q
        dp, dq = x - mp, x - mq
        return (
            -0.5 * np.einsum("ij,jk,ik->i", dp, ip, dp)
            + 0.5 * np.einsum("ij,jk,ik->i", dq, iq, dq)
            - 0.5 * (ldp - ldq)
        )

    t, w = np.polynomial.legendre.leggauss(nodes)
    s_nodes = 1 + (order - 1) * (t + 1) / 2
    w = w * (order - 1) / 2
    total, var = 0.0, 0.0
    for si, wi in zip(s_nodes, w):
        law = _geometric_gaussian(si, mp, sp, mq, sq)
        if law is None:
            raise NumericalPrecisionError(
                f"r_s is not normalisable at s={si:.4g}: D_alpha is infinite or near its pole"
            )
        x = rng.multivariate_normal(law[0], law[1], n, method="cholesky")
        v = loss(x)
        total += wi * float(v.mean())
        var += wi * wi * float(v.var(ddof=1)) / n
    return (
        _bound(total / (order - 1), "estimate", "renyi-thermodynamic-integration"),
        math.sqrt(var) / (order - 1),
    )
