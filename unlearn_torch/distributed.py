r"""Distributed (DistributedDataParallel-style) unlearning runs over :mod:`torch.distributed`.

Every rank runs the same update rule on the same parameters; each rank holds a SHARD of the
retain set. Shards may have any (non-zero) sizes: the global retain set is the concatenation of
the shards in rank order (rank 0's examples first), global example i lives on the rank whose
slice [offset_r, offset_r + n_r) holds it, and every batching rule selects its GLOBAL batch from
the global size N exactly as a single process holding the concatenation would ("full": all N;
"cyclic": batch t mod ⌈N/b⌉ of the index-order partition; "shuffle": the keyed permutation of
N). Each rank computes the gradient of its part of the global batch (B_r of the B examples,
per-example clipping included) and the ranks ALL-REDUCE it, weighted:

    g = (Σ_r B_r·g_r) / B   (reduction "mean"; g_r the mean over the rank's B_r examples)

which is the single-process gradient of the global batch up to float summation order. The
all-reduce happens BEFORE any clip (the clip, the decay, the step and the noise act on the
reduced gradient, identically on every rank), so the sensitivity analysis of the
single-process rule (docs/theory.md §6) applies unchanged and the certificate's (ε, δ) is the
single-process one.

Noise is added exactly once per coordinate per step:

* ``"broadcast"`` (default): rank 0 draws the keyed noise
  (:class:`~unlearn_torch.noise.NoiseSource`, the same keys as a single-process run, so the
  noise is bit-identical to the single-process draws) and broadcasts it; the other ranks add
  what they receive.
* ``"replicated"``: every rank draws the same counter-keyed noise itself (no communication).
  Valid on homogeneous hardware only (identical generators and float arithmetic); the ranks
  compare a parameter checksum every ``checksum_every`` steps and at the end and abort on a
  mismatch (:class:`ReplicaMismatchError`).

Checksums (both modes): the int32 bit patterns of the flat parameter vector, summed plain and
position-weighted in int64 (wrap-around), gathered from every rank and compared for equality.

Bound direction and validity. Nothing here changes what is certified: the reduced gradient,
the clip and the noise are those of the single-process rule, so the certificate's ε is the
accountant's upper bound (or exact value) for that rule. Validity domain: the parameters equal
the single-process ones only up to float summation order (the reduction sums in another
order), which does not enter the analysis (the clip bounds the sensitivity whatever the
gradient's rounding); "replicated" additionally needs bit-identical generators and arithmetic
on every rank, which the checksums check. Reference for the data-parallel pattern (gradient
all-reduce of equal-weight shards): S. Li et al., 2020, "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", arXiv:2006.15704.

Failure. Every collective of the run is preceded by a one-element status all-reduce on a
process group of our own (``timeout`` seconds). A rank that raises joins the next status
all-reduce with its flag set, then every rank gathers the error messages and raises: the
failing rank its own exception, the others :class:`DistributedRunError` naming the failed
rank. A stop (callback or Ctrl-C on any rank) is agreed at the step boundary. Only rank 0
writes files, and only after every rank has reported success; no rank writes anything when
the run fails. Not supported distributed (one named error on every rank): Poisson-sampled
DP-SGD (``dp_sgd_group``, Opacus), checkpoints, fine-tuning, normalisation buffers.
"""

from __future__ import annotations

import datetime
import math
import pickle
from dataclasses import dataclass

import torch

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

from .errors import RunFailedError
from .noise import NoiseSource

__all__ = [
    "NOISE_MODES",
    "DistributedConfig",
    "DistributedRunError",
    "DistributedMismatchError",
    "ReplicaMismatchError",
    "resolve",
    "Context",
    "GradientAllReduce",
    "BroadcastNoiseSource",
    "parameter_checksum",
    "refuse_distributed",
]

NOISE_MODES = ("broadcast", "replicated")


