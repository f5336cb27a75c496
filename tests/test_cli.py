"""The `unlearn` command line: help, plan/certify output, one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from unlearn_cli import audit as audit_cli
from unlearn_cli.cli import main, method_options
from unlearn_theory import UnlearningPlan, certify
from unlearn_theory.methods import SPEC_CLASSES

GC = [
    "--clip-initial",
    "1",
    "--clip-gradient",
    "100",
    "--learning-rate",
    "0.001",
    "--weight-decay",
    "500",
]


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_via_console_entry_point():
    res = subprocess.run(
        [sys.executable, "-m", "unlearn_cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    for word in ("plan", "certify", "audit", "verify", "demo"):
        assert word in res.stdout


def test_plan_table_and_json_round_trip(capsys):
    code, out, err = run(
        ["plan", "gradient_clipping", "--epsilon", "1", "--delta", "1e-5", *GC], capsys
    )
    assert code == 0 and err == ""
    assert "noise_std" in out and "paper-mode noise_std" in out
    code, out, _ = run(
        ["plan", "gradient_clipping", "--epsilon", "1", "--delta", "1e-5", "--json", *GC], capsys
    )
    assert code == 0
    p = UnlearningPlan.from_json(out)
    assert p.method == "gradient_clipping" and p.epsilon <= 1.0
    again = certify(
        "gradient_clipping",
        delta=p.delta,
        noise_std=p.noise_std,
        steps=p.steps,
        clip_initial=1.0,
        clip_gradient=100.0,
        learning_rate=0.001,
        weight_decay=500.0,
    )
    assert float(again) <= 1.0


def test_certify_prints_certified_epsilon(capsys):
    code, out, _ = run(
        [
            "certify",
            "output_perturbation",
            "--delta",
            "1e-5",
            "--noise-std",
            "8",
            "--clip-initial",
            "1",
        ],
        capsys,
    )
    assert code == 0 and out.startswith("certified epsilon = ")
    code, out, _ = run(
        [
            "certify",
            "output_perturbation",
            "--delta",
            "1e-5",
            "--noise-std",
            "8",
            "--clip-initial",
            "1",
            "--json",
        ],
        capsys,
    )
    data = json.loads(out)
    assert data["kind"] == "exact" and data["epsilon"] > 0


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["plan", "gradient_clipping", "--epsilon", "-1", "--delta", "1e-5", *GC], "epsilon"),
        (["plan", "gradient_clipping", "--epsilon", "1", "--delta", "2", *GC], "delta"),
        (["plan", "gradient_clipping", "--epsilon", "nan", "--delta", "1e-5", *GC], "epsilon"),
        (["plan", "no_such_method", "--epsilon", "1", "--delta", "1e-5"], "method"),
        (["plan", "gradient_clipping", "--epsilon", "1", "--delta", "1e-5"], "--clip-initial"),
        (
            ["plan", "output_perturbation", "--epsilon", "1", "--delta", "1e-5", "--steps", "x"],
            "steps",
        ),
        (
            [
                "plan",
                "output_perturbation",
                "--epsilon",
                "1",
                "--delta",
                "1e-5",
                "--param",
                "bogus=1",
                "--clip-initial",
                "1",
            ],
            "bogus",
        ),
        (
            [
                "certify",
                "gradient_clipping",
                "--delta",
                "1e-5",
                "--noise-std",
                "-1",
                *GC,
                "--steps",
                "3",
            ],
            "noise_std",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    out = capsys.readouterr()
    assert code == 2
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    assert len(lines) == 1, out.err
    assert needle in lines[0]
    assert "Traceback" not in out.err


def test_bad_input_subprocess_has_no_traceback():
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "unlearn_cli",
            "plan",
            "gradient_clipping",
            "--epsilon",
            "0",
            "--delta",
            "1e-5",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "epsilon" in res.stderr


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_runs(tmp_path, capsys):
    code, out, _ = run(["demo", "--quick", "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    assert "gradient_clipping" in out and "NOT CERTIFIED" in out
    assert out.splitlines()[-1].endswith("valid certificate")
    assert (tmp_path / "o" / "summary.json").exists()


def test_audit_help_is_loaded_lazily():
    res = subprocess.run(
        [sys.executable, "-m", "unlearn_cli", "audit", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    assert "usage: unlearn audit" in res.stdout


def test_certify_exposes_a_flat_alpha_label(capsys):
    code, out, _ = run(
        [
            "certify",
            "gradient_clipping",
            "--delta",
            "1e-5",
            "--noise-std",
            "0.0873",
            "--steps",
            "5",
            *GC,
            "--claimed-epsilon",
            "10",
        ],
        capsys,
    )
    assert code == 1  # the claim fails: a CI gate
    assert "NOT CERTIFIED" in out and "flat-alpha" in out


def test_cli_help_and_audit_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "unlearn_cli", "audit", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "--noise-std" in out.stdout
    p = argparse.ArgumentParser()
    audit_cli.add_audit_arguments(p)
    args = p.parse_args(
        [
            "model_clipping",
            "--noise-std",
            "1",
            "--steps",
            "5",
            "--learning-rate",
            "1",
            "--clip-gradient",
            "2",
            "--loss",
            "repel",
            "--samples",
            "50000",
            "--plot",
            str(tmp_path / "a.png"),
        ]
    )
    assert audit_cli.run_audit_command(args) == 0
    assert (tmp_path / "a.png").exists()
    args = p.parse_args(
        [
            "model_clipping",
            "--noise-std",
            "1",
            "--steps",
            "6",
            "--learning-rate",
            "1",
            "--clip-gradient",
            "2",
            "--loss",
            "repel",
            "--samples",
            "50000",
            "--inject-fault",
            "reuse_noise",
        ]
    )
    assert audit_cli.run_audit_command(args) == 1


def test_cli_hooks(capsys):
    p = argparse.ArgumentParser()
    audit_cli.add_audit_arguments(p)
    args = p.parse_args(["output_perturbation", "--noise-std", "2", "--samples", "20000", "--json"])
    assert audit_cli.run_audit_command(args) == 0
    assert '"epsilon_certified"' in capsys.readouterr().out


@pytest.mark.parametrize("command", ["plan", "certify"])
@pytest.mark.parametrize("method", sorted(SPEC_CLASSES))
def test_method_help_lists_the_spec_fields_and_marks_the_required(command, method, capsys):
    with pytest.raises(SystemExit) as ex:
        main([command, method, "--help"])
    assert ex.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    cls = SPEC_CLASSES[method]
    required = set(cls.required_fields())
    if command == "plan":
        required -= {"steps", "noise_std", "noise_multiplier", "steps_per_block"}
    for name in cls.field_names():
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
    for opt in method_options(method, command=command):
        assert opt.required == (opt.name in required)
        if opt.name in ("steps", "noise_std"):
            continue
        # the option's help line ends in [required] exactly for the required ones
        i = text.index(opt.flag + " ", text.index("parameters of " + method))
        line = text[i : i + 400].split(" --")[0]
        assert ("[required]" in line) == opt.required, line


def test_plan_langevin_help_via_subprocess_lists_required_parameters():
    res = subprocess.run(
        [sys.executable, "-m", "unlearn_cli", "plan", "langevin", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    assert "required parameters of langevin" in res.stdout
    for flag in ("--strong-convexity", "--smoothness", "--lipschitz", "--dataset-size"):
        assert flag in res.stdout.split("optional parameters of langevin")[0]
    assert "--route" in res.stdout and "--radius" in res.stdout


def test_option_types_come_from_the_annotations():
    kinds = {o.name: o.kind for o in method_options("langevin")}
    assert kinds["dataset_size"] == "int" and kinds["batch_size"] == "int"
    assert kinds["radius"] == "float" and kinds["route"] == "str"
    kinds = {o.name: o.kind for o in method_options("gradient_clipping")}
    assert kinds["clip_gradient"] == "schedule" and kinds["clip_initial"] == "float"


def test_flags_and_param_give_the_same_plan(capsys):
    base = ["plan", "langevin", "--epsilon", "1", "--delta", "1e-5", "--steps", "10", "--json"]
    lang = dict(
        learning_rate="0.5",
        strong_convexity="0.01",
        smoothness="1.1",
        lipschitz="1",
        dataset_size="10000",
        batch_size="1000",
        radius="10",
    )
    flags = [x for k, v in lang.items() for x in ("--" + k.replace("_", "-"), v)]
    params = [x for k, v in lang.items() for x in ("--param", f"{k}={v}")]
    code1, out1, _ = run(base + flags, capsys)
    code2, out2, _ = run(base + params, capsys)
    assert code1 == code2 == 0
    a, b = json.loads(out1), json.loads(out2)
    assert a["noise_std"] == b["noise_std"] and a["epsilon"] == b["epsilon"]


def test_certify_takes_a_per_step_schedule(capsys):
    code, out, err = run(
        ["certify", "gradient_clipping", "--delta", "1e-5", "--steps", "2", "--noise-std", "3,4"]
        + ["--clip-initial", "1", "--clip-gradient", "100,50", "--learning-rate", "0.001"],
        capsys,
    )
    assert code == 0 and out.startswith("certified epsilon = "), err
    eps = float(out.split("=")[1].split()[0])
    ref = certify(
        "gradient_clipping",
        delta=1e-5,
        steps=2,
        noise_std=[3.0, 4.0],
        clip_initial=1.0,
        clip_gradient=[100.0, 50.0],
        learning_rate=0.001,
    )
    assert eps == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["plan"], "METHOD"),
        (["certify", "no_such_method", "--delta", "1e-5"], "method"),
        (
            ["plan", "langevin", "--epsilon", "1", "--delta", "1e-5", "--dataset-size", "1.5"],
            "dataset_size",
        ),
        (
            [
                "plan",
                "output_perturbation",
                "--epsilon",
                "1",
                "--delta",
                "1e-5",
                "--clip-initial",
                "1",
                "--clip-gradient",
                "3",
            ],
            "clip_gradient",
        ),
        (
            [
                "plan",
                "gradient_clipping",
                "--epsilon",
                "1",
                "--delta",
                "1e-5",
                "--param",
                "novalue",
            ],
            "NAME=VALUE",
        ),
    ],
)
def test_more_bad_input_is_one_line_exit_2(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err


# -- unlearn verify ---------------------------------------------------------------------------
def _certificate(tmp_path):
    """A real certificate (and model file) from a tiny unlearn_torch run."""
    import torch
    import torch.nn.functional as F

    from unlearn_theory import plan
    from unlearn_torch import unlearn

    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=g)
    y = (X[:, 0] > 0).long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 2)
    p = plan(
        "gradient_clipping",
        epsilon=4.0,
        delta=1e-5,
        clip_initial=2.0,
        clip_gradient=1.0,
        learning_rate=0.1,
        weight_decay=1.0,
        steps=4,
    )
    run = unlearn(
        model,
        (X, y),
        p,
        loss_fn=F.cross_entropy,
        seed=12345,
        forget_ids=[40, 41],
        out=tmp_path / "run",
        progress=False,
    )
    return Path(run.paths["certificate"]), Path(run.paths["model"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_verify_valid_certificate_exits_0(tmp_path, capsys):
    cert, model = _certificate(tmp_path)
    code, out, _ = run(["verify", str(cert), "--model", str(model)], capsys)
    assert code == 0, out
    assert "valid certificate" in out
    code, out, _ = run(["verify", str(cert), "--json"], capsys)
    assert code == 0 and json.loads(out)["valid"] is True
    record = cert.with_name("run_record.json")  # the private run record, next to it
    code, out, _ = run(
        ["verify", str(cert), "--model", str(model), "--record", str(record)], capsys
    )
    assert code == 0 and "valid certificate" in out, out
    rec = json.loads(record.read_text())
    rec["model"]["sha256_before"] = "0" * 64  # another starting model
    (tmp_path / "r.json").write_text(json.dumps(rec))
    code, out, _ = run(["verify", str(cert), "--record", str(tmp_path / "r.json")], capsys)
    assert code == 1 and "run_record commitment" in out
    code, _, err = run(["verify", str(cert), "--record", str(tmp_path / "none.json")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "none.json" in err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_verify_tampered_certificate_exits_nonzero(tmp_path, capsys):
    cert, model = _certificate(tmp_path)
    data = json.loads(cert.read_text())
    data["guarantee"]["epsilon"] = data["guarantee"]["epsilon"] / 4  # claims more privacy
    cert.write_text(json.dumps(data))
    code, out, _ = run(["verify", str(cert), "--model", str(model)], capsys)
    assert code != 0 and "INVALID" in out
    # a model file that is not the certified one
    cert2, model2 = _certificate(tmp_path / "again")
    import torch

    state = torch.load(model2, weights_only=True)
    state["weight"] = state["weight"] + 1.0
    torch.save(state, model2)
    code, out, _ = run(["verify", str(cert2), "--model", str(model2)], capsys)
    assert code != 0 and "INVALID" in out


def test_verify_plan_with_edited_noise_exits_nonzero(tmp_path, capsys):
    argv = ["plan", "gradient_clipping", "--epsilon", "1", "--delta", "1e-5", "--json", *GC]
    code, out, _ = run(argv, capsys)
    assert code == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(out)
    code, text, _ = run(["verify", str(plan_file)], capsys)
    assert code == 0 and "valid plan" in text
    data = json.loads(out)
    assert round(data["noise_std"], 2) == 1.30  # Gaussian-DP route (shifted-Rényi alone: 1.41)
    data["noise_std"] = 0.01
    if isinstance(data.get("spec"), dict) and "noise_std" in data["spec"]:
        data["spec"]["noise_std"] = 0.01
    plan_file.write_text(json.dumps(data))
    code, text, _ = run(["verify", str(plan_file)], capsys)
    assert code != 0 and "INVALID plan" in text


def test_verify_unreadable_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("not json")
    code, _, err = run(["verify", str(bad)], capsys)
    assert code == 2 and "not a readable JSON object" in err


# -- version, python -m unlearn, help, the methods listing -----------------------------------
def test_version_and_python_m_unlearn(capsys):
    from unlearn_theory import __version__

    res = subprocess.run(
        [sys.executable, "-m", "unlearn", "--version"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"unlearn {__version__} (")
    for name in ("numpy", "scipy", "python"):
        assert name in res.stdout
    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out == res.stdout


def test_help_explains_epsilon_delta_defaults_and_exit_status(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["plan", "gradient_clipping", "--help"])
    assert ex.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--epsilon EPSILON target epsilon" in text
    assert "--delta DELTA target delta in (0, 1)" in text
    assert "(default: tight)" in text  # --accounting
    assert "(default: 0.0)" in text  # --weight-decay, from the spec's default
    assert "exit status: 0" in text
    with pytest.raises(SystemExit):
        main(["certify", "gradient_clipping", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--delta DELTA delta in (0, 1)" in text
    assert "exit status 1 when it is NOT certified" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "methods" in text and "--version" in text and "2 bad input" in text


def _spec_groups(method):
    cls = SPEC_CLASSES[method]
    required = set(cls.required_fields())
    chosen = required & {"steps", "noise_std", "noise_multiplier", "steps_per_block"}
    return required - chosen, chosen, set(cls.field_names()) - required


@pytest.mark.parametrize("method", sorted(SPEC_CLASSES))
def test_methods_listing_is_read_from_the_spec_class(method, capsys):
    code, out, _ = run(["methods", method, "--json"], capsys)
    assert code == 0
    (entry,) = json.loads(out)
    required, chosen, optional = _spec_groups(method)
    assert {r["name"] for r in entry["required"]} == required
    assert {r["name"] for r in entry["chosen_by_plan"]} == chosen
    assert {r["name"] for r in entry["optional"]} == optional
    for row in entry["required"] + entry["chosen_by_plan"] + entry["optional"]:
        assert row["flag"] == "--" + row["name"].replace("_", "-") and row["help"]
    # the text listing names every flag under its method
    code, text, _ = run(["methods"], capsys)
    assert code == 0
    block = text.split(f"{method}: ", 1)[1].split("\n\n")[0]
    for name in required | chosen | optional:
        assert "--" + name.replace("_", "-") in block


def test_methods_listing_follows_a_new_spec_field():
    """Not a hand-maintained list: a spec class registered at run time is listed with its
    fields (the toy class is removed again)."""
    import dataclasses

    from unlearn_cli.cli import method_options, methods_listing
    from unlearn_theory.methods import MethodSpec

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ToySpec(MethodSpec):
        """A toy method."""

        method = "toy_cli_method"
        noise_std: float
        steps: int
        smoothing_radius: float
        flavour: str = "plain"

    try:
        (entry,) = methods_listing("toy_cli_method")
        assert [r["name"] for r in entry["required"]] == ["smoothing_radius"]
        assert {r["name"] for r in entry["chosen_by_plan"]} == {"noise_std", "steps"}
        assert entry["optional"][0]["name"] == "flavour"
        assert entry["optional"][0]["default"] == "plain"
    finally:
        SPEC_CLASSES.pop("toy_cli_method", None)
        method_options.cache_clear()


@pytest.mark.parametrize(
    "argv,flags",
    [
        (
            ["plan", "langevin", "--epsilon", "1", "--delta", "1e-5"],
            [
                "--learning-rate",
                "--strong-convexity",
                "--smoothness",
                "--lipschitz",
                "--dataset-size",
                "--steps",  # "--steps or --noise-std": plan needs one of them
                "--noise-std",
            ],
        ),
        (
            ["certify", "langevin", "--delta", "1e-5", "--param", "smoothness=1"],
            [
                "--learning-rate",
                "--strong-convexity",
                "--lipschitz",
                "--dataset-size",
                "--steps",
                "--noise-std",
            ],
        ),
        (
            ["certify", "dp_sgd_group", "--delta", "1e-5", "--noise-std", "1"],
            ["--sample-rate", "--steps", "--forget-size"],
        ),
        (
            [
                "plan",
                "blockwise_gradient_clipping",
                "--epsilon",
                "1",
                "--delta",
                "1e-5",
                "--clip-initial",
                "1",
            ],
            ["--clip-gradient", "--learning-rate", "--blocks"],
        ),
    ],
)
def test_all_missing_parameters_in_one_error(argv, flags, capsys):
    code, _, err = run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    named = [w.strip(",") for w in lines[0].split() if w.startswith("--") and "-help" not in w]
    assert named == flags, lines[0]


def test_alternatives_and_schedules_satisfy_the_required_check(capsys):
    from unlearn_cli.cli import missing_parameters

    # dp_sgd_group: --noise-std gives the noise multiplier (checked without running the slow
    # PLD accountant); --steps-per-block is no parameter of it, so it cannot stand for --steps
    given = {"noise_std": 1.0, "steps": 10, "sample_rate": 0.01, "forget_size": 1}
    assert missing_parameters("dp_sgd_group", "certify", given) == []
    given = {"noise_std": 1.0, "steps_per_block": 10, "sample_rate": 0.01, "forget_size": 1}
    assert [o.name for o in missing_parameters("dp_sgd_group", "certify", given)] == ["steps"]
    # blockwise: --steps gives steps_per_block
    code, out, err = run(
        ["certify", "blockwise_gradient_clipping", "--delta", "1e-5", "--noise-std", "2"]
        + ["--steps", "4", "--blocks", "2", "--clip-initial", "1", "--clip-gradient", "1"]
        + ["--learning-rate", "0.1"],
        capsys,
    )
    assert code == 0, err
    # gradient clipping: a per-step schedule gives the step count
    code, out, err = run(
        ["certify", "gradient_clipping", "--delta", "1e-5", "--noise-std", "3,4"]
        + ["--clip-initial", "1", "--clip-gradient", "100,50", "--learning-rate", "0.001"],
        capsys,
    )
    assert code == 0, err
    # auto and unknown methods: the library names what is missing
    assert missing_parameters("auto", "plan", {}) == []


# -- certify: exit status and what the JSON says ----------------------------------------------
OP = [
    "certify",
    "output_perturbation",
    "--delta",
    "1e-5",
    "--noise-std",
    "8",
    "--clip-initial",
    "1",
]


def test_certify_exit_status_gates_a_claim(capsys):
    eps = float(certify("output_perturbation", delta=1e-5, noise_std=8.0, clip_initial=1.0))
    code, out, _ = run([*OP, "--claimed-epsilon", str(eps * 1.01)], capsys)
    assert code == 0 and "is certified" in out
    code, out, _ = run([*OP, "--claimed-epsilon", str(eps * 0.99)], capsys)
    assert code == 1 and "NOT CERTIFIED" in out
    code, out, _ = run([*OP, "--claimed-epsilon", str(eps * 0.99), "--json"], capsys)
    data = json.loads(out)
    assert code == 1 and data["claim_holds"] is False
    res = subprocess.run(
        [sys.executable, "-m", "unlearn", *OP, "--claimed-epsilon", "0.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1 and res.stderr == ""


def test_certify_json_says_what_it_certifies(capsys):
    import numpy
    import scipy

    from unlearn_theory import __version__
    from unlearn_theory.methods import spec_from_dict

    argv = ["certify", "gradient_clipping", "--delta", "1e-5", "--noise-std", "0.3"]
    argv += ["--steps", "11", *GC, "--json"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["method"] == "gradient_clipping" and data["delta"] == 1e-5
    assert data["kind"] in ("upper", "exact") and data["accountant"]
    assert data["inputs"] == {
        "clip_initial": 1.0,
        "clip_gradient": 100.0,
        "learning_rate": 0.001,
        "weight_decay": 500.0,
        "steps": 11,
        "noise_std": 0.3,
        "delta": 1e-5,
    }
    assert data["versions"]["unlearn"] == data["library_version"] == __version__
    assert data["versions"]["numpy"] == numpy.__version__
    assert data["versions"]["scipy"] == scipy.__version__
    assert data["claimed_epsilon"] is None and data["claim_holds"] is None
    # the spec in the file certifies again to the same epsilon
    spec = spec_from_dict(data["spec"])
    assert float(certify(spec, delta=data["delta"])) == data["epsilon"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["methods", "no_such_method"], "METHOD"),
        (["methods", "--bogus"], "--bogus"),
        ([*OP, "--claimed-epsilon", "nan"], "claimed_epsilon"),
        ([*OP, "--claimed-epsilon", "-1"], "claimed_epsilon"),
        (["--versionx"], "--versionx"),
    ],
)
def test_new_options_bad_input_one_line_exit_2(argv, needle, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err


def test_a_plan_that_needs_steps_or_noise_says_so_in_the_first_error(capsys):
    """An accountant whose plan needs one of several parameters says so
    (``plan_requires_one_of``; langevin: steps or noise_std); the CLI names them with the other
    missing ones, in one error, and the help and the listing say it."""
    from unlearn_theory.methods import get_method

    assert get_method("langevin").plan_requires_one_of == ("steps", "noise_std")
    code, _, err = run(["plan", "langevin", "--epsilon", "1", "--delta", "1e-5"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--dataset-size, --steps or --noise-std" in err
    code, _, err = run(
        ["plan", "langevin", "--epsilon", "1", "--delta", "1e-5", "--noise-std", "1"]
        + ["--learning-rate", "0.5", "--strong-convexity", "0.01", "--smoothness", "1.1"]
        + ["--lipschitz", "1", "--dataset-size", "100", "--max-steps", "5", "--json"],
        capsys,
    )
    assert "misses" not in err
    code, out, _ = run(["methods", "langevin"], capsys)
    assert "plan needs one of steps, noise_std" in out
    with pytest.raises(SystemExit):
        main(["plan", "langevin", "--help"])
    assert "[--steps or --noise-std required]" in " ".join(capsys.readouterr().out.split())


def test_plan_and_certify_list(capsys):
    for command in ("plan", "certify"):
        with pytest.raises(SystemExit) as ex:
            main([command, "--list"])
        assert ex.value.code == 0
        out = capsys.readouterr().out
        assert all(f"{m}: " in out for m in SPEC_CLASSES)
