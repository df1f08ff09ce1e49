"""Push streams wake the engine; polling stays the floor when they fail (Binance dialect).

The engine loop runs for real (``engine.run``) with ``[streams] enabled``, a REST
floor far longer than any wait here (``reconcile_interval = 60``), and the
emulator's Binance streams. Each fault must leave no duplicate order and the
hedge back within tolerance (:meth:`Rig.check_all`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest

from hedgekeeper.engine import Engine
from hedgekeeper.streams import StreamHub
from tests.conftest import eventually
from tests.emulator.streams import BinanceStreams
from tests.faults.harness import KEY, PERP, Rig, config_text

D = Decimal


def stream_config(url: str, *, poll: float = 1.0, stale_after: float = 30.0,
                  assets: str = "{ BTC = 1.0 }") -> str:  # fmt: skip
    text = config_text("binance", url, assets=assets)
    text = text.replace("poll_interval = 1\n", f"poll_interval = {poll}\n", 1)
    return text + (
        f"[streams]\nenabled = true\nreconcile_interval = 60\nstale_after = {stale_after}\n"
    )


class Running:
    """The engine's own loop in a task, stopped at the end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(engine.run(self.stop))

    @property
    def hub(self) -> StreamHub:
        assert self.engine.streams is not None
        return self.engine.streams

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def running(binance_rig: Rig) -> AsyncIterator[Start]:
    loops: list[Running] = []

    async def start(**options: object) -> Running:
        config = stream_config(binance_rig.emu.base_url, **options)  # type: ignore[arg-type]
        engine = await binance_rig.start(config)
        loop = Running(engine)
        loops.append(loop)
        return loop

    yield start
    for loop in loops:
        await loop.close()


async def hedged_and_streaming(rig: Rig, loop: Running) -> int:
    """Wait for the first hedge and for every stream to be up; returns orders so far."""
    await eventually(lambda: rig.hedged() and not rig.unresolved(), within=15)
    await eventually(loop.hub.healthy, within=10)
    return len(rig.emu.orders(KEY))


async def streaming(rig: Rig, running: Start) -> tuple[Running, int, BinanceStreams]:
    """The loop with a 20 s poll, once hedged and streaming; orders so far; the streams."""
    loop = await running(poll=20.0)
    before = await hedged_and_streaming(rig, loop)
    assert rig.emu.streams is not None
    return loop, before, rig.emu.streams


async def hedges_again(rig: Rig, before: int, within: float = 5.0) -> None:
    """A new order follows, the hedge settles, and every promise holds."""
    await eventually(lambda: len(rig.emu.orders(KEY)) > before, within=within)
    await eventually(lambda: rig.hedged() and not rig.unresolved(), within=10)
    rig.check_all(over_hedge=False)


async def test_a_balance_change_starts_a_cycle_at_once(binance_rig: Rig, running: Start) -> None:
    """A balance change on the stream is hedged long before the REST floor."""
    loop = await running(poll=20.0)
    before = await hedged_and_streaming(binance_rig, loop)
    assert loop.hub.interval(20.0) == 60  # streams up: REST only every reconcile_interval

    changed = time.monotonic()
    binance_rig.emu.set_balance(KEY, "BTC", "1.2")
    await hedges_again(binance_rig, before)
    assert time.monotonic() - changed < 5.0  # the next poll was 20 s away


async def test_a_price_move_past_the_band_starts_a_cycle(binance_rig: Rig, running: Start) -> None:
    """A proxy-hedged asset's price move on the stream is hedged before the REST floor."""
    binance_rig.emu.set_balance(KEY, "BTC", "0")
    binance_rig.emu.set_balance(KEY, "ETH", "20")
    binance_rig.assets = {"ETH": D(1)}
    loop = await running(poll=20.0, assets="{ ETH = 1.0 }")
    before = await hedged_and_streaming(binance_rig, loop)

    binance_rig.emu.set_price("ETH/USDT", "3006")  # 0.2 %: inside the band, no cycle
    await asyncio.sleep(0.5)
    assert len(binance_rig.emu.orders(KEY)) == before
    binance_rig.emu.set_price("ETH/USDT", "3150")  # 5 %: past half the 2 % tolerance
    await hedges_again(binance_rig, before)


