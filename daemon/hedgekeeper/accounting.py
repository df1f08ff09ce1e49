"""Accounting of a futures hedge: average entry, realised and unrealised PnL (pure).

A :class:`Book` follows one position through its fills. Adding to a position
moves its average entry price (weighted by contracts for linear contracts, the
harmonic mean for inverse ones, whose PnL is in ``1 / price``); reducing it
realises ``closed × contract value × (exit − entry)`` and leaves the entry where
it was; a fill through zero closes the old side and opens the rest at the
fill's price. Fees and funding are counted beside it, so that

    hedge PnL = realised + unrealised + funding − fees
    net cost  = − hedge PnL        (positive: the hedge cost money)

Inverse PnL is settled in the base coin; it is converted to USD at the price it
was realised at (and the unrealised part at the mark).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from hedgekeeper.model import MarketKind, MarketSpec

__all__ = ["Book", "apply_fill", "hedge_pnl", "unrealised_usd"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Book:
    """One position's accounting (USD). ``contracts`` signed: negative is short."""

    contracts: Decimal = _ZERO
    entry_price: Decimal | None = None
    realised_usd: Decimal = _ZERO
    fees_usd: Decimal = _ZERO
    funding_usd: Decimal = _ZERO

    def with_funding(self, amount_usd: Decimal) -> Book:
        """The book after a funding payment (positive: received)."""
        return replace(self, funding_usd=self.funding_usd + amount_usd)


def _pnl(market: MarketSpec, contracts: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
    """USD PnL of ``contracts`` (signed) bought at ``entry`` and valued at ``exit_price``."""
    if market.kind is MarketKind.INVERSE:
        coins = contracts * market.contract_size * (1 / entry - 1 / exit_price)
        return coins * exit_price
    return contracts * market.contract_size * (exit_price - entry)


def apply_fill(
    book: Book, market: MarketSpec, signed_contracts: Decimal, price: Decimal, fee_usd: Decimal
) -> Book:
    """The book after a fill of ``signed_contracts`` (buy positive) at ``price``."""
    if price <= 0:
        raise ValueError(f"fill price must be positive, got {price}")
    held, entry = book.contracts, book.entry_price
    fees = book.fees_usd + fee_usd
    if signed_contracts == 0:
        return replace(book, fees_usd=fees)
    if held == 0 or entry is None or (held > 0) == (signed_contracts > 0):
        total = held + signed_contracts
        if held == 0 or entry is None:
            new_entry = price
        elif market.kind is MarketKind.INVERSE:
            new_entry = total / (held / entry + signed_contracts / price)
        else:
            new_entry = (held * entry + signed_contracts * price) / total
        return replace(book, contracts=total, entry_price=new_entry, fees_usd=fees)
    closing = min(abs(signed_contracts), abs(held))
    closed = closing if held > 0 else -closing
    realised = book.realised_usd + _pnl(market, closed, entry, price)
    left = held + signed_contracts
    if left == 0:
        return Book(_ZERO, None, realised, fees, book.funding_usd)
    if (left > 0) == (held > 0):
        return Book(left, entry, realised, fees, book.funding_usd)
    return Book(left, price, realised, fees, book.funding_usd)  # turned through zero


def unrealised_usd(book: Book, market: MarketSpec, mark: Decimal | None) -> Decimal:
    """Open PnL at ``mark`` (zero when flat or when no mark is known)."""
    if book.contracts == 0 or book.entry_price is None or mark is None or mark <= 0:
        return _ZERO
    return _pnl(market, book.contracts, book.entry_price, mark)


def hedge_pnl(book: Book, market: MarketSpec, mark: Decimal | None) -> Decimal:
    """What the hedge made: realised + unrealised + funding − fees (USD)."""
    return book.realised_usd + unrealised_usd(book, market, mark) + book.funding_usd - book.fees_usd
