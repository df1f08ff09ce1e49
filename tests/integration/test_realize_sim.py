"""``realize`` (Option B) end to end on the sim (testnet: the sim is the exchange) and on
paper over the sim (dry-run): both legs journaled before the first is sent, through the
write gate, a crash between the legs completed on restart, refused while HALTED or when
the spot is not on the hedge's exchange, and through the control channel with a token.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from hedgekeeper.control import ControlServer
from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import Mode, OrderStatus, Side, TradingState
from hedgekeeper.realize import RealizeRefused
from hedgekeeper.redact import Redactor
from hedgekeeper.settings import load_settings
from hedgekeeper.status import status_snapshot
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.integration.test_execution_sim import Clock

PERP = "BTC/USDT:USDT"
TOKEN = "realize-token-0123456789"

CONFIG = """\
mode = "{mode}"
[control]
token = "{token}"
[execution]
max_orders_per_minute = 1000
lookup_attempts = 1
unknown_settle_seconds = 0
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000 }}
balances = {{ BTC = 1.0, USDT = 0 }}
contract_sizes = {{ BTC = 0.01 }}
{extra_account}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = {spot_accounts}
instrument = "{perp}"
hedge_account = "demo"
ratio = 1.0
"""

WALLET = """
[accounts.wallet]
exchange = "sim"
[accounts.wallet.sim]
prices = { BTC = 70000 }
balances = { BTC = 1.0 }
"""


def build(
    tmp_path: Path, *, mode: str = "testnet", venues: dict[str, SimVenue] | None = None,
    clock: Clock | None = None, spot_accounts: str = '["demo"]', extra_account: str = "",
) -> tuple[Engine, dict[str, SimVenue], list[dict[str, Any]]]:  # fmt: skip
    configure_logging("warning", "json", stream=io.StringIO())
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(mode=mode, token=TOKEN, perp=PERP, spot_accounts=spot_accounts,
                                  extra_account=extra_account))  # fmt: skip
    settings = load_settings(path)
    clock = clock or Clock()
    if venues is None:
        venues = {}
        for name, account in settings.accounts.items():
            assert account.sim is not None
            venues[name] = SimVenue(name, account.sim, clock=clock, epoch=clock.now)
    journal = Journal(tmp_path / "journal.db", clock=clock)  # order ages in the test's time
    traded: dict[str, Any] = {
        n: PaperVenue(v, journal, settings.paper) if mode == "dry-run" else v
        for n, v in venues.items()
    }
    engine = Engine(settings, traded, journal, clock=clock)
    events: list[dict[str, Any]] = []
    engine.events.add_listener(events.append)
    return engine, venues, events


async def holdings(engine: Engine, account: str = "demo") -> tuple[D, D, D]:
    """(BTC spot, USDT spot, short contracts) as the engine's venue shows them."""
    venue = engine.venues[account]
    balances = await venue.fetch_balances()
    short = -(await venue.fetch_positions([PERP]))[PERP].contracts
    return balances.get("BTC", D(0)), balances.get("USDT", D(0)), short


def realize_legs(engine: Engine) -> list[Any]:
    return [o for o in engine.journal.orders("btc") if o.reason.startswith("realize")]


def actions(engine: Engine) -> list[str]:
    return [a["action"] for a in engine.journal.actions() if a["action"].startswith("realize")]


