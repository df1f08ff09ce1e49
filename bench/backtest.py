"""Benchmark: backtest speed (bars per second) and what the hedge policy does with it.

Run by hand: ``.venv/bin/python bench/backtest.py [DATA_DIR]`` (default ../shared/data/binance).
Prints, for real Binance history:

* 1 BTC hedged 50 % with 0.01 BTC perps, 2020-01 → 2026-05 hourly (55,866 bars): load
  time, run time, bars per second, HE against the reference policies;
* the alt basket of ``config/backtest-alts.toml`` (2025-08 → 2026-02, hourly);
* SOL through 10 October 2025 on 5-minute bars;
* a tolerance sweep on the basket (orders against HE), the table in docs/backtest.md.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from hedgekeeper.backtest.analysis import analyse  # noqa: E402
from hedgekeeper.backtest.runner import load_data, run_backtest  # noqa: E402
from hedgekeeper.cli_backtest import parse_when  # noqa: E402
from hedgekeeper.logs import configure_logging  # noqa: E402
from hedgekeeper.settings import load_settings  # noqa: E402


async def one(title: str, config: Path, data: Path, interval: str = "1h",
              start: str | None = None, end: str | None = None) -> list:  # fmt: skip
    settings = load_settings(config)
    began = time.perf_counter()
    bars = load_data(settings, data, interval, start_ms=parse_when(start, "from"),
                     end_ms=parse_when(end, "to"))  # fmt: skip
    loaded = time.perf_counter() - began
    run = await run_backtest(settings, bars)
    results = analyse(run)
    total = time.perf_counter() - began
    steps = len(bars.timeline)
    print(f"\n{title}: {steps} bars of {interval}; load {loaded:.2f} s, engine "
          f"{run.seconds:.2f} s ({steps / run.seconds:,.0f} bars/s), analysis "
          f"{total - loaded - run.seconds:.2f} s, total {total:.2f} s")  # fmt: skip
    for result in results:
        print(f"  {result.name}: {'policy':<16}{'HE':>8}{'orders':>8}{'fees $':>10}"
              f"{'net cost $':>12}")  # fmt: skip
        for policy in [result.hedgekeeper, *result.references]:
            he = "—" if policy.he is None else f"{policy.he:.4f}"
            print(f"  {'':{len(result.name) + 2}}{policy.policy:<16}{he:>8}{policy.orders:>8}"
                  f"{policy.fees_usd:>10,.0f}{policy.net_cost_usd:>12,.0f}")  # fmt: skip
    run.journal.close()
    return results


async def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "binance"
    configure_logging("error", "json")
    await one("BTC 50 %, 2020-2026", ROOT / "config" / "backtest-btc.toml", data)
    alts = ROOT / "config" / "backtest-alts.toml"
    await one("alt basket", alts, data, start="2025-08-01", end="2026-02-18")
    await one("October 2025, 5m", ROOT / "config" / "backtest-oct2025-5m.toml", data, "5m",
              "2025-10-08", "2025-10-14")
    print("\ntolerance sweep, alt basket 2025-08 → 2026-02 (proxy hedge with ETH perps):")
    print(f"  {'tolerance':>9}{'HE':>8}{'orders':>8}{'fees $':>10}{'exact HE':>10}"
          f"{'hourly orders':>15}")
    text = alts.read_text()
    with tempfile.TemporaryDirectory() as scratch:
        for tolerance in ("0.005", "0.01", "0.02", "0.05", "0.1"):
            config = Path(scratch) / f"t{tolerance}.toml"
            tuned = f'name = "basket"\ntolerance = {tolerance}'
            config.write_text(text.replace('name = "basket"', tuned))
            settings = load_settings(config)
            bars = load_data(settings, data, "1h", start_ms=parse_when("2025-08-01", "from"),
                             end_ms=parse_when("2026-02-18", "to"))  # fmt: skip
            run = await run_backtest(settings, bars)
            basket = next(r for r in analyse(run) if r.name == "basket")
            exact = next(r for r in basket.references if r.policy == "exact every bar")
            hourly = next(r for r in basket.references if r.policy == "every hour")
            product = basket.hedgekeeper
            print(f"  {tolerance:>9}{product.he:>8.4f}{product.orders:>8}"
                  f"{product.fees_usd:>10,.0f}{exact.he:>10.4f}{hourly.orders:>15}")  # fmt: skip
            run.journal.close()


if __name__ == "__main__":
    asyncio.run(main())
