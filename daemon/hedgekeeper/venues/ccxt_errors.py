"""Translate ccxt exceptions into :mod:`hedgekeeper.exceptions`, once, at the boundary.

The engine decides what to do from the class alone, so the class must say what
happened to the request, not what ccxt thought of it:

=================================  ============  =============  ==============
what happened (ccxt class, code)   read          create/cancel  setting
=================================  ============  =============  ==============
network, timeout, 5xx,             Retryable     UnknownOutcome UnknownOutcome
maintenance, unparsable reply
(``OperationFailed`` and below)
rate limit, IP ban (429/418,       Retryable     OrderRejected  UnknownOutcome
``DDoSProtection``): refused
before processing
clock skew (``InvalidNonce``)      Retryable     OrderRejected  UnknownOutcome
auth, permission, suspended        AuthError     AuthError      AuthError
bad symbol, not supported,         VenueConfig   VenueConfig    VenueConfig
arguments required
bad request, operation rejected    VenueConfig   OrderRejected  VenueConfig
invalid order, insufficient        Retryable     OrderRejected  VenueConfig
funds, not fillable, post-only
duplicate client order id          Retryable     UnknownOutcome VenueConfig
any other exchange error           Retryable     OrderRejected  VenueConfig
=================================  ============  =============  ==============

(``Retryable`` is ``RetryableReadError``, ``UnknownOutcome`` is
``UnknownOutcomeError``, and so on.) "No such order" and "already set" are
recognised by :func:`is_order_not_found` and :func:`is_no_change`, which the
adapter checks first: a cancel of an unknown order returns its final state or
``None``, a setting that is already in place is a success.

A duplicate client order id on create means an order with *that id* already
exists: calling it "rejected" would make the engine forget a live order, so it
is reported as unknown and resolved by a look-up.

ccxt picks its exception from per-market tables keyed by URL; against a loopback
``api_host`` Binance falls back to its generic table (``-2019`` becomes a plain
``ExchangeError``). So the exchange's own error code is read from the message
and :data:`CODE_TABLE` overrides the class — except over ccxt's transient
classes (a timeout stays a timeout). Codes mapped explicitly:

* Binance: ``-1000 -1001 -1003 -1006 -1007 -1008 -1015`` transient (``-1007``
  "send status unknown"); ``-1021`` clock; ``-1022 -2014`` auth; ``-2011 -2013``
  no such order; ``-1013 -1111 -2010 -2018 -2019 -2020 -2021 -2022 -2027 -2028
  -4003 -4164 -5022`` rejected; ``-4046 -4059`` already set; ``-1121 -4028
  -4048 -4061 -4067 -4068`` config.
* Bybit: ``10000 10006 10016 10018`` transient; ``10002`` clock; ``10003 10004
  10005 10010`` auth; ``110001 170213`` no such order; ``110004 110007 110017
  110094`` rejected; ``110025 110026 110043`` already set.
* OKX: ``50001 50004 50011 50013 50026`` transient; ``50102`` clock; ``50111
  50113`` auth; ``51603`` no such order; ``51008 51020 51121 51169`` rejected;
  ``59000`` config.
* BingX: ``100410`` transient; ``100001 100413`` auth; ``80016 109421`` no such
  order; ``101204`` rejected.
* MEXC: ``510`` transient; ``401 402 602`` auth; ``30004`` rejected.

Messages carry the venue name, the operation, the exchange code and ccxt's
message with credentials and signatures redacted; the ccxt exception is kept
as ``__cause__`` (raise ``… from exc``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hedgekeeper.exceptions import (
    AuthError,
    OrderRejectedError,
    RetryableReadError,
    UnknownOutcomeError,
    VenueConfigError,
    VenueError,
)

__all__ = [
    "CODE_TABLE",
    "ErrorKind",
    "Operation",
    "classify",
    "exchange_error_code",
    "family_of",
    "is_no_change",
    "is_order_not_found",
    "redact",
    "target_class",
    "translate",
]


class Operation(enum.StrEnum):
    """What kind of call failed: it decides how a transient failure is reported."""

    READ = "read"
    ORDER = "order"  # create or cancel: the request may have changed an order
    SETTING = "setting"  # leverage, margin mode, position mode: idempotent writes


class ErrorKind(enum.Enum):
    """What a failure means, independent of the operation."""

    TRANSIENT = "transient"  # network, 5xx, maintenance: may have reached the venue
    THROTTLED = "throttled"  # 429 / 418 rate limit or ban: refused before processing
    CLOCK = "clock"  # timestamp outside the receive window: refused before processing
    AUTH = "auth"
    CONFIG = "config"  # unknown symbol, unsupported call or parameter
    BAD_REQUEST = "bad-request"  # the venue refused the parameters
    REJECTED = "rejected"  # the venue refused the order (funds, filters, post-only, …)
    DUPLICATE = "duplicate"  # an order with this client id exists already
    NOT_FOUND = "not-found"  # no such order
    NO_CHANGE = "no-change"  # the setting already has this value
    OTHER = "other"  # an exchange error we cannot classify


#: Exchange error codes whose meaning overrides ccxt's class (see the module docstring).
CODE_TABLE: Mapping[str, Mapping[str, ErrorKind]] = {
    "binance": {
        **dict.fromkeys(
            ["-1000", "-1001", "-1003", "-1006", "-1007", "-1008", "-1015"], ErrorKind.TRANSIENT
        ),
        "-1021": ErrorKind.CLOCK,
        **dict.fromkeys(["-1022", "-2014"], ErrorKind.AUTH),
        **dict.fromkeys(["-2011", "-2013"], ErrorKind.NOT_FOUND),
        **dict.fromkeys(
            [
                "-1013",
                "-1111",
                "-2010",
                "-2018",
                "-2019",
                "-2020",
                "-2021",
                "-2022",
                "-2027",
                "-2028",
                "-4003",
                "-4164",
                "-5022",
            ],
            ErrorKind.REJECTED,
        ),
        **dict.fromkeys(["-4046", "-4059"], ErrorKind.NO_CHANGE),
        "-4116": ErrorKind.DUPLICATE,  # ClientOrderId is duplicated: look it up
        **dict.fromkeys(["-1121", "-4028", "-4048", "-4061", "-4067", "-4068"], ErrorKind.CONFIG),
    },
    "bybit": {
        **dict.fromkeys(["10000", "10006", "10016", "10018"], ErrorKind.TRANSIENT),
        "10002": ErrorKind.CLOCK,
        **dict.fromkeys(["10003", "10004", "10005", "10010"], ErrorKind.AUTH),
        **dict.fromkeys(["110001", "170213"], ErrorKind.NOT_FOUND),
        **dict.fromkeys(["110004", "110007", "110017", "110094"], ErrorKind.REJECTED),
        **dict.fromkeys(["110025", "110026", "110043"], ErrorKind.NO_CHANGE),
        "110072": ErrorKind.DUPLICATE,  # OrderLinkedID is duplicate: look it up
    },
    "okx": {
        **dict.fromkeys(["50001", "50004", "50011", "50013", "50026"], ErrorKind.TRANSIENT),
        "50102": ErrorKind.CLOCK,
        **dict.fromkeys(["50111", "50113"], ErrorKind.AUTH),
        "51603": ErrorKind.NOT_FOUND,
        **dict.fromkeys(["51008", "51020", "51121", "51169"], ErrorKind.REJECTED),
        "59000": ErrorKind.CONFIG,
    },
    "bingx": {
        "100410": ErrorKind.TRANSIENT,
        **dict.fromkeys(["100001", "100413"], ErrorKind.AUTH),
        **dict.fromkeys(["80016", "109421"], ErrorKind.NOT_FOUND),
        "101204": ErrorKind.REJECTED,
    },
    "mexc": {
        "510": ErrorKind.TRANSIENT,
        **dict.fromkeys(["401", "402", "602"], ErrorKind.AUTH),
        "30004": ErrorKind.REJECTED,
    },
}

# Keys under which exchanges put their error code, most specific first: OKX wraps
# per-order failures ("sCode") in an outer {"code": "1"}.
_CODE_KEYS = ("sCode", "retCode", "ret_code", "code")
_CODE_RE = re.compile(r'"(sCode|retCode|ret_code|code)"\s*:\s*"?(-?\d+)"?')
_SUCCESS_CODES = frozenset({"0", "200"})
# Query parameters and headers that carry keys or signatures in some exchanges' URLs.
_SENSITIVE_RE = re.compile(
    r"(?i)\b(signature|sign|apikey|api_key|accesskeyid|access_key|passphrase|secret|token)"
    r"(=|\"?\s*:\s*\"?)([^&\s\"',}]+)"
)


def family_of(exchange_id: str) -> str:
    """The error-table family of a ccxt exchange id (``binanceusdm`` → ``binance``)."""
    if exchange_id.startswith("binance"):
        return "binance"
    return exchange_id


def _ccxt_errors() -> Any:
    # Imported lazily: the daemon must not import ccxt unless a ccxt venue is configured.
    # ccxt exports every error class at the top level (`ccxt.base` is shadowed there).
    import ccxt

    return ccxt


def exchange_error_code(exc: BaseException) -> str | None:
    """The exchange's own error code found in a ccxt message, e.g. ``"-2019"`` or ``"110001"``."""
    text = str(exc)
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        try:
            parsed, _ = json.JSONDecoder().raw_decode(text, min(starts))
        except ValueError:
            parsed = None
        for key in _CODE_KEYS:
            code = _find_code(parsed, key)
            if code is not None:
                return code
    found: dict[str, str] = {
        key: value for key, value in _CODE_RE.findall(text) if value not in _SUCCESS_CODES
    }
    for key in _CODE_KEYS:
        if key in found:
            return found[key]
    return None


