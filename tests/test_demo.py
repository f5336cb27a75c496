"""`unlearn demo --quick`: every method at every epsilon runs for real, certificates are written
and verify, the plots exist, and every printed certified epsilon is the certificate's."""

from __future__ import annotations

import json
import math
import re

import pytest

from unlearn_cli.demo_real import DELTA, EPSILONS, MLP_METHODS
from unlearn_torch import verify_certificate


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    from unlearn_cli.demo import run_demo

    status = run_demo(lines.append, out_dir=out_dir, quick=True)
    return status, lines, out_dir


def _rows(lines, method):
    pat = re.compile(rf"^\s+{method}\s+(\d+)\s+(\S+)\s+(\d+)\s+(\S+) \((\w+)\)")
    return [m.groups() for ln in lines if (m := pat.match(ln))]


def test_quick_demo_table_has_every_method_and_epsilon(quick_demo):
    status, lines, _ = quick_demo
    assert status == 0, "\n".join(lines)
    text = "\n".join(lines)
    for part in ("Part 1.", "Part 2.", "Part 3.", "Part 4."):
        assert part in text
    for method in MLP_METHODS:
        rows = _rows(lines, method)
        assert [float(r[0]) for r in rows] == list(EPSILONS), (method, rows)
    assert re.search(r"dp_sgd_group\s+not an unlearning step.*Opacus", text)
    assert "retrain from scratch" in text
    assert "langevin" in text and "strongly convex" in text


def test_quick_demo_certificates_are_written_verify_and_match_the_table(quick_demo):
    _, lines, out_dir = quick_demo
    summary = json.loads((out_dir / "summary.json").read_text())
    rows = summary["mlp"]["rows"] + summary["langevin_logistic_regression"]["rows"]
    assert len(rows) == len(MLP_METHODS) * len(EPSILONS) + len(EPSILONS)
    for row in rows:
        cert_path = row["certificate"]
        cert = json.loads(open(cert_path).read())
        g = cert["guarantee"]
        # the number in the summary (and the table) is the certificate's own
        assert row["certified_epsilon"] == g["epsilon"] and g["delta"] == DELTA
        assert g["certified"] and g["epsilon"] <= row["target_epsilon"] * (1 + 1e-9)
        assert verify_certificate(cert_path, row.get("model")) == []
    for method in MLP_METHODS:
        for eps_text, _, _, cert_text, kind in _rows(lines, method):
            cert = json.loads(
                (out_dir / f"{method}_eps{eps_text}" / "certificate.json").read_text()
            )
            assert math.isclose(float(cert_text), cert["guarantee"]["epsilon"], rel_tol=1e-3)
            assert kind == cert["guarantee"]["bound_kind"]
    for method in MLP_METHODS:
        assert (out_dir / f"accuracy_{method}.png").stat().st_size > 1000
    assert lines[-1].endswith("valid certificate")
