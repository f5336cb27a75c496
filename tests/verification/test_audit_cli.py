"""``unlearn audit`` from the shell's point of view: a caught fault is a FAIL verdict with exit
status 1, bad input (a device this machine lacks, a no-op fault) is one error line with exit
status 2, the defaults are stated, progress goes to a terminal's stderr only."""

from __future__ import annotations

import json

import pytest

from unlearn_cli import audit as audit_cli
from unlearn_cli.cli import main

# the configuration the --inject-fault help names for reuse_noise
_REUSE = [
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
]


def _audit(argv, capsys):
    code = main(["audit", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_caught_fault_is_a_fail_verdict_with_exit_1(capsys):
    code, out, err = _audit(
        [*_REUSE, "--samples", "100000", "--inject-fault", "reuse_noise"], capsys
    )
    last = out.strip().splitlines()[-1]
    assert code == 1
    assert last.startswith("verdict: FAIL (injected fault reuse_noise)")
    assert "exceeds the certified" in last and "status=ok" not in out
    assert err == ""  # stderr is not a terminal here: no progress bar


def test_the_same_configuration_without_the_fault_passes(capsys):
    code, out, _ = _audit([*_REUSE, "--samples", "100000"], capsys)
    assert code == 0 and out.strip().splitlines()[-1].startswith("verdict: PASS:")


def test_half_noise_example_of_the_help_is_caught(capsys):
    code, out, _ = _audit(
        [
            "output_perturbation",
            "--noise-std",
            "2",
            "--samples",
            "200000",
            "--inject-fault",
            "half_noise",
        ],
        capsys,
    )
    assert code == 1 and "verdict: FAIL" in out


def test_reuse_noise_with_one_step_is_refused_as_a_no_op(capsys):
    code, out, err = _audit(
        ["gradient_clipping", "--noise-std", "1", "--inject-fault", "reuse_noise"], capsys
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "steps" in err and "--steps >= 2" in err


def test_undetected_fault_is_said_so(capsys):
    code, out, _ = _audit(
        [
            "gradient_clipping",
            "--noise-std",
            "1",
            "--steps",
            "4",
            "--samples",
            "20000",
            "--inject-fault",
            "reuse_noise",
        ],
        capsys,
    )
    assert code == 0 and "NOT detected" in out.strip().splitlines()[-1]


def test_inconclusive_when_min_epsilon_is_not_reached(capsys):
    code, out, _ = _audit(
        ["output_perturbation", "--noise-std", "2", "--samples", "20000", "--min-epsilon", "50"],
        capsys,
    )
    assert code == 0 and out.strip().splitlines()[-1].startswith("verdict: INCONCLUSIVE")


def test_json_carries_the_verdict(capsys):
    code, out, _ = _audit(
        [*_REUSE, "--samples", "100000", "--inject-fault", "reuse_noise", "--json"], capsys
    )
    rep = json.loads(out)
    assert code == 1 and rep["verdict"] == "FAIL" and rep["exit_status"] == 1
    assert rep["audits"][0]["consistent"] is False


def test_default_delta_is_1e_5_and_stated(capsys):
    assert audit_cli.DEFAULT_DELTA == 1e-5
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 1e-05" in text and "--quiet" in text and "--steps >= 2" in text
    code, out, _ = _audit(["output_perturbation", "--noise-std", "2", "--samples", "20000"], capsys)
    assert code == 0 and "at delta=1e-05" in out


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tpu", "not-a-device"])
def test_unavailable_device_is_one_error_line(device, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine
    code, out, err = _audit(["output_perturbation", "--noise-std", "2", "--device", device], capsys)
    assert code == 2 and out == ""
    assert err.startswith("unlearn: error:") and err.count("\n") == 1 and "device" in err
    assert "Traceback" not in err


def test_progress_on_a_terminal_and_quiet(capsys, monkeypatch):
    import sys

    argv = ["output_perturbation", "--noise-std", "2", "--samples", "30000"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = _audit(argv, capsys)
    assert code == 0 and "draws" in err
    code, _, err = _audit([*argv, "--quiet"], capsys)
    assert code == 0 and err == ""
