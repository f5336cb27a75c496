"""Named errors of :mod:`unlearn_torch` (all subclasses of the library's own error types).

Bad input raises a subclass of :class:`~unlearn_theory.errors.InvalidParameterError` (a
``ValueError`` whose message names the argument and its value); a run that goes wrong while it
runs raises :class:`RunFailedError` (the noise guard, a non-finite loss or parameter). A failed
run writes no certificate and no model file.
"""

from __future__ import annotations

from unlearn_theory.errors import InvalidParameterError, UnlearnError

__all__ = [
    "RunFailedError",
    "NoiseGuardError",
    "NonFiniteError",
    "RotationError",
    "UncertifiedPlanError",
    "UnsupportedMethodError",
    "FrozenParameterError",
    "UnsupportedBufferError",
    "CheckpointMismatchError",
]


class RunFailedError(UnlearnError, RuntimeError):
    """The run stopped on an error; no certificate was written.

    ``record`` (a dict, may be None) says what ran before the failure: the steps run, the spec
    re-certified for those steps and the status, for the log -- it is not a certificate.
    """

    def __init__(self, message: str, record: dict | None = None):
        super().__init__(message)
        self.record = record


class NoiseGuardError(RunFailedError):
    """The runtime noise guard saw a draw whose norm or correlation is outside its band."""


class NonFiniteError(RunFailedError):
    """A loss, gradient or parameter became NaN or infinite during the noisy phase."""


class RotationError(RunFailedError):
    """The orthogonal map of a ``partition="rotations"`` run failed its isometry check
    (‖Rv‖ ≠ ‖v‖ or RᵀRv ≠ v beyond float32 tolerance on a probe vector); nothing ran."""


class UncertifiedPlanError(InvalidParameterError):
    """The plan's certified ε exceeds its target (pass ``allow_uncertified=True`` to run it)."""


class UnsupportedMethodError(InvalidParameterError):
    """The spec needs an operation this interpreter does not run (e.g. Poisson sampling)."""


class FrozenParameterError(InvalidParameterError):
    """A parameter with ``requires_grad=False`` was not declared public."""


class UnsupportedBufferError(InvalidParameterError):
    """The model holds a buffer that is neither a normalisation statistic nor declared public."""


class CheckpointMismatchError(InvalidParameterError):
    """A checkpoint belongs to another plan, seed, starting model or retain set."""
