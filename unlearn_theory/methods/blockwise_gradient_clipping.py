r"""Method ``"blockwise_gradient_clipping"``: gradient clipping one orthogonal block at a time.

Dolgova & Stich 2026, arXiv 2601.05134. The coordinates are split into k blocks; after one
global C0 projection, phase i runs T_b gradient-clipping steps on block i only (the gradient is
restricted to block i, clipped to C1, and the decay, the step and fresh N(0, σ_b²I) noise act on
block i alone). Total steps T = k·T_b.
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from ..errors import InvalidParameterError
from ..update_rule import (
    AddNoise,
    ClipGradient,
    Gradient,
    GradientStep,
    Phase,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)
from .base import MethodSpec

__all__ = ["BlockwiseGradientClippingSpec", "ALLOCATIONS"]

ALLOCATIONS = ("per_block", "joint")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockwiseGradientClippingSpec(MethodSpec):
    """Block-wise gradient clipping.

    Fields: gradient clipping's (clip_initial, clip_gradient, learning_rate, weight_decay,
    noise_std = the per-block σ_b) plus blocks k ≥ 1, steps_per_block T_b ≥ 1 and allocation
    ("per_block", the published argument, or "joint", the proved shared-ball allocation).
    ``steps`` (a property) = k·T_b.
    """

    method = "blockwise_gradient_clipping"

    clip_initial: float
    clip_gradient: float
    learning_rate: float
    blocks: int
    steps_per_block: int
    noise_std: float
    weight_decay: float = 0.0
    allocation: str = "per_block"

    def __post_init__(self):
        object.__setattr__(
            self, "clip_initial", v.check_positive("clip_initial", self.clip_initial)
        )
        object.__setattr__(
            self, "clip_gradient", v.check_nonnegative("clip_gradient", self.clip_gradient)
        )
        object.__setattr__(
            self, "learning_rate", v.check_positive("learning_rate", self.learning_rate)
        )
        wd = v.check_nonnegative("weight_decay", self.weight_decay)
        object.__setattr__(self, "weight_decay", wd)
        if self.learning_rate * wd >= 1.0:
            raise InvalidParameterError(
                "weight_decay",
                wd,
                "learning_rate * weight_decay must be < 1 (condition 0 < γλ < 1)",
            )
        object.__setattr__(self, "blocks", v.check_int("blocks", self.blocks, minimum=1))
        object.__setattr__(
            self,
            "steps_per_block",
            v.check_int("steps_per_block", self.steps_per_block, minimum=1),
        )
        object.__setattr__(self, "noise_std", v.check_positive("noise_std", self.noise_std))
        if self.allocation not in ALLOCATIONS:
            raise InvalidParameterError(
                "allocation", self.allocation, f"must be one of {ALLOCATIONS}"
            )

    @property
    def steps(self) -> int:
        return self.blocks * self.steps_per_block

    def update_rule(self) -> UpdateRule:
        ops = (
            Gradient(),
            ClipGradient(self.clip_gradient),
            WeightDecay(self.learning_rate, self.weight_decay),
            GradientStep(self.learning_rate),
            AddNoise(self.noise_std),
        )
        return UpdateRule(
            prologue=(ProjectBall(self.clip_initial),),
            phases=tuple(Phase(self.steps_per_block, ops, block=i) for i in range(self.blocks)),
            blocks=self.blocks,
            notes=(
                "phase i restricts the gradient, its clip, the decay, the step and the noise to "
                "block i; weight decay is applied after clipping",
            ),
        )
