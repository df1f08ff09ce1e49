"""The real ccxt ``bybit`` client against the Bybit v5 dialect on a loopback URL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.emulator import Emulator
from tests.emulator_tests.helpers import KEY, make_client

BTC_PERP = "BTC/USDT:USDT"


async def test_load_markets_and_unified_balance(bybit: Emulator, by: Any) -> None:
    markets = await by.load_markets()
    perp = markets[BTC_PERP]
    assert perp["precision"]["amount"] == 0.001 and perp["limits"]["cost"]["min"] == 5
    assert perp["limits"]["leverage"]["max"] == 100
    assert markets["ETH/USDT:USDT"]["precision"]["amount"] == 0.01
    balance = await by.fetch_balance()
    assert balance["BTC"]["total"] == 2 and balance["USDT"]["free"] == 10000
    paths = [r.path for r in bybit.requests]
    # ccxt asks whether the account is unified before the first private call
    assert "/v5/user/query-api" in paths and "/v5/account/info" in paths


async def test_short_market_order_round_trip(bybit: Emulator, by: Any) -> None:
    created = await by.create_order(
        BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "hk-short-1"}
    )
    # v5 order/create answers ids only: ccxt cannot know status or fill yet
    assert created["clientOrderId"] == "hk-short-1" and created["status"] is None
    order = await by.fetch_order("", BTC_PERP, {"acknowledged": True, "orderLinkId": "hk-short-1"})
    bid, _ = bybit.quote(BTC_PERP)
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["average"] == float(bid)
    assert order["fee"]["currency"] == "USDT"

    positions = await by.fetch_positions()
    assert len(positions) == 1
    pos = positions[0]
    assert pos["symbol"] == BTC_PERP and pos["side"] == "short" and pos["contracts"] == 0.01
    assert pos["leverage"] == 10 and pos["entryPrice"] == float(bid)
    assert pos["liquidationPrice"] > float(bid)
    with pytest.raises(ccxt.ArgumentsRequired):  # ccxt bybit: at most one symbol
        await by.fetch_positions([BTC_PERP, "ETH/USDT:USDT"])


async def test_open_orders_cancel_and_unknown(by: Any) -> None:
    await by.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "rest-1"})
    open_orders = await by.fetch_open_orders(BTC_PERP)
    assert [o["clientOrderId"] for o in open_orders] == ["rest-1"]
    assert open_orders[0]["remaining"] == 0.002
    by_link = await by.fetch_open_orders(BTC_PERP, None, None, {"orderLinkId": "rest-1"})
    assert by_link[0]["id"] == open_orders[0]["id"]
    await by.cancel_order("", BTC_PERP, {"orderLinkId": "rest-1"})
    closed = await by.fetch_closed_orders(BTC_PERP, None, None, {"orderLinkId": "rest-1"})
    assert closed[0]["status"] == "canceled"
    assert await by.fetch_open_orders(BTC_PERP) == []
    with pytest.raises(ccxt.OrderNotFound):  # 110001
        await by.cancel_order("", BTC_PERP, {"orderLinkId": "rest-1"})
    with pytest.raises(ccxt.OrderNotFound):
        await by.fetch_order("", BTC_PERP, {"acknowledged": True, "orderLinkId": "nope"})


async def test_reduce_only_duplicate_and_margin(bybit: Emulator, by: Any) -> None:
    bybit.set_position(KEY, BTC_PERP, "-0.010", entry_price=68000)
    await by.create_order(BTC_PERP, "market", "buy", 0.004, None, {"reduceOnly": True})
    assert bybit.position(KEY, BTC_PERP).qty == Decimal("-0.006")
    with pytest.raises(ccxt.InvalidOrder):  # 110017 reduce-only would increase
        await by.create_order(BTC_PERP, "market", "sell", 0.001, None, {"reduceOnly": True})
    await by.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "d-1"})
    await by.cancel_order("", BTC_PERP, {"orderLinkId": "d-1"})
    with pytest.raises(ccxt.InvalidOrder):  # 110072: unique across all orders, not just open
        await by.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "d-1"})
    bybit.set_balance(KEY, "USDT", "20")
    with pytest.raises(ccxt.InsufficientFunds):  # 110007
        await by.create_order(BTC_PERP, "market", "sell", 0.1)


async def test_post_only_is_accepted_then_cancelled(bybit: Emulator, by: Any) -> None:
    _, ask = bybit.quote(BTC_PERP)
    await by.create_order(
        BTC_PERP,
        "limit",
        "buy",
        0.002,
        float(ask) + 10,
        {"postOnly": True, "clientOrderId": "po-1"},
    )
    order = await by.fetch_order("", BTC_PERP, {"acknowledged": True, "orderLinkId": "po-1"})
    assert order["status"] == "canceled" and order["filled"] == 0
    assert order["info"]["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"


async def test_leverage_margin_mode_position_mode(bybit: Emulator, by: Any) -> None:
    await by.set_leverage(5, BTC_PERP)
    with pytest.raises(ccxt.BadRequest):  # 110043 leverage not modified
        await by.set_leverage(5, BTC_PERP)
    assert bybit.requests[-1].error_code == "110043"
    assert (await by.set_margin_mode("isolated"))["retCode"] == 0  # account level (UTA)
    assert (await by.set_margin_mode("isolated"))["retCode"] == 0  # unchanged: success
    assert bybit.engine.accounts[KEY].account_margin_mode == "isolated"
    await by.set_position_mode(True)
    with pytest.raises(ccxt.NoChange):  # 110025
        await by.set_position_mode(True)
    await by.create_order(BTC_PERP, "market", "sell", 0.01, None, {"positionIdx": 2})
    with pytest.raises(ccxt.BadRequest):  # 110024 position exists
        await by.set_position_mode(False)
    positions = await by.fetch_positions([BTC_PERP])
    short = [p for p in positions if p["contracts"]]
    assert short[0]["side"] == "short" and short[0]["hedged"] is True


async def test_tickers_and_bid_ask(bybit: Emulator, by: Any) -> None:
    bybit.set_price(BTC_PERP, 70000, mark=70050)
    tickers = await by.fetch_tickers([BTC_PERP, "ETH/USDT:USDT"])
    bid, ask = bybit.quote(BTC_PERP)
    btc = tickers[BTC_PERP]
    assert (btc["bid"], btc["ask"], btc["markPrice"]) == (float(bid), float(ask), 70050)
    with pytest.raises(ccxt.BadRequest):  # ccxt: one market type per call
        await by.fetch_tickers([BTC_PERP, "BTC/USDT"])
    spot = await by.fetch_tickers(["BTC/USDT"])
    assert spot["BTC/USDT"]["last"] == 70000


async def test_spot_orders(bybit: Emulator, by: Any) -> None:
    await by.create_order("BTC/USDT", "market", "sell", 0.1, None, {"clientOrderId": "s-1"})
    assert bybit.balances(KEY)["BTC"][0] == Decimal("1.9")
    with pytest.raises(ccxt.InsufficientFunds):  # 170131
        await by.create_order("BTC/USDT", "limit", "buy", 1, 60000)
    await by.create_order("BTC/USDT", "limit", "buy", 0.01, 60000, {"clientOrderId": "s-2"})
    balance = await by.fetch_balance()
    assert balance["USDT"]["used"] == 600


async def test_transfer_and_query_api(bybit: Emulator, by: Any) -> None:
    await by.load_markets()
    await by.transfer("USDT", 100, "unified", "funding")
    assert bybit.engine.accounts[KEY].funding["USDT"] == Decimal(100)
    funding = await by.fetch_balance({"type": "funding"})
    assert funding["USDT"]["total"] == 100
    info = await by.private_get_v5_user_query_api()
    assert info["result"]["uta"] == 1 and info["result"]["readOnly"] == 0


async def test_auth_failures_clock_skew_and_maintenance(bybit: Emulator) -> None:
    wrong = make_client(bybit, secret="nope")
    unknown = make_client(bybit, api_key="nobody")
    client = make_client(bybit)
    try:
        with pytest.raises(ccxt.AuthenticationError):  # 10004
            await wrong.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError):  # 10003
            await unknown.fetch_balance()
        bybit.clock_offset_ms = 60_000
        with pytest.raises(ccxt.InvalidNonce):  # 10002
            await client.fetch_balance()
        bybit.clock_offset_ms = 0
        bybit.maintenance = True
        with pytest.raises(ccxt.ExchangeNotAvailable):  # plain 503, no Bybit code exists
            await client.fetch_balance()
        bybit.maintenance = False
        bybit.set_permissions(KEY, trade=False)
        await client.load_markets()
        with pytest.raises(ccxt.PermissionDenied):  # 10005
            await client.create_order(BTC_PERP, "market", "sell", 0.01)
    finally:
        for exchange in (wrong, unknown, client):
            await exchange.close()


async def test_fetch_ticker_and_accounts_are_independent(bybit: Emulator, by: Any) -> None:
    ticker = await by.fetch_ticker(BTC_PERP)
    assert ticker["last"] == 70000 and ticker["markPrice"] == 70000
    bybit.add_account("second-key", "second-secret")
    bybit.set_balance("second-key", "USDT", "300")
    second = make_client(bybit, api_key="second-key", secret="second-secret")
    try:
        await second.create_order(BTC_PERP, "market", "buy", 0.002, None, {"clientOrderId": "a"})
        await by.create_order(BTC_PERP, "market", "sell", 0.002, None, {"clientOrderId": "a"})
        assert bybit.position("second-key", BTC_PERP).qty == Decimal("0.002")
        assert bybit.position(KEY, BTC_PERP).qty == Decimal("-0.002")
    finally:
        await second.close()
