"""The stream hub with a hand-written stream source: wakes, thresholds, drops, health."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

from hedgekeeper.settings import StreamSettings
from hedgekeeper.snapshot import AccountNeeds
from hedgekeeper.streams import StreamHub, build_hub
from tests.conftest import eventually

D = Decimal


class FakeSource:
    """Updates are fed through queues; an Exception in a queue is raised (a drop)."""

    def __init__(self) -> None:
        self.balances: asyncio.Queue[object] = asyncio.Queue()
        self.prices: asyncio.Queue[object] = asyncio.Queue()

    async def _next(self, queue: asyncio.Queue[object]) -> object:
        item = await queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def watch_balances(self) -> None:
        await self._next(self.balances)

    async def watch_positions(self, symbols: Iterable[str]) -> None:
        await asyncio.Event().wait()  # silent: nothing changes

    async def watch_orders(self, symbols: Iterable[str]) -> None:
        await asyncio.Event().wait()

    async def price_groups(self, symbols: Iterable[str]) -> list[list[str]]:
        return [list(symbols)]

    async def watch_prices(self, symbols: list[str]) -> dict[str, Decimal]:
        return await self._next(self.prices)  # type: ignore[return-value]


def make_hub(source: FakeSource, wakes: list[int], **settings: float) -> StreamHub:
    needs = {"ex": AccountNeeds(True, ("BTC/USDT:USDT",), ("BTC/USDT",))}
    hub = build_hub(StreamSettings(enabled=True, **settings), {"ex": _Venue(source)}, needs,
                    [([("ex", "BTC/USDT")], D("0.02"))], lambda: wakes.append(1))  # fmt: skip
    assert hub is not None
    return hub


class _Venue:
    def __init__(self, source: FakeSource) -> None:
        self.streams = source


async def test_a_balance_update_wakes_and_a_small_price_move_does_not() -> None:
    source, wakes = FakeSource(), list[int]()
    hub = make_hub(source, wakes)
    await hub.start()
    try:
        await source.balances.put(None)
        await eventually(lambda: len(wakes) == 1)
        await source.prices.put({"BTC/USDT": D(60000)})  # the reference
        await source.prices.put({"BTC/USDT": D(60300)})  # 0.5 % < 1 % (half of 2 %)
        await eventually(lambda: hub.counts()["messages"] == 3)
        assert len(wakes) == 1
        await source.prices.put({"BTC/USDT": D(60700)})  # 1.17 % from the reference
        await eventually(lambda: len(wakes) == 2)
        await source.prices.put({"BTC/USDT": D(60800)})  # measured from 60,700 now
        await eventually(lambda: hub.counts()["messages"] == 5)
        assert len(wakes) == 2
    finally:
        await hub.stop()


async def started(source: FakeSource, wakes: list[int], clock: list[float],
                  **settings: float) -> StreamHub:  # fmt: skip
    """A started hub on a hand-driven clock that has had one price."""
    hub = make_hub(source, wakes, **settings)
    hub.clock = lambda: clock[0]
    await hub.start()
    await source.prices.put({"BTC/USDT": D(60000)})
    await eventually(lambda: hub.counts()["messages"] == 1)
    return hub


async def test_a_drop_polls_then_the_reconnect_wakes() -> None:
    source, wakes, clock = FakeSource(), list[int](), [0.0]
    hub = await started(source, wakes, clock, reconcile_interval=60)
    try:
        clock[0] = 5.0  # every stream has held long enough
        assert hub.interval(1.0) == 60
        await source.balances.put(ConnectionError("reset"))
        await eventually(lambda: hub.counts()["drops"] == 1)
        assert len(wakes) == 1  # a cycle at once: what the stream lost is read over REST
        assert hub.interval(1.0) == 1.0  # polling until it is back
        await source.balances.put(None)  # reconnected: its first update
        await eventually(lambda: len(wakes) == 2)
        clock[0] = 10.0
        assert hub.interval(1.0) == 60
    finally:
        await hub.stop()


async def test_a_silent_price_stream_is_stale_and_wakes_the_engine() -> None:
    source, wakes, clock = FakeSource(), list[int](), [0.0]
    hub = await started(source, wakes, clock, stale_after=3)
    try:
        clock[0] = 2.0
        assert hub.healthy()
        await asyncio.sleep(1.1)  # the watchdog (every second) has seen it healthy
        clock[0] = 4.0
        assert not hub.healthy()
        await eventually(lambda: len(wakes) == 1, within=3)  # polling starts now
    finally:
        await hub.stop()


def test_no_hub_without_a_venue_that_streams() -> None:
    needs = {"ex": AccountNeeds(True, (), ())}
    hub = build_hub(StreamSettings(enabled=True), {"ex": object()}, needs, [], lambda: None)
    assert hub is None
