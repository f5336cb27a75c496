"""Reference baselines: retraining from scratch on the retain data.

Retraining is the gold standard that unlearning is compared against: a fresh model, trained on
the retain set only, never saw the forget set (no certificate is needed for it). DP-SGD trained
from the start (method ``"dp_sgd_group"``) runs through Opacus in a later issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

from .data import as_indexed
from .run import _fine_tune_config, train_epochs

__all__ = ["RetrainResult", "retrain"]


@dataclass
class RetrainResult:
    """The retrained model and its per-epoch history (train loss, held-out loss/accuracy)."""

    model: nn.Module
    history: list = field(default_factory=list)


def retrain(
    model_factory,
    retain,
    *,
    loss_fn,
    epochs: int,
    learning_rate: float = 0.05,
    batch_size: int = 64,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    seed: int = 0,
    device=None,
    eval_data=None,
    progress=None,
) -> RetrainResult:
    """Train ``model_factory()`` on ``retain`` for ``epochs`` epochs of mini-batch training.

    Randomness is explicit: the factory is called under ``torch.random.fork_rng`` seeded with
    ``seed`` (initialisation), and batches come from a generator seeded with ``seed``.
    """
    if not callable(model_factory):
        raise InvalidParameterError("model_factory", model_factory, "must be callable() -> Module")
    seed = v.check_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_factory()
    if not isinstance(model, nn.Module):
        raise InvalidParameterError("model_factory", model, "must return a torch nn.Module")
    if device is None:
        device = next(iter(model.parameters())).device
    model = model.to(device)
    data = as_indexed("retain", retain, device)
    ev = None if eval_data is None else as_indexed("eval_data", eval_data, device)
    cfg = _fine_tune_config(
        {
            "epochs": epochs,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "momentum": momentum,
            "weight_decay": weight_decay,
        }
    )
    history: list = []
    gen = torch.Generator().manual_seed(seed)
    train_epochs(
        model,
        data,
        loss_fn,
        cfg,
        generator=gen,
        eval_data=ev,
        history=history,
        phase="retrain",
        progress=progress,
    )
    return RetrainResult(model=model, history=history)
