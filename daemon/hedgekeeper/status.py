"""Operator views of a running engine: health, the status snapshot, per-group drift.

Pure functions of the engine's last report and journal; the control channel,
the metrics, the heartbeat and the notifier all describe the daemon the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hedgekeeper.model import OrderStatus, Side
from hedgekeeper.sizing import fmt

if TYPE_CHECKING:
    from hedgekeeper.decide import GroupDecision
    from hedgekeeper.engine import Engine

__all__ = [
    "STALE_CYCLES",
    "GroupView",
    "Health",
    "group_view",
    "group_views",
    "health",
    "status_snapshot",
]

#: The daemon is unhealthy when its last successful cycle is older than this many
#: poll intervals.
STALE_CYCLES = 3

_ZERO = Decimal(0)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Health:
    """Whether cycles are succeeding, and why not."""

    healthy: bool
    reason: str
    last_success_age_s: float | None
    stale_after_s: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``/healthz`` body)."""
        return {
            "healthy": self.healthy,
            "reason": self.reason,
            "last_success_age_s": _round(self.last_success_age_s),
            "stale_after_s": round(self.stale_after_s, 3),
        }


def health(last_success_at: float | None, stale_after: float, now: float) -> Health:
    """Healthy when the last successful cycle ended less than ``stale_after`` s ago."""
    if last_success_at is None:
        return Health(False, "no successful cycle yet", None, stale_after)
    age = max(0.0, now - last_success_at)
    if age > stale_after:
        return Health(
            False,
            f"last successful cycle {age:.1f}s ago > {round(stale_after, 3):g}s "
            f"({STALE_CYCLES} poll intervals)",
            age,
            stale_after,
        )
    return Health(True, f"last successful cycle {age:.1f}s ago", age, stale_after)


@dataclass(frozen=True, slots=True)
class GroupView:
    """One group as the last cycle left it (decimals; ``None`` where unknown).

    ``hedge_contracts`` and ``pending_contracts`` are what the cycle saw *before* its
    own order (as journaled); ``drift_*`` and ``hedge_notional_usd`` count that order
    too (filled or still working), so a freshly corrected hedge shows no drift.
    """

    name: str
    instrument: str
    action: str
    reason: str
    exposure_usd: Decimal | None
    target_notional_usd: Decimal | None
    contract_value_usd: Decimal | None
    target_contracts: Decimal | None
    hedge_contracts: Decimal | None
    pending_contracts: Decimal | None
    hedge_after_contracts: Decimal | None
    hedge_notional_usd: Decimal | None
    drift_usd: Decimal | None
    drift_pct: Decimal | None
    hedge_ratio: Decimal | None
    margin_ratio: Decimal | None
    liquidation_distance: Decimal | None
    order: dict[str, Any] | None
    order_status: str | None
    days_to_expiry: str | None = None
    basis_annualised: str | None = None
    #: Allocation figures, the active window, estimated betas, the parent group (decide.py).
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: decimals as plain strings, like ``plan --json``."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else fmt(value)

        return {
            "name": self.name,
            "instrument": self.instrument,
            "action": self.action,
            "reason": self.reason,
            "exposure_usd": text(self.exposure_usd),
            "target_notional_usd": text(self.target_notional_usd),
            "contract_value_usd": text(self.contract_value_usd),
            "target_contracts": text(self.target_contracts),
            "hedge_contracts": text(self.hedge_contracts),
            "pending_contracts": text(self.pending_contracts),
            "hedge_after_contracts": text(self.hedge_after_contracts),
            "hedge_notional_usd": text(self.hedge_notional_usd),
            "drift_usd": text(self.drift_usd),
            "drift_pct": text(self.drift_pct),
            "hedge_ratio": text(self.hedge_ratio),
            "margin_ratio": text(self.margin_ratio),
            "liquidation_distance": text(self.liquidation_distance),
            "order": self.order,
            "order_status": self.order_status,
            "days_to_expiry": self.days_to_expiry,
            "basis_annualised": self.basis_annualised,
            **(self.details or {}),
        }


