"""Chunked, reproducible Monte Carlo audits (docs/theory.md §12).

A *sampler* is any object following :class:`Sampler`: ``sample(n, rng) -> (x0, x1)`` (numpy
arrays, one row per draw, from the two worlds) and optionally ``score(x)`` / ``privacy_loss(x)``
mapping a draw to a real test score, and ``sample_torch(n, seed_seq, device)`` for a torch path.
A torch training loop plugs in through :class:`TorchLoopSampler` (a callable that trains n
models in one world with a given ``torch.Generator``). Samples are drawn in chunks, chunk i
seeded by ``SeedSequence(seed).spawn(n_chunks)[i]``; each chunk only returns counts on a
pre-registered threshold grid (or sufficient statistics), so results do not depend on the
executor or on the number of workers. Any ``concurrent.futures.Executor`` works (stdlib process
pools; Dask's ``Client.get_executor()``); the sampler must then be picklable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
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


def _chunk(sampler, n, seed_seq, grid, device):
    x0, x1 = _draw(sampler, n, seed_seq, device)
    s0, s1 = _score(sampler, x0), _score(sampler, x1)
    if not (np.all(np.isfinite(s0)) and np.all(np.isfinite(s1))):
        raise InvalidParameterError("sampler", sampler, "returned NaN or infinite samples")
    s0.sort()
    s1.sort()
    fp = s0.size - np.searchsorted(s0, grid, side="right")
    fn = np.searchsorted(s1, grid, side="right")
    return fp.astype(np.int64), fn.astype(np.int64), s0.size, s1.size


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


def _map(executor, fn, *iterables):
    if executor is None:
        return [fn(*a) for a in zip(*iterables)]
    futs = [executor.submit(fn, *a) for a in zip(*iterables)]
    return [f.result() for f in futs]


def default_grid(sampler, *, size=64, pilot=20000, seed=12345):
    """Pre-registered grid from an independent pilot run (quantiles of both score laws)."""
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
):
    """Bonferroni threshold audit: certified lower bound on epsilon at ``delta``.

    ``samples`` per side; ``grid`` a pre-registered threshold grid (default: from an independent
    pilot with a fixed seed, never from the audit data). Each of the 2K rates is bounded at
    (1-confidence)/(2K) (Clopper–Pearson), so the bound holds jointly with probability
    >= ``confidence``. If ``min_epsilon`` is given and the lower bound does not reach it, the
    result has status "insufficient_precision" and epsilon_lower None.
    """
    samples = check_int("samples", samples, minimum=1)
    confidence = check_in_range("confidence", confidence, 0.0, 1.0)
    delta = check_delta(delta)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    grid = default_grid(sampler) if grid is None else np.asarray(grid, dtype=float).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise InvalidParameterError("grid", grid, "must be a non-empty finite grid")
    grid = np.unique(grid)  # sorted, no duplicates (a duplicate would only cost Bonferroni)
    sizes, seeds = _plan_chunks(samples, chunk_size, seed)
    m = len(sizes)
    parts = _map(executor, _chunk, [sampler] * m, sizes, seeds, [grid] * m, [device] * m)
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
