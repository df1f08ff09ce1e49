"""The emulator's raw bodies have the keys of real ones recorded by ccxt.

Bodies are compared as sets of key paths (``result.list[].avgPrice``; list items
are merged) against ``httpResponse`` entries of ``../shared/fixtures/ccxt/response``
and against the ``info`` of the parsed markets in ``.../markets``. Values are not
compared: the fixtures stringify every number, real venues do not.

Documented differences (everything else must match exactly):

* Binance ``createOrder`` spot: the fixture is an iceberg order, so it has
  ``icebergQty``; the emulator sends it only in query answers (no icebergs).
* Binance ``fetchBalance`` swap: the fixture account has no positions, the
  emulator lists ``/fapi/v2/account`` ``positions[]`` entries as Binance documents them.
* Binance USDⓈ-M open orders: the only recorded one is a portfolio-margin
  (``/papi/v1/um/openOrders``) answer; ``/fapi/v1/openOrders`` adds ``stopPrice``,
  ``workingType``, ``priceProtect``, ``closePosition`` and ``priceMatch``.
* Bybit position lists: the fixture items carry ``nextPageCursor``, which ccxt's
  ``add_pagination_cursor_to_result`` writes into the (mutated) response - not a
  Bybit field. The emulator adds ``curRealisedPnl`` and ``breakEvenPrice`` that
  current v5 answers have (ccxt reads ``curRealisedPnl``).
* Bybit orders: recordings from different dates differ; the emulator sends the
  union (``marketUnit``, ``slippageTolerance``, ``slippageToleranceType``,
  ``extraFees``, and ``cumFeeDetail`` keyed by the fee coin).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator import Emulator
from tests.emulator_tests.helpers import SHARED_FIXTURES, make_client

pytestmark = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(),
    reason=f"ccxt fixtures not found at {SHARED_FIXTURES} (../shared beside the repository)",
)

V2_POSITION_KEYS = {
    f"positions[].{k}"
    for k in (
        "askNotional",
        "bidNotional",
        "breakEvenPrice",
        "entryPrice",
        "initialMargin",
        "isolated",
        "leverage",
        "maintMargin",
        "maxNotional",
        "openOrderInitialMargin",
        "positionAmt",
        "positionInitialMargin",
        "positionSide",
        "symbol",
        "unrealizedProfit",
        "updateTime",
    )
}
FAPI_ORDER_KEYS = {
    f"[].{k}" for k in ("closePosition", "priceMatch", "priceProtect", "stopPrice", "workingType")
}
BYBIT_POSITION_EXTRA = {"result.list[].breakEvenPrice", "result.list[].curRealisedPnl"}
BYBIT_CURSOR_ARTIFACT = {"result.list[].nextPageCursor"}
BYBIT_NEWER_ORDER_KEYS = {
    f"result.list[].{k}" for k in ("extraFees", "slippageTolerance", "slippageToleranceType")
}


def key_paths(obj: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value; list items share the ``[]`` segment."""
    paths: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= key_paths(value, path)
    elif isinstance(obj, list):
        for item in obj:
            paths |= key_paths(item, prefix + "[]")
    return paths


def recorded(exchange: str, method: str, description: str) -> Any:
    """The ``httpResponse`` of one fixture entry."""
    data = json.loads((SHARED_FIXTURES / "response" / f"{exchange}.json").read_text())
    for entry in data["methods"][method]:
        if entry["description"] == description:
            return entry["httpResponse"]
    raise KeyError(f"{exchange}.{method}: {description!r}")


def market_info(exchange: str, symbol: str) -> Any:
    """The raw exchange entry (``info``) of a parsed market fixture."""
    data = json.loads((SHARED_FIXTURES / "markets" / f"{exchange}.json").read_text())
    return data[symbol]["info"]


def assert_same_shape(
    name: str,
    fixture: Any,
    body: Any,
    missing_ok: set[str] = frozenset(),
    extra_ok: set[str] = frozenset(),
) -> None:
    """Fail with the differing key paths, minus the documented ones."""
    expected, actual = key_paths(fixture), key_paths(body)
    missing, extra = expected - actual - missing_ok, actual - expected - extra_ok
    assert not missing and not extra, f"{name}: missing {sorted(missing)}, extra {sorted(extra)}"


