"""Certificates and plans: verification recomputes the guarantee and the hashes."""

from __future__ import annotations

import argparse
import json

import pytest

torch = pytest.importorskip("torch")
from torch.nn import functional as F  # noqa: E402

import unlearn_theory as ut  # noqa: E402
from unlearn_cli.verify import add_verify_arguments, run_verify  # noqa: E402
from unlearn_theory.methods import GradientClippingSpec  # noqa: E402
from unlearn_torch import unlearn, verify_certificate, verify_plan  # noqa: E402
from unlearn_torch.certificate import sha256_json, spec_of_plan  # noqa: E402

from .helpers import data, mlp  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning")
DELTA = 1e-5


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
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
    unlearn(mlp(), (X, y), p, loss_fn=F.cross_entropy, seed=31, out=out, forget_ids=range(5))
    return out


def _edit(src, dst, fn, *, rehash=True):
    cert = json.loads(src.read_text())
    fn(cert)
    if rehash:  # an adversary recomputes the content hash: the real checks must still fail
        body = {k: v for k, v in cert.items() if k != "content_sha256"}
        cert["content_sha256"] = sha256_json(body)
    dst.write_text(json.dumps(cert))
    return dst


def test_valid_certificate_verifies(certified):
    cert = json.loads((certified / "certificate.json").read_text())
    assert cert["schema"] == "unlearn-certificate" and cert["schema_version"] == 2
    for key in (
        "run_record",
        "plan",
        "plan_sha256",
        "spec",
        "ran",
        "noise",
        "model",
        "data",
        "environment",
        "guarantee",
    ):
        assert key in cert
    assert cert["environment"]["torch"] == torch.__version__
    assert cert["ran"]["schedule"]["noise_std"][0][1] == 5
    assert (
        verify_certificate(
            certified / "certificate.json",
            certified / "model.pt",
            seed_path=certified / "seed.json",
            record_path=certified / "run_record.json",
        )
        == []
    )


def test_edited_sigma_is_detected(certified, tmp_path):
    def bigger(c):
        for s in (c["spec"], c["ran"]["spec"], c["plan"]):
            s["noise_std"] = s["noise_std"] * 10

    bad = _edit(certified / "certificate.json", tmp_path / "c.json", bigger)
    problems = verify_certificate(bad)
    assert any("epsilon" in p for p in problems)
    assert any("schedule" in p or "update rule" in p for p in problems)


def test_edited_sigma_in_the_schedule_only_is_detected(certified, tmp_path):
    def sched(c):
        c["ran"]["schedule"]["noise_std"][0][0] = 100.0

    problems = verify_certificate(_edit(certified / "certificate.json", tmp_path / "c.json", sched))
    assert any("schedule" in p for p in problems)


def test_lowered_epsilon_is_detected(certified, tmp_path):
    def lower(c):
        c["guarantee"]["epsilon"] = c["guarantee"]["epsilon"] / 2

    problems = verify_certificate(_edit(certified / "certificate.json", tmp_path / "c.json", lower))
    assert any("below the certified epsilon" in p for p in problems)


def test_unrehashed_edit_is_detected(certified, tmp_path):
    def note(c):
        c["data"]["forget_size"] = 4

    problems = verify_certificate(
        _edit(certified / "certificate.json", tmp_path / "c.json", note, rehash=False)
    )
    assert any("content_sha256" in p for p in problems)


def test_edited_model_hash_or_model_file_is_detected(certified, tmp_path):
    def model_hash(c):
        c["model"]["sha256_final"] = "0" * 64

    bad = _edit(certified / "certificate.json", tmp_path / "c.json", model_hash)
    assert any("model file" in p for p in verify_certificate(bad, certified / "model.pt"))
    state = torch.load(certified / "model.pt", weights_only=True)
    state["0.weight"][0, 0] += 1e-3
    torch.save(state, tmp_path / "m.pt")
    problems = verify_certificate(certified / "certificate.json", tmp_path / "m.pt")
    assert any("model file" in p for p in problems)


def test_wrong_seed_file_is_detected(certified, tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"seed": 32}))
    problems = verify_certificate(certified / "certificate.json", seed_path=tmp_path / "s.json")
    assert any("commitment" in p for p in problems)


