r"""Group privacy by amplification: the Poisson-subsampled Gaussian for a whole group of k records
(docs/group_amplification.md).

DP-SGD step (Poisson rate q, per-example clip C, noise N(0, (zC)² I) on the clipped sum). Adding
or removing a group G of k records at once changes the sum by Σ_{i∈J} g_i, where J = G ∩ batch
(each member independently with probability q) and ‖g_i‖ ≤ C. The theorem of
docs/group_amplification.md shows that, whatever the directions of the g_i and the rest of the
batch, one step is dominated (every hockey-stick divergence, both orderings; i.e. in Blackwell's
order) by the one-dimensional pair

    M = Σ_{j=0}^{k} Bin(j; k, q)·N(j, z²)   against   B = N(0, z²)        (C = 1 after scaling),

so T adaptive steps are dominated by the T-fold product of (M, B) (adaptive composition of
dominating pairs, Zhu, Dong & Wang 2022, arXiv 2106.08567). Removing the group gives the ordering
(M, B), adding it (B, M); both are accounted and the maximum is reported, as for one record.

The pair is accounted by the library's pessimistic PLD (:mod:`unlearn_theory.pld`:
connect-the-dots discretisation, pessimistic truncation, tilted FFT with a round-off
allowance), with one mechanism class defined here. Binomial components beyond a cut-off J
(total weight τ ≤ e^{-100}) are merged into ONE component at the largest shift k: moving atoms
outward along the line is pessimistic by the same theorem (every entry of the atoms' Gram
matrix grows), so the merged pair still dominates.

Direction of the result: UPPER (ε certified at δ for the group, add/remove of the whole group).
Compare: :mod:`unlearn_theory.group` (group privacy by induction over k single-record changes).
The certificate of ``dp_sgd_group`` is the minimum of the two routes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from . import _validate as v
from ._logspace import log_sub_exp
from .bounds import Bound, BoundKind
from .errors import NumericalPrecisionError
from .pld import _LOG_TAIL_FACTOR, PrivacyLossDistribution, _log_mixture_interval, _Mechanism

__all__ = [
    "default_grid",
    "group_mixture_components",
    "group_mixture_pld",
    "group_mixture_epsilon",
    "group_mixture_delta",
]

#: binomial components whose total weight beyond the cut-off is at most e^{_LOG_MERGE} are
#: merged into one component at the largest shift (pessimistic, see the module docstring)
_LOG_MERGE = -100.0
#: largest number of mixture components kept (beyond: the route raises NumericalPrecisionError)
_MAX_COMPONENTS = 4096


def _check_group(sample_rate, noise_multiplier, forget_size):
    q = v.check_sample_rate(sample_rate)
    z = v.check_positive("noise_multiplier", noise_multiplier)
    k = v.check_int("forget_size", forget_size, minimum=1)
    return q, z, k


def group_mixture_components(*, sample_rate, forget_size) -> list[tuple[float, float]]:
    """[(log weight, shift)] of M = Σ_j Bin(j; k, q) N(j, ·), shifts in units of the clip.

    Components j > J with total weight τ ≤ e^{-100} are replaced by one component of weight τ
    at shift k (pessimistic). q = 1: the single component (0, k).
    """
    q = v.check_sample_rate(sample_rate)
    k = v.check_int("forget_size", forget_size, minimum=1)
    if q >= 1.0:
        return [(0.0, float(k))]
    j = np.arange(k + 1)
    lw = stats.binom.logpmf(j, k, q)
    # log of the upper tail Σ_{i > j} w_i (sf is accurate in the upper tail)
    log_tail = stats.binom.logsf(j, k, q)
    cut = int(np.argmax(log_tail <= _LOG_MERGE)) if np.any(log_tail <= _LOG_MERGE) else k
    cut = max(cut, min(k, 1))
    if cut + 2 > _MAX_COMPONENTS:
        raise NumericalPrecisionError(
            f"the group mixture needs {cut + 2} components (forget_size={k}, sample_rate={q}); "
            "use the group-privacy induction route"
        )
    comps = [(float(lw[i]), float(i)) for i in range(cut + 1)]
    if cut < k:
        comps.append((float(log_tail[cut]), float(k)))
    return comps


class _GroupMixturePair(_Mechanism):
    """Ordered pair of the group mixture M = Σ w_j N(j, z²) and B = N(0, z²).

    direction "remove": (P, Q) = (M, B), loss L(x) = log Σ_j w_j e^{(2jx − j²)/(2z²)},
    increasing and convex in x, unbounded above; "add": (P, Q) = (B, M), loss −L(x),
    decreasing, bounded above by −log w_0 (w_0 = (1−q)^k).
    """

    def __init__(self, q: float, z: float, k: int, direction: str):
        self.q, self.z, self.k, self.direction = q, z, k, direction
        comps = group_mixture_components(sample_rate=q, forget_size=k)
        self.key = ("group_subsampled", q, z, k, direction)
        self.scale = z
        self._lw = np.array([c[0] for c in comps])
        self._shift = np.array([c[1] for c in comps])
        base = [(0.0, 0.0)]
        if direction == "remove":
            self.p_comp, self.q_comp, self.increasing = comps, base, True
        else:
            self.p_comp, self.q_comp, self.increasing = base, comps, False
        # log w_0 (weight of the zero shift; -inf when q = 1)
        self._log_w0 = float(self._lw[0]) if self._shift[0] == 0.0 else -math.inf

    def _mix_loss(self, x):
        """L(x) = log dM/dB (x), vectorised."""
        x = np.asarray(x, dtype=np.float64)
        z2 = self.z * self.z
        a = self._lw + (-0.5 * self._shift**2) / z2
        return special.logsumexp(a + np.multiply.outer(x, self._shift) / z2, axis=-1)

    def _mix_inverse(self, y):
        """x with L(x) = y (vectorised; -inf where y <= log w_0).

        Solves log(e^{L} − w_0) = log(e^y − w_0) in v = x/z²: the left side is
        logsumexp_{j≥1}(lw_j − j²/(2z²) + j v), convex and increasing in v, so Newton started
        at v_0 = min_j (y' − c_j)/j (a point where the function is ≥ y') decreases
        monotonically to the root.
        """
        y = np.asarray(y, dtype=np.float64)
        z2 = self.z * self.z
        pos = self._shift > 0
        c = (self._lw - 0.5 * self._shift**2 / z2)[pos]
        j = self._shift[pos]
        with np.errstate(divide="ignore", invalid="ignore"):
            if math.isfinite(self._log_w0):
                ok = y > self._log_w0
                yp = np.where(ok, log_sub_exp(np.maximum(y, self._log_w0), self._log_w0), 0.0)
            else:
                ok = np.ones_like(y, dtype=bool)
                yp = y
        vv = np.min((yp[..., None] - c) / j, axis=-1)
        for _ in range(200):
            t = c + np.multiply.outer(vv, j)
            f = special.logsumexp(t, axis=-1)
            w = np.exp(t - f[..., None])
            d = w @ j
            step = (f - yp) / d
            vv = vv - step
            if np.all(np.abs(step) <= 1e-15 * (1.0 + np.abs(vv))):
                break
        return np.where(ok, vv * z2, -np.inf)

    def _tail_x(self) -> tuple[float, float]:
        """x-window holding all but ≤ 1e-32 (per side) of P's mass."""
        zt = -special.ndtri(math.exp(_LOG_TAIL_FACTOR))
        lo = -zt * self.z
        if self.direction == "add":
            return lo, zt * self.z
        # upper end: smallest x (by bisection) with log P(X > x) <= _LOG_TAIL_FACTOR, skipping
        # the merged far component (its weight is far below the tail target)
        comps = [c for c in self.p_comp if c[0] > _LOG_TAIL_FACTOR - 5.0]
        hi_lim = max(m for _, m in self.p_comp) + zt * self.z
        a, b = 0.0, hi_lim
        for _ in range(80):
            mid = 0.5 * (a + b)
            val = float(_log_mixture_interval(comps, self.z, mid, np.inf))
            if val > _LOG_TAIL_FACTOR:
                a = mid
            else:
                b = mid
        return lo, b

    def loss_range(self):
        lo_x, hi_x = self._tail_x()
        la, lb = float(self._mix_loss(lo_x)), float(self._mix_loss(hi_x))
        if self.direction == "remove":
            return la, lb, False
        # decreasing loss: P = B's mass beyond the window goes to the +inf atom (pessimistic)
        return -lb, -la, False

    def x_of_loss(self, l):
        l = np.asarray(l, dtype=np.float64)
        return self._mix_inverse(l if self.direction == "remove" else -l)

    def stats(self):
        """Mean and variance of the loss under P, by quadrature on a fine x-grid over the
        window (used only to choose the discretisation interval)."""
        if hasattr(self, "_stats"):
            return self._stats
        lo, hi = self._tail_x()
        x = np.linspace(lo, hi, 20001)
        comps = self.p_comp
        logp = special.logsumexp([lw - 0.5 * ((x - m) / self.z) ** 2 for lw, m in comps], axis=0)
        w = np.exp(logp - special.logsumexp(logp))
        loss = self._mix_loss(x)
        if self.direction == "add":
            loss = -loss
        mean = float(w @ loss)
        var = float(w @ (loss - mean) ** 2)
        self._stats = (mean, max(var, 1e-12))
        return self._stats


