"""Journal: schema version, write-ahead orders with deterministic ids, durable state."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from hedgekeeper.exceptions import JournalError
from hedgekeeper.journal import SCHEMA_VERSION, Journal
from hedgekeeper.model import OrderInfo, OrderStatus, OrderType, Side, TradingState


def new_order(journal: Journal, group: str = "btc", code: str = "btc"):
    return journal.new_order(
        instance="hk", group_code=code, group=group, account="demo", symbol="BTC/USDT:USDT",
        side=Side.SELL, amount=D(5), order_type=OrderType.MARKET, price=None,
        reduce_only=False, post_only=False, reason="test", cycle=1,
    )  # fmt: skip


def test_schema_version_and_wal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.close()
    db = sqlite3.connect(tmp_path / "j.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_1_is_upgraded_in_place(tmp_path: Path) -> None:
    from hedgekeeper.journal import _SCHEMA

    db = sqlite3.connect(tmp_path / "j.db")
    db.executescript(_SCHEMA + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO kv (key, value) VALUES ('trading_state', 'HALTED')")
    db.commit()
    db.close()
    journal = Journal(tmp_path / "j.db")
    assert journal.trading_state() is TradingState.HALTED, "data survives the upgrade"
    assert journal.positions_seen() == {}
    assert journal.funding_usd() == {}, "schema 4 (funding) is there"
    journal.close()
    db = sqlite3.connect(tmp_path / "j.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"orders_account_created", "funding_group"} <= indexes


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(tmp_path / "j.db")


def test_client_order_ids_are_deterministic_unique_and_short(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    first, second = new_order(journal), new_order(journal, "eth", "eth")
    epoch = journal.epoch()
    assert len(epoch) == 4 and epoch.isalnum()
    assert first.client_order_id == f"hkbtc{epoch}0000000001"
    assert second.client_order_id == f"hketh{epoch}0000000002"
    journal.close()
    reopened = Journal(tmp_path / "j.db")  # the sequence and epoch survive a restart
    third = new_order(reopened)
    # Past the block reserved in the sidecar before the crash-unknowable ids (1 + 100).
    assert third.client_order_id == f"hkbtc{epoch}0000000102"
    other = Journal(tmp_path / "other.db")  # a new journal never reuses an old id
    assert new_order(other).client_order_id != first.client_order_id
    longest = reopened.new_order(
        instance="abcdefgh", group_code="abcdefghij", group="g", account="a", symbol="s",
        side=Side.BUY, amount=D(1), order_type=OrderType.MARKET, price=None,
        reduce_only=True, post_only=False, reason="r", cycle=None,
    )  # fmt: skip
    assert len(longest.client_order_id) <= 32 and longest.client_order_id.isalnum()


def test_order_is_durable_before_anything_else(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    request = new_order(journal)
    # A second connection (as after kill -9) sees the NEW order.
    other = sqlite3.connect(tmp_path / "j.db")
    row = other.execute(
        "SELECT status FROM orders WHERE client_order_id = ?", (request.client_order_id,)
    ).fetchone()
    assert row == ("new",)
    assert [o.request.client_order_id for o in journal.unresolved_orders()] == [
        request.client_order_id
    ]
    journal.update_order(request.client_order_id, OrderStatus.FILLED, filled=D(5))
    assert journal.unresolved_orders() == []


def test_trading_state_persists_with_its_reason(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    assert journal.trading_state() is TradingState.ACTIVE
    journal.set_trading_state(TradingState.HALTED, "operator", "test halt")
    journal.close()
    assert Journal(tmp_path / "j.db").trading_state() is TradingState.HALTED


def test_paper_positions_accumulate_and_survive(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    for n, delta in enumerate([D(-5), D(-3), D(2)]):
        info = OrderInfo(f"c{n}", "BTC/USDT:USDT", Side.SELL, abs(delta), OrderStatus.FILLED,
                         filled=abs(delta))  # fmt: skip
        journal.paper_fill("demo", info, delta)
    journal.close()
    reopened = Journal(tmp_path / "j.db")
    assert reopened.paper_positions("demo") == {"BTC/USDT:USDT": D(-6)}
    found = reopened.paper_order("demo", "c1")
    assert found is not None and found.filled == 3
    assert reopened.paper_order("demo", "nope") is None
