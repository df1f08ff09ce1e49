"""429 and 418 bursts: reads are retried or skipped, a refused create is never resent."""

from __future__ import annotations

import asyncio
import time

from tests.emulator import Emulator, Fault
from tests.faults.harness import Rig, config_text, order_endpoint


async def burst(rig: Rig, emu: Emulator, fault: Fault) -> str:
    """Reads and the first create refused; returns what became of that create."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    method, path = order_endpoint(emu.dialect_name, "create")
    on_create = emu.faults.add(fault, method=method, path=path, count=1)
    on_reads = emu.faults.add(fault, method="GET", count=5)
    cycles = await rig.settle(max_cycles=80, pause=0.05)  # a daemon that waits out bans
    assert on_create.hits == 1 and on_reads.hits == 5, "the faults fired"
    first, *rest = rig.journal.orders()  # type: ignore[union-attr]
    assert first.status.value == "rejected" and len(rest) == 1, "refused, then one new id"
    unknown = rig.count("order.outcome_unknown")
    how = "unknown -> not found -> never placed" if unknown else "rejected (not applied)"
    return f"first create {how}; one new order under a new id; hedged after {cycles} cycles"


async def test_429_burst(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """429 burst: 5 reads and the first order create."""
    record(await burst(rig, emu, Fault.rate_limit(retry_after=1)))
    rig.check_all()


async def test_418_ip_ban_burst(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """418 IP-ban burst: 5 reads and the first order create."""
    record(await burst(rig, emu, Fault.ip_ban(retry_after=1)))
    rig.check_all()


# Regression: Retry-After was dropped; reads were retried 0.3 s after a 418.
async def test_418_retry_after_is_respected(binance_rig: Rig, binance: Emulator,
                                            record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """418 with Retry-After: nothing is sent to the banned venue until it has passed."""
    rig, emu = binance_rig, binance
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    emu.faults.add(Fault.ip_ban(retry_after=1), method="GET", path="/api/v3/account", count=1)
    await rig.cycle()
    banned_at = next(r.time_ms for r in reversed(emu.requests) if r.status == 418)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:  # cycles keep coming during the ban
        await rig.cycle()
        await asyncio.sleep(0.05)
    # requests of the same cycle already in flight (sent concurrently) do not count
    during = [r for r in emu.requests if banned_at + 50 < r.time_ms < banned_at + 950]
    record(f"{len(during)} requests sent during the 1 s ban")
    assert not during, (
        f"{len(during)} requests sent while banned, the first {during[0].time_ms - banned_at} ms "
        "after the 418"
    )
    await rig.settle()
    rig.check_all()
