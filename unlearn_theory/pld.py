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
  numbering). Float round-off of the split is covered by moving an extra 1e-6 of each bin's
  mass to the upper endpoint (always pessimistic).
* **Pessimistic truncation.** Per mechanism, loss mass above the window goes to the +inf atom,
  mass below it to the lowest grid point.
* **Tilted FFT composition.** The composed pmf is computed by rfft/power/irfft of the
  exponentially tilted pmfs ``p_λ(l) ∝ p(l)e^{λl}`` (tilting commutes with convolution), with λ
  chosen so that the tilted composed mean sits at the queried ε, then untilted in log space
  (docs/theory.md §4; the saddle-point idea of Alghamdi et al. 2023, arXiv 2208.09595). Each bin of the
  tilted composed pmf is inflated by an explicit float64 FFT round-off allowance
  ``8u·(T+1)·(log2 N + 1)`` (u = 2^-53, T = number of composed factors), so negative or
  under-reported round-off cannot make δ optimistic, down to δ = 1e-12 and below.
* **No wrap-around loss.** The FFT length covers the window [bottom, top] with bottom <= ε; the
  composed mass above ``top`` is bounded by a Chernoff bound ``min_λ' exp(K(λ') - λ'·top)``
  (K the log-mgf of the discretised composed loss) and added to δ; aliased mass is nonnegative
  and only ever adds to δ.

``.lower`` is the optimistic counterpart (every bin's mass rounded DOWN to its lower endpoint,
truncated tails dropped, FFT allowance subtracted). It is a coarse, uncertified companion: its
gap to ``.upper`` (the reported error bar) is dominated by the round-down bias ~ T·h/2 in loss.

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
from ._logspace import log1mexp, log_sub_exp
from .bounds import Bound, BoundKind
from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = ["PrivacyLossDistribution", "PLDResult"]

_U = 2.0**-53
_CTD_MARGIN = 1e-6
_LOG_TAIL_FACTOR = math.log(1e-32)  # per-mechanism truncation tail (each side, per step)
_LOG_TAIL_COMPOSED = math.log(1e-30)  # composed Chernoff tail target
_MAX_COMPOSITIONS = 1 << 40  # beyond it the rounding allowance 8u·T·log2(n) per bin is ≳ 1e-3
_MAX_MU = 1e4  # from_gaussian's supported range (0, _MAX_MU]
_MIN_NOISE_MULTIPLIER, _MAX_NOISE_MULTIPLIER = 1e-2, 1e8  # from_subsampled_gaussian's range
_MAX_GRID_POINTS = 1 << 22  # one mechanism's discretised support (beyond: seconds per query)


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


def _log_norm_interval(z1, z2):
    """log(Φ(z2) - Φ(z1)) for z1 <= z2 (±inf allowed), accurate in both tails."""
    z1 = np.asarray(z1, dtype=np.float64)
    z2 = np.asarray(z2, dtype=np.float64)
    right = z1 > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        a = log_sub_exp(special.log_ndtr(-z1), special.log_ndtr(-z2))
        b = log_sub_exp(special.log_ndtr(z2), special.log_ndtr(z1))
    out = np.where(right, a, b)
    return np.where(z2 <= z1, -np.inf, out)


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
        lup = np.logaddexp(lc + lfac, la + math.log(_CTD_MARGIN))
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


def _fft_len(n: int) -> int:
    return sfft.next_fast_len(int(n), real=True)


