"""One gate for every exchange write, and the venue wrappers that make it structural.

Every create, cancel and transfer the daemon sends passes :class:`WriteGate` at the
moment it is sent — not when it was planned — so a halt, a flatten or a lost state
lock lands between two child orders of a sliced execution. The gate checks:

* **trading state** (read from the journal at each write): ``HALTED`` stops every
  create and transfer (cancels still go out: they only ever reduce risk);
  ``REDUCING`` (flatten, margin guard) lets only reduce-only creates through;
* **orders per minute**, per account, counting every child order;
* **the state lock**: this process must still own its state directory.

The engine never holds a raw venue for writing: it wraps each one in
:class:`GatedVenue`, whose write methods ask the gate first. Commands that must not
write at all (``plan``, ``check``, ``status``) get :class:`ReadOnlyVenue`, which has no
write methods — a path that tries one fails with ``AttributeError`` before any request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from hedgekeeper.exceptions import HedgekeeperError
from hedgekeeper.journal import Journal
from hedgekeeper.model import (
    Balances,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    Position,
    Quote,
    TradingState,
)
from hedgekeeper.statelock import StateLock, StateLockLost
from hedgekeeper.venues.base import Venue

__all__ = ["GatedVenue", "ReadOnlyVenue", "WriteGate", "WriteRefused"]

#: Methods that write to an exchange; neither wrapper forwards them unguarded.
WRITE_METHODS = frozenset(
    {"submit_order", "cancel_order", "transfer", "setup_instrument", "create_order",
     "cancel_all_orders", "edit_order", "withdraw"}
)  # fmt: skip


class WriteRefused(HedgekeeperError):
    """The gate refused a write: it was *not* sent (a definite, local outcome)."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


class WriteGate:
    """Admits or refuses each exchange write at the moment it is sent."""

    def __init__(
        self,
        journal: Journal,
        max_orders_per_minute: int,
        *,
        lock: StateLock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.max_orders_per_minute = max_orders_per_minute
        self.lock = lock
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}
        self.refused = 0

    def _check_lock(self) -> None:
        if self.lock is not None:
            try:
                self.lock.assert_held()
            except StateLockLost as error:
                self.refused += 1
                raise WriteRefused("state_lock", str(error)) from None

    def _recent(self, account: str) -> deque[float]:
        sent = self._sent.get(account)
        if sent is None:
            # Seeded from the journal so that a restart loop cannot reset the budget.
            now = self.clock()
            seeded = self.journal.orders_created_since(account, time.time() - 60)
            sent = self._sent[account] = deque([now] * max(0, seeded - 1))
        horizon = self.clock() - 60
        while sent and sent[0] <= horizon:
            sent.popleft()
        return sent

    def admit_create(self, account: str, request: OrderRequest) -> None:
        """Raise :class:`WriteRefused` unless this order may go out now."""
        self._check_lock()
        state = self.journal.trading_state()
        if state is TradingState.HALTED:
            self.refused += 1
            raise WriteRefused("trading_state", "trading is HALTED: no order goes out")
        if state is TradingState.REDUCING and not request.reduce_only:
            self.refused += 1
            raise WriteRefused("trading_state", "REDUCING: only reduce-only orders go out")
        sent = self._recent(account)
        if len(sent) >= self.max_orders_per_minute:
            self.refused += 1
            raise WriteRefused(
                "order_rate",
                f"{len(sent)} orders sent on {account} in the last minute "
                f"(max_orders_per_minute = {self.max_orders_per_minute})",
            )
        sent.append(self.clock())

    def admit_cancel(self, account: str) -> None:
        """Cancels only reduce risk: refused only when the state lock is lost."""
        self._check_lock()

    def admit_transfer(self, account: str) -> None:
        """A collateral transfer: not while HALTED, never without the lock."""
        self._check_lock()
        if self.journal.trading_state() is TradingState.HALTED:
            self.refused += 1
            raise WriteRefused("trading_state", "trading is HALTED: no transfer goes out")

    def admit_setup(self, account: str) -> None:
        """Leverage / margin / position mode at start: needs the lock."""
        self._check_lock()


class _Reads:
    """The read half of the venue port, forwarded to the wrapped venue."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self.name = venue.name
        fetch_funding = getattr(venue, "fetch_funding", None)
        if fetch_funding is not None:
            self.fetch_funding = fetch_funding
        permissions = getattr(venue, "fetch_key_permissions", None)
        if permissions is not None:
            self.fetch_key_permissions = permissions
        closes = getattr(venue, "fetch_closes", None)  # past bars: estimated betas
        if closes is not None:
            self.fetch_closes = closes

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        return await self._venue.load_markets(symbols)

    async def fetch_balances(self) -> Balances:
        return await self._venue.fetch_balances()

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        return await self._venue.fetch_positions(symbols)

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        return await self._venue.fetch_quotes(symbols)

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        return await self._venue.fetch_open_orders(symbols, prefix)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return await self._venue.fetch_order(symbol, client_order_id)

    async def close(self) -> None:
        await self._venue.close()


class ReadOnlyVenue(_Reads):
    """A venue with reads only: no create, cancel, transfer or setup methods exist.

    ``plan``, ``check`` and ``status`` build these, so nothing they run can write to an
    exchange whatever path it takes (fetching funding history is a read and stays).
    """

    read_only = True


class GatedVenue(_Reads):
    """A venue whose every write asks :class:`WriteGate` first.

    Anything else (a sim's test hooks, an adapter's diagnostics) is forwarded, except
    the write methods, which exist here only in their gated form.
    """

    read_only = False

    def __init__(self, venue: Venue, gate: WriteGate) -> None:
        super().__init__(venue)
        self.gate = gate
        if getattr(venue, "transfer", None) is not None:
            self.transfer = self._transfer
        if getattr(venue, "setup_instrument", None) is not None:
            self.setup_instrument = self._setup_instrument

    @property
    def inner(self) -> Venue:
        """The wrapped venue (for tests and diagnostics; the engine never writes to it)."""
        return self._venue

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._venue, name)

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        self.gate.admit_create(self.name, request)
        return await self._venue.submit_order(request)

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        self.gate.admit_cancel(self.name)
        return await self._venue.cancel_order(symbol, client_order_id)

    async def _transfer(self, asset: str, amount: Decimal, source: str, target: str) -> Any:
        self.gate.admit_transfer(self.name)
        return await self._venue.transfer(asset, amount, source, target)  # type: ignore[attr-defined]

    async def _setup_instrument(self, symbol: str, leverage: Any, margin_mode: Any) -> Any:
        self.gate.admit_setup(self.name)
        return await self._venue.setup_instrument(symbol, leverage, margin_mode)  # type: ignore[attr-defined]

