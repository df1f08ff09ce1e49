"""Backtest figures: what the hedge did, and what reference policies do on the same bars.

Per group, on the joined timeline (one value per step, in USD):

* spot value = Σ holdings × spot close; its change per step is the unhedged return;
* the hedge's PnL comes from the journal's own fills and funding through
  :mod:`hedgekeeper.accounting` (average entry, realised and unrealised at the
  mark, fees, funding); hedged return = change of spot value + hedge PnL;
* hedge effectiveness ``HE = 1 − Var(r_hedged) / Var(r_unhedged)`` at the data's
  interval; tracking error = RMS of (hedge notional / exposure − ratio) over the
  steps where the group had an exposure; largest residual = max |ratio × exposure
  − hedge notional|; maximum drawdown of spot value (unhedged) and of spot value +
  hedge PnL (hedged); net cost = −hedge PnL, also as % a year of the average hedged
  notional.

Reference policies run on the same steps without the engine (they are
yardsticks, not the product): ``no hedge``; ``exact every bar`` (the unrounded
target at every close, no fees: the frictionless bound); ``every hour`` and
``every day`` (back to the target rounded down to the step at the first close of
each hour or day, paying the paper taker fee, slippage and half the spread).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedgekeeper.accounting import Book, apply_fill
from hedgekeeper.backtest.runner import BacktestRun, GroupTrace
from hedgekeeper.funding import payment_usd
from hedgekeeper.model import STABLECOINS, MarketKind, MarketSpec

__all__ = ["GroupResult", "PolicyResult", "analyse", "carried", "he", "max_drawdown"]

_YEAR_MS = 365.25 * 86_400_000


def carried(column: Iterable[Decimal | None]) -> list[float | None]:
    """A column as floats, each gap filled with the last known value (``None`` before it)."""
    out: list[float | None] = []
    last: float | None = None
    for value in column:
        if value is not None:
            last = float(value)
        out.append(last)
    return out


def _variance(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def he(hedged: list[float], unhedged: list[float]) -> float | None:
    """Hedge effectiveness 1 − Var(hedged) / Var(unhedged), or ``None`` without variance."""
    base = _variance(unhedged)
    return None if base == 0 else 1 - _variance(hedged) / base


def max_drawdown(equity: list[float]) -> float:
    """Largest fall from a running peak (USD, positive)."""
    peak, worst = -math.inf, 0.0
    for value in equity:
        if value > peak:
            peak = value
        elif peak - value > worst:
            worst = peak - value
    return worst


def _returns(equity: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(equity)]


@dataclass(slots=True)
class PolicyResult:
    """One policy's figures on one group's bars."""

    policy: str
    he: float | None
    tracking_error: float | None
    max_residual_usd: float
    orders: int
    fees_usd: float
    funding_usd: float
    futures_pnl_usd: float
    net_cost_usd: float
    net_cost_pct_year: float | None
    max_drawdown_usd: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (rounded for reading)."""
        return {
            "policy": self.policy,
            "he": None if self.he is None else round(self.he, 6),
            "tracking_error": None
            if self.tracking_error is None
            else round(self.tracking_error, 6),
            "max_residual_usd": round(self.max_residual_usd, 2),
            "orders": self.orders,
            "fees_usd": round(self.fees_usd, 2),
            "funding_usd": round(self.funding_usd, 2),
            "futures_pnl_usd": round(self.futures_pnl_usd, 2),
            "net_cost_usd": round(self.net_cost_usd, 2),
            "net_cost_pct_year": None
            if self.net_cost_pct_year is None
            else round(self.net_cost_pct_year, 4),
            "max_drawdown_usd": round(self.max_drawdown_usd, 2),
        }


