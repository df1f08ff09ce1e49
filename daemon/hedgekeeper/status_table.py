"""The ``hedgekeeper status`` table: 80 columns by default, every figure with ``--wide``.

The ``/status`` document carries exact decimals. On a terminal that is noise, and at 80
columns rich cuts long numbers to ``8997…``. So the default table shows USD in whole
dollars with thousands separators, contracts at the market's own precision (its
``amount_step``), percentages to one decimal, and lets only the reason wrap; ``--wide``
adds the instrument, drift in USD, the hedge ratio, funding and the exact figures.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hedgekeeper.contracts import expiry_note

__all__ = ["contracts_text", "status_table", "usd_text"]

NARROW_WIDTH = 80


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def usd_text(value: Any) -> str:
    """Whole dollars with thousands separators (``70,000``), ``?`` when unknown."""
    number = _decimal(value)
    return "?" if number is None else f"{number:,.0f}"


def contracts_text(value: Any, amount_step: Any) -> str:
    """Contracts at the market's precision: as many decimals as its ``amount_step`` has."""
    number = _decimal(value)
    if number is None:
        return "?"
    step = _decimal(amount_step)
    if step is None or step <= 0:
        # An older daemon without the step: drop trailing zeros, at most 4 decimals.
        return f"{number.quantize(Decimal('0.0001')).normalize():f}"
    exponent = step.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{number:.{places}f}"


def _pct_text(value: Any) -> str:
    number = _decimal(value)
    return "?" if number is None else f"{number:+.1f}%"


def _title(document: dict[str, Any]) -> str:
    last = document.get("last_cycle")
    cycle = (
        "no cycle yet"
        if last is None
        else f"cycle {last['cycle']} {last['status']} {last['age_s']:.0f}s ago"
    )
    flattening = ", flattening" if document.get("flattening") else ""
    return (
        f"hedgekeeper {document['instance']} — {document['mode']}, "
        f"{document['trading_state']}{flattening}, {cycle}"
    )


def _action(group: dict[str, Any]) -> str:
    status = group.get("order_status")
    return str(group["action"]) + (f" ({status})" if status else "")


_NARROW_COLUMNS = ("group", "exposure USD", "target", "hedge", "pending", "drift", "action")
_WIDE_COLUMNS = (
    *("group", "instrument", "exposure USD", "target", "hedge", "pending", "drift USD"),
    *("drift %", "ratio", "funding 24h", "last action", "reason"),
)


def status_table(document: dict[str, Any], *, wide: bool = False) -> RenderableType:
    """The ``/status`` document as a table; narrow, the reasons follow it one per line."""
    table = Table(
        title=_title(document),
        caption=f"health: {document['health']}" if wide else None,
        box=box.HEAVY_HEAD if wide else box.SIMPLE_HEAD,
    )
    columns = _WIDE_COLUMNS if wide else _NARROW_COLUMNS
    for column in columns:
        wraps = column in ("reason", "group", "instrument")
        table.add_column(
            column,
            justify="left" if wraps or column in ("action", "last action") else "right",
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
        )
    for group in document["groups"]:
        step = group.get("amount_step")
        hedge = group.get("hedge_after_contracts") or group.get("hedge_contracts")
        if wide:
            table.add_row(
                group["name"],
                group.get("instrument") or "?",
                group["exposure_usd"] or "?",
                group["target_contracts"] or "?",
                hedge or "?",
                group["pending_contracts"] or "?",
                group["drift_usd"] or "?",
                group["drift_pct"] or "?",
                group.get("hedge_ratio") or "?",
                group.get("funding_usd_24h") or "0",
                _action(group),
                group["reason"] + expiry_note(group),
            )
            continue
        table.add_row(
            group["name"],
            usd_text(group["exposure_usd"]),
            contracts_text(group["target_contracts"], step),
            contracts_text(hedge, step),
            contracts_text(group["pending_contracts"], step),
            _pct_text(group["drift_pct"]),
            _action(group),
        )
    if wide:
        return table
    # Reasons are sentences: below the table each gets the full width instead of a
    # column squeezed to a few letters.
    reasons = Table.grid(padding=(0, 2))
    reasons.add_column(no_wrap=True)
    reasons.add_column(overflow="fold")
    for group in document["groups"]:
        reasons.add_row(group["name"], group["reason"] + expiry_note(group))
    return Group(table, reasons, Text(f"health: {document['health']}"))
