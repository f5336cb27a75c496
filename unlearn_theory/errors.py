"""Exceptions raised by every public function of :mod:`unlearn_theory`.

Two failure kinds exist, and only two:

* :class:`InvalidParameterError` -- the caller passed something outside the validity domain
  (a non-finite number, ``delta`` outside (0, 1), a non-integer step count, ...). It subclasses
  :class:`ValueError` and its message always names the argument and the offending value.
* :class:`NumericalPrecisionError` -- the arguments are valid, but float64 (and the mpmath
  fallback, where one exists) cannot establish a *certified* answer. Raised instead of
  returning a number that could be on the optimistic side.
"""

from __future__ import annotations

__all__ = ["InvalidParameterError", "NumericalPrecisionError", "UnlearnError"]


class UnlearnError(Exception):
    """Base class of the library's own errors."""


class InvalidParameterError(UnlearnError, ValueError):
    """An argument is outside the validity domain; the message names argument and value."""

    def __init__(self, name: str, value: object, requirement: str):
        self.name = name
        self.value = value
        self.requirement = requirement
        super().__init__(f"invalid {name}={_short_repr(value)}: {requirement}")


class NumericalPrecisionError(UnlearnError, ArithmeticError):
    """A certified (never optimistic) answer cannot be computed at the available precision."""


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
