"""Benchmark: time of one full cycle (sim + paper) for 1, 10, 100 and 1000 groups.

Run by hand: ``.venv/bin/python bench/cycle.py`` (or ``make bench``). Prints the
median and p99 cycle time for each size and the process's peak RSS. Each cycle is
the real one — snapshot, assess, plan, guard, execute, journal — with prices
moving so that some cycles place paper orders; logs go to /dev/null at INFO so
their rendering cost is counted.

Target (issue 2): 100 groups under 50 ms median.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue


def config(groups: int, volatility: str, speed: int) -> str:
    """One sim account listing one asset and one linear perp per group.

    An instrument backs one group per account (one exchange position), so each
    group gets its own. A direct hedge needs no order when only prices move
    (contracts = amount x ratio / contract size), so every group is a proxy
    hedge: asset ``X{n}`` hedged with the next asset's perp, with a beta.
    """
    assets = [f"X{n}" for n in range(groups)]
    prices = ", ".join(f"{a} = {10 + n % 90}" for n, a in enumerate(assets))
    balances = ", ".join(f"{a} = {100 + n % 13}" for n, a in enumerate(assets))
    sizes = ", ".join(f"{a} = 0.1" for a in assets)
    lines = [
        'mode = "dry-run"',
        "[execution]",
        "max_orders_per_minute = 100000",  # the throttle is not what is measured
        "[accounts.demo]",
        'exchange = "sim"',
        "[accounts.demo.sim]",
        f"prices = {{ {prices} }}",
        f"balances = {{ {balances} }}",
        f"contract_sizes = {{ {sizes} }}",
        f"volatility = {volatility}",
        f"speed = {speed}",
        "seed = 3",
    ]
    for n, asset in enumerate(assets):
        proxy = assets[(n + 1) % len(assets)]
        lines += [
            "[[hedges]]",
            f'name = "g{n}"',
            f"assets = {{ {asset} = 1.2 }}",
            'spot_accounts = ["demo"]',
            f"extra_holdings = {{ {asset} = {n % 7} }}",
            f'instrument = "{proxy}/USDT:USDT"',
            'hedge_account = "demo"',
            "ratio = 0.5",
            "tolerance = 0.02",
        ]
    return "\n".join(lines) + "\n"


#: calm: 60 % a year, one simulated minute per cycle (orders now and then);
#: storm: 150 % a year, one simulated hour per cycle (most groups trade every cycle).
MARKETS = {"calm": ("0.6", 60), "storm": ("1.5", 3600)}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def measure(groups: int, cycles: int, workdir: Path, market: str) -> tuple[float, float, int]:
    volatility, speed = MARKETS[market]
    path = workdir / f"bench-{market}-{groups}.toml"
    path.write_text(config(groups, volatility, speed))
    settings = load_settings(path)
    journal = Journal(workdir / f"journal-{market}-{groups}.db")
    clock = Clock()
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings, clock=clock, epoch=0.0)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal)
    await engine.start()
    await engine.run_cycle()  # warm-up: the first cycle opens every hedge
    timings = []
    orders = 0
    for _ in range(cycles):
        clock.now += 1.0
        started = time.perf_counter()
        report = await engine.run_cycle()
        timings.append((time.perf_counter() - started) * 1000)
        orders += sum(1 for d in report.decisions if d.action == "order")
    journal.close()
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return statistics.median(timings), p99, orders


async def main() -> None:
    devnull = open(os.devnull, "w")
    configure_logging("info", "json", stream=devnull)
    print(
        f"{'market':>7} {'groups':>7} {'cycles':>7} {'median ms':>10} {'p99 ms':>9} {'orders':>7}"
    )
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # the journal on the real disk
        for market in MARKETS:
            for groups, cycles in ((1, 300), (10, 300), (100, 200), (1000, 40)):
                median, p99, orders = await measure(groups, cycles, Path(tmp), market)
                print(
                    f"{market:>7} {groups:>7} {cycles:>7} {median:>10.2f} {p99:>9.2f} {orders:>7}"
                )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {peak_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
