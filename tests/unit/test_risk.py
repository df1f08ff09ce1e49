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
