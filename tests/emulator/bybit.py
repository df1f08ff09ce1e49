"""The Bybit v5 dialect: header signing, ``retCode`` errors, the route table.

Private requests carry ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``,
``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = hex HMAC-SHA256 of
``timestamp + apiKey + recvWindow + payload`` where the payload is the raw query
string (GET) or the raw JSON body (POST), as ccxt's ``sign()`` builds it.
Errors are HTTP 200 with a non-zero ``retCode``. Handlers live in
:mod:`tests.emulator.bybit_handlers`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulator import bybit_format as yf
from tests.emulator.common import AuthError, RequestContext, Route, json_response
from tests.emulator.engine import VenueRules
from tests.emulator.faults import Fault, FaultKind
from tests.emulator.state import Account, Reject, Rejected

if TYPE_CHECKING:
    from tests.emulator.server import Emulator

__all__ = ["BybitDialect", "bybit_error"]

PERMISSION = (10005, "Permission denied, please check your API key permissions.")
_LINEAR: dict[Reject, tuple[int, str]] = {
    Reject.BAD_SYMBOL: (10001, "params error: symbol invalid"),
    Reject.BAD_PARAM: (10001, "params error: {detail}"),
    Reject.QTY_STEP: (10001, "Qty invalid"),
    Reject.QTY_TOO_SMALL: (10001, "The number of contracts exceeds minimum limit allowed"),
    Reject.QTY_TOO_LARGE: (10001, "The number of contracts exceeds maximum limit allowed"),
    Reject.PRICE_TICK: (10001, "Price invalid"),
    Reject.MIN_NOTIONAL: (110094, "Order does not meet minimum order value {minimum}USDT"),
    Reject.INVALID_CLIENT_ID: (10001, "params error: orderLinkId invalid"),
    Reject.DUPLICATE_CLIENT_ID: (110072, "OrderLinkedID is duplicate"),
    Reject.POSITION_SIDE_MISMATCH: (10001, "position idx not match position mode"),
    Reject.REDUCE_ONLY_REJECTED: (110017, "Reduce-only rule not satisfied"),
    Reject.INSUFFICIENT_MARGIN: (110007, "ab not enough for new order"),
    Reject.UNKNOWN_ORDER: (110001, "Order does not exist"),
    Reject.INVALID_LEVERAGE: (10001, "leverage invalid"),
    Reject.LEVERAGE_NOT_MODIFIED: (110043, "leverage not modified"),
    Reject.MARGIN_MODE_NOT_MODIFIED: (110026, "Cross/isolated margin mode is not modified"),
    Reject.MARGIN_MODE_HAS_POSITION: (3400045, "Set margin mode failed"),
    Reject.MARGIN_MODE_HAS_ORDERS: (3400045, "Set margin mode failed"),
    Reject.POSITION_MODE_NOT_MODIFIED: (110025, "Position mode is not modified"),
    Reject.POSITION_MODE_HAS_POSITION: (
        110024,
        "You have an existing position, so position mode cannot be switched",
    ),
    Reject.POSITION_MODE_HAS_ORDERS: (
        110028,
        "You have existing open orders, so position mode cannot be switched",
    ),
    Reject.TRANSFER_INSUFFICIENT: (131212, "Insufficient balance"),
    Reject.PERMISSION_DENIED: PERMISSION,
}
_SPOT: dict[Reject, tuple[int, str]] = {
    **_LINEAR,
    Reject.QTY_STEP: (170137, "Order quantity has too many decimals."),
    Reject.QTY_TOO_SMALL: (170136, "Order quantity is lower than the minimum."),
    Reject.QTY_TOO_LARGE: (170135, "Order quantity exceeded upper limit."),
    Reject.PRICE_TICK: (170134, "Order price has too many decimals."),
    Reject.MIN_NOTIONAL: (170140, "Order value exceeded lower limit."),
    Reject.DUPLICATE_CLIENT_ID: (170141, "Duplicate clientOrderId."),
    Reject.INSUFFICIENT_BALANCE: (170131, "Insufficient balance."),
    Reject.UNKNOWN_ORDER: (170213, "Order does not exist."),
}


def bybit_error(
    code: int, msg: str, now: int, result: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A v5 error: HTTP 200, non-zero ``retCode``."""
    return json_response(
        yf.envelope({} if result is None else result, now, code, msg), headers=headers
    )