class DistributedRunError(RunFailedError):
    """Another rank failed (its error is in the message and ``record``), or a collective
    failed or timed out; no rank wrote a certificate."""


class DistributedMismatchError(InvalidParameterError):
    """The ranks were given inconsistent inputs (plan, model, seed, settings, shard layout)."""


class ReplicaMismatchError(RunFailedError):
    """The ranks' parameters differ (checksum mismatch): the replicas diverged."""


@dataclass(frozen=True)
class DistributedConfig:
    """``noise``: "broadcast" or "replicated"; ``checksum_every``: steps between parameter
    checksum comparisons (and one at the end); ``timeout``: seconds any collective of the run
    may wait; ``group``: a process group to build the run's own group from (default: WORLD)."""

    noise: str = "broadcast"
    checksum_every: int = 16
    timeout: float = 300.0
    group: object = None

    def __post_init__(self):
        if self.noise not in NOISE_MODES:
            raise InvalidParameterError("distributed.noise", self.noise, f"one of {NOISE_MODES}")
        v.check_int("distributed.checksum_every", self.checksum_every, minimum=1)
        v.check_positive("distributed.timeout", self.timeout)


def resolve(distributed) -> DistributedConfig | None:
    """None when the run is single-process. ``distributed``: None (auto: distributed when
    torch.distributed is initialised with more than one rank), False, True, a noise mode
    string, a dict of :class:`DistributedConfig` fields, or a DistributedConfig."""
    import torch.distributed as dist

    if distributed is False:
        return None
    if distributed is None:
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return None
        distributed = True
    if distributed is True:
        cfg = DistributedConfig()
    elif isinstance(distributed, str):
        cfg = DistributedConfig(noise=distributed)
    elif isinstance(distributed, dict):
        extra = set(distributed) - {"noise", "checksum_every", "timeout", "group"}
        if extra:
            raise InvalidParameterError("distributed", sorted(extra), "unknown keys")
        cfg = DistributedConfig(**distributed)
    elif isinstance(distributed, DistributedConfig):
        cfg = distributed
    else:
        raise InvalidParameterError(
            "distributed", distributed, "None, a bool, a noise mode, a dict or DistributedConfig"
        )
    if not (dist.is_available() and dist.is_initialized()):
        raise InvalidParameterError(
            "distributed", cfg.noise, "needs torch.distributed initialised (init_process_group)"
        )
    return cfg


def parameter_checksum(x: torch.Tensor) -> list[int]:
    """[Σ b_i, Σ (1 + i mod 65521)·b_i] in wrapping int64 over the int32 bit patterns b_i of
    the float32 vector ``x``: equal vectors give equal checksums; a changed coordinate changes
    the first sum unless its bit pattern is unchanged."""
    b = x.detach().contiguous().view(torch.int32).to(torch.int64)
    w = torch.arange(b.numel(), device=b.device, dtype=torch.int64) % 65521 + 1
    return [int(b.sum()), int((b * w).sum())]


