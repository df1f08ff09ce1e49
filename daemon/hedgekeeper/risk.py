"""Guard: risk rules that allow, shrink or block an order intent (pure).

Each rule is a plain function of domain values that returns a
:class:`GuardResult`: the intent that may go (possibly smaller) or ``None``,
and the reason in words. :func:`guard` applies them in order; the first block
wins and its reason is what the operator sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from hedgekeeper.model import OrderIntent, Plan, Side, TradingState

__all__ = [
    "GuardResult",
    "check_cap",
    "check_data_age",
    "check_trading_state",
    "guard",
]


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What a rule decided: the intent allowed (maybe shrunk) or ``None``, and why."""

    intent: OrderIntent | None
    rule: str
    reason: str

    @property
    def blocked(self) -> bool:
        """True when the rule stopped the order."""
        return self.intent is None


Rule = Callable[[OrderIntent], GuardResult]


def check_trading_state(intent: OrderIntent, state: TradingState) -> GuardResult:
    """``HALTED`` sends nothing; ``REDUCING`` sends only reduce-only trims."""
    if state is TradingState.HALTED:
        return GuardResult(None, "trading_state", "trading is HALTED")
    if state is TradingState.REDUCING and not intent.reduce_only:
        return GuardResult(None, "trading_state", "REDUCING: only trims are allowed")
    return GuardResult(intent, "trading_state", f"state {state.value}")


def check_cap(intent: OrderIntent, plan: Plan) -> GuardResult:
    """The hedge after the order may not exceed the cap (``max_ratio`` x exposure).

    An opening order is shrunk to fit; a trim only ever lowers the hedge.
    """
    if intent.side is Side.BUY:
        return GuardResult(intent, "cap", "a trim lowers the hedge")
    room = plan.target.cap_contracts - (plan.hedge_contracts + plan.pending_contracts)
    if room <= 0:
        return GuardResult(None, "cap", f"hedge already at cap {plan.target.cap_contracts}")
    if intent.contracts > room:
        return GuardResult(
            replace(intent, contracts=room), "cap", f"shrunk to {room} to stay under the cap"
        )
    return GuardResult(intent, "cap", "under the cap")


def check_data_age(
    intent: OrderIntent, ages: dict[str, float | None], max_age: float
) -> GuardResult:
    """Every input the plan used must be known and younger than ``max_age`` seconds."""
    for what, age in ages.items():
        if age is None:
            return GuardResult(None, "data_age", f"{what} is missing")
        if age > max_age:
            return GuardResult(None, "data_age", f"{what} is {age:.1f}s old > {max_age:.1f}s")
    return GuardResult(intent, "data_age", "data fresh")


def guard(
    intent: OrderIntent, rules: Sequence[Rule]
) -> tuple[OrderIntent | None, list[GuardResult]]:
    """Apply ``rules`` in order; stop at the first block. Returns the final intent and the trail."""
    trail: list[GuardResult] = []
    current: OrderIntent | None = intent
    for rule in rules:
        assert current is not None
        result = rule(current)
        trail.append(result)
        current = result.intent
        if current is None or current.contracts <= Decimal(0):
            return None, trail
    return current, trail
