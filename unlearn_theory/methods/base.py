r"""What a method is: a frozen spec, its accountant, its paper form and its update rule.

:class:`MethodSpec` is the base of every method's typed, keyword-only, frozen configuration
(``GradientClippingSpec``, ``ModelClippingSpec``, ...). A spec is *complete*: it holds every
number that the accountant needs to certify it (noise and step count included), so
``certify(spec, delta=...)`` needs nothing else, and every number an interpreter needs to run it
(:meth:`MethodSpec.update_rule`). Specs validate in ``__post_init__`` and raise
:class:`~unlearn_theory.errors.InvalidParameterError` naming the argument and the value.

Specs serialise to JSON objects tagged with their method name (``to_dict`` / ``spec_from_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from ..errors import InvalidParameterError
from ..update_rule import UpdateRule

__all__ = ["MethodSpec", "spec_class", "spec_from_dict", "SPEC_CLASSES"]

#: method name -> spec class (filled by :meth:`MethodSpec.__init_subclass__`)
SPEC_CLASSES: dict[str, type[MethodSpec]] = {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """Base class of the per-method specs. Subclasses set ``method`` (a ClassVar)."""

    method: ClassVar[str] = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        name = cls.__dict__.get("method")
        if name:
            SPEC_CLASSES[name] = cls

    def _check(self, name: str, validator, *, optional: bool = False, **kw) -> None:
        """Store ``validator(name, value, **kw)`` as field ``name`` (a None value is kept as
        it is when ``optional``); the validators of ``unlearn_theory._validate`` name the
        argument and the value in their errors."""
        value = getattr(self, name)
        if optional and value is None:
            return
        object.__setattr__(self, name, validator(name, value, **kw))

    # -- the update rule ----------------------------------------------------------------------
    def update_rule(self) -> UpdateRule:  # pragma: no cover - every subclass overrides it
        """The ordered operations that run this configuration (see :mod:`..update_rule`)."""
        raise NotImplementedError

    @property
    def steps_total(self) -> int:
        """Number of noisy steps the update rule runs."""
        return self.update_rule().steps

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON object: ``{"method": name, <field>: value, ...}`` (tuples as lists)."""
        out: dict[str, Any] = {"method": self.method}
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            out[f.name] = list(val) if isinstance(val, tuple) else val
        return out

    def replace(self, **changes) -> MethodSpec:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def required_fields(cls) -> tuple[str, ...]:
        """Fields without a default (what a caller must give)."""
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )

    @classmethod
    def from_params(cls, **params) -> MethodSpec:
        """Build from keyword arguments; an unknown keyword raises InvalidParameterError naming
        it, a missing required one raises naming it (never a TypeError)."""
        names = cls.field_names()
        for key, val in params.items():
            if key not in names:
                raise InvalidParameterError(
                    key,
                    val,
                    f"is not a parameter of method {cls.method!r}; accepted: {', '.join(names)}",
                )
        for key in cls.required_fields():
            if params.get(key) is None:
                raise InvalidParameterError(key, None, f"is required for method {cls.method!r}")
        return cls(**{k: val for k, val in params.items() if val is not None})


def spec_class(method: str) -> type[MethodSpec]:
    """The spec class of ``method`` (InvalidParameterError naming "method" if unknown)."""
    try:
        return SPEC_CLASSES[method]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            "method", method, f"unknown method; known: {', '.join(sorted(SPEC_CLASSES))}"
        ) from None


def spec_from_dict(data: dict) -> MethodSpec:
    """Rebuild a spec from :meth:`MethodSpec.to_dict` output (validated)."""
    if not isinstance(data, dict) or "method" not in data:
        raise InvalidParameterError("spec", data, "must be a JSON object with a 'method' field")
    cls = spec_class(data["method"])
    kw = {k: val for k, val in data.items() if k != "method"}
    for k, val in kw.items():
        if isinstance(val, list):
            kw[k] = tuple(val)
        elif val == "inf":
            kw[k] = math.inf
    return cls.from_params(**kw)
