r"""Numerical privacy-loss-distribution (PLD) accountant with certified upper bounds.

A *privacy-loss distribution* of an ordered pair (P, Q) is the law of L = log(p/q)(X), X ~ P,
with an atom at +inf for P-mass where q = 0. Its privacy profile is
``δ(ε) = E[(1 - e^{ε-L})_+]`` and independent composition convolves PLDs (docs/theory.md §1, §4).
Every mechanism here is represented in BOTH orderings, PLD(P, Q) and PLD(Q, P); every query
reports the maximum of the two directions (the add/remove neighbouring relation).

Method (what makes ``.upper`` an UPPER bound):

* **Pessimistic discretisation ("connect the dots").** Losses live on the grid ``k·h``. The
  P-mass of each loss bin (ε_j, ε_j + h] is split between its two endpoints so that both the
  P-mass and the Q-mass (the e^{-L} moment) of the bin are preserved; the resulting discrete
  pair dominates the true pair (its profile is the chord interpolation, in e^ε, of the convex
  true profile). Doroshenko, Ghazi, Kamath, Kumar & Manurangsi 2022, "Connect the dots: tighter
  discrete approximations of privacy loss distributions", arXiv 2207.04380, Thm 3.2 (2nd
  numbering). Float round-off of the split is covered by moving an extra 1e-9 + 256u/h of
  each bin's mass to the upper endpoint (always pessimistic).
* **Pessimistic truncation.** Per mechanism, loss mass above the window goes to the +inf atom,
  mass below it to the lowest grid point.
* **Tilted FFT composition.** The composed pmf is computed by rfft/power/irfft of the
  exponentially tilted pmfs ``p_λ(l) ∝ p(l)e^{λl}`` (tilting commutes with convolution), with λ
  chosen so that the tilted composed mean sits near the queried ε, then untilted
  (docs/theory.md §4; the saddle-point idea of Alghamdi et al. 2023, arXiv 2208.09595).
* **FFT round-off, in ℓ2.** With x_i the normalised tilted factor pmfs, the computed composed
  pmf y satisfies ‖Δy‖₂ <= [(T+1)(η + 8u) + 2u·#factors]·max_i‖x_i‖₂, η = 16u(log2 N + 1) the
  relative ℓ2 error of one length-N FFT (Higham 2002, "Accuracy and Stability of Numerical
  Algorithms", Thm 24.2, with margin); the δ sum Σ_{l>ε} y_l·w_l (w the untilting weights)
  then moves by at most ‖Δy‖₂·‖w‖₂ (Cauchy–Schwarz), which is added. Negative or
  under-reported round-off cannot make δ optimistic, down to δ = 1e-12 and below.
* **Window and wrap-around.** The FFT window [kb, kt] is sized by Chernoff bounds on the
  TILTED composed law (at most 1e-13 of its mass outside, each side; the shift is searched, as
  heavy-tailed tilted laws want shifts far below the Gaussian one). The composed mass above kt
  (untilted Chernoff bound) and the +inf atoms are added to δ; mass outside the window aliases
  into it, which only ever ADDS to the upper end and is bounded and subtracted for the lower.
* **One composition per query.** A 4× coarser composition supplies the tilt point; tilt
  points are snapped to cells of sd₀/64, so ``epsilon()`` usually needs one fine composition
  per ordering and ``delta(epsilon(d).upper)`` reuses it (consistent answers).

``.lower`` is the optimistic counterpart (every bin's mass rounded DOWN to its lower endpoint,
truncated tails dropped, FFT round-off and aliased mass subtracted): a LOWER bound on the true
value up to float64 rounding of its own sums; it does not certify. Its gap to ``.upper`` (the
error bar) is dominated by the round-down bias ~ T·h/2 in loss.

Validity: the subsampled Gaussian is Poisson sampling with rate q under add/remove adjacency
(P = (1-q)N(0,z²) + qN(1,z²), Q = N(0,z²)); the Gaussian is N(0,1) vs N(mu,1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import special

from . import _validate as v
from ._logspace import log_sub_exp
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = ["PrivacyLossDistribution", "PLDResult"]

_U = 2.0**-53
# share of each bin's mass moved to its upper endpoint on top of the connect-the-dots split, to
# cover the float64 error of that split: the bin masses a, b come from Φ-differences whose
# relative error grows like u/(bin width); the split c = a − e^ε·b cancels by a factor ~h
_CTD_MARGIN_ABS = 1e-9
_CTD_MARGIN_PER_GRID = 256 * 2.0**-53
_LOG_TAIL_FACTOR = math.log(1e-32)  # per-mechanism truncation tail (each side, per step)
_MAX_COMPOSITIONS = 1 << 40  # beyond it the FFT round-off bound (~16u·T·log2 n) is ≳ 1e-3
_MAX_MU = 1e4  # from_gaussian's supported range (0, _MAX_MU]
_MIN_NOISE_MULTIPLIER, _MAX_NOISE_MULTIPLIER = 1e-2, 1e8  # from_subsampled_gaussian's range
_MAX_GRID_POINTS = 1 << 22  # one mechanism's discretised support (beyond: seconds per query)
_LOG_TAU = math.log(1e-13)  # tilted composed mass left outside the FFT window, each side
_TILT_EXP_CAP = 300.0  # untilting factors e^{λ(ε0 − l)} are formed up to e^300
_MAX_WINDOW = 1 << 24  # FFT window cap (bins)
_DECIMATE = 16  # bins per block of the decimated log-MGF (tilt and window choices)


@dataclass(frozen=True)
class PLDResult:
    """A bracketed accountant answer. Only ``upper`` certifies (kind=BoundKind.UPPER).

    ``lower`` is the lower end of the bracket (a LOWER bound when the lower tilt was computed,
    else equal to ``upper``). :attr:`bound` gives the certified upper end as a
    :class:`~unlearn_theory.bounds.Bound`; :attr:`lower_bound` the other end.
    """

    upper: float
    lower: float
    query: str
    grid: float
    kind: BoundKind = BoundKind.UPPER

    def __post_init__(self):
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))

    @property
    def bound(self) -> Bound:
        """The certified answer (``upper``) as a Bound, with the bracket in ``details``."""
        return Bound(
            self.upper,
            self.kind,
            source=f"pld.{self.query} (connect-the-dots, pessimistic tilted FFT)",
            details={"lower": self.lower, "grid": self.grid, "query": self.query},
        )

    @property
    def lower_bound(self) -> Bound:
        """The lower end of the bracket as a LOWER Bound (never certifies)."""
        return Bound(
            self.lower,
            BoundKind.LOWER,
            source=f"pld.{self.query} (optimistic end of the bracket)",
            details={"upper": self.upper, "grid": self.grid, "query": self.query},
        )

    @property
    def value(self) -> float:
        return self.upper

    @property
    def error_bar(self) -> float:
        """Numerical error bar: upper - lower (>= 0)."""
        return self.upper - self.lower

    def __float__(self) -> float:
        return float(self.upper)


# --------------------------------------------------------------------------------------------
# log-space normal interval masses


def _log1mexp(x):
    """log(1 − e^x) for x <= 0 (Mächler 2012), each branch evaluated on its own entries only."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    near = x > -math.log(2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[near] = np.log(-np.expm1(x[near]))
        far = ~near
        out[far] = np.log1p(-np.exp(x[far]))
    return out


