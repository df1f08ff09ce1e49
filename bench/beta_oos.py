"""Out-of-sample hedge effectiveness of estimated betas vs beta 1 (prints figures).

The seven-altcoin basket (SOL, DOGE, XRP, BNB, AVAX, LINK, ADA; equal USD weights,
Binance spot, hourly, 2025-08 to 2026-02) hedged 100 % with the ETH perpetual. Betas
are estimated on the past ``window`` bars only and refreshed every ``refresh`` bars,
as the daemon does; effectiveness is 1 - Var(hedged) / Var(unhedged) over every
later bar. Needs ../shared/data/binance.

    .venv/bin/python bench/beta_oos.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from hedgekeeper.beta import BetaRules, walk_forward  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "binance"
ALTS = ("SOL", "DOGE", "XRP", "BNB", "AVAX", "LINK", "ADA")


def closes(path: Path) -> dict[int, float]:
    with path.open() as handle:
        rows = csv.reader(handle)
        next(rows)
        return {int(row[0]): float(row[4]) for row in rows}


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: ../shared is not beside the repo")
    basket = {a: closes(DATA / f"binance_spot_{a}USDT_1h.csv") for a in ALTS}
    eth = closes(DATA / "binance_perp_ETHUSDT_1h.csv")
    print(f"{'window':>6} {'half-life':>9} {'shrink':>6} {'bars':>5} {'estimate':>9} "
          f"{'beta 1':>7} {'residual':>8} {'mean beta':>9}")  # fmt: skip
    for window in (168, 720, 1440):
        for halflife in (None, 168.0):
            for shrink in (0.0, 0.1, 0.3):
                rules = BetaRules(shrink=shrink, halflife=halflife)
                r = walk_forward(basket, eth, rules, window=window, refresh=24)
                residual = (1 - r.effectiveness_estimate) / (1 - r.effectiveness_fixed)
                print(f"{window:>6} {halflife or '-':>9} {shrink:>6} {r.bars:>5} "
                      f"{r.effectiveness_estimate:>9.4f} {r.effectiveness_fixed:>7.4f} "
                      f"{residual:>8.3f} {r.mean_beta:>9.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
