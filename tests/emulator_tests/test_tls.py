"""HTTPS under the venues' real demo/testnet hostnames, resolved to the emulator.

Under the real hostnames ccxt's Binance error tables apply, so the exception
classes differ from the loopback-URL tests (see :mod:`tests.emulator.tls`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from tests.emulator import Emulator
from tests.emulator.tls import LoopbackResolver, TestPKI, loopback_session, venue_hostnames
from tests.emulator_tests.helpers import KEY, PRICES, SECRET, make_client

BTC_PERP = "BTC/USDT:USDT"


async def _tls_client(pki: TestPKI, dialect: str, mode: str) -> tuple[Emulator, Any, Any]:
    emu = Emulator(dialect, {KEY: SECRET}, prices=PRICES, ssl_context=pki.server_context())
    await emu.start()
    emu.set_futures_wallet(KEY, "10000")
    session = loopback_session(pki, {host: emu.port for host in venue_hostnames(dialect)})
    client = make_client(emu, loopback=False)
    client.session, client.own_session = session, False
    if mode == "demo":
        client.enable_demo_trading(True)
    else:
        client.set_sandbox_mode(True)
    return emu, client, session


@pytest.fixture
async def binance_demo(pki: TestPKI) -> AsyncIterator[tuple[Emulator, Any]]:
    """ccxt binance in demo-trading mode, talking HTTPS to the emulator."""
    emu, client, session = await _tls_client(pki, "binance", "demo")
    yield emu, client
    await client.close()
    await session.close()
    await emu.stop()


async def test_binance_demo_uses_real_error_tables(binance_demo: tuple[Emulator, Any]) -> None:
    emu, client = binance_demo
    await client.load_markets()
    assert client.urls["api"]["fapiPrivate"].startswith("https://demo-fapi.binance.com/")
    assert emu.base_url.startswith("https://127.0.0.1:")
    with pytest.raises(ccxt.InvalidOrder):  # -4116 duplicate (loopback: ExchangeError)
        for _ in range(2):
            await client.create_order(
                BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "dup"}
            )
    _, ask = emu.quote(BTC_PERP)
    with pytest.raises(ccxt.OrderNotFillable):  # -5022 (loopback: ExchangeError)
        await client.create_order(
            BTC_PERP, "limit", "buy", 0.002, float(ask) + 10, {"postOnly": True}
        )
    with pytest.raises(ccxt.InvalidOrder):  # -2022 (loopback: ExchangeError)
        await client.create_order(BTC_PERP, "market", "buy", 0.002, None, {"reduceOnly": True})
    emu.set_futures_wallet(KEY, "10")
    with pytest.raises(ccxt.InsufficientFunds):  # -2019 (loopback: ExchangeError)
        await client.create_order(BTC_PERP, "market", "sell", 0.01)
    # demo mode skips the signed margin-pair calls ccxt makes on load_markets
    assert not any(r.path.startswith("/sapi") for r in emu.requests)
    with pytest.raises(ccxt.NotSupported):  # no sapi URL in demo mode
        await client.transfer("USDT", 1, "spot", "swap")


@pytest.mark.parametrize("mode", ["sandbox", "demo"])
async def test_bybit_real_hostnames(pki: TestPKI, mode: str) -> None:
    emu, client, session = await _tls_client(pki, "bybit", mode)
    try:
        await client.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "t1"})
        positions = await client.fetch_positions()
        assert positions[0]["contracts"] == 0.01
        host = "api-testnet.bybit.com" if mode == "sandbox" else "api-demo.bybit.com"
        assert client.implode_hostname(client.urls["api"]["private"]) == f"https://{host}"
        # ccxt only asks about the account type outside demo mode
        asked = any(r.path == "/v5/user/query-api" for r in emu.requests)
        assert asked is (mode == "sandbox")
    finally:
        await client.close()
        await session.close()
        await emu.stop()


async def test_resolver_refuses_other_hosts(pki: TestPKI) -> None:
    resolver = LoopbackResolver({"demo-fapi.binance.com": 4242})
    [result] = await resolver.resolve("demo-fapi.binance.com", 443)
    assert (result["host"], result["port"]) == ("127.0.0.1", 4242)
    with pytest.raises(OSError):
        await resolver.resolve("api.binance.com", 443)
    session = loopback_session(pki, {"demo-fapi.binance.com": 4242})
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get("https://fapi.binance.com/fapi/v1/time")
    finally:
        await session.close()
