"""The ``paper`` venue: dry-run orders filled by a model, on top of any real venue.

Reads pass through to the wrapped venue, except positions, which are the wrapped
venue's positions *plus* the paper fills' net effect (kept in the journal, so a
restart does not forget the paper hedge). Orders never reach the wrapped venue:
they fill at once at the top of book, worsened by ``slippage_bps``, paying
``taker_fee`` on the notional.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal

from hedgekeeper.exceptions import OrderRejectedError, RetryableReadError
from hedgekeeper.journal import Journal
from hedgekeeper.model import (
    Balances,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    Side,
)
from hedgekeeper.settings import PaperSettings
from hedgekeeper.venues.base import Venue

__all__ = ["PaperVenue"]

_BPS = Decimal("0.0001")
_QUANTUM = Decimal("1e-8")
#: A quote seen by the last read is reused for a fill if it is this fresh (seconds).
_QUOTE_REUSE_SECONDS = 5.0


class PaperVenue:
    """Wraps a venue so that orders are paper fills; see the module docstring."""

    def __init__(self, inner: Venue, journal: Journal, settings: PaperSettings) -> None:
        self.inner = inner
        self.name = inner.name
        self._journal = journal
        self._settings = settings
        self._markets: dict[str, MarketSpec] = {}
        self._quotes: dict[str, tuple[float, Quote]] = {}

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        markets = await self.inner.load_markets(symbols)
        self._markets.update(markets)
        return markets

    async def fetch_balances(self) -> Balances:
        return await self.inner.fetch_balances()

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        wanted = list(symbols)
        real = await self.inner.fetch_positions(wanted)
        paper = self._journal.paper_positions(self.name)
        out: dict[str, Position] = {}
        for symbol in wanted:
            base = real.get(symbol)
            if base is None:
                continue  # unknown stays unknown
            offset = paper.get(symbol, Decimal(0))
            out[symbol] = Position(
                symbol,
                base.contracts + offset,
                entry_price=base.entry_price,
                liquidation_price=None if offset else base.liquidation_price,
                margin_ratio=None if offset else base.margin_ratio,
            )
        return out

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        quotes = await self.inner.fetch_quotes(symbols)
        now = time.monotonic()
        for symbol, quote in quotes.items():
            self._quotes[symbol] = (now, quote)
        return quotes

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        # Paper orders fill at once, so none ever works; the wrapped venue's orders are
        # not ours (our ids never reach it).
        return []

    async def _quote(self, symbol: str) -> Quote:
        seen = self._quotes.get(symbol)
        if seen is not None and time.monotonic() - seen[0] <= _QUOTE_REUSE_SECONDS:
            return seen[1]
        quotes = await self.fetch_quotes([symbol])
        if symbol not in quotes:
            raise RetryableReadError(f"{self.name}: no quote for {symbol}")
        return quotes[symbol]

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        existing = self._journal.paper_order(self.name, request.client_order_id)
        if existing is not None:
            raise OrderRejectedError(f"duplicate client order id {request.client_order_id}")
        market = self._markets.get(request.symbol)
        if market is None or market.kind is MarketKind.SPOT:
            raise OrderRejectedError(f"{self.name}: no perpetual {request.symbol!r} loaded")
        signed = request.amount if request.side is Side.BUY else -request.amount
        if request.reduce_only:
            position = (await self.fetch_positions([request.symbol])).get(request.symbol)
            held = Decimal(0) if position is None else position.contracts
            if held == 0 or held * signed > 0 or abs(signed) > abs(held):
                raise OrderRejectedError(
                    f"{self.name}: reduce-only {request.side} {request.amount} would not "
                    f"reduce position {held}"
                )
        quote = await self._quote(request.symbol)
        top = quote.ask if request.side is Side.BUY else quote.bid
        if top is None:
            raise RetryableReadError(
                f"{self.name}: no {request.side} side in book of {request.symbol}"
            )
        slip = self._settings.slippage_bps * _BPS
        price = (top * (1 + slip) if request.side is Side.BUY else top * (1 - slip)).quantize(
            _QUANTUM
        )
        if request.order_type.value == "limit" and request.price is not None:
            crosses = price <= request.price if request.side is Side.BUY else price >= request.price
            if not crosses:
                raise OrderRejectedError(
                    f"{self.name}: paper limit {request.price} does not cross {price}"
                )
        notional = request.amount * market.contract_value_usd(price)
        info = OrderInfo(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            amount=request.amount,
            status=OrderStatus.FILLED,
            filled=request.amount,
            average_price=price,
            fee_usd=(notional * self._settings.taker_fee).quantize(_QUANTUM),
            exchange_order_id=f"paper-{request.client_order_id}",
            reduce_only=request.reduce_only,
        )
        self._journal.paper_fill(self.name, info, signed)
        return info

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return self._journal.paper_order(self.name, client_order_id)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return self._journal.paper_order(self.name, client_order_id)

    async def close(self) -> None:
        await self.inner.close()
