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
    "JumpState",
    "check_basis",
    "check_cap",
    "check_data_age",
    "check_margin",
    "check_max_position",
    "check_order_rate",
    "check_runaway",
    "check_trading_state",
    "guard",
    "liquidation_distance",
    "max_short_notional",
    "track_jump",
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


def _committed(plan: Plan) -> Decimal:
    """The short we are committed to: position plus working sells.

    Working buys are *not* netted: a resting trim may never fill, and a cap that
    counted on it would let the short exceed the cap when it does not.
    """
    return plan.hedge_contracts + max(plan.pending_contracts, Decimal(0))


def _fit(intent: OrderIntent, room: Decimal, rule: str, full: str, ok: str) -> GuardResult:
    """Block when there is no room, shrink to the room, or pass: the shape of every cap."""
    if room <= 0:
        return GuardResult(None, rule, full)
    if intent.contracts > room:
        return GuardResult(replace(intent, contracts=room), rule, f"shrunk to {room} ({ok})")
    return GuardResult(intent, rule, ok)


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
    room = plan.target.cap_contracts - _committed(plan)
    full = f"hedge already at cap {plan.target.cap_contracts}"
    return _fit(intent, room, "cap", full, "under the cap")


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


def check_max_position(
    intent: OrderIntent, plan: Plan, max_contracts: Decimal | None
) -> GuardResult:
    """The short may never exceed ``max_position_contracts`` (shrink to fit)."""
    if max_contracts is None or intent.side is Side.BUY:
        return GuardResult(intent, "max_position", "no limit" if max_contracts is None else "trim")
    room = max_contracts - _committed(plan)
    full = f"short already at max_position {max_contracts}"
    return _fit(intent, room, "max_position", full, "under max_position")


def check_runaway(
    intent: OrderIntent,
    added_in_window: Decimal,
    exposure_usd: Decimal,
    contract_value_usd: Decimal,
    multiple: Decimal,
    window_seconds: float,
) -> GuardResult:
    """Hedge *added* within the rolling window may not exceed ``multiple`` x exposure.

    This is the last line against a runaway: whatever the plan believes, a group
    cannot keep selling more than a few times its exposure in one window.
    """
    if intent.side is Side.BUY:
        return GuardResult(intent, "runaway", "a trim adds no hedge")
    limit = multiple * max(exposure_usd, Decimal(0)) / contract_value_usd
    full = (
        f"added {added_in_window} contracts in {window_seconds:.0f}s, limit {limit:.4f} "
        f"({multiple} x exposure)"
    )
    return _fit(intent, limit - added_in_window, "runaway", full, "within runaway limit")


def check_basis(
    intent: OrderIntent, mark: Decimal | None, index: Decimal | None, max_basis: Decimal
) -> GuardResult:
    """Hold while mark and index (or spot) disagree by more than ``max_basis``."""
    if mark is None or index is None or index <= 0:
        return GuardResult(intent, "basis", "no index to compare")
    basis = abs(mark / index - 1)
    if basis > max_basis:
        return GuardResult(
            None, "basis", f"mark {mark} vs index {index}: basis {basis:.2%} > {max_basis:.2%}"
        )
    return GuardResult(intent, "basis", f"basis {basis:.2%}")


@dataclass(frozen=True, slots=True)
class JumpState:
    """Price-jump memory of one group: the last accepted price and a jump awaiting proof."""

    reference: Decimal | None = None
    candidate: Decimal | None = None


def track_jump(state: JumpState, price: Decimal, max_jump: Decimal) -> tuple[bool, JumpState, str]:
    """Accept ``price`` unless it jumped more than ``max_jump`` since the last accepted one.

    A jump is held until a second snapshot confirms it (the next price is within
    ``max_jump`` of the jumped one). Returns (accepted, new state, reason).
    """
    if state.reference is None:
        return True, JumpState(price, None), "first price"
    move = abs(price / state.reference - 1)
    if move <= max_jump:
        return True, JumpState(price, None), f"moved {move:.2%}"
    if state.candidate is not None and abs(price / state.candidate - 1) <= max_jump:
        return True, JumpState(price, None), f"jump of {move:.2%} confirmed by a second snapshot"
    return (
        False,
        JumpState(state.reference, price),
        f"price jumped {move:.2%} > {max_jump:.2%} since {state.reference}: waiting for a "
        "second snapshot to confirm",
    )


def max_short_notional(
    collateral_usd: Decimal, shock: Decimal, maintenance_rate: Decimal
) -> Decimal:
    """Largest short notional that survives a ``shock`` rise above maintenance margin.

    After a rise of ``shock`` a short of notional N loses N x shock and needs
    maintenance m x N x (1 + shock): collateral - N s >= m N (1 + s).
    """
    return collateral_usd / (shock + maintenance_rate * (1 + shock))


def check_margin(
    intent: OrderIntent,
    plan: Plan,
    collateral_usd: Decimal | None,
    shock: Decimal,
    maintenance_rate: Decimal,
) -> GuardResult:
    """Before enlarging a short, make sure a ``shock`` move would not liquidate it.

    Shrinks the order to what the collateral supports. Without collateral data the
    check cannot run: the order passes and the reason says so.
    """
    if intent.side is Side.BUY:
        return GuardResult(intent, "margin", "a trim frees margin")
    if collateral_usd is None:
        return GuardResult(intent, "margin", "no collateral data: shock check skipped")
    cv = plan.target.contract_value_usd
    limit = max_short_notional(collateral_usd, shock, maintenance_rate) / cv
    room = limit - _committed(plan)
    full = f"collateral {collateral_usd:.2f} USD cannot carry more short through a {shock:.0%} rise"
    return _fit(intent, room, "margin", full, f"survives a {shock:.0%} rise")


def liquidation_distance(
    price: Decimal, liquidation_price: Decimal | None, short: bool = True
) -> Decimal | None:
    """How far the price may move against the position before liquidation, as a fraction."""
    if liquidation_price is None or liquidation_price <= 0 or price <= 0:
        return None
    return (liquidation_price / price - 1) if short else (1 - liquidation_price / price)


def check_order_rate(
    intent: OrderIntent, sent_last_minute: int, max_per_minute: int
) -> GuardResult:
    """Our own order-rate throttle per account, on top of the exchange's limiter."""
    if sent_last_minute >= max_per_minute:
        return GuardResult(
            None, "order_rate", f"{sent_last_minute} orders in the last minute >= {max_per_minute}"
        )
    return GuardResult(intent, "order_rate", f"{sent_last_minute} orders in the last minute")


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
