"""Safe by construction: each rule of the write gate, the expected position, order-state
containment and the journal checks, on both dialects against the emulator.

Every scenario ends with the harness's invariants: no client id twice, nothing at the
emulator that the journal lacks, and the hedge never past ``max(target, 1 step)`` plus
its band at any cycle end.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from hedgekeeper.journal import Journal
from hedgekeeper.model import OrderStatus, TradingState
from tests.emulator import Emulator, Fault
from tests.faults.harness import KEY, Rig, config_text, order_endpoint

#: 0.5 BTC at 60,000 is 30,000 USD: five child orders of at most 6,500 USD.
SLICED = "leverage = 1\nmax_order_usd = 6500"


def creates(rig: Rig) -> int:
    return sum(rig.create_requests().values())


def held(rig: Rig) -> list[str]:
    return [d.reason for r in rig.reports for d in r.decisions if d.reason.startswith("held:")]


@pytest.mark.parametrize("command", ["halt", "flatten"])
async def test_operator_command_lands_between_child_orders(
    rig: Rig, emu: Emulator, command: str, record: Any
) -> None:
    """Halt or flatten during a sliced execution: at most the child in flight goes out."""
    engine = await rig.start(config_text(emu.dialect_name, emu.base_url, hedge=SLICED))
    submitted: list[int] = []
    tasks: list[asyncio.Future[Any]] = []
    sent_before: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") != "order.submitted":
            return
        submitted.append(1)
        if len(submitted) == 1 and not tasks:  # the first child is about to go out
            sent_before.append(creates(rig))
            tasks.append(asyncio.ensure_future(getattr(engine, command)("test", command)))

    engine.events.add_listener(on_event)
    await rig.cycle()
    await asyncio.gather(*tasks)
    after = creates(rig) - sent_before[0]
    assert after <= 1, f"{after} child orders went out after the {command}"
    refused = [o for o in rig.journal.orders() if o.status is OrderStatus.REJECTED]  # type: ignore[union-attr]
    if emu.dialect_name == "binance":  # fills in the reply: the children follow at once
        assert len(refused) >= 1, "the remaining children were refused by the gate, journaled"
    assert rig.count("order.rejected") == len(refused)
    if command == "flatten":
        await rig.until(lambda: engine.executor.trading_state is TradingState.HALTED, 20,
                        "flatten completed")  # fmt: skip
        assert rig.short() == 0
        buys = [o for o in rig.journal.orders() if o.request.side.value == "buy"]  # type: ignore[union-attr]
        assert buys and all(o.request.reduce_only for o in buys)
    else:
        assert engine.executor.trading_state is TradingState.HALTED
        await rig.cycle(3)
        assert creates(rig) == sent_before[0] + after, "nothing more while HALTED"
    record(f"{command} after child 1: {after} child in flight sent after it, "
           f"{len(refused)} refused at the gate")  # fmt: skip
    rig.check_no_duplicates()
    rig.check_nothing_lost()
    rig.check_consistent()


async def test_every_child_counts_against_orders_per_minute(rig: Rig, emu: Emulator,
                                                            record: Any) -> None:  # fmt: skip
    """Five children wanted, three allowed per minute: three go out, the rest wait."""
    await rig.start(config_text(emu.dialect_name, emu.base_url, hedge=SLICED,
                                execution="max_orders_per_minute = 3"))  # fmt: skip
    await rig.cycle(8)  # Binance slices within a cycle; Bybit (no fill in the reply) across
    assert creates(rig) == 3, f"{creates(rig)} creates with max_orders_per_minute = 3"
    assert rig.short() < rig.target(), "the rest waits for the next minute"
    record(f"3 of 5 children sent within the minute; {rig.engine.gate.refused} refused")  # type: ignore[union-attr]
    rig.check_no_duplicates()
    rig.check_nothing_lost()
    rig.check_consistent()


@pytest.mark.parametrize("lag", [1, 2])
async def test_lagging_read_never_doubles(rig: Rig, emu: Emulator, lag: int,
                                          record: Any) -> None:  # fmt: skip
    """The position endpoint shows the fill one or two reads late: held, never re-ordered."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    emu.lag_position_reads(KEY, 1 + lag)  # this cycle's read, then `lag` stale ones
    await rig.cycle(2 + lag)
    assert creates(rig) == 1, f"{creates(rig)} creates for one intent"
    if emu.dialect_name == "binance":  # the create reply carries the fill: the read lags it
        assert len(held(rig)) == lag and "lags the fills" in held(rig)[0]
    else:  # Bybit's reply has no fill: it is learned by look-up, after that cycle's read
        assert len(held(rig)) == lag - 1
    record(f"read {lag} cycle(s) late: held {len(held(rig))}x, 1 create, short {rig.short()}")
    rig.check_all()


async def test_vanished_open_order_is_resolved_by_look_up(rig: Rig, emu: Emulator,
                                                          record: Any) -> None:  # fmt: skip
    """A resting order the venue no longer knows: resolved, never pending forever."""
    await rig.start(config_text(emu.dialect_name, emu.base_url,
                                hedge='leverage = 1\nexecution = "maker"\nreprice_after = 600'))
    await rig.cycle()
    (resting,) = emu.open_orders(KEY)
    emu.engine.accounts[KEY].orders.remove(resting)  # gone without a trace
    await rig.until(lambda: rig.journal.order(resting.client_id).status  # type: ignore[union-attr]
                    is OrderStatus.CANCELED, 40, "vanished order resolved", pause=0.1)
    assert rig.count("alert") == 0 or all(
        e.get("kind") != "order_state" for e in rig.events if e.get("event") == "alert"
    ), "an expected outcome, not an illegal transition"
    record("open order vanished -> looked up -> cancelled")
    rig.check_no_duplicates()


