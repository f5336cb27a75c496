r"""Method ``"dp_sgd_group"`` (baseline): train with DP-SGD, group privacy over the forget set.

Abadi et al. 2016 (arXiv 1607.00133) DP-SGD with Poisson sampling and add/remove adjacency,
accounted per record, then group privacy over the k forget records. Nothing is "unlearned": the
model was private for the forget set from the start. Update rule per step: Poisson sample at
rate q, clip each example's gradient to C1, sum, add N(0, (zC1)²I), step.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import brentq

from .. import _validate as v
from .. import dp_sgd, group, group_amplification, renyi
from ..calibration import calibrate_decreasing
from ..errors import InvalidParameterError, NumericalPrecisionError
from ..pld import PrivacyLossDistribution
from ..update_rule import Gradient, GradientNoise, GradientStep, Phase, UpdateRule
from .accountant import MethodAccountant, PlanDraft
from .base import MethodSpec
from .registry import register_method

__all__ = ["DPSGDGroupSpec", "DPSGDGroup"]


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
        self._check("steps", v.check_int, minimum=1)
        self._check("forget_size", v.check_int, minimum=1)
        self._check("noise_multiplier", v.check_positive)
        self._check("clip_gradient", v.check_positive)
        self._check("learning_rate", v.check_positive, optional=True)

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


def _rdp_group_epsilon(rdp, forget_size, log_target) -> float:
    """Smallest per-record ε' (RDP route) with log δ'(ε') + log Σ_{i<k} e^{iε'} ≤ log δ.

    Any evaluated ε' meeting the condition certifies (soundness does not need monotonicity);
    the scan + Brent refinement only makes it small. Returns +inf if none is found.
    """

    def excess(per_record):
        log_delta = float(renyi.to_log_delta(dp_sgd.RDP_ORDERS, rdp, epsilon=per_record))
        return log_delta + group.log_group_delta_factor(per_record, forget_size) - log_target

    previous = 0.0
    for per_record in np.geomspace(1e-4, 64.0, 40):
        if excess(per_record) <= 0.0:
            low, high = previous, float(per_record)
            if excess(low) > 0.0 and high - low > 1e-6 * high:
                try:
                    root = brentq(excess, low, high, xtol=1e-7 * high, maxiter=100)
                    for candidate in (root, root * (1 + 1e-6), root * (1 + 1e-4)):
                        if candidate < high and excess(candidate) <= 0.0:
                            return candidate
                except (ValueError, RuntimeError):  # pragma: no cover
                    pass
            return high
        previous = float(per_record)
    return math.inf


class DPSGDGroup(MethodAccountant):
    """Baseline: train with DP-SGD, then group privacy over the forget set (docs/theory.md §7.2).

    Per-record accounting of T Poisson-subsampled Gaussian steps (add/remove adjacency) by the
    library's DP-SGD accountant (:mod:`unlearn_theory.dp_sgd`: its RDP grid, RDP curve and PLD);
    group privacy over k = forget_size records by the exact geometric-sum form
    δ_k = δ'·Σ_{i<k} e^{iε'} (:mod:`unlearn_theory.group`) -- the induction route -- and, for
    k ≥ 2, the group-amplification route (:mod:`unlearn_theory.group_amplification`,
    docs/group_amplification.md): the whole group as one Poisson-subsampled Gaussian mixture
    Σ_j Bin(j; k, q) N(j, z²) against N(0, z²) per step, both orderings, pessimistic PLD. The
    certificate is the minimum of the two routes (``details["route"]``). Tight mode splits the
    budget exactly (ε' = ε/k, δ' = δ(e^{ε'} − 1)/(e^{kε'} − 1)) or calibrates on the mixture
    route, whichever needs less noise; paper mode reproduces the authors' split
    δ' = δ·e^{−(k−1)ε'} (which drops a factor 1/k, docs/theory.md §13.4) and re-certifies.
    Shuffled fixed-size batches are NOT certified (Poisson sampling only).
    """

    name = "dp_sgd_group"
    spec_class = DPSGDGroupSpec
    description = "baseline: train with DP-SGD (Poisson, add/remove), group privacy over D_f"
    auto_required = ("sample_rate", "steps", "forget_size")
    #: auto hint: never compared (its noise is spent during training, not unlearning)
    auto_compare = False
    auto_not_compared_reason = (
        "baseline not compared: its noise is added during training, not during unlearning "
        "(plan it explicitly)"
    )

    def build_spec(self, **params):
        params = dict(params)
        noise_std = params.pop("noise_std", None)
        if params.get("noise_multiplier") is None and noise_std is not None:
            clip_gradient = v.check_positive("clip_gradient", params.get("clip_gradient", 1.0))
            params["noise_multiplier"] = v.check_positive("noise_std", noise_std) / clip_gradient
        if params.get("noise_multiplier") is None:
            raise InvalidParameterError(
                "noise_std", None, "give noise_std (= noise_multiplier * clip_gradient)"
            )
        return super().build_spec(**params)

    @property
    def certify_parameters(self):
        return super().certify_parameters | {"noise_std"}

    def certify_spec(self, spec, *, delta):
        z, q, steps, forget_size = (
            spec.noise_multiplier,
            spec.sample_rate,
            spec.steps,
            spec.forget_size,
        )
        log_target = math.log(delta)
        # route 1 (induction): per-record accounting, then group privacy over k records
        rdp = dp_sgd.rdp_curve(sample_rate=q, noise_multiplier=z, steps=steps)
        per_record = _rdp_group_epsilon(rdp, forget_size, log_target)
        route = "rdp"
        if math.isfinite(per_record):
            # PLD refinement: ε_P(δ/F(ε_R)) ≤ ε_R implies F(ε_P) ≤ F(ε_R), so ε_P certifies;
            # iterating keeps certifying: each new ε_P is below the previous one.
            try:
                pld = PrivacyLossDistribution.from_subsampled_gaussian(
                    sample_rate=q, noise_multiplier=z
                ).self_compose(steps)
                for _ in range(3):
                    log_record_delta = log_target - group.log_group_delta_factor(
                        per_record, forget_size
                    )
                    pld_epsilon = float(pld.epsilon(math.exp(log_record_delta), lower=False).upper)
                    if not pld_epsilon < per_record:
                        break
                    improvement = per_record - pld_epsilon
                    per_record, route = pld_epsilon, "pld"
                    if improvement <= 1e-4 * per_record:
                        break
            except (NumericalPrecisionError, InvalidParameterError):
                pass
        induction = forget_size * per_record if math.isfinite(per_record) else math.inf
        mixture = self._mixture_epsilon(spec, delta)
        if not (math.isfinite(induction) or math.isfinite(mixture)):
            raise NumericalPrecisionError("no finite group epsilon is certified")
        induction_name = f"dp_sgd({route}, Poisson, add/remove)+group_privacy(geometric sum)"
        if mixture < induction:
            epsilon = mixture
            accountant = "dp_sgd_group_mixture(Poisson, add/remove of the whole group, PLD)"
        else:
            epsilon, accountant = induction, induction_name
        return self.certified(
            spec,
            epsilon,
            delta=delta,
            accountant=accountant,
            details={
                "per_record_epsilon": per_record,
                "noise_multiplier": z,
                "forget_size": forget_size,
                "induction_epsilon": induction,
                "mixture_epsilon": mixture,
                "route": "mixture" if mixture < induction else "induction",
            },
        )

    @staticmethod
    def _mixture_noise_multiplier(*, epsilon, delta, sample_rate, steps, forget_size):
        """Smallest noise multiplier (to ~1e-4 relative: bracket by doubling, then bisection
        on log z) whose group-mixture ε, computed on a grid 4 times coarser than the default
        (pessimistic, so at least the certificate's value), meets ``epsilon``; None if no z in [1e-2, 1e8] does.
        The mixture ε is non-increasing in z (more noise is post-processing). The result is
        re-certified by :meth:`certify_spec` (finer grid, never larger)."""

        def ok(log_z):
            try:
                kw = dict(
                    sample_rate=sample_rate,
                    noise_multiplier=math.exp(log_z),
                    steps=steps,
                    forget_size=forget_size,
                )
                grid = group_amplification.default_grid(**kw, coarsen=4.0)
                value = group_amplification.group_mixture_epsilon(**kw, delta=delta, grid=grid)
                return float(value) <= epsilon
            except (NumericalPrecisionError, InvalidParameterError):
                return False

        low_limit, high_limit = math.log(1e-2), math.log(1e8)
        lo = hi = 0.0
        if ok(hi):
            while ok(lo - math.log(2.0)):
                lo -= math.log(2.0)
                if lo < low_limit:
                    return math.exp(lo)
            hi, lo = lo, lo - math.log(2.0)
        else:
            while not ok(hi):
                lo, hi = hi, hi + math.log(2.0)
                if hi > high_limit:
                    return None
        for _ in range(14):
            mid = 0.5 * (lo + hi)
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return math.exp(hi)

    @staticmethod
    def _mixture_epsilon(spec, delta) -> float:
        """The group-amplification route (docs/group_amplification.md): the whole forget group
        as one Poisson-subsampled Gaussian mixture per step, composed by the pessimistic PLD.
        forget_size = 1 is the per-record pair itself (the induction route): not recomputed.
        +inf where the PLD cannot certify a finite value."""
        if spec.forget_size < 2:
            return math.inf
        try:
            return float(
                group_amplification.group_mixture_epsilon(
                    sample_rate=spec.sample_rate,
                    noise_multiplier=spec.noise_multiplier,
                    steps=spec.steps,
                    forget_size=spec.forget_size,
                    delta=delta,
                )
            )
        except (NumericalPrecisionError, InvalidParameterError):
            return math.inf

    def plan(self, *, epsilon, delta, accounting, **params):
        if "noise_std" in params or "noise_multiplier" in params:
            raise InvalidParameterError(
                "noise_std", params.get("noise_std"), "the planner chooses it"
            )
        for key in ("sample_rate", "forget_size", "steps"):
            if params.get(key) is None:
                raise InvalidParameterError(key, None, f"is required for method {self.name!r}")
        q = v.check_sample_rate(params["sample_rate"])
        forget_size = v.check_int("forget_size", params["forget_size"], minimum=1)
        clip_gradient = v.check_positive("clip_gradient", params.get("clip_gradient", 1.0))
        steps = v.check_int("steps", params["steps"], minimum=1)
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = ["Poisson sampling, add/remove adjacency; shuffled batches are not certified"]
        if accounting == "paper":
            record_epsilon, record_delta = group.stair_lab_split(epsilon, delta, forget_size)
            notes.append(
                "paper mode: the authors' split delta' = delta*exp(-(k-1)*epsilon/k) (drops 1/k, "
                "docs/theory.md §13.4), re-certified with the exact group-privacy sum"
            )
        else:
            record_epsilon, record_delta = group.split_group_budget(epsilon, delta, forget_size)
            notes.append(
                "paper-mode noise not computed in tight mode (cost); use accounting='paper'"
            )
        z = None
        if accounting == "tight" and forget_size >= 2:
            z = self._mixture_noise_multiplier(
                epsilon=epsilon, delta=delta, sample_rate=q, steps=steps, forget_size=forget_size
            )
            if z is not None:
                notes.append(
                    "noise calibrated on the group-amplification route "
                    "(docs/group_amplification.md); certified by the minimum of both routes"
                )
        if z is None:
            z = dp_sgd.dp_sgd_noise_multiplier(
                epsilon=record_epsilon, delta=record_delta, sample_rate=q, steps=steps
            )

        def certify_at(noise_multiplier):
            spec = DPSGDGroupSpec(
                sample_rate=q,
                steps=steps,
                forget_size=forget_size,
                noise_multiplier=noise_multiplier,
                clip_gradient=clip_gradient,
                learning_rate=params.get("learning_rate"),
            )
            return self.certify(spec, delta=delta)

        if accounting == "tight":
            z, certified = calibrate_decreasing(certify_at, epsilon, z, what=self.name)
        else:
            certified = certify_at(z)
        paper = accounting == "paper"
        return PlanDraft(
            spec=certified.spec,
            certified=certified,
            accounting=accounting,
            target_epsilon=epsilon,
            inputs=inputs,
            paper_noise_std=certified.spec.noise_std if paper else None,
            paper_epsilon=certified.epsilon if paper else None,
            details={
                "noise_multiplier": z,
                "per_record_epsilon_target": record_epsilon,
                "per_record_delta": record_delta,
            },
            notes=tuple(notes),
        )


register_method(DPSGDGroup())
