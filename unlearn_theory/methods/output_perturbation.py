r"""Method ``"output_perturbation"``: project onto the C0 ball and add one Gaussian.

Two models that were both projected onto the C0 ball are at most 2C0 apart, so one draw of
N(0, σ²I) is exactly a Gaussian mechanism with μ = 2C0/σ (Dwork & Roth 2014; Balle & Wang 2018,
arXiv 1805.06530, for the exact calibration).
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from ..errors import InvalidParameterError
from ..update_rule import AddNoise, ProjectBall, UpdateRule
from .base import MethodSpec

__all__ = ["OutputPerturbationSpec"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputPerturbationSpec(MethodSpec):
    """Output perturbation: fields clip_initial C0 > 0 and noise_std σ > 0 (steps is 0)."""

    method = "output_perturbation"

    clip_initial: float
    noise_std: float
    steps: int = 0

    def __post_init__(self):
        object.__setattr__(
            self, "clip_initial", v.check_positive("clip_initial", self.clip_initial)
        )
        object.__setattr__(self, "noise_std", v.check_positive("noise_std", self.noise_std))
        if self.steps != 0 or isinstance(self.steps, bool):
            raise InvalidParameterError("steps", self.steps, "output perturbation has steps=0")

    def update_rule(self) -> UpdateRule:
        return UpdateRule(prologue=(ProjectBall(self.clip_initial), AddNoise(self.noise_std)))
