r"""The planner: ``plan()`` and ``certify()`` for every unlearning method.

``plan(method, *, epsilon, delta, accounting="tight", **params) -> UnlearningPlan``
    The least noise (and, when ``steps`` is not given, the step count) that *provably* certifies
    (ε, δ)-unlearning for ``method``. Every plan is re-certified after calibration by the forward
    accountant (``certify``), and the certified ε is what the plan reports; it never exceeds the
    target in tight mode.

``certify(method, *, delta, noise_std=None, steps=None, claimed_epsilon=None, **params)``
    The smallest ε the library can certify (an UPPER bound, or EXACT where the worst case is a
    single Gaussian comparison) for the given configuration, at ``delta``. Returns a
    :class:`CertifiedEpsilon`: a ``float`` subclass (use it as a number) that also carries
    ``.epsilon``, ``.delta``, ``.kind`` ("exact" | "upper"), ``.accountant``, ``.order`` (Rényi
    order used, or None), ``.method``, ``.details``, and -- when ``claimed_epsilon`` is given --
    ``.claim_holds`` and a ``.note`` saying by how much a published label is exceeded.

Accounting modes
    ``"tight"`` (default): exact B and W, the exact shift allocation (lower convex hull when the
    closed form is invalid), improved RDP→DP conversion at the optimal continuous order, the exact
    Gaussian profile wherever the worst case is one Gaussian comparison (gradient clipping with
    T = 1, output perturbation, block-wise with one step per block).
    ``"paper"``: the published closed forms (Koloskova et al. 2025, arXiv 2506.06985; Dolgova &
    Stich 2026, arXiv 2601.05134) with their side conditions enforced by
    :class:`~unlearn_theory.errors.InvalidParameterError` naming the violated condition; the
    published noise is then ALWAYS re-certified by the tight accountant, the plan reports the true
    ε, and ``certifies_target`` is False (with a note) when the published noise does not reach
    the target.

Methods (see ``available_methods()``):

============================== =================================================================
``gradient_clipping``          clip_initial, clip_gradient, learning_rate, weight_decay=0,
                               steps=None, noise_std=None, max_steps=10000
``model_clipping``             clip_initial, clip_model, noise_std | steps, initial_noise_std,
                               learning_rate/weight_decay (recorded, unused by the bound)
``output_perturbation``        clip_initial
``blockwise_gradient_clipping`` blocks + gradient_clipping's (steps = total = blocks·T_b)
``dp_sgd_group``               sample_rate, steps, forget_size, clip_gradient=1 (noise_std =
                               noise_multiplier·clip_gradient)
``langevin`` (optional)        registered lazily from ``unlearn_theory.langevin_method`` when
                               that module exists (see its docstring)
``auto``                       any of the above; compares the applicable methods
============================== =================================================================

Paper mode per method: gradient clipping -- Koloskova et al.'s closed forms (constant 9 at λ = 0,
72 at λ > 0; side conditions ε ≤ 3 log(1/δ), 0 < γλ < 1, (1 − γλ)^{2T} ≤ 1/2), steps from the
authors' code rule when not given (:func:`paper_gradient_clipping_steps`); model clipping -- the
plain per-step bound (ε, θ^T δ_0); output perturbation -- the classical Dwork–Roth calibration;
block-wise -- Dolgova & Stich's code (σ at the real T*, run with ⌊T*⌋); DP-SGD + group -- the
authors' split δ' = δ e^{−(k−1)ε/k}. Every paper plan reports the TRUE certified ε.

The flat-α mistake (math.md §13.1): gradient-clipping certificates carry
``details["flat_alpha_epsilon"]``, the label a program would print by treating the coefficient a
of D_α ≤ α·a as an order-independent "Rényi ε"; ``certify(..., claimed_epsilon=label)`` then says
NOT CERTIFIED, by how much, and that the label is a flat-α conversion.

Adding a method (e.g. "langevin", issue 4): subclass :class:`MethodAccountant`, set ``name``,
``parameters`` (accepted keyword names) and ``description``, implement
``plan(self, *, epsilon, delta, accounting, **params) -> UnlearningPlan`` and
``certify(self, *, delta, noise_std, steps, **params) -> CertifiedEpsilon`` (use
:meth:`MethodAccountant.make_plan` / :func:`make_certified` to build results), then call
``register_method(MyAccountant())`` (or, for a built-in optional module, add it to
``_OPTIONAL_METHODS``: it is imported lazily on first use, never at import time, which avoids the
circular import of a module that subclasses :class:`MethodAccountant`). ``plan``/``certify``
validate the method name and reject
unknown keyword arguments with InvalidParameterError before dispatching; "auto" considers a
registered method when its ``applicable(params)`` returns True.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping

import numpy as np
from scipy.optimize import brentq

from . import _validate as v
from . import contraction, gaussian, group, iteration, subspace
from .errors import InvalidParameterError, NumericalPrecisionError
from .plans import UnlearningPlan

__all__ = [
    "plan",
    "certify",
    "CertifiedEpsilon",
    "MethodAccountant",
    "register_method",
    "available_methods",
    "get_method",
    "make_certified",
    "paper_gradient_clipping_noise_std",
    "paper_gradient_clipping_steps",
]

_ACCOUNTING = ("tight", "paper")
_DEFAULT_MAX_STEPS = 10_000


class CertifiedEpsilon(float):
    """A certified ε (a float) with its provenance. Only kinds "exact" and "upper" certify."""

    epsilon: float
    delta: float
    kind: str
    accountant: str
    order: float | None
    method: str
    details: dict
    claimed_epsilon: float | None
    claim_holds: bool | None
    note: str

    def __new__(
        cls,
        epsilon: float,
        *,
        delta: float,
        kind: str,
        accountant: str,
        method: str,
        order: float | None = None,
        details: Mapping | None = None,
        claimed_epsilon: float | None = None,
    ):
        eps = float(epsilon)
        if math.isnan(eps) or eps < 0:
            raise NumericalPrecisionError(f"certified epsilon {eps} is not a valid upper bound")
        if kind not in ("exact", "upper"):
            raise ValueError(f"kind {kind!r} cannot certify")
        self = super().__new__(cls, eps)
        self.epsilon = eps
        self.delta = float(delta)
        self.kind = kind
        self.accountant = accountant
        self.order = None if order is None else float(order)
        self.method = method
        self.details = dict(details or {})
        self.claimed_epsilon = claimed_epsilon
        if claimed_epsilon is None:
            self.claim_holds = None
            self.note = ""
        else:
            self.claim_holds = eps <= claimed_epsilon
            if self.claim_holds:
                self.note = f"the claimed epsilon={claimed_epsilon:g} is certified ({eps:.6g})"
            else:
                self.note = (
                    f"NOT CERTIFIED: claimed epsilon={claimed_epsilon:g}, but the tight accountant "
                    f"certifies only epsilon={eps:.6g} (x{eps / claimed_epsilon:.3g}) at "
                    f"delta={delta:g}"
                )
        return self

    def __repr__(self) -> str:
        return (
            f"CertifiedEpsilon({self.epsilon!r}, delta={self.delta!r}, kind={self.kind!r}, "
            f"accountant={self.accountant!r})"
        )

    def __reduce__(self):  # keep copy/pickle of the float subclass working
        return (
            _rebuild_certified,
            (
                self.epsilon,
                self.delta,
                self.kind,
                self.accountant,
                self.method,
                self.order,
                self.details,
                self.claimed_epsilon,
            ),
        )


def _rebuild_certified(eps, delta, kind, accountant, method, order, details, claimed):
    return CertifiedEpsilon(
        eps,
        delta=delta,
        kind=kind,
        accountant=accountant,
        method=method,
        order=order,
        details=details,
        claimed_epsilon=claimed,
    )


def make_certified(epsilon, **kw) -> CertifiedEpsilon:
    """Build a :class:`CertifiedEpsilon` (helper for registered accountants)."""
    return CertifiedEpsilon(epsilon, **kw)


# ---------------------------------------------------------------------------------------------
# registry


class MethodAccountant:
    """Base class of a method's accountant: plan/certify hooks plus its parameter names."""

    name: str = ""
    parameters: frozenset = frozenset()
    description: str = ""

    def plan(self, *, epsilon: float, delta: float, accounting: str, **params) -> UnlearningPlan:
        raise NotImplementedError

    def certify(self, *, delta: float, noise_std, steps, **params) -> CertifiedEpsilon:
        raise NotImplementedError

    def applicable(self, params: Mapping) -> bool:
        """Whether "auto" should consider this method for the given parameters."""
        return False

    def make_plan(
        self,
        *,
        accounting: str,
        target_epsilon: float,
        certified: CertifiedEpsilon,
        noise_std: float,
        steps: int,
        inputs: Mapping,
        paper_noise_std: float | None = None,
        paper_epsilon: float | None = None,
        details: Mapping | None = None,
        notes=(),
        alternatives=(),
        method: str | None = None,
    ) -> UnlearningPlan:
        det = dict(details or {})
        det.update({k: val for k, val in certified.details.items() if k not in det})
        if certified.order is not None:
            det.setdefault("order", certified.order)
        return UnlearningPlan(
            method=method or self.name,
            accounting=accounting,
            noise_std=float(noise_std),
            steps=int(steps),
            epsilon=float(certified.epsilon),
            delta=float(certified.delta),
            target_epsilon=float(target_epsilon),
            bound_kind=certified.kind,
            accountant=certified.accountant,
            certifies_target=bool(certified.epsilon <= target_epsilon),
            inputs=_clean_inputs(inputs),
            paper_noise_std=None if paper_noise_std is None else float(paper_noise_std),
            paper_epsilon=None if paper_epsilon is None else float(paper_epsilon),
            details=_clean_inputs(det),
            alternatives=tuple(alternatives),
            notes=tuple(notes),
        )


