"""The DP-SGD + group privacy baseline trained through Opacus (``unlearn_torch.train_dp_sgd``)."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
opacus = pytest.importorskip("opacus")

import torch.nn.functional as F  # noqa: E402
from opacus.accountants import RDPAccountant  # noqa: E402
from opacus.data_loader import DPDataLoader  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402
from opacus.utils.uniform_sampler import UniformWithReplacementSampler  # noqa: E402

import unlearn_theory as ut  # noqa: E402
from unlearn_theory.errors import InvalidParameterError  # noqa: E402
from unlearn_theory.methods import DPSGDGroupSpec, GradientClippingSpec  # noqa: E402
from unlearn_torch import (  # noqa: E402
    OpacusModelError,
    UnsupportedMethodError,
    train_dp_sgd,
    unlearn,
    verify_certificate,
)
from unlearn_torch import baselines as B  # noqa: E402
from unlearn_torch import certificate as C  # noqa: E402

from .helpers import data, mlp  # noqa: E402

DELTA = 1e-5
N = 200
SPEC = DPSGDGroupSpec(
    sample_rate=0.25,
    steps=8,
    forget_size=2,
    noise_multiplier=8.0,
    clip_gradient=1.0,
    learning_rate=0.05,
)


def _train(seed, out=None, **kw):
    X, y = data(n=N)
    return train_dp_sgd(
        mlp(),
        (X, y),
        SPEC,
        loss_fn=F.cross_entropy,
        seed=seed,
        delta=DELTA,
        out=out,
        forget_ids=[3, 7],
        **kw,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run with spies on the loader Opacus got and on the real parameter updates."""
    seen = {"loaders": [], "sgd_steps": 0, "batches": [], "indices": [], "first_step": None}
    real_loader = B.poisson_loader
    real_step = torch.optim.SGD.step
    real_dp_step = DPOptimizer.step

    def dp_step_spy(self, *a, **k):
        before = [p.detach().clone() for p in self.params]
        result = real_dp_step(self, *a, **k)
        if seen["first_step"] is None:
            seen["first_step"] = {
                "before": before,
                "after": [p.detach().clone() for p in self.params],
                "noise": [(p.grad - p.summed_grad).detach().clone() for p in self.params],
            }
        return result

    def loader_spy(dataset, sample_rate, generator):
        loader = real_loader(dataset, sample_rate, generator)
        seen["loaders"].append(loader)
        sampler = loader.batch_sampler
        real_iter = type(sampler).__iter__

        class Recording(type(sampler)):
            def __iter__(self):
                for batch in real_iter(self):
                    seen["batches"].append(len(batch))
                    seen["indices"].append(list(batch))
                    yield batch

        sampler.__class__ = Recording
        return loader

    def step_spy(self, *a, **k):
        seen["sgd_steps"] += 1
        return real_step(self, *a, **k)

    out = tmp_path_factory.mktemp("dpsgd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(B, "poisson_loader", loader_spy)
        mp.setattr(torch.optim.SGD, "step", step_spy)
        mp.setattr(DPOptimizer, "step", dp_step_spy)
        torch.manual_seed(0)
        run = _train(11, out=out, eval_data=data(n=64, seed=1))
    return run, seen


def test_trains_with_the_plans_poisson_loader_for_exactly_T_steps(trained):
    run, seen = trained
    (loader,) = seen["loaders"]
    assert isinstance(loader, DPDataLoader)
    assert isinstance(loader.batch_sampler, UniformWithReplacementSampler)
    assert loader.batch_sampler.sample_rate == SPEC.sample_rate
    assert loader.batch_sampler.generator is not None  # explicit, not the global RNG
    # exactly T real parameter updates, one Poisson batch each
    assert seen["sgd_steps"] == SPEC.steps
    assert len(seen["batches"]) == SPEC.steps
    rec = run.certificate["ran"]["dp_sgd"]
    assert rec["optimizer_steps"] == rec["steps"] == SPEC.steps
    assert run.certificate["ran"]["steps_run"] == SPEC.steps
    assert rec["sampler"] == "poisson"
    assert rec["expected_batch_size"] == pytest.approx(SPEC.sample_rate * N)
    assert rec["noise_multiplier"] == SPEC.noise_multiplier
    assert rec["max_grad_norm"] == SPEC.clip_gradient
    assert rec["opacus_version"] == opacus.__version__
    # Opacus' own accountant saw every step at the plan's (z, q)
    assert rec["opacus_accountant_history"] == [
        [SPEC.noise_multiplier, SPEC.sample_rate, SPEC.steps]
    ]
    sizes = seen["batches"]
    assert "batch_sizes" not in run.certificate["ran"]  # realised Poisson sizes: private
    bs = run.record["ran"]["batch_sizes"]
    assert (bs["min"], bs["max"]) == (min(sizes), max(sizes))
    assert min(sizes) < max(sizes)  # Poisson: batch sizes vary
    sd = math.sqrt(N * SPEC.sample_rate * (1 - SPEC.sample_rate) / SPEC.steps)
    assert abs(sum(sizes) / len(sizes) - SPEC.sample_rate * N) < 5 * sd
    # the runtime guard saw Opacus' noise (std z*C1) at every step
    guard = run.certificate["noise"]["guard"]
    assert guard["passed"] and guard["draws"] == SPEC.steps
    assert run.history[0]["phase"] == "start"
    assert {h["phase"] for h in run.history[1:]} == {"dp_sgd"}
    assert run.history[-1]["step"] == SPEC.steps


def test_first_step_is_sgd_on_the_clipped_gradient_sum_plus_noise(trained):
    """x1 = x0 − γ(Σ_i clip_C1(∇ℓ_i(x0)) + ξ): the plan's γ on the SUM (loss_reduction="sum"),
    per-example clipping to C1 (Opacus' factor C1/(‖g‖ + 1e-6) capped at 1), ξ Opacus' noise."""
    _, seen = trained
    first = seen["first_step"]
    X, y = data(n=N)
    model = mlp()
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in seen["indices"][0]:
        loss = F.cross_entropy(model(X[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum(g.square().sum() for g in grads))
        factor = min(1.0, SPEC.clip_gradient / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads)]
    for p0, x0, x1, t, xi in zip(params, first["before"], first["after"], total, first["noise"]):
        assert torch.equal(p0.detach(), x0)
        expected = x0 - SPEC.learning_rate * (t + xi)
        assert torch.allclose(x1, expected, atol=1e-5, rtol=1e-5)
    noise = torch.cat([xi.reshape(-1) for xi in first["noise"]])
    assert 0.5 < float(noise.std()) / (SPEC.noise_multiplier * SPEC.clip_gradient) < 1.5


def test_poisson_loader_batch_sizes_are_binomial():
    X, y = data(n=N)
    loader = B.poisson_loader(
        torch.utils.data.TensorDataset(X, y), 0.25, torch.Generator().manual_seed(3)
    )
    sizes = []
    while len(sizes) < 400:
        sizes += [len(xb) for xb, _ in loader]
    sizes = torch.tensor(sizes[:400], dtype=torch.float64)
    mean, var = float(sizes.mean()), float(sizes.var())
    p = 0.25
    assert abs(mean - p * N) < 5 * math.sqrt(N * p * (1 - p) / 400)
    assert 0.7 < var / (N * p * (1 - p)) < 1.3


def test_certificate_verifies_and_equals_certify(trained):
    run, _ = trained
    paths = run.paths
    assert (
        verify_certificate(
            paths["certificate"],
            paths["model"],
            seed_path=paths["seed"],
            record_path=paths["run_record"],
        )
        == []
    )
    fresh = ut.certify(SPEC, delta=DELTA)
    assert run.certificate["guarantee"]["epsilon"] == float(fresh)
    assert run.certificate["guarantee"]["delta"] == DELTA
    assert run.certificate["data"]["forget_size"] == 2
    assert run.certificate["environment"]["opacus"] == opacus.__version__


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: c["ran"]["dp_sgd"].update(sampler="shuffle"), "not Poisson"),
        (lambda c: c["ran"]["dp_sgd"].update(optimizer_steps=7), "optimizer_steps"),
        (lambda c: c["ran"]["dp_sgd"].update(noise_multiplier=4.0), "noise_multiplier"),
        (lambda c: c["ran"]["dp_sgd"].update(sample_rate=0.1), "sample_rate"),
        (lambda c: c["ran"]["dp_sgd"].update(expected_batch_size=10), "expected_batch_size"),
        (lambda c: c["ran"].pop("dp_sgd"), "DP-SGD record"),
    ],
)
def test_edited_dp_sgd_record_fails_verification(trained, tmp_path, edit, match):
    run, _ = trained
    cert = json.loads(json.dumps(run.certificate))
    edit(cert)
    cert.pop("content_sha256")
    cert["content_sha256"] = C.sha256_json(cert)  # a consistent forgery of the record
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(cert))
    problems = verify_certificate(path)
    assert any(match in p for p in problems), problems


