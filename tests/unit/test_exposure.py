"""Exposure: holdings x prices x betas, across accounts and cold storage; unknown is not zero."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from hedgekeeper.exposure import MissingDataError, assess
from hedgekeeper.model import GroupSpec


def group(**kw) -> GroupSpec:
    base = dict(name="g", assets={"BTC": D(1)}, spot_accounts=("a",), extra_holdings={},
                instrument="BTC/USDT:USDT", hedge_account="a", ratio=D("0.5"))  # fmt: skip
    base.update(kw)
    return GroupSpec(**base)


def test_direct_hedge_one_btc() -> None:
    result = assess(group(), {"a": {"BTC": D(1), "USDT": D(500)}}, {"BTC": D(70000)})
    assert result.exposure_usd == 70000


def test_sums_accounts_and_extra_holdings() -> None:
    spec = group(spot_accounts=("a", "b"), extra_holdings={"BTC": D("0.5")})
    result = assess(spec, {"a": {"BTC": D(1)}, "b": {"BTC": D("0.25")}}, {"BTC": D(40000)})
    assert result.holdings["BTC"] == D("1.75")
    assert result.exposure_usd == 70000


def test_beta_scales_proxy_hedged_assets() -> None:
    spec = group(assets={"ETH": D(1), "SOL": D("1.3")})
    result = assess(spec, {"a": {"ETH": D(10), "SOL": D(100)}}, {"ETH": D(3000), "SOL": D(150)})
    assert result.exposure_usd == D(30000) + D(100) * D(150) * D("1.3")


def test_missing_balances_is_not_zero() -> None:
    with pytest.raises(MissingDataError, match="balances of account 'a'"):
        assess(group(), {"a": None}, {"BTC": D(70000)})


def test_missing_price_is_not_zero() -> None:
    with pytest.raises(MissingDataError, match="price of BTC"):
        assess(group(), {"a": {"BTC": D(1)}}, {"BTC": None})


def test_price_of_an_asset_not_held_is_not_needed() -> None:
    spec = group(assets={"BTC": D(1), "ETH": D(1)})
    result = assess(spec, {"a": {"BTC": D(1)}}, {"BTC": D(70000)})
    assert result.exposure_usd == 70000


def test_cold_storage_only_needs_no_accounts() -> None:
    spec = group(spot_accounts=(), extra_holdings={"BTC": D(2)})
    assert assess(spec, {}, {"BTC": D(10)}).exposure_usd == 20
