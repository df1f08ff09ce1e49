"""``backtest --fetch``: read the bars through ccxt into an on-disk cache, then run on it.

The cache is a data directory in the same layout as ``../shared/data/binance``
(see :mod:`hedgekeeper.backtest.data`), so a fetched window can be reused with
``--data`` and needs no network the second time: a series is fetched only when
its cached file does not already cover the window (new bars are merged in, by
timestamp). Spot and perpetual bars come from ``fetch_ohlcv``, mark-price bars
from ``fetch_ohlcv(..., params={"price": "mark"})``, funding from
``fetch_funding_rate_history`` (Binance, public endpoints, no keys).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from hedgekeeper.backtest.data import INTERVALS, funding_path, series_path
from hedgekeeper.backtest.runner import needed_series
from hedgekeeper.exceptions import ConfigError, VenueError
from hedgekeeper.settings import Settings

__all__ = ["fetch_data"]

_FUNDING_MS = 8 * 3_600_000


def _read_rows(path: Path) -> dict[int, list[str]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return {int(row[0]): row for row in reader if row}


def _write_rows(path: Path, header: str, rows: dict[int, list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", newline="") as handle:
        handle.write(header + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        for at in sorted(rows):
            writer.writerow(rows[at])
    temporary.replace(path)  # a crash never leaves half a cache file


def _covers(rows: dict[int, list[str]], first: int, last: int) -> bool:
    return bool(rows) and min(rows) <= first and max(rows) >= last


async def fetch_data(
    settings: Settings, cache: Path, interval: str, start_ms: int | None, end_ms: int | None,
    *, api_host: str | None = None, rate_limit: bool = True,
) -> Path:  # fmt: skip
    """Fill ``cache`` with every series the groups need over the window; return it."""
    from hedgekeeper.venues.ccxt_history import CcxtHistory

    if start_ms is None:
        raise ConfigError("--fetch needs --from (how far back to read)")
    step = INTERVALS.get(interval)
    if step is None:
        raise ConfigError(f"backtest: interval {interval!r} is not one of {sorted(INTERVALS)}")
    now_ms = int(time.time() * 1000)
    first = (start_ms + step - 1) // step * step
    last_closed = (now_ms // step - 1) * step  # the bar still forming is not history yet
    last = min(end_ms if end_ms is not None else last_closed, last_closed) // step * step
    if last < first:
        raise ConfigError("--fetch: no closed bar inside the window")
    spot, perp = needed_series(settings)
    history = CcxtHistory(api_host=api_host, rate_limit=rate_limit)
    header = "timestamp_ms,open,high,low,close,volume"
    try:
        wanted: list[tuple[Path, str, bool]] = []
        for asset in sorted(spot):
            wanted.append((series_path(cache, "spot", asset, interval), f"{asset}/USDT", False))
        for asset in sorted(perp):
            symbol = f"{asset}/USDT:USDT"
            wanted.append((series_path(cache, "perp", asset, interval), symbol, False))
            wanted.append((series_path(cache, "mark", asset, interval), symbol, True))
        for path, symbol, mark in wanted:
            rows = _read_rows(path)
            if _covers(rows, first, last):
                continue
            for bar in await history.ohlcv(symbol, interval, first, last, mark=mark):
                rows[int(bar[0])] = [str(int(bar[0]))] + [str(v) for v in bar[1:6]]
            if rows:
                _write_rows(path, header, rows)
        for asset in sorted(perp):
            path = funding_path(cache, asset)
            rows = _read_rows(path)
            # settlements from one interval before the window to one after its end
            low, high = first - _FUNDING_MS, min(last + step + _FUNDING_MS, now_ms)
            if _covers(rows, first, high - _FUNDING_MS):
                continue
            for at, rate in await history.funding(f"{asset}/USDT:USDT", low, high):
                rows[at] = [str(at), str(rate)]
            if rows:
                _write_rows(path, "timestamp_ms,rate", rows)
    except VenueError as error:
        raise ConfigError(f"--fetch: {error}") from None
    finally:
        await history.close()
    return cache


