"""The ``paper`` venue: dry-run orders filled by a model, on top of any real venue.

Reads pass through to the wrapped venue, except positions, which are the wrapped
venue's positions *plus* the paper fills' net effect (with no API keys, the paper
fills alone) (kept in the journal, so a
restart does not forget the paper hedge). Orders never reach the wrapped venue:
a market order or a crossing IOC limit fills at once at the top of book,
worsened by ``slippage_bps`` (never past its limit), paying ``taker_fee``; an
IOC limit that does not cross expires; a post-only order rests in the paper book
and fills at its price, paying ``maker_fee``, once a later quote trades
through it.

Paper positions carry the average entry price of the paper fills (see
:mod:`hedgekeeper.accounting`), rebuilt from the journal's fills after a restart.

Paper positions also pay and receive funding: when a perp's quote shows that
its next funding time has moved on, the settlement it was waiting for has
happened, and the paper offset pays ``contracts × contract value × rate`` at the
last rate the quotes showed before it (Binance ``lastFundingRate``, Bybit
``fundingRate``, the sim's schedule). The payment is booked in the journal when
seen (within a poll interval of the settlement); a restart keeps the settlement
it waits for. If the daemon was stopped across several settlements, only the
first is booked. :meth:`fetch_funding` returns the wrapped venue's real funding
(when it has keys) plus these paper payments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal

from hedgekeeper.accounting import Book, apply_fill
from hedgekeeper.exceptions import OrderRejectedError, RetryableReadError, VenueError
from hedgekeeper.funding import settlement
from hedgekeeper.journal import Journal
from hedgekeeper.model import (
    Balances,
    FundingPayment,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    OrderType,
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

    def __init__(
        self, inner: Venue, journal: Journal, settings: PaperSettings,
        *, clock: Callable[[], float] | None = None,
    ) -> None:  # fmt: skip
        """``clock`` dates paper funding payments (a backtest passes market time; by
        default ``time.time``, looked up at each call)."""
        self.inner = inner
        self._clock: Callable[[], float] = clock if clock is not None else lambda: time.time()
        self.name = inner.name
        self._journal = journal
        self._settings = settings
        self._markets: dict[str, MarketSpec] = {}
        self._quotes: dict[str, tuple[float, Quote]] = {}
        # Without keys a real venue cannot show positions: the paper book is the whole
        # position then (balances still need keys, and fail loudly without them).
        self._public_only = not getattr(inner, "has_credentials", True)
        #: symbol -> (the funding settlement waited for, the latest rate seen)
        self._rates: dict[str, tuple[float, Decimal]] = {}
        #: symbol -> the paper position's accounting (average entry); read from the journal's
        #: fills on first use, then kept up to date by every paper fill
        self._books: dict[str, Book] | None = None

    def _book(self, symbol: str) -> Book:
        if self._books is None:
            self._books = {}
            for fills in self._journal.fills_by_group().values():
                for fill in fills:
                    if fill["account"] == self.name:
                        amount = Decimal(fill["amount"])
                        self._books_apply(fill["symbol"], amount if fill["side"] == "buy"
                                          else -amount, Decimal(fill["price"]))  # fmt: skip
        return self._books.get(symbol, Book())

    def _books_apply(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        market = self._markets.get(symbol)
        if market is None or self._books is None or price <= 0:
            return
        self._books[symbol] = apply_fill(self._books.get(symbol, Book()), market, signed, price,
                                         Decimal(0))  # fmt: skip

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        markets = await self.inner.load_markets(symbols)
        self._markets.update(markets)
        return markets

    def market_time(self) -> float:
        """The inner venue's clock where it has its own (the sim), else the wall clock."""
        clock = getattr(self.inner, "market_time", None)
        return float(clock()) if clock is not None else time.time()

    async def list_contracts(self, family: str) -> dict[str, MarketSpec]:
        """The inner venue's dated contracts of ``family`` (none where it cannot list)."""
        lister = getattr(self.inner, "list_contracts", None)
        if lister is None:
            return {}
        listed: dict[str, MarketSpec] = await lister(family)
        self._markets.update(listed)
        return listed

    async def fetch_balances(self) -> Balances:
        """The wrapped venue's balances moved by the paper spot fills (``realize``)."""
        balances = dict(await self.inner.fetch_balances())
        for key, delta in self._journal.paper_positions(self.name).items():
            if key.startswith("spot:") and delta:
                asset = key[5:]
                balances[asset] = balances.get(asset, Decimal(0)) + delta
        return balances

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        wanted = list(symbols)
        if self._public_only:
            real = {s: Position(s, Decimal(0)) for s in wanted if s in self._markets}
        else:
            real = await self.inner.fetch_positions(wanted)
        paper = self._journal.paper_positions(self.name)
        out: dict[str, Position] = {}
        for symbol in wanted:
            base = real.get(symbol)
            if base is None:
                continue  # unknown stays unknown
            offset = paper.get(symbol, Decimal(0))
            entry = base.entry_price
            if offset:  # the paper fills' average entry; unknown when mixed with a real one
                entry = self._book(symbol).entry_price if base.contracts == 0 else None
            out[symbol] = Position(
                symbol,
                base.contracts + offset,
                entry_price=entry,
                # The wallet is the real one; figures that depend on the position's size
                # are not, once paper fills changed it (the engine estimates them).
                liquidation_price=None if offset else base.liquidation_price,
                margin_ratio=None if offset else base.margin_ratio,
                collateral_usd=base.collateral_usd,
                maintenance_margin_usd=None if offset else base.maintenance_margin_usd,
            )
        return out

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        quotes = await self.inner.fetch_quotes(symbols)
        now = time.monotonic()
        for symbol, quote in quotes.items():
            self._quotes[symbol] = (now, quote)
        self._fill_resting(quotes)
        self._book_funding(quotes)
        return quotes

    def _book_funding(self, quotes: dict[str, Quote]) -> None:
        """Book paper funding for settlements the quotes show have passed."""
        for symbol, quote in quotes.items():
            market = self._markets.get(symbol)
            next_at, rate = quote.next_funding_at, quote.funding_rate
            if market is None or market.kind is MarketKind.SPOT or next_at is None or rate is None:
                continue
            seen = self._rates.get(symbol)
            if seen is None:
                kept = self._journal.paper_funding_mark(self.name, symbol)
                if kept is None:  # first sight: wait for this settlement
                    self._journal.paper_funding_settle(self.name, symbol, None, next_at, rate)
                seen = kept or (next_at, rate)
            waiting_for, last_rate = seen
            if next_at > waiting_for:
                payment = self._paper_payment(market, quote, waiting_for, last_rate)
                self._journal.paper_funding_settle(self.name, symbol, payment, next_at, rate)
            # The rate moves until the settlement: keep the latest in memory only.
            self._rates[symbol] = (max(next_at, waiting_for), rate)

    def _paper_payment(
        self, market: MarketSpec, quote: Quote, settled_at: float, rate: Decimal
    ) -> FundingPayment | None:
        contracts = self._journal.paper_positions(self.name).get(market.symbol, Decimal(0))
        mark = quote.reference
        if contracts == 0 or mark is None:
            return None
        amount, _ = settlement(market, contracts, mark, rate)
        return FundingPayment(
            f"paper-{market.symbol}-{int(settled_at * 1000)}", market.symbol, self._clock(),
            amount, market.settle or market.quote, rate,
        )  # fmt: skip

    async def fetch_funding(
        self, symbols: Iterable[str], since: float, until: float
    ) -> list[FundingPayment]:
        """The wrapped venue's funding (with keys) plus the paper positions' funding."""
        wanted = list(symbols)
        real: list[FundingPayment] = []
        fetch = getattr(self.inner, "fetch_funding", None)
        if fetch is not None and not self._public_only:
            real = await fetch(wanted, since, until)
        paper = [
            p for p in self._journal.paper_funding(self.name, since, until) if p.symbol in wanted
        ]
        return sorted(real + paper, key=lambda p: (p.timestamp, p.id))

    async def fetch_closes(
        self, symbol: str, timeframe: str, limit: int
    ) -> list[tuple[int, Decimal]]:
        """Past bars are market data: the wrapped venue's."""
        fetch = getattr(self.inner, "fetch_closes", None)
        if fetch is None:
            raise VenueError(f"{self.name}: the venue cannot read past bars")
        bars: list[tuple[int, Decimal]] = await fetch(symbol, timeframe, limit)
        return bars

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        wanted = set(symbols)
        return [
            o
            for o in self._journal.paper_open_orders(self.name)
            if o.symbol in wanted and o.client_order_id.startswith(prefix)
        ]

    def _fill_resting(self, quotes: dict[str, Quote]) -> None:
        """Fill resting (post-only) paper orders that the market has traded through."""
        for order in self._journal.paper_open_orders(self.name):
            quote = quotes.get(order.symbol)
            market = self._markets.get(order.symbol)
            if quote is None or market is None or order.price is None:
                continue
            # A resting sell fills when buyers reach its price, a resting buy when sellers do.
            through = (
                quote.bid is not None and quote.bid >= order.price
                if order.side is Side.SELL
                else quote.ask is not None and quote.ask <= order.price
            )
            if through:
                notional = order.amount * market.contract_value_usd(order.price)
                filled = replace(
                    order, status=OrderStatus.FILLED, filled=order.amount,
                    average_price=order.price,
                    fee_usd=(notional * self._settings.maker_fee).quantize(_QUANTUM),
                )  # fmt: skip
                signed = order.amount if order.side is Side.BUY else -order.amount
                self._book(order.symbol)
                self._books_apply(order.symbol, signed, order.price)
                self._journal.paper_fill(self.name, filled, signed, replace_existing=True)

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
        if market is not None and market.kind is MarketKind.SPOT:
            return await self._spot_order(request, market)
        if market is None:
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
            raise RetryableReadError(f"{self.name}: no {request.side} side in {request.symbol}")
        base = OrderInfo(
            client_order_id=request.client_order_id, symbol=request.symbol, side=request.side,
            amount=request.amount, status=OrderStatus.OPEN, price=request.price,
            exchange_order_id=f"paper-{request.client_order_id}", reduce_only=request.reduce_only,
        )  # fmt: skip
        limit = request.price if request.order_type is OrderType.LIMIT else None
        crosses = limit is None or (top <= limit if request.side is Side.BUY else top >= limit)
        if request.post_only:
            if crosses:
                raise OrderRejectedError(f"{self.name}: post-only {request.side} at {limit} would "
                                         f"take liquidity (top {top})")  # fmt: skip
            self._journal.paper_fill(self.name, base, Decimal(0))  # rests, nothing moves yet
            return base
        if not crosses:
            # An IOC limit that does not cross expires unfilled, like on an exchange.
            expired = replace(base, status=OrderStatus.CANCELED)
            self._journal.paper_fill(self.name, expired, Decimal(0))
            return expired
        slip = self._settings.slippage_bps * _BPS
        price = top * (1 + slip) if request.side is Side.BUY else top * (1 - slip)
        if limit is not None:  # slippage never beyond the order's own limit
            price = min(price, limit) if request.side is Side.BUY else max(price, limit)
        price = price.quantize(_QUANTUM)
        notional = request.amount * market.contract_value_usd(price)
        info = replace(
            base, status=OrderStatus.FILLED, filled=request.amount, average_price=price,
            fee_usd=(notional * self._settings.taker_fee).quantize(_QUANTUM),
        )  # fmt: skip
        self._book(request.symbol)
        self._books_apply(request.symbol, signed, price)
        self._journal.paper_fill(self.name, info, signed)
        return info

    #: Spot orders are paper fills too (``realize``): balances move in the journal.
    supports_spot_orders = True

    async def _spot_order(self, request: OrderRequest, market: MarketSpec) -> OrderInfo:
        """A spot order in base units: an IOC that fills at once at the top of book,
        worsened by ``slippage_bps`` (never past its limit), against the balances."""
        quote = await self._quote(request.symbol)
        top = quote.ask if request.side is Side.BUY else quote.bid
        if top is None:
            raise RetryableReadError(f"{self.name}: no {request.side} side in {request.symbol}")
        slip = self._settings.slippage_bps * _BPS
        price = top * (1 + slip) if request.side is Side.BUY else top * (1 - slip)
        if request.price is not None:
            if top > request.price if request.side is Side.BUY else top < request.price:
                raise OrderRejectedError(f"{self.name}: {request.side} {request.symbol} at "
                                         f"{request.price} does not cross {top}")  # fmt: skip
            price = min(price, request.price) if request.side is Side.BUY else max(
                price, request.price)  # fmt: skip
        price = price.quantize(_QUANTUM)
        notional = request.amount * price
        fee = (notional * self._settings.taker_fee).quantize(_QUANTUM)
        balances = await self.fetch_balances()
        if request.side is Side.SELL and balances.get(market.base, Decimal(0)) < request.amount:
            raise OrderRejectedError(f"{self.name}: {balances.get(market.base, 0)} "
                                     f"{market.base} < {request.amount}")  # fmt: skip
        if request.side is Side.BUY and balances.get(market.quote, Decimal(0)) < notional + fee:
            raise OrderRejectedError(f"{self.name}: not enough {market.quote} for {notional}")
        sign = 1 if request.side is Side.BUY else -1
        info = OrderInfo(
            client_order_id=request.client_order_id, symbol=request.symbol, side=request.side,
            amount=request.amount, status=OrderStatus.FILLED, filled=request.amount,
            average_price=price, fee_usd=fee, price=request.price,
            exchange_order_id=f"paper-{request.client_order_id}",
        )  # fmt: skip
        self._journal.paper_spot_fill(self.name, info, {
            market.base: sign * request.amount, market.quote: -sign * notional - fee,
        })  # fmt: skip
        return info

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        order = self._journal.paper_order(self.name, client_order_id)
        if order is None or order.status is not OrderStatus.OPEN:
            return order
        cancelled = replace(order, status=OrderStatus.CANCELED)
        self._journal.paper_fill(self.name, cancelled, Decimal(0), replace_existing=True)
        return cancelled

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return self._journal.paper_order(self.name, client_order_id)

    async def close(self) -> None:
        await self.inner.close()