class _Direction:
    def __init__(self, factors: list[tuple[_Mechanism, int]], h: float):
        self.h = h
        self.items = []
        self.losses = []
        total = sum(c for _, c in factors)
        if total > _MAX_COMPOSITIONS:
            raise NumericalPrecisionError(
                f"{total} compositions: the FFT rounding allowance (~{total:.2g} ulps per bin) "
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

    def _logmgf(self, lam: float, low: bool = False):
        """K(λ) = Σ count·log Σ_l p(l)e^{λl}, tilted mean and variance."""
        k = mean = var = 0.0
        for (_, lw, _, lwl, c), loss in zip(self.items, self.losses):
            w = lwl if low else lw
            lt = w + lam * loss
            mx = float(np.max(lt))
            e = np.exp(lt - mx)
            tot = float(e.sum())
            lm = mx + math.log(tot)
            r = e / tot
            m1 = float(r @ loss)
            k += c * lm
            mean += c * m1
            var += c * float(r @ (loss - m1) ** 2)
        return k, mean, var

    def _tilt_for(self, epsilon: float) -> float:
        _, m0, _ = self._logmgf(0.0)
        if epsilon <= m0:
            return 0.0
        lo, hi = 0.0, 1.0
        while self._logmgf(hi)[1] < epsilon and hi < 1e4:
            lo, hi = hi, 2 * hi
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if self._logmgf(mid)[1] < epsilon:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-3 * hi:
                break
        return lo

    def compose(self, lam: float, bottom: float, low: bool = False):
        """Untilted composed log-pmf on [bottom, top] (plus constant extra mass, log)."""
        h = self.h
        k_lam, mean, var = self._logmgf(lam, low)
        sd = math.sqrt(max(var, 0.0))
        # top of the window from a Chernoff bound on the untilted composed finite measure
        best_top, best_lb = math.inf, None
        for lp in lam + np.geomspace(max(1e-2, 0.05 * lam), 20 + 2 * lam, 14):
            kp = self._logmgf(lp, low)[0]
            top = (kp - _LOG_TAIL_COMPOSED) / lp
            if top < best_top:
                best_top, best_lb = top, (kp, lp)
        k_max = sum(c * (lo + lw.size - 1) for lo, lw, _, _, c in self.items)
        k_min = sum(c * lo for lo, _, _, _, c in self.items)
        top = max(best_top, mean + 12 * sd, bottom + h)
        if math.isfinite(top) and top / h < k_max:
            kt = math.ceil(top / h) + 1
            log_tail = best_lb[0] - best_lb[1] * kt * h  # P(S > kt·h) bound
        else:  # no finite Chernoff window (the log-MGF overflowed): keep the whole support
            kt = k_max
        if kt >= k_max:  # the window reaches the top of the composed support: no tail
            kt, log_tail = k_max, -np.inf
        low_end = min(bottom, mean - 12 * sd)
        kb = math.floor(low_end / h) - 1 if math.isfinite(low_end) else k_min
        kb = min(max(kb, k_min), kt - 1)
        width = kt - kb + 1
        n = _fft_len(max(width, max(lw.size for _, lw, *_ in self.items)))
        spec = None
        base = 0
        for (lo, lw, _, lwl, c), loss in zip(self.items, self.losses):
            w = lwl if low else lw
            lt = w + lam * loss
            lm = special.logsumexp(lt)
            f = sfft.rfft(np.exp(lt - lm), n) ** c
            spec = f if spec is None else spec * f
            base += c * lo
        out = sfft.irfft(spec, n)
        err = 8 * _U * (self.total + 1) * (math.log2(n) + 1)
        shift = (kb - base) % n
        out = np.roll(out, -shift)[:width]
        idx = np.arange(kb, kb + width)
        with np.errstate(divide="ignore"):
            if low:
                body = np.log(np.maximum(out - err, 0.0))
            else:
                body = np.log(np.maximum(out, 0.0) + err)
        logp = k_lam - lam * idx * h + body
        return idx, logp, log_tail

    def arrays(self, epsilon: float, low: bool = False):
        lam = self._tilt_for(epsilon)
        idx, logp, log_tail = self.compose(lam, epsilon, low)
        extra = -np.inf if low else float(np.logaddexp(self.log_inf, log_tail))
        return idx, logp, extra


def _log_delta_from_arrays(idx, logp, extra, h, epsilon):
    sel = idx * h > epsilon
    if not np.any(sel):
        return extra
    loss = idx[sel] * h
    terms = logp[sel] + log1mexp(np.minimum(epsilon - loss, 0.0))
    return float(np.logaddexp(extra, special.logsumexp(terms)))


def _epsilon_from_arrays(idx, logp, extra, h, log_target):
    """Smallest ε with δ(ε) <= target for the discrete PLD (exact inversion)."""
    if extra >= log_target:
        return math.inf, False
    loss = idx * h
    # suffix sums over l >= j
    a = np.logaddexp.accumulate(logp[::-1])[::-1]
    b = np.logaddexp.accumulate((logp - loss)[::-1])[::-1]
    # δ at ε = loss[j-1] uses terms j..end: extra + A_j - e^{ε} B_j
    with np.errstate(invalid="ignore"):
        at_grid = np.logaddexp(extra, log_sub_exp(a, np.minimum(loss - h + b, a)))
    # at_grid[j] = δ(loss[j] - h) (terms l >= j); non-increasing in j
    ok = at_grid <= log_target
    if not np.any(ok):
        # δ(loss[-1]) = extra < target: the answer lies in (loss[-1] − h, loss[-1]] (a loss
        # bounded above, e.g. the remove direction of a subsampled Gaussian at small noise,
        # piles its mass on the last grid point)
        j = len(loss)
    else:
        j = int(np.argmax(ok))
    if j == 0:
        # δ(bottom) <= target already: bottom is feasible, the smallest answer may lie below
        return float(loss[0] - h), True
    # ε in (loss[j] - 2h, loss[j] - h]: terms l >= j-1 -> extra + A - e^ε B = target
    i = j - 1
    top = float(np.logaddexp(extra, a[i]))
    eps = float(log_sub_exp(top, log_target) - b[i]) if top > log_target else -math.inf
    eps_hi = float(loss[j] - h) if j < len(loss) else float(loss[i])
    eps = min(max(eps, float(loss[i] - h)), eps_hi)
    return float(np.nextafter(eps, np.inf) + 4 * _U * abs(eps)), False


# --------------------------------------------------------------------------------------------
# public object


class PrivacyLossDistribution:
    """A composition of mechanisms, accounted in both orderings (add/remove).

    Build with :meth:`from_gaussian` or :meth:`from_subsampled_gaussian`, combine with
    :meth:`compose` / :meth:`self_compose`, query with :meth:`delta` / :meth:`epsilon`. The
    grid (discretisation interval ``h``) is chosen at query time from the composed spread
    (``h = min(0.05, 5e-5·max(1, sd(ΣL)))`` by default) unless ``grid=`` is given. Immutable.
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
        var = sum(c * pair[0].stats()[1] for pair, c in self._factors)
        return min(0.05, 5e-5 * max(1.0, math.sqrt(var)))

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
        dirs = []
        for i in range(2):
            facs = [(pair[i], c) for pair, c in self._factors]
            dirs.append(_Direction(facs, h))
        if all(pair[0] is pair[1] for pair, _ in self._factors):
            dirs = dirs[:1]  # symmetric pair: one direction suffices
        return dirs

    # queries ------------------------------------------------------------------------------
    @staticmethod
    def _log_delta_upper(dirs, eps: float) -> float:
        out = -math.inf
        for d in dirs:
            idx, logp, extra = d.arrays(eps)
            out = max(out, _log_delta_from_arrays(idx, logp, extra, d.h, eps))
        return out

    def delta(self, epsilon, *, grid=None) -> PLDResult:
        """δ(ε) = max over both orderings. ``.upper`` is a certified UPPER bound."""
        eps = v.check_epsilon(epsilon)
        h = self._grid(grid)
        ups, lows = [], []
        for d in self._directions(h):
            idx, logp, extra = d.arrays(eps)
            ups.append(_log_delta_from_arrays(idx, logp, extra, h, eps))
            idx, logp, extra = d.arrays(eps, low=True)
            lows.append(_log_delta_from_arrays(idx, logp, extra, h, eps))
        up = min(1.0, math.exp(max(ups)))
        if up <= 0.0:
            raise NumericalPrecisionError(f"delta upper bound underflows float64 at epsilon={eps}")
        return PLDResult(upper=up, lower=min(up, math.exp(max(lows))), query="delta", grid=h)

    def _epsilon_one(self, d: _Direction, log_target: float, low: bool, guess: float):
        """Tilt at the current guess, invert exactly, re-tilt at the answer; every value found
        with δ(value) <= target (under any tilt) is certified, so the minimum of them is."""
        best = math.inf
        eps = guess
        for _ in range(8):
            idx, logp, extra = d.arrays(max(eps, 0.0), low)
            val, below = _epsilon_from_arrays(idx, logp, extra, d.h, log_target)
            best = min(best, val)
            if best <= 0.0:
                return 0.0
            if below:  # the answer lies below this window: move the tilt point down
                eps = min(eps, val) - max(0.5, 0.5 * abs(val))
                continue
            if not math.isfinite(val):
                break
            if abs(val - eps) < 0.05 * max(1.0, abs(val)):
                break
            eps = val
        return max(best, 0.0)

    def epsilon(self, delta, *, grid=None, lower: bool = True) -> PLDResult:
        """Smallest ε with δ(ε) <= delta in both orderings (feasible side).

        ``.upper`` is a certified UPPER bound on the true ε(δ); ``lower=False`` skips the
        optimistic companion (then ``.lower`` is -inf) and halves the cost.
        """
        dl = v.check_delta(delta)
        h = self._grid(grid)
        lt = math.log(dl)
        ups, lows = [], []
        for d in self._directions(h):
            _, m, var = d._logmgf(0.0)
            guess = m + math.sqrt(var) * math.sqrt(2 * -lt)
            # (the moment guess can lie far above the composed support when the loss is
            # heavy-tailed, e.g. small noise multipliers: tilting there overflows the log-MGF)
            top = d.h * sum(c * (lo + lw.size - 1) for lo, lw, _, _, c in d.items)
            guess = min(guess, top)
            ups.append(self._epsilon_one(d, lt, False, guess))
            if lower:
                lows.append(self._epsilon_one(d, lt, True, ups[-1]))
        if not lower:
            lows = [-math.inf]
        up = max(ups)
        if not math.isfinite(up):
            raise NumericalPrecisionError(
                f"delta={dl} is below the accountant's truncated tail mass; no finite epsilon"
            )
        # Re-check on the delta() path (its own tilt): step up until it certifies too, so that
        # pld.delta(pld.epsilon(d).upper).upper <= d holds when re-evaluated.
        dirs = self._directions(h)
        step = 1e-8 * max(1.0, up)
        for _ in range(60):
            if self._log_delta_upper(dirs, up) <= lt:
                break
            up += step
            step *= 4
        else:
            raise NumericalPrecisionError(f"could not certify epsilon for delta={dl}")
        return PLDResult(upper=up, lower=min(up, max(lows)), query="epsilon", grid=h)
