"""A deliberately simple futures margin model.

Initial margin is ``|notional| / leverage``; the wallet pays for it. Available
balance is ``wallet + unrealized PnL - position IM - open-order IM``. The
liquidation price solves ``margin + qty * (p - entry) = mmr * |qty| * p`` with
the first maintenance tier. Good enough for a hedging daemon's tests, which need
plausible, self-consistent numbers rather than the venues' exact risk engines.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from tests.emulator.markets import MarketDef
from tests.emulator.state import Account, Order, Position

__all__ = [
    "MarginModel",
]

ZERO = Decimal(0)
PriceOf = Callable[[str], Decimal]


class MarginModel:
    """Risk figures for one account, given mark prices and market rules."""

    def __init__(
        self, markets: dict[str, MarketDef], mark_of: PriceOf, default_leverage: int
    ) -> None:
        self._markets = markets
        self._mark_of = mark_of
        self.default_leverage = default_leverage

    def leverage(self, acct: Account, symbol: str) -> int:
        """Leverage in force for a symbol."""
        return acct.leverage_of(symbol, self.default_leverage)

    def notional(self, pos: Position) -> Decimal:
        """Signed notional at mark (negative for shorts, like Binance)."""
        return pos.qty * self._mark_of(pos.symbol)

    def unrealized_pnl(self, pos: Position) -> Decimal:
        """Mark-to-market profit of a position."""
        if pos.qty == 0:
            return ZERO
        return pos.qty * (self._mark_of(pos.symbol) - pos.entry_price)

    def position_im(self, acct: Account, pos: Position) -> Decimal:
        """Initial margin held by a position."""
        return abs(self.notional(pos)) / self.leverage(acct, pos.symbol)

    def maint_margin(self, pos: Position) -> Decimal:
        """Maintenance margin of a position (first tier rate)."""
        market = self._markets[pos.symbol]
        return abs(self.notional(pos)) * market.maint_margin_rate

    def order_im(self, acct: Account, order: Order) -> Decimal:
        """Initial margin reserved by a working futures order (not reduce-only)."""
        if order.reduce_only or not order.market.is_contract or order.price is None:
            return ZERO
        return order.price * order.remaining / self.leverage(acct, order.symbol)

    def total_upnl(self, acct: Account) -> Decimal:
        """Sum of unrealized PnL over open positions."""
        return sum((self.unrealized_pnl(p) for p in acct.open_positions()), ZERO)

    def total_position_im(self, acct: Account) -> Decimal:
        """Sum of position initial margins."""
        return sum((self.position_im(acct, p) for p in acct.open_positions()), ZERO)

    def total_order_im(self, acct: Account) -> Decimal:
        """Sum of open-order initial margins."""
        return sum((self.order_im(acct, o) for o in acct.open_orders()), ZERO)

    def total_maint(self, acct: Account) -> Decimal:
        """Sum of maintenance margins."""
        return sum((self.maint_margin(p) for p in acct.open_positions()), ZERO)

    def margin_balance(self, acct: Account) -> Decimal:
        """Wallet plus unrealized PnL."""
        return acct.collateral() + self.total_upnl(acct)

    def available(self, acct: Account) -> Decimal:
        """What a new order may still use as initial margin."""
        used = self.total_position_im(acct) + self.total_order_im(acct)
        if acct.unified:
            # Spot orders lock USDT inside the same wallet on a unified account.
            used += acct.spot_locked.get("USDT", ZERO)
        return self.margin_balance(acct) - used

    def required_for(
        self,
        acct: Account,
        market: MarketDef,
        position_side: str,
        signed_qty: Decimal,
        price: Decimal,
    ) -> Decimal:
        """Extra initial margin an order needs: only the part that grows exposure."""
        pos = acct.position(market.symbol, position_side)
        grow = abs(pos.qty + signed_qty) - abs(pos.qty)
        if grow <= 0:
            return ZERO
        return grow * price / self.leverage(acct, market.symbol)

    def isolated_margin(self, acct: Account, pos: Position) -> Decimal:
        """Margin locked in an isolated position (its IM at entry), else zero."""
        if acct.margin_mode_of(pos.symbol) != "isolated" or pos.qty == 0:
            return ZERO
        return abs(pos.qty) * pos.entry_price / self.leverage(acct, pos.symbol)

    def liquidation_price(self, acct: Account, pos: Position) -> Decimal:
        """Rough liquidation price; zero when there is none (Binance prints ``0``)."""
        if pos.qty == 0:
            return ZERO
        mmr = self._markets[pos.symbol].maint_margin_rate
        if acct.margin_mode_of(pos.symbol) == "isolated":
            margin = self.isolated_margin(acct, pos)
        else:
            margin = acct.collateral()
        q = pos.qty
        denominator = q - mmr * abs(q)
        if denominator == 0:
            return ZERO
        price = (q * pos.entry_price - margin) / denominator
        return price if price > 0 else ZERO

    def bust_price(self, acct: Account, pos: Position) -> Decimal:
        """Price at which the position's margin is exhausted (mmr = 0)."""
        if pos.qty == 0:
            return ZERO
        margin = (
            self.isolated_margin(acct, pos)
            if acct.margin_mode_of(pos.symbol) == "isolated"
            else acct.collateral()
        )
        price = (pos.qty * pos.entry_price - margin) / pos.qty
        return price if price > 0 else ZERO
