"""The `unlearn` command line: help, plan/certify output, one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from unlearn_cli import audit as audit_cli
from unlearn_cli.cli import main
from unlearn_theory import UnlearningPlan, certify

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
    for word in ("plan", "certify", "audit", "demo"):
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
        (["plan", "gradient_clipping", "--epsilon", "1", "--delta", "1e-5"], "clip_initial"),
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


def test_demo_runs(capsys):
    code, out, _ = run(["demo"], capsys)
    assert code == 0
    assert "gradient_clipping" in out and "NOT CERTIFIED" in out


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
    assert code == 0
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
