"""Journal retention: old cycles and decisions are deleted so the journal stays small.

Every cycle writes a ``cycles`` row and one ``decisions`` row per group (about 280
bytes per group per cycle): at 1-s polling a group adds about 35 MB a day. Those rows
are the daemon's diary, useful for recent history (status, reports, post-mortems), not
its accounting. Rows older than ``journal_keep_days`` are deleted; ``0`` keeps
everything. **Orders, fills, funding and operator actions are never deleted**: they
are the accounting (write-ahead orders, the order sequence, fees, top-up allowance).

The pruning runs between cycles on a worker thread with its own SQLite connection, in
small batches (:data:`BATCH_ROWS` rows per transaction, a pause between batches), so
the engine's own writes wait at most one batch (a few ms) for the write lock and a
cycle is never held up by it. SQLite reuses the freed pages, so once the oldest rows
go as fast as new ones come, the file stops growing (it does not shrink: ``VACUUM``
would rewrite the whole file under an exclusive lock).

The journal's first cycle time (where the first funding read starts) is kept in the
journal's key/value table before the first cycle row is deleted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hedgekeeper.engine import Engine

__all__ = ["BATCH_ROWS", "PRUNE_INTERVAL", "JournalRetention", "PruneResult", "prune_journal"]

#: Rows deleted per transaction: the write lock is held for milliseconds at a time.
BATCH_ROWS = 2000
#: Seconds between two prunings (only due rows go; nothing is done on a young journal).
PRUNE_INTERVAL = 3600.0
#: Seconds the pruner waits between batches, so the engine's writes get the lock.
BATCH_PAUSE = 0.02
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one pruning deleted."""

    cycles: int
    decisions: int
    seconds: float


def _delete_oldest(db: sqlite3.Connection, table: str, time_column: str, before: float,
                   batch: int) -> int:  # fmt: skip
    """Delete the oldest ``batch`` rows of ``table`` dated before ``before``.

    Rows are appended in time order, so the oldest by primary key are the oldest in
    time: the batch is taken by the key (no index on the time needed) and filtered by
    the time, and a batch that deletes fewer rows than its size has reached the cut.
    """
    # The newest row always stays: SQLite numbers a new row after the highest id left,
    # so cycle numbers (which orders refer to) never repeat, whatever the clock did.
    cursor = db.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?) "
        f"AND {time_column} < ? AND id < (SELECT MAX(id) FROM {table})",
        (batch, before),
    )
    return int(cursor.rowcount)


def prune_journal(path: Path, before: float, *, batch: int = BATCH_ROWS,
                  pause: float = BATCH_PAUSE,
                  between: Callable[[], None] | None = None) -> PruneResult:  # fmt: skip
    """Delete cycles and decisions dated before ``before`` (epoch seconds) from the
    journal file at ``path``, in transactions of at most ``batch`` rows each.

    Blocking: run it on a worker thread (it opens its own connection). ``between`` is
    called between two batches (tests use it to write concurrently). Only the
    ``cycles`` and ``decisions`` tables are touched (a cycle a crash left unfinished
    goes like any other once it is old).
    """
    started = time.perf_counter()
    cycles = decisions = 0
    db = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        # Deleting old history needs no fsync per batch: a batch lost to a power cut is
        # simply deleted again at the next pruning.
        db.execute("PRAGMA synchronous=NORMAL")
        for table, column in (("decisions", "at"), ("cycles", "started_at")):
            while True:
                db.execute("BEGIN IMMEDIATE")
                try:
                    if table == "cycles":
                        _remember_first_cycle(db)
                    deleted = _delete_oldest(db, table, column, before, batch)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                if table == "cycles":
                    cycles += deleted
                else:
                    decisions += deleted
                if deleted < batch:
                    break
                if between is not None:
                    between()
                if pause > 0:
                    time.sleep(pause)
    finally:
        db.close()
    return PruneResult(cycles, decisions, time.perf_counter() - started)


def _remember_first_cycle(db: sqlite3.Connection) -> None:
    """Keep the first cycle's start (see ``Journal.first_cycle_at``) before it goes."""
    row = db.execute("SELECT started_at FROM cycles ORDER BY id LIMIT 1").fetchone()
    if row is not None:
        db.execute(
            "INSERT OR IGNORE INTO kv (key, value) VALUES ('first_cycle_at', ?)", (repr(row[0]),)
        )


class JournalRetention:
    """Prunes the engine's journal in the background every :data:`PRUNE_INTERVAL`."""

    def __init__(self, engine: Engine, *, interval: float = PRUNE_INTERVAL) -> None:
        self.engine = engine
        self.interval = interval
        self.last: PruneResult | None = None
        self._next_at = 0.0
        self._task: asyncio.Task[Any] | None = None

    def poll(self) -> None:
        """Start a pruning in the background if one is due and none is running."""
        keep_days = self.engine.settings.journal_keep_days
        path = self.engine.journal.path
        now = self.engine.clock()
        if (keep_days <= 0 or path is None or self.engine.journal.read_only
                or now < self._next_at or (self._task and not self._task.done())):  # fmt: skip
            return
        self._next_at = now + self.interval
        self._task = asyncio.ensure_future(self._prune_logged(path, now - keep_days * _DAY))

    async def _prune_logged(self, path: Path, before: float) -> None:
        log = self.engine.log
        try:
            result = await asyncio.to_thread(prune_journal, path, before)
        except Exception as error:  # never fatal: the journal only grows until next time
            log.error("journal.prune_failed", error=repr(error), retry="next interval")
            self.engine.events.publish("alert", kind="background", reason=f"prune: {error!r}")
            return
        self.last = result
        if result.cycles or result.decisions:
            log.info("journal.pruned", cycles=result.cycles, decisions=result.decisions,
                     before=round(before, 3), seconds=round(result.seconds, 3))  # fmt: skip

    async def wait(self) -> None:
        """Let a running pruning finish (shutdown; each batch is short)."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=5.0)