@pytest.mark.parametrize("mode", ["testnet", "dry-run"])
async def test_realize_sells_the_hedged_spot_and_buys_back_the_short(
    mode: str, tmp_path: Path
) -> None:
    engine, _, events = build(tmp_path, mode=mode)
    await engine.start()
    await engine.run_cycle()
    assert await holdings(engine) == (D("1.0"), D(0), D(100))  # hedged: 100 x 0.01 BTC

    reply = engine.realizer.request({"group": "btc"}, "test", "sell the hedged BTC")
    assert reply["requested"] == "btc" and reply["spot_account"] == "demo"
    assert realize_legs(engine) == []  # only the request so far: nothing journaled to send
    report = await engine.run_cycle()
    assert report.ok and report.decisions[0].reason.startswith("realize: sell 1.00 BTC")

    btc, usdt, short = await holdings(engine)
    assert btc == 0 and short == 0
    assert D(69000) < usdt < D(70000)  # sold at the bid (paper: less slippage and fee)
    legs = realize_legs(engine)
    assert [(o.request.symbol, o.request.side, o.request.reduce_only, o.request.amount,
             o.status) for o in legs] == [
        ("BTC/USDT", Side.SELL, False, D("1.00"), OrderStatus.FILLED),
        (PERP, Side.BUY, True, D(100), OrderStatus.FILLED),
    ]  # fmt: skip
    assert legs[0].seq + 1 == legs[1].seq  # journaled together, before either was sent
    assert actions(engine) == ["realize.requested", "realize.started", "realize.done"]
    done = next(e for e in events if e["event"] == "realize.done")
    assert done["outcome"] == "done" and done["sold"] == "1.00" and done["bought_back"] == "100"
    assert engine.journal.operation("realize:btc") is None
    # The spot sell is not hedge added (the runaway guard counts contracts sold only).
    assert engine.journal.hedge_added_since("btc", 0) == D(100)

    # Afterwards the group hedges as usual: nothing held, nothing to do.
    report = await engine.run_cycle()
    assert report.decisions[0].action == "hold"
    assert await holdings(engine) == (btc, usdt, D(0))
    await engine.close()


async def test_a_partial_amount_realizes_whole_contracts_only(tmp_path: Path) -> None:
    engine, _, _ = build(tmp_path)
    await engine.start()
    await engine.run_cycle()
    engine.realizer.request({"group": "btc", "amount": "0.255"}, "test", "part")
    await engine.run_cycle()
    btc, _, short = await holdings(engine)
    assert (btc, short) == (D("0.75"), D(75))  # 25 contracts = 0.25 BTC, hedge kept at 1.0
    await engine.close()


class Crash(Exception):
    """Stands for kill -9: nothing after it runs."""


