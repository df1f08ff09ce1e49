"""Decide one group against a snapshot: assess, plan, then every guard in turn.

This is the seam between the pure core (``exposure``, ``sizing``, ``risk``) and
the shell: it looks values up in the snapshot and the journal, calls the core,
and returns a :class:`GroupDecision` that says what to do and why. It does no
I/O of its own except journal reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgekeeper.allocation import plan_policy
from hedgekeeper.exposure import MissingDataError, assess
from hedgekeeper.model import (
    STABLECOINS,
    GroupSpec,
    MarketKind,
    MarketSpec,
    Plan,
    Quote,
    Side,
    TradingState,
)
from hedgekeeper.risk import (
    GuardResult,
    JumpState,
    check_basis,
    check_cap,
    check_data_age,
    check_margin,
    check_max_position,
    check_order_rate,
    check_runaway,
    check_trading_state,
    guard,
    liquidation_distance,
    track_jump,
)
from hedgekeeper.settings import HedgeSettings, client_id_code, group_code_of
from hedgekeeper.sizing import fmt
from hedgekeeper.snapshot import Snapshot

__all__ = ["GroupDecision", "estimate_liquidation_price"]

_ZERO = Decimal(0)


@dataclass(slots=True)
class GroupDecision:
    """What the engine decided for one group in one cycle."""

    group: str
    action: str  # hold | order | planned | blocked | skipped | cancel
    reason: str
    plan: Plan | None = None
    exposure_usd: Decimal | None = None
    orders: list[Any] | None = None
    cancel: list[Any] | None = None  # working orders to cancel before turning around
    rule: str | None = None  # the guard that blocked, if any
    liquidation_distance: Decimal | None = None
    margin_ratio: Decimal | None = None
    collateral_usd: Decimal | None = None
    #: Collateral missing for the planned short to survive the shock (USD), if any.
    collateral_shortfall_usd: Decimal | None = None
    #: Collateral needed to bring liquidation back to min_liquidation_distance (USD).
    liquidation_shortfall_usd: Decimal | None = None
    #: Figures beyond the usual ones: ``window``, ``ratio``, ``allocation``, ``parent``.
    details: dict[str, Any] | None = None
    #: Dated contracts: days until expiry and the annualised basis (future / index - 1).
    days_to_expiry: Decimal | None = None
    basis_annualised: Decimal | None = None

    @property
    def order(self) -> Any:
        """The first order sent this cycle, if any."""
        return self.orders[0] if self.orders else None

    @property
    def order_status(self) -> str | None:
        """Status of the last order sent this cycle, if any."""
        return self.orders[-1].status.value if self.orders else None

    def as_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data (decimals as strings)."""
        plan = self.plan
        intent = None if plan is None else plan.intent
        return {
            "name": self.group,
            "action": self.action,
            "exposure_usd": None if self.exposure_usd is None else fmt(self.exposure_usd),
            "target_contracts": None if plan is None else fmt(plan.target_contracts),
            "hedge_contracts": None if plan is None else fmt(plan.hedge_contracts),
            "pending_contracts": None if plan is None else fmt(plan.pending_contracts),
            "order": None
            if intent is None or self.action not in ("order", "planned")
            else {
                "side": intent.side.value,
                "contracts": fmt(intent.contracts),
                "reduce_only": intent.reduce_only,
            },
            "reason": self.reason,
            "days_to_expiry": None
            if self.days_to_expiry is None
            else str(self.days_to_expiry.quantize(Decimal("0.01"))),
            "basis_annualised": None
            if self.basis_annualised is None
            else str(self.basis_annualised.quantize(Decimal("0.0001"))),
            **(self.details or {}),
        }


