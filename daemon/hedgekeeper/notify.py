"""Notifications through apprise URLs (Telegram, Slack, Discord, e-mail, ``json://``, …).

What is sent: order fills, rejected orders and unknown outcomes, guard firings
(margin rules as margin alerts), trading-state changes (a halt is a failure),
cycles failing three times in a row and their recovery, the daemon's start, stop
and crash, and a daily summary at ``[notify] daily_summary`` (UTC).

Two rules keep it useful and harmless:

* **rate limit** — at most one notification per (kind, subject), e.g.
  (``guard.fired``, ``btc/cap``), per ``min_interval`` seconds; the next one that
  goes out says how many were held back, so a flapping fault cannot spam;
* **never block the engine** — events are turned into notifications on the event
  loop and put on a bounded queue; one background thread sends them (apprise does
  blocking network I/O). A full queue drops the newest and counts it.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hedgekeeper.redact import Redactor
from hedgekeeper.sizing import fmt
from hedgekeeper.status import group_views

if TYPE_CHECKING:
    from hedgekeeper.engine import Engine

__all__ = [
    "FAILING_CYCLES",
    "Notification",
    "Notifier",
    "RateLimiter",
    "apprise_sender",
    "next_summary_at",
    "notification_for",
]

#: Consecutive cycles that are not ok before "cycles failing" is sent.
FAILING_CYCLES = 3

#: Guard rules whose firing is a margin alert.
_MARGIN_RULES = frozenset({"margin", "liquidation", "liquidation_distance"})

Sender = Callable[["Notification"], bool]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message: ``kind`` and ``subject`` key the rate limit; ``level`` is
    ``info``, ``success``, ``warning`` or ``failure``."""

    kind: str
    subject: str
    title: str
    body: str
    level: str = "info"


