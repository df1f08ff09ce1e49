"""The order lifecycle as a state machine: the Executor against a scripted fake venue.

hypothesis drives the real :class:`~hedgekeeper.execution.Executor` (and through it
:func:`~hedgekeeper.orders.check_transition` and the journal) with random venue
answers — confirmed, rejected, unknown (applied, lost, or landing late), partial fills, resting
orders that the market fills later, failed and not-found look-ups, cancels that
time out — while a model engine keeps asking for the hedge that is missing, the
way the real engine plans: ``target - (position + pending)``.

Invariants, checked after every step:

* a terminal order (filled, canceled, rejected) never changes again;
* filled never decreases and never exceeds the amount, in the journal and at the venue;
* an order is never sent twice under one id, and never replaced while unresolved: the
  venue's short plus its working sells plus requests still in flight never exceed the
  target (a request may land late, inside the venue's receive window);
* pending hedge = the sum of what unresolved orders have not filled yet, and the
  executor's unresolved orders are exactly the journal's;
* the journal never contradicts the venue about a resolved order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from hedgekeeper.events import EventBus
from hedgekeeper.exceptions import OrderRejectedError, UnknownOutcomeError, VenueError
from hedgekeeper.execution import Executor
from hedgekeeper.gate import GatedVenue, WriteGate
from hedgekeeper.journal import Journal
from hedgekeeper.model import (
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    Side,
)
from hedgekeeper.orders import TERMINAL
from hedgekeeper.settings import Settings

PERP = "BTC/USDT:USDT"
ACCOUNT = "ex"
GROUP = "btc"
TARGET = Decimal(20)
S = OrderStatus
UNRESOLVED = (S.NEW, S.UNKNOWN, S.OPEN)

SUBMIT_ANSWERS = (
    "filled",  # confirmed, filled at once
    "resting",  # confirmed, working on the book
    "partial_ioc",  # confirmed, part filled, the rest expired
    "partial_resting",  # confirmed, part filled, the rest working
    "rejected",  # definitively refused: it does not exist
    "unknown_filled",  # applied and filled, but the reply was lost
    "unknown_resting",  # applied and working, but the reply was lost
    "unknown_lost",  # the request never took effect, and no reply either
    "unknown_late",  # no reply; the request is still in flight and may land later
)
#: a request older than this when it reaches the venue is refused (Binance recvWindow)
RECV_WINDOW = 10.0
CANCEL_ANSWERS = ("ok", "timeout_applied", "timeout_lost", "gone")


class NullLog:
    """A logger that drops everything (the executor logs a lot)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


@dataclass
class VenueOrder:
    """The venue's own record of an order: the truth."""

    request: OrderRequest
    status: OrderStatus
    filled: Decimal = Decimal(0)

    def info(self) -> OrderInfo:
        return OrderInfo(self.request.client_order_id, PERP, self.request.side,
                         self.request.amount, self.status, self.filled)  # fmt: skip


