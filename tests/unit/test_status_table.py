"""``hedgekeeper status`` fits 80 columns: USD rounded, contracts at the market's precision."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from hedgekeeper.status_table import contracts_text, status_table, usd_text


def document() -> dict[str, Any]:
    group = {
        "name": "btc-long-group", "instrument": "BTC/USDT:USDT", "action": "order",
        "order_status": "filled",
        "reason": "short 12.345 to reach 50% of 89971.123456789 USD (a long reason that wraps)",
        "exposure_usd": "89971.123456789", "target_contracts": "12.3456789",
        "hedge_contracts": "0.000", "pending_contracts": "0", "hedge_after_contracts": "12.345",
        "drift_usd": "-1.23456789", "drift_pct": "-0.00274412345", "hedge_ratio": "0.49998765",
        "funding_usd_24h": "0.123456", "amount_step": "0.001",
    }  # fmt: skip
    return {
        "instance": "hk", "mode": "dry-run", "trading_state": "ACTIVE", "flattening": False,
        "last_cycle": {"cycle": 123456, "status": "ok", "age_s": 1.234},
        "health": "last successful cycle 1.2s ago",
        "groups": [group, {**group, "name": "alts", "amount_step": "1", "hedge_after_contracts":
                           "179", "target_contracts": "179", "exposure_usd": "1234567.891"}],
    }  # fmt: skip


def render(wide: bool, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(status_table(document(), wide=wide))
    return out.getvalue()


def test_the_default_table_fits_80_columns_without_cutting_figures() -> None:
    text = render(wide=False, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "89,971" in text and "1,234,568" in text  # whole dollars
    assert "12.345" in text and "12.3456789" not in text  # the market's 0.001 step
    assert " 179 " in text and "-0.0%" in text
    assert "short 12.345 to reach 50% of 89971.123456789 USD" in text.replace("\n", " ")


def test_wide_shows_the_exact_figures() -> None:
    text = render(wide=True, width=220)
    assert "89971.123456789" in text and "12.3456789" in text and "BTC/USDT:USDT" in text
    assert "-1.23456789" in text and "0.49998765" in text


def test_number_formats() -> None:
    assert usd_text("8997.5") == "8,998" and usd_text(None) == "?" and usd_text("nan") == "?"
    assert contracts_text("62", "1") == "62" and contracts_text("0.1234", "0.01") == "0.12"
    assert contracts_text("5", "0.5") == "5.0" and contracts_text("3", "1E+1") == "3"
    assert contracts_text("1.23456789", None) == "1.2346" and contracts_text(None, "1") == "?"
