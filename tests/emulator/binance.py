"""The Binance dialect: request signing, error answers and the route table.

Signed (``TRADE`` / ``USER_DATA``) endpoints take ``timestamp``, optional
``recvWindow`` and ``signature`` = hex HMAC-SHA256 of the *total params* - the
raw query string concatenated with the raw body, minus the signature itself -
and the key in the ``X-MBX-APIKEY`` header, exactly as ccxt's ``sign()`` does.
Handlers live in :mod:`tests.emulator.binance_handlers`.
"""

from __future__ import annotations

import hashlib
import hmac
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.emulator.common import AuthError, RequestContext, Route, json_response
from tests.emulator.engine import VenueRules
from tests.emulator.faults import Fault, FaultKind
from tests.emulator.state import Account, Reject, Rejected

if TYPE_CHECKING:
    from tests.emulator.server import Emulator

__all__ = ["BinanceDialect"]

INVALID_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")

_COMMON: dict[Reject, tuple[int, str]] = {
    Reject.BAD_SYMBOL: (-1121, "Invalid symbol."),
    Reject.BAD_PARAM: (
        -1102,
        "Mandatory parameter '{detail}' was not sent, was empty/null, or malformed.",
    ),
    Reject.PERMISSION_DENIED: INVALID_KEY,
}
_SPOT: dict[Reject, tuple[int, str]] = {
    **_COMMON,
    Reject.QTY_STEP: (-1013, "Filter failure: LOT_SIZE"),
    Reject.QTY_TOO_SMALL: (-1013, "Filter failure: LOT_SIZE"),
    Reject.QTY_TOO_LARGE: (-1013, "Filter failure: LOT_SIZE"),
    Reject.PRICE_TICK: (-1013, "Filter failure: PRICE_FILTER"),
    Reject.MIN_NOTIONAL: (-1013, "Filter failure: NOTIONAL"),
    Reject.INVALID_CLIENT_ID: (
        -1100,
        "Illegal characters found in parameter "
        "'newClientOrderId'; legal range is "
        "'^[a-zA-Z0-9-_]{1,36}$'.",
    ),
    Reject.DUPLICATE_CLIENT_ID: (-2010, "Duplicate order sent."),
    Reject.POST_ONLY_WOULD_TAKE: (-2010, "Order would immediately match and take."),
    Reject.INSUFFICIENT_BALANCE: (-2010, "Account has insufficient balance for requested action."),
    Reject.TRANSFER_INSUFFICIENT: (-5013, "Asset transfer failed: insufficient balance"),
}
_FUTURES: dict[Reject, tuple[int, str]] = {
    **_COMMON,
    Reject.QTY_STEP: (-1111, "Precision is over the maximum defined for this asset."),
    Reject.QTY_TOO_SMALL: (-4003, "Quantity less than or equal to zero."),
    Reject.QTY_TOO_LARGE: (-4005, "Quantity greater than max quantity."),
    Reject.PRICE_TICK: (-4014, "Price not increased by tick size."),
    Reject.MIN_NOTIONAL: (
        -4164,
        "Order's notional must be no smaller than {minimum} (unless you choose reduce only).",
    ),
    Reject.INVALID_CLIENT_ID: (-4015, "Client order id is not valid."),
    Reject.DUPLICATE_CLIENT_ID: (-4116, "ClientOrderId is duplicated."),
    Reject.POSITION_SIDE_MISMATCH: (-4061, "Order's position side does not match user's setting."),
    Reject.REDUCE_ONLY_IN_HEDGE_MODE: (-1106, "Parameter 'reduceonly' sent when not required."),
    Reject.REDUCE_ONLY_REJECTED: (-2022, "ReduceOnly Order is rejected."),
    Reject.POST_ONLY_WOULD_TAKE: (
        -5022,
        "Due to the order could not be executed as maker, "
        "the Post Only order will be rejected. The order "
        "will not be recorded in the order history",
    ),
    Reject.INSUFFICIENT_MARGIN: (-2019, "Margin is insufficient."),
    Reject.INVALID_LEVERAGE: (-4028, "Leverage {detail} is not valid"),
    Reject.MARGIN_MODE_NOT_MODIFIED: (-4046, "No need to change margin type."),
    Reject.MARGIN_MODE_HAS_POSITION: (
        -4048,
        "Margin type cannot be changed if there exists position.",
    ),
    Reject.MARGIN_MODE_HAS_ORDERS: (
        -4047,
        "Margin type cannot be changed if there exists open orders.",
    ),
    Reject.POSITION_MODE_NOT_MODIFIED: (-4059, "No need to change position side."),
    Reject.POSITION_MODE_HAS_POSITION: (
        -4068,
        "Position side cannot be changed if there exists position.",
    ),
    Reject.POSITION_MODE_HAS_ORDERS: (
        -4067,
        "Position side cannot be changed if there exists open orders.",
    ),
}


