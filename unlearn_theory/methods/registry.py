"""The open registry of methods: ``register_method``, ``get_method``, ``available_methods``.

Every module of :mod:`unlearn_theory.methods` registers its accountant when imported; a method
defined elsewhere (a test, a user's module) registers itself the same way.
"""

from __future__ import annotations

from ..errors import InvalidParameterError
from .accountant import MethodAccountant

__all__ = ["register_method", "unregister_method", "get_method", "available_methods"]

_REGISTRY: dict[str, MethodAccountant] = {}


def register_method(accountant: MethodAccountant, *, replace: bool = False) -> MethodAccountant:
    """Register ``accountant`` under ``accountant.name`` (raise if taken unless ``replace``).

    The accountant needs a ``spec_class`` (a :class:`~.base.MethodSpec` subclass whose
    ``method`` is the same name). Returns the accountant.
    """
    if not isinstance(accountant, MethodAccountant):
        raise InvalidParameterError("accountant", accountant, "must be a MethodAccountant")
    name = accountant.name
    if not isinstance(name, str) or not name or name == "auto":
        raise InvalidParameterError("accountant.name", name, "must be a non-empty name, not 'auto'")
    spec_class = accountant.spec_class
    if spec_class is None or getattr(spec_class, "method", None) != name:
        raise InvalidParameterError(
            "accountant.spec_class",
            spec_class,
            f"must be a MethodSpec subclass with method = {name!r}",
        )
    if name in _REGISTRY and not replace:
        raise InvalidParameterError("accountant.name", name, "is already registered")
    _REGISTRY[name] = accountant
    return accountant


def unregister_method(name: str) -> None:
    """Remove a registered method (tests that register a toy method clean up with this)."""
    get_method(name)
    del _REGISTRY[name]


def available_methods() -> tuple[str, ...]:
    """Registered method names, sorted, plus "auto"."""
    return tuple(sorted(_REGISTRY)) + ("auto",)


def get_method(name) -> MethodAccountant:
    """The registered accountant called ``name`` (InvalidParameterError naming "method")."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(
            "method", name, f"unknown method; available: {', '.join(available_methods())}"
        )
    return _REGISTRY[name]


def registered() -> tuple[MethodAccountant, ...]:
    """The registered accountants, in name order."""
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))
