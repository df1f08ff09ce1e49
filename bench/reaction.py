"""Benchmark: reaction time, from a change on the exchange to the hedge order it needs.

Run by hand: ``.venv/bin/python bench/reaction.py [--trials 30] [--groups 1,3]
[--limiter off,on] [--streams off,on]``. The real engine runs in-process (``engine.run``,
polling every second) with the real ccxt adapter against the local emulator (Binance
dialect), with ``rate_limit = false`` and with the rate limiter on (the default), with
push streams off and on (``[streams]``: the emulator's Binance streams wake cycles, REST
every 30 s), with 1 and with 3 hedge groups on the one account (the extra groups hold
other assets and stay still: with several groups an account's reads used to stall ~2 s a
cycle, issue #15). Two triggers, each ``--trials`` times at a random phase of the poll
timer:

* balance: the spot balance of a directly hedged group (BTC, BTC perpetual) moves;
* price: the price of the asset of a proxy-hedged group (ETH held, BTC perpetual) moves.

Printed per case: p50 / p95 / max of the time from the change to the order accepted
by the emulator (targets: p95 <= 1.2 s), and the daemon-side share of the cycles: the
cycle's wall time minus the time during which at least one HTTP request was in flight
or waiting in ccxt's rate limiter (process-side, ccxt's signing and parsing included),
and within it the engine's own work — deciding and writing the journal (target <= 20 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/requests.py is named like the ``requests`` package that ccxt imports: take this
# folder off the path so that the import finds the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(ROOT / "daemon"), str(ROOT)]

from tests.emulator import Emulator  # noqa: E402
from tests.emulator.markets import MarketDef, default_markets  # noqa: E402

from hedgekeeper.engine import Engine  # noqa: E402
from hedgekeeper.journal import Journal  # noqa: E402
from hedgekeeper.logs import configure_logging  # noqa: E402
from hedgekeeper.settings import load_settings  # noqa: E402
from hedgekeeper.venues import build_venues  # noqa: E402

KEY, SECRET = "bench-key", "bench-secret"
PERP = "BTC/USDT:USDT"

GROUPS = {
    "balance": "assets = { BTC = 1.0 }",
    "price": "assets = { ETH = 1.0 }",  # a proxy hedge: ETH held, BTC perpetual
}


def extra_markets(groups: int) -> list[MarketDef]:
    """Spot and perpetual markets of the still groups X1, X2, ... beside the measured one."""
    d = Decimal
    return [
        MarketDef(f"X{n}", "USDT", kind, d("0.01"), d("0.001"), d("0.001"), d("1e6"), d(5))
        for n in range(1, groups)
        for kind in ("spot", "linear")
    ]


def extra_groups(groups: int) -> str:
    return "".join(
        f"""[[hedges]]
name = "x{n}"
assets = {{ X{n} = 1.0 }}
spot_accounts = ["ex"]
instrument = "X{n}/USDT:USDT"
hedge_account = "ex"
ratio = 0.5
"""
        for n in range(1, groups)
    )


def config(url: str, trigger: str, rate_limit: bool, groups: int = 1,
           streams: bool = False) -> str:  # fmt: skip
    tail = "[streams]\nenabled = true\n" if streams else ""
    return f"""\
