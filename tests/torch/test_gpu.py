"""The same code path on a CUDA device: noise drawn on the device, guard, no CPU copies."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

from unlearn_theory.methods import (  # noqa: E402
    BlockwiseGradientClippingSpec,
    GradientClippingSpec,
)
from unlearn_torch import unlearn  # noqa: E402
from unlearn_torch.noise import NoiseSource  # noqa: E402

from .helpers import data, flat_params, mlp, probe_problems, zero_loss  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning"),
]


def test_noise_is_drawn_on_the_device_and_passes_the_probe(monkeypatch):
    devices = []
    orig = NoiseSource.draw

    def spy(self, n, std, **kw):
        out = orig(self, n, std, **kw)
        devices.append((out.device.type, out.dtype))
        return out

    monkeypatch.setattr(NoiseSource, "draw", spy)
    spec = GradientClippingSpec(
        clip_initial=1e6, clip_gradient=1.0, learning_rate=0.1, steps=10, noise_std=0.3
    )
    X, y = data(n=16)
    snaps = []

    def stop(step, interp):
        assert interp.flat.x.device.type == "cuda"
        snaps.append(interp.flat.x.detach().cpu().clone())
        return False

    model = torch.nn.Sequential(torch.nn.Linear(6, 200), torch.nn.Linear(200, 3))
    run = unlearn(
        model, (X, y), spec, loss_fn=zero_loss, seed=5, delta=1e-5, device="cuda", stop=stop
    )
    snaps.append(flat_params(run.model).cpu())
    assert devices and all(d == ("cuda", torch.float32) for d in devices)
    assert probe_problems([b - a for a, b in zip(snaps, snaps[1:])], 0.3) == []
    assert run.certificate["ran"]["device"].startswith("cuda")


def test_methods_run_on_the_device():
    X, y = data(n=40)
    for spec in (
        GradientClippingSpec(
            clip_initial=5.0,
            clip_gradient=1.0,
            learning_rate=0.05,
            steps=5,
            noise_std=0.05,
            weight_decay=0.5,
        ),
        BlockwiseGradientClippingSpec(
            clip_initial=5.0,
            clip_gradient=1.0,
            learning_rate=0.05,
            blocks=2,
            steps_per_block=3,
            noise_std=0.05,
        ),
    ):
        run = unlearn(
            mlp(), (X, y), spec, loss_fn=F.cross_entropy, seed=1, delta=1e-5, device="cuda"
        )
        assert run.status == "completed"
        assert all(p.device.type == "cuda" for p in run.model.parameters())
        assert run.certificate["noise"]["guard"]["passed"]
