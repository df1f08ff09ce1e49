"""Command line: ``hedgekeeper backtest`` (history through the engine) and ``report``.

Both register themselves on :data:`hedgekeeper.cli.app`. Output goes to stdout
(a table, or one JSON document with ``--json``); the progress bar and logs go to
stderr. Exit codes: 0 ok, 2 bad configuration, data or usage.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from hedgekeeper.cli import ConfigOption, _fail_config, _load, app
from hedgekeeper.exceptions import ConfigError

__all__ = ["backtest", "parse_when", "report"]


def parse_when(value: str | None, name: str) -> int | None:
    """``2021-05-01`` or ``2021-05-01T12:00`` (UTC) as epoch milliseconds."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a date (YYYY-MM-DD[THH:MM])") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command()
def backtest(
    config: ConfigOption,
    start: Annotated[
        str | None, typer.Option("--from", help="First bar (UTC date or date-time).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last bar (UTC).")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Directory of CSV bars (the ../shared/data/binance layout).",
            file_okay=False,
        ),
    ] = None,
    fetch: Annotated[
        bool, typer.Option("--fetch", help="Read the bars through ccxt (cached on disk).")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="Where --fetch keeps its bars (default ./backtest-cache).",
            file_okay=False,
        ),
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", help="Bar interval: 1m, 5m, 1h, …")
    ] = "1h",
    max_hold: Annotated[
        int, typer.Option("--max-hold", min=0, help="Bars a gap is held before groups sit out.")
    ] = 3,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal", help="Keep the run's journal in this file (default: memory).",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write an HTML report with charts.", dir_okay=False),
    ] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write the charts as one PNG.", dir_okay=False)
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    api_host: Annotated[
        str | None, typer.Option("--api-host", hidden=True, help="A local test exchange.")
    ] = None,
) -> None:
    """Replay history through the engine, one cycle per bar, and report the hedge's cost."""
    settings = _load(config)
    from hedgekeeper.logs import configure_logging

    # The engine logs every cycle: a backtest shows errors only (what was blocked or sat
    # out, and why, is counted in the report instead).
    configure_logging("error", settings.log.format, mode="backtest")
    if (data is None) == (not fetch):
        raise _fail_config("give exactly one of --data DIR and --fetch")
    try:
        start_ms, end_ms = parse_when(start, "--from"), parse_when(end, "--to")
        if start_ms is not None and end_ms is not None and end_ms < start_ms:
            raise ConfigError(f"--to {end} is before --from {start}")
        if journal is not None and journal.exists():
            raise ConfigError(f"--journal {journal}: the file exists; give a new one")
        result = asyncio.run(_backtest(settings, data, fetch, cache, interval, start_ms, end_ms,
                                       max_hold, journal, progress and not as_json,
                                       html, png, api_host))  # fmt: skip
    except ConfigError as error:
        raise _fail_config(str(error)) from None
    run, results = result
    from hedgekeeper.backtest.report import document, print_tables

    if as_json:
        sys.stdout.write(json.dumps(document(run, results)) + "\n")
    else:
        print_tables(run, results)


async def _backtest(
    settings: Any, data: Path | None, fetch: bool, cache: Path | None, interval: str,
    start_ms: int | None, end_ms: int | None, max_hold: int, journal: Path | None,
    progress: bool, html: Path | None, png: Path | None, api_host: str | None,
) -> tuple[Any, Any]:  # fmt: skip
    from hedgekeeper.backtest.analysis import analyse
    from hedgekeeper.backtest.runner import load_data, run_backtest

    markets = None
    if fetch:
        from hedgekeeper.backtest.fetch import fetch_data

        directory = await fetch_data(settings, cache or Path("backtest-cache"), interval,
                                     start_ms, end_ms, api_host=api_host,
                                     rate_limit=api_host is None)  # fmt: skip
    else:
        assert data is not None
        directory = data
    bars = load_data(settings, directory, interval, start_ms=start_ms, end_ms=end_ms,
                     max_hold=max_hold)  # fmt: skip
    if not len(bars.timeline):
        raise ConfigError("backtest data: no bars inside the window")
    bar = _Progress(len(bars.timeline)) if progress else None
    try:
        run = await run_backtest(settings, bars, journal_path=journal, markets=markets,
                                 progress=bar.update if bar else None)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    results = analyse(run, series=html is not None or png is not None)
    if html is not None or png is not None:
        from hedgekeeper.backtest.charts import write_html, write_png

        if png is not None:
            write_png(results, png)
        if html is not None:
            write_html(run, results, html)
    run.journal.close()
    return run, results


