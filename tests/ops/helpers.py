"""Shared helpers of the operations tests: configs, an in-process engine, a daemon process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.settings import Settings, load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.conftest import REPO

HEDGEKEEPER = [sys.executable, "-m", "hedgekeeper"]


def sim_config(
    *,
    poll_interval: float = 0.2,
    heartbeat_interval: float = 60.0,
    control: str = "port = 0",
    metrics: str = "",
    notify: str = "",
    extra: str = "",
) -> str:
    """A dry-run configuration on the sim venue: one direct and one proxy-hedged group.

    Reads are not retried and the circuit breaker never trips, so a test can make
    cycles fail and recover at once.
    """
    return f"""\
mode = "dry-run"
poll_interval = {poll_interval}
heartbeat_interval = {heartbeat_interval}
{extra}
[execution]
read_retries = 0
circuit_breaker_failures = 100000
[control]
{control}
[metrics]
{metrics}
[notify]
{notify}
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000, ETH = 3000, SOL = 150 }}
balances = {{ BTC = 1.0, ETH = 10, SOL = 100, USDT = 10000 }}
contract_sizes = {{ BTC = 0.01, ETH = 0.1 }}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["demo"]
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
[[hedges]]
name = "alts"
assets = {{ ETH = 1.0, SOL = 1.3 }}
spot_accounts = ["demo"]
instrument = "ETH/USDT:USDT"
hedge_account = "demo"
ratio = 0.8
"""


def write_config(directory: Path, text: str) -> Path:
    """``text`` as ``directory/config.toml``."""
    path = directory / "config.toml"
    path.write_text(text)
    return path


def make_engine(directory: Path, text: str) -> tuple[Engine, SimVenue, Settings]:
    """An in-process engine on the sim venue (paper orders), journal in ``directory``."""
    settings = load_settings(write_config(directory, text))
    journal = Journal(directory / "state" / "journal.db")
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal)
    return engine, sim, settings


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET ``url`` (no proxies): status and JSON body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


async def aget(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """:func:`http_get` off the event loop."""
    return await asyncio.to_thread(http_get, url, headers)


def wait_until(condition: Callable[[], Any], within: float = 15.0, what: str = "") -> Any:
    """Poll ``condition()`` until truthy (every 50 ms); fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what or condition}")
        time.sleep(0.05)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without hedgekeeper or systemd variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEDGEKEEPER_", "NOTIFY_SOCKET", "WATCHDOG_", "CREDENTIALS_DIR"))
    }
    env["PYTHONPATH"] = str(REPO / "daemon")
    env.update(extra)
    return env


class Daemon:
    """``hedgekeeper run`` in a subprocess, its stderr (JSON lines) in a file."""

    def __init__(
        self,
        directory: Path,
        config: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.command = [
            *HEDGEKEEPER,
            "run",
            "--config",
            str(config),
            "--state-dir",
            str(directory / "state"),
            *args,
        ]
        self.env = env if env is not None else clean_env()
        self.stderr_path = directory / "daemon.stderr"
        self.stdout_path = directory / "daemon.stdout"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with self.stderr_path.open("wb") as err, self.stdout_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=err, env=self.env, stdin=subprocess.DEVNULL
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def lines(self) -> list[dict[str, Any]]:
        """Every complete stderr line, parsed (raises if one is not JSON)."""
        text = self.stderr()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def find(self, event: str) -> dict[str, Any] | None:
        """The first log line with ``event``, if any yet."""
        self.check_alive()
        return next((line for line in self.lines() if line.get("event") == event), None)

    def wait_for(self, event: str, within: float = 15.0) -> dict[str, Any]:
        """Wait for the first log line with ``event``."""
        return wait_until(lambda: self.find(event), within, f"log line {event}")  # type: ignore[no-any-return]

    def port(self, event: str = "control.listening") -> int:
        """The port the daemon reports listening on."""
        return int(self.wait_for(event)["port"])

    def check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"daemon exited with {code}:\n{self.stderr()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``hedgekeeper ARGS`` in a subprocess."""
    return subprocess.run(
        [*HEDGEKEEPER, *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
    )


class Receiver:
    """A local HTTP endpoint recording JSON POST bodies: the target of apprise's ``json://``."""

    def __init__(self, delay: float = 0.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = self.rfile.read(length)
                try:
                    bodies.append(
                        {"path": self.path, "headers": dict(self.headers), **json.loads(payload)}
                    )
                except ValueError:
                    bodies.append({"path": self.path, "raw": payload.decode(errors="replace")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook", query: str = "") -> str:
        """The apprise URL that posts here."""
        return f"json://127.0.0.1:{self.port}/{path}" + (f"?{query}" if query else "")

    def titles(self) -> list[str]:
        return [str(body.get("title", "")) for body in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