def group_view(decision: GroupDecision, instrument: str) -> GroupView:
    """The operator's view of one decision (see :class:`GroupView`)."""
    data = decision.as_dict()
    plan = decision.plan
    orders = list(decision.orders or ())
    order_status = orders[-1].status.value if orders else None
    if plan is None:
        return GroupView(
            name=decision.group,
            instrument=instrument,
            action=decision.action,
            reason=decision.reason,
            exposure_usd=decision.exposure_usd,
            target_notional_usd=None,
            contract_value_usd=None,
            target_contracts=None,
            hedge_contracts=None,
            pending_contracts=None,
            hedge_after_contracts=None,
            hedge_notional_usd=None,
            drift_usd=None,
            drift_pct=None,
            hedge_ratio=None,
            margin_ratio=decision.margin_ratio,
            liquidation_distance=decision.liquidation_distance,
            order=data["order"],
            order_status=order_status,
            days_to_expiry=data["days_to_expiry"],
            basis_annualised=data["basis_annualised"],
            details=decision.details,
        )
    after = plan.hedge_contracts + plan.pending_contracts
    for order in orders:  # this cycle's own orders: filled, or still working
        counted = order.filled if order.status in _DEAD else order.amount
        after += counted if order.side is Side.SELL else -counted
    target = plan.target
    hedge_notional = (after * target.contract_value_usd).quantize(_CENT)
    drift = ((after - target.raw_contracts) * target.contract_value_usd).quantize(_CENT)
    drift_pct = (
        None
        if target.target_notional_usd == 0
        else (drift / target.target_notional_usd * 100).quantize(_CENT)
    )
    ratio = (
        None
        if target.exposure_usd == 0
        else (hedge_notional / target.exposure_usd).quantize(Decimal("0.0001"))
    )
    return GroupView(
        decision.group,
        instrument,
        decision.action,
        decision.reason,
        target.exposure_usd,
        target.target_notional_usd,
        target.contract_value_usd,
        plan.target_contracts,
        plan.hedge_contracts,
        plan.pending_contracts,
        after,
        hedge_notional,
        drift,
        drift_pct,
        ratio,
        decision.margin_ratio,
        decision.liquidation_distance,
        data["order"],
        order_status,
        days_to_expiry=data["days_to_expiry"],
        basis_annualised=data["basis_annualised"],
        details=decision.details,
    )


_DEAD = (OrderStatus.CANCELED, OrderStatus.REJECTED)


def group_views(engine: Engine) -> list[GroupView]:
    """Every group of the engine's last cycle (empty before the first one)."""
    report = engine.last_report
    if report is None:
        return []
    instruments = {group.name: group.instrument for group in engine.groups}
    return [group_view(d, instruments.get(d.group, "?")) for d in report.decisions]


def status_snapshot(engine: Engine, *, now: float | None = None) -> dict[str, Any]:
    """The ``/status`` document: mode, trading state, last cycle, every group.

    Each group also carries its market's ``amount_step`` and its net funding (USD,
    positive: received) over the last 24 h and since the journal began.

    Reads the journal, so call it on the engine's event loop thread.
    """
    now = time.time() if now is None else now
    settings = engine.settings
    stale_after = STALE_CYCLES * settings.poll_interval
    state = health(engine.last_success_at, stale_after, now)
    last = engine.journal.last_cycle()
    last_cycle = None
    if last is not None:
        last_cycle = {
            "cycle": last["cycle"],
            "status": last["status"],
            "finished_at": last["finished_at"],
            "age_s": _round(max(0.0, now - float(last["finished_at"]))),
            "summary": last["summary"],
        }
    day = engine.journal.funding_usd(since=now - 86400)
    total = engine.journal.funding_usd()
    markets = {
        g.name: engine.markets.get(g.hedge_account, {}).get(g.instrument) for g in engine.groups
    }
    realizing = engine.journal.operations("realize:")  # operator realize in progress
    groups = []
    for view in group_views(engine):
        data = view.as_dict()
        if view.name in realizing:  # only then: the document is unchanged otherwise
            data["realize"] = {k: realizing[view.name].get(k) for k in
                               ("phase", "asset", "spot_account", "amount", "orders")}  # fmt: skip
        # The market's precision, so a client can show contracts as the exchange counts them.
        market = markets.get(view.name)
        data["amount_step"] = None if market is None else fmt(market.amount_step)
        data["funding_usd_24h"] = fmt(day.get(view.name, _ZERO))
        data["funding_usd_total"] = fmt(total.get(view.name, _ZERO))
        groups.append(data)
    return {
        "mode": settings.mode.value,
        "instance": settings.instance,
        "trading_state": engine.executor.trading_state.value,
        "flattening": engine.flattening,
        "healthy": state.healthy,
        "health": state.reason,
        "poll_interval": settings.poll_interval,
        "cycles_run": engine.cycles_run,
        "last_cycle": last_cycle,
        "last_success_at": engine.last_success_at,
        "last_success_age_s": _round(state.last_success_age_s),
        "funding": {
            "last_read_at": engine.funding.last_read_at,
            "last_error": engine.funding.last_error,
        },
        "groups": groups,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
