"""Fault scripts: deterministic misbehaviour queued per endpoint.

A test queues :class:`Fault` s on the emulator's :class:`FaultScript`, matched by
HTTP method and a path glob, for a number of matching requests::

    emu.faults.add(Fault.accept_then_timeout(delay=5), method="POST", path="/fapi/v1/order")
    emu.faults.add(Fault.rate_limit(retry_after=2), path="/api/v3/*", count=3)
    emu.faults.add(Fault.partial_fill("0.4"), path="/v5/order/create")
    emu.faults.add(Fault.http_error(502), count=None, probability=0.2)  # seeded

Kinds and where they act:

* ``latency(s)``             - wait ``s`` seconds, then handle normally.
* ``rate_limit(retry_after)``- Binance HTTP 429 ``-1003`` with ``Retry-After``;
  Bybit ``retCode`` 10006 (HTTP 200). Not applied.
* ``ip_ban(retry_after)``    - Binance HTTP 418 ``-1003``; Bybit HTTP 403 text. Not applied.
* ``http_error(status, body)`` - a bare 5xx/4xx (plain text unless ``body``). Not applied.
* ``disconnect(after_apply)``- close the TCP connection without any response,
  before (default) or after the request changed state.
* ``accept_then_timeout(delay)`` - apply the request (the order exists), then
  hold the response ``delay`` s so the client times out first.
* ``backend_timeout()``      - apply, then answer Binance ``-1007`` (HTTP 408) /
  Bybit ``retCode`` 10016: the outcome is unknown to the client.
* ``partial_fill(fraction)`` - the next order created fills only ``fraction``
  (rounded down to the step); a GTC limit keeps the rest open, market/IOC
  orders expire the rest, FOK fills nothing.

Several rules may match one request (e.g. latency plus partial fill); the first
short-circuiting fault wins. ``count=None`` repeats forever; ``skip`` lets that
many matching requests through first; ``probability`` draws from the script's
own seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = ["Fault", "FaultKind", "FaultRule", "FaultScript"]


class FaultKind(StrEnum):
    """What a fault does; see the module docstring."""

    LATENCY = "latency"
    RATE_LIMIT = "rate_limit"
    IP_BAN = "ip_ban"
    HTTP_ERROR = "http_error"
    DISCONNECT = "disconnect"
    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"
    BACKEND_TIMEOUT = "backend_timeout"
    PARTIAL_FILL = "partial_fill"

    @property
    def short_circuits(self) -> bool:
        """Whether the request is answered (or dropped) without being applied."""
        return self in (FaultKind.RATE_LIMIT, FaultKind.IP_BAN, FaultKind.HTTP_ERROR)


@dataclass(frozen=True)
class Fault:
    """One kind of misbehaviour with its parameters; build with the classmethods."""

    kind: FaultKind
    seconds: float = 0.0
    status: int = 0
    body: str | None = None
    fraction: Decimal | None = None
    after_apply: bool = False

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Delay the request by ``seconds`` before handling it."""
        return cls(FaultKind.LATENCY, seconds=seconds)

    @classmethod
    def rate_limit(cls, retry_after: float = 1.0) -> Fault:
        """HTTP 429 (Binance) / retCode 10006 (Bybit), with a Retry-After hint."""
        return cls(FaultKind.RATE_LIMIT, seconds=retry_after)

    @classmethod
    def ip_ban(cls, retry_after: float = 60.0) -> Fault:
        """HTTP 418 (Binance) / HTTP 403 (Bybit)."""
        return cls(FaultKind.IP_BAN, seconds=retry_after)

    @classmethod
    def http_error(cls, status: int = 503, body: str | None = None) -> Fault:
        """A bare HTTP error status with a plain-text (or given) body."""
        return cls(FaultKind.HTTP_ERROR, status=status, body=body)

    @classmethod
    def disconnect(cls, after_apply: bool = False) -> Fault:
        """Drop the connection without a response (optionally after applying)."""
        return cls(FaultKind.DISCONNECT, after_apply=after_apply)

    @classmethod
    def accept_then_timeout(cls, delay: float = 30.0) -> Fault:
        """Apply the request, then hold the response for ``delay`` seconds."""
        return cls(FaultKind.ACCEPT_THEN_TIMEOUT, seconds=delay, after_apply=True)

    @classmethod
    def backend_timeout(cls) -> Fault:
        """Apply, then answer 'send status unknown' (Binance -1007)."""
        return cls(FaultKind.BACKEND_TIMEOUT, after_apply=True)

    @classmethod
    def partial_fill(cls, fraction: Decimal | str | float) -> Fault:
        """Fill only ``fraction`` of the next created order."""
        value = Decimal(str(fraction))
        if not 0 <= value < 1:
            raise ValueError("fraction must be in [0, 1)")
        return cls(FaultKind.PARTIAL_FILL, fraction=value)


@dataclass
class FaultRule:
    """A queued fault with its matching rule and counters."""

    fault: Fault
    method: str = "*"
    path: str = "*"
    count: int | None = 1
    skip: int = 0
    probability: float = 1.0
    seen: int = 0
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        """Whether the rule has fired ``count`` times."""
        return self.count is not None and self.hits >= self.count

    def matches(self, method: str, path: str) -> bool:
        """Whether a request matches the method and path glob."""
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and fnmatch.fnmatchcase(path, self.path)


@dataclass
class FaultScript:
    """The queue of fault rules of one emulator (seeded for reproducibility)."""

    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(
        self,
        fault: Fault,
        *,
        path: str = "*",
        method: str = "*",
        count: int | None = 1,
        skip: int = 0,
        probability: float = 1.0,
    ) -> FaultRule:
        """Queue a fault for the next ``count`` matching requests; returns the rule."""
        rule = FaultRule(fault, method, path, count, skip, probability)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget every queued fault."""
        self.rules.clear()

    def pending(self) -> list[FaultRule]:
        """Rules that may still fire."""
        return [r for r in self.rules if not r.exhausted]

    def take(self, method: str, path: str) -> list[Fault]:
        """Consume and return the faults that apply to this request."""
        fired: list[Fault] = []
        for rule in self.rules:
            if rule.exhausted or not rule.matches(method, path):
                continue
            rule.seen += 1
            if rule.seen <= rule.skip:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rule.hits += 1
            fired.append(rule.fault)
        return fired
