"""Units of ccxt amounts: the one conversion from positions to signed contracts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgekeeper.venues.ccxt_normalize import market_spec, positions, signed_contracts
from hedgekeeper.venues.ccxt_params import AmountUnit


def weex_entry(side: str, contracts: Any, size: Any) -> dict[str, Any]:
    """A ccxt position as ccxt 4.5.90 parses WEEX (contractSize is the contract value)."""
    return {
        "symbol": "ETH/USDT:USDT",
        "contracts": contracts,
        "contractSize": 0.001,
        "side": side,
        "entryPrice": 2279.56,
        "info": {"size": size, "symbol": "ETHUSDT"},
    }


def test_base_coin_size_is_taken_as_is_and_signed() -> None:
    assert signed_contracts(weex_entry("short", 0.036, "0.036"), AmountUnit.BASE) == Decimal(
        "-0.036"
    )
    assert signed_contracts(weex_entry("long", 0.036, "0.036"), AmountUnit.BASE) == Decimal("0.036")


def test_a_ccxt_unit_change_is_refused() -> None:
    # ccxt reporting venue contracts (36 of 0.001 ETH) instead of the size in ETH.
    with pytest.raises(ValueError, match="not the venue's size"):
        signed_contracts(weex_entry("short", 36, "0.036"), AmountUnit.BASE)
    with pytest.raises(ValueError, match="base-coin size"):
        signed_contracts(weex_entry("short", 0.036, None), AmountUnit.BASE)


def test_contract_units_ignore_the_raw_size() -> None:
    # OKX/MEXC count contracts; the raw field names differ and are not consulted.
    entry = weex_entry("short", 3, "0.03")
    assert signed_contracts(entry) == Decimal(-3)


@given(
    size=st.decimals(min_value="0.001", max_value="100000", places=3),
    contract_value=st.sampled_from(["0.0001", "0.001", "100"]),
    price=st.decimals(min_value="0.01", max_value="200000", places=2),
)
def test_exposure_of_a_base_sized_position_is_size_times_price(
    size: Decimal, contract_value: str, price: Decimal
) -> None:
    market = {
        "symbol": "ETH/USDT:USDT",
        "base": "ETH",
        "quote": "USDT",
        "settle": "USDT",
        "contract": True,
        "linear": True,
        "contractSize": float(contract_value),
        "precision": {"amount": float(contract_value), "price": 0.01},
        "limits": {},
    }
    spec = market_spec(market, 4, AmountUnit.BASE)
    assert spec is not None
    held = positions(
        ["ETH/USDT:USDT"],
        [weex_entry("short", float(size), str(size))],
        unit=AmountUnit.BASE,
    )["ETH/USDT:USDT"]

    # Whatever ccxt's contractSize, the hedge is the venue's size in ETH times the price.
    assert held.contracts * spec.contract_value_usd(price) == -size * price
    assert spec.amount_step == Decimal(contract_value)


def test_dated_futures_ride_with_their_kind_or_get_their_own_type() -> None:
    from hedgekeeper.venues.ccxt_params import market_types_option

    wanted = ("future", "linear", "spot")
    # Binance (fapi) and Bybit (category linear) list quarterlies with the perpetuals.
    assert market_types_option("binance", wanted) == ["linear", "spot"]
    assert market_types_option("bybit", wanted) == ["linear", "spot"]
    # OKX keeps FUTURES apart; Bitget's futures come with its swap markets.
    assert market_types_option("okx", wanted) == ["future", "swap", "spot"]
    assert market_types_option("bitget", wanted) == ["swap", "spot"]
