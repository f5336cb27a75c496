r"""Counter-keyed Gaussian noise and the runtime guard that checks every draw.

**Keyed draws.** Every noise draw is identified by a key: the secret run seed and a label
``(kind, step, block, slot)``. The key is mapped to a 63-bit generator seed by SHA-256
(:func:`derive_key`), a :class:`torch.Generator` on the parameter's device is re-seeded with it,
and N(0, σ²) float32 values are drawn on that device. Consequences: no two draws of a run share
a key, so no draw is ever reused (across steps, blocks or parameter tensors -- all noised
parameters form one flat vector and get one draw); a resumed run draws exactly the noise the
uninterrupted run would have drawn; an auditor holding the seed can replay any step; and the
global RNG is never touched.

**The seed is secret**: whoever holds it can subtract the noise and recover the un-noised
iterate. The certificate holds only a salted commitment SHA-256(salt ‖ seed) (:func:`commit_seed`);
the seed itself goes to a separate file for auditors.

**Guard.** For an honest draw ξ ~ N(0, σ²I_n):

* q = ‖ξ‖²/(nσ²) ~ χ²_n/n exactly, and
* the cosine c = ⟨ξ_t, ξ_{t'}⟩/(‖ξ_t‖‖ξ_{t'}‖) between two independent draws of the same
  stream satisfies (1 + c)/2 ~ Beta((n−1)/2, (n−1)/2) exactly (c is the first coordinate of a
  uniform point on S^{n−1}; its standard deviation is 1/√n).

:class:`NoiseGuard` checks each draw's q and its cosine with the previous draw of the same block
against the exact two-sided quantiles at a per-test level α/(4·draws), and the pooled
Σ‖ξ‖²/σ² ~ χ²_{Σn} at level α/2 at the end (Bonferroni: the family-wise false-alarm rate of an
honest run is at most α, default 1e-6). Cost: O(n) per draw. On the interpreter's path
(:meth:`NoiseGuard.observe_rows`) each block draws into the two rows of one (2, n) buffer in turn,
and ONE matrix-vector product (buffer · ξ) gives ‖ξ‖² and ⟨ξ, ξ_prev⟩ together (‖ξ_prev‖² is the
previous draw's own ‖ξ‖²), with no copy; the statistics stay on the device until
:meth:`NoiseGuard.check` (no host sync per step), which judges every pending draw. Reused noise gives c = 1 and half noise gives q = 1/4; both leave the bands for any
n ≥ 10 and, pooled, for any run of more than a few draws.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct

import torch

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

from .errors import NoiseGuardError

__all__ = [
    "KEY_SCHEME",
    "new_seed",
    "derive_key",
    "commit_seed",
    "check_commitment",
    "NoiseSource",
    "NoiseGuard",
]

KEY_SCHEME = (
    "sha256(b'unlearn-noise/v1\\0' + kind.encode() + b'\\0' + "
    "struct.pack('>qqqq', seed, step, block, slot))[:8] big-endian & (2**63-1)"
)
_KEY_TAG = b"unlearn-noise/v1\0"
COMMIT_SCHEME = "sha256(salt_bytes || seed as decimal ascii)"


def new_seed() -> int:
    """A fresh secret 63-bit seed from the operating system's CSPRNG."""
    return secrets.randbits(63)


def _check_seed(seed) -> int:
    seed = v.check_int("seed", seed, minimum=0)
    if seed >= 2**63:
        raise InvalidParameterError("seed", seed, "must be < 2**63")
    return seed


def derive_key(seed: int, kind: str, step: int, block: int, slot: int) -> int:
    """63-bit generator seed of one draw: SHA-256 of a domain tag, the kind and the packed
    (seed, step, block, slot) (see :data:`KEY_SCHEME`)."""
    msg = _KEY_TAG + kind.encode() + b"\0" + struct.pack(">qqqq", seed, step, block, slot)
    return int.from_bytes(hashlib.sha256(msg).digest()[:8], "big") & (2**63 - 1)


def commit_seed(seed: int, salt: bytes | None = None) -> dict:
    """Salted commitment to the seed: {"scheme", "salt" (hex), "sha256"}; reveals nothing."""
    seed = _check_seed(seed)
    salt = secrets.token_bytes(16) if salt is None else bytes(salt)
    digest = hashlib.sha256(salt + str(seed).encode()).hexdigest()
    return {"scheme": COMMIT_SCHEME, "salt": salt.hex(), "sha256": digest}


