"""The same code path on a CUDA device: noise drawn on the device, guard, no CPU copies, no host
sync inside a step, rotated blocks (partition="rotations") on the device.

Run on a machine with a CUDA device (scripts/gpu_check.sh runs these and the CUDA benchmarks):
``pytest -m gpu tests/torch/test_gpu.py``."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

from unlearn_theory.methods import (  # noqa: E402
    BlockwiseGradientClippingSpec,
    GradientClippingSpec,
)
from unlearn_torch import unlearn  # noqa: E402
from unlearn_torch.noise import NoiseSource  # noqa: E402

from .helpers import (  # noqa: E402
    data,
    flat_params,
    mlp,
    probe_problems,
    rotated_probe_problems,
    zero_loss,
)

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


def test_rotated_blocks_on_the_device(tmp_path):
    """partition="rotations" on the GPU: the state z and the rotation live on the device, the
    noise lies in block b's subspace (probe in rotated coordinates), and the certificate
    verifies and replays bit for bit on the same device type."""
    from unlearn_torch import replay_certificate, verify_certificate
    from unlearn_torch.blocks import make_partition

    spec = BlockwiseGradientClippingSpec(
        clip_initial=1e6,
        clip_gradient=1.0,
        learning_rate=0.1,
        blocks=3,
        steps_per_block=4,
        noise_std=0.3,
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 20), torch.nn.Linear(20, 3))
    X, y = torch.zeros(4, 20), torch.zeros(4)
    snaps = []

    def stop(step, interp):
        assert interp.z is not None and interp.z.device.type == "cuda"
        snaps.append(interp.flat.x.detach().cpu().clone())
        return False

    out = tmp_path / "out"
    run = unlearn(
        model,
        (X, y),
        spec,
        loss_fn=zero_loss,
        seed=3,
        delta=1e-5,
        device="cuda",
        stop=stop,
        partition="rotations",
        partition_seed=5,
        out=out,
    )
    snaps.append(flat_params(run.model).cpu())
    layout = [(n, tuple(p.shape), p.numel()) for n, p in model.named_parameters()]
    part = make_partition(layout, 3, "rotations", seed=5)
    diffs = [b - a for a, b in zip(snaps, snaps[1:])]
    assert rotated_probe_problems(diffs, part, 0.3, 4) == []
    assert run.certificate["ran"]["rotation_check"]["inverse"] < 1e-5
    assert verify_certificate(out / "certificate.json", out / "model.pt") == []
    seed = json.loads((out / "seed.json").read_text())["seed"]
    problems = replay_certificate(
        out / "certificate.json", model, (X, y), loss_fn=zero_loss, seed=seed, device="cuda"
    )
    assert problems == []


@pytest.mark.parametrize("partition", [None, "rows", "rotations"])
def test_no_host_sync_inside_a_noisy_step(partition):
    """After each phase's first (compiling) step, a noisy step issues no synchronising CUDA
    call (torch.cuda.set_sync_debug_mode("error") raises on one): the statistics stay on the
    device until the periodic check."""
    from unlearn_torch.blocks import make_partition
    from unlearn_torch.data import IndexedData
    from unlearn_torch.interpreter import FlatParameters, Interpreter
    from unlearn_torch.noise import NoiseGuard

    X, y = data(n=32)
    if partition is None:
        spec = GradientClippingSpec(
            clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05, steps=8, noise_std=0.05
        )
    else:
        spec = BlockwiseGradientClippingSpec(
            clip_initial=5.0,
            clip_gradient=1.0,
            learning_rate=0.05,
            blocks=2,
            steps_per_block=4,
            noise_std=0.05,
        )
    m = mlp(hidden=40).to("cuda")
    flat = FlatParameters(m, [n for n, _ in m.named_parameters()], "cuda")
    rule = spec.update_rule()
    part = None if partition is None else make_partition(flat.layout, 2, partition, seed=1)
    it = Interpreter(
        flat=flat,
        rule=rule,
        data=IndexedData("retain", (X, y), "cuda"),
        loss_fn=F.cross_entropy,
        noise=NoiseSource(1),
        guard=NoiseGuard(rule.steps),
        partition=part,
    )
    it.run_prologue()
    warm = [0] if partition is None else [0, 4]
    for s in warm:  # compile each phase (creates its device constants)
        it.run_step(s)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in range(8):
            if s not in warm:
                it.run_step(s)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    it.guard.check()
    assert it.guard.summary()["passed"]
