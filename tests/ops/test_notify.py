"""Notifications: apprise to a local receiver, rate limits, never blocking, daily summary."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from hedgekeeper.logs import configure_logging, get_logger
from hedgekeeper.notify import (
    FAILING_CYCLES,
    Notification,
    Notifier,
    RateLimiter,
    apprise_sender,
    next_summary_at,
    notification_for,
)
from hedgekeeper.ops import Operations
from hedgekeeper.redact import Redactor
from tests.conftest import eventually
from tests.ops.helpers import Receiver, make_engine, sim_config


async def test_fills_and_state_changes_reach_an_apprise_url(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    receiver = Receiver()
    engine, _sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    sender = apprise_sender([receiver.url()], get_logger())
    assert sender is not None
    notifier = Notifier(
        sender, redactor=Redactor([]), log=get_logger(), min_interval=300, engine=engine
    )
    notifier.start()
    try:
        await engine.run_cycle()  # fills for both groups
        await engine.halt("test", "notify test")
        await eventually(lambda: len(receiver.bodies) >= 3, within=15)
        titles = receiver.titles()
        assert any("btc sell 50 BTC/USDT:USDT filled" in t for t in titles), titles
        assert any("alts sell" in t and "filled" in t for t in titles), titles
        halted = next(b for b in receiver.bodies if "trading HALTED" in b["title"])
        assert halted["type"] == "failure" and "notify test" in halted["message"]
        assert all(t.startswith("hedgekeeper hk [dry-run]") for t in titles)
    finally:
        await notifier.close()
        receiver.close()
        await engine.close()
        engine.journal.close()


async def test_a_flapping_fault_is_rate_limited_per_kind_and_subject() -> None:
    sent: list[Notification] = []
    clock = [1000.0]
    notifier = Notifier(
        lambda n: sent.append(n) or True,
        redactor=Redactor([]),
        log=get_logger(),
        min_interval=60,
        clock=lambda: clock[0],
    )
    notifier.start()
    try:
        for _ in range(50):  # the same guard firing every cycle
            notifier.on_event(
                {"event": "guard.fired", "group": "btc", "rule": "basis", "reason": "basis 4% > 3%"}
            )
        notifier.on_event({"event": "guard.fired", "group": "eth", "rule": "basis", "reason": "x"})
        await eventually(lambda: len(sent) == 2)
        assert notifier.suppressed == 49
        clock[0] += 61  # after min_interval, the next one goes out and says what was held back
        notifier.on_event({"event": "guard.fired", "group": "btc", "rule": "basis", "reason": "y"})
        await eventually(lambda: len(sent) == 3)
        assert "(49 similar held back)" in sent[-1].body
    finally:
        await notifier.close()


async def test_sending_never_blocks_the_engine() -> None:
    release = threading.Event()
    notifier = Notifier(
        lambda n: release.wait(10),
        redactor=Redactor([]),
        log=get_logger(),
        min_interval=0,
        queue_size=10,
    )
    notifier.start()
    try:
        started = time.perf_counter()
        for index in range(1000):  # a hung notification service and a burst of fills
            notifier.on_event(
                {
                    "event": "order.filled",
                    "group": f"g{index}",
                    "side": "sell",
                    "contracts": "1",
                    "symbol": "X",
                    "fee_usd": "0",
                }
            )
        assert time.perf_counter() - started < 0.5
        assert notifier.dropped >= 1000 - 11, "a full queue drops, it does not wait"
    finally:
        release.set()
        await notifier.close()


async def test_secrets_are_masked_in_notifications() -> None:
    sent: list[Notification] = []
    notifier = Notifier(
        lambda n: sent.append(n) or True,
        redactor=Redactor(["s3cr3t-key"]),
        log=get_logger(),
        min_interval=0,
    )
    notifier.start()
    try:
        notifier.on_event(
            {
                "event": "order.rejected",
                "group": "btc",
                "client_order_id": "hk1",
                "error": "invalid key s3cr3t-key",
            }
        )
        await eventually(lambda: len(sent) == 1)
        assert "s3cr3t-key" not in sent[0].body and "***" in sent[0].body
    finally:
        await notifier.close()


async def test_failing_cycles_and_their_recovery_are_notified_once() -> None:
    sent: list[Notification] = []
    notifier = Notifier(
        lambda n: sent.append(n) or True, redactor=Redactor([]), log=get_logger(), min_interval=300
    )
    notifier.start()
    try:
        for cycle in range(10):
            notifier.on_event(
                {
                    "event": "cycle.completed",
                    "cycle": cycle,
                    "ok": False,
                    "read_errors": 1,
                    "skipped": 2,
                }
            )
        notifier.on_event({"event": "cycle.completed", "cycle": 11, "ok": True})
        await eventually(lambda: len(sent) == 2)
        assert (
            sent[0].title.endswith("cycles failing") and f"{FAILING_CYCLES} cycles" in sent[0].body
        )
        assert sent[1].title.endswith("cycles recovered") and sent[1].level == "success"
    finally:
        await notifier.close()


async def test_daily_summary_describes_every_group(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    engine, _sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    notifier = Notifier(lambda n: True, redactor=Redactor([]), log=get_logger(), engine=engine)
    notifier.start()
    try:
        await engine.run_cycle()
        summary = notifier.summary()
        assert summary.kind == "daily.summary" and summary.title.endswith("daily summary")
        assert "1 cycles (0 with read errors), 2 fills" in summary.body
        assert "btc: exposure 70000 USD, hedge 35000 USD (ratio 0.5)" in summary.body
        assert "alts: exposure" in summary.body and "trading ACTIVE" in summary.body
        assert "btc: net cost " in summary.body and "alts: net cost " in summary.body
        assert "0 cycles" in notifier.summary().body, "each summary covers its own period"
    finally:
        await notifier.close()
        await engine.close()
        engine.journal.close()


def test_next_summary_time_is_the_next_utc_occurrence() -> None:
    morning = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert next_summary_at(morning, "08:00") == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert next_summary_at(morning, "07:30") == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert next_summary_at(morning, "00:00") == datetime(2026, 1, 6, 0, 0, tzinfo=UTC)


def test_rate_limiter_counts_what_it_holds_back() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    assert limiter.allow(("a", "x")) == (True, 0)
    assert limiter.allow(("a", "x")) == (False, 0)
    assert limiter.allow(("a", "y")) == (True, 0), "another subject has its own budget"
    now[0] = 10.0
    assert limiter.allow(("a", "x")) == (True, 1)


def test_margin_guards_and_alerts_are_margin_alerts() -> None:
    guard = notification_for(
        {
            "event": "guard.fired",
            "group": "btc",
            "rule": "margin",
            "reason": "would not survive a 30% rise",
        }
    )
    assert guard is not None and guard.kind == "margin.alert" and guard.level == "failure"
    alert = notification_for(
        {"event": "alert", "kind": "margin", "group": "btc", "reason": "liquidation 9% away < 15%"}
    )
    assert alert is not None and alert.kind == "margin.alert"
    assert notification_for({"event": "alert", "kind": "halted", "reason": "auth"}) is None
    assert notification_for({"event": "plan.decided"}) is None


async def test_operations_notify_start_and_crash(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    receiver = Receiver()
    config = sim_config(control="enabled = false", notify=f'urls = ["{receiver.url()}"]')
    engine, _sim, _ = make_engine(tmp_path, config)
    await engine.start()
    ops = Operations(engine, get_logger())
    try:
        await ops.start()
        ops.crashed(RuntimeError("disk on fire"))
    finally:
        await ops.stop()
        await engine.close()
        engine.journal.close()
    await eventually(lambda: len(receiver.bodies) >= 2, within=10)
    titles = receiver.titles()
    assert titles[0].endswith(": started") and titles[1].endswith(": crashed"), titles
    assert "RuntimeError: disk on fire" in receiver.bodies[1]["message"]
    assert not any(t.endswith(": stopped") for t in titles)
    receiver.close()
    await asyncio.sleep(0)
