"""unlearn_torch: the thin layer that runs an ``unlearn_theory`` plan on CPU or GPU.

It takes every noise scale, step count and radius from the plan's method spec (never deciding
them itself), runs the spec's update rule with a torch interpreter, proves the noise with a
runtime guard, and writes a certificate of what really ran; the layers and their rules are described in the docs folder (architecture).

Public API (imported lazily, so that ``unlearn_torch.certificate`` works without torch for
plan files)::

    unlearn(model, retain, plan, *, loss_fn, seed=None, device=None, fine_tune=None,
            checkpoint=None, forget_ids=None, out=None, allow_uncertified=False,
            eval_data=None, public=(), partition="rows", ...) -> UnlearningRun
    retrain(model_factory, retain, *, loss_fn, epochs, ...) -> RetrainResult
    train_dp_sgd(model, data, plan, *, loss_fn, seed=None, device=None, forget_ids=None,
                 out=None, eval_data=None, ...) -> UnlearningRun   (dp_sgd_group, via Opacus)
    verify_certificate(path, model_path=None, *, seed_path=None, record_path=None) -> list[str]
    verify_plan(path) -> list[str]
    replay_certificate(path, model_before, retain, *, loss_fn, seed, record_path=None)
        -> list[str]
"""

from __future__ import annotations

import importlib

_LAZY = {
    "unlearn": ("unlearn_torch.run", "unlearn"),
    "UnlearningRun": ("unlearn_torch.run", "UnlearningRun"),
    "LargeNoiseWarning": ("unlearn_torch.run", "LargeNoiseWarning"),
    "evaluate": ("unlearn_torch.run", "evaluate"),
    "replay_certificate": ("unlearn_torch.run", "replay_certificate"),
    "retrain": ("unlearn_torch.baselines", "retrain"),
    "RetrainResult": ("unlearn_torch.baselines", "RetrainResult"),
    "train_dp_sgd": ("unlearn_torch.baselines", "train_dp_sgd"),
    "OpacusModelError": ("unlearn_torch.baselines", "OpacusModelError"),
    "verify_certificate": ("unlearn_torch.certificate", "verify_certificate"),
    "verify_plan": ("unlearn_torch.certificate", "verify_plan"),
    "NoiseGuardError": ("unlearn_torch.errors", "NoiseGuardError"),
    "NonFiniteError": ("unlearn_torch.errors", "NonFiniteError"),
    "RunFailedError": ("unlearn_torch.errors", "RunFailedError"),
    "RotationError": ("unlearn_torch.errors", "RotationError"),
    "UncertifiedPlanError": ("unlearn_torch.errors", "UncertifiedPlanError"),
    "UnsupportedMethodError": ("unlearn_torch.errors", "UnsupportedMethodError"),
    "FrozenParameterError": ("unlearn_torch.errors", "FrozenParameterError"),
    "UnsupportedBufferError": ("unlearn_torch.errors", "UnsupportedBufferError"),
    "CheckpointMismatchError": ("unlearn_torch.errors", "CheckpointMismatchError"),
    "per_example_grad_norms": ("unlearn_torch.per_sample", "per_example_grad_norms"),
    "per_example_loss": ("unlearn_torch.per_sample", "per_example_loss"),
    "clipped_gradient": ("unlearn_torch.per_sample", "clipped_gradient"),
    "NormRecorder": ("unlearn_torch.per_sample", "NormRecorder"),
    "ForgetSetPrivacy": ("unlearn_torch.per_sample", "ForgetSetPrivacy"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'unlearn_torch' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
