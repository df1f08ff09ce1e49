"""Soak: thousands of cycles in-process against the emulator under seeded random faults.

Five in a hundred requests misbehave (a mix of the kinds the scenario tests cover, on
reads and on writes), the venue goes into maintenance and its clock drifts now and
then, holdings and prices move, the position is changed behind the daemon's back.
Safe by construction adds, at random: operator halt / resume / flatten in the middle of
sliced executions (``max_order_usd`` slices every order), position reads lagging fills by
one or two cycles, a ``plan`` from another process and a second daemon start on the
same state directory (both real subprocesses, once per run).
At the end: no duplicate, no lost order, every journaled order resolved (or honestly
working), the journal agreeing with the emulator, no cycle over the cap, and the hedge
within tolerance.

``HEDGEKEEPER_SOAK=1`` runs the full 5,000 cycles per dialect and style; CI (``CI=true``)
runs them in market style; otherwise a 300-cycle run keeps the suite fast. The figures
are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from hedgekeeper.model import OrderStatus, TradingState
from tests.conftest import REPO
from tests.emulator import Emulator, Fault
from tests.faults.harness import KEY, PERP, Rig, config_text, order_endpoint

FULL = os.environ.get("HEDGEKEEPER_SOAK") == "1"
#: CI runs the full soak in market style on both dialects (about 45 s each, measured):
#: under the 2-minute bar the issue sets for running it in CI.
IN_CI = os.environ.get("CI") == "true"


def cycles_for(style: str) -> int:
    """5,000 cycles when asked (or in CI, market style); 300 otherwise."""
    if "HEDGEKEEPER_SOAK_CYCLES" in os.environ:
        return int(os.environ["HEDGEKEEPER_SOAK_CYCLES"])
    return 5000 if FULL or (IN_CI and style == "market") else 300

#: (kind, fault, where, share of the 5 %): where is "read" (GET) or "write" (create/cancel)
READ_FAULTS = [
    ("http_502", Fault.http_error(502), 0.35),
    ("rate_limit_429", Fault.rate_limit(1), 0.2),
    ("disconnect", Fault.disconnect(), 0.15),
    ("latency_50ms", Fault.latency(0.05), 0.15),
    ("ip_ban_418", Fault.ip_ban(1), 0.15),
]
WRITE_FAULTS = [
    ("accept_then_timeout", Fault.accept_then_timeout(1.0), 0.2),
    ("backend_timeout", Fault.backend_timeout(), 0.15),
    ("disconnect_before_apply", Fault.disconnect(), 0.1),
    ("disconnect_after_apply", Fault.disconnect(after_apply=True), 0.15),
    ("partial_fill", Fault.partial_fill("0.4"), 0.2),
    ("http_503", Fault.http_error(503), 0.1),
    ("rate_limit_429", Fault.rate_limit(1), 0.1),
]
RATE = 0.05
# Binance 429/418 replies carry Retry-After (at least 1 s) and the daemon rightly stays away
# that long; cycles here run milliseconds apart, so every such fault would idle a few hundred
# of them. They are covered by test_rate_limits.py; on reads the Binance soak leaves them out.
# (Bybit's carry no Retry-After: the next cycle is the retry.)
BANS = ("rate_limit_429", "ip_ban_418")

# Cycles run back to back here, a few milliseconds apart instead of poll_interval: the
# breaker's cool-down is shortened to match (a couple of cycles), and reads are not
# retried within a cycle (the next cycle, milliseconds later, is the retry). The runaway
# guard is widened: holdings jump every 20 cycles here, far more hedge per hour than it
# allows. "maker" style also exercises cancels (reprices) and resting orders. The
# position settle window is 3 s (30 s by default): a lag here is 2-3 reads milliseconds
# apart, and a position changed by hand right after a fill is held for the window, which
# must end within the settle phase (about 200 cycles).
GUARDS = "leverage = 1\nrunaway_multiple = 20\nrunaway_window = 2\nmax_order_usd = 15000\n"
HEDGE = {
    "market": GUARDS,
    "maker": GUARDS + 'execution = "maker"\nreprice_after = 0.05\ndeadline = 1.0\n',
}


async def _hedgekeeper(rig: Rig, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedgekeeper", *args, "--config", str(rig.workdir / "config.toml"),
        "--state-dir", str(rig.workdir), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "daemon")},
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), err.decode()


async def plan_elsewhere(rig: Rig, emu: Emulator) -> int:
    """``hedgekeeper plan`` from another process: it prints, and writes nothing anywhere."""
    writes, orders = len(emu.private_writes()), len(rig.journal.orders())  # type: ignore[union-attr]
    code, err = await _hedgekeeper(rig, "plan", "--json")
    # The soak's random 5xx hit the plan's reads too: a plan may fail, never write.
    assert code == 0 or (code == 1 and "plan.failed" in err), err
    assert len(emu.private_writes()) == writes, "plan wrote to the exchange"
    assert len(rig.journal.orders()) == orders, "plan wrote to the journal"  # type: ignore[union-attr]
    return 1


async def second_start(rig: Rig, emu: Emulator) -> int:
    """A second ``hedgekeeper run`` on the soak's state directory: refused, exit 2."""
    writes = len(emu.private_writes())
    code, err = await _hedgekeeper(rig, "run")
    assert code == 2 and "in use" in err, err
    assert len(emu.private_writes()) == writes
    return 1


