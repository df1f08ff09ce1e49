"""The cost of the hedge per group, from any journal: futures PnL, fees, funding.

Every order the daemon sends — paper, testnet or live — is journaled with its
fills (amount, price, fee as the exchange or the paper fill model reported
them), and funding payments are journaled per group. Replaying a group's fills
through :mod:`hedgekeeper.accounting` gives its average entry, realised PnL and
fees; the position is marked at a given price for the unrealised part; funding
comes from the ``funding`` table (what the venue paid, deduplicated), or — for a
journal that never collected funding, such as a backtest's — from the paper
venue's own bookings.

``net cost = fees − futures PnL − funding``: positive when the hedge cost money.
Beside it, the exposure's change between the first and the last decision in the
window stands for the spot leg (holdings × price × beta; deposits included).

A window (``since``/``until``) counts the fills, fees and funding inside it,
with every earlier fill still setting the average entry; the unrealised part is
the open position's, marked at the end. Per year it is divided by the average
hedged notional over the window (time-weighted, at entry prices).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hedgekeeper.accounting import Book, apply_fill, unrealised_usd
from hedgekeeper.journal import Journal
from hedgekeeper.model import MarketSpec

__all__ = ["GroupCost", "engine_costs", "group_costs"]

_ZERO = Decimal(0)
_YEAR_S = 365.25 * 86400


@dataclass(frozen=True, slots=True)
class GroupCost:
    """One group's hedge figures over a window (USD)."""

    group: str
    symbol: str
    contracts: Decimal
    entry_price: Decimal | None
    mark: Decimal | None
    realised_usd: Decimal
    unrealised_usd: Decimal
    fees_usd: Decimal
    funding_usd: Decimal
    fills: int
    average_notional_usd: Decimal
    years: float
    #: Exposure at the last decision in the window minus at the first (``None``: no
    #: decision): the spot leg's change in value (× beta), deposits and withdrawals included.
    exposure_change_usd: Decimal | None = None

    @property
    def futures_pnl_usd(self) -> Decimal:
        """Realised plus unrealised PnL of the futures leg."""
        return self.realised_usd + self.unrealised_usd

    @property
    def net_cost_usd(self) -> Decimal:
        """Fees − futures PnL − funding: positive when the hedge cost money."""
        return self.fees_usd - self.futures_pnl_usd - self.funding_usd

    @property
    def net_cost_pct_year(self) -> float | None:
        """Net cost as % of the average hedged notional, per year."""
        if self.average_notional_usd <= 0 or self.years <= 0:
            return None
        return float(self.net_cost_usd / self.average_notional_usd) * 100 / self.years

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (decimals as strings, rounded to cents)."""
        cents = Decimal("0.01")

        def money(value: Decimal) -> str:
            return str(value.quantize(cents))

        pct = self.net_cost_pct_year
        return {
            "group": self.group,
            "symbol": self.symbol,
            "contracts": str(self.contracts),
            "entry_price": None
            if self.entry_price is None
            else str(self.entry_price.quantize(Decimal("1e-8"))),
            "mark": None if self.mark is None else str(self.mark),
            "realised_usd": money(self.realised_usd),
            "unrealised_usd": money(self.unrealised_usd),
            "futures_pnl_usd": money(self.futures_pnl_usd),
            "fees_usd": money(self.fees_usd),
            "funding_usd": money(self.funding_usd),
            "net_cost_usd": money(self.net_cost_usd),
            "net_cost_pct_year": None if pct is None else round(pct, 4),
            "average_notional_usd": money(self.average_notional_usd),
            "fills": self.fills,
            "exposure_change_usd": None
            if self.exposure_change_usd is None
            else money(self.exposure_change_usd),
        }


def _funding(journal: Journal, groups: dict[str, tuple[str, MarketSpec]], since: float,
             until: float) -> dict[str, Decimal]:  # fmt: skip
    """Funding per group in the window: the funding table, else the paper bookings."""
    totals = {name: _ZERO for name in groups}
    rows = journal.funding_records(since, until)
    if rows:
        for group, amount in rows:
            if group in totals:
                totals[group] += amount
        return totals
    for name, (account, market) in groups.items():
        for payment in journal.paper_funding(account, since, until):
            if payment.symbol == market.symbol and payment.asset == (market.settle or market.quote):
                totals[name] += payment.amount
    return totals


def group_costs(
    journal: Journal,
    groups: dict[str, tuple[str, MarketSpec]],
    marks: dict[str, Decimal],
    *,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
) -> list[GroupCost]:
    """Figures for each group (name -> (hedge account, market)); ``marks`` by symbol."""
    low = -math.inf if since is None else since
    high = math.inf if until is None else until
    fills = journal.fills_by_group()
    funding = _funding(journal, groups, low, high)
    out: list[GroupCost] = []
    for name, (account, market) in groups.items():
        book = Book()
        realised = fees = _ZERO
        counted = 0
        held: list[tuple[float, Decimal]] = []  # (from, notional at entry) after each fill
        for fill in fills.get(name, ()):
            at = float(fill["at"])
            if fill["account"] != account or fill["symbol"] != market.symbol or at > high:
                continue
            amount = Decimal(fill["amount"])
            signed = amount if fill["side"] == "buy" else -amount
            before = book
            book = apply_fill(book, market, signed, Decimal(fill["price"]),
                              Decimal(fill["fee_usd"]))  # fmt: skip
            entry = book.entry_price
            held.append((at, _ZERO if entry is None else
                         abs(book.contracts) * market.contract_value_usd(entry)))  # fmt: skip
            if at >= low:
                realised += book.realised_usd - before.realised_usd
                fees += book.fees_usd - before.fees_usd
                counted += 1
        mark = marks.get(market.symbol)
        start = low if low != -math.inf else (held[0][0] if held else None)
        end = high if high != math.inf else now
        years, average = 0.0, _ZERO
        if start is not None and end is not None and end > start:
            weighted = _ZERO
            for index, (since_at, notional) in enumerate(held):
                until_at = held[index + 1][0] if index + 1 < len(held) else end
                span = min(until_at, end) - max(since_at, start)
                if span > 0:
                    weighted += notional * Decimal(str(span))
            years = (end - start) / _YEAR_S
            average = weighted / Decimal(str(end - start))
        bounds = journal.exposure_bounds(name, low, high)
        out.append(GroupCost(
            name, market.symbol, book.contracts, book.entry_price, mark, realised,
            unrealised_usd(book, market, mark), fees, funding[name], counted, average, years,
            None if bounds is None else bounds[1] - bounds[0],
        ))  # fmt: skip
    return out


def engine_costs(engine: Any, *, since: float | None = None) -> list[GroupCost]:
    """Every group's figures for a running engine: its markets, marked at its last cycle's
    prices (journal reads: call on the engine's event loop thread)."""
    groups: dict[str, tuple[str, MarketSpec]] = {}
    for group in engine.groups:
        market = engine.markets.get(group.hedge_account, {}).get(group.instrument)
        if market is not None:
            groups[group.name] = (group.hedge_account, market)
    marks: dict[str, Decimal] = {}
    report = engine.last_report
    for decision in () if report is None else report.decisions:
        if decision.plan is not None and decision.group in groups:
            marks[groups[decision.group][1].symbol] = decision.plan.target.price
    return group_costs(engine.journal, groups, marks, since=since, now=time.time())
