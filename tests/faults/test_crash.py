"""``kill -9`` of the daemon around an order, then a restart (the daemon as a process).

Between the journal write and the submit: the request never takes effect at the
exchange (held, then refused without being applied). After the restart the
journal's ``new`` order is looked up, found absent ``lookup_attempts`` times,
declared never placed, and only then does a new order go out, under a new id.

Between the submit and the acknowledgement: the exchange applied the order but
the reply never came. After the restart the order is found by its client id and
nothing is sent again.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hedgekeeper.journal import Journal
from tests.conftest import eventually
from tests.emulator import Emulator, Fault
from tests.faults.harness import KEY, SECRET, Rig, order_endpoint
from tests.integration.daemon_proc import Daemon


def config(emu: Emulator, tmp_path: Path) -> Path:
    text = f"""\
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
instrument = "BTC/USDT:USDT"
hedge_account = "ex"
ratio = 0.5
leverage = 1
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


ENV = {"HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY": KEY,
       "HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET": SECRET}  # fmt: skip


def journal_rows(state: Path) -> list[tuple[str, str]]:
    path = state / "journal.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT client_order_id, status FROM orders ORDER BY seq"))
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        db.close()


@pytest.fixture
async def sampler(emu: Emulator, tmp_path: Path) -> AsyncIterator[Rig]:
    """A rig without an in-process engine: it samples the emulator's short meanwhile."""
    rig = Rig(emu, tmp_path)

    async def watch() -> None:
        while True:
            rig._watch()
            await asyncio.sleep(0.02)

    task = asyncio.create_task(watch())
    try:
        yield rig
    finally:
        task.cancel()
        if rig.journal is not None:
            rig.journal.close()


async def crash_and_restart(emu: Emulator, tmp_path: Path, rig: Rig, fault: Fault,
                            applied: bool) -> tuple[str, Daemon]:  # fmt: skip
    path, state = config(emu, tmp_path), tmp_path / "state"
    method, endpoint = order_endpoint(emu.dialect_name, "create")
    emu.faults.add(fault, method=method, path=endpoint)
    if not applied:  # held, then refused without being applied
        emu.faults.add(Fault.http_error(503), method=method, path=endpoint)
    first = Daemon(path, state, ENV)
    await first.start()
    try:
        held = lambda: [r for r in emu.requests if r.path == endpoint and r.method == method]  # noqa: E731
        await eventually(lambda: bool(held()) and bool(journal_rows(state)), within=30)
        if applied:
            await eventually(lambda: len(emu.orders(KEY)) == 1, within=10)
        (row,) = journal_rows(state)
        assert row[1] == "new", "killed while the create is in flight: the journal says new"
        first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        await first.kill()
    finally:
        await first.kill()
    assert emu.faults.pending() == [], "the fault is gone before the restart"
    again = Daemon(path, state, ENV)
    await again.start()
    try:
        await eventually(lambda: rig.hedged() and all(s not in ("new", "unknown", "open")
                                                      for _, s in journal_rows(state)),
                         within=30)  # fmt: skip
        await eventually(lambda: len(again.events("cycle.completed")) >= 3, within=10)
        assert await again.stop() == 0
    finally:
        await again.kill()
    rig.journal = Journal(state / "journal.db")
    return row[0], again


async def test_kill_between_journal_write_and_submit(emu: Emulator, tmp_path: Path,
                                                     sampler: Rig, record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """kill -9 between journal write and submit, then restart."""
    cid, daemon = await crash_and_restart(emu, tmp_path, sampler, Fault.latency(30),
                                          applied=False)  # fmt: skip
    statuses = [(o.request.client_order_id, o.status.value) for o in sampler.journal.orders()]  # type: ignore[union-attr]
    assert statuses[0] == (cid, "rejected"), "declared never placed after the look-ups"
    assert [s for _, s in statuses] == ["rejected", "filled"]
    assert [o.client_id for o in emu.orders(KEY)] == [statuses[1][0]], "one order, new id"
    misses = len(daemon.events("order.not_found"))
    record(f"restart: not found x{misses + 1} -> never placed -> one new order under a new id")
    sampler.check_all()


async def test_kill_between_submit_and_acknowledgement(emu: Emulator, tmp_path: Path,
                                                       sampler: Rig, record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """kill -9 between submit and acknowledgement, then restart."""
    cid, _ = await crash_and_restart(emu, tmp_path, sampler, Fault.accept_then_timeout(30),
                                     applied=True)  # fmt: skip
    statuses = [(o.request.client_order_id, o.status.value) for o in sampler.journal.orders()]  # type: ignore[union-attr]
    assert statuses == [(cid, "filled")], "found by its client id at start-up, not resent"
    assert len(emu.orders(KEY)) == 1
    record("restart: found by look-up (filled), nothing sent again")
    sampler.check_all()
