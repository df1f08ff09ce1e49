"""Reduce-only trims below the minimum notional, where the exchange accepts them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgekeeper.model import OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.emulator import Emulator

KEY, SECRET = "ro-key", "ro-secret"
PERP = "BTC/USDT:USDT"


@pytest.mark.parametrize(("dialect", "exempt"), [("binance", True), ("bybit", False)])
async def test_reduce_only_exemption_is_known_per_exchange(dialect: str, exempt: bool) -> None:
    async with Emulator(dialect, {KEY: SECRET}, prices={"BTC/USDT": 60000}) as emu:
        emu.set_futures_wallet(KEY, "10000")
        venue = CcxtVenue("ex", dialect, api_key=KEY, secret=SECRET, api_host=emu.base_url)
        try:
            market = (await venue.load_markets([PERP]))[PERP]
            assert market.reduce_only_below_min_notional is exempt
            if not exempt:
                return
            assert market.min_notional == 100
            await venue.submit_order(OrderRequest("hkro0000000001", PERP, Side.SELL,
                                                  Decimal("0.01"), OrderType.MARKET))  # fmt: skip
            # 0.001 BTC is 60 USD, under Binance's 100 USD minimum: accepted as reduce-only
            trim = await venue.submit_order(OrderRequest(
                "hkro0000000002", PERP, Side.BUY, Decimal("0.001"), OrderType.MARKET,
                reduce_only=True,
            ))  # fmt: skip
            assert trim.status is OrderStatus.FILLED
            assert emu.position(KEY, PERP).qty == Decimal("-0.009")
        finally:
            await venue.close()


async def test_position_mode_is_changed_only_when_the_config_asks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from hedgekeeper.engine import Engine
    from hedgekeeper.journal import Journal
    from hedgekeeper.logs import configure_logging
    from hedgekeeper.settings import load_settings
    from hedgekeeper.venues import build_venues

    configure_logging("error", "json")
    async with Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000}) as emu:
        emu.set_futures_wallet(KEY, "10000")
        os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY"] = KEY
        os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET"] = SECRET
        try:
            for mode_line, expect_write in (("", False), ('position_mode = "hedge"', True)):
                emu.clear_requests()
                path = tmp_path / f"c{expect_write}.toml"
                path.write_text(
                    f'mode = "testnet"\n[accounts.ex]\nexchange = "binance"\n'
                    f'api_host = "{emu.base_url}"\n{mode_line}\n[[hedges]]\nname = "b"\n'
                    "assets = { BTC = 1.0 }\nextra_holdings = { BTC = 1 }\n"
                    'instrument = "BTC/USDT:USDT"\nhedge_account = "ex"\nratio = 0.5\n'
                )
                settings = load_settings(path)
                journal = Journal(tmp_path / f"j{expect_write}.db")
                engine = Engine(settings, build_venues(settings, journal), journal)
                await engine.start()
                changed = [r for r in emu.requests if r.write and "positionSide" in r.path]
                assert bool(changed) is expect_write
                await engine.close()
                journal.close()
        finally:
            del os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY"]
            del os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET"]
