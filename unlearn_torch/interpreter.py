r"""Torch interpreter of an :class:`~unlearn_theory.update_rule.UpdateRule`.

The noised parameters live in ONE flat float32 vector x ∈ ℝ^d on the run's device; the model's
parameters are views into it (``param.data`` aliases a slice of x), so every operation is one
vector operation: one norm and one rescale per projection, one normal draw and one add per
noise op, one gradient per step. The gradient lands in one flat buffer G: each parameter's ``.grad`` is a
view of G, so autograd accumulates into it in place (no gather); a parameter that does not
influence the loss keeps a zero gradient -- and therefore gets the decay and the noise, as the
rule says. Per-example gradients use :func:`torch.func.functional_call` on ``x.split(...)``.

Each phase's ops are compiled once into a tuple of closures (no per-step dispatch, record-key
formatting or scalar conversions); a clip followed by decay and step runs as ONE pass
x ← (1 − γλ)x − γ·min(1, c/‖g‖)·g (``addmv`` of the d×1 matrix g and the 1-vector of the clip
factor), decay followed by step likewise. Statistics (norms, losses, the guard's) are queued as
device scalars and read in one sync per check (every 16 steps on the CPU in ``unlearn``).

Operations (docs/theory.md §6, update-rule module docstring), on the active coordinates
(all of x, or block b of a :class:`~unlearn_torch.blocks.Partition` in a phase with ``block=b``):

* ``ProjectBall(r)``: x ← x·min(1, r/‖x‖₂) -- the ball, never the sphere; norms before and after
  are recorded.
* ``Gradient``: g ← ∇L on a batch drawn for THIS step ("full": all retain data, in chunks;
  "cyclic": batch t mod ⌈n/b⌉ of the fixed index-order partition; "shuffle": a fresh keyed
  uniform batch without replacement). With ``per_example_clip`` each example's gradient is
  clipped first: ghost clipping by default (exact per-example norms from activations and output
  gradients, :mod:`unlearn_torch.per_sample`, then one backward pass of Σ f_i ℓ_i), else
  ``torch.func.vmap`` of ``grad`` in chunks, else a per-example loop. Restricted to the block before any clip. "poisson" is refused (DP-SGD
  baseline, see :class:`~unlearn_torch.errors.UnsupportedMethodError`).
* ``ClipGradient(c)``: g ← g·min(1, c/‖g‖₂) (the loss gradient only).
* ``WeightDecay(γ, λ)``: x ← (1 − γλ)x, a separate contraction applied after the clip.
* ``GradientStep(γ)``: x ← x − γg.
* ``AddNoise(σ)``, ``GradientNoise(σ)``: a fresh keyed draw (:class:`~unlearn_torch.noise.NoiseSource`)
  checked by the :class:`~unlearn_torch.noise.NoiseGuard`, added to x (resp. g).

**Rotated blocks** (a partition with a :class:`~unlearn_torch.blocks.Rotation` R,
``partition="rotations"``): the state of the noisy phase is z = Rx (:attr:`Interpreter.z`,
set from x once, before the prologue); every op of the prologue and of every phase acts on z
(all of it, or the coordinates of block b), the gradient op maps the loss gradient to R·g, and
after every op that moved z the parameters are recomputed as x = Rᵀz (never updated in place,
so rounding cannot drift x away from Rᵀz). The noise of phase b is drawn on block b of z, so the
noise applied to x is Rᵀ E_b ξ_b ~ N(0, σ² Rᵀ P_b R) (docs/unlearn_torch.md, "Rotated blocks").
"""

from __future__ import annotations

import bisect
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


def _update_stats_many(st: dict, vals: list[float]) -> None:
    """:func:`_update_stats` for each of ``vals`` in turn."""
    if not vals:
        return
    lo, hi = min(vals), max(vals)
    if any(v != v for v in vals):  # NaN: the same min/max as one at a time
        for v in vals:
            _update_stats(st, v)
        return
    st["count"] += len(vals)
    st["min"] = lo if st["min"] is None else min(st["min"], lo)
    st["max"] = hi if st["max"] is None else max(st["max"], hi)
    st["sum"] += sum(vals)
    st["last"] = vals[-1]


def _show_stats(st: dict) -> dict | None:
    if not st["count"]:
        return None
    return {"min": st["min"], "max": st["max"], "mean": st["sum"] / st["count"], "last": st["last"]}


