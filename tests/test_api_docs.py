"""The committed API reference (docs/api/) is what scripts/gen_api_docs.py generates now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts/gen_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_up_to_date(tmp_path):
    gen = _generator()
    fresh = {p.name: p.read_text(encoding="utf-8") for p in gen.generate(tmp_path)}
    committed = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs/api").glob("*.md")}
    missing = sorted(fresh.keys() - committed.keys())
    extra = sorted(committed.keys() - fresh.keys())
    stale = sorted(n for n in fresh.keys() & committed.keys() if fresh[n] != committed[n])
    assert not (missing or extra or stale), (
        f"docs/api is stale (missing {missing}, extra {extra}, changed {stale}); "
        "regenerate with: python scripts/gen_api_docs.py"
    )


def test_api_reference_covers_the_public_contract():
    gaussian = (ROOT / "docs/api/unlearn_theory.gaussian.md").read_text(encoding="utf-8")
    for name in ("delta", "log_delta", "epsilon", "mu"):
        assert f"### `{name}(" in gaussian
    planning = (ROOT / "docs/api/unlearn_theory.planning.md").read_text(encoding="utf-8")
    assert "### `plan(" in planning and "### `certify(" in planning
    run = (ROOT / "docs/api/unlearn_torch.run.md").read_text(encoding="utf-8")
    assert "### `unlearn(" in run
    index = (ROOT / "docs/api/index.md").read_text(encoding="utf-8")
    assert "[`unlearn_theory.gaussian`](unlearn_theory.gaussian.md)" in index


def test_private_modules_are_left_out():
    names = {p.name for p in (ROOT / "docs/api").glob("*.md")}
    assert not any(part.startswith("_") for n in names for part in n[:-3].split("."))
