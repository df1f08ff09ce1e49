"""The control channel in-process: health, status, the event stream, authenticated commands."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from websockets.asyncio.client import connect

from hedgekeeper.control import NO_TOKEN_MESSAGE, ControlServer
from hedgekeeper.engine import Engine
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import TradingState
from hedgekeeper.redact import Redactor
from hedgekeeper.settings import secret_values
from hedgekeeper.venues.sim import SimVenue
from tests.conftest import eventually
from tests.ops.helpers import aget, make_engine, sim_config

TOKEN = "control-token-0123456789"


@asynccontextmanager
async def serving(
    tmp_path: Path, config: str, **server_options: object
) -> AsyncIterator[tuple[Engine, SimVenue, ControlServer, str]]:
    """A started engine (no cycle yet) and its control server on a free port."""
    engine, sim, settings = make_engine(tmp_path, config)
    await engine.start()
    options: dict[str, object] = {"port": 0, **server_options}
    server = ControlServer(
        engine, redactor=Redactor(secret_values(settings)), log=engine.log, **options
    )  # type: ignore[arg-type]
    await server.start()
    try:
        yield engine, sim, server, f"http://{server.host}:{server.port}"
    finally:
        await server.close()
        await engine.close()
        engine.journal.close()


async def command(base: str, message: dict[str, object], token: str | None = None) -> dict:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with connect(
        base.replace("http", "ws") + "/command", additional_headers=headers, proxy=None
    ) as ws:
        await ws.send(json.dumps(message))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_healthz_turns_503_when_cycles_stop_succeeding_and_back(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config(poll_interval=0.2)) as (engine, sim, _server, base):
        status, body = await aget(base + "/healthz")
        assert (status, body["reason"]) == (503, "no successful cycle yet")
        stop = asyncio.Event()
        loop = asyncio.ensure_future(engine.run(stop))
        try:
            await eventually(lambda: _status_is(base, 200))
            sim.failing.add("positions")  # every cycle now has a failed read
            await eventually(lambda: _status_is(base, 503), within=10)
            status, body = await aget(base + "/healthz")
            assert status == 503 and not body["healthy"]
            assert "poll intervals" in body["reason"] and body["stale_after_s"] == 0.6
            sim.failing.discard("positions")
            await eventually(lambda: _status_is(base, 200), within=10)
        finally:
            stop.set()
            await loop


async def _status_is(base: str, expected: int) -> bool:
    status, _ = await aget(base + "/healthz")
    return status == expected


async def test_commands_are_refused_without_a_configured_token(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config()) as (engine, _sim, _server, base):
        reply = await command(base, {"command": "halt", "token": "anything"}, token="anything")
        assert reply == {"ok": False, "command": "halt", "error": NO_TOKEN_MESSAGE}
        assert "set control.token" in NO_TOKEN_MESSAGE
        assert engine.journal.trading_state() is TradingState.ACTIVE
        assert not [a for a in engine.journal.actions() if a["action"] == "halt"]


async def test_commands_need_the_right_token_and_are_journaled(tmp_path: Path) -> None:
    logs = io.StringIO()
    configure_logging("info", "json", stream=logs)
    config = sim_config(control=f'port = 0\ntoken = "{TOKEN}"')
    async with serving(tmp_path, config) as (engine, _sim, _server, base):
        for attempt in ({"command": "halt"}, {"command": "halt", "token": "wrong-token"}):
            reply = await command(base, attempt)
            assert not reply["ok"] and reply["error"] == "unauthorized: missing or wrong token"
        assert (await command(base, {"command": "halt"}, token="wrong"))["ok"] is False
        assert engine.journal.trading_state() is TradingState.ACTIVE

        reply = await command(base, {"command": "halt", "token": TOKEN, "reason": "maintenance"})
        assert reply == {
            "ok": True,
            "command": "halt",
            "result": {"state": "HALTED", "cancelled": 0},
        }
        assert engine.journal.trading_state() is TradingState.HALTED
        reply = await command(base, {"command": "hedge-now"}, token=TOKEN)  # header auth
        assert reply["ok"] and reply["command"] == "hedge_now"
        reply = await command(base, {"command": "resume"}, token=TOKEN)
        assert reply["ok"] and engine.journal.trading_state() is TradingState.ACTIVE
        assert (await command(base, {"command": "sell-everything"}, token=TOKEN))["ok"] is False

        actions = [(a["action"], a["source"]) for a in engine.journal.actions()]
        for action in ("halt", "hedge_now", "resume"):
            assert (action, "control") in actions, actions
        halt = next(a for a in engine.journal.actions() if a["action"] == "halt")
        assert halt["detail"].startswith("maintenance")
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    accepted = [line["command"] for line in lines if line["event"] == "control.command"]
    assert accepted == ["halt", "hedge_now", "resume"]
    refused = [line for line in lines if line["event"] == "control.command_refused"]
    assert len(refused) == 3 and all(line["why"] == "missing or wrong token" for line in refused)
    assert TOKEN not in logs.getvalue() and "wrong-token" not in logs.getvalue()


async def test_status_matches_the_journal(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config()) as (engine, sim, _server, base):
        await engine.run_cycle()  # opens both hedges
        # the proxy group now needs more hedge (a move under max_jump, so no confirmation wait)
        sim.set_price("SOL", sim.price("SOL") * Decimal("1.12"))
        await engine.run_cycle()
        status, document = await aget(base + "/status")
        assert status == 200
        journal = engine.journal
        last = journal.last_cycle()
        assert last is not None
        assert document["mode"] == "dry-run"
        assert document["trading_state"] == journal.trading_state().value == "ACTIVE"
        assert document["last_cycle"]["cycle"] == last["cycle"] == 2
        assert document["last_cycle"]["status"] == last["status"]
        assert document["last_cycle"]["summary"] == last["summary"]
        assert document["healthy"] is True and document["cycles_run"] == 2
        groups = {group["name"]: group for group in document["groups"]}
        assert set(groups) == {"btc", "alts"}
        for name, group in groups.items():
            journaled = journal.decisions(name)[-1]
            assert journaled["cycle"] == last["cycle"]
            for key in (
                "action",
                "reason",
                "exposure_usd",
                "target_contracts",
                "hedge_contracts",
                "pending_contracts",
                "order",
            ):
                assert group[key] == journaled[key], (name, key)
        assert groups["alts"]["action"] == "order"
        # Drift counts the cycle's own order: a freshly corrected hedge is on target.
        for group in groups.values():
            assert abs(float(group["drift_pct"])) < 2.0, group
        btc = groups["btc"]
        assert (btc["exposure_usd"], btc["target_contracts"], btc["hedge_after_contracts"]) == (
            "70000",
            "50",
            "50",
        )
        assert btc["hedge_notional_usd"] == "35000" and btc["hedge_ratio"] == "0.5"


async def test_event_stream_delivers_a_fill_within_one_cycle(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config()) as (engine, _sim, _server, base):
        async with connect(base.replace("http", "ws") + "/events", proxy=None) as ws:
            hello = json.loads(await ws.recv())
            assert hello["event"] == "events.subscribed" and hello["mode"] == "dry-run"
            await engine.run_cycle()
            received: list[dict] = []
            while not any(e["event"] == "cycle.completed" for e in received):
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        names = [e["event"] for e in received]
        fill = next(e for e in received if e["event"] == "order.filled")
        assert names.index("order.filled") < names.index("cycle.completed")
        assert fill["group"] in ("btc", "alts") and fill["side"] == "sell"
        assert float(fill["contracts"]) > 0 and float(fill["fee_usd"]) > 0
        assert fill["client_order_id"].startswith("hk")


async def test_a_slow_subscriber_cannot_stall_the_engine(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config(), queue_size=64) as (engine, _sim, server, base):
        # A client that completes the handshake, then never reads, with a tiny receive
        # buffer: the server's writes to it soon block.
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((server.host, server.port))
        stuck.sendall(
            b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            await eventually(lambda: len(server.subscriptions) == 1)
            (slow,) = server.subscriptions
            async with connect(base.replace("http", "ws") + "/events", proxy=None) as fast:
                await eventually(lambda: len(server.subscriptions) == 2)
                payload = "x" * 10_000
                started = time.perf_counter()
                for index in range(3_000):  # 30 MB: more than any socket buffers hold
                    engine.events.publish("test.flood", index=index, payload=payload)
                    await asyncio.sleep(0)  # let the server's handlers run (and block)
                publish_seconds = time.perf_counter() - started
                cycle_started = time.perf_counter()
                for _ in range(3):
                    assert (await engine.run_cycle()).ok
                cycles_seconds = time.perf_counter() - cycle_started
                engine.events.publish("test.marker")

                async def fast_client_got_the_marker() -> bool:
                    while True:
                        event = json.loads(await asyncio.wait_for(fast.recv(), 10))
                        if event["event"] == "test.marker":
                            return True

                assert await fast_client_got_the_marker(), "other subscribers are not held up"
            assert publish_seconds < 5.0 and cycles_seconds < 3.0, (publish_seconds, cycles_seconds)
            assert engine.cycles_run == 3
            # The stuck client's handler is blocked on its socket: its queue is full and
            # bounded, and its oldest events were dropped rather than stalling anyone.
            assert slow.queue.qsize() == 64
            assert slow.dropped > 1_000
        finally:
            stuck.close()
    assert not server.subscriptions, "closing the server let go of the stuck subscriber"


async def test_reads_need_the_token_off_loopback_but_healthz_never(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    # 127.0.0.2 is loopback to the kernel but not to the settings' list: it stands in for
    # a non-loopback address without listening beyond this machine.
    config = sim_config(control=f'host = "127.0.0.2"\nport = 0\ntoken = "{TOKEN}"')
    async with serving(tmp_path, config) as (engine, _sim, _server, base):
        await engine.run_cycle()
        assert (await aget(base + "/status"))[0] == 401
        assert (await aget(base + "/status", {"Authorization": "Bearer nope"}))[0] == 401
        status, document = await aget(base + "/status", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and document["cycles_run"] == 1
        assert (await aget(base + "/healthz"))[0] == 200


async def test_unknown_paths_and_plain_http_on_websocket_endpoints(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    async with serving(tmp_path, sim_config()) as (_engine, _sim, _server, base):
        status, body = await aget(base + "/nope")
        assert status == 404 and "/healthz" in body["endpoints"]
        status, body = await aget(base + "/events")
        assert status == 426 and "WebSocket" in body["error"]


async def test_browser_origins_and_foreign_hosts_are_refused(tmp_path: Path) -> None:
    """A web page in the operator's browser (any Origin) and a DNS-rebinding page (a
    foreign Host) can neither read status nor reach the websockets."""
    configure_logging("warning", "json", stream=io.StringIO())
    config = sim_config(
        control=f'port = 0\ntoken = "{TOKEN}"\nallowed_origins = ["https://ops.example"]'
    )
    async with serving(tmp_path, config) as (engine, _sim, _server, base):
        await engine.run_cycle()
        evil = {"Origin": "https://evil.example"}
        for path in ("/status", "/healthz", "/events"):
            status, body = await aget(base + path, evil)
            assert status == 403 and "origin" in body["error"], (path, status, body)
        assert (await aget(base + "/status", {"Origin": "https://ops.example"}))[0] == 200
        port = base.rsplit(":", 1)[1]
        status, body = await aget(base + "/status", {"Host": f"attacker.example:{port}"})
        assert status == 403 and "Host" in body["error"]
        assert (await aget(base + "/status", {"Host": f"localhost:{port}"}))[0] == 200
        ws = base.replace("http", "ws")
        for headers in (evil, {"Host": "attacker.example"}):
            try:
                async with connect(ws + "/command", proxy=None, additional_headers=headers):
                    raise AssertionError(f"websocket accepted {headers}")
            except Exception as error:  # InvalidStatus: the handshake got a 403
                assert "403" in str(error), error
        assert engine.executor.trading_state is TradingState.ACTIVE


async def test_off_loopback_every_endpoint_needs_the_token(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    config = sim_config(control=f'host = "127.0.0.2"\nport = 0\ntoken = "{TOKEN}"')
    async with serving(tmp_path, config) as (_engine, _sim, server, base):
        for path in ("/status", "/nope"):
            assert (await aget(base + path))[0] == 401, path
        # /healthz only from loopback peers (a container's HEALTHCHECK): here the peer is
        # 127.0.0.1, so it answers; from another host it would need the token too.
        assert (await aget(base + "/healthz"))[0] in (200, 503)
        assert server.host == "127.0.0.2"