def error(
    code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None
) -> web.Response:
    """A Binance error body: ``{"code": -NNNN, "msg": "..."}``."""
    return json_response({"code": code, "msg": msg}, status=status, headers=headers)


class BinanceDialect:
    """Binance spot (``/api``), USDⓈ-M (``/fapi``) and a little ``/sapi``."""

    name = "binance"
    rules = VenueRules(
        client_id_pattern=r"[.A-Z:/a-z0-9_-]{1,36}",
        client_id_scope="open",
        post_only_rejects=True,
        order_id_style="int",
        default_leverage=20,
        unified=False,
    )

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        """Every endpoint of the dialect."""
        from tests.emulator.binance_handlers import BinanceHandlers

        return BinanceHandlers(self.emu).routes()

    def parse_params(self, request: web.Request, body: str) -> dict[str, Any]:
        """Query and form body merged (Binance accepts both for every method)."""
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    def is_write(self, method: str, path: str) -> bool:
        """Signed non-GET requests change state (orders, settings, transfers)."""
        return method != "GET"

    def authenticate(
        self, request: web.Request, body: str, now_ms: int, accounts: dict[str, Account]
    ) -> Account:
        """Check the key header, the timestamp window and the HMAC signature."""
        acct = accounts.get(request.headers.get("X-MBX-APIKEY", ""))
        if acct is None:
            raise AuthError(error(*INVALID_KEY, status=401))
        query = request.rel_url.raw_query_string
        params = self.parse_params(request, body)
        for name in ("signature", "timestamp"):
            if not params.get(name):
                raise AuthError(
                    error(
                        -1102,
                        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                    )
                )
        recv_window = int(params.get("recvWindow") or 5000)
        if recv_window > 60000:
            raise AuthError(error(-1131, "recvWindow must be less than 60000"))
        timestamp = int(params["timestamp"])
        if timestamp >= now_ms + 1000:
            raise AuthError(
                error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            )
        if now_ms - timestamp > recv_window:
            raise AuthError(
                error(-1021, "Timestamp for this request is outside of the recvWindow.")
            )
        payload = _strip_signature(query) + _strip_signature(body)
        expected = hmac.new(acct.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params["signature"]).lower()):
            raise AuthError(error(-1022, "Signature for this request is not valid."))
        return acct

    def reject(self, exc: Rejected, ctx: RequestContext) -> web.Response:
        """Map an engine rejection to the spot or futures code and message."""
        futures = ctx.request.path.startswith("/fapi")
        if exc.kind is Reject.UNKNOWN_ORDER:
            if ctx.extra.get("op") == "cancel":
                return error(-2011, "Unknown order sent.")
            return error(-2013, "Order does not exist.")
        table = _FUTURES if futures else _SPOT
        code, template = table.get(
            exc.kind, (-1000, "An unknown error occured while processing the request.")
        )
        status = 401 if code == -2015 else 400
        msg = template.format(detail=exc.detail, **exc.context)
        return error(code, msg, status=status)

    def maintenance(self) -> web.Response:
        """What ccxt maps to ``OnMaintenance`` (exact message match, any host)."""
        return error(1, "System is under maintenance.", status=503)

    def fault_response(self, fault: Fault, now_ms: int) -> web.Response:
        """429 / 418 with ``Retry-After``, bare HTTP errors, and -1007."""
        retry = {"Retry-After": str(max(1, round(fault.seconds)))}
        if fault.kind is FaultKind.RATE_LIMIT:
            return error(
                -1003,
                "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                "requests per minute. Please use the websocket for live "
                "updates to avoid polling the API.",
                status=429,
                headers=retry,
            )
        if fault.kind is FaultKind.IP_BAN:
            until = now_ms + int(fault.seconds * 1000)
            return error(
                -1003,
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                status=418,
                headers=retry,
            )
        if fault.kind is FaultKind.BACKEND_TIMEOUT:
            return error(
                -1007,
                "Timeout waiting for response from backend server. Send "
                "status unknown; execution status unknown.",
                status=408,
            )
        status = fault.status or 503
        body = fault.body if fault.body is not None else f"{status} {HTTPStatus(status).phrase}"
        return web.Response(text=body, status=status, content_type="text/html")

    def not_found(self) -> web.Response:
        """Unknown paths: an empty 404 like Binance's edge answers."""
        return web.Response(status=404, text="")


def _strip_signature(raw: str) -> str:
    """Remove ``signature=...`` from a raw query/body, keeping byte order intact."""
    if not raw:
        return ""
    parts = [p for p in raw.split("&") if not p.startswith("signature=")]
    return "&".join(parts)
