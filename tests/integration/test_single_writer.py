"""One writer per state directory, and read-only commands that cannot write — as real
processes against the emulator, on both dialects.

1. ``hedgekeeper plan`` beside a running testnet daemon with a working order: the plan
   prints, and nothing changes at the exchange or in the journal (round 1's ``plan``
   cancelled the daemon's orders as "orphans").
2. A second ``hedgekeeper run`` on the same state directory exits 2 naming the holder
   (round 1's second daemon doubled the hedge).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

from tests.conftest import REPO, eventually
from tests.emulator import Emulator
from tests.integration.daemon_proc import Daemon
from tests.integration.test_daemon_emulator import KEY, config, credentials, emu, short

__all__ = ["emu"]  # the dialect-parametrised emulator fixture

MAKER = {"execution": "maker", "reprice_after": 600.0, "deadline": 600.0, "leverage": 3}


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    import os

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedgekeeper", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "daemon"), **env},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _journal_digest(state: Path) -> str:
    import sqlite3

    db = sqlite3.connect(f"{(state / 'journal.db').resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT client_order_id, status, filled FROM orders ORDER BY seq")
        return hashlib.sha256(json.dumps(rows.fetchall()).encode()).hexdigest()
    finally:
        db.close()


async def test_plan_beside_a_running_daemon_changes_nothing(emu: Emulator,
                                                            tmp_path: Path) -> None:  # fmt: skip
    path = config(emu, "testnet", emu.dialect_name, tmp_path, **MAKER)
    state = tmp_path / "state"
    env = credentials("TESTNET_")
    daemon = Daemon(path, state, env)
    await daemon.start()
    try:
        try:
            await eventually(lambda: len(emu.open_orders(KEY)) == 1, within=30)
        except AssertionError:
            raise AssertionError(daemon.log_tail()) from None
        (working,) = emu.open_orders(KEY)
        await eventually(lambda: len(daemon.events("cycle.completed")) >= 2, within=30)
        writes_before = len(emu.private_writes())
        digest = _journal_digest(state)
        code, out, err = await _cli("plan", "--config", str(path), "--state-dir", str(state),
                                    "--json", env=env)  # fmt: skip
        assert code == 0, err
        plan = json.loads(out)
        assert plan["mode"] == "testnet" and plan["groups"][0]["name"] == "btc"
        assert [o.client_id for o in emu.open_orders(KEY)] == [working.client_id]
        # The daemon is idle (its maker order rests, far from repricing): any private
        # write in this window would be the plan's.
        writes = [(r.method, r.path) for r in emu.private_writes()[writes_before:]]
        assert writes == [], f"writes while plan ran: {writes}"
        assert _journal_digest(state) == digest, "plan wrote to the daemon's journal"
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()


async def test_a_second_run_on_the_same_state_dir_exits_2(emu: Emulator, tmp_path: Path) -> None:
    path = config(emu, "testnet", emu.dialect_name, tmp_path)
    state = tmp_path / "state"
    env = credentials("TESTNET_")
    first = Daemon(path, state, env)
    await first.start()
    try:
        await eventually(lambda: short(emu) > 0, within=30)
        orders = len(emu.orders(KEY))
        code, _out, err = await _cli("run", "--config", str(path), "--state-dir", str(state),
                                     env=env)  # fmt: skip
        assert code == 2, err
        assert first.proc is not None and f"pid {first.proc.pid}" in err
        assert str(path) in err and "in use" in err
        await asyncio.sleep(1.0)
        assert len(emu.orders(KEY)) == orders, "the refused daemon sent nothing"
        assert await first.stop() == 0
    finally:
        await first.kill()
    # Once the first has stopped, the state directory is free again.
    again = Daemon(path, state, env)
    await again.start()
    try:
        await eventually(lambda: len(again.events("cycle.completed")) >= 1, within=30)
        assert await again.stop() == 0
    finally:
        await again.kill()