def _clean_inputs(d: Mapping) -> dict:
    out = {}
    for k, val in d.items():
        if isinstance(val, float) and not math.isfinite(val):
            val = None if math.isnan(val) else ("inf" if val > 0 else "-inf")
        out[k] = val
    return out


_REGISTRY: dict[str, MethodAccountant] = {}


def register_method(accountant: MethodAccountant, *, replace: bool = False) -> None:
    """Register ``accountant`` under ``accountant.name`` (raise if taken unless ``replace``)."""
    if not isinstance(accountant, MethodAccountant):
        raise InvalidParameterError("accountant", accountant, "must be a MethodAccountant")
    name = accountant.name
    if not isinstance(name, str) or not name or name == "auto":
        raise InvalidParameterError("accountant.name", name, "must be a non-empty name, not 'auto'")
    if name in _REGISTRY and not replace:
        raise InvalidParameterError("accountant.name", name, "is already registered")
    _REGISTRY[name] = accountant


#: optional accountants that live in their own modules and subclass MethodAccountant; they
#: import this module, so they are registered lazily (never imported at module level here).
_OPTIONAL_METHODS = (("unlearn_theory.langevin_method", "LangevinAccountant"),)
_OPTIONAL_DONE = False


def _ensure_builtin_methods() -> None:
    """Register the optional built-in accountants once (lazy import avoids a circular import).

    A module that does not exist is skipped; a module that exists but fails to import raises
    (a broken accountant must not disappear silently).
    """
    global _OPTIONAL_DONE
    if _OPTIONAL_DONE:
        return
    _OPTIONAL_DONE = True
    for module_name, class_name in _OPTIONAL_METHODS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            _OPTIONAL_DONE = False
            raise
        except Exception:
            _OPTIONAL_DONE = False
            raise
        cls = getattr(module, class_name, None)
        if cls is None:
            continue
        acct = cls()
        if acct.name not in _REGISTRY:
            register_method(acct)


def available_methods() -> tuple[str, ...]:
    """Registered method names (including optional ones, e.g. "langevin"), plus "auto"."""
    _ensure_builtin_methods()
    return tuple(sorted(_REGISTRY)) + ("auto",)


def get_method(name) -> MethodAccountant:
    """The registered accountant called ``name`` (InvalidParameterError naming "method")."""
    _ensure_builtin_methods()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(
            "method", name, f"unknown method; available: {', '.join(available_methods())}"
        )
    return _REGISTRY[name]


def _check_params(acct: MethodAccountant, params: Mapping, extra: frozenset = frozenset()):
    allowed = acct.parameters | extra
    for key, val in params.items():
        if key not in allowed:
            raise InvalidParameterError(
                key,
                val,
                f"is not a parameter of method {acct.name!r}; accepted: {', '.join(sorted(allowed))}",
            )


def plan(method, *, epsilon, delta, accounting="tight", **params) -> UnlearningPlan:
    """Least noise that certifies (ε, δ)-unlearning for ``method``; see the module docstring."""
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    if accounting not in _ACCOUNTING:
        raise InvalidParameterError("accounting", accounting, "must be 'tight' or 'paper'")
    params = {k: val for k, val in params.items() if val is not None}
    if isinstance(method, str) and method == "auto":
        return _plan_auto(epsilon=eps, delta=d, accounting=accounting, **params)
    acct = get_method(method)
    _check_params(acct, params)
    return acct.plan(epsilon=eps, delta=d, accounting=accounting, **params)


def certify(
    method, *, delta, noise_std=None, steps=None, claimed_epsilon=None, **params
) -> CertifiedEpsilon:
    """Smallest certified ε (UPPER, or EXACT) of the given configuration at ``delta``.

    ``claimed_epsilon``: a published or labelled ε for this configuration; the result's
    ``claim_holds``/``note`` say whether the tight accountant confirms it.
    """
    d = v.check_delta(delta)
    if claimed_epsilon is not None:
        claimed_epsilon = v.check_nonnegative("claimed_epsilon", claimed_epsilon)
    if isinstance(method, str) and method == "auto":
        raise InvalidParameterError("method", method, "certify needs a concrete method")
    acct = get_method(method)
    params = {k: val for k, val in params.items() if val is not None}
    _check_params(acct, params)
    res = acct.certify(delta=d, noise_std=noise_std, steps=steps, **params)
    if claimed_epsilon is not None:
        res = _with_claim(res, claimed_epsilon)
    return res


def _with_claim(res: CertifiedEpsilon, claimed_epsilon: float) -> CertifiedEpsilon:
    """Attach a claimed ε; explain a flat-α label (math.md §13.1) when the claim fails."""
    out = CertifiedEpsilon(
        res.epsilon,
        delta=res.delta,
        kind=res.kind,
        accountant=res.accountant,
        method=res.method,
        order=res.order,
        details=res.details,
        claimed_epsilon=claimed_epsilon,
    )
    flat = res.details.get("flat_alpha_epsilon")
    if not out.claim_holds and flat is not None and claimed_epsilon >= flat * (1 - 1e-6):
        out.note += (
            f"; the claim is what a flat-alpha conversion reports ({flat:.6g}): it treats the "
            f"Rényi coefficient a={res.details.get('coefficient', float('nan')):.6g} of "
            "D_alpha <= alpha*a as if D_alpha <= a at every order (math.md §13.1)"
        )
    return out


def _recheck(certify_fn, noise_std: float, target: float, *, what: str):
    """Re-certify σ; step it up (relative 1e-9, doubling) until certified ε ≤ target."""
    s = noise_std
    step = 1e-12
    for _ in range(80):
        res = certify_fn(s)
        if res.epsilon <= target:
            return s, res
        s *= 1.0 + step
        step *= 2.0
    raise NumericalPrecisionError(f"{what}: calibrated noise does not re-certify the target")


