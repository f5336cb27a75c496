"""Every registered method has a spec, an update rule, an accountant, an audit and an exact toy
(or a documented reason for none): ``verification.audit.coverage_gaps`` (issue 9)."""

from __future__ import annotations

import dataclasses

import pytest

from unlearn_theory import planning
from unlearn_theory.methods import (
    SPEC_CLASSES,
    MethodAccountant,
    MethodSpec,
    get_method,
    register_method,
    unregister_method,
)
from unlearn_theory.update_rule import AddNoise, Phase, UpdateRule
from verification import audit

REGISTERED = [m for m in planning.available_methods() if m != "auto"]


def test_every_registered_method_is_audited():
    assert set(REGISTERED) == set(audit.METHODS)
    assert "langevin" in REGISTERED


@pytest.mark.parametrize("method", REGISTERED)
def test_registered_method_has_no_coverage_gap(method):
    assert audit.coverage_gaps(method) == []
    # the pieces, spelled out
    assert get_method(method).spec_class is SPEC_CLASSES[method]
    chains = audit.MethodChains(method, **audit.EXAMPLES[method])
    rule = chains.spec().update_rule()
    assert isinstance(rule, UpdateRule)
    assert len(rule.prologue) + sum(len(p.ops) for p in rule.phases) >= 1
    assert audit.exact_toy(chains) is not None or audit.NO_EXACT_TOY.get(method)


def test_no_exact_toy_entries_are_documented():
    for method, reason in audit.NO_EXACT_TOY.items():
        assert method in audit.METHODS
        assert isinstance(reason, str) and reason.strip()


@pytest.fixture
def dummy_method():
    """A method registered for the test only (its spec class is defined here, not at import, so
    that SPEC_CLASSES holds it only while the test runs)."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class _DummySpec(MethodSpec):
        method = "coverage_dummy"
        noise_std: float
        steps: int = 1

        def update_rule(self) -> UpdateRule:
            return UpdateRule(phases=(Phase(self.steps, (AddNoise(self.noise_std),)),))

    class _DummyAccountant(MethodAccountant):
        name = "coverage_dummy"
        spec_class = _DummySpec

    try:
        register_method(_DummyAccountant())
        yield "coverage_dummy"
    finally:
        if "coverage_dummy" in planning.available_methods():
            unregister_method("coverage_dummy")
        SPEC_CLASSES.pop("coverage_dummy", None)


def test_new_method_without_audit_is_reported(dummy_method):
    assert dummy_method in planning.available_methods()
    gaps = audit.coverage_gaps(dummy_method)
    text = "\n".join(gaps)
    assert "METHODS" in text and "EXAMPLES" in text and "NO_EXACT_TOY" in text
    assert all(g.startswith(dummy_method) for g in gaps)
    assert "coverage_dummy" in SPEC_CLASSES  # it has a spec class and an accountant ...
    assert not any("no accountant" in g or "no spec class" in g for g in gaps)


def test_unregistered_name_is_reported():
    gaps = audit.coverage_gaps("no_such_method")
    assert any("no accountant registered" in g for g in gaps)
    assert any("no spec class" in g for g in gaps)


def test_missing_exact_toy_needs_a_documented_reason(monkeypatch):
    monkeypatch.setattr(audit, "exact_toy", lambda chains: None)
    gaps = audit.coverage_gaps("langevin")
    assert gaps == ["langevin: no exact toy and no documented reason in NO_EXACT_TOY"]
    monkeypatch.setitem(audit.NO_EXACT_TOY, "langevin", "")
    assert audit.coverage_gaps("langevin") == gaps  # an empty reason is no reason
    monkeypatch.setitem(audit.NO_EXACT_TOY, "langevin", "laws not known in closed form")
    assert audit.coverage_gaps("langevin") == []


def test_broken_example_and_inconsistent_audit_are_reported(monkeypatch):
    base = dict(audit.EXAMPLES["langevin"])
    monkeypatch.setitem(audit.EXAMPLES, "langevin", dict(base, loss="sign"))
    (gap,) = audit.coverage_gaps("langevin")
    assert "example" in gap and "loss" in gap
    monkeypatch.setitem(audit.EXAMPLES, "langevin", dict(base, fault="half_noise"))
    gaps = audit.coverage_gaps("langevin", samples=200_000)
    assert any("audit inconsistent" in g for g in gaps)


def test_cli_audits_langevin(capsys):
    from unlearn_cli.cli import main

    argv = ["audit", "langevin", "--noise-std", "0.1", "--steps", "10", "--loss", "quadratic"]
    argv += ["--lipschitz", "2", "--dataset-size", "10", "--radius", "2", "--samples", "20000"]
    assert main(argv + ["--route", "pabi"]) == 0
    out = capsys.readouterr().out
    assert "audit langevin" in out and "langevin[pabi]" in out
