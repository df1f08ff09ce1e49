"""The whole daemon, as a subprocess, against the local exchange emulator.

Testnet mode speaks the real REST dialects (Binance spot + USDⓈ-M, Bybit v5)
through ccxt; ``api_host`` points every API URL at the emulator on loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, eventually
from tests.emulator import Emulator
from tests.integration.daemon_proc import Daemon

KEY, SECRET = "emu-key-1", "emu-secret-1"
PERP = "BTC/USDT:USDT"


def config(emu: Emulator | str, mode: str, exchange: str, tmp_path: Path, *,
           control: str = "enabled = false", **hedge: Any) -> Path:  # fmt: skip
    """A one-group config on the emulator (or on a URL where one will listen)."""
    url = emu if isinstance(emu, str) else emu.base_url
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in hedge.items())
    text = f"""\
mode = "{mode}"
poll_interval = 0.3
[log]
format = "json"
[control]
{control}
[accounts.ex]
exchange = "{exchange}"
api_host = "{url}"
timeout_ms = 3000
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["ex"]
instrument = "{PERP}"
hedge_account = "ex"
ratio = 0.5
tolerance = 0.02
{extra}"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def credentials(prefix: str) -> dict[str, str]:
    return {f"HEDGEKEEPER_ACCOUNTS__EX__{prefix}API_KEY": KEY,
            f"HEDGEKEEPER_ACCOUNTS__EX__{prefix}SECRET": SECRET}  # fmt: skip


@pytest.fixture(params=["binance", "bybit"])
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    emulator = Emulator(request.param, {KEY: SECRET}, prices={"BTC/USDT": 60000})
    await emulator.start()
    emulator.set_balance(KEY, "BTC", "1.0")
    emulator.set_balance(KEY, "USDT", "20000")
    emulator.set_futures_wallet(KEY, 20000)
    try:
        yield emulator
    finally:
        await emulator.stop()


def short(emu: Emulator) -> Decimal:
    return -emu.position(KEY, PERP).qty


async def test_testnet_hedges_trims_restarts_and_journals_every_order(
    emu: Emulator, tmp_path: Path
) -> None:
    path = config(emu, "testnet", emu.dialect_name, tmp_path, leverage=3, margin_mode="cross")
    state = tmp_path / "state"
    daemon = Daemon(path, state, credentials("TESTNET_"))
    await daemon.start()
    try:
        await eventually(lambda: short(emu) == Decimal("0.5"), within=30)
        # leverage was set through the exchange's own endpoint before the first order
        leverage_calls = [r for r in emu.requests if "leverage" in r.path.lower() and r.write]
        assert leverage_calls and leverage_calls[0].time_ms <= emu.orders(KEY)[0].created_ms
        emu.set_balance(KEY, "BTC", "0.6")  # the user sold some spot: trim to 0.3
        await eventually(lambda: short(emu) == Decimal("0.3"), within=30)
        trims = [o for o in emu.orders(KEY) if o.side.value.lower() == "buy"]
        assert trims and all(o.reduce_only for o in trims), "a trim is reduce-only"
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()

    before = len(emu.orders(KEY))
    again = Daemon(path, state, credentials("TESTNET_"))
    await again.start()
    try:
        await eventually(lambda: len(again.events("cycle.completed")) >= 5, within=30)
        assert len(emu.orders(KEY)) == before, "nothing is ordered again after a restart"
        assert short(emu) == Decimal("0.3")
        assert await again.stop() == 0
    finally:
        await again.kill()

    journal = {o["client_order_id"]: o for o in again.journal_orders()}
    for order in emu.orders(KEY):
        assert order.client_id in journal, f"{order.client_id} reached the exchange unjournaled"
    assert len({o.client_id for o in emu.orders(KEY)}) == len(emu.orders(KEY))