def estimate_liquidation_price(
    collateral_usd: Decimal, short_contracts: Decimal, market: MarketSpec, price: Decimal,
    maintenance_rate: Decimal,
) -> Decimal | None:  # fmt: skip
    """Where a linear short would be liquidated, from its collateral (entry = ``price``).

    Collateral C backs a short of Q base units: at price L the loss is Q (L - P) and the
    maintenance need m Q L, so C = Q (L - P) + m Q L, i.e. L = (C + Q P) / (Q (1 + m)).
    """
    if short_contracts <= 0 or market.kind is not MarketKind.LINEAR:
        return None
    quantity = short_contracts * market.contract_size
    return (collateral_usd + quantity * price) / (quantity * (1 + maintenance_rate))


class Decider:
    """Decides groups for the engine; holds the little state guards need between cycles."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.jumps: dict[tuple[str, str], JumpState] = {}  # (group, symbol or asset)
        #: The latest USD price seen for each priced asset (values inverse funding).
        self.last_prices: dict[str, Decimal] = {}
        #: ``plan --at``: plan as at this instant (windows) instead of the clock's.
        self.plan_at: float | None = None
        self._flatten_read: tuple[Snapshot | None, bool] = (None, False)

    def _flattening(self, snap: Snapshot) -> bool:
        """The journal's flatten flag, read once per snapshot rather than twice per group
        (a SQLite read each: half of a quiet cycle's per-group cost at 1,000 groups)."""
        if self._flatten_read[0] is not snap:
            self._flatten_read = (snap, bool(self.engine.flattening))
        return self._flatten_read[1]

    def _prices(self, group: GroupSpec, snap: Snapshot) -> dict[str, Decimal | None]:
        prices: dict[str, Decimal | None] = {}
        for asset in group.assets:
            if asset in STABLECOINS:
                prices[asset] = Decimal(1)
                continue
            account, symbol = self.engine.price_sources[group.name][asset]
            quote = (snap.quotes.get(account) or {}).get(symbol)
            prices[asset] = price = None if quote is None else quote.reference
            if price is not None:
                self.last_prices[asset] = price
        return prices

    def _pending(self, group: GroupSpec, snap: Snapshot) -> Decimal:
        """Signed hedge effect of working and unresolved orders of this group.

        Journal orders not yet final count for what is not filled yet (the position
        shows the rest); venue orders with this group's code that the journal does not
        know (orphans) count too, so they can never be doubled.
        """
        code = client_id_code(group.name)
        pending = _ZERO
        known: set[str] = set()
        for order in self.engine.executor.unresolved(group.name):
            known.add(order.request.client_order_id)
            remaining = order.request.amount - order.filled
            pending += remaining if order.request.side is Side.SELL else -remaining
        for info in snap.open_orders.get(group.hedge_account) or ():
            if info.client_order_id in known or info.symbol != group.instrument:
                continue
            if group_code_of(info.client_order_id, self.engine.settings.instance) != code:
                continue
            pending += info.remaining if info.side is Side.SELL else -info.remaining
        return pending

    def decide(self, group: GroupSpec, snap: Snapshot, in_flux: set[str],
               holds: dict[str, str] | None = None) -> GroupDecision:  # fmt: skip
        """Assess, plan and guard one group (journal reads only, no venue I/O).

        ``in_flux`` and ``holds`` name groups that must not trade this cycle: an order
        moved since the snapshot, or (``holds``, with the reason) a position read lags a
        fill or an order is in a state the daemon cannot account for.
        """
        engine = self.engine
        hedge: HedgeSettings = engine.settings.hedge(group.name)
        betas = getattr(engine, "betas", None)
        if betas is not None and group.estimated:
            group = betas.apply(group)  # "estimate" betas: the current estimates
        account = group.hedge_account
        if account in snap.open_circuits:
            return GroupDecision(group.name, "skipped", f"circuit open for account {account}")
        if snap.open_orders.get(account) is None:
            return GroupDecision(group.name, "skipped", f"open orders of {account} missing")
        try:
            balances = {a: snap.balances.get(a) for a in group.spot_accounts}
            prices = self._prices(group, snap)
            exposure = assess(group, balances, prices)
        except MissingDataError as error:
            return GroupDecision(group.name, "skipped", str(error))
        skipped = GroupDecision(group.name, "skipped", "", exposure_usd=exposure.exposure_usd)
        positions = snap.positions.get(account)
        if positions is None or group.instrument not in positions:
            skipped.reason = f"position of {group.instrument} missing"
            return skipped
        quote = (snap.quotes.get(account) or {}).get(group.instrument)
        price = None if quote is None else quote.reference
        if quote is None or price is None or price <= 0:
            skipped.reason = f"price of {group.instrument} missing"
            return skipped
        if group.name in in_flux:
            skipped.reason = "an order resolved since the snapshot: waiting for a fresh read"
            return skipped
        if holds and group.name in holds:
            skipped.reason = f"held: {holds[group.name]}"
            return skipped
        # Every price the decision rests on is watched: the instrument's and each held
        # asset's (a spike in a proxy-hedged asset moves the exposure, hence the target).
        watched = {group.instrument: price}
        watched.update({a: p for a, p in prices.items() if p is not None and a not in STABLECOINS})
        accepted, jump_reason = True, "no jump"
        for name, value in watched.items():
            ok, self.jumps[(group.name, name)], why = track_jump(
                self.jumps.get((group.name, name), JumpState()), value, hedge.max_jump
            )
            if not ok and accepted:
                accepted, jump_reason = False, f"{name}: {why}"
        position = positions[group.instrument]
        market: MarketSpec = engine.markets[account][group.instrument]
        at = engine.clock() if self.plan_at is None else self.plan_at
        flattening = self._flattening(snap)
        plan, exposure_usd, details = plan_policy(
            group, exposure, market, price, position.contracts, self._pending(group, snap), at,
            flattening=flattening,
        )  # windows, allocation legs and plain ratios alike (allocation.py)
        exposure = replace(exposure, exposure_usd=exposure_usd)
        target = plan.target
        if flattening and plan.intent is not None:
            plan = replace(plan, reason=f"flatten: {plan.reason}")
        decision = GroupDecision(group.name, "hold", plan.reason, plan, exposure.exposure_usd)
        decision.details = {**details, **({"parent": group.parent} if group.parent else {})}
        if betas is not None and group.estimated:
            decision.details["betas"] = betas.details(group)
        self._margin_figures(decision, position, market, price, hedge)
        if plan.intent is not None and plan.intent.side is Side.SELL and position.collateral_usd:
            wanted = (plan.hedge_contracts + plan.pending_contracts + plan.intent.contracts) * (
                target.contract_value_usd
            )
            need = wanted * (hedge.shock + hedge.maintenance_margin_rate * (1 + hedge.shock))
            if need > position.collateral_usd:
                decision.collateral_shortfall_usd = need - position.collateral_usd
        if plan.intent is None:
            # Inside the band *without* working orders: the next maker attempt starts a
            # fresh deadline. A resting maker order keeps the group inside its band too,
            # and must not keep restarting the deadline it is racing.
            if not engine.executor.unresolved(group.name):
                engine.executor.group_settled(group.name)
            return decision
        opposite = [
            o
            for o in engine.executor.unresolved(group.name)
            if o.request.side is not plan.intent.side
        ]
        if opposite:
            # Turning around with an order still working the other way: cancel it first
            # and decide again on the next snapshot, rather than trade against ourselves.
            decision.action, decision.cancel = "cancel", opposite
            ids = ", ".join(o.request.client_order_id for o in opposite)
            decision.reason = (
                f"{plan.reason}: first cancel the working {opposite[0].request.side} ({ids})"
            )
            return decision
        # Every price the decision rests on is age-checked: the instrument's and each
        # priced asset's (snapshot stamps quotes that came without a time on receipt).
        ages: dict[str, float | None] = {f"quote of {group.instrument}": _age(snap, quote)}
        for asset, (source_account, symbol) in engine.price_sources[group.name].items():
            source = (snap.quotes.get(source_account) or {}).get(symbol)
            if source is not None:
                ages[f"price of {asset} ({symbol})"] = _age(snap, source)
        state: TradingState = engine.executor.trading_state
        window_start = engine.clock() - hedge.runaway_window
        rules = [
            lambda i: check_trading_state(i, state),
            lambda i: check_data_age(i, ages, hedge.max_data_age),
            lambda i: check_basis(i, quote.mark, quote.index, hedge.max_basis),
            lambda i: _jump_rule(i, accepted, jump_reason),
            lambda i: check_cap(i, plan),
            lambda i: check_max_position(i, plan, hedge.max_position_contracts),
            lambda i: check_runaway(
                i, engine.journal.hedge_added_since(group.name, window_start)
                + max(plan.pending_contracts, _ZERO), exposure.exposure_usd,
                target.contract_value_usd, hedge.runaway_multiple, hedge.runaway_window,
            ),
            lambda i: check_margin(i, plan, position.collateral_usd, hedge.shock,
                                   hedge.maintenance_margin_rate),
            lambda i: check_order_rate(i, engine.executor.sent_last_minute(account),
                                       engine.settings.execution.max_orders_per_minute),
        ]  # fmt: skip
        allowed, trail = guard(plan.intent, rules)
        # The first rule that made the order smaller is the one to name when it shrinks.
        shrunk_by = next(
            (
                r
                for r in trail
                if r.intent is not None and r.intent.contracts < plan.intent.contracts
            ),
            None,
        )
        if allowed is not None:
            # A rule may have shrunk the order below a whole step: round it down again.
            size = allowed.contracts - allowed.contracts % market.amount_step
            if size <= 0 and shrunk_by is not None:
                decision.action, decision.rule = "blocked", shrunk_by.rule
                decision.reason = f"{shrunk_by.rule}: {shrunk_by.reason}, less than one step"
                return decision
            allowed = replace(allowed, contracts=size)
        if allowed is None:
            last = trail[-1]
            decision.action, decision.rule = "blocked", last.rule
            decision.reason = f"{last.rule}: {last.reason}"
            return decision
        if allowed != plan.intent and shrunk_by is not None:
            decision.reason = f"{plan.reason}; {shrunk_by.rule}: {shrunk_by.reason}"
            decision.plan = replace(plan, intent=allowed)
        decision.action = "order"
        return decision

    def _margin_figures(self, decision: GroupDecision, position: Any, market: MarketSpec,
                        price: Decimal, hedge: HedgeSettings) -> None:  # fmt: skip
        short = -position.contracts
        liquidation = position.liquidation_price
        if liquidation is None and position.collateral_usd is not None:
            liquidation = estimate_liquidation_price(
                position.collateral_usd, short, market, price, hedge.maintenance_margin_rate
            )
        decision.liquidation_distance = (
            liquidation_distance(price, liquidation) if short > 0 else None
        )
        decision.margin_ratio = position.margin_ratio
        decision.collateral_usd = position.collateral_usd
        distance = decision.liquidation_distance
        if (
            distance is not None
            and distance < hedge.min_liquidation_distance
            and position.collateral_usd is not None
            and market.kind is MarketKind.LINEAR
        ):
            # Collateral that puts liquidation back at min_liquidation_distance above price:
            # C = Q L (1 + m) - Q P with L = P (1 + d_min).
            quantity = short * market.contract_size
            target = price * (1 + hedge.min_liquidation_distance)
            needed = quantity * target * (1 + hedge.maintenance_margin_rate) - quantity * price
            decision.liquidation_shortfall_usd = max(needed - position.collateral_usd, _ZERO)


def _jump_rule(intent: Any, accepted: bool, reason: str) -> GuardResult:
    return GuardResult(intent if accepted else None, "jump", reason)


def _age(snap: Snapshot, quote: Quote) -> float:
    """Seconds between a quote's time and the snapshot (0 for a quote from the future)."""
    return max(0.0, snap.taken_at - quote.timestamp) if quote.timestamp else 0.0