class RateLimiter:
    """At most one pass per key per ``min_interval`` seconds; counts what it held back."""

    def __init__(self, min_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def allow(self, key: tuple[str, str]) -> tuple[bool, int]:
        """Whether ``key`` may pass now, and how many of it were held back before."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.min_interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        return True, self._held.pop(key, 0)


def notification_for(event: dict[str, Any], prefix: str = "hedgekeeper") -> Notification | None:
    """The notification an engine event deserves, or ``None``."""
    name = event.get("event")
    group = str(event.get("group", ""))
    if name == "order.filled":
        side, contracts, symbol = event.get("side"), event.get("contracts"), event.get("symbol")
        return Notification(
            "order.filled",
            group,
            f"{prefix}: {group} {side} {contracts} {symbol} filled",
            f"group {group}: {side} {contracts} {symbol} at {event.get('price')}, "
            f"fee {event.get('fee_usd')} USD (order {event.get('client_order_id')})",
        )
    if name in ("order.rejected", "order.outcome_unknown"):
        what = "rejected" if name == "order.rejected" else "outcome unknown"
        return Notification(
            name,
            group,
            f"{prefix}: {group} order {what}",
            f"group {group}: order {event.get('client_order_id')} {what}: {event.get('error')}",
            "warning",
        )
    if name == "guard.fired":
        rule = str(event.get("rule"))
        margin = rule in _MARGIN_RULES
        return Notification(
            "margin.alert" if margin else "guard.fired",
            f"{group}/{rule}",
            f"{prefix}: {'margin alert' if margin else 'guard'} {rule} on {group}",
            f"group {group}: {rule} blocked an order: {event.get('reason')}",
            "failure" if margin else "warning",
        )
    if name == "alert":
        return _alert(event, group, prefix)
    if name == "state.changed":
        state = str(event.get("state"))
        level = {"HALTED": "failure", "REDUCING": "warning"}.get(state, "success")
        return Notification(
            "state.changed",
            state,
            f"{prefix}: trading {state}",
            f"trading state {event.get('previous')} -> {state} by {event.get('source')}: "
            f"{event.get('reason')}",
            level,
        )
    return None


def _alert(event: dict[str, Any], group: str, prefix: str) -> Notification | None:
    kind = str(event.get("kind"))
    reason = event.get("reason")
    if kind == "margin":
        return Notification(
            "margin.alert", group, f"{prefix}: margin alert on {group}", str(reason), "failure"
        )
    if kind == "halted":
        return None  # the state.changed to HALTED that follows says it, with the same reason
    title = {"cycle_failed": "a cycle failed", "reconcile_failed": "reconciliation failed"}
    return Notification(
        f"alert.{kind}", group, f"{prefix}: {title.get(kind, kind)}", str(reason), "failure"
    )


def _text(value: Decimal | None) -> str:
    return "?" if value is None else fmt(value)


def _net_cost_lines(engine: Any, since: float) -> list[str]:
    """The hedge's net cost per group over the period (see :mod:`hedgekeeper.hedge_cost`)."""
    from hedgekeeper.hedge_cost import engine_costs

    try:
        costs = engine_costs(engine, since=since)
    except Exception as error:  # a summary without the cost beats no summary
        return [f"net cost unavailable: {error}"]
    return [
        f"{c.group}: net cost {_text(c.net_cost_usd.quantize(Decimal('0.01')))} USD "
        f"(futures PnL {_text(c.futures_pnl_usd.quantize(Decimal('0.01')))}, fees "
        f"{_text(c.fees_usd.quantize(Decimal('0.01')))}, funding "
        f"{_text(c.funding_usd.quantize(Decimal('0.01')))})"
        for c in costs
    ]


def next_summary_at(now: datetime, hhmm: str) -> datetime:
    """The next ``HH:MM`` UTC strictly after ``now`` (an aware datetime)."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    at = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def apprise_sender(urls: Sequence[str], log: Any) -> Sender | None:
    """A sender for apprise URLs, or ``None`` when none of them is valid.

    apprise is imported only here, so a daemon without notifications never loads it.
    """
    import apprise

    sink = apprise.Apprise()
    for index, url in enumerate(urls):
        if not sink.add(url):
            log.warning("notify.url_invalid", index=index, hint="see apprise's URL formats")
    if len(sink) == 0:
        return None
    types = {
        "info": apprise.NotifyType.INFO,
        "success": apprise.NotifyType.SUCCESS,
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }

    def send(notification: Notification) -> bool:
        return bool(
            sink.notify(
                body=notification.body,
                title=notification.title,
                notify_type=types.get(notification.level, types["info"]),
            )
        )

    return send


class Notifier:
    """Turns engine events into rate-limited notifications sent off the event loop."""

    def __init__(
        self,
        sender: Sender,
        *,
        redactor: Redactor,
        log: Any,
        min_interval: float = 300.0,
        daily_summary: str | None = None,
        engine: Engine | None = None,
        queue_size: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``engine`` is needed for the daily summary and the title prefix."""
        self._sender = sender
        self._redactor = redactor
        self._log = log
        self.limiter = RateLimiter(min_interval, clock)
        self.daily_summary = daily_summary
        self.engine = engine
        self._queue: queue.Queue[Notification | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._summary_task: asyncio.Task[None] | None = None
        self.prefix = "hedgekeeper"
        if engine is not None:
            self.prefix = f"hedgekeeper {engine.settings.instance} [{engine.settings.mode.value}]"
        self.sent = self.failed = self.suppressed = self.dropped = 0
        self._failing = 0
        self._period: dict[str, Any] = {}
        self._reset_period()

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sending thread, listen to the engine, schedule the daily summary."""
        # The thread runs in a copy of this context, so its log lines carry ``mode`` too.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._work,), name="hedgekeeper-notify", daemon=True
        )
        self._thread.start()
        if self.engine is not None:
            self.engine.events.add_listener(self.on_event)
            if self.daily_summary is not None:
                self._summary_task = asyncio.get_running_loop().create_task(self._daily())

    async def close(self, grace: float = 3.0) -> None:
        """Send what is queued (for at most ``grace`` s), then stop."""
        if self._summary_task is not None:
            self._summary_task.cancel()
            self._summary_task = None
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        try:
            self._queue.put(None, timeout=grace)
        except queue.Full:
            return  # the daemon thread dies with the process
        await asyncio.to_thread(thread.join, grace)

    # -- input (event loop) -------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        """Bus listener: count for the summary, and notify what deserves it."""
        name = event.get("event")
        if name == "cycle.completed":
            self._period["cycles"] += 1
            if event.get("ok"):
                if self._failing >= FAILING_CYCLES:
                    self.submit(
                        Notification(
                            "cycles.failing",
                            "",
                            f"{self.prefix}: cycles recovered",
                            f"cycle {event.get('cycle')} succeeded after "
                            f"{self._failing} that did not",
                            "success",
                        ),
                        limit=False,
                    )
                self._failing = 0
            else:
                self._period["partial"] += 1
                self._failing += 1
                if self._failing == FAILING_CYCLES:
                    self.submit(
                        Notification(
                            "cycles.failing",
                            "",
                            f"{self.prefix}: cycles failing",
                            f"{self._failing} cycles in a row with read errors (last: cycle "
                            f"{event.get('cycle')}, {event.get('read_errors')} failed reads, "
                            f"{event.get('skipped')} groups skipped)",
                            "warning",
                        )
                    )
            return
        if name == "order.filled":
            self._period["fills"] += 1
            self._period["fees"] += Decimal(str(event.get("fee_usd") or 0))
        if name == "funding.settled" and event.get("amount_usd") is not None:
            self._period["funding"] += Decimal(str(event["amount_usd"]))
        notification = notification_for(event, self.prefix)
        if notification is not None:
            self.submit(notification)

    def submit(self, notification: Notification, *, limit: bool = True) -> bool:
        """Queue a notification unless rate-limited or the queue is full; never blocks."""
        if limit:
            allowed, held = self.limiter.allow((notification.kind, notification.subject))
            if not allowed:
                self.suppressed += 1
                return False
            if held:
                notification = replace(
                    notification, body=f"{notification.body}\n({held} similar held back)"
                )
        notification = replace(
            notification,
            title=self._redactor.text(notification.title),
            body=self._redactor.text(notification.body),
        )
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            self.dropped += 1
            self._log.warning("notify.dropped", kind=notification.kind, dropped=self.dropped)
            return False
        return True

    # -- output (sending thread) --------------------------------------------------------------

    def _work(self) -> None:
        while True:
            notification = self._queue.get()
            if notification is None:
                return
            try:
                ok = self._sender(notification)
            except Exception as error:  # a broken service must not kill the thread
                ok = False
                self._log.warning("notify.failed", kind=notification.kind, error=repr(error))
            if ok:
                self.sent += 1
                self._log.info("notify.sent", kind=notification.kind, subject=notification.subject)
            else:
                self.failed += 1
                self._log.warning(
                    "notify.failed", kind=notification.kind, subject=notification.subject
                )

    # -- daily summary ------------------------------------------------------------------------

    def _reset_period(self) -> None:
        self._period = {
            "since": time.time(),
            "cycles": 0,
            "partial": 0,
            "fills": 0,
            "fees": Decimal(0),
            "funding": Decimal(0),
        }

    def summary(self) -> Notification:
        """The daily summary of the period since the last one (call on the event loop)."""
        period = self._period
        lines = [
            f"since {datetime.fromtimestamp(period['since'], UTC):%Y-%m-%d %H:%M} UTC: "
            f"{period['cycles']} cycles ({period['partial']} with read errors), "
            f"{period['fills']} fills, fees {_text(period['fees'])} USD, "
            f"funding {_text(period['funding'])} USD (+ received, − paid)"
        ]
        if self.engine is not None:
            engine = self.engine
            age = (
                "never"
                if engine.last_success_at is None
                else f"{time.time() - engine.last_success_at:.0f}s ago"
            )
            lines.insert(
                0, f"trading {engine.executor.trading_state.value}, last successful cycle {age}"
            )
            for view in group_views(engine):
                lines.append(
                    f"{view.name}: exposure {_text(view.exposure_usd)} USD, hedge "
                    f"{_text(view.hedge_notional_usd)} USD (ratio {_text(view.hedge_ratio)}), "
                    f"drift {_text(view.drift_usd)} USD ({_text(view.drift_pct)}%), "
                    f"last: {view.reason}"
                )
            lines.extend(_net_cost_lines(engine, period["since"]))
        self._reset_period()
        return Notification(
            "daily.summary",
            datetime.now(UTC).strftime("%Y-%m-%d"),
            f"{self.prefix}: daily summary",
            "\n".join(lines),
        )

    async def _daily(self) -> None:
        assert self.daily_summary is not None
        while True:
            now = datetime.now(UTC)
            at = next_summary_at(now, self.daily_summary)
            # Sleep in short steps so a wall-clock jump (suspend, NTP) is noticed.
            while True:
                remaining = (at - datetime.now(UTC)).total_seconds()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, 60.0))
            try:
                self.submit(self.summary(), limit=False)
            except Exception as error:  # one failed summary must not end the daily loop
                self._log.error("notify.summary_failed", error=repr(error))
                await asyncio.sleep(60.0)  # past the minute: no second try for the same day