def _plan_file(tmp_path, edit=None):
    p = ut.plan(
        "model_clipping",
        epsilon=2.0,
        delta=DELTA,
        clip_initial=1.0,
        clip_model=1.0,
        learning_rate=0.1,
        steps=10,
    )
    d = json.loads(p.to_json())
    if edit is not None:
        d["noise_std"] = edit
        if isinstance(d.get("spec"), dict):
            d["spec"]["noise_std"] = edit
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(d))
    return path, p


def test_verify_plan_accepts_a_true_plan_and_refuses_edited_noise(tmp_path):
    path, p = _plan_file(tmp_path)
    assert verify_plan(path) == []
    assert spec_of_plan(p).noise_std == pytest.approx(p.noise_std)
    bad, _ = _plan_file(tmp_path, edit=0.01)
    problems = verify_plan(bad)
    assert problems and any("epsilon" in x for x in problems)


def test_verify_plan_of_a_bare_spec_dict(tmp_path):
    spec = GradientClippingSpec(
        clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, steps=3, noise_std=1.0
    )
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"spec": spec.to_dict(), "delta": DELTA, "epsilon": 1.0}))
    assert verify_plan(f)  # ε = 1 is far below what this spec certifies


def test_cli_glue_exit_codes(certified, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_verify_arguments(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["verify", str(certified / "certificate.json"), "--model", str(certified / "model.pt")]
    )
    assert run_verify(args) == 0
    assert "valid certificate" in capsys.readouterr().out

    def lower(c):
        c["guarantee"]["epsilon"] = 0.0

    bad = _edit(certified / "certificate.json", tmp_path / "c.json", lower)
    assert run_verify(parser.parse_args(["verify", str(bad), "--json"])) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False
    path, _ = _plan_file(tmp_path, edit=0.01)
    assert run_verify(parser.parse_args(["verify", str(path)])) == 1
    (tmp_path / "junk.json").write_text("not json")
    assert run_verify(parser.parse_args(["verify", str(tmp_path / "junk.json")])) == 2


@pytest.mark.parametrize(
    "method,kw",
    [
        (
            "gradient_clipping",
            dict(
                clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05, weight_decay=0.5, steps=20
            ),
        ),
        ("model_clipping", dict(clip_initial=1.0, clip_model=1.0, learning_rate=0.1, steps=10)),
        ("output_perturbation", dict(clip_initial=5.0)),
        (
            "blockwise_gradient_clipping",
            dict(
                clip_initial=5.0,
                clip_gradient=1.0,
                learning_rate=0.05,
                weight_decay=0.5,
                blocks=2,
                steps=20,
            ),
        ),
        (
            "langevin",
            dict(
                learning_rate=0.1,
                strong_convexity=0.1,
                smoothness=1.0,
                lipschitz=1.0,
                dataset_size=100,
                radius=5.0,
                steps=20,
            ),
        ),
    ],
)
def test_every_planner_plan_verifies_and_its_noise_edit_does_not(method, kw, tmp_path):
    p = ut.plan(method, epsilon=2.0, delta=DELTA, **kw)
    f = tmp_path / "p.json"
    f.write_text(p.to_json())
    assert verify_plan(f) == []
    d = json.loads(p.to_json())
    d["noise_std"] = d["noise_std"] / 50
    if isinstance(d.get("spec"), dict):
        for k in ("noise_std", "noise_multiplier"):
            if k in d["spec"]:
                d["spec"][k] = d["spec"][k] / 50
    f.write_text(json.dumps(d))
    assert verify_plan(f) != []


def test_replay_reproduces_the_recorded_run_and_detects_a_swap(tmp_path):
    from unlearn_torch import replay_certificate

    X, y = data(n=40)
    spec = GradientClippingSpec(
        clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05, steps=4, noise_std=0.05
    )
    model = mlp(dropout=True)
    unlearn(
        model,
        (X, y),
        spec,
        loss_fn=F.cross_entropy,
        seed=99,
        delta=DELTA,
        out=tmp_path,
        stop=lambda step, _: step == 3,
        partition="random",
    )
    seed = json.loads((tmp_path / "seed.json").read_text())["seed"]
    cert = tmp_path / "certificate.json"
    assert replay_certificate(cert, model, (X, y), loss_fn=F.cross_entropy, seed=seed) == []
    assert replay_certificate(cert, model, (X, y), loss_fn=F.cross_entropy, seed=seed + 1)
    X2 = X.clone()
    X2[0] += 1.0  # a different retain set
    problems = replay_certificate(cert, model, (X2, y), loss_fn=F.cross_entropy, seed=seed)
    assert any("reproduce" in p for p in problems)
    problems = replay_certificate(cert, mlp(seed=3), (X, y), loss_fn=F.cross_entropy, seed=seed)
    assert any("starting model" in p for p in problems)


def test_rotations_certificate_replays_and_a_forged_partition_is_caught(tmp_path):
    from unlearn_torch import replay_certificate

    X, y = data(n=40)
    spec = ut.methods.BlockwiseGradientClippingSpec(
        clip_initial=5.0,
        clip_gradient=1.0,
        learning_rate=0.05,
        blocks=2,
        steps_per_block=2,
        noise_std=0.05,
    )
    model = mlp(hidden=40)
    out = tmp_path / "run"
    kw = dict(loss_fn=F.cross_entropy, seed=12, delta=DELTA, out=out)
    unlearn(model, (X, y), spec, partition="rotations", partition_seed=9, **kw)
    cert, model_file = out / "certificate.json", out / "model.pt"
    assert verify_certificate(cert, model_file) == []
    seed = json.loads((out / "seed.json").read_text())["seed"]
    # the auditor's replay rebuilds the rotation from the recorded seed: bit-exact on the CPU
    assert replay_certificate(cert, model, (X, y), loss_fn=F.cross_entropy, seed=seed) == []

    def forge_seed(c):  # a record that names another rotation than the one that ran
        c["ran"]["partition"]["seed"] = 10
        c["ran"]["partition"]["rotation"]["seed"] = 10

    forged = _edit(cert, tmp_path / "forged.json", forge_seed)
    assert verify_certificate(forged) == []  # consistent on its face ...
    problems = verify_certificate(forged, model_file)  # ... but not what this model gives
    assert any("partition" in p for p in problems)
    problems = replay_certificate(forged, model, (X, y), loss_fn=F.cross_entropy, seed=seed)
    assert any("reproduce" in p for p in problems)

    def failed_check(c):
        c["ran"]["rotation_check"]["inverse"] = 0.5

    problems = verify_certificate(_edit(cert, tmp_path / "check.json", failed_check))
    assert any("isometry check" in p for p in problems)

    def wrong_kind(c):
        c["ran"]["partition"]["kind"] = "diagonal"

    problems = verify_certificate(_edit(cert, tmp_path / "kind.json", wrong_kind))
    assert any("kind" in p for p in problems)

    def no_partition(c):
        c["ran"]["partition"] = None

    problems = verify_certificate(_edit(cert, tmp_path / "none.json", no_partition))
    assert any("no partition" in p for p in problems)


def test_seed_is_secret_file_only_and_the_certificate_holds_a_commitment(certified):
    import os
    import stat

    seed = json.loads((certified / "seed.json").read_text())["seed"]
    cert = json.loads((certified / "certificate.json").read_text())

    def values(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from values(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from values(v)
        else:
            yield obj

    # the certificate never holds the noise seed (as a number or a string)
    assert all(v != seed and v != str(seed) for v in values(cert))
    commitment = cert["noise"]["seed_commitment"]
    assert set(commitment) >= {"scheme", "salt", "sha256"}
    if os.name == "posix":  # the seed file is readable by its owner only
        assert stat.S_IMODE(os.stat(certified / "seed.json").st_mode) == 0o600


# -- public certificate, private run record ---------------------------------------------------
FORBIDDEN_KEYS = {
    "sha256_before",
    "projections",
    "clipping",
    "noise_scale",
    "norm_before",
    "norm_after",
    "gradient_norm",
    "parameter_norm",
    "fraction_clipped",
    "fraction_projected",
    "retain_ids_sha256",
    "forget_ids_sha256",
    "training_ids_sha256",
    "q_min",
    "q_max",
    "max_abs_z",
    "max_abs_correlation",
    "pooled_q",
    "wall_seconds",
}


def _walk(obj):
    """(key, value) of every dict entry and every leaf value (key None) of a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    else:
        yield None, obj


def test_public_certificate_holds_no_private_field(certified):
    from unlearn_torch.certificate import state_sha256
    from unlearn_torch.data import ids_sha256

    text = (certified / "certificate.json").read_text()
    cert = json.loads(text)
    record = json.loads((certified / "run_record.json").read_text())
    keys = {k for k, _ in _walk(cert) if k is not None}
    assert not keys & FORBIDDEN_KEYS, keys & FORBIDDEN_KEYS
    # what the record holds instead: the starting model's hash, the ids' hashes, the statistics
    before = state_sha256(mlp().state_dict())
    assert record["model"]["sha256_before"] == before and before not in text
    for ids in (range(5), range(40)):  # a plain hash of a small id set is brute-forceable
        assert ids_sha256(ids) in json.dumps(record) and ids_sha256(ids) not in text
    # no float of the starting model's norm (the C0 projection's norm_before) in the certificate
    x0 = torch.cat([p.detach().reshape(-1) for p in mlp().parameters()])
    first = [r for r in record["ran"]["projections"].values() if r["count"] == 1]
    norms = {float(torch.linalg.vector_norm(x0))}
    for r in first:
        norms |= {float(v) for v in r["norm_before"].values()}
    assert norms and any(abs(n - float(torch.linalg.vector_norm(x0))) < 1e-4 for n in norms)
    floats = [v for _, v in _walk(cert) if isinstance(v, float)]
    for n in norms:
        assert not any(abs(f - n) <= 1e-6 * max(abs(n), 1.0) for f in floats), n
    assert record["certificate_sha256"] == cert["content_sha256"]


def test_private_files_are_owner_only(certified):
    import os
    import stat

    for name in ("seed.json", "run_record.json", "history.json"):
        assert (certified / name).exists(), name
        if os.name == "posix":  # readable by their owner only
            assert stat.S_IMODE(os.stat(certified / name).st_mode) == 0o600, name


def _edit_record(src, dst, fn):
    rec = json.loads(src.read_text())
    fn(rec)
    dst.write_text(json.dumps(rec))
    return dst, rec


def test_tampered_run_record_is_caught(certified, tmp_path):
    cert = certified / "certificate.json"
    rec = certified / "run_record.json"
    assert verify_certificate(cert, record_path=rec) == []

    def other_start(r):
        r["model"]["sha256_before"] = "ab" * 32

    bad, _ = _edit_record(rec, tmp_path / "r1.json", other_start)
    problems = verify_certificate(cert, record_path=bad)
    assert any("does not open" in p for p in problems)

    def unbind(r):
        r["certificate_sha256"] = "00" * 32  # outside the commitment: the binding catches it

    bad, _ = _edit_record(rec, tmp_path / "r2.json", unbind)
    assert any("bound to another" in p for p in verify_certificate(cert, record_path=bad))

    # a consistent forgery of both files (new commitment, certificate rehashed, record rebound):
    # the record's content checks still refuse a fraction outside [0, 1]
    from unlearn_torch.certificate import commit_record

    r = json.loads(rec.read_text())
    (clip,) = r["ran"]["clipping"].values()
    clip["fraction_clipped"] = 1.5

    def recommit(c):
        c["run_record"]["sha256"] = commit_record(r)

    forged = _edit(cert, tmp_path / "c.json", recommit)
    r["certificate_sha256"] = json.loads(forged.read_text())["content_sha256"]
    (tmp_path / "r3.json").write_text(json.dumps(r))
    problems = verify_certificate(forged, record_path=tmp_path / "r3.json")
    assert len(problems) == 1 and "fraction_clipped 1.5 not in [0, 1]" in problems[0]
    # not a run record at all
    (tmp_path / "r4.json").write_text(json.dumps({"schema": "other"}))
    problems = verify_certificate(cert, record_path=tmp_path / "r4.json")
    assert any("not a run record" in p for p in problems)
    problems = verify_certificate(cert, record_path=tmp_path / "missing.json")
    assert len(problems) == 1 and "record_path=" in problems[0] and "missing.json" in problems[0]


def test_a_private_field_put_back_into_the_certificate_is_refused(certified, tmp_path):
    def leak(c):
        c["model"]["sha256_before"] = "ab" * 32

    problems = verify_certificate(_edit(certified / "certificate.json", tmp_path / "c.json", leak))
    assert any("private fields: model.sha256_before" in p for p in problems)

    def no_commitment(c):
        del c["run_record"]

    bad = _edit(certified / "certificate.json", tmp_path / "d.json", no_commitment)
    assert any("run_record commitment" in p for p in verify_certificate(bad))


def _schema1(certified, dst):
    """A schema-1 certificate (everything in one file), as the schema-1 writer wrote it: the
    public certificate with the record's fields put back, no run_record commitment."""
    from unlearn_torch.certificate import merge_record

    cert = json.loads((certified / "certificate.json").read_text())
    full = merge_record(cert, json.loads((certified / "run_record.json").read_text()))
    for k in ("run_record", "content_sha256"):
        full.pop(k)
    full["schema_version"] = 1
    full["content_sha256"] = sha256_json(full)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "certificate.json").write_text(json.dumps(full))
    return dst / "certificate.json", full


def test_schema1_certificate_still_verifies_and_replays(certified, tmp_path):
    from unlearn_torch import replay_certificate

    old, full = _schema1(certified, tmp_path / "old")
    assert "sha256_before" in full["model"] and "clipping" in full["ran"]
    assert verify_certificate(old, certified / "model.pt", seed_path=certified / "seed.json") == []
    problems = verify_certificate(old, record_path=certified / "run_record.json")
    assert any("schema-1" in p for p in problems)

    def lower(c):
        c["guarantee"]["epsilon"] = c["guarantee"]["epsilon"] / 2

    assert any("below" in p for p in verify_certificate(_edit(old, tmp_path / "l.json", lower)))
    seed = json.loads((certified / "seed.json").read_text())["seed"]
    X, y = data(n=40)
    kw = dict(loss_fn=F.cross_entropy, seed=seed)
    assert replay_certificate(old, mlp(), (X, y), **kw) == []
    assert any("starting model" in p for p in replay_certificate(old, mlp(seed=4), (X, y), **kw))


def test_replay_finds_or_takes_the_record_and_runs_without_it(certified, tmp_path):
    import shutil

    from unlearn_torch import replay_certificate

    seed = json.loads((certified / "seed.json").read_text())["seed"]
    X, y = data(n=40)
    kw = dict(loss_fn=F.cross_entropy, seed=seed)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(certified / "certificate.json", alone / "certificate.json")
    cert = alone / "certificate.json"
    assert replay_certificate(cert, mlp(), (X, y), **kw) == []  # no record: the hash alone
    rec = certified / "run_record.json"
    assert replay_certificate(cert, mlp(), (X, y), record_path=rec, **kw) == []
    problems = replay_certificate(cert, mlp(seed=4), (X, y), record_path=rec, **kw)
    assert any("starting model" in p for p in problems)
    assert any("reproduce" in p for p in problems)
    problems = replay_certificate(cert, mlp(seed=4), (X, y), **kw)  # without the record
    assert any("reproduce" in p for p in problems)


def test_cli_verifies_with_and_without_record(certified, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_verify_arguments(parser.add_subparsers(dest="command"))
    cert = str(certified / "certificate.json")
    rec = str(certified / "run_record.json")
    assert run_verify(parser.parse_args(["verify", cert])) == 0
    assert run_verify(parser.parse_args(["verify", cert, "--record", rec])) == 0
    args = ["verify", cert, "--record", rec, "--model", str(certified / "model.pt")]
    assert run_verify(parser.parse_args(args)) == 0
    assert "valid certificate" in capsys.readouterr().out

    def other_start(r):
        r["model"]["sha256_before"] = "ab" * 32

    bad, _ = _edit_record(certified / "run_record.json", tmp_path / "r.json", other_start)
    assert run_verify(parser.parse_args(["verify", cert, "--record", str(bad)])) == 1
    assert "run_record commitment" in capsys.readouterr().out
    (tmp_path / "junk.json").write_text("not json")
    code = run_verify(parser.parse_args(["verify", cert, "--record", str(tmp_path / "junk.json")]))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "junk.json" in err
    path, _ = _plan_file(tmp_path)
    assert run_verify(parser.parse_args(["verify", str(path), "--record", rec])) == 2
