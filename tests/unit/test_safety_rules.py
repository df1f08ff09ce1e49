"""The safety rules as structure: write gate, read-only venues, state lock, expected
positions, journal checks and sidecars, strong control tokens, finite config bounds."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from hedgekeeper.exceptions import ConfigError, JournalError
from hedgekeeper.expected import ExpectedPositions
from hedgekeeper.gate import GatedVenue, ReadOnlyVenue, WriteGate, WriteRefused
from hedgekeeper.journal import Journal
from hedgekeeper.model import (
    OrderInfo,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from hedgekeeper.settings import load_settings
from hedgekeeper.statelock import StateLock, StateLockError
from tests.ops.helpers import make_engine, sim_config

D = Decimal


def request(reduce_only: bool = False, cid: str = "hkbtcabcd0000000001") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="BTC/USDT:USDT", side=Side.SELL,
                        amount=D(1), order_type=OrderType.LIMIT, price=D(1),
                        reduce_only=reduce_only)  # fmt: skip


# -- the write gate ------------------------------------------------------------------------


def test_gate_follows_the_trading_state_at_the_moment_of_sending(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    gate = WriteGate(journal, 100)
    gate.admit_create("a", request())  # ACTIVE: anything
    journal.set_trading_state(TradingState.REDUCING, "test", "flatten")
    with pytest.raises(WriteRefused, match="reduce-only"):
        gate.admit_create("a", request())
    gate.admit_create("a", request(reduce_only=True))
    journal.set_trading_state(TradingState.HALTED, "test", "halt")
    with pytest.raises(WriteRefused, match="HALTED"):
        gate.admit_create("a", request(reduce_only=True))
    with pytest.raises(WriteRefused, match="HALTED"):
        gate.admit_transfer("a")
    gate.admit_cancel("a")  # cancels only reduce risk: they still go out
    journal.close()


def test_gate_counts_every_order_per_account_per_minute(tmp_path: Path) -> None:
    now = [1000.0]
    journal = Journal(tmp_path / "j.db")
    gate = WriteGate(journal, 3, clock=lambda: now[0])
    for _ in range(3):
        gate.admit_create("a", request())
    with pytest.raises(WriteRefused, match="max_orders_per_minute = 3"):
        gate.admit_create("a", request())
    gate.admit_create("b", request())  # another account has its own budget
    now[0] += 61
    gate.admit_create("a", request())  # a minute later
    journal.close()


def test_gate_refuses_every_write_once_the_state_lock_is_lost(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    lock = StateLock.acquire(tmp_path / "state")
    gate = WriteGate(journal, 100, lock=lock)
    gate.admit_create("a", request())
    (tmp_path / "state" / "hedgekeeper.lock").unlink()  # a wiped state directory
    for write in (lambda: gate.admit_create("a", request()), lambda: gate.admit_cancel("a"),
                  lambda: gate.admit_transfer("a")):  # fmt: skip
        with pytest.raises(WriteRefused, match="state_lock"):
            write()
    lock.release()
    journal.close()


async def test_gated_venue_has_no_unguarded_write_and_read_only_none_at_all(
    tmp_path: Path,
) -> None:
    engine, sim, _ = make_engine(tmp_path, sim_config())
    gate = WriteGate(engine.journal, 100)
    # A raw venue with extra writes of its own (as a ccxt adapter could grow them): the
    # gated one forwards its other attributes, never those.
    sim.withdraw = sim.create_order = sim.cancel_all_orders = lambda *a: None  # type: ignore[attr-defined]
    sim.diagnostics = "forwarded"  # type: ignore[attr-defined]
    gated = GatedVenue(sim, gate)
    assert gated.diagnostics == "forwarded"  # type: ignore[attr-defined]
    for name in ("create_order", "cancel_all_orders", "withdraw"):
        assert hasattr(sim, name)
        with pytest.raises(AttributeError):
            getattr(gated, name)
    engine.journal.set_trading_state(TradingState.HALTED, "test", "halt")
    with pytest.raises(WriteRefused):  # the gated transfer asks the gate
        await gated.transfer("USDT", D(1), "spot", "swap")  # type: ignore[attr-defined]
    engine.journal.set_trading_state(TradingState.ACTIVE, "test", "resume")
    assert gated.inner is sim
    read_only = ReadOnlyVenue(sim)
    for name in ("submit_order", "cancel_order", "transfer", "setup_instrument"):
        assert not hasattr(read_only, name), name
    # A read-only engine never reconciles or trades.
    from hedgekeeper.engine import Engine

    ro_engine = Engine(engine.settings, {"demo": read_only}, engine.journal)  # type: ignore[dict-item]
    assert ro_engine.read_only
    await ro_engine.start()
    with pytest.raises(RuntimeError, match="read-only"):
        await ro_engine.run_cycle()
    report = await ro_engine.run_cycle(trade=False)
    assert {d.action for d in report.decisions} == {"planned"}
    assert engine.journal.orders() == [] and engine.journal.last_cycle() is None
    engine.journal.close()


# -- the state lock --------------------------------------------------------------------------


def test_state_lock_names_its_holder_and_is_released_by_the_kernel(tmp_path: Path) -> None:
    first = StateLock.acquire(tmp_path, config="/etc/hk/a.toml")
    with pytest.raises(StateLockError) as refused:
        StateLock.acquire(tmp_path, config="/etc/hk/b.toml")
    text = str(refused.value)
    assert f"pid {os.getpid()}" in text and "a.toml" in text and "host" in text
    assert first.held
    first.release()
    second = StateLock.acquire(tmp_path)  # free again
    second.release()


# -- expected positions ----------------------------------------------------------------------


def test_a_read_lagging_a_fill_holds_then_is_adopted_after_the_window() -> None:
    expected = ExpectedPositions(settle_seconds=10)
    assert not expected.on_read("a", "s", D(0), taken_at=0, now=0).hold
    expected.on_fill("a", "s", D("-0.5"), at=1)
    lagging = expected.on_read("a", "s", D(0), taken_at=2, now=2)
    assert lagging.hold and lagging.expected == D("-0.5") and "lags" in lagging.reason
    assert expected.on_read("a", "s", D(0), taken_at=5, now=5).hold
    adopted = expected.on_read("a", "s", D(0), taken_at=12, now=12)
    assert not adopted.hold and adopted.adopted
    assert expected.expected("a", "s") == D(0)


def test_a_read_that_caught_up_or_moved_the_other_way_is_not_held() -> None:
    expected = ExpectedPositions(settle_seconds=10)
    expected.on_read("a", "s", D(0), taken_at=0, now=0)
    expected.on_fill("a", "s", D("-0.5"), at=1)
    assert not expected.on_read("a", "s", D("-0.5"), taken_at=2, now=2).hold
    expected.on_fill("a", "s", D("-0.3"), at=3)
    # Shorted further by hand: not a lag (it moved past the fill), adopted at once.
    verdict = expected.on_read("a", "s", D("-2"), taken_at=4, now=4)
    assert not verdict.hold and verdict.adopted
    # A fill learned after the read was taken may or may not show in it: both accepted.
    expected.on_fill("a", "s", D("-0.1"), at=6)
    assert not expected.on_read("a", "s", D("-2"), taken_at=5, now=6).hold
    assert not expected.on_read("a", "s", D("-2.1"), taken_at=7, now=7).hold


# -- order states: contained, normalised --------------------------------------------------


async def test_an_illegal_transition_holds_only_its_group(tmp_path: Path) -> None:
    engine, sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    first = await engine.run_cycle()
    assert {d.group: d.action for d in first.decisions} == {"btc": "order", "alts": "order"}
    executor = engine.executor
    order = engine.journal.orders("btc")[0]
    assert order.status is OrderStatus.FILLED
    bogus = OrderInfo(client_order_id=order.request.client_order_id, symbol=order.request.symbol,
                      side=order.request.side, amount=order.request.amount,
                      filled=order.request.amount, status=OrderStatus.OPEN)  # fmt: skip
    executor._unresolved[order.request.client_order_id] = order
    original = executor.venues["demo"].fetch_order

    async def odd_answer(symbol: str, cid: str) -> OrderInfo | None:
        if cid == order.request.client_order_id:
            return bogus  # FILLED -> OPEN: a state the order's life does not allow
        return await original(symbol, cid)

    executor.venues["demo"].fetch_order = odd_answer  # type: ignore[method-assign]
    sim.set_balance("ETH", D(14))  # alts needs more hedge now
    report = await engine.run_cycle()
    by_group = {d.group: d for d in report.decisions}
    assert by_group["btc"].action == "skipped" and "held" in by_group["btc"].reason
    assert by_group["alts"].action == "order", "the other group trades on"
    assert engine.journal.order(order.request.client_order_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    await engine.close()
    engine.journal.close()


async def test_closed_with_a_partial_fill_books_the_fill_and_ends_the_order(
    tmp_path: Path,
) -> None:
    engine, _sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    executor = engine.executor
    req = engine.journal.new_order(
        instance="hk", group_code="btc", group="btc", account="demo", symbol="BTC/USDT:USDT",
        side=Side.SELL, amount=D(10), order_type=OrderType.LIMIT, price=D(69000),
        reduce_only=False, post_only=False, reason="t", cycle=None,
    )  # fmt: skip
    order = engine.journal.order(req.client_order_id)
    assert order is not None
    info = OrderInfo(client_order_id=req.client_order_id, symbol=req.symbol, side=Side.SELL,
                     amount=D(10), filled=D(4), status=OrderStatus.FILLED,
                     average_price=D(69000))  # fmt: skip
    executor._apply(order, info, engine.log)
    after = engine.journal.order(req.client_order_id)
    assert after is not None and after.status is OrderStatus.CANCELED and after.filled == D(4)
    assert not executor.held
    # An OPEN order the venue now calls rejected was accepted once: it ended cancelled.
    req2 = engine.journal.new_order(
        instance="hk", group_code="btc", group="btc", account="demo", symbol="BTC/USDT:USDT",
        side=Side.SELL, amount=D(1), order_type=OrderType.LIMIT, price=D(69000),
        reduce_only=False, post_only=True, reason="t", cycle=None,
    )  # fmt: skip
    opened = replace(engine.journal.order(req2.client_order_id), status=OrderStatus.OPEN)  # type: ignore[type-var]
    engine.journal.update_order(req2.client_order_id, OrderStatus.OPEN)
    rejected = replace(info, client_order_id=req2.client_order_id, amount=D(1), filled=D(0),
                       status=OrderStatus.REJECTED)  # fmt: skip
    executor._apply(opened, rejected, engine.log)
    assert engine.journal.order(req2.client_order_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    await engine.close()
    engine.journal.close()


# -- the journal you can trust ---------------------------------------------------------------


def _new(journal: Journal) -> str:
    return journal.new_order(
        instance="hk", group_code="btc", group="btc", account="a", symbol="s", side=Side.SELL,
        amount=D(1), order_type=OrderType.LIMIT, price=D(1), reduce_only=False,
        post_only=False, reason="r", cycle=None,
    ).client_order_id  # fmt: skip


def test_a_damaged_journal_is_refused_with_a_recovery_hint(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    for _ in range(300):
        journal.record_action("note", "test", "x" * 200)
    journal.close()
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(data) - 4096, 4096):  # scribble over page contents
        data[offset + 100 : offset + 400] = b"\xff" * 300
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"(?s)damaged.*move journal\.db") as error:
        Journal(path)
    assert len(str(error.value)) < 1200, "the detail is cut short, the hint stays readable"


def test_client_ids_never_repeat_after_the_journal_loses_its_last_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    issued = [_new(journal) for _ in range(3)]
    journal.close()
    db = sqlite3.connect(path)  # the WAL is lost: the orders were never written
    db.execute("DELETE FROM orders")
    db.commit()
    db.close()
    again = Journal(path)
    assert _new(again) not in issued
    # The venue shows an id with our prefix far ahead: the sequence moves past it.
    again.advance_sequence(5000)
    assert int(_new(again)[-10:]) == 5001
    again.close()


def test_a_halt_survives_the_loss_of_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    journal.set_trading_state(TradingState.HALTED, "operator", "stop everything")
    journal.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    fresh = Journal(path)
    assert fresh.trading_state() is TradingState.HALTED
    assert "stop everything" in fresh.actions()[-1]["detail"]
    fresh.set_trading_state(TradingState.ACTIVE, "operator", "resume")
    fresh.close()
    assert Journal(path).trading_state() is TradingState.ACTIVE  # resume removed the file


def test_a_read_only_journal_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    reader = Journal(path, read_only=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.record_action("x", "y", "z")
    reader.close()


# -- config: strong tokens, finite bounds, no echo -----------------------------------------


@pytest.mark.parametrize(
    ("token", "why"),
    [('""', "empty"), ('"short-token"', "at least 16"),
     ('"  padded-token-0123456  "', "whitespace"), ('"tab\\tseparated-012345"', "whitespace")],
)  # fmt: skip
def test_weak_control_tokens_are_config_errors_that_never_echo_them(
    tmp_path: Path, token: str, why: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(sim_config(control=f"port = 0\ntoken = {token}"))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    text = str(error.value)
    assert "control.token" in text and why in text
    secret = token.strip('"').replace("\\t", "\t").strip()
    if secret:
        assert secret not in text


@pytest.mark.parametrize(
    ("line", "field"),
    [("poll_interval = 0.1", "poll_interval"), ("poll_interval = inf", "poll_interval"),
     ("heartbeat_interval = 0.5", "heartbeat_interval"),
     ("funding_poll_interval = nan", "funding_poll_interval")],
)  # fmt: skip
def test_durations_are_finite_and_sane(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(sim_config(extra=line).replace("poll_interval = 0.2\n", "", 1)
                    if line.startswith("poll") else sim_config(extra=line).replace(
                        "heartbeat_interval = 60.0\n", "", 1) if line.startswith("heart")
                    else sim_config(extra=line))  # fmt: skip
    with pytest.raises(ConfigError, match=field):
        load_settings(path)


def test_holdings_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    text = sim_config().replace('ratio = 0.5', 'ratio = 0.5\nextra_holdings = { BTC = 1e16 }')
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"hedges\.0\.extra_holdings\.BTC"):
        load_settings(path)



def test_a_read_ahead_of_a_fill_learned_later_is_not_counted_twice() -> None:
    """Bybit: the read shows the fill before the look-up reports it."""
    expected = ExpectedPositions(settle_seconds=10)
    expected.on_read("a", "s", D("-0.39"), taken_at=0, now=0)
    assert not expected.on_read("a", "s", D("-0.313"), taken_at=1, now=1).hold  # ahead
    expected.on_fill("a", "s", D("0.077"), at=1.2, sent_at=0.5)  # sent before, learned after
    assert expected.expected("a", "s") == D("-0.313")
    assert not expected.on_read("a", "s", D("-0.313"), taken_at=2, now=2).hold
    # Long after, a fill of ours is not "already shown": it is expected in full.
    expected.on_read("a", "s", D("-0.2"), taken_at=3, now=3)
    expected.on_fill("a", "s", D("0.1"), at=30, sent_at=29)
    assert expected.expected("a", "s") == D("-0.1")


def test_a_movement_from_outside_never_hides_our_next_fill() -> None:
    """The soak's over-hedge: a position changed by hand left an unexplained movement, our
    next fill (an order sent *after* that read) was taken as already shown, and the next
    read lagging it got a second order. An order sent after a read is never in it."""
    expected = ExpectedPositions(settle_seconds=30)
    expected.on_read("a", "s", D("-0.6"), taken_at=0, now=0)
    expected.on_read("a", "s", D("-0.696"), taken_at=1, now=1)  # moved by hand: unexplained
    expected.on_fill("a", "s", D("-0.068"), at=2.1, sent_at=2.0)  # our order, after that read
    lagging = expected.on_read("a", "s", D("-0.696"), taken_at=3, now=3)
    assert lagging.hold and lagging.expected == D("-0.764")


async def test_a_failing_background_funding_read_is_logged_and_retried(tmp_path: Path) -> None:
    import asyncio

    engine, _sim, _ = make_engine(tmp_path, sim_config().replace(
        "heartbeat_interval = 60.0", "heartbeat_interval = 60.0\nfunding_poll_interval = 1"))
    await engine.start()
    alerts: list[dict[str, object]] = []
    engine.events.add_listener(lambda e: alerts.append(e) if e.get("event") == "alert" else None)
    calls = []

    async def broken() -> list[object]:
        calls.append(1)
        raise RuntimeError("journal on fire")

    engine.funding.collect = broken  # type: ignore[method-assign, assignment]
    engine.funding.poll()
    await asyncio.sleep(0.05)
    assert calls == [1] and engine.funding.last_error is not None
    assert alerts and "journal on fire" in str(alerts[0]["reason"])
    engine.funding._next_at = 0  # due again: the next poll tries again
    engine.funding.poll()
    await asyncio.sleep(0.05)
    assert calls == [1, 1]
    await engine.close()
    engine.journal.close()


async def test_quotes_without_a_time_are_stamped_and_every_price_is_age_checked(
    tmp_path: Path,
) -> None:
    from dataclasses import replace as dc_replace

    now = [1_000_000.0]
    engine, sim, _ = make_engine(tmp_path, sim_config())
    engine.clock = engine.executor.clock = lambda: now[0]
    await engine.start()
    assert engine.reader is not None
    engine.reader.clock = lambda: now[0]
    inner = engine.venues["demo"]
    original = inner.fetch_quotes
    frozen: dict[str, object] = {}

    async def timeless(symbols: object) -> dict[str, object]:
        quotes = await original(symbols)  # type: ignore[arg-type]
        for symbol, quote in quotes.items():  # the ETH spot price stops moving in time
            if symbol == "ETH/USDT" and symbol in frozen:
                quotes[symbol] = frozen[symbol]  # type: ignore[assignment]
            elif symbol == "ETH/USDT":
                frozen[symbol] = quotes[symbol] = dc_replace(quote, timestamp=0.0)
            else:
                quotes[symbol] = dc_replace(quote, timestamp=now[0])
        return quotes  # type: ignore[return-value]

    inner.fetch_quotes = timeless  # type: ignore[method-assign]
    snap = await engine.snapshot()
    stamped = snap.quotes["demo"]["ETH/USDT"]  # type: ignore[index]
    assert stamped.timestamp == now[0], "a quote without a time is stamped on receipt"
    frozen["ETH/USDT"] = stamped  # the venue keeps serving that same (now stamped) quote
    now[0] += 120  # past max_data_age (30 s) for the ETH price only
    sim.set_balance("ETH", D(20))  # the alts group would order now
    report = await engine.run_cycle()
    alts = next(d for d in report.decisions if d.group == "alts")
    assert alts.action == "blocked" and "price of ETH" in alts.reason, alts.reason
    await engine.close()
    engine.journal.close()


def test_check_says_a_state_directory_is_in_use_and_takes_nothing(tmp_path: Path) -> None:
    from hedgekeeper.preflight import preflight

    path = tmp_path / "c.toml"
    path.write_text(sim_config())
    settings = load_settings(path)
    state = tmp_path / "state"
    preflight(settings, state)  # free: no problem, and nothing created
    assert not state.exists()
    lock = StateLock.acquire(state, config="/etc/hk/running.toml")
    with pytest.raises(ConfigError, match=rf"in use by pid {os.getpid()} .*running\.toml"):
        preflight(settings, state)
    assert lock.held, "the probe did not take or break the holder's lock"
    lock.release()
    preflight(settings, state)
