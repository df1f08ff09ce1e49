"""Execution styles, slicing, guards and reconciliation, end to end on the sim + paper venues."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.engine import Engine
from hedgekeeper.exceptions import AuthError
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import OrderRequest, OrderStatus, OrderType, Side, TradingState
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

BASE = """\
mode = "dry-run"
[execution]
{execution}
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000 }}
balances = {{ BTC = 1.0 }}
contract_sizes = {{ BTC = 0.01 }}
spread_bps = 2
{sim}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["demo"]
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
{hedge}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def build(tmp_path: Path, hedge: str = "", sim: str = "", clock: Clock | None = None,
          execution: str = "max_orders_per_minute = 1000"):  # fmt: skip
    configure_logging("warning", "json")
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(hedge=hedge, sim=sim, execution=execution))
    settings = load_settings(path)
    clock = clock or Clock()
    journal = Journal(tmp_path / "journal.db")
    assert settings.accounts["demo"].sim is not None
    venue = SimVenue("demo", settings.accounts["demo"].sim, clock=clock, epoch=0.0)
    paper = PaperVenue(venue, journal, settings.paper)
    engine = Engine(settings, {"demo": paper}, journal, clock=clock)
    return engine, journal, venue, paper, clock


def short(journal: Journal) -> D:
    return -journal.paper_positions("demo").get("BTC/USDT:USDT", D(0))


async def test_market_style_sends_capped_ioc_limits(tmp_path: Path) -> None:
    engine, journal, _, _, _ = build(tmp_path, hedge="slippage_cap_bps = 30")
    await engine.start()
    await engine.run_cycle()
    (order,) = journal.orders()
    bid = D(70000) * (1 - D("0.0001"))
    assert order.request.order_type is OrderType.LIMIT
    # the cap is a limit, never exceeded: rounded to the 0.01 tick on the passive side
    assert order.request.price == D("69783.03")
    assert bid * (1 - D("0.003")) <= order.request.price < bid * (1 - D("0.003")) + D("0.01")
    assert order.status is OrderStatus.FILLED and short(journal) == 50


async def test_large_delta_is_sliced_under_max_order_usd(tmp_path: Path) -> None:
    engine, journal, _, _, _ = build(tmp_path, hedge="max_order_usd = 10000")
    await engine.start()
    await engine.run_cycle()
    sizes = [o.request.amount for o in journal.orders()]
    # 50 contracts of 700 USD: 14 per child (9,800 USD), the last one 8
    assert sizes == [14, 14, 14, 8]
    assert all(s * 700 <= 10000 for s in sizes) and short(journal) == 50


