"""The real ccxt ``binance`` client against the Binance dialect on a loopback URL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.emulator import Emulator, OrderStatus
from tests.emulator_tests.helpers import KEY, eventually, make_client

BTC_PERP = "BTC/USDT:USDT"


async def test_load_markets_reflects_filters(bn: Any) -> None:
    markets = await bn.load_markets()
    assert {"BTC/USDT", "ETH/USDT", BTC_PERP, "ETH/USDT:USDT"} <= set(markets)
    perp = markets[BTC_PERP]
    assert perp["linear"] and perp["contractSize"] == 1
    assert perp["precision"]["amount"] == 0.001
    assert perp["precision"]["price"] == 0.1
    assert perp["limits"]["cost"]["min"] == 100
    assert perp["limits"]["market"]["max"] == 120
    assert markets["BTC/USDT"]["limits"]["cost"]["min"] == 5


async def test_balances_spot_and_futures(bn: Any, bn_spot: Any) -> None:
    spot = await bn_spot.fetch_balance()
    assert spot["BTC"]["free"] == 2 and spot["USDT"]["total"] == 10000
    futures = await bn.fetch_balance()
    assert futures["USDT"] == {"free": 10000, "used": 0, "total": 10000}


async def test_short_market_order_round_trip(binance: Emulator, bn: Any) -> None:
    order = await bn.create_order(
        BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "hk-short-1"}
    )
    assert order["clientOrderId"] == "hk-short-1"
    assert order["status"] == "closed" and order["filled"] == 0.01
    bid, _ = binance.quote(BTC_PERP)
    assert order["average"] == float(bid)

    fetched = await bn.fetch_order("", BTC_PERP, {"clientOrderId": "hk-short-1"})
    assert fetched["id"] == order["id"] and fetched["status"] == "closed"

    positions = await bn.fetch_positions([BTC_PERP])
    assert len(positions) == 1
    pos = positions[0]
    assert pos["side"] == "short" and pos["contracts"] == 0.01
    assert pos["entryPrice"] == float(bid) and pos["marginMode"] == "cross"
    assert pos["leverage"] is None  # /fapi/v3/positionRisk has no leverage field
    assert pos["liquidationPrice"] > float(bid)

    fee = Decimal("0.01") * bid * Decimal("0.0005")
    assert binance.futures_wallet(KEY) == Decimal(10000) - fee
    assert binance.fills(KEY)[0].is_maker is False


async def test_open_orders_cancel_and_unknown(binance: Emulator, bn: Any) -> None:
    await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "rest-1"})
    open_orders = await bn.fetch_open_orders(BTC_PERP)
    assert [o["clientOrderId"] for o in open_orders] == ["rest-1"]
    assert open_orders[0]["status"] == "open" and open_orders[0]["remaining"] == 0.002

    canceled = await bn.cancel_order("", BTC_PERP, {"clientOrderId": "rest-1"})
    assert canceled["status"] == "canceled"
    assert await bn.fetch_open_orders(BTC_PERP) == []
    with pytest.raises(ccxt.OrderNotFound):  # -2011 Unknown order sent.
        await bn.cancel_order("", BTC_PERP, {"clientOrderId": "rest-1"})
    with pytest.raises(ccxt.OrderNotFound):  # -2013 Order does not exist.
        await bn.fetch_order("", BTC_PERP, {"clientOrderId": "never-sent"})
    assert binance.requests[-1].error_code == "-2013"


async def test_resting_order_fills_as_maker_when_price_moves(binance: Emulator, bn: Any) -> None:
    await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 70500, {"clientOrderId": "mk-1"})
    binance.set_price("BTC/USDT", 71000)
    order = await bn.fetch_order("", BTC_PERP, {"clientOrderId": "mk-1"})
    assert order["status"] == "closed" and order["average"] == 70500
    assert binance.fills(KEY)[-1].is_maker
    assert binance.position(KEY, BTC_PERP).qty == Decimal("-0.002")


async def test_reduce_only_trim_and_rejection(binance: Emulator, bn: Any) -> None:
    binance.set_position(KEY, BTC_PERP, "-0.010", entry_price=68000)
    trim = await bn.create_order(
        BTC_PERP, "market", "buy", 0.004, None, {"reduceOnly": True, "clientOrderId": "trim-1"}
    )
    assert trim["reduceOnly"] is True and trim["filled"] == 0.004
    assert binance.position(KEY, BTC_PERP).qty == Decimal("-0.006")
    with pytest.raises(ccxt.ExchangeError) as info:  # -2022 would increase the short
        await bn.create_order(BTC_PERP, "market", "sell", 0.001, None, {"reduceOnly": True})
    assert "-2022" in str(info.value)
    # An oversized reduce-only market order closes the position and expires the rest.
    close = await bn.create_order(BTC_PERP, "market", "buy", 0.010, None, {"reduceOnly": True})
    assert close["filled"] == 0.006 and close["status"] == "expired"
    assert binance.position(KEY, BTC_PERP).qty == 0


async def test_duplicate_and_invalid_client_ids(bn: Any) -> None:
    await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.ExchangeError) as dup:  # -4116: generic on loopback
        await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "dup-1"})
    assert "-4116" in str(dup.value)
    with pytest.raises(ccxt.BadRequest):  # -4015 Client order id is not valid.
        await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"clientOrderId": "x" * 40})


async def test_post_only_and_filters(bn: Any, binance: Emulator) -> None:
    _, ask = binance.quote(BTC_PERP)
    with pytest.raises(ccxt.ExchangeError) as post:  # -5022 GTX would take
        await bn.create_order(BTC_PERP, "limit", "buy", 0.002, float(ask) + 10, {"postOnly": True})
    assert "-5022" in str(post.value)
    assert binance.orders(KEY) == []  # a rejected GTX is not recorded
    with pytest.raises(ccxt.ExchangeError) as small:  # -4164 min notional 100
        await bn.create_order(BTC_PERP, "limit", "sell", 0.001, 75000)
    assert "-4164" in str(small.value)
    maker = await bn.create_order(BTC_PERP, "limit", "sell", 0.002, 75000, {"postOnly": True})
    assert maker["postOnly"] is True and maker["status"] == "open"


async def test_insufficient_margin(binance: Emulator, bn: Any) -> None:
    binance.set_futures_wallet(KEY, "50")
    with pytest.raises(ccxt.ExchangeError) as info:  # -2019: ExchangeError on loopback
        await bn.create_order(BTC_PERP, "market", "sell", 0.1)
    assert not isinstance(info.value, ccxt.InsufficientFunds)
    assert "-2019" in str(info.value)


async def test_leverage_margin_mode_position_mode(binance: Emulator, bn: Any) -> None:
    response = await bn.set_leverage(5, BTC_PERP)
    assert response["leverage"] == 5
    assert binance.engine.accounts[KEY].leverage[BTC_PERP] == 5
    assert (await bn.set_leverage(5, BTC_PERP))["leverage"] == 5  # same value is fine

    assert (await bn.set_margin_mode("isolated", BTC_PERP))["code"] == 200
    # ccxt 4.5 raises -4046 "No need to change margin type." as MarginModeAlreadySet ...
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await bn.set_margin_mode("isolated", BTC_PERP)
    # ... unless told to swallow it, then the answer comes back as a response.
    lenient = make_client(binance, setMarginMode={"throwMarginModeAlreadySet": False})
    try:
        assert (await lenient.set_margin_mode("isolated", BTC_PERP))["code"] == -4046
    finally:
        await lenient.close()

    await bn.create_order(BTC_PERP, "market", "sell", 0.01)
    positions = await bn.fetch_positions([BTC_PERP], {"useV2": True})
    assert positions[0]["leverage"] == 5 and positions[0]["marginMode"] == "isolated"
    with pytest.raises(ccxt.OperationRejected):  # -4068 position exists
        await bn.set_position_mode(True)
    assert (await bn.fetch_position_mode())["hedged"] is False


async def test_hedge_mode_orders(binance: Emulator, bn: Any) -> None:
    await bn.set_position_mode(True)
    with pytest.raises(ccxt.OperationRejected):  # -4059 no need to change
        await bn.set_position_mode(True)
    with pytest.raises(ccxt.OperationRejected):  # -4061 positionSide BOTH in hedge mode
        await bn.create_order(BTC_PERP, "market", "sell", 0.01)
    await bn.create_order(BTC_PERP, "market", "sell", 0.01, None, {"positionSide": "SHORT"})
    await bn.create_order(
        BTC_PERP, "market", "buy", 0.004, None, {"hedged": True, "reduceOnly": True}
    )
    assert binance.position(KEY, BTC_PERP, "SHORT").qty == Decimal("-0.006")
    positions = await bn.fetch_positions([BTC_PERP])
    assert positions[0]["hedged"] is True and positions[0]["side"] == "short"


async def test_tickers_bid_ask_and_marks(binance: Emulator, bn: Any, bn_spot: Any) -> None:
    tickers = await bn.fetch_tickers([BTC_PERP, "ETH/USDT:USDT"])
    assert tickers[BTC_PERP]["last"] == 70000
    assert tickers[BTC_PERP]["bid"] is None  # /fapi/v1/ticker/24hr has no bid/ask
    book = await bn.fetch_bids_asks([BTC_PERP])
    bid, ask = binance.quote(BTC_PERP)
    assert (book[BTC_PERP]["bid"], book[BTC_PERP]["ask"]) == (float(bid), float(ask))
    binance.set_price(BTC_PERP, 70000, mark=70100)
    marks = await bn.fetch_mark_prices([BTC_PERP])
    assert marks[BTC_PERP]["markPrice"] == 70100
    assert (await bn.fetch_mark_price(BTC_PERP))["markPrice"] == 70100
    spot = await bn_spot.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert spot["BTC/USDT"]["bid"] is not None and spot["ETH/USDT"]["last"] == 3500
    assert binance.requests[-1].path == "/api/v3/ticker/24hr"


async def test_spot_orders_and_balances(binance: Emulator, bn_spot: Any) -> None:
    order = await bn_spot.create_order(
        "BTC/USDT", "market", "sell", 0.1, None, {"clientOrderId": "spot-1"}
    )
    assert order["status"] == "closed" and order["fee"]["currency"] == "USDT"
    balance = await bn_spot.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(1.9)
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # -2010 LIMIT_MAKER would take
        await bn_spot.create_order("BTC/USDT", "limit", "buy", 0.01, 71000, {"postOnly": True})
    with pytest.raises(ccxt.InsufficientFunds):  # -2010 insufficient balance (message match)
        await bn_spot.create_order("BTC/USDT", "limit", "buy", 1, 60000)
    resting = await bn_spot.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 60000, {"clientOrderId": "spot-2"}
    )
    assert binance.balances(KEY)["USDT"][1] == Decimal("600")  # locked
    canceled = await bn_spot.cancel_order(resting["id"], "BTC/USDT")
    # Binance spot echoes the *cancel request's* client id; the original is in info.
    assert canceled["clientOrderId"] != "spot-2"
    assert canceled["info"]["origClientOrderId"] == "spot-2"
    assert binance.balances(KEY)["USDT"][1] == 0


async def test_transfer_and_api_restrictions(binance: Emulator, bn: Any) -> None:
    await bn.load_markets()
    await bn.transfer("USDT", 250, "spot", "swap")
    assert binance.balances(KEY)["USDT"][0] == Decimal(9750)
    assert binance.futures_wallet(KEY) == Decimal(10250)
    restrictions = await bn.sapi_get_account_apirestrictions()
    assert restrictions["enableFutures"] is True and restrictions["enableWithdrawals"] is False
    writes = [(r.method, r.path) for r in binance.private_writes()]
    assert writes == [("POST", "/sapi/v1/asset/transfer")]


async def test_auth_failures_and_clock_skew(binance: Emulator) -> None:
    wrong = make_client(binance, secret="not-the-secret")
    unknown = make_client(binance, api_key="nobody")
    client = make_client(binance)
    try:
        with pytest.raises(ccxt.AuthenticationError):  # -1022 bad signature
            await wrong.fetch_balance()
        assert any(r.error_code == "-1022" for r in binance.requests)
        with pytest.raises(ccxt.AuthenticationError):  # -2015 unknown key
            await unknown.fetch_balance()
        binance.clock_offset_ms = 30_000  # our clock is 30 s behind the server
        with pytest.raises(ccxt.InvalidNonce):  # -1021 outside recvWindow
            await client.fetch_balance()
        binance.clock_offset_ms = -5_000  # our clock is 5 s ahead
        with pytest.raises(ccxt.InvalidNonce):  # -1021 1000 ms ahead of server time
            await client.fetch_balance()
        await client.load_time_difference()  # ccxt's own remedy
        assert (await client.fetch_balance())["USDT"]["total"] == 10000
    finally:
        for exchange in (wrong, unknown, client):
            await exchange.close()


async def test_revoked_key_after_success_looks_like_ddos(binance: Emulator, bn_spot: Any) -> None:
    await bn_spot.fetch_balance()  # a successful 'private' (spot) call ...
    binance.set_permissions(KEY, trade=False)
    with pytest.raises(ccxt.DDoSProtection):  # ... turns later -2015 into DDoSProtection
        await bn_spot.create_order("BTC/USDT", "market", "sell", 0.01)


async def test_maintenance_and_position_changed_outside(binance: Emulator, bn: Any) -> None:
    await bn.create_order(BTC_PERP, "market", "sell", 0.01)
    binance.set_position(KEY, BTC_PERP, 0)  # liquidated elsewhere
    assert await bn.fetch_positions([BTC_PERP]) == []
    binance.maintenance = True
    with pytest.raises(ccxt.OnMaintenance):
        await bn.fetch_balance()
    binance.maintenance = False
    assert await eventually(lambda: bn.fetch_balance())


async def test_read_only_cycle_makes_no_private_writes(binance: Emulator, bn: Any) -> None:
    await bn.fetch_balance()
    await bn.fetch_positions()
    await bn.fetch_open_orders(BTC_PERP)
    await bn.fetch_bids_asks([BTC_PERP])
    assert binance.private_writes() == []
    assert any(r.private for r in binance.requests)
    assert all(o.status is not OrderStatus.NEW for o in binance.orders(KEY))


async def test_binanceusdm_and_fetch_ticker(binance: Emulator) -> None:
    client = make_client(binance, exchange_id="binanceusdm", fetchMarkets={"types": ["linear"]})
    try:
        markets = await client.load_markets()
        assert sorted(markets) == [BTC_PERP, "ETH/USDT:USDT"]
        order = await client.create_order(
            BTC_PERP, "market", "sell", 0.002, None, {"clientOrderId": "usdm-1"}
        )
        assert order["status"] == "closed"
        ticker = await client.fetch_ticker(BTC_PERP)
        assert ticker["last"] == 70000 and ticker["symbol"] == BTC_PERP
        with pytest.raises(ccxt.ExchangeError):  # ccxt refuses symbol-less open orders ...
            await client.fetch_open_orders()
        client.options["fetchOpenOrders"]["warnWithoutSymbol"] = False
        assert await client.fetch_open_orders() == []  # ... unless told otherwise
    finally:
        await client.close()


async def test_accounts_are_independent(binance: Emulator) -> None:
    binance.add_account("second-key", "second-secret")
    binance.set_futures_wallet("second-key", "500")
    first, second = (
        make_client(binance),
        make_client(binance, api_key="second-key", secret="second-secret"),
    )
    try:
        await first.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "a"})
        await second.create_order(BTC_PERP, "market", "buy", 0.002, None, {"clientOrderId": "a"})
        assert binance.position(KEY, BTC_PERP).qty == Decimal("-0.01")
        assert binance.position("second-key", BTC_PERP).qty == Decimal("0.002")
        assert (await second.fetch_balance())["USDT"]["total"] < 500
        assert [o.client_id for o in binance.orders("second-key")] == ["a"]
    finally:
        await first.close()
        await second.close()
