r"""Method ``"gradient_clipping"``: noisy fine-tuning with clipped gradients.

Koloskova, Allouah, Jha, Guerraoui & Koyejo 2025, "Certified unlearning for neural networks",
arXiv 2506.06985. Update rule: project the model onto the C0 ball, then T steps of
x ← (1 − γλ)x − γ·clip_{C1}(∇L(x)) + N(0, σ²I) (weight decay after clipping).
"""

from __future__ import annotations

import dataclasses

import numpy as np

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

__all__ = ["GradientClippingSpec"]

_SCHEDULE_FIELDS = ("clip_gradient", "learning_rate", "weight_decay", "noise_std")


def _is_schedule(x) -> bool:
    return isinstance(x, (list, tuple)) or getattr(x, "ndim", 0) > 0


def _per_step(spec, name: str, T: int) -> tuple[float, ...]:
    val = getattr(spec, name)
    if _is_schedule(val):
        return tuple(float(x) for x in val)
    return (float(val),) * T


@dataclasses.dataclass(frozen=True, kw_only=True)
class GradientClippingSpec(MethodSpec):
    """Gradient clipping: C0 projection, then ``steps`` noisy clipped-gradient steps.

    Fields: clip_initial C0 > 0; clip_gradient C1 ≥ 0; learning_rate γ > 0; weight_decay
    λ ≥ 0 with γλ < 1; steps T ≥ 1; noise_std σ > 0. ``clip_gradient``, ``learning_rate``,
    ``weight_decay`` and ``noise_std`` may each be a per-step schedule (a tuple of length T).
    """

    method = "gradient_clipping"

    clip_initial: float
    clip_gradient: float | tuple[float, ...]
    learning_rate: float | tuple[float, ...]
    steps: int
    noise_std: float | tuple[float, ...]
    weight_decay: float | tuple[float, ...] = 0.0

    def __post_init__(self):
        object.__setattr__(
            self, "clip_initial", v.check_positive("clip_initial", self.clip_initial)
        )
        T = v.check_int("steps", self.steps, minimum=1)
        object.__setattr__(self, "steps", T)
        checks = {
            "clip_gradient": v.check_nonnegative,
            "learning_rate": v.check_positive,
            "weight_decay": v.check_nonnegative,
            "noise_std": v.check_nonnegative,
        }
        for name, check in checks.items():
            val = getattr(self, name)
            if _is_schedule(val):
                vals = tuple(check(name, x) for x in np.asarray(val, dtype=object).ravel())
                if len(vals) != T:
                    raise InvalidParameterError(
                        name, val, f"a schedule must have one entry per step (steps={T})"
                    )
                object.__setattr__(self, name, vals)
            else:
                object.__setattr__(self, name, check(name, val))
        if not self.is_schedule and self.noise_std == 0.0:
            raise InvalidParameterError("noise_std", self.noise_std, "must be > 0")
        for lr, wd in zip(_per_step(self, "learning_rate", T), _per_step(self, "weight_decay", T)):
            if lr * wd >= 1.0:
                raise InvalidParameterError(
                    "weight_decay",
                    self.weight_decay,
                    "learning_rate * weight_decay must be < 1 (condition 0 < γλ < 1)",
                )

    @property
    def is_schedule(self) -> bool:
        """True when some field is a per-step schedule."""
        return any(_is_schedule(getattr(self, k)) for k in _SCHEDULE_FIELDS)

    def update_rule(self) -> UpdateRule:
        T = self.steps
        per = [_per_step(self, k, T) for k in _SCHEDULE_FIELDS]
        phases: list[Phase] = []
        for c1, lr, wd, s in zip(*per):  # run-length encode equal consecutive steps
            ops = (
                Gradient(),
                ClipGradient(c1),
                WeightDecay(lr, wd),
                GradientStep(lr),
                AddNoise(s),
            )
            if phases and phases[-1].ops == ops:
                phases[-1] = Phase(phases[-1].steps + 1, ops)
            else:
                phases.append(Phase(1, ops))
        return UpdateRule(
            prologue=(ProjectBall(self.clip_initial),),
            phases=tuple(phases),
            notes=("weight decay is applied after clipping: the clip bounds the loss gradient",),
        )