async def test_maker_rests_reprices_and_falls_back_to_market(tmp_path: Path) -> None:
    hedge = 'execution = "maker"\nreprice_after = 5\ndeadline = 30'
    engine, journal, sim, _paper, clock = build(tmp_path, hedge=hedge)
    await engine.start()
    await engine.run_cycle()
    (first,) = journal.orders()
    assert first.request.post_only and first.status is OrderStatus.OPEN
    assert first.request.price == D(70000) * (1 + D("0.0001"))  # at the best ask
    report = await engine.run_cycle()
    assert report.decisions[0].action == "hold", "the resting order counts as pending"
    assert report.decisions[0].plan is not None and report.decisions[0].plan.pending_contracts == 50
    # the market moves away: after reprice_after the order is cancelled and placed again
    sim.set_price("BTC", D(69000))
    clock.now += 6
    await engine.run_cycle()
    assert journal.order(first.request.client_order_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    await engine.run_cycle()
    second = journal.orders()[-1]
    assert second.request.post_only and second.request.price == D(69000) * (1 + D("0.0001"))
    # nobody takes it; after the deadline the rest goes at market
    clock.now += 31
    await engine.run_cycle()
    await engine.run_cycle()
    last = journal.orders()[-1]
    assert not last.request.post_only and last.status is OrderStatus.FILLED
    assert short(journal) == 50
    ids = [o.request.client_order_id for o in journal.orders()]
    assert len(ids) == len(set(ids))


async def test_maker_order_fills_when_the_market_trades_through(tmp_path: Path) -> None:
    engine, journal, sim, _, _ = build(tmp_path, hedge='execution = "maker"')
    await engine.start()
    await engine.run_cycle()
    sim.set_price("BTC", D(70100))
    report = await engine.run_cycle()  # the fill is seen, then resolved: the group waits
    assert report.decisions[0].action in ("hold", "skipped")
    await engine.run_cycle()
    (order,) = journal.orders()
    assert order.status is OrderStatus.FILLED and short(journal) == 50
    fills = journal.fills()
    assert len(fills) == 1 and D(fills[0]["amount"]) == 50


async def test_margin_shock_shrinks_and_near_liquidation_reduces(tmp_path: Path) -> None:
    # 5,000 USD collateral carries at most 5000 / (0.3 + 0.005 * 1.3) = 16,313 USD short
    engine, journal, sim, _, _ = build(tmp_path, sim="collateral = 5000")
    await engine.start()
    report = await engine.run_cycle()
    assert "margin: shrunk" in report.decisions[0].reason
    assert short(journal) == 23  # 23 x 700 = 16,100 USD <= 16,313 (the plan wanted 50)
    # collateral shrinks (a loss elsewhere): liquidation at (1500 + 16100) / (0.23 x 1.005)
    # = 76,141, 8.8 % away, closer than min_liquidation_distance (15 %)
    sim.set_collateral(D(1500))
    report = await engine.run_cycle()
    assert report.decisions[0].liquidation_distance is not None
    assert report.decisions[0].liquidation_distance < D("0.15")
    assert journal.trading_state() is TradingState.REDUCING


async def test_auth_error_halts_trading(tmp_path: Path) -> None:
    engine, journal, sim, _, _ = build(tmp_path)
    events = engine.events.subscribe()
    await engine.start()
    sim.raising["fetch_balances"] = AuthError("demo: invalid API key (code -2015)")
    await engine.run_cycle()
    assert journal.trading_state() is TradingState.HALTED
    kinds = []
    while not events.queue.empty():
        event = events.queue.get_nowait()
        kinds.append((event["event"], event.get("kind")))
    assert ("alert", "halted") in kinds
    sim.raising.clear()
    await engine.run_cycle()
    assert journal.orders() == [], "HALTED stays halted until an operator resumes"


async def test_orphan_orders_are_cancelled_or_adopted_at_start(tmp_path: Path) -> None:
    engine, journal, _, paper, _ = build(tmp_path, hedge='execution = "maker"')
    await paper.load_markets(["BTC/USDT:USDT"])
    epoch = journal.epoch()
    # A journal with history (an empty one facing our orders starts HALTED instead:
    # tests/faults/test_safety.py::test_empty_journal_with_our_orders_at_the_venue_...).
    earlier = journal.new_order(
        instance="hk", group_code="btc", group="btc", account="demo", symbol="BTC/USDT:USDT",
        side=Side.SELL, amount=D(1), order_type=OrderType.LIMIT, price=D(1), reduce_only=False,
        post_only=False, reason="earlier", cycle=None,
    )  # fmt: skip
    journal.update_order(earlier.client_order_id, OrderStatus.REJECTED)
    orphan = f"hkbtc{epoch}0000000077"
    await paper.submit_order(OrderRequest(orphan, "BTC/USDT:USDT", Side.SELL, D(10),
                                          OrderType.LIMIT, D(80000), post_only=True))  # fmt: skip
    await engine.start()  # orphan_orders = "cancel" by default
    info = await paper.fetch_order("BTC/USDT:USDT", orphan)
    assert info is not None and info.status is OrderStatus.CANCELED

    adopted_id = f"hkbtc{epoch}0000000078"
    await paper.submit_order(OrderRequest(adopted_id, "BTC/USDT:USDT", Side.SELL, D(10),
                                          OrderType.LIMIT, D(80000), post_only=True))  # fmt: skip
    journal.close()
    engine2, journal2, _, _, _ = build(tmp_path, hedge='execution = "maker"',
                                       execution='orphan_orders = "adopt"')  # fmt: skip
    await engine2.start()
    adopted = journal2.order(adopted_id)
    assert adopted is not None and adopted.status is OrderStatus.OPEN
    report = await engine2.run_cycle()
    assert report.decisions[0].plan is not None
    assert report.decisions[0].plan.pending_contracts == 10, "an adopted order counts as pending"


async def test_order_rate_throttle(tmp_path: Path) -> None:
    engine, journal, sim, _, _ = build(tmp_path, execution="max_orders_per_minute = 2")
    await engine.start()
    for balance in ("1.0", "1.5", "2.0"):
        sim.set_balance("BTC", D(balance))
        await engine.run_cycle()
    assert len(journal.orders()) == 2
    assert engine.last_report is not None and engine.last_report.decisions[0].rule == "order_rate"


async def test_collateral_top_up_within_its_allowance(tmp_path: Path) -> None:
    configure_logging("warning", "json")
    path = tmp_path / "c.toml"
    text = BASE.format(
        execution="max_orders_per_minute = 1000", sim="collateral = 5000",
        hedge="topup_max_usd = 3000",
    )
    text = text.replace('mode = "dry-run"', 'mode = "testnet"')
    text = text.replace("BTC = 1.0 }", "BTC = 1.0, USDT = 20000 }", 1)
    path.write_text(text)
    settings = load_settings(path)
    journal = Journal(tmp_path / "journal.db")
    assert settings.accounts["demo"].sim is not None
    sim = SimVenue("demo", settings.accounts["demo"].sim)
    engine = Engine(settings, {"demo": sim}, journal)
    events = engine.events.subscribe()
    await engine.start()
    await engine.run_cycle()
    # the plan wanted 50 (35,000 USD); 5,000 USD carries 23; 3,000 more moved from spot
    assert journal.topups_since("btc", 0) == 3000
    assert (await sim.fetch_balances())["USDT"] == 17000
    await engine.run_cycle()
    # 8,000 USD carries 8000 / 0.3065 = 26,101 USD: 37 contracts; the allowance is spent
    position = (await sim.fetch_positions(["BTC/USDT:USDT"]))["BTC/USDT:USDT"]
    assert position.contracts == -37
    assert journal.topups_since("btc", 0) == 3000
    seen = []
    while not events.queue.empty():
        event = events.queue.get_nowait()
        seen.append((event["event"], event.get("kind")))
    assert ("margin.topped_up", None) in seen and ("alert", "margin") in seen
    journal.close()


async def test_dry_run_never_transfers(tmp_path: Path) -> None:
    engine, journal, sim, _, _ = build(
        tmp_path, sim="collateral = 5000", hedge="topup_max_usd = 3000"
    )
    await engine.start()
    await engine.run_cycle()
    assert journal.topups_since("btc", 0) == 0
    assert sim._collateral == 5000