class StepRecords:
    """Per-op statistics: device scalars queued per step (one list per op, appended to by the
    interpreter's compiled steps), folded into running host summaries (count, min, max, mean,
    last) at each :meth:`flush` -- one device sync per flush for all ops and losses together,
    O(1) memory per op whatever the number of steps."""

    def __init__(self):
        self.proj: dict[str, dict] = {}
        self.clip: dict[str, dict] = {}
        self.losses: list[float] = []  # mean batch loss of each step with a gradient (host)
        self.loss_steps: list[int] = []  # the step of each loss
        self.batch_sizes: dict[int, int] = {}
        self.per_example_mode: str | None = None
        # queues of 0-d tensors without grad; these list objects are never replaced
        self._pending_proj: dict[str, tuple[list, list]] = {}  # key -> (norms before, factors)
        self._pending_clip: dict[str, list] = {}  # key -> gradient norms before the clip
        self._pending_loss: list[torch.Tensor] = []
        self._pending_loss_steps: list[int] = []

    def proj_queue(self, key: str, radius: float) -> tuple[list, list]:
        """The two queues (norm before, factor min(1, r/norm)) of the projection ``key``."""
        if key not in self.proj:
            self.proj[key] = {
                "radius": radius,
                "above": 0,
                "before": _new_stats(),
                "after": _new_stats(),
            }
        return self._pending_proj.setdefault(key, ([], []))

    def clip_queue(self, key: str, clip: float) -> list:
        """The queue of gradient norms (before clipping) of the clip ``key``."""
        if key not in self.clip:
            self.clip[key] = {"clip": clip, "above": 0, "norms": _new_stats()}
        return self._pending_clip.setdefault(key, [])

    def add_proj(self, key: str, radius: float, before: torch.Tensor, factor: torch.Tensor):
        """Queue one projection: the norm before and the factor min(1, r/‖x‖) applied."""
        qb, qf = self.proj_queue(key, radius)
        qb.append(before.detach().reshape(()))
        qf.append(factor.detach().reshape(()))

    def add_clip(self, key: str, clip: float, norm: torch.Tensor):
        self.clip_queue(key, clip).append(norm.detach().reshape(()))

    def add_loss(self, step: int, loss: torch.Tensor):
        self._pending_loss.append(loss.detach().reshape(()))
        self._pending_loss_steps.append(step)

    def flush(self) -> None:
        """Fold the queued device scalars into the host summaries (one sync)."""
        tensors: list[torch.Tensor] = []
        plan = []
        for key, (qb, qf) in self._pending_proj.items():
            if qb:
                plan.append((True, key, len(qb)))
                tensors += qb
                tensors += qf
        for key, q in self._pending_clip.items():
            if q:
                plan.append((False, key, len(q)))
                tensors += q
        tensors += self._pending_loss
        if not tensors:
            return
        vals = torch.stack(tensors).double().tolist()
        i = 0
        for is_proj, key, k in plan:
            if is_proj:
                rec = self.proj[key]
                before, factor = vals[i : i + k], vals[i + k : i + 2 * k]
                i += 2 * k
                _update_stats_many(rec["before"], before)
                _update_stats_many(rec["after"], [b * f for b, f in zip(before, factor)])
                r = rec["radius"]
                rec["above"] += sum(1 for b in before if b > r)
            else:
                rec = self.clip[key]
                norms = vals[i : i + k]
                i += k
                _update_stats_many(rec["norms"], norms)
                c = rec["clip"]
                rec["above"] += sum(1 for v in norms if v > c)
        self.losses += vals[i:]
        self.loss_steps += self._pending_loss_steps
        for qb, qf in self._pending_proj.values():
            qb.clear()
            qf.clear()
        for q in self._pending_clip.values():
            q.clear()
        self._pending_loss.clear()
        self._pending_loss_steps.clear()

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
        declared_proj = {k: r["radius"] for k, r in self.proj.items()}
        declared_clip = {k: r["clip"] for k, r in self.clip.items()}
        self.proj = copy.deepcopy(state["proj"])
        self.clip = copy.deepcopy(state["clip"])
        for k, r in declared_proj.items():  # keys compiled steps already refer to
            self.proj_queue(k, r)
        for k, c in declared_clip.items():
            self.clip_queue(k, c)
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
        self.rotation = None if partition is None else partition.rotation
        self.z: torch.Tensor | None = None  # the state z = Rx of a rotated-blocks run
        self.rotation_check = None
        if self.rotation is not None:  # refuse a map that is not orthogonal before anything runs
            self.rotation_check = self.rotation.check(flat.x.device)
        self.chunk_size = int(chunk_size)
        self.fork_model_rng = fork_model_rng
        self.gradient_reduce = gradient_reduce  # distributed hook (unlearn_torch.distributed)
        self.device = flat.x.device
        self.records = StepRecords()
        self._per_example_vmap_ok = True
        self._ghost_ok = True  # exact ghost norms (unlearn_torch.per_sample) until they fail
        self._per_example_loss = None
        self._noise_bufs: dict = {}
        self._gbuf = torch.zeros_like(flat.x)
        named = dict(flat.model.named_parameters())
        self._grad_params = [named[n] for n in flat.names]
        self._grad_views = list(flat.views(self._gbuf).values())
        self._compiled: dict = {}  # phase index -> compiled step function
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
            if p.grad is not gv:
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

    def _add_ghost_clipped(self, g: torch.Tensor, X, y, clip: float) -> bool:
        """g += Σ_i min(1, clip/‖∇ℓ_i‖)·∇ℓ_i by ghost clipping (:func:`unlearn_torch.per_sample.
        clipped_gradient`: exact per-example norms from activations and output gradients for
        Linear/Conv2d/normalisation/embedding layers, chunked vmap for the rest, then one
        backward pass of Σ f_i ℓ_i). False (g untouched) when the model cannot be ghost-normed
        (e.g. BatchNorm in training mode); the caller then forms per-example gradients."""
        if not self._ghost_ok:
            return False
        from .per_sample import clipped_gradient, per_example_loss

        try:
            if self._per_example_loss is None:
                self._per_example_loss = per_example_loss(self.loss_fn)
            grads, _ = clipped_gradient(
                self.flat.model,
                self._per_example_loss,
                X,
                y,
                clip,
                reduction="sum",
                params=self.flat.names,
            )
        except (InvalidParameterError, RuntimeError, TypeError):
            self._ghost_ok = False
            return False
        for name, view in self.flat.views(g).items():
            view.add_(grads[name].to(view.dtype))
        self.records.per_example_mode = "ghost"
        return True

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
            if B <= chunk:  # one chunk: the batch's mean (or summed) loss as it is
                X, y = batch(0, B)
                scale = 1.0 if op.reduction == "mean" else float(B)
                return g, self._accumulate_grad(X, y, scale)
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
        c = float(op.per_example_clip)
        for start in range(0, B, chunk):
            X, y = batch(start, start + chunk)
            w = int(X.shape[0])
            if not self._add_ghost_clipped(g, X, y, c):
                pe = self._per_example_grads(X, y)
                norms = torch.linalg.vector_norm(pe, dim=1)
                factor = torch.where(norms > c, c / norms, torch.ones_like(norms))
                g.add_(factor @ pe)
            with torch.no_grad():
                loss_sum += self._loss_at(self.flat.x, X, y).detach() * w
        if op.reduction == "mean":
            g.div_(B)
        return g, loss_sum / B

    # -- execution ----------------------------------------------------------------------------
    def _noise_rows(self, block: int, n: int):
        """The (2, n) noise buffer of ``block`` and a one-element list holding the row to draw
        into next. The rows are used in turn: the guard reads the previous draw of the block
        from the other row (no copy), and it is not overwritten before the next draw."""
        key = (block, n)
        entry = self._noise_bufs.get(key)
        if entry is None:
            buf = torch.empty((2, n), dtype=torch.float32, device=self.device)
            entry = self._noise_bufs[key] = (buf, (buf[0], buf[1]), [0])
        return entry

    def _noise(self, n, std, *, kind, step, block, slot):
        """One keyed draw of n values into the block's next noise row, observed by the guard."""
        buf, rows, turn = self._noise_rows(block, n)
        i = turn[0]
        turn[0] = 1 - i
        xi = self.noise.draw(
            n, std, kind=kind, step=step, block=block, slot=slot, device=self.device, out=rows[i]
        )
        self.guard.observe_rows(buf, i, std, block=block, step=step)
        return xi

    def _compile(self, ops, *, kind: str, block: int | None, key_prefix: str):
        """The ops of one phase as a list of closures, built once per phase: per step no
        isinstance dispatch, no record-key formatting, no Python-float-to-tensor conversions.
        Returns ``run(step) -> loss or None``; semantics as in the module docstring."""
        device = self.device
        records = self.records
        bkey = -1 if block is None else block
        rot = self.rotation
        steps = []
        slot = 0
        # st: [xa, g, loss, dirty, idx]
        ops = tuple(ops)
        skip = 0
        for j, op in enumerate(ops):
            if skip:  # fused into the previous op's closure
                skip -= 1
                continue
            key = f"{key_prefix}.op{j}.{op.name}"
            nxt = ops[j + 1 : j + 3]
            # x ← βx − γ·s·g in one pass (addmv of the d×1 matrix g and the 1-vector s): the
            # clip factor s (or 1), the decay β and the step γ of the ops clip, decay, step
            decay_step = (
                len(nxt) == 2
                and isinstance(nxt[0], WeightDecay)
                and isinstance(nxt[1], GradientStep)
                and nxt[0].factor != 0.0  # addmv with β = 0 would not read x (NaN kept out)
            )
            if isinstance(op, ProjectBall):
                r = float(op.radius)
                rkey = f"{key}@{r:.6g}"
                qb, qf = records.proj_queue(rkey, r)
                rt = torch.tensor(r, dtype=torch.float32, device=device)

                def f(st, step, rt=rt, qb=qb, qf=qf):
                    xa = st[0]
                    nrm = torch.linalg.vector_norm(xa)
                    factor = torch.div(rt, nrm).clamp_max_(1.0)  # r/0 = inf -> 1: x = 0 stays
                    xa.mul_(factor)
                    qb.append(nrm)
                    qf.append(factor)
                    st[3] = True

            elif isinstance(op, Gradient):

                def f(st, step, op=op):
                    idx = st[4]
                    if st[3] and (idx is not None or rot is not None):
                        self._write_back(st)
                    if torch.is_grad_enabled():
                        g, loss = self.gradient(op, step)
                    else:
                        with torch.enable_grad():
                            g, loss = self.gradient(op, step)
                    if rot is not None:  # the gradient in z: ∇_z L(Rᵀz) = R g
                        g = rot.forward(g)
                    st[1] = g if idx is None else g.index_select(0, idx)
                    st[2] = loss

            elif isinstance(op, ClipGradient):
                c = float(op.clip)
                ckey = f"{key}@{c:.6g}"
                qc = records.clip_queue(ckey, c)
                ct = torch.tensor(c, dtype=torch.float32, device=device)
                if c > 0 and decay_step:
                    ct1 = ct.reshape(1)
                    beta, lr = float(nxt[0].factor), float(nxt[1].learning_rate)
                    skip = 2

                    def f(st, step, ct1=ct1, qc=qc, beta=beta, lr=lr):
                        g = st[1]
                        nrm = torch.linalg.vector_norm(g)
                        s = torch.div(ct1, nrm).clamp_max_(1.0)  # c/0 = inf -> 1
                        st[0].addmv_(g.unsqueeze(1), s, beta=beta, alpha=-lr)
                        qc.append(nrm)
                        st[3] = True

                elif c > 0:

                    def f(st, step, ct=ct, qc=qc):
                        g = st[1]
                        nrm = torch.linalg.vector_norm(g)
                        g.mul_(torch.div(ct, nrm).clamp_max_(1.0))  # c/0 = inf -> 1: g = 0 stays
                        qc.append(nrm)

                else:  # clip 0 zeroes the gradient (times 0: a NaN stays NaN, and is caught)

                    def f(st, step, qc=qc):
                        g = st[1]
                        qc.append(torch.linalg.vector_norm(g))
                        g.mul_(0.0)

            elif isinstance(op, (GradientNoise, AddNoise)):
                if op.std > 0:
                    std = float(op.std)
                    on_x = isinstance(op, AddNoise)

                    def f(st, step, std=std, slot=slot, on_x=on_x):
                        t = st[0] if on_x else st[1]
                        t.add_(
                            self._noise(t.numel(), std, kind=kind, step=step, block=bkey, slot=slot)
                        )
                        if on_x:
                            st[3] = True

                else:
                    f = None
                slot += 1
            elif isinstance(op, WeightDecay):
                if op.factor not in (0.0, 1.0) and nxt and isinstance(nxt[0], GradientStep):
                    one = torch.ones(1, dtype=torch.float32, device=device)
                    beta, lr = float(op.factor), float(nxt[0].learning_rate)
                    skip = 1

                    def f(st, step, one=one, beta=beta, lr=lr):
                        st[0].addmv_(st[1].unsqueeze(1), one, beta=beta, alpha=-lr)
                        st[3] = True

                elif op.factor != 1.0:
                    factor = float(op.factor)

                    def f(st, step, factor=factor):
                        st[0].mul_(factor)
                        st[3] = True

                else:
                    f = None
            elif isinstance(op, GradientStep):
                lr = float(op.learning_rate)

                def f(st, step, lr=lr):
                    st[0].sub_(st[1], alpha=lr)
                    st[3] = True

            else:  # pragma: no cover - every op of update_rule is handled above
                raise UnsupportedMethodError("op", op, "unknown update-rule operation")
            if f is not None:
                steps.append(f)
        steps = tuple(steps)
        x_full = self.flat.x

        if rot is not None:  # the state is z = Rx; x = Rᵀz after every op that moved z

            def run(step):
                z = self.rotated_state()
                if block is None:
                    st = [z, None, None, False, None]
                else:
                    idx = self.partition.index(block, device)
                    st = [z.index_select(0, idx), None, None, False, idx]
                for f in steps:
                    f(st, step)
                if st[3]:
                    self._write_back(st)
                return st[2]

        elif block is None or self.partition is None:  # one block: block 0 is all of x

            def run(step):
                st = [x_full, None, None, False, None]
                for f in steps:
                    f(st, step)
                return st[2]

        else:

            def run(step):
                idx = self.partition.index(block, device)
                st = [x_full.index_select(0, idx), None, None, False, idx]
                for f in steps:
                    f(st, step)
                if st[3]:
                    x_full.index_copy_(0, idx, st[0])
                return st[2]

        return run

    def rotated_state(self) -> torch.Tensor:
        """z = Rx of a rotated-blocks run (computed from x on first use, then the state)."""
        if self.z is None:
            self.z = self.rotation.forward(self.flat.x.detach())
        return self.z

    def set_rotated_state(self, z: torch.Tensor) -> None:
        """Resume a rotated-blocks run from its state z (x is recomputed as Rᵀz)."""
        self.z = z.to(device=self.device, dtype=torch.float32).clone()
        self.flat.x.copy_(self.rotation.inverse(self.z))

    def _write_back(self, st) -> None:
        """Write the active coordinates st[0] back into the state (z, or x for coordinate
        blocks); a rotated run then recomputes x = Rᵀz."""
        idx = st[4]
        if self.rotation is None:
            self.flat.x.index_copy_(0, idx, st[0])
        else:
            if idx is not None:
                self.z.index_copy_(0, idx, st[0])
            self.flat.x.copy_(self.rotation.inverse(self.z))
        st[3] = False

    def _run_ops(self, ops, *, kind: str, step: int, block: int | None, key_prefix: str):
        """Run ``ops`` once (compiled on the fly; the phases of ``run_step`` are compiled once).
        No autograd graph is recorded: x and the gradient buffer do not require gradients."""
        with torch.no_grad():
            return self._compile(ops, kind=kind, block=block, key_prefix=key_prefix)(step)

    def run_prologue(self) -> None:
        self._run_ops(
            self.rule.prologue, kind="prologue", step=0, block=None, key_prefix="prologue"
        )

    def run_step(self, step: int) -> None:
        pi = bisect.bisect_right(self._phase_ends, step)
        if pi >= len(self.rule.phases):
            raise UnsupportedMethodError("step", step, f"the rule has {self.rule.steps} steps")
        run = self._compiled.get(pi)
        if run is None:
            phase = self.rule.phases[pi]
            run = self._compiled[pi] = self._compile(
                phase.ops, kind="step", block=phase.block, key_prefix="step"
            )
        if self.fork_model_rng:
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.noise.model_rng_seed(step))
                loss = run(step)
        else:
            loss = run(step)
        if loss is not None:
            self.records._pending_loss.append(loss)  # 0-d, detached
            self.records._pending_loss_steps.append(step)
