"""Prometheus metrics: scrape the endpoint after real cycles; the example alert rules."""

from __future__ import annotations

import asyncio
import io
import re
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hedgekeeper.logs import configure_logging
from hedgekeeper.metrics import METRIC_NAMES, Metrics
from tests.conftest import REPO
from tests.ops.helpers import make_engine, sim_config

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_scrape_after_cycles(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    engine, sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    metrics = Metrics(engine, version="test")
    port = metrics.serve("127.0.0.1", 0)
    try:
        text = metrics.render().decode()
        for name in METRIC_NAMES:  # every family is there from the start, samples or not
            assert f"# HELP {name} " in text or f"# HELP {name}_total " in text, name
        assert "_created" not in text

        await engine.run_cycle()  # opens both hedges (paper fills)
        await asyncio.sleep(0)  # the hedge PnL gauges refresh just after the cycle
        samples = scrape(port)
        assert value(samples, "hedgekeeper_exposure_usd", group="btc") == 70000
        assert value(samples, "hedgekeeper_target_notional_usd", group="btc") == 35000
        assert value(samples, "hedgekeeper_hedge_notional_usd", group="btc") == 35000
        assert value(samples, "hedgekeeper_hedge_contracts", group="btc") == 50
        assert value(samples, "hedgekeeper_target_contracts", group="btc") == 50
        assert value(samples, "hedgekeeper_hedge_ratio", group="btc") == 0.5
        assert value(samples, "hedgekeeper_drift_usd", group="btc") == 0
        assert abs(value(samples, "hedgekeeper_drift_ratio", group="alts")) < 0.02
        assert value(samples, "hedgekeeper_orders_total", group="btc", outcome="submitted") == 1
        assert value(samples, "hedgekeeper_orders_total", group="btc", outcome="rejected") == 0
        assert value(samples, "hedgekeeper_fills_total", group="btc", side="sell") == 1
        assert value(samples, "hedgekeeper_filled_contracts_total", group="btc", side="sell") == 50
        fees = sum(Decimal(f["fee_usd"]) for f in engine.journal.fills())
        total_fees = value(samples, "hedgekeeper_fees_usd_total", group="btc") + value(
            samples, "hedgekeeper_fees_usd_total", group="alts"
        )
        assert total_fees == pytest.approx(float(fees))
        # the hedge's cost: the fee, and the spread and slippage paid against the mark
        btc_fees = value(samples, "hedgekeeper_hedge_pnl_usd", group="btc", kind="fees")
        assert btc_fees == pytest.approx(value(samples, "hedgekeeper_fees_usd_total", group="btc"))
        unrealised = value(samples, "hedgekeeper_hedge_pnl_usd", group="btc", kind="unrealised")
        assert -0.5 * 70000 * 3e-4 < unrealised < 0  # 0.5 BTC sold 1 bp + 1 bp under the mark
        assert value(samples, "hedgekeeper_hedge_pnl_usd", group="btc", kind="net_cost") == (
            pytest.approx(btc_fees - unrealised)
        )
        assert value(samples, "hedgekeeper_trading_state", state="ACTIVE") == 1
        assert value(samples, "hedgekeeper_trading_state", state="HALTED") == 0
        assert engine.last_success_at is not None
        assert value(samples, "hedgekeeper_last_success_timestamp_seconds") == pytest.approx(
            engine.last_success_at
        )
        assert value(samples, "hedgekeeper_cycles_total", result="ok") == 1
        assert value(samples, "hedgekeeper_decisions_total", group="btc", action="order") == 1
        assert (
            value(samples, "hedgekeeper_info", mode="dry-run", instance="hk", version="test") == 1
        )

        # A failed read, a halt, and an order the halt blocks.
        sim.failing.add("positions")
        await engine.run_cycle()
        sim.failing.discard("positions")
        await engine.halt("test", "metrics test")
        sim.set_price("SOL", sim.price("SOL") * 2)
        await engine.run_cycle()
        samples = scrape(port)
        assert value(samples, "hedgekeeper_errors_total", error_class="read") >= 1
        assert value(samples, "hedgekeeper_cycles_total", result="partial") == 1
        assert value(samples, "hedgekeeper_trading_state", state="HALTED") == 1
        assert value(samples, "hedgekeeper_trading_state", state="ACTIVE") == 0
        assert value(samples, "hedgekeeper_state_changes_total", state="HALTED", source="test") == 1
        assert (
            value(samples, "hedgekeeper_guard_fired_total", group="alts", rule="trading_state") == 1
        )
        assert value(samples, "hedgekeeper_drift_ratio", group="alts") < -0.1, "under-hedged"
    finally:
        metrics.close()
        await engine.close()
        engine.journal.close()


def test_alert_rules_are_valid_and_use_real_metrics() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    for wanted in (
        "HedgekeeperCyclesStale",
        "HedgekeeperHalted",
        "HedgekeeperDriftLarge",
        "HedgekeeperErrorRate",
    ):
        assert wanted in names
    known = set(METRIC_NAMES)
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "warning", "info"), rule
        assert rule["annotations"]["summary"], rule
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule
        for metric in re.findall(r"hedgekeeper_[a-z_]+", rule["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            assert base in known or base.removesuffix("_total") in {
                n.removesuffix("_total") for n in known
            }, (rule["alert"], metric)
