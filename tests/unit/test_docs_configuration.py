"""docs/configuration.md lists every settings field, and the docs name no key that does not exist.

The settings models are walked recursively from :class:`Settings`: a field whose type is a
model (directly, optional, or as the values of a dict / items of a list) is a section of its
own, documented under a heading naming it (``[paper]``, ``[accounts.NAME]``,
``[[hedges]]``, ``[accounts.NAME.sim]``); every other field is a row of that section's table.
"""

from __future__ import annotations

import re
from pathlib import Path

from hedgekeeper.config_hints import section_fields
from hedgekeeper.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def settings_sections() -> dict[str, set[str]]:
    """Section heading (``""`` for the top level) -> the leaf keys it holds."""
    sections: dict[str, set[str]] = {"": set()}
    for section, key in section_fields(Settings):
        sections.setdefault(section, set()).add(key)
    return sections


_HEADING = re.compile(r"^#{2,3} (.*)$")
_SECTION_NAME = re.compile(r"`(\[\[?[A-Za-z_.]+\]\]?)`")
_KEY = re.compile(r"`([a-z_][a-z0-9_]*)`")


def documented_sections(text: str) -> dict[str, set[str]]:
    """Heading -> the keys in the first column of its table(s)."""
    sections: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            title = heading.group(1)
            named = _SECTION_NAME.search(title)
            current = named.group(1) if named else ("" if title == "Top level" else None)
            if current is not None:
                sections.setdefault(current, set())
            continue
        if current is None or not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first_cell = line.split("|")[1]
        if first_cell.strip() == "key":
            continue
        sections[current].update(_KEY.findall(first_cell))
    return sections


def test_every_settings_field_is_documented_and_nothing_else() -> None:
    expected = settings_sections()
    documented = documented_sections(CONFIG_DOC.read_text())
    missing = {
        f"{section or 'top level'}: {key}"
        for section, keys in expected.items()
        for key in keys - documented.get(section, set())
    }
    unknown_sections = set(documented) - set(expected)
    unknown_keys = {
        f"{section or 'top level'}: {key}"
        for section, keys in documented.items()
        if section in expected
        for key in keys - expected[section]
    }
    assert not missing, f"settings missing from docs/configuration.md: {sorted(missing)}"
    assert not unknown_sections, f"docs/configuration.md has unknown sections: {unknown_sections}"
    assert not unknown_keys, f"docs/configuration.md names unknown keys: {sorted(unknown_keys)}"


def test_section_keys_named_anywhere_in_the_docs_exist() -> None:
    """``[section] key`` in prose (README or docs/) must name a real key of that section."""
    expected = settings_sections()
    mention = re.compile(r"`(\[\[?[A-Za-z_.]+\]\]?) ([a-z_][a-z0-9_]*)`")
    wrong = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for section, key in mention.findall(path.read_text()):
            if key not in expected.get(section, set()):
                wrong.append(f"{path.name}: `{section} {key}`")
    assert not wrong, f"the docs name keys that do not exist: {wrong}"


def test_the_checker_notices_a_missing_and_an_invented_key() -> None:
    """The parser is not vacuous: dropping a row or inventing one changes what it reports."""
    text = CONFIG_DOC.read_text()
    documented = documented_sections(text)
    assert "maker_fee" in documented["[paper]"]
    assert "sim" not in documented.get("[accounts.NAME]", set())  # sections are not rows
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `maker_fee`"))
    assert "maker_fee" not in documented_sections(without)["[paper]"]
    invented = text.replace("| `taker_fee`", "| `taker_feee` | x | x |\n| `taker_fee`", 1)
    assert "taker_feee" in documented_sections(invented)["[paper]"]
