r"""``unlearn``: run a plan's update rule on a torch model and write a certificate of what ran.

This layer never chooses a noise scale, a step count or a radius: every number comes from the
plan's method spec (``plan.spec``), whose update rule (:meth:`MethodSpec.update_rule`) the
torch :class:`~unlearn_torch.interpreter.Interpreter` runs op by op. The guarantee in the
certificate is the accountant's (ε, δ) for the spec that actually ran (docs/theory.md §6 for the
gradient-clipping family; the accountant's own references for the others).

Coverage. Every trainable parameter is noised (a parameter the loss does not reach gets decay
and noise as if its gradient were zero). A frozen parameter (``requires_grad=False``) must be
declared public (``public=[name, ...]``): public parameters are held fixed -- they must not
depend on the forget set -- and are not noised. Buffers: normalisation running statistics
(BatchNorm and friends) are reset before the noisy phase and recomputed on the retain data
after it (a forward pass in training mode with cumulative averaging: post-processing of the
unlearned parameters on retain data only); any other buffer must be declared public or the
model is refused (:class:`~unlearn_torch.errors.UnsupportedBufferError`). The noisy phase runs
in float32, with the model in training mode; the model's own randomness (dropout) is keyed by
(seed, step) so that resume and replay are exact.

Failure. A noise-guard violation or a non-finite loss/parameter raises a
:class:`~unlearn_torch.errors.RunFailedError` carrying a record of what ran; no certificate, no
model and no seed file are written. A stop (``stop`` callback, or Ctrl-C, honoured at the next
step boundary) ends the noisy phase early: what ran is re-certified (the spec with the steps
actually run; ε = inf when no bound applies) and the certificate says ``status: "stopped"``.
"""

from __future__ import annotations

import copy
import math
import platform
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import unlearn_theory
from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.methods import MethodSpec
from unlearn_theory.update_rule import AddNoise, Gradient, GradientNoise

from . import certificate as C
from . import distributed as _dist
from .blocks import PARTITIONS, make_partition
from .checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from .data import IndexedData, as_indexed, ids_sha256
from .errors import (
    CheckpointMismatchError,
    FrozenParameterError,
    NonFiniteError,
    RunFailedError,
    UncertifiedPlanError,
    UnsupportedBufferError,
    UnsupportedMethodError,
)
from .interpreter import FlatParameters, Interpreter, check_rule_supported
from .noise import (
    KEY_SCHEME,
    NoiseGuard,
    NoiseSource,
    _check_seed,
    check_commitment,
    commit_seed,
    new_seed,
)

__all__ = ["UnlearningRun", "LargeNoiseWarning", "unlearn", "evaluate", "replay_certificate"]

_NORM_TYPES = (nn.modules.batchnorm._NormBase,)
_RANDOM_TYPES = (nn.modules.dropout._DropoutNd,)


class LargeNoiseWarning(UserWarning):
    """The planned noise is large against the parameter scale."""


@dataclass
class UnlearningRun:
    """Result of :func:`unlearn`: the model, the PUBLIC certificate (a dict, as written to
    certificate.json), the PRIVATE run record (``record``, as written to run_record.json), the
    history (private too) and the status."""

    model: nn.Module
    certificate: dict
    history: list = field(default_factory=list)
    status: str = "completed"
    spec: MethodSpec | None = None
    spec_ran: MethodSpec | None = None
    paths: dict = field(default_factory=dict)
    record: dict | None = None  # the private run record (see certificate.split_certificate)

    @property
    def epsilon(self) -> float:
        return self.certificate["guarantee"]["epsilon"]

    @property
    def delta(self) -> float:
        return self.certificate["guarantee"]["delta"]


