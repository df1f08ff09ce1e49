"""Execute: journal, send and track orders. Never an order that is not journaled first.

Every order is written to the journal (``NEW``, with a deterministic client
order id) *before* it is sent. Each request then has one of three outcomes:

* confirmed — the venue returned the order: its status and fills are recorded;
* rejected — the venue definitively refused it: ``REJECTED``;
* unknown — timeout, disconnect, 5xx: ``UNKNOWN``. It still counts as pending
  hedge, and is looked up by client id on the following cycles — a bounded
  number of times — and never sent again blind.

Every status change goes through :func:`hedgekeeper.orders.check_transition`.

Styles: ``market`` sends a marketable limit IOC capped at ``slippage_cap_bps``
past the best price; ``maker`` rests a post-only order at the best price,
cancels it for a fresh one after ``reprice_after`` seconds off the best price,
and falls back to ``market`` after ``deadline``. A delta worth more than
``max_order_usd`` is sliced into child orders that each stay under it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hedgekeeper.events import EventBus
from hedgekeeper.exceptions import (
    AuthError,
    OrderRejectedError,
    UnknownOutcomeError,
    VenueConfigError,
    VenueError,
)
from hedgekeeper.expected import ExpectedPositions
from hedgekeeper.gate import GatedVenue, ReadOnlyVenue, WriteRefused
from hedgekeeper.journal import Journal, JournaledOrder
from hedgekeeper.model import (
    GroupSpec,
    MarketSpec,
    OrderInfo,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TradingState,
)
from hedgekeeper.orders import TERMINAL, IllegalTransition, check_transition
from hedgekeeper.settings import (
    ID_TAIL,
    HedgeSettings,
    Settings,
    client_id_code,
    group_code_of,
)
from hedgekeeper.sizing import round_to_step
from hedgekeeper.venues.base import Venue

__all__ = ["Executor", "HaltRequired"]

_BPS = Decimal("0.0001")


class HaltRequired(Exception):
    """Trading must stop: credentials or permissions failed on a write."""


class Executor:
    """Places and tracks orders for the engine."""

    def __init__(
        self,
        settings: Settings,
        venues: dict[str, Venue],
        journal: Journal,
        events: EventBus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        unguarded = sorted(n for n, v in venues.items()
                           if not isinstance(v, GatedVenue | ReadOnlyVenue))  # fmt: skip
        if unguarded:
            # Structural: the executor writes only through the gate (or cannot write).
            raise TypeError(f"venues {unguarded} are not behind the write gate")
        self.venues = venues
        self.journal = journal
        self.events = events
        self.clock = clock
        self.markets: dict[str, dict[str, MarketSpec]] = {}
        self._unresolved: dict[str, JournaledOrder] = {}
        self._misses: dict[str, int] = {}  # client id -> not-found look-ups so far
        self._maker_since: dict[str, float] = {}  # group -> when its maker attempt began
        self._group_of_code = {client_id_code(h.name): h.name for h in settings.hedges}
        #: the position each (account, symbol) should show: last read + fills since
        self.expected = ExpectedPositions(settings.execution.position_settle_seconds)
        #: groups held for this cycle (an order in a state we cannot account for)
        self.held: dict[str, str] = {}
        #: when each order of this run was sent (engine clock), for the expected position
        self._sent_at: dict[str, float] = {}
        self._epoch: str | None = None

    @property
    def trading_state(self) -> TradingState:
        """The persisted trading state."""
        return self.journal.trading_state()

    def load(self, markets: dict[str, dict[str, MarketSpec]]) -> None:
        """Remember markets and load the journal's unresolved orders."""
        self.markets = markets
        self._unresolved = {o.request.client_order_id: o for o in self.journal.unresolved_orders()}

    def unresolved(self, group: str) -> list[JournaledOrder]:
        """Orders of ``group`` whose outcome is not final (they count as pending)."""
        return [o for o in self._unresolved.values() if o.group == group]

    # -- recording -----------------------------------------------------------------------

    def _apply(self, order: JournaledOrder, info: OrderInfo, log: Any) -> JournaledOrder:
        """Record what the venue says about an order: status, new fills.

        An answer the order's life does not allow is *contained*: the order stays as
        it was, its group is held for the cycle (logged with both states and the raw
        status), and every other group trades on. Two readings of real venues are
        normalised first: a terminal "filled" (ccxt's ``closed``) with only part of the
        amount filled ended with that partial fill (Bybit ``PartiallyFilledCanceled``);
        an order that was OPEN and is now reported rejected or expired was accepted
        once, so it ended cancelled.
        """
        cid = order.request.client_order_id
        # Always from the latest record: a caller may hold a copy taken before an await
        # (a halt's cancel racing the create's reply), and a fill counted from a stale
        # copy would be booked twice.
        latest = self._unresolved.get(cid) or self.journal.order(cid)
        if latest is not None:
            order = latest
        raw_status = info.status
        if info.status is OrderStatus.FILLED and info.filled < order.request.amount:
            info = replace(info, status=OrderStatus.CANCELED)
        elif info.status is OrderStatus.REJECTED and order.status is OrderStatus.OPEN:
            info = replace(info, status=OrderStatus.CANCELED)
        try:
            check_transition(
                cid, order.status, info.status, amount=order.request.amount,
                filled_before=order.filled, filled_after=info.filled,
            )  # fmt: skip
        except IllegalTransition as error:
            self.held[order.group] = f"order {cid}: {error} (raw status {raw_status.value})"
            log.error("order.illegal_transition", group=order.group, client_order_id=cid,
                      journal_status=order.status.value, venue_status=info.status.value,
                      raw_status=raw_status.value, filled_before=str(order.filled),
                      filled_after=str(info.filled), error=str(error))  # fmt: skip
            self.events.publish("alert", kind="order_state", group=order.group,
                                reason=str(error))  # fmt: skip
            return order
        new_fill = info.filled - order.filled
        # Fees are reported per order; attribute them to the fill that completes it.
        fee = info.fee_usd if info.filled == new_fill else Decimal(0)
        self.journal.update_order(
            cid,
            info.status,
            filled=info.filled,
            average_price=info.average_price,
            exchange_order_id=info.exchange_order_id,
            fill=(order, new_fill, info.average_price, fee) if new_fill > 0 else None,
        )
        if new_fill > 0:
            signed = new_fill if order.request.side is Side.BUY else -new_fill
            self.expected.on_fill(order.account, order.request.symbol, signed, self.clock(),
                                  self._sent_at.get(cid, float("-inf")))
            fields = dict(
                group=order.group, client_order_id=cid, symbol=order.request.symbol,
                side=order.request.side.value, contracts=str(new_fill),
                price=None if info.average_price is None else str(info.average_price),
                fee_usd=str(info.fee_usd),
            )  # fmt: skip
            log.info("order.filled", **fields)
            self.events.publish("order.filled", **fields)
        updated = replace(order, status=info.status, filled=info.filled)
        if info.status in TERMINAL:
            self._unresolved.pop(cid, None)
            self._misses.pop(cid, None)
            self._sent_at.pop(cid, None)
            if info.status is not OrderStatus.FILLED:
                log.info("order.closed", group=order.group, client_order_id=cid,
                         status=info.status.value, filled=str(info.filled))  # fmt: skip
        else:
            self._unresolved[cid] = updated
        return updated

    def _mark(self, order: JournaledOrder, status: OrderStatus) -> JournaledOrder:
        check_transition(
            order.request.client_order_id, order.status, status, amount=order.request.amount,
            filled_before=order.filled, filled_after=order.filled,
        )  # fmt: skip
        self.journal.update_order(order.request.client_order_id, status)
        updated = replace(order, status=status)
        if status in TERMINAL:
            self._unresolved.pop(order.request.client_order_id, None)
            self._sent_at.pop(order.request.client_order_id, None)
        else:
            self._unresolved[order.request.client_order_id] = updated
        return updated

    # -- resolving what we do not know ------------------------------------------------------

    async def _look_up(self, order: JournaledOrder, log: Any) -> bool:
        """Resolve one order by client id; True when its state changed or is not known.

        A failed look-up also returns True: the order may have filled unseen, so the
        group's position and its pending orders may disagree until it is resolved.
        """
        cid = order.request.client_order_id
        venue = self.venues[order.account]
        try:
            info = await venue.fetch_order(order.request.symbol, cid)
        except VenueError as error:
            log.warning("order.lookup_failed", group=order.group, client_order_id=cid,
                        error=str(error))  # fmt: skip
            return True
        if info is not None:
            before = (order.status, order.filled)
            after = self._apply(order, info, log)
            return (after.status, after.filled) != before
        misses = self._misses.get(cid, 0) + 1
        self._misses[cid] = misses
        age = self.clock() - order.created_at
        settle = self.settings.execution.unknown_settle_seconds
        if misses < self.settings.execution.lookup_attempts or age < settle:
            # Not found *yet*: a request still in flight can land until the venue's
            # receive window has passed, so it stays pending (never resent).
            log.warning("order.not_found", group=order.group, client_order_id=cid,
                        attempt=misses, of=self.settings.execution.lookup_attempts,
                        age_s=round(age, 1), settle_s=settle)  # fmt: skip
            return False
        # Bounded: after this many look-ups the venue has had ample time to show it.
        self._misses.pop(cid, None)
        if order.status is OrderStatus.OPEN or order.filled > 0:
            # It existed once (the venue acknowledged it): it is gone now, cancelled or
            # expired, with the fills we know of. Any fill we missed shows in the next
            # position read, which the expected position then adopts.
            self._mark(order, OrderStatus.CANCELED)
            log.warning("order.vanished", group=order.group, client_order_id=cid,
                        filled=str(order.filled))  # fmt: skip
            return True
        self._mark(order, OrderStatus.REJECTED)
        log.warning("order.never_placed", group=order.group, client_order_id=cid,
                    previous_status=order.status.value)  # fmt: skip
        return True

    async def reconcile(self, open_orders: dict[str, list[OrderInfo] | None], log: Any) -> set[str]:
        """Bring unresolved orders up to date; returns the groups whose orders moved.

        A working order listed by the venue is updated from that list; one that is
        not listed any more (or whose outcome is unknown) is looked up by client id.
        A group whose order was resolved by a look-up must not trade this cycle: the
        positions in the snapshot may predate that fill.
        """
        moved: set[str] = set()
        for order in list(self._unresolved.values()):
            listed = open_orders.get(order.account)
            if listed is None:
                continue  # open orders unreadable: leave it pending, the group is skipped
            seen = next(
                (o for o in listed if o.client_order_id == order.request.client_order_id), None
            )
            if seen is not None and order.status is OrderStatus.OPEN:
                if seen.filled != order.filled:
                    self._apply(order, seen, log)
                    moved.add(order.group)
                continue
            if await self._look_up(order, log):
                moved.add(order.group)
        return moved

    async def reconcile_startup(self, log: Any) -> dict[str, Any]:
        """Journal versus venue, before any order: open orders, orphans, positions.

        Raises :class:`VenueError` when a venue cannot be read: the caller must not
        trade until this completes.
        """
        instance = self.settings.instance
        adopted, cancelled = 0, 0
        empty_journal = self.journal.is_empty()
        accounts = sorted({h.hedge_account for h in self.settings.hedges})
        # One open-orders read per account, all accounts at once; it serves the orphan
        # check and the journal's unresolved orders both.
        listings = await asyncio.gather(*(
            self.venues[account].fetch_open_orders(
                sorted({h.instrument for h in self.settings.hedges if h.hedge_account == account}),
                instance,
            )
            for account in accounts
        ))  # fmt: skip
        open_by_account: dict[str, list[OrderInfo] | None] = {}
        for account, listed in zip(accounts, listings, strict=True):
            venue = self.venues[account]
            open_by_account[account] = listed
            ours = [i for i in listed if group_code_of(i.client_order_id, instance) is not None]
            # The client-id sequence never goes backwards: past every id the venue shows.
            seqs = [int(i.client_order_id[-10:]) for i in ours]
            if seqs:
                self.journal.advance_sequence(max(seqs))
            foreign = self.foreign_orders(ours)
            if foreign and not empty_journal:
                self._halt_at_start(self._foreign_reason(account, foreign),
                                    "reconcile.foreign_orders", account, foreign, log)  # fmt: skip
            if ours and empty_journal:
                # A journal with no orders while the venue holds ours: it was lost or
                # replaced. Trading on would ignore those orders: halt and say why.
                self._halt_at_start(
                    f"the journal is empty but {account} holds {len(ours)} working order(s) "
                    f"with prefix {instance!r}: journal lost or replaced?",
                    "reconcile.journal_empty_with_orders", account, ours, log,
                )  # fmt: skip
                continue  # left for the operator: nothing is cancelled or adopted
            known = {o.request.client_order_id for o in self._unresolved.values()}
            known |= {i.client_order_id for i in foreign}  # never another journal's orders
            for info in listed:
                if info.client_order_id in known:
                    continue
                code = group_code_of(info.client_order_id, instance)
                group = self._group_of_code.get(code or "")
                policy = self.settings.execution.orphan_orders
                if (
                    policy == "adopt"
                    and group is not None
                    and self.journal.adopt_order(info, group, account, "adopted at start-up")
                ):
                    adopted += 1
                    log.warning("reconcile.orphan_adopted", group=group,
                                client_order_id=info.client_order_id)  # fmt: skip
                    continue
                await venue.cancel_order(info.symbol, info.client_order_id)
                cancelled += 1
                log.warning("reconcile.orphan_cancelled", group=group,
                            client_order_id=info.client_order_id, policy=policy)  # fmt: skip
        self._unresolved = {o.request.client_order_id: o for o in self.journal.unresolved_orders()}
        await self.reconcile(open_by_account, log)
        return {"adopted": adopted, "cancelled_orphans": cancelled,
                "unresolved": len(self._unresolved)}  # fmt: skip

    def foreign_orders(self, listed: Iterable[OrderInfo]) -> list[OrderInfo]:
        """Working orders with our instance prefix issued by *another* journal.

        Client ids carry the journal's random epoch: an id with our prefix and another
        epoch was sent by another hedgekeeper with this instance on this account (two
        state directories, one account), or rests from a journal that was replaced.
        """
        if self._epoch is None:
            self._epoch = self.journal.epoch()  # made once with the journal, never changes
        instance, epoch = self.settings.instance, self._epoch
        return [
            i for i in listed
            if group_code_of(i.client_order_id, instance) is not None
            and i.client_order_id[-ID_TAIL:-10] != epoch
        ]  # fmt: skip

    def _foreign_reason(self, account: str, foreign: list[OrderInfo]) -> str:
        return (f"{account} holds {len(foreign)} working order(s) with prefix "
                f"{self.settings.instance!r} from another journal: another hedgekeeper with "
                "this instance writes to this account (or an old journal's orders rest "
                "there); give each daemon its own instance, cancel them by hand, then resume")

    def _halt_at_start(self, reason: str, event: str, account: str, orders: list[OrderInfo],
                       log: Any) -> None:  # fmt: skip
        """Start-up found what no trade may ignore: HALTED, with the reason."""
        log.error(event, account=account, orders=[i.client_order_id for i in orders])
        if self.journal.trading_state() is not TradingState.HALTED:
            self.journal.set_trading_state(TradingState.HALTED, "start-up", reason)
            self.events.publish("alert", kind="halted", source="start-up", reason=reason)

    def check_foreign(self, open_orders: dict[str, list[OrderInfo] | None],
                      log: Any) -> str | None:  # fmt: skip
        """Every cycle: the reason to halt if another journal's orders with our prefix
        appear at a venue, else ``None``."""
        for account, listed in open_orders.items():
            foreign = self.foreign_orders(listed or ())
            if foreign:
                log.error("reconcile.foreign_orders", account=account,
                          orders=[i.client_order_id for i in foreign])  # fmt: skip
                return self._foreign_reason(account, foreign)
        return None

    # -- sending ------------------------------------------------------------------------------

    def _price_for(self, side: Side, quote: Quote | None, hedge: HedgeSettings, market: MarketSpec,
                   maker: bool) -> Decimal | None:  # fmt: skip
        """Limit price: the best price (maker), or the best price plus the slippage cap."""
        if quote is None:
            return None
        best = quote.bid if side is Side.SELL else quote.ask
        if maker:
            best = quote.ask if side is Side.SELL else quote.bid  # join our own side
        if best is None:
            return None
        if maker:
            price = best
        else:
            cap = hedge.slippage_cap_bps * _BPS
            price = best * (1 - cap) if side is Side.SELL else best * (1 + cap)
        step = market.price_step
        if step:
            # Round toward the passive side: the cap is a limit, never exceeded.
            up = side is Side.SELL
            price = (price / step).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR) * step
        return price

    def slices(self, intent: OrderIntent, market: MarketSpec, price: Decimal,
               max_order_usd: Decimal | None) -> list[Decimal]:  # fmt: skip
        """Child order sizes: each worth at most ``max_order_usd``, in whole steps."""
        if max_order_usd is None:
            return [intent.contracts]
        per_child = round_to_step(max_order_usd / market.contract_value_usd(price),
                                  market.amount_step, up=False)  # fmt: skip
        if per_child <= 0:
            return []
        sizes: list[Decimal] = []
        left = intent.contracts
        while left > 0:
            size = min(per_child, left)
            sizes.append(size)
            left -= size
        return sizes

    def sent_last_minute(self, account: str) -> int:
        """Orders journaled for ``account`` in the last 60 seconds."""
        return self.journal.orders_created_since(account, self.clock() - 60)

    async def execute(
        self,
        intent: OrderIntent,
        group: GroupSpec,
        quote: Quote | None,
        cycle: int | None,
        log: Any,
    ) -> list[OrderInfo]:
        """Send ``intent`` in its group's style, sliced; record every outcome."""
        hedge = self.settings.hedge(group.name)
        market = self.markets[group.hedge_account][group.instrument]
        maker = hedge.execution == "maker"
        if maker:
            started = self._maker_since.setdefault(group.name, self.clock())
            if self.clock() - started > hedge.deadline:
                maker = False  # the deadline passed: take liquidity for what is left
                log.info(
                    "order.maker_deadline",
                    group=group.name,
                    waited_s=round(self.clock() - started, 1),
                )
        price = self._price_for(intent.side, quote, hedge, market, maker)
        reference = quote.reference if quote is not None else None
        if price is None or reference is None:
            log.warning("order.no_price", group=group.name)
            return []
        results: list[OrderInfo] = []
        sizes = self.slices(intent, market, reference, hedge.max_order_usd)
        for size in sizes:
            child = replace(intent, contracts=size)
            info = await self._send(child, group, price, maker, cycle, log)
            if info is None:
                break  # rejected or unknown: stop slicing, the next cycle sees the truth
            results.append(info)
            if info.status is not OrderStatus.FILLED and not maker:
                break  # the book is thinner than the cap allows: the rest can wait
        return results

    async def _send(self, intent: OrderIntent, group: GroupSpec, price: Decimal, maker: bool,
                    cycle: int | None, log: Any) -> OrderInfo | None:  # fmt: skip
        request = self.journal.new_order(
            instance=self.settings.instance, group_code=client_id_code(group.name),
            group=group.name, account=group.hedge_account, symbol=intent.symbol,
            side=intent.side, amount=intent.contracts, order_type=OrderType.LIMIT, price=price,
            reduce_only=intent.reduce_only, post_only=maker, reason=intent.reason, cycle=cycle,
            time_in_force=None if maker else "IOC",
        )  # fmt: skip
        return await self.submit(request, group.name, group.hedge_account, intent.reason,
                                 cycle, log)  # fmt: skip

    async def submit(self, request: OrderRequest, group_name: str, account: str, reason: str,
                     cycle: int | None, log: Any) -> OrderInfo | None:  # fmt: skip
        """Send one order that is already in the journal (``NEW``) and record its outcome.

        A multi-leg operation (:mod:`hedgekeeper.realize`) journals all its legs first,
        then sends each through here; :meth:`execute` journals and sends one at a time.
        """
        cid = request.client_order_id
        # NEW in the journal means "may have been sent": from here on, only a look-up
        # by client id can tell what happened to it.
        order = JournaledOrder(
            request, 0, group_name, account, OrderStatus.NEW, Decimal(0), None, None,
            reason, cycle, self.clock(),
        )  # fmt: skip
        self._unresolved[cid] = order
        self._sent_at[cid] = self.clock()  # a position read taken before this cannot show it
        fields = dict(
            group=group_name, client_order_id=cid, symbol=request.symbol,
            side=request.side.value, contracts=str(request.amount), price=str(request.price),
            reduce_only=request.reduce_only, style="maker" if request.post_only else "market",
            reason=reason,
        )  # fmt: skip
        log.info("order.submitted", **fields)
        self.events.publish("order.submitted", **fields)
        venue = self.venues[account]
        try:
            info = await venue.submit_order(request)
        except WriteRefused as error:
            # Refused by the gate at the moment of sending: it never left this process.
            self._mark(order, OrderStatus.REJECTED)
            log.warning("order.gate_refused", group=group_name, client_order_id=cid,
                        rule=error.rule, reason=error.reason)  # fmt: skip
            self.events.publish("order.rejected", group=group_name, client_order_id=cid,
                                error=str(error))  # fmt: skip
            return None
        except OrderRejectedError as error:
            self._mark(order, OrderStatus.REJECTED)
            log.warning("order.rejected", group=group_name, client_order_id=cid, error=str(error))
            self.events.publish("order.rejected", group=group_name, client_order_id=cid,
                                error=str(error))  # fmt: skip
            return None
        except (AuthError, VenueConfigError) as error:
            # Refused before it could exist: definitively not placed, and trading must stop.
            self._mark(order, OrderStatus.REJECTED)
            log.error("order.refused", group=group_name, client_order_id=cid, error=str(error))
            raise HaltRequired(f"{account}: {error}") from error
        except (UnknownOutcomeError, VenueError) as error:
            self._mark(order, OrderStatus.UNKNOWN)
            log.warning("order.outcome_unknown", group=group_name, client_order_id=cid,
                        error=str(error))  # fmt: skip
            self.events.publish("order.outcome_unknown", group=group_name, client_order_id=cid,
                                error=str(error))  # fmt: skip
            return None
        self._apply(order, info, log)
        return info

    # -- working orders ---------------------------------------------------------------------

    def group_settled(self, group: str) -> None:
        """The group is inside its band: a new maker attempt starts a fresh deadline."""
        self._maker_since.pop(group, None)

    async def manage_working(
        self, quotes: dict[str, dict[str, Quote] | None], log: Any
    ) -> set[str]:
        """Cancel maker orders that sat off the best price too long; returns groups touched."""
        touched: set[str] = set()
        now = self.clock()
        for order in list(self._unresolved.values()):
            if order.status is not OrderStatus.OPEN or not order.request.post_only:
                continue
            try:
                hedge = self.settings.hedge(order.group)
            except KeyError:
                continue  # a group no longer configured: its orders are left as they are
            quote = (quotes.get(order.account) or {}).get(order.request.symbol)
            best = (
                None
                if quote is None
                else (quote.ask if order.request.side is Side.SELL else quote.bid)
            )
            stale = now - order.created_at > hedge.reprice_after
            at_best = best is not None and order.request.price == best
            expired = now - self._maker_since.get(order.group, order.created_at) > hedge.deadline
            if stale and (not at_best or expired):
                if await self._cancel(order, log, "reprice" if not expired else "deadline"):
                    touched.add(order.group)
        return touched

    async def _cancel(self, order: JournaledOrder, log: Any, why: str) -> bool:
        venue = self.venues[order.account]
        cid = order.request.client_order_id
        current = self._unresolved.get(cid)
        if current is None:
            return False  # resolved meanwhile (e.g. filled while a halt was under way)
        order = current
        try:
            info = await venue.cancel_order(order.request.symbol, cid)
        except WriteRefused as error:
            log.error("order.cancel_refused", group=order.group, client_order_id=cid,
                      rule=error.rule, reason=error.reason)  # fmt: skip
            return False
        except VenueError as error:
            # The cancel may or may not have happened: the order stays pending until a
            # look-up says what became of it.
            self._mark(order, OrderStatus.UNKNOWN)
            log.warning("order.cancel_unknown", group=order.group, client_order_id=cid,
                        error=str(error))  # fmt: skip
            return True
        if info is not None:
            self._apply(order, info, log)
        else:
            await self._look_up(order, log)
        log.info("order.cancelled", group=order.group, client_order_id=cid, why=why)
        return True

    async def cancel(self, order: JournaledOrder, log: Any, why: str) -> bool:
        """Cancel one of our orders (its outcome is recorded; unknown stays pending)."""
        current = self._unresolved.get(order.request.client_order_id)
        if current is None:
            return False  # resolved meanwhile
        return await self._cancel(current, log, why)

    async def cancel_working(self, log: Any) -> int:
        """Cancel every order of ours that may be working; returns how many were asked."""
        asked = 0
        for order in list(self._unresolved.values()):
            asked += 1
            await self._cancel(order, log, "operator")
        return asked
