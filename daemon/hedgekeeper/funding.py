"""Funding: what a perpetual position pays or receives at each settlement (pure).

Perpetual futures settle *funding* every few hours (8 h on most pairs): when the
rate is positive, longs pay shorts ``position value × rate``; when it is
negative, shorts pay longs. A short hedge therefore usually *earns* funding in a
rising market and pays it when sentiment turns. The daemon does not trade on
funding; it counts it, because it is part of what the hedge costs.

Sign convention (see :class:`~hedgekeeper.model.FundingPayment`): an amount is
the change to the account balance: positive received, negative paid.
"""

from __future__ import annotations

from decimal import Decimal

from hedgekeeper.model import STABLECOINS, FundingPayment, MarketKind, MarketSpec

__all__ = ["payment_usd", "settlement", "split_window"]

_QUANTUM = Decimal("1e-8")


def settlement(
    market: MarketSpec, contracts: Decimal, mark: Decimal, rate: Decimal
) -> tuple[Decimal, Decimal]:
    """The balance change of holding ``contracts`` (signed) through one settlement.

    Returns ``(amount in the settle asset, amount in USD)``. Linear contracts settle
    in their (stablecoin) quote; inverse ones in the base coin, at ``mark``.

    >>> from hedgekeeper.model import MarketKind, MarketSpec
    >>> btc = MarketSpec("BTC/USDT:USDT", MarketKind.LINEAR, "BTC", "USDT", "USDT",
    ...                  Decimal("0.01"), Decimal(1))
    >>> settlement(btc, Decimal(-50), Decimal(70000), Decimal("0.0001"))  # short 0.5 BTC
    (Decimal('3.50000000'), Decimal('3.50000000'))
    """
    usd = -(contracts * market.contract_value_usd(mark)) * rate
    if market.kind is MarketKind.INVERSE and market.settle not in STABLECOINS:
        amount = usd / mark if mark else Decimal(0)
    else:
        amount = usd
    return amount.quantize(_QUANTUM), usd.quantize(_QUANTUM)


def payment_usd(payment: FundingPayment, price: Decimal | None) -> Decimal | None:
    """A payment in USD: stablecoins at 1, other assets at ``price`` (``None`` if unknown)."""
    if payment.asset in STABLECOINS:
        return payment.amount
    if price is None:
        return None
    return (payment.amount * price).quantize(_QUANTUM)


def split_window(start_ms: int, end_ms: int, max_span_ms: int) -> list[tuple[int, int]]:
    """Cut ``[start_ms, end_ms]`` into consecutive inclusive windows of at most ``max_span_ms``.

    Exchanges bound a history query's time range (Bybit: 7 days), so a long gap
    is read as several windows.

    >>> split_window(0, 25, 10)
    [(0, 9), (10, 19), (20, 25)]
    """
    if end_ms < start_ms:
        return []
    windows: list[tuple[int, int]] = []
    begin = start_ms
    while begin <= end_ms:
        end = min(begin + max_span_ms - 1, end_ms)
        windows.append((begin, end))
        begin = end + 1
    return windows
