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
    contiguous groups; needs at least k layers;
``"rotations"``
    blocks of ROTATED coordinates z = Rx (``seed`` is recorded). R = diag(R_1, …, R_L) is
    orthogonal per layer (consecutive parameters of one module, e.g. weight and bias): for a
    layer of n ≤ :data:`ROTATION_DENSE_MAX` coordinates a dense Haar-distributed Q (QR of a
    float64 Gaussian matrix, columns sign-fixed so that diag(R) > 0, stored in float32); for a
    larger layer R_l = H·D·Π with Π a random permutation, D random signs and H = diag(H_{2^{e_1}},
    H_{2^{e_2}}, …) the normalised Walsh–Hadamard matrices of the binary expansion
    n = 2^{e_1} + 2^{e_2} + … (e_1 > e_2 > …). H is block-diagonal and square, so R_l is an
    exactly orthogonal n × n map -- no zero padding, hence no padded coordinate that noise could
    reach. Rotated coordinate j of layer l goes to block (j + l) mod k (interleaved, so that
    every Hadamard chunk, hence every coordinate of x, is reached by every block's subspace
    that it can be). Block i is the subspace V_i = Rᵀ·span{e_j : j in
    block i}; the V_i are orthogonal and sum to ℝ^d. How a run uses it (the state is z,
    x = Rᵀz is computed from it) and why the certificate is unchanged: docs/unlearn_torch.md,
    "Rotated blocks".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import torch

from unlearn_theory import _validate as v
from unlearn_theory.errors import InvalidParameterError

from ._partition_kinds import PARTITION_KINDS, ROTATION_TOLERANCE

__all__ = [
    "PARTITIONS",
    "ROTATION_DENSE_MAX",
    "ROTATION_TOLERANCE",
    "Partition",
    "Rotation",
    "make_partition",
    "make_rotation",
]

PARTITIONS = PARTITION_KINDS  # ("rows", "random", "layers", "rotations")
ROTATION_DENSE_MAX = 256  # a layer of at most this many coordinates gets a dense Haar Q
_HADAMARD_FACTOR_BITS = 6  # H_{2^e} applied as Kronecker factors of at most 2^6 (measured fastest)
_TAIL_MAX = 256  # Hadamard chunks up to this size are applied together as one dense product


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _layer_groups(layout) -> list[tuple[list[str], int, int]]:
    """Consecutive parameters of one owning module: (names, start, size) in flat order."""
    groups: list[tuple[list[str], int, int]] = []
    owners: list[str] = []
    start = 0
    for name, _, n in layout:
        own = _owner(name)
        if groups and owners[-1] == own:
            names, s0, size = groups[-1]
            groups[-1] = (names + [name], s0, size + n)
        else:
            groups.append(([name], start, n))
            owners.append(own)
        start += n
    return [g for g in groups if g[2] > 0]


def _hadamard_matrix(e: int) -> torch.Tensor:
    """The normalised Walsh–Hadamard matrix H_{2^e}/2^{e/2} (symmetric, orthogonal), float32."""
    h = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(e):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return (h / math.sqrt(2.0**e)).to(torch.float32)


