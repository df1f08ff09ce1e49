"""The daemon on the sim venue with moving prices and a restart in the middle."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

CONFIG = """\
mode = "dry-run"
poll_interval = 1
[execution]
max_orders_per_minute = 1000   # hours of market pass in milliseconds here
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = { BTC = 70000, ETH = 3000, SOL = 150 }
balances = { BTC = 1.0, ETH = 10, SOL = 100 }
contract_sizes = { BTC = 0.01, ETH = 0.1 }
inverse = { BTC = 100 }
volatility = 2.0
seed = 7
speed = 3600
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
spot_accounts = ["demo"]
extra_holdings = { BTC = 0.5 }
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = 0.5
tolerance = 0.02
[[hedges]]
name = "alts"
assets = { ETH = 1.0, SOL = 1.3 }
spot_accounts = ["demo"]
instrument = "ETH/USDT:USDT"
hedge_account = "demo"
ratio = 0.8
tolerance = 0.03
[[hedges]]
name = "inv"
assets = { BTC = 1.0 }
extra_holdings = { BTC = 0.2 }
instrument = "BTC/USD:BTC"
hedge_account = "demo"
ratio = 1.0
tolerance = 0.05
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_engine(tmp_path: Path, clock: Clock) -> tuple[Engine, Journal, SimVenue]:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    settings = load_settings(config)
    journal = Journal(tmp_path / "state" / "journal.db")
    sim_settings = settings.accounts["demo"].sim
    assert sim_settings is not None
    sim = SimVenue("demo", sim_settings, clock=clock, epoch=0.0)  # the market outlives us
    return (
        Engine(settings, {"demo": PaperVenue(sim, journal, settings.paper)}, journal),
        journal,
        sim,
    )


def assert_within_tolerance(engine: Engine) -> None:
    assert engine.last_report is not None
    for decision in engine.last_report.decisions:
        assert decision.plan is not None, decision
        plan = decision.plan
        group = next(g for g in engine.groups if g.name == decision.group)
        hedge_after = plan.hedge_contracts + (
            decision.order.filled if decision.order is not None else D(0)
        ) * (1 if plan.intent and plan.intent.side.value == "sell" else -1)
        market = engine.markets["demo"][group.instrument]
        drift_usd = abs(plan.target.raw_contracts - hedge_after) * plan.target.contract_value_usd
        allowed = max(group.tolerance * plan.target.target_notional_usd,
                      market.amount_step * plan.target.contract_value_usd)  # fmt: skip
        assert drift_usd <= allowed, (decision.group, drift_usd, allowed)


async def test_hedge_tracks_moving_prices_across_a_restart(tmp_path: Path) -> None:
    configure_logging("warning", "json")
    clock = Clock()
    engine, journal, sim = make_engine(tmp_path, clock)
    await engine.start()
    prices_seen = set()
    for _ in range(40):
        clock.now += 1.0  # one simulated hour per step
        await engine.run_cycle()
        assert_within_tolerance(engine)
        prices_seen.add(sim.price("BTC"))
    assert len(prices_seen) > 30, "prices should move"
    before = {o.request.client_order_id: o for o in journal.orders()}
    assert len(before) > 3, "moving prices should have needed trims and adds"
    positions_before = journal.paper_positions("demo")
    await engine.close()
    journal.close()

    # Restart: same state directory, same market time (the clock did not move).
    engine2, journal2, _ = make_engine(tmp_path, clock)
    await engine2.start()
    assert journal2.paper_positions("demo") == positions_before
    await engine2.run_cycle()
    assert len(journal2.orders()) == len(before), "nothing is ordered again after a restart"
    assert all(d.action == "hold" for d in engine2.last_report.decisions)  # type: ignore[union-attr]
    for _ in range(20):
        clock.now += 1.0
        await engine2.run_cycle()
        assert_within_tolerance(engine2)
    after = journal2.orders()
    ids = [o.request.client_order_id for o in after]
    assert len(ids) == len(set(ids)), "client order ids never repeat"
    assert all(o.status.value == "filled" for o in after)
    assert {o.request.client_order_id for o in after[: len(before)]} == set(before)
    # Every paper fill is in the journal and adds up to the paper position.
    fills = journal2.fills()
    for symbol, contracts in journal2.paper_positions("demo").items():
        net = sum(D(f["amount"]) * (1 if f["side"] == "buy" else -1)
                  for f in fills if f["symbol"] == symbol)  # fmt: skip
        assert net == contracts
    await engine2.close()
    journal2.close()


