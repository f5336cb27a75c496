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

:func:`dp_sgd_noise_multiplier` calibrates z conservatively: bisection on z, returning the
upper end of the final bracket, whose epsilon was evaluated and is <= the target (feasible side).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from . import _validate as v
from . import renyi
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
    """RDP route (UPPER), or None where it cannot answer (an overflowing curve)."""
    try:
        rdp = rdp_curve(sample_rate=q, noise_multiplier=z, steps=steps)
        return renyi.to_dp(RDP_ORDERS, rdp, delta=delta)
    except NumericalPrecisionError:  # pragma: no cover - the curve is +inf, never NaN
        return None


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


def dp_sgd_epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    grid: float | None = None,
) -> Bound:
    """Certified UPPER bound on ε(δ) of ``steps`` Poisson-subsampled Gaussian steps.

    min(PLD upper bound, RDP bound); see the module docstring. Returns an UPPER
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
    """
    eps = v.check_positive("epsilon", epsilon)
    delta = v.check_delta(delta)
    q = v.check_sample_rate(sample_rate)
    steps = v.check_int("steps", steps, minimum=1)
    rtol = v.check_in_range("rtol", rtol, 0.0, 1.0)

    def ok_rdp(z):
        return _rdp_epsilon(q, z, steps, delta) <= eps

    def f(z, coarse=True):  # certified ε(z) − target (min of PLD and RDP), decreasing in z
        # the search runs on a 4x coarser (still pessimistic) grid; the answer is re-checked
        # at the default grid, so the returned z is feasible for dp_sgd_epsilon as called
        grid = None
        try:
            if coarse:
                pld = PrivacyLossDistribution.from_subsampled_gaussian(
                    sample_rate=q, noise_multiplier=z
                ).self_compose(steps)
                grid = min(1.0, 4.0 * pld._default_grid())
            return (
                float(
                    dp_sgd_epsilon(
                        noise_multiplier=z, sample_rate=q, steps=steps, delta=delta, grid=grid
                    )
                )
                - eps
            )
        except NumericalPrecisionError:
            return math.inf

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

    def land(z):  # re-check z at the default grid; fall back to the RDP answer if it fails
        return z if f(z, coarse=False) <= 0 else z_rdp

    # 2. the tight bound needs less noise: bracket its root below the RDP answer
    f_hi = f(hi)
    if f_hi > 0:  # pragma: no cover - min(PLD, RDP) <= RDP
        raise NumericalPrecisionError("RDP-feasible noise multiplier is not feasible")
    lo = hi * 0.9
    while f(lo) <= 0:
        hi, lo = lo, lo * 0.9
        if lo < _MIN_SEARCHED:
            return land(hi)
    # 3. Brent on the (monotone) certified ε, then land on the feasible side
    try:
        root = brentq(f, lo, hi, xtol=rtol * hi / 4.0, maxiter=60)
    except (ValueError, RuntimeError):  # pragma: no cover - bracket checked above
        return land(hi)
    z = min(root * (1.0 + rtol / 2.0), hi)
    for _ in range(8):  # final check at the default grid; step up by rtol if needed
        if f(z, coarse=False) <= 0:
            return z
        z = min(z * (1.0 + rtol), hi)
    return land(hi)