async def test_duplicate_client_id_goes_to_look_up(rig: Rig, emu: Emulator, record: Any) -> None:
    """A create refused as a duplicate id (Binance -4116, Bybit 110072) is looked up."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    method, path = order_endpoint(emu.dialect_name, "create")
    # The reply says "duplicate id": whatever holds that id is ours, so it is looked up
    # (here it never landed: declared never placed after the look-ups, then re-hedged).
    emu.faults.add(Fault.http_error(400, _duplicate_body(emu.dialect_name)), method=method,
                   path=path)  # fmt: skip
    await rig.cycle()
    (order,) = rig.journal.orders()  # type: ignore[union-attr]
    assert order.status is OrderStatus.UNKNOWN, "a duplicate id is an unknown outcome"
    await rig.settle(pause=0.2)
    assert order.request.client_order_id not in [
        cid for cid, n in rig.create_requests().items() if n > 1
    ]
    record("duplicate-id reply -> unknown -> looked up; never resent under that id")
    rig.check_no_duplicates()
    rig.check_nothing_lost()


def _duplicate_body(dialect: str) -> str:
    if dialect == "binance":
        return '{"code": -4116, "msg": "ClientOrderId is duplicated."}'
    return '{"retCode": 110072, "retMsg": "OrderLinkedID is duplicate", "result": {}}'


async def test_empty_journal_with_our_orders_at_the_venue_starts_halted(
    rig: Rig, emu: Emulator, record: Any
) -> None:
    """The journal was lost while a maker order rested: the restart halts, touches nothing."""
    await rig.start(config_text(emu.dialect_name, emu.base_url,
                                hedge='leverage = 1\nexecution = "maker"\nreprice_after = 600'))
    await rig.cycle()
    (resting,) = emu.open_orders(KEY)
    await rig.close()
    rig.journal.close()  # type: ignore[union-attr]
    for suffix in ("", "-wal", "-shm", ".seq", ".halted"):
        (rig.workdir / f"journal.db{suffix}").unlink(missing_ok=True)
    rig.journal = Journal(rig.workdir / "journal.db")
    engine = await rig.start(config_text(emu.dialect_name, emu.base_url,
                                         hedge='leverage = 1\nexecution = "maker"'))  # fmt: skip
    assert engine.executor.trading_state is TradingState.HALTED
    await rig.cycle(2)
    assert [o.client_id for o in emu.open_orders(KEY)] == [resting.client_id], "untouched"
    assert creates(rig) == 1
    # The sequence moved past the venue's id: a resume can never reuse it.
    assert rig.journal.sequence_floor() >= int(resting.client_id[-10:])
    record("journal lost with an order resting: restart HALTED, order left, sequence moved on")


async def test_top_up_with_a_lost_reply_stays_charged(rig: Rig, emu: Emulator,
                                                      record: Any) -> None:  # fmt: skip
    """A collateral transfer whose reply is lost is charged to the allowance anyway."""
    engine = await rig.start(config_text(emu.dialect_name, emu.base_url,
                                         hedge="leverage = 1\ntopup_max_usd = 3000"))  # fmt: skip
    venue = engine.venues["ex"]
    sent: list[Decimal] = []

    async def lost_reply(asset: str, amount: Decimal, source: str, target: str) -> None:
        sent.append(amount)
        from hedgekeeper.exceptions import UnknownOutcomeError

        raise UnknownOutcomeError("transfer: read timed out")

    venue._venue.transfer = lost_reply  # type: ignore[attr-defined]  # the adapter's, behind the gate
    from hedgekeeper.engine import GroupDecision

    group = engine.groups[0]
    for _ in range(3):
        decision = GroupDecision(group.name, "hold", "test", collateral_shortfall_usd=Decimal(2500))
        await engine._maybe_topup(decision, group, engine.log)
    assert sum(sent) <= Decimal(3000), f"moved {sum(sent)} against topup_max_usd = 3000"
    assert engine.journal.topups_since(group.name, 0) == Decimal(3000)
    record(f"3 lost replies: {sum(sent)} USD sent, allowance 3000 charged in full")


async def test_another_journals_orders_on_the_account_halt_the_daemon(
    rig: Rig, emu: Emulator, record: Any
) -> None:
    """Two daemons with one instance on one account, each with its own state directory:
    the lock cannot see it, the client ids can — the other journal's epoch. Its orders are
    never cancelled as orphans; trading halts with the reason."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    theirs = Journal(rig.workdir / "other.db")  # the other daemon's journal (another epoch)
    engine = rig.engine
    assert engine is not None and theirs.epoch() != rig.journal.epoch()  # type: ignore[union-attr]
    from hedgekeeper.model import OrderType, Side

    request = theirs.new_order(
        instance="hk", group_code="btc", group="btc", account="ex", symbol="BTC/USDT:USDT",
        side=Side.SELL, amount=Decimal("0.1"), order_type=OrderType.LIMIT,
        price=Decimal(90000), reduce_only=False, post_only=True, reason="the other daemon",
        cycle=None,
    )  # fmt: skip
    await engine.venues["ex"].inner.submit_order(request)  # type: ignore[attr-defined]
    theirs.close()
    await rig.cycle()
    assert engine.executor.trading_state is TradingState.HALTED
    assert any(e.get("event") == "alert" and "another journal" in str(e.get("reason"))
               for e in rig.events)  # fmt: skip
    assert [o.client_id for o in emu.open_orders(KEY)] == [request.client_order_id]
    record("an order with our prefix from another journal: HALTED, left in place")
