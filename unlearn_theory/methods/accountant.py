r"""A method's accountant, its certificate and the pieces of a plan.

:class:`MethodAccountant` is the base class of the object that turns a method's spec into a
certified ε (:meth:`MethodAccountant.certify`) and that calibrates a spec for a target
(:meth:`MethodAccountant.plan`, returning a :class:`PlanDraft`; ``unlearn_theory.planning``
applies the one shared post-condition and builds the :class:`~unlearn_theory.plans.UnlearningPlan`).
What ``plan("auto", ...)`` should do with a method is said by attributes of its accountant
(``auto_compare``, ``auto_priority``, ``auto_required``, :meth:`MethodAccountant.auto_params`),
never by its name.

:class:`CertifiedEpsilon` is the result of ``certify``: a :class:`~unlearn_theory.bounds.Bound`
whose value is the certified ε (kind "exact" or "upper" only), with the δ, the method, the spec
and, when a published label is checked, the claimed ε.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import _validate as v
from ..bounds import Bound, certifies
from ..errors import InvalidParameterError, NumericalPrecisionError
from .base import MethodSpec

__all__ = ["CertifiedEpsilon", "MethodAccountant", "PlanDraft", "make_certified"]


@dataclass(frozen=True, kw_only=True)
class CertifiedEpsilon(Bound):
    """A certified ε with its provenance: a :class:`Bound` of kind "exact" or "upper".

    ``value`` is ε (also ``.epsilon``), ``source`` the accountant and its route (also
    ``.accountant``), ``details["order"]`` the Rényi order used where one was (``.order``).
    Extra fields: ``delta``, ``method``, ``claimed_epsilon`` (a published or labelled ε, or
    None) and ``spec`` (the configuration certified, when known). ``claim_holds`` and ``note``
    say whether the claim is confirmed. ``float(result)`` is ε.
    """

    delta: float
    method: str
    claimed_epsilon: float | None = None
    spec: MethodSpec | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.value < 0:
            raise NumericalPrecisionError(
                f"certified epsilon {self.value} is not a valid upper bound"
            )
        if not certifies(self.kind):
            raise InvalidParameterError("kind", self.kind.value, "cannot certify (exact or upper)")
        object.__setattr__(self, "delta", float(self.delta))
        if self.claimed_epsilon is not None:
            object.__setattr__(self, "claimed_epsilon", float(self.claimed_epsilon))

    @property
    def epsilon(self) -> float:
        return self.value

    @property
    def accountant(self) -> str:
        return self.source

    @property
    def claim_holds(self) -> bool | None:
        """Whether ε ≤ claimed_epsilon (None when no claim was given)."""
        if self.claimed_epsilon is None:
            return None
        return self.value <= self.claimed_epsilon

    @property
    def note(self) -> str:
        """A sentence on the claim ("" without one); a flat-α label is explained (§13.1)."""
        claimed, eps = self.claimed_epsilon, self.value
        if claimed is None:
            return ""
        if self.claim_holds:
            return f"the claimed epsilon={claimed:g} is certified ({eps:.6g})"
        text = (
            f"NOT CERTIFIED: claimed epsilon={claimed:g}, but the tight accountant "
            f"certifies only epsilon={eps:.6g} (x{eps / claimed:.3g}) at delta={self.delta:g}"
        )
        flat = self.details.get("flat_alpha_epsilon")
        if flat is not None and claimed >= flat * (1 - 1e-6):
            coefficient = self.details.get("coefficient", float("nan"))
            text += (
                f"; the claim is what a flat-alpha conversion reports ({flat:.6g}): it treats the "
                f"Rényi coefficient a={coefficient:.6g} of D_alpha <= alpha*a as if D_alpha <= a "
                "at every order (docs/theory.md §13.1)"
            )
        return text

    def with_claim(self, claimed_epsilon: float | None) -> CertifiedEpsilon:
        """The same certificate checked against ``claimed_epsilon``."""
        return _rebuild(
            self.value,
            self.kind.value,
            self.source,
            dict(self.details),
            self.delta,
            self.method,
            claimed_epsilon,
            self.spec,
        )

    def __reduce__(self):  # the read-only details mapping does not pickle as is
        return (
            _rebuild,
            (
                self.value,
                self.kind.value,
                self.source,
                dict(self.details),
                self.delta,
                self.method,
                self.claimed_epsilon,
                self.spec,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"CertifiedEpsilon({self.value!r}, delta={self.delta!r}, kind={self.kind.value!r}, "
            f"accountant={self.source!r})"
        )


def _rebuild(value, kind, source, details, delta, method, claimed, spec):
    return CertifiedEpsilon(
        value=value,
        kind=kind,
        source=source,
        details=details,
        delta=delta,
        method=method,
        claimed_epsilon=claimed,
        spec=spec,
    )


def make_certified(
    epsilon,
    *,
    delta,
    kind,
    accountant,
    method,
    order=None,
    details: Mapping | None = None,
    spec: MethodSpec | None = None,
    claimed_epsilon=None,
) -> CertifiedEpsilon:
    """Build a :class:`CertifiedEpsilon`; ``order`` goes into ``details["order"]``."""
    all_details = dict(details or {})
    if order is not None:
        all_details["order"] = float(order)
    return CertifiedEpsilon(
        value=epsilon,
        kind=kind,
        source=accountant,
        details=all_details,
        delta=delta,
        method=method,
        claimed_epsilon=claimed_epsilon,
        spec=spec,
    )


@dataclass(frozen=True, kw_only=True)
class PlanDraft:
    """What a method's ``plan`` decides; ``planning`` turns it into an UnlearningPlan.

    ``certified`` must be ``accountant.certify(spec, delta=...)`` with default options (the
    plan's ε IS the certificate of its spec). ``noise_std`` and ``steps`` of the plan are read
    from the spec. ``not_certified_reason`` completes the "NOT CERTIFIED" note that the shared
    post-condition adds when ε exceeds the target.
    """

    spec: MethodSpec
    certified: CertifiedEpsilon
    accounting: str
    target_epsilon: float
    inputs: Mapping[str, Any]
    paper_noise_std: float | None = None
    paper_epsilon: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    not_certified_reason: str = ""


class MethodAccountant:
    """Base class of a method's accountant.

    Subclasses set ``name``, ``spec_class`` (the method's :class:`MethodSpec`),
    ``plan_parameters`` (keywords of ``plan`` beyond the spec fields, e.g. ``max_steps``),
    ``certify_options`` (keywords of ``certify`` that choose a bound, not a configuration) and
    ``description``; they implement :meth:`certify_spec` and :meth:`plan`, and may override
    :meth:`build_spec` (how ``plan``/``certify`` keywords map to the spec) and the auto hints.
    """

    name: ClassVar[str] = ""
    spec_class: ClassVar[type[MethodSpec] | None] = None
    plan_parameters: ClassVar[frozenset] = frozenset()
    certify_options: ClassVar[frozenset] = frozenset()
    description: ClassVar[str] = ""

    #: auto hints: whether ``plan("auto")`` compares this method; if not, why (reported as an
    #: alternative when the method applies); rank among the compared methods (ties: name);
    #: the keywords that must be given for the method to apply
    auto_compare: ClassVar[bool] = True
    auto_not_compared_reason: ClassVar[str] = ""
    auto_priority: ClassVar[int] = 100
    auto_required: ClassVar[tuple[str, ...]] = ()
    #: parameters of which ``plan`` needs at least one (it chooses the others), e.g. langevin's
    #: ("steps", "noise_std"); () when ``plan`` can choose all of them. Read by the command
    #: line, which names them with the other missing parameters in one error.
    plan_requires_one_of: ClassVar[tuple[str, ...]] = ()

    # -- parameters ----------------------------------------------------------------------------
    @property
    def parameters(self) -> frozenset:
        """Keywords accepted by ``plan``: the spec fields and ``plan_parameters``."""
        return frozenset(self.spec_class.field_names()) | self.plan_parameters

    @property
    def certify_parameters(self) -> frozenset:
        """Keywords accepted by the old-form ``certify(name, ...)``: spec fields and aliases."""
        return frozenset(self.spec_class.field_names()) | {"noise_std", "steps"}

    def build_spec(self, **params) -> MethodSpec:
        """The spec from keyword arguments (unknown keyword: InvalidParameterError naming it)."""
        return self.spec_class.from_params(**params)

    # -- certification -------------------------------------------------------------------------
    def certify(
        self, spec: MethodSpec, *, delta, claimed_epsilon=None, **options
    ) -> CertifiedEpsilon:
        """Smallest certified ε of ``spec`` at ``delta`` (UPPER, or EXACT)."""
        if not isinstance(spec, self.spec_class):
            raise InvalidParameterError(
                "spec", spec, f"must be a {self.spec_class.__name__} for method {self.name!r}"
            )
        delta = v.check_delta(delta)
        for key, val in options.items():
            if key not in self.certify_options:
                accepted = ", ".join(sorted(self.certify_options)) or "none"
                raise InvalidParameterError(
                    key,
                    val,
                    f"is not a certify option of method {self.name!r}; accepted: {accepted}",
                )
        result = self.certify_spec(spec, delta=delta, **options)
        if claimed_epsilon is not None:
            result = result.with_claim(v.check_nonnegative("claimed_epsilon", claimed_epsilon))
        return result

    def certify_spec(self, spec, *, delta, **options) -> CertifiedEpsilon:  # pragma: no cover
        raise NotImplementedError

    def certified(
        self, spec, epsilon, *, delta, kind="upper", accountant, order=None, details=None
    ):
        """Shorthand for :func:`make_certified` with this method's name and ``spec``."""
        return make_certified(
            epsilon,
            delta=delta,
            kind=kind,
            accountant=accountant,
            method=self.name,
            order=order,
            details=details,
            spec=spec,
        )

    # -- planning ------------------------------------------------------------------------------
    def plan(self, *, epsilon, delta, accounting, **params) -> PlanDraft:  # pragma: no cover
        raise NotImplementedError

    # -- auto hints ----------------------------------------------------------------------------
    def applicable(self, params: Mapping) -> bool:
        """Whether "auto" can plan this method from ``params`` (``auto_required`` all given)."""
        return bool(self.auto_required) and all(k in params for k in self.auto_required)

    def auto_params(self, params: Mapping, *, max_steps: int) -> dict:
        """The keywords "auto" passes to :meth:`plan` (its own, plus the step budget)."""
        own = {k: val for k, val in params.items() if k in self.parameters}
        if "max_steps" in self.parameters:
            own["max_steps"] = max_steps
        return own


def require(params: Mapping, name: str, method: str):
    """``params[name]``, or InvalidParameterError naming ``name`` when it is missing."""
    if params.get(name) is None:
        raise InvalidParameterError(name, None, f"is required for method {method!r}")
    return params[name]


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