def _log_norm_interval(z1, z2):
    """log(Φ(z2) - Φ(z1)) for z1 <= z2 (±inf allowed), accurate in both tails: on the right
    as log(Φ(−z1) − Φ(−z2)), on the left as log(Φ(z2) − Φ(z1))."""
    z1, z2 = np.broadcast_arrays(np.asarray(z1, dtype=np.float64), np.asarray(z2, np.float64))
    right = z1 > 0
    big = special.log_ndtr(np.where(right, -z1, z2))
    small = special.log_ndtr(np.where(right, -z2, z1))
    with np.errstate(invalid="ignore"):
        out = big + _log1mexp(np.minimum(small - big, 0.0))
    return np.where((z2 <= z1) | np.isnan(out), -np.inf, out)


def _log_mixture_interval(components, scale, x1, x2):
    """log of Σ_k w_k·[Φ((x2-m_k)/s) - Φ((x1-m_k)/s)]; components = [(log w_k, m_k)]."""
    terms = [lw + _log_norm_interval((x1 - m) / scale, (x2 - m) / scale) for lw, m in components]
    return special.logsumexp(np.stack(terms), axis=0)


# --------------------------------------------------------------------------------------------
# mechanisms (one ordered pair each) with monotone loss in x


class _Mechanism:
    """Ordered pair (P, Q) of normal mixtures on the line with a monotone loss L(x)."""

    key: tuple

    def loss_range(self) -> tuple[float, float, bool]:
        """(lowest loss kept, highest loss kept, upper bounded?)."""
        raise NotImplementedError

    def x_of_loss(self, l):
        raise NotImplementedError

    def stats(self) -> tuple[float, float]:
        """Mean and variance of L under P (approximate; used only to choose grids)."""
        raise NotImplementedError

    def discretise(self, h: float):
        """Return (lo, log_pmf_upper, log_inf_upper, log_pmf_lower) on the grid k·h."""
        lmin, lmax, bounded = self.loss_range()
        k_lo = math.floor(lmin / h)
        k_hi = math.ceil(lmax / h)
        if k_hi - k_lo > _MAX_GRID_POINTS:
            raise NumericalPrecisionError(
                f"the PLD grid would need {k_hi - k_lo} points (loss range [{lmin:.4g}, "
                f"{lmax:.4g}], interval {h:.3g}); use a coarser grid or the RDP accountant"
            )
        eps = np.arange(k_lo, k_hi + 1, dtype=np.float64) * h  # grid points
        xs = self.x_of_loss(eps)
        if self.increasing:
            x1, x2 = xs[:-1], xs[1:]
        else:
            x1, x2 = xs[1:], xs[:-1]
        la = _log_mixture_interval(self.p_comp, self.scale, x1, x2)  # P(bin j)
        lb = _log_mixture_interval(self.q_comp, self.scale, x1, x2)  # Q(bin j)
        ej = eps[:-1]
        # c_j = ∫_bin (1 - e^{ε_j - L}) dP = a_j - e^{ε_j} b_j >= 0
        lc = np.where(lb + ej < la, log_sub_exp(la, np.minimum(lb + ej, la)), -np.inf)
        lfac = h - math.log(math.expm1(h))
        margin = _CTD_MARGIN_ABS + _CTD_MARGIN_PER_GRID / h
        lup = np.logaddexp(lc + lfac, la + math.log(min(margin, 1.0)))
        lup = np.minimum(lup, la)
        llow = log_sub_exp(la, lup)
        n = eps.size
        logw = np.full(n, -np.inf)
        logw[:-1] = llow
        logw[1:] = np.logaddexp(logw[1:], lup)
        # tails: below the window -> lowest point; above -> +inf atom
        x_lo_edge, x_hi_edge = (xs[0], xs[-1]) if self.increasing else (xs[-1], xs[0])
        if self.increasing:
            l_below = _log_mixture_interval(self.p_comp, self.scale, -np.inf, x_lo_edge)
            l_above = _log_mixture_interval(self.p_comp, self.scale, x_hi_edge, np.inf)
        else:
            l_below = _log_mixture_interval(self.p_comp, self.scale, x_hi_edge, np.inf)
            l_above = _log_mixture_interval(self.p_comp, self.scale, -np.inf, x_lo_edge)
        logw[0] = np.logaddexp(logw[0], l_below)
        log_inf = float(l_above) if not bounded else -np.inf
        # optimistic (rounded-down) pmf: whole bin mass at the lower endpoint
        logw_low = np.full(n, -np.inf)
        logw_low[:-1] = la
        logw_low[0] = np.logaddexp(logw_low[0], l_below)
        return k_lo, logw, log_inf, logw_low


