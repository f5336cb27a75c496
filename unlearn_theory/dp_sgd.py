r"""DP-SGD accounting: Poisson-subsampled Gaussian composition, and its calibration.

:func:`dp_sgd_epsilon` is the tightest certified UPPER bound the library has for T steps of
DP-SGD with Poisson sampling rate q and noise multiplier z, under add/remove adjacency:

    epsilon = min( PLD upper bound (pld.py: connect-the-dots, tilted FFT, both orderings),
                   RDP bound (renyi.subsampled_gaussian composed T times, converted by
                              renyi.to_dp over a dense continuous range of orders) ).

Both are valid upper bounds, so their minimum is one; it is returned as an UPPER
:class:`~unlearn_theory.bounds.Bound` whose ``source`` names the route that won (PLD or RDP)
and whose ``details`` hold both routes' values, the PLD grid and the RDP order. References: Abadi et al. 2016 (DP-SGD,
arXiv 1607.00133); Mironov, Talwar & Zhang 2019 (subsampled-Gaussian RDP, arXiv 1908.10530);
Doroshenko et al. 2022 (connect-the-dots PLD, arXiv 2207.04380). Shuffled fixed-size batches
are a different mechanism and are NOT covered.

At sample_rate = 1 the composition is exactly one Gaussian with μ = √T/z and the closed form
is used. The RDP route evaluates fractional orders by the chord between integer orders (fast,
an upper bound by convexity) and refines the orders near its optimum with the exact MTZ series.

:func:`dp_sgd_noise_multiplier` calibrates z conservatively: an RDP bracket, Brent's method in
log z on log δ_PLD(ε; z) − log δ, and a landing step checked with :func:`dp_sgd_epsilon`
itself, so the returned z is feasible (and within about rtol/2 above the least feasible z).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from . import _validate as v
from . import gaussian, renyi
from .bounds import Bound, BoundKind
from .errors import NumericalPrecisionError
from .pld import PrivacyLossDistribution

__all__ = [
    "dp_sgd_epsilon",
    "dp_sgd_noise_multiplier",
    "rdp_curve",
    "RDP_ORDERS",
]

#: the one Rényi order grid of the DP-SGD accountant (a dense continuous range of orders)
RDP_ORDERS = 1.0 + np.geomspace(1e-2, 1023.0, 160)
#: fractional orders added (exact MTZ series) between the neighbours of the best order, per round
_SERIES_POINTS = 9
#: noise multipliers below this are not searched by dp_sgd_noise_multiplier (the PLD accountant's
#: supported range starts there; a feasible z found at the floor is returned as is)
_MIN_SEARCHED = 1e-2


def rdp_curve(*, sample_rate: float, noise_multiplier: float, steps: int) -> np.ndarray:
    """Rényi DP of ``steps`` Poisson-subsampled Gaussian steps at :data:`RDP_ORDERS` [UPPER].

    T·ε_α(q, z) at every order α of the grid (Mironov, Talwar & Zhang 2019, arXiv 1908.10530;
    composition adds Rényi divergences).
    """
    per_step = renyi.subsampled_gaussian(
        RDP_ORDERS, sample_rate=sample_rate, noise_multiplier=noise_multiplier
    )
    return steps * np.asarray(per_step, dtype=np.float64)


def _rdp_bound(q: float, z: float, steps: int, delta: float) -> Bound | None:
    """RDP route (UPPER), or None where it cannot answer (an overflowing curve).

    The curve at :data:`RDP_ORDERS` uses the chord between integer orders at fractional
    orders (fast, an upper bound by convexity of log A_α, but up to a few percent above the
    exact value). Around the best order found, fractional orders are then evaluated with the
    exact MTZ series (``fractional="series"``, the smaller of the two upper bounds kept) on a
    finer local grid, and the conversion is redone (up to four rounds, while the best order
    moves; a coarse series scan below order 2 first). Every value used is an UPPER bound, so the result is one.
    """
    try:
        rdp = rdp_curve(sample_rate=q, noise_multiplier=z, steps=steps)
        b = renyi.to_dp(RDP_ORDERS, rdp, delta=delta)
    except NumericalPrecisionError:  # pragma: no cover - the curve is +inf, never NaN
        return None
    if q >= 1.0 or b.order is None or not math.isfinite(float(b)):
        return b
    orders, curve = RDP_ORDERS.copy(), np.asarray(rdp, dtype=np.float64).copy()
    # below order 2 the chord from log A_1 = 0 is loosest: a coarse series scan there first
    low = np.flatnonzero(orders < 2.0)[::8]
    try:
        curve[low] = np.minimum(
            curve[low],
            steps
            * np.asarray(
                renyi.subsampled_gaussian(
                    orders[low], sample_rate=q, noise_multiplier=z, fractional="series"
                ),
                dtype=np.float64,
            ),
        )
        b = min(b, renyi.to_dp(orders, curve, delta=delta), key=float)
    except NumericalPrecisionError:
        pass
    for _ in range(4):  # refine around the best order until it stays put
        i = int(np.argmin(np.abs(orders - b.order)))
        lo, hi = orders[max(i - 1, 0)], orders[min(i + 1, orders.size - 1)]
        local = np.linspace(lo, hi, _SERIES_POINTS)
        local = local[(local != np.floor(local)) & ~np.isin(local, orders)]
        try:
            exact = steps * np.asarray(
                renyi.subsampled_gaussian(
                    local, sample_rate=q, noise_multiplier=z, fractional="series"
                ),
                dtype=np.float64,
            )
            chord = steps * np.asarray(
                renyi.subsampled_gaussian(local, sample_rate=q, noise_multiplier=z),
                dtype=np.float64,
            )
        except NumericalPrecisionError:  # the series did not converge: keep what we have
            break
        # (the grid's own fractional orders near the optimum get the series value too)
        near = np.arange(max(i - 1, 0), min(i + 2, orders.size))
        near = near[orders[near] != np.floor(orders[near])]
        try:
            curve[near] = np.minimum(
                curve[near],
                steps
                * np.asarray(
                    renyi.subsampled_gaussian(
                        orders[near], sample_rate=q, noise_multiplier=z, fractional="series"
                    ),
                    dtype=np.float64,
                ),
            )
        except NumericalPrecisionError:
            pass
        orders = np.concatenate([orders, local])
        curve = np.concatenate([curve, np.minimum(exact, chord)])
        srt = np.argsort(orders)
        orders, curve = orders[srt], curve[srt]
        b2 = renyi.to_dp(orders, curve, delta=delta)
        moved = b2.order != b.order
        if float(b2) <= float(b):
            b = b2
        if not moved:
            break
    return b


def _rdp_epsilon(q: float, z: float, steps: int, delta: float) -> float:
    """RDP route's ε (UPPER); +inf where it cannot answer."""
    b = _rdp_bound(q, z, steps, delta)
    eps = math.inf if b is None else float(b)
    return eps if math.isfinite(eps) and eps >= 0 else math.inf


