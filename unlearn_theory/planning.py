r"""The planner: ``plan()``, ``certify()`` and ``plan("auto")`` over the registered methods.

``plan(method, *, epsilon, delta, accounting="tight", **params) -> UnlearningPlan``
    The least noise (and, when ``steps`` is not given, the step count) that *provably* certifies
    (ε, δ)-unlearning for ``method``. The plan carries its spec (``plan.spec``), and its ε is
    what ``certify(plan.spec, delta=plan.delta)`` returns; it never exceeds the target in tight
    mode.

``certify(spec, *, delta, claimed_epsilon=None, **options)`` or
``certify(method, *, delta, noise_std=..., steps=..., claimed_epsilon=None, **params)``
    The smallest ε the library can certify (an UPPER bound, or EXACT where the worst case is a
    single Gaussian comparison) for the configuration, at ``delta``. Returns a
    :class:`~unlearn_theory.methods.accountant.CertifiedEpsilon` (a
    :class:`~unlearn_theory.bounds.Bound`: ``.epsilon``, ``.kind``, ``.accountant``, ``.order``,
    ``.details``, ``.spec``; with ``claimed_epsilon``, ``.claim_holds`` and a ``.note`` saying
    by how much a published label is exceeded). ``float(result)`` is ε. Options that choose a
    bound rather than a configuration (model clipping's ``refined``, langevin's ``convention``
    and ``form``) are keywords of ``certify``, not spec fields.

Accounting modes
    ``"tight"`` (default): exact B and W, the exact shift allocation, improved RDP→DP conversion
    at the optimal continuous order, the exact Gaussian profile wherever the worst case is one
    Gaussian comparison. ``"paper"``: the published closed forms (Koloskova et al. 2025, arXiv
    2506.06985; Dolgova & Stich 2026, arXiv 2601.05134) with their side conditions enforced by
    InvalidParameterError naming the violated condition; the published noise is ALWAYS
    re-certified by the tight accountant, the plan reports the true ε, and
    ``certifies_target`` is False (with a note) when it does not reach the target.

Methods: one module each in :mod:`unlearn_theory.methods` (spec, accountant, paper form, auto
hints); ``available_methods()`` lists them. Adding a method: see that package's docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import _validate as v
from .errors import InvalidParameterError, NumericalPrecisionError
from .methods import MethodSpec
from .methods.accountant import CertifiedEpsilon, MethodAccountant, PlanDraft, make_certified
from .methods.gradient_clipping import (
    DEFAULT_MAX_STEPS,
    paper_gradient_clipping_noise_std,
    paper_gradient_clipping_steps,
)
from .methods.registry import (
    available_methods,
    get_method,
    register_method,
    registered,
    unregister_method,
)
from .plans import UnlearningPlan

__all__ = [
    "plan",
    "certify",
    "CertifiedEpsilon",
    "MethodAccountant",
    "PlanDraft",
    "register_method",
    "unregister_method",
    "available_methods",
    "get_method",
    "make_certified",
    "paper_gradient_clipping_noise_std",
    "paper_gradient_clipping_steps",
]

_ACCOUNTING = ("tight", "paper")


def _check_keywords(accountant: MethodAccountant, params: Mapping, allowed: frozenset) -> None:
    for key, val in params.items():
        if key not in allowed:
            raise InvalidParameterError(
                key,
                val,
                f"is not a parameter of method {accountant.name!r}; "
                f"accepted: {', '.join(sorted(allowed))}",
            )


def plan(
    method: str,
    *,
    epsilon: float,
    delta: float,
    accounting: str = "tight",
    **params: Any,
) -> UnlearningPlan:
    """Least noise that certifies (ε, δ)-unlearning for ``method``; see the module docstring.

    The plan's ``epsilon`` is the certified ε of exactly its spec (an UPPER bound, or EXACT),
    never above the target on the feasible side; ``bound_kind`` and ``accountant`` say how.

    >>> p = plan("output_perturbation", epsilon=1.0, delta=1e-5, clip_initial=1.0)
    >>> round(p.noise_std, 4), p.steps, p.bound_kind  # analytic Gaussian, sensitivity 2·C0
    (7.4613, 0, 'exact')
    >>> g = plan("gradient_clipping", epsilon=1.0, delta=1e-5, clip_initial=1.0,
    ...          clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0)
    >>> g.certifies_target, g.epsilon <= 1.0, g.steps > 0
    (True, True, True)
    """
    eps = v.check_positive("epsilon", epsilon)
    delta = v.check_delta(delta)
    if accounting not in _ACCOUNTING:
        raise InvalidParameterError("accounting", accounting, "must be 'tight' or 'paper'")
    params = {k: val for k, val in params.items() if val is not None}
    if isinstance(method, str) and method == "auto":
        return _plan_auto(epsilon=eps, delta=delta, accounting=accounting, **params)
    accountant = get_method(method)
    _check_keywords(accountant, params, accountant.parameters)
    draft = accountant.plan(epsilon=eps, delta=delta, accounting=accounting, **params)
    return _finish(accountant, draft)


def certify(
    method: str | MethodSpec,
    *,
    delta: float,
    noise_std: float | Sequence[float] | None = None,
    steps: int | None = None,
    claimed_epsilon: float | None = None,
    **params: Any,
) -> CertifiedEpsilon:
    """Smallest certified ε (UPPER, or EXACT) of a spec, or of a method's keywords, at ``delta``.

    ``certify(spec, delta=...)`` certifies a :class:`~unlearn_theory.methods.MethodSpec` (extra
    keywords: the accountant's certify options). ``certify("gradient_clipping", delta=...,
    noise_std=..., steps=..., **params)`` builds the spec first (an unknown keyword raises
    InvalidParameterError naming it). ``claimed_epsilon``: a published or labelled ε; the
    result's ``claim_holds``/``note`` say whether the tight accountant confirms it.

    >>> c = certify("output_perturbation", delta=1e-5, noise_std=8.0, clip_initial=1.0)
    >>> round(float(c), 4), str(c.kind)
    (0.9263, 'exact')
    >>> certify(c.spec, delta=1e-5, claimed_epsilon=0.5).claim_holds
    False
    """
    delta = v.check_delta(delta)
    if claimed_epsilon is not None:
        claimed_epsilon = v.check_nonnegative("claimed_epsilon", claimed_epsilon)
    params = {k: val for k, val in params.items() if val is not None}
    if isinstance(method, MethodSpec):
        accountant = get_method(method.method)
        for key, val in (("noise_std", noise_std), ("steps", steps)):
            if val is not None:
                raise InvalidParameterError(key, val, "is part of the spec; not a certify option")
        _check_keywords(accountant, params, accountant.certify_options)
        return accountant.certify(method, delta=delta, claimed_epsilon=claimed_epsilon, **params)
    if isinstance(method, str) and method == "auto":
        raise InvalidParameterError("method", method, "certify needs a concrete method")
    accountant = get_method(method)
    _check_keywords(accountant, params, accountant.certify_parameters | accountant.certify_options)
    options = {k: val for k, val in params.items() if k in accountant.certify_options}
    configuration = {k: val for k, val in params.items() if k not in accountant.certify_options}
    if noise_std is not None:
        configuration["noise_std"] = noise_std
    if steps is not None:
        configuration["steps"] = steps
    spec = accountant.build_spec(**configuration)
    return accountant.certify(spec, delta=delta, claimed_epsilon=claimed_epsilon, **options)


def _clean(mapping: Mapping) -> dict:
    out = {}
    for key, val in mapping.items():
        if isinstance(val, float) and not math.isfinite(val):
            val = None if math.isnan(val) else ("inf" if val > 0 else "-inf")
        out[key] = val
    return out


def _finish(accountant: MethodAccountant, draft: PlanDraft) -> UnlearningPlan:
    """The shared post-condition: the plan reports its spec's certificate, flags a miss."""
    certified, spec, target = draft.certified, draft.spec, draft.target_epsilon
    if spec.method != accountant.name or certified.spec is not None and certified.spec != spec:
        raise NumericalPrecisionError(  # pragma: no cover - a method's plan is inconsistent
            f"method {accountant.name!r}: the plan's certificate is not that of its spec"
        )
    details = dict(draft.details)
    details.update({k: val for k, val in certified.details.items() if k not in details})
    notes = tuple(draft.notes)
    if certified.epsilon > target:
        reason = f" ({draft.not_certified_reason})" if draft.not_certified_reason else ""
        notes += (
            f"NOT CERTIFIED: certified epsilon={certified.epsilon:.6g} > target {target:g}"
            + reason,
        )
    return UnlearningPlan(
        method=accountant.name,
        accounting=draft.accounting,
        noise_std=float(spec.noise_std),
        steps=int(spec.steps),
        epsilon=float(certified.epsilon),
        delta=float(certified.delta),
        target_epsilon=float(target),
        bound_kind=certified.kind.value,
        accountant=certified.accountant,
        certifies_target=bool(certified.epsilon <= target),
        inputs=_clean(draft.inputs),
        paper_noise_std=None if draft.paper_noise_std is None else float(draft.paper_noise_std),
        paper_epsilon=None if draft.paper_epsilon is None else float(draft.paper_epsilon),
        details=_clean(details),
        notes=notes,
        spec=spec,
    )