async def test_failed_read_skips_the_group_never_zero(tmp_path: Path) -> None:
    configure_logging("warning", "json")
    clock = Clock()
    engine, journal, sim = make_engine(tmp_path, clock)
    await engine.start()
    await engine.run_cycle()
    orders = len(journal.orders("btc")) + len(journal.orders("alts"))
    sim.failing.add("balances")
    sim.set_price("BTC", D(140000))  # a big move that would call for orders
    report = await engine.run_cycle()
    assert len(journal.orders("btc")) + len(journal.orders("alts")) == orders, (
        "no order on missing balances"
    )
    by_group = {d.group: d for d in report.decisions}
    assert by_group["btc"].action == "skipped" and "balances" in by_group["btc"].reason
    # a group without spot accounts is still decided; a doubled price waits for confirmation
    assert by_group["inv"].action == "blocked" and by_group["inv"].rule == "jump"
    sim.failing.clear()
    sim.failing.add("positions")
    report = await engine.run_cycle()
    assert all(d.action == "skipped" for d in report.decisions)
    sim.failing.clear()
    await engine.run_cycle()
    assert_within_tolerance(engine)
    journal.close()


async def test_halt_flatten_resume(tmp_path: Path) -> None:
    configure_logging("warning", "json")
    clock = Clock()
    engine, journal, sim = make_engine(tmp_path, clock)
    seen = engine.events.subscribe()
    await engine.start()
    await engine.run_cycle()
    assert all(p < 0 for p in journal.paper_positions("demo").values())

    await engine.halt("test")
    assert journal.trading_state().value == "HALTED"
    orders = len(journal.orders())
    sim.set_balance("BTC", D(5))  # would call for a bigger hedge
    report = await engine.run_cycle()
    assert len(journal.orders()) == orders, "HALTED sends nothing"
    by_group = {d.group: d.action for d in report.decisions}
    assert by_group["btc"] == "blocked"  # the others hold: BTC balance moves only "btc"

    await engine.flatten("test")
    assert journal.trading_state().value == "REDUCING"
    await engine.run_cycle()
    assert all(p == 0 for p in journal.paper_positions("demo").values())
    flatten_orders = journal.orders()[orders:]
    assert flatten_orders and all(o.request.reduce_only for o in flatten_orders)
    assert journal.trading_state().value == "REDUCING", "halts only once a read confirms zero"
    await engine.run_cycle()
    assert journal.trading_state().value == "HALTED", "flatten ends in HALTED"
    assert [a["action"] for a in journal.actions() if ":" not in a["action"]] == ["halt", "flatten"]

    await engine.resume("test")
    await engine.run_cycle()
    assert all(p < 0 for p in journal.paper_positions("demo").values())
    events = []
    while not seen.queue.empty():
        events.append(seen.queue.get_nowait()["event"])
    assert "state.changed" in events and "order.filled" in events and "guard.fired" in events
    journal.close()


async def test_flatten_survives_a_restart(tmp_path: Path) -> None:
    configure_logging("warning", "json")
    clock = Clock()
    engine, journal, sim = make_engine(tmp_path, clock)
    await engine.start()
    await engine.run_cycle()
    sim.failing.add("positions")  # the flatten cycle cannot run yet
    await engine.flatten("test")
    await engine.run_cycle()
    await engine.close()
    journal.close()
    engine2, journal2, _ = make_engine(tmp_path, clock)
    await engine2.start()
    assert engine2.flattening
    await engine2.run_cycle()
    await engine2.run_cycle()
    assert all(p == 0 for p in journal2.paper_positions("demo").values())
    assert journal2.trading_state().value == "HALTED"
    journal2.close()
