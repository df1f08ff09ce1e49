"""Benchmark: HTTP requests per cycle per account, and time to the first decision.

Run by hand: ``.venv/bin/python bench/requests.py``. For 1, 10 and 50 hedge groups
on one account it runs the real engine with the real ccxt adapter (testnet mode)
against the local emulator (Binance and Bybit dialects), and prints the requests
the emulator received per cycle once started (target: 4, whatever the number of
groups). Then it starts ``hedgekeeper run`` as a process and prints the time from
process start to the first ``plan.decided`` log line.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

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


async def requests_per_cycle(
    dialect: str, groups: int, workdir: Path
) -> tuple[float, Counter[str]]:
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
    try:
        await engine.start()
        await engine.run_cycle()  # opens every hedge
        await engine.run_cycle()
        counts = []
        paths: Counter[str] = Counter()
        for _ in range(5):
            emu.clear_requests()
            report = await engine.run_cycle()
            unsettled = [(d.group, d.reason) for d in report.decisions if d.action != "hold"]
            assert not unsettled, f"groups not settled: {unsettled[:3]}"
            counts.append(len(emu.requests))
            paths.update(f"{r.method} {r.path}" for r in emu.requests)
        return statistics.mean(counts), paths
    finally:
        await engine.close()
        journal.close()
        await emu.stop()


async def time_to_first_decision(dialect: str, workdir: Path) -> float:
    emu = Emulator(dialect, {KEY: SECRET}, prices={"BTC/USDT": 60000})
    await emu.start()
    emu.set_balance(KEY, "BTC", 1)
    emu.set_futures_wallet(KEY, 100_000)
    path = workdir / f"start-{dialect}.toml"
    path.write_text(config(0, dialect, emu.base_url) + "\n".join([
        "[[hedges]]", 'name = "btc"', "assets = { BTC = 1.0 }", 'spot_accounts = ["ex"]',
        'instrument = "BTC/USDT:USDT"', 'hedge_account = "ex"', "ratio = 0.5", "",
    ]))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon")}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedgekeeper", "run", "--config", str(path),
        "--state-dir", str(workdir / f"state-{dialect}"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async for raw in proc.stderr:
            line = raw.decode()
            if line.startswith("{") and json.loads(line).get("event") == "plan.decided":
                return time.monotonic() - started
        raise RuntimeError("the daemon stopped before deciding")
    finally:
        proc.terminate()
        await proc.wait()
        await emu.stop()


async def main() -> None:
    configure_logging("error", "json", stream=open(os.devnull, "w"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"{'exchange':>9} {'groups':>7} {'requests/cycle':>15}  breakdown")
        for dialect in ("binance", "bybit"):
            for groups in (1, 10, 50):
                mean, paths = await requests_per_cycle(dialect, groups, workdir)
                per_cycle = ", ".join(f"{p} x{c / 5:g}" for p, c in sorted(paths.items()))
                print(f"{dialect:>9} {groups:>7} {mean:>15.1f}  {per_cycle}")
        for dialect in ("binance", "bybit"):
            seconds = await time_to_first_decision(dialect, workdir)
            print(f"{dialect}: process start to first decision {seconds:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