class _Progress:
    """A rich progress bar on stderr, redrawn every 1 % (cheap next to a cycle)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("backtest"), BarColumn(), TextColumn("{task.completed}/{task.total} bars"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self._task = self._progress.add_task("bars", total=total)
        self._every = max(1, total // 100)
        self._progress.start()

    def update(self, done: int, total: int) -> None:
        if done % self._every == 0 or done == total:
            self._progress.update(self._task, completed=done)

    def close(self) -> None:
        self._progress.stop()



@app.command()
def report(
    config: ConfigOption,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="The daemon's state directory (its journal.db).", file_okay=False
        ),
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal", help="A journal file (e.g. from backtest --journal).", dir_okay=False
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From (UTC date or date-time).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="To (UTC).")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only this hedge group.")] = None,
    mark: Annotated[
        list[str] | None,
        typer.Option("--mark", help="SYMBOL=PRICE to value open positions (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """The cost of the hedge per group: futures PnL, fees, funding, net cost (any journal)."""
    from hedgekeeper.cli import _state_dir

    settings = _load(config)
    path = journal or _state_dir(state_dir, settings) / "journal.db"
    try:
        low = parse_when(since, "--since")
        high = parse_when(until, "--until")
        marks = _marks(mark or [])
        if not path.is_file():
            raise ConfigError(f"no journal at {path}")
        if group is not None and group not in {h.name for h in settings.hedges}:
            raise ConfigError(f"--group: no hedge group {group!r} in {config}")
        costs = asyncio.run(_report(settings, path, low, high, group, marks))
    except ConfigError as error:
        raise _fail_config(str(error)) from None
    if as_json:
        document = {"journal": str(path), "since": since, "until": until,
                    "groups": [c.as_dict() for c in costs]}  # fmt: skip
        sys.stdout.write(json.dumps(document) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"hedge cost — {path}")
    columns = ("group", "exposure change $", "contracts", "entry", "mark", "realised $",
               "unrealised $", "fees $", "funding $", "net cost $", "cost %/yr")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "group" else "right")
    for cost in costs:
        data = cost.as_dict()
        pct = data["net_cost_pct_year"]
        table.add_row(
            cost.group, data["exposure_change_usd"] or "—", data["contracts"],
            data["entry_price"] or "—", data["mark"] or "—",
            data["realised_usd"], data["unrealised_usd"], data["fees_usd"], data["funding_usd"],
            data["net_cost_usd"], "—" if pct is None else f"{pct:.2f}%",
        )  # fmt: skip
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    console.print(table)


def _marks(values: list[str]) -> dict[str, Any]:
    marks: dict[str, Decimal] = {}
    for value in values:
        symbol, _, price = value.rpartition("=")
        try:
            parsed = Decimal(price)
        except InvalidOperation:
            parsed = Decimal(0)
        if not symbol or not parsed.is_finite() or parsed <= 0:
            raise ConfigError(f"--mark {value!r}: give SYMBOL=PRICE with a positive price")
        marks[symbol] = parsed
    return marks


async def _report(settings: Any, path: Path, since: int | None, until: int | None,
                  group: str | None, marks: dict[str, Any]) -> list[Any]:  # fmt: skip
    from hedgekeeper.hedge_cost import group_costs
    from hedgekeeper.journal import Journal

    markets = await _group_markets(settings)
    wanted = {name: spec for name, spec in markets.items() if group is None or name == group}
    # Read-only: report works beside a running daemon and never writes to its journal.
    journal = Journal(path, read_only=True)
    try:
        for _, market in wanted.values():
            if market.symbol not in marks:
                noted = journal.last_mark(market.symbol)
                if noted is None:  # else the last price it traded at
                    fills = [f for fs in journal.fills_by_group().values() for f in fs
                             if f["symbol"] == market.symbol]  # fmt: skip
                    noted = Decimal(fills[-1]["price"]) if fills else None
                if noted is not None:
                    marks[market.symbol] = noted
        # The journal's own last cycle is "now": a running daemon's is seconds old, and a
        # finished run (a backtest) ends there, in market time.
        last = journal.last_cycle()
        now = time.time() if last is None else float(last["finished_at"])
        return group_costs(journal, wanted, marks,
                           since=None if since is None else since / 1000,
                           until=None if until is None else until / 1000, now=now)  # fmt: skip
    finally:
        journal.close()


async def _group_markets(settings: Any) -> dict[str, Any]:
    """Each group's (hedge account, market spec): sim sections, else the exchange's markets."""
    from hedgekeeper.backtest.runner import account_markets
    from hedgekeeper.venues import build_venue, market_types

    out: dict[str, Any] = {}
    for hedge in settings.hedges:
        name = hedge.hedge_account
        account = settings.accounts[name]
        if account.sim is not None:
            specs = account_markets(settings, name)[0]
        else:
            venue = build_venue(name, account, settings.mode, market_types(name, settings),
                                read_only=True)  # fmt: skip
            try:
                specs = await venue.load_markets([hedge.instrument])
            finally:
                await venue.close()
        if hedge.instrument not in specs:
            raise ConfigError(f"hedges.{hedge.name}.instrument: {hedge.instrument!r} not listed")
        out[hedge.name] = (name, specs[hedge.instrument])
    return out
