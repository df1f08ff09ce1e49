"""In JSON format every line on stderr is JSON: config errors, warnings, crashes, log lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.helpers import Daemon, clean_env, cli, sim_config, write_config


def json_lines(stderr: str) -> list[dict[str, object]]:
    """Every stderr line parsed; fails on the first that is not one JSON object."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            pytest.fail(f"not JSON: {line!r}\nin:\n{stderr}")
        assert isinstance(value, dict) and isinstance(value["event"], str), line
        assert "level" in value and "timestamp" in value, line
        parsed.append(value)
    return parsed


@pytest.mark.parametrize("how", ["env", "file", "auto"])
def test_config_errors_are_one_json_line(tmp_path: Path, how: str) -> None:
    text = sim_config().replace("ratio = 0.5", "ratio = 5\ntoleranse = 0.1")
    env = clean_env()
    if how == "env":
        env["HEDGEKEEPER_LOG__FORMAT"] = "json"
    elif how == "file":
        text = text.replace("[control]", '[log]\nformat = "json"\n[control]')
    # "auto": stderr is a pipe, not a terminal, so auto means JSON too
    config = write_config(tmp_path, text)
    commands = [["check"], ["plan", "--state-dir", str(tmp_path)], ["run"]]
    for command in commands if how == "env" else commands[:1]:
        result = cli(*command, "--config", str(config), env=env)
        assert result.returncode == 2, result.stderr
        (line,) = json_lines(result.stderr)
        assert line["event"] == "config.invalid" and line["level"] == "error"
        assert line["mode"] == "dry-run"
        errors = line["errors"]
        assert isinstance(errors, list)
        assert "hedges.0.toleranse: unknown key; did you mean hedges.0.tolerance?" in errors
        assert "0.1" not in " ".join(errors)  # an unknown key's value is never shown


def test_unreadable_toml_is_a_json_line_too(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mode = = 'x'\n")
    result = cli("check", "--config", str(config))
    assert result.returncode == 2
    (line,) = json_lines(result.stderr)
    assert "cannot read configuration" in line["errors"][0]  # type: ignore[index]


def test_console_format_keeps_readable_text(tmp_path: Path) -> None:
    config = write_config(tmp_path, sim_config().replace("ratio = 0.5", "ratioo = 0.5"))
    result = cli("check", "--config", str(config), env=clean_env(HEDGEKEEPER_LOG__FORMAT="console"))
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error:\n  ")
    assert "hedges.0.ratioo: unknown key; did you mean hedges.0.ratio?" in result.stderr


def test_a_daemon_with_a_readable_secret_writes_only_json(tmp_path: Path) -> None:
    """The secrets warning, config.loaded and the cycle lines of a real run: all JSON."""
    text = sim_config(control="enabled = false").replace(
        'exchange = "sim"', 'exchange = "sim"\nsecret = "abcd1234efgh"'
    )
    config = write_config(tmp_path, text)
    config.chmod(0o644)
    with Daemon(tmp_path, config) as daemon:
        daemon.wait_for("plan.decided")
    lines = json_lines(daemon.stderr())
    assert lines[0]["event"] == "config.readable_secrets" and lines[0]["level"] == "warning"
    assert "chmod 600" in str(lines[0]["message"])
    loaded = next(line for line in lines if line["event"] == "config.loaded")
    assert isinstance(loaded["config_hash"], str) and len(loaded["config_hash"]) == 16
    # only what differs from the defaults: poll_interval is set, funding_poll_interval is not
    config_part = loaded["config"]
    assert isinstance(config_part, dict)
    assert config_part["poll_interval"] == 0.2 and "funding_poll_interval" not in config_part
    assert "paper" not in config_part and config_part["accounts"]["demo"]["secret"] == "***"
    assert len(json.dumps(loaded)) < 2000
    assert "abcd1234efgh" not in daemon.stderr()


def test_config_loaded_gives_the_full_config_at_debug(tmp_path: Path) -> None:
    config = write_config(tmp_path, sim_config(control="enabled = false"))
    env = clean_env(HEDGEKEEPER_LOG__LEVEL="debug")
    with Daemon(tmp_path, config, env=env) as daemon:
        effective = daemon.wait_for("config.effective")
    loaded = next(line for line in daemon.lines() if line["event"] == "config.loaded")
    assert effective["config_hash"] == loaded["config_hash"]
    assert effective["config"]["paper"]["taker_fee"] == "0.0005"  # defaults included
    assert effective["config"]["funding_poll_interval"] == 900.0


def test_a_crash_and_library_warnings_are_json_lines() -> None:
    program = (
        "import logging, warnings\n"
        "from hedgekeeper.logs import configure_logging\n"
        "from hedgekeeper.ops import route_stdlib_logging\n"
        "from hedgekeeper.stderr_lines import use_format\n"
        "use_format('json', mode='dry-run')\n"
        "configure_logging('info', 'json', mode='dry-run')\n"
        "route_stdlib_logging('info')\n"
        "warnings.warn('old api', DeprecationWarning, stacklevel=1)\n"
        "logging.getLogger('somelib').warning('careful')\n"
        "raise RuntimeError('a bug')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", program],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    lines = json_lines(result.stderr)
    assert [line["event"] for line in lines][-1] == "daemon.crashed"
    assert "RuntimeError: a bug" in str(lines[-1]["exception"])
    assert any("careful" in str(line.get("message")) for line in lines)
    assert any("old api" in str(line.get("message")) for line in lines)
