"""The backtest runs the engine once per bar in market time; its figures add up by hand."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hedgekeeper.backtest.analysis import analyse
from hedgekeeper.backtest.runner import load_data, run_backtest
from hedgekeeper.cli import app
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from tests.backtest.helpers import HOUR_MS, START_MS, btc_config, write_bars, write_funding

STEPS = 12
#: spot has no bars at steps 6, 7 and 8: step 6 is held (max_hold 1), 7 and 8 sit out
SPOT_GAP = (6, 7, 8)


def _price(step: int) -> float:
    return 70000.0 if step < 4 else 80000.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bars"
    perp = [(START_MS + i * HOUR_MS, _price(i)) for i in range(STEPS)]
    write_bars(directory, "perp", "BTC", perp)
    write_bars(directory, "spot", "BTC", [(START_MS + i * HOUR_MS, _price(i))
                                          for i in range(STEPS) if i not in SPOT_GAP])  # fmt: skip
    # settles at the close of step 1 (held through it: the short opened at step 0)
    write_funding(directory, "BTC", [(START_MS + 2 * HOUR_MS, "0.0001"),
                                     (START_MS + 100 * HOUR_MS, "0.0001")])  # fmt: skip
    return directory


async def test_one_cycle_per_bar_with_hand_worked_figures(tmp_path: Path, data_dir: Path) -> None:
    configure_logging("error", "json")
    settings = load_settings(btc_config(tmp_path))
    data = load_data(settings, data_dir, "1h", max_hold=1)

    run = await run_backtest(settings, data)
    (result,) = analyse(run)

    trace = run.groups["btc"]
    assert len(trace.hedge) == STEPS == sum(trace.actions.values())
    assert trace.orders == 1 and trace.hedge[0] == 50  # 50 % of 1 BTC = 50 x 0.01 BTC
    assert trace.sat_out == {"price of BTC is missing": 2}
    assert result.missing_bars == {"spot:BTC": 2} and result.held_bars == {"spot:BTC": 1}
    # the order went through the journal, dated in market time (the close of bar 0)
    (fill,) = run.journal.fills()
    assert fill["at"] == (START_MS + HOUR_MS) / 1000
    # paper fill model: bid = 70000 x (1 - 1 bp), then 1 bp of slippage; 5 bp taker fee
    price = D(70000) * (1 - D("0.0001")) * (1 - D("0.0001"))
    assert D(fill["price"]) == price.quantize(D("1e-8"))
    fee = (50 * D("0.01") * D(fill["price"]) * D("0.0005")).quantize(D("1e-8"))
    assert D(fill["fee_usd"]) == fee
    product = result.hedgekeeper
    futures = 50 * 0.01 * (float(fill["price"]) - 80000)  # short 0.5 BTC from the fill to 80000
    funding = 50 * 0.01 * 70000 * 0.0001  # received: positive rate, short
    assert product.fees_usd == pytest.approx(float(fee))
    assert product.funding_usd == pytest.approx(funding)
    assert product.futures_pnl_usd == pytest.approx(futures)
    assert product.net_cost_usd == pytest.approx(float(fee) - futures - funding)
    assert result.spot_pnl_usd == pytest.approx(10000.0)
    run.journal.close()


def test_cli_backtest_json_and_bad_input(tmp_path: Path, data_dir: Path) -> None:
    config = btc_config(tmp_path)
    runner = CliRunner()
    done = runner.invoke(app, ["backtest", "-c", str(config), "--data", str(data_dir), "--json",
                               "--max-hold", "1"])  # fmt: skip
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["bars"] == STEPS
    (group,) = document["groups"]
    assert group["hedgekeeper"]["orders"] == 1
    assert [r["policy"] for r in group["references"]] == [
        "no hedge", "exact every bar", "every hour", "every day"]  # fmt: skip
    assert group["sat_out"] == {"price of BTC is missing": 2}

    missing = runner.invoke(app, ["backtest", "-c", str(config), "--data", str(tmp_path / "no")])
    assert missing.exit_code == 2 and "binance_spot_BTCUSDT_1h.csv" in missing.output
    both = runner.invoke(app, ["backtest", "-c", str(config)])
    assert both.exit_code == 2 and "exactly one of --data DIR and --fetch" in both.output
    when = runner.invoke(app, ["backtest", "-c", str(config), "--data", str(data_dir),
                               "--from", "yesterday"])  # fmt: skip
    assert when.exit_code == 2 and "--from: 'yesterday' is not a date" in when.output


def test_journal_file_keeps_orders_fills_and_funding(tmp_path: Path, data_dir: Path) -> None:
    config = btc_config(tmp_path)
    journal = tmp_path / "bt.db"
    done = CliRunner().invoke(app, ["backtest", "-c", str(config), "--data", str(data_dir),
                                    "--journal", str(journal), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    from hedgekeeper.journal import Journal

    kept = Journal(journal)
    assert [o.request.amount for o in kept.orders()] == [D(50)]
    assert len(kept.paper_funding("demo", 0, 1e12)) == 1
    kept.close()


def test_report_on_the_backtest_journal_gives_the_backtest_figures(
    tmp_path: Path, data_dir: Path
) -> None:
    config = btc_config(tmp_path)
    journal = tmp_path / "bt.db"
    runner = CliRunner()
    done = runner.invoke(app, ["backtest", "-c", str(config), "--data", str(data_dir),
                               "--journal", str(journal), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    product = json.loads(done.stdout)["groups"][0]["hedgekeeper"]
    shown = runner.invoke(app, ["report", "-c", str(config), "--journal", str(journal), "--json"])
    assert shown.exit_code == 0, shown.output
    (cost,) = json.loads(shown.stdout)["groups"]
    assert cost["contracts"] == "-50" and cost["fills"] == 1
    assert float(cost["fees_usd"]) == pytest.approx(product["fees_usd"], abs=0.01)
    assert float(cost["funding_usd"]) == pytest.approx(product["funding_usd"], abs=0.01)
    assert float(cost["futures_pnl_usd"]) == pytest.approx(product["futures_pnl_usd"], abs=0.01)
    assert float(cost["net_cost_usd"]) == pytest.approx(product["net_cost_usd"], abs=0.01)
    # the spot leg: exposure at the first cycle (70000) and at the last (80000)
    assert float(cost["exposure_change_usd"]) == pytest.approx(10000.0)

    bad = runner.invoke(app, ["report", "-c", str(config), "--journal", str(journal),
                              "--mark", "BTC/USDT:USDT=-1"])  # fmt: skip
    assert bad.exit_code == 2 and "SYMBOL=PRICE" in bad.output
    none = runner.invoke(app, ["report", "-c", str(config), "--journal", str(tmp_path / "x.db")])
    assert none.exit_code == 2 and "no journal at" in none.output
