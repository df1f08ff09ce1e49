"""Per-exchange knowledge of the ccxt adapter: pure functions, and environment switching
on real (offline) ccxt exchange objects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgekeeper.exceptions import VenueConfigError
from hedgekeeper.model import OrderRequest, OrderType, Side
from hedgekeeper.venues import ccxt_params
from hedgekeeper.venues.ccxt_params import (
    LookupMethod,
    balance_params,
    base_options,
    enter_environment,
    is_private_write,
    lookup_params,
    market_types_option,
    order_params,
    profile_for,
    replace_api_host,
)

SHORT = OrderRequest("hkA1g1s1", "BTC/USDT:USDT", Side.SELL, Decimal("0.002"))
TRIM = OrderRequest("hkA1g1s2", "BTC/USDT:USDT", Side.BUY, Decimal("0.001"), reduce_only=True)


def make_exchange(exchange_id: str) -> Any:
    import ccxt.async_support as ccxt_async

    return getattr(ccxt_async, exchange_id)({"apiKey": "key", "secret": "secretsecret"})


@pytest.mark.parametrize(
    ("exchange_id", "param"),
    [
        ("binance", "newClientOrderId"),
        ("binanceusdm", "newClientOrderId"),
        ("bybit", "orderLinkId"),
        ("okx", "clOrdId"),
        ("bingx", "clientOrderID"),
        ("mexc", "externalOid"),
        ("bitget", "clientOid"),
        ("kucoinfutures", "clientOrderId"),  # unknown: ccxt's unified name
    ],
)
def test_open_short_carries_client_id_under_the_exchange_name(exchange_id: str, param: str) -> None:
    params = order_params(exchange_id, SHORT, spot=False, hedged=False)

    assert params == {param: "hkA1g1s1"}


@pytest.mark.parametrize("exchange_id", ["binanceusdm", "bybit", "okx", "bingx", "mexc"])
def test_trim_in_one_way_mode_is_reduce_only(exchange_id: str) -> None:
    params = order_params(exchange_id, TRIM, spot=False, hedged=False)

    assert params["reduceOnly"] is True


@pytest.mark.parametrize(
    ("exchange_id", "hedge_params", "keeps_reduce_only"),
    [
        ("binanceusdm", {"positionSide": "SHORT"}, False),
        ("bingx", {"positionSide": "SHORT"}, False),
        ("bybit", {"positionIdx": 2}, True),
        ("okx", {"posSide": "short"}, False),
        ("mexc", {}, True),  # side codes 2/3 name the short leg in both modes
        ("bitget", {"hedged": True}, True),
    ],
)
def test_hedge_mode_puts_both_open_and_trim_on_the_short_side(
    exchange_id: str, hedge_params: dict[str, Any], keeps_reduce_only: bool
) -> None:
    opening = order_params(exchange_id, SHORT, spot=False, hedged=True)
    trimming = order_params(exchange_id, TRIM, spot=False, hedged=True)

    for key, value in hedge_params.items():
        assert opening[key] == value
        assert trimming[key] == value
    assert ("reduceOnly" in trimming) is keeps_reduce_only
    assert "reduceOnly" not in opening


def test_spot_orders_never_carry_reduce_only_or_position_side() -> None:
    request = OrderRequest("hkS1", "BTC/USDT", Side.SELL, Decimal(1), reduce_only=True)

    assert order_params("binance", request, spot=True, hedged=True) == {"newClientOrderId": "hkS1"}


def test_post_only_wins_over_time_in_force_and_market_orders_take_none() -> None:
    post = OrderRequest(
        "c1",
        "X/USDT:USDT",
        Side.SELL,
        Decimal(1),
        OrderType.LIMIT,
        Decimal(10),
        post_only=True,
        time_in_force="GTC",
    )
    ioc = OrderRequest(
        "c2", "X/USDT:USDT", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(10), time_in_force="IOC"
    )
    market = OrderRequest("c3", "X/USDT:USDT", Side.BUY, Decimal(1), time_in_force="IOC")

    assert order_params("bybit", post, spot=False, hedged=False) == {
        "orderLinkId": "c1",
        "postOnly": True,
    }
    assert order_params("bybit", ioc, spot=False, hedged=False)["timeInForce"] == "IOC"
    assert "timeInForce" not in order_params("bybit", market, spot=False, hedged=False)


def test_margin_mode_travels_with_orders_only_where_the_exchange_keeps_it_per_order() -> None:
    okx = order_params("okx", SHORT, spot=False, hedged=False, margin_mode="isolated")
    mexc = order_params("mexc", SHORT, spot=False, hedged=False, margin_mode="isolated", leverage=3)
    binance = order_params("binanceusdm", SHORT, spot=False, hedged=False, margin_mode="isolated")

    assert okx["marginMode"] == "isolated"
    assert mexc["marginMode"] == "isolated" and mexc["leverage"] == 3
    assert "marginMode" not in binance


@pytest.mark.parametrize(
    ("exchange_id", "action", "expected"),
    [
        ("binanceusdm", "cancel", {"origClientOrderId": "c"}),
        ("binanceusdm", "fetch", {"origClientOrderId": "c"}),
        ("bybit", "cancel", {"orderLinkId": "c"}),
        ("bybit", "fetch", {"orderLinkId": "c", "acknowledged": True}),
        ("okx", "fetch", {"clOrdId": "c"}),
        ("bingx", "cancel", {"clientOrderID": "c"}),
        ("bingx", "fetch", {"clientOrderId": "c"}),
        ("mexc", "fetch", {"external_oid": "c"}),
    ],
)
def test_lookup_params(exchange_id: str, action: Any, expected: dict[str, Any]) -> None:
    assert lookup_params(exchange_id, "c", spot=False, action=action) == expected


def test_mexc_contracts_are_looked_up_through_its_external_id_endpoints() -> None:
    assert profile_for("mexc").lookup is LookupMethod.MEXC_EXTERNAL
    assert profile_for("bybit").lookup_history_fallback is True
    assert profile_for("nonexistent").lookup is LookupMethod.UNIFIED


def test_market_types_take_each_exchange_shape() -> None:
    assert market_types_option("binance", ["spot", "linear"]) == ["spot", "linear"]
    assert market_types_option("bybit", ["linear"]) == ["linear"]
    assert market_types_option("okx", ["spot", "linear", "inverse"]) == ["spot", "swap"]
    assert market_types_option("mexc", ["spot", "linear"]) == {
        "spot": True,
        "swap": {"linear": True, "inverse": False},
    }
    assert market_types_option("kraken", ["spot"]) is None


def test_base_options_skip_currencies_and_keep_caller_overrides() -> None:
    options = base_options(
        "binance", ["linear"], {"fetchMarkets": {"loadAllOptions": False}, "recvWindow": 5000}
    )

    assert options["fetchCurrencies"] is False
    assert options["fetchOpenOrders"] == {"warnWithoutSymbol": False}
    assert options["setMarginMode"] == {"throwMarginModeAlreadySet": False}
    assert options["fetchMarkets"] == {"types": ["linear"], "loadAllOptions": False}
    assert options["recvWindow"] == 5000


def test_balance_reads_the_spot_wallet_where_the_exchange_needs_telling() -> None:
    assert balance_params("binance", ("spot", "linear")) == {"type": "spot"}
    assert balance_params("binanceusdm", ("spot", "linear")) == {}
    assert balance_params("bybit", ("spot", "linear")) == {}  # unified account
    assert balance_params("binance", ("linear",)) == {}


def test_replace_api_host_rewrites_every_url_and_keeps_paths() -> None:
    urls = {
        "fapiPrivate": "https://demo-fapi.binance.com/fapi/v1",
        "nested": {"public": "https://api-testnet.{hostname}", "list": ["wss://x.y/ws/z"]},
        "bare": "https://api.example.com",
        "other": 3,
    }

    replaced = replace_api_host(urls, "http://127.0.0.1:8443/")

    assert replaced == {
        "fapiPrivate": "http://127.0.0.1:8443/fapi/v1",
        # Streams keep a websocket scheme and their host as the first path segment.
        "nested": {"public": "http://127.0.0.1:8443", "list": ["ws://127.0.0.1:8443/x.y/ws/z"]},
        "bare": "http://127.0.0.1:8443",
        "other": 3,
    }
    assert urls["fapiPrivate"].startswith("https://demo-fapi")  # input untouched
    tls = replace_api_host("wss://stream.binance.com:9443/ws", "https://127.0.0.1:9")
    assert tls == "wss://127.0.0.1:9/stream.binance.com/ws"


@pytest.mark.parametrize(
    ("exchange_id", "api", "method", "path", "write"),
    [
        ("binance", ["fapiPrivate"], "GET", "order", False),
        ("binance", ["fapiPrivate"], "POST", "order", True),
        ("binance", ["fapiPrivate"], "DELETE", "order", True),
        ("binance", ["sapi"], "POST", "asset/transfer", True),
        ("binance", ["fapiPublic"], "POST", "anything", False),
        ("bybit", ["private"], "POST", "v5/position/set-leverage", True),
        ("okx", "private", "POST", "trade/batch-orders", True),
        ("kraken", ["private"], "POST", "Balance", False),  # Kraken reads with POST
        ("kraken", ["private"], "POST", "AddOrder", True),
        ("hyperliquid", ["public"], "POST", "withdraw3", True),
    ],
)
def test_is_private_write(exchange_id: str, api: Any, method: str, path: str, write: bool) -> None:
    assert is_private_write(exchange_id, api, method, path) is write


def urls_of(exchange: Any) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(exchange.urls["api"])
    return found


@pytest.mark.parametrize("exchange_id", ["binance", "binanceusdm"])
@pytest.mark.parametrize("environment", ["testnet", "demo"])
def test_binance_test_environments_are_demo_trading(exchange_id: str, environment: Any) -> None:
    exchange = make_exchange(exchange_id)

    enter_environment(exchange, exchange_id, environment)

    assert exchange.urls["api"]["fapiPrivate"].startswith("https://demo-fapi.binance.com")
    assert exchange.options["enableDemoTrading"] is True


def test_bybit_testnet_is_the_sandbox_and_demo_is_demo_trading() -> None:
    testnet, demo = make_exchange("bybit"), make_exchange("bybit")

    enter_environment(testnet, "bybit", "testnet")
    enter_environment(demo, "bybit", "demo")

    assert all("api-testnet." in url for url in urls_of(testnet))
    assert all("api-demo." in url for url in urls_of(demo))


def test_okx_simulated_trading_sends_its_header() -> None:
    exchange = make_exchange("okx")

    enter_environment(exchange, "okx", "testnet")

    assert exchange.headers["x-simulated-trading"] == "1"


def test_bitget_paper_trading_adds_the_paptrading_header_to_signed_requests() -> None:
    exchange = make_exchange("bitget")
    exchange.password = "passphrase"

    enter_environment(exchange, "bitget", "demo")
    signed = exchange.sign("v2/mix/account/accounts", ["private", "mix"], "GET", {})

    assert exchange.options["sandboxMode"] is True
    assert signed["headers"]["PAPTRADING"] == "1"


def test_bingx_sandbox_is_the_vst_host() -> None:
    exchange = make_exchange("bingx")

    enter_environment(exchange, "bingx", "testnet")

    assert all("open-api-vst." in url for url in urls_of(exchange))


def test_generic_exchange_with_a_test_url_uses_the_sandbox() -> None:
    exchange = make_exchange("gate")

    enter_environment(exchange, "gate", "testnet")

    assert all("testnet" in url for url in urls_of(exchange))


@pytest.mark.parametrize(
    ("exchange_id", "environment"), [("mexc", "testnet"), ("kraken", "demo"), ("htx", "testnet")]
)
def test_exchange_without_test_environment_is_a_config_error_naming_supported_ones(
    exchange_id: str, environment: Any
) -> None:
    exchange = make_exchange(exchange_id)

    with pytest.raises(VenueConfigError) as raised:
        enter_environment(exchange, exchange_id, environment)

    for supported in ("binance", "bybit", "okx", "bitget", "bingx"):
        assert supported in str(raised.value)
    assert "mexc" not in ccxt_params.supported_test_exchanges()


def test_live_leaves_the_exchange_alone() -> None:
    exchange = make_exchange("binance")
    before = dict(exchange.urls["api"])

    enter_environment(exchange, "binance", "live")

    assert exchange.urls["api"] == before


def test_leverage_params_name_the_short_leg_where_required() -> None:
    assert ccxt_params.leverage_params("bingx", hedged=True, margin_mode=None) == {"side": "SHORT"}
    assert ccxt_params.leverage_params("mexc", hedged=False, margin_mode="isolated") == {
        "marginMode": "isolated",
        "openType": 1,
        "positionType": 2,
    }
    assert ccxt_params.leverage_params("okx", hedged=True, margin_mode="isolated") == {
        "marginMode": "isolated",
        "posSide": "short",
    }
    assert ccxt_params.leverage_params("binanceusdm", hedged=True, margin_mode="cross") == {}