def _pld_result(q: float, z: float, steps: int, delta: float, grid=None):
    pld = PrivacyLossDistribution.from_subsampled_gaussian(
        sample_rate=q, noise_multiplier=z
    ).self_compose(steps)
    return pld.epsilon(delta, grid=grid, lower=False)


def _full_batch_mu(z: float, steps: int) -> float:
    """√T/z rounded upward (two correctly rounded operations: two ulps up cover them)."""
    return math.nextafter(math.nextafter(math.sqrt(steps) / z, math.inf), math.inf)


def _full_batch_bound(z: float, steps: int, delta: float) -> Bound:
    """sample_rate = 1: T Gaussian steps are exactly one Gaussian with μ = √T/z (Dong, Roth &
    Su 2019, arXiv 1905.02383, Cor. 3.3); ε from the exact Gaussian profile (Balle & Wang 2018,
    arXiv 1805.06530, Thm 8), μ rounded up and ε rounded to the feasible side."""
    mu = _full_batch_mu(z, steps)
    eps = float(gaussian.epsilon(delta, mu=mu))
    return Bound(
        eps,
        BoundKind.UPPER,
        source="dp_sgd_epsilon: exact Gaussian composition (sample_rate = 1), add/remove",
        details={
            "route": "gaussian",
            "mu": mu,
            "pld_epsilon": None,
            "pld_grid": None,
            "rdp_epsilon": None,
            "order": None,
            "noise_multiplier": z,
            "sample_rate": 1.0,
            "steps": steps,
            "delta": delta,
        },
    )