def _plan_auto(*, epsilon, delta, accounting, **params):
    """Compare the applicable methods; least noise_std within the compute budget wins.

    Budget: ``max_steps`` (default 10000) caps the number of noisy steps. What each method
    does under "auto" is said by its accountant (``auto_compare``, ``auto_priority``,
    ``applicable``, ``auto_params``; e.g. model clipping plans steps=min(max_steps, 32) when
    neither noise_std nor steps is given). Block-wise plans report the per-block σ_b.
    """
    accountants = sorted(registered(), key=lambda acct: (acct.auto_priority, acct.name))
    all_params = set().union(*(acct.parameters for acct in accountants))
    for key, val in params.items():
        if key not in all_params:
            raise InvalidParameterError(key, val, "is not a parameter of any method")
    max_steps = v.check_int("max_steps", params.get("max_steps", DEFAULT_MAX_STEPS), minimum=1)
    candidates = []
    alternatives = []
    for accountant in accountants:
        name = accountant.name
        if not accountant.auto_compare:
            if accountant.applicable(params):
                alternatives.append({"method": name, "reason": accountant.auto_not_compared_reason})
            continue
        if not accountant.applicable(params):
            alternatives.append({"method": name, "reason": "not applicable: parameters missing"})
            continue
        own = accountant.auto_params(params, max_steps=max_steps)
        try:
            candidate = plan(name, epsilon=epsilon, delta=delta, accounting=accounting, **own)
        except (InvalidParameterError, NumericalPrecisionError) as err:
            alternatives.append({"method": name, "reason": f"failed: {err}"})
            continue
        if candidate.steps > max_steps or not candidate.certifies_target:
            alternatives.append(
                {
                    "method": name,
                    "noise_std": candidate.noise_std,
                    "steps": candidate.steps,
                    "epsilon": candidate.epsilon,
                    "reason": "over the compute budget"
                    if candidate.steps > max_steps
                    else "not certified",
                }
            )
            continue
        candidates.append(candidate)
    if not candidates:
        raise InvalidParameterError(
            "method", "auto", "no applicable method certifies the target within the budget"
        )
    best = min(candidates, key=lambda candidate: candidate.noise_std)
    for candidate in candidates:
        if candidate is best:
            continue
        alternatives.append(
            {
                "method": candidate.method,
                "noise_std": candidate.noise_std,
                "steps": candidate.steps,
                "epsilon": candidate.epsilon,
                "delta": candidate.delta,
                "reason": "more noise",
            }
        )
    return UnlearningPlan(
        **{
            **{name: getattr(best, name) for name in best.__dataclass_fields__},
            "alternatives": tuple(alternatives),
            "inputs": dict(best.inputs, method_requested="auto"),
            "notes": best.notes + ("auto: least noise_std among the applicable methods",),
        }
    )
