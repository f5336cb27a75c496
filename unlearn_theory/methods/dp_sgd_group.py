r"""Method ``"dp_sgd_group"`` (baseline): train with DP-SGD, group privacy over the forget set.

Abadi et al. 2016 (arXiv 1607.00133) DP-SGD with Poisson sampling and add/remove adjacency,
accounted per record, then group privacy over the k forget records. Nothing is "unlearned": the
model was private for the forget set from the start. Update rule per step: Poisson sample at
rate q, clip each example's gradient to C1, sum, add N(0, (zC1)²I), step.
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from ..update_rule import Gradient, GradientNoise, GradientStep, Phase, UpdateRule
from .base import MethodSpec

__all__ = ["DPSGDGroupSpec"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DPSGDGroupSpec(MethodSpec):
    """DP-SGD + group privacy.

    Fields: sample_rate q ∈ (0, 1]; steps T ≥ 1; forget_size k ≥ 1; noise_multiplier z > 0;
    clip_gradient C1 > 0 (default 1; ``noise_std`` = z·C1 is a property); learning_rate γ > 0
    (needed to run, applied to the noisy gradient SUM; not used by the bound).
    """

    method = "dp_sgd_group"

    sample_rate: float
    steps: int
    forget_size: int
    noise_multiplier: float
    clip_gradient: float = 1.0
    learning_rate: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "sample_rate", v.check_sample_rate(self.sample_rate))
        object.__setattr__(self, "steps", v.check_int("steps", self.steps, minimum=1))
        object.__setattr__(
            self, "forget_size", v.check_int("forget_size", self.forget_size, minimum=1)
        )
        object.__setattr__(
            self, "noise_multiplier", v.check_positive("noise_multiplier", self.noise_multiplier)
        )
        object.__setattr__(
            self, "clip_gradient", v.check_positive("clip_gradient", self.clip_gradient)
        )
        if self.learning_rate is not None:
            object.__setattr__(
                self, "learning_rate", v.check_positive("learning_rate", self.learning_rate)
            )

    @property
    def noise_std(self) -> float:
        """Std of the noise on the clipped-gradient sum: noise_multiplier·clip_gradient."""
        return self.noise_multiplier * self.clip_gradient

    def update_rule(self) -> UpdateRule:
        lr = self.learning_rate if self.learning_rate is not None else 1.0
        ops = (
            Gradient(
                batching="poisson",
                sample_rate=self.sample_rate,
                per_example_clip=self.clip_gradient,
                reduction="sum",
            ),
            GradientNoise(self.noise_std),
            GradientStep(lr),
        )
        return UpdateRule(
            phases=(Phase(self.steps, ops),),
            notes=(
                "trained from the start with DP-SGD (Poisson sampling); the noise is on the "
                "gradient sum, not on the parameters",
            )
            + (("learning_rate not given: 1.0 shown",) if self.learning_rate is None else ()),
        )
