"""Past bars for estimated betas through the real ccxt path: ``fetch_ohlcv`` on Binance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.emulator import Emulator
from tests.emulator.binance_history import history_of

KEY, SECRET = "hk-test-key", "hk-test-secret"
HOUR = 3_600_000
START = 1_759_276_800_000  # 2025-10-01 00:00 UTC


@pytest.fixture
async def venue() -> AsyncIterator[tuple[Any, CcxtVenue]]:
    emu = Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000, "ETH/USDT": 3000})
    await emu.start()
    history = history_of(emu)
    history.klines[("spot", "ETHUSDT", "1h")] = [
        (START + i * HOUR, str(3000 + i)) for i in range(900)]  # fmt: skip
    history.klines[("perp", "BTCUSDT", "1h")] = [
        (START + i * HOUR, str(60000 + 10 * i)) for i in range(900)]  # fmt: skip
    async with aiohttp.ClientSession() as session:
        made = CcxtVenue("emu", "binance", api_key=KEY, secret=SECRET, api_host=emu.base_url,
                         session=session)  # fmt: skip
        made.exchange.enableRateLimit = False
        try:
            yield emu, made
        finally:
            await made.close()
            await emu.stop()


async def test_fetch_closes_reads_the_latest_bars_of_spot_and_perp(venue) -> None:
    emu, ccxt_venue = venue
    spot = await ccxt_venue.fetch_closes("ETH/USDT", "1h", 721)
    perp = await ccxt_venue.fetch_closes("BTC/USDT:USDT", "1h", 721)
    assert len(spot) == len(perp) == 721
    assert spot[-1] == (START + 899 * HOUR, Decimal(3899))  # the latest bar, oldest first
    assert spot[0][0] == START + 179 * HOUR
    assert perp[-1] == (START + 899 * HOUR, Decimal(68990))
    paths = [r.path for r in emu.requests if "klines" in r.path]
    assert paths == ["/api/v3/klines", "/fapi/v1/klines"]  # one request per series
