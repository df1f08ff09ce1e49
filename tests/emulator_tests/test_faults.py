"""Every fault kind, seen through the real ccxt client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.emulator import Emulator, Fault, FaultScript, OrderStatus
from tests.emulator_tests.helpers import KEY, eventually, make_client

BTC_PERP = "BTC/USDT:USDT"


async def test_latency(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    binance.faults.add(Fault.latency(0.3), path="/fapi/v3/account")
    started = time.monotonic()
    await bn.fetch_balance()
    assert time.monotonic() - started >= 0.3
    assert binance.requests[-1].faults == ("latency",)


async def test_rate_limit_and_ban_binance(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    rule = binance.faults.add(Fault.rate_limit(retry_after=7), path="/fapi/*", count=2)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection) as info:  # 429: DDoSProtection, not RateLimit
            await bn.fetch_balance()
        assert not isinstance(info.value, ccxt.RateLimitExceeded)
        assert bn.last_response_headers["Retry-After"] == "7"
    assert rule.exhausted
    assert (await bn.fetch_balance())["USDT"]["total"] == 10000  # burst over
    binance.faults.add(Fault.ip_ban(retry_after=120), path="/fapi/v3/positionRisk")
    with pytest.raises(ccxt.DDoSProtection):  # 418
        await bn.fetch_positions()
    assert binance.requests[-1].status == 418


async def test_rate_limit_and_ban_bybit(bybit: Emulator, by: Any) -> None:
    await by.load_markets()
    bybit.faults.add(Fault.rate_limit(), path="/v5/market/tickers")
    with pytest.raises(ccxt.RateLimitExceeded):  # retCode 10006
        await by.fetch_tickers([BTC_PERP])
    bybit.faults.add(Fault.ip_ban(), path="/v5/market/tickers")
    with pytest.raises(ccxt.RateLimitExceeded):  # HTTP 403: ccxt bybit's httpExceptions
        await by.fetch_tickers([BTC_PERP])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ccxt.ExchangeNotAvailable),
        (502, ccxt.ExchangeNotAvailable),
        (503, ccxt.ExchangeNotAvailable),
        (504, ccxt.RequestTimeout),
    ],
)
async def test_http_errors(binance: Emulator, bn: Any, status: int, error: type) -> None:
    await bn.load_markets()
    binance.faults.add(Fault.http_error(status), method="POST", path="/fapi/v1/order")
    with pytest.raises(error):
        await bn.create_order(BTC_PERP, "market", "sell", 0.01)
    assert binance.orders(KEY) == []  # short-circuited: never applied


async def test_accept_then_timeout(emu: Emulator) -> None:
    dialect = emu.dialect_name
    client = make_client(emu, timeout_ms=1000)
    path = "/fapi/v1/order" if dialect == "binance" else "/v5/order/create"
    try:
        await client.load_markets()
        emu.faults.add(Fault.accept_then_timeout(delay=30), method="POST", path=path)
        with pytest.raises(ccxt.RequestTimeout):
            await client.create_order(
                BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "unknown-1"}
            )
        # The order exists although the client never heard back: resolve by client id.
        assert emu.order(KEY, "unknown-1") is not None
        if dialect == "binance":
            found = await client.fetch_order("", BTC_PERP, {"clientOrderId": "unknown-1"})
        else:
            found = await client.fetch_order(
                "", BTC_PERP, {"acknowledged": True, "orderLinkId": "unknown-1"}
            )
        assert found["status"] == "closed" and found["filled"] == 0.01
    finally:
        await client.close()


async def test_partial_fill_limit_rests_then_fills(binance: Emulator, bn: Any) -> None:
    bid, _ = binance.quote(BTC_PERP)
    binance.faults.add(Fault.partial_fill("0.4"), method="POST", path="/fapi/v1/order")
    order = await bn.create_order(
        BTC_PERP, "limit", "sell", 0.010, float(bid), {"clientOrderId": "part-1"}
    )
    assert order["status"] == "open" and order["filled"] == 0.004 and order["remaining"] == 0.006
    assert order["info"]["status"] == "PARTIALLY_FILLED"
    binance.set_price("BTC/USDT", 70100)  # the market moves through the rest
    done = await eventually(lambda: binance.order(KEY, "part-1").status is OrderStatus.FILLED)
    assert done
    assert [f.is_maker for f in binance.fills(KEY)] == [False, True]


async def test_partial_fill_market_expires_rest(
    binance: Emulator, bybit: Emulator, bn: Any, by: Any
) -> None:
    binance.faults.add(Fault.partial_fill("0.5"), path="/fapi/v1/order")
    order = await bn.create_order(BTC_PERP, "market", "sell", 0.01)
    assert order["status"] == "expired" and order["filled"] == 0.005
    bybit.faults.add(Fault.partial_fill("0.5"), path="/v5/order/create")
    await by.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "bp-1"})
    fetched = await by.fetch_order("", BTC_PERP, {"acknowledged": True, "orderLinkId": "bp-1"})
    assert fetched["status"] == "canceled" and fetched["filled"] == 0.005
    assert fetched["info"]["rejectReason"] == "EC_CancelForNoFullFill"


async def test_disconnect_before_and_after_apply(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    binance.faults.add(Fault.disconnect(), method="POST", path="/fapi/v1/order")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bn.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "d-0"})
    assert binance.order(KEY, "d-0") is None  # dropped before it was applied
    binance.faults.add(Fault.disconnect(after_apply=True), method="POST", path="/fapi/v1/order")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bn.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "d-1"})
    assert binance.order(KEY, "d-1") is not None  # applied, answer lost
    assert binance.requests[-1].status == 0


async def test_disconnect_on_get_is_retried_by_aiohttp(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    binance.faults.add(Fault.disconnect(), path="/fapi/v3/account")
    assert (await bn.fetch_balance())["USDT"]["total"] == 10000  # silently retried once
    assert [r.status for r in binance.requests if r.path == "/fapi/v3/account"] == [0, 200]
    binance.faults.add(Fault.disconnect(), path="/fapi/v3/account", count=2)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bn.fetch_balance()


async def test_backend_timeout(binance: Emulator, bybit: Emulator, bn: Any, by: Any) -> None:
    binance.faults.add(Fault.backend_timeout(), method="POST", path="/fapi/v1/order")
    with pytest.raises(ccxt.RequestTimeout):  # -1007 (HTTP 408)
        await bn.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "bt-1"})
    assert binance.order(KEY, "bt-1") is not None
    bybit.faults.add(Fault.backend_timeout(), method="POST", path="/v5/order/create")
    with pytest.raises(ccxt.ExchangeError) as info:  # 10016: looks definitive, is not
        await by.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "bt-2"})
    assert type(info.value) is ccxt.ExchangeError
    assert bybit.order(KEY, "bt-2") is not None


async def test_skip_and_forever(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    rule = binance.faults.add(
        Fault.http_error(502), path="/fapi/v1/ticker/bookTicker", skip=1, count=None
    )
    await bn.fetch_bids_asks([BTC_PERP])
    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await bn.fetch_bids_asks([BTC_PERP])
    assert rule.hits == 3 and not rule.exhausted
    binance.faults.clear()
    assert await bn.fetch_bids_asks([BTC_PERP])


def test_probabilistic_faults_are_seeded() -> None:
    def pattern(seed: int) -> list[bool]:
        script = FaultScript(seed=seed)
        script.add(Fault.http_error(503), count=None, probability=0.3)
        return [bool(script.take("GET", "/x")) for _ in range(50)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)
    assert 5 < sum(pattern(7)) < 25


async def test_faults_apply_per_method_and_glob(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    binance.faults.add(Fault.http_error(500), method="DELETE", path="/fapi/v1/*")
    order = await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000)
    assert order["status"] == "open"  # POST not matched
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bn.cancel_order(order["id"], BTC_PERP)
    assert binance.open_orders(KEY)[0].order_id == order["id"]


async def test_stop_releases_held_responses() -> None:
    emu = Emulator("binance", {KEY: "s"}, prices={"BTC/USDT": 70000})
    await emu.start()
    emu.faults.add(Fault.latency(30), path="/fapi/v1/time")
    client = make_client(emu, timeout_ms=500)
    try:
        with pytest.raises(ccxt.RequestTimeout):
            await client.fapiPublicGetTime()
    finally:
        await client.close()
    started = time.monotonic()
    await asyncio.wait_for(emu.stop(), timeout=5)
    assert time.monotonic() - started < 2
