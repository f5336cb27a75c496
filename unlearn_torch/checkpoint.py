"""Checkpoint and resume of the noisy phase.

A checkpoint is a folder with two files:

``state.pt``
    tensors only, loadable with ``torch.load(..., weights_only=True)``: the flat parameter
    vector ``x`` (and, for a ``partition="rotations"`` run, its state z = Rx, from which x is
    recomputed), the model's buffers, and the guard's previous draw per block;
``state.json``
    the sidecar: schema, plan SHA-256, the next step to run, the seed commitment, the SHA-256
    of the starting model and of the retain ids, and the host-side records so far (projection
    norms, clip norms, losses, guard statistics, history).

Both are written atomically (temporary file + os.replace; the tensors first, so a sidecar always
points at complete tensors). Noise is keyed by (seed, step, block), mini-batches by (seed, step),
so a run resumed from step t with the same seed draws exactly what the uninterrupted run draws:
on the CPU the final model is equal bit for bit. A checkpoint whose plan, seed commitment,
starting model or retain set differ from the call's is refused with
:class:`~unlearn_torch.errors.CheckpointMismatchError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .certificate import write_json_atomic
from .errors import CheckpointMismatchError

__all__ = ["CHECKPOINT_SCHEMA", "save_checkpoint", "load_checkpoint", "checkpoint_exists"]

CHECKPOINT_SCHEMA = "unlearn-checkpoint/1"


def checkpoint_exists(folder) -> bool:
    folder = Path(folder)
    return (folder / "state.json").is_file() and (folder / "state.pt").is_file()


def save_checkpoint(folder, *, tensors: dict, sidecar: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.pt.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        torch.save({k: val.detach().to("cpu") for k, val in tensors.items()}, tmp)
        os.replace(tmp, folder / "state.pt")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    write_json_atomic(folder / "state.json", dict(sidecar, schema=CHECKPOINT_SCHEMA))


def load_checkpoint(folder, *, expect: dict) -> tuple[dict, dict]:
    """(tensors, sidecar) of the checkpoint in ``folder``; every key of ``expect`` (plan_sha256,
    seed_commitment, model_sha256_before, retain_ids_sha256, dim, partition) must match the
    sidecar."""
    folder = Path(folder)
    try:
        sidecar = json.loads((folder / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointMismatchError(
            "checkpoint", str(folder), f"unreadable sidecar: {exc}"
        ) from None
    if sidecar.get("schema") != CHECKPOINT_SCHEMA:
        raise CheckpointMismatchError(
            "checkpoint", sidecar.get("schema"), f"is not a {CHECKPOINT_SCHEMA} checkpoint"
        )
    names = {
        "plan_sha256": "was written for another plan",
        "seed_commitment": "was written with another seed (pass the run's seed to resume)",
        "model_sha256_before": "was written for another starting model",
        "retain_ids_sha256": "was written for another retain set",
        "dim": "was written for a model with another number of noised parameters",
        "partition": "was written with another block partition",
    }
    for key, why in names.items():
        if key in expect and sidecar.get(key) != expect[key]:
            raise CheckpointMismatchError("checkpoint", str(folder), f"{why} ({key} differs)")
    tensors = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    return tensors, sidecar