class Clock:
    """Time as the state machine says it passes."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeVenue:
    """A venue whose next answers are scripted by the state machine."""

    name = ACCOUNT

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.in_flight: list[tuple[float, OrderRequest]] = []  # (sent at, request)
        self.book: dict[str, VenueOrder] = {}
        self.submits: dict[str, int] = {}
        self.submit_answer = "filled"
        self.fill_fraction = Decimal("0.5")
        self.cancel_answer = "ok"
        self.lookup_fails = False

    # -- the truth -------------------------------------------------------------------
    def short(self) -> Decimal:
        return sum((o.filled if o.request.side is Side.SELL else -o.filled
                    for o in self.book.values()), Decimal(0))  # fmt: skip

    def working_sells(self) -> Decimal:
        return sum((o.request.amount - o.filled for o in self.book.values()
                    if o.status is S.OPEN and o.request.side is Side.SELL), Decimal(0))  # fmt: skip

    def part(self, amount: Decimal) -> Decimal:
        return min(amount - 1, max(Decimal(1), (amount * self.fill_fraction).to_integral_value()))

    # -- the Venue port ---------------------------------------------------------------
    async def load_markets(self, symbols: Any) -> dict[str, MarketSpec]:
        return {}

    async def fetch_balances(self) -> dict[str, Decimal]:
        return {}

    async def fetch_positions(self, symbols: Any) -> dict[str, Position]:
        return {PERP: Position(PERP, -self.short())}

    async def fetch_quotes(self, symbols: Any) -> dict[str, Quote]:
        return {}

    async def fetch_open_orders(self, symbols: Any, prefix: str) -> list[OrderInfo]:
        return [o.info() for o in self.book.values() if o.status is S.OPEN]

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        cid = request.client_order_id
        self.submits[cid] = self.submits.get(cid, 0) + 1
        answer, amount = self.submit_answer, request.amount
        if answer in ("rejected", "unknown_lost", "unknown_late"):
            if answer == "rejected":
                raise OrderRejectedError(f"{cid}: refused")
            if answer == "unknown_late":
                self.in_flight.append((self.clock(), request))
            raise UnknownOutcomeError(f"{cid}: timed out before the venue saw it")
        order = VenueOrder(request, S.OPEN)
        if answer in ("filled", "unknown_filled"):
            order.status, order.filled = S.FILLED, amount
        elif answer in ("partial_ioc", "partial_resting") and amount > 1:
            order.filled = self.part(amount)
            order.status = S.CANCELED if answer == "partial_ioc" else S.OPEN
        elif answer == "partial_ioc":
            order.status, order.filled = S.FILLED, amount
        self.book[cid] = order
        if answer.startswith("unknown"):
            raise UnknownOutcomeError(f"{cid}: applied, the reply was lost")
        return order.info()

    def land(self) -> None:
        """The oldest request in flight reaches the venue: applied (filled) if still
        inside the receive window, refused otherwise."""
        sent_at, request = self.in_flight.pop(0)
        if self.clock() - sent_at < RECV_WINDOW:
            self.book[request.client_order_id] = VenueOrder(request, S.FILLED, request.amount)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        order = self.book.get(client_order_id)
        answer = self.cancel_answer
        if answer == "timeout_lost":
            raise UnknownOutcomeError(f"{client_order_id}: cancel timed out")
        if order is None or answer == "gone":
            return None if order is None else order.info()
        if order.status is S.OPEN:
            order.status = S.CANCELED
        if answer == "timeout_applied":
            raise UnknownOutcomeError(f"{client_order_id}: cancel applied, reply lost")
        return order.info()

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        if self.lookup_fails:
            raise VenueError("look-up failed: 502")
        order = self.book.get(client_order_id)
        return None if order is None else order.info()

    async def close(self) -> None:
        return None


def make_settings(lookup_attempts: int) -> Settings:
    return Settings(
        mode="testnet",
        accounts={ACCOUNT: {"exchange": "sim", "sim": {"prices": {"BTC": 100},
                                                       "contract_sizes": {"BTC": 1}}}},
        hedges=[{"name": GROUP, "assets": {"BTC": 1}, "spot_accounts": [ACCOUNT],
                 "instrument": PERP, "hedge_account": ACCOUNT, "ratio": 0.5}],
        execution={"lookup_attempts": lookup_attempts, "max_orders_per_minute": 1000},
    )  # fmt: skip


MARKET = MarketSpec(PERP, MarketKind.LINEAR, "BTC", "USDT", "USDT", Decimal(1), Decimal(1),
                    price_step=Decimal("0.1"))  # fmt: skip
QUOTE = Quote(PERP, Decimal(100), Decimal("100.1"), Decimal(100), Decimal(100))


class OrderLifecycle(RuleBasedStateMachine):
    """The executor's orders under random venue answers; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.venue = FakeVenue(self.clock)
        self.journal = Journal(None)
        self.log = NullLog()
        self.terminal: dict[str, tuple[OrderStatus, Decimal]] = {}
        self.filled_seen: dict[str, Decimal] = {}

    @initialize(lookup_attempts=st.integers(1, 4))
    def start(self, lookup_attempts: int) -> None:
        self.settings = make_settings(lookup_attempts)
        gate = WriteGate(self.journal, 1_000_000, clock=self.clock)
        self.executor = Executor(self.settings, {ACCOUNT: GatedVenue(self.venue, gate)},  # type: ignore[arg-type]
                                 self.journal, EventBus(), clock=self.clock)  # fmt: skip
        self.executor.load({ACCOUNT: {PERP: MARKET}})
        self.group = self.settings.group_specs()[0]

    def teardown(self) -> None:
        self.journal.close()
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def pending(self) -> Decimal:
        return sum((o.request.amount - o.filled if o.request.side is Side.SELL
                    else o.filled - o.request.amount
                    for o in self.executor.unresolved(GROUP)), Decimal(0))  # fmt: skip

    # -- the engine's moves ---------------------------------------------------------------

    @rule(answer=st.sampled_from(SUBMIT_ANSWERS),
          fraction=st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal("0.9")]))  # fmt: skip
    def plan_and_send(self, answer: str, fraction: Decimal) -> None:
        """The engine sends what the plan misses: target - (position + pending)."""
        missing = TARGET - (self.venue.short() + self.pending())
        if missing <= 0:
            return
        self.venue.submit_answer, self.venue.fill_fraction = answer, fraction
        intent = OrderIntent(GROUP, PERP, Side.SELL, missing, False, "test")
        self.run(self.executor.execute(intent, self.group, QUOTE, None, self.log))

    @rule(listing_ok=st.booleans(), lookup_fails=st.booleans())
    def reconcile(self, listing_ok: bool, lookup_fails: bool) -> None:
        """A cycle's reconciliation: the open-orders listing (or a failed read), look-ups."""
        self.venue.lookup_fails = lookup_fails
        listed = self.run(self.venue.fetch_open_orders([PERP], "hk")) if listing_ok else None
        self.run(self.executor.reconcile({ACCOUNT: listed}, self.log))
        self.venue.lookup_fails = False

    @rule(seconds=st.sampled_from([0.5, 5.0, 30.0, 90.0]))
    def time_passes(self, seconds: float) -> None:
        """Time between cycles (look-ups are bounded in count and in time)."""
        self.clock.now += seconds

    @precondition(lambda self: bool(self.venue.in_flight))
    @rule()
    def request_in_flight_lands(self) -> None:
        """A request held in the network reaches the venue (or is refused: too old)."""
        self.venue.land()

    @precondition(lambda self: self.venue.working_sells() > 0)
    @rule(fraction=st.sampled_from([Decimal("0.3"), Decimal(1)]))
    def market_fills_resting(self, fraction: Decimal) -> None:
        """The market trades through a resting order (part or all of it)."""
        order = next(o for o in self.venue.book.values() if o.status is S.OPEN)
        left = order.request.amount - order.filled
        take = left if fraction == 1 else max(Decimal(1), (left * fraction).to_integral_value())
        order.filled += min(take, left)
        if order.filled == order.request.amount:
            order.status = S.FILLED

    @rule(answer=st.sampled_from(CANCEL_ANSWERS))
    def cancel_working(self, answer: str) -> None:
        """Cancel every order that may be working (reprice, halt, shutdown)."""
        self.venue.cancel_answer = answer
        self.run(self.executor.cancel_working(self.log))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def terminal_states_never_change(self) -> None:
        for order in self.journal.orders():
            cid = order.request.client_order_id
            if cid in self.terminal:
                assert (order.status, order.filled) == self.terminal[cid], cid
            elif order.status in TERMINAL:
                self.terminal[cid] = (order.status, order.filled)

    @invariant()
    def filled_is_monotonic_and_bounded(self) -> None:
        for order in self.journal.orders():
            cid = order.request.client_order_id
            assert self.filled_seen.get(cid, Decimal(0)) <= order.filled <= order.request.amount
            self.filled_seen[cid] = order.filled
        for order in self.venue.book.values():
            assert 0 <= order.filled <= order.request.amount

    @invariant()
    def never_sent_twice_nor_replaced_while_unresolved(self) -> None:
        assert all(n == 1 for n in self.venue.submits.values()), self.venue.submits
        in_flight = sum(
            (
                r.amount
                for sent_at, r in self.venue.in_flight
                if self.clock() - sent_at < RECV_WINDOW
            ),
            Decimal(0),
        )  # may still land
        assert self.venue.short() + self.venue.working_sells() + in_flight <= TARGET

    @invariant()
    def pending_is_the_unresolved_remainder(self) -> None:
        in_journal = {o.request.client_order_id: o for o in self.journal.unresolved_orders()}
        in_memory = {o.request.client_order_id: o for o in self.executor.unresolved(GROUP)}
        assert in_journal.keys() == in_memory.keys()
        for cid, order in in_memory.items():
            assert (order.status, order.filled) == (in_journal[cid].status,
                                                    in_journal[cid].filled)  # fmt: skip
        expected = sum((o.request.amount - o.filled for o in in_journal.values()), Decimal(0))
        assert self.pending() == expected

    @invariant()
    def journal_never_contradicts_the_venue(self) -> None:
        for order in self.journal.orders():
            truth = self.venue.book.get(order.request.client_order_id)
            if order.status is S.REJECTED:
                assert truth is None, f"{order.request.client_order_id} exists at the venue"
            elif order.status in TERMINAL:
                assert truth is not None and truth.status is order.status
                assert truth.filled == order.filled
            if truth is not None:
                assert order.filled <= truth.filled, "the journal never runs ahead of the venue"


OrderLifecycle.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_order_lifecycle = OrderLifecycle.TestCase
