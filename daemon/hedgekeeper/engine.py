"""The engine: snapshot -> assess -> plan -> guard -> execute, on a timer.

The engine is the asyncio shell around the pure core. It knows which reads
each account needs (one balance, one positions, one quotes and one open-orders
request per account per cycle, however many groups share it), gathers them
concurrently into an immutable :class:`Snapshot`, asks the core for decisions,
and hands the orders to :mod:`hedgekeeper.execution`.

A read that failed is *missing* in the snapshot, never zero: the groups that
need it are skipped for this cycle, with the reason logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from hedgekeeper.events import EventBus
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.execution import Executor
from hedgekeeper.exposure import MissingDataError, assess
from hedgekeeper.journal import Journal
from hedgekeeper.logs import get_logger
from hedgekeeper.model import (
    STABLECOINS,
    Balances,
    GroupSpec,
    MarketSpec,
    OrderInfo,
    OrderIntent,
    Plan,
    Position,
    Quote,
    Side,
    TradingState,
)
from hedgekeeper.risk import check_cap, check_trading_state, guard
from hedgekeeper.settings import Settings, client_id_code, group_code_of
from hedgekeeper.sizing import compute_target, fmt, plan_group
from hedgekeeper.venues.base import Venue

__all__ = ["CycleReport", "Engine", "GroupDecision", "Snapshot"]

T = TypeVar("T")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one cycle's decisions need, read at one time. ``None`` = read failed."""

    taken_at: float
    balances: dict[str, Balances | None]
    positions: dict[str, dict[str, Position] | None]
    quotes: dict[str, dict[str, Quote] | None]
    open_orders: dict[str, list[OrderInfo] | None]
    errors: dict[str, str]


@dataclass(slots=True)
class GroupDecision:
    """What the engine decided for one group in one cycle."""

    group: str
    action: str  # hold | order | blocked | skipped
    reason: str
    plan: Plan | None = None
    exposure_usd: Decimal | None = None
    order: OrderInfo | None = None
    order_status: str | None = None

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
        }


@dataclass(slots=True)
class CycleReport:
    """The outcome of one cycle."""

    cycle: int | None
    decisions: list[GroupDecision] = field(default_factory=list)
    duration_ms: float = 0.0
    ok: bool = True


@dataclass(frozen=True, slots=True)
class _Needs:
    """Which reads one account must do each cycle."""

    balances: bool
    position_symbols: tuple[str, ...]
    quote_symbols: tuple[str, ...]