async def test_binance_shapes(binance: Emulator) -> None:
    client = make_client(binance)
    try:
        await client.load_markets()
        await client.create_order("BTC/USDT:USDT", "market", "sell", 0.01)
        spot_new = await client.privatePostOrder(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "60000",
                "newOrderRespType": "FULL",
            }
        )
        await client.create_order("BTC/USDT:USDT", "limit", "sell", 0.002, 75000)
        cases = [
            ("fetchBalance", "Spot balance", await client.privateGetAccount(), set(), set()),
            (
                "fetchBalance",
                "Linear swap balance",
                await client.fapiPrivateV2GetAccount(),
                set(),
                V2_POSITION_KEYS,
            ),
            (
                "fetchPositions",
                "Fetch linear positions using account endnpoint",
                await client.fapiPrivateV3GetAccount(),
                set(),
                set(),
            ),
            (
                "fetchPositions",
                "Fetch linear positions with symbols",
                await client.fapiPrivateV3GetPositionRisk({"symbol": "BTCUSDT"}),
                set(),
                set(),
            ),
            ("createOrder", "spot +selfTradePrevention +iceberg", spot_new, {"icebergQty"}, set()),
            (
                "fetchOrder",
                "Fetch spot closed order",
                await client.privateGetOrder({"symbol": "BTCUSDT", "orderId": spot_new["orderId"]}),
                set(),
                set(),
            ),
            (
                "fetchOpenOrders",
                "Fetch spot open orders",
                await client.privateGetOpenOrders({"symbol": "BTCUSDT"}),
                set(),
                set(),
            ),
            (
                "fetchOpenOrders",
                "open portfolio margin orders",
                await client.fapiPrivateGetOpenOrders({"symbol": "BTCUSDT"}),
                set(),
                FAPI_ORDER_KEYS,
            ),
            (
                "fetchTicker",
                "public spot ticker",
                await client.publicGetTicker24hr({"symbol": "BTCUSDT"}),
                set(),
                set(),
            ),
        ]
        for method, description, body, missing_ok, extra_ok in cases:
            assert_same_shape(
                f"binance {method} {description}",
                recorded("binance", method, description),
                body,
                missing_ok,
                extra_ok,
            )
        spot_info = (await client.publicGetExchangeInfo())["symbols"][0]
        perp_info = (await client.fapiPublicGetExchangeInfo())["symbols"][0]
        assert_same_shape("binance BTC/USDT market", market_info("binance", "BTC/USDT"), spot_info)
        assert_same_shape(
            "binance BTC/USDT:USDT market", market_info("binance", "BTC/USDT:USDT"), perp_info
        )
    finally:
        await client.close()


async def test_bybit_shapes(bybit: Emulator) -> None:
    client = make_client(bybit)
    try:
        await client.load_markets()
        perp, spot = "BTC/USDT:USDT", "BTC/USDT"
        await client.create_order(perp, "market", "sell", 0.01, None, {"clientOrderId": "c1"})
        await client.create_order(perp, "limit", "buy", 0.002, 60000, {"clientOrderId": "o1"})
        await client.create_order(spot, "market", "sell", 0.01, None, {"clientOrderId": "s1"})
        realtime = client.privateGetV5OrderRealtime
        cases = [
            (
                "fetchBalance",
                "balance after availableToWithdraw update",
                await client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"}),
                set(),
                set(),
            ),
            (
                "fetchPositions",
                "Fetch linear position",
                await client.privateGetV5PositionList({"category": "linear", "symbol": "BTCUSDT"}),
                BYBIT_CURSOR_ARTIFACT,
                BYBIT_POSITION_EXTRA,
            ),
            (
                "fetchPosition",
                "linear position",
                await client.privateGetV5PositionList({"category": "linear", "symbol": "ETHUSDT"}),
                set(),
                BYBIT_POSITION_EXTRA,
            ),
            (
                "createOrder",
                "create spot order",
                await client.privatePostV5OrderCreate(
                    {
                        "category": "spot",
                        "symbol": "BTCUSDT",
                        "side": "Buy",
                        "orderType": "Limit",
                        "qty": "0.001",
                        "price": "60000",
                    }
                ),
                set(),
                set(),
            ),
            (
                "fetchOpenOrder",
                "Fetch an open swap order by its ID and symbol",
                await realtime({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "o1"}),
                set(),
                BYBIT_NEWER_ORDER_KEYS,
            ),
            (
                "fetchClosedOrder",
                "Fetch swap closed order by its ID and symbol",
                await client.privateGetV5OrderHistory(
                    {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "c1"}
                ),
                set(),
                {"result.list[].marketUnit"},
            ),
            (
                "fetchOrder",
                "Spot sell closed order",
                await realtime({"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "s1"}),
                BYBIT_CURSOR_ARTIFACT,
                BYBIT_NEWER_ORDER_KEYS
                | {"result.list[].cumFeeDetail", "result.list[].cumFeeDetail.USDT"},
            ),
            (
                "fetchTicker",
                "swap ticker",
                await client.publicGetV5MarketTickers({"category": "linear", "symbol": "BTCUSDT"}),
                set(),
                set(),
            ),
        ]
        for method, description, body, missing_ok, extra_ok in cases:
            assert_same_shape(
                f"bybit {method} {description}",
                recorded("bybit", method, description),
                body,
                missing_ok,
                extra_ok,
            )
        info = client.publicGetV5MarketInstrumentsInfo
        spot_info = (await info({"category": "spot", "symbol": "BTCUSDT"}))["result"]["list"][0]
        perp_info = (await info({"category": "linear", "symbol": "BTCUSDT"}))["result"]["list"][0]
        assert_same_shape("bybit BTC/USDT market", market_info("bybit", spot), spot_info)
        assert_same_shape("bybit BTC/USDT:USDT market", market_info("bybit", perp), perp_info)
    finally:
        await client.close()


def test_key_paths_merges_list_items() -> None:
    assert key_paths({"a": [{"b": 1}, {"c": {"d": 2}}]}) == {"a", "a[].b", "a[].c", "a[].c.d"}
