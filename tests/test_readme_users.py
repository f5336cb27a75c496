"""The README's examples for each user (theorist, practitioner, auditor) run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
USERS = ("theorist", "practitioner", "auditor")


def _section(text: str, user: str) -> str:
    match = re.search(rf"^### For the {user}\b.*?(?=^##)", text, flags=re.S | re.M)
    assert match, f"README has no '### For the {user}' section"
    return match.group(0)


def _block(user: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", _section(README.read_text(), user), flags=re.S)
    assert len(blocks) == 1, f"expected one python example for the {user}"
    return blocks[0]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_user_example_runs_as_written(user, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"readme_{user}"}
    exec(compile(_block(user), f"README.md ({user})", "exec"), namespace)
    assert capsys.readouterr().out.strip(), "the example prints what it shows"
    if user == "theorist":
        p = namespace["p"]
        assert p.noise_std < p.paper_noise_std and p.epsilon <= 1.0
    elif user == "practitioner":
        assert (tmp_path / "plan.json").is_file()
        assert namespace["best"].epsilon <= 4.0
    else:
        r = namespace["r"]
        assert r["epsilon_certified"] >= r["epsilon_exact"] * (1 - 1e-9)


def test_readme_links_the_promises_page_and_the_api_reference():
    text = README.read_text()
    root = README.parent
    assert (
        "docs/certificate_promises.md" in text and (root / "docs/certificate_promises.md").is_file()
    )
    assert "docs/api/" in text