class Engine:
    """Runs hedge cycles for every configured group; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        venues: dict[str, Venue],
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.venues = venues
        self.journal = journal
        self.groups: list[GroupSpec] = settings.group_specs()
        self._quotes_of_group = {h.name: h.quote for h in settings.hedges}
        self._price_account = {h.name: h.price_account or h.hedge_account for h in settings.hedges}
        self._clock = clock
        self.markets: dict[str, dict[str, MarketSpec]] = {}
        #: asset price source per group: asset -> (account, symbol)
        self._price_sources: dict[str, dict[str, tuple[str, str]]] = {}
        self._needs: dict[str, _Needs] = {}
        self.events = EventBus()
        self.executor = Executor(settings, venues, journal, self.events)
        self.log = get_logger()
        self.last_report: CycleReport | None = None
        self.last_success_at: float | None = None
        self.cycles_run = 0
        self._wake = asyncio.Event()

    # -- start-up ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load markets, check every group's instrument and price sources exist."""
        wanted: dict[str, set[str]] = {name: set() for name in self.venues}
        for group in self.groups:
            wanted[group.hedge_account].add(group.instrument)
            price_account = self._price_account[group.name]
            quote = self._quotes_of_group[group.name]
            for asset in group.assets:
                if asset not in STABLECOINS:
                    wanted[price_account].add(f"{asset}/{quote}")
        loaded = await asyncio.gather(
            *(self.venues[name].load_markets(sorted(symbols)) for name, symbols in wanted.items())
        )
        self.markets = dict(zip(wanted, loaded, strict=True))
        problems: list[str] = []
        for index, group in enumerate(self.groups):
            market = self.markets[group.hedge_account].get(group.instrument)
            if market is None:
                problems.append(
                    f"hedges.{index}.instrument: {group.instrument!r} is not listed by "
                    f"account {group.hedge_account!r}"
                )
            sources: dict[str, tuple[str, str]] = {}
            price_account = self._price_account[group.name]
            for asset in group.assets:
                if asset in STABLECOINS:
                    continue
                symbol = f"{asset}/{self._quotes_of_group[group.name]}"
                if symbol in self.markets[price_account]:
                    sources[asset] = (price_account, symbol)
                elif market is not None and market.base == asset:
                    sources[asset] = (group.hedge_account, group.instrument)
                else:
                    problems.append(
                        f"hedges.{index}.assets.{asset}: no market {symbol!r} on account "
                        f"{price_account!r} to price it (set price_account or quote)"
                    )
            self._price_sources[group.name] = sources
        if problems:
            raise ConfigError("\n".join(problems))
        self._needs = self._compute_needs()
        await self.executor.start(self.markets)

    def _compute_needs(self) -> dict[str, _Needs]:
        balances: set[str] = set()
        positions: dict[str, set[str]] = {name: set() for name in self.venues}
        quotes: dict[str, set[str]] = {name: set() for name in self.venues}
        for group in self.groups:
            balances.update(group.spot_accounts)
            positions[group.hedge_account].add(group.instrument)
            quotes[group.hedge_account].add(group.instrument)
            for account, symbol in self._price_sources[group.name].values():
                quotes[account].add(symbol)
        return {
            name: _Needs(
                name in balances, tuple(sorted(positions[name])), tuple(sorted(quotes[name]))
            )
            for name in self.venues
        }

    # -- snapshot ------------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Read everything the groups need, concurrently; failures become ``None``."""
        errors: dict[str, str] = {}

        async def attempt(what: str, call: Awaitable[T]) -> T | None:
            try:
                return await call
            except Exception as error:  # a failed read is recorded, never zero
                errors[what] = f"{type(error).__name__}: {error}"
                self.log.warning("snapshot.read_failed", read=what, error=errors[what])
                return None

        balances: dict[str, Any] = {}
        positions: dict[str, Any] = {}
        quotes: dict[str, Any] = {}
        open_orders: dict[str, Any] = {}
        tasks: list[Awaitable[None]] = []

        def add(target: dict[str, Any], name: str, what: str, call: Awaitable[Any]) -> None:
            async def run() -> None:
                target[name] = await attempt(f"{what}:{name}", call)

            tasks.append(run())

        prefix = self.settings.instance
        for name, needs in self._needs.items():
            venue = self.venues[name]
            if needs.balances:
                add(balances, name, "balances", venue.fetch_balances())
            if needs.position_symbols:
                add(positions, name, "positions", venue.fetch_positions(needs.position_symbols))
                add(
                    open_orders,
                    name,
                    "open_orders",
                    venue.fetch_open_orders(needs.position_symbols, prefix),
                )
            if needs.quote_symbols:
                add(quotes, name, "quotes", venue.fetch_quotes(needs.quote_symbols))
        await asyncio.gather(*tasks)
        return Snapshot(self._clock(), balances, positions, quotes, open_orders, errors)

    # -- decide --------------------------------------------------------------------------------

    def _prices(self, group: GroupSpec, snap: Snapshot) -> dict[str, Decimal | None]:
        prices: dict[str, Decimal | None] = {}
        for asset in group.assets:
            if asset in STABLECOINS:
                prices[asset] = Decimal(1)
                continue
            account, symbol = self._price_sources[group.name][asset]
            account_quotes = snap.quotes.get(account)
            quote = None if account_quotes is None else account_quotes.get(symbol)
            prices[asset] = None if quote is None else quote.reference
        return prices

    def _pending(self, group: GroupSpec, snap: Snapshot) -> Decimal:
        """Signed hedge effect of working and unresolved orders of this group.

        Journal orders not yet final count in full (minus what already filled, which
        the position shows); venue orders with our group's prefix that the journal
        does not know (orphans) count too, so they cannot be doubled.
        """
        code = client_id_code(group.name)
        instance = self.settings.instance
        pending = _ZERO
        known: set[str] = set()
        for order in self.executor.unresolved(group.name):
            known.add(order.request.client_order_id)
            remaining = order.request.amount - order.filled
            pending += remaining if order.request.side is Side.SELL else -remaining
        for info in snap.open_orders.get(group.hedge_account) or ():
            if info.client_order_id in known:
                continue
            if group_code_of(info.client_order_id, instance) != code:
                continue
            if info.symbol != group.instrument:
                continue
            pending += info.remaining if info.side is Side.SELL else -info.remaining
        return pending

    def decide_group(self, group: GroupSpec, snap: Snapshot) -> GroupDecision:
        """Assess, plan and guard one group against a snapshot (no I/O)."""
        account_positions = snap.positions.get(group.hedge_account)
        account_quotes = snap.quotes.get(group.hedge_account)
        if snap.open_orders.get(group.hedge_account) is None:
            return GroupDecision(group.name, "skipped", "open orders of hedge account missing")
        try:
            exposure = assess(
                group,
                {a: snap.balances.get(a) for a in group.spot_accounts},
                self._prices(group, snap),
            )
        except MissingDataError as error:
            return GroupDecision(group.name, "skipped", str(error))
        if account_positions is None or group.instrument not in account_positions:
            return GroupDecision(
                group.name,
                "skipped",
                f"position of {group.instrument} missing",
                exposure_usd=exposure.exposure_usd,
            )
        quote = None if account_quotes is None else account_quotes.get(group.instrument)
        price = None if quote is None else quote.reference
        if price is None or price <= 0:
            return GroupDecision(
                group.name,
                "skipped",
                f"price of {group.instrument} missing",
                exposure_usd=exposure.exposure_usd,
            )
        market = self.markets[group.hedge_account][group.instrument]
        ratio = _ZERO if self.flattening else group.ratio
        target = compute_target(exposure.exposure_usd, ratio, group.max_ratio, market, price)
        plan = plan_group(
            group.name,
            target,
            market,
            account_positions[group.instrument].contracts,
            self._pending(group, snap),
            group.tolerance,
            ratio,
        )
        if self.flattening and plan.intent is not None:
            plan = replace(plan, reason=f"flatten: {plan.reason}")
        decision = GroupDecision(group.name, "hold", plan.reason, plan, exposure.exposure_usd)
        if plan.intent is None:
            return decision
        state = self.executor.trading_state
        allowed, trail = guard(
            plan.intent,
            [lambda i: check_trading_state(i, state), lambda i: check_cap(i, plan)],
        )
        if allowed is None:
            decision.action, decision.reason = "blocked", f"{trail[-1].rule}: {trail[-1].reason}"
            self.events.publish(
                "guard.fired", group=group.name, rule=trail[-1].rule, reason=trail[-1].reason
            )
            return decision
        if allowed != plan.intent:
            decision.plan = plan = _with_intent(plan, allowed)
        decision.action = "order"
        return decision

    # -- cycles ----------------------------------------------------------------------------------

    async def run_cycle(self, *, trade: bool = True) -> CycleReport:
        """One full cycle; with ``trade=False`` nothing is sent or journaled (``plan``)."""
        started = time.perf_counter()
        cycle = self.journal.begin_cycle() if trade else None
        log = self.log.bind(cycle=cycle) if cycle is not None else self.log
        if trade:
            await self.executor.resolve_unresolved(log)
        snap = await self.snapshot()
        report = CycleReport(cycle)
        for group in self.groups:
            decision = self.decide_group(group, snap)
            if not trade and decision.action == "order":
                decision.action = "planned"
            if trade and decision.action == "order" and decision.plan and decision.plan.intent:
                info = await self.executor.execute(decision.plan.intent, group, cycle, log)
                decision.order = info
                decision.order_status = None if info is None else info.status.value
            report.decisions.append(decision)
            _log_decision(log, decision)
            if trade:
                self.events.publish("plan.decided", cycle=cycle, group=decision.group,
                                    **_without_name(decision.as_dict()))  # fmt: skip
        report.duration_ms = (time.perf_counter() - started) * 1000
        report.ok = not snap.errors
        if trade and cycle is not None:
            summary = _summary(report, snap)
            self.journal.finish_cycle(
                cycle,
                "ok" if report.ok else "partial",
                summary,
                [(d.group, d.action, d.reason, d.as_dict()) for d in report.decisions],
            )
            log.info("cycle.completed", **summary)
            self.events.publish("cycle.completed", cycle=cycle, ok=report.ok, **summary)
            self.cycles_run += 1
            await self._finish_flatten(report, log)
        if report.ok:
            self.last_success_at = self._clock()
        self.last_report = report
        return report

    # -- operator commands ------------------------------------------------------------------

    @property
    def flattening(self) -> bool:
        """True while a flatten is closing every hedge (survives restarts)."""
        return self.journal.flag("flatten")

    def _set_state(self, state: TradingState, source: str, reason: str) -> None:
        previous = self.executor.trading_state
        self.journal.set_trading_state(state, source, reason)
        self.log.warning(
            "state.changed", previous=previous.value, state=state.value, source=source,
            reason=reason,
        )  # fmt: skip
        self.events.publish(
            "state.changed", previous=previous.value, state=state.value, source=source,
            reason=reason,
        )  # fmt: skip

    async def halt(self, source: str, reason: str = "operator halt") -> dict[str, Any]:
        """Stop trading: cancel our working orders and move to ``HALTED``."""
        self.journal.set_flag("flatten", False)
        self._set_state(TradingState.HALTED, source, reason)
        cancelled = await self.executor.cancel_working(self.log)
        self.journal.record_action("halt", source, f"{reason}; cancelled {cancelled}")
        return {"state": TradingState.HALTED.value, "cancelled": cancelled}

    async def resume(self, source: str, reason: str = "operator resume") -> dict[str, Any]:
        """Trade again (``ACTIVE``) and run a cycle now."""
        self.journal.set_flag("flatten", False)
        self._set_state(TradingState.ACTIVE, source, reason)
        self.journal.record_action("resume", source, reason)
        self.hedge_now()
        return {"state": TradingState.ACTIVE.value}

    async def flatten(self, source: str, reason: str = "operator flatten") -> dict[str, Any]:
        """Close every hedge with reduce-only orders, then halt."""
        cancelled = await self.executor.cancel_working(self.log)
        self.journal.set_flag("flatten", True)
        self._set_state(TradingState.REDUCING, source, reason)
        self.journal.record_action("flatten", source, f"{reason}; cancelled {cancelled}")
        self.hedge_now()
        return {"state": TradingState.REDUCING.value, "flattening": True, "cancelled": cancelled}

    def hedge_now(self) -> None:
        """Run the next cycle at once instead of waiting for the timer."""
        self._wake.set()

    async def _finish_flatten(self, report: CycleReport, log: Any) -> None:
        if not self.flattening:
            return
        done = all(
            d.plan is not None and d.plan.hedge_contracts <= 0 and d.plan.pending_contracts == 0
            and d.order is None
            for d in report.decisions
        )  # fmt: skip
        if done:
            self.journal.set_flag("flatten", False)
            self._set_state(TradingState.HALTED, "flatten", "every hedge closed")
            log.warning("flatten.completed")

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every ``poll_interval`` until ``stop`` is set.

        One failed cycle never ends the loop: it is logged and the next one runs.
        """
        interval = self.settings.poll_interval
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            began = loop.time()
            task = asyncio.ensure_future(self.run_cycle())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                # Asked to stop mid-cycle: let the current step finish, briefly.
                done, _ = await asyncio.wait({task}, timeout=4.0)
                if not done:
                    task.cancel()
                    self.log.warning("cycle.cancelled", reason="shutdown took too long")
            stopper.cancel()
            if task.done() and not task.cancelled() and task.exception() is not None:
                self.log.error("cycle.failed", error=repr(task.exception()))
            remaining = interval - (loop.time() - began)
            if remaining > 0 and not stop.is_set() and not self._wake.is_set():
                waker = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waker, stopper}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                waker.cancel()
                stopper.cancel()
            self._wake.clear()

    async def close(self) -> None:
        """Close every venue."""
        await asyncio.gather(*(v.close() for v in self.venues.values()), return_exceptions=True)


def _with_intent(plan: Plan, intent: OrderIntent) -> Plan:
    return replace(plan, intent=intent)


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("name", None)
    return data


def _log_decision(log: Any, decision: GroupDecision) -> None:
    data = decision.as_dict()
    data.pop("name")
    level = log.warning if decision.action in ("skipped", "blocked") else log.info
    level("plan.decided", group=decision.group, **data)


def _summary(report: CycleReport, snap: Snapshot) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for decision in report.decisions:
        counts[decision.action] = counts.get(decision.action, 0) + 1
    return {
        "groups": len(report.decisions),
        "orders": counts.get("order", 0),
        "holds": counts.get("hold", 0),
        "skipped": counts.get("skipped", 0),
        "blocked": counts.get("blocked", 0),
        "read_errors": len(snap.errors),
        "duration_ms": round(report.duration_ms, 2),
    }
