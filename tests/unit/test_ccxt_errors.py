"""ccxt errors are translated once into hedgekeeper's exceptions.

Errors are produced by ccxt itself (``handle_errors`` / ``handle_http_status_code``
on real exchange objects, no network) from bodies the exchanges send, so the
loopback quirk (Binance's generic error table for non-binance.com URLs) is
covered the way the emulator will hit it.
"""

from __future__ import annotations

import json
from typing import Any

import ccxt
import pytest

from hedgekeeper.exceptions import (
    AuthError,
    OrderRejectedError,
    RetryableReadError,
    UnknownOutcomeError,
    VenueConfigError,
    VenueError,
)
from hedgekeeper.venues.ccxt_errors import (
    ErrorKind,
    Operation,
    classify,
    exchange_error_code,
    is_no_change,
    is_order_not_found,
    redact,
    translate,
)

LOOPBACK = "http://127.0.0.1:8443"
FAPI = "https://fapi.binance.com"


def ccxt_error(exchange_id: str, status: int, body: str, url: str, method: str = "POST") -> Any:
    """The exception ccxt raises for an HTTP reply (what its fetch() would raise)."""
    exchange = getattr(ccxt, exchange_id)()
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    try:
        exchange.handle_errors(status, "reason", url, method, {}, body, decoded, {}, "")
        exchange.handle_http_status_code(status, "reason", url, method, body)
    except ccxt.BaseError as exc:
        return exc
    raise AssertionError("ccxt raised nothing")


def binance(code: int, msg: str, *, host: str = LOOPBACK, status: int = 400) -> Any:
    body = json.dumps({"code": code, "msg": msg})
    return ccxt_error("binanceusdm", status, body, f"{host}/fapi/v1/order")


def bybit(code: int, msg: str = "x", status: int = 200) -> Any:
    body = json.dumps({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 1})
    return ccxt_error("bybit", status, body, f"{LOOPBACK}/v5/order/create")


def target(exc: Any, exchange_id: str, operation: Operation) -> type[VenueError]:
    translated = translate(
        exc, venue="acct", exchange_id=exchange_id, operation=operation, action="test"
    )
    return type(translated)


def test_loopback_quirk_binance_margin_error_is_generic_in_ccxt_but_rejected_here() -> None:
    on_binance = binance(-2019, "Margin is insufficient.", host=FAPI)
    on_loopback = binance(-2019, "Margin is insufficient.")

    assert isinstance(on_binance, ccxt.InsufficientFunds)
    assert type(on_loopback) is ccxt.ExchangeError  # ccxt's generic table
    assert target(on_loopback, "binanceusdm", Operation.ORDER) is OrderRejectedError
    assert target(on_binance, "binanceusdm", Operation.ORDER) is OrderRejectedError


