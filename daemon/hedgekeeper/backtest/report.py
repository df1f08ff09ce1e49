"""The backtest report as a terminal table and as one JSON document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hedgekeeper.backtest.analysis import GroupResult, PolicyResult
from hedgekeeper.backtest.runner import BacktestRun

__all__ = ["document", "print_tables"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def document(run: BacktestRun, results: list[GroupResult]) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    timeline = run.data.timeline
    return {
        "interval": run.data.interval,
        "from": _iso(timeline.times[0]) if timeline.times else None,
        "to": _iso(timeline.times[-1] + timeline.interval_ms) if timeline.times else None,
        "bars": len(timeline),
        "seconds": round(run.seconds, 3),
        "bars_per_second": round(len(timeline) / run.seconds) if run.seconds else None,
        "groups": [r.as_dict() for r in results],
    }


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _row(policy: PolicyResult) -> list[str]:
    return [
        policy.policy,
        "—" if policy.he is None else f"{policy.he:.4f}",
        "—" if policy.tracking_error is None else f"{policy.tracking_error:.4f}",
        _money(policy.max_residual_usd),
        str(policy.orders),
        _money(policy.fees_usd),
        _money(policy.funding_usd),
        _money(policy.futures_pnl_usd),
        _money(policy.net_cost_usd),
        "—" if policy.net_cost_pct_year is None else f"{policy.net_cost_pct_year:.2f}%",
        _money(policy.max_drawdown_usd),
    ]


def print_tables(run: BacktestRun, results: list[GroupResult], console: Any = None) -> None:
    """One rich table per group: hedgekeeper beside the reference policies."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=170)  # eleven columns: do not squeeze them into 80
    info = document(run, results)
    console.print(
        f"backtest {info['from']} → {info['to']}, {info['bars']} bars of {info['interval']}, "
        f"{info['seconds']} s ({info['bars_per_second']} bars/s)"
    )
    for result in results:
        table = Table(
            title=f"{result.name}: {result.ratio:.0%} of {result.instrument} — spot PnL "
            f"{_money(result.spot_pnl_usd)} USD, unhedged max drawdown "
            f"{_money(result.max_drawdown_unhedged_usd)} USD"
        )
        headers = (
            "policy", "HE", "tracking err", "max residual $", "orders", "fees $", "funding $",
            "futures PnL $", "net cost $", "cost %/yr", "max drawdown $",
        )  # fmt: skip
        for header in headers:
            table.add_column(header, justify="left" if header == "policy" else "right")
        table.add_row(*_row(result.hedgekeeper), style="bold")
        for reference in result.references:
            table.add_row(*_row(reference))
        console.print(table)
        notes = []
        for reason, count in sorted(result.sat_out.items()):
            notes.append(f"sat out {count} bar(s): {reason}")
        for rule, count in sorted(result.blocked.items()):
            notes.append(f"blocked {count} time(s) by {rule}")
        for series, count in sorted(result.held_bars.items()):
            notes.append(f"{series}: {count} bar(s) held over a gap")
        for series, count in sorted(result.missing_bars.items()):
            notes.append(f"{series}: {count} bar(s) missing after the hold")
        for note in notes:
            console.print(f"  {note}")
