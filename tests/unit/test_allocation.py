"""Allocation groups: the rebalancing guide's example, the band, and sizing properties."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgekeeper.allocation import allocation_view, plan_allocation
from hedgekeeper.model import AllocationSpec, MarketKind, MarketSpec, Side

TARGETS = {"BTC": D("0.5"), "ETH": D("0.3"), "USDT": D("0.2")}
BTC = AllocationSpec("BTC", TARGETS, trigger=D("0.05"), release=D("0.05"))


def perp(size: str, step: str = "1", min_amount: str = "0", min_notional: str = "0") -> MarketSpec:
    return MarketSpec("BTC/USDT:USDT", MarketKind.LINEAR, "BTC", "USDT", "USDT",
                      D(size), D(step), D(min_amount), D(min_notional))  # fmt: skip


def guide(btc: str = "1.2", price: str = "50000", position: str = "0"):
    holdings = {"BTC": D(btc), "ETH": D(8), "USDT": D(20000)}
    prices = {"BTC": D(price), "ETH": D(2500), "USDT": D(1)}
    return plan_allocation("rebal.BTC", BTC, TARGETS, holdings, prices, perp("0.1"), D(price),
                           D(position), D(0))  # fmt: skip


def test_the_guide_example_is_two_contracts_short() -> None:
    # $100,000 with $60,000 in BTC (60 %) against a 50 % target: $10,000 over-exposed;
    # at BTC $50,000 a 0.1 BTC contract is $5,000, so 2 contracts short.
    plan, view = guide()
    assert view.portfolio_usd == 100000 and view.overweight_usd == 10000
    assert view.weights == {"BTC": D("0.6"), "ETH": D("0.2"), "USDT": D("0.2")}
    assert view.state == "over"
    assert plan.intent is not None
    assert (plan.intent.side, plan.intent.contracts, plan.intent.reduce_only) == (
        Side.SELL, 2, False)  # fmt: skip
    assert plan.reason == "BTC weight 60% > 50% + 5%: short 2 (10000 USD overweight)"


def test_once_hedged_the_effective_weight_is_the_target_and_nothing_is_traded() -> None:
    plan, view = guide(position="-2")
    assert view.effective_weight == D("0.5") and view.state == "inside"
    assert plan.intent is None


def test_inside_the_trigger_no_order() -> None:
    # 54 % BTC: 4 points over target, under the 5-point trigger.
    plan, view = guide(btc="0.9391304347826087")  # 46956.52 / 86956.52 = 54 %
    assert view.state == "inside" and plan.intent is None


def test_release_buys_back_reduce_only_when_the_weight_falls_under_the_band() -> None:
    # Hedged at 2 contracts, BTC falls 30 %: the effective weight drops under 45 %.
    plan, view = guide(price="35000", position="-2")
    assert view.state == "under"
    assert plan.intent is not None and plan.intent.side is Side.BUY and plan.intent.reduce_only
    # Spot 42,000 of 82,000: overweight 1,000 USD = 0.29 contracts: keep 0, buy back 2.
    assert plan.intent.contracts == 2


def test_underweight_with_no_hedge_never_goes_long() -> None:
    plan, view = guide(btc="0.5")
    assert view.state == "underweight" and plan.intent is None
    assert "never long" in plan.reason


def test_nothing_held_releases_any_hedge() -> None:
    holdings = {"BTC": D(0), "ETH": D(0), "USDT": D(0)}
    prices = {"BTC": D(50000), "ETH": D(2500), "USDT": D(1)}
    plan, view = plan_allocation("g", BTC, TARGETS, holdings, prices, perp("0.1"), D(50000),
                                 D(-3), D(0))  # fmt: skip
    assert view.state == "under"
    assert plan.intent is not None and plan.intent.contracts == 3 and plan.intent.reduce_only


def test_view_without_hedge_matches_spot_weights() -> None:
    view = allocation_view(BTC, TARGETS, {"BTC": D(1), "USDT": D(50000)},
                           {"BTC": D(50000), "USDT": D(1)}, D(0))  # fmt: skip
    assert view.weights["BTC"] == D("0.5") and view.state == "inside"


# -- properties -------------------------------------------------------------------------------

weights = st.tuples(st.integers(0, 100), st.integers(0, 100)).filter(lambda ab: sum(ab) <= 100)
amounts = st.decimals(min_value=0, max_value=1000, places=3)
bands = st.decimals(min_value=D("0.01"), max_value=D("0.2"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    ab=weights, btc=amounts, eth=amounts, usdt=st.decimals(min_value=0, max_value=10**7, places=2),
    price=st.decimals(min_value=100, max_value=200000, places=2),
    short=st.integers(0, 500), pending=st.integers(0, 20),
    size=st.sampled_from(["0.001", "0.01", "0.1", "1"]), step=st.sampled_from(["1", "0.1"]),
    trigger=bands, release=bands,
)  # fmt: skip
def test_allocation_sizing_invariants(ab, btc, eth, usdt, price, short, pending, size, step,
                                      trigger, release) -> None:  # fmt: skip
    targets = {"BTC": D(ab[0]) / 100, "ETH": D(ab[1]) / 100, "USDT": D(100 - sum(ab)) / 100}
    spec = AllocationSpec("BTC", targets, trigger, release)
    holdings = {"BTC": btc, "ETH": eth, "USDT": usdt}
    prices = {"BTC": price, "ETH": D(3000), "USDT": D(1)}
    market = perp(size, step)
    position = -D(short) * D(step)
    pending_contracts = D(pending) * D(step)
    plan, view = plan_allocation("g", spec, targets, holdings, prices, market, price, position,
                                 pending_contracts)  # fmt: skip
    hedge = -position
    effective = hedge + pending_contracts
    intent = plan.intent
    if view.state in ("inside", "underweight"):
        assert intent is None  # no order inside the band, never long when underweight
        return
    if intent is None:
        return
    assert intent.contracts > 0
    assert intent.contracts % market.amount_step == 0  # whole contracts
    if intent.side is Side.SELL:
        assert view.state == "over" and not intent.reduce_only
        # never over the overweight (nor over the asset's value), after rounding
        assert (effective + intent.contracts) * market.contract_value_usd(price) <= (
            view.overweight_usd
        )
    else:
        assert view.state == "under" and intent.reduce_only
        assert intent.contracts <= hedge  # a release never turns the position long
        assert effective - intent.contracts >= 0
