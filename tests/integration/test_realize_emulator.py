"""``realize`` through the real ccxt path against the exchange emulator (Binance dialect,
testnet): the spot sell goes to ``/api/v3/order``, the reduce-only buy-back to
``/fapi/v1/order``, both under client ids the journal wrote first; a dialect without
spot orders is refused before anything is journaled."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import OrderStatus, Side
from hedgekeeper.realize import RealizeRefused
from hedgekeeper.settings import load_settings
from hedgekeeper.venues import build_venues
from tests.emulator import Emulator

KEY, SECRET = "rz-key", "rz-secret"
PERP = "BTC/USDT:USDT"


def engine_for(emu: Emulator, tmp_path: Path, exchange: str) -> Engine:
    path = tmp_path / "c.toml"
    path.write_text(f"""\
mode = "testnet"
[accounts.ex]
exchange = "{exchange}"
api_host = "{emu.base_url}"
timeout_ms = 3000
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["ex"]
instrument = "{PERP}"
hedge_account = "ex"
ratio = 1.0
""")
    settings = load_settings(path)
    journal = Journal(tmp_path / "journal.db")
    return Engine(settings, build_venues(settings, journal), journal)


@pytest.fixture(autouse=True)
def testnet_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's keys as the account's testnet keys; logs kept off the output."""
    configure_logging("warning", "json", stream=io.StringIO())
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY", KEY)
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET", SECRET)


async def test_realize_on_the_binance_dialect(tmp_path: Path) -> None:
    async with Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000}) as emu:
        emu.set_balance(KEY, "BTC", "0.5")
        emu.set_balance(KEY, "USDT", "0")
        emu.set_futures_wallet(KEY, "10000")
        engine = engine_for(emu, tmp_path, "binance")
        try:
            await engine.start()
            await engine.run_cycle()
            assert emu.position(KEY, PERP).qty == Decimal("-0.5")

            engine.realizer.request({"group": "btc"}, "test", "realize on binance")
            report = await engine.run_cycle()
            assert report.ok, [d.as_dict() for d in report.decisions]
            assert emu.position(KEY, PERP).qty == 0
            btc_free, _ = emu.balances(KEY)["BTC"]
            usdt_free, _ = emu.balances(KEY)["USDT"]
            assert btc_free == 0 and usdt_free > Decimal(29000)
            legs = [o for o in engine.journal.orders("btc") if o.reason.startswith("realize")]
            assert [(o.request.symbol, o.request.side, o.request.reduce_only, o.status)
                    for o in legs] == [
                ("BTC/USDT", Side.SELL, False, OrderStatus.FILLED),
                (PERP, Side.BUY, True, OrderStatus.FILLED),
            ]  # fmt: skip
            journaled = {o.request.client_order_id for o in engine.journal.orders()}
            for order in emu.orders(KEY):
                assert order.client_id in journaled, f"{order.client_id} was not journaled"
            paths = [r.path for r in emu.private_writes() if r.path.endswith("/order")]
            assert paths[-2:] == ["/api/v3/order", "/fapi/v1/order"]
            assert engine.journal.operation("realize:btc") is None
        finally:
            await engine.close()
            engine.journal.close()


async def test_a_dialect_without_spot_orders_is_refused(tmp_path: Path) -> None:
    async with Emulator("bybit", {KEY: SECRET}, prices={"BTC/USDT": 60000}) as emu:
        emu.set_balance(KEY, "BTC", "0.5")
        engine = engine_for(emu, tmp_path, "bybit")
        try:
            await engine.start()
            with pytest.raises(RealizeRefused, match=r"^accounts\.ex: .*cannot place spot"):
                engine.realizer.request({"group": "btc"}, "test", "bybit")
            assert engine.journal.operation("realize:btc") is None
        finally:
            await engine.close()
            engine.journal.close()
