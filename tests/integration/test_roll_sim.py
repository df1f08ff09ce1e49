"""Dated futures and their roll, end to end on the sim venue (testnet mode: the sim
is the exchange, so positions are its own and an unrolled contract is delivered).

Simulated time starts 10 days before the December 2026 quarterly delivers
(2026-12-25 08:00 UTC); each cycle moves the clock 6 hours.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import OrderStatus, Side
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.integration.test_execution_sim import Clock

DEC = "BTC/USDT:USDT-261225"
MAR = "BTC/USDT:USDT-270326"
START_MS = 1797321600000  # 2026-12-15 08:00 UTC: ten days before DEC delivers
STEP = 6 * 3600.0

CONFIG = """\
mode = "{mode}"
[execution]
max_orders_per_minute = 1000
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000 }}
balances = {{ BTC = 1.0 }}
contract_sizes = {{ BTC = 0.01 }}
futures = {{ BTC = {futures} }}
futures_basis = 0.05
replay_start = {start}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["demo"]
instrument = "{instrument}"
hedge_account = "demo"
ratio = 0.5
roll_days_before = 3
min_days_to_expiry = 1
{hedge}
"""


def build(
    tmp_path: Path,
    *,
    instrument: str = "BTC/USDT:USDT-quarterly",
    futures: str = '["261225", "270326"]',
    hedge: str = "",
    venue: SimVenue | None = None,
    clock: Clock | None = None,
    mode: str = "testnet",
) -> tuple[Engine, SimVenue, Clock, list[dict[str, Any]]]:
    configure_logging("warning", "json")
    path = tmp_path / "c.toml"
    path.write_text(
        CONFIG.format(
            mode=mode, futures=futures, start=START_MS, instrument=instrument, hedge=hedge
        )
    )
    settings = load_settings(path)
    assert settings.accounts["demo"].sim is not None
    clock = clock or Clock()
    venue = venue or SimVenue("demo", settings.accounts["demo"].sim, clock=clock, epoch=clock.now)
    journal = Journal(tmp_path / "journal.db")
    # dry-run: paper orders on the sim's market data, positions in the journal.
    traded: Any = PaperVenue(venue, journal, settings.paper) if mode == "dry-run" else venue
    engine = Engine(settings, {"demo": traded}, journal, clock=clock)
    events: list[dict[str, Any]] = []
    engine.events.add_listener(events.append)
    return engine, venue, clock, events


async def positions(venue: Any) -> tuple[D, D]:
    held = await venue.fetch_positions([DEC, MAR])
    return -held[DEC].contracts, -held[MAR].contracts


async def test_dated_contracts_are_listed_with_expiry_and_a_converging_basis(
    tmp_path: Path,
) -> None:
    engine, venue, clock, _ = build(tmp_path)
    start = clock.now
    listed = await venue.list_contracts("BTC/USDT:USDT")
    assert sorted(listed) == [DEC, MAR]
    assert listed[DEC].expiry == 1798185600.0  # 2026-12-25 08:00 UTC
    premiums = []
    for days_before in (10, 5, 1, 0):
        clock.now = start + (10 - days_before) * 86400.0
        quote = (await venue.fetch_quotes([DEC]))[DEC]
        assert quote.mark is not None and quote.index == D(70000)
        premiums.append(quote.mark - quote.index)
    assert premiums[0] > premiums[1] > premiums[2] > premiums[3] == 0
    await engine.close()


async def test_plan_shows_days_to_expiry_and_annualised_basis(tmp_path: Path) -> None:
    engine, _, _, _ = build(tmp_path)
    await engine.start()

    report = await engine.run_cycle(trade=False)

    data = report.decisions[0].as_dict()
    assert engine.groups[0].instrument == DEC  # the alias resolved to the nearest quarterly
    assert data["days_to_expiry"] == "10.00"
    assert D(data["basis_annualised"]) == D("0.05")
    assert data["action"] == "planned"
    await engine.close()


@pytest.mark.parametrize("mode", ["testnet", "dry-run"])
async def test_a_sim_run_over_the_last_ten_days_rolls_once(mode: str, tmp_path: Path) -> None:
    engine, _, clock, events = build(tmp_path, mode=mode)
    await engine.start()
    combined = []
    for _ in range(40):  # ten days, every six hours
        report = await engine.run_cycle()
        assert report.ok, [d.as_dict() for d in report.decisions]
        old, new = await positions(engine.venues["demo"])
        combined.append((old, new))
        clock.now += STEP

    starts = [e for e in events if e["event"] == "roll.started"]
    dones = [e for e in events if e["event"] == "roll.done"]
    assert len(starts) == 1 and len(dones) == 1
    assert starts[0]["from"] == DEC and starts[0]["to"] == MAR
    # Both legs journaled, the new one first.
    legs = [o for o in engine.journal.orders("btc") if o.reason.startswith("roll")]
    assert [(o.request.symbol, o.request.side, o.request.reduce_only) for o in legs] == [
        (MAR, Side.SELL, False),
        (DEC, Side.BUY, True),
    ]
    assert all(o.status is OrderStatus.FILLED for o in legs)
    assert engine.journal.active_contract("btc") == MAR
    assert engine.groups[0].instrument == MAR
    # The hedge stayed within its band (50 contracts of 0.01 BTC, tolerance 2 %) at
    # every cycle after the first: never short of it, never doubled.
    for old, new in combined:
        assert D(49) <= old + new <= D(51), combined
    assert combined[-1] == (0, combined[-1][1]) and combined[-1][1] >= 49
    await engine.close()


class Crash(Exception):
    """Stands for kill -9: nothing after it runs."""


async def test_a_crash_between_the_legs_completes_on_restart(tmp_path: Path) -> None:
    engine, venue, clock, _ = build(tmp_path)
    await engine.start()
    real = engine.executor.execute

    async def crash_before_closing(intent: Any, *args: Any, **kwargs: Any) -> Any:
        if intent.symbol == DEC and intent.side is Side.BUY:
            raise Crash  # the new leg is open, the old one not yet closed
        return await real(intent, *args, **kwargs)

    engine.executor.execute = crash_before_closing  # type: ignore[method-assign]
    with pytest.raises(Crash):
        for _ in range(40):
            await engine.run_cycle()
            clock.now += STEP
    old, new = await positions(venue)
    assert old == new and D(49) <= old <= D(51)  # one roll step above the hedge, no more
    size = old
    engine.journal.close()

    # Restart on the same journal and exchange.
    restarted, _, _, events = build(tmp_path, venue=venue, clock=clock)
    await restarted.start()
    assert restarted.groups[0].instrument == DEC  # the roll in progress is resumed
    for _ in range(3):
        report = await restarted.run_cycle()
        assert report.ok
        clock.now += STEP

    old, new = await positions(venue)
    assert old == 0 and D(49) <= new <= D(51)
    assert [e["event"] for e in events if e["event"].startswith("roll.")] == ["roll.done"]
    assert restarted.journal.active_contract("btc") == MAR
    closes = [o for o in restarted.journal.orders("btc") if o.request.symbol == DEC]
    assert [(o.request.side, o.request.amount, o.status) for o in closes][-1] == (
        Side.BUY,
        size,
        OrderStatus.FILLED,
    )
    await restarted.close()


async def test_an_unrolled_contract_near_expiry_halts_the_group_loudly(tmp_path: Path) -> None:
    # Only the December contract is listed: there is nothing to roll into.
    engine, _, clock, events = build(tmp_path, instrument=DEC, futures='["261225"]')
    await engine.start()
    decisions = []
    for _ in range(38):  # to 12 hours before delivery
        report = await engine.run_cycle()
        decisions.append(report.decisions[0])
        clock.now += STEP

    blocked = [d for d in decisions if d.action == "blocked"]
    assert blocked and all(d.rule == "expiry" for d in blocked)
    assert all(d.days_to_expiry is not None and d.days_to_expiry <= 1 for d in blocked)
    assert "no contract to roll into" in blocked[0].reason
    alerts = [e for e in events if e["event"] == "alert" and e.get("kind") == "expiry"]
    assert len(alerts) == len(blocked)
    assert not [e for e in events if e["event"] == "roll.started"]
    await engine.close()


async def test_an_explicit_next_contract_is_rolled_into(tmp_path: Path) -> None:
    engine, venue, clock, events = build(
        tmp_path,
        instrument=DEC,
        futures='["261225", "261231", "270326"]',
        hedge=f'roll_to = "{MAR}"',
    )
    await engine.start()
    for _ in range(36):
        await engine.run_cycle()
        clock.now += STEP

    assert [e["to"] for e in events if e["event"] == "roll.started"] == [MAR]
    old, new = await positions(venue)
    assert old == 0 and new > 0
    await engine.close()


async def test_a_sliced_roll_stays_within_one_step_of_the_hedge(tmp_path: Path) -> None:
    # max_order_usd 10000 at ~70000 x 0.01 BTC: steps of 14 contracts.
    engine, venue, clock, events = build(tmp_path, hedge="max_order_usd = 10000")
    await engine.start()
    seen = []
    for _ in range(40):
        report = await engine.run_cycle()
        assert report.ok
        seen.append(await positions(venue))
        clock.now += STEP

    size = seen[0][0]
    rolling = [(old, new) for old, new in seen if old and new]
    assert len(rolling) >= 3, "the roll took several steps"
    for old, new in seen:
        assert size - 1 <= old + new <= size + 14, seen  # never short, at most a step over
    assert [e["event"] for e in events if e["event"].startswith("roll.")] == [
        "roll.started",
        "roll.done",
    ]
    assert seen[-1][0] == 0
    await engine.close()


async def test_a_richer_next_contract_rolls_early(tmp_path: Path) -> None:
    engine, venue, clock, events = build(tmp_path, hedge="roll_basis_margin = 0.02")
    await engine.start()
    plain = venue.contract_price

    def march_richer(market: Any) -> D:
        # March trades 3 %/yr richer than December from day 6 before delivery on.
        price = plain(market)
        days = (market.expiry or 0) - venue.market_time()
        late = venue.market_time() >= START_MS / 1000 + 4 * 86400
        if market.symbol == MAR and late:
            return price * (1 + D("0.03") * D(days) / 86400 / 365)
        return price

    venue.contract_price = march_richer  # type: ignore[method-assign]
    started_at = None
    for cycle in range(40):
        await engine.run_cycle()
        if started_at is None and any(e["event"] == "roll.started" for e in events):
            started_at = cycle
        clock.now += STEP

    assert started_at == 16  # day 4 (6 days left), not day 7 (roll_days_before 3)
    old, new = await positions(venue)
    assert old == 0 and D(49) <= new <= D(51)
    await engine.close()