async def test_a_crash_between_the_legs_completes_on_restart(tmp_path: Path) -> None:
    engine, venues, _ = build(tmp_path)
    await engine.start()
    await engine.run_cycle()
    real = engine.executor.submit

    async def crash_before_buying_back(request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.side is Side.BUY and request.symbol == PERP and request.reduce_only:
            raise Crash  # the spot is sold, the short not yet bought back
        return await real(request, *args, **kwargs)

    engine.executor.submit = crash_before_buying_back  # type: ignore[method-assign]
    engine.realizer.request({"group": "btc"}, "test", "crash")
    with pytest.raises(Crash):
        await engine.run_cycle()
    btc, _, short = await holdings(engine)
    assert (btc, short) == (D(0), D(100))  # over-hedged by one operation, never long
    assert [o.status for o in realize_legs(engine)] == [OrderStatus.FILLED, OrderStatus.NEW]
    engine.journal.close()

    restarted, _, events = build(tmp_path, venues=venues)
    await restarted.start()  # the unsent leg is looked up by client id: never placed
    for _ in range(2):
        report = await restarted.run_cycle()
        assert report.ok
    assert await holdings(restarted) == (D(0), D("70000") * (1 - D("0.0001")), D(0))
    legs = realize_legs(restarted)
    assert [(o.request.side, o.request.amount, o.status) for o in legs] == [
        (Side.SELL, D("1.00"), OrderStatus.FILLED),
        (Side.BUY, D(100), OrderStatus.REJECTED),  # journaled, never sent
        (Side.BUY, D(100), OrderStatus.FILLED),  # the completion, a new client id
    ]
    assert [e["outcome"] for e in events if e["event"] == "realize.done"] == ["done"]
    await restarted.close()


async def test_a_crash_before_the_spot_sell_ends_with_nothing_traded(tmp_path: Path) -> None:
    engine, venues, _ = build(tmp_path)
    await engine.start()
    await engine.run_cycle()

    async def crash(*_: Any, **__: Any) -> Any:
        raise Crash

    engine.executor.submit = crash  # type: ignore[method-assign]
    engine.realizer.request({"group": "btc"}, "test", "crash early")
    with pytest.raises(Crash):
        await engine.run_cycle()
    engine.journal.close()

    restarted, _, events = build(tmp_path, venues=venues)
    await restarted.start()
    await restarted.run_cycle()
    assert await holdings(restarted) == (D("1.0"), D(0), D(100))
    assert [o.status for o in realize_legs(restarted)] == [OrderStatus.REJECTED] * 2
    assert [e["outcome"] for e in events if e["event"] == "realize.done"] == ["nothing sold"]
    await restarted.close()


async def test_an_unknown_spot_sell_is_looked_up_before_the_buy_back(tmp_path: Path) -> None:
    from hedgekeeper.exceptions import UnknownOutcomeError

    engine, venues, _ = build(tmp_path)
    await engine.start()
    await engine.run_cycle()
    sim = venues["demo"]
    real = sim.submit_order

    async def lost_reply(request: Any) -> Any:
        info = await real(request)  # it reached the exchange and filled ...
        if request.side is Side.SELL:
            raise UnknownOutcomeError("timeout")  # ... but the reply was lost
        return info

    sim.submit_order = lost_reply  # type: ignore[method-assign]
    engine.realizer.request({"group": "btc"}, "test", "lost reply")
    await engine.run_cycle()
    assert [o.status for o in realize_legs(engine)] == [OrderStatus.UNKNOWN,
                                                        OrderStatus.REJECTED]  # fmt: skip
    assert (await holdings(engine))[::2] == (D(0), D(100))  # nothing bought back blind
    await engine.run_cycle()  # the look-up finds the fill; the buy-back follows
    assert (await holdings(engine))[::2] == (D(0), D(0))
    legs = realize_legs(engine)
    assert [(o.request.side, o.status) for o in legs] == [
        (Side.SELL, OrderStatus.FILLED), (Side.BUY, OrderStatus.REJECTED),
        (Side.BUY, OrderStatus.FILLED),
    ]  # fmt: skip
    assert actions(engine)[-1] == "realize.done"
    await engine.close()


async def test_refused_while_halted_and_a_halt_between_the_legs_pauses_it(
    tmp_path: Path,
) -> None:
    engine, _, _ = build(tmp_path)
    await engine.start()
    await engine.run_cycle()
    await engine.halt("test", "operator halt")
    with pytest.raises(RealizeRefused, match="HALTED"):
        engine.realizer.request({"group": "btc"}, "test", "while halted")
    assert engine.journal.operation("realize:btc") is None
    await engine.resume("test")

    real = engine.executor.submit

    async def halt_after_the_spot_leg(request: Any, *args: Any, **kwargs: Any) -> Any:
        info = await real(request, *args, **kwargs)
        if request.side is Side.SELL:
            await engine.halt("test", "halt lands between the legs")
        return info

    engine.executor.submit = halt_after_the_spot_leg  # type: ignore[method-assign]
    engine.realizer.request({"group": "btc"}, "test", "halted midway")
    await engine.run_cycle()
    # The gate refused the buy-back: it never left; the operation waits for resume.
    assert [o.status for o in realize_legs(engine)] == [OrderStatus.FILLED, OrderStatus.REJECTED]
    assert (await holdings(engine))[2] == D(100)
    report = await engine.run_cycle()
    assert report.decisions[0].action == "blocked" and "HALTED" in report.decisions[0].reason
    assert engine.gate.refused >= 1

    await engine.resume("test")
    await engine.run_cycle()
    btc, _, short = await holdings(engine)
    assert (btc, short) == (D(0), D(0))
    assert actions(engine)[-1] == "realize.done"
    await engine.close()


async def test_refused_when_the_spot_is_on_another_exchange(tmp_path: Path) -> None:
    engine, _, _ = build(tmp_path, spot_accounts='["wallet"]', extra_account=WALLET)
    await engine.start()
    with pytest.raises(RealizeRefused, match=r"spot_accounts: .*same exchange"):
        engine.realizer.request({"group": "btc"}, "test", "elsewhere")
    assert engine.journal.operation("realize:btc") is None
    await engine.close()


async def test_bad_requests_name_the_field(tmp_path: Path) -> None:
    engine, _, _ = build(tmp_path)
    await engine.start()
    for data, field in (({}, "group"), ({"group": "eth"}, "group"),
                        ({"group": "btc", "asset": "ETH"}, "asset"),
                        ({"group": "btc", "amount": "-1"}, "amount"),
                        ({"group": "btc", "amount": "x"}, "amount")):  # fmt: skip
        with pytest.raises(RealizeRefused, match=f"^{field}: "):
            engine.realizer.request(data, "test", "bad")
    # A daemon trading live needs the operator's --live on the command itself.
    engine.settings = engine.settings.model_copy(update={"mode": Mode.LIVE})
    with pytest.raises(RealizeRefused, match=r"^live: "):
        engine.realizer.request({"group": "btc"}, "test", "live without --live")
    assert engine.journal.operation("realize:btc") is None
    assert engine.realizer.request({"group": "btc", "live": True}, "test", "live")["requested"]
    await engine.close()


async def test_realize_through_the_control_channel_needs_the_token(tmp_path: Path) -> None:
    engine, _, _ = build(tmp_path, mode="dry-run")
    await engine.start()
    await engine.run_cycle()
    server = ControlServer(engine, redactor=Redactor([TOKEN]), log=engine.log, port=0)
    message = {"command": "realize", "group": "btc", "asset": "BTC"}
    reply = await server.command(json.dumps(message))
    assert not reply["ok"] and "unauthorized" in reply["error"]
    assert engine.journal.operation("realize:btc") is None

    reply = await server.command(json.dumps({**message, "token": TOKEN}))
    assert reply["ok"], reply
    assert reply["result"]["requested"] == "btc"
    reply = await server.command(json.dumps({**message, "token": TOKEN}))
    assert not reply["ok"] and "already in progress" in reply["error"]
    document = status_snapshot(engine)
    assert document["groups"][0]["realize"]["phase"] == "requested"
    await engine.run_cycle()
    assert (await holdings(engine))[::2] == (D(0), D(0))
    engine.journal.set_trading_state(TradingState.HALTED, "test", "halt")
    reply = await server.command(json.dumps({**message, "token": TOKEN}))
    assert not reply["ok"] and "HALTED" in reply["error"]
    await engine.close()


async def test_the_cli_sends_realize_to_the_running_daemon(tmp_path: Path) -> None:
    import asyncio

    from tests.ops.helpers import HEDGEKEEPER, clean_env

    engine, _, _ = build(tmp_path, mode="dry-run")
    await engine.start()
    await engine.run_cycle()
    server = ControlServer(engine, redactor=Redactor([TOKEN]), log=engine.log, port=0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}"

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *HEDGEKEEPER, *args, env=clean_env(), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    try:
        code, _, err = await run("realize", "btc", "--url", url, "--token", TOKEN)
        assert code == 2 and "--yes" in err
        code, out, err = await run("realize", "btc", "BTC", "--yes", "--url", url,
                                   "--token", TOKEN)  # fmt: skip
        assert code == 0, err
        assert out.startswith("realize: ok (requested btc, asset BTC, spot_account demo")
        await engine.run_cycle()
        assert (await holdings(engine))[::2] == (D(0), D(0))
    finally:
        await server.close()
        await engine.close()
