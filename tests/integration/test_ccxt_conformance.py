"""Offline request conformance of the ccxt adapter.

Each test drives :class:`CcxtVenue` (not raw ccxt) with real markets recorded by
the ccxt project (``../shared/fixtures/ccxt/markets``) and replaces ccxt's HTTP
call (``venue.transport``) with :class:`FakeHttp`, which records the exact
request ccxt would send and either answers it through ccxt's own error handling
or raises :class:`Captured`. Parameter spellings are cross-checked against
ccxt's static request tests (``../shared/fixtures/ccxt/request``). No test
touches the network.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

from hedgekeeper.exceptions import (
    RetryableReadError,
    UnknownOutcomeError,
    VenueConfigError,
    WriteForbiddenError,
)
from hedgekeeper.model import MarketKind, OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.venues import ccxt_params
from hedgekeeper.venues.ccxt_venue import CcxtVenue

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ccxt"
CLIENT_ID = "hkT1g1s000001"
TRIM_ID = "hkT1g1s000002"


def fixture(kind: str, name: str) -> Any:
    path = FIXTURES / kind / f"{name}.json"
    if not path.exists():
        pytest.skip(f"../shared/fixtures absent: {path}")
    return json.loads(path.read_text())


class Captured(ccxt.RequestTimeout):
    """Raised instead of sending a request: ccxt sees a timeout."""


@dataclass
class Sent:
    """One HTTP request as ccxt built it."""

    method: str
    url: str
    headers: Mapping[str, Any]
    body: Any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, Any]:
        """Query string and body merged (urlencoded, JSON object or OKX's one-element list)."""
        return request_params(self.url, self.body)


def request_params(url: str, body: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(urlsplit(url).query))
    if isinstance(body, str) and body:
        try:
            body = json.loads(body)
        except ValueError:
            body = dict(parse_qsl(body))
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        params.update(body)
    return params


@dataclass
class FakeHttp:
    """Stands in for ccxt's fetch: records requests and answers the routed ones.

    Answers go through the exchange's own ``handle_errors`` and
    ``handle_http_status_code``, exactly as in ccxt's fetch.
    """

    exchange: Any
    sent: list[Sent] = field(default_factory=list)
    routes: list[tuple[str, str, Any, int]] = field(default_factory=list)

    def reply(self, method: str, path_end: str, body: Any, status: int = 200) -> None:
        self.routes.append((method, path_end, body, status))

    async def __call__(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        request = Sent(method, url, headers or {}, body)
        self.sent.append(request)
        for route_method, path_end, answer, status in self.routes:
            if route_method == method and request.path.endswith(path_end):
                text = answer if isinstance(answer, str) else json.dumps(answer)
                decoded = json.loads(text) if text.strip()[:1] in "[{" else None
                self.exchange.handle_errors(
                    status, "reason", url, method, {}, text, decoded, headers, body
                )
                self.exchange.handle_http_status_code(status, "reason", url, method, text)
                return decoded
        raise Captured(f"captured {method} {url}")

    def last(self) -> Sent:
        return self.sent[-1]


def tick_size_markets(exchange: Any, markets: dict[str, Any]) -> dict[str, Any]:
    """Some recorded markets (binance, bingx) predate ccxt's TICK_SIZE mode: convert them."""
    if exchange.precisionMode != 4:  # ccxt TICK_SIZE
        return markets
    for market in markets.values():
        precision = market.get("precision") or {}
        if precision and all(isinstance(precision.get(k), int) for k in ("amount", "price")):
            for key, digits in list(precision.items()):
                if isinstance(digits, int):
                    precision[key] = float(Decimal(1).scaleb(-digits))
    return markets


def make_venue(exchange_id: str, markets_file: str, **kwargs: Any) -> tuple[CcxtVenue, FakeHttp]:
    """A venue with recorded markets and a FakeHttp transport (markets need no request)."""
    markets = copy.deepcopy(fixture("markets", markets_file))
    options = dict(kwargs.pop("options", {}))
    if exchange_id == "bybit":
        # What ccxt's own static tests set: skip the one-off account-type probe.
        options.setdefault("enableUnifiedAccount", True)
        options.setdefault("enableUnifiedMargin", False)
    kwargs.setdefault("hedge_mode", False)
    venue = CcxtVenue(
        f"test-{exchange_id}",
        exchange_id,
        api_key="testkey123",
        secret="testsecret456",
        password="testpass789",
        options=options,
        **kwargs,
    )
    venue.exchange.enableRateLimit = False  # no throttling sleeps in tests
    venue.exchange.markets = tick_size_markets(venue.exchange, markets)
    venue.exchange.set_markets(venue.exchange.markets)
    http = FakeHttp(venue.exchange)
    venue.transport = http
    return venue, http


@pytest.fixture
async def closing() -> Any:
    venues: list[CcxtVenue] = []
    yield venues
    for venue in venues:
        await venue.close()


def fixture_request(exchange_id: str, method: str, description: str) -> Sent:
    """The request a ccxt static request test recorded."""
    data = fixture("request", exchange_id)
    for entry in data["methods"][method]:
        if entry["description"] == description:
            return Sent("?", entry["url"], {}, entry.get("output"))
    raise AssertionError(f"no {method} fixture {description!r} for {exchange_id}")


# -- the four requests the daemon depends on, per exchange ---------------------------------


@dataclass(frozen=True)
class Case:
    exchange_id: str
    markets: str
    symbol: str
    open_amount: str
    trim_amount: str
    create: tuple[str, str]  # method, path
    open_expected: Mapping[str, Any]  # params (values compared as lowercase strings)
    trim_expected: Mapping[str, Any]
    trim_absent: tuple[str, ...]
    cancel: tuple[str, str, Mapping[str, Any]]
    lookup: tuple[str, str, Mapping[str, Any]]
    lookup_absent: tuple[str, ...] = ()
    # (fixture method, description, our request, keys whose presence/value must agree)
    cross_checks: tuple[tuple[str, str, str, tuple[str, ...]], ...] = ()
    # ccxt's request fixtures to compare with (binanceusdm's own file has no orders).
    request_fixtures: str = ""


CASES = [
    Case(
        "binanceusdm",
        "binance",
        "BTC/USDT:USDT",
        "0.002",
        "0.001",
        ("POST", "/fapi/v1/order"),
        {"newClientOrderId": CLIENT_ID, "side": "SELL", "type": "MARKET", "quantity": "0.002"},
        {"newClientOrderId": TRIM_ID, "side": "BUY", "reduceOnly": "true", "quantity": "0.001"},
        ("positionSide",),
        ("DELETE", "/fapi/v1/order", {"origClientOrderId": CLIENT_ID, "symbol": "BTCUSDT"}),
        ("GET", "/fapi/v1/order", {"origClientOrderId": CLIENT_ID, "symbol": "BTCUSDT"}),
        ("orderId",),
        (
            ("createOrder", "Swap limit sell", "open", ("newClientOrderId",)),
            (
                "createOrder",
                "Swap limit buy with reduce only (closing short position)",
                "trim",
                ("reduceOnly", "newClientOrderId"),
            ),
            (
                "cancelOrder",
                "cancel swap order with clientOrderId",
                "cancel",
                ("origClientOrderId",),
            ),
        ),
        request_fixtures="binance",
    ),
    Case(
        "binance",
        "binance",
        "BTC/USDT:USDT",
        "0.002",
        "0.001",
        ("POST", "/fapi/v1/order"),
        {"newClientOrderId": CLIENT_ID, "side": "SELL", "quantity": "0.002"},
        {"newClientOrderId": TRIM_ID, "side": "BUY", "reduceOnly": "true"},
        ("positionSide",),
        ("DELETE", "/fapi/v1/order", {"origClientOrderId": CLIENT_ID}),
        ("GET", "/fapi/v1/order", {"origClientOrderId": CLIENT_ID}),
        ("orderId",),
        (
            (
                "createOrder",
                "Swap limit buy with reduce only (closing short position)",
                "trim",
                ("reduceOnly",),
            ),
            (
                "cancelOrder",
                "cancel swap order with clientOrderId",
                "cancel",
                ("origClientOrderId",),
            ),
        ),
    ),
    Case(
        "bybit",
        "bybit",
        "BTC/USDT:USDT",
        "0.002",
        "0.001",
        ("POST", "/v5/order/create"),
        {"orderLinkId": CLIENT_ID, "side": "Sell", "category": "linear", "qty": "0.002"},
        {"orderLinkId": TRIM_ID, "side": "Buy", "reduceOnly": True, "qty": "0.001"},
        ("positionIdx",),
        ("POST", "/v5/order/cancel", {"orderLinkId": CLIENT_ID, "category": "linear"}),
        ("GET", "/v5/order/realtime", {"orderLinkId": CLIENT_ID, "category": "linear"}),
        ("orderId", "acknowledged"),
        (
            ("createOrder", "Swap limit order", "open", ("category",)),
            (
                "createOrder",
                "Swap limit sell with reduceOnly and postOnly",
                "trim",
                ("reduceOnly", "category"),
            ),
            ("cancelOrder", "Swap cancelOrder", "cancel", ("category", "symbol")),
            ("fetchOpenOrders", "Swap fetchOpenOrders", "lookup", ("category",)),
        ),
    ),
    Case(
        "okx",
        "okx",
        "BTC/USDT:USDT",
        "2",
        "1",  # OKX counts contracts of 0.01 BTC
        ("POST", "/api/v5/trade/batch-orders"),
        {
            "clOrdId": CLIENT_ID,
            "side": "sell",
            "sz": "2",
            "instId": "BTC-USDT-SWAP",
            "tdMode": "cross",
        },
        {"clOrdId": TRIM_ID, "side": "buy", "reduceOnly": True, "sz": "1"},
        ("posSide",),
        ("POST", "/api/v5/trade/cancel-order", {"clOrdId": CLIENT_ID, "instId": "BTC-USDT-SWAP"}),
        ("GET", "/api/v5/trade/order", {"clOrdId": CLIENT_ID, "instId": "BTC-USDT-SWAP"}),
        ("ordId",),
        (
            ("createOrder", "spot order with clientOrderid", "open", ("clOrdId",)),
            (
                "createOrder",
                "Close an inverse swap position with a market reduceOnly order",
                "trim",
                ("reduceOnly", "tdMode"),
            ),
            ("cancelOrder", "Swap cancel order", "cancel", ("instId",)),
            ("fetchOrder", "Swap fetch order", "lookup", ("instId",)),
        ),
    ),
    Case(
        "bingx",
        "bingx",
        "BTC/USDT:USDT",
        "0.002",
        "0.001",
        ("POST", "/openApi/swap/v2/trade/order"),
        {"clientOrderID": CLIENT_ID, "side": "SELL", "positionSide": "BOTH", "quantity": "0.002"},
        {"clientOrderID": TRIM_ID, "side": "BUY", "reduceOnly": "true", "positionSide": "BOTH"},
        (),
        (
            "DELETE",
            "/openApi/swap/v2/trade/order",
            {"clientOrderID": CLIENT_ID, "symbol": "BTC-USDT"},
        ),
        ("GET", "/openApi/swap/v2/trade/order", {"clientOrderId": CLIENT_ID, "symbol": "BTC-USDT"}),
        ("orderId",),  # ccxt would send orderId=None here: the adapter strips it
        (
            ("createOrder", "Swap market buy order", "open", ("symbol",)),
            ("cancelOrder", "Swap cancel order", "cancel", ("symbol",)),
        ),
    ),
    Case(
        "mexc",
        "mexc",
        "BTC/USDT:USDT",
        "20",
        "10",  # MEXC counts contracts of 0.0001 BTC
        ("POST", "/api/v1/private/order/create"),
        {"externalOid": CLIENT_ID, "side": 3, "symbol": "BTC_USDT", "vol": 20.0},
        # MEXC has no reduce-only flag: "close short" (side 2) is reduce-only by nature.
        {"externalOid": TRIM_ID, "side": 2, "vol": 10.0},
        ("reduceOnly",),
        (
            "POST",
            "/api/v1/private/order/cancel_with_external",
            {"externalOid": CLIENT_ID, "symbol": "BTC_USDT"},
        ),
        ("GET", f"/api/v1/private/order/external/BTC_USDT/{CLIENT_ID}", {}),
        (),
        (
            ("createOrder", "Swap limit sell", "open", ("openType",)),
            (
                "createOrder",
                "Swap limit buy reduceOnly non-hedged - side must be 2, "
                "reduceOnly absent from body",
                "trim",
                ("side", "reduceOnly"),
            ),
        ),
    ),
]


CASES.append(
    Case(
        "weex",
        "weex",
        "BTC/USDT:USDT",
        "0.002",  # WEEX counts the base coin (BTC), not contracts of contractSize 0.0001
        "0.001",
        ("POST", "/capi/v3/order"),
        {
            "newClientOrderId": CLIENT_ID,
            "side": "SELL",
            "positionSide": "SHORT",
            "quantity": "0.002",
            "type": "MARKET",
        },
        # Reduce-only travels as the flag plus the side being closed.
        {
            "newClientOrderId": TRIM_ID,
            "side": "BUY",
            "positionSide": "SHORT",
            "reduceOnly": True,
            "quantity": "0.001",
        },
        (),
        ("DELETE", "/capi/v3/order", {"origClientOrderId": CLIENT_ID}),
        # No look-up by client id for WEEX contracts: the open orders are read first.
        ("GET", "/capi/v3/openOrders", {"symbol": "BTCUSDT"}),
        ("orderId", "origClientOrderId"),
        (
            ("createOrder", "create market swap order", "open", ("type",)),
            ("cancelOrder", "cancel swap order", "cancel", ()),
            ("fetchOpenOrders", "fetch open swap orders", "lookup", ("symbol",)),
        ),
    )
)


def assert_params(sent: Sent, expected: Mapping[str, Any], absent: tuple[str, ...]) -> None:
    params = sent.params
    for key, value in expected.items():
        assert key in params, f"{key} missing from {sent.method} {sent.url} {sent.body}"
        assert str(params[key]).lower() == str(value).lower(), (key, params[key], value)
    for key in absent:
        assert key not in params, f"{key} unexpectedly in {sent.params}"


async def four_requests(case: Case, closing: list[CcxtVenue]) -> dict[str, Sent]:
    venue, http = make_venue(case.exchange_id, case.markets)
    closing.append(venue)
    symbol = case.symbol
    opening = OrderRequest(CLIENT_ID, symbol, Side.SELL, Decimal(case.open_amount))
    trimming = OrderRequest(TRIM_ID, symbol, Side.BUY, Decimal(case.trim_amount), reduce_only=True)
    sent: dict[str, Sent] = {}
    for name, call in (
        ("open", lambda: venue.submit_order(opening)),
        ("trim", lambda: venue.submit_order(trimming)),
        ("cancel", lambda: venue.cancel_order(symbol, CLIENT_ID)),
    ):
        with pytest.raises(UnknownOutcomeError) as raised:  # a timeout after sending
            await call()
        assert isinstance(raised.value.__cause__, Captured)
        sent[name] = http.last()
    with pytest.raises(RetryableReadError):
        await venue.fetch_order(symbol, CLIENT_ID)
    sent["lookup"] = http.last()
    assert venue.request_count == len(http.sent) == 4  # nothing else was asked
    return sent


@pytest.mark.parametrize("case", CASES, ids=[case.exchange_id for case in CASES])
async def test_open_trim_cancel_lookup_requests(case: Case, closing: list[CcxtVenue]) -> None:
    sent = await four_requests(case, closing)

    assert (sent["open"].method, sent["open"].path) == case.create
    assert_params(sent["open"], case.open_expected, ("reduceOnly",))
    assert (sent["trim"].method, sent["trim"].path) == case.create
    assert_params(sent["trim"], case.trim_expected, case.trim_absent)
    method, path, expected = case.cancel
    assert (sent["cancel"].method, sent["cancel"].path) == (method, path)
    assert_params(sent["cancel"], expected, ("orderId", "ordId"))
    method, path, expected = case.lookup
    assert (sent["lookup"].method, sent["lookup"].path) == (method, path)
    assert_params(sent["lookup"], expected, case.lookup_absent)
    assert "None" not in sent["lookup"].url


@pytest.mark.parametrize("case", CASES, ids=[case.exchange_id for case in CASES])
async def test_spellings_agree_with_ccxt_static_request_tests(
    case: Case, closing: list[CcxtVenue]
) -> None:
    sent = await four_requests(case, closing)

    for method, description, ours, keys in case.cross_checks:
        recorded = fixture_request(case.request_fixtures or case.exchange_id, method, description)
        mine = sent[ours]
        assert mine.path == recorded.path, (description, mine.path, recorded.path)
        for key in keys:
            assert (key in mine.params) == (key in recorded.params), (description, key)
            if key in recorded.params and key not in (
                "newClientOrderId",
                "origClientOrderId",
                "clOrdId",
                "symbol",
                "instId",
            ):
                assert str(mine.params[key]).lower() == str(recorded.params[key]).lower(), (
                    description,
                    key,
                )


# -- what some exchanges cannot do ---------------------------------------------------------


async def test_mexc_has_no_test_environment() -> None:
    with pytest.raises(VenueConfigError, match=r"supported: .*binance.*bybit"):
        CcxtVenue("m", "mexc", environment="testnet")


async def test_bingx_test_environment_has_no_spot_markets() -> None:
    venue = CcxtVenue("b", "bingx", environment="testnet")
    try:
        assert venue.exchange.options["sandboxMode"] is True  # ccxt then skips spot markets
    finally:
        await venue.close()


# -- position mode -------------------------------------------------------------------------


async def test_binance_hedge_mode_is_read_once_and_orders_use_the_short_side(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("binanceusdm", "binance", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/fapi/v1/positionSide/dual", {"dualSidePosition": True})

    for request in (
        OrderRequest("hkA", "BTC/USDT:USDT", Side.SELL, Decimal("0.002")),
        OrderRequest("hkB", "BTC/USDT:USDT", Side.BUY, Decimal("0.001"), reduce_only=True),
    ):
        with pytest.raises(UnknownOutcomeError):
            await venue.submit_order(request)

    assert [s.path for s in http.sent].count("/fapi/v1/positionSide/dual") == 1
    open_order, trim = http.sent[-2], http.sent[-1]
    assert_params(open_order, {"positionSide": "SHORT", "side": "SELL"}, ("reduceOnly",))
    # Binance refuses reduceOnly in hedge mode: a buy on the SHORT side can only reduce.
    assert_params(trim, {"positionSide": "SHORT", "side": "BUY"}, ("reduceOnly",))
    assert all(s.method == "GET" or s.path == "/fapi/v1/order" for s in http.sent)


async def test_okx_long_short_mode_sends_pos_side_short(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("okx", "okx", hedge_mode=None)
    closing.append(venue)
    http.reply(
        "GET",
        "/api/v5/account/config",
        {"code": "0", "msg": "", "data": [{"posMode": "long_short_mode", "uid": "1"}]},
    )

    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(
            OrderRequest("hkA", "BTC/USDT:USDT", Side.BUY, Decimal(1), reduce_only=True)
        )

    assert_params(http.last(), {"posSide": "short", "side": "buy"}, ("reduceOnly",))


async def test_bybit_hedge_mode_is_read_from_position_legs(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit", hedge_mode=None)
    closing.append(venue)
    recorded = response_of("bybit", "fetchPositions", "Fetch linear position")
    leg = dict(recorded["result"]["list"][0], symbol="BTCUSDT", size="0", side="")
    recorded["result"]["list"] = [dict(leg, positionIdx=1), dict(leg, positionIdx=2)]
    http.reply("GET", "/v5/position/list", recorded)

    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(OrderRequest("hkA", "BTC/USDT:USDT", Side.SELL, Decimal("0.002")))

    assert_params(http.last(), {"positionIdx": 2, "side": "Sell"}, ())


async def test_position_mode_is_only_read_unless_configured(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("binanceusdm", "binance", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/fapi/v1/positionSide/dual", {"dualSidePosition": False})

    await venue.setup_instrument("BTC/USDT:USDT", None, None)

    assert [s.method for s in http.sent] == ["GET"]


async def test_setup_instrument_enforces_configured_mode_and_tolerates_already_set(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("binanceusdm", "binance", hedge_mode=False)
    closing.append(venue)
    http.reply(
        "POST",
        "/fapi/v1/positionSide/dual",
        {"code": -4059, "msg": "No need to change position side."},
        status=400,
    )
    http.reply(
        "POST",
        "/fapi/v1/marginType",
        {"code": -4046, "msg": "No need to change margin type."},
        status=400,
    )
    http.reply(
        "POST",
        "/fapi/v1/leverage",
        {"symbol": "BTCUSDT", "leverage": 3, "maxNotionalValue": "1000000"},
    )

    await venue.setup_instrument("BTC/USDT:USDT", 3, "isolated")

    assert [s.path for s in http.sent] == [
        "/fapi/v1/positionSide/dual",
        "/fapi/v1/marginType",
        "/fapi/v1/leverage",
    ]
    assert_params(http.sent[0], {"dualSidePosition": "false"}, ())
    assert_params(http.sent[1], {"marginType": "ISOLATED"}, ())
    assert_params(http.sent[2], {"leverage": "3"}, ())


async def test_bybit_leverage_not_modified_is_success(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/v5/position/list", {"retCode": 0, "result": {"list": []}})
    http.reply(
        "POST",
        "/v5/position/set-leverage",
        {"retCode": 110043, "retMsg": "leverage not modified", "result": {}},
    )

    await venue.setup_instrument("BTC/USDT:USDT", 2, None)

    assert_params(http.last(), {"buyLeverage": "2", "sellLeverage": "2"}, ())


async def test_a_refused_setting_is_a_config_error(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("binanceusdm", "binance", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/fapi/v1/positionSide/dual", {"dualSidePosition": False})
    http.reply(
        "POST",
        "/fapi/v1/marginType",
        {"code": -4048, "msg": "Margin type cannot be changed if there exists position."},
        status=400,
    )

    with pytest.raises(VenueConfigError, match="-4048"):
        await venue.setup_instrument("BTC/USDT:USDT", None, "isolated")


# -- dry-run guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.exchange_id for case in CASES])
async def test_read_only_refuses_writes_before_any_request(
    case: Case, closing: list[CcxtVenue]
) -> None:
    venue, http = make_venue(case.exchange_id, case.markets, read_only=True, hedge_mode=None)
    closing.append(venue)
    order = OrderRequest(CLIENT_ID, case.symbol, Side.SELL, Decimal(case.open_amount))

    with pytest.raises(WriteForbiddenError):
        await venue.submit_order(order)
    with pytest.raises(WriteForbiddenError):
        await venue.cancel_order(case.symbol, CLIENT_ID)
    with pytest.raises(WriteForbiddenError):
        await venue.setup_instrument(case.symbol, 2, None)
    # Below the adapter: ccxt's own methods hit the guard in fetch2.
    with pytest.raises(WriteForbiddenError):
        await venue.exchange.create_order(case.symbol, "market", "sell", float(case.open_amount))
    with pytest.raises(WriteForbiddenError):
        await venue.exchange.cancel_order("123", case.symbol)

    assert http.sent == []
    with pytest.raises(RetryableReadError):  # reads still go out
        await venue.fetch_order(case.symbol, CLIENT_ID)
    assert [s.method for s in http.sent] == ["GET"]


# -- replies -------------------------------------------------------------------------------


def response_of(exchange_id: str, method: str, description: str) -> Any:
    for entry in fixture("response", exchange_id)["methods"][method]:
        if entry["description"] == description:
            return copy.deepcopy(entry["httpResponse"])
    raise AssertionError(f"no {method} response {description!r}")


def binance_order(client_id: str, status: str, executed: str) -> dict[str, Any]:
    return {
        "orderId": 4056,
        "symbol": "BTCUSDT",
        "status": status,
        "clientOrderId": client_id,
        "price": "0",
        "avgPrice": "60000",
        "origQty": "0.002",
        "executedQty": executed,
        "cumQuote": "120",
        "timeInForce": "GTC",
        "type": "MARKET",
        "reduceOnly": False,
        "closePosition": False,
        "side": "SELL",
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "origType": "MARKET",
        "time": 1700000000000,
        "updateTime": 1700000000001,
    }


async def test_submit_returns_the_order_binance_reports(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    http.reply("POST", "/fapi/v1/order", binance_order(CLIENT_ID, "FILLED", "0.002"))

    info = await venue.submit_order(
        OrderRequest(CLIENT_ID, "BTC/USDT:USDT", Side.SELL, Decimal("0.002"))
    )

    assert info.status is OrderStatus.FILLED
    assert info.filled == Decimal("0.002") and info.average_price == Decimal(60000)
    assert info.exchange_order_id == "4056" and info.client_order_id == CLIENT_ID


async def test_submit_acknowledged_with_ids_only_is_working(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit")
    closing.append(venue)
    http.reply(
        "POST",
        "/v5/order/create",
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"orderId": "abc", "orderLinkId": CLIENT_ID},
            "retExtInfo": {},
            "time": 1700000000000,
        },
    )
    request = OrderRequest(
        CLIENT_ID,
        "BTC/USDT:USDT",
        Side.SELL,
        Decimal("0.002"),
        OrderType.LIMIT,
        Decimal(60000),
        post_only=True,
    )

    info = await venue.submit_order(request)

    assert info.status is OrderStatus.OPEN and info.amount == Decimal("0.002")
    assert info.exchange_order_id == "abc"
    assert_params(http.last(), {"timeInForce": "PostOnly", "price": "60000"}, ())


async def test_rejected_order_on_loopback_is_rejected_not_unknown(
    closing: list[CcxtVenue],
) -> None:
    from hedgekeeper.exceptions import OrderRejectedError

    venue, http = make_venue("binanceusdm", "binance", api_host="http://127.0.0.1:8443")
    closing.append(venue)
    http.reply(
        "POST", "/fapi/v1/order", {"code": -2019, "msg": "Margin is insufficient."}, status=400
    )

    with pytest.raises(OrderRejectedError, match="-2019") as raised:
        await venue.submit_order(
            OrderRequest(CLIENT_ID, "BTC/USDT:USDT", Side.SELL, Decimal("0.002"))
        )

    assert type(raised.value.__cause__) is ccxt.ExchangeError  # the loopback quirk
    assert "testsecret456" not in str(raised.value)


async def test_cancel_of_an_unknown_order_returns_its_final_state(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    http.reply(
        "DELETE", "/fapi/v1/order", {"code": -2011, "msg": "Unknown order sent."}, status=400
    )
    http.reply("GET", "/fapi/v1/order", binance_order(CLIENT_ID, "FILLED", "0.002"))

    info = await venue.cancel_order("BTC/USDT:USDT", CLIENT_ID)

    assert info is not None and info.status is OrderStatus.FILLED
    assert [s.method for s in http.sent] == ["DELETE", "GET"]


async def test_cancel_and_lookup_of_an_order_the_venue_never_saw_is_none(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    http.reply(
        "DELETE", "/fapi/v1/order", {"code": -2011, "msg": "Unknown order sent."}, status=400
    )
    http.reply("GET", "/fapi/v1/order", {"code": -2013, "msg": "Order does not exist."}, status=400)

    assert await venue.cancel_order("BTC/USDT:USDT", CLIENT_ID) is None
    assert await venue.fetch_order("BTC/USDT:USDT", CLIENT_ID) is None


async def test_cancel_acknowledged_with_ids_reads_the_final_state(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("okx", "okx")
    closing.append(venue)
    http.reply(
        "POST",
        "/api/v5/trade/cancel-order",
        {
            "code": "0",
            "msg": "",
            "data": [{"clOrdId": CLIENT_ID, "ordId": "77", "sCode": "0", "sMsg": ""}],
        },
    )
    http.reply(
        "GET",
        "/api/v5/trade/order",
        {
            "code": "0",
            "msg": "",
            "data": [
                {
                    "instType": "SWAP",
                    "instId": "BTC-USDT-SWAP",
                    "ordId": "77",
                    "clOrdId": CLIENT_ID,
                    "px": "60000",
                    "sz": "2",
                    "ordType": "limit",
                    "side": "sell",
                    "posSide": "net",
                    "tdMode": "cross",
                    "accFillSz": "1",
                    "avgPx": "60000",
                    "state": "canceled",
                    "fee": "-0.01",
                    "feeCcy": "USDT",
                    "cTime": "1700000000000",
                    "uTime": "1700000000001",
                    "reduceOnly": "false",
                }
            ],
        },
    )

    info = await venue.cancel_order("BTC/USDT:USDT", CLIENT_ID)

    assert info is not None and info.status is OrderStatus.CANCELED
    assert info.amount == Decimal(2) and info.filled == Decimal(1)
    assert info.fee_usd == Decimal("0.01")


async def test_bybit_lookup_falls_back_to_order_history(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit")
    closing.append(venue)
    history = response_of(
        "bybit", "fetchClosedOrder", "Fetch swap closed order by its ID and symbol"
    )
    history["result"]["list"][0]["orderLinkId"] = CLIENT_ID
    http.reply(
        "GET",
        "/v5/order/realtime",
        {"retCode": 0, "retMsg": "OK", "result": {"list": [], "category": "linear"}},
    )
    http.reply("GET", "/v5/order/history", history)

    info = await venue.fetch_order("BTC/USDT:USDT", CLIENT_ID)

    assert info is not None and info.status is OrderStatus.FILLED
    assert info.client_order_id == CLIENT_ID
    assert [s.path for s in http.sent] == ["/v5/order/realtime", "/v5/order/history"]
    assert_params(http.last(), {"orderLinkId": CLIENT_ID}, ())


async def test_mexc_lookup_by_external_id(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("mexc", "mexc")
    closing.append(venue)
    http.reply(
        "GET",
        f"/order/external/BTC_USDT/{CLIENT_ID}",
        {
            "success": True,
            "code": 0,
            "data": {
                "orderId": "1",
                "symbol": "BTC_USDT",
                "positionId": 1,
                "price": 60000,
                "vol": 20,
                "leverage": 5,
                "side": 3,
                "category": 1,
                "orderType": 5,
                "dealAvgPrice": 60000,
                "dealVol": 20,
                "orderMargin": 1,
                "takerFee": 0.01,
                "makerFee": 0,
                "profit": 0,
                "feeCurrency": "USDT",
                "openType": 2,
                "state": 3,
                "externalOid": CLIENT_ID,
                "errorCode": 0,
                "usedMargin": 1,
                "createTime": 1700000000000,
                "updateTime": 1700000000001,
            },
        },
    )

    info = await venue.fetch_order("BTC/USDT:USDT", CLIENT_ID)

    assert info is not None and info.status is OrderStatus.FILLED
    assert info.side is Side.SELL and info.amount == Decimal(20)


async def test_positions_are_signed_contracts_and_absent_means_flat(
    closing: list[CcxtVenue],
) -> None:
    brackets = fixture("request", "binance")["options"]["leverageBrackets"]
    venue, http = make_venue(
        "binance",
        "binance",
        options={"leverageBrackets": brackets},
        market_types=("spot", "linear", "inverse"),
    )
    closing.append(venue)
    http.reply(
        "GET",
        "/fapi/v3/positionRisk",
        response_of("binance", "fetchPositions", "Fetch linear positions with symbols"),
    )
    http.reply(
        "GET",
        "/dapi/v1/positionRisk",
        response_of("binance", "fetchPositions", "inverse positions"),
    )

    positions = await venue.fetch_positions(
        ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC", "BTC/USDT"]
    )

    assert positions["BTC/USDT:USDT"].contracts == Decimal("0.009")
    assert positions["BTC/USDT:USDT"].entry_price == Decimal("67445.9")
    assert positions["BTC/USDT:USDT"].liquidation_price == Decimal("64846.78939917")
    # The same figures ccxt's own response test expects from this reply.
    assert positions["BTC/USDT:USDT"].margin_ratio == Decimal("0.0946")
    # A cross-margin position: ccxt's collateral (25.73 USD, its own margin) is not what
    # backs it — the wallet is — so it is not reported as the position's collateral.
    assert positions["BTC/USDT:USDT"].collateral_usd is None
    assert positions["BTC/USDT:USDT"].maintenance_margin_usd == Decimal("2.4329592")
    assert positions["BTC/USD:BTC"].collateral_usd is None  # inverse: margin is in BTC
    assert positions["ETH/USDT:USDT"].contracts == 0
    assert positions["ETH/USDT:USDT"].entry_price is None
    assert positions["BTC/USD:BTC"].contracts == Decimal(-3)  # inverse: contracts of 100 USD
    assert "BTC/USDT" not in positions  # spot has no position
    assert venue.request_count == 2  # one per market type


@pytest.mark.parametrize(
    "reply",
    [
        {"not": "a list"},
        [{"symbol": "BTCUSDT", "positionAmt": "abc", "positionSide": "BOTH"}],
    ],
)
async def test_an_unreadable_positions_reply_is_a_failed_read_never_zero(
    reply: Any, closing: list[CcxtVenue]
) -> None:
    brackets = fixture("request", "binance")["options"]["leverageBrackets"]
    venue, http = make_venue("binanceusdm", "binance", options={"leverageBrackets": brackets})
    closing.append(venue)
    http.reply("GET", "/fapi/v3/positionRisk", reply)

    with pytest.raises(RetryableReadError):
        await venue.fetch_positions(["BTC/USDT:USDT"])


async def test_bybit_unified_balances_are_totals(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit")
    closing.append(venue)
    recorded = response_of("bybit", "fetchBalance", "balance after availableToWithdraw update")
    http.reply("GET", "/v5/account/wallet-balance", recorded)
    expected_total = next(
        entry
        for entry in fixture("response", "bybit")["methods"]["fetchBalance"]
        if entry["description"] == "balance after availableToWithdraw update"
    )["parsedResponse"]["total"]

    balances = await venue.fetch_balances()

    assert balances == {
        asset: Decimal(str(total)) for asset, total in expected_total.items() if total
    }
    assert_params(http.last(), {"accountType": "UNIFIED"}, ())


async def test_binance_futures_quotes_use_book_and_mark(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    http.reply(
        "GET",
        "/fapi/v1/premiumIndex",
        [
            {
                "symbol": "BTCUSDT",
                "markPrice": "60000.10",
                "indexPrice": "60001.20",
                "estimatedSettlePrice": "60000",
                "lastFundingRate": "0.0001",
                "interestRate": "0.0001",
                "nextFundingTime": 1700003600000,
                "time": 1700000000000,
            }
        ],
    )
    http.reply(
        "GET",
        "/fapi/v1/ticker/bookTicker",
        {
            "symbol": "BTCUSDT",
            "bidPrice": "59999.9",
            "bidQty": "1",
            "askPrice": "60000.0",
            "askQty": "2",
            "time": 1700000000000,
        },
    )

    quotes = await venue.fetch_quotes(["BTC/USDT:USDT"])

    quote = quotes["BTC/USDT:USDT"]
    assert (quote.bid, quote.ask) == (Decimal("59999.9"), Decimal("60000.0"))
    assert (quote.mark, quote.index) == (Decimal("60000.10"), Decimal("60001.20"))
    assert quote.timestamp == 1700000000.0
    assert venue.request_count == 2


async def test_bybit_quotes_come_from_one_tickers_request(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("bybit", "bybit")
    closing.append(venue)
    recorded = response_of("bybit", "fetchTicker", "swap ticker")
    btc = recorded["result"]["list"][0]
    recorded["result"]["list"] = [btc, dict(btc, symbol="ETHUSDT")]
    http.reply("GET", "/v5/market/tickers", recorded)

    quotes = await venue.fetch_quotes(["BTC/USDT:USDT", "ETH/USDT:USDT"])

    assert quotes["BTC/USDT:USDT"].mark == Decimal(btc["markPrice"])
    assert quotes["BTC/USDT:USDT"].index == Decimal(btc["indexPrice"])
    assert quotes["ETH/USDT:USDT"].bid == Decimal(btc["bid1Price"])
    assert quotes["ETH/USDT:USDT"].ask == Decimal(btc["ask1Price"])
    assert venue.request_count == 1


async def test_open_orders_are_read_per_symbol_where_cheaper(closing: list[CcxtVenue]) -> None:
    # Binance USDⓈ-M weighs a symbol-less read as 40 per-symbol ones: two symbols, two reads.
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    ours = dict(binance_order("hkT1g1s9", "NEW", "0"), side="SELL")
    theirs = dict(binance_order("web_123", "NEW", "0"), orderId=5)
    eth = dict(binance_order("hkT1g2s1", "NEW", "0"), symbol="ETHUSDT", orderId=6)
    http.reply("GET", "/fapi/v1/openOrders", [ours, theirs, eth])

    orders = await venue.fetch_open_orders(["BTC/USDT:USDT", "ETH/USDT:USDT"], "hkT1")

    # Each read keeps only its own symbol's orders (the fake answers both with all three).
    assert sorted(o.client_order_id for o in orders) == ["hkT1g1s9", "hkT1g2s1"]
    assert all(o.status is OrderStatus.OPEN for o in orders)
    assert venue.request_count == 2
    assert sorted(sent.params.get("symbol") for sent in http.sent) == ["BTCUSDT", "ETHUSDT"]


async def test_open_orders_above_the_per_symbol_limit_in_one_request(
    closing: list[CcxtVenue], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = ccxt_params.PROFILES["binanceusdm"]
    monkeypatch.setitem(
        ccxt_params.PROFILES, "binanceusdm",  # type: ignore[arg-type]
        dataclasses.replace(profile, open_orders_per_symbol=1),
    )  # fmt: skip
    venue, http = make_venue("binanceusdm", "binance")
    closing.append(venue)
    ours = dict(binance_order("hkT1g1s9", "NEW", "0"), side="SELL")
    eth = dict(binance_order("hkT1g2s1", "NEW", "0"), symbol="ETHUSDT", orderId=6)
    http.reply("GET", "/fapi/v1/openOrders", [ours, eth])

    orders = await venue.fetch_open_orders(["BTC/USDT:USDT", "ETH/USDT:USDT"], "hkT1")

    assert sorted(o.client_order_id for o in orders) == ["hkT1g1s9", "hkT1g2s1"]
    assert venue.request_count == 1
    assert "symbol" not in http.last().params  # all symbols at once, no ccxt warning


# -- markets ---------------------------------------------------------------------------------


async def test_market_specs_from_recorded_markets(closing: list[CcxtVenue]) -> None:
    okx, okx_http = make_venue("okx", "okx")
    binance, binance_http = make_venue("binance", "binance")
    closing.extend([okx, binance])

    okx_specs = await okx.load_markets(["BTC/USDT:USDT", "BTC/USD:BTC", "NOPE/USDT:USDT"])
    binance_specs = await binance.load_markets(["LTC/USDT:USDT", "BTC/USDT", "BTC/USD:BTC"])

    linear = okx_specs["BTC/USDT:USDT"]
    assert (linear.kind, linear.contract_size, linear.amount_step, linear.min_amount) == (
        MarketKind.LINEAR,
        Decimal("0.01"),
        Decimal("0.1"),
        Decimal("0.1"),
    )
    assert okx_specs["BTC/USD:BTC"].kind is MarketKind.INVERSE
    assert okx_specs["BTC/USD:BTC"].contract_size == Decimal(100)
    assert "NOPE/USDT:USDT" not in okx_specs
    ltc = binance_specs["LTC/USDT:USDT"]
    assert (ltc.amount_step, ltc.min_notional, ltc.price_step) == (
        Decimal("0.001"),
        Decimal(5),
        Decimal("0.01"),
    )
    assert binance_specs["BTC/USDT"].kind is MarketKind.SPOT
    assert okx_http.sent == binance_http.sent == []


async def test_decimal_places_precision_is_converted_to_a_step() -> None:
    venue = CcxtVenue("d", "binance")
    try:
        markets = copy.deepcopy(fixture("markets", "binance"))
        venue.exchange.precisionMode = 2  # ccxt DECIMAL_PLACES, as these markets were recorded
        venue.exchange.set_markets(markets)

        specs = await venue.load_markets(["LTC/USDT:USDT"])

        assert specs["LTC/USDT:USDT"].amount_step == Decimal("0.001")
    finally:
        await venue.close()


async def test_load_markets_asks_only_for_configured_types_and_no_currencies(
    closing: list[CcxtVenue],
) -> None:
    venue = CcxtVenue(
        "b", "binance", api_key="k" * 8, secret="s" * 8, market_types=("spot", "linear")
    )
    closing.append(venue)
    venue.exchange.enableRateLimit = False
    http = FakeHttp(venue.exchange)
    venue.transport = http
    empty = {
        "timezone": "UTC",
        "serverTime": 1,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [],
        "assets": [],
    }
    http.reply("GET", "/api/v3/exchangeInfo", empty)
    http.reply("GET", "/fapi/v1/exchangeInfo", empty)

    await venue.load_markets(["BTC/USDT"])

    assert sorted(s.path for s in http.sent) == ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo"]


# -- plumbing --------------------------------------------------------------------------------


async def test_api_host_replaces_every_url_after_the_demo_switch(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue(
        "binanceusdm", "binance", environment="demo", api_host="http://127.0.0.1:8443"
    )
    closing.append(venue)

    def urls(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        return [u for item in value.values() for u in urls(item)] if isinstance(value, dict) else []

    assert all(url.startswith("http://127.0.0.1:8443") for url in urls(venue.exchange.urls["api"]))
    assert venue.exchange.urls["api"]["fapiPrivate"] == "http://127.0.0.1:8443/fapi/v1"
    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(OrderRequest("hkA", "BTC/USDT:USDT", Side.SELL, Decimal("0.002")))
    assert (
        http.last().url.startswith("http://127.0.0.1:8443/fapi/v1/order?")
        or http.last().url == "http://127.0.0.1:8443/fapi/v1/order"
    )


async def test_an_injected_session_is_used_and_left_open() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        venue = CcxtVenue("s", "binance", session=session)
        assert venue.exchange.session is session

        await venue.close()

        assert not session.closed


async def test_unknown_exchange_is_a_config_error() -> None:
    with pytest.raises(VenueConfigError, match="no exchange"):
        CcxtVenue("x", "not_an_exchange")


def test_the_adapter_modules_do_not_import_ccxt() -> None:
    code = (
        "import sys\n"
        "import hedgekeeper.venues.ccxt_venue, hedgekeeper.venues.ccxt_errors\n"
        "import hedgekeeper.venues.ccxt_params, hedgekeeper.venues.ccxt_normalize\n"
        "import hedgekeeper.venues.ccxt_client\n"
        "print('ccxt' in sys.modules)\n"
    )
    daemon = Path(__file__).resolve().parents[2] / "daemon"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=daemon
    )

    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("exchange_id", "markets", "path", "expected"),
    [
        ("binanceusdm", "binance", "/fapi/v1/leverage", {"leverage": "3", "symbol": "BTCUSDT"}),
        ("bybit", "bybit", "/v5/position/set-leverage", {"buyLeverage": "3", "sellLeverage": "3"}),
        ("okx", "okx", "/api/v5/account/set-leverage", {"lever": "3", "mgnMode": "cross"}),
        ("bingx", "bingx", "/openApi/swap/v2/trade/leverage", {"leverage": "3", "side": "BOTH"}),
        (
            "mexc",
            "mexc",
            "/api/v1/private/position/change_leverage",
            {"leverage": "3", "openType": "2", "positionType": "2"},
        ),
    ],
)
async def test_leverage_request_for_the_short_leg(
    exchange_id: str,
    markets: str,
    path: str,
    expected: dict[str, Any],
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue(exchange_id, markets, hedge_mode=None)
    closing.append(venue)
    venue.exchange.has["fetchPositionMode"] = False  # one-way, without asking
    http.reply("GET", "/v5/position/list", {"retCode": 0, "result": {"list": []}})

    with pytest.raises(UnknownOutcomeError):  # Captured: a timeout after sending
        await venue.setup_instrument("BTC/USDT:USDT", 3, None)

    assert (http.last().method, http.last().path) == ("POST", path)
    assert_params(http.last(), expected, ())
