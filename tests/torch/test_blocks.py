"""Coordinate partitions for block-wise scheduling."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from unlearn_theory.errors import InvalidParameterError  # noqa: E402
from unlearn_torch.blocks import make_partition  # noqa: E402

LAYOUT = [
    ("0.weight", (8, 6), 48),
    ("0.bias", (8,), 8),
    ("2.weight", (3, 8), 24),
    ("2.bias", (3,), 3),
]


@pytest.mark.parametrize(
    "kind,k",
    [
        (kind, k)
        for kind in ("rows", "random", "layers", "rotations")
        for k in (1, 2, 3)
        if (kind, k) != ("layers", 3)
    ],
)
def test_partition_covers_every_coordinate_once(kind, k):
    part = make_partition(LAYOUT, k, kind, seed=4)
    assert part.assignment.numel() == 83
    assert sorted(set(part.assignment.tolist())) == list(range(k))
    idx = torch.cat([part.index(b, "cpu") for b in range(k)])
    assert sorted(idx.tolist()) == list(range(83))
    assert sum(part.sizes) == 83
    assert part.describe()["kind"] == kind


def test_rows_partition_keeps_rows_together():
    part = make_partition(LAYOUT, 2, "rows")
    w = part.assignment[:48].view(8, 6)
    assert (w == w[:, :1]).all()  # a row is in one block
    assert w[:4, 0].tolist() == [0] * 4 and w[4:, 0].tolist() == [1] * 4


def test_random_partition_is_seeded_and_balanced():
    a = make_partition(LAYOUT, 3, "random", seed=1)
    b = make_partition(LAYOUT, 3, "random", seed=1)
    c = make_partition(LAYOUT, 3, "random", seed=2)
    assert torch.equal(a.assignment, b.assignment)
    assert not torch.equal(a.assignment, c.assignment)
    assert max(a.sizes) - min(a.sizes) <= 1
    assert a.sha256() != c.sha256()


def test_layers_partition_needs_enough_layers():
    part = make_partition(LAYOUT, 2, "layers")
    assert part.assignment[:56].eq(0).all() and part.assignment[56:].eq(1).all()
    with pytest.raises(InvalidParameterError, match="layers"):
        make_partition(LAYOUT, 3, "layers")


def test_empty_block_is_refused():
    with pytest.raises(InvalidParameterError, match="empty"):
        make_partition([("w", (2,), 2)], 3, "rows")
    with pytest.raises(InvalidParameterError, match="partition"):
        make_partition(LAYOUT, 2, "columns")


# -- rotations ---------------------------------------------------------------------------------
# layers of 420 (Hadamard chunks 256+128+32+4), 63 (dense Haar) and 512 (one Hadamard chunk)
ROT_LAYOUT = [
    ("0.weight", (20, 20), 400),
    ("0.bias", (20,), 20),
    ("1.weight", (3, 20), 60),
    ("1.bias", (3,), 3),
    ("2.weight", (16, 32), 512),
]
ROT_D = 995


def _matrix(fn, d=ROT_D):
    return fn(torch.eye(d))  # the map applied to every basis vector (columns)


def test_rotation_is_orthogonal_and_per_layer():
    part = make_partition(ROT_LAYOUT, 3, "rotations", seed=7)
    rot = part.rotation
    kinds = [g["kind"] for g in rot.describe()["layers"]]
    assert kinds == ["hadamard", "dense", "hadamard"]
    R = _matrix(rot.forward)
    eye = torch.eye(ROT_D)
    assert (R.T @ R - eye).abs().max() < 2e-6
    assert (R @ R.T - eye).abs().max() < 2e-6
    assert torch.allclose(_matrix(rot.inverse), R.T, atol=1e-7, rtol=0)  # inverse IS Rᵀ
    cols = torch.stack([rot.forward(e) for e in torch.eye(ROT_D)[:5]], 1)  # vectors = columns
    assert torch.equal(cols, R[:, :5])
    # block-diagonal over the layers (0:420, 420:483, 483:995): no mixing across layers
    mask = torch.zeros(ROT_D, ROT_D, dtype=torch.bool)
    for a, b in ((0, 420), (420, 483), (483, 995)):
        mask[a:b, a:b] = True
    assert R[~mask].abs().max() == 0
    # ‖Rx‖ = ‖x‖ and RᵀRx = x for random vectors
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(ROT_D, generator=g)
        assert float(rot.forward(x).norm() / x.norm()) == pytest.approx(1.0, abs=1e-6)
        assert float((rot.inverse(rot.forward(x)) - x).norm() / x.norm()) < 1e-6
    # the isometry check passes with float32 errors far below its tolerance
    chk = rot.check("cpu")
    assert max(chk["isometry"], chk["inverse"], chk["inverse_transposed"]) < 1e-6


def test_rotated_blocks_are_orthogonal_subspaces_summing_to_the_space():
    layout = [("0.weight", (40, 7), 280), ("1.weight", (3, 9), 27)]  # Hadamard 256+16+8, dense
    d = 307
    part = make_partition(layout, 3, "rotations", seed=7)
    R = _matrix(part.rotation.forward, d).double()
    P = [R.T @ torch.diag((part.assignment == b).double()) @ R for b in range(3)]
    eye = torch.eye(d, dtype=torch.float64)
    assert (sum(P) - eye).abs().max() < 1e-5  # Σ_b RᵀP_bR = I
    for b in range(3):
        assert (P[b] @ P[b] - P[b]).abs().max() < 1e-5  # projector
        assert abs(float(torch.trace(P[b])) - part.sizes[b]) < 1e-3  # rank = block size
        for c in range(b + 1, 3):
            assert (P[b] @ P[c]).abs().max() < 1e-5  # orthogonal subspaces
    # every layer's rotated coordinates are spread over all blocks
    for a, b in ((0, 280), (280, 307)):
        assert sorted(set(part.assignment[a:b].tolist())) == [0, 1, 2]


def test_rotations_are_seeded_and_recorded():
    a = make_partition(ROT_LAYOUT, 3, "rotations", seed=1)
    b = make_partition(ROT_LAYOUT, 3, "rotations", seed=1)
    c = make_partition(ROT_LAYOUT, 3, "rotations", seed=2)
    x = torch.randn(ROT_D, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.rotation.forward(x), b.rotation.forward(x))
    assert not torch.allclose(a.rotation.forward(x), c.rotation.forward(x))
    da, dc = a.describe(), c.describe()
    assert da == b.describe() and da["kind"] == "rotations" and da["seed"] == 1
    assert da["rotation"]["seed"] == 1 and da["rotation"]["dense_max"] == 256
    assert da["rotation"]["randomness_sha256"] != dc["rotation"]["randomness_sha256"]
    with pytest.raises(InvalidParameterError, match="partition_seed"):
        make_partition(ROT_LAYOUT, 3, "rotations", seed=-1)


@pytest.mark.parametrize("fault", ["scaled_dense", "wrong_inverse_permutation", "lost_sign"])
def test_non_orthogonal_rotation_is_refused(fault):
    from unlearn_torch import RotationError

    rot = make_partition(ROT_LAYOUT, 3, "rotations", seed=7).rotation
    dense = [g for g in rot.groups if g["kind"] == "dense"][0]
    had = [g for g in rot.groups if g["kind"] == "hadamard"][0]
    if fault == "scaled_dense":
        dense["q"] = dense["q"] * 1.01
    elif fault == "wrong_inverse_permutation":
        had["inv_perm"] = torch.roll(had["inv_perm"], 1)
    else:
        had["signs"][5] = 0.0
    rot._on.clear()
    with pytest.raises(RotationError, match="not orthogonal"):
        rot.check("cpu")