# ---------------------------------------------------------------------------------------------
# gradient clipping


def _gc_params(params, *, need_all=True):
    c0 = v.check_positive("clip_initial", _req(params, "clip_initial"))
    c1 = v.check_nonnegative("clip_gradient", _req(params, "clip_gradient"))
    lr = v.check_positive("learning_rate", _req(params, "learning_rate"))
    wd = v.check_nonnegative("weight_decay", params.get("weight_decay", 0.0))
    if lr * wd >= 1.0:
        raise InvalidParameterError(
            "weight_decay", wd, "learning_rate * weight_decay must be < 1 (condition 0 < γλ < 1)"
        )
    return dict(clip_initial=c0, clip_gradient=c1, learning_rate=lr, weight_decay=wd)


def _req(params, name):
    if name not in params:
        raise InvalidParameterError(name, None, "is required for this method")
    return params[name]


def paper_gradient_clipping_noise_std(
    *, epsilon, delta, steps, clip_initial, clip_gradient, learning_rate, weight_decay=0.0
) -> float:
    """Koloskova et al. closed forms (math.md §6.5) [paper mode; re-certify before use].

    λ = 0: σ² = 9·L·(C0 + γC1T)²/(ε²T);  λ > 0: σ² = 72·γλ·L·(C0(1−γλ)^T + C1/λ)²/ε².
    Side conditions, each raising InvalidParameterError naming it: ε ≤ 3·log(1/δ)
    (argument "epsilon"); 0 < γλ < 1 (argument "weight_decay"); (1 − γλ)^{2T} ≤ 1/2 (argument
    "steps"; needed by the λ > 0 derivation). The λ = 0 constant 9 is reproduced as published,
    although the same derivation gives 18 (math.md §6.5): re-certification exposes it.
    """
    eps = v.check_positive("epsilon", epsilon)
    d = v.check_delta(delta)
    T = v.check_int("steps", steps, minimum=1)
    c0 = v.check_positive("clip_initial", clip_initial)
    c1 = v.check_nonnegative("clip_gradient", clip_gradient)
    lr = v.check_positive("learning_rate", learning_rate)
    wd = v.check_nonnegative("weight_decay", weight_decay)
    L = -math.log(d)
    if eps > 3.0 * L:
        raise InvalidParameterError(
            "epsilon", eps, f"paper mode needs epsilon <= 3 log(1/delta) = {3 * L:.6g}"
        )
    if wd == 0.0:
        return _finite_paper_noise(3.0 * math.sqrt(L / T) * (c0 + lr * c1 * T) / eps, eps)
    gl = lr * wd
    if not (0.0 < gl < 1.0):
        raise InvalidParameterError(
            "weight_decay", wd, "paper mode needs 0 < learning_rate * weight_decay < 1"
        )
    rho_2t = math.exp(2.0 * T * math.log1p(-gl))
    if rho_2t > 0.5:
        raise InvalidParameterError(
            "steps",
            T,
            f"paper mode needs (1 - learning_rate*weight_decay)^(2 steps) <= 1/2 (got {rho_2t:.4g})",
        )
    rho_t = math.sqrt(rho_2t)
    # √(72γλL)·(C0ρ^T + C1/λ)/ε, written without forming C1/λ (overflows for tiny λ)
    return _finite_paper_noise(
        math.sqrt(72.0 * lr * L) * (wd * c0 * rho_t + c1) / math.sqrt(wd) / eps, eps
    )


def _finite_paper_noise(s: float, eps: float) -> float:
    if not 0.0 < s < math.inf:
        raise InvalidParameterError(
            "epsilon", eps, f"the paper closed form's noise_std is {s:g} (outside float range)"
        )
    return s


def _paper_min_steps(lr, wd) -> int:
    """Smallest T with (1 − γλ)^{2T} ≤ 1/2 (the λ > 0 paper-mode side condition)."""
    gl = lr * wd
    if gl == 0.0:
        return 1
    t_real = math.log(0.5) / (2.0 * math.log1p(-gl))
    if not t_real < 2.0**62:
        raise InvalidParameterError(
            "weight_decay", wd, "too small for the paper side condition (steps overflow)"
        )
    T = max(1, math.ceil(t_real))
    while math.exp(2.0 * T * math.log1p(-gl)) > 0.5:
        T += 1
    return T


def paper_gradient_clipping_steps(
    *, clip_initial, clip_gradient, learning_rate, weight_decay=0.0
) -> int:
    """Step count chosen by the authors' code [code] (docs/primary_sources.md §1.3).

    T = ⌈C0/(γC1)⌉ (the λ = 0 optimum of the closed form); for λ > 0 it is replaced by
    ⌈log(2λC0/C1)/(γλ)⌉ when that is positive and smaller. A heuristic, not the optimum of the
    bound (math.md §6.4). Needs clip_gradient > 0.
    """
    c0 = v.check_positive("clip_initial", clip_initial)
    c1 = v.check_positive("clip_gradient", clip_gradient)
    lr = v.check_positive("learning_rate", learning_rate)
    wd = v.check_nonnegative("weight_decay", weight_decay)
    try:
        t_real = c0 / lr / c1
    except (OverflowError, ZeroDivisionError):
        t_real = math.inf
    if lr * wd > 0.0:  # (γλ can underflow to 0 for subnormal λ: then the rule is λ = 0's)
        alt = (math.log(2.0) + math.log(wd) + math.log(c0) - math.log(c1)) / (lr * wd)
        if alt > 0.0:
            t_real = min(t_real, alt)
    if not t_real < 2.0**62:
        raise InvalidParameterError(
            "clip_gradient", clip_gradient, "too small for the paper step rule (steps overflow)"
        )
    return max(1, math.ceil(t_real * (1.0 - 1e-12)))


