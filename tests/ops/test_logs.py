"""The log recipes: every stderr line is one JSON object that ``jq`` can filter."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.ops.helpers import Daemon, sim_config, wait_until, write_config


@pytest.fixture(scope="module")
def daemon_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, int]:
    """A daemon's stderr after a few cycles and heartbeats, its stop time and exit code."""
    directory = tmp_path_factory.mktemp("logs")
    config = write_config(
        directory, sim_config(heartbeat_interval=1.0, extra="", control="enabled = false")
    )
    daemon = Daemon(directory, config)
    daemon.start()
    try:
        wait_until(lambda: sum(line["event"] == "daemon.heartbeat" for line in daemon.lines()) >= 3)
    finally:
        started = time.monotonic()
        code = daemon.stop()
        stopped_in = time.monotonic() - started
    return daemon.stderr_path, stopped_in, code


def test_every_line_is_json_with_event_and_mode(daemon_log: tuple[Path, float, int]) -> None:
    path, stopped_in, code = daemon_log
    lines = path.read_text().splitlines()
    assert len(lines) > 10
    parsed = [json.loads(line) for line in lines]  # each line on its own is valid JSON
    assert all(isinstance(line["event"], str) and "." in line["event"] for line in parsed)
    assert all(line["mode"] == "dry-run" for line in parsed)
    decisions = [line for line in parsed if line["event"] == "plan.decided"]
    assert decisions and all(isinstance(d["cycle"], int) and d["group"] for d in decisions)
    fills = [line for line in parsed if line["event"] == "order.filled"]
    assert fills and all(f["cycle"] and f["group"] and f["client_order_id"] for f in fills)
    assert code == 0 and stopped_in < 5.0, "SIGTERM: exit 0 within 5 seconds"
    assert parsed[-1]["event"] == "daemon.stopped"


def test_heartbeat_lines(daemon_log: tuple[Path, float, int]) -> None:
    path, _, _ = daemon_log
    beats = [
        json.loads(line) for line in path.read_text().splitlines() if '"daemon.heartbeat"' in line
    ]
    assert len(beats) >= 3
    for beat in beats:
        assert beat["mode"] == "dry-run" and beat["trading_state"] == "ACTIVE"
        assert beat["cycles_run"] >= 1 and beat["healthy"] is True
        assert 0 <= beat["last_cycle_age_s"] < 5 and beat["last_success_age_s"] is not None
    assert beats[-1]["cycles_run"] > beats[0]["cycles_run"]


def test_jq_recipes_work(daemon_log: tuple[Path, float, int]) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (Debian package jq)")
    path, _, _ = daemon_log
    text = path.read_text()

    def run(program: str) -> list[str]:
        result = subprocess.run(
            [jq, "-rc", program], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    # The recipes of docs/operations.md, on what journalctl -o cat would print.
    assert len(run(".")) == len(text.splitlines())
    decided = run('select(.event == "plan.decided") | {cycle, group, action, reason}')
    assert decided and all(json.loads(row)["cycle"] is not None for row in decided)
    assert run('select(.level == "error")') == []
    fills = run('select(.event == "order.filled") | [.cycle, .group, .side, .contracts] | @tsv')
    assert fills and all(len(row.split("\t")) == 4 for row in fills)