#: default discretisation interval, relative to the standard deviation of the composed loss
#: (the PLD is pessimistic at any interval; this trades ~1e-4 relative in ε for a small grid)
_GRID_PER_SD = 2e-3


def default_grid(*, sample_rate, noise_multiplier, forget_size, steps, coarsen=1.0) -> float:
    """Discretisation interval min(0.05, max(1e-5, 2e-3·coarsen·sd(ΣL))) of this route, with
    sd(ΣL) the standard deviation of the T-step loss under the mixture (quadrature)."""
    q, z, k = _check_group(sample_rate, noise_multiplier, forget_size)
    t = v.check_int("steps", steps, minimum=1)
    sd = math.sqrt(t * _GroupMixturePair(q, z, k, "remove").stats()[1])
    return min(0.05, max(1e-5, _GRID_PER_SD * coarsen * sd))


def group_mixture_pld(*, sample_rate, noise_multiplier, forget_size) -> PrivacyLossDistribution:
    """One DP-SGD step for a group of ``forget_size`` records (both orderings), as a PLD.

    Compose it with ``.self_compose(T)``; query ``.epsilon(δ)``/``.delta(ε)`` (UPPER ends).
    """
    q, z, k = _check_group(sample_rate, noise_multiplier, forget_size)
    pair = (_GroupMixturePair(q, z, k, "remove"), _GroupMixturePair(q, z, k, "add"))
    return PrivacyLossDistribution(((pair, 1),))


