"""`plan --json` contracts for the guides' examples: rebalancing, and a hedge window."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CONTRACT_TOML
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
