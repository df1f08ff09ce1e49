"""A rate budget that knows the exchange: token buckets that sleep, with writes first.

ccxt's own limiter (``ccxt.async_support.base.throttler``) has three habits that
cost a hedger dearly, measured in issue #15:

* it polls: while a request waits, its loop wakes every millisecond, per bucket
  and per account (about three quarters of an idle daemon's CPU);
* its bucket holds one token: a burst is never allowed, and one heavy request
  (Binance's symbol-less open orders, cost 40) sends every later one into a 2 s
  queue, orders included;
* every request waits in one first-come queue: an order waits behind reads.

:class:`TokenBucket` sleeps exactly until the tokens a request needs are back,
lets a burst up to its capacity through at once, and serves waiting order writes
and cancels before waiting reads. :func:`bucket_specs` sizes the buckets from the
exchange's real limits where they are known (Binance counts weight per minute and
per API family, so a ten-second burst is safe) and from ccxt's ``rateLimit``
elsewhere. ccxt's costs (``calculate_rate_limiter_cost``) are kept: the buckets
are plugged in through ccxt's own hook, ``exchange.throttle``.

A hand-written bucket rather than a library: the well-kept asyncio limiters
(``aiolimiter``) have no priorities and refuse a request larger than the bucket.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["READ", "WRITE", "BucketSpec", "TokenBucket", "bucket_specs"]

#: Priority of order writes and cancels: served before any waiting read.
WRITE = 0
#: Priority of reads.
READ = 1


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """Refill rate (ccxt cost units per second) and burst capacity of one bucket."""

    rate: float
    capacity: float


class TokenBucket:
    """A token bucket whose waiters sleep until their turn (no polling), writes first.

    A request is let through when the bucket holds its cost (a cost above the
    capacity needs a full bucket, and leaves it that much in debt). Waiters are
    served by priority, then in arrival order; a waiter that is cancelled gives
    its place up.
    """

    def __init__(
        self, spec: BucketSpec, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if spec.rate <= 0 or spec.capacity <= 0:
            raise ValueError(f"a token bucket needs a positive rate and capacity: {spec}")
        self.rate = spec.rate
        self.capacity = spec.capacity
        self.clock = clock
        self.tokens = spec.capacity
        self._updated = clock()
        self._waiting: list[tuple[int, int, float, asyncio.Future[None]]] = []
        self._sequence = 0
        self._drainer: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        #: Seconds spent waiting, summed over requests (metrics, benchmarks).
        self.waited = 0.0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _take(self, cost: float) -> bool:
        self._refill()
        if self.tokens >= min(cost, self.capacity):
            self.tokens -= cost
            return True
        return False

    async def acquire(self, cost: float | None = 1.0, priority: int = READ) -> None:
        """Wait until ``cost`` tokens are available and take them."""
        cost = 1.0 if cost is None else float(cost)
        if not self._waiting and self._take(cost):
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._sequence += 1
        heapq.heappush(self._waiting, (priority, self._sequence, cost, future))
        if self._changed is None:
            self._changed = asyncio.Event()
        self._changed.set()  # a write may now go first: the drainer looks again
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        began = self.clock()
        try:
            await future
        finally:
            self.waited += self.clock() - began

    async def _drain(self) -> None:
        assert self._changed is not None
        while self._waiting:
            _, _, cost, future = self._waiting[0]
            if future.done():  # cancelled while waiting
                heapq.heappop(self._waiting)
                continue
            if self._take(cost):
                heapq.heappop(self._waiting)
                future.set_result(None)
                continue
            needed = min(cost, self.capacity) - self.tokens
            self._changed.clear()
            try:
                # Sleep exactly until the head's tokens are back, or until a new waiter
                # (perhaps a write that goes first) arrives.
                await asyncio.wait_for(self._changed.wait(), needed / self.rate)
            except TimeoutError:
                pass

    def __call__(self, cost: float | None = None, priority: int = READ) -> asyncio.Future[None]:
        """ccxt's throttle signature: a future that resolves when the request may go."""
        return asyncio.ensure_future(self.acquire(cost, priority))


# Binance counts request weight per IP per minute and per API family; ccxt's costs
# are weight x 0.2 for spot (6,000 weight/min -> 20 cost/s) and weight x 1 for USDⓈ-M
# and COIN-M futures (2,400 weight/min -> 40 cost/s). A bucket holding 10 s of budget
# and refilling at 50/60 of the limit never passes the per-minute limit:
# 10 s x r' + 60 s x r' = 70 x (50/60) r = 58.3 r < 60 r.
_BURST_SECONDS = 10.0
_PER_MINUTE: dict[str, dict[str, float]] = {
    # exchange id -> family (ccxt API-name prefix, "" = the rest) -> ccxt cost per second
    "binance": {"": 20.0, "sapi": 20.0, "fapi": 40.0, "dapi": 40.0, "papi": 20.0, "eapi": 20.0},
}
_PER_MINUTE["binanceusdm"] = _PER_MINUTE["binance"]
_PER_MINUTE["binancecoinm"] = _PER_MINUTE["binance"]
# Elsewhere limits are mostly per second: half a second of ccxt's rate as the burst.
_GENERIC_BURST_SECONDS = 0.5


def bucket_specs(exchange_id: str, rate_limit_ms: float, families: tuple[str, ...]) -> dict[
    str, BucketSpec
]:
    """The bucket of each rate-limit family ("" = the default) of an exchange."""
    per_minute = _PER_MINUTE.get(exchange_id)
    specs: dict[str, BucketSpec] = {}
    for family in ("", *families):
        if per_minute is not None and family in per_minute:
            limit = per_minute[family]
            rate = limit * (60.0 - _BURST_SECONDS) / 60.0
            specs[family] = BucketSpec(rate, limit * _BURST_SECONDS)
        else:
            rate = 1000.0 / max(rate_limit_ms, 1.0)
            specs[family] = BucketSpec(rate, max(1.0, rate * _GENERIC_BURST_SECONDS))
    return specs
