"""Backtest charts (matplotlib) as a PNG, and a self-contained HTML report.

Three panels per group: exposure, target and hedge over time (USD); the
cumulative net cost of the hedge; drawdown hedged against unhedged. The HTML
report carries the same panels as inline SVG beside the figures' tables, so it
opens anywhere with no network and no script.

matplotlib is an optional dependency (``pip install 'hedgekeeper[report]'``).
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from hedgekeeper.backtest.analysis import GroupResult, PolicyResult
from hedgekeeper.backtest.report import document
from hedgekeeper.backtest.runner import BacktestRun
from hedgekeeper.exceptions import ConfigError

__all__ = ["PANELS", "figure", "write_html", "write_png"]

#: Panel titles and the series each draws, in order (the PNG's metadata lists them too).
PANELS = (
    ("exposure, target and hedge (USD)", ("exposure", "target", "hedge")),
    ("cumulative net cost of the hedge (USD)", ("net cost",)),
    ("drawdown (USD)", ("unhedged", "hedged")),
)
#: Width and height of one group's panels at 100 dpi (a PNG is this x the groups).
WIDTH_IN, HEIGHT_IN, DPI = 12.0, 8.0, 100
_MAX_POINTS = 3000
T = TypeVar("T")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "--html and --png need matplotlib: pip install 'hedgekeeper[report]'"
        ) from None
    return plt


def _thin(values: Sequence[T], every: int) -> Sequence[T]:
    return values[::every] if every > 1 else values


def _series(result: GroupResult) -> dict[str, list[float]]:
    return {
        "exposure": result.exposure_usd,
        "target": result.target_usd,
        "hedge": result.hedge_usd,
        "net cost": result.net_cost_usd,
        "unhedged": [-v for v in result.drawdown_unhedged_usd],
        "hedged": [-v for v in result.drawdown_hedged_usd],
    }


def figure(results: list[GroupResult]) -> Any:
    """One matplotlib figure: three panels (rows) per group."""
    plt = _pyplot()
    rows = 3 * len(results)
    fig, axes = plt.subplots(rows, 1, figsize=(WIDTH_IN, HEIGHT_IN * len(results)), dpi=DPI,
                             squeeze=False)  # fmt: skip
    for number, result in enumerate(results):
        every = max(1, len(result.times_ms) // _MAX_POINTS)
        when = [datetime.fromtimestamp(t / 1000, UTC) for t in _thin(result.times_ms, every)]
        data = _series(result)
        for offset, (title, names) in enumerate(PANELS):
            axis = axes[3 * number + offset][0]
            for name in names:
                axis.plot(when, _thin(data[name], every), label=name, linewidth=1)
            axis.set_title(f"{result.name}: {title}", fontsize=10, loc="left")
            axis.legend(loc="upper left", fontsize=8)
            axis.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_png(results: list[GroupResult], path: Path) -> None:
    """The charts of every group as one PNG (``WIDTH_IN`` x ``HEIGHT_IN`` per group)."""
    plt = _pyplot()
    fig = figure(results)
    described = "; ".join(
        f"{r.name}: " + ", ".join(n for _, names in PANELS for n in names) for r in results
    )
    fig.savefig(path, format="png", metadata={"Description": described})
    plt.close(fig)


def _svg(result: GroupResult) -> str:
    plt = _pyplot()
    fig = figure([result])
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: it is inline


def _cells(policy: PolicyResult) -> str:
    data = policy.as_dict()
    keys = ("he", "tracking_error", "max_residual_usd", "orders", "fees_usd", "funding_usd",
            "futures_pnl_usd", "net_cost_usd", "net_cost_pct_year", "max_drawdown_usd")  # fmt: skip
    values = "".join(f"<td>{'—' if data[k] is None else data[k]}</td>" for k in keys)
    return f"<tr><th>{html.escape(policy.policy)}</th>{values}</tr>"


def write_html(run: BacktestRun, results: list[GroupResult], path: Path) -> None:
    """A self-contained HTML report: the figures' tables and the charts (inline SVG)."""
    info = document(run, results)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>hedgekeeper backtest</title><style>",
        "body{font-family:sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}",
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}",
        "th:first-child{text-align:left}svg{max-width:100%;height:auto}",
        "</style></head><body>",
        "<h1>hedgekeeper backtest</h1>",
        f"<p>{html.escape(str(info['from']))} → {html.escape(str(info['to']))}: "
        f"{info['bars']} bars of {html.escape(info['interval'])}, run in {info['seconds']} s.</p>",
    ]
    header = "".join(f"<th>{h}</th>" for h in (
        "policy", "HE", "tracking error", "max residual $", "orders", "fees $", "funding $",
        "futures PnL $", "net cost $", "net cost %/yr", "max drawdown $"))  # fmt: skip
    for result in results:
        parts.append(f"<h2 id='{html.escape(result.name)}'>{html.escape(result.name)}: "
                     f"{result.ratio:.0%} of {html.escape(result.instrument)}</h2>")  # fmt: skip
        parts.append(f"<p>spot PnL {result.spot_pnl_usd:,.0f} USD; unhedged max drawdown "
                     f"{result.max_drawdown_unhedged_usd:,.0f} USD.</p>")  # fmt: skip
        rows = _cells(result.hedgekeeper) + "".join(_cells(r) for r in result.references)
        parts.append(f"<table><tr>{header}</tr>{rows}</table>")
        notes = [f"sat out {n} bar(s): {html.escape(k)}" for k, n in result.sat_out.items()]
        notes += [f"blocked {n} time(s) by {html.escape(k)}" for k, n in result.blocked.items()]
        notes += [f"{html.escape(k)}: {n} bar(s) held over a gap"
                  for k, n in result.held_bars.items()]  # fmt: skip
        if notes:
            parts.append("<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
        parts.append(_svg(result))
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
