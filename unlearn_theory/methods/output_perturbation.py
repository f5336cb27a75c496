r"""Method ``"output_perturbation"``: project onto the C0 ball and add one Gaussian.

Two models that were both projected onto the C0 ball are at most 2C0 apart, so one draw of
N(0, σ²I) is exactly a Gaussian mechanism with μ = 2C0/σ (Dwork & Roth 2014; Balle & Wang 2018,
arXiv 1805.06530, for the exact calibration).
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from .. import expected_sensitivity as expected
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
    """Output perturbation: fields clip_initial C0 > 0 and noise_std σ > 0 (steps is 0).

    ``expected_sensitivity`` (optional, declared by the user; default None = assumption-free):
    a bound Δ̄ > 0 on E‖θ_U − θ_R‖ under some coupling of the unlearned and retrained models
    (for instance a stochastic descent-to-delete / rewind-to-delete bound, Mu & Klabjan 2025,
    arXiv 2511.15983). The certificate then uses the expected-sensitivity conversion
    (:mod:`unlearn_theory.expected_sensitivity`, docs/declared_assumptions.md §3) together with
    the almost-sure bound 2C0, and records the declaration.
    """

    method = "output_perturbation"

    clip_initial: float
    noise_std: float
    steps: int = 0
    expected_sensitivity: float | None = None

    def __post_init__(self):
        self._check("clip_initial", v.check_positive)
        self._check("noise_std", v.check_positive)
        self._check("expected_sensitivity", v.check_positive, optional=True)
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
        if spec.expected_sensitivity is not None:
            return self._certify_expected(spec, delta)
        mu = 2.0 * spec.clip_initial / spec.noise_std
        return self.certified(
            spec,
            float(gaussian.epsilon(delta, mu=mu)),
            delta=delta,
            kind="exact",
            accountant="gaussian_profile(mu=2*clip_initial/noise_std)",
            details={"mu": mu},
        )

    def _certify_expected(self, spec, delta):
        """Declared E‖θ_U − θ_R‖ ≤ Δ̄ (and ≤ 2C0 surely): the least-concave-majorant bound
        (docs/declared_assumptions.md §3) [UPPER], never above the assumption-free exact ε."""
        s = spec.noise_std
        eps = expected.epsilon(
            delta, expected_mu=spec.expected_sensitivity / s, max_mu=2.0 * spec.clip_initial / s
        )
        free = float(gaussian.epsilon(delta, mu=2.0 * spec.clip_initial / s))
        return self.certified(
            spec,
            min(eps, free),
            delta=delta,
            kind="upper",
            accountant="expected_sensitivity(concave majorant of the Gaussian profile)",
            details={
                "declared_assumptions": {
                    "expected_sensitivity": spec.expected_sensitivity,
                    "meaning": "E||theta_U - theta_R|| <= expected_sensitivity under a coupling",
                },
                "assumption_free_epsilon": free,
            },
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        clip_initial = v.check_positive("clip_initial", params.get("clip_initial"))
        declared = params.get("expected_sensitivity")
        if declared is not None:
            declared = v.check_positive("expected_sensitivity", declared)
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
            spec = OutputPerturbationSpec(
                clip_initial=clip_initial, noise_std=noise_std, expected_sensitivity=declared
            )
            return self.certify(spec, delta=delta)

        notes = []
        classical_certified = certify_at(classical)
        if accounting == "paper":
            certified = classical_certified
            if epsilon >= 1.0:
                notes.append("classical calibration is proven only for epsilon < 1")
        else:
            exact = float(gaussian.noise_std(epsilon=epsilon, delta=delta, sensitivity=sensitivity))
            if declared is not None:
                exact = min(
                    exact,
                    expected.noise_std(
                        epsilon=epsilon,
                        delta=delta,
                        expected_sensitivity=declared,
                        max_sensitivity=sensitivity,
                    ),
                )
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
