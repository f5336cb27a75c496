r"""Method ``"gradient_clipping"``: noisy fine-tuning with clipped gradients.

Koloskova, Allouah, Jha, Guerraoui & Koyejo 2025, "Certified unlearning for neural networks",
arXiv 2506.06985. Update rule: project the model onto the C0 ball, then T steps of
x ← (1 − γλ)x − γ·clip_{C1}(∇L(x)) + N(0, σ²I) (weight decay after clipping).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _validate as v
from .. import gaussian, iteration, structure
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
from .accountant import MethodAccountant, PlanDraft, finite_or_none, require
from .base import MethodSpec
from .registry import register_method

__all__ = [
    "GradientClippingSpec",
    "GradientClipping",
    "paper_gradient_clipping_noise_std",
    "paper_gradient_clipping_steps",
    "problem_parameters",
    "DEFAULT_MAX_STEPS",
]

#: default cap on the number of noisy steps the planner may choose
DEFAULT_MAX_STEPS = 10_000

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
    ``assume_convex_smooth`` (optional, declared by the user; None = assumption-free): L ≥ 0,
    declaring every loss the run differentiates convex and L-smooth with gradient norms
    ≤ clip_gradient (the clip never acts); see :mod:`unlearn_theory.structure`.
    """

    method = "gradient_clipping"

    clip_initial: float
    clip_gradient: float | tuple[float, ...]
    learning_rate: float | tuple[float, ...]
    steps: int
    noise_std: float | tuple[float, ...]
    weight_decay: float | tuple[float, ...] = 0.0
    assume_convex_smooth: float | None = None

    def __post_init__(self):
        self._check("clip_initial", v.check_positive)
        self._check("assume_convex_smooth", v.check_nonnegative, optional=True)
        self._check("steps", v.check_int, minimum=1)
        T = self.steps
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
        if _is_schedule(self.learning_rate) or _is_schedule(self.weight_decay):
            products = [
                lr * wd
                for lr, wd in zip(
                    _per_step(self, "learning_rate", T), _per_step(self, "weight_decay", T)
                )
            ]
        else:  # scalars: one check (T can be huge; never expand it)
            products = [self.learning_rate * self.weight_decay]
        for product in products:
            v.check_decay_product(product, 1.0, value=self.weight_decay)

    @property
    def is_schedule(self) -> bool:
        """True when some field is a per-step schedule."""
        return any(_is_schedule(getattr(self, k)) for k in _SCHEDULE_FIELDS)

    def update_rule(self) -> UpdateRule:
        T = self.steps
        # scalars: one phase of T steps (T can be huge; never expand it)
        per = [_per_step(self, k, 1 if not self.is_schedule else T) for k in _SCHEDULE_FIELDS]
        repeat = 1 if self.is_schedule else T
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
                phases[-1] = Phase(phases[-1].steps + repeat, ops)
            else:
                phases.append(Phase(repeat, ops))
        return UpdateRule(
            prologue=(ProjectBall(self.clip_initial),),
            phases=tuple(phases),
            notes=("weight decay is applied after clipping: the clip bounds the loss gradient",),
        )


# ---------------------------------------------------------------------------------------------
# the published closed forms (paper mode)