@dataclass(slots=True)
class GroupResult:
    """Everything the report says about one group (and the series its charts draw)."""

    name: str
    instrument: str
    ratio: float
    steps: int
    spot_pnl_usd: float
    max_drawdown_unhedged_usd: float
    hedgekeeper: PolicyResult
    references: list[PolicyResult]
    sat_out: dict[str, int]
    blocked: dict[str, int]
    held_bars: dict[str, int]
    missing_bars: dict[str, int]
    times_ms: list[int] = field(default_factory=list)
    exposure_usd: list[float] = field(default_factory=list)
    target_usd: list[float] = field(default_factory=list)
    hedge_usd: list[float] = field(default_factory=list)
    net_cost_usd: list[float] = field(default_factory=list)
    drawdown_hedged_usd: list[float] = field(default_factory=list)
    drawdown_unhedged_usd: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the series)."""
        return {
            "name": self.name,
            "instrument": self.instrument,
            "ratio": self.ratio,
            "steps": self.steps,
            "spot_pnl_usd": round(self.spot_pnl_usd, 2),
            "max_drawdown_unhedged_usd": round(self.max_drawdown_unhedged_usd, 2),
            "hedgekeeper": self.hedgekeeper.as_dict(),
            "references": [r.as_dict() for r in self.references],
            "sat_out": dict(self.sat_out),
            "blocked": dict(self.blocked),
            "held_bars": dict(self.held_bars),
            "missing_bars": dict(self.missing_bars),
        }


def _drawdowns(equity: list[float]) -> list[float]:
    peak, out = -math.inf, []
    for value in equity:
        peak = max(peak, value)
        out.append(peak - value)
    return out


class _Leg:
    """Per-step futures arithmetic in floats for the reference policies."""

    def __init__(self, market: MarketSpec) -> None:
        self.size = float(market.contract_size)
        self.inverse = market.kind is MarketKind.INVERSE

    def value(self, mark: float) -> float:
        """USD value of one contract."""
        return self.size if self.inverse else self.size * mark

    def pnl(self, short: float, before: float, after: float) -> float:
        """USD PnL of ``short`` contracts short while the mark goes from before to after."""
        if self.inverse:
            return -short * self.size * (after / before - 1)
        return -short * self.size * (after - before)


def _settlements(run: BacktestRun, base: str) -> list[tuple[int, float]]:
    """(step, rate) for every funding settlement inside the timeline."""
    series = run.data.funding.get(base)
    timeline = run.data.timeline
    if series is None or not timeline.times:
        return []
    out: list[tuple[int, float]] = []
    step = 0
    closes = [t + timeline.interval_ms for t in timeline.times]
    for at, rate in zip(series.times, series.rates, strict=True):
        if at <= closes[0] - timeline.interval_ms or at > closes[-1]:
            continue
        while closes[step] < at:
            step += 1
        out.append((step, float(rate)))
    return out


def _policy(
    name: str, run: BacktestRun, trace: GroupTrace, leg: _Leg, marks: list[float | None],
    exposure: list[float | None], spot_value: list[float | None], every_ms: int | None,
    step: float, exact: bool,
) -> PolicyResult:  # fmt: skip
    """A reference policy on the group's bars (see the module docstring)."""
    if name == "no hedge":  # nothing to simulate: the spot leg alone
        known = [e for e in exposure if e is not None and e > 0]
        return _finish_policy(name, [v or 0.0 for v in spot_value], spot_value,
                              [-trace.ratio] * len(known),
                              max((trace.ratio * e for e in known), default=0.0), 0, 0.0, 0.0,
                              0.0, 0.0, 0, run.data.timeline.times,
                              run.data.timeline.interval_ms)  # fmt: skip
    paper = run.settings.paper
    cost_rate = float(paper.taker_fee) + float(paper.slippage_bps) / 10_000
    account = run.settings.accounts.get(trace.account)
    spread = float(account.sim.spread_bps) if account and account.sim else 2.0
    cost_rate += spread / 20_000
    times = run.data.timeline.times
    funding = dict(_settlements(run, trace.instrument.partition("/")[0]))
    short, period, orders = 0.0, None, 0
    fees = funding_total = futures = 0.0
    equity: list[float] = []
    ratios: list[float] = []
    residual = 0.0
    notional_sum, notional_n = 0.0, 0
    last_mark: float | None = None
    for i, mark in enumerate(marks):
        if mark is not None and last_mark is not None:
            futures += leg.pnl(short, last_mark, mark)
        if i in funding and mark is not None:
            funding_total += short * leg.value(mark) * funding[i]
        expo = exposure[i]
        if mark is not None and expo is not None and name != "no hedge":
            wanted = max(expo, 0.0) * trace.ratio / leg.value(mark)
            due = exact or every_ms is None or period != times[i] // every_ms
            if due:
                if every_ms is not None:
                    period = times[i] // every_ms
                target = wanted if exact else math.floor(wanted / step + 1e-9) * step
                if target != short:
                    if not exact:
                        fees += abs(target - short) * leg.value(mark) * cost_rate
                        orders += 1
                    short = target
        if mark is not None:
            last_mark = mark
            if expo is not None and expo > 0:
                hedge_usd = short * leg.value(mark)
                ratios.append(hedge_usd / expo - trace.ratio)
                gap = abs(trace.ratio * expo - hedge_usd)
                if gap > residual:
                    residual = gap
                notional_sum += hedge_usd
                notional_n += 1
        value = spot_value[i]
        equity.append((value or 0.0) + futures + funding_total - fees)
    return _finish_policy(name, equity, spot_value, ratios, residual, orders, fees,
                          funding_total, futures, notional_sum, notional_n, times,
                          run.data.timeline.interval_ms)  # fmt: skip


