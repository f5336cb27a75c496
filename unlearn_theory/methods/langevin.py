r"""Method ``"langevin"``: noisy projected (S)GD under strong convexity (Langevin unlearning).

Chien, Wang, Chen & Li 2024, "Certified Machine Unlearning via Noisy SGD" (arXiv 2403.17105,
PNSGD) and "Langevin Unlearning" (arXiv 2401.10371). Update rule per step:
x ← Π_{C_R}(x − η·∇f_B(x) + N(0, s²I)) with a fixed cyclic partition into batches of size b,
each example's gradient clipped to the Lipschitz constant M (so the bound's assumption holds on
a real model), and the projection onto the *ball* of radius R after the noise.
The bounds, the noise convention and the routes are in :mod:`unlearn_theory.langevin`.
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from ..errors import InvalidParameterError
from ..update_rule import AddNoise, Gradient, GradientStep, Phase, ProjectBall, UpdateRule
from .base import MethodSpec

__all__ = ["LangevinSpec", "ROUTES"]

ROUTES = ("pabi", "lsi")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LangevinSpec(MethodSpec):
    """Langevin unlearning (PNSGD).

    Fields: learning_rate η > 0; strong_convexity m ≥ 0; smoothness L > 0; lipschitz M > 0;
    dataset_size n ≥ 1; batch_size b (None: full batch); radius R of the projection ball (None:
    no projection); forget_size S ≥ 1; training_epochs (None: the well-trained regime);
    route "pabi" or "lsi"; steps N ≥ 0 unlearning steps; noise_std s > 0, the injected
    per-coordinate std s = √(2ησ²).
    """

    method = "langevin"

    learning_rate: float
    strong_convexity: float
    smoothness: float
    lipschitz: float
    dataset_size: int
    steps: int
    noise_std: float
    batch_size: int | None = None
    radius: float | None = None
    forget_size: int = 1
    training_epochs: int | None = None
    route: str = "pabi"

    def __post_init__(self):
        object.__setattr__(
            self, "learning_rate", v.check_positive("learning_rate", self.learning_rate)
        )
        object.__setattr__(
            self, "strong_convexity", v.check_nonnegative("strong_convexity", self.strong_convexity)
        )
        object.__setattr__(self, "smoothness", v.check_positive("smoothness", self.smoothness))
        object.__setattr__(self, "lipschitz", v.check_positive("lipschitz", self.lipschitz))
        n = v.check_int("dataset_size", self.dataset_size, minimum=1)
        object.__setattr__(self, "dataset_size", n)
        object.__setattr__(self, "steps", v.check_int("steps", self.steps, minimum=0))
        object.__setattr__(self, "noise_std", v.check_positive("noise_std", self.noise_std))
        if self.batch_size is not None:
            object.__setattr__(
                self, "batch_size", v.check_int("batch_size", self.batch_size, minimum=1)
            )
        if self.radius is not None:
            object.__setattr__(self, "radius", v.check_positive("radius", self.radius))
        object.__setattr__(
            self, "forget_size", v.check_int("forget_size", self.forget_size, minimum=1)
        )
        if self.training_epochs is not None:
            object.__setattr__(
                self,
                "training_epochs",
                v.check_int("training_epochs", self.training_epochs, minimum=0),
            )
        if self.route not in ROUTES:
            raise InvalidParameterError("route", self.route, f"must be one of {ROUTES}")

    def update_rule(self) -> UpdateRule:
        full = self.batch_size is None or self.batch_size >= self.dataset_size
        grad = (
            Gradient(per_example_clip=self.lipschitz)
            if full
            else Gradient(
                batching="cyclic", batch_size=self.batch_size, per_example_clip=self.lipschitz
            )
        )
        ops = [grad, GradientStep(self.learning_rate), AddNoise(self.noise_std)]
        if self.radius is not None:
            ops.append(ProjectBall(self.radius))
        prologue = (ProjectBall(self.radius),) if self.radius is not None else ()
        phases = (Phase(self.steps, tuple(ops)),) if self.steps else ()
        return UpdateRule(
            prologue=prologue,
            phases=phases,
            notes=(
                "each example's gradient is clipped to the Lipschitz constant; the projection "
                "is onto the ball of radius R, after the noise",
            ),
        )
