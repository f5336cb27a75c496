"""The README's "Unlearn a model" example runs as written (its sizes are already small)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _unlearn_block() -> str:
    blocks = [b for b in _python_blocks(README.read_text()) if "from unlearn_torch import" in b]
    assert len(blocks) == 1, "expected one README python block that uses unlearn_torch"
    return blocks[0]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_unlearn_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(_unlearn_block(), "README.md", "exec"), namespace)
    run = namespace["run"]
    g = run.certificate["guarantee"]
    assert g["certified"] and g["epsilon"] <= 4.0 and g["bound_kind"] in ("exact", "upper")
    assert (tmp_path / "unlearned" / "certificate.json").exists()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and 0.0 <= float(printed[1]) <= 1.0