def _factor_bits(e: int) -> list[int]:
    """e split into near-equal parts of at most _HADAMARD_FACTOR_BITS (H_{2^e} = ⊗ H_{2^{e_i}})."""
    if e == 0:
        return []
    parts = -(-e // _HADAMARD_FACTOR_BITS)
    base, extra = divmod(e, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class Rotation:
    """A per-layer orthogonal map R of ℝ^d (see the module docstring, ``"rotations"``).

    ``forward(x)`` = Rx and ``inverse(z)`` = Rᵀz for flat float32 vectors of length d (or
    d × B matrices, column by column) on any device (the factors are copied to a device once and cached). Mathematically RᵀR = RRᵀ = I;
    in float32 both hold to about 1e-6 relative, which :meth:`check` measures.
    """

    def __init__(self, layout, seed: int):
        self.seed = int(seed)
        self.dim = int(sum(n for _, _, n in layout))
        gen = torch.Generator().manual_seed(self.seed)
        digest = hashlib.sha256(b"unlearn-rotation/1\0")
        self.groups: list[dict] = []
        for names, start, n in _layer_groups(layout):
            g = {"parameters": names, "start": start, "size": n}
            if n <= ROTATION_DENSE_MAX:
                a = torch.randn(n, n, generator=gen, dtype=torch.float64)
                digest.update(a.numpy().tobytes())
                q, r = torch.linalg.qr(a)
                sign = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(torch.float64)
                g.update(kind="dense", q=(q * sign).to(torch.float32).contiguous())
            else:
                perm = torch.randperm(n, generator=gen)
                signs = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int64)
                digest.update(perm.numpy().tobytes())
                digest.update(signs.numpy().tobytes())
                chunks = [1 << e for e in range(n.bit_length() - 1, -1, -1) if n >> e & 1]
                g.update(
                    kind="hadamard",
                    perm=perm,
                    inv_perm=torch.argsort(perm),
                    signs=(signs * 2 - 1).to(torch.float32),
                    chunks=chunks,
                )
            self.groups.append(g)
        self.randomness_sha256 = digest.hexdigest()
        self._on: dict[str, tuple] = {}

    # -- device copies --------------------------------------------------------------------
    def _factors(self, device):
        """Per layer, on ``device``: (start, n, dense Q or None, perm, inv_perm, signs, the
        chunks above :data:`_TAIL_MAX` (Kronecker factors), the dense block-diagonal matrix of
        the normalised Hadamards of the chunks up to _TAIL_MAX (one product; symmetric), and
        the Hadamard factor matrices by bit count."""
        key = str(torch.device(device))
        if key not in self._on:
            hs: dict[int, torch.Tensor] = {}
            per = []
            for g in self.groups:
                if g["kind"] == "dense":
                    q = g["q"].to(device)
                    per.append((g["start"], g["size"], q, None, None, None, (), None))
                    continue
                big = [c for c in g["chunks"] if c > _TAIL_MAX]
                small = [c for c in g["chunks"] if c <= _TAIL_MAX]
                for c in big:
                    for e in _factor_bits(c.bit_length() - 1):
                        if e not in hs:
                            hs[e] = _hadamard_matrix(e).to(device)
                tail = None
                if small:
                    mats = [_hadamard_matrix(c.bit_length() - 1) for c in small]
                    tail = torch.block_diag(*mats).to(device)
                per.append(
                    (
                        g["start"],
                        g["size"],
                        None,
                        g["perm"].to(device),
                        g["inv_perm"].to(device),
                        g["signs"].to(device),
                        tuple(big),
                        tail,
                    )
                )
            self._on[key] = (per, hs)
        return self._on[key]

    @staticmethod
    def _hadamard(v: torch.Tensor, hs: dict) -> torch.Tensor:
        """H_m v / √m along the first axis of v (length m = 2^e; Kronecker factors of H_m,
        one matmul each)."""
        m = v.shape[0]
        tail = v.shape[1:]
        bits = _factor_bits(m.bit_length() - 1)
        if not bits:
            return v.clone()
        a, b = 1, v.numel()
        for e in bits:
            n = 1 << e
            b //= n
            if b == 1:  # the last axis: one (a × n)·(n × n) product (H is symmetric)
                v = torch.matmul(v.reshape(a, n), hs[e])
            else:
                v = torch.matmul(hs[e], v.reshape(a, n, b))
            a *= n
        return v.reshape(m, *tail)

    def _blockdiag_hadamard(self, y, big, tail, hs) -> torch.Tensor:
        """H y for H = diag(H_{c_1}, …) (normalised, symmetric): the chunks above _TAIL_MAX by
        Kronecker factors, the small ones together as one dense block-diagonal product."""
        out, o = [], 0
        for c in big:
            out.append(self._hadamard(y[o : o + c], hs))
            o += c
        if tail is not None:
            out.append(torch.matmul(tail, y[o:]))
        return torch.cat(out) if len(out) > 1 else out[0]

    def _apply(self, v: torch.Tensor, transpose: bool) -> torch.Tensor:
        if v.dim() not in (1, 2) or v.shape[0] != self.dim:
            raise InvalidParameterError(
                "v", tuple(v.shape), f"must be a flat vector of {self.dim} (or {self.dim} rows)"
            )
        per, hs = self._factors(v.device)
        col = (-1,) + (1,) * (v.dim() - 1)  # signs broadcast over the columns of a matrix
        pieces = []
        for start, n, q, perm, inv_perm, signs, big, tail in per:
            seg = v[start : start + n]
            if q is not None:
                pieces.append(torch.matmul(q.t() if transpose else q, seg))
            elif not transpose:  # z = H·D·Π x, (Πx)_i = x_perm[i]
                y = seg.index_select(0, perm).mul_(signs.view(col))
                pieces.append(self._blockdiag_hadamard(y, big, tail, hs))
            else:  # x = Πᵀ·D·H z (H symmetric)
                y = self._blockdiag_hadamard(seg, big, tail, hs).mul_(signs.view(col))
                pieces.append(y.index_select(0, inv_perm))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    @staticmethod
    def _chunks_of(n: int) -> list[int]:
        return [1 << e for e in range(n.bit_length() - 1, -1, -1) if n >> e & 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z = Rx (a new tensor; x of shape (d,) or (d, B))."""
        return self._apply(x, transpose=False)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """x = Rᵀz (a new tensor; z of shape (d,) or (d, B))."""
        return self._apply(z, transpose=True)

    def check(self, device, *, tolerance: float = ROTATION_TOLERANCE) -> dict:
        """Isometry check on two seeded probe vectors v on ``device``: the relative errors
        |‖Rv‖ − ‖v‖|/‖v‖, ‖RᵀRv − v‖/‖v‖ and ‖RRᵀv − v‖/‖v‖ (0 for an exact orthogonal map;
        about 1e-7 to 1e-6 in float32). Raises :class:`~unlearn_torch.errors.RotationError`
        when one exceeds ``tolerance``; returns the largest of each."""
        from .errors import RotationError

        gen = torch.Generator().manual_seed(self.seed ^ 0x5EED)
        errs = {"isometry": 0.0, "inverse": 0.0, "inverse_transposed": 0.0}
        for _ in range(2):
            v = torch.randn(self.dim, generator=gen, dtype=torch.float32).to(device)
            nv = torch.linalg.vector_norm(v)
            z = self.forward(v)
            vals = torch.stack(
                [
                    (torch.linalg.vector_norm(z) - nv).abs() / nv,
                    torch.linalg.vector_norm(self.inverse(z) - v) / nv,
                    torch.linalg.vector_norm(self.forward(self.inverse(v)) - v) / nv,
                ]
            ).tolist()
            for k, val in zip(errs, vals):
                errs[k] = max(errs[k], val) if val == val else math.inf
        bad = {k: e for k, e in errs.items() if not e <= tolerance}
        if bad:
            raise RotationError(
                f"partition='rotations' (seed {self.seed}): the rotation is not orthogonal to "
                f"float32 tolerance {tolerance:g}: relative errors {bad}; nothing ran"
            )
        return dict(errs, tolerance=tolerance)

    def describe(self) -> dict:
        return {
            "scheme": (
                "per layer: dense Haar Q (QR of a float64 Gaussian, sign-fixed) when n <= "
                f"{ROTATION_DENSE_MAX}, else H·D·Π (random permutation Π, random signs D, "
                "block-diagonal Walsh–Hadamard H over the binary expansion of n; no padding)"
            ),
            "seed": self.seed,
            "dense_max": ROTATION_DENSE_MAX,
            "layers": [
                {"parameters": g["parameters"], "size": g["size"], "kind": g["kind"]}
                for g in self.groups
            ],
            "randomness_sha256": self.randomness_sha256,
        }


def make_rotation(layout, seed: int) -> Rotation:
    """The seeded per-layer rotation of the flat vector described by ``layout``."""
    return Rotation(layout, v.check_int("partition_seed", seed, minimum=0))


@dataclass
class Partition:
    """``assignment[i]`` = block of flat coordinate i (int64, CPU)."""

    kind: str
    blocks: int
    assignment: torch.Tensor
    seed: int | None = None
    rotation: Rotation | None = None  # "rotations": the blocks are of z = R x
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
        out = {
            "kind": self.kind,
            "blocks": self.blocks,
            "sizes": self.sizes,
            "seed": self.seed,
            "assignment_sha256": self.sha256(),
        }
        if self.rotation is not None:
            out["coordinates"] = "rotated: z = R x, blocks of z"
            out["rotation"] = self.rotation.describe()
        return out


def make_partition(layout, blocks: int, kind: str = "rows", *, seed: int = 0) -> Partition:
    """Partition of the flat vector described by ``layout`` (a list of (name, shape, numel)
    in flat order) into ``blocks`` non-empty blocks (of the rotated coordinates z = Rx for
    ``kind="rotations"``, R seeded by ``seed``)."""
    k = v.check_int("blocks", blocks, minimum=1)
    if kind not in PARTITIONS:
        raise InvalidParameterError("partition", kind, f"must be one of {PARTITIONS}")
    d = sum(n for _, _, n in layout)
    rotation = None
    if kind == "rotations":
        rotation = make_rotation(layout, seed)
        seed = rotation.seed
        parts = []
        for li, (_, _, n) in enumerate(_layer_groups(layout)):
            parts.append((torch.arange(n) + li) % k)  # interleaved: every chunk in every block
        assignment = torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
    elif kind == "random":
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
            owner = _owner(name)
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
            owner = _owner(name)
            parts.append(torch.full((n,), layer_block[owner], dtype=torch.int64))
        assignment = torch.cat(parts)
    part = Partition(kind=kind, blocks=k, assignment=assignment, seed=seed, rotation=rotation)
    empty = [i for i, s in enumerate(part.sizes) if s == 0]
    if empty:
        raise InvalidParameterError(
            "blocks", k, f"partition={kind!r} leaves blocks {empty} empty (d={d} coordinates)"
        )
    return part
