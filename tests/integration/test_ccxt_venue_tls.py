"""CcxtVenue through the test path: the adapter's own environment switch picks the URL.

The real demo/testnet hostnames are resolved to the emulator on loopback by a
custom resolver and served over HTTPS with a test CA, so what is exercised is
exactly what a user's ``mode = "testnet"`` does — including ccxt's real error
tables, which only apply under the real hostnames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hedgekeeper.exceptions import OrderRejectedError
from hedgekeeper.model import OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.emulator import Emulator
from tests.emulator.tls import TestPKI, loopback_session, venue_hostnames

KEY, SECRET = "tls-key", "tls-secret"
PERP = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(params=[("binance", "testnet"), ("bybit", "testnet"), ("bybit", "demo")])
async def venue(
    request: pytest.FixtureRequest, pki: TestPKI
) -> AsyncIterator[tuple[Emulator, CcxtVenue]]:
    dialect, environment = request.param
    emu = Emulator(
        dialect, {KEY: SECRET}, prices={"BTC/USDT": 60000}, ssl_context=pki.server_context()
    )
    await emu.start()
    emu.set_balance(KEY, "BTC", "1")
    emu.set_futures_wallet(KEY, "10000")
    session = loopback_session(pki, {host: emu.port for host in venue_hostnames(dialect)})
    adapter = CcxtVenue("ex", dialect, api_key=KEY, secret=SECRET, environment=environment,
                        session=session)  # fmt: skip
    try:
        yield emu, adapter
    finally:
        await adapter.close()
        await session.close()
        await emu.stop()


async def test_the_environment_switch_reaches_the_test_hosts(
    venue: tuple[Emulator, CcxtVenue],
) -> None:
    emu, adapter = venue
    markets = await adapter.load_markets([PERP, "BTC/USDT"])
    assert set(markets) == {PERP, "BTC/USDT"}
    balances = await adapter.fetch_balances()
    assert balances["BTC"] == 1
    request = OrderRequest("hktls00000000001", PERP, Side.SELL, Decimal("0.01"), OrderType.MARKET)
    info = await adapter.submit_order(request)
    assert info.status is OrderStatus.FILLED or info.status is OrderStatus.OPEN
    positions = await adapter.fetch_positions([PERP])
    assert positions[PERP].contracts == Decimal("-0.01")
    found = await adapter.fetch_order(PERP, "hktls00000000001")
    assert found is not None and found.filled == Decimal("0.01")
    assert any(r.private and r.write for r in emu.requests), (
        "the order went over TLS to the emulator"
    )
    # the adapter's environment switch, not an api_host override, chose these hosts
    hosts = {str(u) for u in adapter.exchange.urls["api"].values() if isinstance(u, str)}
    assert any("demo" in h or "testnet" in h for h in hosts), hosts


async def test_real_error_tables_apply(venue: tuple[Emulator, CcxtVenue]) -> None:
    emu, adapter = venue
    await adapter.load_markets([PERP])
    emu.set_futures_wallet(KEY, "1")
    with pytest.raises(OrderRejectedError):  # insufficient margin: definitively not placed
        await adapter.submit_order(OrderRequest("hktls00000000002", PERP, Side.SELL, Decimal("0.5"),
                                                OrderType.MARKET))  # fmt: skip
    assert await adapter.fetch_order(PERP, "hktls00000000002") is None
