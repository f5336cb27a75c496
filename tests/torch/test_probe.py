"""The noise on the real code path: a zero-gradient probe through ``unlearn``.

With a zero loss, λ = 0 and radii far above the parameter norm, gradient clipping's step is
x_{t+1} = x_t − γ·0 + ξ_t, so the per-step differences are the noise itself (up to one float32
rounding of the addition). The probe checks their scale (χ²), their independence across steps
(cosine) and across tensors, and their Gaussianity; injected faults (reused noise, half noise)
must be caught by the probe and, independently, by the runtime guard.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from unlearn_theory.methods import (  # noqa: E402
    BlockwiseGradientClippingSpec,
    GradientClippingSpec,
)
from unlearn_torch import NoiseGuardError, unlearn  # noqa: E402
from unlearn_torch.noise import NoiseGuard, NoiseSource, _cosine_bound  # noqa: E402

from .helpers import cosine, flat_params, probe_problems, zero_loss  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning")

SIGMA = 0.3
T = 12


def _probe_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 20), nn.Linear(20, 20))  # two equal-size weights: d=840


def _probe_spec(steps=T, sigma=SIGMA):
    return GradientClippingSpec(
        clip_initial=1e6, clip_gradient=1.0, learning_rate=0.1, steps=steps, noise_std=sigma
    )


def _run_probe(model=None, spec=None, **kw):
    model = model or _probe_model()
    X = torch.zeros(4, 20)
    y = torch.zeros(4)
    snaps = []

    def stop(step, interp):
        snaps.append(interp.flat.x.clone())
        return False

    run = unlearn(
        model,
        (X, y),
        spec or _probe_spec(),
        loss_fn=zero_loss,
        seed=11,
        delta=1e-5,
        stop=stop,
        **kw,
    )
    snaps.append(flat_params(run.model))
    diffs = [b - a for a, b in zip(snaps, snaps[1:])]
    return run, diffs


def test_probe_sees_fresh_gaussian_noise_of_the_planned_scale():
    run, diffs = _run_probe()
    assert len(diffs) == T
    assert all(D.dtype == torch.float32 for D in diffs)
    assert probe_problems(diffs, SIGMA) == []
    # the differences ARE the keyed draws (up to one float32 rounding of x + ξ)
    src = NoiseSource(11)
    for t, D in enumerate(diffs):
        xi = src.draw(D.numel(), SIGMA, kind="step", step=t, block=-1, slot=0)
        assert torch.allclose(D, xi, atol=1e-6, rtol=0)
    assert run.certificate["noise"]["guard"]["draws"] == T


def test_probe_noise_independent_across_tensors():
    _, diffs = _run_probe()
    bound = _cosine_bound(400, 1e-6 / T)
    for D in diffs:  # weight of layer 0 vs weight of layer 1 at the same step
        assert abs(cosine(D[:400], D[420:820])) < bound
    # and not a shifted copy of itself across tensors
    assert not torch.allclose(diffs[0][:400], diffs[0][420:820])


def test_probe_every_parameter_is_noised():
    _, diffs = _run_probe()
    for D in diffs:
        assert (D != 0).float().mean() > 0.99  # biases and weights alike


def _reuse_noise(monkeypatch):
    orig = NoiseSource.draw
    cache = {}

    def reused(self, n, std, **kw):
        if n not in cache:
            cache[n] = orig(self, n, std, **kw).clone()
        return cache[n].clone()

    monkeypatch.setattr(NoiseSource, "draw", reused)


def _half_noise(monkeypatch):
    orig = NoiseSource.draw

    def half(self, n, std, **kw):
        return orig(self, n, std / 2, **kw)

    monkeypatch.setattr(NoiseSource, "draw", half)


def _silence_guard(monkeypatch):
    monkeypatch.setattr(NoiseGuard, "check", lambda self: self._pending_q.clear())
    monkeypatch.setattr(NoiseGuard, "finish", lambda self: None)


@pytest.mark.parametrize("fault", [_reuse_noise, _half_noise])
def test_injected_fault_caught_by_probe(monkeypatch, fault):
    fault(monkeypatch)
    _silence_guard(monkeypatch)
    _, diffs = _run_probe()
    assert probe_problems(diffs, SIGMA) != []


@pytest.mark.parametrize("fault", [_reuse_noise, _half_noise])
def test_injected_fault_caught_by_guard(monkeypatch, fault, tmp_path):
    fault(monkeypatch)
    with pytest.raises(NoiseGuardError) as info:
        _run_probe(out=tmp_path / "out")
    assert info.value.record["status"] == "failed"
    assert not (tmp_path / "out").exists()  # a failed run writes nothing


def test_probe_blockwise_noise_only_on_the_active_block():
    spec = BlockwiseGradientClippingSpec(
        clip_initial=1e6,
        clip_gradient=1.0,
        learning_rate=0.1,
        blocks=3,
        steps_per_block=4,
        noise_std=SIGMA,
    )
    for kind in ("rows", "random", "layers"):
        if kind == "layers":
            model = nn.Sequential(nn.Linear(20, 20), nn.Linear(20, 20), nn.Linear(20, 20))
        else:
            model = _probe_model()
        snaps = []

        def stop(step, interp, snaps=snaps):
            snaps.append(interp.flat.x.clone())
            return False

        run = unlearn(
            model,
            (torch.zeros(4, 20), torch.zeros(4)),
            spec,
            loss_fn=zero_loss,
            seed=3,
            delta=1e-5,
            stop=stop,
            partition=kind,
            partition_seed=5,
        )
        snaps.append(flat_params(run.model))
        from unlearn_torch.blocks import make_partition

        layout = [(n, tuple(p.shape), p.numel()) for n, p in run.model.named_parameters()]
        part = make_partition(layout, 3, kind, seed=5)
        assert run.certificate["ran"]["partition"]["assignment_sha256"] == part.sha256()
        diffs = [b - a for a, b in zip(snaps, snaps[1:])]
        for t, D in enumerate(diffs):
            active = part.assignment == (t // 4)
            assert torch.equal(D[~active], torch.zeros_like(D[~active])), (kind, t)
            assert (D[active] != 0).float().mean() > 0.99
        per_block = [[D[part.assignment == b] for D in diffs[4 * b : 4 * b + 4]] for b in range(3)]
        for b in range(3):
            assert probe_problems(per_block[b], SIGMA) == [], (kind, b)