# -- small helpers ----------------------------------------------------------------------------
def _progress(total: int, desc: str, enabled):
    """A tqdm bar when tqdm is installed and stderr is a terminal (or ``enabled`` is True)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


def _is_classification(y: torch.Tensor) -> bool:
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        return True
    if y.is_floating_point():
        return bool(((y == 0) | (y == 1)).all())
    return False


@torch.no_grad()
def evaluate(model: nn.Module, data, loss_fn, *, device=None, chunk_size: int = 1024) -> dict:
    """Mean loss and (for class or 0/1 targets) accuracy of ``model`` on ``data``, eval mode."""
    if device is None:
        device = next(iter(model.parameters())).device
    data = as_indexed("eval_data", data, device)
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = 0
    classify = True
    try:
        for idx in data.chunks(chunk_size):
            X, y = data.get(idx)
            out = model(X)
            loss_sum += float(loss_fn(out, y)) * idx.numel()
            if classify and _is_classification(y):
                if out.ndim >= 2 and out.shape[-1] > 1:
                    pred = out.argmax(dim=-1)
                    correct += int((pred == y.view(pred.shape)).sum())
                else:
                    pred = out.reshape(-1) > 0
                    correct += int((pred == y.reshape(-1).bool()).sum())
            else:
                classify = False
    finally:
        model.train(was_training)
    return {"loss": loss_sum / data.n, "accuracy": correct / data.n if classify else None}


def _resolve_plan(plan, delta):
    """(spec, delta, target_epsilon, claimed_epsilon, plan_record)."""
    spec = C.spec_of_plan(plan)
    if not isinstance(spec, MethodSpec):
        raise InvalidParameterError("plan", type(plan).__name__, "does not give a MethodSpec")
    if isinstance(plan, MethodSpec):
        record = {"spec": spec.to_dict()}
        target = None
        claimed = None
        plan_delta = None
    else:
        record = plan.to_dict() if hasattr(plan, "to_dict") else dict(plan)
        target = record.get("target_epsilon")
        claimed = record.get("epsilon")
        plan_delta = record.get("delta")
    if delta is None:
        delta = plan_delta
    if delta is None:
        raise InvalidParameterError("delta", None, "is required when the plan is a bare spec")
    delta = v.check_delta(delta)
    if plan_delta is not None and float(plan_delta) != delta:
        raise InvalidParameterError("delta", delta, f"differs from the plan's delta {plan_delta}")
    target = None if target is None else C._as_float(target)
    claimed = None if claimed is None else C._as_float(claimed)
    return spec, delta, target, claimed, record


def _noise_draws(rule) -> int:
    count = sum(isinstance(op, AddNoise) and op.std > 0 for op in rule.prologue)
    for ph in rule.phases:
        count += ph.steps * sum(
            isinstance(op, (AddNoise, GradientNoise)) and op.std > 0 for op in ph.ops
        )
    return count


def _environment() -> dict:
    return {
        "library_version": unlearn_theory.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _coverage(model: nn.Module, public) -> tuple[list[str], list[str], list[str]]:
    """(noised parameter names, public names, normalisation buffer names)."""
    public = set(public or ())
    named = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    unknown = sorted(public - set(named) - set(buffers))
    if unknown:
        raise InvalidParameterError("public", unknown, "names no parameter or buffer of the model")
    frozen = [n for n, p in named.items() if not p.requires_grad and n not in public]
    if frozen:
        raise FrozenParameterError(
            "public",
            frozen,
            "frozen parameters (requires_grad=False) must be declared public "
            "(public=[...]: held fixed, not noised, must not depend on the forget set) or made "
            "trainable",
        )
    noised = [n for n, p in named.items() if n not in public]
    if not noised:
        raise InvalidParameterError(
            "model",
            type(model).__name__,
            "has no parameters to unlearn (none trainable and not public)",
        )
    norm_buffers = []
    for mname, module in model.named_modules():
        if isinstance(module, _NORM_TYPES):
            for bname, _ in module.named_buffers(recurse=False):
                norm_buffers.append(f"{mname}.{bname}" if mname else bname)
    others = sorted(set(buffers) - set(norm_buffers) - public)
    if others:
        raise UnsupportedBufferError(
            "model",
            others,
            "holds buffers that are not normalisation statistics; declare them public "
            "(public=[...]) if they do not depend on the forget set",
        )
    return noised, sorted(public), sorted(norm_buffers)


@torch.no_grad()
def _recompute_norm_stats(model, data: IndexedData, chunk_size: int) -> None:
    norms = [m for m in model.modules() if isinstance(m, _NORM_TYPES)]
    if not norms:
        return
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    was = model.training
    model.train()
    try:
        for idx in data.chunks(chunk_size):
            X, _ = data.get(idx)
            model(X)
    finally:
        model.train(was)
        for m, mom in saved:
            m.momentum = mom


def _finite_check(interp: Interpreter, step: int, start: int = 0) -> int:
    """Raise NonFiniteError when a loss recorded since index ``start`` or the parameters are
    NaN or infinite; return the index to start from next time."""
    rec = interp.records
    rec.flush()
    for s, val in zip(rec.loss_steps[start:], rec.losses[start:]):
        if not math.isfinite(val):
            raise NonFiniteError(f"non-finite loss at step {s} of the noisy phase")
    if not bool(torch.isfinite(interp.flat.x).all()):
        raise NonFiniteError(f"non-finite parameters by step {step} of the noisy phase")
    return len(rec.losses)


def _warn_if_noise_large(spec, rule, x: torch.Tensor, d: int) -> dict:
    """Expected noise norm after the noisy phase against the parameter norm; warn when the
    noise dominates (accuracy near chance is then to be expected before fine-tuning).

    Per-coordinate accumulated variance: v ← ρ^{2s}·v + σ²(1 − ρ^{2s})/(1 − ρ²) over a phase of
    s steps with decay ρ (σ²s when ρ = 1); a block phase only adds to its block's coordinates.
    Projections are ignored (the estimate errs on the large side)."""
    base = sum(op.std**2 for op in rule.prologue if isinstance(op, AddNoise))
    var = {b: base for b in range(rule.blocks)}
    for ph in rule.phases:
        rho = 1.0
        std = 0.0
        for op in ph.ops:
            if hasattr(op, "factor"):
                rho = op.factor
            if isinstance(op, AddNoise):
                std = op.std
        targets = range(rule.blocks) if ph.block is None else (ph.block,)
        for b in targets:
            if rho < 1.0:
                r2 = rho ** (2 * ph.steps)
                var[b] = var[b] * r2 + std**2 * (1 - r2) / (1 - rho**2)
            else:
                var[b] += std**2 * ph.steps
    var = sum(var.values()) / rule.blocks
    noise_norm = math.sqrt(var * d)
    x_norm = float(torch.linalg.vector_norm(x))
    ratio = noise_norm / x_norm if x_norm > 0 else math.inf
    info = {"expected_noise_norm": noise_norm, "parameter_norm": x_norm, "ratio": ratio}
    if ratio > 1.0:
        warnings.warn(
            f"the planned noise is large against the parameters: expected noise norm "
            f"{noise_norm:.3g} (sigma*sqrt(d) accumulated over the steps, d={d}) vs parameter "
            f"norm {x_norm:.3g} (ratio {ratio:.2g}); expect accuracy near chance right after the "
            "noisy phase -- plan noiseless fine-tuning on retain data (fine_tune=...) to recover",
            LargeNoiseWarning,
            stacklevel=3,
        )
    return info


class _StopFlag:
    """Ctrl-C during the noisy phase requests a stop at the next step boundary."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:  # second Ctrl-C: abort
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# -- fine-tuning ------------------------------------------------------------------------------
_FT_KEYS = {"epochs", "learning_rate", "batch_size", "optimizer", "momentum", "weight_decay"}


