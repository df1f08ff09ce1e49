"""What lets a backtest run thousands of cycles a second: a lean journal and reader.

Neither changes a decision. The engine, the decider, the guards and the
executor run unchanged; these two only take away costs that exist for a daemon
talking to exchanges for months:

* :class:`BacktestJournal` is the daemon's :class:`~hedgekeeper.journal.Journal`
  (same schema, same write-ahead order path), but nothing else writes to it
  while the backtest runs, so it keeps the small state the engine asks for
  every cycle (trading state, flags, paper positions, resting paper orders) in
  memory as well, numbers cycles without a row each, and journals only the
  decisions that were not a plain ``hold``, and the first and last cycles whole
  (with 55,000 hourly cycles, the holds would be 99.9 % of the rows and tell
  nothing).
* :class:`SequentialReader` reads the snapshot in the same order (balances,
  then positions before open orders, then quotes) without spreading it over
  asyncio tasks: bars in memory have no latency to overlap.
* :class:`QuietLog` drops the engine's info lines without binding a logger per
  cycle (the report counts what was blocked or sat out, and why).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from hedgekeeper.journal import Journal
from hedgekeeper.model import OrderInfo
from hedgekeeper.snapshot import Snapshot, SnapshotReader

__all__ = ["BacktestJournal", "QuietLog", "SequentialReader"]


class BacktestJournal(Journal):
    """A journal owned by one backtest; see the module docstring."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float]) -> None:
        super().__init__(path, clock=clock)
        self._kv: dict[str, str | None] = {}
        self._positions: dict[str, dict[str, Decimal]] = {}
        self._resting: dict[str, dict[str, OrderInfo]] = {}
        self._cycles = itertools.count(1)
        #: Journal every decision from now on (the runner sets it for the last cycle).
        self.keep_all = False

    def _get(self, key: str) -> str | None:
        if key not in self._kv:
            self._kv[key] = super()._get(key)
        return self._kv[key]

    def _put(self, db: sqlite3.Connection, key: str, value: str) -> None:
        super()._put(db, key, value)
        self._kv[key] = value

    def begin_cycle(self) -> int:
        return next(self._cycles)

    def finish_cycle(
        self,
        cycle: int,
        status: str,
        summary: dict[str, Any],
        decisions: Sequence[tuple[str, str, str, dict[str, Any]]],
        positions: Sequence[tuple[str, str, Decimal]] = (),
    ) -> None:
        kept = decisions if cycle == 1 or self.keep_all else [d for d in decisions
                                                              if d[1] != "hold"]  # fmt: skip
        if kept:
            with self.transaction() as db:  # the row begin_cycle did not write
                db.execute("INSERT OR IGNORE INTO cycles (id, started_at) VALUES (?, ?)",
                           (cycle, self._now()))  # fmt: skip
            super().finish_cycle(cycle, status, summary, kept)

    def paper_positions(self, account: str) -> dict[str, Decimal]:
        found = self._positions.get(account)
        if found is None:
            found = self._positions[account] = super().paper_positions(account)
        return dict(found)

    def paper_open_orders(self, account: str) -> list[OrderInfo]:
        found = self._resting.get(account)
        if found is None:
            found = {o.client_order_id: o for o in super().paper_open_orders(account)}
            self._resting[account] = found
        return list(found.values())

    def paper_fill(
        self,
        account: str,
        info: OrderInfo,
        position_delta: Decimal,
        *,
        replace_existing: bool = False,
    ) -> None:
        super().paper_fill(account, info, position_delta, replace_existing=replace_existing)
        # Forget, and read back once: the database stays the one source of truth.
        self._positions.pop(account, None)
        self._resting.pop(account, None)


class SequentialReader(SnapshotReader):
    """Reads a snapshot one call after another (see the module docstring).

    Bars in memory never time out, so there is no retry: a read that raises is
    recorded as missing, as the daemon's reader does once its retries are spent.
    """

    async def read(self) -> Snapshot:
        errors: dict[str, str] = {}
        balances: dict[str, Any] = {}
        positions: dict[str, Any] = {}
        quotes: dict[str, Any] = {}
        open_orders: dict[str, Any] = {}

        async def one(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
            try:
                return await call()
            except Exception as error:  # missing, never zero
                errors[what] = f"{type(error).__name__}: {error}"
                return None

        for name, needs in self.needs.items():
            venue = self.venues[name]
            if needs.balances:
                balances[name] = await one(f"balances:{name}", venue.fetch_balances)
            if needs.position_symbols:  # positions before open orders, as the daemon reads
                symbols = needs.position_symbols
                positions[name] = await one(
                    f"positions:{name}", partial(venue.fetch_positions, symbols)
                )
                open_orders[name] = await one(
                    f"open_orders:{name}", partial(venue.fetch_open_orders, symbols, self.prefix)
                )
            if needs.quote_symbols:
                quotes[name] = await one(
                    f"quotes:{name}", partial(venue.fetch_quotes, needs.quote_symbols)
                )
        return Snapshot(self.clock(), balances, positions, quotes, open_orders, errors)


class QuietLog:
    """The engine's logger in a backtest: one cycle per bar must not pay for a bound
    logger per cycle; info and debug go nowhere, warnings and errors to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def bind(self, **_: Any) -> QuietLog:
        return self

    def debug(self, *_: Any, **__: Any) -> None:
        return None

    info = debug

    def warning(self, event: str, **fields: Any) -> None:
        self._inner.warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._inner.error(event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._inner.exception(event, **fields)
