"""The engine: snapshot -> assess -> plan -> guard -> execute, on a timer.

The engine is the asyncio shell around the pure core. It knows which reads
each account needs (one balance, one positions, one quotes and one open-orders
request per account per cycle, however many groups share it), reads them into
an immutable :class:`~hedgekeeper.snapshot.Snapshot`, brings unresolved orders
up to date, asks :mod:`hedgekeeper.decide` for each group's decision, and hands
orders to :mod:`hedgekeeper.execution`.

Before the first order it reconciles the journal with every venue; until that
succeeds it does not trade. A read that failed is *missing*, never zero: the
groups that need it are skipped for this cycle, with the reason logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from hedgekeeper.betas import BetaBook
from hedgekeeper.decide import Decider, GroupDecision
from hedgekeeper.events import EventBus
from hedgekeeper.exceptions import (
    AuthError,
    ConfigError,
    OrderRejectedError,
    VenueConfigError,
    VenueError,
)
from hedgekeeper.execution import Executor, HaltRequired
from hedgekeeper.funding_collector import FundingCollector
from hedgekeeper.gate import GatedVenue, ReadOnlyVenue, WriteGate, WriteRefused
from hedgekeeper.journal import Journal
from hedgekeeper.logs import get_logger
from hedgekeeper.model import STABLECOINS, GroupSpec, MarketSpec, Mode, TradingState
from hedgekeeper.orders import IllegalTransition
from hedgekeeper.realize import Realizer
from hedgekeeper.retention import JournalRetention
from hedgekeeper.roll import Roller
from hedgekeeper.settings import Settings
from hedgekeeper.snapshot import AccountNeeds, Snapshot, SnapshotReader
from hedgekeeper.statelock import StateLock
from hedgekeeper.streams import StreamHub, build_hub
from hedgekeeper.venues.base import Venue

__all__ = ["CycleReport", "Engine", "GroupDecision"]


@dataclass(slots=True)
class CycleReport:
    """The outcome of one cycle."""

    cycle: int | None
    decisions: list[GroupDecision] = field(default_factory=list)
    duration_ms: float = 0.0
    ok: bool = True


class Engine:
    """Runs hedge cycles for every configured group; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        venues: dict[str, Venue],
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
        lock: StateLock | None = None,
    ) -> None:
        """``venues`` all :class:`ReadOnlyVenue` make a read-only engine (``plan``): it
        never writes to an exchange or the journal and runs no reconciliation. Otherwise
        every venue is wrapped in :class:`GatedVenue`, so each exchange write passes the
        one :class:`WriteGate` (trading state, orders per minute, ``lock`` still held)."""
        self.settings = settings
        self.journal = journal
        self.read_only = bool(venues) and all(isinstance(v, ReadOnlyVenue) for v in venues.values())
        if any(isinstance(v, ReadOnlyVenue) for v in venues.values()) and not self.read_only:
            raise ValueError("read-only and writable venues cannot be mixed in one engine")
        self.gate = WriteGate(
            journal, settings.execution.max_orders_per_minute, lock=lock, clock=clock
        )
        self.venues: dict[str, Venue] = (
            dict(venues) if self.read_only else {
                name: v if isinstance(v, GatedVenue) else GatedVenue(v, self.gate)
                for name, v in venues.items()
            }
        )  # fmt: skip
        self.clock = clock
        self.groups: list[GroupSpec] = settings.group_specs()
        self.markets: dict[str, dict[str, MarketSpec]] = {}
        #: asset price source per group: asset -> (account, symbol)
        self.price_sources: dict[str, dict[str, tuple[str, str]]] = {}
        self.events = EventBus()
        self.log = get_logger()
        self.executor = Executor(settings, self.venues, journal, self.events, clock=clock)
        self.decider = Decider(self)
        self.funding = FundingCollector(self)
        self.retention = JournalRetention(self)  # old cycles/decisions, in the background
        #: Each group's last logged action: a hold after a hold is logged at debug only.
        self._last_actions: dict[str, str] = {}
        self.betas = BetaBook(self)  # "estimate" betas (betas.py)
        self.roller = Roller(self)
        self.realizer = Realizer(self)  # operator "realize" (Option B), two legs
        self.reader: SnapshotReader | None = None
        self.reconciled = False
        self.last_report: CycleReport | None = None
        self.last_success_at: float | None = None
        self.cycles_run = 0
        self._wake = asyncio.Event()
        #: Push streams that wake the loop (``[streams] enabled``); polling stays the floor.
        self.streams: StreamHub | None = None

    # -- start-up ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load markets, check every instrument and price source, reconcile the journal.

        Raises :class:`ConfigError` when an instrument or a price source is missing.
        A reconciliation failure does not raise: the engine keeps trying every cycle
        and trades only once it succeeds.
        """
        await self.roller.resolve()  # dated groups: their contract now and the next one
        wanted: dict[str, set[str]] = {name: set() for name in self.venues}
        for hedge in self.settings.hedges:
            wanted[hedge.hedge_account].update(self.roller.symbols(hedge.name, hedge.instrument))
            for asset in hedge.assets:
                if asset not in STABLECOINS:
                    wanted[hedge.price_account or hedge.hedge_account].add(f"{asset}/{hedge.quote}")
        loaded = await asyncio.gather(
            *(self.venues[name].load_markets(sorted(symbols)) for name, symbols in wanted.items())
        )
        self.markets = dict(zip(wanted, loaded, strict=True))
        self._check_markets()
        if not self.read_only:
            await self._prepare_venues()
        self.reader = SnapshotReader(
            self.venues, self._needs(), self.settings.instance, self.settings.execution,
            clock=self.clock, log=self.log, retry_budget=max(1.0, self.settings.poll_interval / 2),
            events=self.events,
        )  # fmt: skip
        self.executor.load(self.markets)
        await self.betas.refresh()  # estimated betas before the first decision
        if self.settings.streams.enabled:
            tolerances = [
                ([(g.hedge_account, g.instrument), *self.price_sources[g.name].values()],
                 g.tolerance)
                for g in self.groups
            ]  # fmt: skip
            self.streams = build_hub(self.settings.streams, self.venues, self.reader.needs,
                                     tolerances, self.hedge_now, log=self.log,
                                     events=self.events)  # fmt: skip
        if not self.read_only:
            await self._reconcile()

    def _check_markets(self) -> None:
        problems: list[str] = []
        instruments = {group.name: group.instrument for group in self.groups}
        for index, hedge in enumerate(self.settings.hedges):
            instrument = instruments[hedge.name]  # a dated alias resolved by the roller
            market = self.markets[hedge.hedge_account].get(instrument)
            if market is None:
                problems.append(
                    f"hedges.{index}.instrument: {instrument!r} is not listed by "
                    f"account {hedge.hedge_account!r}"
                )
            sources: dict[str, tuple[str, str]] = {}
            price_account = hedge.price_account or hedge.hedge_account
            for asset in hedge.assets:
                if asset in STABLECOINS:
                    continue
                symbol = f"{asset}/{hedge.quote}"
                if symbol in self.markets[price_account]:
                    sources[asset] = (price_account, symbol)
                elif market is not None and market.base == asset:
                    sources[asset] = (hedge.hedge_account, instrument)
                else:
                    problems.append(
                        f"hedges.{index}.assets.{asset}: no market {symbol!r} on account "
                        f"{price_account!r} to price it (set price_account or quote)"
                    )
            self.price_sources[hedge.name] = sources
        if problems:
            raise ConfigError("\n".join(problems))

    async def _prepare_venues(self) -> None:
        """Key hygiene (live) and leverage / margin mode (testnet, live), before trading.

        In dry-run nothing is written to an exchange, so neither runs there.
        """
        mode = self.settings.mode
        if mode is Mode.DRY_RUN:
            return
        hedge_accounts = {h.hedge_account for h in self.settings.hedges}
        for name in sorted(hedge_accounts):
            venue, account = self.venues[name], self.settings.accounts[name]
            check = getattr(venue, "fetch_key_permissions", None)
            if check is None:
                continue
            permissions = await check()
            if permissions is None:
                self.log.warning("keys.permissions_unknown", account=name)
            elif permissions.can_withdraw:
                if mode is Mode.LIVE and not account.allow_withdraw_permission:
                    raise ConfigError(
                        f"accounts.{name}: this API key can withdraw funds; create a key "
                        "without withdrawal permission, or set allow_withdraw_permission = true"
                    )
                self.log.warning("keys.can_withdraw", account=name)
        for hedge in self.settings.hedges:
            setup = getattr(self.venues[hedge.hedge_account], "setup_instrument", None)
            asks_mode = self.settings.accounts[hedge.hedge_account].position_mode is not None
            if setup is None or (hedge.leverage is None and hedge.margin_mode is None
                                 and not asks_mode):  # fmt: skip
                continue
            for symbol in sorted(self.roller.symbols(hedge.name, hedge.instrument)):
                await setup(symbol, hedge.leverage, hedge.margin_mode)
                self.log.info("instrument.prepared", group=hedge.name, symbol=symbol,
                              leverage=hedge.leverage, margin_mode=hedge.margin_mode)  # fmt: skip

    def _needs(self) -> dict[str, AccountNeeds]:
        balances: set[str] = set()
        positions: dict[str, set[str]] = {name: set() for name in self.venues}
        quotes: dict[str, set[str]] = {name: set() for name in self.venues}
        for group in self.groups:
            balances.update(group.spot_accounts)
            contracts = self.roller.symbols(group.name, group.instrument)
            positions[group.hedge_account].update(contracts)
            quotes[group.hedge_account].update(contracts)
            for account, symbol in self.price_sources[group.name].values():
                quotes[account].add(symbol)
        return {
            name: AccountNeeds(
                name in balances, tuple(sorted(positions[name])), tuple(sorted(quotes[name]))
            )
            for name in self.venues
        }

    def refresh_needs(self) -> None:
        """Read what the groups need from now on (after a roll changed a contract)."""
        if self.reader is not None:
            self.reader.needs = self._needs()

    async def _reconcile(self) -> bool:
        """Start-up reconciliation; True once it has completed."""
        if self.reconciled:
            return True
        try:
            outcome = await self.executor.reconcile_startup(self.log)
            await self._compare_positions()
        except VenueError as error:
            self.log.error("reconcile.failed", error=str(error), trading="no")
            self.events.publish("alert", kind="reconcile_failed", reason=str(error))
            return False
        self.reconciled = True
        self.log.info("reconcile.completed", **outcome)
        return True

    async def _compare_positions(self) -> None:
        seen = self.journal.positions_seen()
        reader_needs = self.reader.needs if self.reader else {}
        needs = {a: n.position_symbols for a, n in reader_needs.items() if n.position_symbols}
        # Every account at once: start-up must not grow with the number of accounts.
        read = await asyncio.gather(*(self.venues[a].fetch_positions(s) for a, s in needs.items()))
        for account, positions in zip(needs, read, strict=True):
            for symbol, position in positions.items():
                before = seen.get((account, symbol))
                if before is not None and before != position.contracts:
                    # The venue is the truth; the journal only remembers what we last saw.
                    self.log.warning(
                        "reconcile.position_changed", account=account, symbol=symbol,
                        journal=str(before), venue=str(position.contracts),
                    )  # fmt: skip

    # -- cycles ----------------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Read everything the groups need (see :mod:`hedgekeeper.snapshot`)."""
        assert self.reader is not None, "start() first"
        return await self.reader.read()

    async def run_cycle(self, *, trade: bool = True) -> CycleReport:
        """One full cycle; with ``trade=False`` nothing is sent or journaled (``plan``)."""
        started = time.perf_counter()
        if trade and self.read_only:
            raise RuntimeError("a read-only engine cannot trade")
        cycle = self.journal.begin_cycle() if trade else None
        log = self.log.bind(cycle=cycle) if cycle is not None else self.log
        report = CycleReport(cycle)
        can_trade = trade and await self._reconcile()
        snap = await self.snapshot()
        if snap.auth_errors and trade:
            await self._halt_for(
                "auth", "; ".join(f"{k}: {v}" for k, v in snap.auth_errors.items())
            )
        in_flux: set[str] = set()
        self.executor.held.clear()
        halted = self.executor.trading_state is TradingState.HALTED
        foreign = (self.executor.check_foreign(snap.open_orders, log)
                   if can_trade and not halted else None)  # fmt: skip
        if foreign is not None:  # two writers on one account under one instance: stop
            await self._halt_for("foreign_orders", foreign)
        if can_trade:
            in_flux = await self.executor.reconcile(snap.open_orders, log)
            in_flux |= await self.executor.manage_working(snap.quotes, log)
        holds = self._position_holds(snap, log) if trade else {}
        holds.update(self.executor.held)
        for group in list(self.groups):  # a roll may replace a group's contract
            try:
                decision = await self._group_cycle(group, snap, in_flux, holds, can_trade,
                                                   trade, cycle, log)  # fmt: skip
            except IllegalTransition as error:
                # Contained: this group is held, every other group trades on.
                log.error("group.held", group=group.name, error=str(error))
                self.events.publish("alert", kind="order_state", group=group.name,
                                    reason=str(error))  # fmt: skip
                decision = GroupDecision(group.name, "skipped", f"held: {error}")
            report.decisions.append(decision)
        report.duration_ms = (time.perf_counter() - started) * 1000
        report.ok = not snap.errors and can_trade == trade
        if trade and cycle is not None:
            self._finish(report, snap, log)
        if report.ok:
            self.last_success_at = self.clock()
        self.last_report = report
        return report

    async def _group_cycle(self, group: GroupSpec, snap: Snapshot, in_flux: set[str],
                           holds: dict[str, str], can_trade: bool, trade: bool,
                           cycle: int | None, log: Any) -> GroupDecision:  # fmt: skip
        decision = await self.realizer.step(group, snap, can_trade, cycle, log)
        if decision is None:
            decision = await self.roller.step(group, snap, can_trade, cycle, log)
        if decision is None:  # neither realizing nor rolling: hedge as usual
            decision = self.decider.decide(group, snap, in_flux, holds)
        self.roller.annotate(decision, group, snap)
        if decision.action == "order" and not can_trade:
            decision.action = "planned" if not trade else "blocked"
            if trade:
                decision.reason = "start-up reconciliation has not completed"
        if decision.action == "cancel" and decision.cancel and can_trade:
            for order in decision.cancel:
                await self.executor.cancel(order, log, "turning around")
        if decision.action == "order" and decision.plan and decision.plan.intent:
            quote = (snap.quotes.get(group.hedge_account) or {}).get(group.instrument)
            try:
                decision.orders = await self.executor.execute(
                    decision.plan.intent, group, quote, cycle, log
                )
            except HaltRequired as error:
                await self._halt_for("order", str(error))
        self._after_decision(decision, log, cycle, trade)
        if trade:
            await self._maybe_topup(decision, group, log)
        return decision

    def _position_holds(self, snap: Snapshot, log: Any) -> dict[str, str]:
        """Groups whose position read lags a fill we already know of (see ``expected``)."""
        holds: dict[str, str] = {}
        expected = self.executor.expected
        seen: dict[tuple[str, str], Any] = {}
        for group in self.groups:
            key = (group.hedge_account, group.instrument)
            positions = snap.positions.get(group.hedge_account)
            if positions is None or group.instrument not in positions:
                continue
            if key not in seen:
                seen[key] = verdict = expected.on_read(
                    *key, positions[group.instrument].contracts,
                    snap.started_at or snap.taken_at, self.clock(),
                )  # fmt: skip
                if verdict.hold:
                    log.warning("position.lagging", account=key[0], symbol=key[1],
                                read=str(positions[group.instrument].contracts),
                                expected=str(verdict.expected), reason=verdict.reason)  # fmt: skip
                elif verdict.adopted:
                    log.warning("position.adopted", account=key[0], symbol=key[1],
                                read=str(positions[group.instrument].contracts),
                                expected=str(verdict.expected))  # fmt: skip
            if seen[key].hold:
                holds[group.name] = seen[key].reason
        return holds

    def _after_decision(self, decision: GroupDecision, log: Any, cycle: int | None,
                        trade: bool) -> None:  # fmt: skip
        data = decision.as_dict()
        data.pop("name")
        if decision.liquidation_distance is not None:
            data["liquidation_distance"] = f"{decision.liquidation_distance:.4f}"
        level = log.warning if decision.action in ("skipped", "blocked") else log.info
        if decision.action == "hold" and self._last_actions.get(decision.group) == "hold":
            # One info line per group per cycle was half the per-group cost of a quiet
            # cycle; an unchanged hold stays in the journal and on the event bus.
            level = log.debug
        self._last_actions[decision.group] = decision.action
        level("plan.decided", group=decision.group, **data)
        if not trade:
            return
        self.events.publish("plan.decided", cycle=cycle, group=decision.group, **data)
        if decision.action == "blocked" and decision.rule is not None:
            self.events.publish("guard.fired", group=decision.group, rule=decision.rule,
                                reason=decision.reason)  # fmt: skip
        hedge = self.settings.hedge(decision.group)
        distance = decision.liquidation_distance
        if distance is not None and distance < hedge.min_liquidation_distance:
            reason = (f"{decision.group}: liquidation {distance:.1%} away < "
                      f"{hedge.min_liquidation_distance:.1%}")  # fmt: skip
            log.error("margin.liquidation_near", group=decision.group, distance=f"{distance:.4f}")
            self.events.publish("alert", kind="margin", group=decision.group, reason=reason)
            if self.executor.trading_state is TradingState.ACTIVE:
                self._set_state(TradingState.REDUCING, "margin guard", reason)

    async def _maybe_topup(self, decision: GroupDecision, group: GroupSpec, log: Any) -> None:
        """Move spot stablecoins into futures collateral when margin runs short.

        Only when the hedge sets ``topup_max_usd``, within that much per 24 h, in
        ``testnet``/``live`` (dry-run never writes), and where the venue can transfer.
        """
        hedge = self.settings.hedge(group.name)
        need = max(decision.collateral_shortfall_usd or Decimal(0),
                   decision.liquidation_shortfall_usd or Decimal(0))  # fmt: skip
        if hedge.topup_max_usd <= 0 or need <= 0:
            return
        venue = self.venues[group.hedge_account]
        transfer = getattr(venue, "transfer", None)
        if self.settings.mode is Mode.DRY_RUN or transfer is None:
            log.warning("margin.topup_skipped", group=group.name, need_usd=f"{need:.2f}",
                        reason="dry-run" if transfer else "the venue cannot transfer")  # fmt: skip
            return
        left = hedge.topup_max_usd - self.journal.topups_since(group.name, self.clock() - 86400)
        amount = min(need, left).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
        if amount <= 0:
            log.error("margin.topup_exhausted", group=group.name, need_usd=f"{need:.2f}",
                      max_usd=str(hedge.topup_max_usd))  # fmt: skip
            reason = f"top-up allowance of {hedge.topup_max_usd} USD per 24 h used up"
            self.events.publish("alert", kind="margin", group=group.name, reason=reason)
            return
        detail = {"asset": hedge.topup_asset, "amount": str(amount), "need": f"{need:.2f}"}
        # Write-ahead, like an order: charged to the allowance before it is sent, so a
        # lost reply can never move more than topup_max_usd in 24 h.
        self.journal.record_action("topup", group.name, json.dumps(detail))
        try:
            await transfer(hedge.topup_asset, amount, "spot", "swap")
        except (WriteRefused, OrderRejectedError, AuthError, VenueConfigError) as error:
            # Definitely not moved: give the allowance back.
            refund = {**detail, "amount": str(-amount), "refund": True}
            self.journal.record_action("topup", group.name, json.dumps(refund))
            log.error("margin.topup_failed", group=group.name, amount=str(amount), error=str(error))
            return
        except VenueError as error:
            # Unknown outcome: it may have moved. It stays charged (the safe side).
            log.error("margin.topup_unknown", group=group.name, amount=str(amount),
                      error=str(error), charged="yes")  # fmt: skip
            self.events.publish("alert", kind="margin", group=group.name,
                                reason=f"top-up of {amount} {hedge.topup_asset}: outcome unknown")
            return
        log.warning("margin.topped_up", group=group.name, **detail)
        self.events.publish("margin.topped_up", group=group.name, **detail)

    def _finish(self, report: CycleReport, snap: Snapshot, log: Any) -> None:
        assert report.cycle is not None
        counts: dict[str, int] = {}
        for decision in report.decisions:
            counts[decision.action] = counts.get(decision.action, 0) + 1
        summary = {
            "groups": len(report.decisions),
            "orders": counts.get("order", 0),
            "holds": counts.get("hold", 0),
            "skipped": counts.get("skipped", 0),
            "blocked": counts.get("blocked", 0),
            "read_errors": len(snap.errors),
            "duration_ms": round(report.duration_ms, 2),
        }
        positions = [
            (account, symbol, position.contracts)
            for account, by_symbol in snap.positions.items() if by_symbol
            for symbol, position in by_symbol.items()
        ]  # fmt: skip
        self.journal.finish_cycle(
            report.cycle,
            "ok" if report.ok else "partial",
            summary,
            [(d.group, d.action, d.reason, d.as_dict()) for d in report.decisions],
            positions,
        )
        log.info("cycle.completed", **summary)
        self.events.publish("cycle.completed", cycle=report.cycle, ok=report.ok, **summary)
        self.cycles_run += 1
        self._finish_flatten(report, log)

    # -- trading state and operator commands ------------------------------------------------

    @property
    def flattening(self) -> bool:
        """True while a flatten is closing every hedge (survives restarts)."""
        return self.journal.flag("flatten")

    def _set_state(self, state: TradingState, source: str, reason: str) -> None:
        previous = self.executor.trading_state
        self.journal.set_trading_state(state, source, reason)
        fields = dict(previous=previous.value, state=state.value, source=source, reason=reason)
        self.log.warning("state.changed", **fields)
        self.events.publish("state.changed", **fields)

    async def _halt_for(self, source: str, reason: str) -> None:
        if self.executor.trading_state is TradingState.HALTED:
            return
        self.log.error("daemon.halting", source=source, reason=reason)
        self.events.publish("alert", kind="halted", source=source, reason=reason)
        await self.halt(source, reason)

    async def halt(self, source: str, reason: str = "operator halt") -> dict[str, Any]:
        """Stop trading: move to ``HALTED`` and cancel our working orders."""
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
        # State first, then the cancels: a sliced execution under way meets REDUCING at
        # the gate on its very next child, not after these cancels come back.
        self.journal.set_flag("flatten", True)
        self._set_state(TradingState.REDUCING, source, reason)
        cancelled = await self.executor.cancel_working(self.log)
        self.journal.record_action("flatten", source, f"{reason}; cancelled {cancelled}")
        self.hedge_now()
        return {"state": TradingState.REDUCING.value, "flattening": True, "cancelled": cancelled}

    def hedge_now(self) -> None:
        """Run the next cycle at once instead of waiting for the timer."""
        self._wake.set()

    def _finish_flatten(self, report: CycleReport, log: Any) -> None:
        if not self.flattening:
            return
        done = all(
            d.plan is not None and d.plan.hedge_contracts <= 0 and d.plan.pending_contracts == 0
            and not d.orders
            for d in report.decisions
        )  # fmt: skip
        if done:
            self.journal.set_flag("flatten", False)
            self._set_state(TradingState.HALTED, "flatten", "every hedge closed")
            log.warning("flatten.completed")

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every ``poll_interval`` until ``stop`` is set.

        One failed cycle never ends the loop: it is logged and the next one runs.
        """
        interval = self.settings.poll_interval
        loop = asyncio.get_running_loop()
        if self.streams is not None:
            await self.streams.start()
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
                self.events.publish("alert", kind="cycle_failed", reason=repr(task.exception()))
            if self.reconciled and not stop.is_set():
                # In the background, between cycles: never before the first decision, whose
                # reads it would otherwise delay (cost 30 on Binance, in the same bucket).
                self.funding.poll()
                self.betas.poll()
                self.retention.poll()
            if self.streams is not None:  # streams up: REST only every reconcile_interval
                interval = self.streams.interval(self.settings.poll_interval)
            remaining = interval - (loop.time() - began)
            if remaining > 0 and not stop.is_set() and not self._wake.is_set():
                waker = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waker, stopper}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                waker.cancel()
                stopper.cancel()
            self._wake.clear()

    async def shutdown(self) -> None:
        """On SIGTERM: cancel working orders (unless configured not to), or flatten."""
        execution = self.settings.execution
        await self.funding.wait()
        await self.betas.wait()
        await self.retention.wait()
        try:
            if execution.flatten_on_exit:
                await self.flatten("shutdown", "flatten_on_exit")
                for _ in range(3):  # bounded: a flatten that cannot finish must not hang exit
                    await self.run_cycle()
                    if not self.flattening:
                        break
            elif execution.cancel_on_exit:
                cancelled = await self.executor.cancel_working(self.log)
                if cancelled:
                    self.log.info("daemon.orders_cancelled_on_exit", cancelled=cancelled)
        except Exception as error:  # never let a failing venue keep the daemon from exiting
            self.log.error("daemon.shutdown_incomplete", error=repr(error))

    async def close(self) -> None:
        """Close every venue (and stop the streams first)."""
        if self.streams is not None:
            await self.streams.stop()
        await asyncio.gather(*(v.close() for v in self.venues.values()), return_exceptions=True)
