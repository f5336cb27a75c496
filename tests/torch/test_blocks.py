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
        for kind in ("rows", "random", "layers")
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
