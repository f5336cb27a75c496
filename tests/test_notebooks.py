"""Every notebook (jupytext percent-format .py) executes top to bottom and saves its figures.

Notebooks run in FAST mode here (``UNLEARN_NOTEBOOK_MODE=fast``: small sizes, seconds each)
unless the variable is already set (``UNLEARN_NOTEBOOK_MODE=full pytest tests/test_notebooks.py``
runs the real sizes). Figures go to a temporary folder (``UNLEARN_FIGURES_DIR``). The README
shows one figure of each notebook, committed under docs/figures/.
"""

from __future__ import annotations

import os
import pathlib
import re
import runpy
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_notebook_executes_and_saves_its_figures(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UNLEARN_NOTEBOOK_MODE", os.environ.get("UNLEARN_NOTEBOOK_MODE", "fast"))
    figures = tmp_path / "figures"
    monkeypatch.setenv("UNLEARN_FIGURES_DIR", str(figures))
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:  # the torch notebooks use one thread (tiny models); leave the process as it was
        torch = sys.modules.get("torch")
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)
    prefix = path.name[:2]
    saved = sorted(figures.glob(f"{prefix}_*.png"))
    assert saved, f"{path.name} saved no figure named {prefix}_*.png"
    assert all(p.stat().st_size > 1000 for p in saved)


def test_notebooks_are_jupytext_percent_files():
    assert len(NOTEBOOKS) >= 7
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "format_name: percent" in text, path.name
        assert "# %% [markdown]" in text, path.name
        assert "UNLEARN_NOTEBOOK_MODE" in text and "UNLEARN_FIGURES_DIR" in text, path.name
        # never switch pyplot's global backend: figures are Figure objects on their own canvas
        assert "matplotlib.use(" not in text and "pyplot" not in text, path.name


def test_readme_shows_a_committed_figure_of_every_notebook():
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"\]\((docs/figures/[^)]+\.png)\)", readme)
    for path in NOTEBOOKS:
        prefix = path.name[:2]
        mine = [s for s in shown if pathlib.Path(s).name.startswith(prefix + "_")]
        assert mine, f"README shows no figure of {path.name}"
        for s in mine:
            assert (ROOT / s).is_file(), f"README shows {s}, which is not committed"
