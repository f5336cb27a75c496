"""Every notebook (jupytext percent-format .py) executes top to bottom."""

from __future__ import annotations

import os
import pathlib
import runpy

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    os.environ.setdefault("MPLBACKEND", "Agg")
    runpy.run_path(str(path), run_name="__main__")


def test_there_is_a_notebook():
    assert NOTEBOOKS
