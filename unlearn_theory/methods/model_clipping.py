r"""Method ``"model_clipping"``: noisy fine-tuning with a per-step model projection.

Koloskova et al. 2025, arXiv 2506.06985, eq. (4). Update rule: project onto the C0 ball
(+ optional N(0, σ0²I)), then T steps of x ← Π_{C2}((1 − γλ)x − γ∇L(x)) + N(0, σ²I).
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from ..errors import InvalidParameterError
from ..update_rule import (
    AddNoise,
    Gradient,
    GradientStep,
    Phase,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)
from .base import MethodSpec

__all__ = ["ModelClippingSpec"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelClippingSpec(MethodSpec):
    """Model clipping: C0 projection (+ σ0 noise), ``steps`` steps projected to C2 then noised.

    Fields: clip_initial C0 > 0; clip_model C2 > 0; noise_std σ > 0; steps T ≥ 0;
    initial_noise_std σ0 ≥ 0 or None; learning_rate γ > 0 and weight_decay λ ≥ 0 (γλ < 1) are
    needed to run the rule but do not enter the bound (any gradient step lands in the C2 ball).
    """

    method = "model_clipping"

    clip_initial: float
    clip_model: float
    noise_std: float
    steps: int
    initial_noise_std: float | None = None
    learning_rate: float | None = None
    weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(
            self, "clip_initial", v.check_positive("clip_initial", self.clip_initial)
        )
        object.__setattr__(self, "clip_model", v.check_positive("clip_model", self.clip_model))
        object.__setattr__(self, "noise_std", v.check_positive("noise_std", self.noise_std))
        object.__setattr__(self, "steps", v.check_int("steps", self.steps, minimum=0))
        if self.initial_noise_std is not None:
            object.__setattr__(
                self,
                "initial_noise_std",
                v.check_nonnegative("initial_noise_std", self.initial_noise_std),
            )
        if self.learning_rate is not None:
            object.__setattr__(
                self, "learning_rate", v.check_positive("learning_rate", self.learning_rate)
            )
        wd = v.check_nonnegative("weight_decay", self.weight_decay)
        object.__setattr__(self, "weight_decay", wd)
        if self.learning_rate is not None and self.learning_rate * wd >= 1.0:
            raise InvalidParameterError(
                "weight_decay", wd, "learning_rate * weight_decay must be < 1"
            )

    def update_rule(self) -> UpdateRule:
        if self.learning_rate is None and self.steps > 0:
            raise InvalidParameterError(
                "learning_rate", None, "is required to run model clipping (not to certify it)"
            )
        prologue = [ProjectBall(self.clip_initial)]
        if self.initial_noise_std:
            prologue.append(AddNoise(self.initial_noise_std))
        phases = ()
        if self.steps:
            ops = (
                Gradient(),
                WeightDecay(self.learning_rate, self.weight_decay),
                GradientStep(self.learning_rate),
                ProjectBall(self.clip_model),
                AddNoise(self.noise_std),
            )
            phases = (Phase(self.steps, ops),)
        return UpdateRule(prologue=tuple(prologue), phases=phases)
