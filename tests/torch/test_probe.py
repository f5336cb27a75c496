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

from .helpers import (  # noqa: E402
    cosine,
    flat_params,
    probe_problems,
    rotated_probe_problems,
    zero_loss,
)

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


# -- rotated blocks ------------------------------------------------------------------------------
ROT_SPEC = dict(clip_initial=1e6, clip_gradient=1.0, learning_rate=0.1, blocks=3, noise_std=SIGMA)


def _rotations_probe(tmp_path=None, seed=3):
    """Zero-gradient probe of a partition="rotations" run; layers of 420 coordinates (Hadamard
    chunks 256+128+32+4) and 63 (dense Haar)."""
    spec = BlockwiseGradientClippingSpec(steps_per_block=4, **ROT_SPEC)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 20), nn.Linear(20, 3))
    snaps = []

    def stop(step, interp):
        snaps.append(interp.flat.x.clone())
        return False

    run = unlearn(
        model,
        (torch.zeros(4, 20), torch.zeros(4)),
        spec,
        loss_fn=zero_loss,
        seed=seed,
        delta=1e-5,
        stop=stop,
        partition="rotations",
        partition_seed=5,
        out=tmp_path,
    )
    snaps.append(flat_params(run.model))
    return run, [b - a for a, b in zip(snaps, snaps[1:])]


def _true_rotations_partition():
    from unlearn_torch.blocks import make_partition

    layout = [("0.weight", (20, 20), 400), ("0.bias", (20,), 20)]
    layout += [("1.weight", (3, 20), 60), ("1.bias", (3,), 3)]
    return make_partition(layout, 3, "rotations", seed=5)


def test_probe_rotated_blocks_noise_lies_in_the_block_subspace(tmp_path):
    from unlearn_torch import verify_certificate

    part = _true_rotations_partition()
    run, diffs = _rotations_probe(tmp_path / "out")
    assert len(diffs) == 12
    assert rotated_probe_problems(diffs, part, SIGMA, 4) == []
    # the rotated differences ARE the keyed draws of block b (no other noise, nothing lost)
    src = NoiseSource(3)
    for t, D in enumerate(diffs):
        b = t // 4
        dz = part.rotation.forward(D)[part.assignment == b]
        xi = src.draw(dz.numel(), SIGMA, kind="step", step=t, block=b, slot=0)
        assert torch.allclose(dz, xi, atol=2e-6, rtol=0)
    # in x the noise is spread over every coordinate of every layer (not a coordinate block)
    assert all((D != 0).float().mean() > 0.99 for D in diffs)
    rec = run.certificate["ran"]["partition"]
    assert rec["kind"] == "rotations" and rec["seed"] == 5
    assert rec == part.describe()
    assert run.certificate["ran"]["rotation_check"]["inverse"] < 1e-6
    out = tmp_path / "out"
    assert verify_certificate(out / "certificate.json", out / "model.pt") == []


def _identity_rotation(monkeypatch):
    """Noise in the wrong subspace: the run forgets to rotate (R = I is orthogonal, so the
    isometry check passes, and the draws are fine, so the noise guard passes)."""
    from unlearn_torch.blocks import Rotation

    monkeypatch.setattr(Rotation, "forward", lambda self, v: v.clone())
    monkeypatch.setattr(Rotation, "inverse", lambda self, v: v.clone())


def _skewed_rotation(monkeypatch):
    """A non-orthogonal map A = Q + 0.1·G on the dense layer (the run maps back with Aᵀ, which
    is not A⁻¹), and the Hadamard layer's signs scaled by 1.2 (RᵀR = 1.44·I there)."""
    from unlearn_torch.blocks import Rotation

    orig = Rotation.__init__

    def skewed(self, layout, seed):
        orig(self, layout, seed)
        gen = torch.Generator().manual_seed(1)
        for g in self.groups:
            if g["kind"] == "dense":
                g["q"] = g["q"] + 0.1 * torch.randn(g["q"].shape, generator=gen)
            else:
                g["signs"] = g["signs"] * 1.2

    monkeypatch.setattr(Rotation, "__init__", skewed)


@pytest.mark.parametrize("fault", [_identity_rotation, _skewed_rotation])
def test_rotated_fault_caught_by_probe(monkeypatch, fault):
    part = _true_rotations_partition()  # built before the fault
    true_forward = part.rotation.forward  # bound before the class is patched
    fault(monkeypatch)
    from unlearn_torch.blocks import Rotation

    monkeypatch.setattr(Rotation, "check", lambda self, device: None)  # runtime check silenced
    _, diffs = _rotations_probe()
    assert rotated_probe_problems(diffs, part, SIGMA, 4, forward=true_forward) != []


def test_non_orthogonal_rotation_caught_before_the_run(monkeypatch, tmp_path):
    from unlearn_torch import RotationError

    _skewed_rotation(monkeypatch)
    with pytest.raises(RotationError, match="not orthogonal"):
        _rotations_probe(tmp_path / "out")
    assert not (tmp_path / "out").exists()