async def test_a_stream_outage_falls_back_to_polling_then_reconnects(
    binance_rig: Rig, running: Start
) -> None:
    """Streams dropped and refused: polling at poll_interval hedges; reconnect wakes."""
    loop = await running(poll=1.0)
    before = await hedged_and_streaming(binance_rig, loop)

    binance_rig.emu.streams.refuse = True  # type: ignore[union-attr]
    await binance_rig.emu.streams.drop()  # type: ignore[union-attr]
    await eventually(lambda: loop.hub.counts()["drops"] >= 1, within=5)
    assert not loop.hub.healthy()
    assert loop.hub.interval(1.0) == 1.0  # polling is the floor again
    binance_rig.emu.set_balance(KEY, "BTC", "1.2")  # no stream to carry it
    await eventually(lambda: len(binance_rig.emu.orders(KEY)) > before, within=6)

    binance_rig.emu.streams.refuse = False  # type: ignore[union-attr]
    await eventually(loop.hub.healthy, within=40)
    assert any(e.get("event") == "stream.reconnected" for e in binance_rig.events)
    await eventually(lambda: binance_rig.hedged() and not binance_rig.unresolved(), within=10)
    binance_rig.check_all(over_hedge=False)


async def test_a_silent_price_stream_is_stale_and_polling_takes_over(
    binance_rig: Rig, running: Start
) -> None:
    """A stalled stream (connected, silent) counts as down after stale_after."""
    loop = await running(poll=1.0, stale_after=1.0)
    before = await hedged_and_streaming(binance_rig, loop)

    binance_rig.emu.streams.stalled = True  # type: ignore[union-attr]
    # The loop asks the hub before every wait: the stale price stream is noticed then.
    await eventually(lambda: any(e.get("event") == "stream.stale" for e in binance_rig.events),
                     within=6)  # fmt: skip
    assert not loop.hub.healthy()
    binance_rig.emu.set_balance(KEY, "BTC", "1.2")  # the stream would not say it
    await hedges_again(binance_rig, before, within=6)


async def test_duplicate_and_reordered_events_place_one_order(
    binance_rig: Rig, running: Start
) -> None:
    """Every private event twice and in reverse order: still one order per change."""
    _, before, streams = await streaming(binance_rig, running)
    streams.duplicate = streams.reverse = True

    binance_rig.emu.set_balance(KEY, "BTC", "1.2")
    await hedges_again(binance_rig, before)
    await asyncio.sleep(1.0)  # the duplicates' wake-ups have run their cycles
    assert len(binance_rig.emu.orders(KEY)) == before + 1
    binance_rig.check_all(over_hedge=False)


async def test_a_fill_on_the_stream_before_rest_places_no_order(
    binance_rig: Rig, running: Start
) -> None:
    """A fill pushed before REST shows it wakes a cycle that trusts REST, not the event."""
    loop, before, streams = await streaming(binance_rig, running)
    cycles = loop.engine.cycles_run

    # The stream claims a fill of twice the hedge that REST does not show.
    order = binance_rig.emu.orders(KEY)[-1]
    fake = type(order)(**{**order.__dict__, "qty": order.qty * 2, "order_id": "999999"})
    await streams.push_fill_ahead(KEY, fake)
    await eventually(lambda: loop.engine.cycles_run > cycles, within=5)
    await asyncio.sleep(0.5)
    assert len(binance_rig.emu.orders(KEY)) == before
    assert binance_rig.emu.position(KEY, PERP).qty < 0
    binance_rig.check_all(over_hedge=False)
