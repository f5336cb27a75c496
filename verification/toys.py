"""Toy problems with exactly (or near-exactly) known divergences (docs/theory.md §12.6).

Common protocol (every toy):

- ``sample(n, rng) -> (x0, x1)``: vectorised draws from the two output laws P0 (reference /
  retrained world) and P1 (unlearned / other world), one row per draw;
- ``privacy_loss(x)`` = log p1(x)/p0(x) where the densities are known;
- ``delta(epsilon, direction="PQ")``: the exact hockey-stick E_{e^eps}(P1 || P0); ``"QP"`` is
  E_{e^eps}(P0 || P1) [kind "exact"; the grid toys are near-exact, error O(h^2)];
- ``renyi(orders, direction="PQ")`` where a closed form exists;
- ``epsilon(delta, direction="both")``: the exact smallest eps with delta(eps) <= delta.

Gaussian-pair toys (``gaussian_shift = True``) are N(m0, v I) against N(m1, v I) up to a known
affine map, so they are mu-GDP with ``mu`` exposed. The unlearning-method toys run the METHOD'S
OWN UPDATE RULE from the two worst-case starts (+-C0) in their sampler, and expose the exact law
of the output computed independently (closed form or grid propagation).

References: Gaussian/Laplace/subsampled profiles, Balle & Wang 2018 (arXiv 1805.06530), Mironov
2017 (arXiv 1702.07476); gradient-clipping anchors, docs/theory.md §6.3 (Koloskova et al. 2025, arXiv
2506.06985); block-wise scheduling, docs/theory.md §8.5 (Dolgova & Stich 2026, arXiv 2601.05134); model
clipping, docs/theory.md §5.3; ridge / ULA laws, docs/theory.md §11 (Benarroch, Atif & Cappé 2026, arXiv
2602.15602 setting).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import integrate, optimize, special, stats

from unlearn_theory import gaussian
from unlearn_theory._validate import (
    check_delta,
    check_int,
    check_nonnegative,
    check_positive,
    check_sample_rate,
)
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

__all__ = [
    "GaussianShift",
    "Laplace",
    "SubsampledGaussian",
    "GroupSubsampledGaussian",
    "QuadraticNoisyGD",
    "GradientClippingChain",
    "BlockwiseChain",
    "GaussianPair",
    "RidgeLangevin",
    "GridChain1D",
    "ModelClippingGrid",
    "ModelClippingWorstCase",
    "ProjectedLangevinGrid",
    "LangevinQuadraticChain",
    "exact_epsilon",
    "FIELDS",
    "FIELD_NAMES",
    "field_gradient",
]

_DIRECTIONS = ("PQ", "QP")


def _check_direction(direction):
    if direction not in _DIRECTIONS:
        raise InvalidParameterError("direction", direction, "must be 'PQ' or 'QP'")
    return direction


def exact_epsilon(toy, delta, *, direction="both", hi=60.0):
    """Smallest eps >= 0 with toy.delta(eps) <= delta (max over both directions by default).

    Bisection on the exact profile (non-increasing in eps); returns the upper end of the final
    bracket (the side where delta(eps) <= delta holds). [EXACT to 1e-12 relative in eps]
    """
    delta = check_delta(delta)
    dirs = _DIRECTIONS if direction == "both" else (_check_direction(direction),)

    def d(e):
        return max(float(np.max(toy.delta(e, direction=r))) for r in dirs)

    if d(0.0) <= delta:
        return 0.0
    lo, up = 0.0, hi
    while d(up) > delta:
        lo, up = up, 2 * up
        if up > 1e4:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + up)
        if d(mid) <= delta:
            up = mid
        else:
            lo = mid
        if up - lo <= 1e-12 * max(up, 1e-12):
            break
    return up


class _Toy:
    gaussian_shift = False

    def epsilon(self, delta, *, direction="both"):
        return exact_epsilon(self, delta, direction=direction)


# ------------------------------------------------------------------------------------------
# Gaussian pairs (equal covariance)


class _GaussianPairBase(_Toy):
    """Output laws N(m0, v) and N(m1, v) (1-D or along a known direction); mu = |m1-m0|/sqrt(v)."""

    gaussian_shift = True
    mu: float  # provided by subclasses (field or property)

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        return gaussian.delta(epsilon, mu=self.mu)

    def epsilon(self, delta, *, direction="both"):
        """Exact smallest eps with delta(eps; mu) <= delta (gaussian.epsilon, feasible side)."""
        if direction != "both":
            _check_direction(direction)
        return float(gaussian.epsilon(check_delta(delta), mu=self.mu))

    def log_delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        return gaussian.log_delta(epsilon, mu=self.mu)

    def renyi(self, orders, direction="PQ"):
        _check_direction(direction)
        return np.asarray(orders, dtype=float) * self.mu**2 / 2.0


@dataclass(frozen=True)
class GaussianShift(_GaussianPairBase):
    """P0 = N(0,1), P1 = N(mu,1): exact profile gaussian.delta, symmetric in direction."""

    mu: float

    def __post_init__(self):
        check_positive("mu", self.mu)

    def sample(self, n, rng):
        return rng.standard_normal(n), self.mu + rng.standard_normal(n)

    def sample_torch(self, n, seed_seq, device):
        g, torch = _torch_generator(seed_seq, device)
        x = torch.randn(2, n, generator=g, device=device, dtype=torch.float64)
        return x[0].cpu().numpy(), (x[1] + self.mu).cpu().numpy()

    def privacy_loss(self, x):
        """log p1(x)/p0(x) = mu x - mu^2/2 (large under P1)."""
        return self.mu * np.asarray(x) - self.mu**2 / 2.0


def _torch_generator(seed_seq, device):
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(seed_seq.generate_state(1, np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF))
    return g, torch


# ------------------------------------------------------------------------------------------
# Laplace and subsampled Gaussian


@dataclass(frozen=True)
class Laplace(_Toy):
    """P0 = Lap(0,b), P1 = Lap(shift,b); eps0 = shift/b; delta = 1 - e^{(eps-eps0)/2} (both ways).

    D_alpha = log[(alpha/(2alpha-1)) e^{(alpha-1)eps0} + ((alpha-1)/(2alpha-1)) e^{-alpha eps0}]
    /(alpha-1) (Mironov 2017, arXiv 1702.07476, Table II), symmetric.
    """

    shift: float
    scale: float = 1.0

    def __post_init__(self):
        check_positive("shift", self.shift)
        check_positive("scale", self.scale)

    @property
    def eps0(self):
        return self.shift / self.scale

    @property
    def loss_bound(self):
        """|L| <= eps0 almost surely (bounded privacy loss)."""
        return self.eps0

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        e = np.asarray(epsilon, dtype=float)
        out = np.where(e < self.eps0, -np.expm1((np.minimum(e, self.eps0) - self.eps0) / 2.0), 0.0)
        return out if out.ndim else float(out)

    def renyi(self, orders, direction="PQ"):
        _check_direction(direction)
        a = np.asarray(orders, dtype=float)
        e0 = self.eps0
        t1 = np.log(a / (2 * a - 1)) + (a - 1) * e0
        t2 = np.log((a - 1) / (2 * a - 1)) - a * e0
        return np.logaddexp(t1, t2) / (a - 1)

    def sample(self, n, rng):
        return rng.laplace(0.0, self.scale, n), rng.laplace(self.shift, self.scale, n)

    def privacy_loss(self, x):
        """(|x| - |x - shift|)/b, snapped to the atoms +-eps0 outside (0, shift).

        The snap matters: float rounding of loc + scale*X makes the computed loss differ at the
        ulp level between the two worlds on the atoms, and a threshold placed between those
        ulps "detects" a floating-point artifact (Mironov 2012) rather than the mechanism.
        """
        x = np.asarray(x, dtype=float)
        mid = (np.abs(x) - np.abs(x - self.shift)) / self.scale
        return np.where(x <= 0, -self.eps0, np.where(x >= self.shift, self.eps0, mid))


@dataclass(frozen=True)
class GroupSubsampledGaussian(_Toy):
    """One Poisson-subsampled Gaussian step with ``forget_size`` aligned records (docs/theory.md §12.6
    item 5, §7.2): P0 = N(0, s^2), P1 = sum_j Bin(j; k, q) N(j, s^2), s = noise_multiplier
    (clip = 1). forget_size = 1 is the add/remove subsampled Gaussian.

    L = log p1/p0 = log sum_j w_j exp((2jx - j^2)/(2s^2)) is increasing in x, so {L > eps} is
    a half-line {x > x_eps} and delta(eps) = P1(x > x_eps) - e^eps P0(x > x_eps) [EXACT]; the
    reverse direction uses {L < -eps}. Root-finding by brentq to 1e-14.
    """

    sample_rate: float
    noise_multiplier: float
    forget_size: int = 1

    def __post_init__(self):
        check_sample_rate(self.sample_rate)
        check_positive("noise_multiplier", self.noise_multiplier)
        check_int("forget_size", self.forget_size, minimum=1)

    @property
    def _weights(self):
        k = self.forget_size
        j = np.arange(k + 1, dtype=float)
        return j, stats.binom.logpmf(np.arange(k + 1), k, self.sample_rate)

    def privacy_loss(self, x):
        s2 = self.noise_multiplier**2
        j, lw = self._weights
        x = np.asarray(x, dtype=float)
        z = lw + (2 * j * x[..., None] - j * j) / (2 * s2)
        return special.logsumexp(z, axis=-1)

    def _root(self, level):
        f = lambda x: float(self.privacy_loss(x)) - level  # noqa: E731
        lo, hi = -1.0, 1.0
        while f(lo) > 0:
            lo *= 2
        while f(hi) < 0:
            hi *= 2
            if hi > 1e12:
                return math.inf
        return optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500)

    def _tail_p1(self, x, upper):
        s = self.noise_multiplier
        j, lw = self._weights
        w = np.exp(lw)
        z = (x - j) / s
        return float(np.sum(w * (special.ndtr(-z) if upper else special.ndtr(z))))

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        e = np.atleast_1d(np.asarray(epsilon, dtype=float))
        out = np.empty_like(e)
        s = self.noise_multiplier
        p0_zero = (1 - self.sample_rate) ** self.forget_size  # P1's weight on N(0, s^2)
        for i, ei in enumerate(e):
            if direction == "PQ":
                x = self._root(ei)
                d = (
                    0.0
                    if math.isinf(x)
                    else self._tail_p1(x, True) - math.exp(ei) * special.ndtr(-x / s)
                )
            else:
                if math.exp(-ei) <= p0_zero:  # L >= log p0_zero > -eps everywhere
                    d = 0.0
                else:
                    x = self._root(-ei)
                    d = special.ndtr(x / s) - math.exp(ei) * self._tail_p1(x, False)
            out[i] = max(d, 0.0)
        return out if np.ndim(epsilon) else float(out[0])

    def renyi(self, orders, direction="PQ"):
        """D_alpha by adaptive quadrature of p_num^alpha p_den^{1-alpha} in log space
        (direction "PQ": D_alpha(P1 || P0), the add direction) [EXACT up to quadrature error,
        relative ~1e-10]. k = 1, alpha = 2: log(1 + q^2 (e^{1/s^2} - 1)) (checked in tests)."""
        _check_direction(direction)
        s, k = self.noise_multiplier, self.forget_size
        a = np.atleast_1d(np.asarray(orders, dtype=float))
        out = np.empty_like(a)
        lo, hi = -40.0 * s - k, k + 40.0 * s

        def log_p0(x):
            return -0.5 * (x / s) ** 2

        def log_p1(x):
            return log_p0(x) + float(self.privacy_loss(x))

        for i, al in enumerate(a):
            if direction == "PQ":
                lf = lambda x, al=al: al * log_p1(x) + (1 - al) * log_p0(x)  # noqa: E731
            else:
                lf = lambda x, al=al: al * log_p0(x) + (1 - al) * log_p1(x)  # noqa: E731
            xs = np.linspace(lo, hi, 4001)
            m = max(lf(x) for x in xs[::40])
            val = integrate.quad(
                lambda x, lf=lf, m=m: math.exp(lf(x) - m),
                lo,
                hi,
                limit=500,
                points=list(np.arange(k + 1.0)),
                epsabs=0,
                epsrel=1e-12,
            )[0]
            out[i] = (m + math.log(val) - math.log(s * math.sqrt(2 * math.pi))) / (al - 1)
        return out if np.ndim(orders) else float(out[0])

    def sample(self, n, rng):
        s = self.noise_multiplier
        counts = rng.binomial(self.forget_size, self.sample_rate, n)
        return s * rng.standard_normal(n), counts + s * rng.standard_normal(n)


@dataclass(frozen=True)
class SubsampledGaussian(_Toy):
    """P1 = (1-q)N(0,s^2) + qN(1,s^2), P0 = N(0,s^2) (docs/theory.md §12.6 item 5); both directions,
    by the closed forms of §12.6 (independent of :class:`GroupSubsampledGaussian`'s root finder).
    """

    sample_rate: float
    noise_std: float

    def __post_init__(self):
        check_sample_rate(self.sample_rate)
        check_positive("noise_std", self.noise_std)

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        q, s = self.sample_rate, self.noise_std
        e = np.atleast_1d(np.asarray(epsilon, dtype=float))
        out = np.zeros_like(e)
        sf = special.ndtr
        for i, ei in enumerate(e):
            if direction == "PQ":
                x = s * s * math.log((math.exp(ei) - (1 - q)) / q) + 0.5
                d = (1 - q) * sf(-x / s) + q * sf(-(x - 1) / s) - math.exp(ei) * sf(-x / s)
            else:
                t = math.exp(-ei) - (1 - q)
                if t <= 0:
                    d = 0.0
                else:
                    x = s * s * math.log(t / q) + 0.5
                    d = sf(x / s) - math.exp(ei) * ((1 - q) * sf(x / s) + q * sf((x - 1) / s))
            out[i] = max(d, 0.0)
        return out if np.ndim(epsilon) else float(out[0])

    def renyi(self, orders, direction="PQ"):
        """D_alpha by quadrature (see :meth:`GroupSubsampledGaussian.renyi`)."""
        return GroupSubsampledGaussian(self.sample_rate, self.noise_std, 1).renyi(orders, direction)

    def sample(self, n, rng):
        s, q = self.noise_std, self.sample_rate
        xp = s * rng.standard_normal(n) + (rng.random(n) < q)
        return s * rng.standard_normal(n), xp

    def privacy_loss(self, x):
        """log p1(x)/p0(x) = log(1 - q + q exp((2x-1)/(2 s^2)))."""
        q, s = self.sample_rate, self.noise_std
        z = (2 * np.asarray(x) - 1) / (2 * s * s)
        return np.logaddexp(math.log1p(-q), math.log(q) + z) if q < 1 else z


# ------------------------------------------------------------------------------------------
# Noisy GD on a quadratic (docs/theory.md §12.6 item 2)


@dataclass(frozen=True)
class QuadraticNoisyGD(_GaussianPairBase):
    """Noisy GD on f(th;z) = |th-z|^2/2 + (lam/2)|th|^2 (docs/theory.md §12.6 item 2), 1-D.

    U: T steps on D then K on D'; R: T+K steps on D'; th_0 ~ N(0, s0^2). Exactly a Gaussian
    shift with mu_eff = |a^K eta (zD - zD') (1-a^T)/(1-a)| / sqrt(v_{T+K}), a = 1 - eta(1+lam).
    ``sample`` runs the chains and returns outputs standardised by sqrt(v_{T+K}).
    """

    learning_rate: float
    weight_decay: float
    noise_std: float
    steps_train: int
    steps_unlearn: int
    mean_gap: float = 1.0
    initial_noise_std: float = 1.0

    @property
    def a(self):
        return 1.0 - self.learning_rate * (1.0 + self.weight_decay)

    def _var(self, k):
        a2 = self.a**2
        return a2**k * self.initial_noise_std**2 + self.noise_std**2 * (1 - a2**k) / (1 - a2)

    def _gap(self):
        a, t, k = self.a, self.steps_train, self.steps_unlearn
        return a**k * self.learning_rate * self.mean_gap * (1 - a**t) / (1 - a)

    @property
    def mu(self):
        return abs(self._gap()) / math.sqrt(self._var(self.steps_train + self.steps_unlearn))

    def _run(self, n, rng, z_first, z_second):
        eta, lam, s = self.learning_rate, self.weight_decay, self.noise_std
        th = self.initial_noise_std * rng.standard_normal(n)
        for t in range(self.steps_train + self.steps_unlearn):
            z = z_first if t < self.steps_train else z_second
            th = th - eta * ((th - z) + lam * th) + s * rng.standard_normal(n)
        return th

    def sample(self, n, rng):
        xr = self._run(n, rng, 0.0, 0.0)
        xu = self._run(n, rng, self.mean_gap, 0.0)
        sd = math.sqrt(self._var(self.steps_train + self.steps_unlearn))
        return xr / sd, xu / sd

    def privacy_loss(self, x):
        m = self._gap() / math.sqrt(self._var(self.steps_train + self.steps_unlearn))
        return m * np.asarray(x) - m * m / 2.0


# ------------------------------------------------------------------------------------------
# Gradient clipping (docs/theory.md §6.3 exactness anchors) and block-wise scheduling (§8.5)

FIELDS = ("saturating", "zero", "quadratic")


@dataclass(frozen=True)
class GradientClippingChain(_GaussianPairBase):
    """T steps of x <- rho x - gamma Pi_{C1}(g(x)) + N(0, s^2), rho = 1 - gamma lambda, from the
    worst-case starts x = -C0 (world 0) and x = +C0 (world 1), 1-D.

    ``field``:
    - "saturating": world 1 sees g = -C1, world 0 g = +C1 (two oracles, allowed by the
      bounded-perturbation property §6.2(a)); both laws Gaussian, variance s^2 W, mean gap
      B = 2C0 rho^T + 2 gamma C1 sum_{k<T} rho^k: mu = B/(s sqrt W) -- the bound's own B and W,
      so the certificate's Renyi curve alpha B^2/(2 s^2 W) is EXACT here (§6.3 anchors 1, 2).
    - "zero": pure weight decay (g = 0): mu = 2C0 rho^T/(s sqrt W) (anchor 2).
    - "quadratic": shared g(x) = curvature*(x - anchor), clipping inactive (unclipped); the chain
      contracts by kappa = 1 - gamma(lambda + curvature), |kappa| <= rho required; mu =
      2C0|kappa|^T/(s sqrt(sum kappa^{2k})) (anchor 3: the bound with any C1 >= 0 dominates).
    """

    noise_std: float
    steps: int
    clip_initial: float
    clip_gradient: float
    learning_rate: float
    weight_decay: float = 0.0
    field: str = "saturating"
    curvature: float = 1.0
    anchor: float = 0.0

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=1)
        check_positive("clip_initial", self.clip_initial)
        check_nonnegative("clip_gradient", self.clip_gradient)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("weight_decay", self.weight_decay)
        if self.learning_rate * self.weight_decay >= 1:
            raise InvalidParameterError("weight_decay", self.weight_decay, "need gamma*lambda < 1")
        if self.field not in FIELDS:
            raise InvalidParameterError("field", self.field, f"must be one of {FIELDS}")
        if self.field == "quadratic" and abs(self.kappa) > self.rho + 1e-15:
            raise InvalidParameterError(
                "curvature", self.curvature, "need |1 - gamma(lambda + curvature)| <= rho"
            )

    @property
    def rho(self):
        return 1.0 - self.learning_rate * self.weight_decay

    @property
    def kappa(self):
        return 1.0 - self.learning_rate * (self.weight_decay + self.curvature)

    @property
    def mu(self):
        t, s = self.steps, self.noise_std
        r = self.kappa if self.field == "quadratic" else self.rho
        w = sum(r ** (2 * k) for k in range(t))
        b = 2 * self.clip_initial * abs(r) ** t
        if self.field == "saturating":
            b += 2 * self.learning_rate * self.clip_gradient * sum(self.rho**k for k in range(t))
        return b / (s * math.sqrt(w))

    def _world(self, n, rng, world):
        sgn = 1.0 if world == 1 else -1.0
        x = np.full(n, sgn * self.clip_initial)
        gam, c1 = self.learning_rate, self.clip_gradient
        for _ in range(self.steps):
            if self.field == "saturating":
                g = np.full(n, -sgn * c1)  # already at the clip radius C1
            elif self.field == "zero":
                g = 0.0
            else:
                g = self.curvature * (x - self.anchor)  # clipping inactive by definition
            x = self.rho * x - gam * g + self.noise_std * rng.standard_normal(n)
        return x

    def sample(self, n, rng):
        return self._world(n, rng, 0), self._world(n, rng, 1)

    def _means_var(self):
        t = self.steps
        r = self.kappa if self.field == "quadratic" else self.rho
        var = self.noise_std**2 * sum(r ** (2 * k) for k in range(t))
        if self.field == "quadratic":
            fixed = self.learning_rate * self.curvature * self.anchor / (1 - self.kappa)
            m1 = fixed + (self.clip_initial - fixed) * r**t
            m0 = fixed + (-self.clip_initial - fixed) * r**t
        else:
            m1 = self.clip_initial * r**t
            if self.field == "saturating":
                m1 += self.learning_rate * self.clip_gradient * sum(r**k for k in range(t))
            m0 = -m1
        return m0, m1, var

    def privacy_loss(self, x):
        m0, m1, v = self._means_var()
        return (m1 - m0) / v * (np.asarray(x) - 0.5 * (m0 + m1))

    def certify_kwargs(self):
        """Arguments of ``certify("gradient_clipping", ...)`` for this chain."""
        return dict(
            noise_std=self.noise_std,
            steps=self.steps,
            clip_initial=self.clip_initial,
            clip_gradient=self.clip_gradient,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
        )


@dataclass(frozen=True)
class BlockwiseChain(_GaussianPairBase):
    """Block-wise scheduling on k orthogonal 1-D blocks (R^k, coordinate blocks; docs/theory.md §8).

    Phase i runs ``steps_per_block`` gradient-clipping steps on coordinate i only (weight decay
    and fresh N(0, s_b^2) noise on that coordinate; the others frozen). Starts: x = -+C0 u with
    the unit vector u = ``split`` / |split| (default e_1: all of the initial gap in block 1).
    Fields: "saturating" (opposite full-clip gradients per world in every block) or "zero".

    Exact law: independent Gaussians per block, block i mean gap B_i = 2C0 u_i rho^T +
    S (S = 2 gamma C1 sum rho^k for "saturating", 0 for "zero"), variance s_b^2 W, so
    mu^2 = sum_i B_i^2/(s_b^2 W) [EXACT]; the certificate charges every block the full
    (2C0 rho^T + S), i.e. k times the worst block (docs/theory.md §8.5).
    """

    noise_std: float
    blocks: int
    steps_per_block: int
    clip_initial: float
    clip_gradient: float
    learning_rate: float
    weight_decay: float = 0.0
    field: str = "saturating"
    split: tuple | None = None

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("blocks", self.blocks, minimum=1)
        check_int("steps_per_block", self.steps_per_block, minimum=1)
        check_positive("clip_initial", self.clip_initial)
        check_nonnegative("clip_gradient", self.clip_gradient)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("weight_decay", self.weight_decay)
        if self.learning_rate * self.weight_decay >= 1:
            raise InvalidParameterError("weight_decay", self.weight_decay, "need gamma*lambda < 1")
        if self.field not in ("saturating", "zero"):
            raise InvalidParameterError("field", self.field, "must be 'saturating' or 'zero'")
        u = self.direction
        if u.shape != (self.blocks,) or not np.all(np.isfinite(u)):
            raise InvalidParameterError("split", self.split, "need one finite weight per block")

    @property
    def direction(self):
        u = np.zeros(self.blocks) if self.split is None else np.asarray(self.split, float)
        if self.split is None:
            u[0] = 1.0
        nrm = np.linalg.norm(u)
        if nrm == 0:
            raise InvalidParameterError("split", self.split, "must be non-zero")
        return u / nrm

    @property
    def rho(self):
        return 1.0 - self.learning_rate * self.weight_decay

    def _block_gaps(self):
        t, r = self.steps_per_block, self.rho
        s = 0.0
        if self.field == "saturating":
            s = 2 * self.learning_rate * self.clip_gradient * sum(r**k for k in range(t))
        return 2 * self.clip_initial * np.abs(self.direction) * r**t + s

    @property
    def _var(self):
        r = self.rho
        return self.noise_std**2 * sum(r ** (2 * k) for k in range(self.steps_per_block))

    @property
    def mu(self):
        return float(np.linalg.norm(self._block_gaps()) / math.sqrt(self._var))

    def _world(self, n, rng, world):
        sgn = 1.0 if world == 1 else -1.0
        u = self.direction
        x = np.tile(sgn * self.clip_initial * u, (n, 1))
        c1 = self.clip_gradient
        for i in range(self.blocks):
            # in block i the saturating oracle pushes world 1 up (along sign(u_i) >= 0) and 0 down
            si = 1.0 if u[i] >= 0 else -1.0
            for _ in range(self.steps_per_block):
                g = -sgn * si * c1 if self.field == "saturating" else 0.0  # |g| <= C1
                x[:, i] = self.rho * x[:, i] - self.learning_rate * g
                x[:, i] += self.noise_std * rng.standard_normal(n)
        return x

    def sample(self, n, rng):
        return self._world(n, rng, 0), self._world(n, rng, 1)

    def privacy_loss(self, x):
        sgn = np.where(self.direction >= 0, 1.0, -1.0)
        dm = self._block_gaps() * sgn  # m1 - m0 per block; m0 = -m1
        return np.asarray(x) @ (dm / self._var)

    def certify_kwargs(self):
        return dict(
            noise_std=self.noise_std,
            steps=self.blocks * self.steps_per_block,
            blocks=self.blocks,
            clip_initial=self.clip_initial,
            clip_gradient=self.clip_gradient,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
        )


# ------------------------------------------------------------------------------------------
# Unequal-covariance Gaussians; ridge regression by Langevin dynamics (docs/theory.md §11)


def _renyi_gaussians(orders, m0, s0, m1, s1):
    """D_alpha(N(m0,S0) || N(m1,S1)) for each order (docs/theory.md §11.3) [EXACT]; +inf where
    S_alpha = alpha S1 + (1-alpha) S0 is not positive definite, never NaN."""
    a = np.atleast_1d(np.asarray(orders, dtype=float))
    dm = np.asarray(m0, float) - np.asarray(m1, float)
    _, ld0 = np.linalg.slogdet(s0)
    _, ld1 = np.linalg.slogdet(s1)
    out = np.empty_like(a)
    for i, al in enumerate(a):
        sa = al * s1 + (1 - al) * s0
        try:
            c = np.linalg.cholesky(sa)
        except np.linalg.LinAlgError:
            out[i] = math.inf
            continue
        y = np.linalg.solve(c, dm)
        lda = 2 * np.sum(np.log(np.diag(c)))
        out[i] = 0.5 * al * float(y @ y) - (lda - (1 - al) * ld0 - al * ld1) / (2 * (al - 1))
    return out if np.ndim(orders) else float(out[0])


@dataclass(frozen=True)
class GaussianPair(_Toy):
    """P0 = N(m0, S0), P1 = N(m1, S1), unequal covariances allowed (docs/theory.md §11.3-11.4).

    Renyi: closed form in any dimension [EXACT]. Hockey-stick: exact in 1-D from the roots of the
    quadratic log-likelihood ratio and Phi-differences [EXACT up to float64 cancellation, absolute
    error ~1e-16 times the region's probability]; in d > 1 raises InvalidParameterError (use the
    Monte Carlo estimators with ``privacy_loss``). Equal covariances reduce to a Gaussian shift.
    """

    mean0: np.ndarray
    cov0: np.ndarray
    mean1: np.ndarray
    cov1: np.ndarray

    def __post_init__(self):
        for nm in ("mean0", "mean1"):
            object.__setattr__(self, nm, np.atleast_1d(np.asarray(getattr(self, nm), float)))
        for nm in ("cov0", "cov1"):
            object.__setattr__(self, nm, np.atleast_2d(np.asarray(getattr(self, nm), float)))
        d = self.mean0.size
        for nm in ("mean1", "cov0", "cov1"):
            a = getattr(self, nm)
            if a.shape not in ((d,), (d, d)) or not np.all(np.isfinite(a)):
                raise InvalidParameterError(nm, a, f"must be finite with dimension {d}")
        for nm in ("cov0", "cov1"):
            try:
                np.linalg.cholesky(getattr(self, nm))
            except np.linalg.LinAlgError:
                raise InvalidParameterError(nm, "matrix", "must be positive definite") from None

    @property
    def dim(self):
        return self.mean0.size

    def renyi(self, orders, direction="PQ"):
        _check_direction(direction)
        if direction == "PQ":
            return _renyi_gaussians(orders, self.mean1, self.cov1, self.mean0, self.cov0)
        return _renyi_gaussians(orders, self.mean0, self.cov0, self.mean1, self.cov1)

    def sample(self, n, rng):
        x0 = rng.multivariate_normal(self.mean0, self.cov0, n, method="cholesky")
        x1 = rng.multivariate_normal(self.mean1, self.cov1, n, method="cholesky")
        if self.dim == 1:
            return x0[:, 0], x1[:, 0]
        return x0, x1

    def _logpdf(self, x, m, s):
        return stats.multivariate_normal(m, s).logpdf(x)

    def privacy_loss(self, x):
        x = np.asarray(x, dtype=float)
        if self.dim == 1:
            x = x.reshape(-1)
            v0, v1 = self.cov0[0, 0], self.cov1[0, 0]
            m0, m1 = self.mean0[0], self.mean1[0]
            return -((x - m1) ** 2) / (2 * v1) + (x - m0) ** 2 / (2 * v0) - 0.5 * math.log(v1 / v0)
        return self._logpdf(x, self.mean1, self.cov1) - self._logpdf(x, self.mean0, self.cov0)

    @staticmethod
    def _prob(m, v, lo, hi):
        """N(m, v)(lo < X < hi) in relative precision (upper or lower tail differences)."""
        sd = math.sqrt(v)
        a, b = (lo - m) / sd, (hi - m) / sd
        if a > 0:
            return float(special.ndtr(-a) - special.ndtr(-b))
        return float(special.ndtr(b) - special.ndtr(a))

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        if self.dim != 1:
            raise InvalidParameterError(
                "dim", self.dim, "exact hockey-stick implemented in 1-D only; use MC estimators"
            )
        e = np.atleast_1d(np.asarray(epsilon, dtype=float))
        if direction == "PQ":
            (mp, vp), (mq, vq) = (self.mean1[0], self.cov1[0, 0]), (self.mean0[0], self.cov0[0, 0])
        else:
            (mp, vp), (mq, vq) = (self.mean0[0], self.cov0[0, 0]), (self.mean1[0], self.cov1[0, 0])
        out = np.empty_like(e)
        for i, ei in enumerate(e):
            # log p - log q - eps = A x^2 + B x + C
            a2 = 1 / (2 * vq) - 1 / (2 * vp)
            b1 = mp / vp - mq / vq
            c0 = mq**2 / (2 * vq) - mp**2 / (2 * vp) - 0.5 * math.log(vp / vq) - ei
            if abs(a2) < 1e-15 * (1 / vp + 1 / vq):
                if b1 == 0:
                    ints = [(-math.inf, math.inf)] if c0 > 0 else []
                elif b1 > 0:
                    ints = [(-c0 / b1, math.inf)]
                else:
                    ints = [(-math.inf, -c0 / b1)]
            else:
                disc = b1 * b1 - 4 * a2 * c0
                if disc <= 0:
                    ints = [(-math.inf, math.inf)] if a2 > 0 else []
                else:
                    sq = math.sqrt(disc)
                    qq = -0.5 * (b1 + math.copysign(sq, b1))  # stable roots
                    r = sorted([qq / a2, c0 / qq if qq != 0 else -b1 / (2 * a2)])
                    ints = [(r[0], r[1])] if a2 < 0 else [(-math.inf, r[0]), (r[1], math.inf)]
            d = sum(
                self._prob(mp, vp, lo, hi) - math.exp(ei) * self._prob(mq, vq, lo, hi)
                for lo, hi in ints
            )
            out[i] = max(d, 0.0)
        return out if np.ndim(epsilon) else float(out[0])


@dataclass(frozen=True)
class RidgeLangevin(_Toy):
    """Ridge regression trained by ULA, then unlearning by K ULA steps (docs/theory.md §11.1) [EXACT].

    Sum-form loss F_D(th) = sum_i (x_i^T th - y_i)^2/2 + lam |th|^2/2, A = X^T X + lam I.
    ULA: th <- th - eta grad F(th) + sqrt(2 eta tau) xi. Worlds:
    - P1 (unlearned): ``train_steps`` on D from N(0, init_var I), then ``unlearn_steps`` on
      D minus record ``forget_index``;
    - P0 (retrained): train_steps + unlearn_steps on D minus the record from the same start.
    Laws: N(th^ + B^t (m - th^), B^t S B^t + Sinf - B^t Sinf B^t), B = I - eta A,
    Sinf = 2 eta tau (I - B^2)^{-1}. Covariances differ (deletion changes A), so the two
    directions differ. ``pair`` is the exact :class:`GaussianPair`.
    """

    features: np.ndarray
    targets: np.ndarray
    weight_decay: float
    learning_rate: float
    temperature: float
    train_steps: int
    unlearn_steps: int
    forget_index: int = 0
    init_var: float = 1.0
    pair: GaussianPair = field(init=False, repr=False)

    def __post_init__(self):
        x = np.atleast_2d(np.asarray(self.features, float))
        y = np.asarray(self.targets, float).reshape(-1)
        if x.shape[0] != y.size or x.shape[0] < 2:
            raise InvalidParameterError("features", x.shape, "need n >= 2 rows matching targets")
        check_positive("weight_decay", self.weight_decay)
        check_positive("learning_rate", self.learning_rate)
        check_positive("temperature", self.temperature)
        check_int("train_steps", self.train_steps, minimum=0)
        check_int("unlearn_steps", self.unlearn_steps, minimum=0)
        i = check_int("forget_index", self.forget_index, minimum=0)
        if i >= y.size:
            raise InvalidParameterError("forget_index", i, "must index a training record")
        keep = np.arange(y.size) != i
        d = x.shape[1]
        m0, s0 = np.zeros(d), self.init_var * np.eye(d)
        full = self._law(x, y, m0, s0, self.train_steps)
        unl = self._law(x[keep], y[keep], *full, self.unlearn_steps)
        ref = self._law(x[keep], y[keep], m0, s0, self.train_steps + self.unlearn_steps)
        object.__setattr__(self, "pair", GaussianPair(ref[0], ref[1], unl[0], unl[1]))

    def _law(self, x, y, m, s, steps):
        d = x.shape[1]
        a = x.T @ x + self.weight_decay * np.eye(d)
        lam_max = np.linalg.eigvalsh(a)[-1]
        if self.learning_rate >= 2 / lam_max:
            raise InvalidParameterError(
                "learning_rate", self.learning_rate, f"ULA needs eta < 2/lambda_max = {2 / lam_max}"
            )
        th = np.linalg.solve(a, x.T @ y)
        b = np.eye(d) - self.learning_rate * a
        sinf = 2 * self.learning_rate * self.temperature * np.linalg.inv(np.eye(d) - b @ b)
        bt = np.linalg.matrix_power(b, steps)
        mean = th + bt @ (m - th)
        cov = bt @ s @ bt.T + sinf - bt @ sinf @ bt.T
        return mean, 0.5 * (cov + cov.T)

    def renyi(self, orders, direction="PQ"):
        return self.pair.renyi(orders, direction)

    def delta(self, epsilon, direction="PQ"):
        return self.pair.delta(epsilon, direction)

    def privacy_loss(self, x):
        return self.pair.privacy_loss(x)

    def sample(self, n, rng):
        """Runs the ULA chains themselves (not the closed-form laws)."""
        x = np.atleast_2d(np.asarray(self.features, float))
        y = np.asarray(self.targets, float).reshape(-1)
        keep = np.arange(y.size) != self.forget_index
        d = x.shape[1]
        sc = math.sqrt(2 * self.learning_rate * self.temperature)

        def run(th, xx, yy, steps):
            a = xx.T @ xx + self.weight_decay * np.eye(d)
            bvec = xx.T @ yy
            for _ in range(steps):
                th = th - self.learning_rate * (th @ a - bvec) + sc * rng.standard_normal(th.shape)
            return th

        start = math.sqrt(self.init_var) * rng.standard_normal((n, d))
        u = run(run(start, x, y, self.train_steps), x[keep], y[keep], self.unlearn_steps)
        start = math.sqrt(self.init_var) * rng.standard_normal((n, d))
        r = run(start, x[keep], y[keep], self.train_steps + self.unlearn_steps)
        return (r[:, 0], u[:, 0]) if d == 1 else (r, u)


# ------------------------------------------------------------------------------------------
# 1-D grid propagation (docs/theory.md §12.6 item 7): model clipping and projected Langevin


def _cell_probs(means, edges, noise_std):
    """P(N(m, s^2) in [e_j, e_{j+1}]) for every mean (rows) and cell (columns), in relative
    precision in both tails; plus the masses below e_0 and above e_n."""
    z = (edges[None, :] - np.asarray(means, float)[:, None]) / noise_std
    lo_cdf = special.ndtr(z)
    up_sf = special.ndtr(-z)
    a = z[:, :-1]
    cells = np.where(a > 0, up_sf[:, :-1] - up_sf[:, 1:], lo_cdf[:, 1:] - lo_cdf[:, :-1])
    return np.maximum(cells, 0.0), lo_cdf[:, 0], up_sf[:, -1]


@dataclass
class GridChain1D:
    """Near-exact laws of a 1-D noisy chain x <- Pi_R( m(x) + N(0, s^2) ) by grid propagation.

    State: masses of cells of width h on [lo, hi] (a point at each cell's centre) plus, when
    ``project_state`` is True, atoms at lo and hi that collect the mass beyond them (projection
    after the noise, as in projected Langevin). When False the state is not projected and the
    mass leaving [lo, hi] is tracked in ``lost`` (it bounds the truncation error: the computed
    E_gamma is within lost_p + gamma*lost_q of the truth up to discretisation).
    One step maps a source point s to N(m(s), s^2): a Markov matrix of Phi-differences, built
    once for time-homogeneous ``mean_map``. Discretisation error O(h^2) (midpoint rule; place an
    edge at every discontinuity of ``mean_map``, see ``breakpoint``).
    """

    mean_map: Callable
    noise_std: float
    lo: float
    hi: float
    cells: int = 2000
    project_state: bool = False
    breakpoint: float | None = None

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        n = check_int("cells", self.cells, minimum=10)
        if not self.hi > self.lo:
            raise InvalidParameterError("hi", self.hi, "must exceed lo")
        h = (self.hi - self.lo) / n
        if self.breakpoint is not None and self.lo < self.breakpoint < self.hi:
            # shift the grid (by < h/2) so that an edge sits exactly on the discontinuity
            k = round((self.breakpoint - self.lo) / h)
            self.lo = self.breakpoint - k * h
            self.hi = self.lo + n * h
        self.edges = self.lo + h * np.arange(n + 1)
        self.centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        pts = self.centres
        if self.project_state:
            pts = np.concatenate([[self.lo], pts, [self.hi]])
        self.points = pts
        self._matrix = self._transition(self.mean_map(pts))

    def _transition(self, means):
        cells, below, above = _cell_probs(means, self.edges, self.noise_std)
        if self.project_state:
            return np.column_stack([below, cells, above]), np.zeros(len(means))
        return cells, below + above

    def initial_from_points(self, points, weights=None):
        """State after ONE step from a discrete law on arbitrary points (e.g. point masses)."""
        pts = np.atleast_1d(np.asarray(points, float))
        w = np.ones(pts.size) / pts.size if weights is None else np.asarray(weights, float)
        mat, lost = self._transition(self.mean_map(pts))
        return w @ mat, float(w @ lost)

    def propagate(self, state, steps, lost=0.0):
        """Apply ``steps`` more steps to a grid state; returns (state, cumulative lost mass)."""
        mat, out = self._matrix
        p = np.asarray(state, float)
        for _ in range(steps):
            lost += float(p @ out)
            p = p @ mat
        return p, lost


def _hockey(p, q, epsilon):
    e = np.atleast_1d(np.asarray(epsilon, float))
    out = np.array([float(np.sum(np.maximum(p - math.exp(x) * q, 0.0))) for x in e])
    return out if np.ndim(epsilon) else float(out[0])


FIELD_NAMES = ("zero", "sign", "repel", "quadratic", "logistic")


def field_gradient(name, x, *, clip_gradient=1.0, anchor=0.0, curvature=1.0):
    """Shared 1-D gradient fields g(x) of the method toys and audits.

    "zero": 0; "sign": C1 sign(x - a) (non-smooth, saturates the 2 gamma C1 allowance);
    "repel": -C1 sign(x - a); "quadratic": curvature (x - a); "logistic": -C1/(1 + e^{x - a})
    (the gradient of C1 log(1 + e^{-(x - a)}), bounded by C1).
    """
    x = np.asarray(x, dtype=float)
    c1, a = clip_gradient, anchor
    if name == "zero":
        return np.zeros_like(x)
    if name == "sign":
        return c1 * np.sign(x - a)
    if name == "repel":
        return -c1 * np.sign(x - a)
    if name == "quadratic":
        return curvature * (x - a)
    if name == "logistic":
        return -c1 / (1.0 + np.exp(np.clip(x - a, -700, 700)))
    raise InvalidParameterError("field", name, f"must be one of {FIELD_NAMES}")


class _ModelClippingRuns(_Toy):
    """Monte Carlo side shared by the 1-D model-clipping toys: ``_world(n, rng, world)`` runs
    the method's own update from x_0 = -C0 (world 0) or +C0 (world 1); the score is x itself."""

    def sample(self, n, rng):
        return self._world(n, rng, 0), self._world(n, rng, 1)

    def score(self, x):
        return np.asarray(x, float)

    def certify_kwargs(self):
        return dict(
            noise_std=self.noise_std,
            steps=self.steps,
            clip_initial=self.clip_initial,
            clip_model=self.clip_model,
            initial_noise_std=self.initial_noise_std,
        )


@dataclass
class ModelClippingGrid(_ModelClippingRuns):
    """Model clipping in 1-D (docs/theory.md §5.3 update) with near-exact E_gamma by grid propagation.

    x_0 = +-C0 (+ N(0, s0^2) when ``initial_noise_std``); x_{t+1} = Pi_{C2}(x_t - gamma(g(x_t) +
    lambda x_t)) + N(0, s^2), one shared gradient field g for both worlds:
    "zero", "sign" (g = C1 sign(x - a), saturating, non-smooth), "repel" (-C1 sign(x - a)),
    "quadratic" (curvature (x - a)), "logistic" (-C1/(1 + e^{x - a})).
    The first step from the starting law is computed from its points exactly (point masses) or
    from a fine discretisation of N(+-C0, s0^2); later steps on a grid over
    [-C2 - 14 s, C2 + 14 s] (the means lie in [-C2, C2], so the truncated mass is < 1e-40).
    The result is near-exact: error O(h^2) in the discretisation (checked against the
    unprojected closed form when C2 is inactive), reported lost mass ``lost``.
    """

    noise_std: float
    steps: int
    clip_initial: float
    clip_model: float
    initial_noise_std: float | None = None
    learning_rate: float = 0.1
    weight_decay: float = 0.0
    field: str = "zero"
    clip_gradient: float = 1.0
    anchor: float = 0.0
    curvature: float = 1.0
    cells: int = 2000

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=0)
        check_positive("clip_initial", self.clip_initial)
        check_positive("clip_model", self.clip_model)
        if self.initial_noise_std is not None:
            check_nonnegative("initial_noise_std", self.initial_noise_std)
        if self.field not in FIELD_NAMES:
            raise InvalidParameterError("field", self.field, f"must be one of {FIELD_NAMES}")
        self._law = None

    def _update(self, x):
        """Pi_{C2}(x - gamma(g(x) + lambda x)): the noiseless part of one model-clipping step."""
        g = field_gradient(
            self.field,
            x,
            clip_gradient=self.clip_gradient,
            anchor=self.anchor,
            curvature=self.curvature,
        )
        rho = 1 - self.learning_rate * self.weight_decay
        return np.clip(rho * x - self.learning_rate * g, -self.clip_model, self.clip_model)

    @property
    def _s0(self):
        return self.initial_noise_std or 0.0

    def laws(self):
        """(p0, p1, lost) on the grid after ``steps`` steps (cached)."""
        if self._law is not None:
            return self._law
        s, c2 = self.noise_std, self.clip_model
        br = self.anchor if self.field in ("sign", "repel") else None
        grid = GridChain1D(
            self._update, s, -c2 - 14 * s, c2 + 14 * s, self.cells, False, breakpoint=br
        )
        out, lost = [], 0.0
        for sgn in (-1.0, 1.0):
            if self._s0 > 0:
                m = 4001
                e = sgn * self.clip_initial + self._s0 * np.linspace(-12, 12, m + 1)
                pts = 0.5 * (e[1:] + e[:-1])
                w = np.diff(special.ndtr((e - sgn * self.clip_initial) / self._s0))
                w = w / w.sum()
            else:
                pts, w = np.array([sgn * self.clip_initial]), np.array([1.0])
            p, lst = grid.initial_from_points(pts, w)
            p, lst = grid.propagate(p, self.steps - 1, lst)
            out.append(p)
            lost = max(lost, lst)
        self._law = (out[0], out[1], lost)
        return self._law

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        if self.steps == 0:
            if self._s0 <= 0:
                e = np.asarray(epsilon, float)
                return np.ones_like(e) if e.ndim else 1.0
            return gaussian.delta(epsilon, mu=2 * self.clip_initial / self._s0)
        p0, p1, _ = self.laws()
        return _hockey(p1, p0, epsilon) if direction == "PQ" else _hockey(p0, p1, epsilon)

    def delta_error_estimate(self, epsilon, direction="PQ"):
        """Richardson estimate |delta_h - delta_2h|/3 of the O(h^2) grid error at ``epsilon``
        (a diagnostic, not a bound)."""
        coarse = replace(self, cells=max(self.cells // 2, 10))
        return (
            np.abs(
                np.asarray(self.delta(epsilon, direction))
                - np.asarray(coarse.delta(epsilon, direction))
            )
            / 3.0
        )

    def _world(self, n, rng, world):
        x = np.full(n, (1.0 if world == 1 else -1.0) * self.clip_initial)
        if self._s0 > 0:
            x = x + self._s0 * rng.standard_normal(n)
        for _ in range(self.steps):
            x = self._update(x) + self.noise_std * rng.standard_normal(n)
        return x


#: most mpmath digits ModelClippingWorstCase uses (delta values down to about 1e-4000)
_MAX_DPS = 4000


def _mp_tail(z):
    """Q(z) = P(N(0,1) > z) in mpmath (erfc: relative precision in the upper tail)."""
    import mpmath as mp

    return mp.erfc(z / mp.sqrt(2)) / 2


def _mp_two_point_hockey(a, b, gamma, c2, s):
    """E_gamma(a N(c2, s^2) + (1-a) N(-c2, s^2) || b N(c2, s^2) + (1-b) N(-c2, s^2)) [EXACT].

    Both laws mix the same two Gaussians, so the likelihood ratio
    (a r + 1 - a)/(b r + 1 - b), r = e^{2 c2 x/s^2}, is monotone in x and {p > gamma q} is a
    half-line: for a > b it is {x > x*} with r* = (gamma(1-b) - (1-a))/(a - gamma b) (empty when
    a <= gamma b); a < b is the mirror image (a, b) -> (1 - a, 1 - b). Returns (E, x*, S_upper)
    with S_upper True when the set is {x > x*}. Works in the current mpmath precision.
    """
    import mpmath as mp

    if a < b:
        e, x, _ = _mp_two_point_hockey(1 - a, 1 - b, gamma, c2, s)
        return e, -x, False
    if a - gamma * b <= 0:
        return mp.mpf(0), mp.inf, True
    r = (gamma * (1 - b) - (1 - a)) / (a - gamma * b)
    x = s * s / (2 * c2) * mp.log(r)
    t1, t2 = _mp_tail((x - c2) / s), _mp_tail((x + c2) / s)
    e = a * t1 + (1 - a) * t2 - gamma * (b * t1 + (1 - b) * t2)
    return max(e, mp.mpf(0)), x, True


@dataclass(frozen=True)
class ModelClippingWorstCase(_ModelClippingRuns):
    """The worst case of the model-clipping recursion (docs/worst_case_toys.md): a two-state
    chain on which the refined delta-recursion of docs/theory.md §5.3 holds with EQUALITY at
    ``target_epsilon``, computed in mpmath [EXACT].

    Dynamics (1-D, the method's own update x <- Pi_{C2}(rho x - gamma g_t(x)) + N(0, s^2)):
    the retain-set gradient at step t is the repel field g_t(x) = -K_t sign(x - a_t), shared by
    both worlds, with a magnitude K_t = (C2 + rho |a_t|)/gamma large enough that every point
    right of the anchor a_t lands on +C2 after the projection and every point left of it on
    -C2. The anchor a_t is the threshold x* where the current laws' density ratio
    p1/p0 = e^{target_epsilon}: the set {p1 > e^eps p0} (the support of the positive part of the
    Jordan decomposition in the recursion's proof) goes to +C2, its complement to -C2, so the
    contraction step E_gamma(mu K || nu K) <= E eta_{gamma'}(K) is attained: the two-point
    laws N(+-C2, s^2) are 2C2 apart. After the first step both worlds are mixtures
    a N(C2, s^2) + (1 - a) N(-C2, s^2) (state (a1, a0) in [0,1]^2), whose ratio is monotone in x,
    so every later threshold set is again a half-line: the chain has two states.

    Starts: +-C0 (point masses; delta_0 = 1) or N(+-C0, s0^2) (``initial_noise_std``), world 1
    at +C0. ``delta(eps, direction)`` is the exact hockey-stick of the final laws at ANY eps
    (the anchors stay those built for ``target_epsilon``); at eps = target_epsilon it equals the
    recursion's delta_T (up to the recursion's own upward rounding). ``precision``: mpmath
    digits (raised automatically when delta_t needs more).
    """

    noise_std: float
    steps: int
    clip_initial: float
    clip_model: float
    target_epsilon: float
    initial_noise_std: float | None = None
    learning_rate: float = 1.0
    weight_decay: float = 0.0
    precision: int = 50

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=0)
        check_positive("clip_initial", self.clip_initial)
        check_positive("clip_model", self.clip_model)
        check_nonnegative("target_epsilon", self.target_epsilon)
        if self.initial_noise_std is not None:
            check_nonnegative("initial_noise_std", self.initial_noise_std)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("weight_decay", self.weight_decay)
        if self.learning_rate * self.weight_decay >= 1:
            raise InvalidParameterError("weight_decay", self.weight_decay, "need gamma*lambda < 1")
        check_int("precision", self.precision, minimum=20)
        object.__setattr__(self, "_cache", {})

    @property
    def _s0(self):
        return self.initial_noise_std or 0.0

    def _chain(self, dps):
        """At ``dps`` digits: per step t < T the anchor a_t, the orientation o_t (+1: the
        threshold set {p1 > e^eps p0} is {x > a_t}; -1: {x < a_t}); E_t = E_gamma of the laws
        before step t (t = 0..T, at the target); the final state (a1, a0), each world's mass
        sent to +C2 by the last step."""
        import mpmath as mp

        with mp.workdps(dps):
            gam = mp.exp(mp.mpf(self.target_epsilon))
            c0, c2, s = mp.mpf(self.clip_initial), mp.mpf(self.clip_model), mp.mpf(self.noise_std)
            s0 = mp.mpf(self._s0)
            anchors, orient, hs = [], [], []
            state = None
            for t in range(self.steps + 1):
                if t == 0 and s0 > 0:  # N(+-C0, s0^2): ratio e^{2 C0 x/s0^2}, increasing
                    x, upper = s0 * s0 * mp.log(gam) / (2 * c0), True
                    m1, m0 = _mp_tail((x - c0) / s0), _mp_tail((x + c0) / s0)
                    e = max(m1 - gam * m0, mp.mpf(0))
                elif t == 0:  # point masses +-C0: E_gamma = 1; any threshold in (-C0, C0)
                    x, upper, m1, m0, e = mp.mpf(0), True, mp.mpf(1), mp.mpf(0), mp.mpf(1)
                else:
                    e, x, upper = _mp_two_point_hockey(state[0], state[1], gam, c2, s)
                    if not mp.isfinite(x):  # E = 0: any map keeps it 0
                        x, upper = mp.mpf(0), True
                    t1, t2 = _mp_tail((x - c2) / s), _mp_tail((x + c2) / s)
                    m1 = state[0] * t1 + (1 - state[0]) * t2  # masses of {x > x*}
                    m0 = state[1] * t1 + (1 - state[1]) * t2
                    if not upper:
                        m1, m0 = 1 - m1, 1 - m0
                hs.append(e)
                if t < self.steps:
                    anchors.append(x)
                    orient.append(1.0 if upper else -1.0)
                    state = (m1, m0)
            return anchors, orient, hs, state

    def chain(self):
        """(anchors, orientations, E_t, final state) in mpmath at enough digits that every
        E_t > 0 keeps at least ``precision`` significant digits (cached). Raises
        NumericalPrecisionError when that would need more than ``_MAX_DPS`` digits (delta_t
        below about 1e-4000: the recursion itself is clamped far above that)."""
        if "chain" in self._cache:
            return self._cache["chain"]
        self._cache["chain"] = self._chain_at_least(self.precision)
        return self._cache["chain"]

    def _chain_at_least(self, dps):
        import mpmath as mp

        for _ in range(8):
            out = self._chain(dps)
            smallest = min((h for h in out[2] if h > 0), default=mp.mpf(1))
            need = int(-mp.log10(smallest)) + self.precision
            if need <= dps:
                return out, dps
            if need > _MAX_DPS:
                raise NumericalPrecisionError(
                    f"ModelClippingWorstCase: delta_t below 1e-{need - self.precision} needs more "
                    f"than {_MAX_DPS} digits"
                )
            dps = need + 10
        return out, dps

    def recursion_log_deltas(self):
        """log E_t (t = 0..T) of the toy at ``target_epsilon`` (floats): the recursion's
        delta_t without its rounding margin."""
        import mpmath as mp

        (_, _, hs, _), _ = self.chain()
        return np.array([float(mp.log(h)) if h > 0 else -math.inf for h in hs])

    def anchors(self):
        """The repel anchors a_1..a_T (float): the threshold where p1/p0 = e^{target_epsilon}."""
        (anchors, _, _, _), _ = self.chain()
        return np.array([float(a) for a in anchors])

    def final_state(self):
        """(a1, a0): each world's mass on +C2 before the last noise (mpmath); T >= 1."""
        (_, _, _, state), dps = self.chain()
        return state, dps

    def delta_mp(self, epsilon, direction="PQ"):
        """Exact hockey-stick of the final laws at ``epsilon`` as an mpmath number."""
        import mpmath as mp

        _check_direction(direction)
        eps = check_nonnegative("epsilon", epsilon)
        if self.steps == 0:
            with mp.workdps(self.precision):
                if self._s0 <= 0:
                    return mp.mpf(1)
                c0, s0, g = mp.mpf(self.clip_initial), mp.mpf(self._s0), mp.exp(mp.mpf(eps))
                x = s0 * s0 * mp.log(g) / (2 * c0)
                return max(_mp_tail((x - c0) / s0) - g * _mp_tail((x + c0) / s0), mp.mpf(0))
        (_, _, _, (a1, a0)), dps = self.chain()
        for _ in range(4):
            with mp.workdps(dps):
                g = mp.exp(mp.mpf(eps))
                c2, s = mp.mpf(self.clip_model), mp.mpf(self.noise_std)
                pair = (a1, a0) if direction == "PQ" else (a0, a1)
                e = _mp_two_point_hockey(pair[0], pair[1], g, c2, s)[0]
            # the subtraction inside loses -log10(E) digits: redo the chain at more digits
            need = int(-mp.log10(e)) + self.precision if e > 0 else 0
            if need <= dps:
                return e
            if need > _MAX_DPS:
                raise NumericalPrecisionError(
                    f"ModelClippingWorstCase: delta below 1e-{need - self.precision} at "
                    f"epsilon={eps}"
                )
            (_, _, _, (a1, a0)), dps = self._chain_at_least(need + 10)
        return e

    def delta(self, epsilon, direction="PQ"):
        e = np.atleast_1d(np.asarray(epsilon, dtype=float))
        out = np.array([float(self.delta_mp(float(x), direction)) for x in e])
        return out if np.ndim(epsilon) else float(out[0])

    def log_delta(self, epsilon, direction="PQ"):
        import mpmath as mp

        d = self.delta_mp(epsilon, direction)
        return float(mp.log(d)) if d > 0 else -math.inf

    def _world(self, n, rng, world):
        sgn = 1.0 if world == 1 else -1.0
        x = np.full(n, sgn * self.clip_initial)
        if self._s0 > 0:
            x = x + self._s0 * rng.standard_normal(n)
        rho = 1.0 - self.learning_rate * self.weight_decay
        c2 = self.clip_model
        (anchors, orient, _, _), _ = self.chain()
        for a_mp, o in zip(anchors, orient):
            a = float(a_mp)
            mag = (c2 + rho * abs(a)) / self.learning_rate * (1 + 1e-9) + 1.0
            # repel field: the threshold set (x > a for o = +1, x < a for o = -1) goes to +C2
            g = -mag * o * np.where(x > a, 1.0, -1.0)
            x = np.clip(rho * x - self.learning_rate * g, -c2, c2)
            x = x + self.noise_std * rng.standard_normal(n)
        return x


@dataclass
class ProjectedLangevinGrid(_Toy):
    """Projected noisy GD / Langevin in 1-D by grid propagation (docs/theory.md §12.6 item 7).

    x <- Pi_{[-R, R]}( x - eta f_w'(x) + N(0, s^2) ), world w in {0, 1} with its own gradient
    ``grad0``/``grad1`` (callables; default quadratic f_w = (x - z_w)^2/2), started from
    N(start_w, start_var) (point masses when start_var = 0). State: cell masses on [-R, R] plus
    atoms at +-R; E_gamma = sum (p - gamma q)_+ over cells and atoms. Near-exact, error O(h^2).
    Projection caps the privacy loss; as R grows the result tends to the unprojected chain
    (closed form for quadratics, :meth:`unprojected_pair`), with the coupling sandwich
    |E_proj - E| <= p_exit,1 + gamma p_exit,0.
    """

    noise_std: float
    steps: int
    radius: float
    learning_rate: float = 0.1
    targets: tuple = (0.0, 1.0)
    starts: tuple = (0.0, 0.0)
    start_var: float = 0.0
    curvature: float = 1.0
    cells: int = 2000

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=1)
        check_positive("radius", self.radius)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("start_var", self.start_var)
        self._law = None

    def _map(self, w):
        z, h, eta = self.targets[w], self.curvature, self.learning_rate
        return lambda x: x - eta * h * (x - z)

    def laws(self):
        if self._law is not None:
            return self._law
        out = []
        r, s = self.radius, self.noise_std
        for w in (0, 1):
            grid = GridChain1D(self._map(w), s, -r, r, self.cells, True)
            if self.start_var > 0:
                sd = math.sqrt(self.start_var)
                e = np.clip(self.starts[w] + sd * np.linspace(-12, 12, 4002), -r, r)
                pts = 0.5 * (e[1:] + e[:-1])
                wts = np.diff(special.ndtr((e - self.starts[w]) / sd))
                wts = wts / wts.sum()
            else:
                pts, wts = np.array([min(max(self.starts[w], -r), r)]), np.array([1.0])
            p, _ = grid.initial_from_points(pts, wts)
            p, _ = grid.propagate(p, self.steps - 1)
            out.append(p)
        self._law = (out[0], out[1])
        return self._law

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        p0, p1 = self.laws()
        return _hockey(p1, p0, epsilon) if direction == "PQ" else _hockey(p0, p1, epsilon)

    def unprojected_pair(self) -> GaussianPair:
        """Exact laws of the same chains WITHOUT projection (R = infinity)."""
        a = 1 - self.learning_rate * self.curvature
        laws = []
        for w in (0, 1):
            m, v = self.starts[w], self.start_var
            for _ in range(self.steps):
                m = a * m + self.learning_rate * self.curvature * self.targets[w]
                v = a * a * v + self.noise_std**2
            laws.append((m, v))
        return GaussianPair(laws[0][0], laws[0][1], laws[1][0], laws[1][1])

    def sample(self, n, rng):
        out = []
        for w in (0, 1):
            x = self.starts[w] + math.sqrt(self.start_var) * rng.standard_normal(n)
            x = np.clip(x, -self.radius, self.radius)
            f = self._map(w)
            for _ in range(self.steps):
                x = np.clip(
                    f(x) + self.noise_std * rng.standard_normal(n), -self.radius, self.radius
                )
            out.append(x)
        return out[0], out[1]

    def score(self, x):
        return np.asarray(x, float)


# ------------------------------------------------------------------------------------------
# Langevin unlearning (PNSGD) on a strongly convex quadratic: exact Gaussian laws

LANGEVIN_STARTS = ("point", "stationary")


@dataclass(frozen=True)
class LangevinQuadraticChain(_GaussianPairBase):
    """N steps of x <- x - eta m (x - a) + N(0, s^2) from two starts, 1-D (docs/theory.md §9).

    The retain-set loss is f(x) = m/2 (x - a)^2 (m-strongly convex, m-smooth, gradient
    |m(x - a)| <= M on the region |x| <= R, |x - a| <= M/m), run by the method "langevin"
    (projection onto the ball of radius R after the noise, per-example clip at M). With
    beta = 1 - eta m (|beta| < 1 for 0 < eta m < 2; beta = 1 for m = 0):

    - ``start="point"``: world 0 starts at -Z/2, world 1 at +Z/2 (Z = ``distance``, the W-inf
      distance the PABI route assumes between the two trained laws). The laws after N steps are
      N(a + beta^N (x0 - a), V_N), V_N = s^2 sum_{k<N} beta^{2k}: a Gaussian shift with
      mu = |beta|^N Z / sqrt(V_N). The PABI coefficient with the optimal shift allocation is
      exactly mu^2/2 when the contraction is |beta|: the certificate's curve is exact here.
    - ``start="stationary"``: world 0 starts from N(a, v_inf), the stationary law of the retain
      chain (retraining), world 1 from N(a + Z, v_inf) (the learned model's stationary law on
      the neighbouring data set), v_inf = s^2/(1 - beta^2): mu = |beta|^N Z / sqrt(v_inf).

    The laws are those of the UNPROJECTED, UNCLIPPED chain. Both maps are the identity on the
    region |x| <= R, |x - a| <= M/m (``lipschitz`` M; None: no clip), so under the synchronous
    coupling the method's chain equals this one unless an iterate leaves the region;
    :meth:`escape_probability` bounds that (union over steps and both worlds), and the method's
    exact hockey-stick divergence is within p_esc,1 + e^eps p_esc,0 of this toy's [EXACT up to
    that escape term]. Chien, Wang, Chen & Li 2024 (arXiv 2403.17105) for the algorithm.
    """

    noise_std: float
    steps: int
    learning_rate: float
    curvature: float
    distance: float
    radius: float = math.inf
    anchor: float = 0.0
    lipschitz: float | None = None
    start: str = "point"

    def __post_init__(self):
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=1)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("curvature", self.curvature)
        check_nonnegative("distance", self.distance)
        if not (isinstance(self.radius, float) and self.radius == math.inf):
            check_positive("radius", self.radius)
        if self.lipschitz is not None:
            check_positive("lipschitz", self.lipschitz)
        if self.start not in LANGEVIN_STARTS:
            raise InvalidParameterError("start", self.start, f"must be one of {LANGEVIN_STARTS}")
        if not self.learning_rate * self.curvature < 2.0:
            raise InvalidParameterError(
                "learning_rate", self.learning_rate, "need learning_rate * curvature < 2"
            )
        if self.start == "stationary" and self.curvature <= 0:
            raise InvalidParameterError(
                "curvature", self.curvature, "a stationary start needs curvature > 0"
            )

    @property
    def beta(self):
        return 1.0 - self.learning_rate * self.curvature

    def _var(self, t):
        """Variance after t steps (each world; equal)."""
        b2 = self.beta**2
        s2 = self.noise_std**2
        if self.start == "stationary":
            return s2 / (1.0 - b2)
        if b2 == 1.0:
            return s2 * t
        return s2 * (1.0 - b2**t) / (1.0 - b2)

    def _starts(self):
        a, z = self.anchor, self.distance
        return (-z / 2.0, z / 2.0) if self.start == "point" else (a, a + z)

    def _means(self, t):
        b, a = self.beta, self.anchor
        return tuple(a + b**t * (x0 - a) for x0 in self._starts())

    @property
    def mu(self):
        m0, m1 = self._means(self.steps)
        return abs(m1 - m0) / math.sqrt(self._var(self.steps))

    def delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        if self.mu == 0.0:
            return np.zeros_like(np.asarray(epsilon, dtype=float))
        return gaussian.delta(epsilon, mu=self.mu)

    def epsilon(self, delta, *, direction="both"):
        if direction != "both":
            _check_direction(direction)
        delta = check_delta(delta)
        return 0.0 if self.mu == 0.0 else float(gaussian.epsilon(delta, mu=self.mu))

    def log_delta(self, epsilon, direction="PQ"):
        _check_direction(direction)
        if self.mu == 0.0:
            return np.full_like(np.asarray(epsilon, dtype=float), -np.inf)
        return gaussian.log_delta(epsilon, mu=self.mu)

    def region(self) -> tuple[float, float]:
        """The interval on which the projection and the gradient clip are both inactive."""
        lo, hi = -self.radius, self.radius
        if self.lipschitz is not None and self.curvature > 0:
            w = self.lipschitz / self.curvature
            lo, hi = max(lo, self.anchor - w), min(hi, self.anchor + w)
        return lo, hi

    def escape_probability(self) -> float:
        """UPPER bound on the probability (largest over the two worlds) that some iterate
        x_0..x_{N-1} (the points where the gradient is taken and the projection acts), or x_N,
        of the unprojected chain leaves :meth:`region` (union bound over steps)."""
        lo, hi = self.region()
        worst = 0.0
        for w in (0, 1):
            total = 0.0
            for t in range(self.steps + 1):
                m = self._means(t)[w]
                v = self._var(t)
                if v == 0.0:
                    total += 0.0 if lo <= m <= hi else 1.0
                    continue
                sd = math.sqrt(v)
                total += float(special.ndtr((lo - m) / sd) + special.ndtr((m - hi) / sd))
            worst = max(worst, total)
        return min(1.0, worst * (1.0 + 1e-12))

    def sample(self, n, rng):
        """Run the unprojected chain itself (both worlds), vectorised."""
        out = []
        v0 = self._var(0) if self.start == "stationary" else 0.0
        for x0 in self._starts():
            x = x0 + math.sqrt(v0) * rng.standard_normal(n)
            for _ in range(self.steps):
                g = self.curvature * (x - self.anchor)
                x = x - self.learning_rate * g + self.noise_std * rng.standard_normal(n)
            out.append(x)
        return out[0], out[1]

    def privacy_loss(self, x):
        m0, m1 = self._means(self.steps)
        v = self._var(self.steps)
        return (m1 - m0) / v * (np.asarray(x) - 0.5 * (m0 + m1))

    def score(self, x):
        return np.asarray(x, float)
