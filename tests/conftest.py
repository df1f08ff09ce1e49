"""Shared test helpers: paths, the ``eventually`` waiter, config builders."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

#: The configuration other tools rely on (issue 2's contract), verbatim.
CONTRACT_TOML = """\
mode = "dry-run"
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = { BTC = 70000, ETH = 3000 }
balances = { BTC = 1.0, USDT = 10000 }
contract_sizes = { BTC = 0.01, ETH = 0.1 }   # linear perps BTC/USDT:USDT, ETH/USDT:USDT
inverse = { BTC = 100 }                       # inverse perp BTC/USD:BTC, 100 USD a contract
positions = { "BTC/USDT:USDT" = 0 }           # contracts, negative = short
volatility = 0.0
seed = 1
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }          # asset -> beta
spot_accounts = ["demo"]
extra_holdings = {}             # e.g. { BTC = 0.5 } held off-exchange
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
tolerance = 0.02
"""


def shared_or_skip(*parts: str) -> Path:
    """A path under ../shared, or skip the test when a fresh clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} is absent: ../shared (fixtures and market data) is not beside the repo"
        )
    return path


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until ``condition()`` is true, polling; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s: {condition}")
        await asyncio.sleep(interval)


@pytest.fixture
def contract_config(tmp_path: Path) -> Path:
    """The contract configuration written to a file."""
    path = tmp_path / "contract.toml"
    path.write_text(CONTRACT_TOML)
    return path


#: Ports a hedgekeeper service on this machine listens on by default (control, metrics).
DEFAULT_SERVICE_PORTS = (8765, 9108)


@pytest.fixture(scope="session", autouse=True)
def default_ports_held() -> Iterator[list[int]]:
    """Hold the default control and metrics ports for the whole suite.

    A hedgekeeper service may run beside the tests (issue 10): a test that binds a default
    port instead of port 0 then fails here, every time, not only on that machine. A port
    already taken (by such a service) is left to its owner: the effect is the same.
    """
    import threading

    held: list[socket.socket] = []
    wanted = list(DEFAULT_SERVICE_PORTS)
    done = threading.Event()

    def take() -> None:
        for port in list(wanted):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind(("127.0.0.1", port))
                listener.listen(8)
            except OSError:
                listener.close()
                continue
            held.append(listener)
            wanted.remove(port)

    take()

    def keep_trying() -> None:
        # Another test session on this machine may hold a port now and let go of it later:
        # take it then, so the ports stay taken for the whole of this suite.
        while wanted and not done.wait(0.2):
            take()

    watcher = threading.Thread(target=keep_trying, daemon=True)
    watcher.start()
    try:
        yield [port for port in DEFAULT_SERVICE_PORTS if port not in wanted]
    finally:
        done.set()
        watcher.join(timeout=2)
        for listener in held:
            listener.close()


@pytest.fixture(autouse=True, scope="session")
def _private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every command a test runs without --state-dir keeps its state under a temp dir.

    The default state directory is ``$XDG_STATE_HOME/hedgekeeper/<instance>``; set here
    (and inherited by subprocesses) so that no test touches the user's real state.
    """
    import os

    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    os.environ.pop("STATE_DIRECTORY", None)
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous
