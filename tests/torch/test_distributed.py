"""Distributed runs: two CPU (gloo, loopback) processes against the single-process run.

One start of two forked ranks (``torch.multiprocessing.start_processes``) runs every scenario
in turn; each rank saves what it got, and the tests compare with single-process
runs on the concatenated retain set (same seed).
"""

from __future__ import annotations

import os
import socket
import time
import traceback

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from unlearn_theory.methods import (  # noqa: E402
    BlockwiseGradientClippingSpec,
    DPSGDGroupSpec,
    GradientClippingSpec,
    LangevinSpec,
)
from unlearn_torch import unlearn, verify_certificate  # noqa: E402
from unlearn_torch.certificate import _certify_spec  # noqa: E402
from unlearn_torch.distributed import refuse_distributed  # noqa: E402

from .helpers import data, flat_params, mlp, zero_loss  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::unlearn_torch.run.LargeNoiseWarning"),
    pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built"),
]
DELTA = 1e-5
SEED = 987654321
N, SPLIT = 40, 23  # uneven shards: rank 0 holds 23 examples, rank 1 holds 17

GC = GradientClippingSpec(
    clip_initial=5.0,
    clip_gradient=1.0,
    learning_rate=0.05,
    weight_decay=0.5,
    steps=5,
    noise_std=0.05,
)
LANGEVIN = LangevinSpec(  # cyclic batches of 15 (crossing the shard boundary) + per-example clip
    learning_rate=0.1,
    strong_convexity=0.1,
    smoothness=1.0,
    lipschitz=1.0,
    dataset_size=N,
    steps=3,
    noise_std=0.05,
    radius=5.0,
    batch_size=15,
)
DPSGD = DPSGDGroupSpec(sample_rate=0.1, steps=3, forget_size=1, noise_multiplier=1.0)
BLOCKWISE = BlockwiseGradientClippingSpec(
    clip_initial=5.0,
    clip_gradient=1.0,
    learning_rate=0.05,
    weight_decay=0.5,
    blocks=2,
    steps_per_block=2,
    noise_std=0.05,
)
ROTATIONS = {"partition": "rotations", "partition_seed": 4}


def _shard(rank):
    X, y = data(n=N)
    return (X[:SPLIT], y[:SPLIT]) if rank == 0 else (X[SPLIT:], y[SPLIT:])


class _Boom(RuntimeError):
    pass


