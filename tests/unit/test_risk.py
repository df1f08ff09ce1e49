"""Guards: trading state, cap, data age; the first block wins and says why."""

from __future__ import annotations

from decimal import Decimal as D

from hedgekeeper.model import HedgeTarget, OrderIntent, Plan, Side, TradingState
from hedgekeeper.risk import check_cap, check_data_age, check_trading_state, guard

SELL = OrderIntent("g", "X", Side.SELL, D(10), False, "open")
TRIM = OrderIntent("g", "X", Side.BUY, D(10), True, "trim")


def plan_at(hedge: str, cap: str = "50") -> Plan:
    target = HedgeTarget(D(1), D(1), D(1), D(1), D(50), D(cap))
    return Plan("g", target, D(50), D(hedge), D(0), SELL, "r")


def test_halted_blocks_everything() -> None:
    for intent in (SELL, TRIM):
        assert check_trading_state(intent, TradingState.HALTED).blocked


def test_reducing_allows_only_trims() -> None:
    assert check_trading_state(SELL, TradingState.REDUCING).blocked
    assert not check_trading_state(TRIM, TradingState.REDUCING).blocked


def test_cap_shrinks_an_opening_order() -> None:
    result = check_cap(SELL, plan_at("45"))
    assert result.intent is not None and result.intent.contracts == 5


def test_cap_blocks_when_full_and_lets_trims_pass() -> None:
    assert check_cap(SELL, plan_at("50")).blocked
    assert not check_cap(TRIM, plan_at("60")).blocked


def test_data_age() -> None:
    assert check_data_age(SELL, {"quote": None}, 30).reason == "quote is missing"
    assert check_data_age(SELL, {"quote": 31.0}, 30).blocked
    assert not check_data_age(SELL, {"quote": 1.0}, 30).blocked


def test_guard_stops_at_first_block() -> None:
    final, trail = guard(
        SELL,
        [lambda i: check_cap(i, plan_at("45")),
         lambda i: check_trading_state(i, TradingState.HALTED),
         lambda i: check_data_age(i, {}, 1)],
    )  # fmt: skip
    assert final is None
    assert [r.rule for r in trail] == ["cap", "trading_state"]


# -- issue 4 guards ------------------------------------------------------------------------

from hedgekeeper.risk import (  # noqa: E402
    JumpState,
    check_basis,
    check_margin,
    check_max_position,
    check_order_rate,
    check_runaway,
    liquidation_distance,
    max_short_notional,
    track_jump,
)


def test_max_position_shrinks_and_blocks() -> None:
    assert check_max_position(SELL, plan_at("45"), None).intent == SELL
    shrunk = check_max_position(SELL, plan_at("45"), D(48)).intent
    assert shrunk is not None and shrunk.contracts == 3
    assert check_max_position(SELL, plan_at("48"), D(48)).blocked
    assert not check_max_position(TRIM, plan_at("60"), D(48)).blocked


def test_runaway_limits_hedge_added_in_the_window() -> None:
    # exposure 1000 USD, contract 10 USD, multiple 2 -> at most 200 contracts added
    ok = check_runaway(SELL, D(150), D(1000), D(10), D(2), 3600)
    assert ok.intent == SELL
    shrunk = check_runaway(SELL, D(195), D(1000), D(10), D(2), 3600).intent
    assert shrunk is not None and shrunk.contracts == 5
    blocked = check_runaway(SELL, D(200), D(1000), D(10), D(2), 3600)
    assert blocked.blocked and "added 200 contracts in 3600s" in blocked.reason
    assert not check_runaway(TRIM, D(10_000), D(1000), D(10), D(2), 3600).blocked


def test_basis_holds_when_mark_and_index_disagree() -> None:
    assert not check_basis(SELL, D(100), D(101), D("0.02")).blocked
    held = check_basis(SELL, D(100), D(120), D("0.02"))
    assert held.blocked and "basis" in held.reason
    assert not check_basis(SELL, D(100), None, D("0.02")).blocked  # nothing to compare


def test_jump_waits_for_a_second_snapshot() -> None:
    accepted, state, _ = track_jump(JumpState(), D(100), D("0.15"))
    assert accepted and state.reference == 100
    accepted, state, reason = track_jump(state, D(150), D("0.15"))
    assert not accepted and "jumped 50.00%" in reason and state.candidate == 150
    # the spike goes away: the old price is accepted again, nothing was traded on 150
    accepted, state, _ = track_jump(state, D(101), D("0.15"))
    assert accepted and state.reference == 101 and state.candidate is None
    # a real move is confirmed by the next snapshot
    _, state, _ = track_jump(state, D(160), D("0.15"))
    accepted, state, reason = track_jump(state, D(158), D("0.15"))
    assert accepted and "confirmed" in reason and state.reference == 158


def test_margin_shock_formula_and_shrink() -> None:
    # collateral 1000, shock 30 %, maintenance 0.5 % -> N <= 1000 / (0.3 + 0.005 * 1.3)
    limit = max_short_notional(D(1000), D("0.3"), D("0.005"))
    assert limit == D(1000) / (D("0.3") + D("0.005") * D("1.3"))
    n = limit
    assert D(1000) - n * D("0.3") >= D("0.005") * n * D("1.3") - D("1e-9")  # survives exactly
    plan = plan_at("0")  # contract value 1 USD in plan_at
    shrunk = check_margin(OrderIntent("g", "X", Side.SELL, D(5000), False, "o"), plan, D(1000),
                          D("0.3"), D("0.005")).intent  # fmt: skip
    assert shrunk is not None and shrunk.contracts == limit
    assert check_margin(SELL, plan, None, D("0.3"), D("0.005")).reason.startswith("no collateral")
    assert not check_margin(TRIM, plan, D(0), D("0.3"), D("0.005")).blocked


def test_liquidation_distance() -> None:
    assert liquidation_distance(D(100), D(130)) == D("0.3")
    assert liquidation_distance(D(100), None) is None


def test_order_rate() -> None:
    assert not check_order_rate(SELL, 9, 10).blocked
    assert check_order_rate(SELL, 10, 10).blocked
