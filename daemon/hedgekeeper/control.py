"""The control channel: a small local websockets server for probes, operators and the CLI.

Plain HTTP ``GET``:

* ``/healthz`` — 200 while the last successful cycle is younger than three poll
  intervals, else 503; the JSON body says why (Docker ``HEALTHCHECK``, probes).
* ``/status`` — a JSON snapshot: mode, trading state, last cycle, every group.

WebSocket:

* ``/events`` — every engine event as one JSON text message. Each client has a
  bounded queue: a client that reads too slowly loses its oldest events (it is told
  how many with an ``events.dropped`` message); the engine never waits for it.
* ``/command`` — send ``{"command": "halt" | "resume" | "flatten" | "hedge_now" |
  "realize", "token": "…", "reason": "…"}`` (``realize`` also takes ``group``, ``asset``,
  ``amount`` and ``live``: see :mod:`hedgekeeper.realize`) (or put the token in an
  ``Authorization: Bearer`` header of the handshake); each command gets one JSON reply.
  Commands always need ``control.token``; without one configured they are refused.

On a non-loopback address (which the settings allow only with a token) every endpoint
needs the token, ``/healthz`` included unless the probe itself comes from loopback
(a container's ``HEALTHCHECK``).

Browsers: a request carrying an ``Origin`` header not listed in
``control.allowed_origins`` is refused (403) on every path, so a web page open in the
operator's browser can neither read ``/status`` nor open ``/events`` or ``/command``. The
``Host`` header must name the bind address, ``localhost``, ``127.0.0.1`` or ``[::1]`` (or
one of ``control.allowed_hosts``): a DNS-rebinding page reaches the port under its own
name and is refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from hedgekeeper.events import Subscription
from hedgekeeper.realize import RealizeRefused
from hedgekeeper.redact import Redactor
from hedgekeeper.status import STALE_CYCLES, health, status_snapshot

if TYPE_CHECKING:
    from hedgekeeper.engine import Engine

__all__ = ["COMMANDS", "NO_TOKEN_MESSAGE", "ControlServer", "bearer_token"]

#: Commands ``/command`` accepts (``hedge-now`` is accepted as a spelling of ``hedge_now``).
COMMANDS = ("halt", "resume", "flatten", "hedge_now", "realize")

#: The refusal every command gets while no token is configured.
NO_TOKEN_MESSAGE = (
    "commands are disabled: no control token is configured; set control.token "
    "(environment HEDGEKEEPER_CONTROL__TOKEN or a secret file control__token) and restart"
)

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_WS_PATHS = ("/events", "/command")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _json_response(connection: ServerConnection, status: HTTPStatus, body: Any) -> Response:
    response = connection.respond(status, json.dumps(body, default=str) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response


class ControlServer:
    """Serves ``/healthz``, ``/status``, ``/events`` and ``/command`` for one engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        redactor: Redactor,
        log: Any,
        host: str | None = None,
        port: int | None = None,
        stale_after: float | None = None,
        queue_size: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Defaults come from ``engine.settings.control``; ``port=0`` picks a free port."""
        control = engine.settings.control
        self.engine = engine
        self.host = control.host if host is None else host
        self._port = control.port if port is None else port
        self._token = None if control.token is None else control.token.get_secret_value()
        self._reads_need_token = self.host not in _LOOPBACK
        self._origins = frozenset(o.rstrip("/").lower() for o in control.allowed_origins)
        self._hosts = frozenset(
            {self.host.lower(), "localhost", "127.0.0.1", "::1", "[::1]"}
            | {h.lower() for h in control.allowed_hosts}
        )
        # Bound to every interface, every endpoint needs the token: Host names vary.
        self._check_host = self.host not in ("0.0.0.0", "::", "")
        self.stale_after = (
            STALE_CYCLES * engine.settings.poll_interval if stale_after is None else stale_after
        )
        self.queue_size = queue_size
        self._redactor = redactor
        self._log = log
        self._clock = clock
        self._server: Server | None = None
        self._command_lock = asyncio.Lock()
        #: Live ``/events`` subscriptions (bounded queues), for inspection and tests.
        self.subscriptions: set[Subscription] = set()

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._server is not None:
            for sock in self._server.sockets:
                return int(sock.getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Listen; raises ``OSError`` if the address is taken."""
        ws_logger = logging.getLogger("hedgekeeper.control.websockets")
        self._server = await serve(
            self._handle,
            self.host,
            self._port,
            process_request=self._process_request,
            server_header="hedgekeeper",
            compression=None,
            max_size=64 * 1024,
            close_timeout=1.0,
            logger=ws_logger,
        )
        self._log.info(
            "control.listening",
            host=self.host,
            port=self.port,
            commands_enabled=self._token is not None,
        )

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is None:
            return
        self._server.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)
        except TimeoutError:
            self._log.warning("control.close_timeout")
        self._server = None

    # -- HTTP --------------------------------------------------------------------------------

    def _authorized(self, token: str | None) -> bool:
        if self._token is None or token is None:
            return False
        return hmac.compare_digest(token.encode(), self._token.encode())

    def _refusal(self, connection: ServerConnection, request: Request,
                 path: str) -> Response | None:  # fmt: skip
        """403/401 for a browser origin, a foreign Host, or a missing token off loopback."""
        origins = request.headers.get_all("Origin")
        origin = origins[0] if len(origins) == 1 else ("" if origins else None)
        if origin is not None and origin.rstrip("/").lower() not in self._origins:
            self._log.warning("control.origin_refused", path=path)
            return _json_response(connection, HTTPStatus.FORBIDDEN,
                                  {"error": "browser origin not allowed (control.allowed_origins)"})
        hosts = request.headers.get_all("Host")  # two Host headers: refused, never guessed
        host = _host_name(hosts[0]) if len(hosts) == 1 else ""
        if self._check_host and host not in self._hosts:
            self._log.warning("control.host_refused", path=path)
            return _json_response(connection, HTTPStatus.FORBIDDEN,
                                  {"error": "Host not allowed (control.allowed_hosts)"})
        if not self._reads_need_token or path == "/command":
            return None  # commands check their token per message
        address = connection.remote_address
        peer_host = str(address[0]) if isinstance(address, tuple) and address else ""
        if path == "/healthz" and peer_host in ("127.0.0.1", "::1"):
            return None
        if not self._authorized(bearer_token(request.headers.get("Authorization"))):
            return _json_response(connection, HTTPStatus.UNAUTHORIZED,
                                  {"error": "unauthorized: send Authorization: Bearer <token>"})
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/") or "/"
        refused = self._refusal(connection, request, path)
        if refused is not None:
            return refused
        if path == "/healthz":
            state = health(self.engine.last_success_at, self.stale_after, self._clock())
            code = HTTPStatus.OK if state.healthy else HTTPStatus.SERVICE_UNAVAILABLE
            return _json_response(connection, code, state.as_dict())
        if path == "/status":
            snapshot = self._redactor.data(status_snapshot(self.engine, now=self._clock()))
            return _json_response(connection, HTTPStatus.OK, snapshot)
        if path in _WS_PATHS:
            if not _is_upgrade(request.headers):
                return _json_response(
                    connection,
                    HTTPStatus.UPGRADE_REQUIRED,
                    {"error": f"{path} is a WebSocket endpoint"},
                )
            return None
        return _json_response(
            connection,
            HTTPStatus.NOT_FOUND,
            {
                "error": f"no such endpoint {path!r}",
                "endpoints": ["/healthz", "/status", "/events (WebSocket)", "/command (WebSocket)"],
            },
        )

    # -- WebSocket ---------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        path = urlsplit(connection.request.path if connection.request else "/").path.rstrip("/")
        try:
            if path == "/events":
                await self._stream_events(connection)
            elif path == "/command":
                await self._serve_commands(connection)
        except ConnectionClosed:
            pass

    async def _stream_events(self, connection: ServerConnection) -> None:
        subscription = self.engine.events.subscribe(self.queue_size)
        self.subscriptions.add(subscription)
        closed = asyncio.ensure_future(connection.wait_closed())
        reported_drops = 0
        try:
            await connection.send(
                json.dumps(
                    {
                        "event": "events.subscribed",
                        "at": self._clock(),
                        "mode": self.engine.settings.mode.value,
                        "queue_size": self.queue_size,
                    }
                )
            )
            while True:
                getter = asyncio.ensure_future(subscription.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                event = getter.result()
                if subscription.dropped > reported_drops:
                    lost = subscription.dropped - reported_drops
                    reported_drops = subscription.dropped
                    await connection.send(
                        json.dumps({"event": "events.dropped", "at": self._clock(), "count": lost})
                    )
                await connection.send(json.dumps(self._redactor.data(event), default=str))
        finally:
            closed.cancel()
            subscription.close()
            self.subscriptions.discard(subscription)

    async def _serve_commands(self, connection: ServerConnection) -> None:
        request = connection.request
        header_token = bearer_token(request.headers.get("Authorization")) if request else None
        peer = _peer(connection)
        async for message in connection:
            reply = await self.command(message, header_token=header_token, peer=peer)
            await connection.send(json.dumps(self._redactor.data(reply), default=str))

    async def command(
        self, message: str | bytes, *, header_token: str | None = None, peer: str = "?"
    ) -> dict[str, Any]:
        """Authenticate and run one command message; the JSON-ready reply."""
        try:
            data = json.loads(message)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return {"ok": False, "error": 'expected a JSON object like {"command": "halt"}'}
        name = str(data.get("command", "")).replace("-", "_")
        if name not in COMMANDS:
            return {"ok": False, "error": f"unknown command {name!r}; known: {', '.join(COMMANDS)}"}
        if self._token is None:
            self._log.warning(
                "control.command_refused",
                command=name,
                peer=peer,
                why="no control token configured",
            )
            return {"ok": False, "command": name, "error": NO_TOKEN_MESSAGE}
        token = data.get("token")
        if not self._authorized(token if isinstance(token, str) else header_token):
            self._log.warning(
                "control.command_refused", command=name, peer=peer, why="missing or wrong token"
            )
            return {"ok": False, "command": name, "error": "unauthorized: missing or wrong token"}
        reason = str(data.get("reason") or f"operator {name} via control channel")[:200]
        self._log.warning("control.command", command=name, peer=peer, reason=reason)
        async with self._command_lock:
            try:
                result = await self._run(name, reason, data)
            except RealizeRefused as error:  # a refusal, not a failure: nothing was sent
                self._log.warning("control.command_refused", command=name, peer=peer,
                                  why=str(error))  # fmt: skip
                return {"ok": False, "command": name, "error": str(error)}
            except Exception as error:  # reply, log, and keep the channel up
                self._log.error("control.command_failed", command=name, error=repr(error))
                return {"ok": False, "command": name, "error": f"{type(error).__name__}: {error}"}
        self._log.info("control.command_done", command=name, result=result)
        return {"ok": True, "command": name, "result": result}

    async def _run(self, name: str, reason: str, data: dict[str, Any]) -> dict[str, Any]:
        engine = self.engine
        if name == "realize":
            return engine.realizer.request(data, "control", reason)
        commands: dict[str, Callable[[str, str], Awaitable[dict[str, Any]]]] = {
            "halt": engine.halt,
            "resume": engine.resume,
            "flatten": engine.flatten,
        }
        if name in commands:
            return await commands[name]("control", reason)
        # hedge_now: the engine does not journal it itself.
        engine.journal.record_action("hedge_now", "control", reason)
        engine.hedge_now()
        return {"triggered": True}


def _host_name(header: str | None) -> str:
    """The host part of a ``Host`` header, lower-case, without the port."""
    if not header:
        return ""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_upgrade(headers: Headers) -> bool:
    return "websocket" in headers.get("Upgrade", "").lower()


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
