"""The matching engine: validates, fills and books orders against set prices.

There is no order book. Each market has a mid price and a spread; market orders
and crossing limit orders fill immediately at the touch (taker), other limits
rest and fill at their own price (maker) when :meth:`Engine.set_price` moves
the market through them. :meth:`Engine.settle_funding` books funding fees on
open perpetual positions. Everything is synchronous and deterministic: order ids
come from a seeded generator.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from tests.emulator.margin import MarginModel
from tests.emulator.markets import MarketDef, floor_to_step, is_multiple
from tests.emulator.state import (
    Account,
    FeeSchedule,
    Fill,
    FundingPayment,
    Order,
    OrderRequest,
    OrderStatus,
    Reject,
    Rejected,
    Side,
    TimeInForce,
    VenueRules,
)

__all__ = ["Engine", "FeeSchedule", "OrderRequest", "VenueRules"]

ZERO = Decimal(0)
TEN_THOUSAND = Decimal(10000)
#: The rate both venues show before any settlement (0.01 % per 8 hours).
DEFAULT_FUNDING_RATE = Decimal("0.0001")
_FUNDING_QUANTUM = Decimal("0.00000001")


@dataclass
class _PriceState:
    mid: Decimal
    spread_bps: Decimal
    mark: Decimal | None = None


class Engine:
    """All accounts and markets of one emulated venue."""

    def __init__(
        self,
        markets: list[MarketDef],
        rules: VenueRules,
        fees: FeeSchedule,
        clock: Callable[[], int],
        seed: int = 0,
        spread_bps: Decimal = Decimal("2"),
    ) -> None:
        self.markets: dict[str, MarketDef] = {m.symbol: m for m in markets}
        self.rules = rules
        self.fees = fees
        self.clock = clock
        self.default_spread_bps = spread_bps
        self.accounts: dict[str, Account] = {}
        self._prices: dict[str, _PriceState] = {}
        self._rng = random.Random(seed)
        self._next_order = 4_000_000_000 + self._rng.randrange(1_000_000)
        self._next_trade = 100_000 + self._rng.randrange(1_000_000)
        self._client_id_re = re.compile(rules.client_id_pattern)
        #: Current funding rate per perpetual (unified symbol); see :meth:`funding_rate`.
        self.funding_rates: dict[str, Decimal] = {}
        # A generator of its own, so that settling funding leaves order ids unchanged.
        self._funding_rng = random.Random(f"funding-{seed}")
        self._next_funding_id = 8_082_457_000_000_000_000 + self._funding_rng.randrange(10**12)
        self.margin = MarginModel(self.markets, self.mark, rules.default_leverage)

    # -- markets and prices ------------------------------------------------
    def market_by_id(self, market_id: str, kind: str) -> MarketDef:
        """Look a market up by exchange id and kind, or reject as a bad symbol."""
        for market in self.markets.values():
            if market.id == market_id and market.kind == kind:
                return market
        raise Rejected(Reject.BAD_SYMBOL, market_id)

    def markets_of_kind(self, kind: str) -> list[MarketDef]:
        """Markets of one kind, in definition order."""
        return [m for m in self.markets.values() if m.kind == kind]

    def priced_markets_of_kind(self, kind: str) -> list[MarketDef]:
        """Markets of one kind that have a price: what an "all tickers" request lists.

        A real exchange lists every market it trades; here a market without a price
        set is not trading yet, so it is left out rather than failing the request.
        """
        return [m for m in self.markets_of_kind(kind) if m.symbol in self._prices]

    def set_price(
        self,
        symbol: str,
        price: Decimal,
        spread_bps: Decimal | None = None,
        mark: Decimal | None = None,
    ) -> None:
        """Set the mid price; a bare pair (``BTC/USDT``) moves spot and perp together."""
        targets = [
            m
            for m in self.markets.values()
            if m.symbol == symbol or (":" not in symbol and m.pair == symbol)
        ]
        if not targets:
            raise KeyError(f"unknown symbol {symbol!r}")
        for market in targets:
            old = self._prices.get(market.symbol)
            spread = (
                spread_bps
                if spread_bps is not None
                else (old.spread_bps if old else self.default_spread_bps)
            )
            self._prices[market.symbol] = _PriceState(price, spread, mark)
            self._match_resting(market)

    def quote(self, market: MarketDef) -> tuple[Decimal, Decimal]:
        """Best bid and ask: mid -/+ half the spread, on the tick grid."""
        state = self._price_state(market)
        half = state.mid * state.spread_bps / TEN_THOUSAND / 2
        bid = floor_to_step(state.mid - half, market.tick_size)
        ask = -floor_to_step(-(state.mid + half), market.tick_size)  # ceil to tick
        if ask <= bid:
            ask = bid + market.tick_size
        return bid, ask

    def mid(self, market: MarketDef) -> Decimal:
        """Mid price of a market."""
        return self._price_state(market).mid

    def mark(self, symbol: str) -> Decimal:
        """Mark price: the explicit mark if set, else the mid."""
        state = self._price_state(self.markets[symbol])
        return state.mark if state.mark is not None else state.mid

    # -- funding fees ---------------------------------------------------------
    def funding_rate(self, symbol: str) -> Decimal:
        """The perpetual's current (last settled) funding rate; 0.0001 before any."""
        return self.funding_rates.get(symbol, DEFAULT_FUNDING_RATE)

    def settle_funding(
        self, symbol: str, rate: Decimal, at_ms: int | None = None
    ) -> list[FundingPayment]:
        """Book one funding settlement of a perpetual at its mark price.

        Every non-zero position (one-way ``BOTH`` or hedge-mode ``LONG`` /
        ``SHORT``) of every account pays ``qty * mark * rate`` (a long pays when
        the rate is positive, a short receives): the futures wallet changes by
        ``-qty * mark * rate`` rounded to 8 decimals, and a
        :class:`FundingPayment` is recorded on the account. The market's
        current funding rate becomes ``rate``. Returns the new payments.
        """
        market = self.markets.get(symbol)
        if market is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        if not market.is_contract:
            raise ValueError(f"{symbol} is not a perpetual")
        if symbol not in self._prices:
            raise KeyError(f"no price set for {symbol}")
        mark = self.mark(symbol)
        when = self.clock() if at_ms is None else at_ms
        self.funding_rates[symbol] = rate
        payments: list[FundingPayment] = []
        for acct in self.accounts.values():
            for pos in list(acct.positions.values()):
                if pos.symbol != symbol or pos.qty == 0:
                    continue
                amount = (-pos.qty * mark * rate).quantize(_FUNDING_QUANTUM, ROUND_HALF_EVEN)
                payment = FundingPayment(
                    payment_id=self._new_funding_id(),
                    exec_id=self._new_uuid(),
                    order_id=self._new_uuid(),
                    seq=self._new_seq(),
                    api_key=acct.api_key,
                    symbol=symbol,
                    position_side=pos.position_side,
                    time_ms=when,
                    rate=rate,
                    mark_price=mark,
                    qty=pos.qty,
                    amount=amount if amount != 0 else ZERO,
                )
                acct.add_collateral(payment.amount)
                acct.funding_payments.append(payment)
                payments.append(payment)
        return payments

    def _new_funding_id(self) -> int:
        self._next_funding_id += 1 + self._funding_rng.randrange(1000)
        return self._next_funding_id

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._funding_rng.getrandbits(128), version=4))

    def _new_seq(self) -> int:
        """The next number of the counter shared by fills (trade id) and funding (seq)."""
        self._next_trade += 1
        return self._next_trade

    def _price_state(self, market: MarketDef) -> _PriceState:
        if market.symbol not in self._prices:
            raise Rejected(Reject.BAD_SYMBOL, f"no price set for {market.symbol}")
        return self._prices[market.symbol]

    # -- accounts ------------------------------------------------------------
    def add_account(self, api_key: str, secret: str) -> Account:
        """Create an empty account for an API key."""
        acct = Account(api_key, secret, unified=self.rules.unified)
        self.accounts[api_key] = acct
        return acct

    def new_order_id(self, market: MarketDef) -> str:
        """A fresh exchange order id in the venue's style."""
        if self.rules.order_id_style == "bybit" and market.is_contract:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self._next_order += 1 + self._rng.randrange(7)
        if self.rules.order_id_style == "bybit":
            return str(1_900_000_000_000_000_000 + self._next_order)
        return str(self._next_order)

    def random_client_id(self, prefix: str = "") -> str:
        """A random alphanumeric client id (Binance fills one in when absent)."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(self._rng.choice(alphabet) for _ in range(22))

    # -- orders ---------------------------------------------------------------
    def find_order(
        self,
        acct: Account,
        market: MarketDef,
        order_id: str | None = None,
        client_id: str | None = None,
    ) -> Order:
        """The most recent order matching an id or client id, else UNKNOWN_ORDER."""
        for order in reversed(acct.orders):
            if order.symbol != market.symbol:
                continue
            if order_id is not None and order.order_id == order_id:
                return order
            if order_id is None and client_id and order.client_id == client_id:
                return order
        raise Rejected(Reject.UNKNOWN_ORDER)

    def cancel(
        self,
        acct: Account,
        market: MarketDef,
        order_id: str | None = None,
        client_id: str | None = None,
    ) -> Order:
        """Cancel a working order; closed or unknown orders are UNKNOWN_ORDER."""
        if not acct.permissions.trade:
            raise Rejected(Reject.PERMISSION_DENIED)
        order = self.find_order(acct, market, order_id, client_id)
        if not order.status.is_open:
            raise Rejected(Reject.UNKNOWN_ORDER)
        self._close(acct, order, OrderStatus.CANCELED)
        return order

    def place(
        self, acct: Account, req: OrderRequest, fill_fraction: Decimal | None = None
    ) -> Order:
        """Validate, book and (maybe) fill an order; raises :class:`Rejected`."""
        market = req.market
        if not acct.permissions.trade or (market.is_contract and not acct.permissions.futures):
            raise Rejected(Reject.PERMISSION_DENIED)
        self._check_client_id(acct, req)
        bid, ask = self.quote(market)
        touch = ask if req.side is Side.BUY else bid
        is_market = req.order_type == "MARKET"
        qty = self._resolve_qty(req, touch)
        self._check_filters(req, qty, is_market)
        crosses = is_market or (
            req.price is not None
            and (req.price >= ask if req.side is Side.BUY else req.price <= bid)
        )
        post_only = req.tif is TimeInForce.POST_ONLY or req.order_type == "LIMIT_MAKER"
        if post_only and crosses and self.rules.post_only_rejects:
            raise Rejected(Reject.POST_ONLY_WOULD_TAKE)
        ref_price = touch if crosses else (req.price or touch)
        if market.is_contract:
            self._check_futures(acct, req, qty, ref_price)
        elif not (post_only and crosses):
            self._check_spot_funds(acct, req, qty, ref_price)
        now = self.clock()
        order = Order(
            self.new_order_id(market),
            acct.api_key,
            market,
            req.client_id,
            req.side,
            req.order_type,
            qty,
            req.price,
            req.tif,
            req.reduce_only,
            req.position_side,
            now,
            now,
            quote_qty=req.quote_qty,
        )
        acct.orders.append(order)
        if post_only and crosses:
            order.extra["rejectReason"] = "EC_PostOnlyWillTakeLiquidity"
            order.status = OrderStatus.CANCELED
            return order
        if crosses:
            fill_qty = qty
            if fill_fraction is not None:
                fill_qty = floor_to_step(qty * fill_fraction, market.step_size)
                if req.tif is TimeInForce.FOK:
                    fill_qty = ZERO  # all or nothing: a partial fill kills the order
            if fill_qty > 0:
                self._fill(acct, order, fill_qty, touch, is_maker=False)
            if order.status.is_open and (
                is_market or req.tif in (TimeInForce.IOC, TimeInForce.FOK)
            ):
                self._close(acct, order, OrderStatus.EXPIRED)
        if order.status.is_open and not market.is_contract:
            self._lock_spot(acct, order)
        return order

    # -- validation -----------------------------------------------------------
    def _check_client_id(self, acct: Account, req: OrderRequest) -> None:
        if not req.client_id:
            return
        if not self._client_id_re.fullmatch(req.client_id):
            raise Rejected(Reject.INVALID_CLIENT_ID, req.client_id)
        pool = (
            acct.open_orders(req.market.symbol)
            if self.rules.client_id_scope == "open"
            else acct.orders
        )
        if any(o.client_id == req.client_id for o in pool):
            raise Rejected(Reject.DUPLICATE_CLIENT_ID, req.client_id)

    def _resolve_qty(self, req: OrderRequest, touch: Decimal) -> Decimal:
        if req.qty is not None:
            return req.qty
        if req.quote_qty is None or req.quote_qty <= 0:
            raise Rejected(Reject.QTY_TOO_SMALL)
        # A spot market order by quote amount buys what the money gets at the touch.
        return floor_to_step(req.quote_qty / touch, req.market.step_size)

    def _check_filters(self, req: OrderRequest, qty: Decimal, is_market: bool) -> None:
        market = req.market
        if qty <= 0:
            raise Rejected(Reject.QTY_TOO_SMALL, str(qty))
        if not is_multiple(qty, market.step_size):
            raise Rejected(Reject.QTY_STEP, str(qty))
        if qty < market.min_qty:
            raise Rejected(Reject.QTY_TOO_SMALL, str(qty))
        if qty > market.max_for(is_market):
            raise Rejected(Reject.QTY_TOO_LARGE, str(qty))
        if req.price is not None and not is_market:
            if req.price <= 0 or not is_multiple(req.price, market.tick_size):
                raise Rejected(Reject.PRICE_TICK, str(req.price))
            if not market.min_price <= req.price <= market.max_price:
                raise Rejected(Reject.PRICE_TICK, str(req.price))
        if req.price is None and not is_market:
            raise Rejected(Reject.BAD_PARAM, "price")
        notional = qty * (
            req.price if req.price is not None and not is_market else self.mid(market)
        )
        if notional < market.min_notional and not req.reduce_only:
            raise Rejected(Reject.MIN_NOTIONAL, str(notional), minimum=market.min_notional)

    def _check_futures(
        self, acct: Account, req: OrderRequest, qty: Decimal, price: Decimal
    ) -> None:
        if acct.hedge_mode:
            if req.position_side not in ("LONG", "SHORT"):
                raise Rejected(Reject.POSITION_SIDE_MISMATCH)
        elif req.position_side != "BOTH":
            raise Rejected(Reject.POSITION_SIDE_MISMATCH)
        signed = qty * req.side.sign
        if req.reduce_only:
            if self._reducible(acct, req.market, req.position_side, req.side) == 0:
                raise Rejected(Reject.REDUCE_ONLY_REJECTED)
            return
        if acct.hedge_mode and (req.position_side == "LONG") != (req.side is Side.BUY):
            # Closing a hedge-mode side: no margin needed, but it must not overshoot.
            if qty > self._reducible(acct, req.market, req.position_side, req.side):
                raise Rejected(Reject.REDUCE_ONLY_REJECTED)
            return
        needed = self.margin.required_for(acct, req.market, req.position_side, signed, price)
        if needed > 0 and needed > self.margin.available(acct):
            raise Rejected(Reject.INSUFFICIENT_MARGIN, f"need {needed}")

    def _reducible(
        self, acct: Account, market: MarketDef, position_side: str, side: Side
    ) -> Decimal:
        """How much an order of ``side`` may reduce the position without flipping."""
        pos = acct.position(market.symbol, position_side)
        if pos.qty == 0 or (pos.qty > 0) == (side is Side.BUY):
            return ZERO
        return abs(pos.qty)

    def _check_spot_funds(
        self, acct: Account, req: OrderRequest, qty: Decimal, price: Decimal
    ) -> None:
        market = req.market
        if req.side is Side.BUY:
            need = req.quote_qty if req.quote_qty is not None else qty * price
            have = acct.spot_free.get(market.quote, ZERO)
        else:
            need, have = qty, acct.spot_free.get(market.base, ZERO)
        if need > have:
            raise Rejected(Reject.INSUFFICIENT_BALANCE, f"need {need}, have {have}")

    # -- execution ------------------------------------------------------------
    def _fill(
        self, acct: Account, order: Order, qty: Decimal, price: Decimal, is_maker: bool
    ) -> None:
        market = order.market
        if order.reduce_only:
            qty = min(qty, self._reducible(acct, market, order.position_side, order.side))
            if qty <= 0:
                self._close(acct, order, OrderStatus.EXPIRED)
                return
        rate = self.fees.rate(market, is_maker)
        now = self.clock()
        closed = ZERO
        if market.is_contract:
            fee, fee_asset = qty * price * rate, market.quote
            held = acct.position(market.symbol, order.position_side).qty
            if held != 0 and (held > 0) != (order.side is Side.BUY):
                closed = min(qty, abs(held))
            pnl = self._apply_position(acct, order, qty, price, now)
            acct.add_collateral(pnl - fee)
        else:
            pnl = ZERO
            fee, fee_asset = self._apply_spot(acct, order, qty, price, rate)
        fill = Fill(
            self._new_seq(),
            order.order_id,
            market.symbol,
            order.side,
            price,
            qty,
            fee,
            fee_asset,
            is_maker,
            now,
            pnl,
            closed,
        )
        order.fills.append(fill)
        acct.fills.append(fill)
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.fee_total += fee
        order.fee_asset = fee_asset
        order.updated_ms = now
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED

    def _apply_position(
        self, acct: Account, order: Order, qty: Decimal, price: Decimal, now: int
    ) -> Decimal:
        pos = acct.position(order.symbol, order.position_side)
        if pos.qty == 0:
            pos.created_ms = now
        signed = qty * order.side.sign
        pnl = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            total = abs(pos.qty) + qty
            pos.entry_price = (abs(pos.qty) * pos.entry_price + qty * price) / total
        else:
            closing = min(qty, abs(pos.qty))
            pnl = closing * (price - pos.entry_price) * (1 if pos.qty > 0 else -1)
            if qty > abs(pos.qty):
                pos.entry_price = price  # flipped: the remainder opens at this price
        pos.qty += signed
        if pos.qty == 0:
            pos.entry_price = ZERO
        pos.realized_pnl += pnl
        pos.updated_ms = now
        return pnl

    def _apply_spot(
        self, acct: Account, order: Order, qty: Decimal, price: Decimal, rate: Decimal
    ) -> tuple[Decimal, str]:
        market = order.market
        cost = qty * price
        if order.extra.get("locked") == "1":
            self._release_lock(acct, order, qty)
        if order.side is Side.BUY:
            fee = qty * rate  # commission is taken from what you receive
            acct.spot_free[market.quote] = acct.spot_free.get(market.quote, ZERO) - cost
            acct.spot_free[market.base] = acct.spot_free.get(market.base, ZERO) + qty - fee
            return fee, market.base
        fee = cost * rate
        acct.spot_free[market.base] = acct.spot_free.get(market.base, ZERO) - qty
        acct.spot_free[market.quote] = acct.spot_free.get(market.quote, ZERO) + cost - fee
        return fee, market.quote

    # Spot locks: a resting limit locks its remaining cost (buy) or quantity (sell).
    def _lock_spot(self, acct: Account, order: Order) -> None:
        asset, amount = self._lock_of(order, order.remaining)
        acct.lock(asset, amount)
        order.extra["locked"] = "1"

    def _release_lock(self, acct: Account, order: Order, qty: Decimal) -> None:
        asset, amount = self._lock_of(order, qty)
        acct.unlock(asset, amount)

    @staticmethod
    def _lock_of(order: Order, qty: Decimal) -> tuple[str, Decimal]:
        market = order.market
        if order.side is Side.BUY:
            return market.quote, qty * (order.price or ZERO)
        return market.base, qty

    def _close(self, acct: Account, order: Order, status: OrderStatus) -> None:
        if order.extra.get("locked") == "1":
            self._release_lock(acct, order, order.remaining)
            order.extra["locked"] = "0"
        order.status = status
        order.updated_ms = self.clock()

    def _match_resting(self, market: MarketDef) -> None:
        bid, ask = self.quote(market)
        for acct in self.accounts.values():
            for order in acct.open_orders(market.symbol):
                if order.price is None:
                    continue
                if (order.side is Side.BUY and order.price >= ask) or (
                    order.side is Side.SELL and order.price <= bid
                ):
                    self._fill(acct, order, order.remaining, order.price, is_maker=True)
