r"""A method's update rule, written once, as data: an ordered list of operations.

Every unlearning method runs the same few operations on the parameter vector x (all trainable
parameters flattened into one vector of ℝ^d; in block-wise scheduling, the coordinates of the
active block). A method's spec yields an :class:`UpdateRule`:

``prologue``
    operations run once before the noisy steps (project onto the C0 ball, optional initial
    noise);
``phases``
    each :class:`Phase` runs its ``ops`` ``steps`` times; ``block`` (an index in
    ``range(rule.blocks)``, or None for all coordinates) restricts every operation of the phase
    to that block of a coordinate partition: the gradient, its clip, the weight decay, the step
    and the noise all act on block ``block`` only, and the other coordinates do not move.

The interpreters -- numpy in :mod:`verification.interpreter`, torch in :mod:`unlearn_torch` --
read this list; neither re-types a method's rule. The accountant's assumptions are the rule's:
in particular **weight decay is applied after clipping** -- the gradient clip C1 bounds the loss
gradient only, and the decay term x ← (1 − γλ)x is a separate contraction. Clipping a gradient
that includes the weight-decay term ``λx`` voids the gradient-clipping bound, since the
shift per step is then not bounded by γC1 (docs/theory.md §6).

Operations (the state is the iterate x and a gradient buffer g):

====================== ==================================================================
:class:`ProjectBall`   x ← x · min(1, r/‖x‖₂): Euclidean projection onto the *ball* of radius r
                       (not a rescaling onto the sphere)
:class:`Gradient`      g ← ∇L_retain(x) on a batch (full, cyclic, shuffled or Poisson; see the
                       class), optionally with each example's gradient clipped first
:class:`ClipGradient`  g ← g · min(1, c/‖g‖₂)
:class:`GradientNoise` g ← g + N(0, std² I) (DP-SGD's noise on the gradient)
:class:`WeightDecay`   x ← (1 − γλ) x
:class:`GradientStep`  x ← x − γ g
:class:`AddNoise`      x ← x + N(0, std² I), fresh at every execution
====================== ==================================================================

Every noise draw is fresh: an interpreter must never reuse a draw across steps, blocks or
tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _validate as v
from .errors import InvalidParameterError

BATCHINGS = ("full", "cyclic", "shuffle", "poisson")

__all__ = [
    "BATCHINGS",
    "Op",
    "ProjectBall",
    "Gradient",
    "ClipGradient",
    "GradientNoise",
    "WeightDecay",
    "GradientStep",
    "AddNoise",
    "Phase",
    "UpdateRule",
    "OPS",
]


class Op:
    """Base class of the operations (frozen dataclasses); ``name`` is the op's JSON tag."""

    name: str = ""

    def to_dict(self) -> dict:
        out = {"op": self.name}
        out.update({k: getattr(self, k) for k in self.__dataclass_fields__})  # type: ignore[attr-defined]
        return out


@dataclass(frozen=True)
class ProjectBall(Op):
    """x ← x·min(1, radius/‖x‖₂): projection onto the ℓ2 ball (the C0 or C2 projection)."""

    radius: float
    name = "project_ball"

    def __post_init__(self):
        v.check_positive("radius", self.radius)


@dataclass(frozen=True)
class Gradient(Op):
    """g ← gradient of the retain loss at x on a batch.

    ``batching``: "full" (the whole retain set), "cyclic" (one fixed partition of the retain set
    into batches of ``batch_size``, visited in order -- Langevin's PNSGD), "shuffle" (a fresh
    uniform batch of ``batch_size`` examples without replacement each step) or "poisson" (each
    example kept independently with probability ``sample_rate`` -- DP-SGD). With
    ``per_example_clip`` = c each example's gradient is clipped to ℓ2 norm c first.
    ``reduction``: "mean" (divide by the batch size) or "sum" (DP-SGD: the noise is added to
    the sum; the step's learning rate absorbs the normalisation).
    """

    batching: str = "full"
    batch_size: int | None = None
    sample_rate: float | None = None
    per_example_clip: float | None = None
    reduction: str = "mean"
    name = "gradient"

    def __post_init__(self):
        if self.batching not in BATCHINGS:
            raise InvalidParameterError("batching", self.batching, f"must be one of {BATCHINGS}")
        if self.reduction not in ("mean", "sum"):
            raise InvalidParameterError("reduction", self.reduction, "must be 'mean' or 'sum'")
        if self.batching in ("cyclic", "shuffle"):
            v.check_int("batch_size", self.batch_size, minimum=1)
        elif self.batch_size is not None:
            raise InvalidParameterError(
                "batch_size", self.batch_size, f"is not used with batching={self.batching!r}"
            )
        if self.batching == "poisson":
            v.check_sample_rate(self.sample_rate)
        elif self.sample_rate is not None:
            raise InvalidParameterError(
                "sample_rate", self.sample_rate, "is used only with batching='poisson'"
            )
        if self.per_example_clip is not None:
            v.check_positive("per_example_clip", self.per_example_clip)


