"""Sizing rules: the worked examples of the micro-futures guides, each rule, and properties."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hedgekeeper.model import MarketKind, MarketSpec, Side
from hedgekeeper.sizing import compute_target, plan_group, round_to_step


def linear(
    size: str, step: str = "1", min_amount: str = "0", min_notional: str = "0"
) -> MarketSpec:
    return MarketSpec(
        "X/USDT:USDT", MarketKind.LINEAR, "X", "USDT", "USDT",
        D(size), D(step), D(min_amount), D(min_notional),
    )  # fmt: skip


def plan(
    exposure, ratio, market, price, position="0", pending="0", tolerance="0.02", max_ratio="1"
):
    target = compute_target(D(exposure), D(ratio), D(max_ratio), market, D(price))
    return plan_group("g", target, market, D(position), D(pending), D(tolerance), D(ratio))


# -- the worked examples ------------------------------------------------------------------


def test_one_btc_half_hedged_with_micro_contracts_is_50_contracts() -> None:
    result = plan("70000", "0.5", linear("0.01"), "70000")
    assert result.target_contracts == 50
    assert result.intent is not None
    assert (result.intent.side, result.intent.contracts, result.intent.reduce_only) == (
        Side.SELL, 50, False,
    )  # fmt: skip
    assert result.reason == "short 50 to reach 50% of 70000 USD"


def test_30k_basket_fully_hedged_with_tenth_eth_contracts_is_100_contracts() -> None:
    result = plan("30000", "1", linear("0.1"), "3000")
    assert result.intent is not None and result.intent.contracts == 100


def test_0333_btc_fully_hedged_is_33_not_34() -> None:
    result = plan(str(D("0.333") * 70000), "1", linear("0.01"), "70000")
    assert result.intent is not None and result.intent.contracts == 33


def test_inverse_contract_value_is_fixed_usd() -> None:
    inverse = MarketSpec("BTC/USD:BTC", MarketKind.INVERSE, "BTC", "USD", "BTC", D(100), D(1))
    result = plan("70000", "0.5", inverse, "70000")
    assert result.intent is not None and result.intent.contracts == 350


# -- each rule ------------------------------------------------------------------------------


def test_inside_tolerance_no_order_and_reason_says_why() -> None:
    result = plan("70000", "0.5", linear("0.01"), "70000", position="-49.5", tolerance="0.02")
    assert result.intent is None
    assert result.reason == "inside tolerance 1% <= 2%"


def test_just_outside_tolerance_orders() -> None:
    result = plan("70000", "0.5", linear("0.01"), "70000", position="-48", tolerance="0.02")
    assert result.intent is not None and result.intent.contracts == 2


def test_pending_orders_count_as_hedge() -> None:
    result = plan("70000", "0.5", linear("0.01"), "70000", position="0", pending="50")
    assert result.intent is None


def test_trim_is_reduce_only_and_stops_at_target() -> None:
    result = plan("70000", "0.5", linear("0.01"), "70000", position="-60")
    assert result.intent is not None
    assert (result.intent.side, result.intent.contracts, result.intent.reduce_only) == (
        Side.BUY, 10, True,
    )  # fmt: skip


def test_trim_rounds_toward_more_hedge_not_past_target() -> None:
    # target 33.3: trimming from 40 stops at 34, not 33.
    result = plan(str(D("0.333") * 70000), "1", linear("0.01"), "70000", position="-40",
                  max_ratio="2")  # fmt: skip
    assert result.intent is not None and result.intent.contracts == 6


def test_cap_binds_after_rounding_when_trimming() -> None:
    # ratio = max_ratio = 1: the cap (33) wins over rounding the trim up (34).
    result = plan(str(D("0.333") * 70000), "1", linear("0.01"), "70000", position="-40")
    assert result.intent is not None and result.intent.contracts == 7


def test_over_cap_trims_even_inside_band() -> None:
    result = plan("70000", "1", linear("0.01"), "70000", position="-100.5", tolerance="0.05",
                  max_ratio="1", )  # fmt: skip
    # step 1: 100.5 -> must go to <= 100
    assert result.intent is not None and result.intent.side is Side.BUY


def test_below_min_notional_no_order() -> None:
    market = linear("0.001", min_notional="100")
    result = plan("70000", "0.5", market, "70000", position="-499", tolerance="0")
    assert result.intent is None
    assert result.reason == "below min notional 100 USD"


def test_below_min_amount_no_order() -> None:
    market = linear("0.01", step="1", min_amount="5")
    result = plan("70000", "0.5", market, "70000", position="-48", tolerance="0")
    assert result.intent is None
    assert result.reason == "below min amount 5 contracts"


def test_reduce_only_trim_to_zero_is_allowed_below_minimums() -> None:
    market = linear("0.01", step="1", min_amount="5", min_notional="1000")
    result = plan("0", "0.5", market, "70000", position="-1")
    assert result.intent is not None
    assert (result.intent.side, result.intent.contracts, result.intent.reduce_only) == (
        Side.BUY, 1, True,
    )  # fmt: skip


def test_no_exposure_no_hedge_holds() -> None:
    result = plan("0", "0.5", linear("0.01"), "70000")
    assert result.intent is None and result.reason == "no exposure and no hedge"


def test_negative_exposure_needs_no_hedge() -> None:
    result = plan("-5000", "0.5", linear("0.01"), "70000", position="-3")
    assert result.intent is not None and result.intent.side is Side.BUY
    assert result.intent.contracts == 3


def test_round_to_step() -> None:
    assert round_to_step(D("33.3"), D(1), up=False) == 33
    assert round_to_step(D("33.3"), D(1), up=True) == 34
    assert round_to_step(D("0.0123"), D("0.001"), up=False) == D("0.012")
    with pytest.raises(ValueError, match="step"):
        round_to_step(D(1), D(0), up=False)


# -- properties -------------------------------------------------------------------------------

steps = st.sampled_from([D(1), D("0.001"), D("0.1"), D("5")])
sizes = st.sampled_from([D("0.01"), D("0.1"), D(1), D("0.001")])
money = st.decimals(
    min_value=0, max_value=10_000_000, places=2, allow_nan=False, allow_infinity=False
)
prices = st.decimals(
    min_value=1, max_value=500_000, places=2, allow_nan=False, allow_infinity=False
)
fractions = st.decimals(min_value=0, max_value=1, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    step = draw(steps)
    market = MarketSpec("X/USDT:USDT", MarketKind.LINEAR, "X", "USDT", "USDT", draw(sizes), step)
    price = draw(prices)
    exposure = draw(money)
    max_ratio = draw(st.decimals(min_value=D("0.1"), max_value=2, places=2))
    ratio = draw(fractions) * max_ratio
    tolerance = draw(st.decimals(min_value=0, max_value=D("0.2"), places=3))
    cv = market.contract_value_usd(price)
    ceiling = int(2 * max(exposure, D(1)) / cv / step) + 2
    position = -draw(st.integers(min_value=0, max_value=min(ceiling, 10**7))) * step
    pending = draw(st.sampled_from([D(0), D(0), step, -step]))
    assume(-position + pending >= 0)
    return dict(market=market, price=price, exposure=exposure, ratio=ratio, max_ratio=max_ratio,
                tolerance=tolerance, position=position, pending=pending)  # fmt: skip


def run(s: dict):
    target = compute_target(s["exposure"], s["ratio"], s["max_ratio"], s["market"], s["price"])
    result = plan_group(
        "g", target, s["market"], s["position"], s["pending"], s["tolerance"], s["ratio"]
    )
    return target, result


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_never_above_the_cap(s: dict) -> None:
    target, result = run(s)
    if result.intent is not None and result.intent.side is Side.SELL:
        after = -s["position"] + s["pending"] + result.intent.contracts
        assert after <= target.cap_contracts
        assert after * target.contract_value_usd <= s["max_ratio"] * max(s["exposure"], D(0))


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_trims_are_reduce_only_and_never_larger_than_the_position(s: dict) -> None:
    _, result = run(s)
    if result.intent is not None and result.intent.side is Side.BUY:
        assert result.intent.reduce_only
        assert result.intent.contracts <= -s["position"]


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_orders_are_whole_steps(s: dict) -> None:
    _, result = run(s)
    if result.intent is not None:
        assert result.intent.contracts > 0
        assert result.intent.contracts % s["market"].amount_step == 0


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_no_order_inside_the_band(s: dict) -> None:
    target, result = run(s)
    effective = -s["position"] + s["pending"]
    inside = abs(target.raw_contracts - effective) * target.contract_value_usd <= (
        s["tolerance"] * target.target_notional_usd
    )
    if inside and effective <= target.cap_contracts:
        assert result.intent is None


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_outside_the_band_lands_within_one_step_under_the_target(s: dict) -> None:
    target, result = run(s)
    step = s["market"].amount_step
    effective = -s["position"] + s["pending"]
    goal = min(target.raw_contracts, target.cap_contracts)
    if result.intent is None:
        return
    after = effective + (result.intent.contracts if result.intent.side is Side.SELL
                         else -result.intent.contracts)  # fmt: skip
    if result.intent.side is Side.SELL:
        assert goal - step < after <= goal
    elif result.intent.contracts < -s["position"]:  # not clamped by the position size
        # a trim stops at or above the target, within one step — unless the cap is lower
        if target.raw_contracts + step <= target.cap_contracts:
            assert target.raw_contracts <= after < target.raw_contracts + step
        else:
            assert after <= target.cap_contracts


def test_small_reduce_only_trim_where_the_exchange_exempts_it() -> None:
    strict = linear("1", step="0.001", min_notional="100")  # Binance BTCUSDT-like
    exempt = replace(strict, reduce_only_below_min_notional=True)
    # short 0.501 BTC, target 0.5: a 0.001 BTC trim is 70 USD < 100 USD
    held = plan("70000", "0.5", strict, "70000", position="-0.501", tolerance="0")
    assert held.intent is None and held.reason == "below min notional 100 USD"
    trimmed = plan("70000", "0.5", exempt, "70000", position="-0.501", tolerance="0")
    assert trimmed.intent is not None and trimmed.intent.reduce_only
    assert trimmed.intent.contracts == D("0.001")
    # the exemption is for trims only: opening still respects the minimum
    opening = plan("70000", "0.5", exempt, "70000", position="-0.499", tolerance="0")
    assert opening.intent is None