class _GaussianPair(_Mechanism):
    """P = N(0,1), Q = N(mu,1): L = mu²/2 - mu·x (decreasing in x). Symmetric."""

    def __init__(self, mu: float):
        self.mu = mu
        self.key = ("gaussian", mu)
        self.scale = 1.0
        self.p_comp = [(0.0, 0.0)]
        self.q_comp = [(0.0, mu)]
        self.increasing = False

    def loss_range(self):
        z = -special.ndtri(math.exp(_LOG_TAIL_FACTOR))
        m = self.mu**2 / 2
        return m - z * self.mu, m + z * self.mu, False

    def x_of_loss(self, l):
        return (self.mu**2 / 2 - np.asarray(l)) / self.mu

    def stats(self):
        return self.mu**2 / 2, self.mu**2


class _SubsampledPair(_Mechanism):
    """Poisson-subsampled Gaussian, add/remove, one ordering.

    mixture M = (1-q)N(0,z²) + qN(1,z²), base B = N(0,z²).
    direction "add": (P, Q) = (M, B); L(x) = log(1-q + q e^{(2x-1)/(2z²)}), increasing.
    direction "remove": (P, Q) = (B, M); L = -that, decreasing, bounded above by -log(1-q).
    """

    def __init__(self, q: float, z: float, direction: str):
        self.q, self.z, self.direction = q, z, direction
        self.key = ("subsampled", q, z, direction)
        self.scale = z
        mix = [(math.log1p(-q), 0.0), (math.log(q), 1.0)] if q < 1 else [(0.0, 1.0)]
        base = [(0.0, 0.0)]
        if direction == "add":
            self.p_comp, self.q_comp, self.increasing = mix, base, True
        else:
            self.p_comp, self.q_comp, self.increasing = base, mix, False

    def _loss_add(self, x):
        q, z = self.q, self.z
        t = (2 * np.asarray(x, dtype=np.float64) - 1) / (2 * z * z)
        if q >= 1:
            return t
        return np.logaddexp(math.log1p(-q), math.log(q) + t)

    def loss_range(self):
        zt = -special.ndtri(math.exp(_LOG_TAIL_FACTOR))
        lo_x, hi_x = -zt * self.z, 1 + zt * self.z
        la, lb = float(self._loss_add(lo_x)), float(self._loss_add(hi_x))
        if self.direction == "add":
            return la, lb, False
        top = -math.log1p(-self.q) if self.q < 1 else -la
        return -lb, min(top, -la), self.q < 1

    def x_of_loss(self, l):
        l = np.asarray(l, dtype=np.float64)
        q, z = self.q, self.z
        la = l if self.direction == "add" else -l
        if q >= 1:
            return la * z * z + 0.5
        lq = math.log1p(-q)
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.where(la > lq, log_sub_exp(np.maximum(la, lq), lq), -np.inf)
            return z * z * (inner - math.log(q)) + 0.5

    def stats(self):
        q, z = self.q, self.z
        c = math.expm1(min(1 / z**2, 700.0))
        var = q * q * c
        return var / 2, var


# --------------------------------------------------------------------------------------------
# composition engine for one direction


_FLUSH = math.exp(-700.0)


