"""Funding end to end on sim + paper: collected once, announced, in metrics, status, summary."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hedgekeeper.logs import get_logger
from hedgekeeper.metrics import Metrics
from hedgekeeper.notify import Notifier
from hedgekeeper.redact import Redactor
from hedgekeeper.status import status_snapshot
from tests.integration.test_execution_sim import build, short

EIGHT_HOURS = 8 * 3600.0


def sample(metrics: Metrics, name: str, group: str = "btc") -> float | None:
    return metrics.registry.get_sample_value(name, {"group": group})


async def test_paper_hedge_funding_is_counted_once_and_shown_everywhere(tmp_path: Path) -> None:
    engine, journal, venue, _paper, clock = build(tmp_path)
    events: list[dict[str, Any]] = []
    engine.events.add_listener(events.append)
    metrics = Metrics(engine)
    notifier = Notifier(lambda n: True, redactor=Redactor([]), log=get_logger(), engine=engine)
    engine.events.add_listener(notifier.on_event)
    await engine.start()
    await engine.run_cycle()
    assert short(journal) == 50, "half of 1 BTC at 70,000 in 0.01 BTC contracts"
    assert await engine.funding.collect() == [], "no settlement yet"

    clock.now += EIGHT_HOURS  # exactly one settlement passes: short 35,000 USD at 0.01 %
    await engine.run_cycle()
    [record] = await engine.funding.collect()
    assert (record.group, record.payment.amount, record.amount_usd) == ("btc", D("3.5"), D("3.5"))
    assert await engine.funding.collect() == [], "read again (the overlap): not counted twice"
    assert journal.funding_usd() == {"btc": D("3.5")}

    [settled] = [e for e in events if e["event"] == "funding.settled"]
    assert settled["group"] == "btc" and settled["amount_usd"] == "3.5"
    assert settled["asset"] == "USDT" and settled["rate"] == "0.0001"
    assert sample(metrics, "hedgekeeper_funding_net_usd") == 3.5
    assert sample(metrics, "hedgekeeper_funding_received_usd_total") == 3.5
    assert sample(metrics, "hedgekeeper_funding_paid_usd_total") == 0.0
    [group] = status_snapshot(engine)["groups"]
    assert group["funding_usd_24h"] == "3.5" and group["funding_usd_total"] == "3.5"
    assert status_snapshot(engine)["funding"]["last_error"] is None
    assert "funding 3.5 USD" in notifier.summary().body

    # The rate turns negative: the short pays.
    venue._schedules["BTC/USDT:USDT"]._rate = D("-0.0002")
    clock.now += EIGHT_HOURS
    await engine.run_cycle()  # the settlement waited for was announced at 0.0001 ...
    clock.now += EIGHT_HOURS
    await engine.run_cycle()  # ... the next one at -0.0002
    new = await engine.funding.collect()
    assert [r.payment.amount for r in new] == [D("3.5"), D("-7")]
    assert sample(metrics, "hedgekeeper_funding_net_usd") == 0.0
    assert sample(metrics, "hedgekeeper_funding_paid_usd_total") == 7.0

    # A restarted daemon's metrics start from the journal's total.
    assert sample(Metrics(engine), "hedgekeeper_funding_net_usd") == 0.0


async def test_a_failed_funding_read_is_logged_retried_and_never_blocks_hedging(
    tmp_path: Path,
) -> None:
    engine, journal, venue, _paper, clock = build(tmp_path)
    metrics = Metrics(engine)
    await engine.start()
    await engine.run_cycle()
    clock.now += EIGHT_HOURS
    venue.failing.add("funding")  # the sim's own (real-account) funding read fails
    report = await engine.run_cycle()
    assert report.ok, "hedging does not read funding"
    assert await engine.funding.collect() == []
    assert "funding history unavailable" in (engine.funding.last_error or "")
    assert journal.funding_cursor("demo") is None, "nothing read: the window is kept"
    errors = metrics.registry.get_sample_value(
        "hedgekeeper_errors_total", {"error_class": "funding_read"}
    )
    assert errors == 1.0
    venue.failing.discard("funding")
    [record] = await engine.funding.collect()
    assert record.payment.amount == D("3.5") and engine.funding.last_error is None


async def test_poll_runs_one_collection_at_a_time_in_the_background(tmp_path: Path) -> None:
    engine, journal, _venue, _paper, clock = build(tmp_path)
    await engine.start()
    await engine.run_cycle()
    calls: list[float] = []
    release = asyncio.Event()
    real = engine.funding.collect

    async def slow() -> Any:
        calls.append(clock.now)
        await release.wait()
        return await real()

    engine.funding.collect = slow  # type: ignore[method-assign]
    engine.funding.poll()
    engine.funding.poll()  # one is running: not another
    clock.now += engine.settings.funding_poll_interval
    engine.funding.poll()  # due again, but the first has not finished
    await asyncio.sleep(0)
    assert len(calls) == 1
    release.set()
    await engine.funding.wait()
    engine.funding.poll()
    await asyncio.sleep(0)
    assert len(calls) == 2, "due and free: runs"
    await engine.funding.wait()
    assert journal.funding_cursor("demo") is not None
