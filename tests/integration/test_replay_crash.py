"""Real history through the guards: SOL on Binance during the crash of 10 October 2025.

At 21:15 UTC the SOL perpetual closed at 148.52 while spot was at 180.05 — a
-17.5 % basis — after falling from 185 in five minutes. A daemon hedging SOL with
the perp must not trade into that dislocation (basis and jump guards), must keep
the hedge within its cap throughout, and must be back within tolerance once the
market is orderly again. The data are real Binance 5-minute bars from ../shared.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.conftest import shared_or_skip

START_MS = 1760128800000  # 2025-10-10 20:40 UTC
DISLOCATION_MS = {1760130600000, 1760130900000}  # the 21:10 and 21:15 bars


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_no_trade_into_the_october_2025_dislocation(tmp_path: Path) -> None:
    spot = shared_or_skip("data", "binance", "binance_spot_SOLUSDT_5m.csv")
    perp = shared_or_skip("data", "binance", "binance_perp_SOLUSDT_5m.csv")
    configure_logging("error", "json")
    config = tmp_path / "c.toml"
    config.write_text(f"""\
mode = "dry-run"
[execution]
max_orders_per_minute = 1000
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ SOL = 200, ETH = 4000 }}
balances = {{ SOL = 1000, ETH = 10 }}
contract_sizes = {{ SOL = 1 }}
replay = {{ SOL = "{spot}" }}
replay_perp = {{ SOL = "{perp}" }}
replay_start = {START_MS}
speed = 300
[[hedges]]
name = "sol"
assets = {{ SOL = 1.0, ETH = 0.0 }}
spot_accounts = ["demo"]
instrument = "SOL/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
tolerance = 0.02
max_basis = 0.03
max_jump = 0.15
""")
    settings = load_settings(config)
    journal = Journal(tmp_path / "journal.db")
    clock = Clock()
    assert settings.accounts["demo"].sim is not None
    sim = SimVenue("demo", settings.accounts["demo"].sim, clock=clock, epoch=0.0)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal)
    await engine.start()

    blocked_reasons: list[str] = []
    for bar in range(24):  # 20:40 -> 22:35, one cycle per 5-minute bar
        clock.now = float(bar)  # speed 300: one wall second is one bar
        bar_ms = START_MS + bar * 300_000
        orders_before = len(journal.orders())
        report = await engine.run_cycle()
        (decision,) = report.decisions
        if bar_ms in DISLOCATION_MS:
            assert len(journal.orders()) == orders_before, (
                f"traded into the dislocation at {bar_ms}"
            )
            if decision.action == "blocked":
                blocked_reasons.append(decision.reason)
        plan = decision.plan
        assert plan is not None
        hedge = -journal.paper_positions("demo").get("SOL/USDT:USDT", D(0))
        assert hedge <= plan.target.cap_contracts, "never over the cap"
    assert any(r.startswith(("basis:", "jump:")) for r in blocked_reasons), blocked_reasons
    assert any(r.startswith("basis:") for r in blocked_reasons), "the -17.5 % basis was seen"
    # orderly again by the end: the hedge is 500 SOL (50 % of 1000), within tolerance
    hedge = -journal.paper_positions("demo")["SOL/USDT:USDT"]
    assert abs(hedge - 500) <= D("0.02") * 500
    journal.close()
