r"""Torch interpreter of an :class:`~unlearn_theory.update_rule.UpdateRule`.

The noised parameters live in ONE flat float32 vector x ∈ ℝ^d on the run's device; the model's
parameters are views into it (``param.data`` aliases a slice of x), so every operation is one
vector operation: one norm and one rescale per projection, one normal draw and one add per
noise op, one gradient per step. The gradient lands in one flat buffer G: each parameter's ``.grad`` is a
view of G, so autograd accumulates into it in place (no gather); a parameter that does not
influence the loss keeps a zero gradient -- and therefore gets the decay and the noise, as the
rule says. Per-example gradients use :func:`torch.func.functional_call` on ``x.split(...)``.

Operations (docs/theory.md §6, update-rule module docstring), on the active coordinates
(all of x, or block b of a :class:`~unlearn_torch.blocks.Partition` in a phase with ``block=b``):

* ``ProjectBall(r)``: x ← x·min(1, r/‖x‖₂) -- the ball, never the sphere; norms before and after
  are recorded.
* ``Gradient``: g ← ∇L on a batch drawn for THIS step ("full": all retain data, in chunks;
  "cyclic": batch t mod ⌈n/b⌉ of the fixed index-order partition; "shuffle": a fresh keyed
  uniform batch without replacement). With ``per_example_clip`` each example's gradient is
  clipped first (``torch.func.vmap`` of ``grad``, in chunks; a per-example loop when vmap cannot
  trace the model). Restricted to the block before any clip. "poisson" is refused (DP-SGD
  baseline, see :class:`~unlearn_torch.errors.UnsupportedMethodError`).
* ``ClipGradient(c)``: g ← g·min(1, c/‖g‖₂) (the loss gradient only).
* ``WeightDecay(γ, λ)``: x ← (1 − γλ)x, a separate contraction applied after the clip.
* ``GradientStep(γ)``: x ← x − γg.
* ``AddNoise(σ)``, ``GradientNoise(σ)``: a fresh keyed draw (:class:`~unlearn_torch.noise.NoiseSource`)
  checked by the :class:`~unlearn_torch.noise.NoiseGuard`, added to x (resp. g).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import math

import torch
from torch import nn

from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.update_rule import (
    AddNoise,
    ClipGradient,
    Gradient,
    GradientNoise,
    GradientStep,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)

from .blocks import Partition
from .data import IndexedData
from .errors import UnsupportedMethodError
from .noise import NoiseGuard, NoiseSource

__all__ = ["FlatParameters", "Interpreter", "StepRecords", "check_rule_supported"]


class FlatParameters:
    """All noised parameters of ``model`` as views into one flat float32 vector ``x``."""

    def __init__(self, model: nn.Module, names: list[str], device):
        self.model = model
        self.names = list(names)
        params = dict(model.named_parameters())
        self.shapes = [tuple(params[n].shape) for n in self.names]
        self.numels = [params[n].numel() for n in self.names]
        device = torch.device(device)
        with torch.no_grad():
            self.x = torch.cat(
                [params[n].detach().reshape(-1).to(device, torch.float32) for n in self.names]
            )
        for n, view, shape in zip(self.names, self.x.split(self.numels), self.shapes):
            params[n].data = view.view(shape)
        self.dim = int(self.x.numel())

    @property
    def layout(self):
        return list(zip(self.names, self.shapes, self.numels))

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.numels), self.shapes)}

    def named_slices(self) -> dict[str, torch.Tensor]:
        return self.views(self.x)


def check_rule_supported(rule: UpdateRule) -> None:
    """Raise :class:`UnsupportedMethodError` for an op this interpreter does not run."""
    ops = list(rule.prologue) + [op for ph in rule.phases for op in ph.ops]
    for op in ops:
        if isinstance(op, Gradient) and op.batching == "poisson":
            raise UnsupportedMethodError(
                "batching",
                "poisson",
                "Poisson-sampled DP-SGD (method 'dp_sgd_group', the baseline) is trained "
                "through Opacus in a later issue; unlearn_torch does not run it",
            )
        if isinstance(op, Gradient) and op in rule.prologue:
            raise UnsupportedMethodError("prologue", op, "a gradient op must be inside a phase")


def _new_stats() -> dict:
    return {"count": 0, "min": None, "max": None, "sum": 0.0, "last": None}


def _update_stats(st: dict, val: float) -> None:
    st["count"] += 1
    st["min"] = val if st["min"] is None else min(st["min"], val)
    st["max"] = val if st["max"] is None else max(st["max"], val)
    st["sum"] += val
    st["last"] = val


def _show_stats(st: dict) -> dict | None:
    if not st["count"]:
        return None
    return {"min": st["min"], "max": st["max"], "mean": st["sum"] / st["count"], "last": st["last"]}


class StepRecords:
    """Per-op statistics: device scalars queued per step, folded into running host summaries
    (count, min, max, mean, last) at each :meth:`flush` -- one device sync per flush, O(1)
    memory per op whatever the number of steps."""

    def __init__(self):
        self.proj: dict[str, dict] = {}
        self.clip: dict[str, dict] = {}
        self._pending: list[tuple[str, str, torch.Tensor]] = []
        self.losses: list[float] = []  # mean batch loss of each step with a gradient (host)
        self.loss_steps: list[int] = []  # the step of each loss
        self._pending_loss: list[tuple[int, torch.Tensor]] = []
        self.batch_sizes: dict[int, int] = {}
        self.per_example_mode: str | None = None

    def add_proj(self, key: str, radius: float, before: torch.Tensor, after: torch.Tensor):
        if key not in self.proj:
            self.proj[key] = {
                "radius": radius,
                "above": 0,
                "before": _new_stats(),
                "after": _new_stats(),
            }
        self._pending.append(("proj", key, torch.stack([before, after])))

    def add_clip(self, key: str, clip: float, norm: torch.Tensor):
        if key not in self.clip:
            self.clip[key] = {"clip": clip, "above": 0, "norms": _new_stats()}
        self._pending.append(("clip", key, norm.reshape(1)))

    def add_loss(self, step: int, loss: torch.Tensor):
        self._pending_loss.append((step, loss))

    def flush(self) -> None:
        """Fold the queued device scalars into the host summaries (one sync)."""
        if self._pending:
            vals = torch.cat([t.detach().double().reshape(-1) for _, _, t in self._pending])
            vals = vals.cpu().tolist()
            i = 0
            for kind, key, _t in self._pending:
                if kind == "proj":
                    rec = self.proj[key]
                    before, after = vals[i], vals[i + 1]
                    i += 2
                    _update_stats(rec["before"], before)
                    _update_stats(rec["after"], after)
                    rec["above"] += int(before > rec["radius"])
                else:
                    rec = self.clip[key]
                    nrm = vals[i]
                    i += 1
                    _update_stats(rec["norms"], nrm)
                    rec["above"] += int(nrm > rec["clip"])
            self._pending = []
        if self._pending_loss:
            vals = torch.stack([t.detach().double().reshape(()) for _, t in self._pending_loss])
            self.losses.extend(vals.cpu().tolist())
            self.loss_steps.extend(step for step, _ in self._pending_loss)
            self._pending_loss = []

    def state(self) -> dict:
        self.flush()
        return {
            "proj": self.proj,
            "clip": self.clip,
            "loss": [x if math.isfinite(x) else str(x) for x in self.losses],
            "loss_steps": list(self.loss_steps),
            "batch_sizes": {str(k): v for k, v in self.batch_sizes.items()},
            "per_example_mode": self.per_example_mode,
        }

    def load_state(self, state: dict) -> None:
        self.proj = copy.deepcopy(state["proj"])
        self.clip = copy.deepcopy(state["clip"])
        self.losses = [float(x) for x in state["loss"]]
        self.loss_steps = [int(x) for x in state["loss_steps"]]
        self.batch_sizes = {int(k): int(v) for k, v in state["batch_sizes"].items()}
        self.per_example_mode = state.get("per_example_mode")

    def summary(self) -> dict:
        self.flush()
        proj = {
            k: {
                "radius": r["radius"],
                "count": r["before"]["count"],
                "fraction_projected": (
                    r["above"] / r["before"]["count"] if r["before"]["count"] else None
                ),
                "norm_before": _show_stats(r["before"]),
                "norm_after": _show_stats(r["after"]),
            }
            for k, r in self.proj.items()
        }
        clip = {
            k: {
                "clip": r["clip"],
                "count": r["norms"]["count"],
                "fraction_clipped": r["above"] / r["norms"]["count"]
                if r["norms"]["count"]
                else None,
                "gradient_norm": _show_stats(r["norms"]),
            }
            for k, r in self.clip.items()
        }
        return {
            "projections": proj,
            "clipping": clip,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "per_example_gradients": self.per_example_mode,
        }


class Interpreter:
    """Runs ``rule`` on ``flat`` (see the module docstring). Steps are 0-based global indices."""

    def __init__(
        self,
        *,
        flat: FlatParameters,
        rule: UpdateRule,
        data: IndexedData,
        loss_fn,
        noise: NoiseSource,
        guard: NoiseGuard,
        partition: Partition | None,
        chunk_size: int = 1024,
        fork_model_rng: bool = False,
        gradient_reduce=None,
    ):
        check_rule_supported(rule)
        self.flat = flat
        self.rule = rule
        self.data = data
        self.loss_fn = loss_fn
        self.noise = noise
        self.guard = guard
        self.partition = partition
        self.chunk_size = int(chunk_size)
        self.fork_model_rng = fork_model_rng
        self.gradient_reduce = gradient_reduce  # distributed hook (unlearn_torch.distributed)
        self.device = flat.x.device
        self.records = StepRecords()
        self._per_example_vmap_ok = True
        self._noise_bufs: dict = {}
        self._gbuf = torch.zeros_like(flat.x)
        named = dict(flat.model.named_parameters())
        self._grad_params = [named[n] for n in flat.names]
        self._grad_views = list(flat.views(self._gbuf).values())
        self._noise_turn: dict = {}
        self._phase_ends = []
        total = 0
        for ph in rule.phases:
            total += ph.steps
            self._phase_ends.append(total)
        if rule.blocks > 1 and partition is None:
            raise UnsupportedMethodError(
                "partition", None, f"the rule has {rule.blocks} blocks: a partition is needed"
            )

    # -- gradients ----------------------------------------------------------------------------
    def _loss_at(self, xg: torch.Tensor, X, y):
        out = torch.func.functional_call(self.flat.model, self.flat.views(xg), (X,))
        return self.loss_fn(out, y)

    def _batch_grad(self, X, y) -> tuple[torch.Tensor, torch.Tensor]:
        """(gradient wrt the flat vector, loss) by functional_call (a fresh tensor)."""
        xg = self.flat.x.detach().requires_grad_(True)
        loss = self._loss_at(xg, X, y)
        (g,) = torch.autograd.grad(loss, xg, allow_unused=True, materialize_grads=True)
        return g, loss.detach()

    def _accumulate_grad(self, X, y, weight: float) -> torch.Tensor:
        """Add weight·∇loss into the flat gradient buffer through the model's own ``.grad``
        (each parameter's ``.grad`` is a view of the buffer, so autograd accumulates in place:
        no gather, no copy; a parameter the loss does not reach keeps a zero gradient)."""
        params, views = self._grad_params, self._grad_views
        for p, gv in zip(params, views):
            p.grad = gv
        loss = self.loss_fn(self.flat.model(X), y)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise InvalidParameterError(
                "loss_fn",
                getattr(loss, "shape", type(loss).__name__),
                "must return a scalar tensor: the mean loss over the batch",
            )
        (loss * weight if weight != 1.0 else loss).backward()
        for p, gv in zip(params, views):
            if p.grad is not gv:  # a hook replaced .grad: fold it back into the buffer
                if p.grad is not None:
                    gv.add_(p.grad)
                p.grad = gv
        return loss.detach()

    def _per_example_grads(self, X, y) -> torch.Tensor:
        """(B, d) per-example gradients."""
        x = self.flat.x.detach()
        if self._per_example_vmap_ok:

            def single(xf, xi, yi):
                return self._loss_at(xf, xi.unsqueeze(0), yi.unsqueeze(0))

            try:
                out = torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0))(x, X, y)
                self.records.per_example_mode = "vmap"
                return out
            except Exception:  # vmap cannot trace every model: fall back to a loop
                self._per_example_vmap_ok = False
        self.records.per_example_mode = "loop"
        rows = []
        for i in range(X.shape[0]):
            g, _ = self._batch_grad(X[i : i + 1], y[i : i + 1])
            rows.append(g)
        return torch.stack(rows)

    def _batch_indices(self, op: Gradient, step: int) -> torch.Tensor | tuple[int, int]:
        """The step's batch: a (start, stop) range (full, cyclic) or an index tensor."""
        n = self.data.n if self.gradient_reduce is None else self.gradient_reduce.global_n
        if op.batching == "full":
            return (0, n)
        b = min(op.batch_size, n)
        if op.batching == "cyclic":
            nb = -(-n // b)
            j = step % nb
            return (j * b, min((j + 1) * b, n))
        if op.batching == "shuffle":
            return torch.randperm(n, generator=self.noise.batch_generator(step))[:b]
        raise UnsupportedMethodError("batching", op.batching, "not run by unlearn_torch")

    def gradient(self, op: Gradient, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat gradient g, mean batch loss) for step ``step``."""
        red = self.gradient_reduce  # distributed: this rank's part of the global batch, then
        if red is not None and not red.inside:  # the weighted all-reduce (before any clip)
            return red(self, op, step)
        idx = self._batch_indices(op, step) if red is None else red.local_idx
        if isinstance(idx, tuple):
            lo, hi = idx
            B = hi - lo

            def batch(a, b):
                return self.data.get_range(lo + a, lo + min(b, B))
        else:
            B = int(idx.numel())

            def batch(a, b):
                return self.data.get(idx[a:b])

        self.records.batch_sizes[B] = self.records.batch_sizes.get(B, 0) + 1
        chunk = self.chunk_size
        if op.per_example_clip is None:  # accumulate in the flat buffer, chunk by chunk
            g = self._gbuf
            g.zero_()
            loss_sum = torch.zeros((), device=self.device)
            for start in range(0, B, chunk):
                X, y = batch(start, start + chunk)
                w = int(X.shape[0])
                scale = w / B if op.reduction == "mean" else float(w)
                loss_sum += self._accumulate_grad(X, y, scale) * w
            return g, loss_sum / B
        g = torch.zeros_like(self.flat.x)
        loss_sum = torch.zeros((), device=self.device)
        if op.per_example_clip is not None:
            chunk = max(1, min(chunk, (1 << 26) // max(self.flat.dim, 1)))
        for start in range(0, B, chunk):
            X, y = batch(start, start + chunk)
            w = int(X.shape[0])
            pe = self._per_example_grads(X, y)
            norms = torch.linalg.vector_norm(pe, dim=1)
            c = float(op.per_example_clip)
            factor = torch.where(norms > c, c / norms, torch.ones_like(norms))
            g.add_(factor @ pe)
            with torch.no_grad():
                loss_sum += self._loss_at(self.flat.x, X, y).detach() * w
        if op.reduction == "mean":
            g.div_(B)
        return g, loss_sum / B

    # -- execution ----------------------------------------------------------------------------
    def _noise(self, n, std, *, kind, step, block, slot):
        # two buffers per (block, length), used in turn: the guard keeps a reference to the
        # previous draw of the block (no copy) and the next draw goes into the other buffer
        key = (block, n)
        bufs = self._noise_bufs.get(key)
        if bufs is None:
            bufs = self._noise_bufs[key] = [
                torch.empty(n, dtype=torch.float32, device=self.device) for _ in range(2)
            ]
            self._noise_turn[key] = 0
        i = self._noise_turn[key]
        self._noise_turn[key] = 1 - i
        xi = self.noise.draw(
            n, std, kind=kind, step=step, block=block, slot=slot, device=self.device, out=bufs[i]
        )
        self.guard.observe(xi, std, block=block, step=step, keep_reference=True)
        return xi

    def _run_ops(self, ops, *, kind: str, step: int, block: int | None, key_prefix: str):
        x_full = self.flat.x
        if block is None:
            idx = None
            xa = x_full
        else:
            idx = self.partition.index(block, self.device)
            xa = x_full.index_select(0, idx)
        bkey = -1 if block is None else block
        g = None
        loss = None
        slot = 0
        dirty = False
        with torch.no_grad():
            for j, op in enumerate(ops):
                key = f"{key_prefix}.op{j}.{op.name}"
                if isinstance(op, ProjectBall):
                    nrm = torch.linalg.vector_norm(xa)
                    r = float(op.radius)
                    factor = (r / nrm.clamp_min(1e-30)).clamp_max(1.0)
                    xa.mul_(factor)
                    self.records.add_proj(f"{key}@{r:.6g}", r, nrm, nrm * factor)
                    dirty = True
                elif isinstance(op, Gradient):
                    if idx is not None and dirty:
                        x_full.index_copy_(0, idx, xa)
                        dirty = False
                    with torch.enable_grad():
                        g, loss = self.gradient(op, step)
                    if idx is not None:
                        g = g.index_select(0, idx)
                elif isinstance(op, ClipGradient):
                    nrm = torch.linalg.vector_norm(g)
                    c = float(op.clip)
                    factor = (c / nrm.clamp_min(1e-30)).clamp_max(1.0)
                    g.mul_(factor)
                    self.records.add_clip(f"{key}@{c:.6g}", c, nrm)
                elif isinstance(op, GradientNoise):
                    if op.std > 0:
                        g.add_(
                            self._noise(
                                g.numel(), op.std, kind=kind, step=step, block=bkey, slot=slot
                            )
                        )
                    slot += 1
                elif isinstance(op, WeightDecay):
                    if op.factor != 1.0:
                        xa.mul_(op.factor)
                        dirty = True
                elif isinstance(op, GradientStep):
                    xa.sub_(g, alpha=float(op.learning_rate))
                    dirty = True
                elif isinstance(op, AddNoise):
                    if op.std > 0:
                        xa.add_(
                            self._noise(
                                xa.numel(), op.std, kind=kind, step=step, block=bkey, slot=slot
                            )
                        )
                        dirty = True
                    slot += 1
                else:  # pragma: no cover - every op of update_rule is handled above
                    raise UnsupportedMethodError("op", op, "unknown update-rule operation")
            if idx is not None and dirty:
                x_full.index_copy_(0, idx, xa)
        return loss

    def run_prologue(self) -> None:
        self._run_ops(
            self.rule.prologue, kind="prologue", step=0, block=None, key_prefix="prologue"
        )

    def run_step(self, step: int) -> None:
        pi = bisect.bisect_right(self._phase_ends, step)
        if pi >= len(self.rule.phases):
            raise UnsupportedMethodError("step", step, f"the rule has {self.rule.steps} steps")
        phase = self.rule.phases[pi]
        ctx = contextlib.nullcontext()
        if self.fork_model_rng:
            devices = [self.device] if self.device.type == "cuda" else []
            ctx = torch.random.fork_rng(devices=devices)
        with ctx:
            if self.fork_model_rng:
                torch.manual_seed(self.noise.model_rng_seed(step))
            loss = self._run_ops(
                phase.ops, kind="step", step=step, block=phase.block, key_prefix="step"
            )
        if loss is not None:
            self.records.add_loss(step, loss)