@dataclass(frozen=True)
class ClipGradient(Op):
    """g ← g·min(1, clip/‖g‖₂) (clip = 0 zeroes the gradient)."""

    clip: float
    name = "clip_gradient"

    def __post_init__(self):
        v.check_nonnegative("clip", self.clip)


@dataclass(frozen=True)
class GradientNoise(Op):
    """g ← g + N(0, std²I): DP-SGD's Gaussian noise on the (summed) gradient."""

    std: float
    name = "gradient_noise"

    def __post_init__(self):
        v.check_nonnegative("std", self.std)


@dataclass(frozen=True)
class WeightDecay(Op):
    """x ← (1 − learning_rate·weight_decay)·x; applied after (never inside) the clip."""

    learning_rate: float
    weight_decay: float
    name = "weight_decay"

    def __post_init__(self):
        v.check_positive("learning_rate", self.learning_rate)
        v.check_nonnegative("weight_decay", self.weight_decay)
        v.check_decay_product(self.learning_rate, self.weight_decay)

    @property
    def factor(self) -> float:
        """The contraction factor ρ = 1 − γλ."""
        return 1.0 - self.learning_rate * self.weight_decay


@dataclass(frozen=True)
class GradientStep(Op):
    """x ← x − learning_rate·g."""

    learning_rate: float
    name = "gradient_step"

    def __post_init__(self):
        v.check_positive("learning_rate", self.learning_rate)


@dataclass(frozen=True)
class AddNoise(Op):
    """x ← x + N(0, std²I) on the active coordinates, a fresh draw at every execution."""

    std: float
    name = "add_noise"

    def __post_init__(self):
        v.check_nonnegative("std", self.std)


#: JSON tag -> op class
OPS = {
    cls.name: cls
    for cls in (
        ProjectBall,
        Gradient,
        ClipGradient,
        GradientNoise,
        WeightDecay,
        GradientStep,
        AddNoise,
    )
}


@dataclass(frozen=True)
class Phase:
    """``ops`` run ``steps`` times, restricted to coordinate block ``block`` (None: all)."""

    steps: int
    ops: tuple[Op, ...]
    block: int | None = None

    def __post_init__(self):
        v.check_int("steps", self.steps, minimum=0)
        object.__setattr__(self, "ops", tuple(self.ops))
        for op in self.ops:
            if not isinstance(op, Op):
                raise InvalidParameterError("ops", op, "every entry must be an update-rule Op")
        if self.block is not None:
            v.check_int("block", self.block, minimum=0)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "block": self.block, "ops": [op.to_dict() for op in self.ops]}


@dataclass(frozen=True)
class UpdateRule:
    """A method's update rule: ``prologue`` once, then each phase in order.

    ``blocks`` is the number k of coordinate blocks that phases may be restricted to (1: no
    partition). ``steps`` counts the executions of all phases (the noisy steps T).
    """

    prologue: tuple[Op, ...] = ()
    phases: tuple[Phase, ...] = ()
    blocks: int = 1
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "prologue", tuple(self.prologue))
        object.__setattr__(self, "phases", tuple(self.phases))
        object.__setattr__(self, "notes", tuple(self.notes))
        v.check_int("blocks", self.blocks, minimum=1)
        for op in self.prologue:
            if not isinstance(op, Op):
                raise InvalidParameterError("prologue", op, "every entry must be an Op")
        for ph in self.phases:
            if not isinstance(ph, Phase):
                raise InvalidParameterError("phases", ph, "every entry must be a Phase")
            if ph.block is not None and ph.block >= self.blocks:
                raise InvalidParameterError("block", ph.block, f"must be < blocks={self.blocks}")

    @property
    def steps(self) -> int:
        return sum(ph.steps for ph in self.phases)

    def ops_at(self, step: int) -> tuple[Phase, int]:
        """The phase that step ``step`` (0-based) runs, and the step's index inside it."""
        step = v.check_int("step", step, minimum=0)
        for ph in self.phases:
            if step < ph.steps:
                return ph, step
            step -= ph.steps
        raise InvalidParameterError("step", step, f"the rule has {self.steps} steps")

    def to_dict(self) -> dict:
        return {
            "prologue": [op.to_dict() for op in self.prologue],
            "phases": [ph.to_dict() for ph in self.phases],
            "blocks": self.blocks,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> UpdateRule:
        def op(d):
            if not isinstance(d, dict) or d.get("op") not in OPS:
                raise InvalidParameterError("op", d, f"must name one of {sorted(OPS)}")
            kw = {k: val for k, val in d.items() if k != "op"}
            return OPS[d["op"]](**kw)

        try:
            return cls(
                prologue=tuple(op(d) for d in data.get("prologue", ())),
                phases=tuple(
                    Phase(
                        steps=ph["steps"],
                        block=ph.get("block"),
                        ops=tuple(op(d) for d in ph["ops"]),
                    )
                    for ph in data.get("phases", ())
                ),
                blocks=data.get("blocks", 1),
                notes=tuple(data.get("notes", ())),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidParameterError("update_rule", data, f"malformed: {exc}") from None
