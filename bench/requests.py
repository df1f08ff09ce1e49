"""Benchmark: requests, weight and time per cycle, start-up, idle CPU; groups per account.

Run by hand: ``.venv/bin/python bench/requests.py [--quick]``. The real engine with the
real ccxt adapter (testnet mode, ccxt's rate limiting on, as shipped) runs against the
local emulator (Binance and Bybit dialects) with 1, 3, 10 and 50 hedge groups on one
account, and prints per cycle once started: the requests the emulator received, the
ccxt rate-limit cost and (Binance) the request weight, and the cycle's wall time. Then
it starts ``hedgekeeper run`` as a process with 1, 3 and 20 groups and prints the time
from process start to the first ``plan.decided`` log line, cold and then again with the
market cache warm, and the daemon's CPU use while it polls every second (CPU-s/h).

Several groups on one account used to stall each cycle about 2 s (issue #15): the
open-orders read lost its symbol (Binance USDⓈ-M cost 1 -> 40) and left ccxt's
one-token futures bucket 2 s in debt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the ``requests`` package that ccxt imports: take its own
# folder off the path so that import finds the package, not this script.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(ROOT / "daemon"), str(ROOT)]

from tests.emulator import Emulator  # noqa: E402
from tests.emulator.markets import MarketDef  # noqa: E402

from hedgekeeper.engine import Engine  # noqa: E402
from hedgekeeper.journal import Journal  # noqa: E402
from hedgekeeper.logs import configure_logging  # noqa: E402
from hedgekeeper.settings import load_settings  # noqa: E402
from hedgekeeper.venues import build_venues  # noqa: E402
from hedgekeeper.venues.ccxt_client import _family  # noqa: E402

KEY, SECRET = "bench-key", "bench-secret"
D = Decimal


def markets(groups: int) -> list[MarketDef]:
    out = []
    for n in range(groups):
        asset = f"A{n}"
        out.append(
            MarketDef(asset, "USDT", "spot", D("0.01"), D("0.001"), D("0.001"), D("1e6"), D(5))
        )
        out.append(
            MarketDef(asset, "USDT", "linear", D("0.01"), D("0.001"), D("0.001"), D("1e6"), D(5))
        )
    return out


def config(groups: int, dialect: str, url: str) -> str:
    lines = [
        'mode = "testnet"', "poll_interval = 1", "[control]", "enabled = false",
        "[execution]", "max_orders_per_minute = 1000",
        "[accounts.ex]", f'exchange = "{dialect}"', f'api_host = "{url}"',
    ]  # fmt: skip
    for n in range(groups):
        lines += [
            "[[hedges]]", f'name = "g{n}"', f"assets = {{ A{n} = 1.0 }}",
            'spot_accounts = ["ex"]', f'instrument = "A{n}/USDT:USDT"', 'hedge_account = "ex"',
            "ratio = 0.5",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class CycleFigures:
    """Means per cycle at steady state."""

    requests: float
    cost: float  # ccxt's rate-limit cost
    weight: float  # Binance request weight (spot cost is 0.2 x weight in ccxt)
    cycle_ms: float  # median wall time
    paths: Counter[str]


def record_costs(engine: Engine, into: list[tuple[str, float]]) -> None:
    """Record (family, ccxt cost) of every request the engine's venues send."""
    for venue in engine.venues.values():
        exchange = venue.exchange  # type: ignore[attr-defined]
        throttle = exchange.throttle

        def recording(cost: float | None = None, throttle: Any = throttle) -> Any:
            into.append((_family.get(), 1.0 if cost is None else float(cost)))
            return throttle(cost)

        exchange.throttle = recording


def weight_of(dialect: str, costs: list[tuple[str, float]]) -> float:
    if dialect != "binance":
        return sum(cost for _, cost in costs)
    return sum(cost if family in ("fapi", "dapi") else cost / 0.2 for family, cost in costs)


