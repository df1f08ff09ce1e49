"""The :class:`Emulator`: an aiohttp server on 127.0.0.1 plus a test-facing API.

One catch-all route dispatches on ``(method, path)`` to the dialect's handlers,
so the request log, fault injection, maintenance and clock skew are handled in
one place for every endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import ssl
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.emulator import account_ops
from tests.emulator.common import AuthError, Dialect, RequestContext, RequestRecord, Route
from tests.emulator.engine import Engine, FeeSchedule
from tests.emulator.faults import Fault, FaultKind, FaultScript
from tests.emulator.markets import MarketDef, default_markets
from tests.emulator.state import Fill, FundingPayment, Order, Permissions, Position, Rejected
from tests.emulator.streams import BinanceStreams

__all__ = ["Emulator"]

ZERO = Decimal(0)
Number = Decimal | int | float | str


def _dec(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class Emulator:
    """A local Binance (spot + USDⓈ-M) or Bybit v5 exchange for tests.

    ``accounts`` maps API keys to secrets. ``prices`` maps symbols to mid
    prices (``"BTC/USDT"`` moves the spot pair and its perpetual together).
    The server binds ``host`` (127.0.0.1) on ``port`` (0 = a free port); pass
    ``ssl_context`` to serve HTTPS (see :mod:`tests.emulator.tls`).
    """

    def __init__(
        self,
        dialect: str = "binance",
        accounts: Mapping[str, str] | None = None,
        *,
        markets: Iterable[MarketDef] | None = None,
        prices: Mapping[str, Number] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        seed: int = 0,
        spread_bps: Number = "2",
        fees: FeeSchedule | None = None,
    ) -> None:
        self.dialect_name = dialect
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.clock_offset_ms = 0
        self.maintenance = False
        self.requests: list[RequestRecord] = []
        self.faults = FaultScript(seed)
        market_list = list(markets) if markets is not None else default_markets(dialect)
        self._dialect: Dialect
        if dialect == "binance":
            from tests.emulator.binance import BinanceDialect

            self._dialect = BinanceDialect(self)
            default_fees = FeeSchedule()
        elif dialect == "bybit":
            from tests.emulator.bybit import BybitDialect

            self._dialect = BybitDialect(self)
            default_fees = FeeSchedule(
                linear_taker=Decimal("0.00055"), linear_maker=Decimal("0.0002")
            )
        else:
            raise ValueError(f"unknown dialect {dialect!r}")
        self.engine = Engine(
            market_list,
            self._dialect.rules,
            fees or default_fees,
            self.now_ms,
            seed,
            _dec(spread_bps),
        )
        #: Push streams (Binance dialect: see :mod:`tests.emulator.streams`).
        self.streams: BinanceStreams | None = None
        routes = list(self._dialect.routes())
        if dialect == "binance":
            self.streams = BinanceStreams(self)
            routes += self.streams.routes()
        self._routes: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in routes}
        for api_key, secret in (accounts or {}).items():
            self.add_account(api_key, secret)
        for symbol, price in (prices or {}).items():
            self.set_price(symbol, price)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # -- life cycle -------------------------------------------------------------
    async def start(self) -> None:
        """Bind and serve; afterwards ``base_url`` is valid."""
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port actually bound

    async def stop(self) -> None:
        """Stop serving; held responses (accept-then-timeout) are released first."""
        self._stopping.set()
        if self.streams is not None:
            await self.streams.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def now_ms(self) -> int:
        """The emulated server clock: wall clock plus ``clock_offset_ms``."""
        return int(time.time() * 1000) + self.clock_offset_ms

    # -- prices, accounts -----------------------------------------------------------
    def set_price(
        self,
        symbol: str,
        price: Number,
        spread_bps: Number | None = None,
        mark: Number | None = None,
    ) -> None:
        """Set a mid price (resting orders that now cross are filled as maker)."""
        self.engine.set_price(
            symbol,
            _dec(price),
            None if spread_bps is None else _dec(spread_bps),
            None if mark is None else _dec(mark),
        )
        self._changed(prices=True)

    def _changed(self, prices: bool = False) -> None:
        """Push what a change did to the streams (nothing without a running loop)."""
        if self.streams is None or getattr(self, "_runner", None) is None:
            return
        self.streams.changed(prices)

    def quote(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Current (bid, ask) of a unified symbol."""
        return self.engine.quote(self.engine.markets[symbol])

    def add_account(self, api_key: str, secret: str) -> None:
        """Create an empty account."""
        self.engine.add_account(api_key, secret)

    def set_balance(self, api_key: str, asset: str, amount: Number) -> None:
        """Set a spot balance (free); on Bybit this is the unified wallet."""
        self.engine.accounts[api_key].spot_free[asset] = _dec(amount)
        self._changed()

    def set_futures_wallet(self, api_key: str, amount: Number) -> None:
        """Set the USDT futures wallet (Bybit: the unified USDT balance)."""
        acct = self.engine.accounts[api_key]
        if acct.unified:
            acct.spot_free["USDT"] = _dec(amount)
        else:
            acct.futures_wallet = _dec(amount)

    def set_funding_balance(self, api_key: str, asset: str, amount: Number) -> None:
        """Set a funding-wallet balance (Bybit FUND, Binance FUNDING)."""
        self.engine.accounts[api_key].funding[asset] = _dec(amount)

    def set_position(
        self,
        api_key: str,
        symbol: str,
        contracts: Number,
        entry_price: Number | None = None,
        position_side: str = "BOTH",
    ) -> None:
        """Force a position, e.g. one liquidated or traded outside the daemon."""
        account_ops.set_position(
            self.engine,
            self.engine.accounts[api_key],
            self.engine.markets[symbol],
            _dec(contracts),
            None if entry_price is None else _dec(entry_price),
            position_side,
        )
        self._changed()

    def lag_position_reads(self, api_key: str, reads: int) -> None:
        """The next ``reads`` position reads of this key show today's positions (lag)."""
        self.engine.accounts[api_key].lag_positions(reads)

    def set_leverage(self, api_key: str, symbol: str, leverage: int) -> None:
        """Set a symbol's leverage directly."""
        self.engine.accounts[api_key].leverage[symbol] = leverage

    def set_hedge_mode(self, api_key: str, hedged: bool) -> None:
        """Switch hedge (dual-side) mode directly, without the venue's checks."""
        self.engine.accounts[api_key].hedge_mode = hedged

    def set_permissions(self, api_key: str, **flags: bool) -> None:
        """Change key permissions: trade, futures, withdraw, transfer, ip_restricted."""
        acct = self.engine.accounts[api_key]
        acct.permissions = Permissions(**{**acct.permissions.__dict__, **flags})

    # -- funding fees -------------------------------------------------------------
    def settle_funding(
        self, symbol: str, rate: Number, at_ms: int | None = None
    ) -> list[FundingPayment]:
        """Settle funding fees of a perpetual (``"BTC/USDT:USDT"``) at its mark price.

        Every account with a non-zero position (hedge-mode sides separately)
        gets its futures wallet changed by ``-size * mark * rate`` (a long pays
        a positive rate, a short receives it), rounded to 8 decimals, and a
        :class:`FundingPayment` stamped ``at_ms`` (default: now). The market's
        funding rate becomes ``rate`` (Binance ``premiumIndex.lastFundingRate``,
        Bybit ``tickers.fundingRate``). Returns the payments booked.
        """
        return self.engine.settle_funding(symbol, _dec(rate), at_ms)

    def funding_rate(self, symbol: str) -> Decimal:
        """A perpetual's current funding rate (0.0001 until the first settlement)."""
        return self.engine.funding_rate(symbol)

    # -- inspection -----------------------------------------------------------------
    def position(self, api_key: str, symbol: str, position_side: str = "BOTH") -> Position:
        """A copy of a position (flat when none)."""
        return copy.copy(self.engine.accounts[api_key].position(symbol, position_side))

    def balances(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        """Spot balances as ``asset -> (free, locked)``."""
        acct = self.engine.accounts[api_key]
        assets = set(acct.spot_free) | set(acct.spot_locked)
        return {a: (acct.spot_free.get(a, ZERO), acct.spot_locked.get(a, ZERO)) for a in assets}

    def futures_wallet(self, api_key: str) -> Decimal:
        """USDT futures wallet balance (before unrealized PnL)."""
        return self.engine.accounts[api_key].collateral()

    def orders(self, api_key: str) -> list[Order]:
        """Every order the emulator accepted for a key, oldest first (copies)."""
        return [copy.copy(o) for o in self.engine.accounts[api_key].orders]

    def open_orders(self, api_key: str) -> list[Order]:
        """Working orders of a key (copies)."""
        return [copy.copy(o) for o in self.engine.accounts[api_key].open_orders()]

    def order(self, api_key: str, client_id: str) -> Order | None:
        """The latest order with this client id, or ``None``."""
        for order in reversed(self.engine.accounts[api_key].orders):
            if order.client_id == client_id:
                return copy.copy(order)
        return None

    def fills(self, api_key: str, symbol: str | None = None) -> list[Fill]:
        """Executions of a key, optionally for one symbol."""
        return [
            copy.copy(f)
            for f in self.engine.accounts[api_key].fills
            if symbol is None or f.symbol == symbol
        ]

    def funding_payments(self, api_key: str, symbol: str | None = None) -> list[FundingPayment]:
        """Funding payments booked on a key, optionally for one perpetual, oldest first."""
        return self.engine.accounts[api_key].funding_payments_between(symbol, None, None)

    def private_writes(self) -> list[RequestRecord]:
        """Logged private requests that change state (orders, settings, transfers)."""
        return [r for r in self.requests if r.private and r.write]

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.requests.clear()

    # -- request handling -------------------------------------------------------------
    async def _hold(self, seconds: float) -> None:
        """Sleep, but wake early when the emulator stops."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self.streams is not None and self.streams.is_stream(request):
            return await self.streams.serve(request)
        body = await request.text()
        route = self._routes.get((request.method, request.path))
        try:
            params = self._dialect.parse_params(request, body)
        except (ValueError, json.JSONDecodeError):
            params = {}
        private = route.private if route else False
        record = RequestRecord(
            request.method,
            request.path,
            params,
            private,
            private and self._dialect.is_write(request.method, request.path),
            request.headers.get("X-MBX-APIKEY") or request.headers.get("X-BAPI-API-KEY"),
            self.now_ms(),
        )
        self.requests.append(record)
        if self.maintenance:  # checked first so that queued faults are not used up
            closed = self._dialect.maintenance()
            record.status = closed.status
            return closed
        faults = self.faults.take(request.method, request.path)
        record.faults = tuple(f.kind.value for f in faults)
        delay = sum(f.seconds for f in faults if f.kind is FaultKind.LATENCY)
        if delay:
            await self._hold(delay)
        response = await self._respond(request, route, params, body, faults)
        if response is None:
            if request.transport is not None:
                request.transport.abort()  # a reset, not a response
            return web.Response(status=204)
        record.status = response.status
        record.error_code = _error_code(response)
        if record.write and self.streams is not None:
            await self.streams.publish()  # before the reply, as Binance often does
        return response

    async def _respond(
        self,
        request: web.Request,
        route: Route | None,
        params: dict[str, Any],
        body: str,
        faults: list[Fault],
    ) -> web.Response | None:
        for fault in faults:
            if fault.kind is FaultKind.DISCONNECT and not fault.after_apply:
                return None
            if fault.kind.short_circuits:
                return self._dialect.fault_response(fault, self.now_ms())
        if route is None:
            return self._dialect.not_found()
        ctx = RequestContext(request, params, self.engine, self.now_ms())
        if route.private:
            try:
                ctx.account = self._dialect.authenticate(
                    request, body, ctx.now_ms, self.engine.accounts
                )
            except AuthError as exc:
                return exc.response
        for fault in faults:
            if fault.kind is FaultKind.PARTIAL_FILL:
                ctx.fill_fraction = fault.fraction
        try:
            response = await route.handler(ctx)
        except Rejected as exc:
            response = self._dialect.reject(exc, ctx)
        for fault in faults:
            if fault.kind is FaultKind.DISCONNECT and fault.after_apply:
                return None
            if fault.kind is FaultKind.BACKEND_TIMEOUT:
                return self._dialect.fault_response(fault, self.now_ms())
            if fault.kind is FaultKind.ACCEPT_THEN_TIMEOUT:
                await self._hold(fault.seconds)
        return response


def _error_code(response: web.Response) -> str | None:
    """The venue error code in a JSON answer (Binance ``code`` < 0, Bybit ``retCode`` != 0)."""
    try:
        payload = json.loads(response.text or "")
    except (ValueError, TypeError):
        return None if response.status < 400 else str(response.status)
    if not isinstance(payload, dict):
        return None
    if "retCode" in payload:
        return None if payload["retCode"] == 0 else str(payload["retCode"])
    code = payload.get("code")
    if isinstance(code, int) and code < 0:
        return str(code)
    return None
