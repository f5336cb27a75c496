r"""Vectorised interpreter of update rules (:mod:`unlearn_theory.update_rule`) on n chains.

A method's spec yields its update rule as data (``spec.update_rule()``: prologue ops, then
phases of ops run ``steps`` times, optionally restricted to one coordinate block). :func:`run`
executes such a rule on n independent chains in ℝ^d at once (an array of shape (n, d)); the
audits (:mod:`verification.audit`) and the toys use it instead of re-typing each method's loop.
The same code runs on numpy (:class:`NumpyBackend`, an explicit ``numpy.random.Generator``)
and on torch (:class:`TorchBackend`, an explicit ``torch.Generator``; torch is imported only
there).

Semantics of the operations (docs/theory.md §6; one row = one chain):

- ``ProjectBall(r)``: x ← x·min(1, r/‖x‖₂) per row -- the Euclidean projection onto the *ball*
  (a point inside stays where it is; nothing is rescaled onto the sphere);
- ``Gradient``: g ← oracle(x, world, context)[:, block]; the oracle is the caller's (a toy loss);
  it receives the op (batching, per-example clip, reduction) in ``context``;
- ``ClipGradient(c)``: g ← g·min(1, c/‖g‖₂) per row (ℓ2 clip of the block's gradient);
- ``GradientNoise(s)``: g ← g + s·ξ; ``AddNoise(s)``: x ← x + s·ξ on the active block;
  ξ ~ N(0, I) is a fresh draw at EVERY execution (never reused across steps or blocks);
- ``WeightDecay(γ, λ)``: x ← (1 − γλ)x (after the clip: the clip bounds the loss gradient only);
- ``GradientStep(γ)``: x ← x − γg.

Within a phase restricted to block b every operation acts on the coordinates of block b only;
the gradient buffer is reset at the start of every step (an op that reads it before a
``Gradient`` op of the same step is an error). Blocks are those of a partition of the d
coordinates into ``rule.blocks`` parts: the caller's, or by default equal contiguous blocks
(block i of k is coordinate i when d == k).

Forget records (the DP-SGD baseline). In the baseline's adjacency the world-1 model was trained
on the forget set as well. The caller states how many forget records its world holds
(``forget_records`` = k; 0 for the unlearning methods, whose two worlds train on the same retain
set). At each ``Gradient`` execution the interpreter draws, per chain, how many of the k records
are in that step's batch -- Binomial(k, q) for ``batching="poisson"`` (each record kept
independently with probability q = ``sample_rate``), k for ``"full"`` -- from the same generator,
fresh at every step, and hands the counts to the oracle as ``context.sampled_records`` (shape
(n, 1)); the oracle decides what each record contributes (the audit: −C1 along e₁, aligned and at
the clip). With k = 0 nothing is drawn and ``sampled_records`` is None.

Fault injection (to check that the audits catch a buggy loop): ``"reuse_noise"`` draws the
phases' noise ξ once and reuses it at every step (and every block); ``"half_noise"`` halves the
std of every noise op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_theory._validate import check_int
from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.update_rule import (
    AddNoise,
    ClipGradient,
    Gradient,
    GradientNoise,
    GradientStep,
    Op,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)

__all__ = [
    "FAULTS",
    "NumpyBackend",
    "TorchBackend",
    "OracleContext",
    "default_partition",
    "run",
]

FAULTS = ("reuse_noise", "half_noise")


# -- backends -------------------------------------------------------------------------------------
class NumpyBackend:
    """Array operations and random draws in numpy (float64), from an explicit Generator."""

    name = "numpy"

    def __init__(self, rng: np.random.Generator):
        if not isinstance(rng, np.random.Generator):
            raise InvalidParameterError("rng", rng, "must be a numpy.random.Generator")
        self.rng = rng

    # draws
    def randn(self, n: int, d: int):
        return self.rng.standard_normal((n, d))

    def binomial(self, k: int, q: float, n: int):
        """(n, 1) float counts ~ Binomial(k, q)."""
        return self.rng.binomial(k, q, n).astype(np.float64)[:, None]

    # arrays
    def copy(self, x):
        return np.array(x, dtype=np.float64, copy=True)

    def full(self, shape, value):
        return np.full(shape, float(value))

    def shape(self, x) -> tuple[int, ...]:
        return tuple(np.shape(x))

    def index(self, cols):
        return cols

    def unit_row(self, d: int, i: int):
        e = np.zeros((1, d))
        e[0, i] = 1.0
        return e

    def row_norm(self, x):
        """‖row‖₂ as an (n, 1) array, scaled by the row's max so that no square overflows (a
        1-coordinate row gets |x| exactly)."""
        a = np.max(np.abs(x), axis=1, keepdims=True)
        safe = np.where(a > 0, a, 1.0)
        return safe * np.sqrt(np.sum((x / safe) ** 2, axis=1, keepdims=True))

    def shrink(self, norm, r: float):
        """min(1, r/norm) per row (1 where norm <= r, so norm = 0 never divides)."""
        out = np.ones_like(norm)
        np.divide(r, norm, out=out, where=norm > r)
        return out

    def clip_rows(self, x, r: float):
        """x·min(1, r/‖x‖₂) per row; a 1-coordinate row is clipped to [-r, r] (the same map,
        exactly)."""
        if x.shape[1] == 1:
            return np.clip(x, -r, r)
        return x * self.shrink(self.row_norm(x), r)

    def all_finite(self, x) -> bool:
        return bool(np.all(np.isfinite(x)))

    sign = staticmethod(np.sign)

    def sigmoid_neg(self, x):  # 1/(1 + e^x)
        return 1.0 / (1.0 + np.exp(np.clip(x, -700, 700)))

    def to_numpy(self, x):
        return np.asarray(x)


class TorchBackend:
    """The same operations in torch (float64) on ``device``, from an explicit torch.Generator."""

    name = "torch"

    def __init__(self, generator, device="cpu"):
        import torch

        if not isinstance(generator, torch.Generator):
            raise InvalidParameterError("generator", generator, "must be a torch.Generator")
        self.torch = torch
        self.g = generator
        self.device = device

    @classmethod
    def from_seed_sequence(cls, seed_seq: np.random.SeedSequence, device="cpu") -> TorchBackend:
        """A backend whose generator is seeded from a numpy SeedSequence (the runner's chunks)."""
        import torch

        g = torch.Generator(device=device)
        g.manual_seed(int(seed_seq.generate_state(1, np.uint64)[0] & 0x7FFF_FFFF_FFFF_FFFF))
        return cls(g, device)

    def randn(self, n: int, d: int):
        t = self.torch
        return t.randn((n, d), generator=self.g, device=self.device, dtype=t.float64)

    def binomial(self, k: int, q: float, n: int):
        t = self.torch
        cnt = t.full((n, 1), float(k), device=self.device, dtype=t.float64)
        prob = t.full((n, 1), float(q), device=self.device, dtype=t.float64)
        return t.binomial(cnt, prob, generator=self.g)

    def copy(self, x):
        t = self.torch
        if isinstance(x, t.Tensor):
            return x.detach().to(device=self.device, dtype=t.float64).clone()
        return t.as_tensor(np.asarray(x, dtype=np.float64), device=self.device).clone()

    def full(self, shape, value):
        t = self.torch
        return t.full(tuple(shape), float(value), device=self.device, dtype=t.float64)

    def shape(self, x) -> tuple[int, ...]:
        return tuple(x.shape)

    def index(self, cols):
        if isinstance(cols, slice):
            return cols
        return self.torch.as_tensor(np.asarray(cols), device=self.device, dtype=self.torch.long)

    def unit_row(self, d: int, i: int):
        e = self.full((1, d), 0.0)
        e[0, i] = 1.0
        return e

    def row_norm(self, x):
        t = self.torch
        a = t.amax(t.abs(x), dim=1, keepdim=True)
        safe = t.where(a > 0, a, t.ones_like(a))
        return safe * t.sqrt(t.sum((x / safe) ** 2, dim=1, keepdim=True))

    def shrink(self, norm, r: float):
        t = self.torch
        ones = t.ones_like(norm)
        return t.where(norm > r, r / t.where(norm > r, norm, ones), ones)

    def clip_rows(self, x, r: float):
        if x.shape[1] == 1:
            return self.torch.clamp(x, -r, r)
        return x * self.shrink(self.row_norm(x), r)

    def all_finite(self, x) -> bool:
        return bool(self.torch.isfinite(x).all())

    def sign(self, x):
        return self.torch.sign(x)

    def sigmoid_neg(self, x):
        return self.torch.sigmoid(-x)

    def to_numpy(self, x):
        return x.detach().to("cpu").numpy()


# -- partition ------------------------------------------------------------------------------------
def default_partition(d: int, k: int) -> list[slice]:
    """k equal contiguous blocks of range(d) (sizes differ by at most one; d == k: block i is
    coordinate i)."""
    d = check_int("d", d, minimum=1)
    k = check_int("blocks", k, minimum=1)
    if d < k:
        raise InvalidParameterError("d", d, f"must be >= the number of blocks {k}")
    edges = [i * d // k for i in range(k + 1)]
    return [slice(edges[i], edges[i + 1]) for i in range(k)]


def _check_partition(partition, d: int, k: int) -> list:
    if partition is None:
        return default_partition(d, k)
    parts = list(partition)
    if len(parts) != k:
        raise InvalidParameterError(
            "partition", partition, f"must have one index set per block ({k})"
        )
    seen = np.zeros(d, dtype=int)
    out = []
    for p in parts:
        if isinstance(p, slice):
            idx = np.arange(d)[p]
        else:
            idx = np.asarray(p)
            if idx.ndim != 1 or idx.dtype.kind not in "iu":
                raise InvalidParameterError("partition", p, "each block must be integer indices")
        if idx.size == 0 or idx.min() < 0 or idx.max() >= d:
            raise InvalidParameterError("partition", p, f"a block must be non-empty in [0, {d})")
        seen[idx] += 1
        contiguous = bool(np.all(np.diff(idx) == 1))
        out.append(slice(int(idx[0]), int(idx[-1]) + 1) if contiguous else idx)
    if np.any(seen != 1):
        raise InvalidParameterError(
            "partition", partition, f"the blocks must partition the {d} coordinates"
        )
    return out


# -- oracle context -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OracleContext:
    """What the gradient oracle learns about the call.

    ``op``: the :class:`~unlearn_theory.update_rule.Gradient` op being run (batching, sample
    rate, per-example clip, reduction); ``step``: index of the noisy step (0-based, over all
    phases; None in the prologue); ``phase``: index of the phase (None in the prologue);
    ``block``/``columns``: the active block and its coordinates (None: all); ``sampled_records``:
    (n, 1) counts of this world's forget records that are in this step's batch (None when the
    world has no forget records); ``backend``: the array backend (for the oracle's own arrays).
    """

    op: Gradient
    step: int | None
    phase: int | None
    block: int | None
    columns: Any
    sampled_records: Any
    backend: Any

    def clip_rows(self, g, clip: float):
        """g·min(1, clip/‖g‖₂) per row (e.g. a per-example clip)."""
        return self.backend.clip_rows(g, clip)


Oracle = Callable[[Any, int, OracleContext], Any]


# -- the interpreter ------------------------------------------------------------------------------
class _Run:
    def __init__(self, rule, x0, oracle, world, backend, partition, fault, forget_records):
        self.rule, self.oracle, self.world, self.b = rule, oracle, world, backend
        self.fault, self.records = fault, forget_records
        self.x = backend.copy(x0)
        shape = backend.shape(self.x)
        if len(shape) != 2 or shape[0] < 1:
            raise InvalidParameterError("x0", shape, "must be an (n, d) array with n >= 1")
        self.n, self.d = shape
        parts = _check_partition(partition, self.d, rule.blocks)
        self.widths = [len(range(self.d)[p]) if isinstance(p, slice) else len(p) for p in parts]
        self.parts = [backend.index(p) for p in parts]
        self.cached = None  # the reused draw of the "reuse_noise" fault

    # helpers
    def _get(self, cols):
        return self.x if cols is None else self.x[:, cols]

    def _set(self, cols, value):
        if cols is None:
            self.x = value
        else:
            self.x[:, cols] = value

    def _noise(self, std, block, in_phase):
        s = std / 2.0 if self.fault == "half_noise" else std
        w = self.d if block is None else self.widths[block]
        if self.fault == "reuse_noise" and in_phase:
            if self.cached is None:
                self.cached = self.b.randn(self.n, self.d)
            z = self.cached[:, :w]
        else:
            z = self.b.randn(self.n, w)
        return s * z

    def _records(self, op: Gradient):
        if not self.records:
            return None
        if op.batching == "poisson":
            return self.b.binomial(self.records, op.sample_rate, self.n)
        if op.batching == "full":
            return self.b.full((self.n, 1), self.records)
        raise InvalidParameterError(
            "forget_records",
            self.records,
            f"forget records are modelled with full or Poisson batching, not {op.batching!r}",
        )

    def _gradient(self, op, cols, step, phase, block):
        ctx = OracleContext(
            op=op,
            step=step,
            phase=phase,
            block=block,
            columns=cols,
            sampled_records=self._records(op),
            backend=self.b,
        )
        g = self.oracle(self.x, self.world, ctx)
        if self.b.shape(g) != (self.n, self.d):
            raise InvalidParameterError(
                "oracle", self.b.shape(g), f"must return an (n, d) = {(self.n, self.d)} gradient"
            )
        return g if cols is None else g[:, cols]

    def _op(self, op: Op, g, cols, step, phase, block, in_phase):
        """Run one op; returns the (possibly new) gradient buffer."""
        b = self.b
        if isinstance(op, ProjectBall):
            self._set(cols, b.clip_rows(self._get(cols), op.radius))
        elif isinstance(op, AddNoise):
            self._set(cols, self._get(cols) + self._noise(op.std, block, in_phase))
        elif isinstance(op, WeightDecay):
            self._set(cols, op.factor * self._get(cols))
        elif isinstance(op, Gradient):
            return self._gradient(op, cols, step, phase, block)
        elif isinstance(op, (ClipGradient, GradientNoise, GradientStep)):
            if g is None:
                raise InvalidParameterError(
                    "op", op, "needs a Gradient op earlier in the same step"
                )
            if isinstance(op, ClipGradient):
                return b.clip_rows(g, op.clip)
            if isinstance(op, GradientNoise):
                return g + self._noise(op.std, block, in_phase)
            self._set(cols, self._get(cols) - op.learning_rate * g)
        else:
            raise InvalidParameterError("op", op, "is not an operation this interpreter knows")
        return g

    def run(self):
        for op in self.rule.prologue:
            self._op(op, None, None, None, None, None, in_phase=False)
        step = 0
        for p, phase in enumerate(self.rule.phases):
            cols = None if phase.block is None else self.parts[phase.block]
            for _ in range(phase.steps):
                g = None
                for op in phase.ops:
                    g = self._op(op, g, cols, step, p, phase.block, in_phase=True)
                step += 1
        return self.x


def run(
    rule: UpdateRule,
    x0,
    oracle: Oracle,
    *,
    world: int = 0,
    rng: np.random.Generator | None = None,
    backend=None,
    partition: Sequence | None = None,
    fault: str | None = None,
    forget_records: int = 0,
):
    """Run ``rule`` on the n chains ``x0`` (shape (n, d)); returns the final iterates (n, d).

    ``oracle(x, world, context) -> (n, d)`` is the retain-set gradient at the full iterate x
    (the interpreter restricts it to the active block); ``world`` (0 or 1) is passed through to
    it. Randomness: ``rng`` (a numpy Generator: numpy backend) or ``backend`` (a
    :class:`NumpyBackend` or :class:`TorchBackend`) -- exactly one. ``partition``: the blocks'
    coordinate index sets (slices or integer arrays; default :func:`default_partition`).
    ``fault``: None, "reuse_noise" or "half_noise". ``forget_records``: forget-set records in
    this world's training data (see the module docstring). The input ``x0`` is not modified.
    """
    if not isinstance(rule, UpdateRule):
        raise InvalidParameterError("rule", rule, "must be an UpdateRule")
    if (rng is None) == (backend is None):
        raise InvalidParameterError("rng", rng, "give exactly one of rng and backend")
    if backend is None:
        backend = NumpyBackend(rng)
    if fault is not None and fault not in FAULTS:
        raise InvalidParameterError("fault", fault, f"must be None or one of {FAULTS}")
    if world not in (0, 1):
        raise InvalidParameterError("world", world, "must be 0 or 1")
    forget_records = check_int("forget_records", forget_records, minimum=0)
    if not callable(oracle):
        raise InvalidParameterError("oracle", oracle, "must be callable (x, world, context)")
    return _Run(rule, x0, oracle, world, backend, partition, fault, forget_records).run()
