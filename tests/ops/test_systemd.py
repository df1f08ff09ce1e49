"""systemd: sd_notify messages from a real daemon process, and the unit file's checks."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgekeeper.logs import configure_logging
from hedgekeeper.ops import Operations
from hedgekeeper.systemd import SystemdNotifier, watchdog_interval
from tests.conftest import REPO
from tests.ops.helpers import Daemon, clean_env, make_engine, sim_config, wait_until, write_config

UNIT = REPO / "deploy" / "systemd" / "hedgekeeper.service"


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's (short path: AF_UNIX allows ~108 bytes)."""
    directory = tempfile.mkdtemp(prefix="hk-sd-")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


def receive(sock: socket.socket, into: list[dict[str, str]]) -> None:
    """Drain every datagram waiting on ``sock`` into ``into`` (as KEY -> VALUE dicts)."""
    while True:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return
        into.append(dict(line.split("=", 1) for line in data.decode().splitlines()))


def test_daemon_sends_ready_status_watchdog_in_order(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, path = notify_socket
    config = write_config(tmp_path, sim_config(poll_interval=0.2))
    messages: list[dict[str, str]] = []
    daemon = Daemon(tmp_path, config, clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="5000000"))
    with daemon:

        def watchdog_after_ready() -> bool:
            receive(sock, messages)
            daemon.check_alive()
            return sum("WATCHDOG" in m for m in messages) >= 2

        wait_until(watchdog_after_ready, 20, "two WATCHDOG=1 pings")
        assert daemon.stop() == 0
    receive(sock, messages)

    ready = next(i for i, m in enumerate(messages) if m.get("READY") == "1")
    first_watchdog = next(i for i, m in enumerate(messages) if m.get("WATCHDOG") == "1")
    assert ready < first_watchdog, "no keep-alive before start-up is complete"
    assert "STATUS" in messages[ready]
    statuses = [m["STATUS"] for m in messages[ready + 1 :] if "STATUS" in m]
    assert statuses, "STATUS updates follow READY"
    assert re.match(r"dry-run, ACTIVE, cycle \d+ ok, last success \d+s ago", statuses[0])
    assert messages[-1].get("STOPPING") == "1", "STOPPING=1 on the way out"
    # Before READY only a start-up STATUS: systemd must not think we are up too early.
    assert all("WATCHDOG" not in m and "READY" not in m for m in messages[:ready])
    heartbeat_check = next(line for line in daemon.lines() if line["event"] == "systemd.watchdog")
    assert heartbeat_check["watchdog_s"] == 5.0


async def test_watchdog_is_fed_only_after_a_successful_cycle(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    configure_logging("warning", "json")
    sock, path = notify_socket
    engine, sim, _ = make_engine(tmp_path, sim_config(control="enabled = false"))
    await engine.start()
    ops = Operations(engine, engine.log, notify_socket=path)
    await ops.start()
    messages: list[dict[str, str]] = []
    try:
        receive(sock, messages)
        assert messages[-1]["READY"] == "1"
        sim.failing.add("positions")
        await engine.run_cycle()
        await engine.run_cycle()
        receive(sock, messages)
        failing = messages[1:]
        assert failing and all("WATCHDOG" not in m for m in failing), failing
        assert "with read errors" in failing[-1]["STATUS"]
        sim.failing.discard("positions")
        await engine.run_cycle()
        receive(sock, messages)
        assert messages[-1]["WATCHDOG"] == "1"
        assert ", cycle 3 ok," in messages[-1]["STATUS"]
    finally:
        await ops.stop()
        await engine.close()
        engine.journal.close()


def test_notifier_speaks_to_abstract_sockets_and_never_raises() -> None:
    name = f"hk-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1)
    try:
        notifier = SystemdNotifier("@" + name)
        assert notifier.ready("up")
        assert sock.recv(100) == b"READY=1\nSTATUS=up"
    finally:
        sock.close()
    gone = SystemdNotifier("/nonexistent/notify")
    assert not gone.watchdog() and gone.errors == 1
    assert not SystemdNotifier("").enabled


def test_watchdog_interval_reads_the_environment() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 60.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 30.0


# -- the unit file ------------------------------------------------------------------------------


def analyze_or_skip() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return tool


def runnable_unit(directory: Path) -> Path:
    """The unit with ExecStart pointing at this venv's hedgekeeper (verify checks it exists)."""
    executable = Path(sys.executable).parent / "hedgekeeper"
    if not executable.exists():
        pytest.skip(f"{executable} is missing: install the project (pip install -e .)")
    text = UNIT.read_text().replace("/opt/hedgekeeper/bin/hedgekeeper", str(executable))
    unit = directory / "hedgekeeper.service"
    unit.write_text(text)
    return unit


def test_unit_verifies(tmp_path: Path) -> None:
    tool = analyze_or_skip()
    unit = runnable_unit(tmp_path)
    result = subprocess.run(
        [tool, "verify", "--man=no", "--generators=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        # verify also audits the host's own units; only ours matters here
        if "hedgekeeper" in line
    ]
    assert result.returncode == 0 and not problems, result.stderr


def test_unit_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    tool = analyze_or_skip()
    help_text = subprocess.run([tool, "security", "--help"], capture_output=True, text=True).stdout
    if "--offline" not in help_text:
        pytest.skip("this systemd-analyze has no security --offline (systemd < 250)")
    unit = runnable_unit(tmp_path)
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0, result.stdout


def test_unit_has_the_operational_settings() -> None:
    text = UNIT.read_text()
    for setting in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StartLimitBurst=",
        "StartLimitIntervalSec=",
        "DynamicUser=yes",
        "StateDirectory=hedgekeeper",
        "ConfigurationDirectory=hedgekeeper",
        "LoadCredential=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "MemoryDenyWriteExecute=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "ProtectProc=invisible",
    ):
        assert setting in text, setting


#: Runs the daemon the way ``MemoryDenyWriteExecute=yes`` would: the kernel's PR_SET_MDWE
#: refuses writable+executable memory from here on (Linux >= 6.3).
MDWE_WRAPPER = """
import ctypes, mmap, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit(78)
except OSError:
    pass
import apprise, ccxt.async_support  # the heavier dependencies load under it too
ccxt.async_support.binance()
sys.argv = ["hedgekeeper", *sys.argv[1:]]
runpy.run_module("hedgekeeper", run_name="__main__", alter_sys=True)
"""


def test_daemon_runs_without_writable_executable_memory(tmp_path: Path) -> None:
    config = write_config(tmp_path, sim_config(metrics="port = 0"))
    daemon = Daemon(tmp_path, config)
    daemon.command = [sys.executable, "-c", MDWE_WRAPPER, *daemon.command[3:]]
    daemon.start()
    assert daemon.process is not None
    try:

        def ran_cycles_or_exited() -> bool:
            if daemon.process is not None and daemon.process.poll() is not None:
                return True
            return sum(line["event"] == "cycle.completed" for line in daemon.lines()) >= 3

        wait_until(ran_cycles_or_exited, 30, "three cycles under MDWE")
        if daemon.process.returncode == 77:
            pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
        assert daemon.process.returncode is None, daemon.stderr()[-3000:]
    finally:
        code = daemon.stop()
    assert code == 0, daemon.stderr()[-3000:]