def test_same_seed_same_model_from_the_explicit_generators(trained):
    run, _ = trained
    torch.manual_seed(12345)  # a different global RNG state: must not matter
    state = torch.get_rng_state()
    again = _train(11)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is neither used nor moved
    a, b = run.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.certificate["model"]["sha256_final"] == run.certificate["model"]["sha256_final"]
    other = _train(12)
    assert other.certificate["model"]["sha256_final"] != run.certificate["model"]["sha256_final"]
    # the training really moved the model
    assert run.certificate["model"]["sha256_final"] != run.record["model"]["sha256_before"]


def test_batchnorm_model_refused_and_nothing_written(tmp_path):
    X, y = data(n=N)
    out = tmp_path / "never"
    with pytest.raises(OpacusModelError, match="BatchNorm") as info:
        train_dp_sgd(
            mlp(batchnorm=True), (X, y), SPEC, loss_fn=F.cross_entropy, delta=DELTA, out=out
        )
    assert isinstance(info.value, InvalidParameterError)
    assert "model" in str(info.value)
    assert not out.exists()


def test_bad_inputs_are_named():
    X, y = data(n=N)
    gc = GradientClippingSpec(
        clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, noise_std=1.0, steps=2
    )
    with pytest.raises(InvalidParameterError, match="dp_sgd_group"):
        train_dp_sgd(mlp(), (X, y), gc, loss_fn=F.cross_entropy, delta=DELTA)
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        train_dp_sgd(
            mlp(), (X, y), SPEC.replace(learning_rate=None), loss_fn=F.cross_entropy, delta=DELTA
        )
    with pytest.raises(InvalidParameterError, match="forget_size"):
        train_dp_sgd(
            mlp(), (X, y), SPEC, loss_fn=F.cross_entropy, delta=DELTA, forget_ids=[1, 2, 3]
        )


