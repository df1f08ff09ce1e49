"""`plan --json` contracts for the guides' examples: rebalancing, and a hedge window."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.conftest import CONTRACT_TOML, shared_or_skip
from tests.integration.test_cli import cli

REBALANCING = """\
mode = "dry-run"
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = { BTC = 50000, ETH = 2500 }
balances = { BTC = 1.2, ETH = 8, USDT = 20000 }   # $60k BTC, $20k ETH, $20k USDT
contract_sizes = { BTC = 0.1, ETH = 0.1 }
[[hedges]]
name = "rebal"
targets = { BTC = 0.5, ETH = 0.3, USDT = 0.2 }
trigger = 0.05
instruments = { BTC = "BTC/USDT:USDT", ETH = "ETH/USDT:USDT" }
spot_accounts = ["demo"]
hedge_account = "demo"
"""

WINDOW = CONTRACT_TOML + """\
[[hedges.windows]]
label = "announcement"
start = 2026-03-18T18:00:00Z
end = 2026-03-19T06:00:00Z
ratio = 1.0
"""


def plan_json(tmp_path: Path, text: str, *args: str) -> dict:
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = cli("plan", "--config", str(config), "--json", "--state-dir", str(tmp_path / "s"),
                 *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_rebalancing_guide_example_plans_two_contracts_short(tmp_path: Path) -> None:
    document = plan_json(tmp_path, REBALANCING)
    btc, eth = document["groups"]
    assert btc["name"] == "rebal.BTC" and btc["parent"] == "rebal"
    assert btc["order"] == {"side": "sell", "contracts": "2", "reduce_only": False}
    assert btc["reason"] == "BTC weight 60% > 50% + 5%: short 2 (10000 USD overweight)"
    allocation = btc["allocation"]
    assert allocation["weights"] == {"BTC": "0.6", "ETH": "0.2", "USDT": "0.2"}
    assert allocation["targets"] == {"BTC": "0.5", "ETH": "0.3", "USDT": "0.2"}
    assert allocation["portfolio_usd"] == "100000"
    assert allocation["overweight_usd"] == "10000"
    assert eth["order"] is None and eth["allocation"]["state"] == "underweight"


def test_a_window_example_hedges_fully_over_the_announcement_only(tmp_path: Path) -> None:
    during = plan_json(tmp_path, WINDOW, "--at", "2026-03-18T20:00Z")
    (group,) = during["groups"]
    assert group["window"] == "announcement" and group["ratio"] == "1"
    assert group["order"] == {"side": "sell", "contracts": "100", "reduce_only": False}
    assert group["reason"] == "short 100 to reach 100% of 70000 USD"
    after = plan_json(tmp_path, WINDOW, "--at", "2026-03-19T06:00Z")  # the end is exclusive
    (group,) = after["groups"]
    assert "window" not in group
    assert group["order"] == {"side": "sell", "contracts": "50", "reduce_only": False}


def test_plan_at_refuses_a_bad_time(tmp_path: Path, contract_config: Path) -> None:
    result = cli("plan", "--config", str(contract_config), "--at", "next friday")
    assert result.returncode == 2
    assert "--at: not an ISO 8601 date-time" in result.stderr


def estimated_config(data: Path | None) -> str:
    replay = "" if data is None else f"""\
replay_start = 1759276800000          # 2025-10-01 00:00 UTC: two months of bars before it
replay_perp = {{ ETH = "{data / 'binance_perp_ETHUSDT_1h.csv'}" }}
[accounts.demo.sim.replay]
SOL = "{data / 'binance_spot_SOLUSDT_1h.csv'}"
ETH = "{data / 'binance_spot_ETHUSDT_1h.csv'}"
"""
    return f"""\
mode = "dry-run"
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ SOL = 200, ETH = 4000 }}
balances = {{ SOL = 100 }}
contract_sizes = {{ ETH = 0.01 }}
{replay}
[[hedges]]
name = "sol"
assets = {{ SOL = "estimate" }}
instrument = "ETH/USDT:USDT"
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 1.0
[hedges.beta]
window = 720
fallback = 1.0
"""


def test_an_estimated_beta_is_read_from_the_replayed_bars(tmp_path: Path) -> None:
    data = shared_or_skip("data", "binance")
    document = plan_json(tmp_path, estimated_config(data))
    (group,) = document["groups"]
    sol = group["betas"]["SOL"]
    assert sol["estimated"] is True and sol["samples"] == 720
    assert float(sol["r2"]) > 0.2 and sol["reason"].startswith("h* ")
    beta = Decimal(sol["beta"])
    assert Decimal("0.5") < beta < Decimal("2") and beta != 1
    # the exposure uses the estimate: 100 SOL at the replayed price x beta
    assert group["reason"].startswith("short ")


def test_without_bars_the_fallback_is_used_and_said(tmp_path: Path) -> None:
    document = plan_json(tmp_path, estimated_config(None))
    (group,) = document["groups"]
    sol = group["betas"]["SOL"]
    assert sol == {"beta": "1", "estimated": False, "r2": None, "samples": 0, "age_s": 0,
                   "reason": "no bars: demo: no replay of SOL: no past bars"}  # fmt: skip
    assert group["exposure_usd"] == "20000"  # 100 SOL x 200 x the fallback 1


async def test_an_estimate_survives_a_restart_without_reading_history(tmp_path: Path) -> None:
    """Estimates are cached in the journal: a restart within the refresh interval uses the
    cached one at once and reads no bars."""
    import io

    from hedgekeeper.engine import Engine
    from hedgekeeper.journal import Journal
    from hedgekeeper.logs import configure_logging
    from hedgekeeper.settings import load_settings
    from hedgekeeper.venues import build_venues

    data = shared_or_skip("data", "binance")
    configure_logging("warning", "json", stream=io.StringIO())
    path = tmp_path / "config.toml"
    path.write_text(estimated_config(data))
    settings = load_settings(path)
    journal = Journal(tmp_path / "journal.db")
    first = Engine(settings, build_venues(settings, journal), journal)
    await first.start()
    group = first.groups[0]
    before = first.betas.details(group)["SOL"]
    assert before["estimated"] is True
    await first.close()
    journal.close()

    journal = Journal(tmp_path / "journal.db")
    again = Engine(settings, build_venues(settings, journal), journal)
    reads: list[str] = []
    for venue in again.venues.values():
        inner = venue.inner  # type: ignore[attr-defined]
        original = inner.fetch_closes

        async def counting(symbol: str, *args: object, _o: object = original) -> object:
            reads.append(symbol)
            return await _o(symbol, *args)  # type: ignore[operator]

        inner.fetch_closes = counting
    await again.start()
    after = again.betas.details(again.groups[0])["SOL"]
    assert reads == [], "no history read within the refresh interval"
    assert after["beta"] == before["beta"] and after["estimated"] is True
    assert after["reason"].endswith("(from the journal)")
    await again.close()
    journal.close()
