"""Packaging: requirements are ranges (the exact torch pin lives only in the reproducible
set-up), the version has one source, and every package (the ``unlearn`` shim included) ships."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements() -> list[str]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return reqs


def test_no_requirement_is_pinned_exactly():
    pinned = [r for r in _requirements() if re.search(r"===?", r)]
    assert pinned == [], f"exact pins belong to the reproducible set-up only: {pinned}"
    torch = [r for r in _requirements() if re.match(r"torch\b", r)]
    assert torch and all(">=" in r for r in torch), torch


def test_the_reproducible_setup_keeps_the_exact_torch_pin():
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_one_version_source_and_every_package_ships():
    from unlearn_theory import __version__

    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "unlearn_theory/_version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", __version__)
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    on_disk = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")
    assert sorted(packages) == on_disk
    assert PYPROJECT["project"]["scripts"]["unlearn"] == "unlearn_cli.cli:main"
