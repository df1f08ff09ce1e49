"""docs/exchanges.md: every row of the capability table names tests that exist."""

from __future__ import annotations

import re

from tests.conftest import REPO

TABLE_TITLE = "## What each exchange can hedge with, and the test behind it"


def capability_rows() -> list[str]:
    text = (REPO / "docs" / "exchanges.md").read_text()
    section = text.split(TABLE_TITLE, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return rows[1:]  # the header row names no exchange


def test_every_row_names_a_test_and_every_named_test_exists() -> None:
    sources = "\n".join(
        path.read_text() for path in (REPO / "tests").rglob("*.py") if path.is_file()
    )
    rows = capability_rows()
    assert len(rows) >= 7
    for row in rows:
        named = re.findall(r"`(test_\w+?)(?:\.py)?`", row)
        files = re.findall(r"`(test_\w+\.py)`", row)
        exchange = row.split("|")[1].strip()
        assert named or files or "tests/integration" in row, f"{exchange}: no test named"
        for name in named:
            if f"{name}.py" in files:
                continue
            assert re.search(rf"def {name}\b", sources), f"{exchange}: no test {name}"
        for file in files:
            assert list((REPO / "tests").rglob(file)), f"{exchange}: no file {file}"