class GradientClipping(MethodAccountant):
    """Noisy fine-tuning with clipped gradients (Koloskova et al. 2025, arXiv 2506.06985).

    Tight accounting (math.md §6.3): the shifted-Rényi curve α ↦ α·a, a = B²/(2σ²W) (exact
    constrained allocation for per-step schedules), converted with the improved conversion at
    the optimal continuous order; T = 1 is exactly a Gaussian mechanism with μ = B/σ and is
    certified with the exact profile. Paper accounting (math.md §6.5): the published closed
    forms with their side conditions enforced, always re-certified by the tight accountant.
    """

    name = "gradient_clipping"
    parameters = frozenset(
        {
            "clip_initial",
            "clip_gradient",
            "learning_rate",
            "weight_decay",
            "steps",
            "noise_std",
            "max_steps",
        }
    )
    description = "project to C0, T noisy steps with clipped gradients and weight decay (PABI)"

    def applicable(self, params):
        return all(k in params for k in ("clip_initial", "clip_gradient", "learning_rate"))

    # -- certification ------------------------------------------------------------------------
    def certify(self, *, delta, noise_std, steps, **params):
        if noise_std is None:
            raise InvalidParameterError("noise_std", None, "is required to certify")
        keys = ("clip_gradient", "learning_rate", "weight_decay")
        if any(
            isinstance(x, (list, tuple)) or getattr(x, "ndim", 0) > 0
            for x in (noise_std, *(params.get(k) for k in keys))
        ):
            return self._certify_schedule(delta=delta, noise_std=noise_std, steps=steps, p=params)
        p = _gc_params(params)
        s = v.check_positive("noise_std", noise_std)
        if steps is None:
            raise InvalidParameterError("steps", None, "is required to certify")
        T = v.check_int("steps", steps, minimum=1)
        if T == 1:
            return self._certify_gaussian(delta, iteration.constant_B(steps=1, **p), s)
        coef = iteration.require_finite_coefficient(
            iteration.constant_coefficient(steps=T, noise_std=s, **p), self.name
        )
        eps, order = iteration.linear_epsilon(coef, delta=delta)
        return make_certified(
            eps,
            delta=delta,
            kind="upper",
            accountant="shifted_renyi+improved_conversion",
            method=self.name,
            order=order,
            details={
                "coefficient": coef,
                "flat_alpha_epsilon": iteration.flat_alpha_epsilon(coef, delta=delta),
            },
        )

    def _certify_gaussian(self, delta, b, s):
        """T = 1: exactly N(m, σ²I) vs N(m', σ²I) with ‖m − m'‖ ≤ B (math.md §6.3 anchor 1)."""
        mu = b / s
        if not mu < math.inf:
            raise NumericalPrecisionError(
                f"mu = B/noise_std overflows (B={b:g}, noise_std={s:g}): no finite epsilon"
            )
        eps = float(gaussian.epsilon(delta, mu=mu)) if mu > 0 else 0.0
        return make_certified(
            eps,
            delta=delta,
            kind="upper",
            accountant="gaussian_profile(T=1, mu=B/noise_std)",
            method=self.name,
            details={
                "mu": mu,
                "coefficient": mu * mu / 2.0,
                "flat_alpha_epsilon": iteration.flat_alpha_epsilon(mu * mu / 2.0, delta=delta),
            },
        )

    def _certify_schedule(self, *, delta, noise_std, steps, p):
        sched = iteration.Schedule.from_arrays(
            learning_rate=_req(p, "learning_rate"),
            weight_decay=p.get("weight_decay", 0.0),
            clip_gradient=_req(p, "clip_gradient"),
            noise_std=noise_std,
            clip_initial=v.check_positive("clip_initial", _req(p, "clip_initial")),
            steps=steps,
        )
        alloc = iteration.constrained_coefficient(sched)
        if not math.isfinite(alloc.coefficient):
            raise NumericalPrecisionError(
                "the schedule ends with noiseless steps that still shift the iterate: "
                "no finite epsilon is certified"
            )
        if sched.steps == 1 and sched.noise_std[0] > 0:
            b = 2.0 * sched.clip_initial * sched.contraction[0] + sched.shift[0]
            return self._certify_gaussian(delta, b, float(sched.noise_std[0]))
        eps, order = iteration.linear_epsilon(alloc.coefficient, delta=delta)
        return make_certified(
            eps,
            delta=delta,
            kind="upper",
            accountant="shifted_renyi(schedule, exact allocation)+improved_conversion",
            method=self.name,
            order=order,
            details={
                "coefficient": alloc.coefficient,
                "closed_form_coefficient": alloc.closed_form,
                "closed_form_valid": alloc.closed_form_valid,
                "active_zero_distance_steps": list(alloc.segments),
            },
        )

    # -- planning -------------------------------------------------------------------------------
    def _tight_noise(self, eps, delta, T, p, a_max):
        """Least σ for T steps before re-certification (T = 1: exact Gaussian calibration)."""
        if T == 1:
            b = iteration.constant_B(steps=1, **p)
            return b / gaussian.mu(epsilon=eps, delta=delta) * (1.0 + 1e-12)
        return iteration.noise_std_for_coefficient(a_max, steps=T, **p)

    def _coef(self, T, s, p):
        return iteration.constant_coefficient(steps=T, noise_std=s, **p)

    def _fewest_steps_for_noise(self, eps, delta, s, p, max_steps, a_max):
        """Smallest T ≤ max_steps whose certified ε at noise s is ≤ eps.

        T = 1 is checked with the exact Gaussian profile. For T ≥ 2, a(T) = B²/(2σ²W) is
        unimodal in T (docs/optimal_steps.md), so {T : a(T) ≤ a_max} is an interval whose left
        end is found by bisection on [2, argmin]; the candidate is then re-certified and moved
        right while the conversion's rounding refuses it.
        """
        if self.certify(delta=delta, noise_std=s, steps=1, **p).epsilon <= eps:
            return 1
        if max_steps < 2:
            raise InvalidParameterError(
                "noise_std", s, f"too small: no steps <= max_steps={max_steps} certify"
            )
        cands = {max_steps} | {
            t for t in iteration.candidate_steps(max_steps=max_steps, **p) if t >= 2
        }
        t_best = min(sorted(cands), key=lambda t: self._coef(t, s, p))
        if self._coef(t_best, s, p) > a_max:
            raise InvalidParameterError(
                "noise_std", s, f"too small: no steps <= max_steps={max_steps} certify"
            )
        lo, hi = 2, t_best  # a is non-increasing on [1, t_best]; a(hi) <= a_max
        while lo < hi:
            mid = (lo + hi) // 2
            if self._coef(mid, s, p) <= a_max:
                hi = mid
            else:
                lo = mid + 1
        for T in range(lo, min(lo + 64, max_steps) + 1):
            if self.certify(delta=delta, noise_std=s, steps=T, **p).epsilon <= eps:
                return T
        raise InvalidParameterError(  # pragma: no cover - conversion rounding only
            "noise_std", s, f"too small: no steps <= max_steps={max_steps} certify"
        )

    def _choose_steps(self, epsilon, delta, p, max_steps, a_max=None):
        """Integer T among the candidates (⌊T*⌋, ⌈T*⌉, 1, plateau/cap) needing least σ."""
        if a_max is None:
            a_max = iteration.max_coefficient(epsilon=epsilon, delta=delta)
        best = None
        for T in iteration.candidate_steps(max_steps=max_steps, **p):
            s = self._tight_noise(epsilon, delta, T, p, a_max)
            if best is None or s < best[1] * (1 - 1e-12):
                best = (T, s)
        return best

    def _paper_steps(self, p, notes):
        """Paper-mode step count when none is given: the authors' rule, raised (with a note) to
        meet (1 − γλ)^{2T} ≤ 1/2 when λ > 0."""
        T = paper_gradient_clipping_steps(**p)
        if p["weight_decay"] > 0:
            t_min = _paper_min_steps(p["learning_rate"], p["weight_decay"])
            if T < t_min:
                notes.append(
                    f"paper mode: the authors' step rule gives {T} steps, raised to {t_min} to "
                    "satisfy (1 - learning_rate*weight_decay)^(2 steps) <= 1/2"
                )
                T = t_min
        notes.append(
            "paper mode: steps from the authors' code rule ceil(C0/(lr*C1)), or "
            "ceil(log(2*wd*C0/C1)/(lr*wd)) when smaller [code]"
        )
        return T

    def plan(self, *, epsilon, delta, accounting, **params):
        p = _gc_params(params)
        max_steps = v.check_int("max_steps", params.get("max_steps", _DEFAULT_MAX_STEPS), minimum=1)
        steps = params.get("steps")
        if steps is not None:
            steps = v.check_int("steps", steps, minimum=1)
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = []

        def cert(s, T):
            return self.certify(delta=delta, noise_std=s, steps=T, **p)

        if accounting == "paper":
            if "noise_std" in params:
                raise InvalidParameterError(
                    "noise_std", params["noise_std"], "paper mode computes noise_std; omit it"
                )
            if steps is None:
                steps = self._paper_steps(p, notes)
            s_paper = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, **p
            )
            res = cert(s_paper, steps)
            if p["weight_decay"] == 0.0:
                notes.append(
                    "paper mode, weight_decay=0: published constant 9 reproduced; the same "
                    "derivation gives 18 (math.md §6.5), so this noise may not certify"
                )
            if res.epsilon > epsilon:
                notes.append(
                    f"NOT CERTIFIED: the published closed form's noise certifies only "
                    f"epsilon={res.epsilon:.6g} > target {epsilon:g} (tight re-certification)"
                )
            return self.make_plan(
                accounting="paper",
                target_epsilon=epsilon,
                certified=res,
                noise_std=s_paper,
                steps=steps,
                inputs=inputs,
                paper_noise_std=s_paper,
                paper_epsilon=res.epsilon,
                notes=notes,
            )

        a_max = iteration.max_coefficient(epsilon=epsilon, delta=delta)
        if "noise_std" in params:
            s = v.check_positive("noise_std", params["noise_std"])
            if steps is None:
                steps = self._fewest_steps_for_noise(epsilon, delta, s, p, max_steps, a_max)
            else:
                notes.append("noise_std and steps both given: the configuration is certified as is")
            res = cert(s, steps)
            if res.epsilon > epsilon:
                notes.append(f"NOT CERTIFIED: certified epsilon={res.epsilon:.6g} > {epsilon:g}")
        else:
            if steps is None:
                steps, s = self._choose_steps(epsilon, delta, p, max_steps, a_max=a_max)
                notes.append(
                    "steps chosen by the planner: the integer step count needing least noise "
                    "(when the bound keeps decreasing in steps, the first within 1% of its limit, "
                    "capped by max_steps); noise recomputed for exactly that integer"
                )
            else:
                s = self._tight_noise(epsilon, delta, steps, p, a_max)
            s, res = _recheck(lambda x: cert(x, steps), s, epsilon, what=self.name)
        details = {
            "optimal_steps_real": _finite_or_none(iteration.optimal_steps_real(**p)),
            "max_coefficient": a_max,
        }
        paper_s, paper_e = None, None
        try:
            paper_s = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, **p
            )
            paper_e = cert(paper_s, steps).epsilon
        except InvalidParameterError as err:
            notes.append(f"paper-mode noise undefined at these settings: {err}")
        try:
            t_paper = paper_gradient_clipping_steps(**p)
            details["paper_rule_steps"] = t_paper
            details["paper_noise_std_at_paper_rule_steps"] = paper_gradient_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=t_paper, **p
            )
        except InvalidParameterError:
            pass
        return self.make_plan(
            accounting="tight",
            target_epsilon=epsilon,
            certified=res,
            noise_std=s,
            steps=steps,
            inputs=inputs,
            paper_noise_std=paper_s,
            paper_epsilon=paper_e,
            details=details,
            notes=notes,
        )


