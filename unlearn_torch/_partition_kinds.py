"""Names and tolerances of the block partitions (:mod:`unlearn_torch.blocks`), without torch, so
that :mod:`unlearn_torch.certificate` can check a recorded partition where torch is absent."""

from __future__ import annotations

__all__ = ["PARTITION_KINDS", "ROTATION_TOLERANCE"]

PARTITION_KINDS = ("rows", "random", "layers", "rotations")
#: largest relative float32 isometry error (|‖Rv‖ − ‖v‖|/‖v‖, ‖RᵀRv − v‖/‖v‖, ‖RRᵀv − v‖/‖v‖)
#: of a "rotations" map; measured errors are about 2e-7
ROTATION_TOLERANCE = 1e-4
