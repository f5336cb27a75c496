r"""One vocabulary for every number that can reach a certificate: :class:`Bound` and its kind.

A privacy quantity computed by the library is one of four kinds (:class:`BoundKind`):

``exact``
    the true value (up to outward rounding in the last digits, which only adds privacy loss);
``upper``
    a proven upper bound on the privacy loss (ε, δ, a Rényi divergence, ...);
``lower``
    a proven lower bound (an audit's certified lower confidence bound, the lower end of a PLD
    bracket);
``estimate``
    a point estimate with no direction guaranteed (a Monte Carlo mean, a PLD grid midpoint).

Only ``exact`` and ``upper`` certify: a certificate may err only on the side of more privacy
loss. :func:`certifies` is the one place that rule is written.

A :class:`Bound` is frozen and carries its value, its kind, the ``source`` that produced it
(which accountant or estimator, with its route) and ``details`` (the Rényi order used, the
grid, the confidence level, ...). ``float(b)`` gives the value, so a bound drops into numeric
code where its provenance is no longer needed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import InvalidParameterError, NumericalPrecisionError

__all__ = ["BoundKind", "Bound", "certifies", "CERTIFYING_KINDS"]


class BoundKind(str, enum.Enum):
    """Direction of a computed privacy quantity (a ``str``: ``BoundKind.UPPER == "upper"``)."""

    EXACT = "exact"
    UPPER = "upper"
    LOWER = "lower"
    ESTIMATE = "estimate"

    def __str__(self) -> str:  # "upper", not "BoundKind.UPPER", in messages and JSON
        return self.value

    @classmethod
    def parse(cls, kind: object) -> BoundKind:
        """``kind`` as a :class:`BoundKind` (InvalidParameterError naming "kind" otherwise)."""
        if isinstance(kind, cls):
            return kind
        try:
            return cls(kind)
        except ValueError:
            raise InvalidParameterError(
                "kind", kind, f"must be one of {', '.join(k.value for k in cls)}"
            ) from None


#: the kinds that may certify a privacy guarantee
CERTIFYING_KINDS = frozenset({BoundKind.EXACT, BoundKind.UPPER})


def certifies(kind: object) -> bool:
    """True when a number of this kind may certify: exact or upper, nothing else."""
    return BoundKind.parse(kind) in CERTIFYING_KINDS


@dataclass(frozen=True)
class Bound:
    """A privacy quantity with its direction and provenance.

    Fields
    ------
    value : float
        The number (ε, δ, log δ, a Rényi divergence, ... -- ``source`` says which). Never NaN;
        ``+inf`` is allowed for an upper bound that certifies nothing finite.
    kind : BoundKind
        exact, upper, lower or estimate (a string is accepted and parsed).
    source : str
        The accountant, estimator or closed form that produced the value, with its route.
    details : Mapping
        Extras: the Rényi order used (``details["order"]``), grid sizes, confidence, ...
        Stored read-only.
    """

    value: float
    kind: BoundKind
    source: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        try:
            value = float(self.value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidParameterError("value", self.value, "must be a real number") from None
        if math.isnan(value):
            raise NumericalPrecisionError(f"a {self.kind} bound from {self.source!r} is NaN")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "kind", BoundKind.parse(self.kind))
        if not isinstance(self.source, str):
            raise InvalidParameterError("source", self.source, "must be a string")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details or {})))

    @property
    def certifies(self) -> bool:
        """True for exact and upper bounds (see :func:`certifies`)."""
        return self.kind in CERTIFYING_KINDS

    @property
    def order(self) -> float | None:
        """The Rényi order the bound was converted at, where one was used (else None)."""
        order = self.details.get("order")
        return None if order is None else float(order)

    def __float__(self) -> float:
        return self.value

    def require_certifying(self, what: str = "value") -> Bound:
        """Return self when it certifies; raise NumericalPrecisionError naming ``what`` if not."""
        if not self.certifies:
            raise NumericalPrecisionError(
                f"{what} is a {self.kind} bound ({self.source}); only exact or upper bounds certify"
            )
        return self

    def to_dict(self) -> dict:
        """Plain-JSON form: value ("inf" for +inf), kind, source, details."""
        val: Any = self.value
        if math.isinf(val):
            val = "inf" if val > 0 else "-inf"
        return {
            "value": val,
            "kind": self.kind.value,
            "source": self.source,
            "details": dict(self.details),
        }

    def __repr__(self) -> str:
        return f"Bound({self.value!r}, kind={self.kind.value!r}, source={self.source!r})"
