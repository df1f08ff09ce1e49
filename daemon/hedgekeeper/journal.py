"""The journal: an SQLite database (WAL) in the state directory.

It holds what must survive a restart: cycles, decisions, every order (written
*before* it is sent), fills, the trading state, the order sequence, and the
paper venue's positions and orders. The schema is versioned with
``PRAGMA user_version``; a newer schema than this code knows is refused.

Writes that matter commit with ``synchronous=FULL`` so an order journaled before
a crash is still there after it.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import string
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgekeeper.exceptions import JournalError
from hedgekeeper.model import (
    FundingPayment,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)

__all__ = ["SCHEMA_VERSION", "FundingRecord", "Journal", "JournaledOrder"]

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY, started_at REAL NOT NULL, finished_at REAL,
    status TEXT, summary TEXT
);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cycle INTEGER NOT NULL, group_name TEXT NOT NULL,
    at REAL NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX decisions_group ON decisions (group_name, id);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
    group_name TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, amount TEXT NOT NULL, order_type TEXT NOT NULL, price TEXT,
    reduce_only INTEGER NOT NULL, post_only INTEGER NOT NULL, status TEXT NOT NULL,
    filled TEXT NOT NULL DEFAULT '0', average_price TEXT, exchange_order_id TEXT,
    reason TEXT NOT NULL, cycle INTEGER, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX orders_status ON orders (status);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_order_id TEXT NOT NULL,
    account TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    amount TEXT NOT NULL, price TEXT, fee_usd TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE operator_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL,
    source TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE paper_positions (
    account TEXT NOT NULL, symbol TEXT NOT NULL, contracts TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
CREATE TABLE paper_orders (
    account TEXT NOT NULL, client_order_id TEXT NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (account, client_order_id)
);
"""

#: Upgrade steps: version N -> N + 1.
_MIGRATIONS = {
    1: """
CREATE TABLE positions_seen (
    account TEXT NOT NULL, symbol TEXT NOT NULL, contracts TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (account, symbol)
);
""",
    # The order-rate and runaway guards ask these for every intent: index them.
    2: """
CREATE INDEX orders_account_created ON orders (account, created_at);
CREATE INDEX orders_group ON orders (group_name, seq);
CREATE INDEX fills_order ON fills (client_order_id, at);
CREATE INDEX actions_kind ON operator_actions (action, source, at);
""",
    # Funding payments counted per group (deduplicated by the venue's id), and the
    # paper venue's modelled funding with the settlement it waits for per symbol.
    3: """
CREATE TABLE funding (
    account TEXT NOT NULL, id TEXT NOT NULL, group_name TEXT NOT NULL, symbol TEXT NOT NULL,
    at REAL NOT NULL, amount TEXT NOT NULL, asset TEXT NOT NULL, amount_usd TEXT, rate TEXT,
    recorded_at REAL NOT NULL, PRIMARY KEY (account, id)
);
CREATE INDEX funding_group ON funding (group_name, at);
CREATE TABLE paper_funding (
    account TEXT NOT NULL, id TEXT NOT NULL, symbol TEXT NOT NULL, at REAL NOT NULL,
    amount TEXT NOT NULL, asset TEXT NOT NULL, rate TEXT, PRIMARY KEY (account, id)
);
CREATE TABLE paper_funding_marks (
    account TEXT NOT NULL, symbol TEXT NOT NULL, next_at REAL NOT NULL, rate TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
""",
}

#: Orders whose outcome is not final: they count as pending hedge.
UNRESOLVED = (OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.OPEN)


@dataclass(frozen=True, slots=True)
class JournaledOrder:
    """An order as the journal knows it."""

    request: OrderRequest
    seq: int
    group: str
    account: str
    status: OrderStatus
    filled: Decimal
    average_price: Decimal | None
    exchange_order_id: str | None
    reason: str
    cycle: int | None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """A funding payment counted for a group (``amount_usd`` is ``None`` when no price
    was known to value a non-stablecoin payment)."""

    account: str
    group: str
    payment: FundingPayment
    amount_usd: Decimal | None


def _wall_clock() -> float:
    return time.time()


#: Order sequences reserved ahead in the sidecar file at a time (one fsync per this many).
_SEQ_RESERVE = 100


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _paper_order_data(info: OrderInfo) -> dict[str, Any]:
    """A paper order as stored in ``paper_orders`` (JSON)."""
    return {
        "client_order_id": info.client_order_id,
        "symbol": info.symbol,
        "side": info.side.value,
        "amount": str(info.amount),
        "status": info.status.value,
        "filled": str(info.filled),
        "average_price": None if info.average_price is None else str(info.average_price),
        "fee_usd": str(info.fee_usd),
        "exchange_order_id": info.exchange_order_id,
        "reduce_only": info.reduce_only,
        "price": None if info.price is None else str(info.price),
    }