def test_unlearn_points_dp_sgd_plans_to_train_dp_sgd():
    X, y = data(n=N)
    with pytest.raises(UnsupportedMethodError, match="train_dp_sgd"):
        unlearn(mlp(), (X, y), SPEC, loss_fn=F.cross_entropy, delta=DELTA)


def test_opacus_rdp_accountant_is_not_below_our_per_record_pld_epsilon():
    """Peer cross-check: Opacus' RDP accountant for the same (z, q, T) at our per-record δ'
    gives an ε' at least ours (ours is the tighter PLD; a larger ε here would be unsound)."""
    fresh = C._certify_spec(SPEC, DELTA)
    per_record = fresh.details["per_record_epsilon"]
    k = SPEC.forget_size
    record_delta = DELTA / sum(math.exp(i * per_record) for i in range(k))
    acc = RDPAccountant()
    acc.history = [(SPEC.noise_multiplier, SPEC.sample_rate, SPEC.steps)]
    theirs = acc.get_epsilon(delta=record_delta)
    assert theirs >= per_record - 1e-6
    assert theirs <= 2.0 * per_record  # same mechanism: RDP is looser, not another world
    # the certificate is the smaller of k-fold induction (k times the per-record ε) and the
    # group-mixture route
    assert fresh.details["induction_epsilon"] == pytest.approx(k * per_record)
    assert float(fresh) == pytest.approx(
        min(fresh.details["induction_epsilon"], fresh.details["mixture_epsilon"])
    )


def test_empty_poisson_batches_and_dropout_are_handled_and_replayable():
    """At n=4, q=1/4 about a third of the batches are empty: the step still adds the noise
    (zero gradient sum) and counts; dropout draws come from the seed, not the global RNG."""
    X, y = data(n=4)
    runs = []
    for global_seed in (0, 99):
        torch.manual_seed(global_seed)
        runs.append(
            train_dp_sgd(
                mlp(dropout=True), (X, y), SPEC, loss_fn=F.cross_entropy, seed=5, delta=DELTA
            )
        )
    cert = runs[0].certificate
    assert runs[0].record["ran"]["batch_sizes"]["empty_batches"] >= 1
    assert cert["ran"]["dp_sgd"]["optimizer_steps"] == SPEC.steps
    assert cert["noise"]["guard"]["draws"] == SPEC.steps
    assert cert["model"]["sha256_final"] == runs[1].certificate["model"]["sha256_final"]