def _finish_policy(
    name: str, equity: list[float], spot_value: list[float | None], ratios: list[float],
    residual: float, orders: int, fees: float, funding: float, futures: float,
    notional_sum: float, notional_n: int, times: list[int], interval_ms: int,
) -> PolicyResult:  # fmt: skip
    unhedged = [v or 0.0 for v in spot_value]
    net = fees - futures - funding
    years = (times[-1] - times[0] + interval_ms) / _YEAR_MS if times else 0.0
    average = notional_sum / notional_n if notional_n else 0.0
    return PolicyResult(
        policy=name,
        he=0.0 if name == "no hedge" else he(_returns(equity), _returns(unhedged)),
        tracking_error=math.sqrt(sum(r * r for r in ratios) / len(ratios)) if ratios else None,
        max_residual_usd=residual,
        orders=orders,
        fees_usd=fees,
        funding_usd=funding,
        futures_pnl_usd=futures,
        net_cost_usd=net,
        net_cost_pct_year=100 * net / average / years if average > 0 and years > 0 else None,
        max_drawdown_usd=max_drawdown(equity),
    )


def analyse(run: BacktestRun, *, series: bool = False) -> list[GroupResult]:
    """Figures for every group of a finished run (with chart series when ``series``)."""
    timeline = run.data.timeline
    times = timeline.times
    fills_by_symbol: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for fill in run.journal.fills():
        fills_by_symbol.setdefault((fill["account"], fill["symbol"]), []).append(fill)
    results: list[GroupResult] = []
    for trace in run.groups.values():
        market = run.markets[trace.account][trace.instrument]
        base = market.base
        leg = _Leg(market)
        perp = carried(timeline.closes[f"perp:{base}"])
        mark_column = timeline.closes.get(f"mark:{base}")
        marks = perp if mark_column is None else [
            m if m is not None else p for m, p in zip(carried(mark_column), perp, strict=True)
        ]  # fmt: skip
        spots = {a: carried(timeline.closes[f"spot:{a}"]) for a in trace.holdings
                 if a not in STABLECOINS}  # fmt: skip
        spot_value: list[float | None] = []
        exposure: list[float | None] = []
        for i in range(len(times)):
            value = beta_value = 0.0
            known = True
            for asset, amount in trace.holdings.items():
                price = 1.0 if asset in STABLECOINS else spots[asset][i]
                if price is None:
                    known = False
                    break
                value += float(amount) * price
                beta_value += float(amount) * price * float(trace.betas.get(asset, 1))
            spot_value.append(value if known else None)
            exposure.append(beta_value if known else None)
        # The product: its own fills and funding from the journal, step by step.
        by_time: dict[float, list[dict[str, Any]]] = {}
        for fill in fills_by_symbol.get((trace.account, trace.instrument), []):
            by_time.setdefault(float(fill["at"]), []).append(fill)
        payments: dict[float, float] = {}
        for payment in run.journal.paper_funding(trace.account, -math.inf, math.inf):
            if payment.symbol != trace.instrument:
                continue
            step_mark = marks[_step_of(times, timeline.interval_ms, payment.timestamp)]
            usd = payment_usd(payment, None if step_mark is None else Decimal(str(step_mark)))
            if usd is not None:
                payments[payment.timestamp] = payments.get(payment.timestamp, 0.0) + float(usd)
        book = Book()
        funding_total = 0.0
        equity: list[float] = []
        net_cost: list[float] = []
        ratios: list[float] = []
        residual = notional_sum = 0.0
        notional_n = 0
        target_usd: list[float] = []
        hedge_usd_series: list[float] = []
        entry = 0.0
        for i, at_ms in enumerate(times):
            now = (at_ms + timeline.interval_ms) / 1000
            funding_total += payments.get(now, 0.0)
            for fill in by_time.get(now, ()):
                amount = Decimal(fill["amount"])
                signed = amount if fill["side"] == "buy" else -amount
                book = apply_fill(book, market, signed, Decimal(fill["price"]),
                                  Decimal(fill["fee_usd"]))  # fmt: skip
                entry = float(book.entry_price) if book.entry_price is not None else 0.0
            mark = marks[i]
            contracts = float(book.contracts)
            open_pnl = 0.0
            if mark is not None and contracts and entry:
                open_pnl = leg.pnl(-contracts, entry, mark)
            hedge_pnl = float(book.realised_usd) + open_pnl + funding_total - float(book.fees_usd)
            equity.append((spot_value[i] or 0.0) + hedge_pnl)
            net_cost.append(-hedge_pnl)
            expo = exposure[i]
            hedge_now = -contracts * leg.value(mark) if mark is not None else 0.0
            if expo is not None and expo > 0 and mark is not None:
                ratios.append(hedge_now / expo - trace.ratio)
                residual = max(residual, abs(trace.ratio * expo - hedge_now))
                notional_sum += hedge_now
                notional_n += 1
            if series:
                target_usd.append(trace.ratio * max(expo or 0.0, 0.0))
                hedge_usd_series.append(hedge_now)
        last_mark = next((m for m in reversed(marks) if m is not None), None)
        open_final = leg.pnl(-float(book.contracts), entry, last_mark) if (
            last_mark is not None and book.contracts and entry) else 0.0  # fmt: skip
        futures = float(book.realised_usd) + open_final
        product = _finish_policy(
            "hedgekeeper", equity, spot_value, ratios, residual, trace.orders,
            float(book.fees_usd), funding_total, futures, notional_sum, notional_n, times,
            timeline.interval_ms,
        )  # fmt: skip
        step = float(market.amount_step)
        references = [
            _policy("no hedge", run, trace, leg, marks, exposure, spot_value, None, step, False),
            _policy("exact every bar", run, trace, leg, marks, exposure, spot_value, None, step,
                    True),
            _policy("every hour", run, trace, leg, marks, exposure, spot_value, 3_600_000, step,
                    False),
            _policy("every day", run, trace, leg, marks, exposure, spot_value, 86_400_000, step,
                    False),
        ]  # fmt: skip
        valued = [v for v in spot_value if v is not None]
        unhedged_equity = [v or 0.0 for v in spot_value]
        result = GroupResult(
            name=trace.name, instrument=trace.instrument, ratio=trace.ratio, steps=len(times),
            spot_pnl_usd=valued[-1] - valued[0] if valued else 0.0,
            max_drawdown_unhedged_usd=max_drawdown(unhedged_equity),
            hedgekeeper=product, references=references, sat_out=dict(trace.sat_out),
            blocked=dict(trace.blocked),
            held_bars={k: v for k, v in timeline.held.items() if v},
            missing_bars={k: v for k, v in timeline.missing.items() if v},
        )  # fmt: skip
        if series:
            result.times_ms = [t + timeline.interval_ms for t in times]
            result.exposure_usd = [e or 0.0 for e in exposure]
            result.target_usd = target_usd
            result.hedge_usd = hedge_usd_series
            result.net_cost_usd = net_cost
            result.drawdown_hedged_usd = _drawdowns(equity)
            result.drawdown_unhedged_usd = _drawdowns(unhedged_equity)
        results.append(result)
    return results


def _step_of(times: list[int], interval_ms: int, at_s: float) -> int:
    """The step whose close is ``at_s`` (or the last one before it)."""
    index = bisect.bisect_right(times, int(at_s * 1000) - interval_ms) - 1
    return max(0, min(index, len(times) - 1))