def _scenarios(rank):
    def failing_loss(out, y, calls=[0]):  # noqa: B006 - a per-process call counter
        calls[0] += 1
        if rank == 1 and calls[0] == 3:
            raise _Boom("injected failure on rank 1")
        return F.cross_entropy(out, y)

    def perturb(step, interp):
        if rank == 1 and step == 2:
            with torch.no_grad():
                interp.flat.x[0] += 1e-3
        return False

    def slow_loss(out, y, calls=[0]):  # noqa: B006 - a per-process call counter
        calls[0] += 1
        if rank == 1 and calls[0] == 2:
            time.sleep(5.0)  # a hung rank: longer than the run's timeout
        return F.cross_entropy(out, y)

    def stop_rank1(step, interp):
        return rank == 1 and step == 3

    empty = (torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    return {
        "zero_broadcast": dict(plan=GC, loss_fn=zero_loss),
        "rotations_zero": dict(plan=BLOCKWISE, loss_fn=zero_loss, **ROTATIONS),
        "gc_broadcast": dict(plan=GC, loss_fn=F.cross_entropy),
        "gc_replicated": dict(
            plan=GC, loss_fn=F.cross_entropy, distributed={"noise": "replicated"}
        ),
        "langevin": dict(plan=LANGEVIN, loss_fn=F.cross_entropy),
        "gc_group": dict(plan=GC, loss_fn=F.cross_entropy, distributed={"group": dist.group.WORLD}),
        "mismatch": dict(
            plan=GC,
            loss_fn=F.cross_entropy,
            stop=perturb,
            distributed={"noise": "replicated", "checksum_every": 2},
        ),
        "rank_fails": dict(plan=GC, loss_fn=failing_loss),
        "stopped": dict(plan=GC, loss_fn=F.cross_entropy, stop=stop_rank1),
        "dp_sgd": dict(plan=DPSGD, loss_fn=F.cross_entropy),
        "empty_shard": dict(plan=GC, loss_fn=F.cross_entropy, retain=empty if rank == 1 else None),
        "overlap": dict(plan=GC, loss_fn=F.cross_entropy, retain_ids=list(range(17))),
        "other_plan": dict(
            plan=GC.replace(noise_std=0.06) if rank == 1 else GC, loss_fn=F.cross_entropy
        ),
        "other_seed": dict(plan=GC, loss_fn=F.cross_entropy, seed=SEED + rank),
        "write_fails": dict(plan=GC, loss_fn=F.cross_entropy, out_is_a_file=True),
        "hung_rank": dict(plan=GC, loss_fn=slow_loss, distributed={"timeout": 2}),
    }


def _worker(rank, world, port, folder):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    results = {}
    try:
        for name, kw in _scenarios(rank).items():
            kw = dict(kw)
            retain = kw.pop("retain", None) or _shard(rank)
            if "retain_ids" in kw and rank == 0:
                kw.pop("retain_ids")  # rank 0: ids 0..22 by default; rank 1 repeats 0..16
            kw.setdefault("distributed", {})
            kw["distributed"] = {"timeout": 30, **kw["distributed"]}
            out = os.path.join(folder, name, f"rank{rank}")
            if kw.pop("out_is_a_file", False) and rank == 0:
                os.makedirs(os.path.join(folder, name), exist_ok=True)
                open(out, "w").close()  # noqa: SIM115 - an empty file where rank 0's folder goes
            t0 = time.perf_counter()
            try:
                kw.setdefault("seed", SEED)
                run = unlearn(mlp(), retain, delta=DELTA, out=out, progress=False, **kw)
                results[name] = {
                    "ok": True,
                    "x": flat_params(run.model).clone(),
                    "cert": run.certificate,
                    "record": run.record,
                    "paths": run.paths,
                }
            except Exception as exc:
                results[name] = {
                    "ok": False,
                    "type": type(exc).__name__,
                    "msg": str(exc),
                    "tb": traceback.format_exc(),
                }
            results[name]["seconds"] = time.perf_counter() - t0
        try:
            refuse_distributed("train_dp_sgd", "dp_sgd_group")
            results["refuse"] = {"ok": True}
        except Exception as exc:
            results["refuse"] = {"ok": False, "type": type(exc).__name__, "msg": str(exc)}
    finally:
        torch.save(results, os.path.join(folder, f"results{rank}.pt"))
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_REFS: dict = {}


def _single(plan, loss_fn, **kw):
    key = (plan.method, loss_fn.__name__, tuple(sorted(kw.items())))
    if key not in _REFS:
        X, y = data(n=N)
        _REFS[key] = unlearn(
            mlp(), (X, y), plan, loss_fn=loss_fn, seed=SEED, delta=DELTA, progress=False, **kw
        )
    return _REFS[key]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    import torch.multiprocessing as mp

    # the single-process references first: the forked ranks then start with torch.func and
    # the accountants already imported (a spawned rank would import them again, ~4 s each)
    for plan, loss_fn in ((GC, zero_loss), (GC, F.cross_entropy), (LANGEVIN, F.cross_entropy)):
        _single(plan, loss_fn)
    _single(BLOCKWISE, zero_loss, **ROTATIONS)
    folder = str(tmp_path_factory.mktemp("ddp"))
    mp.start_processes(
        _worker, args=(2, _free_port(), folder), nprocs=2, join=True, start_method="fork"
    )
    res = [torch.load(os.path.join(folder, f"results{r}.pt"), weights_only=False) for r in (0, 1)]
    return res, folder


def _ok(res, name):
    for r in (0, 1):
        assert res[r][name]["ok"], res[r][name].get("tb")
    return res[0][name], res[1][name]


def _files(folder, name):
    root = os.path.join(folder, name)
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )


def test_broadcast_noise_is_the_single_process_noise_bit_for_bit(ranks):
    res, _ = ranks
    r0, r1 = _ok(res, "zero_broadcast")
    ref = _single(GC, zero_loss)
    # zero gradient: the parameters move by the decay and the keyed noise only
    assert torch.equal(r0["x"], flat_params(ref.model))
    assert torch.equal(r1["x"], r0["x"])


def test_rotated_blocks_distributed_equal_the_single_process_run_bit_for_bit(ranks):
    res, _ = ranks
    r0, r1 = _ok(res, "rotations_zero")
    ref = _single(BLOCKWISE, zero_loss, **ROTATIONS)
    assert torch.equal(r0["x"], flat_params(ref.model))
    assert torch.equal(r1["x"], r0["x"])
    assert r0["cert"]["ran"]["partition"] == ref.certificate["ran"]["partition"]
    assert r0["cert"]["ran"]["partition"]["kind"] == "rotations"
    assert verify_certificate(r0["paths"]["certificate"], r0["paths"]["model"]) == []


@pytest.mark.parametrize("name", ["gc_broadcast", "gc_replicated", "langevin", "gc_group"])
def test_same_parameters_and_certificate_as_one_process(ranks, name):
    res, folder = ranks
    r0, r1 = _ok(res, name)
    plan = LANGEVIN if name == "langevin" else GC
    ref = _single(plan, F.cross_entropy)
    torch.testing.assert_close(r0["x"], flat_params(ref.model), rtol=1e-5, atol=1e-6)
    assert torch.equal(r1["x"], r0["x"])  # the replicas agree bit for bit
    c, cref = r0["cert"], ref.certificate
    assert c["guarantee"]["epsilon"] == cref["guarantee"]["epsilon"]
    assert c["guarantee"]["epsilon"] == pytest.approx(float(_certify_spec(plan, DELTA)))
    assert c["guarantee"]["delta"] == cref["guarantee"]["delta"] == DELTA
    assert c["spec"] == cref["spec"] and c["ran"]["spec"] == cref["ran"]["spec"]
    assert c["data"] == cref["data"]  # global retain size
    assert r0["record"]["data"] == ref.record["data"]  # global retain id hash (private)
    assert c["ran"]["batch_sizes"] == cref["ran"]["batch_sizes"]
    d = c["ran"]["distributed"]
    mode = "replicated" if name == "gc_replicated" else "broadcast"
    assert d["world_size"] == 2 and d["noise"] == mode and d["backend"] == "gloo"
    assert d["shard_sizes"] == [SPLIT, N - SPLIT]
    assert d["checksum"]["matched"] and d["checksum"]["checks"] >= 1
    if mode == "broadcast":
        assert d["noise_draws_broadcast"] == c["noise"]["guard"]["draws"] > 0
    assert cref["ran"]["distributed"] is None
    # only rank 0 wrote, and what it wrote verifies
    assert _files(folder, name) == [
        "rank0/certificate.json",
        "rank0/history.json",
        "rank0/model.pt",
        "rank0/run_record.json",
        "rank0/seed.json",
    ]
    assert r1["paths"] == {}
    assert verify_certificate(r0["paths"]["certificate"], r0["paths"]["model"]) == []
    paths = r0["paths"]
    assert verify_certificate(paths["certificate"], record_path=paths["run_record"]) == []


def test_checksum_mismatch_aborts_every_rank(ranks):
    res, folder = ranks
    for r in (0, 1):
        assert res[r]["mismatch"]["type"] == "ReplicaMismatchError", res[r]["mismatch"]
        assert "ranks [1]" in res[r]["mismatch"]["msg"]
    assert _files(folder, "mismatch") == []