def _finite_or_none(x):
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------
# model clipping


class ModelClipping(MethodAccountant):
    """Model clipping (Koloskova et al. 2025, arXiv 2506.06985, eq. (4)): refined δ-recursion.

    Tight accounting: the refined hockey-stick recursion of math.md §5.3 in log space
    (:mod:`unlearn_theory.contraction`). Paper accounting: the plain per-step statement
    (ε, θ_ε(2C2/σ)^T·δ_0), whose noise is re-certified by the refined recursion.
    learning_rate and weight_decay are recorded but do not enter the bound.
    """

    name = "model_clipping"
    parameters = frozenset(
        {
            "clip_initial",
            "clip_model",
            "noise_std",
            "steps",
            "initial_noise_std",
            "learning_rate",
            "weight_decay",
            "max_steps",
        }
    )
    description = "project to C0 (+ optional σ0 noise), T steps each projected to C2 then noised"

    def applicable(self, params):
        return "clip_initial" in params and "clip_model" in params

    def _p(self, params):
        s0 = params.get("initial_noise_std")
        if s0 is not None:
            s0 = v.check_nonnegative("initial_noise_std", s0)
        for k in ("learning_rate", "weight_decay"):
            if k in params:
                v.check_nonnegative(k, params[k])
        return dict(
            clip_initial=v.check_positive("clip_initial", _req(params, "clip_initial")),
            clip_model=v.check_positive("clip_model", _req(params, "clip_model")),
            initial_noise_std=s0,
        )

    def _certified(self, eps, delta, refined, how=""):
        acct = (
            "hockey_stick_contraction(refined)"
            if refined
            else "hockey_stick_contraction(plain per-step)"
        )
        return make_certified(
            eps, delta=delta, kind="upper", accountant=acct + how, method=self.name
        )

    def certify(self, *, delta, noise_std, steps, refined=True, **params):
        p = self._p(params)
        if noise_std is None:
            raise InvalidParameterError("noise_std", None, "is required to certify")
        if steps is None:
            raise InvalidParameterError("steps", None, "is required to certify")
        eps = contraction.model_clipping_epsilon(
            delta=delta, noise_std=noise_std, steps=steps, refined=refined, rtol=1e-9, **p
        )
        return self._certified(eps, delta, refined)

    def _certify_near(self, delta, s, steps, p, target, *, refined=True, rtol=1e-6):
        """Certified ε of (σ, T), searched from the target (relative precision ``rtol``)."""
        eps = contraction.model_clipping_epsilon(
            delta=delta,
            noise_std=s,
            steps=steps,
            refined=refined,
            rtol=rtol,
            epsilon_hint=target,
            **p,
        )
        return self._certified(eps, delta, refined)

    def _holds_at(self, delta, s, steps, p, target, *, refined=True) -> bool:
        fn = contraction.model_clipping_log_delta if refined else _plain_log_delta
        return fn(epsilon=target, noise_std=s, steps=steps, **p) <= math.log(delta)

    def plan(self, *, epsilon, delta, accounting, **params):
        p = self._p(params)
        max_steps = v.check_int("max_steps", params.get("max_steps", 100_000), minimum=1)
        refined = accounting == "tight"
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        s = params.get("noise_std")
        steps = params.get("steps")
        notes = []
        if s is None and steps is None:
            raise InvalidParameterError(
                "noise_std", None, "model_clipping needs noise_std (-> fewest steps) or steps"
            )
        if s is not None and steps is not None:
            notes.append("noise_std and steps both given: the configuration is certified as is")
            s = v.check_positive("noise_std", s)
            steps = v.check_int("steps", steps, minimum=0)
            res = self.certify(delta=delta, noise_std=s, steps=steps, **p)
        elif s is not None:
            s = v.check_positive("noise_std", s)
            steps = contraction.model_clipping_steps(
                epsilon=epsilon, delta=delta, noise_std=s, max_steps=max_steps, refined=refined, **p
            )
            res = self._certify_near(delta, s, steps, p, epsilon)
        else:
            steps = v.check_int("steps", steps, minimum=1)
            s = contraction.model_clipping_noise_std(
                epsilon=epsilon, delta=delta, steps=steps, refined=refined, **p
            )
            if refined:
                # σ was calibrated by evaluating δ_T(target) <= δ: the target itself is certified.
                if not self._holds_at(delta, s, steps, p, epsilon):  # pragma: no cover
                    raise NumericalPrecisionError("model clipping calibration did not certify")
                res = self._certified(epsilon, delta, True, "; evaluated at the target epsilon")
            else:
                res = self._certify_near(delta, s, steps, p, epsilon)
        if res.epsilon > epsilon and refined:
            # the bisection's last digit can land above a target that the recursion certifies
            if self._holds_at(delta, s, steps, p, epsilon):
                res = self._certified(epsilon, delta, True, "; evaluated at the target epsilon")
        if res.epsilon > epsilon:
            notes.append(f"NOT CERTIFIED: certified epsilon={res.epsilon:.6g} > {epsilon:g}")
        details = {}
        paper_s = paper_e = None
        if refined and steps >= 1:
            try:
                paper_s = contraction.model_clipping_noise_std(
                    epsilon=epsilon, delta=delta, steps=steps, refined=False, **p
                )
                # comparison only (still an upper bound): a coarser search is enough
                paper_e = self._certify_near(delta, paper_s, steps, p, epsilon, rtol=1e-4).epsilon
            except (InvalidParameterError, NumericalPrecisionError) as err:
                notes.append(f"plain-bound noise undefined: {err}")
            if params.get("noise_std") is not None and params.get("steps") is None:
                try:
                    details["paper_steps"] = contraction.model_clipping_steps(
                        epsilon=epsilon, delta=delta, noise_std=s, refined=False, **p
                    )
                except InvalidParameterError:
                    details["paper_steps"] = None
        elif not refined:
            paper_s = s
            paper_e = self._certify_near(delta, s, steps, p, epsilon).epsilon
            notes.append(
                "paper mode: noise/steps from the plain per-step bound (epsilon, theta^T delta_0); "
                f"the refined recursion certifies epsilon={paper_e:.6g}"
            )
        return self.make_plan(
            accounting=accounting,
            target_epsilon=epsilon,
            certified=res,
            noise_std=s,
            steps=steps,
            inputs=inputs,
            paper_noise_std=paper_s,
            paper_epsilon=paper_e,
            details=details,
            notes=notes,
        )