def _find_code(payload: Any, key: str) -> str | None:
    """The first non-success value of ``key`` in a decoded body, outer levels first."""
    if isinstance(payload, dict):
        value = payload.get(key)
        if value is not None and str(value) not in _SUCCESS_CODES:
            return str(value)
        children: Iterable[Any] = payload.values()
    elif isinstance(payload, list):
        children = payload
    else:
        return None
    for child in children:
        code = _find_code(child, key)
        if code is not None:
            return code
    return None


def classify(exc: BaseException, exchange_id: str) -> ErrorKind:
    """What a ccxt exception means (see the table in the module docstring)."""
    errors = _ccxt_errors()
    transient = isinstance(exc, errors.OperationFailed) and not isinstance(exc, errors.InvalidNonce)
    if not transient:
        code = exchange_error_code(exc)
        if code is not None:
            kind = CODE_TABLE.get(family_of(exchange_id), {}).get(code)
            if kind is not None:
                return kind
    # Order matters: ccxt's hierarchy nests these (OrderNotFound is an InvalidOrder,
    # MarginModeAlreadySet a NoChange and an OperationRejected, …).
    ordered: tuple[tuple[Any, ErrorKind], ...] = (
        (errors.InvalidNonce, ErrorKind.CLOCK),
        # Rate limits and bans (HTTP 429/418) are refused before the matching engine
        # sees the request; only 5xx leaves its fate unknown (Binance's API docs).
        (errors.DDoSProtection, ErrorKind.THROTTLED),
        (errors.RateLimitExceeded, ErrorKind.THROTTLED),  # not a DDoSProtection in ccxt 4.5
        (errors.OperationFailed, ErrorKind.TRANSIENT),
        (errors.AuthenticationError, ErrorKind.AUTH),
        (errors.OrderNotFound, ErrorKind.NOT_FOUND),
        (errors.DuplicateOrderId, ErrorKind.DUPLICATE),
        (errors.NoChange, ErrorKind.NO_CHANGE),
        (errors.BadSymbol, ErrorKind.CONFIG),
        (errors.NotSupported, ErrorKind.CONFIG),
        (errors.ArgumentsRequired, ErrorKind.CONFIG),
        (errors.InvalidOrder, ErrorKind.REJECTED),
        (errors.InsufficientFunds, ErrorKind.REJECTED),
        (errors.BadRequest, ErrorKind.BAD_REQUEST),
        (errors.OperationRejected, ErrorKind.BAD_REQUEST),
    )
    for cls, kind in ordered:
        if isinstance(exc, cls):
            return kind
    return ErrorKind.OTHER


