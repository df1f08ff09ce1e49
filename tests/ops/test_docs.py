"""The operations docs stay in step with the code: every metric, command and install step."""

from __future__ import annotations

import re

from hedgekeeper.cli import app
from hedgekeeper.metrics import METRIC_NAMES
from tests.conftest import REPO

DOCS = (REPO / "docs" / "operations.md").read_text()
INSTALL = (REPO / "deploy" / "systemd" / "INSTALL.md").read_text()


def first_sh_block(text: str) -> list[str]:
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_every_metric_is_documented() -> None:
    for name in METRIC_NAMES:
        assert f"`{name}`" in DOCS or f"`{name}_total`" in DOCS, name


def test_every_operator_command_is_registered_and_documented() -> None:
    registered = {command.name or command.callback.__name__ for command in app.registered_commands}
    for name in ("status", "events", "health", "halt", "resume", "flatten", "hedge-now"):
        assert name in registered, name
        assert f"hedgekeeper {name}" in DOCS, name


def test_systemd_install_is_five_commands_in_both_places() -> None:
    steps = first_sh_block(INSTALL)
    assert len(steps) == 5
    assert first_sh_block(DOCS.split("## Under systemd", 1)[1]) == steps