WRITE_CASES = [
    # (what, exception, exchange, expected for create/cancel)
    (
        "binance 429",  # refused before processing (Binance: only 5xx is "unknown")
        lambda: ccxt_error(
            "binanceusdm", 429, '{"code":-1003,"msg":"Too many"}', f"{LOOPBACK}/fapi/v1/order"
        ),
        "binanceusdm",
        OrderRejectedError,
    ),
    (
        "binance 503 html",
        lambda: ccxt_error(
            "binanceusdm", 503, "<html>Unavailable</html>", f"{LOOPBACK}/fapi/v1/order"
        ),
        "binanceusdm",
        UnknownOutcomeError,
    ),
    (
        "binance -1007 send status unknown",
        lambda: binance(-1007, "Send status unknown; execution status unknown.", status=503),
        "binanceusdm",
        UnknownOutcomeError,
    ),
    (
        "binance -1001 disconnected",
        lambda: binance(-1001, "Internal error", status=500),
        "binanceusdm",
        UnknownOutcomeError,
    ),
    (
        "binance -1021 clock",
        lambda: binance(-1021, "Timestamp outside recvWindow"),
        "binanceusdm",
        OrderRejectedError,
    ),
    (
        "binance -5022 post-only",
        lambda: binance(-5022, "Post Only order will be rejected"),
        "binanceusdm",
        OrderRejectedError,
    ),
    (
        "binance -4164 min notional",
        lambda: binance(-4164, "notional must be no smaller"),
        "binanceusdm",
        OrderRejectedError,
    ),
    (
        "binance -2022 reduce-only",
        lambda: binance(-2022, "ReduceOnly Order is rejected."),
        "binanceusdm",
        OrderRejectedError,
    ),
    (
        "binance -2015 key",
        lambda: binance(-2015, "Invalid API-key, IP, or permissions"),
        "binanceusdm",
        AuthError,
    ),
    (
        "binance -1121 symbol",
        lambda: binance(-1121, "Invalid symbol."),
        "binanceusdm",
        VenueConfigError,
    ),
    (
        "binance -4061 position side",
        lambda: binance(-4061, "position side does not match"),
        "binanceusdm",
        VenueConfigError,
    ),
    (
        "bybit 10016 server error",
        lambda: bybit(10016, "Internal system error."),
        "bybit",
        UnknownOutcomeError,
    ),
    (
        "bybit 10006 rate limit",
        lambda: bybit(10006, "Too many visits!", status=403),
        "bybit",
        OrderRejectedError,
    ),
    (
        "bybit 110007 balance",
        lambda: bybit(110007, "not enough for new order"),
        "bybit",
        OrderRejectedError,
    ),
    ("bybit 10003 key", lambda: bybit(10003, "API key is invalid."), "bybit", AuthError),
    (
        "okx sCode 51008",
        lambda: ccxt_error(
            "okx",
            200,
            '{"code":"1","data":[{"clOrdId":"x","sCode":"51008","sMsg":"Insufficient margin"}],'
            '"msg":"All operations failed"}',
            "https://www.okx.com/api/v5/trade/batch-orders",
        ),
        "okx",
        OrderRejectedError,
    ),
    (
        "bingx 101204",
        lambda: ccxt_error(
            "bingx",
            200,
            '{"code":101204,"msg":"Insufficient"}',
            "https://open-api.bingx.com/openApi/swap/v2/trade/order",
        ),
        "bingx",
        OrderRejectedError,
    ),
    (
        "timeout",
        lambda: ccxt.RequestTimeout("binanceusdm POST url"),
        "binanceusdm",
        UnknownOutcomeError,
    ),
    ("network", lambda: ccxt.NetworkError("reset by peer"), "bybit", UnknownOutcomeError),
    ("maintenance", lambda: ccxt.OnMaintenance("maintenance"), "okx", UnknownOutcomeError),
    ("unparsable reply", lambda: ccxt.BadResponse("not json"), "okx", UnknownOutcomeError),
    ("duplicate client id", lambda: ccxt.DuplicateOrderId("dup"), "okx", UnknownOutcomeError),
    ("immediately fillable", lambda: ccxt.OrderImmediatelyFillable("x"), "okx", OrderRejectedError),
    ("not fillable", lambda: ccxt.OrderNotFillable("x"), "okx", OrderRejectedError),
    ("permission", lambda: ccxt.PermissionDenied("x"), "okx", AuthError),
    ("suspended", lambda: ccxt.AccountSuspended("x"), "okx", AuthError),
    ("not supported", lambda: ccxt.NotSupported("x"), "okx", VenueConfigError),
    ("bad symbol", lambda: ccxt.BadSymbol("x"), "okx", VenueConfigError),
    ("other", lambda: ccxt.ExchangeError("who knows"), "okx", OrderRejectedError),
]


@pytest.mark.parametrize(
    ("what", "make", "exchange_id", "expected"), WRITE_CASES, ids=[case[0] for case in WRITE_CASES]
)
def test_write_errors(what: str, make: Any, exchange_id: str, expected: type) -> None:
    assert target(make(), exchange_id, Operation.ORDER) is expected


READ_CASES = [
    ("429 ddos", lambda: ccxt.DDoSProtection("429"), RetryableReadError),
    ("rate limit", lambda: ccxt.RateLimitExceeded("x"), RetryableReadError),
    ("timeout", lambda: ccxt.RequestTimeout("x"), RetryableReadError),
    ("unavailable", lambda: ccxt.ExchangeNotAvailable("x"), RetryableReadError),
    ("maintenance", lambda: ccxt.OnMaintenance("x"), RetryableReadError),
    ("clock", lambda: ccxt.InvalidNonce("x"), RetryableReadError),
    ("other exchange error", lambda: ccxt.ExchangeError("x"), RetryableReadError),
    ("auth", lambda: ccxt.AuthenticationError("x"), AuthError),
    ("bad symbol", lambda: ccxt.BadSymbol("x"), VenueConfigError),
    ("bad request", lambda: ccxt.BadRequest("x"), VenueConfigError),
    ("arguments", lambda: ccxt.ArgumentsRequired("x"), VenueConfigError),
]


@pytest.mark.parametrize(
    ("what", "make", "expected"), READ_CASES, ids=[case[0] for case in READ_CASES]
)
def test_read_errors(what: str, make: Any, expected: type) -> None:
    assert target(make(), "binanceusdm", Operation.READ) is expected


