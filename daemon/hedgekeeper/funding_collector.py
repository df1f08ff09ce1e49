"""Collects funding payments from the venues into the journal, outside the hedge cycle.

Every ``funding_poll_interval`` seconds the engine asks each hedge account's
venue (those that can tell: :class:`~hedgekeeper.venues.base.FundingSource`) for
the funding its group instruments paid or received since the last read, with an
hour of overlap because exchanges post a settlement a little after its time.
Payments are deduplicated by the venue's id in the journal, so the overlap and
restarts never count one twice. The first read of a journal goes back to its
first cycle (at most :data:`LOOKBACK_SECONDS`): funding from before the daemon
managed the hedge is not the hedge's cost.

New payments are logged (``funding.settled``) and published on the event bus,
which feeds the metrics, the status and the daily summary. A failed read is
logged and retried at the next poll; it never touches hedging.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hedgekeeper.exceptions import VenueError
from hedgekeeper.funding import payment_usd
from hedgekeeper.journal import FundingRecord
from hedgekeeper.sizing import fmt

if TYPE_CHECKING:
    from hedgekeeper.engine import Engine

__all__ = ["LOOKBACK_SECONDS", "OVERLAP_SECONDS", "FundingCollector"]

#: Re-read this much before the last read's end: late postings are still found.
OVERLAP_SECONDS = 3600.0
#: The furthest back a read goes, e.g. after the daemon was stopped for a long time.
LOOKBACK_SECONDS = 30 * 86400.0


class FundingCollector:
    """Reads funding for the engine's groups; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.last_read_at: float | None = None
        self.last_error: str | None = None
        self._next_at = 0.0
        self._task: asyncio.Task[Any] | None = None

    def poll(self) -> None:
        """Start a collection in the background if one is due and none is running."""
        interval = self.engine.settings.funding_poll_interval
        now = self.engine.clock()
        if interval <= 0 or now < self._next_at or (self._task and not self._task.done()):
            return
        self._next_at = now + interval
        self._task = asyncio.ensure_future(self._collect_logged())

    async def _collect_logged(self) -> None:
        """A background collection never dies silently: any failure is logged and alerted,
        and the next due poll tries again."""
        try:
            await self.collect()
        except Exception as error:  # a bug or a journal failure: say so, retry next time
            self.last_error = repr(error)
            self.engine.log.error("funding.failed", error=repr(error), retry="next poll")
            self.engine.events.publish("alert", kind="background", reason=f"funding: {error!r}")

    async def wait(self) -> None:
        """Let a running collection finish (shutdown)."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=5.0)

    def _accounts(self) -> dict[str, dict[str, str]]:
        """hedge account -> instrument -> group (one group per instrument and account)."""
        out: dict[str, dict[str, str]] = {}
        for group in self.engine.groups:
            out.setdefault(group.hedge_account, {})[group.instrument] = group.name
        return out

    async def collect(self) -> list[FundingRecord]:
        """Read, journal and announce new funding payments; returns the new ones."""
        engine, journal, log = self.engine, self.engine.journal, self.engine.log
        now = time.time()  # exchanges, the journal and the venues date payments by the wall clock
        new: list[FundingRecord] = []
        errors: list[str] = []
        for account, groups in self._accounts().items():
            fetch = getattr(engine.venues[account], "fetch_funding", None)
            if fetch is None:
                continue
            cursor = journal.funding_cursor(account)
            start = cursor - OVERLAP_SECONDS if cursor is not None else journal.first_cycle_at()
            start = max(start if start is not None else now, now - LOOKBACK_SECONDS)
            try:
                payments = await fetch(list(groups), start, now)
            except VenueError as error:
                errors.append(f"{account}: {error}")
                log.warning("funding.read_failed", account=account, error=str(error))
                engine.events.publish("funding.read_failed", account=account, error=str(error))
                continue
            records = [
                FundingRecord(account, groups[p.symbol], p, payment_usd(p, self._price(p.asset)))
                for p in payments
                if p.symbol in groups
            ]
            added = journal.record_funding(records)
            journal.set_funding_cursor(account, now)
            for record in added:
                self._announce(record)
            new += added
        self.last_error = "; ".join(errors) or None
        if not errors:
            self.last_read_at = now
        return new

    def _price(self, asset: str) -> Decimal | None:
        """A USD price for a non-stablecoin settle asset (inverse perps), from the last cycle."""
        return self.engine.decider.last_prices.get(asset)

    def _announce(self, record: FundingRecord) -> None:
        p = record.payment
        fields = {
            "group": record.group,
            "account": record.account,
            "symbol": p.symbol,
            "amount": fmt(p.amount),
            "asset": p.asset,
            "amount_usd": None if record.amount_usd is None else fmt(record.amount_usd),
            "rate": None if p.rate is None else fmt(p.rate),
            "at": p.timestamp,
            "id": p.id,
        }
        self.engine.log.info("funding.settled", **fields)
        self.engine.events.publish("funding.settled", **fields)