mode = "testnet"
poll_interval = 1
[control]
enabled = false
[execution]
max_orders_per_minute = 1000
[accounts.ex]
exchange = "binance"
api_host = "{url}"
rate_limit = {str(rate_limit).lower()}
[[hedges]]
name = "g"
{GROUPS[trigger]}
spot_accounts = ["ex"]
instrument = "{PERP}"
hedge_account = "ex"
ratio = 0.5
leverage = 1
""" + extra_groups(groups) + tail


class Meter:
    """Per-cycle timings: wall time, time with HTTP in flight, engine work."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []  # HTTP requests (start, end)
        self.throttled: list[tuple[float, float]] = []  # waits in ccxt's rate limiter
        self.engine_work = 0.0
        #: per cycle: (wall, waiting on HTTP or the limiter, of which the limiter, engine work)
        self.cycles: list[tuple[float, float, float, float]] = []

    def http(
        self, fetch: Callable[..., Awaitable[Any]], into: list[tuple[float, float]] | None = None
    ) -> Callable[..., Awaitable[Any]]:
        spans = self.intervals if into is None else into

        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await fetch(*args, **kwargs)
            finally:
                spans.append((began, time.perf_counter()))

        return timed

    def work(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.engine_work += time.perf_counter() - began

        return timed

    def cycle(self, run_cycle: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.intervals.clear()
            self.throttled.clear()
            self.engine_work = 0.0
            began = time.perf_counter()
            try:
                return await run_cycle(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                waiting = _union(self.intervals + self.throttled, began, ended)
                limiter = _union(self.throttled, began, ended)
                self.cycles.append((ended - began, waiting, limiter, self.engine_work))

        return timed


def _union(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Total length covered by at least one interval, clipped to [lo, hi]."""
    total, end = 0.0, lo
    for start, stop in sorted(intervals):
        start, stop = max(start, end, lo), min(stop, hi)
        if stop > start:
            total += stop - start
            end = stop
    return total


def instrument(engine: Engine, journal: Journal, meter: Meter) -> None:
    for venue in engine.venues.values():
        while getattr(venue, "inner", None) is not None:  # the write gate wraps the adapter
            venue = venue.inner  # type: ignore[attr-defined]
        venue.transport = meter.http(venue.transport)  # type: ignore[attr-defined]
        exchange = venue.exchange  # type: ignore[attr-defined]
        exchange.throttle = meter.http(exchange.throttle, meter.throttled)
    engine.decider.decide = meter.work(engine.decider.decide)  # type: ignore[method-assign]
    for name in ("begin_cycle", "finish_cycle", "new_order", "update_order"):
        setattr(journal, name, meter.work(getattr(journal, name)))
    engine.run_cycle = meter.cycle(engine.run_cycle)  # type: ignore[method-assign]


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the daemon did not react")
        await asyncio.sleep(0.002)


async def run_case(trigger: str, rate_limit: bool, trials: int, workdir: Path, seed: int,
                   groups: int = 1, streams: bool = False,
                   quiet_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    prices: dict[str, Any] = {"BTC/USDT": 60000, "ETH/USDT": 3000}
    prices.update({f"X{n}/USDT": 10 + n for n in range(1, groups)})
    emu = Emulator("binance", {KEY: SECRET}, prices=prices,
                   markets=default_markets("binance") + extra_markets(groups))  # fmt: skip
    await emu.start()
    emu.set_futures_wallet(KEY, 1_000_000)
    for n in range(1, groups):
        emu.set_balance(KEY, f"X{n}", 100)
    if trigger == "balance":
        emu.set_balance(KEY, "BTC", "1.0")
    else:
        emu.set_balance(KEY, "ETH", "20")  # 60,000 USD: a 0.5 BTC short
    case = workdir / f"{trigger}-{rate_limit}-{groups}-{streams}"
    case.mkdir()
    path = case / "config.toml"
    path.write_text(config(emu.base_url, trigger, rate_limit, groups, streams))
    settings = load_settings(path)
    journal = Journal(case / "journal.db")
    engine = Engine(settings, build_venues(settings, journal), journal)
    meter = Meter()
    stop = asyncio.Event()
    runner: asyncio.Task[None] | None = None
    reactions: list[float] = []
    try:
        await engine.start()
        instrument(engine, journal, meter)
        runner = asyncio.create_task(engine.run(stop))
        await until(lambda: len(emu.orders(KEY)) >= groups, 15)  # the hedges open
        await asyncio.sleep(1.5)
        # REST load while nothing changes: what a quiet market costs per minute.
        requests_before, began = len(emu.requests), time.monotonic()
        await asyncio.sleep(quiet_s)
        per_minute = (len(emu.requests) - requests_before) / (time.monotonic() - began) * 60
        meter.cycles.clear()
        for trial in range(trials):
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # a random phase of the poll timer
            before = len(emu.orders(KEY))
            up = trial % 2 == 0
            changed_ms = time.time() * 1000
            if trigger == "balance":
                emu.set_balance(KEY, "BTC", "1.2" if up else "1.0")
            else:
                emu.set_price("ETH/USDT", "3090" if up else "3000")
            await until(lambda before=before: len(emu.orders(KEY)) > before)
            order = emu.orders(KEY)[before]
            reactions.append((order.created_ms - changed_ms) / 1000)
            await asyncio.sleep(0.3)  # let the order's cycle finish
    finally:
        stop.set()
        if runner is not None:
            await runner
        await engine.close()
        journal.close()
        await emu.stop()
    walls = [c[0] * 1000 for c in meter.cycles]
    process = [(c[0] - c[1]) * 1000 for c in meter.cycles]
    limiter = [c[2] * 1000 for c in meter.cycles]
    work = [c[3] * 1000 for c in meter.cycles]
    return {"trigger": trigger, "rate_limit": rate_limit, "reactions": reactions,
            "cycle_ms": walls, "process_ms": process, "limiter_ms": limiter,
            "engine_ms": work, "requests_per_minute": per_minute}  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--groups", default="1,3", help="groups on the account, e.g. 1,3")
    parser.add_argument("--limiter", default="off,on", help="rate limiter: off,on")
    parser.add_argument("--streams", default="off", help="push streams: off,on")
    parser.add_argument("--quiet", type=float, default=10.0,
                        help="seconds of a still market to count REST requests in")  # fmt: skip
    args = parser.parse_args()
    stream_modes = [part.strip() == "on" for part in args.streams.split(",")]
    sizes = [int(n) for n in args.groups.split(",")]
    limiters = [part.strip() == "on" for part in args.limiter.split(",")]
    configure_logging("info", "json", stream=open(os.devnull, "w"))
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY"] = KEY
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET"] = SECRET
    print(f"{'groups':>6} {'streams':>7} {'trigger':>8} {'limiter':>8} | "
          f"{'reaction p50':>12} {'p95':>6} {'max':>6} | "
          f"{'cycle p50':>9} {'p95':>6} | {'limiter p50':>11} | {'process p50':>11} {'p95':>6} | "
          f"{'engine p50':>10} {'p95':>6} | {'quiet REST/min':>14}   (s | ms)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for groups, streams, rate_limit, trigger in (
            (g, s, r, t) for g in sizes for s in stream_modes for r in limiters
            for t in ("balance", "price")
        ):  # fmt: skip
            result = await run_case(trigger, rate_limit, args.trials, Path(tmp), seed=7,
                                    groups=groups, streams=streams,
                                    quiet_s=args.quiet)  # fmt: skip
            r, c = result["reactions"], result["cycle_ms"]
            p, e = result["process_ms"], result["engine_ms"]
            lim = result["limiter_ms"]
            print(f"{groups:>6} {'on' if streams else 'off':>7} {trigger:>8} "
                  f"{'on' if rate_limit else 'off':>8} | "
                  f"{statistics.median(r):>12.3f} {pct(r, 0.95):>6.3f} {max(r):>6.3f} | "
                  f"{statistics.median(c):>9.1f} {pct(c, 0.95):>6.1f} | "
                  f"{statistics.median(lim):>11.1f} | "
                  f"{statistics.median(p):>11.1f} {pct(p, 0.95):>6.1f} | "
                  f"{statistics.median(e):>10.2f} {pct(e, 0.95):>6.2f} | "
                  f"{result['requests_per_minute']:>14.1f}")  # fmt: skip
    print(
        "reaction: change at the emulator -> order accepted by it (s); cycle: wall time of "
        "a cycle; limiter: time waiting in ccxt's rate limiter; process: cycle minus the "
        "time waiting on HTTP or the limiter (ccxt's own work included); engine: decide + "
        "journal writes (ms); quiet REST/min: HTTP requests a minute while nothing changes. "
        "Targets: reaction p95 <= 1.2 s polling, <= 0.15 s streaming; daemon-side <= 20 ms."
    )


if __name__ == "__main__":
    asyncio.run(main())