def test_settings_network_failure_is_unknown_and_a_refusal_is_config() -> None:
    assert target(ccxt.RequestTimeout("x"), "bybit", Operation.SETTING) is UnknownOutcomeError
    refused = ccxt_error(
        "binanceusdm",
        400,
        '{"code":-4048,"msg":"Margin type cannot be changed if there exists position."}',
        f"{LOOPBACK}/fapi/v1/marginType",
    )
    assert target(refused, "binanceusdm", Operation.SETTING) is VenueConfigError


@pytest.mark.parametrize(
    ("make", "exchange_id"),
    [
        (lambda: binance(-2011, "Unknown order sent."), "binanceusdm"),
        (lambda: binance(-2013, "Order does not exist."), "binanceusdm"),
        (lambda: binance(-2013, "Order does not exist.", host=FAPI), "binanceusdm"),
        (lambda: bybit(110001, "order not exists or too late to cancel"), "bybit"),
        (
            lambda: ccxt_error(
                "okx",
                200,
                '{"code":"51603","data":[],"msg":"Order does not exist"}',
                "https://www.okx.com/api/v5/trade/order",
                "GET",
            ),
            "okx",
        ),
        (lambda: ccxt.OrderNotFound("whatever"), "mexc"),
    ],
)
def test_order_not_found(make: Any, exchange_id: str) -> None:
    assert is_order_not_found(make(), exchange_id)


def test_a_rejection_is_not_a_missing_order() -> None:
    assert not is_order_not_found(binance(-2019, "Margin is insufficient."), "binanceusdm")


@pytest.mark.parametrize(
    ("make", "exchange_id"),
    [
        (
            lambda: ccxt_error(
                "binanceusdm",
                400,
                '{"code":-4046,"msg":"No need to change margin type."}',
                f"{LOOPBACK}/fapi/v1/marginType",
            ),
            "binanceusdm",
        ),
        (
            lambda: ccxt_error(
                "binanceusdm",
                400,
                '{"code":-4059,"msg":"No need to change position side."}',
                f"{LOOPBACK}/fapi/v1/positionSide/dual",
            ),
            "binanceusdm",
        ),
        (lambda: bybit(110043, "leverage not modified"), "bybit"),
        (lambda: bybit(110025, "position mode not modified"), "bybit"),
        (lambda: ccxt.MarginModeAlreadySet("x"), "okx"),
    ],
)
def test_already_set(make: Any, exchange_id: str) -> None:
    exc = make()

    assert is_no_change(exc, exchange_id)
    assert classify(exc, exchange_id) is ErrorKind.NO_CHANGE


def test_ccxt_throttle_class_wins_over_a_code_that_says_otherwise() -> None:
    # ccxt turns -2015 into DDoSProtection once a key has worked (a Binance hiccup).
    exc = ccxt.DDoSProtection('binance {"code":-2015,"msg":"Invalid API-key"}')

    assert classify(exc, "binance") is ErrorKind.THROTTLED
    assert classify(ccxt.RateLimitExceeded("bybit 10006"), "bybit") is ErrorKind.THROTTLED
    assert classify(ccxt.RequestTimeout("binance timeout"), "binance") is ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('binanceusdm {"code":-2019,"msg":"Margin is insufficient."}', "-2019"),
        ('bybit {"retCode":110001,"retMsg":"x","result":{}}; You might also need', "110001"),
        ('okx {"code":"1","data":[{"sCode":"51008","sMsg":"m"}],"msg":""}', "51008"),
        ('okx {"code":"0","data":[{"sCode":"0"}]}', None),
        ('binance {"code":-1007,"msg":"Send status unkn', "-1007"),  # truncated body
        ("binance POST https://fapi.binance.com/fapi/v1/order", None),
    ],
)
def test_exchange_error_code(text: str, code: str | None) -> None:
    assert exchange_error_code(ccxt.ExchangeError(text)) == code


def test_messages_name_the_venue_and_code_and_hide_credentials() -> None:
    api_key, secret = "AKIAexampleKEY123", "s3cr3t-value-xyz"
    exc = ccxt.ExchangeError(
        f'binance {{"code":-2019,"msg":"Margin"}} GET https://x/y?apiKey={api_key}'
        f"&signature=abcdef0123 key={api_key} secret={secret}"
    )

    translated = translate(
        exc,
        venue="main-binance",
        exchange_id="binance",
        operation=Operation.ORDER,
        action="create_order BTC/USDT:USDT c1",
        secrets=(api_key, secret, None),
    )

    text = str(translated)
    assert "main-binance" in text and "create_order BTC/USDT:USDT c1" in text
    assert "-2019" in text
    assert api_key not in text and secret not in text and "abcdef0123" not in text


def test_redact_signatures_and_passphrases() -> None:
    text = redact('url?timestamp=1&signature=deadbeef&x=1 {"passphrase": "pw1234"}', ())

    assert "deadbeef" not in text and "pw1234" not in text
    assert "timestamp=1" in text
