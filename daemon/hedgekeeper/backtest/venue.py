"""The backtest's market: one venue per account, showing the bar the runner is at.

It plays the part the exchange plays for the daemon — markets, balances, the
starting positions, quotes — and nothing else: the engine wraps it in the same
:class:`~hedgekeeper.venues.paper.PaperVenue` as in ``dry-run``, so fills, fees,
slippage and funding come from the daemon's own fill model.

A perpetual's quote is its bar's close ± half ``spread_bps`` (bid, ask), marked
at the mark-price bar when there is one (else the close), indexed at the spot
close, with the next funding settlement and its rate. A spot quote is the spot
close. A series missing at this step (see :mod:`hedgekeeper.backtest.data`)
gives no quote, and the engine skips the groups that need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from hedgekeeper.backtest.data import FundingSeries, Timeline
from hedgekeeper.exceptions import OrderRejectedError
from hedgekeeper.model import (
    Balances,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    Position,
    Quote,
)

__all__ = ["BarCursor", "BarVenue"]

_BPS = Decimal("0.0001")


class BarCursor:
    """The step every venue and the clock share; the runner moves it with :meth:`move`."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.index = 0
        #: When the current bar closes: the cycle's moment (epoch ms, and seconds).
        self.now_ms = 0
        self.now_s = 0.0
        self.move(0)

    def move(self, index: int) -> None:
        """Go to step ``index``."""
        self.index = index
        times = self.timeline.times
        self.now_ms = times[index] + self.timeline.interval_ms if times else 0
        self.now_s = self.now_ms / 1000

    def now(self) -> float:
        """The cycle's moment in epoch seconds (the engine's and journal's clock)."""
        return self.now_s

    def column(self, series: str) -> list[Decimal | None] | None:
        """A series' closes on the timeline (``None`` when not loaded)."""
        return self.timeline.closes.get(series)


class BarVenue:
    """One backtest account; see the module docstring."""

    def __init__(
        self,
        name: str,
        cursor: BarCursor,
        markets: dict[str, MarketSpec],
        balances: Balances,
        positions: dict[str, Decimal],
        funding: dict[str, FundingSeries],
        spread_bps: Decimal,
    ) -> None:
        self.name = name
        self._cursor = cursor
        self._markets = markets
        self._balances = dict(balances)
        self._positions = positions
        self._funding = funding
        self._half_spread = spread_bps * _BPS / 2
        self._by_symbol: dict[str, tuple[MarketSpec, tuple[Any, ...]]] = {}
        self._position_objects: dict[str, Position] = {}

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        return {s: self._markets[s] for s in symbols if s in self._markets}

    async def fetch_balances(self) -> Balances:
        return self._balances

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        # The bars' account never trades (the paper venue adds its fills): one object each.
        cached = self._position_objects
        out: dict[str, Position] = {}
        for symbol in symbols:
            position = cached.get(symbol)
            if position is None and symbol in self._markets:
                position = cached[symbol] = Position(
                    symbol, self._positions.get(symbol, Decimal(0))
                )
            if position is not None:
                out[symbol] = position
        return out

    def _columns(self, market: MarketSpec) -> tuple[Any, ...]:
        cursor = self._cursor
        return (
            cursor.column(f"spot:{market.base}"), cursor.column(f"perp:{market.base}"),
            cursor.column(f"mark:{market.base}"), self._funding.get(market.base),
        )  # fmt: skip

    def quote(self, symbol: str) -> Quote | None:
        """The quote of ``symbol`` at the current step (``None`` when its data is missing)."""
        found = self._by_symbol.get(symbol)
        if found is None:
            market = self._markets.get(symbol)
            if market is None:
                return None
            found = self._by_symbol[symbol] = (market, self._columns(market))
        market, (spots, perps, marks, funding) = found
        cursor = self._cursor
        index, now = cursor.index, cursor.now_s
        spot = None if spots is None else spots[index]
        if market.kind is MarketKind.SPOT:
            if spot is None:
                return None
            return Quote(symbol, spot, spot, spot, index=spot, timestamp=now)
        close = None if perps is None else perps[index]
        if close is None:
            return None
        mark = (None if marks is None else marks[index]) or close
        due = None if funding is None else funding.next_after(cursor.now_ms)
        half = close * self._half_spread
        return Quote(
            symbol, close - half, close + half, close, mark=mark, index=spot, timestamp=now,
            funding_rate=None if due is None else due[1],
            next_funding_at=None if due is None else due[0] / 1000,
        )  # fmt: skip

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        quotes: dict[str, Quote] = {}
        for symbol in symbols:
            quote = self.quote(symbol)
            if quote is not None:
                quotes[symbol] = quote
        return quotes

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        return []

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        # The paper venue fills every backtest order; reaching here is a wiring bug.
        raise OrderRejectedError(f"{self.name}: the backtest market takes no orders itself")

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return None

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return None

    async def close(self) -> None:
        return None
