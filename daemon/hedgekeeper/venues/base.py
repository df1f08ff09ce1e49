"""The venue port: what the engine needs from any market, real or simulated.

Adapters (``ccxt_venue``, ``sim``, ``paper``) implement :class:`Venue`. Every
method speaks domain types (:mod:`hedgekeeper.model`), raises only
:mod:`hedgekeeper.exceptions`, and converts numbers to ``Decimal`` itself.

Request economy: the engine calls each read once per account per cycle with all
the symbols it needs, so an adapter should batch (one request per call).

Optional capabilities, looked up with ``getattr`` (a venue without them still
hedges): ``setup_instrument`` (leverage, margin and position mode),
``fetch_key_permissions``, ``transfer`` (collateral top-up),
:meth:`ClosesSource.fetch_closes` (bar closes for estimated betas), and
:meth:`FundingSource.fetch_funding` (funding payments, read every
``funding_poll_interval``, outside the hedge cycle).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol, runtime_checkable

from hedgekeeper.model import (
    Balances,
    FundingPayment,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    Position,
    Quote,
)

__all__ = ["ClosesSource", "FundingSource", "Venue", "to_decimal"]


def to_decimal(value: object) -> Decimal:
    """Convert an exchange number (float, int, str) to ``Decimal`` without binary noise."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    return Decimal(str(value))


@runtime_checkable
class Venue(Protocol):
    """One account at one market place."""

    name: str

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        """Load and normalise the given symbols; unknown ones are simply absent."""
        ...

    async def fetch_balances(self) -> Balances:
        """Spot holdings, asset -> free + used."""
        ...

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        """Positions for the symbols; a symbol with no position maps to 0 contracts."""
        ...

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Quotes for the symbols, in one batch where the venue allows it."""
        ...

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        """Our working orders: those whose client order id starts with ``prefix``."""
        ...

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        """Send an order; raises ``UnknownOutcomeError`` when the outcome is not known."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        """Cancel by client id; the final state, or ``None`` if the venue has no such order."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        """Look an order up by client id; ``None`` when the venue never saw it."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class FundingSource(Protocol):
    """A venue that can tell what funding its perpetual positions paid or received."""

    async def fetch_funding(
        self, symbols: Iterable[str], since: float, until: float
    ) -> list[FundingPayment]:
        """Funding settled for ``symbols`` between ``since`` and ``until`` (epoch seconds,
        inclusive), normalised to the balance-change sign; other symbols are left out."""
        ...


@runtime_checkable
class ClosesSource(Protocol):
    """A venue that can read past bars (ccxt ``fetch_ohlcv``; the sim from its replays)."""

    async def fetch_closes(
        self, symbol: str, timeframe: str, limit: int
    ) -> list[tuple[int, Decimal]]:
        """``(open time ms, close)`` of the latest ``limit`` bars, oldest first."""
        ...
