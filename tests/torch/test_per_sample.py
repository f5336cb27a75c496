"""Per-example gradient norms (ghost norms + vmap) against explicit per-example gradients, and
the per-instance accounting of recorded norms."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from unlearn_theory.errors import InvalidParameterError  # noqa: E402
from unlearn_torch.per_sample import (  # noqa: E402
    NormRecorder,
    clip_factors,
    clipped_gradient,
    per_example_grad_dots,
    per_example_grad_norms,
    per_example_loss,
)

torch.set_num_threads(1)


def _explicit(model, loss_fn, X, Y):
    """(B, d) per-example gradients by a loop (the oracle)."""
    ps = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        loss = loss_fn(model(X[i : i + 1]), Y[i : i + 1]).sum()
        gs = torch.autograd.grad(loss, ps, allow_unused=True, materialize_grads=True)
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)


def _ce(out, y):
    return nn.functional.cross_entropy(out, y, reduction="none")


def _mse_seq(out, y):
    return (out - y).pow(2).reshape(out.shape[0], -1).sum(1)


def _check(model, loss_fn, X, Y, **kw):
    model = model.double()
    X = X.double() if X.is_floating_point() else X
    Y = Y.double() if Y.is_floating_point() else Y
    got = per_example_grad_norms(model, loss_fn, X, Y, **kw)
    want = torch.linalg.vector_norm(_explicit(model, loss_fn, X, Y), dim=1)
    assert got.shape == (X.shape[0],)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())
    return got


def _seed(s):
    torch.manual_seed(s)
    g = torch.Generator().manual_seed(s)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_matches_explicit(seed):
    g = _seed(seed)
    model = nn.Sequential(
        nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4, bias=False), nn.ReLU(), nn.Linear(4, 3)
    )
    X = torch.randn(9, 5, generator=g)
    Y = torch.randint(0, 3, (9,), generator=g)
    _check(model, _ce, X, Y)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.norm = nn.GroupNorm(1, 3)
        self.fc = nn.Linear(3 * 4 * 4, 3)
        self.unused = nn.Linear(4, 4)  # never called: zero gradient

    def forward(self, x):
        return self.fc(torch.relu(self.norm(self.conv(x))).flatten(1))


def test_conv_groupnorm_and_unused_parameter():
    g = _seed(3)
    model = _ConvNet()
    X = torch.randn(6, 2, 6, 6, generator=g)
    Y = torch.randint(0, 3, (6,), generator=g)
    _check(model, _ce, X, Y)
    _check(model, _ce, X, Y, max_chunk_elements=50)  # chunks of one example


class _Seq(nn.Module):
    """Embedding + Linear on (B, T, d) (both Gram and explicit-product paths) + LayerNorm."""

    def __init__(self, d=6, wide=40):
        super().__init__()
        self.emb = nn.Embedding(11, d)
        self.a = nn.Linear(d, wide)  # T²(in+out) > T·in·out + in·out for T=7: explicit product
        self.ln = nn.LayerNorm(wide)
        self.b = nn.Linear(wide, 2, bias=False)  # Gram path

    def forward(self, tok):
        return self.b(self.ln(torch.tanh(self.a(self.emb(tok)))))


@pytest.mark.parametrize("T", [1, 3, 7])
def test_sequence_linear(T):
    g = _seed(4 + T)
    model = _Seq()
    tok = torch.randint(0, 11, (5, T), generator=g)
    Y = torch.randn(5, T, 2, generator=g)
    _check(model, _mse_seq, tok, Y)


def test_shared_linear_goes_through_vmap_and_frozen_parts():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.l(torch.sin(self.l(x))))  # self.l called twice

    g = _seed(7)
    model = Tied()
    X = torch.randn(6, 4, generator=g)
    Y = torch.randint(0, 2, (6,), generator=g)
    _check(model, _ce, X, Y)
    model.out.weight.requires_grad_(False)  # bias of a Linear whose weight is frozen
    _check(model, _ce, X, Y)


def test_params_subset_and_mean_loss_adapter():
    g = _seed(8)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    X = torch.randn(7, 3, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 2, (7,), generator=g)
    full = per_example_grad_norms(model, _ce, X, Y)
    for loss in (nn.CrossEntropyLoss(), lambda o, y: nn.functional.cross_entropy(o, y)):
        torch.testing.assert_close(
            per_example_grad_norms(model, per_example_loss(loss), X, Y), full, rtol=1e-12, atol=0
        )
    pe = _explicit(model, _ce, X, Y)
    sub = per_example_grad_norms(model, _ce, X, Y, params=["2.weight", "0.bias"])
    nw0, nb0, nw2 = 15, 5, 10
    want = torch.linalg.vector_norm(
        torch.cat([pe[:, nw0 : nw0 + nb0], pe[:, nw0 + nb0 : nw0 + nb0 + nw2]], 1), dim=1
    )
    torch.testing.assert_close(sub, want, rtol=1e-10, atol=1e-12)


def test_dots_and_ghost_clipping_match_explicit():
    g = _seed(9)
    model = _ConvNet().double()
    X = torch.randn(5, 2, 6, 6, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (5,), generator=g)
    pe = _explicit(model, _ce, X, Y)
    v = {
        n: torch.randn(p.shape, generator=g, dtype=torch.float64)
        for n, p in model.named_parameters()
    }
    flat_v = torch.cat([t.reshape(-1) for t in v.values()])
    torch.testing.assert_close(per_example_grad_dots(model, _ce, X, Y, v), pe @ flat_v)
    norms = torch.linalg.vector_norm(pe, dim=1)
    C = float(norms.median())
    f = clip_factors(norms, C)
    assert torch.all(f <= 1) and torch.any(f < 1)
    grads, got_norms = clipped_gradient(model, _ce, X, Y, C, reduction="mean")
    flat = torch.cat([t.reshape(-1) for t in grads.values()])
    torch.testing.assert_close(flat, (f @ pe) / 5)
    torch.testing.assert_close(got_norms, norms)
    assert torch.linalg.vector_norm((f[:, None] * pe), dim=1).max() <= C * (1 + 1e-12)


def test_bad_input():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    X, Y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(InvalidParameterError, match="BatchNorm"):
        per_example_grad_norms(model, _ce, X, Y)
    model.eval()
    per_example_grad_norms(model, _ce, X, Y)  # eval mode: fine
    with pytest.raises(InvalidParameterError, match="loss_fn"):
        per_example_grad_norms(model, nn.CrossEntropyLoss(), X, Y)  # scalar loss
    with pytest.raises(InvalidParameterError, match="targets"):
        per_example_grad_norms(model, _ce, X, Y[:3])
    with pytest.raises(InvalidParameterError, match="params"):
        per_example_grad_norms(model, _ce, X, Y, params=["nope"])
    with pytest.raises(InvalidParameterError, match="clip"):
        clip_factors(torch.ones(2), 0.0)


# -- per-instance accounting --------------------------------------------------------------------
def _tiny_run(steps=5, clip=None, seed=0):
    g = _seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    X = torch.randn(20, 4, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 2, (20,), generator=g)
    forget = slice(0, 3)
    rec = NormRecorder(model, nn.CrossEntropyLoss(), X[forget], Y[forget])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    direct = []
    for _ in range(steps):
        rec.record()
        pe = _explicit(model, _ce, X[forget], Y[forget])
        direct.append(torch.linalg.vector_norm(pe, dim=1).numpy())
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()
    return rec, np.stack(direct, axis=1), model, X, Y


def test_recorder_norms_equal_direct_and_per_instance_le_worst_case():
    rec, direct, *_ = _tiny_run()
    assert rec.norms.shape == (3, 5) and rec.steps == 5
    np.testing.assert_allclose(rec.norms, direct, rtol=1e-10)
    C = float(np.median(direct))
    res = rec.dp_sgd_privacy(clip=C, sample_rate=0.1, noise_multiplier=1.0, delta=1e-5)
    assert res.epsilon.shape == (3,) and not res.renyi.certifies  # ESTIMATE: realised norms
    assert np.all(res.epsilon <= res.worst_case_epsilon * (1 + 1e-12))
    assert np.any(res.epsilon < res.worst_case_epsilon * (1 - 1e-6))  # some norms below C
    # every norm at (or above) the clip: equal to the worst case
    at_clip = rec.dp_sgd_privacy(
        clip=float(direct.min()) / 2, sample_rate=0.1, noise_multiplier=1.0, delta=1e-5
    )
    np.testing.assert_allclose(at_clip.epsilon, at_clip.worst_case_epsilon, rtol=1e-12)
    # the worst case is the library's data-independent DP-SGD value at the same orders
    from unlearn_theory.per_instance import subsampled_gaussian_rdp

    ref = subsampled_gaussian_rdp(
        np.ones((1, 5)), clip_gradient=1.0, sample_rate=0.1, noise_multiplier=1.0
    )
    assert at_clip.worst_case_epsilon == pytest.approx(ref.epsilon(1e-5)[0], rel=1e-12)


def test_recorder_noisy_gd_differences_and_steps():
    g = _seed(11)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 2, (12,), generator=g)
    rec = NormRecorder(model, _ce, X[:2], Y[:2])
    n, direct = 12, []
    for _ in range(3):
        pe = _explicit(model, _ce, X, Y)
        mean = pe.mean(0)
        names = [nm for nm, _ in model.named_parameters()]
        sizes = [p.numel() for p in model.parameters()]
        mg = dict(
            zip(
                names,
                [t.reshape(p.shape) for t, p in zip(torch.split(mean, sizes), model.parameters())],
            )
        )
        rec.record_differences(mg, n)
        rest = [(n * mean - pe[i]) / (n - 1) for i in range(2)]
        direct.append([float(torch.linalg.vector_norm(pe[i] - rest[i])) for i in range(2)])
        with torch.no_grad():
            for p, t in zip(model.parameters(), torch.split(mean, sizes)):
                p -= 0.3 * t.reshape(p.shape)
    np.testing.assert_allclose(rec.differences, np.array(direct).T, rtol=1e-9)
    res = rec.noisy_gd_privacy(
        learning_rate=0.3,
        noise_std=0.05,
        dataset_size=n,
        delta=1e-5,
        unlearning=dict(epsilon=1.0, learning_rate=0.3, strong_convexity=0.1, smoothness=1.0),
    )
    assert res.epsilon.shape == (2,) and res.steps.shape == (2,)
    assert np.all(res.steps >= 0)
    # larger differences never give fewer steps or less privacy loss
    order = np.argsort(rec.differences.sum(1))
    assert res.epsilon[order[0]] <= res.epsilon[order[1]]
    assert res.steps[order[0]] <= res.steps[order[1]]


def test_recorder_needs_records():
    model = nn.Linear(2, 2)
    rec = NormRecorder(model, _ce, torch.randn(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(InvalidParameterError):
        _ = rec.norms
    rec.record()
    with pytest.raises(InvalidParameterError):
        _ = rec.differences


def test_gram_and_explicit_product_forms_agree():
    from unlearn_torch.per_sample import _linear_sq_norms

    g = _seed(12)
    for T, din, dout in [(2, 30, 30), (9, 3, 2), (5, 8, 8)]:  # Gram, explicit, either
        a = torch.randn(4, T, din, generator=g, dtype=torch.float64)
        b = torch.randn(4, T, dout, generator=g, dtype=torch.float64)
        want = torch.einsum("bto,bti->bio", b, a).pow(2).sum((1, 2)) + b.sum(1).pow(2).sum(1)
        torch.testing.assert_close(_linear_sq_norms(a, b, True, True), want)
        gram = (torch.einsum("bti,bsi->bts", a, a) * torch.einsum("bto,bso->bts", b, b)).sum((1, 2))
        torch.testing.assert_close(_linear_sq_norms(a, b, True, False), gram)


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3),
        dict(kernel_size=(2, 3), stride=2, padding=1, bias=False),
        dict(kernel_size=3, dilation=2, padding=(2, 1)),
        dict(kernel_size=3, groups=2),  # not ghost-normed: the vmap path
        dict(kernel_size=3, padding=1, padding_mode="reflect"),  # vmap path
    ],
)
def test_conv2d_ghost_norms(kw):
    g = _seed(13)
    conv = nn.Conv2d(2, 4, **kw)
    model = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.LazyLinear(3))
    X = torch.randn(5, 2, 7, 8, generator=g)
    model(X)  # materialise the lazy layer
    Y = torch.randint(0, 3, (5,), generator=g)
    _check(model, _ce, X, Y)


@pytest.mark.parametrize(
    "norm",
    [
        lambda: nn.LayerNorm(6),
        lambda: nn.LayerNorm((5, 6)),
        lambda: nn.LayerNorm(6, bias=False),
        lambda: nn.LayerNorm(6, elementwise_affine=False),
        lambda: nn.GroupNorm(1, 5),
        lambda: nn.GroupNorm(5, 5),
        lambda: nn.GroupNorm(5, 5, affine=False),
    ],
)
def test_norm_layers(norm):
    g = _seed(14)
    model = nn.Sequential(nn.Linear(6, 6), norm(), nn.Tanh(), nn.Flatten(), nn.Linear(30, 2))
    X = torch.randn(4, 5, 6, generator=g)
    Y = torch.randint(0, 2, (4,), generator=g)
    _check(model, _ce, X, Y)


@pytest.mark.parametrize("kw", [dict(), dict(padding_idx=0), dict(max_norm=1.0)])
def test_embedding(kw):
    g = _seed(15)
    model = nn.Sequential(nn.Embedding(5, 4, **kw), nn.Linear(4, 2))
    tok = torch.randint(0, 5, (6, 9), generator=g)  # few ids: many repeats
    Y = torch.randn(6, 9, 2, generator=g)
    _check(model, _mse_seq, tok, Y)
    _check(model, lambda o, y: (o - y[:, 0]).pow(2).sum(1), tok[:, 0], Y)  # (B,) ids


def test_clipped_gradient_tied_model_and_params_subset():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(3, 3)
            self.out = nn.Linear(3, 2)

        def forward(self, x):
            return self.out(self.l(torch.tanh(self.l(x))))

    g = _seed(16)
    model = Tied().double()
    X = torch.randn(7, 3, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 2, (7,), generator=g)
    pe = _explicit(model, _ce, X, Y)
    norms = torch.linalg.vector_norm(pe, dim=1)
    C = float(norms.min() + norms.max()) / 2
    grads, _ = clipped_gradient(model, _ce, X, Y, C)
    flat = torch.cat([t.reshape(-1) for t in grads.values()])
    torch.testing.assert_close(flat, clip_factors(norms, C) @ pe)
    sub = ["out.weight", "out.bias"]  # the last 6 + 2 coordinates
    pe_sub = pe[:, -8:]
    n_sub = torch.linalg.vector_norm(pe_sub, dim=1)
    grads, got = clipped_gradient(model, _ce, X, Y, C / 2, params=sub, reduction="mean")
    assert list(grads) == sub
    torch.testing.assert_close(got, n_sub)
    flat = torch.cat([t.reshape(-1) for t in grads.values()])
    torch.testing.assert_close(flat, clip_factors(n_sub, C / 2) @ pe_sub / 7)


def test_not_batch_first_linear_and_product_pieces(monkeypatch):
    import unlearn_torch.per_sample as ps

    class PosTable(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Linear(2, 4)  # applied to a (T, 2) table: no batch dimension
            self.a = nn.Linear(4, 30)
            self.b = nn.Linear(30, 2)

        def forward(self, x):
            table = torch.stack([torch.arange(5.0), torch.ones(5)], 1).to(x)
            return self.b(torch.tanh(self.a(x + self.pos(table))))

    g = _seed(17)
    X = torch.randn(6, 5, 4, generator=g)
    Y = torch.randn(6, 5, 2, generator=g)
    _check(PosTable(), _mse_seq, X, Y)
    monkeypatch.setattr(ps, "_PRODUCT_CAP", 100)  # explicit products one example at a time
    _check(PosTable(), _mse_seq, X, Y)
