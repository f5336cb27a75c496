"""Chunked, reproducible Monte Carlo audits (docs/theory.md §12).

A *sampler* is any object following :class:`Sampler`: ``sample(n, rng) -> (x0, x1)`` (numpy
arrays, one row per draw, from the two worlds) and optionally ``score(x)`` / ``privacy_loss(x)``
mapping a draw to a real test score, and ``sample_torch(n, seed_seq, device)`` for a torch path.
A plain function ``fn(rng, n) -> (x0, x1)`` is accepted too (wrapped in :class:`FunctionSampler`).
A torch training loop plugs in through :class:`TorchLoopSampler` (a callable that trains n
models in one world with a given ``torch.Generator``). Samples are drawn in chunks, chunk i
seeded by ``SeedSequence(seed).spawn(n_chunks)[i]``; each chunk only returns counts on a
pre-registered threshold grid (or sufficient statistics), so results do not depend on the
executor or on the number of workers. Any ``concurrent.futures.Executor`` works (stdlib process
pools; Dask's ``Client.get_executor()``); the sampler must then be picklable.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from unlearn_theory._validate import (
    check_delta,
    check_epsilon,
    check_in_range,
    check_int,
    check_positive,
)
from unlearn_theory.bounds import Bound, BoundKind
from unlearn_theory.errors import InvalidParameterError

from .confidence import clopper_pearson_upper, empirical_bernstein_from_sums
from .estimators import _eps_from

__all__ = [
    "Sampler",
    "FunctionSampler",
    "as_sampler",
    "TorchLoopSampler",
    "AuditResult",
    "DeltaAuditResult",
    "run_audit",
    "run_delta_audit",
    "default_grid",
    "epsilon_lower_curve",
    "delta_lower_curve",
    "cuda_available",
]


@runtime_checkable
class Sampler(Protocol):
    """What the runner needs: n independent draws from each of the two worlds."""

    def sample(self, n: int, rng: np.random.Generator): ...


@dataclass(frozen=True)
class FunctionSampler:
    """A plain function ``fn(rng, n) -> (x0, x1)`` used as a sampler (``rng`` a numpy
    Generator, ``n`` the draws per world; x0 and x1 one row per draw, the two worlds). The test
    score is the draw itself (its first coordinate for multi-dimensional draws). For process
    pools the function must be picklable (defined at module level)."""

    fn: Callable

    def sample(self, n, rng):
        out = self.fn(rng, n)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise InvalidParameterError(
                "sampler",
                getattr(self.fn, "__name__", self.fn),
                f"fn(rng, n) must return a pair (x0, x1), got {type(out).__name__}",
            )
        return np.asarray(out[0]), np.asarray(out[1])


def as_sampler(sampler):
    """``sampler`` itself when it has ``sample(n, rng)``; a callable ``fn(rng, n) -> (x0, x1)``
    wrapped in :class:`FunctionSampler`; InvalidParameterError naming ``sampler`` otherwise
    (including a callable that cannot be called with two positional arguments)."""
    if callable(getattr(sampler, "sample", None)):
        return sampler
    if not callable(sampler):
        raise InvalidParameterError(
            "sampler", sampler, "must have sample(n, rng) or be a function fn(rng, n) -> (x0, x1)"
        )
    try:
        inspect.signature(sampler).bind(None, 1)
    except TypeError:
        name = getattr(sampler, "__name__", sampler)
        raise InvalidParameterError(
            "sampler", name, "a function sampler must accept two positional arguments (rng, n)"
        ) from None
    except ValueError:  # no signature available (some builtins): accept, fail at call time
        pass
    return FunctionSampler(sampler)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@dataclass
class TorchLoopSampler:
    """Adapter that turns a torch training loop into a sampler.

    ``train(world, n, generator, device) -> torch.Tensor`` runs n independent unlearning runs
    in world 0 (reference) or 1 (unlearned), every noisy step drawing fresh noise from
    ``generator``, and returns the n final parameter vectors (shape (n, ...)). ``score``
    (optional, pre-registered, not fitted on audit data) maps them to one real per run; default:
    the first coordinate. The runner seeds one generator per chunk from the chunk's SeedSequence,
    so results do not depend on the number of workers. Must be picklable for process pools
    (module-level functions).
    """

    train: Callable
    score_fn: Callable | None = None
    device: str = "cpu"

    def _run(self, n, seed_seq, device):
        import torch

        out = []
        for world, ss in zip((0, 1), seed_seq.spawn(2)):
            g = torch.Generator(device=device)
            g.manual_seed(int(ss.generate_state(1, np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF))
            x = self.train(world, n, g, device)
            out.append(x.detach().to("cpu", torch.float64).numpy())
        return out[0], out[1]

    def sample(self, n, rng):
        ss = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
        return self._run(n, ss, self.device)

    def sample_torch(self, n, seed_seq, device):
        return self._run(n, seed_seq, device)

    def score(self, x):
        if self.score_fn is not None:
            return np.asarray(self.score_fn(x), dtype=float)
        x = np.asarray(x, dtype=float)
        return x.reshape(x.shape[0], -1)[:, 0]


@dataclass
class AuditResult:
    """Result of a threshold audit. ``epsilon_lower`` is None when precision was not reached.

    ``kind`` is :attr:`BoundKind.LOWER` (a string is parsed); :meth:`to_bound` gives the
    certified lower confidence bound as a :class:`~unlearn_theory.bounds.Bound`.
    """

    epsilon_lower: float | None
    kind: BoundKind
    delta: float
    confidence: float
    samples: int
    status: str
    message: str = ""
    best_threshold: float | None = None
    exact_epsilon: float | None = None
    counts: dict = field(default_factory=dict)
    grid: list = field(default_factory=list)
    false_positives: list = field(default_factory=list)
    false_negatives: list = field(default_factory=list)

    def __post_init__(self):
        self.kind = BoundKind.parse(self.kind)

    def to_bound(self) -> Bound | None:
        """``epsilon_lower`` as a Bound (None when precision was not reached)."""
        if self.epsilon_lower is None:
            return None
        return Bound(
            self.epsilon_lower,
            self.kind,
            source="threshold audit (Clopper-Pearson, Bonferroni over the grid)",
            details={"confidence": self.confidence, "delta": self.delta, "samples": self.samples},
        )

    def to_dict(self):
        out = asdict(self)
        out["kind"] = self.kind.value
        return out


def _score(sampler, x):
    f = getattr(sampler, "score", None) or getattr(sampler, "privacy_loss", None)
    s = np.asarray(f(x) if f is not None else x, dtype=float)
    if s.ndim == 0 or s.shape[0] != np.shape(x)[0]:
        raise InvalidParameterError("sampler", sampler, "score must give one value per draw")
    if s.ndim != 1:
        s = s.reshape(s.shape[0], -1)[:, 0]
    return s


def _chunk(sampler, n, seed_seq, counter, device):
    x0, x1 = _draw(sampler, n, seed_seq, device)
    s0, s1 = _score(sampler, x0), _score(sampler, x1)
    if not (np.isfinite(s0).all() and np.isfinite(s1).all()):
        raise InvalidParameterError("sampler", sampler, "returned NaN or infinite samples")
    fp = s0.size - counter.at_or_below(s0)  # #{s0 > t}
    fn = counter.at_or_below(s1)  # #{s1 <= t}
    return fp, fn, s0.size, s1.size


# -- exact threshold counts without sorting ---------------------------------------------------

#: Samples counted per pass (buffers of this length are reused within a chunk).
_BLOCK = 1 << 16
#: Largest bucket table, and the most grid points one bucket window may hold before the
#: counter falls back to sorting.
_MAX_BUCKETS = 1 << 12
_MAX_WINDOW = 8


class _GridCounter:
    """Exact counts #{s <= t_j} over a sorted, duplicate-free, finite grid t_0 < ... < t_{K-1},
    without sorting the samples.

    pos(s) = #{j : t_j < s} is found in two steps: a bucket index b = trunc(clip((s - t_0)·M/
    (t_{K-1} - t_0), 0, M - 1)) from a uniform table of M buckets, then pos = lut[b] +
    Σ_{r<R} [s > t_{lut[b]+r}] (grid padded with +inf). lut[b] = #{t < e_lo(b)} and R =
    max_b #{e_lo(b) <= t <= e_hi(b)}, where [e_lo(b), e_hi(b)] is the bucket WIDENED by one
    whole bucket on each side (−inf/+inf at the ends): the float rounding of the bucket index
    (a few ulps of M) moves a sample by far less than one bucket, so every sample mapped to b
    has lut[b] <= pos(s) <= lut[b] + R, and the R comparisons against a sorted grid count
    exactly pos(s) − lut[b]. Then #{s <= t_j} = #{pos <= j} = cumsum(bincount(pos))[j]:
    integer counts, identical to sorting the samples and searching the grid. With R = 1 (the
    usual case: M is sized so that a widened bucket is shorter than the smallest grid gap) the
    pair (b, [s > t_{lut[b]}]) is counted directly and mapped to pos once per chunk. Grids
    where R would exceed ``_MAX_WINDOW`` (or where the bucket width is below the rounding of
    the grid's magnitude) are counted by sorting blocks of samples instead.
    """

    def __init__(self, grid: np.ndarray):
        self.grid = grid
        k = grid.size
        self.k = k
        self.lut = None
        lo, hi = float(grid[0]), float(grid[-1])
        if k < 2:
            return
        span = hi - lo
        gap = float(np.min(np.diff(grid)))
        if not (math.isfinite(span) and span > 0 and gap > 0):
            return
        ratio = span / gap  # >= 1; +inf when the gap is subnormal against the span
        m = _MAX_BUCKETS if not ratio < _MAX_BUCKETS / 4 else max(math.ceil(4.0 * ratio), 1)
        width = span / m
        if not (width > 1e-12 * max(abs(lo), abs(hi))):  # the margin must dwarf the rounding
            return
        b = np.arange(m, dtype=np.float64)
        lut = np.searchsorted(grid, lo + (b - 1.0) * width, side="left")
        top = np.searchsorted(grid, lo + (b + 2.0) * width, side="right")
        lut[0] = 0
        top[-1] = k
        window = int(np.max(top - lut))
        if window > _MAX_WINDOW:
            return
        self.lo, self.scale, self.m, self.window = lo, m / span, m, window
        self.lut = lut.astype(np.int32)
        self.padded = np.concatenate([grid, np.full(window + 1, np.inf)])
        # R = 1: code 2b + [s > t_{lut[b]}] maps to pos = lut[b] + [s > t_{lut[b]}]
        self.first = self.padded[self.lut]
        self.code_to_pos = np.stack([self.lut, self.lut + 1], axis=1).ravel()

    def at_or_below(self, s: np.ndarray) -> np.ndarray:
        """#{s <= t_j} for every grid point j (int64, length K); ``s`` finite, 1-D."""
        n = s.size
        if self.k == 1:
            return np.array([np.count_nonzero(s <= self.grid[0])], dtype=np.int64)
        if self.lut is None:
            below = np.zeros(self.k, dtype=np.int64)
            for lo in range(0, n, _BLOCK):
                srt = np.sort(s[lo : lo + _BLOCK])
                below += np.searchsorted(srt, self.grid, side="right")
            return below
        size = min(n, _BLOCK)
        t = np.empty(size)
        b = np.empty(size, dtype=np.int32)
        val = np.empty(size)
        above = np.empty(size, dtype=bool)
        if self.window == 1:
            codes = np.zeros(2 * self.m, dtype=np.int64)
        else:
            hist = np.zeros(self.k + 1, dtype=np.int64)
            pos = np.empty(size, dtype=np.int32)
            idx = np.empty(size, dtype=np.int32)
        for lo in range(0, n, _BLOCK):
            x = s[lo : lo + _BLOCK]
            w = x.size
            tt, bb, vv, aa = t[:w], b[:w], val[:w], above[:w]
            with np.errstate(over="ignore"):  # |s| near the float64 limit: ±inf, clipped
                np.subtract(x, self.lo, out=tt)
                np.multiply(tt, self.scale, out=tt)
            np.clip(tt, 0.0, self.m - 1.0, out=tt)
            bb[...] = tt  # truncation toward 0 of a value in [0, M - 1]
            if self.window == 1:
                np.take(self.first, bb, out=vv, mode="clip")
                np.greater(x, vv, out=aa)
                np.add(bb, bb, out=bb)
                np.add(bb, aa, out=bb, dtype=np.int32)
                codes += np.bincount(bb, minlength=2 * self.m)
                continue
            pp, ii = pos[:w], idx[:w]
            np.take(self.lut, bb, out=pp, mode="clip")
            ii[...] = pp
            for _ in range(self.window):
                np.take(self.padded, ii, out=vv, mode="clip")
                np.greater(x, vv, out=aa)
                np.add(pp, aa, out=pp, dtype=np.int32)
                np.add(ii, 1, out=ii)
            hist += np.bincount(pp, minlength=self.k + 1)
        if self.window == 1:  # integer counts < 2^53 stay exact through the float weights
            hist = np.rint(np.bincount(self.code_to_pos, weights=codes, minlength=self.k + 1))
            hist = hist.astype(np.int64)
        return np.cumsum(hist[: self.k])


def _draw(sampler, n, seed_seq, device):
    if device is not None:
        if not hasattr(sampler, "sample_torch"):
            raise InvalidParameterError("device", device, "this sampler has no torch path")
        return sampler.sample_torch(n, seed_seq, device)
    return sampler.sample(n, np.random.default_rng(seed_seq))


def _plan_chunks(samples, chunk_size, seed):
    n_chunks = math.ceil(samples / chunk_size)
    sizes = [chunk_size] * (n_chunks - 1) + [samples - chunk_size * (n_chunks - 1)]
    return sizes, np.random.SeedSequence(seed).spawn(n_chunks)


def _map(executor, fn, *iterables, progress=None):
    """[fn(*a) for a in zip(*iterables)], serially or on ``executor``, in input order;
    ``progress`` (a :class:`_Progress` or None) advances as chunks finish."""
    args = list(zip(*iterables))
    if executor is None:
        out = []
        for a in args:
            out.append(fn(*a))
            if progress is not None:
                progress.update(a[1])
        return out
    futs = [executor.submit(fn, *a) for a in args]
    if progress is not None:
        size = {f: a[1] for f, a in zip(futs, args)}
        for f in as_completed(futs):
            progress.update(size[f])
    return [f.result() for f in futs]


class _Progress:
    """Progress of an audit on stderr (tqdm when installed, else one rewritten line)."""

    def __init__(self, total: int, desc: str):
        self.total, self.done, self.desc = total, 0, desc
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, desc=desc, unit=" draws", unit_scale=True, file=sys.stderr)

    def update(self, n):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            print(f"\r{self.desc}: {self.done}/{self.total} draws", end="", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


def _progress(progress, total, desc):
    """A :class:`_Progress` when ``progress`` is true, else None (``progress`` must be a bool)."""
    if not isinstance(progress, (bool, np.bool_)):
        raise InvalidParameterError("progress", progress, "must be True or False")
    return _Progress(total, desc) if progress else None


def default_grid(sampler, *, size=64, pilot=20000, seed=12345):
    """Pre-registered grid from an independent pilot run (quantiles of both score laws)."""
    sampler = as_sampler(sampler)
    x0, x1 = sampler.sample(pilot, np.random.default_rng(np.random.SeedSequence(seed)))
    s = np.concatenate([_score(sampler, x0), _score(sampler, x1)])
    return np.unique(np.quantile(s, np.linspace(0.005, 0.995, size)))


def run_audit(
    sampler,
    *,
    samples,
    delta,
    confidence=0.95,
    grid=None,
    seed=0,
    chunk_size=1_000_000,
    executor: Executor | None = None,
    device=None,
    min_epsilon=None,
    progress=False,
):
    """Bonferroni threshold audit: certified lower bound on epsilon at ``delta``.

    ``samples`` per side; ``grid`` a pre-registered threshold grid (default: from an independent
    pilot with a fixed seed, never from the audit data). Each of the 2K rates is bounded at
    (1-confidence)/(2K) (Clopper–Pearson), so the bound holds jointly with probability
    >= ``confidence``. If ``min_epsilon`` is given and the lower bound does not reach it, the
    result has status "insufficient_precision" and epsilon_lower None. ``sampler``: an object
    with ``sample(n, rng)`` or a function ``fn(rng, n) -> (x0, x1)``. ``progress=True`` shows
    the draws done on stderr (tqdm when installed).

    Counting: the exact integer counts #{s0 > t} and #{s1 <= t} are accumulated per chunk
    without sorting the samples (a bucket table of the grid, see ``_GridCounter``), so the
    Clopper–Pearson bounds see exactly the counts a sort would give.
    """
    samples = check_int("samples", samples, minimum=1)
    confidence = check_in_range("confidence", confidence, 0.0, 1.0)
    delta = check_delta(delta)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    sampler = as_sampler(sampler)
    grid = default_grid(sampler) if grid is None else np.asarray(grid, dtype=float).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise InvalidParameterError("grid", grid, "must be a non-empty finite grid")
    grid = np.unique(grid)  # sorted, no duplicates (a duplicate would only cost Bonferroni)
    sizes, seeds = _plan_chunks(samples, chunk_size, seed)
    m = len(sizes)
    counter = _GridCounter(grid)
    bar = _progress(progress, sum(sizes), "audit")
    try:
        parts = _map(
            executor,
            _chunk,
            [sampler] * m,
            sizes,
            seeds,
            [counter] * m,
            [device] * m,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    fp = sum(p[0] for p in parts)
    fn = sum(p[1] for p in parts)
    n0 = sum(p[2] for p in parts)
    n1 = sum(p[3] for p in parts)
    a = (1.0 - confidence) / (2 * grid.size)
    eps = _eps_from(
        clopper_pearson_upper(fp, n0, alpha=a), clopper_pearson_upper(fn, n1, alpha=a), delta
    )
    i = int(np.argmax(eps))
    value = max(float(eps[i]), 0.0)
    exact = None
    if hasattr(sampler, "delta"):
        try:
            from .toys import exact_epsilon

            exact = exact_epsilon(sampler, delta)
        except Exception:  # noqa: BLE001 - exact value is informative only
            exact = None
    result = AuditResult(
        value,
        "lower",
        delta,
        confidence,
        samples,
        "ok",
        best_threshold=float(grid[i]),
        exact_epsilon=exact,
        counts={"fp": int(fp[i]), "fn": int(fn[i]), "n0": n0, "n1": n1},
        grid=[float(g) for g in grid],
        false_positives=[int(v) for v in fp],
        false_negatives=[int(v) for v in fn],
    )
    if min_epsilon is not None and value < min_epsilon:
        result.epsilon_lower = None
        result.status = "insufficient_precision"
        result.message = (
            f"lower bound {value:.4g} did not reach the requested {min_epsilon:.4g} "
            f"with {samples} samples per side; increase samples"
        )
    return result


def _alpha_each(result):
    return (1.0 - result.confidence) / (2 * len(result.grid))


def epsilon_lower_curve(result: AuditResult, deltas):
    """Certified epsilon lower bounds at several deltas from ONE audit's counts.

    The 2K Clopper-Pearson events of the run hold jointly, and every delta's bound is a function
    of them, so the whole curve holds simultaneously at ``result.confidence``.
    """
    d = np.atleast_1d(np.asarray(deltas, dtype=float))
    for x in d:
        check_delta(float(x))
    a = _alpha_each(result)
    fpr = clopper_pearson_upper(np.array(result.false_positives), result.counts["n0"], alpha=a)
    fnr = clopper_pearson_upper(np.array(result.false_negatives), result.counts["n1"], alpha=a)
    return np.array([max(float(np.max(_eps_from(fpr, fnr, x))), 0.0) for x in d])


def delta_lower_curve(result: AuditResult, epsilons):
    """Certified delta(eps) lower bounds (both orientations) at several eps, jointly valid."""
    e = np.atleast_1d(np.asarray(epsilons, dtype=float))
    for x in e:
        check_epsilon(float(x))
    a = _alpha_each(result)
    fpr = clopper_pearson_upper(np.array(result.false_positives), result.counts["n0"], alpha=a)
    fnr = clopper_pearson_upper(np.array(result.false_negatives), result.counts["n1"], alpha=a)
    out = []
    for x in e:
        d1 = (1 - fnr) - math.exp(x) * fpr
        d2 = (1 - fpr) - math.exp(x) * fnr
        out.append(max(float(np.max(np.fmax(d1, d2))), 0.0))
    return np.array(out)


@dataclass
class DeltaAuditResult:
    """Two-sided confidence interval on delta(eps) by MC over the privacy-loss variable.

    ``delta_lower``/``delta_upper`` are None (status "insufficient_precision") when the
    requested relative width was not reached.
    """

    epsilon: float
    direction: str
    delta_lower: float | None
    delta_upper: float | None
    delta_estimate: float
    confidence: float
    samples: int
    method: str
    status: str = "ok"
    message: str = ""
    exact_delta: float | None = None

    def to_bounds(self) -> tuple[Bound, Bound, Bound] | None:
        """(lower, upper, estimate) Bounds on δ(ε) (None when precision was not reached)."""
        if self.delta_lower is None or self.delta_upper is None:
            return None
        info = {"confidence": self.confidence, "epsilon": self.epsilon, "samples": self.samples}
        return (
            Bound(self.delta_lower, BoundKind.LOWER, source=self.method, details=info),
            Bound(self.delta_upper, BoundKind.UPPER, source=self.method, details=info),
            Bound(self.delta_estimate, BoundKind.ESTIMATE, source=self.method, details=info),
        )

    def to_dict(self):
        return asdict(self)


def _delta_chunk(toy, n, seed_seq, epsilon, direction, tilt, device):
    if tilt:
        mu = float(toy.mu)
        c = min(mu / 2.0 - epsilon / mu, 0.0)
        if device is not None:
            from .toys import _torch_generator

            g, torch = _torch_generator(seed_seq, device)
            x = c + torch.randn(n, generator=g, device=device, dtype=torch.float64)
            lw = -c * x + c * c / 2.0
            y = -torch.expm1(torch.clamp(epsilon - (-mu * x + mu * mu / 2.0), max=0.0))
            y = y * torch.exp(lw + c * c / 2.0)
            return float(y.sum()), float((y * y).sum()), n
        x = c + np.random.default_rng(seed_seq).standard_normal(n)
        L = -mu * x + mu * mu / 2.0
        # summand * weight / sup, sup = e^{-c^2/2}
        y = -np.expm1(np.minimum(epsilon - L, 0.0)) * np.exp(-c * x + c * c)
    else:
        x0, x1 = _draw(toy, n, seed_seq, device)
        if direction == "PQ":
            L = np.asarray(toy.privacy_loss(x1), dtype=float)
        else:
            L = -np.asarray(toy.privacy_loss(x0), dtype=float)
        if not np.all(np.isfinite(L)):
            raise InvalidParameterError("sampler", toy, "returned NaN or infinite privacy losses")
        y = -np.expm1(np.minimum(epsilon - L, 0.0))
    y = np.minimum(y, 1.0)
    return float(y.sum()), float(np.dot(y, y)), int(y.size)


def run_delta_audit(
    toy,
    *,
    epsilon,
    samples,
    direction="PQ",
    confidence=0.95,
    seed=0,
    chunk_size=1_000_000,
    executor: Executor | None = None,
    device=None,
    tilt=None,
    max_relative_width=None,
):
    """delta(eps) with a two-sided empirical-Bernstein interval (docs/theory.md §12.4), chunked.

    Needs ``toy.privacy_loss`` (log-densities known). Gaussian-shift toys are tilted to the
    boundary of {L > eps} by default (proposal N(c, 1), c = mu/2 - eps/mu, summand/weight <=
    e^{-c^2/2}, divided out so that it lies in [0, 1]); others use plain MC under the right world.
    With ``max_relative_width`` set, an interval wider than that fraction of its estimate is
    NOT reported: status "insufficient_precision", bounds None.
    """
    eps = check_epsilon(epsilon)
    samples = check_int("samples", samples, minimum=2)
    confidence = check_in_range("confidence", confidence, 0.0, 1.0)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if direction not in ("PQ", "QP"):
        raise InvalidParameterError("direction", direction, "must be 'PQ' or 'QP'")
    if max_relative_width is not None:
        check_positive("max_relative_width", max_relative_width)
    if tilt is None:
        tilt = bool(getattr(toy, "gaussian_shift", False))
    if tilt and not getattr(toy, "gaussian_shift", False):
        raise InvalidParameterError("tilt", tilt, "tilting is implemented for Gaussian shifts")
    sizes, seeds = _plan_chunks(samples, chunk_size, seed)
    m = len(sizes)
    parts = _map(
        executor,
        _delta_chunk,
        [toy] * m,
        sizes,
        seeds,
        [eps] * m,
        [direction] * m,
        [tilt] * m,
        [device] * m,
    )
    tot = sum(p[0] for p in parts)
    tot2 = sum(p[1] for p in parts)
    n = sum(p[2] for p in parts)
    sup = math.exp(-(min(float(toy.mu) / 2 - eps / float(toy.mu), 0.0) ** 2) / 2) if tilt else 1.0
    alpha = 1.0 - confidence
    lo = empirical_bernstein_from_sums(tot, tot2, n, alpha=alpha / 2, side="lower") * sup
    hi = empirical_bernstein_from_sums(tot, tot2, n, alpha=alpha / 2, side="upper") * sup
    est = tot / n * sup
    exact = None
    if hasattr(toy, "delta"):
        try:
            exact = float(toy.delta(eps, direction=direction))
        except Exception:  # noqa: BLE001 - exact value is informative only
            exact = None
    res = DeltaAuditResult(
        eps,
        direction,
        lo,
        hi,
        est,
        confidence,
        n,
        "tilted-plrv-bernstein" if tilt else "plrv-bernstein",
        exact_delta=exact,
    )
    if max_relative_width is not None and not (est > 0 and hi - lo <= max_relative_width * est):
        res.delta_lower = res.delta_upper = None
        res.status = "insufficient_precision"
        res.message = (
            f"interval [{lo:.3g}, {hi:.3g}] is wider than {max_relative_width:g} x the estimate "
            f"{est:.3g} with {n} samples; increase samples"
        )
    return res
