"""Shared test configuration: hypothesis profiles and oracle loading helpers."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib

from hypothesis import HealthCheck, settings

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

# "ci" (the default) is derandomised: every run of `make test` draws the same examples, so a red
# CI always reproduces and never depends on luck. Exploration with fresh random examples is a
# separate, deliberate act: HYPOTHESIS_PROFILE=explore make test (or "thorough" for 1000
# examples where a test does not fix its own count), and pytest --hypothesis-seed=N.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def load_json(name: str):
    return json.loads((DATA / name).read_text())


def load_script(name: str):
    """Import a committed oracle script from scripts/ as a module."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module
