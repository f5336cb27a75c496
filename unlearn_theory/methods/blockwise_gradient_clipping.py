r"""Method ``"blockwise_gradient_clipping"``: gradient clipping one orthogonal block at a time.

Dolgova & Stich 2026, arXiv 2601.05134. The coordinates are split into k blocks; after one
global C0 projection, phase i runs T_b gradient-clipping steps on block i only (the gradient is
restricted to block i, clipped to C1, and the decay, the step and fresh N(0, σ_b²I) noise act on
block i alone). Total steps T = k·T_b.
"""

from __future__ import annotations

import dataclasses

from .. import _validate as v
from .. import subspace
from ..calibration import calibrate_decreasing
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
from .accountant import MethodAccountant, PlanDraft, require
from .base import MethodSpec
from .gradient_clipping import DEFAULT_MAX_STEPS, problem_parameters
from .registry import register_method

__all__ = ["BlockwiseGradientClippingSpec", "BlockwiseGradientClipping", "ALLOCATIONS"]

ALLOCATIONS = ("per_block", "joint")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockwiseGradientClippingSpec(MethodSpec):
    """Block-wise gradient clipping.

    Fields: gradient clipping's (clip_initial, clip_gradient, learning_rate, weight_decay,
    noise_std = the per-block σ_b) plus blocks k ≥ 1, steps_per_block T_b ≥ 1 and allocation
    ("per_block", the published argument, or "joint", the proved shared-ball allocation).
    ``steps`` (a property) = k·T_b.
    """

    method = "blockwise_gradient_clipping"

    clip_initial: float
    clip_gradient: float
    learning_rate: float
    blocks: int
    steps_per_block: int
    noise_std: float
    weight_decay: float = 0.0
    allocation: str = "per_block"

    def __post_init__(self):
        self._check("clip_initial", v.check_positive)
        self._check("clip_gradient", v.check_nonnegative)
        self._check("learning_rate", v.check_positive)
        self._check("weight_decay", v.check_nonnegative)
        v.check_decay_product(self.learning_rate, self.weight_decay)
        self._check("blocks", v.check_int, minimum=1)
        self._check("steps_per_block", v.check_int, minimum=1)
        self._check("noise_std", v.check_positive)
        if self.allocation not in ALLOCATIONS:
            raise InvalidParameterError(
                "allocation", self.allocation, f"must be one of {ALLOCATIONS}"
            )

    @property
    def steps(self) -> int:
        return self.blocks * self.steps_per_block

    def update_rule(self) -> UpdateRule:
        ops = (
            Gradient(),
            ClipGradient(self.clip_gradient),
            WeightDecay(self.learning_rate, self.weight_decay),
            GradientStep(self.learning_rate),
            AddNoise(self.noise_std),
        )
        return UpdateRule(
            prologue=(ProjectBall(self.clip_initial),),
            phases=tuple(Phase(self.steps_per_block, ops, block=i) for i in range(self.blocks)),
            blocks=self.blocks,
            notes=(
                "phase i restricts the gradient, its clip, the decay, the step and the noise to "
                "block i; weight decay is applied after clipping",
            ),
        )


def _steps_per_block(blocks, steps, steps_per_block):
    """T_b from ``steps_per_block`` or from the total ``steps`` (a multiple of ``blocks``)."""
    if steps_per_block is not None:
        per_block = v.check_int("steps_per_block", steps_per_block, minimum=1)
        if steps is not None and steps != blocks * per_block:
            raise InvalidParameterError("steps", steps, "must equal blocks * steps_per_block")
        return per_block
    if steps is None:
        return None
    steps = v.check_int("steps", steps, minimum=1)
    if steps % blocks:
        raise InvalidParameterError(
            "steps", steps, f"total steps must be a multiple of blocks={blocks}"
        )
    return steps // blocks


