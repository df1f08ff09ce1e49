"""Tests and the demo share the machine with a hedgekeeper service on the default ports."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_SERVICE_PORTS, REPO
from tests.ops.helpers import Daemon, clean_env, cli, sim_config, write_config


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_suite_runs_with_the_default_ports_taken() -> None:
    """The session fixture (tests/conftest.py) holds the default control and metrics
    ports, as a service would (or leaves them to the service that holds them)."""
    for port in DEFAULT_SERVICE_PORTS:
        assert listening(port), f"nothing holds 127.0.0.1:{port} during the suite"


def test_a_daemon_on_a_taken_port_says_what_to_change(tmp_path: Path) -> None:
    # A port this test takes itself (bound to port 0): the service's stand-in.
    with socket.socket() as service:
        service.bind(("127.0.0.1", 0))
        service.listen(1)
        taken = service.getsockname()[1]
        config = write_config(tmp_path, sim_config(control=f"port = {taken}"))
        result = cli("run", "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 1
    failed = [json.loads(line) for line in result.stderr.splitlines()][-2:]
    line = next(line for line in failed if line["event"] == "daemon.failed")
    assert str(taken) in line["error"] or "in use" in line["error"]
    assert "HEDGEKEEPER_CONTROL__PORT=0" in line["hint"] and "CONTROL_PORT" in line["hint"]
    # port 0 from the environment: the same config runs beside the service
    env = clean_env(HEDGEKEEPER_CONTROL__PORT="0")
    with Daemon(tmp_path, config, env=env) as daemon:
        assert daemon.port() != taken


def make_dry_run(*args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run([make, "-n", "-B", "-C", str(REPO), *args], capture_output=True,
                            text=True, timeout=30, env=clean_env())  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_installs_the_runtime_only_and_takes_a_control_port() -> None:
    run = make_dry_run("run", "CONTROL_PORT=8799")
    installs = [line for line in run.splitlines() if "pip install" in line]
    assert installs and all("[dev]" not in line for line in installs)
    assert "HEDGEKEEPER_CONTROL__PORT=8799" in run
    token = re.search(r"HEDGEKEEPER_CONTROL__TOKEN=(\S+)", run)
    assert token and len(token.group(1)) >= 16 and token.group(1) in run.split("token", 1)[1]
    test = make_dry_run("test")
    assert any("pip install" in line and ".[dev]" in line for line in test.splitlines())