def _exp_flush(x):
    """e^x, with arguments below -700 flushed to an exact 0 (subnormal arithmetic is ~100x
    slower; callers account for the flushed mass, at most e^-700 per entry)."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(np.where(x < -700.0, -np.inf, x))


# (no BLAS calls (@, dot) on the hot paths: a threaded BLAS on a loaded machine costs tens of
# milliseconds per call; plain numpy reductions cost microseconds)


def _fft_len(n: int) -> int:
    """Smallest 5-smooth length >= n (fast for pocketfft's real transforms)."""
    return sfft.next_fast_len(int(n), real=True)


def _fft_l2_error(n: int) -> float:
    """Relative ℓ2 error bound of one float64 FFT of length n: ‖fl(Fx) − Fx‖₂ ≤ η‖Fx‖₂.

    Higham, "Accuracy and Stability of Numerical Algorithms" (2002), Thm 24.2, gives
    η = log2(n)·(μ + γ₄(√2 + μ)) ≈ 7u·log2(n) for radix 2 with twiddle-factor error μ ≲ u; we
    use 16u·(log2 n + 1), a margin that also covers pocketfft's radix 3 and 5 passes.
    """
    return 16 * _U * (math.log2(max(n, 2)) + 1)


class _Composed:
    """One tilted FFT composition of a direction, and the exact queries on it.

    Holds y, the tilted composed pmf on the window [kb, kb + len(y)) (float64, FFT round-off
    included), K = log M(λ)^T (the tilt normaliser) and the error budgets:

    * ``e2``: ‖y_computed − y‖₂ ≤ e2 (FFT round-off, see :meth:`_Direction.compose`);
    * ``rel``: per-entry relative rounding of the tilted inputs and of the untilting, as a log
      factor on δ;
    * ``log_extra``: untilted mass not in the window that may sit above ε (the +inf atoms
      and a Chernoff bound on the composed mass above the window), added to δ;
    * ``log_alias``: tilted mass outside the window (aliased into it by the circular
      convolution; only ever ADDS mass, so it matters for the lower end only).

    For ε in the window, with w_j = e^{K − λ l_j}(1 − e^{ε − l_j}) the untilting weights,
    δ(ε) = Σ_{l_j > ε} y_j w_j + extra, and by Cauchy–Schwarz the round-off changes the sum by
    at most e2·(Σ_{l_j > ε} e^{2(K − λ l_j)})^{1/2}. Suffix sums give every grid point at once.
    """

    def __init__(self, *, h, lam, k, kb, y, e2, rel, log_extra, log_alias, eps0, low, sd):
        self.h, self.lam, self.k, self.kb = h, lam, k, kb
        self.e2, self.rel, self.log_extra, self.log_alias = e2, rel, log_extra, log_alias
        self.eps0, self.low = eps0, low
        # evaluable range: l > 0 (ε >= 0 always), λ(ε0 − l) <= 300 (no overflow), and within
        # 6 tilted standard deviations below ε0 (an answer further down re-tilts lower)
        lmin = 0.0 if lam <= 0 else max(0.0, eps0 - _TILT_EXP_CAP / lam)
        lmin = max(lmin, eps0 - 6.0 * sd)
        j0 = min(max(math.floor(lmin / h) + 1 - kb, 0), y.size)
        self.loss = (kb + np.arange(j0, y.size)) * h
        self.empty = self.loss.size == 0
        if self.empty:
            return
        yy = y[j0:]
        if not low:
            yy = np.maximum(yy, 0.0)
        f = -lam * (self.loss - eps0)
        # flushed (< e^-700) terms are added back below as a bound
        ef = np.exp(f) if f[-1] > -700.0 else _exp_flush(f)
        a = yy * ef
        self.l0 = float(self.loss[0])  # B carries e^{-(l - l0)} (no overflow for large ε)
        dl = self.loss - self.l0
        b = a * (np.exp(-dl) if dl[-1] < 700.0 else _exp_flush(-dl))  # (smaller B: larger δ)
        nu = (self.loss.size + 2) * _U  # recursive-summation error of the suffix sums
        A = np.cumsum(a[::-1])[::-1]
        B = np.cumsum(b[::-1])[::-1]
        G = np.cumsum((ef * ef)[::-1])[::-1]
        E = e2 * np.sqrt(G * (1 + nu))
        if low:
            aabs = np.cumsum(np.abs(a)[::-1])[::-1]
            babs = np.cumsum(np.abs(b)[::-1])[::-1]
            alias = np.exp(log_alias + f) if math.isfinite(log_alias) else 0.0
            self.P = A - nu * aabs - 4 * _U * aabs - E - alias
            self.Bq = B + nu * babs
            self.scale = k - lam * eps0 - rel
        else:
            self.P = A * (1 + nu + 4 * _U) + E + 2 * self.loss.size * _FLUSH * (1 + e2)
            self.Bq = B * (1 - nu)
            self.scale = k - lam * eps0 + rel

    def _eB(self, eps, bq):
        """e^ε·B (B scaled by e^{l0}), formed in log space: it never exceeds P."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.exp(np.asarray(eps) - self.l0 + np.log(np.maximum(bq, 0.0)))

    def _extra(self) -> float:
        return -math.inf if self.low else self.log_extra

    def log_delta(self, eps: float) -> float | None:
        """log δ(ε) (upper, or lower for a low composition); None if ε is below the range."""
        extra = self._extra()
        if self.empty:
            return extra if eps >= 0 else None
        if eps < self.loss[0] - self.h:
            return None
        i = int(np.searchsorted(self.loss, eps, side="right"))  # first l_i > eps
        if i >= self.loss.size:
            return extra
        br = self.P[i] - self._eB(eps, self.Bq[i])
        if not br > 0:
            return extra
        return float(np.logaddexp(self.scale + math.log(br), extra))

    def invert(self, log_target: float) -> tuple[float, bool]:
        """Smallest ε >= 0 with δ(ε) <= target on this composition (exact, rounded up).

        Returns (ε, below): ``below`` means the answer lies below this composition's range
        (ε is then a feasible value, not the smallest).
        """
        extra = self._extra()
        if extra >= log_target:
            return math.inf, False
        if self.empty:
            return 0.0, False
        with np.errstate(over="ignore"):
            t = math.exp(min(float(log_sub_exp(log_target, extra)) - self.scale, 700.0))
        loss, h = self.loss, self.h
        prev = loss - h  # δ at ε = l_{i-1} uses the terms j >= i
        br = self.P - self._eB(prev, self.Bq)
        ok = br <= t
        if ok[0]:
            eps = float(prev[0])
            return (0.0, False) if eps <= 0.0 else (eps, True)
        if not np.any(ok):
            i = loss.size - 1  # only the atoms remain above l_last: answer in (l_{m-2}, l_{m-1}]
        else:
            i = int(np.argmax(ok)) - 1
        # ε in (l_{i-1}, l_i]: P_i − e^ε Bq_i = t
        num = self.P[i] - t
        lo_e, hi_e = float(prev[i]), float(loss[i])
        if num <= 0 or not self.Bq[i] > 0:
            eps = lo_e
        else:
            eps = min(max(math.log(num) - math.log(self.Bq[i]) + self.l0, lo_e), hi_e)
        eps = max(eps, 0.0)
        if self.low:
            return eps, False
        return float(np.nextafter(eps, np.inf) + 4 * _U * abs(eps)), False


class _Direction:
    """One ordering (P, Q) of a composition: discretised factors and tilted FFT compositions."""

    def __init__(self, factors: list[tuple[_Mechanism, int]], h: float):
        self.h = h
        self.items = []
        self.losses = []
        total = sum(c for _, c in factors)
        if total > _MAX_COMPOSITIONS:
            raise NumericalPrecisionError(
                f"{total} compositions: the FFT round-off bound (~{total:.2g} ulps) "
                "leaves no certified information; use the RDP accountant"
            )
        for mech, count in factors:
            lo, lw, linf, lw_low = mech.discretise(h)
            self.items.append((lo, lw, linf, lw_low, count))
            self.losses.append((lo + np.arange(lw.size)) * h)
        self.total = sum(c for *_, c in self.items)
        # union bound on the +inf atom (pessimistic)
        self.log_inf = special.logsumexp(
            [li + math.log(c) for _, _, li, _, c in self.items if np.isfinite(li)] or [-np.inf]
        )
        self.k_max = sum(c * (lo + lw.size - 1) for lo, lw, _, _, c in self.items)
        self.k_min = sum(c * lo for lo, _, _, _, c in self.items)
        self.max_size = max(lw.size for _, lw, *_ in self.items)
        self._cache: dict = {}
        self._mgf0: dict = {}
        self._dec: dict = {}
        self._snap_step = None

    def _logmgf(self, lam: float, low: bool = False):
        """K(λ) = Σ count·log Σ_l p(l)e^{λl}, tilted mean and variance."""
        k = mean = var = 0.0
        for (_, lw, _, lwl, c), loss in zip(self.items, self.losses):
            w = lwl if low else lw
            lt = w + lam * loss
            mx = float(np.max(lt))
            e = _exp_flush(lt - mx)
            tot = float(e.sum())
            lm = mx + math.log(tot)
            r = e / tot
            m1 = float(np.sum(r * loss))
            k += c * lm
            mean += c * m1
            var += c * float(np.sum(r * (loss - m1) ** 2))
        return k, mean, var

    def _logmgf_upper(self, lam: float, low: bool) -> float:
        """K(λ) for any real λ, with an upward allowance for its float64 rounding [UPPER]."""
        k = 0.0
        mag = 0.0
        for (_, lw, _, lwl, c), loss in zip(self.items, self.losses):
            w = lwl if low else lw
            with np.errstate(over="ignore", invalid="ignore"):
                lt = w + lam * loss
                mx = float(np.max(lt))
                # flushed entries (< e^-700 of the largest) are added back as their bound
                lm = (
                    mx + math.log(float(np.sum(_exp_flush(lt - mx))) + lt.size * _FLUSH)
                    if math.isfinite(mx)
                    else mx
                )
            k += c * lm
            mag += c * (abs(lm) + abs(lam) * max(abs(loss[0]), abs(loss[-1])) + 1.0)
        if not math.isfinite(k):
            return math.inf
        return k + 8 * _U * (mag + math.log2(self.max_size + 2) * self.total)

    def _decimated(self, low: bool):
        """Per factor: blocks of _DECIMATE bins as (log mass, mean loss, loss variance) at λ=0.
        For tilt choices and window sizes only (the bounds that certify use the full arrays)."""
        if low not in self._dec:
            out = []
            for lo, lw, _, lwl, c in self.items:
                w = lwl if low else lw
                dec = _DECIMATE if w.size >= 8 * _DECIMATE else 1
                nb = -(-w.size // dec)
                pad = np.full(nb * dec, -np.inf)
                pad[: w.size] = w
                lpad = (lo + np.arange(nb * dec)) * self.h
                mx = float(np.max(w))
                e = _exp_flush(pad - mx).reshape(nb, dec)
                lp = lpad.reshape(nb, dec)
                tot = e.sum(axis=1)
                safe = np.where(tot > 0, tot, 1.0)
                mean = np.where(tot > 0, (e * lp).sum(axis=1) / safe, lp.mean(axis=1))
                var = np.where(tot > 0, (e * (lp - mean[:, None]) ** 2).sum(axis=1) / safe, 0.0)
                with np.errstate(divide="ignore"):
                    bm = np.log(tot) + mx
                out.append((bm, mean, var, c))
            self._dec[low] = out
        return self._dec[low]

    def _logmgf_fast(self, lam: float, low: bool):
        """Approximate K(λ), tilted mean and variance from the decimated factors (second-order
        cumulant expansion within each block)."""
        k = mean = var = 0.0
        for bm, bmean, bvar, c in self._decimated(low):
            with np.errstate(over="ignore", invalid="ignore"):
                lt = bm + lam * bmean + 0.5 * lam * lam * bvar
                mx = float(np.max(lt))
                e = _exp_flush(lt - mx)
            tot = float(e.sum())
            centre = bmean + lam * bvar
            m1 = float(np.sum(e * centre)) / tot
            m2 = float(np.sum(e * ((centre - m1) ** 2 + bvar))) / tot
            k += c * (mx + math.log(tot))
            mean += c * m1
            var += c * m2
        return k, mean, var

    def _tilt_for(self, epsilon: float, low: bool = False):
        """λ >= 0 with tilted composed mean ≈ ε (safeguarded Newton; any λ is sound, this one
        puts the composed pmf's bulk, where FFT round-off is relatively small, near ε).
        Returns (λ, K(λ), mean, variance)."""
        if low not in self._mgf0:
            self._mgf0[low] = self._logmgf_fast(0.0, low)
        k, m, var = self._mgf0[low]
        if epsilon <= m:
            return 0.0, k, m, var
        lo, hi = 0.0, math.inf
        lam = min((epsilon - m) / max(var, 1e-300), 1e4)
        best = (0.0, k, m, var)
        for _ in range(30):
            k, m, var = self._logmgf_fast(lam, low)
            if not (math.isfinite(m) and math.isfinite(var) and math.isfinite(k)):
                hi = lam
            else:
                best = (lam, k, m, var)
                if abs(m - epsilon) <= 0.25 * math.sqrt(var) + 1e-12:
                    break
                if m < epsilon:
                    lo = lam
                else:
                    hi = lam
            nxt = lam + (epsilon - m) / var if var > 0 and math.isfinite(m) else math.nan
            if not lo < nxt < hi:
                nxt = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lam + 1.0
            if hi - lo < 1e-9 * max(hi, 1.0) or nxt > 1e5:
                break
            lam = nxt
        return best

    @staticmethod
    def _chernoff(dk, s0: float) -> float:
        """The shift s > 0 with the smallest Chernoff edge (dk(s) − log τ)/s, searched
        geometrically from s0 (heavy tails want s far below the Gaussian optimum s0)."""

        def edge(s):
            v = dk(s)
            return (v - _LOG_TAU) / s if math.isfinite(v) else math.inf

        best_s, best = s0, edge(s0)
        for factor in (0.5, 2.0):
            s, moved = s0, False
            for _ in range(30):
                s *= factor
                e = edge(s)
                if not e < best:
                    break
                best_s, best, moved = s, e, True
            if moved:
                break
        return best_s

    def _snap(self, eps: float) -> float:
        """Tilt points are snapped to a grid of spacing max(h, sd₀/64) (sd₀: spread of the
        untilted composed loss), so that a query at ε and an inversion that landed near ε use
        the very same composition (consistent answers); the tilt then sits within sd₀/128 of
        ε, which costs no accuracy."""
        if self._snap_step is None:
            var0 = self._logmgf_fast(0.0, False)[2]
            self._snap_step = max(self.h, math.sqrt(max(var0, 0.0)) / 64.0)
        step = self._snap_step
        return max(0.0, round(eps / step) * step)

    def compose(self, eps0: float, low: bool = False) -> _Composed:
        """Tilted FFT composition with the tilt point at (the snapped) ``eps0``; cached."""
        eps0 = self._snap(eps0)
        key = (eps0, low)
        if key in self._cache:
            return self._cache[key]
        h = self.h
        lam, _, _, var_lam = self._tilt_for(eps0, low)
        k_lam = self._logmgf_upper(lam, low)  # (its allowance is irrelevant: a normaliser)
        # window [kb, kt] from Chernoff bounds on the TILTED composed measure: for a shift s,
        # P_λ(S > t) <= exp(K(λ+s) − K(λ) − s·t) and P_λ(S < b) <= exp(K(λ−s) − K(λ) + s·b).
        # The shift is searched on the decimated log-MGF from the Gaussian optimum
        # √(2·log(1/τ))/sd; t and b are then solved exactly (full arrays) for mass e^_LOG_TAU.
        s0 = math.sqrt(-2 * _LOG_TAU) / math.sqrt(max(var_lam, 1e-300))
        k_fast = self._logmgf_fast(lam, low)[0]
        s_up = self._chernoff(lambda s: self._logmgf_fast(lam + s, low)[0] - k_fast, s0)
        s_dn = self._chernoff(lambda s: self._logmgf_fast(lam - s, low)[0] - k_fast, s0)
        ups = [(s_up, self._logmgf_upper(lam + s_up, low) - k_lam)]
        dns = [(s_dn, self._logmgf_upper(lam - s_dn, low) - k_lam)]
        for pts, sign in ((ups, 1.0), (dns, -1.0)):
            # the decimated search misjudged the tail: search on the full arrays
            s1, v1 = pts[0]
            fast = self._logmgf_fast(lam + sign * s1, low)[0] - k_fast
            if not (v1 - _LOG_TAU) <= 1.5 * (fast - _LOG_TAU) + 1.0:
                s2 = self._chernoff(
                    lambda s, sg=sign: self._logmgf_upper(lam + sg * s, low) - k_lam, s1
                )
                pts.append((s2, self._logmgf_upper(lam + sign * s2, low) - k_lam))
        top = min((ku - _LOG_TAU) / s for s, ku in ups)
        bot = -min((kd - _LOG_TAU) / s for s, kd in dns)
        kt = math.ceil(top / h) if math.isfinite(top) else self.k_max
        kt = max(kt, math.floor(eps0 / h) + 2)
        kb = math.floor(bot / h) - 1 if math.isfinite(bot) else self.k_min
        kb = min(kb, math.floor(eps0 / h) - 1)
        kb, kt = max(kb, self.k_min), min(kt, self.k_max)
        kt = max(kt, kb + 1)
        if kt - kb > _MAX_WINDOW:  # (aliasing only adds mass; the tail bound below covers it)
            kt = kb + _MAX_WINDOW
        if kt >= self.k_max:
            log_tail, log_alias_top = -math.inf, -math.inf
        else:
            t = kt * h  # composed mass strictly above kt: Chernoff at the shifts tried
            log_tail = min(k_lam + ku - (lam + s) * t for s, ku in ups)
            log_alias_top = min(ku - s * t for s, ku in ups)
        if kb <= self.k_min:
            log_alias_bot = -math.inf
        else:
            b = kb * h  # composed mass strictly below kb
            log_alias_bot = min(kd + s * b for s, kd in dns)
        width = kt - kb + 1
        n = _fft_len(max(width, self.max_size))
        spec = None
        base = 0
        k_sum = 0.0
        norm2 = 0.0
        rho = 0.0
        for (lo, lw, _, lwl, c), loss in zip(self.items, self.losses):
            w = lwl if low else lw
            lt = w + lam * loss
            lm = float(special.logsumexp(lt))
            d = lt - lm
            x = _exp_flush(d)  # flushed entries: absolute error <= e^-700 each (in e2)
            norm2 = max(norm2, math.sqrt(float(np.sum(x * x))))
            wf = w[np.isfinite(w)]
            # relative error of each tilted entry: exp, and the sums forming its argument
            amax = float(np.max(np.abs(wf))) + abs(lam) * max(abs(loss[0]), abs(loss[-1]))
            rho += c * _U * (4.0 + 2.0 * (amax + abs(lm)))
            f = sfft.rfft(x, n)
            f = f**c if c > 1 else f
            spec = f if spec is None else spec * f
            base += c * lo
            k_sum += c * lm
        out = sfft.irfft(spec, n)
        shift = (kb - base) % n
        y = np.roll(out, -shift)[:width]
        eta = _fft_l2_error(n)
        tot = self.total
        # ‖Δy‖₂ <= [(T+1)(η + 8u) + 2u·#factors]·max‖x_i‖₂ (forward FFTs, powers, products,
        # inverse FFT; |X_i| <= 1 and ‖y‖₂ <= min‖x_i‖₂), times a second-order margin;
        # entries that underflowed to 0 add at most √n·2^-1074 each transform
        e2 = ((tot + 1) * (eta + 8 * _U) + 2 * _U * len(self.items)) * norm2
        e2 = e2 * (1 + 4 * tot * eta) + math.sqrt(n) * (_FLUSH + 1e-300) * (tot + 1)
        rel = rho + 4 * _U * (abs(k_sum) + abs(lam) * (abs(kb) + width) * h + 4.0)
        rel = rel * 1.01 + 1e-300
        comp = _Composed(
            h=h,
            lam=lam,
            k=k_sum,
            kb=kb,
            y=y,
            e2=e2,
            rel=rel,
            log_extra=float(np.logaddexp(self.log_inf, log_tail)),
            log_alias=float(np.logaddexp(log_alias_top, log_alias_bot)),
            eps0=eps0,
            low=low,
            sd=math.sqrt(max(var_lam, 0.0)),
        )
        while len(self._cache) >= 4:  # bounded memory: the four latest compositions
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = comp
        return comp

    def log_delta(self, eps: float, low: bool = False) -> float:
        comp = self.compose(eps, low)
        out = comp.log_delta(eps)
        if out is None:  # pragma: no cover - a composition tilted at ε covers ε
            raise NumericalPrecisionError(f"epsilon={eps} is outside the composed window")
        return out

    def epsilon(self, log_target: float, low: bool, guess: float) -> float:
        """Smallest ε with δ(ε) <= target. For the upper end, the value returned is certified
        by the composition tilted at (the snap of) itself, so ``log_delta(ε) <= target``."""
        eps0 = max(guess, 0.0)
        best = math.inf
        for _ in range(12):
            comp = self.compose(eps0, low)
            val, below = comp.invert(log_target)
            if below:
                best = min(best, val)
                eps0 = max(0.0, min(eps0, val) - max(0.5, 0.5 * abs(val)))
                continue
            if not math.isfinite(val) or low:
                if low and self._snap(val) != comp.eps0 and math.isfinite(val):
                    eps0 = val
                    best = min(best, val)
                    continue
                return min(best, val) if low else val
            if self._snap(val) == comp.eps0:
                return val  # consistent: log_delta(val) uses this very composition
            eps0 = val
        if low:
            return best
        # no fixed point (the answer sits on a snapping boundary): step up until consistent
        val = max(val, best) if math.isfinite(best) else val
        step = 1e-9 * max(1.0, val)
        for _ in range(60):
            if self.log_delta(val) <= log_target:
                return val
            val += step
            step *= 4
        raise NumericalPrecisionError("could not certify epsilon")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# public object


class PrivacyLossDistribution:
    """A composition of mechanisms, accounted in both orderings (add/remove).

    Build with :meth:`from_gaussian` or :meth:`from_subsampled_gaussian`, combine with
    :meth:`compose` / :meth:`self_compose`, query with :meth:`delta` / :meth:`epsilon`. The
    grid (discretisation interval ``h``) is chosen at query time from the composed spread
    (``h = min(0.05, 8e-5·max(1, sd(ΣL)/16))`` by default) unless ``grid=`` is given.
    Immutable (discretisations and compositions are cached per grid).
    """

    def __init__(self, _factors: tuple = ()):
        self._factors = tuple(_factors)  # ((mech_add, mech_remove), count)

    # constructors ---------------------------------------------------------------------------
    @classmethod
    def from_gaussian(cls, *, mu) -> PrivacyLossDistribution:
        """Gaussian mechanism N(0,1) vs N(mu,1) (symmetric; EXACT pair).

        Supported for mu <= 1e4 (beyond it ε exceeds 5e7 and the grid explodes; the exact
        curve is :mod:`unlearn_theory.gaussian`): NumericalPrecisionError otherwise.
        """
        mu = v.check_positive("mu", mu)
        if mu > _MAX_MU:
            raise NumericalPrecisionError(
                f"mu={mu!r} is outside the PLD accountant's range (0, {_MAX_MU:g}]; "
                "use unlearn_theory.gaussian for the exact curve"
            )
        m = _GaussianPair(mu)
        return cls((((m, m), 1),))

    @classmethod
    def from_subsampled_gaussian(cls, *, sample_rate, noise_multiplier) -> PrivacyLossDistribution:
        """Poisson-subsampled Gaussian (rate q, noise multiplier z, sensitivity 1, add/remove).

        Supported for z in [1e-2, 1e8] (below, one step's ε(1e-5) already exceeds 5000 and the
        loss range explodes; above, 1/z² is below float resolution of the loss):
        NumericalPrecisionError otherwise (``dp_sgd_epsilon`` then uses the RDP route).
        """
        q = v.check_sample_rate(sample_rate)
        z = v.check_positive("noise_multiplier", noise_multiplier)
        if not _MIN_NOISE_MULTIPLIER <= z <= _MAX_NOISE_MULTIPLIER:
            raise NumericalPrecisionError(
                f"noise_multiplier={z!r} is outside the PLD accountant's range "
                f"[{_MIN_NOISE_MULTIPLIER:g}, {_MAX_NOISE_MULTIPLIER:g}]"
            )
        pair = (_SubsampledPair(q, z, "add"), _SubsampledPair(q, z, "remove"))
        return cls(((pair, 1),))

    # algebra ------------------------------------------------------------------------------
    def compose(self, other: PrivacyLossDistribution) -> PrivacyLossDistribution:
        if not isinstance(other, PrivacyLossDistribution):
            raise InvalidParameterError("other", other, "must be a PrivacyLossDistribution")
        merged: dict = {}
        for pair, c in self._factors + other._factors:
            key = (pair[0].key, pair[1].key)
            if key in merged:
                merged[key] = (pair, merged[key][1] + c)
            else:
                merged[key] = (pair, c)
        return PrivacyLossDistribution(
            tuple(sorted(merged.values(), key=lambda t: repr(t[0][0].key)))
        )

    def self_compose(self, steps) -> PrivacyLossDistribution:
        steps = v.check_int("steps", steps, minimum=1)
        return PrivacyLossDistribution(tuple((pair, c * steps) for pair, c in self._factors))

    @property
    def steps(self) -> int:
        return sum(c for _, c in self._factors)

    # grid --------------------------------------------------------------------------------
    def _default_grid(self) -> float:
        # 8e-5 (finer than dp-accounting's default 1e-4, so never looser on DP-SGD problems),
        # coarsened only for compositions spread so wide (sd > 16) that the window explodes
        var = sum(c * pair[0].stats()[1] for pair, c in self._factors)
        return min(0.05, 8e-5 * max(1.0, math.sqrt(var) / 16.0))

    def _grid(self, grid) -> float:
        if grid is None:
            return self._default_grid()
        h = v.check_in_range("grid", grid, 0.0, 1.0, high_open=False)
        if h < 1e-9:
            raise InvalidParameterError("grid", grid, "must be >= 1e-9")
        return h

    def _directions(self, h: float):
        if not self._factors:
            raise InvalidParameterError("pld", self, "is empty: compose at least one mechanism")
        cache = self.__dict__.setdefault("_dirs_cache", {})
        if h not in cache:
            dirs = []
            for i in range(2):
                facs = [(pair[i], c) for pair, c in self._factors]
                dirs.append(_Direction(facs, h))
            if all(pair[0] is pair[1] for pair, _ in self._factors):
                dirs = dirs[:1]  # symmetric pair: one direction suffices
            while len(cache) >= 2:  # keep two grids' discretisations (memory)
                cache.pop(next(iter(cache)))
            cache[h] = dirs
        return cache[h]

    # queries ------------------------------------------------------------------------------
    def _log_delta_upper(self, eps: float, grid=None) -> float:
        """log of :meth:`delta`'s ``.upper`` without the lower end (internal; calibration)."""
        h = self._grid(grid)
        return max(d.log_delta(eps) for d in self._directions(h))

    def delta(self, epsilon, *, grid=None) -> PLDResult:
        """δ(ε) = max over both orderings. ``.upper`` is a certified UPPER bound."""
        eps = v.check_epsilon(epsilon)
        h = self._grid(grid)
        dirs = self._directions(h)
        up = max(d.log_delta(eps) for d in dirs)
        low = max(d.log_delta(eps, low=True) for d in dirs)
        up_v = min(1.0, math.exp(up))
        if up_v <= 0.0:
            raise NumericalPrecisionError(f"delta upper bound underflows float64 at epsilon={eps}")
        return PLDResult(upper=up_v, lower=min(up_v, math.exp(low)), query="delta", grid=h)

    def epsilon(self, delta, *, grid=None, lower: bool = True) -> PLDResult:
        """Smallest ε with δ(ε) <= delta in both orderings (feasible side).

        ``.upper`` is a certified UPPER bound on the true ε(δ), and
        ``pld.delta(pld.epsilon(d).upper).upper <= d``; ``lower=False`` skips the optimistic
        companion (then ``.lower`` is -inf) and saves about a third of the cost.
        """
        dl = v.check_delta(delta)
        h = self._grid(grid)
        lt = math.log(dl)
        dirs = self._directions(h)
        guesses = []
        for d in dirs:
            _, m, var = d._logmgf_fast(0.0, False)
            guess = m + math.sqrt(var) * math.sqrt(2 * -lt)
            # (the moment guess can lie far above the composed support when the loss is
            # heavy-tailed, e.g. small noise multipliers: tilting there overflows the log-MGF)
            guesses.append(min(guess, d.h * d.k_max))
        # a 4x coarser composition (cheap) turns the moment guess into one within the
        # discretisation error, so the fine inversion usually needs one composition only
        h_c = 4.0 * h
        if h_c <= 0.05:
            for i, d_c in enumerate(self._directions(h_c)):
                try:
                    val, below = d_c.compose(guesses[i]).invert(lt)
                except NumericalPrecisionError:  # pragma: no cover - the guess stays
                    continue
                if math.isfinite(val) and not below:
                    guesses[i] = val
        # the direction with the larger guess first; the others are first tried at its answer
        order = sorted(range(len(dirs)), key=lambda i: -guesses[i])
        up = -math.inf
        for i in order:
            d = dirs[i]
            if math.isfinite(up) and d.log_delta(up) <= lt:
                continue  # this ordering already certifies the current answer
            val = d.epsilon(lt, False, guesses[i] if not math.isfinite(up) else up)
            if val > up:
                up = val
        if not math.isfinite(up):
            raise NumericalPrecisionError(
                f"delta={dl} is below the accountant's truncated tail mass; no finite epsilon"
            )
        # every ordering must certify the answer on the delta() path (its own composition)
        for d in dirs:
            step = 1e-9 * max(1.0, up)
            for _ in range(60):
                if d.log_delta(up) <= lt:
                    break
                up += step
                step *= 4
            else:  # pragma: no cover
                raise NumericalPrecisionError(f"could not certify epsilon for delta={dl}")
        lows = [-math.inf]
        if lower:
            lows = [d.epsilon(lt, True, up) for d in dirs]
        return PLDResult(upper=up, lower=min(up, max(lows)), query="epsilon", grid=h)