class BlockwiseGradientClipping(MethodAccountant):
    """Block-wise gradient clipping (Dolgova & Stich 2026, arXiv 2601.05134).

    Tight accounting: each block's gradient-clipping bound, composed over the blocks
    (:func:`unlearn_theory.subspace.blockwise_epsilon`): the better of Gaussian DP (exact
    profile) and the Rényi curve, ``certify(..., analysis="renyi")`` forcing the latter; with the published per-block allocation
    of the initial distance or the proved joint one (docs/blockwise_joint_allocation.md). Paper
    accounting: the authors' code (σ for the real T*, run with ⌊T*⌋ steps per block),
    re-certified. ``steps`` (total) is accepted in place of ``steps_per_block``.
    """

    name = "blockwise_gradient_clipping"
    spec_class = BlockwiseGradientClippingSpec
    plan_parameters = frozenset({"steps", "max_steps"})
    certify_options = frozenset({"analysis"})
    description = "gradient clipping run one orthogonal block at a time (Dolgova & Stich 2026)"
    auto_priority = 3
    auto_required = ("clip_initial", "clip_gradient", "learning_rate", "blocks")

    def build_spec(self, **params):
        blocks = v.check_int("blocks", require(params, "blocks", self.name), minimum=1)
        params = dict(params)
        steps = params.pop("steps", None)
        params["steps_per_block"] = _steps_per_block(blocks, steps, params.get("steps_per_block"))
        return super().build_spec(**params)

    @property
    def certify_parameters(self):
        return super().certify_parameters | {"steps"}

    def certify_spec(self, spec, *, delta, analysis="best"):
        bound = subspace.blockwise_epsilon(
            delta=delta,
            analysis=analysis,
            noise_std=spec.noise_std,
            blocks=spec.blocks,
            steps_per_block=spec.steps_per_block,
            allocation=spec.allocation,
            clip_initial=spec.clip_initial,
            clip_gradient=spec.clip_gradient,
            learning_rate=spec.learning_rate,
            weight_decay=spec.weight_decay,
        )
        eps, accountant, order = bound.value, bound.source, bound.order
        return self.certified(
            spec,
            eps,
            delta=delta,
            accountant=accountant,
            order=order,
            details={
                "steps_per_block": spec.steps_per_block,
                "blocks": spec.blocks,
                "allocation": spec.allocation,
                **{
                    k: bound.details[k]
                    for k in ("route", "mu", "renyi_epsilon", "gaussian_dp_epsilon")
                    if k in bound.details
                },
            },
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        problem = problem_parameters(params, self.name)
        blocks = v.check_int("blocks", require(params, "blocks", self.name), minimum=1)
        if "noise_std" in params:
            raise InvalidParameterError("noise_std", params["noise_std"], "the planner chooses it")
        per_block = _steps_per_block(blocks, params.get("steps"), params.get("steps_per_block"))
        max_steps = v.check_int("max_steps", params.get("max_steps", DEFAULT_MAX_STEPS), minimum=1)
        allocation = subspace.check_allocation(params.get("allocation", "per_block"))
        if accounting == "paper" and allocation != "per_block":
            raise InvalidParameterError(
                "allocation", allocation, "paper mode reproduces the per-block allocation"
            )
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = [
            "noise cadence: fresh N(0, noise_std^2 I) on the active block at every step; "
            "steps = blocks * steps_per_block"
        ]

        def certify_at(noise_std, steps_per_block):
            spec = BlockwiseGradientClippingSpec(
                noise_std=noise_std,
                blocks=blocks,
                steps_per_block=steps_per_block,
                allocation=allocation,
                **problem,
            )
            return self.certify(spec, delta=delta)

        paper = None
        try:
            paper = subspace.dolgova_stich_schedule(
                epsilon=epsilon, delta=delta, blocks=blocks, **problem
            )
        except InvalidParameterError as err:
            if accounting == "paper":
                raise
            notes.append(f"paper-mode noise undefined: {err}")
        if accounting == "paper":
            run_per_block = paper["steps_per_block"] if per_block is None else per_block
            certified = certify_at(paper["noise_std"], run_per_block)
            notes.append(
                f"paper mode: code's sigma for real T*={paper['real_steps']:.6g}, run with "
                f"steps_per_block={run_per_block} (floored)"
            )
            return PlanDraft(
                spec=certified.spec,
                certified=certified,
                accounting="paper",
                target_epsilon=epsilon,
                inputs=inputs,
                paper_noise_std=paper["noise_std"],
                paper_epsilon=certified.epsilon,
                details={"real_steps": paper["real_steps"]},
                notes=tuple(notes),
            )
        schedule = subspace.blockwise_schedule(
            epsilon=epsilon,
            delta=delta,
            blocks=blocks,
            steps_per_block=per_block,
            max_steps_per_block=max_steps,
            allocation=allocation,
            **problem,
        )
        _, certified = calibrate_decreasing(
            lambda x: certify_at(x, schedule.steps_per_block),
            epsilon,
            schedule.noise_std,
            what=self.name,
        )
        paper_noise = paper_epsilon = None
        if paper is not None:
            paper_noise = paper["noise_std"]
            paper_epsilon = certify_at(paper_noise, paper["steps_per_block"]).epsilon
        if allocation == "joint":
            notes.append(
                "joint allocation: the blocks share the initial-distance ball (sum of squared "
                "block gaps <= (2 clip_initial)^2); docs/blockwise_joint_allocation.md"
            )
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting="tight",
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=paper_noise,
            paper_epsilon=paper_epsilon,
            details={
                "per_block_coefficient": schedule.per_block_coefficient,
                "total_coefficient": schedule.total_coefficient,
            },
            notes=tuple(notes),
        )


register_method(BlockwiseGradientClipping())