def paper_gradient_clipping_noise_std(
    *, epsilon, delta, steps, clip_initial, clip_gradient, learning_rate, weight_decay=0.0
) -> float:
    """Koloskova et al. closed forms (docs/theory.md §6.5) [paper mode; re-certify before use].

    λ = 0: σ² = 9·L·(C0 + γC1T)²/(ε²T);  λ > 0: σ² = 72·γλ·L·(C0(1−γλ)^T + C1/λ)²/ε², with
    L = log(1/δ). Side conditions, each raising InvalidParameterError naming it: ε ≤ 3·log(1/δ)
    (argument "epsilon"); 0 < γλ < 1 (argument "weight_decay"); (1 − γλ)^{2T} ≤ 1/2 (argument
    "steps"; needed by the λ > 0 derivation). The λ = 0 constant 9 is reproduced as published,
    although the same derivation gives 18 (docs/theory.md §6.5): re-certification exposes it.
    Koloskova, Allouah, Jha, Guerraoui & Koyejo 2025, arXiv 2506.06985.
    """
    eps = v.check_positive("epsilon", epsilon)
    delta = v.check_delta(delta)
    steps = v.check_int("steps", steps, minimum=1)
    clip_initial = v.check_positive("clip_initial", clip_initial)
    clip_gradient = v.check_nonnegative("clip_gradient", clip_gradient)
    learning_rate = v.check_positive("learning_rate", learning_rate)
    weight_decay = v.check_nonnegative("weight_decay", weight_decay)
    log_inv_delta = -math.log(delta)
    if eps > 3.0 * log_inv_delta:
        raise InvalidParameterError(
            "epsilon", eps, f"paper mode needs epsilon <= 3 log(1/delta) = {3 * log_inv_delta:.6g}"
        )
    if weight_decay == 0.0:
        return _finite_paper_noise(
            3.0
            * math.sqrt(log_inv_delta / steps)
            * (clip_initial + learning_rate * clip_gradient * steps)
            / eps,
            eps,
        )
    decay = learning_rate * weight_decay
    if not (0.0 < decay < 1.0):
        raise InvalidParameterError(
            "weight_decay", weight_decay, "paper mode needs 0 < learning_rate * weight_decay < 1"
        )
    contraction_2t = math.exp(2.0 * steps * math.log1p(-decay))
    if contraction_2t > 0.5:
        raise InvalidParameterError(
            "steps",
            steps,
            "paper mode needs (1 - learning_rate*weight_decay)^(2 steps) <= 1/2 "
            f"(got {contraction_2t:.4g})",
        )
    contraction_t = math.sqrt(contraction_2t)
    # √(72γλL)·(C0ρ^T + C1/λ)/ε, written without forming C1/λ (overflows for tiny λ)
    return _finite_paper_noise(
        math.sqrt(72.0 * learning_rate * log_inv_delta)
        * (weight_decay * clip_initial * contraction_t + clip_gradient)
        / math.sqrt(weight_decay)
        / eps,
        eps,
    )


def _finite_paper_noise(noise_std: float, eps: float) -> float:
    if not 0.0 < noise_std < math.inf:
        raise InvalidParameterError(
            "epsilon",
            eps,
            f"the paper closed form's noise_std is {noise_std:g} (outside float range)",
        )
    return noise_std


def _paper_min_steps(learning_rate, weight_decay) -> int:
    """Smallest T with (1 − γλ)^{2T} ≤ 1/2 (the λ > 0 paper-mode side condition)."""
    decay = learning_rate * weight_decay
    if decay == 0.0:
        return 1
    steps_real = math.log(0.5) / (2.0 * math.log1p(-decay))
    if not steps_real < 2.0**62:
        raise InvalidParameterError(
            "weight_decay", weight_decay, "too small for the paper side condition (steps overflow)"
        )
    steps = max(1, math.ceil(steps_real))
    while math.exp(2.0 * steps * math.log1p(-decay)) > 0.5:
        steps += 1
    return steps


def paper_gradient_clipping_steps(
    *, clip_initial, clip_gradient, learning_rate, weight_decay=0.0
) -> int:
    """Step count chosen by the authors' code [code] (docs/primary_sources.md §1.3).

    T = ⌈C0/(γC1)⌉ (the λ = 0 optimum of the closed form); for λ > 0 it is replaced by
    ⌈log(2λC0/C1)/(γλ)⌉ when that is positive and smaller. A heuristic, not the optimum of the
    bound (docs/theory.md §6.4). Needs clip_gradient > 0.
    """
    clip_initial = v.check_positive("clip_initial", clip_initial)
    positive_clip = v.check_positive("clip_gradient", clip_gradient)
    learning_rate = v.check_positive("learning_rate", learning_rate)
    weight_decay = v.check_nonnegative("weight_decay", weight_decay)
    try:
        steps_real = clip_initial / learning_rate / positive_clip
    except (OverflowError, ZeroDivisionError):
        steps_real = math.inf
    if learning_rate * weight_decay > 0.0:  # (γλ can underflow to 0: then the rule is λ = 0's)
        decayed = (
            math.log(2.0)
            + math.log(weight_decay)
            + math.log(clip_initial)
            - math.log(positive_clip)
        ) / (learning_rate * weight_decay)
        if decayed > 0.0:
            steps_real = min(steps_real, decayed)
    if not steps_real < 2.0**62:
        raise InvalidParameterError(
            "clip_gradient", clip_gradient, "too small for the paper step rule (steps overflow)"
        )
    return max(1, math.ceil(steps_real * (1.0 - 1e-12)))


