"""Push streams as triggers: wake the engine the moment something changes.

With ``[streams] enabled``, every account whose venue can stream (ccxt.pro, see
:mod:`hedgekeeper.venues.ccxt_streams`) is watched for balance, position and
order updates and for best bid/ask prices. A balance, position or order update
wakes the engine at once; a price wakes it when it has moved ``price_move`` of
the tightest tolerance of the groups that use it since the last wake. Many
updates during one cycle make one more cycle, not many (the engine's wake-up is
a flag).

Streams are hints, never the truth: a woken cycle reads everything over REST as
always, so the write-ahead journal, reconciliation and guards are untouched and
a lost, duplicated or reordered event cannot place an order. Polling stays the
floor: while every stream is up the engine still reads every
``reconcile_interval``; whenever one is down (dropped, reconnecting) or a price
stream has been silent for ``stale_after`` it wakes a cycle and polls every
``poll_interval`` again, and a stream that comes back wakes a cycle at once, so a
change made while it was away is read then.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

from hedgekeeper.settings import StreamSettings
from hedgekeeper.snapshot import AccountNeeds

__all__ = [
    "StreamHub",
    "StreamKind",
    "StreamSource",
    "StreamState",
    "build_hub",
    "stream_source",
]

#: Seconds before the first reconnect; doubled after each failure, up to the cap.
RECONNECT_FIRST = 0.25
RECONNECT_CAP = 30.0
#: A private stream counts as up once its watch has been pending this long unbroken
#: (balance and order streams are silent while nothing changes).
SETTLE_SECONDS = 1.0


class StreamKind(enum.StrEnum):
    """What a stream carries."""

    BALANCE = "balance"
    POSITIONS = "positions"
    ORDERS = "orders"
    PRICES = "prices"


class StreamSource(Protocol):
    """What a venue offers to stream (see :class:`~.venues.ccxt_streams.CcxtStreams`)."""

    async def watch_balances(self) -> None: ...
    async def watch_positions(self, symbols: Iterable[str]) -> None: ...
    async def watch_orders(self, symbols: Iterable[str]) -> None: ...
    async def price_groups(self, symbols: Iterable[str]) -> list[list[str]]: ...
    async def watch_prices(self, symbols: list[str]) -> dict[str, Decimal]: ...


def stream_source(venue: Any) -> StreamSource | None:
    """The stream source of a venue, looking through wrappers (write gate, paper venue)."""
    for _ in range(4):  # wrappers nest a few deep at most
        source = getattr(venue, "streams", None)
        if source is not None:
            return source  # type: ignore[no-any-return]
        venue = getattr(venue, "inner", None)
        if venue is None:
            break
    return None


@dataclass(slots=True)
class StreamState:
    """The health of one stream."""

    account: str
    kind: StreamKind
    symbols: tuple[str, ...] = ()
    connected_since: float | None = None  # the running watch's start, None while down
    last_message: float | None = None
    messages: int = 0
    drops: int = 0
    wakes: int = 0
    error: str | None = None
    stale_logged: bool = False

    @property
    def name(self) -> str:
        """``account:kind`` (prices: ``account:prices:SYMBOL,...``)."""
        tail = f":{','.join(self.symbols)}" if self.kind is StreamKind.PRICES else ""
        return f"{self.account}:{self.kind.value}{tail}"


class StreamHub:
    """Runs the stream watchers of every account and wakes the engine; see the module doc."""

    def __init__(
        self,
        sources: Mapping[str, StreamSource],
        needs: Mapping[str, AccountNeeds],
        settings: StreamSettings,
        wake: Callable[[], None],
        *,
        price_moves: Mapping[tuple[str, str], Decimal] | None = None,
        log: Any = None,
        events: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = dict(sources)
        self.needs = dict(needs)
        self.settings = settings
        self.wake = wake
        #: (account, symbol) -> relative price move that wakes a cycle.
        self.price_moves = dict(price_moves or {})
        self.log = log
        self.events = events
        self.clock = clock
        self.states: list[StreamState] = []
        self._reference: dict[tuple[str, str], Decimal] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one watcher per account and kind (prices: per market type)."""
        for account, source in self.sources.items():
            needs = self.needs.get(account)
            if needs is None:
                continue
            if needs.balances:
                self._spawn(StreamState(account, StreamKind.BALANCE), source.watch_balances)
            if needs.position_symbols:
                symbols = needs.position_symbols
                self._spawn(StreamState(account, StreamKind.POSITIONS, symbols),
                            partial(source.watch_positions, symbols))  # fmt: skip
                self._spawn(StreamState(account, StreamKind.ORDERS, symbols),
                            partial(source.watch_orders, symbols))  # fmt: skip
            if needs.quote_symbols:
                for group in await source.price_groups(needs.quote_symbols):
                    state = StreamState(account, StreamKind.PRICES, tuple(group))
                    self._spawn(state, partial(source.watch_prices, group))
        self._tasks.append(asyncio.ensure_future(self._watchdog()))

    async def _watchdog(self) -> None:
        """Wake the engine when the streams stop holding, so it polls at once.

        The engine asks :meth:`interval` only between cycles: waiting out a
        ``reconcile_interval`` it would not notice a stream going stale.
        """
        period = min(1.0, self.settings.stale_after / 2)
        was_healthy = False
        while True:
            await asyncio.sleep(period)
            healthy = self.healthy()
            if was_healthy and not healthy:
                self.wake()
            was_healthy = healthy

    def _spawn(self, state: StreamState, watch: Callable[[], Awaitable[Any]]) -> None:
        self.states.append(state)
        self._tasks.append(asyncio.ensure_future(self._run(state, watch)))

    async def stop(self) -> None:
        """Stop every watcher."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- health -----------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Every stream connected (and each price stream fresh)."""
        if not self.states:
            return False
        now = self.clock()
        healthy = True
        for state in self.states:
            if state.connected_since is None:
                healthy = False
                continue
            if state.last_message is None and now - state.connected_since < SETTLE_SECONDS:
                healthy = False  # not yet shown to hold
                continue
            if state.kind is StreamKind.PRICES:
                heard = state.last_message if state.last_message is not None else (
                    state.connected_since
                )  # fmt: skip
                if now - heard > self.settings.stale_after:
                    healthy = False
                    if not state.stale_logged:
                        state.stale_logged = True
                        self._report("stream.stale", state, silent_s=round(now - heard, 1))
        return healthy

    def interval(self, poll_interval: float) -> float:
        """Seconds until the next REST cycle: ``reconcile_interval`` while all is well."""
        if self.healthy():
            return max(poll_interval, self.settings.reconcile_interval)
        return poll_interval

    def counts(self) -> dict[str, int]:
        """Totals over every stream: messages, wakes, drops (status, benchmarks)."""
        return {
            "messages": sum(s.messages for s in self.states),
            "wakes": sum(s.wakes for s in self.states),
            "drops": sum(s.drops for s in self.states),
        }

    # -- the watchers -----------------------------------------------------------------------------

    async def _run(self, state: StreamState, watch: Callable[[], Awaitable[Any]]) -> None:
        delay = RECONNECT_FIRST
        while True:
            state.connected_since = self.clock()
            try:
                update = await watch()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a dropped or refused stream: poll, then reconnect
                state.connected_since = None
                state.drops += 1
                state.error = f"{type(error).__name__}: {error}"
                self._report("stream.dropped", state, error=state.error, retry_s=delay)
                if state.drops == 1 or delay == RECONNECT_FIRST:
                    self.wake()  # a cycle now, and polling until the stream is back
                await asyncio.sleep(delay)
                delay = min(RECONNECT_CAP, delay * 2)
                continue
            reconnected = state.error is not None
            if reconnected:
                # Changes made while the stream was away were not pushed: read them now.
                self._report("stream.reconnected", state, drops=state.drops)
                state.error = None
                delay = RECONNECT_FIRST
            state.last_message = self.clock()
            state.messages += 1
            if state.stale_logged:
                state.stale_logged = False
                self._report("stream.fresh", state)
            if reconnected or self._changes(state, update):
                state.wakes += 1
                self.wake()

    def _changes(self, state: StreamState, update: Any) -> bool:
        """Whether an update is worth a cycle (prices: a move past the threshold)."""
        if state.kind is not StreamKind.PRICES:
            return True
        moved = False
        for symbol, mid in (update or {}).items():
            key = (state.account, symbol)
            before = self._reference.get(key)
            if before is None or before <= 0:
                self._reference[key] = mid
                continue
            threshold = self.price_moves.get(key)
            if threshold is not None and abs(mid - before) / before >= threshold:
                moved = True
        if moved:
            # The cycle about to run sees these prices: measure the next move from them.
            for symbol, mid in (update or {}).items():
                self._reference[(state.account, symbol)] = mid
        return moved

    def _report(self, event: str, state: StreamState, **fields: Any) -> None:
        if self.log is not None:
            level = self.log.warning if event in ("stream.dropped", "stream.stale") else (
                self.log.info
            )  # fmt: skip
            level(event, stream=state.name, **fields)
        if self.events is not None:
            self.events.publish(event, stream=state.name, **fields)


def build_hub(
    settings: StreamSettings,
    venues: Mapping[str, Any],
    needs: Mapping[str, AccountNeeds],
    tolerances: Iterable[tuple[Iterable[tuple[str, str]], Decimal]],
    wake: Callable[[], None],
    *,
    log: Any = None,
    events: Any = None,
) -> StreamHub | None:
    """The hub for the venues that can stream, or ``None`` when none can.

    ``tolerances`` gives, per group, the (account, symbol) prices it rests on and
    its tolerance: a price wakes a cycle when it moves ``price_move`` of the tightest.
    """
    sources = {name: s for name, venue in venues.items() if (s := stream_source(venue))}
    if not sources:
        if log is not None:
            log.warning("stream.unavailable", reason="no account's exchange can stream")
        return None
    moves: dict[tuple[str, str], Decimal] = {}
    share = Decimal(str(settings.price_move))
    for prices, tolerance in tolerances:
        for key in prices:
            move = tolerance * share
            moves[key] = min(moves.get(key, move), move)
    return StreamHub(sources, needs, settings, wake, price_moves=moves, log=log, events=events)
