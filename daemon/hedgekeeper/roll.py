"""Rolling dated futures: keep a group's hedge on a contract that is not about to expire.

A group whose instrument is a dated contract (``BTC/USDT:USDT-261225``, or the
alias ``BTC/USDT:USDT-quarterly``) rolls ``roll_days_before`` its expiry — or
earlier, once the next contract's annualised basis beats the current one's by
``roll_basis_margin`` — into the next contract (``roll_to``, else the next
quarterly the venue lists):

1. the roll is written to the journal first — from, to and the contracts to
   move — as one record (:meth:`Journal.begin_roll`);
2. each step opens the new leg (a sell on ``to``), then closes as much of the
   old leg (a reduce-only buy on ``from``) as the new one filled. Both legs go
   through the executor, so each order is journaled before it is sent;
3. when the old leg is flat the journal records the new contract as the
   group's instrument (:meth:`Journal.finish_roll`) and the next one is looked
   up (the alias is resolved again).

The steps are derived from the positions, never from memory: a roll whose
record survives a crash (``kill -9`` between the legs) is completed on restart
— an excess on the new leg is first taken off the old one. The combined hedge
is above the roll's size by at most one step (``max_order_usd``, else the whole
size), and is never short of it for longer than the gap between two legs.

While a roll is in progress the group's ordinary hedging waits. An unrolled
contract within ``min_days_to_expiry`` of expiry blocks the group (rule
``expiry``) with an error log and an alert every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgekeeper.contracts import (
    annualised_basis,
    days_to_expiry,
    next_contract,
    parse_symbol,
    resolve_alias,
)
from hedgekeeper.decide import GroupDecision
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.model import GroupSpec, MarketSpec, OrderIntent, Side, TradingState
from hedgekeeper.settings import HedgeSettings
from hedgekeeper.snapshot import Snapshot

__all__ = ["RollTarget", "Roller"]

_ZERO = Decimal(0)


@dataclass(slots=True)
class RollTarget:
    """Where a dated group stands: its contract now and the one it rolls into."""

    current: str
    next: str | None


class Roller:
    """Resolves dated groups' contracts at start and rolls them; see the module docstring."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.targets: dict[str, RollTarget] = {}

    # -- start-up ----------------------------------------------------------------------------

    def _read(self, account: str, name: str) -> Any:
        """A read-only capability of an account's venue, looked for through wrappers
        (``plan``'s read-only venue forwards only the port's reads)."""
        venue: Any = self.engine.venues[account]
        while venue is not None:
            found = getattr(venue, name, None)
            if found is not None:
                return found
            venue = getattr(venue, "_venue", None)
        return None

    def market_time(self, account: str) -> float:
        """The venue's clock (the sim runs its own), else the engine's."""
        clock = self._read(account, "market_time")
        return float(clock()) if clock is not None else float(self.engine.clock())

    async def _listed(self, hedge: HedgeSettings, family: str) -> dict[str, MarketSpec]:
        lister = self._read(hedge.hedge_account, "list_contracts")
        if lister is None:
            raise ConfigError(
                f"hedges[{hedge.name}].instrument: account {hedge.hedge_account!r} cannot "
                "list dated contracts"
            )
        listed: dict[str, MarketSpec] = await lister(family)
        return listed

    async def resolve(self) -> None:
        """Pick each dated group's contract (a roll in progress, the last roll, the
        configuration, or the alias) and the one it rolls into; update the groups."""
        journal = self.engine.journal
        for index, group in enumerate(self.engine.groups):
            hedge: HedgeSettings = self.engine.settings.hedge(group.name)
            parts = parse_symbol(hedge.instrument)
            if not parts.dated:
                continue
            listed = await self._listed(hedge, parts.family)
            now = self.market_time(hedge.hedge_account)
            rolling = journal.roll_state(group.name)
            saved = journal.active_contract(group.name)
            if rolling is not None:
                target = RollTarget(str(rolling["from"]), str(rolling["to"]))
            else:
                if saved is not None and saved in listed:
                    current: str | None = saved
                elif parts.alias:
                    current = resolve_alias(hedge.instrument, listed, now, hedge.min_days_to_expiry)
                else:
                    current = hedge.instrument
                if current is None:
                    raise ConfigError(
                        f"hedges[{hedge.name}].instrument: no quarterly of {parts.family} with "
                        f"more than {hedge.min_days_to_expiry} days left is listed by "
                        f"{hedge.hedge_account!r}"
                    )
                target = RollTarget(current, self._next(hedge, current, listed))
            self.targets[group.name] = target
            self.engine.groups[index] = replace(group, instrument=target.current)

    def _next(
        self, hedge: HedgeSettings, current: str, listed: dict[str, MarketSpec]
    ) -> str | None:
        if hedge.roll_to is not None and not parse_symbol(hedge.roll_to).alias:
            return hedge.roll_to if hedge.roll_to != current else None
        spec = listed.get(current)
        return None if spec is None else next_contract(spec, listed)

    def symbols(self, group: str, instrument: str) -> set[str]:
        """The contracts a group needs read: its own and, when dated, the next one."""
        target = self.targets.get(group)
        if target is None:
            return {instrument}
        return {target.current} | ({target.next} if target.next else set())

    def days_left(self, group: GroupSpec) -> Decimal | None:
        """Days until the group's contract expires (``None`` for perpetuals)."""
        market = self.engine.markets.get(group.hedge_account, {}).get(group.instrument)
        if market is None or market.expiry is None:
            return None
        return days_to_expiry(market.expiry, self.market_time(group.hedge_account))

    def annotate(self, decision: GroupDecision, group: GroupSpec, snap: Snapshot) -> None:
        """Add days to expiry and the annualised basis to a dated group's decision."""
        days = self.days_left(group)
        if days is None:
            return
        decision.days_to_expiry = days
        quote = (snap.quotes.get(group.hedge_account) or {}).get(group.instrument)
        price = None if quote is None else quote.reference
        if quote is not None and price is not None and quote.index is not None:
            decision.basis_annualised = annualised_basis(price, quote.index, days)

    # -- each cycle --------------------------------------------------------------------------

    async def step(
        self, group: GroupSpec, snap: Snapshot, can_trade: bool, cycle: int | None, log: Any
    ) -> GroupDecision | None:
        """Roll the group if due; ``None`` when it should hedge as usual this cycle."""
        target = self.targets.get(group.name)
        if target is None:
            return None
        hedge: HedgeSettings = self.engine.settings.hedge(group.name)
        journal = self.engine.journal
        rolling = journal.roll_state(group.name)
        days = self.days_left(group)
        if rolling is None:
            if days is None:
                return None
            if days > hedge.roll_days_before and not self._richer_next(group, hedge, snap, log):
                return None
            if target.next is None:
                return self._no_next(group, hedge, days, log)
            short = self._short(snap, group.hedge_account, target.current)
            if short is None:
                return GroupDecision(group.name, "skipped", f"position of {target.current} missing")
            if not can_trade:
                return GroupDecision(
                    group.name, "planned" if cycle is None else "blocked",
                    f"roll due: {days:.2f} days to expiry; {short} contracts of "
                    f"{target.current} into {target.next}",
                )  # fmt: skip
            rolling = {"from": target.current, "to": target.next, "contracts": str(short)}
            journal.begin_roll(group.name, rolling)
            log.warning("roll.started", group=group.name, days_to_expiry=f"{days:.2f}", **rolling)
            self.engine.events.publish("roll.started", group=group.name, **rolling)
        if not can_trade:
            return GroupDecision(group.name, "blocked", "roll in progress: trading not reconciled")
        return await self._continue(group, hedge, rolling, snap, cycle, log)

    def _richer_next(
        self, group: GroupSpec, hedge: HedgeSettings, snap: Snapshot, log: Any
    ) -> bool:
        """Whether the next contract's annualised basis beats the current one's by
        ``roll_basis_margin`` (a short there earns that much more carry): roll early."""
        target = self.targets[group.name]
        if hedge.roll_basis_margin is None or target.next is None:
            return False
        bases = []
        for symbol in (target.current, target.next):
            market = self.engine.markets.get(group.hedge_account, {}).get(symbol)
            quote = (snap.quotes.get(group.hedge_account) or {}).get(symbol)
            price = None if quote is None else quote.reference
            if market is None or market.expiry is None or price is None or quote is None:
                return False
            if quote.index is None:
                return False
            days = days_to_expiry(market.expiry, self.market_time(group.hedge_account))
            basis = annualised_basis(price, quote.index, days)
            if basis is None:
                return False
            bases.append(basis)
        better = bases[1] - bases[0] >= hedge.roll_basis_margin
        if better:
            log.info("roll.basis_better", group=group.name, current=f"{bases[0]:.4f}",
                     next=f"{bases[1]:.4f}", margin=str(hedge.roll_basis_margin))  # fmt: skip
        return better

    def _no_next(
        self, group: GroupSpec, hedge: HedgeSettings, days: Decimal, log: Any
    ) -> GroupDecision | None:
        if days > hedge.min_days_to_expiry:
            log.warning("roll.no_next_contract", group=group.name, symbol=group.instrument,
                        days_to_expiry=f"{days:.2f}")  # fmt: skip
            return None
        reason = (
            f"{group.instrument} expires in {days:.2f} days (< min_days_to_expiry "
            f"{hedge.min_days_to_expiry}) and there is no contract to roll into"
        )
        log.error("roll.expiry_halt", group=group.name, reason=reason)
        self.engine.events.publish("alert", kind="expiry", group=group.name, reason=reason)
        decision = GroupDecision(group.name, "blocked", f"expiry: {reason}")
        decision.rule = "expiry"
        return decision

    def _short(self, snap: Snapshot, account: str, symbol: str) -> Decimal | None:
        position = (snap.positions.get(account) or {}).get(symbol)
        return None if position is None else max(_ZERO, -position.contracts)

    async def _continue(
        self, group: GroupSpec, hedge: HedgeSettings, rolling: dict[str, Any],
        snap: Snapshot, cycle: int | None, log: Any,
    ) -> GroupDecision:  # fmt: skip
        source, dest, size = str(rolling["from"]), str(rolling["to"]), Decimal(rolling["contracts"])
        executor = self.engine.executor
        if executor.unresolved(group.name):
            return GroupDecision(group.name, "skipped", "roll: waiting for a leg to resolve")
        old, new = (self._short(snap, group.hedge_account, s) for s in (source, dest))
        if old is None or new is None:
            return GroupDecision(group.name, "skipped", "roll: a leg's position is missing")
        state = executor.trading_state
        decision = GroupDecision(group.name, "order", "")
        decision.orders = []
        if old == 0:
            return await self._finish(group, dest, log)
        excess = min(old, new + old - size)
        if excess > 0:  # a crash after the new leg: take the excess off the old one first
            decision.reason = f"roll: close {excess} of {source} (the new leg holds {new})"
            decision.orders += await self._leg(group, source, Side.BUY, excess, snap, cycle, log)
            return decision
        if state is not TradingState.ACTIVE:
            return GroupDecision(group.name, "blocked", f"roll paused: trading state {state}")
        step = self._step_size(hedge, group, dest, snap, old)
        decision.reason = f"roll: open {step} of {dest}, then close as much of {source}"
        opened = await self._leg(group, dest, Side.SELL, step, snap, cycle, log)
        decision.orders += opened
        filled = sum((o.filled for o in opened), _ZERO)
        if filled > 0:
            closing = min(filled, old)
            decision.orders += await self._leg(group, source, Side.BUY, closing, snap, cycle, log)
        return decision

    def _step_size(
        self, hedge: HedgeSettings, group: GroupSpec, symbol: str, snap: Snapshot, old: Decimal
    ) -> Decimal:
        """One roll step: what ``max_order_usd`` allows (at least one amount step), else all."""
        market: MarketSpec = self.engine.markets[group.hedge_account][symbol]
        quote = (snap.quotes.get(group.hedge_account) or {}).get(symbol)
        price = None if quote is None else quote.reference
        if hedge.max_order_usd is None or price is None or price <= 0:
            return old
        per_step = hedge.max_order_usd / market.contract_value_usd(price)
        per_step -= per_step % market.amount_step
        return min(old, max(per_step, market.amount_step))

    async def _leg(
        self, group: GroupSpec, symbol: str, side: Side, contracts: Decimal,
        snap: Snapshot, cycle: int | None, log: Any,
    ) -> list[Any]:  # fmt: skip
        intent = OrderIntent(
            group.name, symbol, side, contracts, reduce_only=side is Side.BUY,
            reason=f"roll {'open' if side is Side.SELL else 'close'} {symbol}",
        )  # fmt: skip
        quote = (snap.quotes.get(group.hedge_account) or {}).get(symbol)
        leg_group = replace(group, instrument=symbol)
        orders: list[Any] = await self.engine.executor.execute(intent, leg_group, quote, cycle, log)
        return orders

    async def _finish(self, group: GroupSpec, dest: str, log: Any) -> GroupDecision:
        hedge: HedgeSettings = self.engine.settings.hedge(group.name)
        self.engine.journal.finish_roll(group.name, dest)
        family = parse_symbol(dest).family
        listed = await self._listed(hedge, family)
        following = self._next(hedge, dest, listed) if hedge.roll_to is None else None
        self.targets[group.name] = RollTarget(dest, following)
        if following is not None and following not in self.engine.markets[group.hedge_account]:
            self.engine.markets[group.hedge_account][following] = listed[following]
        for index, known in enumerate(self.engine.groups):
            if known.name == group.name:
                self.engine.groups[index] = replace(known, instrument=dest)
        self.engine.refresh_needs()
        log.warning("roll.done", group=group.name, symbol=dest, next=following)
        self.engine.events.publish("roll.done", group=group.name, symbol=dest)
        return GroupDecision(group.name, "hold", f"roll done: now on {dest}")
