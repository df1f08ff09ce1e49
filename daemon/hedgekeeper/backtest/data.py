"""Historical bars for the backtest: read CSV files, join them by timestamp.

Layout of a data directory (the one ``../shared/data/binance`` uses, and the one
``--fetch`` writes into its cache)::

    binance_spot_{ASSET}USDT_{interval}.csv   spot OHLCV
    binance_perp_{ASSET}USDT_{interval}.csv   USDⓈ-M perpetual OHLCV (trade prices)
    binance_mark_{ASSET}USDT_{interval}.csv   its mark-price OHLCV (optional)
    binance_funding_{ASSET}USDT.csv           funding settlements (optional)

OHLCV files have the header ``timestamp_ms,open,high,low,close,volume`` where
``timestamp_ms`` is the bar's *open* time in epoch milliseconds (UTC), rows in
strictly increasing time; only ``timestamp_ms`` and ``close`` are used. Funding
files have ``timestamp_ms,rate``: the settlement time and the rate per settlement
(0.0001 = 0.01 %).

Joining: the timeline is every bar time that any of the needed price series
has, inside ``[start, end]``. At each step a series either has its own bar
(*fresh*), or repeats its last close for at most ``max_hold`` steps (*held*, e.g.
a Binance spot outage), or is *missing* after that — and the venue then shows
no price for it, so the groups that need it sit out through the engine's own
missing-data rule. Every held and missing step is counted.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from hedgekeeper.exceptions import ConfigError

__all__ = [
    "INTERVALS",
    "BarSeries",
    "FundingSeries",
    "Timeline",
    "funding_path",
    "join",
    "load_funding",
    "load_ohlcv",
    "series_path",
]

#: Bar intervals the layout knows, in milliseconds.
INTERVALS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000,
             "1d": 86_400_000}  # fmt: skip


def series_path(directory: Path, kind: str, asset: str, interval: str, quote: str = "USDT") -> Path:
    """Where the ``kind`` (spot, perp, mark) bars of ``asset`` live in a data directory."""
    return directory / f"binance_{kind}_{asset}{quote}_{interval}.csv"


def funding_path(directory: Path, asset: str, quote: str = "USDT") -> Path:
    """Where the funding settlements of ``asset``'s perpetual live in a data directory."""
    return directory / f"binance_funding_{asset}{quote}.csv"


@dataclass(slots=True)
class BarSeries:
    """Closes of one OHLCV file: parallel lists of open times (ms) and closes."""

    name: str
    times: list[int]
    closes: list[Decimal]


@dataclass(slots=True)
class FundingSeries:
    """Funding settlements of one perpetual: times (ms) and rates."""

    name: str
    times: list[int]
    rates: list[Decimal]

    def next_after(self, ms: int) -> tuple[int, Decimal] | None:
        """The first settlement strictly after ``ms``: (time, rate), or ``None``."""
        index = bisect.bisect_right(self.times, ms)
        if index == len(self.times):
            return None
        return self.times[index], self.rates[index]


def _rows(path: Path, columns: Sequence[str]) -> Iterable[list[str]]:
    try:
        handle = path.open(newline="")
    except OSError as error:
        raise ConfigError(f"backtest data: cannot read {path}: {error.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[: len(columns)]] != list(columns):
            raise ConfigError(
                f"backtest data: {path}: the header must start with {','.join(columns)}, "
                f"found {','.join(header or [])!r}"
            )
        yield from reader


def load_ohlcv(path: Path, start_ms: int | None = None, end_ms: int | None = None) -> BarSeries:
    """Read one OHLCV file (only bars opening inside ``[start_ms, end_ms]``)."""
    times: list[int] = []
    closes: list[Decimal] = []
    last = -1
    low = -1 if start_ms is None else start_ms
    high = end_ms if end_ms is not None else 1 << 62
    for number, row in enumerate(
        _rows(path, ("timestamp_ms", "open", "high", "low", "close")), start=2
    ):
        try:
            at, close = int(row[0]), Decimal(row[4])
        except (ValueError, IndexError, ArithmeticError):
            raise ConfigError(f"backtest data: {path}:{number}: not a bar: {row!r}") from None
        if at <= last:
            raise ConfigError(
                f"backtest data: {path}:{number}: timestamp_ms {at} is not after {last}"
            )
        if not close.is_finite() or close <= 0:
            raise ConfigError(f"backtest data: {path}:{number}: close {row[4]!r} is not positive")
        last = at
        if low <= at <= high:
            times.append(at)
            closes.append(close)
    return BarSeries(path.name, times, closes)


def load_funding(path: Path) -> FundingSeries:
    """Read one funding file (every settlement: the next one after the window matters)."""
    times: list[int] = []
    rates: list[Decimal] = []
    last = -1
    for number, row in enumerate(_rows(path, ("timestamp_ms", "rate")), start=2):
        try:
            at, rate = int(row[0]), Decimal(row[1])
        except (ValueError, IndexError, ArithmeticError):
            raise ConfigError(
                f"backtest data: {path}:{number}: not a settlement: {row!r}"
            ) from None
        if at <= last or not rate.is_finite():
            raise ConfigError(f"backtest data: {path}:{number}: bad settlement {row!r}")
        last = at
        times.append(at)
        rates.append(rate)
    return FundingSeries(path.name, times, rates)


@dataclass(slots=True)
class Timeline:
    """Series joined on one timeline.

    ``closes[name][i]`` is the close of series ``name`` at step ``i`` (its own bar,
    or a held one), or ``None`` when it is missing there. ``held`` and ``missing``
    count such steps per series.
    """

    times: list[int]
    interval_ms: int
    closes: dict[str, list[Decimal | None]]
    fresh: dict[str, list[bool]]
    held: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def join(series: dict[str, BarSeries], interval_ms: int, max_hold: int) -> Timeline:
    """Join series on the union of their bar times; hold gaps for at most ``max_hold`` steps.

    A series is not held before its first bar (it is missing there).
    """
    times = sorted(set().union(*(s.times for s in series.values()))) if series else []
    closes: dict[str, list[Decimal | None]] = {}
    fresh: dict[str, list[bool]] = {}
    held: dict[str, int] = {}
    missing: dict[str, int] = {}
    for name, one in series.items():
        own = dict(zip(one.times, one.closes, strict=True))
        column: list[Decimal | None] = []
        flags: list[bool] = []
        last: Decimal | None = None
        last_at: int | None = None
        n_held = n_missing = 0
        for at in times:
            close = own.get(at)
            if close is not None:
                last, last_at = close, at
                column.append(close)
                flags.append(True)
                continue
            flags.append(False)
            if last_at is not None and (at - last_at) // interval_ms <= max_hold:
                column.append(last)
                n_held += 1
            else:
                column.append(None)
                n_missing += 1
        closes[name], fresh[name] = column, flags
        held[name], missing[name] = n_held, n_missing
    return Timeline(times, interval_ms, closes, fresh, held, missing)
