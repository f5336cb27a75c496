"""The examples in the docstrings run, and every function of the public contract has one.

The public contract (docs/architecture.md): ``gaussian.delta/log_delta/epsilon/mu``,
``renyi.gaussian/subsampled_gaussian/to_dp``, ``dp_sgd_epsilon``, ``plan``, ``certify`` and
``UnlearningPlan`` (``to_json``/``from_json``). Each has type hints and a runnable example;
the examples of the math package run in a fresh interpreter that must not load torch,
matplotlib or sympy.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: modules of unlearn_theory whose examples are run (each in a process without torch)
THEORY_MODULES = (
    "unlearn_theory",
    "unlearn_theory.gaussian",
    "unlearn_theory.renyi",
    "unlearn_theory.dp_sgd",
    "unlearn_theory.planning",
    "unlearn_theory.plans",
)
#: modules above it (their examples may use matplotlib or the command line)
UPPER_MODULES = ("verification.plots", "unlearn", "unlearn_cli.cli")

#: the public contract: (module, qualified name)
CONTRACT = (
    ("unlearn_theory.gaussian", "delta"),
    ("unlearn_theory.gaussian", "log_delta"),
    ("unlearn_theory.gaussian", "epsilon"),
    ("unlearn_theory.gaussian", "mu"),
    ("unlearn_theory.renyi", "gaussian"),
    ("unlearn_theory.renyi", "subsampled_gaussian"),
    ("unlearn_theory.renyi", "to_dp"),
    ("unlearn_theory.dp_sgd", "dp_sgd_epsilon"),
    ("unlearn_theory.planning", "plan"),
    ("unlearn_theory.planning", "certify"),
    ("unlearn_theory.plans", "UnlearningPlan.to_json"),
    ("unlearn_theory.plans", "UnlearningPlan.from_json"),
    ("verification.plots", "delta_curves"),
    ("verification.plots", "plot_delta_curves"),
    ("verification.plots", "plot_privacy_profile"),
    ("verification.plots", "epsilon_by_steps"),
    ("verification.plots", "plot_epsilon_vs_steps"),
    ("verification.plots", "plot_certified_vs_audited"),
    ("unlearn", "main"),
)


def _resolve(module: str, qualname: str):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _run(module_name: str) -> doctest.TestResults:
    module = importlib.import_module(module_name)
    return doctest.testmod(module, optionflags=FLAGS, verbose=False, report=True)


_THEORY_SCRIPT = """
import doctest, importlib, sys
failed = attempted = 0
for name in sys.argv[1:]:
    res = doctest.testmod(importlib.import_module(name),
                          optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failed += res.failed
    attempted += res.attempted
    print(name, res.attempted, res.failed)
heavy = [m for m in ("torch", "matplotlib", "sympy") if m in sys.modules]
print("heavy:", " ".join(heavy))
sys.exit(1 if failed or heavy else 0)
"""


def test_theory_examples_run_without_torch_matplotlib_or_sympy():
    out = subprocess.run(
        [sys.executable, "-c", _THEORY_SCRIPT, *THEORY_MODULES],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in out.stdout.splitlines()
        if not line.startswith("heavy")
    }
    assert all(counts[m] > 0 for m in THEORY_MODULES), counts
    assert out.stdout.strip().endswith("heavy:")


@pytest.mark.parametrize("module_name", UPPER_MODULES)
def test_upper_layer_examples_run(module_name):
    res = _run(module_name)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("module,qualname", CONTRACT)
def test_public_functions_have_type_hints_and_an_example(module, qualname):
    fn = _resolve(module, qualname)
    assert ">>>" in (fn.__doc__ or ""), f"{module}.{qualname}: no example in its docstring"
    sig = inspect.signature(fn)
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty
    ]
    assert not missing, f"{module}.{qualname}: parameters without a type hint: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, (
        f"{module}.{qualname}: no return type"
    )
