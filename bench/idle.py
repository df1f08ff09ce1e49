"""Idle cost of the daemon: average CPU % and memory (RSS) of ``hedgekeeper run``.

Runs the daemon on the offline demo (sim venue, dry-run, no network) with the
control channel on, samples ``/proc/<pid>`` once a second after start-up, and prints
the figures. Linux only.

    .venv/bin/python bench/idle.py                      # 300 s, poll_interval 10
    .venv/bin/python bench/idle.py --duration 60 --poll-interval 2 --metrics
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds to measure")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "offline-demo.toml")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--metrics", action="store_true", help="also serve Prometheus metrics")
    options = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="hk-idle-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEDGEKEEPER_", "NOTIFY_"))}
    env.update(
        PYTHONPATH=str(REPO / "daemon"),
        HEDGEKEEPER_POLL_INTERVAL=str(options.poll_interval),
        HEDGEKEEPER_CONTROL__PORT="0",
        HEDGEKEEPER_LOG__FORMAT="json",
    )
    if options.metrics:
        env["HEDGEKEEPER_METRICS__PORT"] = "0"
    log_path = state / "stderr.log"
    command = [
        sys.executable,
        "-m",
        "hedgekeeper",
        "run",
        "--config",
        str(options.config),
        "--state-dir",
        str(state),
    ]
    launched = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while '"daemon.started"' not in log_path.read_text():
            if process.poll() is not None or time.monotonic() - launched > 60:
                print(log_path.read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.05)
        startup = time.monotonic() - launched
        startup_cpu = cpu_seconds(process.pid)
        wall_start, cpu_start = time.monotonic(), startup_cpu
        samples: list[int] = []
        while time.monotonic() - wall_start < options.duration:
            samples.append(rss_bytes(process.pid))
            time.sleep(1.0)
        wall = time.monotonic() - wall_start
        cpu = cpu_seconds(process.pid) - cpu_start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    events = [json.loads(line).get("event") for line in log_path.read_text().splitlines()]
    shutil.rmtree(state, ignore_errors=True)
    cycles = events.count("cycle.completed")
    mib = 1024 * 1024
    print(
        f"hedgekeeper idle: {options.config.name}, poll_interval {options.poll_interval:g} s, "
        f"metrics {'on' if options.metrics else 'off'}, control on"
    )
    print(f"  start-up           {startup:.2f} s wall, {startup_cpu:.2f} s CPU")
    print(f"  measured           {wall:.0f} s, {cycles} cycles")
    print(f"  CPU                {100 * cpu / wall:.3f} % of one core on average")
    print(
        f"  RSS                {sum(samples) / len(samples) / mib:.1f} MiB average, "
        f"{max(samples) / mib:.1f} MiB max"
    )
    print(f"  log                {len(events)} lines, exit code {process.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