class Context:
    """One distributed run: its process group, the status protocol and the collectives."""

    def __init__(self, cfg: DistributedConfig):
        import torch.distributed as dist

        self.dist = dist
        self.cfg = cfg
        self.backend = str(dist.get_backend(cfg.group))
        timeout = datetime.timedelta(seconds=float(cfg.timeout))
        if cfg.group is None:
            self.group = dist.new_group(timeout=timeout)
        else:  # only the group's members call unlearn
            self.group = dist.new_group(
                ranks=dist.get_process_group_ranks(cfg.group),
                timeout=timeout,
                use_local_synchronization=True,
            )
        self.rank = dist.get_rank(self.group)
        self.world = dist.get_world_size(self.group)
        self.src = dist.get_global_rank(self.group, 0)
        if "nccl" in self.backend:
            self.comm_device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.comm_device = torch.device("cpu")
        self.closed = False
        self.outputs = None  # rank 0's files to write: set by the run
        self.checks: list[int] = []
        self.last_checksum = None
        self.broadcasts = 0

    # -- the status protocol ---------------------------------------------------------------
    def _collective(self, fn, what: str):
        try:
            return fn()
        except Exception as exc:  # a timeout or a lost peer: no further collective is safe
            err = DistributedRunError(
                f"distributed run: the collective {what!r} failed on rank {self.rank}: {exc}"
            )
            err._resolved = True
            self.close()
            raise err from exc

    def _status(self, fail: bool, stop: bool = False) -> tuple[float, float]:
        t = torch.tensor([float(fail), float(stop)], device=self.comm_device)
        self._collective(
            lambda: self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM, group=self.group),
            "status",
        )
        return float(t[0]), float(t[1])

    def _gather_errors(self, mine) -> list:
        out = [None] * self.world
        self._collective(lambda: self.dist.all_gather_object(out, mine, group=self.group), "errors")
        return out

    def _peer_failed(self):
        errors = self._gather_errors(None)
        self.close()
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        text = "; ".join(f"rank {r}: {e[0]}: {e[1]}" for r, e in failed)
        err = DistributedRunError(
            f"distributed run failed on another rank ({text}); no certificate was written",
            record={"failed_ranks": [r for r, _ in failed], "errors": [e for _, e in failed]},
        )
        err._resolved = True
        raise err

    def check(self, stop: bool = False) -> bool:
        """Status all-reduce: raise when a rank failed; return whether any rank asks to stop."""
        fail, stops = self._status(False, stop)
        if fail:
            self._peer_failed()
        return stops > 0

    def fail(self, exc: BaseException):
        """Called on a rank that raised: tell the others, gather every error, re-raise."""
        if getattr(exc, "_resolved", False) or self.closed:
            raise exc
        try:
            self._status(True)
            self._gather_errors((type(exc).__name__, str(exc)[:2000]))
        except DistributedRunError:
            pass
        finally:
            self.close()
        raise exc

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.dist.destroy_process_group(self.group)
            except Exception:  # pragma: no cover - best effort
                pass

    # -- collectives (each preceded by the status check) ------------------------------------
    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        self.check()
        buf = t if t.device == self.comm_device else t.to(self.comm_device)
        self._collective(lambda: self.dist.all_reduce(buf, group=self.group), "all_reduce")
        if buf is not t:
            t.copy_(buf)
        return t

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        self.check()
        buf = t if t.device == self.comm_device else t.to(self.comm_device)
        self._collective(
            lambda: self.dist.broadcast(buf, src=self.src, group=self.group), "broadcast"
        )
        if buf is not t:
            t.copy_(buf)
        self.broadcasts += 1
        return t

    def gather(self, obj) -> list:
        self.check()
        out = [None] * self.world
        self._collective(lambda: self.dist.all_gather_object(out, obj, group=self.group), "gather")
        return out

    def from_root(self, obj):
        return self.gather(obj)[0]

    # -- run-level checks -------------------------------------------------------------------
    def agree(self, config: dict) -> None:
        """Every rank must have been given the same run (hashes of plan, model, settings)."""
        configs = self.gather(pickle.dumps(config))
        if len(set(configs)) > 1:
            ref = pickle.loads(configs[0])
            for r, c in enumerate(configs):
                other = pickle.loads(c)
                diff = sorted(k for k in set(ref) | set(other) if ref.get(k) != other.get(k))
                if diff:
                    raise DistributedMismatchError(
                        "distributed",
                        diff,
                        f"rank {r} was given a different run than rank 0 (these settings "
                        "differ); every rank must call unlearn with the same plan, model, "
                        "seed and settings",
                    )

    def compare_checksum(self, x: torch.Tensor, step: int) -> None:
        cs = self.gather(parameter_checksum(x))
        if any(c != cs[0] for c in cs):
            bad = [r for r, c in enumerate(cs) if c != cs[0]]
            raise ReplicaMismatchError(
                f"parameter checksum mismatch after step {step}: ranks {bad} differ from rank 0 "
                f"({self.cfg.noise} noise); the replicas diverged -- no certificate is written"
            )
        self.checks.append(int(step))
        self.last_checksum = cs[0]

    def record(self, shard_sizes, reducer) -> dict:
        return {
            "world_size": self.world,
            "backend": self.backend,
            "noise": self.cfg.noise,
            "noise_transport": (
                "rank 0 draws the keyed noise and broadcasts it"
                if self.cfg.noise == "broadcast"
                else "every rank draws the same counter-keyed noise (homogeneous hardware)"
            ),
            "noise_draws_broadcast": self.broadcasts if self.cfg.noise == "broadcast" else None,
            "shard_sizes": list(shard_sizes),
            "global_order": "the shards concatenated in rank order",
            "gradient_reduce": (
                "weighted all-reduce (sum_r B_r g_r)/B of the ranks' parts of the global batch, "
                "before the clip"
            ),
            "gradient_reductions": reducer.calls,
            "checksum": {
                "every": self.cfg.checksum_every,
                "checks": len(self.checks),
                "last_step": self.checks[-1] if self.checks else None,
                "matched": True,
                "final": None if self.last_checksum is None else list(self.last_checksum),
                "scheme": "int64 wrapping sums of the float32 bit patterns (plain, weighted)",
            },
            "files_written_by": "rank 0, after every rank reported success",
        }

    def run(self, body, write):
        """``body()`` on every rank; then, when every rank succeeded, ``write()`` on rank 0;
        then a last status check so that a failed write fails every rank."""
        try:
            result = body()
            self.check()
        except BaseException as exc:
            self.fail(exc)
        err = None
        if self.rank == 0:
            try:
                write(result)
            except BaseException as exc:  # noqa: BLE001 - reported to every rank below
                err = exc
        if err is not None:
            self.fail(err)
        try:
            self.check()
        finally:
            self.close()
        return result