def _fine_tune_config(ft) -> dict | None:
    if ft is None:
        return None
    if isinstance(ft, int) and not isinstance(ft, bool):
        ft = {"epochs": ft}
    if not isinstance(ft, dict):
        raise InvalidParameterError("fine_tune", ft, "must be a dict or an epoch count")
    extra = set(ft) - _FT_KEYS
    if extra:
        raise InvalidParameterError("fine_tune", sorted(extra), f"unknown keys; known {_FT_KEYS}")
    cfg = {
        "epochs": v.check_int("fine_tune.epochs", ft.get("epochs", 1), minimum=0),
        "learning_rate": v.check_positive("fine_tune.learning_rate", ft.get("learning_rate", 0.05)),
        "batch_size": v.check_int("fine_tune.batch_size", ft.get("batch_size", 64), minimum=1),
        "optimizer": ft.get("optimizer", "sgd"),
        "momentum": v.check_nonnegative("fine_tune.momentum", ft.get("momentum", 0.0)),
        "weight_decay": v.check_nonnegative("fine_tune.weight_decay", ft.get("weight_decay", 0.0)),
    }
    if cfg["optimizer"] not in ("sgd", "adam"):
        raise InvalidParameterError("fine_tune.optimizer", cfg["optimizer"], "'sgd' or 'adam'")
    return cfg