def group_mixture_epsilon(
    *, sample_rate, noise_multiplier, steps, forget_size, delta, grid=None
) -> Bound:
    """Smallest ε certified at δ for the group (add/remove of all k records), T steps [UPPER].

    ``grid``: the PLD's discretisation interval (None: :func:`default_grid`);
    the result is an upper bound at every interval, a finer one is tighter and slower.
    Raises NumericalPrecisionError where the PLD cannot certify a finite value.
    """
    q, z, k = _check_group(sample_rate, noise_multiplier, forget_size)
    t = v.check_int("steps", steps, minimum=1)
    d = v.check_delta(delta)
    h = (
        default_grid(sample_rate=q, noise_multiplier=z, forget_size=k, steps=t)
        if grid is None
        else grid
    )
    pld = group_mixture_pld(sample_rate=q, noise_multiplier=z, forget_size=k).self_compose(t)
    res = pld.epsilon(d, grid=h, lower=False)
    return Bound(
        float(res.upper),
        BoundKind.UPPER,
        source="group_amplification (Poisson-subsampled Gaussian mixture for the whole group, "
        "pessimistic PLD)",
        details={
            "sample_rate": q,
            "noise_multiplier": z,
            "steps": t,
            "forget_size": k,
            "delta": d,
            "grid": res.grid,
        },
    )


def group_mixture_delta(
    *, sample_rate, noise_multiplier, steps, forget_size, epsilon, grid=None
) -> Bound:
    """δ(ε) for the group after T steps, max over both orderings [UPPER] (``grid`` as in
    :func:`group_mixture_epsilon`)."""
    q, z, k = _check_group(sample_rate, noise_multiplier, forget_size)
    t = v.check_int("steps", steps, minimum=1)
    eps = v.check_epsilon(epsilon)
    h = (
        default_grid(sample_rate=q, noise_multiplier=z, forget_size=k, steps=t)
        if grid is None
        else grid
    )
    pld = group_mixture_pld(sample_rate=q, noise_multiplier=z, forget_size=k).self_compose(t)
    res = pld.delta(eps, grid=h)
    return Bound(
        float(res.upper),
        BoundKind.UPPER,
        source="group_amplification (pessimistic PLD of the group mixture)",
        details={"forget_size": k, "steps": t, "epsilon": eps, "grid": res.grid},
    )