def check_commitment(seed: int, commitment: dict) -> bool:
    """Whether ``seed`` opens ``commitment`` (as written by :func:`commit_seed`)."""
    try:
        salt = bytes.fromhex(commitment["salt"])
    except (KeyError, TypeError, ValueError):
        return False
    return commit_seed(seed, salt)["sha256"] == commitment.get("sha256")


class NoiseSource:
    """Keyed N(0, σ²) draws in float32 on a given device, one re-seeded generator per device.

    ``draw(n, std, kind=..., step=..., block=..., slot=..., device=...)`` returns a fresh
    float32 vector of length n; the same arguments always give the same vector (replay), any
    other arguments a draw from an independent stream. ``block`` is -1 for "all coordinates".
    """

    def __init__(self, seed: int):
        self.seed = _check_seed(seed)
        self._generators: dict = {}  # torch.device -> its one torch.Generator

    def generator(self, device, key: int) -> torch.Generator:
        """The one generator of ``device`` (created once), re-seeded with ``key``."""
        gen = self._generators.get(device)  # fast path: a torch.device seen before
        if gen is None:
            dev = torch.device(device)
            if dev.type == "cuda" and dev.index is None:
                dev = torch.device("cuda", torch.cuda.current_device())
            gen = self._generators.get(dev)
            if gen is None:
                gen = torch.Generator(device=dev)
                self._generators[dev] = gen
        gen.manual_seed(key)
        return gen

    def draw(
        self,
        n: int,
        std: float,
        *,
        kind: str = "step",
        step: int,
        block: int = -1,
        slot: int = 0,
        device="cpu",
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        key = derive_key(self.seed, kind, step, block, slot)
        gen = self.generator(device, key)
        if out is None:
            out = torch.empty(n, dtype=torch.float32, device=device)
        return out.normal_(0.0, float(std), generator=gen)

    def batch_generator(self, step: int) -> torch.Generator:
        """CPU generator keyed by (seed, "batch", step): mini-batch indices of step ``step``."""
        return self.generator("cpu", derive_key(self.seed, "batch", step, -1, 0))

    def model_rng_seed(self, step: int) -> int:
        """Seed for the model's own randomness (dropout) at step ``step``."""
        return derive_key(self.seed, "model", step, -1, 0)


def _chi2_band(n: int, alpha: float) -> tuple[float, float]:
    from scipy import stats

    return (
        float(stats.chi2.ppf(alpha / 2, n) / n),
        float(stats.chi2.isf(alpha / 2, n) / n),
    )


def _cosine_bound(n: int, alpha: float) -> float:
    """Two-sided bound on |cos| of two independent isotropic Gaussians in ℝ^n (n ≥ 2)."""
    from scipy import stats

    a = (n - 1) / 2.0
    return float(2.0 * stats.beta.isf(alpha / 2, a, a) - 1.0)


class NoiseGuard:
    """Checks each draw's norm and its correlation with the previous draw of the same block.

    ``draws``: the number of draws the run makes (for the Bonferroni split);
    ``false_alarm``: family-wise false-alarm probability of an honest run (default 1e-6).
    ``observe`` records statistics on the device; ``check`` pulls them and raises
    :class:`NoiseGuardError` on a violation; ``finish`` adds the pooled χ² test.
    """

    def __init__(self, draws: int, *, false_alarm: float = 1e-6):
        self.draws = v.check_int("draws", draws, minimum=0)
        self.false_alarm = v.check_in_range("false_alarm", false_alarm, 0.0, 1.0)
        self.alpha_draw = self.false_alarm / (4.0 * max(self.draws, 1))
        self._pending_q: list[torch.Tensor] = []
        self._pending_c: list[torch.Tensor] = []
        self._pending_meta: list[tuple[int, int, int]] = []  # (n, block, step)
        self._prev: dict[int, torch.Tensor] = {}
        # observe_rows: (s = buf·ξ, row i, n, σ, block, step, has_prev, ‖prev‖² or None)
        self._pending_rows: list[tuple] = []
        self._prev_rows: dict[int, tuple[torch.Tensor, int]] = {}  # block -> (buffer, row)
        self._last_sq: dict[int, float] = {}  # block -> ‖last checked row draw‖²
        self._bands: dict[int, tuple[float, float, float]] = {}
        # host-side record of checked statistics
        self.q: list[float] = []
        self.corr: list[float | None] = []
        self.n: list[int] = []
        self.checked = 0

    def band(self, n: int) -> tuple[float, float, float]:
        """(q_low, q_high, cosine bound) for a draw of length n."""
        if n not in self._bands:
            lo, hi = _chi2_band(n, self.alpha_draw)
            cb = _cosine_bound(n, self.alpha_draw) if n >= 2 else math.inf
            self._bands[n] = (lo, hi, cb)
        return self._bands[n]

    def observe(
        self,
        xi: torch.Tensor,
        std: float,
        *,
        block: int = -1,
        step: int = 0,
        keep_reference: bool = False,
    ) -> None:
        """Record q = ‖ξ‖²/(nσ²) and the cosine with the previous draw of ``block``.

        ``keep_reference``: the caller guarantees ``xi`` is not overwritten before the next
        draw of this block, so the guard keeps it without a copy."""
        n = xi.numel()
        nrm = torch.linalg.vector_norm(xi)
        self._pending_q.append(nrm.square() / (n * float(std) ** 2))
        prev = self._prev.get(block)
        if prev is None and block in self._prev_rows:
            buf, i = self._prev_rows[block]
            prev = buf[i]
        if prev is not None and prev.numel() == n:
            den = nrm * torch.linalg.vector_norm(prev)
            self._pending_c.append(torch.dot(xi, prev) / den)
        else:
            self._pending_c.append(torch.full((), math.nan, device=xi.device))
        self._prev[block] = xi.detach() if keep_reference else xi.detach().clone()
        self._prev_rows.pop(block, None)
        self._pending_meta.append((n, block, step))

    def observe_rows(self, buf: torch.Tensor, i: int, std: float, *, block: int, step: int):
        """Record the draw in row ``i`` of the (2, n) buffer ``buf``: the fast path of
        :meth:`observe` for a caller that draws each block's noise into the two rows of one
        buffer in turn (so row 1 − i holds the block's previous draw, and row i is not
        overwritten before the block's next draw).

        One matrix-vector product s = buf·ξ gives ‖ξ‖² = s_i and ⟨ξ, ξ_prev⟩ = s_{1−i}, left
        on the device; ‖ξ_prev‖² is the previous draw's own s_i (kept on the host by
        :meth:`check`), so :meth:`check` judges exactly the q and cosine :meth:`observe` would.
        A previous draw of the block that did not come through this buffer (:meth:`observe`,
        or a checkpoint) is first copied into row 1 − i and its squared norm computed once."""
        n = buf.shape[1]
        other = 1 - i
        prev_sq = None
        last = self._prev_rows.get(block)
        if last is not None and last[0] is buf and last[1] == other:
            has_prev = True
        else:
            prev = self._prev.get(block) if last is None else last[0][last[1]]
            has_prev = prev is not None and prev.numel() == n
            if has_prev:
                buf[other].copy_(prev.reshape(-1))
                prev_sq = torch.dot(buf[other], buf[other])
        self._pending_rows.append(
            (torch.mv(buf, buf[i]), i, n, float(std), block, step, has_prev, prev_sq)
        )
        self._prev_rows[block] = (buf, i)
        self._prev.pop(block, None)

    def _check_rows(self) -> None:
        pending = self._pending_rows
        self._pending_rows = []
        stats = torch.stack([e[0] for e in pending]).double().tolist()
        extra = [e[7] for e in pending if e[7] is not None]
        extra = torch.stack(extra).double().tolist() if extra else []
        k = 0
        last_sq = self._last_sq
        band_n, lo, hi, cb = None, 0.0, 0.0, 0.0
        qs, cs, ns = self.q, self.corr, self.n
        for (s0, s1), (_t, i, n, std, block, step, has_prev, prev_sq) in zip(stats, pending):
            sq, dp = (s1, s0) if i else (s0, s1)
            q = sq / (n * std * std)
            c = None
            if has_prev:
                if prev_sq is not None:
                    psq = extra[k]
                    k += 1
                else:
                    psq = last_sq[block]
                den = math.sqrt(sq * psq)
                c = dp / den if den > 0 else math.inf
            last_sq[block] = sq
            if n != band_n:
                band_n = n
                lo, hi, cb = self._bands.get(n) or self.band(n)
            if lo <= q <= hi and (c is None or abs(c) <= cb):  # the common case, inline
                qs.append(q)
                cs.append(c)
                ns.append(n)
                self.checked += 1
            else:
                self._judge(q, math.nan if c is None else c, n, block, step)

    def _judge(self, q: float, c: float, n: int, block: int, step: int) -> None:
        lo, hi, cb = self._bands.get(n) or self.band(n)
        self.q.append(q)
        self.corr.append(None if math.isnan(c) else c)
        self.n.append(n)
        self.checked += 1
        if not (lo <= q <= hi):
            where = f"step {step}" + (f", block {block}" if block >= 0 else "")
            raise NoiseGuardError(
                f"noise guard: ||xi||^2/(n sigma^2) = {q:.6g} at {where} (n={n}) is outside "
                f"its chi-square band [{lo:.6g}, {hi:.6g}] (per-draw level "
                f"{self.alpha_draw:.3g}): the noise added is not N(0, sigma^2 I)"
            )
        if not math.isnan(c) and abs(c) > cb:
            where = f"step {step}" + (f", block {block}" if block >= 0 else "")
            raise NoiseGuardError(
                f"noise guard: correlation {c:.6g} with the previous draw at {where} (n={n}) "
                f"exceeds its bound {cb:.6g}: noise is being reused or is not independent"
            )

    def check(self) -> None:
        """Pull the pending statistics to the host and raise on a violation."""
        if self._pending_rows:
            self._check_rows()
        if not self._pending_q:
            return
        qs = torch.stack(self._pending_q).double().cpu().tolist()
        cs = torch.stack(self._pending_c).double().cpu().tolist()
        meta = self._pending_meta
        self._pending_q, self._pending_c, self._pending_meta = [], [], []
        for q, c, (n, block, step) in zip(qs, cs, meta):
            self._judge(q, c, n, block, step)

    def finish(self) -> None:
        """Final check, including the pooled test Σ‖ξ‖²/σ² ~ χ²_{Σn} at level α/2."""
        self.check()
        total_n = sum(self.n)
        if total_n == 0:
            return
        from scipy import stats

        pooled = sum(q * n for q, n in zip(self.q, self.n))
        a = self.false_alarm / 2.0
        lo = float(stats.chi2.ppf(a / 2, total_n))
        hi = float(stats.chi2.isf(a / 2, total_n))
        if not (lo <= pooled <= hi):
            raise NoiseGuardError(
                f"noise guard: pooled sum ||xi||^2/sigma^2 = {pooled:.6g} over {len(self.q)} "
                f"draws (total n={total_n}) is outside its chi-square band [{lo:.6g}, {hi:.6g}]"
            )

    # -- persistence and reporting -------------------------------------------------------------
    def state(self) -> dict:
        """Host-side record (for a checkpoint); call :meth:`check` first."""
        if self._pending_q or self._pending_rows:
            raise InvalidParameterError("guard", "pending", "call check() before state()")
        return {"q": list(self.q), "corr": list(self.corr), "n": list(self.n)}

    def load_state(self, state: dict, prev: dict[int, torch.Tensor]) -> None:
        self.q = [float(x) for x in state["q"]]
        self.corr = [None if x is None else float(x) for x in state["corr"]]
        self.n = [int(x) for x in state["n"]]
        self.checked = len(self.q)
        self._prev = dict(prev)
        self._prev_rows = {}

    def previous_draws(self) -> dict[int, torch.Tensor]:
        """The last draw of each block (copies of the buffers' rows)."""
        out = dict(self._prev)
        for b, (buf, i) in self._prev_rows.items():
            out[b] = buf[i].clone()
        return out

    def summary(self) -> dict:
        """Statistics for the certificate (after :meth:`finish`)."""
        corr = [abs(c) for c in self.corr if c is not None]
        zs = [(q - 1.0) / math.sqrt(2.0 / n) for q, n in zip(self.q, self.n)]
        total_n = sum(self.n)
        return {
            "draws": len(self.q),
            "planned_draws": self.draws,
            "false_alarm": self.false_alarm,
            "per_test_level": self.alpha_draw,
            "q_min": min(self.q) if self.q else None,
            "q_max": max(self.q) if self.q else None,
            "max_abs_z": max((abs(z) for z in zs), default=None),
            "max_abs_correlation": max(corr, default=None),
            "pooled_q": (sum(q * n for q, n in zip(self.q, self.n)) / total_n if total_n else None),
            "bands": {
                str(n): {
                    "q_low": b[0],
                    "q_high": b[1],
                    "cosine_bound": b[2] if math.isfinite(b[2]) else None,
                }
                for n, b in sorted(self._bands.items())
            },
            "passed": True,
        }