def test_a_rank_failing_mid_run_fails_every_rank(ranks):
    res, folder = ranks
    assert res[1]["rank_fails"]["type"] == "_Boom"
    assert res[0]["rank_fails"]["type"] == "DistributedRunError"
    assert "rank 1" in res[0]["rank_fails"]["msg"] and "injected" in res[0]["rank_fails"]["msg"]
    assert _files(folder, "rank_fails") == []


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(ranks):
    res, folder = ranks
    r0, r1 = _ok(res, "stopped")
    for r in (r0, r1):
        assert r["cert"]["ran"]["status"] == "stopped" and r["cert"]["ran"]["steps_run"] == 3
    assert torch.equal(r0["x"], r1["x"])
    assert r0["cert"]["guarantee"]["epsilon"] == pytest.approx(
        float(_certify_spec(GC.replace(steps=3), DELTA))
    )
    assert _files(folder, "stopped")[0] == "rank0/certificate.json"
    assert all(f.startswith("rank0/") for f in _files(folder, "stopped"))
    assert verify_certificate(r0["paths"]["certificate"], r0["paths"]["model"]) == []


def test_a_failed_write_on_rank_0_fails_every_rank(ranks):
    res, folder = ranks
    assert res[0]["write_fails"]["type"] == "FileExistsError", res[0]["write_fails"]
    assert res[1]["write_fails"]["type"] == "DistributedRunError"
    assert "rank 0" in res[1]["write_fails"]["msg"]
    assert _files(folder, "write_fails") == ["rank0"]  # only the empty file put there


def test_a_hung_rank_times_out_and_every_rank_raises(ranks):
    res, folder = ranks
    for r in (0, 1):
        assert res[r]["hung_rank"]["type"] == "DistributedRunError", res[r]["hung_rank"]
    assert res[0]["hung_rank"]["seconds"] < 4.5  # the 2 s timeout, not the 5 s hang
    assert _files(folder, "hung_rank") == []


def test_verify_flags_an_edited_distributed_record(ranks, tmp_path):
    import json

    from unlearn_torch.certificate import sha256_json

    res, _ = ranks
    cert = json.loads(json.dumps(res[0]["gc_broadcast"]["cert"]))
    cert["ran"]["distributed"]["checksum"]["matched"] = False
    cert["ran"]["distributed"]["noise_draws_broadcast"] = 0
    body = {k: v for k, v in cert.items() if k != "content_sha256"}
    cert["content_sha256"] = sha256_json(body)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cert))
    problems = verify_certificate(path)
    assert any("checksums" in p for p in problems)
    assert any("broadcast from rank 0" in p for p in problems)


@pytest.mark.parametrize(
    "name, here, there, text",
    [
        ("dp_sgd", "UnsupportedMethodError", "UnsupportedMethodError", "Poisson"),
        ("empty_shard", "DistributedRunError", "InvalidParameterError", "no examples"),
        ("overlap", "DistributedMismatchError", "DistributedMismatchError", "overlap"),
        ("other_plan", "DistributedMismatchError", "DistributedMismatchError", "plan_sha256"),
        ("other_seed", "DistributedRunError", "DistributedMismatchError", "seed differs"),
    ],
)
def test_bad_input_one_named_error_and_no_files(ranks, name, here, there, text):
    res, folder = ranks
    assert res[0][name]["type"] == here, res[0][name]
    assert res[1][name]["type"] == there, res[1][name]
    assert text in res[0][name]["msg"]
    assert _files(folder, name) == []


def test_paths_without_a_distributed_form_refuse_under_torch_distributed(ranks):
    res, _ = ranks
    for r in (0, 1):
        assert res[r]["refuse"]["type"] == "UnsupportedMethodError"
        assert "train_dp_sgd" in res[r]["refuse"]["msg"] and "2 ranks" in res[r]["refuse"]["msg"]
    refuse_distributed("train_dp_sgd", "dp_sgd_group")  # one process: nothing to refuse


def test_single_process_calls_are_unchanged_by_the_argument():
    X, y = data(n=N)
    a = unlearn(mlp(), (X, y), GC, loss_fn=F.cross_entropy, seed=SEED, delta=DELTA)
    b = unlearn(
        mlp(), (X, y), GC, loss_fn=F.cross_entropy, seed=SEED, delta=DELTA, distributed=False
    )
    assert torch.equal(flat_params(a.model), flat_params(b.model))
    with pytest.raises(Exception, match="init_process_group"):
        unlearn(mlp(), (X, y), GC, loss_fn=F.cross_entropy, delta=DELTA, distributed=True)