class BybitDialect:
    """Bybit v5: spot and linear on a unified trading account."""

    name = "bybit"
    rules = VenueRules(
        client_id_pattern=r"[A-Za-z0-9_-]{1,36}",
        client_id_scope="all",
        post_only_rejects=False,
        order_id_style="bybit",
        default_leverage=10,
        unified=True,
    )

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        """Every endpoint of the dialect."""
        from tests.emulator.bybit_handlers import BybitHandlers

        return BybitHandlers(self.emu).routes()

    def parse_params(self, request: web.Request, body: str) -> dict[str, Any]:
        """GET: the query string; POST: the JSON body."""
        if request.method == "POST":
            parsed = json.loads(body) if body else {}
            return parsed if isinstance(parsed, dict) else {}
        return dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))

    def is_write(self, method: str, path: str) -> bool:
        """Every private POST changes state; every private read is a GET."""
        return method == "POST"

    def authenticate(
        self, request: web.Request, body: str, now_ms: int, accounts: dict[str, Account]
    ) -> Account:
        """Check the key, the timestamp window and the signature headers."""
        headers = request.headers
        acct = accounts.get(headers.get("X-BAPI-API-KEY", ""))
        if acct is None:
            raise AuthError(bybit_error(10003, "API key is invalid.", now_ms))
        timestamp_raw = headers.get("X-BAPI-TIMESTAMP", "")
        recv_raw = headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not timestamp_raw.isdigit() or not recv_raw.isdigit():
            raise AuthError(bybit_error(10001, "params error: timestamp or recv_window", now_ms))
        timestamp, recv_window = int(timestamp_raw), int(recv_raw)
        if not now_ms - recv_window <= timestamp < now_ms + 1000:
            raise AuthError(
                bybit_error(
                    10002,
                    "invalid request, please check your server timestamp or recv_window "
                    f"param. req_timestamp[{timestamp}],server_timestamp[{now_ms}],"
                    f"recv_window[{recv_window}]",
                    now_ms,
                )
            )
        payload = body if request.method == "POST" else request.rel_url.raw_query_string
        origin = f"{timestamp_raw}{acct.api_key}{recv_raw}{payload}"
        expected = hmac.new(acct.secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "").lower()):
            raise AuthError(bybit_error(10004, f"error sign! origin_string[{origin}]", now_ms))
        return acct

    def reject(self, exc: Rejected, ctx: RequestContext) -> web.Response:
        """Map an engine rejection to a ``retCode``."""
        table = _SPOT if ctx.params.get("category") == "spot" else _LINEAR
        code, template = table.get(exc.kind, (10016, "Internal server error."))
        msg = template.format(detail=exc.detail, **exc.context)
        result: dict[str, Any] = {}
        if code == 3400045:
            result = {
                "reasons": [
                    {
                        "reasonCode": "3400101",
                        "reasonMsg": "Please ensure that there are no positions and open orders",
                    }
                ]
            }
        return bybit_error(code, msg, ctx.now_ms, result)

    def maintenance(self) -> web.Response:
        """Plain-text 503: ccxt has no Bybit maintenance code, so this is ExchangeNotAvailable."""
        return web.Response(
            status=503, text="503 Service Temporarily Unavailable", content_type="text/html"
        )

    def fault_response(self, fault: Fault, now_ms: int) -> web.Response:
        """retCode 10006 for rate limits, 403 for IP bans, 10016 for backend timeouts."""
        if fault.kind is FaultKind.RATE_LIMIT:
            reset = now_ms + int(fault.seconds * 1000)
            return bybit_error(
                10006,
                "Too many visits. Exceeded the API Rate Limit.",
                now_ms,
                headers={
                    "X-Bapi-Limit-Status": "0",
                    "X-Bapi-Limit": "10",
                    "X-Bapi-Limit-Reset-Timestamp": str(reset),
                },
            )
        if fault.kind is FaultKind.IP_BAN:
            return web.Response(status=403, text="access too frequent", content_type="text/html")
        if fault.kind is FaultKind.BACKEND_TIMEOUT:
            return bybit_error(10016, "Internal server error.", now_ms)
        status = fault.status or 502
        body = fault.body if fault.body is not None else f"{status} {HTTPStatus(status).phrase}"
        return web.Response(text=body, status=status, content_type="text/html")

    def not_found(self) -> web.Response:
        """Unknown paths."""
        return web.Response(status=404, text="404 page not found")
