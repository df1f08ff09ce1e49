"""Binance push streams for the emulator: what ccxt.pro's ``watch_*`` methods read.

* ``POST|PUT|DELETE /fapi/v1/listenKey`` — create / keep alive / close a USDⓈ-M
  user-data stream key (API-key header, no signature, as Binance).
* ``/private/ws?listenKey=K`` — the USDⓈ-M user-data stream: ``ACCOUNT_UPDATE``
  (wallet and positions) and ``ORDER_TRADE_UPDATE``.
* ``/ws-api/v3`` — the spot WebSocket API, for ``userDataStream.subscribe.signature``;
  spot balances then arrive as ``outboundAccountPosition`` events.
* ``/ws/<stream>`` (spot) and ``/public/ws/<stream>`` (USDⓈ-M) — public streams
  answering ``SUBSCRIBE`` requests; ``<symbol>@bookTicker`` is served, on every price
  change and every ``tick_interval`` (0.25 s) besides, as Binance streams continuously.

Each path may be preceded by the exchange's stream host name (``/stream.binance.com/ws/0``),
as the daemon's ``api_host`` rewrites stream URLs.

Events are derived by comparing each account's state with what was last pushed,
after every private write, test-side change and price move: a change is pushed
once, whatever caused it. Faults for tests: :meth:`BinanceStreams.drop` (close
every connection), ``refuse`` (close new connections), ``stalled`` (stay connected,
send nothing), ``duplicate``
(every private event twice), ``reverse`` (one change's events in reverse order),
and :meth:`BinanceStreams.push_fill_ahead` (a fill on the stream before REST shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.emulator import binance_format as fmt
from tests.emulator.common import Route
from tests.emulator.state import Order

if TYPE_CHECKING:
    from tests.emulator.common import RequestContext
    from tests.emulator.server import Emulator

__all__ = ["BinanceStreams"]

ZERO = Decimal(0)


class BinanceStreams:
    """The stream side of a Binance-dialect emulator (see the module docstring)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.listen_keys: dict[str, str] = {}  # listenKey -> API key
        self.keep_alives = 0
        self._futures: dict[str, set[web.WebSocketResponse]] = {}  # API key -> sockets
        self._spot: dict[str, set[web.WebSocketResponse]] = {}
        self._public: dict[web.WebSocketResponse, set[str]] = {}  # socket -> stream names
        self._pushed: dict[str, dict[str, Any]] = {}  # API key -> last state pushed
        self._update_id = 0
        #: Faults.
        self.refuse = False  # close every new connection at once (an outage)
        self.stalled = False
        self.duplicate = False
        self.reverse = False
        self._tasks: set[asyncio.Future[None]] = set()
        #: Book tickers are pushed this often while anyone listens (Binance: continuously).
        self.tick_interval = 0.25
        self._ticker: asyncio.Future[None] | None = None
        #: Events sent (kind, payload), for tests.
        self.sent: list[tuple[str, dict[str, Any]]] = []

    # -- REST -------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The listenKey endpoints."""
        return [
            Route("POST", "/fapi/v1/listenKey", self._create_key),
            Route("PUT", "/fapi/v1/listenKey", self._keep_alive),
            Route("DELETE", "/fapi/v1/listenKey", self._keep_alive),
        ]

    async def _create_key(self, ctx: RequestContext) -> web.Response:
        api_key = ctx.request.headers.get("X-MBX-APIKEY", "")
        if api_key not in self.emu.engine.accounts:
            return web.json_response({"code": -2015, "msg": "Invalid API-key"}, status=401)
        key = next((k for k, owner in self.listen_keys.items() if owner == api_key), None)
        if key is None:
            key = secrets.token_hex(16)
            self.listen_keys[key] = api_key
        self._remember(api_key)
        return web.json_response({"listenKey": key})

    async def _keep_alive(self, ctx: RequestContext) -> web.Response:
        self.keep_alives += 1
        return web.json_response({})

    # -- websockets -------------------------------------------------------------------
    def is_stream(self, request: web.Request) -> bool:
        """Whether a request is a websocket upgrade this module serves."""
        return request.headers.get("Upgrade", "").lower() == "websocket"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """One websocket connection, until either side closes it."""
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        if self.refuse:
            await ws.close(code=1013, message=b"try again later")
            return ws
        # The daemon's api_host keeps the exchange's stream host as the first segment.
        first, _, rest = request.path.lstrip("/").partition("/")
        path = f"/{rest}" if "." in first else request.path
        registry: set[web.WebSocketResponse] | None = None
        try:
            if path.startswith("/private/ws"):
                api_key = self.listen_keys.get(request.query.get("listenKey", ""))
                if api_key is None:
                    await ws.close(code=4001, message=b"invalid listenKey")
                    return ws
                registry = self._futures.setdefault(api_key, set())
                registry.add(ws)
            elif not path.startswith("/ws-api"):
                self._public[ws] = set()
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                request_json = json.loads(message.data)
                await self._answer(ws, path, request_json)
        finally:
            if registry is not None:
                registry.discard(ws)
            self._public.pop(ws, None)
            for sockets in self._spot.values():
                sockets.discard(ws)
        return ws

    async def _answer(self, ws: web.WebSocketResponse, path: str, request: dict[str, Any]) -> None:
        method = request.get("method")
        if method == "SUBSCRIBE":
            self._public.setdefault(ws, set()).update(request.get("params") or [])
            if self._ticker is None or self._ticker.done():
                self._ticker = asyncio.ensure_future(self._tick())
            await ws.send_str(json.dumps({"result": None, "id": request.get("id")}))
            for stream in request.get("params") or []:
                await self._send_book(ws, stream)
        elif method == "UNSUBSCRIBE":
            self._public.get(ws, set()).difference_update(request.get("params") or [])
            await ws.send_str(json.dumps({"result": None, "id": request.get("id")}))
        elif method == "userDataStream.subscribe.signature":
            api_key = str((request.get("params") or {}).get("apiKey", ""))
            if api_key not in self.emu.engine.accounts:
                await ws.send_str(json.dumps({"id": request.get("id"), "status": 401,
                                              "error": {"code": -2015, "msg": "Invalid API-key"}}))
                return
            self._spot.setdefault(api_key, set()).add(ws)
            self._remember(api_key)
            await ws.send_str(json.dumps(
                {"id": request.get("id"), "status": 200, "result": {"subscriptionId": 0}}
            ))  # fmt: skip
        else:
            await ws.send_str(json.dumps({"id": request.get("id"), "status": 400,
                                          "error": {"code": -1100, "msg": f"unknown {method}"}}))

    async def _tick(self) -> None:
        while self._public:
            await asyncio.sleep(self.tick_interval)
            await self.prices_changed()

    # -- faults ---------------------------------------------------------------------------
    async def drop(self) -> None:
        """Close every stream connection (a disconnect, as after a network failure)."""
        sockets = [*self._public, *(s for group in self._futures.values() for s in group),
                   *(s for group in self._spot.values() for s in group)]  # fmt: skip
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close(code=1006, message=b"dropped")
        if self._ticker is not None:
            self._ticker.cancel()

    def connections(self) -> int:
        """Open stream connections (public and private)."""
        return (len(self._public) + sum(len(g) for g in self._futures.values())
                + sum(len(g) for g in self._spot.values()))  # fmt: skip

    async def push_fill_ahead(self, api_key: str, order: Order) -> None:
        """Push an order's fill on the stream before REST shows it (Binance does this)."""
        payload = self._order_event(order, status="FILLED", filled=order.qty)
        await self._send_private(self._futures.get(api_key, set()), [payload])

    # -- change detection -------------------------------------------------------------------
    def _state(self, api_key: str) -> dict[str, Any]:
        acct = self.emu.engine.accounts[api_key]
        return {
            "spot": {a: (acct.spot_free.get(a, ZERO), acct.spot_locked.get(a, ZERO))
                     for a in {*acct.spot_free, *acct.spot_locked}},
            "wallet": acct.collateral(),
            "positions": {key: pos.qty for key, pos in acct.positions.items()},
            "orders": {o.order_id: (o.status, o.executed_qty) for o in acct.orders},
        }  # fmt: skip

    def _remember(self, api_key: str) -> None:
        self._pushed.setdefault(api_key, self._state(api_key))

    def changed(self, prices: bool = False) -> None:
        """Push what changed since the last push (called by the emulator's setters)."""
        jobs = [self.publish()] if self._pushed else []
        if prices and self._public:
            jobs.append(self.prices_changed())
        for job in jobs:
            task = asyncio.ensure_future(job)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def publish(self) -> None:
        """Compare every subscribed account with what was pushed; push the differences."""
        for api_key, before in list(self._pushed.items()):
            now = self._state(api_key)
            if now == before:
                continue
            self._pushed[api_key] = now
            acct = self.emu.engine.accounts[api_key]
            futures: list[dict[str, Any]] = []
            for order in acct.orders:
                if before["orders"].get(order.order_id) != now["orders"][order.order_id]:
                    if order.market.kind != "spot":
                        futures.append(self._order_event(order))
            if now["positions"] != before["positions"] or now["wallet"] != before["wallet"]:
                futures.append(self._account_update(api_key))
            if futures:
                await self._send_private(self._futures.get(api_key, set()), futures)
            if now["spot"] != before["spot"]:
                await self._send_private(self._spot.get(api_key, set()),
                                         [self._spot_balances(api_key)], wrap=True)  # fmt: skip

    async def _send_private(self, sockets: set[web.WebSocketResponse],
                            events: list[dict[str, Any]], wrap: bool = False) -> None:  # fmt: skip
        if self.stalled:
            return
        if self.reverse:
            events = list(reversed(events))
        if self.duplicate:
            events = [e for event in events for e in (event, event)]
        for event in events:
            self.sent.append((str(event.get("e")), event))
            text = json.dumps({"subscriptionId": 0, "event": event} if wrap else event)
            for ws in list(sockets):
                with contextlib.suppress(Exception):
                    await ws.send_str(text)

    async def prices_changed(self) -> None:
        """Push the book ticker of every subscribed symbol."""
        if self.stalled:
            return
        for ws, streams in list(self._public.items()):
            for stream in list(streams):
                await self._send_book(ws, stream)

    # -- payloads -----------------------------------------------------------------------------
    async def _send_book(self, ws: web.WebSocketResponse, stream: str) -> None:
        symbol_id, _, channel = stream.partition("@")
        if channel != "bookTicker" or self.stalled:
            return
        market = next((m for m in self.emu.engine.markets.values()
                       if m.id.lower() == symbol_id.lower()), None)  # fmt: skip
        if market is None:
            return
        try:
            bid, ask = self.emu.engine.quote(market)
        except (KeyError, ValueError):
            return  # not priced yet
        self._update_id += 1
        now = self.emu.now_ms()
        event = {"e": "bookTicker", "u": self._update_id, "s": market.id,
                 "b": fmt.px(market, bid), "B": "10", "a": fmt.px(market, ask), "A": "10",
                 "T": now, "E": now}  # fmt: skip
        with contextlib.suppress(Exception):
            await ws.send_str(json.dumps(event))

    def _order_event(self, order: Order, status: str | None = None,
                     filled: Decimal | None = None) -> dict[str, Any]:  # fmt: skip
        raw = fmt.futures_order(order, "query")
        now = self.emu.now_ms()
        executed = order.executed_qty if filled is None else filled
        return {
            "e": "ORDER_TRADE_UPDATE", "E": now, "T": now,
            "o": {
                "s": raw["symbol"], "c": raw["clientOrderId"], "S": raw["side"],
                "o": raw["type"], "f": raw["timeInForce"], "q": raw["origQty"],
                "p": raw["price"], "ap": raw["avgPrice"], "sp": "0", "x": "TRADE",
                "X": status or raw["status"], "i": int(order.order_id), "l": str(executed),
                "z": str(executed), "L": raw["avgPrice"], "T": now, "t": now, "b": "0",
                "a": "0", "m": False, "R": raw["reduceOnly"], "wt": "CONTRACT_PRICE",
                "ot": raw["type"], "ps": raw["positionSide"], "cp": False, "rp": "0",
                "n": "0", "N": "USDT",
            },
        }  # fmt: skip

    def _account_update(self, api_key: str) -> dict[str, Any]:
        acct = self.emu.engine.accounts[api_key]
        now = self.emu.now_ms()
        positions = []
        for (symbol, side), pos in acct.positions.items():
            market = self.emu.engine.markets[symbol]
            positions.append({"s": market.id, "pa": str(pos.qty),
                              "ep": str(pos.entry_price), "cr": str(pos.realized_pnl),
                              "up": "0", "mt": "cross", "iw": "0", "ps": side})  # fmt: skip
        wallet = str(acct.collateral())
        return {"e": "ACCOUNT_UPDATE", "E": now, "T": now,
                "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
                      "P": positions}}  # fmt: skip

    def _spot_balances(self, api_key: str) -> dict[str, Any]:
        acct = self.emu.engine.accounts[api_key]
        now = self.emu.now_ms()
        assets = sorted({*acct.spot_free, *acct.spot_locked})
        return {"e": "outboundAccountPosition", "E": now, "u": now,
                "B": [{"a": a, "f": str(acct.spot_free.get(a, ZERO)),
                       "l": str(acct.spot_locked.get(a, ZERO))} for a in assets]}  # fmt: skip
