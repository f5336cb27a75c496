"""Each operation of the torch interpreter against its formula, on the real code path."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from unlearn_theory.methods import (  # noqa: E402
    GradientClippingSpec,
    LangevinSpec,
    OutputPerturbationSpec,
)
from unlearn_theory.update_rule import Gradient  # noqa: E402
from unlearn_torch import unlearn  # noqa: E402
from unlearn_torch.data import IndexedData  # noqa: E402
from unlearn_torch.interpreter import FlatParameters, Interpreter  # noqa: E402
from unlearn_torch.noise import NoiseGuard, NoiseSource  # noqa: E402

from .helpers import data, flat_params, mlp  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning")


def _linear(w):
    m = nn.Linear(len(w), 1, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([w]))
    return m


def _mean_output(out, y):
    return out.mean()  # gradient wrt w = mean of the inputs


def test_weight_decay_is_applied_after_clipping():
    # x1 = (1 − γλ)x0 − γ·clip_C1(g) + ξ; clipping the decayed gradient g + λx0 would differ
    w0 = torch.tensor([3.0, -4.0, 2.0, 0.5, 1.0])
    X = torch.ones(8, 5)
    g = X.mean(0)
    lr, wd, c1, sigma = 0.1, 1.0, 1.0, 1e-6
    spec = GradientClippingSpec(
        clip_initial=1e3,
        clip_gradient=c1,
        learning_rate=lr,
        weight_decay=wd,
        steps=1,
        noise_std=sigma,
    )
    run = unlearn(
        _linear(w0.tolist()), (X, torch.zeros(8)), spec, loss_fn=_mean_output, seed=9, delta=1e-5
    )
    xi = NoiseSource(9).draw(5, sigma, kind="step", step=0, block=-1, slot=0)
    x1 = flat_params(run.model)
    right = (1 - lr * wd) * w0 - lr * g * min(1.0, c1 / float(g.norm())) + xi
    gd = g + wd * w0
    wrong = w0 - lr * gd * min(1.0, c1 / float(gd.norm())) + xi
    assert torch.allclose(x1, right, atol=1e-6, rtol=0)
    assert not torch.allclose(x1, wrong, atol=1e-3)
    clip = run.record["ran"]["clipping"]
    (rec,) = clip.values()
    assert rec["fraction_clipped"] == 1.0
    assert rec["gradient_norm"]["max"] == pytest.approx(float(g.norm()), rel=1e-6)


@pytest.mark.parametrize("w0,inside", [([0.3, -0.4], True), ([30.0, -40.0], False)])
def test_projection_is_onto_the_ball_not_the_sphere(w0, inside):
    C0, sigma = 10.0, 1e-4
    spec = OutputPerturbationSpec(clip_initial=C0, noise_std=sigma)
    run = unlearn(
        _linear(w0),
        (torch.ones(3, 2), torch.zeros(3)),
        spec,
        loss_fn=_mean_output,
        seed=2,
        delta=1e-5,
    )
    xi = NoiseSource(2).draw(2, sigma, kind="prologue", step=0, block=-1, slot=0)
    projected = flat_params(run.model) - xi
    w = torch.tensor(w0)
    expected = w if inside else w * (C0 / float(w.norm()))
    assert torch.allclose(projected, expected, atol=1e-5)
    (rec,) = run.record["ran"]["projections"].values()
    assert rec["norm_before"]["last"] == pytest.approx(float(w.norm()), rel=1e-6)
    assert rec["norm_after"]["last"] == pytest.approx(min(C0, float(w.norm())), rel=1e-6)
    assert rec["fraction_projected"] == (0.0 if inside else 1.0)


def _interp(model, X, y, loss_fn, rule_spec, seed=0):
    flat = FlatParameters(model, [n for n, _ in model.named_parameters()], "cpu")
    rule = rule_spec.update_rule()
    return Interpreter(
        flat=flat,
        rule=rule,
        data=IndexedData("retain", (X, y), "cpu"),
        loss_fn=loss_fn,
        noise=NoiseSource(seed),
        guard=NoiseGuard(10),
        partition=None,
    )


@pytest.mark.parametrize("path", ["ghost", "vmap"])
def test_per_example_clipping_matches_a_loop(path):
    """Ghost clipping (exact norms from activations and output gradients) and the vmap path
    it falls back to both equal the explicit per-example loop."""
    X, y = data(n=12)
    model = mlp()
    spec = LangevinSpec(
        learning_rate=0.1,
        strong_convexity=0.1,
        smoothness=1.0,
        lipschitz=0.05,
        dataset_size=12,
        steps=1,
        noise_std=0.1,
    )
    it = _interp(model, X, y, nn.functional.cross_entropy, spec)
    op = Gradient(per_example_clip=0.05)
    if path == "vmap":
        it._ghost_ok = False  # as after a model the ghost norms cannot handle
    g, _ = it.gradient(op, 0)
    assert it.records.per_example_mode == path
    manual = torch.zeros_like(g)
    for i in range(12):
        model.zero_grad()
        nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1]).backward()
        gi = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        manual += gi * min(1.0, 0.05 / float(gi.norm()))
    assert torch.allclose(g, manual / 12, atol=1e-6)
    assert float(g.norm()) <= 0.05 + 1e-6


def test_full_batch_gradient_in_chunks_equals_one_batch():
    X, y = data(n=50)
    model = mlp()
    spec = GradientClippingSpec(
        clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, steps=1, noise_std=1.0
    )
    it = _interp(model, X, y, nn.functional.cross_entropy, spec)
    it.chunk_size = 7
    g, loss = it.gradient(Gradient(), 0)
    model.zero_grad()
    ref_loss = nn.functional.cross_entropy(model(X), y)
    ref_loss.backward()
    ref = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(g, ref, atol=1e-6)
    assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-5)


def test_unused_parameter_gets_zero_gradient_then_decay_and_noise():
    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)
            self.spare = nn.Parameter(torch.ones(50))

        def forward(self, x):
            return self.lin(x)

    X, y = data(n=20)
    model = WithSpare()
    spec = GradientClippingSpec(
        clip_initial=1e3,
        clip_gradient=1.0,
        learning_rate=0.1,
        weight_decay=0.5,
        steps=2,
        noise_std=0.01,
    )
    run = unlearn(model, (X, y), spec, loss_fn=nn.functional.cross_entropy, seed=4, delta=1e-5)
    assert "spare" in run.certificate["ran"]["coverage"]["noised_parameters"]
    src = NoiseSource(4)
    d = 21 + 50
    expected = torch.ones(50)
    for t in range(2):
        xi = src.draw(d, 0.01, kind="step", step=t, block=-1, slot=0)
        expected = 0.95 * expected + xi[:50]  # "spare" is first in the flat vector
    assert torch.allclose(run.model.spare.detach(), expected, atol=1e-6)


def test_batches_are_fresh_every_step_and_keyed():
    X, y = data(n=40)
    spec = GradientClippingSpec(
        clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, steps=1, noise_std=1.0
    )
    it = _interp(mlp(), X, y, nn.functional.cross_entropy, spec, seed=5)
    shuffle = Gradient(batching="shuffle", batch_size=10)
    batches = [it._batch_indices(shuffle, t) for t in range(6)]
    assert all(b.numel() == 10 and b.unique().numel() == 10 for b in batches)
    assert len({tuple(sorted(b.tolist())) for b in batches}) == 6
    again = _interp(mlp(), X, y, nn.functional.cross_entropy, spec, seed=5)
    assert torch.equal(again._batch_indices(shuffle, 3), batches[3])
    cyclic = Gradient(batching="cyclic", batch_size=15)
    cb = [it._batch_indices(cyclic, t) for t in range(4)]
    assert cb == [(0, 15), (15, 30), (30, 40), (0, 15)]  # fixed partition, visited in order
    assert it._batch_indices(Gradient(), 7) == (0, 40)


def _gc_interpreter(seed=0):
    X, y = data(n=32)
    m = mlp()
    flat = FlatParameters(m, [n for n, _ in m.named_parameters()], "cpu")
    spec = GradientClippingSpec(
        clip_initial=50.0,
        clip_gradient=1.0,
        learning_rate=0.1,
        weight_decay=0.01,
        steps=40,
        noise_std=0.05,
    )
    return Interpreter(
        flat=flat,
        rule=spec.update_rule(),
        data=IndexedData("retain", (X, y), "cpu"),
        loss_fn=torch.nn.functional.cross_entropy,
        noise=NoiseSource(seed),
        guard=NoiseGuard(40),
        partition=None,
    )


def test_compiled_steps_are_checked_by_the_guard_on_every_draw():
    # an honest run: every draw is judged, each (but the first) with a cosine
    it = _gc_interpreter()
    for t in range(40):
        it.run_step(t)
    it.guard.finish()
    assert it.guard.checked == 40
    assert it.guard.corr[0] is None and all(c is not None for c in it.guard.corr[1:])
    # noise reused from step to step (a broken key) is caught at the next check
    from unlearn_torch.errors import NoiseGuardError

    it = _gc_interpreter()
    real = it.noise.draw
    it.noise.draw = lambda n, std, **kw: real(n, std, **{**kw, "step": 0})
    for t in range(16):
        it.run_step(t)
    with pytest.raises(NoiseGuardError, match="correlation"):
        it.guard.check()


def test_compiled_steps_replay_bit_for_bit():
    a, b = _gc_interpreter(seed=9), _gc_interpreter(seed=9)
    for t in range(10):
        a.run_step(t)
        b.run_step(t)
    assert torch.equal(a.flat.x, b.flat.x)
    c = _gc_interpreter(seed=10)
    for t in range(10):
        c.run_step(t)
    assert not torch.equal(a.flat.x, c.flat.x)
