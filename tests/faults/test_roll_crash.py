"""``kill -9`` between the two legs of a roll, then a restart, on both emulator dialects.

The emulator lists two BTC linear futures besides the perpetual: one delivering in
two days (inside ``roll_days_before``) where the short is held, and one in forty
days. The daemon (a real process, the real ccxt path) starts the roll at once:
the new leg fills, the close of the old one is held by the exchange and the
daemon is killed while the journal says ``new``. On restart the held close is
found never placed, and the roll completes from the positions: the old leg is
closed, the new one holds the hedge, and the journal records the roll as done.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.emulator import Emulator, Fault
from tests.emulator.markets import dated_markets, default_markets
from tests.faults.harness import KEY, SECRET, order_endpoint
from tests.faults.test_crash import ENV, journal_rows
from tests.integration.daemon_proc import Daemon

NOW = datetime.now(UTC)


@pytest.fixture(params=["binance", "bybit"])
async def dated_emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    dialect = request.param
    near, far = dated_markets(dialect, NOW + timedelta(days=2), NOW + timedelta(days=40))
    emulator = Emulator(
        dialect, {KEY: SECRET}, prices={"BTC/USDT": 60000},
        markets=[*default_markets(dialect), near, far], seed=7,
    )  # fmt: skip
    await emulator.start()
    emulator.set_balance(KEY, "BTC", "1.0")
    emulator.set_balance(KEY, "USDT", "50000")
    emulator.set_futures_wallet(KEY, 500000)
    try:
        yield emulator
    finally:
        await emulator.stop()


def config(emu: Emulator, tmp_path: Path, near: str, far: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""\
mode = "testnet"
poll_interval = 0.3
[log]
format = "json"
level = "info"
[control]
enabled = false
[execution]
max_orders_per_minute = 1000
lookup_attempts = 3
unknown_settle_seconds = 2
[accounts.ex]
exchange = "{emu.dialect_name}"
api_host = "{emu.base_url}"
rate_limit = false
timeout_ms = 20000
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["ex"]
instrument = "{near}"
roll_to = "{far}"
hedge_account = "ex"
ratio = 0.5
leverage = 1
""")
    return path


def roll_actions(state: Path) -> list[str]:
    db = sqlite3.connect(state / "journal.db")
    try:
        return [a for (a,) in db.execute("SELECT action FROM operator_actions ORDER BY id")
                if a.startswith("roll.")]  # fmt: skip
    finally:
        db.close()


async def test_kill_between_the_legs_of_a_roll_completes_on_restart(
    dated_emu: Emulator, tmp_path: Path
) -> None:
    emu = dated_emu
    near, far = (m.symbol for m in emu.engine.markets.values() if m.expiry_ms is not None)
    emu.set_position(KEY, near, "-0.5", 60000)  # the hedge, held on the expiring contract
    path, state = config(emu, tmp_path, near, far), tmp_path / "state"
    method, endpoint = order_endpoint(emu.dialect_name, "create")
    # The first create (the new leg) goes through; the second (closing the old leg)
    # is held, then refused without being applied.
    emu.faults.add(Fault.latency(30), method=method, path=endpoint, skip=1)
    emu.faults.add(Fault.http_error(503), method=method, path=endpoint, skip=1)
    short = lambda symbol: -emu.position(KEY, symbol).qty  # noqa: E731

    first = Daemon(path, state, ENV)
    await first.start()
    try:
        creates = lambda: [r for r in emu.requests if r.path == endpoint and r.method == method]  # noqa: E731
        await eventually(lambda: len(creates()) >= 2 and len(journal_rows(state)) >= 2, within=30)
        rows = journal_rows(state)
        assert [s for _, s in rows] == ["filled", "new"], "killed with the close leg in flight"
        assert (short(near), short(far)) == (Decimal("0.5"), Decimal("0.5"))
        first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    finally:
        await first.kill()
    assert roll_actions(state) == ["roll.started"]

    again = Daemon(path, state, ENV)
    await again.start()
    try:
        await eventually(lambda: short(near) == 0 and "roll.done" in roll_actions(state), within=40)
        await eventually(lambda: len(again.events("cycle.completed")) >= 3, within=15)
        assert await again.stop() == 0
    finally:
        await again.kill()

    assert Decimal("0.49") <= short(far) <= Decimal("0.51")  # one hedged position
    assert roll_actions(state) == ["roll.started", "roll.done"]
    statuses = [s for _, s in journal_rows(state)]
    assert statuses[:2] == ["filled", "rejected"], "the held close was never placed"
    assert all(s in ("filled", "rejected", "canceled") for s in statuses)