def dp_sgd_epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    grid: float | None = None,
) -> Bound:
    """Certified UPPER bound on ε(δ) of ``steps`` Poisson-subsampled Gaussian steps.

    min(PLD upper bound, RDP bound); see the module docstring. At ``sample_rate=1`` the
    composition is one Gaussian with μ = √T/z and the exact closed form is used (route
    ``"gaussian"``; the PLD and RDP details are then None). Returns an UPPER
    :class:`~unlearn_theory.bounds.Bound` (``float(b)`` is ε); ``b.source`` names the winning
    route, ``b.details`` holds ``pld_epsilon``, ``pld_grid``, ``rdp_epsilon`` and ``order``
    (the RDP order, None when the PLD route won). Validity: add/remove adjacency, Poisson
    sampling with probability ``sample_rate`` in (0, 1], sensitivity 1 (clip norm C with
    noise_std = noise_multiplier·C), delta in (0, 1). ``grid`` overrides the PLD
    discretisation interval (default: chosen from the composed spread).

    >>> b = dp_sgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=100, delta=1e-5,
    ...                    grid=1e-3)  # a coarser grid than the default: faster, still UPPER
    >>> str(b.kind), round(float(b), 2)
    ('upper', 0.72)
    """
    z = v.check_positive("noise_multiplier", noise_multiplier)
    q = v.check_sample_rate(sample_rate)
    steps = v.check_int("steps", steps, minimum=1)
    delta = v.check_delta(delta)
    if q == 1.0:
        return _full_batch_bound(z, steps, delta)
    rdp_b = _rdp_bound(q, z, steps, delta)
    rdp = math.inf if rdp_b is None else float(rdp_b)
    rdp = rdp if math.isfinite(rdp) and rdp >= 0 else math.inf
    try:
        pld_res = _pld_result(q, z, steps, delta, grid)
        pld, pld_grid = float(pld_res.upper), float(pld_res.grid)
    except NumericalPrecisionError:
        pld, pld_grid = math.inf, None
    out = min(rdp, pld)
    if not math.isfinite(out):
        raise NumericalPrecisionError(
            f"no finite certified epsilon for noise_multiplier={z}, sample_rate={q}, "
            f"steps={steps}, delta={delta}"
        )
    pld_won = pld <= rdp
    route = (
        "PLD (connect-the-dots, pessimistic tilted FFT)"
        if pld_won
        else "RDP (subsampled Gaussian, improved conversion)"
    )
    return Bound(
        out,
        BoundKind.UPPER,
        source=f"dp_sgd_epsilon: {route}, Poisson sampling, add/remove",
        details={
            "route": "pld" if pld_won else "rdp",
            "pld_epsilon": pld,
            "pld_grid": pld_grid,
            "rdp_epsilon": rdp,
            "order": None if pld_won or rdp_b is None else rdp_b.order,
            "noise_multiplier": z,
            "sample_rate": q,
            "steps": steps,
            "delta": delta,
        },
    )


def dp_sgd_noise_multiplier(
    *, epsilon, delta, sample_rate, steps, rtol: float = 1e-4, max_noise: float = 1e4
) -> float:
    """Smallest (to relative tolerance ``rtol``) noise multiplier z with
    ``dp_sgd_epsilon(z) <= epsilon`` -- conservative: the returned z was evaluated and is feasible.

    Method: the RDP bound (cheap, looser) brackets z from above; Brent's method then solves
    log δ_PLD(ε; z) = log δ in log z (a δ query costs one composition per ordering, an ε query
    three); the root, stepped up by rtol/4, is accepted once ``dp_sgd_epsilon`` itself certifies
    it (stepping up by rtol/4 until it does). The answer lies within about rtol/2 (relative)
    above the least feasible z. At ``sample_rate=1``: √T/μ(ε, δ) with the exact Gaussian μ.
    """
    eps = v.check_positive("epsilon", epsilon)
    delta = v.check_delta(delta)
    q = v.check_sample_rate(sample_rate)
    steps = v.check_int("steps", steps, minimum=1)
    rtol = v.check_in_range("rtol", rtol, 0.0, 1.0)
    log_delta = math.log(delta)

    def feasible(z):
        try:
            return (
                float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=delta))
                <= eps
            )
        except NumericalPrecisionError:
            return False

    def climb(z, cap=math.inf):  # step up by rtol/4 until dp_sgd_epsilon certifies z
        for _ in range(40):
            if feasible(z):
                return z
            z = min(z * (1.0 + rtol / 4.0), cap)
        return None

    if q == 1.0:
        mu = float(gaussian.mu(epsilon=eps, delta=delta))
        if not mu > 0:
            raise NumericalPrecisionError(f"no finite noise certifies epsilon={eps}, delta={delta}")
        z = climb(math.nextafter(math.sqrt(steps) / mu, math.inf) * (1 + 4 * 2.0**-53))
        if z is None:  # pragma: no cover - the exact μ is feasible up to rounding
            raise NumericalPrecisionError("could not certify the full-batch noise multiplier")
        return z

    def ok_rdp(z):
        return _rdp_epsilon(q, z, steps, delta) <= eps

    # 1. the cheap RDP bound gives a feasible upper bracket (dp_sgd_epsilon <= RDP)
    hi = 1.0
    while not ok_rdp(hi):
        hi *= 2.0
        if hi > max_noise:
            raise NumericalPrecisionError(
                f"no noise_multiplier <= {max_noise} certifies epsilon={eps}, delta={delta}"
            )
    lo = hi / 2.0
    while lo > _MIN_SEARCHED and ok_rdp(lo):
        hi, lo = lo, lo / 2.0
    if lo <= _MIN_SEARCHED:  # RDP certifies down to the search floor: no PLD refinement
        return hi
    for _ in range(60):
        if hi - lo <= 1e-3 * hi:
            break
        mid = 0.5 * (lo + hi)
        hi, lo = (mid, lo) if ok_rdp(mid) else (hi, mid)
    z_rdp = hi  # RDP-feasible, hence feasible for dp_sgd_epsilon (min(PLD, RDP) <= RDP)

    def g(log_z):  # PLD log δ(ε; z) − log δ: decreasing in z; +inf where the PLD cannot answer
        try:
            pld = PrivacyLossDistribution.from_subsampled_gaussian(
                sample_rate=q, noise_multiplier=math.exp(log_z)
            ).self_compose(steps)
            return min(pld._log_delta_upper(eps), 0.0) - log_delta
        except NumericalPrecisionError:
            return math.inf

    # 2. the tight bound needs less noise: bracket its root below the RDP answer
    g_hi = g(math.log(hi))
    if not g_hi <= 0:  # the PLD cannot certify here: the RDP answer stands
        return z_rdp
    lo = hi * 0.93
    g_lo = g(math.log(lo))
    while g_lo <= 0:
        hi, g_hi, lo = lo, g_lo, lo * 0.93
        if lo < _MIN_SEARCHED:
            return climb(hi, z_rdp) or z_rdp
        g_lo = g(math.log(lo))
    # 3. Brent in log z, then land on the feasible side of dp_sgd_epsilon itself
    if math.isfinite(g_lo):
        try:
            root = math.exp(
                brentq(g, math.log(lo), math.log(hi), xtol=rtol / 8.0, rtol=1e-12, maxiter=60)
            )
        except (ValueError, RuntimeError):  # pragma: no cover - bracket checked above
            root = hi
    else:
        root = hi
    z = min(root * (1.0 + rtol / 4.0), hi)
    return climb(z, z_rdp) or z_rdp