class Journal:
    """The daemon's durable memory; see the module docstring."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float] | None = None,
                 read_only: bool = False) -> None:  # fmt: skip
        """Open (creating if needed) the journal at ``path``; ``None`` keeps it in memory.

        ``clock`` dates cycles, orders and fills (a backtest passes market time); by
        default ``time.time``, looked up at each call (tests shift the wall clock).
        A file journal opened for writing is checked first (``PRAGMA quick_check``):
        damage raises :class:`JournalError` with a recovery hint rather than letting a
        daemon trade on a journal whose cycles would fail. ``read_only`` opens an
        existing file without any write (``plan`` beside a running daemon).
        """
        self.path = path
        self._now: Callable[[], float] = clock if clock is not None else _wall_clock
        self.read_only = read_only and path is not None
        try:
            if self.read_only:
                assert path is not None
                self._db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                self._db.execute("PRAGMA busy_timeout=5000")
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise JournalError(
                        f"journal {path} has schema {version}, this hedgekeeper reads "
                        f"{SCHEMA_VERSION}: run the daemon once to upgrade it"
                    )
                self._load_sequence()
                return
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(path) if path is not None else ":memory:", isolation_level=None
            )
            self._db.execute("PRAGMA busy_timeout=5000")
            if path is not None:
                self._check_integrity(path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            if path is not None:
                self._restore_sidecars()
            self._load_sequence()
        except (sqlite3.Error, OSError) as error:  # OSError: the state directory's mkdir
            raise JournalError(f"cannot open journal {path}: {error}") from error

    def _check_integrity(self, path: Path) -> None:
        rows = [str(r[0]) for r in self._db.execute("PRAGMA quick_check(3)").fetchall()]
        if rows != ["ok"]:
            detail = " ".join("; ".join(rows).split())[:300]
            self._db.close()
            raise JournalError(
                f"journal {path} is damaged ({detail}). Nothing was sent. Recovery: stop "
                f"every hedgekeeper on this state directory, move {path.name} and its -wal/-shm "
                "files aside (keep them for the post-mortem), and start again: the daemon "
                "then starts HALTED if the exchange still holds orders with its prefix, and "
                "the halt and the order sequence survive in the files beside the journal"
            )

    # -- sidecars: what must survive the loss of the journal itself -----------------------

    @property
    def _halt_file(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".halted")

    @property
    def _seq_file(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".seq")

    def _restore_sidecars(self) -> None:
        """A halt the journal lost (wiped, WAL lost) comes back from its sidecar."""
        halt = self._halt_file
        # Journal._get/_put, not the overridable ones: subclasses are not set up yet.
        if halt is not None and halt.exists() and Journal._get(self, "trading_state") != "halted":
            reason = halt.read_text(encoding="utf-8", errors="replace").strip()[:500]
            with self.transaction() as db:
                Journal._put(self, db, "trading_state", TradingState.HALTED.value)
                db.execute(
                    "INSERT INTO operator_actions (at, action, source, detail) "
                    "VALUES (?, ?, ?, ?)",
                    (self._now(), "state:halted", "halt file",
                     f"restored from {halt.name}: {reason or 'halted'}"),
                )  # fmt: skip

    def _load_sequence(self) -> None:
        """The order-sequence floor: ids at or below it are never issued again.

        Sequences are reserved in blocks in a sidecar file (fsync'd) *before* they are
        used. At open, the whole reserved block counts as used: after a crash that lost
        the journal's last writes, which of them went out is not known.
        """
        self._seq_reserved = 0
        seq_file = self._seq_file
        if seq_file is not None:
            try:
                self._seq_reserved = int(seq_file.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                self._seq_reserved = 0
        self._seq_floor = max(int(Journal._get(self, "seq_floor") or 0), self._seq_reserved)

    def sequence_floor(self) -> int:
        """Order sequences at or below this are never issued again."""
        return self._seq_floor

    def advance_sequence(self, seq: int) -> None:
        """Never issue an order sequence at or below ``seq`` again (e.g. seen at the venue)."""
        if seq <= self._seq_floor:
            return
        with self.transaction() as db:
            self._put(db, "seq_floor", str(seq))
        self._seq_floor = seq
        if seq > self._seq_reserved and self._seq_file is not None:
            self._write_seq_file(seq)
            self._seq_reserved = seq

    def _write_seq_file(self, seq: int) -> None:
        seq_file = self._seq_file
        if seq_file is None:
            return
        tmp = seq_file.with_name(seq_file.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(str(seq))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, seq_file)

    def identity(self) -> dict[str, Any] | None:
        """What this journal hedges (instance, accounts and exchanges, mode), once recorded."""
        value = self._get("identity")
        return None if value is None else dict(json.loads(value))

    def set_identity(self, identity: dict[str, Any]) -> None:
        """Record (or, with the operator's explicit consent, replace) the identity."""
        with self.transaction() as db:
            self._put(db, "identity", json.dumps(identity, sort_keys=True))

    def is_empty(self) -> bool:
        """True when this journal has never recorded an order."""
        return self._db.execute("SELECT 1 FROM orders LIMIT 1").fetchone() is None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal schema {version} is newer than this hedgekeeper knows ({SCHEMA_VERSION})"
            )
        # Version 0 is a new file: create schema 1, then upgrade step by step. Each step
        # is one transaction (executescript commits by itself, so BEGIN/COMMIT are inline).
        if version == 0:
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = 1;COMMIT;")
            version = 1
        while version < SCHEMA_VERSION:
            self._db.executescript(
                f"BEGIN IMMEDIATE;{_MIGRATIONS[version]}PRAGMA user_version = {version + 1};COMMIT;"
            )
            version += 1

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: ``BEGIN IMMEDIATE`` … ``COMMIT`` (or rollback on error)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint and close the database."""
        try:
            if not self.read_only:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    # -- key/value state ---------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _put(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def epoch(self) -> str:
        """This journal's random 4-character id, made once when it is created."""
        value = self._get("epoch")
        if value is None:
            alphabet = string.ascii_lowercase + string.digits
            value = "".join(secrets.choice(alphabet) for _ in range(4))
            with self.transaction() as db:
                self._put(db, "epoch", value)
        return value

    def adopt_order(self, info: OrderInfo, group: str, account: str, reason: str) -> bool:
        """Journal a working order found at the venue (an orphan of ours) as ``OPEN``.

        Returns False when its sequence number is already taken in this journal.
        """
        now = self._now()
        seq = int(info.client_order_id[-10:])
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM orders WHERE seq = ?", (seq,)).fetchone():
                return False
            db.execute(
                "INSERT INTO orders (client_order_id, seq, group_name, account, symbol, side, "
                "amount, order_type, price, reduce_only, post_only, status, filled, reason, "
                "cycle, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.client_order_id, seq, group, account, info.symbol, info.side.value,
                    str(info.amount), OrderType.LIMIT.value,
                    None if info.price is None else str(info.price), int(info.reduce_only), 0,
                    OrderStatus.OPEN.value, str(info.filled), reason, None, now, now,
                ),
            )  # fmt: skip
        return True

    def trading_state(self) -> TradingState:
        """The persisted trading state (``ACTIVE`` when never set)."""
        value = self._get("trading_state")
        return TradingState(value) if value else TradingState.ACTIVE

    def set_trading_state(self, state: TradingState, source: str, reason: str) -> None:
        """Persist a trading-state change and who made it.

        A halt is also written beside the journal (``journal.db.halted``), so that it
        survives the loss of the journal itself; leaving HALTED removes it.
        """
        halt = self._halt_file
        if halt is not None:
            if state is TradingState.HALTED:
                halt.write_text(f"{source}: {reason}\n", encoding="utf-8")
            else:
                halt.unlink(missing_ok=True)
        with self.transaction() as db:
            self._put(db, "trading_state", state.value)
            db.execute(
                "INSERT INTO operator_actions (at, action, source, detail) VALUES (?, ?, ?, ?)",
                (self._now(), f"state:{state.value}", source, reason),
            )

    def flag(self, name: str) -> bool:
        """A persisted boolean (e.g. ``flatten`` in progress)."""
        return self._get(f"flag:{name}") == "1"

    def set_flag(self, name: str, value: bool) -> None:
        """Persist a boolean."""
        with self.transaction() as db:
            self._put(db, f"flag:{name}", "1" if value else "0")

    # -- dated-contract rolls (see hedgekeeper.roll) ------------------------------------

    def roll_state(self, group: str) -> dict[str, Any] | None:
        """The group's roll in progress (``from``, ``to``, ``contracts``), if any."""
        value = self._get(f"roll:{group}")
        return None if value is None else dict(json.loads(value))

    def active_contract(self, group: str) -> str | None:
        """The contract a group rolled into last (``None``: the configured one)."""
        return self._get(f"contract:{group}")

    def begin_roll(self, group: str, record: dict[str, Any]) -> None:
        """Write a roll ahead of its two legs, durably, as one record."""
        detail = json.dumps(record, sort_keys=True)
        with self.transaction() as db:
            self._put(db, f"roll:{group}", detail)
            db.execute(
                "INSERT INTO operator_actions (at, action, source, detail) VALUES (?, ?, ?, ?)",
                (time.time(), "roll.started", group, detail),
            )

    def finish_roll(self, group: str, contract: str) -> None:
        """The roll is done: ``contract`` is the group's instrument from now on."""
        with self.transaction() as db:
            self._put(db, f"contract:{group}", contract)
            db.execute("DELETE FROM kv WHERE key = ?", (f"roll:{group}",))
            db.execute(
                "INSERT INTO operator_actions (at, action, source, detail) VALUES (?, ?, ?, ?)",
                (time.time(), "roll.done", group, contract),
            )

    # -- multi-leg operator operations (see hedgekeeper.realize) ---------------------------

    def operation(self, key: str) -> dict[str, Any] | None:
        """An operation in progress under ``key`` (e.g. ``realize:btc``), if any."""
        value = self._get(f"op:{key}")
        return None if value is None else dict(json.loads(value))

    def operations(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every operation in progress whose key starts with ``prefix``, by the rest of
        its key (``operations("realize:")`` -> ``{"btc": {...}}``)."""
        rows = self._db.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ?",
            (len(prefix) + 3, f"op:{prefix}"),
        ).fetchall()
        return {k[len(prefix) + 3:]: dict(json.loads(v)) for k, v in rows}

    def set_operation(self, key: str, record: dict[str, Any], action: str | None = None) -> None:
        """Write an operation's record durably (and an action row), before its next leg."""
        detail = json.dumps(record, sort_keys=True, default=str)
        with self.transaction() as db:
            self._put(db, f"op:{key}", detail)
            if action is not None:
                db.execute(
                    "INSERT INTO operator_actions (at, action, source, detail) "
                    "VALUES (?, ?, ?, ?)",
                    (self._now(), action, key, detail),
                )

    def end_operation(self, key: str, action: str, detail: dict[str, Any]) -> None:
        """The operation is over: drop its record and note the outcome, atomically."""
        with self.transaction() as db:
            db.execute("DELETE FROM kv WHERE key = ?", (f"op:{key}",))
            db.execute(
                "INSERT INTO operator_actions (at, action, source, detail) VALUES (?, ?, ?, ?)",
                (self._now(), action, key, json.dumps(detail, sort_keys=True, default=str)),
            )

    def actions(self) -> list[dict[str, Any]]:
        """Operator and guard actions, oldest first."""
        rows = self._db.execute(
            "SELECT at, action, source, detail FROM operator_actions ORDER BY id"
        ).fetchall()
        return [{"at": a, "action": b, "source": c, "detail": d} for a, b, c, d in rows]

    def topups_since(self, group: str, since: float) -> Decimal:
        """USD moved into futures collateral for a group since ``since`` (epoch seconds)."""
        rows = self._db.execute(
            "SELECT detail FROM operator_actions WHERE action = 'topup' AND source = ? AND at >= ?",
            (group, since),
        )
        return sum((Decimal(json.loads(d)["amount"]) for (d,) in rows), Decimal(0))

    def record_action(self, action: str, source: str, detail: str) -> None:
        """Note an operator or guard action (halt, resume, flatten, …)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO operator_actions (at, action, source, detail) VALUES (?, ?, ?, ?)",
                (self._now(), action, source, detail),
            )

    # -- cycles and decisions -------------------------------------------------------------

    def begin_cycle(self) -> int:
        """Start a cycle record and return its number."""
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO cycles (started_at) VALUES (?)", (self._now(),))
            return int(cursor.lastrowid or 0)

    def finish_cycle(
        self,
        cycle: int,
        status: str,
        summary: dict[str, Any],
        decisions: Sequence[tuple[str, str, str, dict[str, Any]]],
        positions: Sequence[tuple[str, str, Decimal]] = (),
    ) -> None:
        """Close a cycle: its summary, its decisions (group, action, reason, detail), and
        the positions it saw (account, symbol, contracts), in one transaction."""
        now = self._now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO positions_seen (account, symbol, contracts, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(account, symbol) DO UPDATE SET contracts = excluded.contracts, "
                "at = excluded.at",
                [(a, s, str(c), now) for a, s, c in positions],
            )
            db.executemany(
                "INSERT INTO decisions (cycle, group_name, at, action, reason, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(cycle, g, now, a, r, json.dumps(d, default=str)) for g, a, r, d in decisions],
            )
            db.execute(
                "UPDATE cycles SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (now, status, json.dumps(summary, default=str), cycle),
            )

    def positions_seen(self) -> dict[tuple[str, str], Decimal]:
        """The positions the last cycles saw, (account, symbol) -> contracts."""
        rows = self._db.execute("SELECT account, symbol, contracts FROM positions_seen")
        return {(a, s): Decimal(c) for a, s, c in rows}

    def hedge_added_since(self, group: str, since: float) -> Decimal:
        """Contracts sold (hedge added) by a group's fills since ``since`` (epoch seconds).

        Spot sells (``realize``) are not hedge: a contract's unified symbol has a settle
        currency after ``:``, a spot symbol none."""
        rows = self._db.execute(
            "SELECT f.amount FROM fills f JOIN orders o USING (client_order_id) "
            "WHERE o.group_name = ? AND f.side = 'sell' AND f.at >= ? "
            "AND instr(f.symbol, ':') > 0",
            (group, since),
        )
        return sum((Decimal(amount) for (amount,) in rows), Decimal(0))

    def orders_created_since(self, account: str, since: float) -> int:
        """How many orders of an account were journaled since ``since`` (epoch seconds)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM orders WHERE account = ? AND created_at >= ?", (account, since)
        ).fetchone()
        return int(row[0])

    def last_cycle(self) -> dict[str, Any] | None:
        """The latest finished cycle, or ``None``."""
        row = self._db.execute(
            "SELECT id, started_at, finished_at, status, summary FROM cycles "
            "WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {
            "cycle": row[0],
            "started_at": row[1],
            "finished_at": row[2],
            "status": row[3],
            "summary": json.loads(row[4] or "{}"),
        }

    def decisions(self, group: str | None = None) -> list[dict[str, Any]]:
        """Every decision, oldest first (optionally for one group)."""
        sql = "SELECT cycle, group_name, at, action, reason, detail FROM decisions"
        args: tuple[str, ...] = ()
        if group is not None:
            sql += " WHERE group_name = ?"
            args = (group,)
        return [
            {"cycle": c, "group": g, "at": at, "action": a, "reason": r, **json.loads(d)}
            for c, g, at, a, r, d in self._db.execute(sql + " ORDER BY id", args)
        ]

    # -- orders -----------------------------------------------------------------------------

    def new_order(
        self,
        *,
        instance: str,
        group_code: str,
        group: str,
        account: str,
        symbol: str,
        side: Side,
        amount: Decimal,
        order_type: OrderType,
        price: Decimal | None,
        reduce_only: bool,
        post_only: bool,
        reason: str,
        cycle: int | None,
        time_in_force: str | None = None,
    ) -> OrderRequest:
        """Allocate the next client order id and journal the order as ``NEW``, durably.

        The id is ``{instance}{group_code}{epoch}{seq:010d}``: alphanumeric, at most
        32 characters. The sequence never repeats because it is taken in the same
        transaction that writes the order; the journal's random 4-character epoch
        keeps a new journal (a wiped state directory) from reusing an old id.
        """
        now = self._now()
        epoch = self.epoch()
        with self.transaction() as db:
            row = db.execute("SELECT MAX(seq) FROM orders").fetchone()
            seq = max(int(row[0] or 0), self._seq_floor) + 1
            if seq > self._seq_reserved and self._seq_file is not None:
                # Reserve ahead in the sidecar *before* the id exists: a journal that
                # loses its last writes (WAL gone) can never issue this id again.
                self._write_seq_file(seq + _SEQ_RESERVE)
                self._seq_reserved = seq + _SEQ_RESERVE
            client_order_id = f"{instance}{group_code}{epoch}{seq:010d}"
            db.execute(
                "INSERT INTO orders (client_order_id, seq, group_name, account, symbol, side, "
                "amount, order_type, price, reduce_only, post_only, status, reason, cycle, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_order_id, seq, group, account, symbol, side.value, str(amount),
                    order_type.value, None if price is None else str(price), int(reduce_only),
                    int(post_only), OrderStatus.NEW.value, reason, cycle, now, now,
                ),
            )  # fmt: skip
        return OrderRequest(
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            amount=amount,
            order_type=order_type,
            price=price,
            reduce_only=reduce_only,
            post_only=post_only,
            time_in_force=time_in_force,
        )

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        *,
        filled: Decimal | None = None,
        average_price: Decimal | None = None,
        exchange_order_id: str | None = None,
        fill: tuple[JournaledOrder, Decimal, Decimal | None, Decimal] | None = None,
    ) -> None:
        """Record an order's new status (and fill progress when known).

        ``fill`` (order, amount, price, fee) records a new fill in the same
        transaction, so status and fills never disagree after a crash.
        """
        with self.transaction() as db:
            if fill is not None:
                self._insert_fill(db, *fill)
            db.execute(
                "UPDATE orders SET status = ?, filled = COALESCE(?, filled), "
                "average_price = COALESCE(?, average_price), "
                "exchange_order_id = COALESCE(?, exchange_order_id), updated_at = ? "
                "WHERE client_order_id = ?",
                (
                    status.value,
                    None if filled is None else str(filled),
                    None if average_price is None else str(average_price),
                    exchange_order_id,
                    self._now(),
                    client_order_id,
                ),
            )

    def _insert_fill(
        self,
        db: sqlite3.Connection,
        order: JournaledOrder,
        amount: Decimal,
        price: Decimal | None,
        fee_usd: Decimal,
    ) -> None:
        db.execute(
            "INSERT INTO fills (client_order_id, account, symbol, side, amount, price, "
            "fee_usd, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.request.client_order_id, order.account, order.request.symbol,
                order.request.side.value, str(amount), None if price is None else str(price),
                str(fee_usd), self._now(),
            ),
        )  # fmt: skip

    def _orders(self, where: str, args: tuple[Any, ...]) -> list[JournaledOrder]:
        rows = self._db.execute(
            "SELECT client_order_id, seq, group_name, account, symbol, side, amount, order_type, "
            "price, reduce_only, post_only, status, filled, average_price, exchange_order_id, "
            f"reason, cycle, created_at FROM orders {where} ORDER BY seq",
            args,
        ).fetchall()
        return [
            JournaledOrder(
                request=OrderRequest(
                    client_order_id=r[0],
                    symbol=r[4],
                    side=Side(r[5]),
                    amount=Decimal(r[6]),
                    order_type=OrderType(r[7]),
                    price=_dec(r[8]),
                    reduce_only=bool(r[9]),
                    post_only=bool(r[10]),
                ),
                seq=r[1],
                group=r[2],
                account=r[3],
                status=OrderStatus(r[11]),
                filled=Decimal(r[12]),
                average_price=_dec(r[13]),
                exchange_order_id=r[14],
                reason=r[15],
                cycle=r[16],
                created_at=r[17],
            )
            for r in rows
        ]

    def orders(self, group: str | None = None) -> list[JournaledOrder]:
        """Every journaled order, oldest first."""
        if group is None:
            return self._orders("", ())
        return self._orders("WHERE group_name = ?", (group,))

    def unresolved_orders(self) -> list[JournaledOrder]:
        """Orders whose outcome is not final (new, sent, unknown, open)."""
        marks = ",".join("?" for _ in UNRESOLVED)
        return self._orders(f"WHERE status IN ({marks})", tuple(s.value for s in UNRESOLVED))

    def order(self, client_order_id: str) -> JournaledOrder | None:
        """One order by client id."""
        found = self._orders("WHERE client_order_id = ?", (client_order_id,))
        return found[0] if found else None

    def fills(self) -> list[dict[str, Any]]:
        """Every fill, oldest first."""
        cols = ("client_order_id", "account", "symbol", "side", "amount", "price", "fee_usd", "at")
        rows = self._db.execute(f"SELECT {', '.join(cols)} FROM fills ORDER BY id").fetchall()
        return [dict(zip(cols, row, strict=True)) for row in rows]

    def fills_by_group(self) -> dict[str, list[dict[str, Any]]]:
        """Every fill with its order's group, oldest first, grouped by group name."""
        cols = ("group_name", "account", "symbol", "side", "amount", "price", "fee_usd", "at")
        rows = self._db.execute(
            "SELECT o.group_name, f.account, f.symbol, f.side, f.amount, f.price, f.fee_usd, "
            "f.at FROM fills f JOIN orders o USING (client_order_id) "
            "WHERE f.price IS NOT NULL ORDER BY f.id"
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row[0], []).append(dict(zip(cols, row, strict=True)))
        return out

    # -- funding ---------------------------------------------------------------------------

    def record_funding(self, records: Sequence[FundingRecord]) -> list[FundingRecord]:
        """Store funding payments not seen before (by account and id); return the new ones."""
        new: list[FundingRecord] = []
        with self.transaction() as db:
            for r in records:
                p = r.payment
                cursor = db.execute(
                    "INSERT OR IGNORE INTO funding (account, id, group_name, symbol, at, amount, "
                    "asset, amount_usd, rate, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.account, p.id, r.group, p.symbol, p.timestamp, str(p.amount), p.asset,
                     None if r.amount_usd is None else str(r.amount_usd),
                     None if p.rate is None else str(p.rate), self._now()),
                )  # fmt: skip
                if cursor.rowcount:
                    new.append(r)
        return new

    def funding_usd(self, since: float | None = None) -> dict[str, Decimal]:
        """Net funding per group in USD (positive: received), settled since ``since``."""
        rows = self._db.execute(
            "SELECT group_name, amount_usd FROM funding WHERE amount_usd IS NOT NULL AND at >= ?",
            (since if since is not None else float("-inf"),),
        )
        totals: dict[str, Decimal] = {}
        for group, amount in rows:
            totals[group] = totals.get(group, Decimal(0)) + Decimal(amount)
        return totals

    def exposure_bounds(
        self, group: str, since: float, until: float
    ) -> tuple[Decimal, Decimal] | None:
        """A group's exposure (USD) at its first and last decision in ``[since, until]``."""
        sql = (
            "SELECT json_extract(detail, '$.exposure_usd') FROM decisions WHERE group_name = ? "
            "AND at >= ? AND at <= ? AND json_extract(detail, '$.exposure_usd') IS NOT NULL "
            "ORDER BY id {} LIMIT 1"
        )
        args = (group, since, until)
        first = self._db.execute(sql.format("ASC"), args).fetchone()
        last = self._db.execute(sql.format("DESC"), args).fetchone()
        if first is None or last is None:
            return None
        return Decimal(str(first[0])), Decimal(str(last[0]))

    def cached(self, key: str) -> str | None:
        """A value remembered across restarts (e.g. an estimated beta), or ``None``."""
        return self._get(f"cache:{key}")

    def remember(self, key: str, value: str) -> None:
        """Remember ``value`` under ``key`` across restarts (see :meth:`cached`)."""
        with self.transaction() as db:
            self._put(db, f"cache:{key}", value)

    def last_mark(self, symbol: str) -> Decimal | None:
        """The last mark price noted for ``symbol`` (a backtest notes its final bar's)."""
        value = self._get(f"mark:{symbol}")
        return None if value is None else Decimal(value)

    def note_mark(self, symbol: str, price: Decimal) -> None:
        """Note a mark price, for reports that read this journal later."""
        with self.transaction() as db:
            self._put(db, f"mark:{symbol}", str(price))

    def funding_records(self, since: float, until: float) -> list[tuple[str, Decimal]]:
        """(group, USD amount) of every funding payment settled in ``[since, until]``."""
        rows = self._db.execute(
            "SELECT group_name, amount_usd FROM funding WHERE amount_usd IS NOT NULL "
            "AND at >= ? AND at <= ? ORDER BY at",
            (since, until),
        )
        return [(group, Decimal(amount)) for group, amount in rows]

    def funding_cursor(self, account: str) -> float | None:
        """Up to when (epoch seconds) an account's funding history has been read."""
        value = self._get(f"funding_cursor:{account}")
        return None if value is None else float(value)

    def set_funding_cursor(self, account: str, until: float) -> None:
        """Remember that the account's funding history was read up to ``until``."""
        with self.transaction() as db:
            self._put(db, f"funding_cursor:{account}", repr(until))

    def first_cycle_at(self) -> float | None:
        """When the first cycle of this journal started (epoch seconds)."""
        # Kept aside by retention (hedgekeeper.retention) before the first cycle row goes.
        kept = self._get("first_cycle_at")
        if kept is not None:
            return float(kept)
        # By the primary key: MIN(started_at) would scan every cycle of months of running.
        row = self._db.execute("SELECT started_at FROM cycles ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    # -- the paper venue's own book ---------------------------------------------------------

    def paper_funding_mark(self, account: str, symbol: str) -> tuple[float, Decimal] | None:
        """The settlement the paper venue waits for on a symbol: (time, last rate seen)."""
        row = self._db.execute(
            "SELECT next_at, rate FROM paper_funding_marks WHERE account = ? AND symbol = ?",
            (account, symbol),
        ).fetchone()
        return None if row is None else (float(row[0]), Decimal(row[1]))

    def paper_funding_settle(
        self, account: str, symbol: str, payment: FundingPayment | None,
        next_at: float, rate: Decimal,
    ) -> None:  # fmt: skip
        """Atomically book a paper funding payment (if any) and wait for the next one."""
        with self.transaction() as db:
            if payment is not None:
                db.execute(
                    "INSERT OR IGNORE INTO paper_funding (account, id, symbol, at, amount, asset, "
                    "rate) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (account, payment.id, payment.symbol, payment.timestamp, str(payment.amount),
                     payment.asset, None if payment.rate is None else str(payment.rate)),
                )  # fmt: skip
            db.execute(
                "INSERT INTO paper_funding_marks (account, symbol, next_at, rate) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(account, symbol) "
                "DO UPDATE SET next_at = excluded.next_at, rate = excluded.rate",
                (account, symbol, next_at, str(rate)),
            )

    def paper_funding(self, account: str, since: float, until: float) -> list[FundingPayment]:
        """The paper venue's funding payments booked in ``[since, until]``, oldest first."""
        rows = self._db.execute(
            "SELECT id, symbol, at, amount, asset, rate FROM paper_funding "
            "WHERE account = ? AND at >= ? AND at <= ? ORDER BY at, id",
            (account, since, until),
        )
        return [
            FundingPayment(i, symbol, at, Decimal(amount), asset, _dec(rate))
            for i, symbol, at, amount, asset, rate in rows
        ]

    def paper_positions(self, account: str) -> dict[str, Decimal]:
        """Paper position offsets of one account, symbol -> signed contracts."""
        rows = self._db.execute(
            "SELECT symbol, contracts FROM paper_positions WHERE account = ?", (account,)
        )
        return {symbol: Decimal(contracts) for symbol, contracts in rows}

    def _paper_position(self, db: sqlite3.Connection, account: str, symbol: str) -> Decimal:
        row = db.execute(
            "SELECT contracts FROM paper_positions WHERE account = ? AND symbol = ?",
            (account, symbol),
        ).fetchone()
        return Decimal(0) if row is None else Decimal(row[0])

    def paper_order(self, account: str, client_order_id: str) -> OrderInfo | None:
        """A paper order's final state, or ``None`` if the paper venue never saw it."""
        row = self._db.execute(
            "SELECT info FROM paper_orders WHERE account = ? AND client_order_id = ?",
            (account, client_order_id),
        ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return OrderInfo(
            client_order_id=data["client_order_id"],
            symbol=data["symbol"],
            side=Side(data["side"]),
            amount=Decimal(data["amount"]),
            status=OrderStatus(data["status"]),
            filled=Decimal(data["filled"]),
            average_price=_dec(data["average_price"]),
            fee_usd=Decimal(data["fee_usd"]),
            exchange_order_id=data["exchange_order_id"],
            reduce_only=data["reduce_only"],
            price=_dec(data.get("price")),
        )

    def paper_open_orders(self, account: str) -> list[OrderInfo]:
        """Resting paper orders of one account."""
        rows = self._db.execute(
            "SELECT client_order_id FROM paper_orders WHERE account = ? "
            "AND json_extract(info, '$.status') = 'open'",
            (account,),
        ).fetchall()
        found = (self.paper_order(account, cid) for (cid,) in rows)
        return [o for o in found if o is not None]

    def paper_spot_fill(self, account: str, info: OrderInfo, deltas: dict[str, Decimal]) -> None:
        """Atomically move paper spot balances (``spot:{ASSET}`` offsets) and store the
        paper order that moved them."""
        with self.transaction() as db:
            for asset, delta in deltas.items():
                key = f"spot:{asset}"
                db.execute(
                    "INSERT INTO paper_positions (account, symbol, contracts) VALUES (?, ?, ?) "
                    "ON CONFLICT(account, symbol) DO UPDATE SET contracts = ?",
                    (account, key, str(delta),
                     str(self._paper_position(db, account, key) + delta)),
                )  # fmt: skip
            db.execute(
                "INSERT INTO paper_orders (account, client_order_id, info) VALUES (?, ?, ?)",
                (account, info.client_order_id, json.dumps(_paper_order_data(info))),
            )

    def paper_fill(
        self,
        account: str,
        info: OrderInfo,
        position_delta: Decimal,
        *,
        replace_existing: bool = False,
    ) -> None:
        """Atomically move a paper position and store the paper order that moved it."""
        data = _paper_order_data(info)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO paper_positions (account, symbol, contracts) VALUES (?, ?, ?) "
                "ON CONFLICT(account, symbol) DO UPDATE SET contracts = ?",
                (
                    account,
                    info.symbol,
                    str(position_delta),
                    str(self._paper_position(db, account, info.symbol) + position_delta),
                ),
            )
            verb = "INSERT OR REPLACE" if replace_existing else "INSERT"
            db.execute(
                f"{verb} INTO paper_orders (account, client_order_id, info) VALUES (?, ?, ?)",
                (account, info.client_order_id, json.dumps(data)),
            )
