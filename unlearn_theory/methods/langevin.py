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
import math

from .. import _validate as v
from .. import gaussian, langevin
from ..calibration import calibrate_decreasing
from ..errors import InvalidParameterError
from ..update_rule import AddNoise, Gradient, GradientStep, Phase, ProjectBall, UpdateRule
from .accountant import MethodAccountant, PlanDraft
from .base import MethodSpec
from .registry import register_method

__all__ = ["LangevinSpec", "Langevin", "ROUTES"]

ROUTES = ("pabi", "lsi")

_REFERENCE_LSI = (
    "retrained model nu_T(D') (LSI route: Langevin Unlearning's comparison with retraining)"
)


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
        self._check("learning_rate", v.check_positive)
        self._check("strong_convexity", v.check_nonnegative)
        self._check("smoothness", v.check_positive)
        self._check("lipschitz", v.check_positive)
        self._check("dataset_size", v.check_int, minimum=1)
        self._check("steps", v.check_int, minimum=0)
        self._check("noise_std", v.check_positive)
        self._check("batch_size", v.check_int, optional=True, minimum=1)
        self._check("radius", v.check_positive, optional=True)
        self._check("forget_size", v.check_int, minimum=1)
        self._check("training_epochs", v.check_int, optional=True, minimum=0)
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


_PROBLEM_KEYS = (
    "learning_rate",
    "strong_convexity",
    "smoothness",
    "lipschitz",
    "dataset_size",
    "batch_size",
    "radius",
    "forget_size",
)
_REQUIRED = ("learning_rate", "strong_convexity", "smoothness", "lipschitz", "dataset_size")


class Langevin(MethodAccountant):
    """``"langevin"``: PNSGD / Langevin unlearning, PABI (default) or LSI route.

    ``certify(spec, delta=..., convention=..., form=...)``: ``convention`` "injected" (default:
    noise_std is the injected per-coordinate std √(2ησ²)) or "paper" (the proofs' variance
    ησ² = noise_std²/2); ``form`` "tight" (default) or "paper" (the theorems as printed).
    ``plan``: with ``steps`` → least noise; with ``noise_std`` → fewest steps; with both → the
    configuration is certified as is; with neither → InvalidParameterError.
    ``accounting="paper"``: the published forms compute the noise and the tight accountant
    re-certifies it (the plan reports the tight ε; the published noise is conservative here).
    Chien, Wang, Chen & Li 2024, arXiv 2403.17105 / 2401.10371; bounds in
    :mod:`unlearn_theory.langevin`.
    """

    name = "langevin"
    spec_class = LangevinSpec
    plan_parameters = frozenset({"max_steps"})
    certify_options = frozenset({"convention", "form", "analysis"})
    description = (
        "projected noisy (S)GD under strong convexity and smoothness (Chien et al. 2024, "
        "arXiv 2403.17105 / 2401.10371)"
    )
    auto_required = _REQUIRED
    plan_requires_one_of = ("steps", "noise_std")

    @staticmethod
    def _problem(source) -> dict:
        """The problem constants given (a spec or a params mapping), None left out."""
        get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
        return {k: get(k) for k in _PROBLEM_KEYS if get(k) is not None}

    def certify_spec(self, spec, *, delta, convention="injected", form="tight", analysis="best"):
        problem = self._problem(spec)
        curve = langevin.unlearning_curve(
            steps=spec.steps,
            noise_std=spec.noise_std,
            convention=convention,
            form=form,
            training_epochs=spec.training_epochs,
            route=spec.route,
            **problem,
        )
        bound = curve.epsilon(delta, analysis=analysis)
        eps, order = bound.value, bound.order
        details = {}
        mu_u = curve.details.get("gaussian_dp_mu_unlearning_leg")
        if mu_u is not None:
            # the other definition: against the retrained-then-unlearned chain only the
            # unlearning leg counts (reported, never the certificate)
            details["epsilon_vs_retrained_then_unlearned"] = (
                float(gaussian.epsilon(delta, mu=mu_u))
                if 0.0 < mu_u < math.inf
                else (0.0 if mu_u == 0.0 else math.inf)
            )
        return self.certified(
            spec,
            eps,
            delta=delta,
            accountant=f"langevin[{spec.route}]: {bound.source}",
            order=order,
            details={
                "route": spec.route,
                "analysis_route": bound.details.get("route", "renyi"),
                "reference": curve.details.get("reference", _REFERENCE_LSI),
                "renyi_epsilon": bound.details.get("renyi_epsilon"),
                "gaussian_dp_epsilon": bound.details.get("gaussian_dp_epsilon"),
                "gaussian_dp_mu": curve.gaussian_dp_mu,
                **details,
                "convention": convention,
                "form": form,
                "temperature": langevin.temperature_from_noise_std(
                    noise_std=spec.noise_std, learning_rate=spec.learning_rate
                ),
                **{k: val for k, val in curve.details.items() if isinstance(val, float)},
            },
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        for key in _REQUIRED:
            if params.get(key) is None:
                raise InvalidParameterError(key, None, f"is required for method {self.name!r}")
        problem = self._problem(params)
        route_options = {
            "training_epochs": params.get("training_epochs"),
            "route": params.get("route", "pabi"),
        }
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        max_steps = v.check_int("max_steps", params.get("max_steps", 10_000_000), minimum=1)
        steps = params.get("steps")
        noise_std = params.get("noise_std")
        notes = [
            "noise_std is the injected per-coordinate std sqrt(2*learning_rate*temperature); "
            "the tight bound uses that variance (the published proofs use half of it)"
        ]
        paper = accounting == "paper"
        bound_options = dict(
            convention="paper" if paper else "injected",
            form="paper" if paper else "tight",
            **route_options,
            **problem,
        )
        if steps is None and noise_std is None:
            raise InvalidParameterError(
                "steps", None, "method 'langevin' needs steps (-> least noise) or noise_std"
            )

        def certify_at(noise_std, steps):
            spec = LangevinSpec(noise_std=noise_std, steps=steps, **route_options, **problem)
            return self.certify(spec, delta=delta)

        paper_noise = None
        if steps is not None and noise_std is None:
            steps = v.check_int("steps", steps, minimum=0)
            noise_std = langevin.noise_std_for_steps(
                epsilon=epsilon, delta=delta, steps=steps, **bound_options
            )
            if paper:
                paper_noise = noise_std
                certified = certify_at(noise_std, steps)
            else:
                noise_std, certified = calibrate_decreasing(
                    lambda x: certify_at(x, steps), epsilon, noise_std, what=self.name
                )
        elif steps is None:
            noise_std = v.check_positive("noise_std", noise_std)
            steps = langevin.steps_needed(
                epsilon=epsilon,
                delta=delta,
                noise_std=noise_std,
                max_steps=max_steps,
                **bound_options,
            )
            certified = certify_at(noise_std, steps)
        else:
            notes.append("noise_std and steps both given: the configuration is certified as is")
            certified = certify_at(noise_std, steps)
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting=accounting,
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=paper_noise,
            paper_epsilon=None if paper_noise is None else certified.epsilon,
            notes=tuple(notes),
            not_certified_reason="the configuration",
        )


register_method(Langevin())