async def test_testnet_counts_the_hedges_funding_once_across_restarts(
    emu: Emulator, tmp_path: Path
) -> None:
    path = config(emu, "testnet", emu.dialect_name, tmp_path)
    path.write_text("funding_poll_interval = 0.5\n" + path.read_text())
    state = tmp_path / "state"
    daemon = Daemon(path, state, credentials("TESTNET_"))
    await daemon.start()
    try:
        await eventually(lambda: short(emu) == Decimal("0.5"), within=30)
        emu.settle_funding(PERP, "0.0001")  # short 30,000 USD: receives 3 USDT
        await eventually(lambda: bool(daemon.events("funding.settled")), within=30)
        [settled] = daemon.events("funding.settled")
        assert (settled["group"], settled["amount"], settled["amount_usd"]) == ("btc", "3", "3")
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()

    again = Daemon(path, state, credentials("TESTNET_"))
    await again.start()
    try:
        # Two funding reads later (the first reaches an hour back): nothing new.
        await eventually(lambda: len(again.events("cycle.completed")) >= 6, within=30)
        assert again.events("funding.settled") == []
        assert await again.stop() == 0
    finally:
        await again.kill()
    [row] = again.journal_funding()
    assert (row["group_name"], Decimal(row["amount"]), row["asset"]) == ("btc", 3, "USDT")


async def test_dry_run_hedges_real_balances_with_paper_orders_and_writes_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    path = config(emu, "dry-run", emu.dialect_name, tmp_path)
    daemon = Daemon(path, tmp_path / "state", credentials(""))
    await daemon.start()
    try:
        await eventually(lambda: len(daemon.events("order.filled")) >= 1, within=30)
        emu.set_balance(KEY, "BTC", "0.6")
        await eventually(
            lambda: any(e.get("side") == "buy" for e in daemon.events("order.filled")), within=30
        )
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    assert emu.private_writes() == [], "dry-run must never call a private write endpoint"
    assert emu.orders(KEY) == []
    assert short(emu) == 0
    filled = daemon.events("order.filled")
    assert filled[0]["side"] == "sell" and Decimal(filled[0]["contracts"]) == Decimal("0.5")
    assert any(r.private for r in emu.requests), "real balances were read with the keys"


async def test_dry_run_without_keys_uses_public_data_and_extra_holdings(
    emu: Emulator, tmp_path: Path
) -> None:
    path = config(emu, "dry-run", emu.dialect_name, tmp_path)
    text = path.read_text().replace('spot_accounts = ["ex"]', "extra_holdings = { BTC = 2 }")
    path.write_text(text)
    daemon = Daemon(path, tmp_path / "state")
    await daemon.start()
    try:
        await eventually(lambda: len(daemon.events("order.filled")) >= 1, within=30)
        assert await daemon.stop(signal.SIGINT) == 0
    finally:
        await daemon.kill()
    assert not any(r.private for r in emu.requests), "no keys: public endpoints only"
    assert Decimal(daemon.events("order.filled")[0]["contracts"]) == Decimal("1")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedgekeeper", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "daemon"), **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("exchange", ["mexc", "kraken"])
def test_testnet_is_refused_where_the_exchange_has_none(tmp_path: Path, exchange: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'mode = "testnet"\n[accounts.ex]\nexchange = "{exchange}"\n[[hedges]]\nname = "b"\n'
        'assets = { BTC = 1.0 }\nextra_holdings = { BTC = 1 }\ninstrument = "BTC/USDT:USDT"\n'
        'hedge_account = "ex"\nratio = 0.5\n'
    )
    result = run_cli("run", "--config", str(path), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2, result.stderr
    assert "accounts.ex.exchange" in result.stderr
    assert "binance" in result.stderr and "bybit" in result.stderr  # the supported ones
    assert "Traceback" not in result.stderr


async def test_live_refuses_a_key_that_can_withdraw(emu: Emulator, tmp_path: Path) -> None:
    emu.set_permissions(KEY, withdraw=True)
    path = config(emu, "live", emu.dialect_name, tmp_path)
    daemon = Daemon(path, tmp_path / "state", credentials(""), extra_args=("--live",))
    await daemon.start()
    assert daemon.proc is not None
    code = await asyncio.wait_for(daemon.proc.wait(), 60)
    await daemon.stop()
    assert code == 2, daemon.log_tail()
    assert "can withdraw" in "\n".join(daemon.raw)
    assert emu.private_writes() == [], "refused before any order or setting"
    # the same key is fine once the operator says so explicitly
    path.write_text(
        path.read_text().replace("api_host", "allow_withdraw_permission = true\napi_host")
    )
    allowed = Daemon(path, tmp_path / "state", credentials(""), extra_args=("--live",))
    await allowed.start()
    try:
        await eventually(lambda: short(emu) == Decimal("0.5"), within=30)
        assert await allowed.stop() == 0
    finally:
        await allowed.kill()
