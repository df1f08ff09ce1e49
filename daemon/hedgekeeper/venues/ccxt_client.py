"""A ccxt exchange built and guarded for hedgekeeper: the plumbing under ``CcxtVenue``.

It owns the ccxt object and everything between it and the network: options,
test environment, ``api_host``, the injected session, the request counter, the
read-only guard, and the one place ccxt failures are translated. ccxt is
imported when a client is built, never at module import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hedgekeeper.exceptions import (
    HedgekeeperError,
    RetryableReadError,
    VenueConfigError,
    VenueError,
    WriteForbiddenError,
)
from hedgekeeper.venues import ccxt_params
from hedgekeeper.venues.ccxt_errors import Operation, translate
from hedgekeeper.venues.ccxt_normalize import PARSE_ERRORS
from hedgekeeper.venues.ccxt_params import Environment
from hedgekeeper.venues.market_cache import MarketCache
from hedgekeeper.venues.ratelimit import READ, WRITE, TokenBucket, bucket_specs

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CcxtClient"]

T = TypeVar("T")

# Raw HTTP replies of the ccxt call running in this task, while someone collects them.
_replies: ContextVar[list[Any] | None] = ContextVar("ccxt_replies", default=None)
#: The rate-limit family of the ccxt request being sent (see ``rate_limit_split``).
_family: ContextVar[str] = ContextVar("ccxt_rate_family", default="")
#: The rate-limit priority of the ccxt request being sent (order writes first).
_priority: ContextVar[int] = ContextVar("ccxt_rate_priority", default=READ)


class CcxtClient:
    """One configured ccxt exchange (see :class:`~.ccxt_venue.CcxtVenue` for the arguments)."""

    def __init__(
        self,
        name: str,
        exchange_id: str,
        *,
        api_key: str | None,
        secret: str | None,
        password: str | None,
        environment: Environment,
        read_only: bool,
        api_host: str | None,
        market_types: Iterable[str],
        options: Mapping[str, Any] | None,
        session: aiohttp.ClientSession | None,
        timeout_ms: int,
        rate_limit: bool = True,
        streams: bool = False,
        market_cache: Path | None = None,
    ) -> None:
        import ccxt as ccxt_errors  # every ccxt error class is exported at the top level
        import ccxt.async_support as ccxt_async

        #: Whether the exchange object has ccxt.pro's watch_* methods.
        self.streams = False
        if streams:
            import ccxt.pro as ccxt_pro

            self.streams = exchange_id in getattr(ccxt_pro, "exchanges", [])
        if self.streams:
            # ccxt.pro's classes are the async ones plus watch_* methods: one object, one
            # set of markets, the same guards and rate budget for REST and streams.
            ccxt_async = ccxt_pro

        if exchange_id not in getattr(ccxt_async, "exchanges", []):
            raise VenueConfigError(f"{name}: ccxt has no exchange {exchange_id!r}")
        self.name = name
        self.exchange_id = exchange_id
        self.read_only = read_only
        self.market_types = tuple(market_types)
        #: HTTP requests sent so far (benchmarks count requests per cycle).
        self.request_count = 0
        self.errors: Any = ccxt_errors
        self._secrets = (api_key, secret, password)
        self._session_injected = session is not None
        config: dict[str, Any] = {
            # ccxt's client-side limiter spaces requests by the exchange's weights; only
            # a local test exchange may turn it off (account setting rate_limit).
            "enableRateLimit": rate_limit,
            "timeout": timeout_ms,
            "options": ccxt_params.base_options(exchange_id, self.market_types, options or {}),
        }
        for key, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
            if value:
                config[key] = value
        if session is not None:
            config["session"] = session  # ccxt then never closes it (own_session is False)
        exchange: Any = getattr(ccxt_async, exchange_id)(config)
        exchange.has["fetchCurrencies"] = False  # load_markets asks `has`, not the option
        ccxt_params.enter_environment(exchange, exchange_id, environment)
        if api_host is not None:  # after the switch: sandbox/demo replace urls['api']
            exchange.urls["api"] = ccxt_params.replace_api_host(exchange.urls["api"], api_host)
        #: ccxt's own HTTP call; tests may replace it to capture or fake requests.
        self.transport: Callable[..., Awaitable[Any]] = exchange.fetch
        exchange.fetch = self._counted_fetch
        self._fetch2: Callable[..., Awaitable[Any]] = exchange.fetch2
        exchange.fetch2 = self._guarded_fetch2
        self.exchange: Any = exchange
        #: Markets cached on disk (``market_cache`` is a directory), see :mod:`.market_cache`.
        self.market_cache = None if market_cache is None else MarketCache(
            market_cache, (exchange_id, environment, repr(exchange.urls.get("api")),
                           ",".join(sorted(self.market_types)))
        )  # fmt: skip
        self._refresh: asyncio.Task[None] | None = None
        self._split = ccxt_params.profile_for(exchange_id).rate_limit_split
        #: One token bucket per rate-limit family ("" = the rest); see :mod:`.ratelimit`.
        self.buckets: dict[str, TokenBucket] = {}
        if rate_limit:
            specs = bucket_specs(exchange_id, float(exchange.rateLimit), self._split)
            self.buckets = {family: TokenBucket(spec) for family, spec in specs.items()}
            # ccxt's own hook: its costs, our buckets (ccxt's limiter polls every ms).
            exchange.throttle = self._throttle

    def _throttle(self, cost: Any = None) -> Any:
        """ccxt's throttle: wait in the bucket of the request's family, by its priority."""
        return self.buckets[_family.get()].acquire(cost, _priority.get())

    def _family_of(self, api: Any) -> str:
        name = str(api[0] if isinstance(api, list | tuple) and api else api or "")
        return next((prefix for prefix in self._split if name.startswith(prefix)), "")

    async def _counted_fetch(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        self.request_count += 1
        reply = await self.transport(url, method, headers, body)
        replies = _replies.get()
        if replies is not None:
            replies.append(reply)
        return reply

    async def _guarded_fetch2(
        self,
        path: str,
        api: Any = None,
        method: str = "GET",
        params: Any = None,
        config: Any = None,
    ) -> Any:
        # Last line of the dry-run guard: whichever ccxt method got here, a private
        # write never leaves the process.
        if self.read_only and ccxt_params.is_private_write(self.exchange_id, api, method, path):
            raise WriteForbiddenError(f"{self.name}: read-only, refused {method} {path}")
        if isinstance(params, dict):
            # ccxt puts `orderId: None` in look-ups by client id (Bybit, BingX): never send it.
            params = {key: value for key, value in params.items() if value is not None}
        write = ccxt_params.is_private_write(self.exchange_id, api, method, path)
        token = _family.set(self._family_of(api))
        rank = _priority.set(WRITE if write else READ)
        try:
            return await self._fetch2(path, api or ["public"], method, params or {}, config or {})
        finally:
            _priority.reset(rank)
            _family.reset(token)

    @contextmanager
    def collect_replies(self) -> Iterator[list[Any]]:
        """Collect the raw JSON replies of the ccxt calls made inside the block."""
        replies: list[Any] = []
        token = _replies.set(replies)
        try:
            yield replies
        finally:
            _replies.reset(token)

    def forbid_writes(self, action: str) -> None:
        """Refuse a private write in read-only (dry-run) mode, before any request."""
        if self.read_only:
            raise WriteForbiddenError(f"{self.name}: read-only (dry-run), refused {action}")

    async def call(self, operation: Operation, action: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one ccxt call, translating its failures once (the ccxt error is ``__cause__``)."""
        try:
            return await call()
        except HedgekeeperError:
            raise
        except self.errors.BaseError as exc:
            translated = self.translate(exc, operation, action)
            if isinstance(exc, self.errors.DDoSProtection | self.errors.RateLimitExceeded):
                translated.retry_after = self._retry_after()
            raise translated from exc
        except PARSE_ERRORS as exc:  # ccxt could not parse a reply: the request was sent
            bad = self.errors.BadResponse(f"{type(exc).__name__}: {exc}")
            raise self.translate(bad, operation, action) from exc

    def read(self, action: str, call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """:meth:`call` for a read."""
        return self.call(Operation.READ, action, call)

    def _retry_after(self) -> float | None:
        """Seconds from the last reply's ``Retry-After`` header, if it had one."""
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for name, value in headers.items():
            if str(name).lower() == "retry-after":
                try:
                    return max(0.0, float(value))
                except (TypeError, ValueError):
                    return None
        return None

    def translate(self, exc: BaseException, operation: Operation, action: str) -> VenueError:
        """The hedgekeeper exception for a ccxt one (credentials redacted)."""
        return translate(
            exc,
            venue=self.name,
            exchange_id=self.exchange_id,
            operation=operation,
            action=action,
            secrets=self._secrets,
        )

    def parse(self, action: str, convert: Callable[..., T], *args: Any) -> T:
        """Apply a conversion; an unusable reply is a failed read, never a zero."""
        try:
            return convert(*args)
        except PARSE_ERRORS as exc:
            raise RetryableReadError(f"{self.name}: {action}: unusable reply: {exc}") from exc

    async def load_markets(self) -> Any:
        """The markets: from a fresh disk cache at once (reloaded behind), else read."""
        cached = self.market_cache.load() if self.market_cache is not None else None
        if cached is None:
            markets = await self.read("load_markets", self.exchange.load_markets)
            if self.market_cache is not None:
                self.market_cache.save(markets)
            return markets
        self.exchange.set_markets(cached)
        self._refresh = asyncio.ensure_future(self._reload_markets())
        return self.exchange.markets

    async def _reload_markets(self) -> None:
        assert self.market_cache is not None
        try:
            markets = await self.read("load_markets", lambda: self.exchange.load_markets(True))
        except HedgekeeperError:
            return  # the cached list stays in use; the next start reads again
        self.market_cache.save(markets)

    async def market(self, symbol: str) -> Any:
        """ccxt's market of a symbol, loading markets first if needed."""
        if not self.exchange.markets:
            await self.read("load_markets", self.exchange.load_markets)
        try:
            return self.exchange.market(symbol)
        except self.errors.BaseError as exc:
            raise self.translate(exc, Operation.READ, f"market {symbol}") from exc

    async def group(self, symbols: Iterable[str]) -> dict[tuple[str, str], list[str]]:
        """Symbols by (type, subType): ccxt batches only within one market type."""
        groups: dict[tuple[str, str], list[str]] = {}
        for symbol in dict.fromkeys(symbols):
            market = await self.market(symbol)
            sub = "linear" if market.get("linear") else "inverse" if market.get("inverse") else ""
            groups.setdefault((str(market["type"]), sub), []).append(symbol)
        return groups

    async def close(self) -> None:
        """Close the ccxt exchange; an injected session stays open (its owner closes it)."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        if self._session_injected or self.exchange.session is None:
            self.exchange.timeout_on_exit = 0  # ccxt waits 250 ms for its own connector only
        await self.exchange.close()
