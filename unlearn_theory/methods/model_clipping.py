r"""Method ``"model_clipping"``: noisy fine-tuning with a per-step model projection.

Koloskova et al. 2025, arXiv 2506.06985, eq. (4). Update rule: project onto the C0 ball
(+ optional N(0, σ0²I)), then T steps of x ← Π_{C2}((1 − γλ)x − γ∇L(x)) + N(0, σ²I).
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from .. import contraction, structure
from ..calibration import calibrate_decreasing
from ..errors import InvalidParameterError, NumericalPrecisionError
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
from .accountant import MethodAccountant, PlanDraft
from .base import MethodSpec
from .registry import register_method

__all__ = ["ModelClippingSpec", "ModelClipping"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelClippingSpec(MethodSpec):
    """Model clipping: C0 projection (+ σ0 noise), ``steps`` steps projected to C2 then noised.

    Fields: clip_initial C0 > 0; clip_model C2 > 0; noise_std σ > 0; steps T ≥ 0;
    initial_noise_std σ0 ≥ 0 or None; learning_rate γ > 0 and weight_decay λ ≥ 0 (γλ < 1) are
    needed to run the rule but do not enter the assumption-free bound (any gradient step lands
    in the C2 ball). ``clip_gradient`` C1 ≥ 0 (optional, default None = no gradient clip): the run
    clips the loss gradient to C1 before the decay and step (a ClipGradient op in the update
    rule), and the certificate may then also use the shifted-Rényi route with the distance map
    min(ρz + 2γC1, 2C2) (:mod:`unlearn_theory.structure`; needs learning_rate).
    """

    method = "model_clipping"

    clip_initial: float
    clip_model: float
    noise_std: float
    steps: int
    initial_noise_std: float | None = None
    learning_rate: float | None = None
    weight_decay: float = 0.0
    clip_gradient: float | None = None

    def __post_init__(self):
        self._check("clip_initial", v.check_positive)
        self._check("clip_model", v.check_positive)
        self._check("noise_std", v.check_positive)
        self._check("steps", v.check_int, minimum=0)
        self._check("initial_noise_std", v.check_nonnegative, optional=True)
        self._check("learning_rate", v.check_positive, optional=True)
        self._check("weight_decay", v.check_nonnegative)
        self._check("clip_gradient", v.check_nonnegative, optional=True)
        if self.learning_rate is not None:
            v.check_decay_product(self.learning_rate, self.weight_decay)

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
            clip = () if self.clip_gradient is None else (ClipGradient(self.clip_gradient),)
            ops = (
                Gradient(),
                *clip,
                WeightDecay(self.learning_rate, self.weight_decay),
                GradientStep(self.learning_rate),
                ProjectBall(self.clip_model),
                AddNoise(self.noise_std),
            )
            phases = (Phase(self.steps, ops),)
        return UpdateRule(prologue=tuple(prologue), phases=phases)


class ModelClipping(MethodAccountant):
    """Model clipping (Koloskova et al. 2025, arXiv 2506.06985, eq. (4)): refined δ-recursion.

    Tight accounting: the refined hockey-stick recursion of docs/theory.md §5.3 in log space
    (:mod:`unlearn_theory.contraction`). Paper accounting: the plain per-step statement
    (ε, θ_ε(2C2/σ)^T·δ_0), whose noise is re-certified by the refined recursion.
    learning_rate and weight_decay are recorded but do not enter the bound.
    ``certify(spec, delta=..., refined=False)`` certifies with the plain per-step bound.
    """

    name = "model_clipping"
    spec_class = ModelClippingSpec
    plan_parameters = frozenset({"max_steps"})
    certify_options = frozenset({"refined"})
    description = "project to C0 (+ optional σ0 noise), T steps each projected to C2 then noised"
    auto_priority = 1
    auto_required = ("clip_initial", "clip_model")
    #: auto hint: without noise_std or steps, plan this many steps (capped by max_steps); the
    #: δ of model clipping decays super-geometrically in T, so more steps buy little
    auto_default_steps = 32

    def auto_params(self, params, *, max_steps):
        own = super().auto_params(params, max_steps=max_steps)
        if "noise_std" not in own and "steps" not in own:
            own["steps"] = min(max_steps, self.auto_default_steps)
        return own

    @staticmethod
    def _bound_inputs(spec) -> dict:
        return dict(
            clip_initial=spec.clip_initial,
            clip_model=spec.clip_model,
            initial_noise_std=spec.initial_noise_std,
        )

    def _certificate(self, spec, eps, delta, refined):
        route = "refined" if refined else "plain per-step"
        return self.certified(
            spec, eps, delta=delta, accountant=f"hockey_stick_contraction({route})"
        )

    def certify_spec(self, spec, *, delta, refined=True):
        if refined and spec.clip_gradient is not None and spec.learning_rate is not None:
            return self._certify_clipped(spec, delta)
        eps = contraction.model_clipping_epsilon(
            delta=delta,
            noise_std=spec.noise_std,
            steps=spec.steps,
            refined=refined,
            rtol=1e-9,
            **self._bound_inputs(spec),
        )
        return self._certificate(spec, eps, delta, refined)

    def _certify_clipped(self, spec, delta):
        """Gradient clip C1 given: min over k of the shifted-Rényi prefix (distance map
        min(ρz + 2γC1, 2C2)) continued by the refined recursion (docs/declared_assumptions.md §2)
        [UPPER]; k = 0 is the assumption-free refined recursion, so it is never larger."""
        eps, k = structure.clipped_model_epsilon(
            delta=delta,
            noise_std=spec.noise_std,
            steps=spec.steps,
            clip_gradient=spec.clip_gradient,
            learning_rate=spec.learning_rate,
            weight_decay=spec.weight_decay,
            **self._bound_inputs(spec),
        )
        route = "refined" if k == 0 else f"shifted_renyi(first {k} steps)+refined"
        return self.certified(
            spec,
            eps,
            delta=delta,
            accountant=f"hockey_stick_contraction({route}, clip_gradient)",
            details={"shifted_renyi_prefix_steps": k, "clip_gradient": spec.clip_gradient},
        )

    def _epsilon_near(self, spec, delta, target, *, rtol):
        """Refined ε of ``spec`` searched from ``target`` at precision ``rtol`` (comparisons)."""
        return contraction.model_clipping_epsilon(
            delta=delta,
            noise_std=spec.noise_std,
            steps=spec.steps,
            refined=True,
            rtol=rtol,
            epsilon_hint=target,
            **self._bound_inputs(spec),
        )

    @staticmethod
    def _problem(params) -> dict:
        initial_noise_std = params.get("initial_noise_std")
        if initial_noise_std is not None:
            initial_noise_std = v.check_nonnegative("initial_noise_std", initial_noise_std)
        for key in ("learning_rate", "weight_decay", "clip_gradient"):
            if params.get(key) is not None:
                v.check_nonnegative(key, params[key])
        return dict(
            clip_initial=v.check_positive("clip_initial", params.get("clip_initial")),
            clip_model=v.check_positive("clip_model", params.get("clip_model")),
            initial_noise_std=initial_noise_std,
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        for key in ("clip_initial", "clip_model"):
            if params.get(key) is None:
                raise InvalidParameterError(key, None, f"is required for method {self.name!r}")
        problem = self._problem(params)
        max_steps = v.check_int("max_steps", params.get("max_steps", 100_000), minimum=1)
        refined = accounting == "tight"
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        noise_std = params.get("noise_std")
        steps = params.get("steps")
        recorded = {
            k: params[k]
            for k in ("learning_rate", "weight_decay", "clip_gradient")
            if params.get(k) is not None
        }
        notes = []

        def spec_at(noise_std, steps):
            return ModelClippingSpec(noise_std=noise_std, steps=steps, **problem, **recorded)

        def certify_at(noise_std, steps):
            return self.certify(spec_at(noise_std, steps), delta=delta)

        if noise_std is None and steps is None:
            raise InvalidParameterError(
                "noise_std", None, "model_clipping needs noise_std (-> fewest steps) or steps"
            )
        if noise_std is not None and steps is not None:
            notes.append("noise_std and steps both given: the configuration is certified as is")
            noise_std = v.check_positive("noise_std", noise_std)
            steps = v.check_int("steps", steps, minimum=0)
            certified = certify_at(noise_std, steps)
        elif noise_std is not None:
            noise_std = v.check_positive("noise_std", noise_std)
            steps = contraction.model_clipping_steps(
                epsilon=epsilon,
                delta=delta,
                noise_std=noise_std,
                max_steps=max_steps,
                refined=refined,
                **problem,
            )
            certified = certify_at(noise_std, steps)
            # δ_T(target) ≤ δ was evaluated; the search's last digit may still land above the
            # target: one more step lowers every δ_t (refined mode only; paper mode reports)
            while refined and certified.epsilon > epsilon and steps < max_steps:
                steps += 1
                certified = certify_at(noise_std, steps)
        else:
            steps = v.check_int("steps", steps, minimum=1)
            noise_std = contraction.model_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, refined=refined, **problem
            )
            if refined:
                noise_std, certified = calibrate_decreasing(
                    lambda x: certify_at(x, steps), epsilon, noise_std, what=self.name
                )
            else:
                certified = certify_at(noise_std, steps)
        details = {}
        paper_noise = paper_epsilon = None
        if refined and steps >= 1:
            try:
                paper_noise = contraction.model_clipping_noise_std(
                    epsilon=epsilon, delta=delta, steps=steps, refined=False, **problem
                )
                # comparison only (still an upper bound): a coarser search is enough
                paper_epsilon = self._epsilon_near(
                    spec_at(paper_noise, steps), delta, epsilon, rtol=1e-4
                )
            except (InvalidParameterError, NumericalPrecisionError) as err:
                notes.append(f"plain-bound noise undefined: {err}")
            if params.get("noise_std") is not None and params.get("steps") is None:
                try:
                    details["paper_steps"] = contraction.model_clipping_steps(
                        epsilon=epsilon, delta=delta, noise_std=noise_std, refined=False, **problem
                    )
                except InvalidParameterError:
                    details["paper_steps"] = None
        elif not refined:
            paper_noise = noise_std
            paper_epsilon = certified.epsilon
            notes.append(
                "paper mode: noise/steps from the plain per-step bound (epsilon, theta^T delta_0); "
                f"the refined recursion certifies epsilon={paper_epsilon:.6g}"
            )
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting=accounting,
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=paper_noise,
            paper_epsilon=paper_epsilon,
            details=details,
            notes=tuple(notes),
        )


register_method(ModelClipping())
