"""Snapshot: read everything one cycle needs, concurrently, into an immutable value.

Each account is read once per cycle per kind (balances, positions, quotes, open
orders), however many groups share it. A read that fails after its retries is
*missing* (``None``), never zero. Transient failures are retried with jittered
exponential backoff; an account whose reads keep failing trips a circuit
breaker and is left alone for a cool-down, so a broken exchange is not hammered.
Authentication and permission failures are not retried: they are reported so
the engine can halt.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from hedgekeeper.exceptions import AuthError, RetryableReadError
from hedgekeeper.model import Balances, OrderInfo, Position, Quote
from hedgekeeper.settings import ExecutionSettings
from hedgekeeper.venues.base import Venue

__all__ = ["AccountNeeds", "CircuitBreaker", "Snapshot", "SnapshotReader"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccountNeeds:
    """Which reads one account must do each cycle."""

    balances: bool
    position_symbols: tuple[str, ...]
    quote_symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one cycle's decisions need, read at one time. ``None`` = read failed."""

    taken_at: float
    balances: dict[str, Balances | None]
    positions: dict[str, dict[str, Position] | None]
    quotes: dict[str, dict[str, Quote] | None]
    open_orders: dict[str, list[OrderInfo] | None]
    errors: dict[str, str]
    auth_errors: dict[str, str] = field(default_factory=dict)
    open_circuits: dict[str, float] = field(default_factory=dict)  # account -> reopens at
    #: when the reads began: a fill learned after this may not show in them yet
    started_at: float = 0.0


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker for one account."""

    threshold: int
    cooldown: float
    failures: int = 0
    open_until: float = 0.0

    def allows(self, now: float) -> bool:
        """Closed, or open but cooled down (half-open: one try)."""
        return now >= self.open_until

    def record(self, ok: bool, now: float) -> bool:
        """Count a cycle's outcome; returns True when this call tripped the breaker."""
        if ok:
            self.failures = 0
            return False
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + self.cooldown
            self.failures = 0
            return True
        return False