class GradientAllReduce:
    """The interpreter's ``gradient_reduce`` hook: this rank's part of the global batch, then
    the weighted all-reduce (see the module docstring). ``global_n`` is what the interpreter's
    batching rule selects from; ``inside``/``local_idx`` drive its local pass."""

    def __init__(self, ctx: Context, offset: int, local_n: int, global_n: int, dim: int, device):
        self.ctx = ctx
        self.offset = int(offset)
        self.local_n = int(local_n)
        self.global_n = int(global_n)
        self.inside = False
        self.local_idx = None
        self.buf = torch.zeros(dim + 1, dtype=torch.float32, device=device)
        self.out = torch.zeros(dim, dtype=torch.float32, device=device)
        self.batch_sizes: dict[int, int] = {}
        self.calls = 0

    def _local(self, idx):
        lo, hi = self.offset, self.offset + self.local_n
        if isinstance(idx, tuple):
            a, b = idx
            B = b - a
            s, e = max(a, lo), min(b, hi)
            if e <= s:
                return (0, 0), B, 0
            return (s - lo, e - lo), B, e - s
        B = int(idx.numel())
        local = idx[(idx >= lo) & (idx < hi)] - lo
        return local, B, int(local.numel())

    def __call__(self, interp, op, step):
        idx, B, Br = self._local(interp._batch_indices(op, step))
        self.batch_sizes[B] = self.batch_sizes.get(B, 0) + 1
        d = self.out.numel()
        buf = self.buf
        if Br > 0:
            self.inside, self.local_idx = True, idx
            try:
                g, loss = interp.gradient(op, step)
            finally:
                self.inside, self.local_idx = False, None
            wg = float(Br) if op.reduction == "mean" else 1.0
            buf[:d].copy_(g).mul_(wg)
            buf[d] = loss.detach().reshape(()) * float(Br)
        else:
            buf.zero_()
        self.ctx.all_reduce_sum(buf)
        self.calls += 1
        if op.reduction == "mean":
            self.out.copy_(buf[:d]).div_(B)
        else:
            self.out.copy_(buf[:d])
        return self.out, buf[d] / B


