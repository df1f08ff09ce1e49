"""Execute: journal, send and track orders. Never an order that is not journaled first.

Every intent becomes a journal row (status ``NEW``, with a deterministic client
order id) *before* anything is sent. Each request then has one of three
outcomes:

* confirmed — the venue returned the order: its status and fills are recorded;
* rejected — the venue definitively refused it: ``REJECTED``;
* unknown — timeout, disconnect, 5xx: ``UNKNOWN``. The order still counts as
  pending hedge, and the next cycle looks it up by client id. It is never sent
  again blind.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from hedgekeeper.events import EventBus
from hedgekeeper.exceptions import OrderRejectedError, UnknownOutcomeError, VenueError
from hedgekeeper.journal import Journal, JournaledOrder
from hedgekeeper.model import (
    GroupSpec,
    MarketSpec,
    OrderInfo,
    OrderIntent,
    OrderStatus,
    OrderType,
    TradingState,
)
from hedgekeeper.settings import Settings, client_id_code
from hedgekeeper.venues.base import Venue

__all__ = ["Executor"]

_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED)


class Executor:
    """Places and tracks orders for the engine."""

    def __init__(
        self, settings: Settings, venues: dict[str, Venue], journal: Journal, events: EventBus
    ) -> None:
        self.settings = settings
        self.venues = venues
        self.journal = journal
        self.events = events
        self.markets: dict[str, dict[str, MarketSpec]] = {}
        self._unresolved: dict[str, JournaledOrder] = {}

    @property
    def trading_state(self) -> TradingState:
        """The persisted trading state."""
        return self.journal.trading_state()

    async def start(self, markets: dict[str, dict[str, MarketSpec]]) -> None:
        """Remember markets and load the journal's unresolved orders."""
        self.markets = markets
        self._unresolved = {o.request.client_order_id: o for o in self.journal.unresolved_orders()}

    def unresolved(self, group: str) -> list[JournaledOrder]:
        """Orders of ``group`` whose outcome is not final (they count as pending)."""
        return [o for o in self._unresolved.values() if o.group == group]

    def _apply(self, order: JournaledOrder, info: OrderInfo, log: Any) -> None:
        """Record what the venue says about an order: status, new fills."""
        new_fill = info.filled - order.filled
        # Fees are reported per order; attribute them to the fill that completes it.
        fee = info.fee_usd if info.filled == new_fill else Decimal(0)
        self.journal.update_order(
            order.request.client_order_id,
            info.status,
            filled=info.filled,
            average_price=info.average_price,
            exchange_order_id=info.exchange_order_id,
            fill=(order, new_fill, info.average_price, fee) if new_fill > 0 else None,
        )
        if new_fill > 0:
            fields = dict(
                group=order.group,
                client_order_id=order.request.client_order_id,
                symbol=order.request.symbol,
                side=order.request.side.value,
                contracts=str(new_fill),
                price=None if info.average_price is None else str(info.average_price),
                fee_usd=str(info.fee_usd),
            )
            log.info("order.filled", **fields)
            self.events.publish("order.filled", **fields)
        if info.status in _FINAL:
            self._unresolved.pop(order.request.client_order_id, None)
        else:
            self._unresolved[order.request.client_order_id] = replace(
                order, status=info.status, filled=info.filled
            )

    async def resolve_unresolved(self, log: Any) -> None:
        """Look up every order whose outcome is not final, by its client id."""
        for order in list(self._unresolved.values()):
            venue = self.venues[order.account]
            try:
                info = await venue.fetch_order(order.request.symbol, order.request.client_order_id)
            except VenueError as error:
                log.warning(
                    "order.lookup_failed",
                    group=order.group,
                    client_order_id=order.request.client_order_id,
                    error=str(error),
                )
                continue
            if info is None:
                # The venue never saw it: it was journaled but not (yet) received.
                self.journal.update_order(order.request.client_order_id, OrderStatus.REJECTED)
                self._unresolved.pop(order.request.client_order_id, None)
                log.warning(
                    "order.not_found",
                    group=order.group,
                    client_order_id=order.request.client_order_id,
                    previous_status=order.status.value,
                )
                continue
            self._apply(order, info, log)

    async def execute(
        self, intent: OrderIntent, group: GroupSpec, cycle: int | None, log: Any
    ) -> OrderInfo | None:
        """Journal the intent as an order, send it, and record the outcome."""
        request = self.journal.new_order(
            instance=self.settings.instance,
            group_code=client_id_code(group.name),
            group=group.name,
            account=group.hedge_account,
            symbol=intent.symbol,
            side=intent.side,
            amount=intent.contracts,
            order_type=OrderType.MARKET,
            price=None,
            reduce_only=intent.reduce_only,
            post_only=False,
            reason=intent.reason,
            cycle=cycle,
        )
        cid = request.client_order_id
        # NEW in the journal means "may have been sent": from here on, only a look-up
        # by client id can tell what happened to it.
        order = JournaledOrder(
            request, 0, group.name, group.hedge_account, OrderStatus.NEW, Decimal(0), None, None,
            intent.reason, cycle,
        )  # fmt: skip
        self._unresolved[cid] = order
        fields = dict(
            group=group.name,
            client_order_id=cid,
            symbol=intent.symbol,
            side=intent.side.value,
            contracts=str(intent.contracts),
            reduce_only=intent.reduce_only,
            reason=intent.reason,
        )
        log.info("order.submitted", **fields)
        self.events.publish("order.submitted", **fields)
        venue = self.venues[group.hedge_account]
        try:
            info = await venue.submit_order(request)
        except OrderRejectedError as error:
            self.journal.update_order(cid, OrderStatus.REJECTED)
            self._unresolved.pop(cid, None)
            log.warning("order.rejected", group=group.name, client_order_id=cid, error=str(error))
            self.events.publish(
                "order.rejected", group=group.name, client_order_id=cid, error=str(error)
            )
            return None
        except (UnknownOutcomeError, VenueError) as error:
            self.journal.update_order(cid, OrderStatus.UNKNOWN)
            self._unresolved[cid] = replace(order, status=OrderStatus.UNKNOWN)
            log.warning(
                "order.outcome_unknown", group=group.name, client_order_id=cid, error=str(error)
            )
            self.events.publish(
                "order.outcome_unknown", group=group.name, client_order_id=cid, error=str(error)
            )
            return None
        self._apply(order, info, log)
        return info

    async def cancel_working(self, log: Any) -> int:
        """Cancel every order of ours that may be working; returns how many were asked.

        Orders whose outcome is unknown are looked up first: they may be working.
        """
        await self.resolve_unresolved(log)
        asked = 0
        for order in list(self._unresolved.values()):
            venue = self.venues[order.account]
            asked += 1
            try:
                info = await venue.cancel_order(order.request.symbol, order.request.client_order_id)
            except VenueError as error:
                log.warning(
                    "order.cancel_failed",
                    group=order.group,
                    client_order_id=order.request.client_order_id,
                    error=str(error),
                )
                continue
            if info is None:
                continue  # resolved as not found at the next look-up
            self._apply(order, info, log)
            log.info(
                "order.cancelled",
                group=order.group,
                client_order_id=order.request.client_order_id,
                status=info.status.value,
            )
        return asked