class SnapshotReader:
    """Reads snapshots for a fixed set of accounts and needs."""

    def __init__(
        self,
        venues: dict[str, Venue],
        needs: dict[str, AccountNeeds],
        prefix: str,
        settings: ExecutionSettings,
        *,
        clock: Callable[[], float] = time.time,
        log: Any = None,
        retry_budget: float = 5.0,
        events: Any = None,
    ) -> None:
        self.venues = venues
        self.needs = needs
        self.prefix = prefix
        self.settings = settings
        self.clock = clock
        self.log = log
        self.retry_budget = retry_budget
        self.events = events
        self._stay_away: dict[str, float] = {}  # account -> no request before (epoch s)
        self.breakers = {
            name: CircuitBreaker(
                settings.circuit_breaker_failures, settings.circuit_breaker_cooldown
            )
            for name in venues
        }

    async def _read(self, what: str, call: Callable[[], Awaitable[T]], errors: dict[str, str],
                    auth_errors: dict[str, str]) -> T | None:  # fmt: skip
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        while True:
            try:
                return await call()
            except AuthError as error:
                auth_errors[what] = str(error)
                errors[what] = f"AuthError: {error}"
                return None
            except RetryableReadError as error:
                if error.retry_after is not None:
                    # The venue said how long to stay away (429/418): no retry now, and the
                    # account's breaker holds every read until then (read()).
                    errors[what] = f"RetryableReadError: {error}"
                    account = what.partition(":")[2]
                    self._stay_away[account] = max(
                        self._stay_away.get(account, 0.0), self.clock() + error.retry_after
                    )
                    return None
                delay = 0.25 * 2**attempt * random.uniform(0.5, 1.5)  # jitter spreads retries
                if attempt >= self.settings.read_retries or time.monotonic() + delay > deadline:
                    errors[what] = f"RetryableReadError: {error}"
                    return None
                attempt += 1
                if self.log is not None:
                    self.log.info("snapshot.read_retry", read=what, attempt=attempt,
                                  delay_s=round(delay, 3), error=str(error))  # fmt: skip
                await asyncio.sleep(delay)
            except Exception as error:  # an unexpected reply is missing data, not zero
                errors[what] = f"{type(error).__name__}: {error}"
                return None

    async def _positions_then_orders(
        self,
        name: str,
        venue: Venue,
        symbols: tuple[str, ...],
        positions: dict[str, Any],
        open_orders: dict[str, Any],
        errors: dict[str, str],
        auth_errors: dict[str, str],
    ) -> None:
        """Positions first, then open orders: never both counting one fill.

        An order that fills before the positions read is gone from the open orders
        read after it; one that fills between the two reads is gone too (and is
        resolved by a look-up, which holds its group for a cycle); one that fills
        after both is still listed as working and is not yet in the position. Read
        concurrently, a fill could land in the position *and* stay listed as
        working, and the group would trim a hedge it does not have.
        """
        read = self._read
        positions[name] = await read(f"positions:{name}", partial(venue.fetch_positions, symbols),
                                     errors, auth_errors)  # fmt: skip
        open_orders[name] = await read(
            f"open_orders:{name}", partial(venue.fetch_open_orders, symbols, self.prefix),
            errors, auth_errors,
        )  # fmt: skip

    async def read(self) -> Snapshot:
        """One snapshot of every account's needs."""
        errors: dict[str, str] = {}
        auth_errors: dict[str, str] = {}
        balances: dict[str, Any] = {}
        positions: dict[str, Any] = {}
        quotes: dict[str, Any] = {}
        open_orders: dict[str, Any] = {}
        jobs: list[Awaitable[None]] = []
        now = self.clock()
        open_circuits: dict[str, float] = {}

        def add(target: dict[str, Any], name: str, what: str,
                call: Callable[[], Awaitable[Any]]) -> None:  # fmt: skip
            async def job() -> None:
                target[name] = await self._read(f"{what}:{name}", call, errors, auth_errors)

            jobs.append(job())

        for name, needs in self.needs.items():
            breaker = self.breakers[name]
            if not breaker.allows(now):
                open_circuits[name] = breaker.open_until
                continue
            venue = self.venues[name]
            if needs.balances:
                add(balances, name, "balances", venue.fetch_balances)
            if needs.position_symbols:
                jobs.append(self._positions_then_orders(name, venue, needs.position_symbols,
                                                        positions, open_orders, errors,
                                                        auth_errors))  # fmt: skip
            if needs.quote_symbols:
                symbols = needs.quote_symbols
                add(quotes, name, "quotes", partial(venue.fetch_quotes, symbols))
        await asyncio.gather(*jobs)
        taken_at = self.clock()
        for name, by_symbol in quotes.items():
            # A quote without a timestamp is stamped on receipt, so that its age can be
            # checked like every other price (never treated as fresh forever).
            if by_symbol and any(not q.timestamp for q in by_symbol.values()):
                quotes[name] = {
                    symbol: q if q.timestamp else replace(q, timestamp=taken_at)
                    for symbol, q in by_symbol.items()
                }
        for name in self.needs:
            if name in open_circuits:
                continue
            failed = any(key.endswith(f":{name}") for key in errors)
            until = self._stay_away.pop(name, None)
            if until is not None and until > self.breakers[name].open_until:
                self.breakers[name].open_until = until
                open_circuits[name] = until
                if self.log is not None:
                    self.log.warning("venue.retry_after", account=name,
                                     seconds=round(until - taken_at, 1))  # fmt: skip
                continue
            if self.breakers[name].record(not failed, taken_at):
                open_circuits[name] = self.breakers[name].open_until
                if self.log is not None:
                    self.log.error("venue.circuit_open", account=name,
                                   cooldown_s=self.settings.circuit_breaker_cooldown)  # fmt: skip
        for what, error in errors.items():
            if self.log is not None:
                self.log.warning("snapshot.read_failed", read=what, error=error)
            if self.events is not None:
                kind, _, account = what.partition(":")
                self.events.publish("snapshot.read_failed", read=kind, account=account,
                                    error_class=error.partition(":")[0], error=error)  # fmt: skip
        return Snapshot(taken_at, balances, positions, quotes, open_orders, errors, auth_errors,
                        open_circuits, started_at=now)  # fmt: skip