def _plain_log_delta(*, epsilon, noise_std, steps, **p) -> float:
    return float(
        contraction.plain_log_deltas(epsilon=epsilon, noise_std=noise_std, steps=steps, **p)[-1]
    )


# ---------------------------------------------------------------------------------------------
# output perturbation


class OutputPerturbation(MethodAccountant):
    name = "output_perturbation"
    parameters = frozenset({"clip_initial", "noise_std", "steps"})
    description = "project to C0 and add one Gaussian (sensitivity 2·C0)"

    def applicable(self, params):
        return "clip_initial" in params

    def certify(self, *, delta, noise_std, steps=None, **params):
        c0 = v.check_positive("clip_initial", _req(params, "clip_initial"))
        if noise_std is None:
            raise InvalidParameterError("noise_std", None, "is required to certify")
        s = v.check_positive("noise_std", noise_std)
        if steps not in (None, 0):
            raise InvalidParameterError("steps", steps, "output perturbation has steps=0")
        mu = 2.0 * c0 / s
        return make_certified(
            float(gaussian.epsilon(delta, mu=mu)),
            delta=delta,
            kind="exact",
            accountant="gaussian_profile(mu=2*clip_initial/noise_std)",
            method=self.name,
            details={"mu": mu},
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        c0 = v.check_positive("clip_initial", _req(params, "clip_initial"))
        if "noise_std" in params:
            raise InvalidParameterError("noise_std", params["noise_std"], "the planner chooses it")
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        classical = float(
            gaussian.classical_noise_std(epsilon=epsilon, delta=delta, sensitivity=2 * c0)
        )
        notes = []
        if accounting == "paper":
            s = classical
            if epsilon >= 1.0:
                notes.append("classical calibration is proven only for epsilon < 1")
            res = self.certify(delta=delta, noise_std=s, clip_initial=c0)
            if res.epsilon > epsilon:
                notes.append(
                    f"NOT CERTIFIED: classical noise certifies epsilon={res.epsilon:.6g} > {epsilon:g}"
                )
        else:
            s = float(gaussian.noise_std(epsilon=epsilon, delta=delta, sensitivity=2 * c0))
            s, res = _recheck(
                lambda x: self.certify(delta=delta, noise_std=x, clip_initial=c0),
                s,
                epsilon,
                what=self.name,
            )
        paper_e = self.certify(delta=delta, noise_std=classical, clip_initial=c0).epsilon
        return self.make_plan(
            accounting=accounting,
            target_epsilon=epsilon,
            certified=res,
            noise_std=s,
            steps=0,
            inputs=inputs,
            paper_noise_std=classical,
            paper_epsilon=paper_e,
            notes=notes,
        )


# ---------------------------------------------------------------------------------------------
# block-wise gradient clipping


class BlockwiseGradientClipping(MethodAccountant):
    name = "blockwise_gradient_clipping"
    parameters = GradientClipping.parameters | {"blocks", "steps_per_block", "allocation"}
    description = "gradient clipping run one orthogonal block at a time (Dolgova & Stich 2026)"

    @staticmethod
    def _allocation(params, accounting="tight"):
        """ "per_block" (default; the published argument) or "joint" (the block parts of the
        initial gap share the 2C0 ball; docs/blockwise_joint_allocation.md)."""
        alloc = subspace.check_allocation(params.get("allocation", "per_block"))
        if accounting == "paper" and alloc != "per_block":
            raise InvalidParameterError(
                "allocation", alloc, "paper mode reproduces the per-block allocation"
            )
        return alloc

    def applicable(self, params):
        return GradientClipping().applicable(params) and "blocks" in params

    def _steps_per_block(self, k, steps, steps_per_block):
        if steps_per_block is not None:
            tb = v.check_int("steps_per_block", steps_per_block, minimum=1)
            if steps is not None and steps != k * tb:
                raise InvalidParameterError("steps", steps, "must equal blocks * steps_per_block")
            return tb
        if steps is None:
            return None
        steps = v.check_int("steps", steps, minimum=1)
        if steps % k:
            raise InvalidParameterError(
                "steps", steps, f"total steps must be a multiple of blocks={k}"
            )
        return steps // k

    def certify(self, *, delta, noise_std, steps, **params):
        p = _gc_params(params)
        k = v.check_int("blocks", _req(params, "blocks"), minimum=1)
        tb = self._steps_per_block(k, steps, params.get("steps_per_block"))
        if tb is None:
            raise InvalidParameterError("steps", None, "is required to certify")
        if noise_std is None:
            raise InvalidParameterError("noise_std", None, "is required to certify")
        alloc = self._allocation(params)
        eps, acct, order = subspace.blockwise_epsilon(
            delta=delta, noise_std=noise_std, blocks=k, steps_per_block=tb, allocation=alloc, **p
        )
        return make_certified(
            eps,
            delta=delta,
            kind="upper",
            accountant=acct,
            method=self.name,
            order=order,
            details={"steps_per_block": tb, "blocks": k, "allocation": alloc},
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        p = _gc_params(params)
        k = v.check_int("blocks", _req(params, "blocks"), minimum=1)
        if "noise_std" in params:
            raise InvalidParameterError("noise_std", params["noise_std"], "the planner chooses it")
        tb = self._steps_per_block(k, params.get("steps"), params.get("steps_per_block"))
        max_steps = v.check_int("max_steps", params.get("max_steps", _DEFAULT_MAX_STEPS), minimum=1)
        alloc = self._allocation(params, accounting)
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = [
            "noise cadence: fresh N(0, noise_std^2 I) on the active block at every step; "
            "steps = blocks * steps_per_block"
        ]
        paper = None
        try:
            paper = subspace.dolgova_stich_schedule(epsilon=epsilon, delta=delta, blocks=k, **p)
        except InvalidParameterError as err:
            if accounting == "paper":
                raise
            notes.append(f"paper-mode noise undefined: {err}")
        if accounting == "paper":
            tb_run = paper["steps_per_block"] if tb is None else tb
            s = paper["noise_std"]
            res = self.certify(delta=delta, noise_std=s, steps=k * tb_run, blocks=k, **p)
            notes.append(
                f"paper mode: code's sigma for real T*={paper['real_steps']:.6g}, run with "
                f"steps_per_block={tb_run} (floored)"
            )
            if res.epsilon > epsilon:
                notes.append(f"NOT CERTIFIED: certified epsilon={res.epsilon:.6g} > {epsilon:g}")
            return self.make_plan(
                accounting="paper",
                target_epsilon=epsilon,
                certified=res,
                noise_std=s,
                steps=k * tb_run,
                inputs=inputs,
                paper_noise_std=s,
                paper_epsilon=res.epsilon,
                details={"steps_per_block": tb_run, "blocks": k, "real_steps": paper["real_steps"]},
                notes=notes,
            )
        sched = subspace.blockwise_schedule(
            epsilon=epsilon,
            delta=delta,
            blocks=k,
            steps_per_block=tb,
            max_steps_per_block=max_steps,
            allocation=alloc,
            **p,
        )
        res = self.certify(
            delta=delta,
            noise_std=sched.noise_std,
            steps=sched.total_steps,
            blocks=k,
            allocation=alloc,
            **p,
        )
        paper_s = paper_e = None
        if paper is not None:
            paper_s = paper["noise_std"]
            paper_e = self.certify(
                delta=delta,
                noise_std=paper_s,
                steps=k * paper["steps_per_block"],
                blocks=k,
                allocation=alloc,
                **p,
            ).epsilon
        return self.make_plan(
            accounting="tight",
            target_epsilon=epsilon,
            certified=res,
            noise_std=sched.noise_std,
            steps=sched.total_steps,
            inputs=inputs,
            paper_noise_std=paper_s,
            paper_epsilon=paper_e,
            details={
                "steps_per_block": sched.steps_per_block,
                "blocks": k,
                "per_block_coefficient": sched.per_block_coefficient,
                "total_coefficient": sched.total_coefficient,
                "allocation": alloc,
            },
            notes=notes
            + (
                [
                    "joint allocation: the blocks share the initial-distance ball (sum of squared "
                    "block gaps <= (2 clip_initial)^2); docs/blockwise_joint_allocation.md"
                ]
                if alloc == "joint"
                else []
            ),
        )


# ---------------------------------------------------------------------------------------------
# DP-SGD + group privacy baseline


def _dp_sgd():
    from . import dp_sgd  # PLD engineer's module; imported lazily

    return dp_sgd


class DPSGDGroup(MethodAccountant):
    """Baseline: train with DP-SGD, then group privacy over the forget set (math.md §7.2).

    Per-record accounting of T Poisson-subsampled Gaussian steps (add/remove adjacency) by the
    library's DP-SGD accountant; group privacy over k = forget_size records by the exact
    geometric-sum form δ_k = δ'·Σ_{i<k} e^{iε'} (:mod:`unlearn_theory.group`). Tight mode splits
    the budget exactly (ε' = ε/k, δ' = δ(e^{ε'} − 1)/(e^{kε'} − 1)); paper mode reproduces the
    authors' split δ' = δ·e^{−(k−1)ε'} (which drops a factor 1/k, math.md §13.4) and re-certifies.
    Shuffled fixed-size batches are NOT certified (Poisson sampling only).
    """

    name = "dp_sgd_group"
    parameters = frozenset(
        {"sample_rate", "steps", "forget_size", "clip_gradient", "noise_std", "noise_multiplier"}
    )
    description = "baseline: train with DP-SGD (Poisson, add/remove), group privacy over D_f"

    _ORDERS = 1.0 + np.geomspace(1e-2, 1023.0, 160)

    def applicable(self, params):
        return all(k in params for k in ("sample_rate", "steps", "forget_size"))

    def _p(self, params):
        return dict(
            q=v.check_sample_rate(_req(params, "sample_rate")),
            k=v.check_int("forget_size", _req(params, "forget_size"), minimum=1),
            clip=v.check_positive("clip_gradient", params.get("clip_gradient", 1.0)),
        )

    def _rdp_group_epsilon(self, z, q, T, k, log_target):
        """Smallest per-record ε' (RDP route) with log δ'(ε') + log Σ_{i<k} e^{iε'} ≤ log δ.

        Any evaluated ε' meeting the condition certifies (soundness does not need monotonicity);
        the scan + Brent refinement only makes it small. Returns +inf if none is found.
        """
        from . import renyi

        rdp = T * np.asarray(
            renyi.subsampled_gaussian(self._ORDERS, sample_rate=q, noise_multiplier=z),
            dtype=np.float64,
        )

        def g(e1):
            ld, _ = renyi.to_log_delta(self._ORDERS, rdp, epsilon=e1)
            return ld + group.log_group_delta_factor(e1, k) - log_target

        grid = np.geomspace(1e-4, 64.0, 40)
        prev = 0.0
        for e1 in grid:
            if g(e1) <= 0.0:
                lo, hi = prev, float(e1)
                if g(lo) > 0.0 and hi - lo > 1e-6 * hi:
                    try:
                        x = brentq(g, lo, hi, xtol=1e-7 * hi, maxiter=100)
                        for cand in (x, x * (1 + 1e-6), x * (1 + 1e-4)):
                            if cand < hi and g(cand) <= 0.0:
                                return cand
                    except (ValueError, RuntimeError):  # pragma: no cover
                        pass
                return hi
            prev = float(e1)
        return math.inf

    def _rdp_epsilon(self, z, q, T, delta):
        from . import renyi

        rdp = T * np.asarray(
            renyi.subsampled_gaussian(self._ORDERS, sample_rate=q, noise_multiplier=z),
            dtype=np.float64,
        )
        return float(renyi.to_dp(self._ORDERS, rdp, delta=delta)[0])

    def _noise_multiplier(self, e1, d1, q, T, rtol=5e-3):
        """Smallest z (to about ``rtol``) with dp_sgd_epsilon(z) ≤ ε' at δ' (feasible side).

        Cheap RDP bisection first (its z is feasible: dp_sgd_epsilon = min(PLD, RDP) ≤ RDP),
        then a few Brent steps on the exact dp_sgd_epsilon (PLD) below it. The returned z was
        evaluated with :func:`unlearn_theory.dp_sgd.dp_sgd_epsilon`.
        """
        dp = _dp_sgd()

        def rdp_ok(z):
            try:
                return self._rdp_epsilon(z, q, T, d1) <= e1
            except NumericalPrecisionError:
                return False

        hi = 1.0
        while not rdp_ok(hi):
            hi *= 2.0
            if hi > 1e6:
                raise NumericalPrecisionError(f"no noise_multiplier certifies epsilon'={e1}")
        lo = hi / 2.0
        while lo > 1e-3 and rdp_ok(lo):
            hi, lo = lo, lo / 2.0
        while hi - lo > rtol * hi:
            mid = 0.5 * (lo + hi)
            if rdp_ok(mid):
                hi = mid
            else:
                lo = mid

        def g(z):
            try:
                return dp.dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=T, delta=d1) - e1
            except NumericalPrecisionError:
                return math.inf

        g_hi = g(hi)
        if not g_hi <= 0.0:  # pragma: no cover - min(PLD, RDP) <= RDP
            raise NumericalPrecisionError("DP-SGD calibration did not certify")
        low = max(hi * 0.85, 1e-3)  # the PLD bound is typically a few % tighter than RDP
        g_lo = g(low)
        if g_lo <= 0.0:
            return low
        try:
            z = brentq(g, low, hi, xtol=rtol * hi, maxiter=8)
        except (ValueError, RuntimeError):  # pragma: no cover
            return hi
        z *= 1.0 + rtol
        return z if z < hi and g(z) <= 0.0 else hi

    def _group_log_delta_at(self, z, q, T, k, e1) -> float:
        """log of the group δ at per-record ε' = e1: min(PLD, RDP) log δ' + log Σ_{i<k} e^{iε'}."""
        from . import renyi
        from .pld import PrivacyLossDistribution

        rdp = T * np.asarray(
            renyi.subsampled_gaussian(self._ORDERS, sample_rate=q, noise_multiplier=z),
            dtype=np.float64,
        )
        ld = float(renyi.to_log_delta(self._ORDERS, rdp, epsilon=e1)[0])
        try:
            pld = PrivacyLossDistribution.from_subsampled_gaussian(
                sample_rate=q, noise_multiplier=z
            ).self_compose(T)
            up = float(pld.delta(e1).upper)
            if up > 0.0:
                ld = min(ld, math.log(up))
        except NumericalPrecisionError:
            pass
        return ld + group.log_group_delta_factor(e1, k)

    def certify(self, *, delta, noise_std=None, steps=None, **params):
        p = self._p(params)
        T = v.check_int("steps", steps if steps is not None else _req(params, "steps"), minimum=1)
        z = params.get("noise_multiplier")
        if z is None:
            if noise_std is None:
                raise InvalidParameterError(
                    "noise_std", None, "give noise_std (= noise_multiplier * clip_gradient)"
                )
            z = v.check_positive("noise_std", noise_std) / p["clip"]
        z = v.check_positive("noise_multiplier", z)
        k, q = p["k"], p["q"]
        log_target = math.log(delta)
        e_rdp = self._rdp_group_epsilon(z, q, T, k, log_target)
        e1, how = e_rdp, "rdp"
        if math.isfinite(e_rdp):
            # PLD refinement: ε_P(δ/F(ε_R)) ≤ ε_R implies F(ε_P) ≤ F(ε_R), so ε_P certifies.
            from .pld import PrivacyLossDistribution

            # Iterating keeps certifying: each new ε_P is below the previous one.
            try:
                pld = PrivacyLossDistribution.from_subsampled_gaussian(
                    sample_rate=q, noise_multiplier=z
                ).self_compose(T)
                for _ in range(3):
                    log_d1 = log_target - group.log_group_delta_factor(e1, k)
                    e_pld = float(pld.epsilon(math.exp(log_d1), lower=False).upper)
                    if not e_pld < e1:
                        break
                    improved = e1 - e_pld
                    e1, how = e_pld, "pld"
                    if improved <= 1e-4 * e1:
                        break
            except (NumericalPrecisionError, InvalidParameterError):
                pass
        if not math.isfinite(e1):
            raise NumericalPrecisionError("no finite group epsilon is certified")
        return make_certified(
            k * e1,
            delta=delta,
            kind="upper",
            accountant=f"dp_sgd({how}, Poisson, add/remove)+group_privacy(geometric sum)",
            method=self.name,
            details={"per_record_epsilon": e1, "noise_multiplier": z, "forget_size": k},
        )

    def plan(self, *, epsilon, delta, accounting, **params):
        p = self._p(params)
        T = v.check_int("steps", _req(params, "steps"), minimum=1)
        if "noise_std" in params or "noise_multiplier" in params:
            raise InvalidParameterError(
                "noise_std", params.get("noise_std"), "the planner chooses it"
            )
        inputs = dict(params, epsilon=epsilon, delta=delta, accounting=accounting)
        notes = ["Poisson sampling, add/remove adjacency; shuffled batches are not certified"]
        if accounting == "paper":
            e1, d1 = group.stair_lab_split(epsilon, delta, p["k"])
            notes.append(
                "paper mode: the authors' split delta' = delta*exp(-(k-1)*epsilon/k) (drops 1/k, "
                "math.md §13.4), re-certified with the exact group-privacy sum"
            )
        else:
            e1, d1 = group.split_group_budget(epsilon, delta, p["k"])
            notes.append(
                "paper-mode noise not computed in tight mode (cost); use accounting='paper'"
            )
        z = self._noise_multiplier(e1, d1, p["q"], T)
        cert_params = _without(params, "steps")
        res = None
        if accounting == "tight":
            # independent re-check at the target: PLD δ at ε' = ε/k times the exact group sum
            log_gd = self._group_log_delta_at(z, p["q"], T, p["k"], epsilon / p["k"])
            if log_gd <= math.log(delta):
                res = make_certified(
                    epsilon,
                    delta=delta,
                    kind="upper",
                    accountant="pld(delta at epsilon/k)+group_privacy(geometric sum)",
                    method=self.name,
                    details={"per_record_epsilon": epsilon / p["k"], "noise_multiplier": z},
                )
        if res is None:
            res = self.certify(delta=delta, noise_multiplier=z, steps=T, **cert_params)
        if res.epsilon > epsilon:
            notes.append(f"NOT CERTIFIED: certified epsilon={res.epsilon:.6g} > {epsilon:g}")
        return self.make_plan(
            accounting=accounting,
            target_epsilon=epsilon,
            certified=res,
            noise_std=z * p["clip"],
            steps=T,
            inputs=inputs,
            paper_noise_std=z * p["clip"] if accounting == "paper" else None,
            paper_epsilon=res.epsilon if accounting == "paper" else None,
            details={
                "noise_multiplier": z,
                "per_record_epsilon_target": e1,
                "per_record_delta": d1,
            },
            notes=notes,
        )


def _without(d, *keys):
    return {k: val for k, val in d.items() if k not in keys}


# ---------------------------------------------------------------------------------------------
# auto


_AUTO_ORDER = (
    "gradient_clipping",
    "model_clipping",
    "output_perturbation",
    "blockwise_gradient_clipping",
)


def _plan_auto(*, epsilon, delta, accounting, **params):
    """Compare the applicable methods; least noise_std within the compute budget wins.

    Budget: ``max_steps`` (default 10000) caps the number of noisy steps. Model clipping, when
    no noise_std/steps is given, is planned at steps=min(max_steps, 32) (its δ decays
    super-geometrically, so more steps buy little). Block-wise plans report the per-block σ_b.
    """
    _ensure_builtin_methods()
    names = list(_AUTO_ORDER) + sorted(n for n in _REGISTRY if n not in _AUTO_ORDER)
    all_params = set().union(*(get_method(n).parameters for n in names if n in _REGISTRY))
    for key, val in params.items():
        if key not in all_params:
            raise InvalidParameterError(key, val, "is not a parameter of any method")
    max_steps = v.check_int("max_steps", params.get("max_steps", _DEFAULT_MAX_STEPS), minimum=1)
    candidates = []
    alternatives = []
    for name in names:
        acct = _REGISTRY.get(name)
        if acct is None:
            continue
        if name == "dp_sgd_group":
            if acct.applicable(params):
                alternatives.append(
                    {
                        "method": name,
                        "reason": "baseline not compared: its noise is added during training, "
                        "not during unlearning (plan it explicitly)",
                    }
                )
            continue
        if not acct.applicable(params):
            alternatives.append({"method": name, "reason": "not applicable: parameters missing"})
            continue
        sub = {k: val for k, val in params.items() if k in acct.parameters}
        if "max_steps" in acct.parameters:
            sub["max_steps"] = max_steps
        if name == "model_clipping" and "noise_std" not in sub and "steps" not in sub:
            sub["steps"] = min(max_steps, 32)
        try:
            p = acct.plan(epsilon=epsilon, delta=delta, accounting=accounting, **sub)
        except (InvalidParameterError, NumericalPrecisionError) as err:
            alternatives.append({"method": name, "reason": f"failed: {err}"})
            continue
        if p.steps > max_steps or not p.certifies_target:
            alternatives.append(
                {
                    "method": name,
                    "noise_std": p.noise_std,
                    "steps": p.steps,
                    "epsilon": p.epsilon,
                    "reason": "over the compute budget" if p.steps > max_steps else "not certified",
                }
            )
            continue
        candidates.append(p)
    if not candidates:
        raise InvalidParameterError(
            "method", "auto", "no applicable method certifies the target within the budget"
        )
    best = min(candidates, key=lambda q: q.noise_std)
    for q in candidates:
        if q is best:
            continue
        alternatives.append(
            {
                "method": q.method,
                "noise_std": q.noise_std,
                "steps": q.steps,
                "epsilon": q.epsilon,
                "delta": q.delta,
                "reason": "more noise",
            }
        )
    return UnlearningPlan(
        **{
            **{f: getattr(best, f) for f in best.__dataclass_fields__},
            "alternatives": tuple(alternatives),
            "inputs": dict(best.inputs, method_requested="auto"),
            "notes": best.notes + ("auto: least noise_std among the applicable methods",),
        }
    )


for _acct in (
    GradientClipping(),
    ModelClipping(),
    OutputPerturbation(),
    BlockwiseGradientClipping(),
    DPSGDGroup(),
):
    register_method(_acct)
