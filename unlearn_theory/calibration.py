r"""One calibration primitive: the returned configuration was evaluated and certifies the target.

A planner first computes a candidate (a noise level, usually from an inverse formula or a
search on a proxy), then must make sure that the number it reports is what the accountant
certifies for exactly that configuration. :func:`calibrate_decreasing` does that for a knob x
whose certified ε decreases as x grows (more noise, fewer privacy loss): it evaluates the
candidate and, while the certificate exceeds the target, steps x up along the ladder
x·(1 + 10⁻¹²)·(1 + 2·10⁻¹²)·(1 + 4·10⁻¹²)... (relative steps doubling), so a candidate that
misses by a rounding error moves by a rounding error, and one that misses by a lot still
lands in about 40 evaluations. Soundness does not need monotonicity: whatever is returned was
evaluated and certifies; monotonicity only makes the ladder end quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import NumericalPrecisionError

__all__ = ["calibrate_decreasing"]


def calibrate_decreasing(
    evaluate: Callable[[float], Any],
    target: float,
    start: float,
    *,
    first_step: float = 1e-12,
    max_evaluations: int = 80,
    what: str = "calibration",
) -> tuple[float, Any]:
    """Smallest x on the ladder from ``start`` whose evaluation certifies ``target``.

    ``evaluate(x)`` returns a certificate (anything with ``float(result)`` = its ε, e.g. a
    :class:`~unlearn_theory.methods.accountant.CertifiedEpsilon`). Returns ``(x, result)`` with
    ``float(result) <= target`` and ``result == evaluate(x)``. Raises NumericalPrecisionError
    naming ``what`` when ``max_evaluations`` rungs do not certify.
    """
    x = start
    relative_step = first_step
    for _ in range(max_evaluations):
        result = evaluate(x)
        if float(result) <= target:
            return x, result
        x *= 1.0 + relative_step
        relative_step *= 2.0
    raise NumericalPrecisionError(f"{what}: calibrated noise does not re-certify the target")
