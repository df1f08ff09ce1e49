"""Contract symbols, quarterly aliases, expiry and basis (pure functions)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgekeeper.contracts import (
    annualised_basis,
    contract_kind,
    days_to_expiry,
    expiry_of_code,
    next_contract,
    parse_symbol,
    resolve_alias,
)
from hedgekeeper.model import MarketKind, MarketSpec

# Quarterlies (last Friday of Mar/Jun/Sep/Dec) and two that are not.
CODES = ["260925", "261225", "261231", "270326", "270625", "270129"]


def listing(codes: list[str], family: str = "BTC/USDT:USDT") -> dict[str, MarketSpec]:
    return {
        f"{family}-{code}": MarketSpec(
            f"{family}-{code}",
            MarketKind.LINEAR,
            "BTC",
            "USDT",
            "USDT",
            D(1),
            D("0.001"),
            expiry=expiry_of_code(code),
        )
        for code in codes
    }


@pytest.mark.parametrize(
    ("symbol", "kind", "dated"),
    [
        ("BTC/USDT", "spot", False),
        ("BTC/USDT:USDT", "linear", False),
        ("BTC/USD:BTC", "inverse", False),
        ("BTC/USDT:USDT-261225", "linear", True),
        ("BTC/USD:BTC-261225", "inverse", True),
        ("ETH/USDC:USDC-quarterly", "linear", True),
    ],
)
def test_kind_and_date(symbol: str, kind: str, dated: bool) -> None:
    assert contract_kind(symbol) == kind
    assert parse_symbol(symbol).dated is dated


def test_a_bad_symbol_names_itself() -> None:
    with pytest.raises(ValueError, match="'BTCUSDT' is not a ccxt symbol"):
        parse_symbol("BTCUSDT")


def test_expiry_is_0800_utc() -> None:
    assert expiry_of_code("261225") == 1798185600.0  # 2026-12-25 08:00 UTC


def test_alias_resolves_to_the_nearest_quarterly_with_days_left() -> None:
    listed = listing(CODES)
    ten_days_before = expiry_of_code("261225") - 10 * 86400

    assert resolve_alias("BTC/USDT:USDT-quarterly", listed, ten_days_before, D(1)) == (
        "BTC/USDT:USDT-261225"
    )
    # Inside min_days of December: the alias moves on to March (261231 is no quarterly).
    half_a_day_before = expiry_of_code("261225") - 43200
    assert resolve_alias("BTC/USDT:USDT-quarterly", listed, half_a_day_before, D(1)) == (
        "BTC/USDT:USDT-270326"
    )
    assert resolve_alias("ETH/USDT:USDT-quarterly", listed, ten_days_before, D(1)) is None


def test_next_contract_is_the_following_quarterly() -> None:
    listed = listing(CODES)
    assert next_contract(listed["BTC/USDT:USDT-261225"], listed) == "BTC/USDT:USDT-270326"
    assert next_contract(listed["BTC/USDT:USDT-270625"], listed) is None
    assert (
        next_contract(listed["BTC/USDT:USDT-261225"], listed, quarterly_only=False)
        == "BTC/USDT:USDT-261231"
    )


def test_annualised_basis() -> None:
    assert annualised_basis(D(101), D(100), D(365)) == D("0.01")
    assert annualised_basis(D(101), D(100), D("36.5")) == D("0.1")
    assert annualised_basis(D(101), D(100), D(0)) is None  # no annualising a residue
    assert annualised_basis(D(101), D(0), D(30)) is None


@given(
    now_days=st.integers(min_value=-400, max_value=400),
    min_days=st.integers(min_value=0, max_value=30),
)
def test_resolved_alias_is_always_a_live_quarterly_and_the_nearest(
    now_days: int, min_days: int
) -> None:
    listed = listing(CODES)
    now = expiry_of_code("261225") + now_days * 86400

    chosen = resolve_alias("BTC/USDT:USDT-quarterly", listed, now, D(min_days))

    live = [
        spec
        for spec in listed.values()
        if spec.symbol[-6:] in ("260925", "261225", "270326", "270625")
        and days_to_expiry(spec.expiry or 0, now) > min_days
    ]
    if not live:
        assert chosen is None
    else:
        assert chosen == min(live, key=lambda spec: spec.expiry or 0).symbol


def test_tables_note_days_to_expiry_and_basis_of_dated_groups_only() -> None:
    from hedgekeeper.contracts import expiry_note

    assert expiry_note({"days_to_expiry": "9.50", "basis_annualised": "0.0512"}) == (
        " · 9.50 d to expiry, basis 5.12 %/yr"
    )
    assert expiry_note({"days_to_expiry": "0.01", "basis_annualised": None}) == (
        " · 0.01 d to expiry"
    )
    assert expiry_note({"days_to_expiry": None}) == ""
