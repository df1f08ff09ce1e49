"""State belongs to its config: per-instance default directory, identity in the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hedgekeeper.cli import app
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.journal import Journal
from hedgekeeper.settings import load_settings
from hedgekeeper.statedir import check_identity, default_state_dir, resolve_state_dir
from tests.ops.helpers import sim_config


def settings_for(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    path.chmod(0o600)
    return load_settings(path), path


def test_default_state_dir_is_per_instance_and_never_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir("hk") == tmp_path / "xdg" / "hedgekeeper" / "hk"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir("ab") == Path.home() / ".local" / "state" / "hedgekeeper" / "ab"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/hedgekeeper:/var/lib/other")
    assert default_state_dir("hk") == Path("/var/lib/hedgekeeper")
    settings, _ = settings_for(tmp_path, "a", sim_config())
    assert resolve_state_dir(tmp_path / "cli", settings) == tmp_path / "cli"


def test_another_configs_journal_is_refused_unless_adopted(tmp_path: Path) -> None:
    demo, _ = settings_for(tmp_path, "demo", sim_config())
    mine, mine_path = settings_for(
        tmp_path, "mine", sim_config().replace("[accounts.demo]", "[accounts.main]")
        .replace("accounts.demo.sim", "accounts.main.sim").replace('"demo"', '"main"'),
    )  # fmt: skip
    journal = Journal(tmp_path / "state" / "journal.db")
    check_identity(journal, demo)  # the demo's journal takes the demo's identity
    check_identity(journal, demo)
    with pytest.raises(ConfigError) as refused:
        check_identity(journal, mine)
    text = str(refused.value)
    assert "demo (sim)" in text and "main (sim)" in text and "--adopt-state" in text
    journal.close()
    # plan and run refuse it the same way (exit 2); --adopt-state takes it on purpose.
    result = CliRunner().invoke(app, ["plan", "-c", str(mine_path), "--state-dir",
                                      str(tmp_path / "state")])  # fmt: skip
    assert result.exit_code == 2 and "belongs to another configuration" in result.output
    journal = Journal(tmp_path / "state" / "journal.db")
    check_identity(journal, mine, adopt=True)
    assert journal.identity() is not None and journal.identity()["accounts"] == {"main": "sim"}  # type: ignore[index]
    journal.close()


def test_report_reads_the_default_state_dir_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report` beside a running daemon: it finds the journal in the default state
    directory and never writes to it (any write transaction fails this test)."""
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    settings, path = settings_for(tmp_path, "demo", sim_config())
    state = default_state_dir(settings.instance)
    Journal(state / "journal.db").close()

    def no_writes(self: Journal) -> None:
        raise AssertionError("report wrote to the journal")

    monkeypatch.setattr(Journal, "transaction", no_writes)
    result = CliRunner().invoke(app, ["report", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert str(state / "journal.db") in result.output
