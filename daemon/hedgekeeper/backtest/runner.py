"""The backtest runner: the daemon's own engine, one cycle per bar, in market time.

Nothing of the policy is re-implemented here. The runner builds a
:class:`~hedgekeeper.backtest.venue.BarVenue` per account, wraps each in the
daemon's :class:`~hedgekeeper.venues.paper.PaperVenue` (fills, fees, slippage,
funding), hands them to an :class:`~hedgekeeper.engine.Engine` whose clock — and
the journal's, and the paper venue's — is the bar's close time, and runs
``engine.run_cycle()`` once per step of the joined timeline: snapshot → assess →
plan → guard → execute, exactly as ``hedgekeeper run`` does. Guards that count
time (order rate, runaway window, maker deadlines) therefore count market time.

What each cycle decided is traced per group for the report
(:mod:`hedgekeeper.backtest.report`); orders, fills and funding stay in the
journal (in memory unless a path is given), where ``hedgekeeper report`` reads
them like any daemon's journal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hedgekeeper.backtest.data import (
    INTERVALS,
    BarSeries,
    FundingSeries,
    Timeline,
    funding_path,
    join,
    load_funding,
    load_ohlcv,
    series_path,
)
from hedgekeeper.backtest.fast import BacktestJournal, QuietLog, SequentialReader
from hedgekeeper.backtest.venue import BarCursor, BarVenue
from hedgekeeper.engine import Engine
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.journal import Journal
from hedgekeeper.model import STABLECOINS, MarketSpec, Mode, Side
from hedgekeeper.settings import Settings
from hedgekeeper.venues.base import Venue
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

__all__ = [
    "BacktestData",
    "BacktestRun",
    "GroupTrace",
    "account_markets",
    "load_data",
    "needed_series",
    "run_backtest",
]


@dataclass(slots=True)
class BacktestData:
    """The joined bars one backtest runs on, and its funding settlements per asset."""

    timeline: Timeline
    funding: dict[str, FundingSeries]
    interval: str
    directory: Path | None = None


@dataclass(slots=True)
class GroupTrace:
    """What the engine did for one group, step by step (for the report).

    ``hedge`` is the short hedge in contracts *after* each step's cycle (a float); the
    money figures come from the journal's fills and funding (:mod:`.analysis`).
    """

    name: str
    instrument: str
    account: str
    contract_size: float
    inverse: bool
    ratio: float
    holdings: dict[str, Decimal]
    #: asset -> beta, as the group's spec has them (an estimated beta: its fallback)
    betas: dict[str, Decimal] = field(default_factory=dict)
    hedge: list[float] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    sat_out: Counter[str] = field(default_factory=Counter)
    blocked: Counter[str] = field(default_factory=Counter)
    orders: int = 0


@dataclass(slots=True)
class BacktestRun:
    """The outcome of one backtest run: its data, the journal, and a trace per group."""

    settings: Settings
    data: BacktestData
    journal: Journal
    groups: dict[str, GroupTrace]
    markets: dict[str, dict[str, MarketSpec]]
    seconds: float = 0.0


def needed_series(settings: Settings) -> tuple[set[str], set[str]]:
    """Assets whose spot bars are needed, and bases whose perp bars are."""
    spot: set[str] = set()
    perp: set[str] = set()
    for hedge in settings.hedges:
        spot.update(a for a in hedge.assets if a not in STABLECOINS)
        perp.add(hedge.instrument.partition("/")[0])
    return spot, perp


def load_data(
    settings: Settings,
    directory: Path,
    interval: str = "1h",
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    max_hold: int = 3,
) -> BacktestData:
    """Read the bars every group needs from a data directory and join them."""
    if interval not in INTERVALS:
        raise ConfigError(f"backtest: interval {interval!r} is not one of {sorted(INTERVALS)}")
    spot, perp = needed_series(settings)
    series: dict[str, BarSeries] = {}
    for asset in sorted(spot | perp):
        path = series_path(directory, "spot", asset, interval)
        if asset in spot or path.is_file():
            series[f"spot:{asset}"] = load_ohlcv(path, start_ms, end_ms)
    funding: dict[str, FundingSeries] = {}
    for asset in sorted(perp):
        series[f"perp:{asset}"] = load_ohlcv(
            series_path(directory, "perp", asset, interval), start_ms, end_ms
        )
        mark = series_path(directory, "mark", asset, interval)
        if mark.is_file():
            series[f"mark:{asset}"] = load_ohlcv(mark, start_ms, end_ms)
        settlements = funding_path(directory, asset)
        if settlements.is_file():
            funding[asset] = load_funding(settlements)
    empty = [name for name, one in series.items() if not one.times]
    if empty:
        raise ConfigError(f"backtest data: no bars inside the window for {', '.join(empty)}")
    timeline = join(series, INTERVALS[interval], max_hold)
    return BacktestData(timeline, funding, interval, directory)


def account_markets(
    settings: Settings, name: str
) -> tuple[dict[str, MarketSpec], dict[str, Decimal], dict[str, Decimal]]:
    """Markets, balances and starting positions of one account, from its sim section."""
    account = settings.accounts[name]
    if account.sim is None:
        raise ConfigError(
            f"accounts.{name}: a backtest account must be exchange = \"sim\" (its contract "
            "sizes and balances say what is traded and held)"
        )
    sim = SimVenue(name, account.sim)
    markets: dict[str, MarketSpec] = sim._markets  # the sim's own normalised specs
    return markets, dict(account.sim.balances), dict(account.sim.positions)


async def run_backtest(
    settings: Settings,
    data: BacktestData,
    *,
    journal_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    markets: dict[str, dict[str, MarketSpec]] | None = None,
) -> BacktestRun:
    """Run the engine once per step of ``data``; see the module docstring."""
    import time

    settings = settings.model_copy(update={"mode": Mode.DRY_RUN})
    cursor = BarCursor(data.timeline)
    clock = cursor.now
    journal = BacktestJournal(journal_path, clock=clock)
    venues: dict[str, Venue] = {}
    bars_of: dict[str, BarVenue] = {}
    for name, account_settings in settings.accounts.items():
        if markets is not None and name in markets:
            specs: dict[str, MarketSpec] = markets[name]
            balances: dict[str, Decimal] = {}
            positions: dict[str, Decimal] = {}
        else:
            specs, balances, positions = account_markets(settings, name)
        sim = account_settings.sim
        spread = sim.spread_bps if sim is not None else Decimal(2)
        bars = BarVenue(name, cursor, specs, balances, positions, data.funding, spread)
        bars_of[name] = bars
        venues[name] = PaperVenue(bars, journal, settings.paper, clock=clock)
    engine = Engine(settings, venues, journal, clock=clock)
    await engine.start()
    reader = engine.reader
    assert reader is not None
    engine.log = QuietLog(engine.log)
    engine.reader = SequentialReader(
        engine.venues, reader.needs, reader.prefix, reader.settings, clock=clock,
        log=engine.log, events=engine.events,
    )  # fmt: skip
    traces: dict[str, GroupTrace] = {}
    for group in engine.groups:
        market = engine.markets[group.hedge_account][group.instrument]
        holdings: dict[str, Decimal] = {}
        for account in group.spot_accounts:
            found = await venues[account].fetch_balances()
            for asset in group.assets:
                holdings[asset] = holdings.get(asset, Decimal(0)) + found.get(asset, Decimal(0))
        for asset, amount in group.extra_holdings.items():
            holdings[asset] = holdings.get(asset, Decimal(0)) + amount
        traces[group.name] = GroupTrace(
            group.name, group.instrument, group.hedge_account, float(market.contract_size),
            market.kind.value == "inverse", float(group.ratio), holdings, dict(group.assets),
        )  # fmt: skip
    hedges = {g.name: 0.0 for g in engine.groups}
    steps = len(data.timeline)
    started = time.perf_counter()
    for index in range(steps):
        cursor.move(index)
        journal.keep_all = index == steps - 1
        report = await engine.run_cycle()
        for decision in report.decisions:
            trace = traces[decision.group]
            trace.actions[decision.action] += 1
            plan = decision.plan
            hedge = hedges[decision.group]
            if plan is not None:
                hedge = float(plan.hedge_contracts)
                for order in decision.orders or ():
                    filled = float(order.filled)
                    hedge += filled if order.side is Side.SELL else -filled
                trace.orders += len(decision.orders or ())
            if decision.action == "skipped":
                trace.sat_out[decision.reason] += 1
            elif decision.action == "blocked":
                trace.blocked[decision.rule or decision.reason] += 1
            hedges[decision.group] = hedge
            trace.hedge.append(hedge)
        if progress is not None:
            progress(index + 1, steps)
    for group in engine.groups:  # the final marks, for `hedgekeeper report` later
        quote = bars_of[group.hedge_account].quote(group.instrument)
        if quote is not None and quote.reference is not None:
            journal.note_mark(group.instrument, quote.reference)
    await engine.close()
    return BacktestRun(settings, data, journal, traces, engine.markets,
                       time.perf_counter() - started)  # fmt: skip