class BroadcastNoiseSource(NoiseSource):
    """Keyed draws made on rank 0 only and broadcast to every rank (``"broadcast"`` mode):
    the values are rank 0's :meth:`NoiseSource.draw` bit for bit."""

    def __init__(self, seed: int, ctx: Context):
        super().__init__(seed)
        self.ctx = ctx

    def draw(self, n, std, *, device="cpu", out=None, **key):
        if out is None:
            out = torch.empty(n, dtype=torch.float32, device=device)
        if self.ctx.rank == 0:
            super().draw(n, std, device=device, out=out, **key)
        return self.ctx.broadcast(out)


def check_method(rule, spec) -> None:
    """Poisson-sampled DP-SGD (Opacus) is not run distributed: a named error, raised before
    anything else looks at the rule."""
    from unlearn_theory.update_rule import Gradient

    from .errors import UnsupportedMethodError

    poisson = any(
        isinstance(op, Gradient) and op.batching == "poisson" for ph in rule.phases for op in ph.ops
    )
    if poisson or spec.method == "dp_sgd_group":
        raise UnsupportedMethodError(
            "distributed",
            spec.method,
            "Poisson-sampled DP-SGD (dp_sgd_group, trained through Opacus) is not supported in "
            "distributed runs; run it on one process",
        )


def refuse_distributed(name: str, what: str) -> None:
    """For a code path that has no distributed form (e.g. training DP-SGD through Opacus):
    raise :class:`~unlearn_torch.errors.UnsupportedMethodError` naming ``name`` when
    torch.distributed is initialised with more than one rank, instead of every rank running
    (and writing) on its own."""
    import torch.distributed as dist

    from .errors import UnsupportedMethodError

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise UnsupportedMethodError(
            name,
            what,
            f"is not supported in distributed runs ({dist.get_world_size()} ranks); run it on "
            "one process",
        )


def check_supported(*, fine_tune, checkpoint, norm_buffers) -> None:
    """Named errors for the options a distributed run does not support."""
    from .errors import UnsupportedBufferError

    if checkpoint is not None:
        raise InvalidParameterError(
            "checkpoint", str(checkpoint), "checkpoints are not supported in distributed runs"
        )
    if fine_tune is not None:
        raise InvalidParameterError(
            "fine_tune",
            fine_tune,
            "is not supported in distributed runs: fine-tune the returned model afterwards "
            "(noiseless post-processing on retain data)",
        )
    if norm_buffers:
        raise UnsupportedBufferError(
            "model",
            norm_buffers[:4],
            "normalisation statistics differ per shard: distributed runs refuse BatchNorm-style "
            "buffers (declare them public if they do not depend on the forget set)",
        )


def shard_layout(ctx: Context, n_local: int, ids_local: list) -> tuple[list[int], int, list]:
    """(shard sizes, this rank's offset, the global ids in global order); raises
    DistributedMismatchError on ids repeated across shards."""
    parts = ctx.gather((int(n_local), ids_local))
    sizes = [n for n, _ in parts]
    offset = sum(sizes[: ctx.rank])
    ids = [i for _, part in parts for i in part]
    try:
        keys = [int(i) for i in ids]
    except (TypeError, ValueError):
        keys = [str(i) for i in ids]
    if len(set(keys)) != len(keys):
        raise DistributedMismatchError(
            "retain_ids",
            f"{len(keys) - len(set(keys))} repeated",
            "the retain shards overlap (an id is held by two shards or twice): each retain "
            "example must live on exactly one rank",
        )
    return sizes, offset, ids


def config_digest(**items) -> dict:
    """A picklable dict of what every rank must agree on (floats made exact)."""
    out = {}
    for k, val in items.items():
        if isinstance(val, float) and math.isnan(val):
            val = "nan"
        out[k] = val
    return out
