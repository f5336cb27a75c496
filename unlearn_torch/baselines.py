r"""Reference baselines: retraining from scratch, and DP-SGD + group privacy through Opacus.

Retraining is the gold standard that unlearning is compared against: a fresh model, trained on
the retain set only, never saw the forget set (no certificate is needed for it).

DP-SGD trained from the start (method ``"dp_sgd_group"``, docs/theory.md §7.2) runs through
Opacus (:func:`train_dp_sgd`): Opacus' Poisson loader (``DPDataLoader``, each record joins a
batch independently with probability q), per-example clipping to C1 and Gaussian noise of std
z·C1 on the clipped-gradient sum (``DPOptimizer``, ``loss_reduction="sum"``), exactly T
optimizer steps -- the sampling, noise and step count that the accountant
(``unlearn_theory.certify(spec, delta)``: Poisson subsampled Gaussian, add/remove adjacency,
then group privacy over the k forget records) assumes. Abadi et al. 2016 (arXiv 1607.00133).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

from . import certificate as C
from .data import as_indexed, ids_sha256
from .errors import NonFiniteError, RunFailedError, UncertifiedPlanError
from .noise import KEY_SCHEME, NoiseGuard, _check_seed, commit_seed, derive_key, new_seed
from .run import (
    UnlearningRun,
    _environment,
    _ev,
    _fine_tune_config,
    _id_list,
    _resolve_plan,
    _write_outputs,
    evaluate,
    train_epochs,
)

__all__ = ["RetrainResult", "retrain", "OpacusModelError", "train_dp_sgd"]


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


# -- DP-SGD + group privacy, through Opacus ---------------------------------------------------
class OpacusModelError(InvalidParameterError):
    """Opacus cannot train this model with per-example gradients (e.g. BatchNorm mixes the
    examples of a batch); ``opacus.validators.ModuleValidator.fix`` replaces BatchNorm by
    GroupNorm. Nothing ran and nothing was written."""


#: labels of the keyed generators derived from the run's secret seed (noise.derive_key)
_DPSGD_KEYS = {"noise": "dpsgd-noise", "sampling": "dpsgd-sample", "model": "dpsgd-model"}


def _opacus():
    try:
        import opacus
    except ImportError as exc:  # pragma: no cover - opacus is a declared extra
        raise ImportError(
            "train_dp_sgd needs Opacus (pip install opacus); the dp_sgd_group baseline is "
            "trained through it"
        ) from exc
    return opacus


def check_opacus_model(model: nn.Module) -> None:
    """Raise :class:`OpacusModelError` when Opacus' ModuleValidator rejects ``model``."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        text = "; ".join(str(e) for e in errors[:4])
        raise OpacusModelError(
            "model",
            type(model).__name__,
            f"Opacus cannot compute per-example gradients for it ({text}); "
            "opacus.validators.ModuleValidator.fix(model) replaces BatchNorm by GroupNorm",
        )


def _dataset(data):
    """A map-style Dataset of (input, target) for Opacus' DPDataLoader."""
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        X, y = data
        if X.shape[0] != y.shape[0]:
            raise InvalidParameterError(
                "data", (tuple(X.shape), tuple(y.shape)), "inputs and targets differ in length"
            )
        return torch.utils.data.TensorDataset(X.detach().cpu(), y.detach().cpu())
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return data
    raise InvalidParameterError(
        "data", type(data).__name__, "must be a pair (X, y) of tensors or a torch Dataset"
    )


def poisson_loader(dataset, sample_rate: float, generator: torch.Generator):
    """Opacus' Poisson loader: every record joins each batch independently with probability
    ``sample_rate`` (``opacus.data_loader.DPDataLoader``; batch sizes vary, mean q·n, empty
    batches are possible and are kept)."""
    from opacus.data_loader import DPDataLoader

    return DPDataLoader(dataset, sample_rate=float(sample_rate), generator=generator)


