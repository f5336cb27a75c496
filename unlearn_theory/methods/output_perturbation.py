r"""Method ``"output_perturbation"``: project onto the C0 ball and add one Gaussian.

Two models that were both projected onto the C0 ball are at most 2C0 apart, so one draw of
N(0, σ²I) is exactly a Gaussian mechanism with μ = 2C0/σ (Dwork & Roth 2014; Balle & Wang 2018,
arXiv 1805.06530, for the exact calibration).
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from .. import gaussian
from ..calibration import calibrate_decreasing
from ..errors import InvalidParameterError
from ..update_rule import AddNoise, ProjectBall, UpdateRule
from .accountant import MethodAccountant, PlanDraft
from .base import MethodSpec
from .registry import register_method

__all__ = ["OutputPerturbationSpec", "OutputPerturbation"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputPerturbationSpec(MethodSpec):
    """Output perturbation: fields clip_initial C0 > 0 and noise_std σ > 0 (steps is 0)."""

    method = "output_perturbation"

    clip_initial: float
    noise_std: float
    steps: int = 0

    def __post_init__(self):
        self._check("clip_initial", v.check_positive)
        self._check("noise_std", v.check_positive)
        if self.steps != 0 or isinstance(self.steps, bool):
            raise InvalidParameterError("steps", self.steps, "output perturbation has steps=0")

    def update_rule(self) -> UpdateRule:
        return UpdateRule(prologue=(ProjectBall(self.clip_initial), AddNoise(self.noise_std)))


class OutputPerturbation(MethodAccountant):
    """Exact Gaussian profile at μ = 2C0/σ (EXACT); paper mode: the classical calibration
    σ = √(2 log(1.25/δ))·Δ/ε of Dwork & Roth 2014 (Thm A.1), re-certified exactly."""

    name = "output_perturbation"
    spec_class = OutputPerturbationSpec
    description = "project to C0 and add one Gaussian (sensitivity 2·C0)"
    auto_priority = 2
    auto_required = ("clip_initial",)

    def certify_spec(self, spec, *, delta):
        mu = 2.0 * spec.clip_initial / spec.noise_std
        return self.certified(
            spec,
            float(gaussian.epsilon(delta, mu=mu)),
            delta=delta,
            kind="exact",
            accountant="gaussian_profile(mu=2*clip_initial/noise_std)",
            details={"mu": mu},
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        clip_initial = v.check_positive("clip_initial", params.get("clip_initial"))
        if "noise_std" in params:
            raise InvalidParameterError("noise_std", params["noise_std"], "the planner chooses it")
        if params.get("steps") not in (None, 0):
            raise InvalidParameterError("steps", params["steps"], "output perturbation has steps=0")
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        sensitivity = 2 * clip_initial
        classical = float(
            gaussian.classical_noise_std(epsilon=epsilon, delta=delta, sensitivity=sensitivity)
        )

        def certify_at(noise_std):
            spec = OutputPerturbationSpec(clip_initial=clip_initial, noise_std=noise_std)
            return self.certify(spec, delta=delta)

        notes = []
        classical_certified = certify_at(classical)
        if accounting == "paper":
            certified = classical_certified
            if epsilon >= 1.0:
                notes.append("classical calibration is proven only for epsilon < 1")
        else:
            exact = float(gaussian.noise_std(epsilon=epsilon, delta=delta, sensitivity=sensitivity))
            _, certified = calibrate_decreasing(certify_at, epsilon, exact, what=self.name)
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting=accounting,
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=classical,
            paper_epsilon=classical_certified.epsilon,
            notes=tuple(notes),
            not_certified_reason="the classical noise" if accounting == "paper" else "",
        )


register_method(OutputPerturbation())