@pytest.mark.soak
@pytest.mark.timeout(900 if FULL or IN_CI else 120)
@pytest.mark.parametrize("style", ["market", "maker"])
async def test_soak(rig: Rig, emu: Emulator, style: str, record) -> None:  # type: ignore[no-untyped-def]
    """Soak: seeded 5 % random faults, maintenance, clock skew, moving holdings."""
    rng = random.Random(20240501)
    random.seed(1)  # the snapshot's retry jitter
    config = config_text(emu.dialect_name, emu.base_url, hedge=HEDGE[style],
                         execution="read_retries = 0\ncircuit_breaker_cooldown = 0.02\n"
                                   "position_settle_seconds = 3",
                         account="timeout_ms = 300")  # fmt: skip
    await rig.start(config)
    rules = []
    for kind, fault, share in READ_FAULTS:
        if emu.dialect_name == "binance" and kind in BANS:
            continue
        rules.append((kind, "read", emu.faults.add(fault, method="GET", count=None,
                                                   probability=RATE * share)))  # fmt: skip
    for what in ("create", "cancel"):
        method, path = order_endpoint(emu.dialect_name, what)
        for kind, fault, share in WRITE_FAULTS:
            if what == "cancel" and kind == "partial_fill":
                continue
            rules.append((kind, what, emu.faults.add(fault, method=method, path=path, count=None,
                                                     probability=RATE * share)))  # fmt: skip
    events: Counter[str] = Counter()
    price = Decimal(60000)
    started = time.perf_counter()
    maintenance_left = skew_left = 0
    engine = rig.engine
    assert engine is not None
    commands: list[asyncio.Future[Any]] = []
    #: creates that reached the emulator after a halt landed, within that cycle
    after_halt: list[int] = []
    halted_at: list[int] = []  # emulator create count when the halt landed
    command_cycle = [-1]
    operating = [True]  # operator commands only during the soak, not while it settles

    def operator(event: dict[str, Any]) -> None:
        """Now and then, a halt or flatten lands while a sliced execution is under way."""
        if (event.get("event") == "state.changed" and event.get("source") == "soak"
                and event.get("state") == "halted"):  # fmt: skip
            halted_at.append(sum(rig.create_requests().values()))
        if event.get("event") != "order.submitted" or (commands and not commands[-1].done()):
            return
        if not operating or engine.executor.trading_state is not TradingState.ACTIVE:
            return
        if rng.random() > 0.03:
            return
        command = "halt" if rng.random() < 0.7 else "flatten"
        events[f"operator_{command}_mid_execution"] += 1
        command_cycle[0] = rig.cycles
        commands.append(asyncio.ensure_future(getattr(engine, command)("soak", command)))

    engine.events.add_listener(operator)
    total = cycles_for(style)
    for n in range(total):
        if (engine.executor.trading_state is not TradingState.ACTIVE and not engine.flattening
                and rig.cycles - command_cycle[0] >= 3):  # fmt: skip
            await engine.resume("soak", "resume")
            events["operator_resume"] += 1
        if rng.random() < 0.02:  # the position endpoint lags the next fill by 1-2 cycles
            emu.lag_position_reads(KEY, rng.choice([2, 3]))
            events["position_reads_lagging"] += 1
        if n == total // 3:
            events["plan_from_another_process"] += await plan_elsewhere(rig, emu)
        if n == 2 * total // 3:
            events["second_start_refused"] += await second_start(rig, emu)
        if n % 2 == 0:  # prices wander: resting maker orders fill or are repriced
            price = (price * Decimal(str(1 + rng.uniform(-0.003, 0.003)))).quantize(Decimal("0.1"))
            emu.set_price("BTC/USDT", price)
        if n % 20 == 10:  # holdings move
            emu.set_balance(KEY, "BTC", Decimal(str(round(rng.uniform(0.4, 1.6), 3))))
            events["balance_change"] += 1
        if n % 400 == 150:
            emu.maintenance, maintenance_left = True, 4
            events["maintenance"] += 1
        if n % 500 == 320:
            emu.clock_offset_ms, skew_left = 20_000, 3
            events["clock_skew"] += 1
        if n % 1000 == 700:  # liquidated, or traded by hand
            emu.set_position(KEY, PERP, 0 if rng.random() < 0.5 else "-2.5", entry_price=price)
            rig.outside_change()
            events["position_changed_outside"] += 1
        if n % 700 == 480:  # a one-snapshot spike
            emu.set_price("BTC/USDT", price * Decimal("1.5"))
            events["price_spike"] += 1
        await rig.cycle()
        if halted_at:  # the children of that cycle that still went out after the halt
            after_halt.append(sum(rig.create_requests().values()) - halted_at.pop())
            halted_at.clear()
        if n % 700 == 480:
            emu.set_price("BTC/USDT", price)
        if maintenance_left:
            maintenance_left -= 1
            emu.maintenance = maintenance_left > 0
        if skew_left:
            skew_left -= 1
            emu.clock_offset_ms = 20_000 if skew_left else 0
        if n % 50 == 0:  # the invariants that must hold at every moment
            rig.check_no_duplicates()
            rig.check_nothing_lost()
    soak_seconds = time.perf_counter() - started
    operating.clear()
    await asyncio.gather(*commands)
    if engine.executor.trading_state is not TradingState.ACTIVE:
        await engine.resume("soak", "end of the soak")
    emu.maintenance, emu.clock_offset_ms = False, 0
    for _, _, rule in rules:
        rule.count = rule.hits  # the faults stop

    def taken() -> bool:
        # A buyer takes whatever rests, so that the hedge completes within a few cycles
        # (the maker deadline would too, but later).
        working = emu.open_orders(KEY)
        if working:
            emu.set_price("BTC/USDT", max(o.price or price for o in working) + 50)
        return rig.hedged() and not rig.unresolved()

    settle_cycles = await rig.until(taken, 200, "settled hedge", pause=0.02)

    faults: Counter[str] = Counter()
    for kind, where, rule in rules:
        faults[f"{where}:{kind}"] += rule.hits
    faults.update(events)
    journal = rig.journal
    assert journal is not None
    orders = journal.orders()
    unknown_ids = {e["client_order_id"] for e in rig.events
                   if e.get("event") in ("order.outcome_unknown",)}  # fmt: skip
    resolved = sum(1 for o in orders if o.request.client_order_id in unknown_ids
                   and o.status not in (OrderStatus.NEW, OrderStatus.UNKNOWN))  # fmt: skip
    figures = {
        "dialect": emu.dialect_name,
        "cycles": rig.cycles,
        "orders": len(orders),
        "at_emulator": len(emu.orders(KEY)),
        "statuses": dict(Counter(o.status.value for o in orders)),
        "faults_injected": sum(faults.values()),
        "by_kind": dict(sorted(faults.items())),
        "unknown_outcomes": len(unknown_ids),
        "unknown_resolved": resolved,
        "never_placed": sum(1 for o in orders if o.status is OrderStatus.REJECTED),
        "duration_s": round(soak_seconds, 1),
        "settled_in": settle_cycles,
        "style": style,
        "peak_short": str(rig.peak_short),
        "over_hedged_cycles": len(rig.over_hedged),
        "duplicates": sum(1 for n in rig.create_requests().values() if n > 1),
        "max_children_after_a_halt": max(after_halt, default=0),
        "final": f"short {rig.short()} target {rig.target()}",
    }
    print("\nsoak figures:", figures)
    record(f"{rig.cycles} cycles, {len(orders)} orders, {sum(faults.values())} faults, "
           f"{resolved}/{len(unknown_ids)} unknown resolved, {len(rig.over_hedged)} over-hedged "
           f"cycles, {soak_seconds:.1f} s")  # fmt: skip
    assert resolved == len(unknown_ids), "every unknown outcome was resolved"
    assert max(after_halt, default=0) <= 1, "a halt lands between two child orders"
    # Both styles: never over the cap (a group turns around only after cancelling its
    # working order: test_market.test_trim_resting_when_holdings_grow_again).
    rig.check_all(over_hedge=True)
