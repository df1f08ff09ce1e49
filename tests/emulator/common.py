"""Plumbing shared by the dialects: routes, request context, the request log."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from tests.emulator.state import Account, Rejected

if TYPE_CHECKING:
    from tests.emulator.engine import Engine, VenueRules
    from tests.emulator.faults import Fault

__all__ = [
    "AuthError",
    "Dialect",
    "Handler",
    "RequestContext",
    "RequestRecord",
    "Route",
    "dec",
    "fmt",
    "json_response",
]


def fmt(value: Decimal | int | float, places: int | None = None) -> str:
    """Render a number the way exchanges do: plain digits, never an exponent."""
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        return format(number, "f")
    text = format(number.normalize(), "f")
    return text


def dec(value: object) -> Decimal | None:
    """Parse a request parameter as ``Decimal``; ``None`` when absent or empty."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON response (exchanges do not pretty-print)."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@dataclass
class RequestRecord:
    """One request as the emulator saw it, for assertions in tests."""

    method: str
    path: str
    params: dict[str, Any]
    private: bool
    write: bool
    api_key: str | None
    time_ms: int
    status: int = 0  # 0: the connection was dropped without a response
    faults: tuple[str, ...] = ()
    error_code: str | None = None


class AuthError(Exception):
    """Authentication failed; ``response`` is the venue's ready-made answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("authentication failed")
        self.response = response


@dataclass
class RequestContext:
    """What a handler gets: parsed params, the caller's account, fault hints."""

    request: web.Request
    params: dict[str, Any]
    engine: Engine
    now_ms: int
    account: Account | None = None
    fill_fraction: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def acct(self) -> Account:
        """The authenticated account (private endpoints only)."""
        if self.account is None:
            raise RuntimeError("public endpoint has no account")
        return self.account


Handler = Callable[[RequestContext], Awaitable[web.Response]]


@dataclass(frozen=True)
class Route:
    """An endpoint: method, exact path, handler, and whether it is signed."""

    method: str
    path: str
    handler: Handler
    private: bool = False


class Dialect(Protocol):
    """What the server needs from a venue dialect."""

    name: str
    rules: VenueRules

    def routes(self) -> list[Route]:
        """Every endpoint this dialect serves."""
        ...

    def parse_params(self, request: web.Request, body: str) -> dict[str, Any]:
        """Merge query and body parameters the venue's way."""
        ...

    def authenticate(
        self, request: web.Request, body: str, now_ms: int, accounts: dict[str, Account]
    ) -> Account:
        """Verify key, timestamp and signature; raise :class:`AuthError`."""
        ...

    def is_write(self, method: str, path: str) -> bool:
        """Whether a private request changes state (order, setting, transfer)."""
        ...

    def reject(self, error: Rejected, ctx: RequestContext) -> web.Response:
        """The venue's error answer for an engine rejection."""
        ...

    def maintenance(self) -> web.Response:
        """The answer while the venue is in maintenance."""
        ...

    def fault_response(self, fault: Fault, now_ms: int) -> web.Response:
        """The answer for a short-circuit or backend-timeout fault."""
        ...

    def not_found(self) -> web.Response:
        """The answer for an unknown path."""
        ...