async def requests_per_cycle(dialect: str, groups: int, workdir: Path) -> CycleFigures:
    emu = Emulator(dialect, {KEY: SECRET}, markets=markets(groups),
                   prices={f"A{n}/USDT": 10 + n for n in range(groups)})  # fmt: skip
    await emu.start()
    for n in range(groups):
        emu.set_balance(KEY, f"A{n}", 100)
    emu.set_futures_wallet(KEY, 1_000_000)
    path = workdir / f"{dialect}-{groups}.toml"
    path.write_text(config(groups, dialect, emu.base_url))
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY"] = KEY
    os.environ["HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET"] = SECRET
    settings = load_settings(path)
    journal = Journal(workdir / f"{dialect}-{groups}.db")
    engine = Engine(settings, build_venues(settings, journal), journal)
    costs: list[tuple[str, float]] = []
    try:
        await engine.start()
        record_costs(engine, costs)
        await engine.run_cycle()  # opens every hedge
        await engine.run_cycle()
        counts, walls, cost, weight = [], [], 0.0, 0.0
        paths: Counter[str] = Counter()
        for _ in range(5):
            emu.clear_requests()
            costs.clear()
            began = time.perf_counter()
            report = await engine.run_cycle()
            walls.append((time.perf_counter() - began) * 1000)
            unsettled = [(d.group, d.reason) for d in report.decisions if d.action != "hold"]
            assert not unsettled, f"groups not settled: {unsettled[:3]}"
            counts.append(len(emu.requests))
            cost += sum(c for _, c in costs) / 5
            weight += weight_of(dialect, costs) / 5
            paths.update(f"{r.method} {r.path}" for r in emu.requests)
        return CycleFigures(statistics.mean(counts), cost, weight, statistics.median(walls), paths)
    finally:
        await engine.close()
        journal.close()
        await emu.stop()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the warm start reuses the cold start's emulator URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_and_idle(
    dialect: str, groups: int, workdir: Path, idle_s: float, port: int = 0
) -> tuple[float, float]:
    """Seconds from process start to the first decision, and CPU-s/h polling afterwards.

    The state directory is kept between calls with the same ``dialect`` and ``groups``:
    a second start on the same ``port`` finds the market cache warm.
    """
    emu = Emulator(dialect, {KEY: SECRET}, markets=markets(groups), port=port,
                   prices={f"A{n}/USDT": 10 + n for n in range(groups)})  # fmt: skip
    await emu.start()
    for n in range(groups):
        emu.set_balance(KEY, f"A{n}", 100)
    emu.set_futures_wallet(KEY, 1_000_000)
    path = workdir / f"start-{dialect}-{groups}.toml"
    path.write_text(config(groups, dialect, emu.base_url))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon")}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedgekeeper", "run", "--config", str(path),
        "--state-dir", str(workdir / f"state-{dialect}-{groups}"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async for raw in proc.stderr:
            line = raw.decode()
            if line.startswith("{") and json.loads(line).get("event") == "plan.decided":
                break
        else:
            raise RuntimeError("the daemon stopped before deciding")
        first = time.monotonic() - started

        async def discard() -> None:
            assert proc.stderr is not None
            async for _ in proc.stderr:
                pass

        drain = asyncio.create_task(discard())
        if idle_s <= 0:
            return first, 0.0
        await asyncio.sleep(3.0)  # the hedges open; then steady polling
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(idle_s)
        per_hour = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 3600
        return first, per_hour
    finally:
        proc.terminate()
        await proc.wait()
        if drain is not None:
            drain.cancel()
        await emu.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Binance only, fewer sizes")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of CPU sampling")
    args = parser.parse_args()
    configure_logging("error", "json", stream=open(os.devnull, "w"))
    dialects = ("binance",) if args.quick else ("binance", "bybit")
    sizes = (1, 3, 10) if args.quick else (1, 3, 10, 50)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"{'exchange':>9} {'groups':>6} {'requests':>8} {'cost':>7} {'weight':>7} "
              f"{'cycle ms':>9}  breakdown (per cycle)")  # fmt: skip
        for dialect in dialects:
            for groups in sizes:
                f = await requests_per_cycle(dialect, groups, workdir)
                per_cycle = ", ".join(f"{p} x{c / 5:g}" for p, c in sorted(f.paths.items()))
                print(f"{dialect:>9} {groups:>6} {f.requests:>8.1f} {f.cost:>7.1f} "
                      f"{f.weight:>7.1f} {f.cycle_ms:>9.1f}  {per_cycle}")  # fmt: skip
        print(f"{'exchange':>9} {'groups':>6} {'start->decision s, cold':>23} {'warm':>6} "
              f"{'idle CPU-s/h (1-s polling)':>27}")  # fmt: skip
        for dialect in dialects:
            for groups in (1, 3) if args.quick else (1, 3, 20):
                port = free_port()
                cold, _ = await start_and_idle(dialect, groups, workdir, 0, port)
                warm, per_hour = await start_and_idle(dialect, groups, workdir, args.idle, port)
                print(f"{dialect:>9} {groups:>6} {cold:>23.2f} {warm:>6.2f} {per_hour:>27.1f}")


if __name__ == "__main__":
    asyncio.run(main())
