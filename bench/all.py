"""Every figure of issue #15 in one run, each beside the simple loop's, as a ratio.

Run by hand: ``.venv/bin/python bench/all.py [--trials 12] [--idle 20]`` (about 10 minutes).
Everything goes through the real ccxt path against the local emulator (Binance dialect):

* per cycle at steady state: HTTP requests, Binance request weight, wall time — the
  daemon with 1, 3 and 10 groups on one account (``bench/requests.py``);
* process start -> first decision (cold, then with the market cache warm), and idle CPU
  while polling every second — 1, 3 and 20 groups (``bench/requests.py``);
* reaction (change at the emulator -> order accepted there) p50 / p95 for a balance and
  a price trigger, polling and with push streams, 1 and 3 groups, and the REST requests a
  minute of a still market (``bench/reaction.py``);

against ``bench/simple_loop.py``: balance, position, one ticker, a market order when
needed, every second. A ratio is hedgekeeper / simple loop (below 1: hedgekeeper is
lighter or faster). Journal growth (``bench/journal_growth.py``, sim venue, 10 groups,
one cycle per simulated 10 minutes): bytes per group per cycle keeping everything, and
the growth per group-day once ``journal_keep_days`` prunes (the simple loop keeps no
journal). Not covered here (see the issue's closing notes): several accounts, storm
cycles (``bench/cycle.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str, file: str) -> ModuleType:
    """A bench script as a module (``requests.py`` would shadow the package by name)."""
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_requests = _load("bench_requests", "requests.py")
bench_reaction = _load("bench_reaction", "reaction.py")
simple = _load("bench_simple_loop", "simple_loop.py")

from tests.emulator import Emulator  # noqa: E402

from hedgekeeper.logs import configure_logging  # noqa: E402

KEY, SECRET = "bench-key", "bench-secret"


async def simple_emulator() -> Emulator:
    emu = Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000})
    await emu.start()
    emu.set_balance(KEY, "BTC", "1.0")
    emu.set_futures_wallet(KEY, 1_000_000)
    return emu


async def simple_cycles() -> tuple[float, float, float]:
    """Requests, weight and median wall time (ms) per steady cycle of the simple loop."""
    emu = await simple_emulator()
    exchange = simple.make_exchange(emu.base_url, KEY, SECRET)
    spent: list[tuple[str, float]] = []
    api_now = [""]
    fetch2, throttle = exchange.fetch2, exchange.throttle

    async def noted_fetch2(path: Any, api: Any = "public", *args: Any, **kwargs: Any) -> Any:
        api_now[0] = str(api[0] if isinstance(api, list | tuple) else api)
        return await fetch2(path, api, *args, **kwargs)

    def noted_throttle(cost: Any = None) -> Any:
        spent.append((api_now[0], float(cost or 1)))
        return throttle(cost)

    exchange.fetch2, exchange.throttle = noted_fetch2, noted_throttle
    try:
        await exchange.load_markets()
        for _ in range(2):
            await simple.cycle(exchange)  # opens the hedge
        requests, weight, walls = [], [], []
        for _ in range(5):
            emu.clear_requests()
            spent.clear()
            began = time.perf_counter()
            await simple.cycle(exchange)
            walls.append((time.perf_counter() - began) * 1000)
            requests.append(len(emu.requests))
            weight.append(sum(c if api.startswith("fapi") else c / 0.2 for api, c in spent))
        return statistics.mean(requests), statistics.mean(weight), statistics.median(walls)
    finally:
        await exchange.close()
        await emu.stop()


async def simple_start_and_idle(idle_s: float) -> tuple[float, float]:
    """Process start -> first decision (s) and CPU-s/h of the simple loop polling every second."""
    emu = await simple_emulator()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "simple_loop.py"), "--url", emu.base_url, "--key", KEY,
        "--secret", SECRET, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await proc.stdout.readline()
        if b"decided" not in line:
            raise RuntimeError("the simple loop stopped before deciding")
        first = time.monotonic() - started
        await asyncio.sleep(3.0)
        cpu0, t0 = bench_requests.cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(idle_s)
        per_hour = (bench_requests.cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 3600
        return first, per_hour
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        await emu.stop()


async def simple_reaction(trials: int, seed: int = 7) -> tuple[list[float], float]:
    """Balance change -> order, in-process, polling every second; and quiet REST/min."""
    import random

    rng = random.Random(seed)
    emu = await simple_emulator()
    exchange = simple.make_exchange(emu.base_url, KEY, SECRET)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            began = time.monotonic()
            await simple.cycle(exchange)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

    reactions: list[float] = []
    try:
        await exchange.load_markets()
        runner = asyncio.create_task(loop())
        await bench_reaction.until(lambda: len(emu.orders(KEY)) >= 1, 15)
        await asyncio.sleep(1.5)
        before_requests, began = len(emu.requests), time.monotonic()
        await asyncio.sleep(10.0)
        per_minute = (len(emu.requests) - before_requests) / (time.monotonic() - began) * 60
        for trial in range(trials):
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            before = len(emu.orders(KEY))
            changed_ms = time.time() * 1000
            emu.set_balance(KEY, "BTC", "1.2" if trial % 2 == 0 else "1.0")
            await bench_reaction.until(lambda before=before: len(emu.orders(KEY)) > before)
            reactions.append((emu.orders(KEY)[before].created_ms - changed_ms) / 1000)
            await asyncio.sleep(0.3)
        stop.set()
        await runner
        return reactions, per_minute
    finally:
        await exchange.close()
        await emu.stop()


def row(figure: str, ours: float, base: float, unit: str) -> None:
    ratio = f"{ours / base:6.2f}" if base else "     -"
    print(f"{figure:<46} {ours:>10.3f} {base:>10.3f} {ratio}  {unit}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of CPU sampling")
    args = parser.parse_args()
    configure_logging("error", "json", stream=open(os.devnull, "w"))
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY"] = KEY
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET"] = SECRET
    p50 = statistics.median

    def p95(values: list[float]) -> float:
        return float(bench_reaction.pct(values, 0.95))

    base_requests, base_weight, base_ms = await simple_cycles()
    base_start, base_cpu = await simple_start_and_idle(args.idle)
    base_reaction, base_quiet = await simple_reaction(args.trials)
    print(f"{'figure':<46} {'hedgekeeper':>10} {'simple':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for groups in (1, 3, 10):
            f = await bench_requests.requests_per_cycle("binance", groups, workdir)
            row(f"requests per cycle, {groups} group(s)", f.requests, base_requests, "requests")
            row(f"weight per cycle, {groups} group(s)", f.weight, base_weight, "Binance weight")
            row(f"cycle time, {groups} group(s)", f.cycle_ms, base_ms, "ms")
        for groups in (1, 3, 20):
            port = bench_requests.free_port()
            cold, _ = await bench_requests.start_and_idle("binance", groups, workdir, 0, port)
            warm, cpu = await bench_requests.start_and_idle(
                "binance", groups, workdir, args.idle, port
            )
            row(f"start -> first decision, cold, {groups} group(s)", cold, base_start, "s")
            row(f"start -> first decision, warm, {groups} group(s)", warm, base_start, "s")
            row(f"idle CPU at 1-s polling, {groups} group(s)", cpu, base_cpu, "CPU-s/h")
        for groups in (1, 3):
            for streams in (False, True):
                for trigger in ("balance", "price"):
                    # Streaming, REST runs every 30 s: count a quiet window longer than that.
                    result = await bench_reaction.run_case(
                        trigger, True, args.trials, workdir, 7, groups, streams,
                        quiet_s=31.0 if streams else 10.0,
                    )
                    label = f"{trigger}, {'streams' if streams else 'polling'}, {groups} group(s)"
                    r = result["reactions"]
                    row(f"reaction p50, {label}", p50(r), p50(base_reaction), "s")
                    row(f"reaction p95, {label}", p95(r), p95(base_reaction), "s")
                    row(f"quiet REST requests/min, {label}", result["requests_per_minute"],
                        base_quiet, "requests")  # fmt: skip
        growth = _load("bench_journal_growth", "journal_growth.py")
        groups, days, cycle_s = 10, 4, 600.0
        kept = await growth.run(workdir, groups, days, cycle_s, 0.0)
        pruned = await growth.run(workdir, groups, days, cycle_s, 1.0)
        per_cycle = (kept[-1][1] - kept[0][1]) / ((days - 1) * (86400 / cycle_s) * groups)
        row("journal bytes per group per cycle, keep all", per_cycle, 0, "bytes")
        row("  = MB per group-day at 1-s polling", per_cycle * 86400 / 1e6, 0, "MB")
        row("journal growth per group-day, keep 1 day", (pruned[-1][0] - pruned[-2][0])
            / groups / 1024, 0, "KiB (orders, fills: kept)")  # fmt: skip
    print("simple loop: balance, position, one ticker (+ an order when needed) every second; "
          "its reaction is to a balance change (it hedges no proxy).")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
