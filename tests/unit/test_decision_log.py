"""One log line per group per cycle only when something happens: an unchanged hold
goes to debug, orders, skips and blocks stay at info/warning."""

from __future__ import annotations

import io
import json
from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

CONFIG = """\
mode = "dry-run"
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = { BTC = 70000 }
balances = { BTC = 1.0 }
contract_sizes = { BTC = 0.01 }
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
spot_accounts = ["demo"]
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
tolerance = 0.02
"""


async def test_unchanged_holds_are_logged_at_debug_only(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    settings = load_settings(config)
    journal = Journal(tmp_path / "journal.db")
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings, epoch=0.0)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal)
    try:
        await engine.start()
        actions = [(await engine.run_cycle()).decisions[0].action for _ in range(4)]
        sim.set_balance("BTC", D("2"))  # the hedge is short by half: an order
        actions += [(await engine.run_cycle()).decisions[0].action for _ in range(3)]
    finally:
        await engine.close()
        journal.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [line["action"] for line in lines if line["event"] == "plan.decided"]
    assert actions == ["order", "hold", "hold", "hold", "order", "hold", "hold"]
    # Every order and the first hold after it; the holds after a hold are not at info.
    assert logged == ["order", "hold", "order", "hold"]
    # The journal still has every decision.
    assert [d["action"] for d in journal_decisions(tmp_path)] == actions


def journal_decisions(tmp_path: Path) -> list[dict[str, object]]:
    journal = Journal(tmp_path / "journal.db", read_only=True)
    try:
        return journal.decisions()
    finally:
        journal.close()
