"""An allocation group against the exchange emulator: opens the synthetic sale, releases it.

The rebalancing guide's portfolio on the Binance dialect through the real ccxt path
(testnet mode): 1.2 BTC at $50,000, 8 ETH at $2,500 and 20,000 USDT is 60 % BTC
against a 50 % target, so the BTC leg shorts the $10,000 overweight (0.2 BTC, the
Binance perp trades in BTC); when BTC falls to $35,000 its effective weight drops
under 45 % and the short is bought back, reduce-only, to the remaining overweight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.emulator import Emulator
from tests.integration.daemon_proc import Daemon

KEY, SECRET = "emu-key-1", "emu-secret-1"
BTC_PERP, ETH_PERP = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator("binance", {KEY: SECRET},
                        prices={"BTC/USDT": 50000, "ETH/USDT": 2500})  # fmt: skip
    await emulator.start()
    emulator.set_balance(KEY, "BTC", "1.2")
    emulator.set_balance(KEY, "ETH", "8")
    emulator.set_balance(KEY, "USDT", "20000")
    emulator.set_futures_wallet(KEY, 20000)
    try:
        yield emulator
    finally:
        await emulator.stop()


def config(emu: Emulator, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""\
mode = "testnet"
poll_interval = 0.3
[log]
format = "json"
[control]
enabled = false
[accounts.ex]
exchange = "binance"
api_host = "{emu.base_url}"
timeout_ms = 3000
[[hedges]]
name = "rebal"
targets = {{ BTC = 0.5, ETH = 0.3, USDT = 0.2 }}
trigger = 0.05
instruments = {{ BTC = "{BTC_PERP}", ETH = "{ETH_PERP}" }}
spot_accounts = ["ex"]
hedge_account = "ex"
""")
    return path


def short(emu: Emulator, symbol: str) -> Decimal:
    return -emu.position(KEY, symbol).qty


async def test_an_allocation_group_opens_then_releases_its_hedge(
    emu: Emulator, tmp_path: Path
) -> None:
    env = {"HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY": KEY,
           "HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET": SECRET}  # fmt: skip
    daemon = Daemon(config(emu, tmp_path), tmp_path / "state", env)
    await daemon.start()
    try:
        await eventually(lambda: short(emu, BTC_PERP) == Decimal("0.2"), within=30)
        assert short(emu, ETH_PERP) == 0  # ETH is underweight: never long, nothing hedged
        opened = len(emu.orders(KEY))
        await eventually(lambda: len(daemon.events("cycle.completed")) >= 3, within=30)
        assert len(emu.orders(KEY)) == opened, "hedged to target: nothing more is traded"

        emu.set_price("BTC/USDT", 35000)  # spot 42,000 of 82,000: 42.7 % effective < 45 %
        # the overweight left is 1,000 USD = 0.028 BTC: the short is bought back to it
        await eventually(lambda: short(emu, BTC_PERP) == Decimal("0.028"), within=30)
        buys = [o for o in emu.orders(KEY) if o.side.value.lower() == "buy"]
        assert buys and all(o.reduce_only for o in buys), "a release is reduce-only"
        decided = [e for e in daemon.events("plan.decided") if e.get("group") == "rebal.BTC"]
        assert any("allocation" in e for e in decided)
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    journal = {o["client_order_id"] for o in daemon.journal_orders()}
    for order in emu.orders(KEY):
        assert order.client_id in journal, f"{order.client_id} reached the exchange unjournaled"
        assert "rebalBTC" in order.client_id
