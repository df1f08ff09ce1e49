"""Benchmark: journal bytes per simulated day, without and with retention.

Run by hand: ``.venv/bin/python bench/journal_growth.py`` (``--groups 10 --days 6
--cycle-seconds 300 --keep-days 2``). The real engine (sim + paper, calm market: mostly
holds, an order now and then) runs ``days`` simulated days, one cycle every
``cycle-seconds`` of simulated time, twice: with ``journal_keep_days = 0`` (keep
everything, as before retention) and with ``--keep-days``. After each cycle the engine's
retention is polled as ``Engine.run`` does (at most once per simulated hour, on a worker
thread). Prints, at the end of each day, the journal file size (database + WAL) and the
bytes its pages hold, then the growth per day over the last days and the journal bytes
per group per cycle, projected to 1-s polling (86,400 cycles a day).

Synchronous commits are turned off for speed here (the bytes written do not depend on
it); everything else is the daemon's own path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cycle import config
from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def sizes(journal: Journal, path: Path) -> tuple[int, int]:
    """(bytes on disk: database + WAL, bytes in used pages)."""
    db = journal._db
    page = int(db.execute("PRAGMA page_size").fetchone()[0])
    used = page * (int(db.execute("PRAGMA page_count").fetchone()[0])
                   - int(db.execute("PRAGMA freelist_count").fetchone()[0]))  # fmt: skip
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0), used


async def run(workdir: Path, groups: int, days: int, cycle_seconds: float,
              keep_days: float) -> list[tuple[int, int, int]]:  # fmt: skip
    """Per simulated day: (file bytes, used bytes, cycles rows left)."""
    text = config(groups, "0.6", 1)  # prices move in simulated real time
    text = text.replace('mode = "dry-run"', f'mode = "dry-run"\njournal_keep_days = {keep_days}')
    cfg = workdir / f"keep{keep_days}.toml"
    cfg.write_text(text)
    settings = load_settings(cfg)
    clock = Clock()
    path = workdir / f"journal-keep{keep_days}.db"
    journal = Journal(path, clock=clock)
    journal._db.execute("PRAGMA synchronous=OFF")
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings, clock=clock, epoch=clock.now)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal,
                    clock=clock)  # fmt: skip
    await engine.start()
    per_day = int(DAY / cycle_seconds)
    out = []
    for _ in range(days):
        for _ in range(per_day):
            await engine.run_cycle()
            engine.retention.poll()
            await engine.retention.wait()
            clock.now += cycle_seconds
        journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cycles = int(journal._db.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])
        out.append((*sizes(journal, path), cycles))
    await engine.close()
    journal.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--cycle-seconds", type=float, default=300.0)
    parser.add_argument("--keep-days", type=float, default=2.0)
    args = parser.parse_args()
    configure_logging("warning", "json", stream=open(os.devnull, "w"))
    per_day = int(DAY / args.cycle_seconds)
    print(f"{args.groups} groups, {per_day} cycles per simulated day, {args.days} days")
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # the journal on the real disk
        for keep in (0.0, args.keep_days):
            days = await run(Path(tmp), args.groups, args.days, args.cycle_seconds, keep)
            label = "keep everything (before)" if keep == 0 else f"journal_keep_days = {keep:g}"
            print(f"\n{label}")
            print(f"{'day':>4} {'file KiB':>10} {'used KiB':>10} {'cycle rows':>11}")
            for day, (file_bytes, used, cycles) in enumerate(days, 1):
                print(f"{day:>4} {file_bytes / 1024:>10.1f} {used / 1024:>10.1f} {cycles:>11}")
            tail = days[-3:]
            growth = (tail[-1][0] - tail[0][0]) / (len(tail) - 1)
            used_growth = (tail[-1][1] - tail[0][1]) / (len(tail) - 1)
            print(f"file growth per day over the last {len(tail) - 1} days: {growth / 1024:.1f} KiB"
                  f" (used pages {used_growth / 1024:.1f} KiB)")
            if keep == 0:
                per_cycle = (days[-1][1] - days[0][1]) / ((args.days - 1) * per_day * args.groups)
                print(f"journal bytes per group per cycle: {per_cycle:.0f}; at 1-s polling "
                      f"{per_cycle * 86400 / 1e6:.1f} MB per group-day, "
                      f"{per_cycle * 86400 * 30 / 1e6:.0f} MB per group-month")
                print("with retention the file levels off near keep_days x that per day")


if __name__ == "__main__":
    asyncio.run(main())