def train_dp_sgd(
    model: nn.Module,
    data,
    plan,
    *,
    loss_fn,
    seed: int | None = None,
    device=None,
    forget_ids=None,
    data_ids=None,
    out=None,
    eval_data=None,
    delta: float | None = None,
    allow_uncertified: bool = False,
    eval_every: int | None = None,
    guard_false_alarm: float = 1e-6,
) -> UnlearningRun:
    """Train a copy of ``model`` on ``data`` with DP-SGD through Opacus, as the
    ``dp_sgd_group`` plan says, and certify what ran.

    What runs (Opacus 1.6): ``PrivacyEngine(secure_mode=False).make_private`` with Opacus'
    Poisson loader built at the plan's exact rate q (``DPDataLoader``), ``noise_multiplier`` z,
    ``max_grad_norm`` = clip_gradient C1, flat clipping, ``loss_reduction="sum"`` (the loss is
    ``loss_fn`` times the batch size, so the step is x ← x − γ(Σ clipped gradients + N(0,
    (zC1)²I)) with γ the plan's learning_rate), plain SGD, and exactly ``steps`` optimizer
    steps. Randomness is explicit: the noise comes from ``noise_generator=`` (a torch.Generator
    on the device), the batches from a CPU generator, the model's own randomness (dropout) from
    a forked RNG -- all keyed from the secret ``seed``; the global RNG is neither used nor
    changed. The noise Opacus adds is checked every step by the runtime guard
    (:class:`~unlearn_torch.noise.NoiseGuard`, std z·C1 over the trainable coordinates).

    Guarantee: (ε, δ) = ``unlearn_theory.certify(spec, delta)``: T Poisson-subsampled Gaussian
    steps at rate q, accounted per record (add/remove), then group privacy over forget_size
    records (docs/theory.md §7.2); an upper bound on the privacy loss of the forget set.

    Arguments: ``model`` is the starting point (it must not depend on ``data``); ``data`` the
    full training set (retain and forget records), ``(X, y)`` or a Dataset; ``loss_fn(outputs,
    targets)`` the MEAN loss of a batch; ``forget_ids`` (at most forget_size of them, inside
    ``data_ids``, default 0..n-1) are hashed into the private run record. ``out``:
    certificate.json and model.pt (public), seed.json, run_record.json and history.json
    (private, 0600), written only after a successful run. A model
    Opacus cannot wrap (BatchNorm) raises :class:`OpacusModelError` before anything runs.
    """
    from .distributed import refuse_distributed

    refuse_distributed("train_dp_sgd", "dp_sgd_group")  # one named error under torchrun
    t_start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InvalidParameterError("model", type(model).__name__, "must be a torch nn.Module")
    if not callable(loss_fn):
        raise InvalidParameterError("loss_fn", loss_fn, "must be callable(outputs, targets)")
    spec, delta, target, claimed, plan_record = _resolve_plan(plan, delta)
    if spec.method != "dp_sgd_group":
        raise InvalidParameterError(
            "plan", spec.method, "train_dp_sgd runs 'dp_sgd_group' plans; use unlearn() for it"
        )
    if spec.learning_rate is None:
        raise InvalidParameterError(
            "plan.learning_rate", None, "a dp_sgd_group plan needs a learning_rate to run"
        )
    opacus = _opacus()
    from opacus import PrivacyEngine

    check_opacus_model(model)
    if not any(p.requires_grad for p in model.parameters()):
        raise InvalidParameterError("model", type(model).__name__, "has no trainable parameters")
    eval_every = None if eval_every is None else v.check_int("eval_every", eval_every, minimum=1)

    planned = C.guarantee_of(spec, delta, target_epsilon=target)
    problems = []
    if not planned["certified"]:
        problems.append(f"the spec certifies no finite epsilon: {planned.get('reason')}")
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

    dataset = _dataset(data)
    n = len(dataset)
    if n == 0:
        raise InvalidParameterError("data", "empty", "has no examples")
    data_ids = _id_list(range(n) if data_ids is None else data_ids)
    if len(data_ids) != n:
        raise InvalidParameterError("data_ids", len(data_ids), f"must give one id per record ({n})")
    if forget_ids is not None:
        forget_ids = _id_list(forget_ids)
        if len(forget_ids) > spec.forget_size:
            raise InvalidParameterError(
                "forget_ids",
                len(forget_ids),
                f"the plan's group privacy covers forget_size={spec.forget_size} records",
            )
        missing = set(forget_ids) - set(data_ids)
        if missing:
            raise InvalidParameterError(
                "forget_ids", sorted(missing)[:4], "are not ids of the training data"
            )
    if device is None:
        device = next(iter(model.parameters())).device
    device = torch.device(device)
    ev = None if eval_data is None else as_indexed("eval_data", eval_data, device)

    q, T = spec.sample_rate, spec.steps
    z, clip, lr = spec.noise_multiplier, spec.clip_gradient, spec.learning_rate
    seed = new_seed() if seed is None else _check_seed(seed)
    commitment = commit_seed(seed)
    keys = {k: derive_key(seed, label, 0, -1, 0) for k, label in _DPSGD_KEYS.items()}
    noise_gen = torch.Generator(device=device).manual_seed(keys["noise"])
    sample_gen = torch.Generator().manual_seed(keys["sampling"])

    sha_before = C.state_sha256(model.state_dict())
    work = copy.deepcopy(model).to(device).float()
    work.train()
    trainable = [p for p in work.parameters() if p.requires_grad]
    dim = sum(p.numel() for p in trainable)
    loader = poisson_loader(dataset, q, sample_gen)
    optimizer = torch.optim.SGD(trainable, lr=lr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    # poisson_sampling=False: the loader already IS Opacus' Poisson loader at the exact rate q
    # (make_private's own conversion would use rate 1/len(loader) and the global RNG)
    gsm, dp_opt, loader = engine.make_private(
        module=work,
        optimizer=optimizer,
        data_loader=loader,
        noise_multiplier=z,
        max_grad_norm=clip,
        loss_reduction="sum",
        poisson_sampling=False,
        clipping="flat",
        noise_generator=noise_gen,
        grad_sample_mode="hooks",
    )
    gsm.forbid_grad_accumulation()
    dp_opt.expected_batch_size = q * n  # informational: unused with loss_reduction="sum"
    guard = NoiseGuard(T, false_alarm=guard_false_alarm)
    account = engine.accountant.get_optimizer_hook_fn(sample_rate=q)
    counter = {"steps": 0}

    def step_hook(opt):
        # after Opacus clipped, summed and noised: p.grad = p.summed_grad + noise
        account(opt)
        with torch.no_grad():
            xi = torch.cat([(p.grad - p.summed_grad).reshape(-1) for p in opt.params])
        guard.observe(xi, z * clip, step=counter["steps"])
        counter["steps"] += 1

    dp_opt.attach_step_hook(step_hook)  # replaces make_private's hook (rate 1/len(loader))

    history: list[dict] = []
    batch_sizes: list[int] = []
    losses: list[float] = []
    if eval_every is None:
        eval_every = max(1, -(-T // 10))
    if ev is not None:
        history.append({"phase": "start", "step": 0, **_ev(evaluate(work, ev, loss_fn))})
    forked = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked), warnings.catch_warnings():
            # Opacus' per-example hooks on the first layer: inputs never require grad
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            torch.manual_seed(keys["model"])  # the model's own randomness (dropout) only
            it = iter(loader)
            for step in range(T):
                try:
                    X, y = next(it)
                except StopIteration:  # the sampler yields int(1/q) batches per pass
                    it = iter(loader)
                    X, y = next(it)
                X, y = X.to(device), y.to(device)
                B = int(X.shape[0])
                batch_sizes.append(B)
                dp_opt.zero_grad(set_to_none=True)
                outputs = gsm(X)
                if B > 0:
                    mean_loss = loss_fn(outputs, y)
                    loss = mean_loss * B  # sum over the batch (loss_reduction="sum")
                    losses.append(float(mean_loss.detach()))
                    if not math.isfinite(losses[-1]):
                        raise NonFiniteError(f"non-finite loss at step {step} of DP-SGD")
                else:  # empty Poisson batch: zero gradient sum, the noise is still added
                    loss = outputs.sum() * 0.0
                loss.backward()
                dp_opt.step()
                if counter["steps"] != step + 1:
                    raise RunFailedError(
                        f"Opacus skipped optimizer step {step} (steps taken: {counter['steps']})"
                    )
                if (step + 1) % 16 == 0 or step + 1 == T:
                    guard.check()
                if ev is not None and ((step + 1) % eval_every == 0 or step + 1 == T):
                    recent = losses[-eval_every:]
                    history.append(
                        {
                            "phase": "dp_sgd",
                            "step": step + 1,
                            "train_loss": sum(recent) / len(recent) if recent else None,
                            **_ev(evaluate(work, ev, loss_fn)),
                        }
                    )
        guard.finish()
        work = gsm.to_standard_module()
        with torch.no_grad():
            for p in work.parameters():
                p.grad = None
                if hasattr(p, "summed_grad"):
                    del p.summed_grad
            if not all(bool(torch.isfinite(p).all()) for p in work.parameters()):
                raise NonFiniteError("non-finite parameters after DP-SGD")
    except RunFailedError as exc:
        if exc.record is None:
            exc.record = {
                "status": "failed",
                "steps_run": counter["steps"],
                "steps_planned": T,
                "note": "the run failed: no certificate, no model file was written",
            }
        raise
    opacus_history = [list(h) for h in engine.accountant.history]

    guarantee = dict(planned)  # what ran is the planned spec, all T steps: certify(spec, δ)
    if problems:
        guarantee["certifies_target"] = False
    sha_final = C.state_sha256(work.state_dict())
    rule = spec.update_rule()
    nonempty = [b for b in batch_sizes if b > 0]
    cert = {
        "schema": C.SCHEMA,
        "schema_version": C.SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": plan_record,
        "plan_sha256": C.sha256_json(plan_record),
        "spec": spec.to_dict(),
        "ran": {
            "status": "completed",
            "steps_planned": T,
            "steps_run": counter["steps"],
            "spec": spec.to_dict(),
            "update_rule": rule.to_dict(),
            "schedule": C.schedule_rle(rule),
            "dp_sgd": {
                "library": "opacus",
                "opacus_version": opacus.__version__,
                "sampler": "poisson",
                "loader": "opacus.data_loader.DPDataLoader (UniformWithReplacementSampler)",
                "sample_rate": q,
                "training_size": n,
                "expected_batch_size": q * n,
                "steps": T,
                "optimizer_steps": counter["steps"],
                "noise_multiplier": z,
                "max_grad_norm": clip,
                "noise_std": z * clip,
                "clipping": "flat",
                "loss_reduction": "sum",
                "optimizer": "sgd",
                "learning_rate": lr,
                "grad_sample_mode": "hooks",
                "secure_mode": False,
                "opacus_accountant_history": opacus_history,
            },
            "batch_sizes": {
                "min": min(batch_sizes),
                "max": max(batch_sizes),
                "mean": sum(batch_sizes) / T,
                "empty_batches": T - len(nonempty),
            },
            "coverage": {
                "trained_parameters": [n_ for n_, p in work.named_parameters() if p.requires_grad],
                "dimension": dim,
            },
            "dtype": "float32",
            "device": str(device),
            "model_mode": "train",
            "allow_uncertified": bool(allow_uncertified),
            "plan_problems": problems,
        },
        "noise": {
            "generator": "Opacus DPOptimizer noise from noise_generator=torch.Generator on the "
            "device, seeded once with the key of label 'dpsgd-noise'; Poisson batches from a CPU "
            "generator keyed 'dpsgd-sample'; dropout from a forked RNG keyed 'dpsgd-model'",
            "key_scheme": KEY_SCHEME,
            "key_labels": dict(_DPSGD_KEYS),
            "seed_commitment": commitment,
            "guard": guard.summary(),
        },
        "model": {
            "sha256_before": sha_before,
            "sha256_after_noisy": sha_final,
            "sha256_final": sha_final,
            "hash_scheme": "sha256 over sorted state-dict keys: name|dtype|shape + raw bytes",
        },
        "data": {
            "training_size": n,
            "training_ids_sha256": ids_sha256(data_ids),
            "forget_size": None if forget_ids is None else len(forget_ids),
            "forget_ids_sha256": ids_sha256(forget_ids),
        },
        "environment": dict(_environment(), opacus=opacus.__version__),
        "guarantee": guarantee,
        "wall_seconds": {"total": time.perf_counter() - t_start},
    }
    work.train(model.training)
    cert, record = C.split_certificate(cert, history=history)
    paths = {}
    if out is not None:
        paths = _write_outputs(Path(out), cert, work, seed, commitment, history, record)
    return UnlearningRun(
        model=work,
        certificate=cert,
        history=history,
        status="completed",
        spec=spec,
        spec_ran=spec,
        paths=paths,
        record=record,
    )
