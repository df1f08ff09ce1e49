"""HTTPS with the venues' real hostnames, pointed at the local emulator.

Why: on a loopback URL ccxt's Binance error handling cannot tell spot from
futures (``get_exceptions_by_url`` keys on ``https://demo-fapi...`` etc.), so it
falls back to the generic table - e.g. ``-2019 Margin is insufficient`` becomes a
plain ``ExchangeError`` instead of ``InsufficientFunds``, ``-4116`` duplicate
client id an ``ExchangeError`` instead of ``InvalidOrder``, ``-5022`` post-only an
``ExchangeError`` instead of ``OrderNotFillable``. Serving the real demo/testnet
hostnames lets tests see exactly the exception classes production code will see.
(Bybit's error mapping does not depend on the URL; it is the same either way.)

How: a throw-away CA (``trustme``) issues one certificate for every hostname;
the emulator serves HTTPS with it on 127.0.0.1; a custom aiohttp resolver maps
those hostnames - and nothing else - to 127.0.0.1 and the emulator's ephemeral
port (aiohttp connects to the port the resolver returns); the client session
trusts only the test CA. Any other hostname fails to resolve, so a test can
never reach a real exchange by accident.

Usage with ccxt::

    pki = TestPKI()
    emu = Emulator("binance", {"K": "S"}, ssl_context=pki.server_context())
    await emu.start()
    session = loopback_session(pki, {h: emu.port for h in venue_hostnames("binance")})
    exchange = ccxt.binance({"apiKey": "K", "secret": "S", "session": session})
    exchange.enable_demo_trading(True)   # bybit: exchange.set_sandbox_mode(True)
    ...
    await exchange.close(); await session.close()

Passing ``session`` in the constructor config makes ccxt treat it as borrowed
(``own_session = False``): ccxt never builds its own connector and ``close()``
leaves the session to its owner. :func:`use_session` does the same for an
existing exchange object.

Note: in Binance demo mode ccxt has no ``sapi`` URL, so ``apiRestrictions`` and
``transfer`` raise ``NotSupported`` before any request; test those on loopback.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "LoopbackResolver",
    "TestPKI",
    "loopback_session",
    "use_session",
    "venue_hostnames",
]

LOOPBACK = "127.0.0.1"


def _host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def venue_hostnames(exchange_id: str) -> list[str]:
    """The demo and testnet hostnames ccxt uses for a venue, read from ccxt itself.

    Binance: ``urls['demo']`` (demo-api / demo-fapi / demo-dapi) and ``urls['test']``;
    Bybit: ``urls['test']`` (api-testnet.bybit.com) and ``urls['demotrading']``
    (api-demo.bybit.com).
    """
    import ccxt  # imported here: only needed when hostnames are asked for

    exchange = getattr(ccxt, exchange_id)()
    groups = ("demo", "test") if exchange_id.startswith("binance") else ("test", "demotrading")
    hosts: set[str] = set()
    for group in groups:
        for url in (exchange.urls.get(group) or {}).values():
            if isinstance(url, str) and "://" in url:
                hosts.add(_host_of(url).replace("{hostname}", exchange.hostname or ""))
    return sorted(hosts)


class TestPKI:
    """A throw-away certificate authority and one server certificate."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, hostnames: Iterable[str] | None = None) -> None:
        names = (
            list(hostnames)
            if hostnames is not None
            else (venue_hostnames("binance") + venue_hostnames("bybit"))
        )
        self.hostnames = sorted(set(names) | {LOOPBACK, "localhost"})
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert(*self.hostnames)

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the emulator's HTTPS listener."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA."""
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cadata=self.ca.cert_pem.bytes().decode())
        return ctx

    def write_ca(self, path: str) -> None:
        """Write the CA certificate (PEM) for clients in other processes."""
        self.ca.cert_pem.write_to_path(path)


class LoopbackResolver(AbstractResolver):
    """Resolves listed hostnames to 127.0.0.1 and their emulator port; refuses others."""

    def __init__(self, ports: Mapping[str, int]) -> None:
        self._ports = {host.lower(): port for host, port in ports.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """One IPv4 loopback result carrying the emulator's port."""
        name = host.lower().rstrip(".")
        if name in self._ports:
            target = self._ports[name]
        elif name in (LOOPBACK, "localhost"):
            target = port
        else:
            raise OSError(f"LoopbackResolver: refusing to resolve {host!r} (not an emulated host)")
        return [
            ResolveResult(
                hostname=host,
                host=LOOPBACK,
                port=target,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


def loopback_session(
    ca: TestPKI | str | Path, ports: Mapping[str, int], **session_kwargs: Any
) -> aiohttp.ClientSession:
    """A ClientSession that reaches the emulator under the venues' real hostnames.

    ``ca`` is the :class:`TestPKI` of an in-process emulator, or the CA file an
    emulator subprocess wrote (``python -m tests.emulator --tls CA_PATH``).
    """
    if isinstance(ca, TestPKI):
        context = ca.client_context()
    else:
        context = ssl.create_default_context(cafile=str(ca))
    connector = aiohttp.TCPConnector(
        resolver=LoopbackResolver(ports), ssl=context, family=socket.AF_INET
    )
    return aiohttp.ClientSession(connector=connector, **session_kwargs)


def use_session(exchange: Any, session: aiohttp.ClientSession) -> None:
    """Make an existing ccxt async exchange borrow ``session`` (it will not close it)."""
    exchange.session = session
    exchange.own_session = False