def train_epochs(
    model,
    data: IndexedData,
    loss_fn,
    cfg: dict,
    *,
    generator: torch.Generator,
    eval_data=None,
    history=None,
    phase: str = "fine_tune",
    chunk_size: int = 1024,
    progress=None,
):
    """Plain mini-batch training (the noiseless fine-tuning and the retraining reference)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(
            params,
            lr=cfg["learning_rate"],
            momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"],
        )
    else:
        opt = torch.optim.Adam(params, lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    bar = _progress(cfg["epochs"], phase, progress)
    model.train()
    for epoch in range(1, cfg["epochs"] + 1):
        perm = torch.randperm(data.n, generator=generator)
        total = 0.0
        for start in range(0, data.n, cfg["batch_size"]):
            idx = perm[start : start + cfg["batch_size"]]
            X, y = data.get(idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        entry = {"phase": phase, "epoch": epoch, "train_loss": total / data.n}
        if eval_data is not None:
            ev = evaluate(model, eval_data, loss_fn, chunk_size=chunk_size)
            entry.update(eval_loss=ev["loss"], accuracy=ev["accuracy"])
        if history is not None:
            history.append(entry)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return model


# -- the run ----------------------------------------------------------------------------------
def unlearn(
    model: nn.Module,
    retain,
    plan,
    *,
    loss_fn,
    seed: int | None = None,
    device=None,
    fine_tune=None,
    checkpoint=None,
    forget_ids=None,
    out=None,
    allow_uncertified: bool = False,
    eval_data=None,
    public=(),
    partition: str = "rows",
    partition_seed: int = 0,
    delta: float | None = None,
    retain_ids=None,
    stop=None,
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    progress=None,
    chunk_size: int = 1024,
    guard_false_alarm: float = 1e-6,
    distributed=None,
    _dist_ctx=None,
) -> UnlearningRun:
    """Run ``plan``'s update rule on a copy of ``model`` and certify what ran.

    Arguments
    ---------
    model : the trained torch module (not modified: the run works on a deep copy, returned as
        ``run.model``).
    retain : ``(X, y)`` tensors or a torch Dataset of (input, target) pairs.
    plan : an :class:`~unlearn_theory.UnlearningPlan` (its ``spec``; older plans are rebuilt
        from their fields), a :class:`~unlearn_theory.methods.MethodSpec` (then ``delta`` is
        required) or their dicts.
    loss_fn : ``loss_fn(outputs, targets)`` -> the MEAN loss over the batch (a scalar).
    seed : secret 63-bit noise seed (default: a fresh one from the OS). The certificate holds a
        salted commitment; with ``out`` the seed is written to ``out/seed.json`` (mode 0600).
    device : where the noisy phase runs (default: the model's device).
    fine_tune : None, an epoch count, or {"epochs", "learning_rate", "batch_size", "optimizer"
        ("sgd"/"adam"), "momentum", "weight_decay"}: noiseless training on retain data after
        the noisy phase (post-processing; recorded).
    checkpoint : a folder; resumed from when it holds a checkpoint of this plan/seed/model/
        retain set, written every ``checkpoint_every`` steps (default: about 10 per run) and on
        a stop.
    forget_ids, retain_ids : ids whose sorted SHA-256 go into the private run record (retain
        default: 0..n-1); the certificate holds their counts.
    out : a folder for certificate.json and model.pt (state dict; public: publish these two),
        seed.json, run_record.json and history.json (private, mode 0600), written only when
        the run did not fail. ``run.certificate`` is the public certificate, ``run.record`` the
        private run record (:func:`unlearn_torch.certificate.split_certificate`).
    allow_uncertified : run a plan whose certified ε exceeds its target (or whose recorded ε is
        below the accountant's) anyway; the certificate says so.
    eval_data : held-out ``(X, y)`` or Dataset: loss and accuracy go into ``run.history``.
    public : names of parameters/buffers that are public (held fixed, never noised).
    partition, partition_seed : block-wise coordinate partition ("rows", "random", "layers",
        or "rotations": blocks of the rotated coordinates z = Rx, R orthogonal per layer and
        seeded by ``partition_seed``; see :mod:`unlearn_torch.blocks`). The partition is
        public: ``partition_seed`` is recorded in the certificate (it is not the noise seed).
    delta : δ when ``plan`` is a bare spec (must equal the plan's δ otherwise).
    stop : ``stop(step, run_state) -> bool`` checked before every step; True stops the run.
    guard_false_alarm : family-wise false-alarm rate of the noise guard for an honest run.
    distributed : None (default: a distributed run when torch.distributed is initialised with
        more than one rank), False (single process), True, a noise mode ("broadcast" or
        "replicated"), a dict or a :class:`~unlearn_torch.distributed.DistributedConfig`:
        every rank calls ``unlearn`` with its SHARD of the retain set and the same model, plan,
        seed and settings; gradients are all-reduced before the clip, the noise is added once
        per coordinate per step, and only rank 0 writes ``out`` (see
        :mod:`unlearn_torch.distributed` and docs/unlearn_torch.md, "Distributed runs").
    """
    if _dist_ctx is None:
        call = dict(locals())
        cfg = _dist.resolve(distributed)
        if cfg is not None:
            ctx = _dist.Context(cfg)
            call["_dist_ctx"] = ctx

            def write(run):
                if out is not None:
                    run.paths = _write_outputs(Path(out), *ctx.outputs)

            return ctx.run(lambda: unlearn(**call), write)
    ctx = _dist_ctx
    t_start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InvalidParameterError("model", type(model).__name__, "must be a torch nn.Module")
    if not callable(loss_fn):
        raise InvalidParameterError("loss_fn", loss_fn, "must be callable(outputs, targets)")
    if partition not in PARTITIONS:
        raise InvalidParameterError("partition", partition, f"must be one of {PARTITIONS}")
    spec, delta, target, claimed, plan_record = _resolve_plan(plan, delta)
    if spec.method == "dp_sgd_group":
        raise UnsupportedMethodError(
            "plan",
            spec.method,
            "is the DP-SGD + group privacy baseline: a model trained from the start with "
            "Poisson-sampled DP-SGD, not an unlearning update; train it through Opacus with "
            "unlearn_torch.train_dp_sgd(model, data, plan, loss_fn=...)",
        )
    rule = spec.update_rule()
    if ctx is not None:
        _dist.check_method(rule, spec)
    check_rule_supported(rule)
    planned = C.guarantee_of(spec, delta, target_epsilon=target)
    problems = []
    if not planned["certified"]:
        problems.append(
            "the spec certifies no finite epsilon: " + str(planned.get("reason", "ε = inf"))
        )
    elif target is not None and planned["epsilon"] > target:
        problems.append(
            f"certified epsilon {planned['epsilon']:.6g} exceeds the target {target:.6g}"
        )
    if (
        claimed is not None
        and claimed < planned["epsilon"]
        and not C._close(claimed, planned["epsilon"])
    ):
        problems.append(
            f"the plan records epsilon {claimed:.6g} but its spec certifies only "
            f"{planned['epsilon']:.6g} (edited plan?)"
        )
    if problems and not allow_uncertified:
        raise UncertifiedPlanError(
            "plan", spec.method, "; ".join(problems) + " (pass allow_uncertified=True to run it)"
        )
    fine_cfg = _fine_tune_config(fine_tune)
    if not any(True for _ in model.parameters()):
        raise InvalidParameterError("model", type(model).__name__, "has no parameters")
    noised, public_names, norm_buffers = _coverage(model, public)
    if ctx is not None:
        _dist.check_supported(fine_tune=fine_tune, checkpoint=checkpoint, norm_buffers=norm_buffers)
    per_example = any(
        isinstance(op, Gradient) and op.per_example_clip is not None
        for ph in rule.phases
        for op in ph.ops
    )
    if per_example and norm_buffers:
        raise UnsupportedBufferError(
            "model",
            norm_buffers[:4],
            "per-example gradient clipping (this method) cannot run through batch normalisation",
        )
    if device is None:
        device = next(iter(model.parameters())).device
    device = torch.device(device)
    sha_before = C.state_sha256(model.state_dict())
    work = copy.deepcopy(model).to(device).float()
    for name, p in work.named_parameters():
        if name in public_names:
            p.requires_grad_(False)
    data = as_indexed("retain", retain, device)
    shard_sizes, offset, global_n = [data.n], 0, data.n
    if ctx is not None:  # the global retain set: the shards concatenated in rank order
        shard_sizes = ctx.gather(data.n)
        offset, global_n = sum(shard_sizes[: ctx.rank]), sum(shard_sizes)
    if retain_ids is None:
        retain_ids = range(offset, offset + data.n)
    retain_ids = _id_list(retain_ids)
    forget_ids = None if forget_ids is None else _id_list(forget_ids)
    if len(retain_ids) != data.n:
        raise InvalidParameterError(
            "retain_ids", len(retain_ids), f"must give one id per retain example ({data.n})"
        )
    if ctx is not None:
        shard_sizes, offset, retain_ids = _dist.shard_layout(ctx, data.n, retain_ids)
    retain_sha = ids_sha256(retain_ids)
    forget_sha = ids_sha256(forget_ids)
    ev = None if eval_data is None else as_indexed("eval_data", eval_data, device)

    flat = FlatParameters(work, noised, device)
    part = None
    if rule.blocks > 1:
        part = make_partition(flat.layout, rule.blocks, partition, seed=partition_seed)
    guard = NoiseGuard(_noise_draws(rule), false_alarm=guard_false_alarm)

    # seed and resume
    resume = checkpoint is not None and checkpoint_exists(checkpoint)
    plan_sha = C.sha256_json(plan_record)
    if resume and seed is None:
        raise CheckpointMismatchError(
            "seed", None, "resuming a checkpoint needs the run's seed (from its seed file)"
        )
    call_seed = seed
    seed = new_seed() if seed is None else _check_seed(seed)
    noise = NoiseSource(seed)
    reducer = None
    if ctx is not None:  # rank 0's seed; every rank must hold the same run
        given = seed if call_seed is not None else None
        seed = ctx.from_root(seed)
        if given is not None and given != seed:
            raise _dist.DistributedMismatchError(
                "seed", "<secret>", f"rank {ctx.rank}'s seed differs from rank 0's"
            )
        ctx.agree(
            _dist.config_digest(
                plan_sha256=plan_sha,
                spec=C.canonical_json(spec.to_dict()),
                delta=delta,
                model_sha256_before=sha_before,
                noised=noised,
                public=public_names,
                partition=None if part is None else C.canonical_json(part.describe()),
                device_type=device.type,
                noise_mode=ctx.cfg.noise,
                checksum_every=ctx.cfg.checksum_every,
                allow_uncertified=bool(allow_uncertified),
                guard_false_alarm=guard_false_alarm,
                forget_ids_sha256=forget_sha,
                retain_ids_sha256=retain_sha,
                global_n=global_n,
            )
        )
        if ctx.cfg.noise == "broadcast":
            noise = _dist.BroadcastNoiseSource(seed, ctx)
        else:
            noise = NoiseSource(seed)
        reducer = _dist.GradientAllReduce(ctx, offset, data.n, global_n, flat.dim, device)
    fork = any(isinstance(m, _RANDOM_TYPES) for m in work.modules())
    interp = Interpreter(
        flat=flat,
        rule=rule,
        data=data,
        loss_fn=loss_fn,
        noise=noise,
        guard=guard,
        partition=part,
        chunk_size=chunk_size,
        fork_model_rng=fork,
        gradient_reduce=reducer,
    )
    T = rule.steps
    history: list[dict] = []
    start = 0
    if resume:
        tensors, side = load_checkpoint(
            checkpoint,
            expect={
                "plan_sha256": plan_sha,
                "model_sha256_before": sha_before,
                "retain_ids_sha256": retain_sha,
                "dim": flat.dim,
                "partition": None if part is None else part.describe(),
            },
        )
        if not check_commitment(seed, side.get("seed_commitment", {})):
            raise CheckpointMismatchError(
                "seed", "<secret>", "does not open the checkpoint's seed commitment"
            )
        commitment = side["seed_commitment"]
        with torch.no_grad():
            flat.x.copy_(tensors["x"].to(device))
            bufs = dict(work.named_buffers())
            for k, t in tensors.items():
                if k.startswith("buffer:"):
                    bufs[k[7:]].copy_(t.to(device))
        if interp.rotation is not None:  # the state of a rotated run is z, not x
            if "z" not in tensors:
                raise CheckpointMismatchError(
                    "checkpoint", str(checkpoint), "holds no rotated state z for this run"
                )
            interp.set_rotated_state(tensors["z"])
        prev = {int(k[5:]): t.to(device) for k, t in tensors.items() if k.startswith("prev:")}
        guard.load_state(side["guard"], prev)
        interp.records.load_state(side["records"])
        history = list(side.get("history", []))
        start = int(side["step"])
        noise_info = side.get("noise_info", {})
    else:
        commitment = commit_seed(seed)
        for m in work.modules():
            if isinstance(m, _NORM_TYPES):
                m.reset_running_stats()
        work.train()
        if ev is not None:
            e0 = evaluate(work, ev, loss_fn, chunk_size=chunk_size)
            history.append({"phase": "start", "step": 0, **_ev(e0)})
        interp.run_prologue()
        noise_info = _warn_if_noise_large(spec, rule, flat.x, flat.dim)

    def state_for_checkpoint(step):
        guard.check()
        tensors = {"x": flat.x}
        if interp.rotation is not None:
            tensors["z"] = interp.rotated_state()
        for k, t in work.named_buffers():
            tensors[f"buffer:{k}"] = t
        for b, t in guard.previous_draws().items():
            tensors[f"prev:{b}"] = t
        side = {
            "plan_sha256": plan_sha,
            "model_sha256_before": sha_before,
            "retain_ids_sha256": retain_sha,
            "dim": flat.dim,
            "partition": None if part is None else part.describe(),
            "seed_commitment": commitment,
            "step": step,
            "guard": guard.state(),
            "records": interp.records.state(),
            "history": history,
            "noise_info": noise_info,
        }
        return tensors, side

    def save(step):
        tensors, side = state_for_checkpoint(step)
        save_checkpoint(checkpoint, tensors=tensors, sidecar=side)

    def fail_record(step, status):
        """What ran before a failure, re-certified -- for the log, not a certificate."""
        spec_ran = C.spec_for_steps(spec, step)
        try:
            g = C.guarantee_of(spec_ran, delta, target_epsilon=target)
        except Exception as exc:  # the record must not mask the failure itself
            g = {"epsilon": None, "reason": str(exc)}
        return {
            "status": status,
            "steps_run": step,
            "steps_planned": T,
            "spec_ran": None if spec_ran is None else spec_ran.to_dict(),
            "guarantee_of_steps_run": C.jsonable(g),
            "note": "the run failed: no certificate, no model file was written",
        }

    on_cpu = device.type == "cpu"
    check_every = 16 if on_cpu else 64  # guard and finite checks: one host sync each
    if checkpoint_every is None:
        checkpoint_every = max(1, T // 10)
    if eval_every is None:
        gops = [op for ph in rule.phases for op in ph.ops if isinstance(op, Gradient)]
        b = gops[0].batch_size if gops and gops[0].batch_size else data.n
        eval_every = max(-(-data.n // min(b, data.n)), -(-T // 100), 1)
    status = "completed"
    step = start
    bar = _progress(
        T, f"unlearn[{spec.method}]", progress if ctx is None or ctx.rank == 0 else False
    )
    if bar is not None and start:
        bar.update(start)
    interp.records.flush()
    last_logged = checked = len(interp.records.losses)
    try:
        with _StopFlag() as flag:
            work.train()
            while step < T:
                want_stop = flag.requested or (stop is not None and stop(step, interp))
                if ctx is not None:  # agreed at the step boundary; raises if a rank failed
                    want_stop = ctx.check(stop=bool(want_stop))
                if want_stop:
                    status = "stopped"
                    break
                interp.run_step(step)
                step += 1
                if step % check_every == 0 or step == T:
                    guard.check()
                    checked = _finite_check(interp, step, checked)
                if ctx is not None and step % ctx.cfg.checksum_every == 0 and step < T:
                    ctx.compare_checksum(flat.x, step)
                if ev is not None and (step % eval_every == 0 or step == T):
                    interp.records.flush()
                    losses = interp.records.losses[last_logged:]
                    last_logged = len(interp.records.losses)
                    e = evaluate(work, ev, loss_fn, chunk_size=chunk_size)
                    history.append(
                        {
                            "phase": "noisy",
                            "step": step,
                            "train_loss": sum(losses) / len(losses) if losses else None,
                            **_ev(e),
                        }
                    )
                if checkpoint is not None and step < T and step % checkpoint_every == 0:
                    checked = _finite_check(interp, step, checked)
                    save(step)
                if bar is not None:
                    bar.update(1)
        guard.finish()
        _finite_check(interp, step, checked)
        if ctx is not None:
            ctx.compare_checksum(flat.x, step)
            guarded = guard.summary()["draws"]
            if ctx.cfg.noise == "broadcast" and ctx.broadcasts != guarded:
                raise _dist.DistributedRunError(
                    f"{guarded} noise draws were guarded but {ctx.broadcasts} came from rank 0's "
                    "broadcast: the noise transport was bypassed"
                )
    except (RunFailedError, UnsupportedMethodError) as exc:
        if isinstance(exc, RunFailedError) and exc.record is None:
            exc.record = fail_record(step, "failed")
        raise
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None:  # stopped: resume point; completed: a rerun skips the loop
        save(step)

    # after the noisy phase: free the parameters from the flat vector, recompute statistics
    with torch.no_grad():
        for p in work.parameters():
            p.data = p.data.clone()
            p.grad = None
    _recompute_norm_stats(work, data, chunk_size)
    sha_noisy = C.state_sha256(work.state_dict())
    spec_ran = C.spec_for_steps(spec, step)
    guarantee = C.guarantee_of(spec_ran, delta, target_epsilon=target)
    if status != "completed" or problems:
        guarantee["certifies_target"] = bool(
            guarantee["certifies_target"] and not problems and status == "completed"
        )
    if ev is not None:
        e = evaluate(work, ev, loss_fn, chunk_size=chunk_size)
        history.append({"phase": "after_noisy", "step": step, **_ev(e)})
    noisy_seconds = time.perf_counter() - t_start
    ft_record = None
    if fine_cfg is not None and fine_cfg["epochs"] > 0:
        gen = noise.generator("cpu", _ft_key(noise))
        train_epochs(
            work,
            data,
            loss_fn,
            fine_cfg,
            generator=gen,
            eval_data=ev,
            history=history,
            chunk_size=chunk_size,
            progress=progress,
        )
        ft_record = dict(fine_cfg, data="retain", note="noiseless post-processing on retain data")
    sha_final = C.state_sha256(work.state_dict())
    rule_ran = spec_ran.update_rule() if spec_ran is not None else None
    summary = interp.records.summary()
    cert = {
        "schema": C.SCHEMA,
        "schema_version": C.SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan_record,
        "plan_sha256": plan_sha,
        "spec": spec.to_dict(),
        "ran": {
            "status": status,
            "steps_planned": T,
            "steps_run": step,
            "spec": None if spec_ran is None else spec_ran.to_dict(),
            "update_rule": None if rule_ran is None else rule_ran.to_dict(),
            "schedule": None if rule_ran is None else C.schedule_rle(rule_ran),
            "projections": summary["projections"],
            "clipping": summary["clipping"],
            "batch_sizes": summary["batch_sizes"]
            if reducer is None
            else {str(k): val for k, val in sorted(reducer.batch_sizes.items())},
            "per_example_gradients": summary["per_example_gradients"],
            "partition": None if part is None else part.describe(),
            "rotation_check": interp.rotation_check,
            "coverage": {
                "noised_parameters": noised,
                "public": public_names,
                "dimension": flat.dim,
                "normalisation_buffers": norm_buffers,
                "buffer_policy": "reset before the noisy phase, recomputed on retain data after",
            },
            "dtype": "float32",
            "device": str(device),
            "model_mode": "train",
            "chunk_size": chunk_size,
            "dropout_rng": "keyed by (seed, step)" if fork else None,
            "noise_scale": noise_info,
            "allow_uncertified": bool(allow_uncertified),
            "plan_problems": problems,
            "fine_tune": ft_record,
            "distributed": None if ctx is None else ctx.record(shard_sizes, reducer),
        },
        "noise": {
            "generator": "torch.Generator on the parameter device, re-seeded per draw",
            "key_scheme": KEY_SCHEME,
            "seed_commitment": commitment,
            "guard": guard.summary(),
        },
        "model": {
            "sha256_before": sha_before,
            "sha256_after_noisy": sha_noisy,
            "sha256_final": sha_final,
            "hash_scheme": "sha256 over sorted state-dict keys: name|dtype|shape + raw bytes",
        },
        "data": {
            "retain_size": global_n,
            "retain_ids_sha256": retain_sha,
            "forget_size": None if forget_ids is None else len(forget_ids),
            "forget_ids_sha256": forget_sha,
        },
        "environment": _environment(),
        "guarantee": guarantee,
        "wall_seconds": {"noisy_phase": noisy_seconds, "total": time.perf_counter() - t_start},
    }
    work.train(model.training)  # hand the model back in the caller's mode
    cert, record = C.split_certificate(cert, history=history)
    paths = {}
    if ctx is not None:  # written by rank 0 once every rank reported success
        ctx.outputs = (cert, work, seed, commitment, history, record)
    elif out is not None:
        paths = _write_outputs(Path(out), cert, work, seed, commitment, history, record)
    return UnlearningRun(
        model=work,
        certificate=cert,
        history=history,
        status=status,
        spec=spec,
        spec_ran=spec_ran,
        paths=paths,
        record=record,
    )


def _id_list(ids) -> list:
    if isinstance(ids, torch.Tensor):
        return ids.reshape(-1).tolist()
    return list(ids)


def _ev(e: dict) -> dict:
    return {"eval_loss": e["loss"], "accuracy": e["accuracy"]}


def _ft_key(noise: NoiseSource) -> int:
    from .noise import derive_key

    return derive_key(noise.seed, "finetune", 0, -1, 0)


def _write_outputs(out: Path, cert, model, seed, commitment, history, record=None) -> dict:
    """Write the run's files into ``out``: certificate.json and model.pt (public: publish
    them), seed.json, run_record.json and history.json (private: mode 0600; the record holds
    statistics of the starting model and of intermediate iterates, the history evaluates the
    starting model and the iterates). The certificate is written last."""
    import os
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.pt"
    fd, tmp = tempfile.mkstemp(prefix=".model.pt.", suffix=".tmp", dir=out)
    os.close(fd)
    try:
        torch.save({k: t.detach().cpu() for k, t in model.state_dict().items()}, tmp)
        os.replace(tmp, model_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    seed_path = C.write_json_atomic(
        out / "seed.json",
        {
            "seed": seed,
            "seed_commitment": commitment,
            "note": "SECRET: whoever holds this seed can subtract the noise. For auditors only.",
        },
        mode=0o600,
    )
    hist_path = C.write_json_atomic(out / "history.json", history, mode=0o600)
    paths = {}
    if record is not None:
        paths["run_record"] = str(C.write_json_atomic(out / C.RECORD_FILE, record, mode=0o600))
    cert_path = C.write_json_atomic(out / "certificate.json", cert)
    return {
        "certificate": str(cert_path),
        "model": str(model_path),
        "seed": str(seed_path),
        "history": str(hist_path),
        **paths,
    }


def replay_certificate(
    path,
    model: nn.Module,
    retain,
    *,
    loss_fn,
    seed,
    retain_ids=None,
    device=None,
    record_path=None,
) -> list[str]:
    """Replay the noisy phase a certificate records and compare the model hashes (auditors).

    ``model``: the model BEFORE unlearning; ``retain``: the retain data; ``seed``: the run's
    secret seed (from its seed file; it must open the certificate's commitment);
    ``record_path``: the run's private record (default: ``run_record.json`` next to the
    certificate, when there is one). The plan, partition, public parameters and chunking are
    read from the certificate; the run is repeated up to the recorded number of steps and the
    SHA-256 of the model after the noisy phase must equal the recorded one (bit-exact on the
    same device type and torch version; on another device type float rounding differs and only
    the guarantee checks apply). With the record (schema-2 certificates keep the starting
    model's hash and the retain ids' hash there) the given model and retain ids are compared
    with it; without it the after-noisy hash alone ties the replay to the run.
    Returns the problems (empty: the recorded run is what these inputs produce).
    """
    cert = C._load_json(path)
    problems = []
    if not check_commitment(int(seed), (cert.get("noise") or {}).get("seed_commitment", {})):
        return ["the seed does not open the certificate's seed commitment"]
    record = None
    if int(cert.get("schema_version") or 1) >= 2:
        if record_path is None and (Path(path).parent / C.RECORD_FILE).exists():
            record_path = Path(path).parent / C.RECORD_FILE
        if record_path is not None:
            record = C.load_record(record_path)
            rec_problems: list[str] = []
            C._check_record(cert, record, rec_problems)
            problems += rec_problems
    elif record_path is not None:
        problems.append("a schema-1 certificate has no run record (record_path given)")
    full = C.merge_record(cert, record)
    sha_before = (full.get("model") or {}).get("sha256_before")
    if sha_before is not None and C.state_sha256(model.state_dict()) != sha_before:
        problems.append("the model given is not the certificate's starting model")
    ran = cert["ran"]
    steps_run = int(ran["steps_run"])
    part = ran.get("partition") or {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LargeNoiseWarning)
        again = unlearn(
            model,
            retain,
            cert["plan"],
            loss_fn=loss_fn,
            seed=int(seed),
            device=device if device is not None else ran.get("device"),
            delta=float(cert["guarantee"]["delta"]),
            allow_uncertified=True,
            public=ran["coverage"]["public"],
            partition=part.get("kind") or "rows",
            partition_seed=part.get("seed") or 0,
            retain_ids=retain_ids,
            stop=(lambda step, _: step >= steps_run),
            chunk_size=int(ran.get("chunk_size") or 1024),
            progress=False,
            distributed=False,
        )
    retain_sha = (full.get("data") or {}).get("retain_ids_sha256")
    if retain_sha is not None and again.record["data"]["retain_ids_sha256"] != retain_sha:
        problems.append("the retain data given is not the certificate's retain set")
    if again.certificate["model"]["sha256_after_noisy"] != cert["model"]["sha256_after_noisy"]:
        problems.append(
            "replaying the recorded run does not reproduce the recorded model after the noisy phase"
        )
    return problems
