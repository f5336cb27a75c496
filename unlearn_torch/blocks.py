r"""Coordinate partitions of the flat parameter vector for block-wise scheduling.

Block-wise gradient clipping (Dolgova & Stich 2026, arXiv 2601.05134; docs/theory.md §6) splits
the d coordinates into k disjoint blocks; phase i moves only the coordinates of block i. The
bound holds for *any* fixed partition chosen independently of the data, so the choice is an
engineering one; it is recorded in the certificate (kind, seed, block sizes and a SHA-256 of the
assignment). Kinds:

``"rows"`` (default)
    the rows (first axis) of every parameter tensor are split into k contiguous, near-equal row
    groups, group j of tensor p going to block (j + p) mod k (the rotation spreads tensors with
    fewer than k rows, such as biases, over the blocks);
``"random"``
    a uniformly random partition of the coordinates into k near-equal blocks, from a seeded
    CPU generator (``seed`` is recorded);
``"layers"``
    whole layers (parameters grouped by their owning module), the list of layers split into k
    contiguous groups; needs at least k layers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

__all__ = ["PARTITIONS", "Partition", "make_partition"]

PARTITIONS = ("rows", "random", "layers")


@dataclass
class Partition:
    """``assignment[i]`` = block of flat coordinate i (int64, CPU)."""

    kind: str
    blocks: int
    assignment: torch.Tensor
    seed: int | None = None
    _indices: dict = field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> list[int]:
        return torch.bincount(self.assignment, minlength=self.blocks).tolist()

    def index(self, block: int, device) -> torch.Tensor:
        """Sorted flat indices of block ``block`` on ``device`` (cached)."""
        key = (block, str(device))
        if key not in self._indices:
            idx = torch.nonzero(self.assignment == block, as_tuple=False).view(-1)
            self._indices[key] = idx.to(device)
        return self._indices[key]

    def sha256(self) -> str:
        return hashlib.sha256(self.assignment.to(torch.int64).numpy().tobytes()).hexdigest()

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "blocks": self.blocks,
            "sizes": self.sizes,
            "seed": self.seed,
            "assignment_sha256": self.sha256(),
        }


def make_partition(layout, blocks: int, kind: str = "rows", *, seed: int = 0) -> Partition:
    """Partition of the flat vector described by ``layout`` (a list of (name, shape, numel)
    in flat order) into ``blocks`` non-empty blocks."""
    k = v.check_int("blocks", blocks, minimum=1)
    if kind not in PARTITIONS:
        raise InvalidParameterError("partition", kind, f"must be one of {PARTITIONS}")
    d = sum(n for _, _, n in layout)
    if kind == "random":
        seed = v.check_int("partition_seed", seed, minimum=0)
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(d, generator=gen)
        assignment = torch.empty(d, dtype=torch.int64)
        assignment[perm] = torch.arange(d) % k
    elif kind == "rows":
        seed = None
        parts = []
        for p, (_, shape, n) in enumerate(layout):
            rows = shape[0] if len(shape) >= 1 and shape[0] > 0 else 1
            per_row = n // rows
            row_block = torch.empty(rows, dtype=torch.int64)
            for j, grp in enumerate(torch.tensor_split(torch.arange(rows), min(k, rows))):
                row_block[grp] = (j + p) % k
            parts.append(row_block.repeat_interleave(per_row))
        assignment = torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
    else:  # layers
        seed = None
        owners: list[str] = []
        for name, _, _ in layout:
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            if not owners or owners[-1] != owner:
                owners.append(owner)
        if len(owners) < k:
            raise InvalidParameterError(
                "blocks", k, f"partition='layers' needs at least {k} layers; the model has {owners}"
            )
        layer_block = {}
        for j, grp in enumerate(torch.tensor_split(torch.arange(len(owners)), k)):
            for i in grp.tolist():
                layer_block[owners[i]] = j
        parts = []
        for name, _, n in layout:
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            parts.append(torch.full((n,), layer_block[owner], dtype=torch.int64))
        assignment = torch.cat(parts)
    part = Partition(kind=kind, blocks=k, assignment=assignment, seed=seed)
    empty = [i for i, s in enumerate(part.sizes) if s == 0]
    if empty:
        raise InvalidParameterError(
            "blocks", k, f"partition={kind!r} leaves blocks {empty} empty (d={d} coordinates)"
        )
    return part