def is_order_not_found(exc: BaseException, exchange_id: str) -> bool:
    """True when the venue says the order does not exist (Binance -2011/-2013, Bybit 110001, …)."""
    return classify(exc, exchange_id) is ErrorKind.NOT_FOUND


def is_no_change(exc: BaseException, exchange_id: str) -> bool:
    """True when a setting call failed only because the value is already set."""
    if classify(exc, exchange_id) is ErrorKind.NO_CHANGE:
        return True
    # Some venues only say it in words (Binance "No need to change margin type.").
    text = str(exc).lower()
    return "no need to change" in text or "not modified" in text


_READ: Mapping[ErrorKind, type[VenueError]] = {
    ErrorKind.AUTH: AuthError,
    ErrorKind.CONFIG: VenueConfigError,
    ErrorKind.BAD_REQUEST: VenueConfigError,
}
_ORDER: Mapping[ErrorKind, type[VenueError]] = {
    ErrorKind.TRANSIENT: UnknownOutcomeError,
    ErrorKind.DUPLICATE: UnknownOutcomeError,
    ErrorKind.AUTH: AuthError,
    ErrorKind.CONFIG: VenueConfigError,
}
_SETTING: Mapping[ErrorKind, type[VenueError]] = {
    ErrorKind.TRANSIENT: UnknownOutcomeError,
    ErrorKind.THROTTLED: UnknownOutcomeError,
    ErrorKind.CLOCK: UnknownOutcomeError,
    ErrorKind.AUTH: AuthError,
}


def target_class(kind: ErrorKind, operation: Operation) -> type[VenueError]:
    """The hedgekeeper exception class for a kind of failure during an operation."""
    if operation is Operation.READ:
        return _READ.get(kind, RetryableReadError)
    if operation is Operation.ORDER:
        return _ORDER.get(kind, OrderRejectedError)
    return _SETTING.get(kind, VenueConfigError)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove credentials and signatures from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _SENSITIVE_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def translate(
    exc: BaseException,
    *,
    venue: str,
    exchange_id: str,
    operation: Operation,
    action: str,
    secrets: Iterable[str | None] = (),
) -> VenueError:
    """The hedgekeeper exception for a ccxt exception; the caller raises it ``from exc``.

    ``action`` names the call for the message (``"create_order BTC/USDT:USDT"``).
    """
    kind = classify(exc, exchange_id)
    cls = target_class(kind, operation)
    code = exchange_error_code(exc)
    detail = redact(str(exc), secrets)
    if len(detail) > 500:
        detail = detail[:500] + "…"
    code_text = f" code {code}" if code is not None else ""
    message = f"{venue}: {action} failed ({kind.value}, {type(exc).__name__}{code_text}): {detail}"
    return cls(message)
