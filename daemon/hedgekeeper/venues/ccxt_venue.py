"""Any ccxt exchange behind the :class:`~hedgekeeper.venues.base.Venue` port.

ccxt is imported when a :class:`CcxtVenue` is built, never at module import, so
the daemon does not touch ccxt when no ccxt venue is configured. The guarded
ccxt object lives in :mod:`.ccxt_client`, exchange differences in
:mod:`.ccxt_params`, error translation in :mod:`.ccxt_errors`, conversions in
:mod:`.ccxt_normalize`; this module is the venue's behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hedgekeeper.exceptions import (
    RetryableReadError,
    UnknownOutcomeError,
    VenueConfigError,
    VenueError,
)
from hedgekeeper.funding import split_window
from hedgekeeper.model import (
    STABLECOINS,
    Balances,
    FundingPayment,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
)
from hedgekeeper.venues import ccxt_normalize as norm
from hedgekeeper.venues import ccxt_params
from hedgekeeper.venues.base import to_decimal
from hedgekeeper.venues.ccxt_client import CcxtClient
from hedgekeeper.venues.ccxt_errors import Operation, is_no_change, is_order_not_found
from hedgekeeper.venues.ccxt_normalize import PARSE_ERRORS, KeyPermissions
from hedgekeeper.venues.ccxt_params import Environment, LookupMethod, MarginScope
from hedgekeeper.venues.ccxt_streams import CcxtStreams

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CcxtVenue", "KeyPermissions"]


class CcxtVenue:
    """One account at one ccxt exchange.

    ``environment`` enters the exchange's test or demo environment (see
    :func:`.ccxt_params.enter_environment`); ``api_host`` then replaces scheme
    and host of every API URL (tests, emulator). ``read_only`` refuses every
    private write before any request. ``hedge_mode`` is the position mode to
    *enforce* in :meth:`setup_instrument`; left ``None`` the mode is only read.
    ``market_types`` limits which markets are loaded; ``options`` are ccxt
    options merged over the adapter's; ``session`` is used for HTTP and left
    open. ``request_count`` counts HTTP requests; ``transport`` is ccxt's own
    HTTP call, which tests may replace.
    """

    def __init__(
        self,
        name: str,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        environment: Environment = "live",
        read_only: bool = False,
        api_host: str | None = None,
        market_types: Iterable[str] = ("spot", "linear"),
        options: Mapping[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_ms: int = 10000,
        hedge_mode: bool | None = None,
        rate_limit: bool = True,
        streams: bool = False,
        market_cache: Path | None = None,
    ) -> None:
        self.name = name
        self.exchange_id = exchange_id
        self._client = CcxtClient(
            name,
            exchange_id,
            api_key=api_key,
            secret=secret,
            password=password,
            environment=environment,
            read_only=read_only,
            api_host=api_host,
            market_types=market_types,
            options=options,
            session=session,
            timeout_ms=timeout_ms,
            rate_limit=rate_limit,
            streams=streams,
            market_cache=market_cache,
        )
        #: The ccxt exchange object (async_support, or ccxt.pro with ``streams``).
        self.exchange: Any = self._client.exchange
        #: Push-stream watchers where ccxt.pro has the exchange and streams were asked for.
        self.streams = CcxtStreams(self._client) if self._client.streams else None
        self._hedge_mode = hedge_mode
        # symbol (or "*linear"/"*inverse" where account-wide) -> hedge (dual) mode, read once
        self._hedged: dict[str, bool] = {}
        self._mode_reads: dict[str, asyncio.Future[bool]] = {}
        self._margin_modes: dict[str, str] = {}
        self._leverages: dict[str, int] = {}

    @property
    def has_credentials(self) -> bool:
        """Whether an API key is configured (without one only public data can be read)."""
        return bool(self.exchange.apiKey)

    @property
    def read_only(self) -> bool:
        """Whether private writes are refused (dry-run)."""
        return self._client.read_only

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far."""
        return self._client.request_count

    @property
    def transport(self) -> Callable[..., Awaitable[Any]]:
        """ccxt's own HTTP call (``exchange.fetch`` before the counter wrapped it)."""
        return self._client.transport

    @transport.setter
    def transport(self, fetch: Callable[..., Awaitable[Any]]) -> None:
        self._client.transport = fetch

    @property
    def supports_spot_orders(self) -> bool:
        """Whether ``realize`` may sell spot here: the Binance dialect only so far (the one
        tested end to end against the emulator); other exchanges are refused up front."""
        return self.exchange_id == "binance"

    # -- reads ------------------------------------------------------------------

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        """Load the configured market types once (no currencies); unknown symbols are absent."""
        markets = await self._client.load_markets()
        mode = int(self.exchange.precisionMode)
        unit = ccxt_params.profile_for(self.exchange_id).amount_unit
        specs = {s: norm.market_spec(markets[s], mode, unit) for s in symbols if s in markets}
        found = {symbol: spec for symbol, spec in specs.items() if spec is not None}
        if (
            ccxt_params.reduce_only_exempt_from_min_notional(self.exchange_id)
            and self.has_credentials
        ):
            # Binance skips MIN_NOTIONAL for reduce-only orders, but hedge mode takes no
            # reduceOnly flag: the exemption holds in one-way mode only.
            for symbol, spec in found.items():
                if spec.kind is MarketKind.LINEAR and not await self._is_hedged(markets[symbol]):
                    found[symbol] = replace(spec, reduce_only_below_min_notional=True)
        return found

    async def list_contracts(self, family: str) -> dict[str, MarketSpec]:
        """Every listed dated contract of ``family`` (``BTC/USDT:USDT``), for aliases and rolls."""
        markets = await self._client.read("load_markets", self.exchange.load_markets)
        symbols = [
            s
            for s, m in markets.items()
            if s.startswith(f"{family}-") and m.get("expiry") and not m.get("option")
        ]
        return await self.load_markets(symbols)

    async def fetch_balances(self) -> Balances:
        """Spot (or unified-account) holdings: asset -> total (free + used); zeros omitted."""
        params = ccxt_params.balance_params(self.exchange_id, self._client.market_types)
        with self._client.collect_replies() as replies:
            balance = await self._client.read(
                "fetch_balance", lambda: self.exchange.fetch_balance(params)
            )
        # ccxt reads a reply without its balances list as "nothing held": check first.
        last = replies[-1] if replies else None
        self._client.parse("fetch_balance", norm.check_balance_reply, self.exchange_id, last)
        return self._client.parse("fetch_balance", norm.balances, balance)

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        """Signed contracts per contract symbol (0 when flat); one request per market type."""
        result: dict[str, Position] = {}
        for (kind, sub_type), group in (await self._client.group(symbols)).items():
            if kind == "spot":
                continue  # spot symbols have no positions
            # ccxt does not infer linear/inverse from the symbols (Binance: fapi or dapi).
            profile = ccxt_params.profile_for(self.exchange_id)
            params: dict[str, Any] = {"subType": sub_type} if profile.positions_sub_type else {}
            wanted: list[str] | None = list(group)
            settles = {(await self._client.market(sym)).get("settle") for sym in group}
            if self.exchange_id == "bybit" and len(group) > 1 and len(settles) == 1:
                # Bybit takes one symbol or a whole settle coin: one request for all of them.
                params["settleCoin"], wanted = settles.pop(), None
            fetch = partial(self.exchange.fetch_positions, wanted, params)
            with self._client.collect_replies() as replies:
                raw = await self._client.read("fetch_positions", fetch)
            # ccxt reads a malformed reply as "no positions": check the exchange's own JSON.
            last = replies[-1] if replies else None
            self._client.parse(
                "fetch_positions", norm.check_positions_reply, self.exchange_id, last
            )
            usd = [s for s in group if (await self._client.market(s)).get("settle") in STABLECOINS]
            result.update(
                self._client.parse(
                    "fetch_positions", norm.positions, group, raw, usd, profile.amount_unit
                )
            )
        return result

    async def fetch_margin(self, symbol: str) -> Position:
        """Margin ratio and liquidation price of one position (from the positions call)."""
        return (await self.fetch_positions([symbol]))[symbol]

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        """Bid/ask/last/mark, one batch per market type; symbols without data are absent."""
        groups = await self._client.group(symbols)
        cap = ccxt_params.profile_for(self.exchange_id).spot_symbols_per_request
        batches = [
            (kind, group[start : start + cap] if kind == "spot" and cap else group)
            for (kind, _), group in groups.items()
            for start in (range(0, len(group), cap) if kind == "spot" and cap else (0,))
        ]  # spot symbols travel in the URL: long lists go in several requests
        parts = await asyncio.gather(*(self._quotes(kind, batch) for kind, batch in batches))
        return {symbol: quote for part in parts for symbol, quote in part.items()}

    async def _quotes(self, kind: str, symbols: list[str]) -> dict[str, Quote]:
        profile = ccxt_params.profile_for(self.exchange_id)
        if kind != "spot" and profile.contract_quotes == "mark-and-book":
            # Binance futures 24h tickers carry neither bid/ask nor mark: two light calls.
            marks, books = await asyncio.gather(
                self._client.read(
                    "fetch_mark_prices", partial(self.exchange.fetch_mark_prices, symbols)
                ),
                self._client.read(
                    "fetch_bids_asks", partial(self.exchange.fetch_bids_asks, symbols)
                ),
            )
        elif kind == "spot" and profile.spot_quotes == "book":
            books = await self._client.read(
                "fetch_bids_asks", partial(self.exchange.fetch_bids_asks, symbols)
            )
            marks = {}
        else:
            books = await self._client.read(
                "fetch_tickers", partial(self.exchange.fetch_tickers, symbols)
            )
            marks = books
        return self._client.parse("fetch_quotes", norm.quotes, symbols, books, marks)

    async def fetch_closes(
        self, symbol: str, timeframe: str, limit: int
    ) -> list[tuple[int, Decimal]]:
        """The latest ``limit`` bars' closes through ``fetch_ohlcv`` (one request)."""
        fetch = partial(self.exchange.fetch_ohlcv, symbol, timeframe, None, limit)
        raw = await self._client.read("fetch_ohlcv", fetch)
        return self._client.parse("fetch_ohlcv", _closes, raw)

    async def fetch_funding(
        self, symbols: Iterable[str], since: float, until: float
    ) -> list[FundingPayment]:
        """Funding paid or received by the contract ``symbols`` in ``[since, until]``.

        One request per market type and time window (the exchange bounds both the
        range and the page): a full page is split in two and read again, so nothing
        is cut off whatever the exchange's paging. Amounts are balance changes.
        """
        profile = ccxt_params.profile_for(self.exchange_id)
        span_ms = profile.funding_window_days * 86_400_000
        out: dict[str, FundingPayment] = {}
        for (kind, sub_type), group in (await self._client.group(symbols)).items():
            if kind in ("spot", "future"):
                continue  # dated futures pay no funding
            wanted = frozenset(group)
            windows = split_window(int(since * 1000), int(until * 1000), span_ms)
            while windows:
                start, end = windows.pop()
                params: dict[str, Any] = {"type": "swap", "subType": sub_type, "until": end}
                if profile.funding_limit_param:
                    params[profile.funding_limit_param] = profile.funding_page
                fetch = partial(
                    self.exchange.fetch_funding_history, None, start, profile.funding_page, params
                )
                raw = await self._client.read("fetch_funding_history", fetch)
                if isinstance(raw, list) and len(raw) >= profile.funding_page and end > start:
                    middle = (start + end) // 2  # a full page may hide more: read halves
                    windows += [(start, middle), (middle + 1, end)]
                    continue
                parsed = self._client.parse(
                    "fetch_funding_history", norm.funding_payments, raw, wanted,
                    profile.funding_field,
                )  # fmt: skip
                out.update((p.id, p) for p in parsed if since <= p.timestamp <= until)
        return sorted(out.values(), key=lambda p: (p.timestamp, p.id))

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        """Our working orders (client id starts with ``prefix``).

        Per symbol, concurrently, while that is cheaper than one request for the whole
        market type (``open_orders_per_symbol`` of the exchange profile: Binance
        weighs a symbol-less read as 40 per-symbol ones on USDⓈ-M); else one request
        per market type.
        """
        per_symbol = ccxt_params.profile_for(self.exchange_id).open_orders_per_symbol
        reads: list[Awaitable[list[OrderInfo]]] = []
        for (kind, sub_type), group in (await self._client.group(symbols)).items():
            if len(group) <= per_symbol:
                reads += [self._open_orders(symbol, {}, [symbol], prefix) for symbol in group]
                continue
            params: dict[str, Any] = {"type": kind, **({"subType": sub_type} if sub_type else {})}
            if self.exchange_id == "bybit":  # Bybit needs a settle coin without a symbol
                params["settleCoin"] = (await self._client.market(group[0]))["settle"]
            reads.append(self._open_orders(None, params, group, prefix))
        return [order for part in await asyncio.gather(*reads) for order in part]

    async def _open_orders(self, symbol: str | None, params: dict[str, Any], group: list[str],
                           prefix: str) -> list[OrderInfo]:  # fmt: skip
        fetch = partial(self.exchange.fetch_open_orders, symbol, None, None, params)
        raw = await self._client.read("fetch_open_orders", fetch)
        return self._client.parse("fetch_open_orders", norm.orders_with_prefix, raw, prefix, group)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        """Look an order up by client id; ``None`` when the venue says it does not exist."""
        market = await self._client.market(symbol)
        order = await self._lookup(market, client_order_id)
        if order is None:
            return None
        return self._client.parse("fetch_order", norm.order_info, order)

    async def _lookup(self, market: Mapping[str, Any], client_order_id: str) -> Any:
        profile = ccxt_params.profile_for(self.exchange_id)
        symbol, spot = str(market["symbol"]), bool(market.get("spot"))
        action = f"fetch_order {symbol} {client_order_id}"
        params = ccxt_params.lookup_params(
            self.exchange_id, client_order_id, spot=spot, action="fetch"
        )

        async def fetch() -> Any:
            if profile.lookup is LookupMethod.MEXC_EXTERNAL and not spot:
                reply = await self.exchange.contractPrivateGetOrderExternalSymbolExternalOid(
                    {"symbol": market["id"], **params}
                )
                if not reply.get("data"):
                    raise self._client.errors.OrderNotFound(f"mexc {client_order_id} not found")
                return self.exchange.parse_order(reply["data"], market)
            return await self.exchange.fetch_order(None, symbol, params)

        if profile.lookup is LookupMethod.SCAN and not spot:
            return await self._scan(symbol, client_order_id, action)
        try:
            return await self._client.read(action, fetch)
        except RetryableReadError as exc:
            if exc.__cause__ is None or not is_order_not_found(exc.__cause__, self.exchange_id):
                raise
        if not profile.lookup_history_fallback:
            return None
        # Bybit's realtime endpoint forgets older closed orders: ask the history too.
        closed = partial(
            self.exchange.fetch_canceled_and_closed_orders,
            symbol,
            None,
            None,
            {"orderLinkId": client_order_id},
        )
        history = await self._client.read(action, closed)
        return history[0] if history else None

    async def _scan(self, symbol: str, client_order_id: str, action: str) -> Any:
        """Find an order by client id in the open orders, then in the order history."""
        for method in (
            self.exchange.fetch_open_orders,
            self.exchange.fetch_canceled_and_closed_orders,
        ):
            raw = await self._client.read(action, partial(method, symbol))
            if not isinstance(raw, list):
                raise RetryableReadError(f"{self.name}: {action}: orders reply is not a list")
            for order in raw:
                if order.get("clientOrderId") == client_order_id:
                    return order
        return None

    async def fetch_key_permissions(self) -> KeyPermissions | None:
        """Trading / withdrawal permissions of the API key; ``None`` where unknown."""
        try:
            if self.exchange_id.startswith("binance"):
                raw = await self._client.read(
                    "apiRestrictions", self.exchange.sapiGetAccountApiRestrictions
                )
                return self._client.parse("apiRestrictions", norm.binance_key_permissions, raw)
            if self.exchange_id == "bybit":
                reply = await self._client.read("query-api", self.exchange.privateGetV5UserQueryApi)
                return self._client.parse("query-api", norm.bybit_key_permissions, reply)
        except VenueConfigError:
            return None  # e.g. Binance demo trading has no sapi endpoints
        return None

    async def _is_hedged(self, market: Mapping[str, Any]) -> bool:
        """Hedge (dual) position mode of a contract market: read once, never changed here.

        Where the mode is an account setting (Binance: one per futures API, cost 30
        a read) it is read once per account and contract type, not per symbol;
        concurrent askers share the one read.
        """
        symbol = str(market["symbol"])
        if self._hedge_mode is not None:
            return self._hedge_mode  # enforced by setup_instrument
        key = symbol
        if ccxt_params.profile_for(self.exchange_id).position_mode_per_account:
            key = "*linear" if market.get("linear") else "*inverse"
        if key not in self._hedged:
            task = self._mode_reads.get(key)
            if task is None:
                task = asyncio.ensure_future(self._read_position_mode(symbol))
                self._mode_reads[key] = task
            try:
                self._hedged[key] = await asyncio.shield(task)
            finally:
                if task.done():
                    self._mode_reads.pop(key, None)
        return self._hedged[key]

    async def _read_position_mode(self, symbol: str) -> bool:
        if self.exchange.has.get("fetchPositionMode"):
            mode = await self._client.read(
                "fetch_position_mode", partial(self.exchange.fetch_position_mode, symbol)
            )
            return bool(mode.get("hedged"))
        if ccxt_params.profile_for(self.exchange_id).position_mode_from_positions:
            raw = await self._client.read(
                "fetch_positions", partial(self.exchange.fetch_positions, [symbol])
            )
            return self._client.parse("position mode", norm.bybit_hedged, raw)
        return False  # no way to ask: ccxt's default, one-way

    # -- writes -----------------------------------------------------------------

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        """Send an order under its client id.

        Raises ``UnknownOutcomeError`` when it may have reached the venue,
        ``OrderRejectedError`` when refused, and ``RetryableReadError`` when the
        position mode could not be read first (then nothing was sent).
        """
        self._client.forbid_writes(f"create_order {request.client_order_id}")
        market = await self._client.market(request.symbol)
        spot = bool(market.get("spot"))
        params = ccxt_params.order_params(
            self.exchange_id,
            request,
            spot=spot,
            hedged=False if spot else await self._is_hedged(market),
            margin_mode=self._margin_modes.get(request.symbol),
            leverage=self._leverages.get(request.symbol),
        )
        price = float(request.price) if request.price is not None else None
        order = await self._client.call(
            Operation.ORDER,
            f"create_order {request.symbol} {request.client_order_id}",
            lambda: self.exchange.create_order(
                request.symbol,
                request.order_type.value,
                request.side.value,
                float(request.amount),
                price,
                params,
            ),
        )
        try:
            # Accepted; venues that acknowledge with ids only leave it working (OPEN).
            return norm.order_info(order, fallback=request, default_status=OrderStatus.OPEN)
        except PARSE_ERRORS as exc:
            raise UnknownOutcomeError(f"{self.name}: create_order reply unusable: {exc}") from exc

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        """Cancel by client id; the final state, or ``None`` when the venue has no such order."""
        self._client.forbid_writes(f"cancel_order {client_order_id}")
        market = await self._client.market(symbol)
        spot = bool(market.get("spot"))
        params = ccxt_params.lookup_params(
            self.exchange_id, client_order_id, spot=spot, action="cancel"
        )

        async def cancel() -> Any:
            profile = ccxt_params.profile_for(self.exchange_id)
            if profile.lookup is LookupMethod.MEXC_EXTERNAL and not spot:
                return await self.exchange.contractPrivatePostOrderCancelWithExternal(
                    {"symbol": market["id"], **params}
                )
            return await self.exchange.cancel_order(None, symbol, params)

        try:
            order = await self._client.call(
                Operation.ORDER, f"cancel_order {symbol} {client_order_id}", cancel
            )
        except VenueError as exc:
            if exc.__cause__ is None or not is_order_not_found(exc.__cause__, self.exchange_id):
                raise
            # "Unknown order" also means "already filled or canceled": ask for the final state.
            return await self.fetch_order(symbol, client_order_id)
        try:
            return norm.order_info(order, default_status=OrderStatus.CANCELED)
        except PARSE_ERRORS:
            pass  # acknowledged with ids only (Bybit, OKX, MEXC): read the final state
        try:
            return await self.fetch_order(symbol, client_order_id)
        except RetryableReadError as exc:
            raise UnknownOutcomeError(
                f"{self.name}: cancel_order {client_order_id} acknowledged, final state unknown"
            ) from exc

    async def setup_instrument(
        self, symbol: str, leverage: int | None, margin_mode: Literal["cross", "isolated"] | None
    ) -> None:
        """Apply the position mode (only if ``hedge_mode`` was given), margin mode, leverage.

        "Already set" answers count as success. In read-only mode any setting
        raises :class:`WriteForbiddenError`; with nothing to set this only reads
        the position mode. On Bybit unified accounts the margin mode is account-wide.
        """
        if leverage is not None or margin_mode is not None or self._hedge_mode is not None:
            self._client.forbid_writes(f"setup_instrument {symbol}")
        market = await self._client.market(symbol)
        if market.get("spot"):
            return
        if self._hedge_mode is not None:
            hedged = self._hedge_mode
            mode_params = ccxt_params.position_mode_params(self.exchange_id, margin_mode)
            await self._setting(
                f"set_position_mode {symbol}",
                lambda: self.exchange.set_position_mode(hedged, symbol, mode_params),
            )
        else:
            await self._is_hedged(market)
        scope = ccxt_params.profile_for(self.exchange_id).margin_scope
        if margin_mode is not None:
            self._margin_modes[symbol] = margin_mode
            # Where the mode travels with each order (OKX tdMode, MEXC openType) there is
            # nothing to set.
            if scope is not MarginScope.ORDER:
                await self._setting(
                    f"set_margin_mode {symbol}",
                    lambda: self.exchange.set_margin_mode(margin_mode, symbol),
                )
        if leverage is not None:
            self._leverages[symbol] = leverage
            hedged = await self._is_hedged(market)
            params = ccxt_params.leverage_params(
                self.exchange_id, hedged=hedged, margin_mode=margin_mode
            )
            await self._setting(
                f"set_leverage {symbol}",
                lambda: self.exchange.set_leverage(leverage, symbol, params),
            )

    async def _setting(self, action: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self._client.call(Operation.SETTING, action, call)
        except VenueError as exc:
            if exc.__cause__ is None or not is_no_change(exc.__cause__, self.exchange_id):
                raise

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> None:
        """Move funds between the account's wallets (e.g. spot -> swap) with ccxt's transfer."""
        self._client.forbid_writes(f"transfer {amount} {asset}")
        await self._client.call(
            Operation.SETTING,
            "transfer",
            lambda: self.exchange.transfer(asset, float(amount), source, destination),
        )

    async def close(self) -> None:
        """Close the ccxt exchange; an injected session stays open (its owner closes it)."""
        await self._client.close()


def _closes(raw: Any) -> list[tuple[int, Decimal]]:
    """``[[ms, open, high, low, close, volume], ...]`` -> ``[(ms, close)]``, oldest first."""
    bars = [(int(bar[0]), to_decimal(bar[4])) for bar in raw]
    if any(close <= 0 for _, close in bars):
        raise ValueError("a bar closes at or below zero")
    return sorted(bars)
