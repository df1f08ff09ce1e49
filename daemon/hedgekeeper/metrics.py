"""Prometheus metrics, on their own registry and port (``[metrics] port``; off by default).

Two sources:

* engine **events** (counted as they happen, on the event loop): cycles, decisions,
  orders by outcome, fills, fees, errors, guard firings, trading-state changes;
* the engine's **last report**, read at scrape time: exposure, target, hedge,
  drift and hedge ratio per group, last successful cycle. Reading at scrape time
  keeps the gauges consistent with ``/status`` without copying state around.

The scrape runs on the exposition server's thread, so nothing here reads the
journal there: the trading state is tracked from ``state.changed`` events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server

from hedgekeeper.model import TradingState
from hedgekeeper.status import group_views

if TYPE_CHECKING:
    from hedgekeeper.engine import Engine

__all__ = ["METRIC_NAMES", "Metrics"]

_P = "hedgekeeper_"

#: Every metric family this module exposes (for the docs and the tests).
METRIC_NAMES = (
    "hedgekeeper_info",
    "hedgekeeper_exposure_usd",
    "hedgekeeper_target_notional_usd",
    "hedgekeeper_hedge_notional_usd",
    "hedgekeeper_target_contracts",
    "hedgekeeper_hedge_contracts",
    "hedgekeeper_pending_contracts",
    "hedgekeeper_hedge_ratio",
    "hedgekeeper_drift_usd",
    "hedgekeeper_drift_ratio",
    "hedgekeeper_margin_ratio",
    "hedgekeeper_liquidation_distance",
    "hedgekeeper_trading_state",
    "hedgekeeper_last_success_timestamp_seconds",
    "hedgekeeper_last_cycle_timestamp_seconds",
    "hedgekeeper_cycles_total",
    "hedgekeeper_cycle_duration_seconds",
    "hedgekeeper_decisions_total",
    "hedgekeeper_orders_total",
    "hedgekeeper_fills_total",
    "hedgekeeper_filled_contracts_total",
    "hedgekeeper_fees_usd_total",
    "hedgekeeper_funding_paid_usd_total",
    "hedgekeeper_funding_received_usd_total",
    "hedgekeeper_funding_net_usd",
    "hedgekeeper_hedge_pnl_usd",
    "hedgekeeper_errors_total",
    "hedgekeeper_guard_fired_total",
    "hedgekeeper_state_changes_total",
)

_ORDER_OUTCOMES = {
    "order.submitted": "submitted",
    "order.rejected": "rejected",
    "order.outcome_unknown": "unknown",
}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


class Metrics:
    """The daemon's metrics: listens to the engine's events, reads its last report."""

    def __init__(self, engine: Engine, *, version: str = "") -> None:
        """Build the registry and start listening (call on the engine's event loop)."""
        # No *_created series: they would double every counter for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.engine = engine
        self.registry = CollectorRegistry()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._state = engine.executor.trading_state.value
        self._last_cycle_at: float | None = None
        groups = [group.name for group in engine.groups]
        registry = self.registry
        info = Gauge(
            _P + "info",
            "Constant 1, labelled with the daemon's mode and instance.",
            ["mode", "instance", "version"],
            registry=registry,
        )
        info.labels(engine.settings.mode.value, engine.settings.instance, version).set(1)
        self.cycles = Counter(
            _P + "cycles",
            "Cycles completed, by result (ok, partial).",
            ["result"],
            registry=registry,
        )
        self.cycle_duration = Histogram(
            _P + "cycle_duration_seconds",
            "Wall time of a cycle.",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.decisions = Counter(
            _P + "decisions", "Group decisions, by action.", ["group", "action"], registry=registry
        )
        self.orders = Counter(
            _P + "orders",
            "Orders by outcome: submitted, rejected, unknown.",
            ["group", "outcome"],
            registry=registry,
        )
        self.fills = Counter(_P + "fills", "Fills received.", ["group", "side"], registry=registry)
        self.filled_contracts = Counter(
            _P + "filled_contracts", "Contracts filled.", ["group", "side"], registry=registry
        )
        self.fees = Counter(
            _P + "fees_usd", "Trading fees paid, USD.", ["group"], registry=registry
        )
        self.funding_paid = Counter(
            _P + "funding_paid_usd", "Funding paid by the hedge, USD.", ["group"],
            registry=registry,
        )  # fmt: skip
        self.funding_received = Counter(
            _P + "funding_received_usd", "Funding received by the hedge, USD.", ["group"],
            registry=registry,
        )  # fmt: skip
        self.funding_net = Gauge(
            _P + "funding_net_usd",
            "Net funding since the journal began, USD (positive: received).",
            ["group"],
            registry=registry,
        )
        self.hedge_pnl = Gauge(
            _P + "hedge_pnl_usd",
            "The hedge's PnL since the journal began, USD, by kind: realised, unrealised "
            "(at the last cycle's price), fees, funding, net_cost (fees - PnL - funding).",
            ["group", "kind"],
            registry=registry,
        )
        self._pnl_refreshed = 0.0
        self._pnl_stale = True
        self.errors = Counter(
            _P + "errors",
            "Errors by class: read (failed venue reads), order_rejected, "
            "order_unknown, cycle_failed, reconcile_failed.",
            ["error_class"],
            registry=registry,
        )
        self.guard_fired = Counter(
            _P + "guard_fired",
            "Guard rules that blocked an order.",
            ["group", "rule"],
            registry=registry,
        )
        self.state_changes = Counter(
            _P + "state_changes", "Trading-state changes.", ["state", "source"], registry=registry
        )
        for group in groups:  # zero series exist from the start, so rate() works at once
            for outcome in _ORDER_OUTCOMES.values():
                self.orders.labels(group, outcome)
            self.fees.labels(group)
            self.funding_paid.labels(group)
            self.funding_received.labels(group)
        for group, total in engine.journal.funding_usd().items():
            self.funding_net.labels(group).set(float(total))
        for error_class in (
            "read", "order_rejected", "order_unknown", "cycle_failed", "funding_read",
        ):  # fmt: skip
            self.errors.labels(error_class)
        for result in ("ok", "partial"):
            self.cycles.labels(result)
        registry.register(_EngineCollector(self))
        engine.events.add_listener(self.on_event)

    # -- events (event loop thread) ------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        """Count one engine event (a bus listener; cheap, never raises)."""
        try:
            self._count(event)
        except Exception:  # a malformed event must not break the bus
            self.errors.labels("metrics_event").inc()

    def _count(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        group = str(event.get("group", ""))
        if name == "cycle.completed":
            self.cycles.labels("ok" if event.get("ok") else "partial").inc()
            self.cycle_duration.observe(float(event.get("duration_ms", 0)) / 1000)
            read_errors = int(event.get("read_errors", 0) or 0)
            if read_errors:
                self.errors.labels("read").inc(read_errors)
            self._last_cycle_at = float(event.get("at", time.time()))
            # The event comes before the engine keeps its report (whose prices mark the
            # position): refresh right after, on the same loop.
            asyncio.get_running_loop().call_soon(self._refresh_pnl)
        elif name == "plan.decided":
            self.decisions.labels(group, str(event.get("action"))).inc()
        elif name in _ORDER_OUTCOMES:
            self.orders.labels(group, _ORDER_OUTCOMES[name]).inc()
            if name == "order.rejected":
                self.errors.labels("order_rejected").inc()
            elif name == "order.outcome_unknown":
                self.errors.labels("order_unknown").inc()
        elif name == "order.filled":
            self._pnl_stale = True
            side = str(event.get("side"))
            self.fills.labels(group, side).inc()
            self.filled_contracts.labels(group, side).inc(_number(event.get("contracts")) or 0.0)
            fee = _number(event.get("fee_usd")) or 0.0
            if fee > 0:
                self.fees.labels(group).inc(fee)
        elif name == "funding.settled":
            amount = _number(event.get("amount_usd"))
            if amount is not None:
                self.funding_net.labels(group).inc(amount)
                if amount < 0:
                    self.funding_paid.labels(group).inc(-amount)
                elif amount > 0:
                    self.funding_received.labels(group).inc(amount)
        elif name == "funding.read_failed":
            self.errors.labels("funding_read").inc()
        elif name == "guard.fired":
            self.guard_fired.labels(group, str(event.get("rule"))).inc()
        elif name == "state.changed":
            self._state = str(event.get("state"))
            self.state_changes.labels(self._state, str(event.get("source"))).inc()
        elif name == "alert" and event.get("kind") in ("cycle_failed", "reconcile_failed"):
            self.errors.labels(str(event.get("kind"))).inc()
        elif name == "snapshot.read_failed":  # proposed event: read, error_class
            self.errors.labels(str(event.get("error_class") or "read")).inc()

    def _refresh_pnl(self) -> None:
        """Hedge PnL gauges from the journal: after fills, else once a minute (the
        unrealised part follows the price)."""
        now = time.monotonic()
        if not self._pnl_stale and now - self._pnl_refreshed < 60:
            return
        from hedgekeeper.hedge_cost import engine_costs

        try:
            costs = engine_costs(self.engine)
        except Exception:  # the gauges wait for the next cycle; the engine goes on
            self.errors.labels("metrics_event").inc()
            return
        for cost in costs:
            figures = {"realised": cost.realised_usd, "unrealised": cost.unrealised_usd,
                       "fees": cost.fees_usd, "funding": cost.funding_usd,
                       "net_cost": cost.net_cost_usd}  # fmt: skip
            for kind, value in figures.items():
                self.hedge_pnl.labels(cost.group, kind).set(float(value))
        self._pnl_refreshed, self._pnl_stale = now, False

    # -- exposition -----------------------------------------------------------------------------

    def render(self) -> bytes:
        """The current metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on a background thread; returns the bound port."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the exposition server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


class _EngineCollector:
    """Gauges read from the engine's last report when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        metrics = self._metrics
        engine = metrics.engine
        views = group_views(engine)

        def per_group(name: str, doc: str, attribute: str, scale: float = 1.0) -> Metric:
            family = GaugeMetricFamily(_P + name, doc, labels=["group"])
            for view in views:
                value = getattr(view, attribute)
                if value is not None:
                    family.add_metric([view.name], float(value) * scale)
            return family

        yield per_group("exposure_usd", "Exposure of the group's holdings, USD.", "exposure_usd")
        yield per_group("target_notional_usd", "Target hedge notional, USD.", "target_notional_usd")
        yield per_group(
            "hedge_notional_usd",
            "Hedge notional after the last cycle's order, USD.",
            "hedge_notional_usd",
        )
        yield per_group("target_contracts", "Target short, contracts.", "target_contracts")
        yield per_group(
            "hedge_contracts",
            "Short after the last cycle's order, contracts.",
            "hedge_after_contracts",
        )
        yield per_group(
            "pending_contracts",
            "Working orders' hedge effect seen by the last cycle.",
            "pending_contracts",
        )
        yield per_group("hedge_ratio", "Hedge notional / exposure.", "hedge_ratio")
        yield per_group(
            "drift_usd", "Hedge minus target, USD (positive: over-hedged).", "drift_usd"
        )
        yield per_group(
            "drift_ratio", "Drift as a fraction of the target notional.", "drift_pct", scale=0.01
        )
        yield per_group(
            "margin_ratio",
            "Maintenance margin / collateral of the hedge (1 = liquidation); when known.",
            "margin_ratio",
        )
        yield per_group(
            "liquidation_distance",
            "Relative price rise that would liquidate the short (0.2 = 20%); when known.",
            "liquidation_distance",
        )
        state = GaugeMetricFamily(
            _P + "trading_state", "1 for the current trading state.", labels=["state"]
        )
        for member in TradingState:
            state.add_metric([member.value], 1.0 if member.value == metrics._state else 0.0)
        yield state
        last_success = GaugeMetricFamily(
            _P + "last_success_timestamp_seconds", "End of the last successful cycle (epoch)."
        )
        if engine.last_success_at is not None:
            last_success.add_metric([], engine.last_success_at)
        yield last_success
        last_cycle = GaugeMetricFamily(
            _P + "last_cycle_timestamp_seconds", "End of the last cycle, ok or not (epoch)."
        )
        if metrics._last_cycle_at is not None:
            last_cycle.add_metric([], metrics._last_cycle_at)
        yield last_cycle
