"""Name the root cause of a network failure: DNS, refused, TLS, timeout, HTTP, other.

An operator reading "ExchangeNotAvailable" at boot needs to know whether the name did
not resolve, the port refused, the certificate failed or the request timed out; the
answer is in the exception chain (``__cause__``/``__context__``) or, once ccxt has
flattened it into a message, in the text.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

__all__ = ["root_cause"]

_TEXT = (
    ("DNS", ("name or service not known", "nodename nor servname", "temporary failure in "
             "name resolution", "getaddrinfo", "no address associated", "cannot resolve")),
    ("TLS", ("ssl", "certificate", "tls")),
    ("refused", ("connection refused", "connect call failed", "errno 111")),
    ("timeout", ("timed out", "timeout")),
    ("HTTP 5xx", (" 500", " 502", " 503", " 504", "service unavailable", "bad gateway")),
)  # fmt: skip


def root_cause(error: BaseException) -> str:
    """One word for why a request failed (see the module docstring)."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for exc in reversed(chain):  # the deepest first
        if isinstance(exc, socket.gaierror):
            return "DNS"
        if isinstance(exc, ssl.SSLError):
            return "TLS"
        if isinstance(exc, ConnectionRefusedError):
            return "refused"
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return "timeout"
    text = " ".join(str(e) for e in chain).lower()
    for cause, needles in _TEXT:
        if any(n in text for n in needles):
            return cause
    return "other"
