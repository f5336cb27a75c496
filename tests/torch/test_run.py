"""``unlearn`` end to end: every method's spec, coverage, stops, failures, resume, bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import unlearn_theory as ut  # noqa: E402
from unlearn_theory.errors import InvalidParameterError  # noqa: E402
from unlearn_theory.methods import (  # noqa: E402
    BlockwiseGradientClippingSpec,
    DPSGDGroupSpec,
    GradientClippingSpec,
    LangevinSpec,
    ModelClippingSpec,
    OutputPerturbationSpec,
)
from unlearn_torch import (  # noqa: E402
    CheckpointMismatchError,
    FrozenParameterError,
    LargeNoiseWarning,
    NonFiniteError,
    UncertifiedPlanError,
    UnsupportedBufferError,
    UnsupportedMethodError,
    replay_certificate,
    retrain,
    unlearn,
    verify_certificate,
)
from unlearn_torch.certificate import _certify_spec, spec_for_steps, state_sha256  # noqa: E402

from .helpers import data, flat_params, mlp  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning")
DELTA = 1e-5

SPECS = {
    "gradient_clipping": GradientClippingSpec(
        clip_initial=5.0,
        clip_gradient=1.0,
        learning_rate=0.05,
        weight_decay=0.5,
        steps=6,
        noise_std=0.05,
    ),
    "model_clipping": ModelClippingSpec(
        clip_initial=5.0,
        clip_model=5.0,
        noise_std=0.05,
        steps=6,
        learning_rate=0.05,
        initial_noise_std=0.01,
    ),
    "output_perturbation": OutputPerturbationSpec(clip_initial=5.0, noise_std=0.05),
    "blockwise_gradient_clipping": BlockwiseGradientClippingSpec(
        clip_initial=5.0,
        clip_gradient=1.0,
        learning_rate=0.05,
        blocks=2,
        steps_per_block=3,
        noise_std=0.05,
        weight_decay=0.5,
    ),
    "langevin": LangevinSpec(
        learning_rate=0.1,
        strong_convexity=0.1,
        smoothness=1.0,
        lipschitz=1.0,
        dataset_size=40,
        steps=4,
        noise_std=0.05,
        radius=5.0,
        batch_size=20,
    ),
}


@pytest.mark.parametrize("method", sorted(SPECS))
def test_each_method_runs_and_certifies_what_ran(method, tmp_path):
    X, y = data(n=40)
    spec = SPECS[method]
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seed = 123456789123
    run = unlearn(
        model,
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=seed,
        delta=DELTA,
        out=tmp_path,
        eval_data=(X, y),
        forget_ids=[3, 1, 2],
    )
    for k, v in model.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, before[k])
    cert = run.certificate
    assert run.status == "completed" and cert["ran"]["status"] == "completed"
    assert cert["ran"]["steps_run"] == spec.steps_total
    assert cert["guarantee"]["epsilon"] == pytest.approx(float(_certify_spec(spec, DELTA)))
    assert cert["guarantee"]["bound_kind"] in ("exact", "upper")
    assert cert["model"]["sha256_final"] == state_sha256(run.model.state_dict())
    assert "sha256_before" not in cert["model"]  # private: in the run record only
    assert run.record["model"]["sha256_before"] == state_sha256(model.state_dict())
    assert run.record["certificate_sha256"] == cert["content_sha256"]
    assert cert["noise"]["guard"]["passed"]
    assert cert["data"]["forget_size"] == 3
    assert str(seed) not in json.dumps(cert)  # the secret seed is only in seed.json
    assert json.loads((tmp_path / "seed.json").read_text())["seed"] == seed
    assert (
        verify_certificate(
            tmp_path / "certificate.json", tmp_path / "model.pt", seed_path=tmp_path / "seed.json"
        )
        == []
    )
    assert [h["phase"] for h in run.history][0] == "start"
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_plan_object_runs_and_refuses_uncertified_or_edited_plans():
    X, y = data(n=40)
    p = ut.plan(
        "gradient_clipping",
        epsilon=4.0,
        delta=DELTA,
        clip_initial=5.0,
        clip_gradient=1.0,
        learning_rate=0.05,
        weight_decay=0.5,
        steps=5,
    )
    run = unlearn(mlp(), (X, y), p, loss_fn=F.cross_entropy, seed=1)
    assert run.certificate["guarantee"]["certifies_target"]
    assert run.certificate["guarantee"]["epsilon"] <= 4.0
    strict = dataclasses.replace(p, target_epsilon=p.epsilon / 2, certifies_target=False)
    with pytest.raises(UncertifiedPlanError, match="exceeds the target"):
        unlearn(mlp(), (X, y), strict, loss_fn=F.cross_entropy, seed=1)
    run = unlearn(mlp(), (X, y), strict, loss_fn=F.cross_entropy, seed=1, allow_uncertified=True)
    assert not run.certificate["guarantee"]["certifies_target"]
    changes = {"noise_std": 0.01}
    if "spec" in {f.name for f in dataclasses.fields(p)}:
        changes["spec"] = p.spec.replace(noise_std=0.01)
    edited = dataclasses.replace(p, **changes)
    with pytest.raises(UncertifiedPlanError):
        unlearn(mlp(), (X, y), edited, loss_fn=F.cross_entropy, seed=1)


def test_stopped_run_is_recertified_for_the_steps_that_ran(tmp_path):
    X, y = data(n=40)
    spec = SPECS["gradient_clipping"]
    run = unlearn(
        mlp(),
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        stop=lambda step, _: step == 4,
        out=tmp_path,
    )
    assert run.status == "stopped"
    cert = run.certificate
    assert cert["ran"]["steps_run"] == 4 and cert["ran"]["spec"]["steps"] == 4
    expected = float(_certify_spec(spec.replace(steps=4), DELTA))
    assert cert["guarantee"]["epsilon"] == pytest.approx(expected)
    assert cert["guarantee"]["epsilon"] > float(_certify_spec(spec, DELTA))
    assert verify_certificate(tmp_path / "certificate.json", tmp_path / "model.pt") == []


def test_blockwise_stopped_before_its_last_block_certifies_nothing():
    X, y = data(n=40)
    run = unlearn(
        mlp(),
        (X, y),
        SPECS["blockwise_gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        stop=lambda step, _: step == 3,
    )
    assert run.status == "stopped"
    g = run.certificate["guarantee"]
    assert g["epsilon"] == "inf" and not g["certified"] and not g["certifies_target"]
    assert spec_for_steps(SPECS["blockwise_gradient_clipping"], 3) is None


def test_nan_loss_mid_run_fails_without_certificate(tmp_path):
    X, y = data(n=40)
    calls = []

    def flaky(out, target):
        calls.append(1)
        loss = F.cross_entropy(out, target)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.raises(NonFiniteError, match="step 2") as info:
        unlearn(
            mlp(),
            (X, y),
            SPECS["gradient_clipping"],
            loss_fn=flaky,
            seed=1,
            delta=DELTA,
            out=tmp_path / "out",
        )
    assert info.value.record["status"] == "failed"
    assert not (tmp_path / "out").exists()


def test_frozen_parameters_must_be_declared_public():
    X, y = data(n=40)
    model = mlp()
    model[0].weight.requires_grad_(False)
    with pytest.raises(FrozenParameterError, match="0.weight"):
        unlearn(
            model, (X, y), SPECS["gradient_clipping"], loss_fn=F.cross_entropy, seed=1, delta=DELTA
        )
    run = unlearn(
        model,
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        public=["0.weight"],
    )
    assert torch.equal(run.model[0].weight, model[0].weight)  # public: held fixed
    assert not torch.equal(run.model[0].bias, model[0].bias)
    cov = run.certificate["ran"]["coverage"]
    assert cov["public"] == ["0.weight"] and "0.weight" not in cov["noised_parameters"]


def test_batchnorm_statistics_reset_and_recomputed_on_retain():
    X, y = data(n=40)
    model = mlp(batchnorm=True)
    with torch.no_grad():
        model[1].running_mean.fill_(5.0)  # as if trained on data including the forget set
    run = unlearn(
        model, (X, y), SPECS["gradient_clipping"], loss_fn=F.cross_entropy, seed=1, delta=DELTA
    )
    bn = run.model[1]
    with torch.no_grad():
        h = run.model[0](X)
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert "1.running_mean" in run.certificate["ran"]["coverage"]["normalisation_buffers"]
    with pytest.raises(UnsupportedBufferError, match="per-example"):
        unlearn(model, (X, y), SPECS["langevin"], loss_fn=F.cross_entropy, seed=1, delta=DELTA)


def test_unknown_buffer_is_refused_unless_public():
    X, y = data(n=40)
    model = mlp()
    model.register_buffer("table", torch.ones(3))
    with pytest.raises(UnsupportedBufferError, match="table"):
        unlearn(
            model, (X, y), SPECS["gradient_clipping"], loss_fn=F.cross_entropy, seed=1, delta=DELTA
        )
    unlearn(
        model,
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        public=["table"],
    )


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (
            {"plan": DPSGDGroupSpec(sample_rate=0.1, steps=3, forget_size=1, noise_multiplier=1.0)},
            UnsupportedMethodError,
            "Opacus",
        ),
        (
            {"plan": ModelClippingSpec(clip_initial=1.0, clip_model=1.0, noise_std=1.0, steps=3)},
            InvalidParameterError,
            "learning_rate",
        ),
        ({"model": nn.ReLU()}, InvalidParameterError, "no parameters"),
        (
            {"retain": (torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))},
            InvalidParameterError,
            "no examples",
        ),
        ({"retain": [1, 2, 3]}, InvalidParameterError, "retain"),
        ({"delta": None}, InvalidParameterError, "delta"),
        (
            {"plan": {"method": "gradient_clipping", "clip_initial": 1.0}},
            InvalidParameterError,
            "required",
        ),
        ({"partition": "columns"}, InvalidParameterError, "partition"),
        ({"seed": -1}, InvalidParameterError, "seed"),
        ({"public": ["nope"]}, InvalidParameterError, "public"),
        (
            {"loss_fn": lambda o, t: F.cross_entropy(o, t, reduction="none")},
            InvalidParameterError,
            "scalar",
        ),
        ({"retain_ids": [1, 2]}, InvalidParameterError, "retain_ids"),
        ({"plan": SPECS["langevin"].replace(steps=3)}, UncertifiedPlanError, "no finite"),
    ],
)
def test_bad_input_is_one_named_error(kwargs, err, match, tmp_path):
    X, y = data(n=40)
    args = {"model": mlp(), "retain": (X, y), "plan": SPECS["gradient_clipping"]}
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    extra.setdefault("delta", DELTA)
    extra.setdefault("loss_fn", F.cross_entropy)
    with pytest.raises(err, match=match):
        unlearn(args["model"], args["retain"], args["plan"], out=tmp_path / "out", **extra)
    assert not (tmp_path / "out").exists()


def test_large_noise_warning_says_what_to_expect():
    X, y = data(n=40)
    spec = GradientClippingSpec(
        clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05, steps=3, noise_std=3.0
    )
    with pytest.warns(LargeNoiseWarning, match="near chance"):
        run = unlearn(mlp(), (X, y), spec, loss_fn=F.cross_entropy, seed=1, delta=DELTA)
    assert run.record["ran"]["noise_scale"]["ratio"] > 1


def test_fine_tuning_is_recorded_post_processing():
    X, y = data(n=40)
    run = unlearn(
        mlp(),
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        fine_tune={"epochs": 2, "learning_rate": 0.1, "batch_size": 8},
        eval_data=(X, y),
    )
    ft = run.certificate["ran"]["fine_tune"]
    assert ft["epochs"] == 2 and ft["data"] == "retain"
    assert (
        run.certificate["model"]["sha256_after_noisy"] != run.certificate["model"]["sha256_final"]
    )
    phases = [h["phase"] for h in run.history]
    assert phases.count("fine_tune") == 2 and "after_noisy" in phases
    assert all(0 <= h["accuracy"] <= 1 for h in run.history)


def test_retrain_reference():
    X, y = data(n=40)
    res = retrain(mlp, (X, y), loss_fn=F.cross_entropy, epochs=3, eval_data=(X, y))
    again = retrain(mlp, (X, y), loss_fn=F.cross_entropy, epochs=3)
    assert len(res.history) == 3 and res.history[-1]["accuracy"] is not None
    assert torch.equal(flat_params(res.model), flat_params(again.model))


@pytest.mark.parametrize("method", ["gradient_clipping", "blockwise_gradient_clipping", "langevin"])
def test_resume_equals_uninterrupted_bit_for_bit(method, tmp_path):
    X, y = data(n=40)
    spec = SPECS[method]
    dropout = method == "gradient_clipping"
    full = unlearn(
        mlp(dropout=dropout), (X, y), spec, loss_fn=F.cross_entropy, seed=77, delta=DELTA
    )
    ck = tmp_path / "ck"
    part = unlearn(
        mlp(dropout=dropout),
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=77,
        delta=DELTA,
        checkpoint=ck,
        stop=lambda step, _: step == 2,
    )
    assert part.status == "stopped" and (ck / "state.pt").exists()
    tensors = torch.load(ck / "state.pt", weights_only=True)
    assert "x" in tensors
    resumed = unlearn(
        mlp(dropout=dropout),
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=77,
        delta=DELTA,
        checkpoint=ck,
    )
    assert resumed.status == "completed"
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert resumed.certificate["guarantee"] == full.certificate["guarantee"]
    assert (
        resumed.certificate["noise"]["guard"]["draws"]
        == full.certificate["noise"]["guard"]["draws"]
    )
    # the first draw after the resume is compared with the checkpoint's previous draw
    g_full, g_res = full.record["noise"]["guard"], resumed.record["noise"]["guard"]
    assert g_res["max_abs_correlation"] == pytest.approx(g_full["max_abs_correlation"], rel=1e-4)
    assert g_res["pooled_q"] == pytest.approx(g_full["pooled_q"], rel=1e-5)


def test_checkpoint_from_another_plan_or_seed_is_refused(tmp_path):
    X, y = data(n=40)
    ck = tmp_path / "ck"
    spec = SPECS["gradient_clipping"]
    unlearn(
        mlp(),
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=5,
        delta=DELTA,
        checkpoint=ck,
        stop=lambda step, _: step == 2,
    )
    other = spec.replace(noise_std=0.06)
    with pytest.raises(CheckpointMismatchError, match="another plan"):
        unlearn(mlp(), (X, y), other, loss_fn=F.cross_entropy, seed=5, delta=DELTA, checkpoint=ck)
    with pytest.raises(CheckpointMismatchError, match="seed"):
        unlearn(mlp(), (X, y), spec, loss_fn=F.cross_entropy, seed=6, delta=DELTA, checkpoint=ck)
    with pytest.raises(CheckpointMismatchError, match="starting model"):
        unlearn(
            mlp(seed=1), (X, y), spec, loss_fn=F.cross_entropy, seed=5, delta=DELTA, checkpoint=ck
        )
    with pytest.raises(CheckpointMismatchError, match="seed"):
        unlearn(mlp(), (X, y), spec, loss_fn=F.cross_entropy, delta=DELTA, checkpoint=ck)


def test_dataset_retain_and_noised_phase_in_float32():
    X, y = data(n=30)
    ds = torch.utils.data.TensorDataset(X, y)

    class Wrapped(torch.utils.data.Dataset):
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    a = unlearn(
        mlp().double(),
        Wrapped(),
        SPECS["langevin"].replace(dataset_size=30, batch_size=15),
        loss_fn=lambda o, t: F.cross_entropy(o, t),
        seed=2,
        delta=DELTA,
    )
    b = unlearn(
        mlp(),
        (X, y),
        SPECS["langevin"].replace(dataset_size=30, batch_size=15),
        loss_fn=F.cross_entropy,
        seed=2,
        delta=DELTA,
    )
    assert all(p.dtype == torch.float32 for p in a.model.parameters())
    assert a.certificate["ran"]["dtype"] == "float32"
    assert torch.allclose(flat_params(a.model), flat_params(b.model), atol=1e-5)


def test_progress_bar_and_checkpoint_every(tmp_path, capsys):
    pytest.importorskip("tqdm")
    X, y = data(n=40)
    run = unlearn(
        mlp(),
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        progress=True,
        checkpoint=tmp_path / "ck",
        checkpoint_every=2,
        fine_tune=1,
    )
    assert run.status == "completed"
    side = json.loads((tmp_path / "ck" / "state.json").read_text())
    assert side["step"] == 6  # saved at steps 2 and 4 and at the end
    again = unlearn(
        mlp(),
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        checkpoint=tmp_path / "ck",
        fine_tune=1,
    )
    assert (
        again.certificate["model"]["sha256_after_noisy"]
        == (run.certificate["model"]["sha256_after_noisy"])
    )
    assert "unlearn[gradient_clipping]" in capsys.readouterr().err


def test_rotations_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    X, y = data(n=40)
    spec = SPECS["blockwise_gradient_clipping"]  # 2 blocks of 3 steps
    kw = dict(loss_fn=F.cross_entropy, seed=77, delta=DELTA, partition="rotations")
    kw["partition_seed"] = 4

    def model():  # layers of 280 (Hadamard 256+16+8) and 123 (dense) coordinates
        return mlp(hidden=40)

    full = unlearn(model(), (X, y), spec, **kw)
    assert full.certificate["ran"]["partition"]["kind"] == "rotations"
    ck = tmp_path / "ck"
    part = unlearn(model(), (X, y), spec, checkpoint=ck, stop=lambda step, _: step == 4, **kw)
    assert part.status == "stopped"
    tensors = torch.load(ck / "state.pt", weights_only=True)
    assert {"x", "z"} <= set(tensors)  # the state z = Rx travels with x
    # another partition (kind or seed) cannot resume this checkpoint
    for other in ({"partition": "rows"}, {"partition_seed": 5}):
        with pytest.raises(CheckpointMismatchError, match="partition"):
            unlearn(model(), (X, y), spec, checkpoint=ck, **dict(kw, **other))
    resumed = unlearn(model(), (X, y), spec, checkpoint=ck, **kw)
    assert resumed.status == "completed"
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert (
        resumed.certificate["model"]["sha256_after_noisy"]
        == (full.certificate["model"]["sha256_after_noisy"])
    )
    # rotations are not rows: the same seeds give another model
    rows = unlearn(model(), (X, y), spec, **dict(kw, partition="rows"))
    assert not torch.equal(flat_params(rows.model), flat_params(full.model))


def test_a_failed_run_leaves_an_earlier_output_folder_untouched(tmp_path):
    X, y = data(n=40)
    out = tmp_path / "out"
    unlearn(
        mlp(),
        (X, y),
        SPECS["gradient_clipping"],
        loss_fn=F.cross_entropy,
        seed=1,
        delta=DELTA,
        out=out,
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def flaky(o, t):
        calls.append(1)
        loss = F.cross_entropy(o, t)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.raises(NonFiniteError):
        unlearn(
            mlp(), (X, y), SPECS["gradient_clipping"], loss_fn=flaky, seed=2, delta=DELTA, out=out
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_blockwise_with_one_block_runs_on_all_of_x(tmp_path):
    """blocks=1: the one block is the whole parameter vector (no partition is built); every
    coordinate moves, the certificate verifies and the run replays bit for bit."""
    X, y = data(n=40)
    spec = dataclasses.replace(SPECS["blockwise_gradient_clipping"], blocks=1, steps_per_block=4)
    model = mlp()
    run = unlearn(model, (X, y), spec, loss_fn=F.cross_entropy, seed=7, delta=DELTA, out=tmp_path)
    assert run.status == "completed" and run.certificate["ran"]["steps_run"] == 4
    moved = flat_params(run.model) - flat_params(model)
    assert bool((moved != 0).all())  # noise reached every coordinate
    assert verify_certificate(tmp_path / "certificate.json", tmp_path / "model.pt") == []
    seed = json.loads((tmp_path / "seed.json").read_text())["seed"]
    problems = replay_certificate(
        tmp_path / "certificate.json", mlp(), (X, y), loss_fn=F.cross_entropy, seed=seed
    )
    assert problems == []
