from __future__ import annotations

from tests.conftest import REPO


def _first_block() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    assert lines[0].startswith("```"), "README must open with the two commands"
    end = lines.index("```", 1)
    return lines[1:end]


def test_readme_opens_with_install_and_test_commands():
    run, test = _first_block()[:2]
    assert "pip install" in run and "burstkpn " in run
    assert "pip install" in test and "pytest" in test
    assert "awk" in (REPO / ".ci" / "run").read_text()  # CI runs the README's line as written