# ---------------------------------------------------------------------------------------------
# the accountant


def problem_parameters(params, method: str = "gradient_clipping") -> dict:
    """The validated problem constants C0, C1, γ, λ (scalars) shared with block-wise."""
    clip_initial = v.check_positive("clip_initial", require(params, "clip_initial", method))
    clip_gradient = v.check_nonnegative("clip_gradient", require(params, "clip_gradient", method))
    learning_rate = v.check_positive("learning_rate", require(params, "learning_rate", method))
    weight_decay = v.check_nonnegative("weight_decay", params.get("weight_decay", 0.0))
    v.check_decay_product(learning_rate, weight_decay)
    return dict(
        clip_initial=clip_initial,
        clip_gradient=clip_gradient,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )


class GradientClipping(MethodAccountant):
    """Noisy fine-tuning with clipped gradients (Koloskova et al. 2025, arXiv 2506.06985).

    Tight accounting (docs/theory.md §6.3): the shift allocation's coefficient a = B²/(2σ²W)
    (exact constrained allocation for per-step schedules) certifies two ways, and the smaller ε
    is reported with its route (``details["route"]``): μ-GDP with μ = √(2a) through the exact
    Gaussian profile (shifted interpolation, docs/gdp_amplification_by_iteration.md), and the
    shifted-Rényi curve α ↦ α·a through the improved conversion at the optimal continuous
    order. ``certify(spec, delta=..., analysis="renyi")`` (or ``"gaussian_dp"``) forces one
    route. T = 1 is exactly a Gaussian mechanism with μ = B/σ and is certified with the exact
    profile. Paper accounting (docs/theory.md §6.5): the
    published closed forms with their side conditions enforced, always re-certified by the
    tight accountant.
    """

    name = "gradient_clipping"
    spec_class = GradientClippingSpec
    plan_parameters = frozenset({"max_steps"})
    certify_options = frozenset({"analysis"})
    description = "project to C0, T noisy steps with clipped gradients and weight decay (PABI)"
    auto_priority = 0
    auto_required = ("clip_initial", "clip_gradient", "learning_rate")

    def build_spec(self, **params):
        if params.get("steps") is None:  # a schedule gives the step count
            lengths = {
                len(np.atleast_1d(np.asarray(params[k], dtype=object)))
                for k in _SCHEDULE_FIELDS
                if params.get(k) is not None and _is_schedule(params[k])
            }
            if len(lengths) == 1:
                params = dict(params, steps=lengths.pop())
        return super().build_spec(**params)

    def spec(self, problem, *, noise_std, steps) -> GradientClippingSpec:
        return GradientClippingSpec(noise_std=noise_std, steps=steps, **problem)

    # -- certification ------------------------------------------------------------------------
    def certify_spec(self, spec, *, delta, analysis="best"):
        iteration.check_analysis(analysis)
        if (
            spec.assume_convex_smooth is not None
        ):  # declared structure (docs/declared_assumptions.md)
            return structure.certify_convex_smooth(
                self,
                spec,
                delta=delta,
                assumption_free=lambda s, *, delta: self._certify_assumption_free(
                    s, delta=delta, analysis=analysis
                ),
                analysis=analysis,
            )
        return self._certify_assumption_free(spec, delta=delta, analysis=analysis)

    def _certify_assumption_free(self, spec, *, delta, analysis="best"):
        if spec.is_schedule:
            return self._certify_schedule(spec, delta, analysis)
        problem = {k: getattr(spec, k) for k in _PROBLEM_FIELDS}
        if spec.steps == 1:
            distance = iteration.constant_B(steps=1, **problem)
            return self._certify_gaussian(spec, delta, distance, spec.noise_std)
        coefficient = iteration.require_finite_coefficient(
            iteration.constant_coefficient(steps=spec.steps, noise_std=spec.noise_std, **problem),
            self.name,
        )
        bound = iteration.certified_epsilon(coefficient, delta=delta, analysis=analysis)
        return self.certified(
            spec,
            bound.value,
            delta=delta,
            accountant=bound.source,
            order=bound.order,
            details={
                **_route_details(bound),
                "flat_alpha_epsilon": iteration.flat_alpha_epsilon(coefficient, delta=delta),
            },
        )

    def _certify_gaussian(self, spec, delta, distance, noise_std):
        """T = 1: exactly N(m, σ²I) vs N(m', σ²I) with ‖m − m'‖ ≤ B (docs/theory.md §6.3)."""
        mu = distance / noise_std
        if not mu < math.inf:
            raise NumericalPrecisionError(
                f"mu = B/noise_std overflows (B={distance:g}, noise_std={noise_std:g}): "
                "no finite epsilon"
            )
        eps = float(gaussian.epsilon(delta, mu=mu)) if mu > 0 else 0.0
        return self.certified(
            spec,
            eps,
            delta=delta,
            accountant="gaussian_profile(T=1, mu=B/noise_std)",
            details={
                "route": "exact_gaussian",  # one Gaussian step: exact whatever the analysis
                "mu": mu,
                "coefficient": mu * mu / 2.0,
                "flat_alpha_epsilon": iteration.flat_alpha_epsilon(mu * mu / 2.0, delta=delta),
            },
        )

    def _certify_schedule(self, spec, delta, analysis):
        schedule = iteration.Schedule.from_arrays(
            learning_rate=spec.learning_rate,
            weight_decay=spec.weight_decay,
            clip_gradient=spec.clip_gradient,
            noise_std=spec.noise_std,
            clip_initial=spec.clip_initial,
            steps=spec.steps,
        )
        allocation = iteration.constrained_coefficient(schedule)
        if not math.isfinite(allocation.coefficient):
            raise NumericalPrecisionError(
                "the schedule ends with noiseless steps that still shift the iterate: "
                "no finite epsilon is certified"
            )
        if schedule.steps == 1 and schedule.noise_std[0] > 0:
            distance = 2.0 * schedule.clip_initial * schedule.contraction[0] + schedule.shift[0]
            return self._certify_gaussian(spec, delta, distance, float(schedule.noise_std[0]))
        bound = iteration.certified_epsilon(allocation.coefficient, delta=delta, analysis=analysis)
        return self.certified(
            spec,
            bound.value,
            delta=delta,
            accountant=bound.source.replace("+", "(schedule, exact allocation)+", 1),
            order=bound.order,
            details={
                **_route_details(bound),
                "closed_form_coefficient": allocation.closed_form,
                "closed_form_valid": allocation.closed_form_valid,
                "active_zero_distance_steps": list(allocation.segments),
            },
        )

    # -- planning -------------------------------------------------------------------------------
    def _tight_noise(self, eps, delta, steps, problem, max_coefficient):
        """Least σ for ``steps`` before re-certification (T = 1: exact Gaussian calibration)."""
        if steps == 1:
            distance = iteration.constant_B(steps=1, **problem)
            return distance / gaussian.mu(epsilon=eps, delta=delta) * (1.0 + 1e-12)
        return iteration.noise_std_for_coefficient(max_coefficient, steps=steps, **problem)

    def _coefficient(self, steps, noise_std, problem):
        return iteration.constant_coefficient(steps=steps, noise_std=noise_std, **problem)

    def _epsilon_at(self, problem, noise_std, steps, delta) -> float:
        return self.certify(
            self.spec(problem, noise_std=noise_std, steps=steps), delta=delta
        ).epsilon

    def _fewest_steps_for_noise(self, eps, delta, noise_std, problem, max_steps, max_coefficient):
        """Smallest T ≤ max_steps whose certified ε at noise ``noise_std`` is ≤ eps.

        T = 1 is checked with the exact Gaussian profile. For T ≥ 2, a(T) = B²/(2σ²W) is
        unimodal in T (docs/optimal_steps.md), so {T : a(T) ≤ a_max} is an interval whose left
        end is found by bisection on [2, argmin]; the candidate is then re-certified and moved
        right while the conversion's rounding refuses it.
        """
        if self._epsilon_at(problem, noise_std, 1, delta) <= eps:
            return 1
        too_small = f"too small: no steps <= max_steps={max_steps} certify"
        if max_steps < 2:
            raise InvalidParameterError("noise_std", noise_std, too_small)
        candidates = {max_steps} | {
            t for t in iteration.candidate_steps(max_steps=max_steps, **problem) if t >= 2
        }
        best_steps = min(sorted(candidates), key=lambda t: self._coefficient(t, noise_std, problem))
        if self._coefficient(best_steps, noise_std, problem) > max_coefficient:
            raise InvalidParameterError("noise_std", noise_std, too_small)
        low, high = 2, best_steps  # a is non-increasing on [1, best_steps]; a(high) <= a_max
        while low < high:
            middle = (low + high) // 2
            if self._coefficient(middle, noise_std, problem) <= max_coefficient:
                high = middle
            else:
                low = middle + 1
        for steps in range(low, min(low + 64, max_steps) + 1):
            if self._epsilon_at(problem, noise_std, steps, delta) <= eps:
                return steps
        raise InvalidParameterError(  # pragma: no cover - conversion rounding only
            "noise_std", noise_std, too_small
        )

    def _choose_steps(self, epsilon, delta, problem, max_steps, max_coefficient):
        """Integer T among the candidates (⌊T*⌋, ⌈T*⌉, 1, plateau/cap) needing least σ."""
        best = None
        for steps in iteration.candidate_steps(max_steps=max_steps, **problem):
            noise_std = self._tight_noise(epsilon, delta, steps, problem, max_coefficient)
            if best is None or noise_std < best[1] * (1 - 1e-12):
                best = (steps, noise_std)
        return best

    def _paper_steps(self, problem, notes):
        """Paper-mode step count when none is given: the authors' rule, raised (with a note) to
        meet (1 − γλ)^{2T} ≤ 1/2 when λ > 0."""
        steps = paper_gradient_clipping_steps(**problem)
        if problem["weight_decay"] > 0:
            min_steps = _paper_min_steps(problem["learning_rate"], problem["weight_decay"])
            if steps < min_steps:
                notes.append(
                    f"paper mode: the authors' step rule gives {steps} steps, raised to "
                    f"{min_steps} to satisfy (1 - learning_rate*weight_decay)^(2 steps) <= 1/2"
                )
                steps = min_steps
        notes.append(
            "paper mode: steps from the authors' code rule ceil(C0/(lr*C1)), or "
            "ceil(log(2*wd*C0/C1)/(lr*wd)) when smaller [code]"
        )
        return steps

    def plan(self, *, epsilon, delta, accounting, **params):
        problem = problem_parameters(params, self.name)
        max_steps = v.check_int("max_steps", params.get("max_steps", DEFAULT_MAX_STEPS), minimum=1)
        steps = params.get("steps")
        if steps is not None:
            steps = v.check_int("steps", steps, minimum=1)
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = []

        declared = structure.declared_convex_smooth(params)  # None: assumption-free

        def certify_at(noise_std, steps=steps):
            spec = self.spec(problem, noise_std=noise_std, steps=steps)
            if declared is not None:
                spec = spec.replace(assume_convex_smooth=declared)
            return self.certify(spec, delta=delta)

        if accounting == "paper":
            if "noise_std" in params:
                raise InvalidParameterError(
                    "noise_std", params["noise_std"], "paper mode computes noise_std; omit it"
                )
            if steps is None:
                steps = self._paper_steps(problem, notes)
            paper_noise = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, **problem
            )
            certified = certify_at(paper_noise, steps)
            if problem["weight_decay"] == 0.0:
                notes.append(
                    "paper mode, weight_decay=0: published constant 9 reproduced; the same "
                    "derivation gives 18 (docs/theory.md §6.5), so this noise may not certify"
                )
            return PlanDraft(
                spec=certified.spec,
                certified=certified,
                accounting="paper",
                target_epsilon=epsilon,
                inputs=inputs,
                paper_noise_std=paper_noise,
                paper_epsilon=certified.epsilon,
                notes=tuple(notes),
                not_certified_reason="the published closed form's noise (tight re-certification)",
            )

        # the default certificate is the better of the Gaussian-DP and Rényi routes, whose
        # budget is the Gaussian-DP one μ(ε, δ)²/2 (never below the Rényi a_max)
        max_coefficient = iteration.max_certified_coefficient(epsilon=epsilon, delta=delta)
        if "noise_std" in params:
            noise_std = v.check_positive("noise_std", params["noise_std"])
            if steps is None:
                steps = self._fewest_steps_for_noise(
                    epsilon, delta, noise_std, problem, max_steps, max_coefficient
                )
            else:
                notes.append("noise_std and steps both given: the configuration is certified as is")
            certified = certify_at(noise_std, steps)
        else:
            if steps is None:
                steps, noise_std = self._choose_steps(
                    epsilon, delta, problem, max_steps, max_coefficient
                )
                notes.append(
                    "steps chosen by the planner: the integer step count needing least noise "
                    "(when the bound keeps decreasing in steps, the first within 1% of its limit, "
                    "capped by max_steps); noise recomputed for exactly that integer"
                )
                if declared is not None:
                    notes.append(
                        "assume_convex_smooth is certified but did not choose steps or noise: "
                        "give steps to calibrate the noise under the declaration"
                    )
            else:
                noise_std = self._tight_noise(epsilon, delta, steps, problem, max_coefficient)
                if declared is not None:
                    noise_std = structure.convex_smooth_noise_start(
                        noise_std, declared, epsilon, delta, steps, problem, max_coefficient
                    )
            noise_std, certified = calibrate_decreasing(
                lambda x: certify_at(x, steps), epsilon, noise_std, what=self.name
            )
        details = {
            "optimal_steps_real": finite_or_none(iteration.optimal_steps_real(**problem)),
            "max_coefficient": max_coefficient,
        }
        paper_noise = paper_epsilon = None
        try:
            paper_noise = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, **problem
            )
            paper_epsilon = certify_at(paper_noise, steps).epsilon
        except InvalidParameterError as err:
            notes.append(f"paper-mode noise undefined at these settings: {err}")
        try:
            paper_rule_steps = paper_gradient_clipping_steps(**problem)
            details["paper_rule_steps"] = paper_rule_steps
            details["paper_noise_std_at_paper_rule_steps"] = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=paper_rule_steps, **problem
            )
        except InvalidParameterError:
            pass
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting="tight",
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=paper_noise,
            paper_epsilon=paper_epsilon,
            details=details,
            notes=tuple(notes),
        )


_PROBLEM_FIELDS = ("clip_initial", "clip_gradient", "learning_rate", "weight_decay")


def _route_details(bound) -> dict:
    """The certificate details of :func:`iteration.certified_epsilon`'s result (route, both
    routes' ε where computed, μ, the coefficient)."""
    keep = (
        "coefficient",
        "route",
        "analysis",
        "mu",
        "renyi_epsilon",
        "gaussian_dp_epsilon",
        "order",
    )
    return {k: bound.details[k] for k in keep if k in bound.details}


register_method(GradientClipping())
