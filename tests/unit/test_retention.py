"""Journal retention: old cycles and decisions go, the accounting stays."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.engine import Engine
from hedgekeeper.journal import FundingRecord, Journal
from hedgekeeper.model import FundingPayment, OrderStatus, OrderType, Side
from hedgekeeper.retention import prune_journal
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def count(path: Path, table: str, where: str = "", args: tuple[float, ...] = ()) -> int:
    db = sqlite3.connect(str(path))
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} {where}", args).fetchone()[0])
    finally:
        db.close()


def write_day(journal: Journal, clock: Clock, day: int, cycles: int) -> None:
    """``cycles`` cycles of two groups on ``day``, one order with a fill, funding, an action."""
    for n in range(cycles):
        clock.now = 1_700_000_000 + day * DAY + n * 60
        cycle = journal.begin_cycle()
        journal.finish_cycle(
            cycle, "ok", {"groups": 2},
            [("a", "hold", "within tolerance", {"exposure_usd": "100"}),
             ("b", "hold", "within tolerance", {"exposure_usd": "50"})],
        )  # fmt: skip
    request = journal.new_order(
        instance="hk", group_code="a", group="a", account="demo", symbol="X/USDT:USDT",
        side=Side.SELL, amount=D("1"), order_type=OrderType.MARKET, price=None,
        reduce_only=False, post_only=False, reason="drift", cycle=cycle,
    )  # fmt: skip
    order = journal.order(request.client_order_id)
    assert order is not None
    journal.update_order(request.client_order_id, OrderStatus.FILLED, filled=D("1"),
                         fill=(order, D("1"), D("10"), D("0.01")))  # fmt: skip
    payment = FundingPayment(f"f{day}", "X/USDT:USDT", clock.now, D("0.5"), "USDT", None)
    journal.record_funding([FundingRecord("demo", "a", payment, D("0.5"))])
    journal.record_action("halt", "test", f"day {day}")


def test_prune_deletes_old_cycles_and_decisions_only_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    clock = Clock(0.0)
    journal = Journal(path, clock=clock)
    for day in range(10):
        write_day(journal, clock, day, cycles=5)
    first = journal.first_cycle_at()
    cut = 1_700_000_000 + 7 * DAY
    before = {t: count(path, t) for t in ("orders", "fills", "funding", "operator_actions")}
    written_between: list[str] = []

    def engine_writes_meanwhile() -> None:
        # The pruner is between two batches: the daemon's own connection still writes.
        written_between.append(journal.new_order(
            instance="hk", group_code="a", group="a", account="demo", symbol="X/USDT:USDT",
            side=Side.BUY, amount=D("1"), order_type=OrderType.MARKET, price=None,
            reduce_only=False, post_only=False, reason="meanwhile", cycle=None,
        ).client_order_id)  # fmt: skip

    result = prune_journal(path, cut, batch=4, pause=0, between=engine_writes_meanwhile)

    assert (result.cycles, result.decisions) == (35, 70)
    assert count(path, "cycles", "WHERE started_at < ?", (cut,)) == 0
    assert count(path, "decisions", "WHERE at < ?", (cut,)) == 0
    assert count(path, "cycles") == 15 and count(path, "decisions") == 30
    # Several transactions (batches of 4), each leaving the write lock to the engine.
    assert len(written_between) >= 20
    after = {t: count(path, t) for t in ("orders", "fills", "funding", "operator_actions")}
    assert after == {**before, "orders": before["orders"] + len(written_between)}
    assert all(journal.order(cid) is not None for cid in written_between)
    # Where the first funding read starts does not move with the pruning.
    assert journal.first_cycle_at() == first == 1_700_000_000
    # Nothing left to do: a second pruning deletes nothing.
    assert prune_journal(path, cut).cycles == 0
    # Everything is old: the newest cycle stays, so the next cycle's number is new.
    last = count(path, "cycles", "WHERE id = (SELECT MAX(id) FROM cycles)")
    prune_journal(path, cut + 100 * DAY)
    assert count(path, "cycles") == 1 == last and count(path, "decisions") == 1
    assert journal.begin_cycle() == 51
    journal.close()


CONFIG = """\
mode = "dry-run"
poll_interval = 1
journal_keep_days = {keep}
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000 }}
balances = {{ BTC = 1.0 }}
contract_sizes = {{ BTC = 0.01 }}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["demo"]
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
tolerance = 0.02
"""


async def run_engine_days(tmp_path: Path, keep: float) -> tuple[Engine, Path]:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(keep=keep))
    settings = load_settings(config)
    clock = Clock(1_700_000_000.0)
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings, clock=clock, epoch=0.0)
    engine = Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal,
                    clock=clock)  # fmt: skip
    await engine.start()
    for _ in range(3):  # day 0: the hedge opens (an order), then holds
        await engine.run_cycle()
        clock.now += 1
    clock.now += 3 * DAY
    for _ in range(2):
        await engine.run_cycle()
        clock.now += 1
    return engine, path


async def test_engine_prunes_past_journal_keep_days_in_the_background(tmp_path: Path) -> None:
    engine, path = await run_engine_days(tmp_path, keep=2)
    orders = count(path, "orders")
    assert orders >= 1 and count(path, "cycles") == 5
    engine.retention.poll()
    engine.retention.poll()  # one pruning at a time, at most one per interval
    await engine.retention.wait()
    assert engine.retention.last is not None
    assert (engine.retention.last.cycles, engine.retention.last.decisions) == (3, 3)
    assert count(path, "cycles") == 2 and count(path, "decisions") == 2
    assert count(path, "orders") == orders
    engine.retention.poll()  # not due again for an hour: nothing starts
    assert engine.retention._task is not None and engine.retention._task.done()
    report = await engine.run_cycle()  # the engine trades on after a pruning
    assert report.ok
    await engine.close()
    engine.journal.close()


async def test_keep_days_zero_keeps_everything(tmp_path: Path) -> None:
    engine, path = await run_engine_days(tmp_path, keep=0)
    engine.retention.poll()
    await engine.retention.wait()
    assert engine.retention.last is None and count(path, "cycles") == 5
    await engine.close()
    engine.journal.close()
