"""Per-exchange knowledge for the ccxt adapter, as data and pure functions.

Everything that differs between exchanges and that ccxt does not unify lives
here, so that :mod:`hedgekeeper.venues.ccxt_venue` reads the same for every
exchange. Capabilities of the exchanges the daemon is tested against (request
conformance tests in ``tests/integration/test_ccxt_conformance.py``), as
exchange: client id on create | reduce-only as sent | post-only as sent |
look-up by client id | test environment:

* binance (*): ``newClientOrderId`` | ``reduceOnly=true`` (not in hedge mode:
  ``positionSide=SHORT`` instead) | ``timeInForce=GTX`` | ``origClientOrderId``
  | demo trading (``enable_demo_trading``; ccxt 4.5 has no private futures testnet).
* bybit: ``orderLinkId`` | ``"reduceOnly":true`` (hedge mode adds ``positionIdx=2``)
  | ``"timeInForce":"PostOnly"``
  | ``orderLinkId`` on ``/v5/order/realtime``, then ``/v5/order/history`` |
  testnet (``set_sandbox_mode``) or demo (``enable_demo_trading``).
* okx: ``clOrdId`` | ``"reduceOnly":true`` (not in long/short mode: ``posSide``)
  | ``"ordType":"post_only"`` | ``clOrdId`` | simulated trading
  (``set_sandbox_mode`` adds ``x-simulated-trading: 1``).
* bingx: ``clientOrderID`` | ``reduceOnly=true`` with ``positionSide=BOTH`` (hedge
  mode: ``positionSide=SHORT``, no flag) | ``timeInForce=PostOnly`` |
  ``clientOrderId`` | VST (``set_sandbox_mode``; swap markets only).
* mexc: ``externalOid`` | no flag: ``side=2`` (close short) | ``type=2`` |
  implicit ``order/external/{symbol}/{external_oid}`` and
  ``order/cancel_with_external`` | none.
* bitget: ``clientOid`` | ``reduceOnly=YES`` | ``force=post_only`` |
  ``clientOid`` | paper trading (``set_sandbox_mode`` adds ``PAPTRADING: 1``).
* weex: ``newClientOrderId`` | ``"reduceOnly":true`` with ``"positionSide":"SHORT"``
  (every contract order names the short side, in both position modes) | none (no
  post-only orders) | no look-up by client id for contracts: open orders, then the
  order history, scanned for the id; cancel by ``origClientOrderId`` | refused
  (ccxt's WEEX demo mode is not request-tested here). Amounts and position
  sizes are in the base coin although ccxt's ``contractSize`` is the venue's
  contract value (:attr:`AmountUnit.BASE`).

(*) binance, binanceusdm, binancecoinm. Spot orders use other spellings where
noted in :data:`PROFILES`. bitget is configured from ccxt's source but not
covered by the conformance tests. Any other ccxt exchange gets ccxt's unified
parameters (``clientOrderId``, ``reduceOnly``, ``postOnly``) and, for a test
environment, ``urls['test']`` when ccxt has one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hedgekeeper.exceptions import VenueConfigError
from hedgekeeper.model import OrderRequest, OrderType

__all__ = [
    "PROFILES",
    "AmountUnit",
    "ClientIdParams",
    "Environment",
    "ExchangeProfile",
    "LookupMethod",
    "MarginScope",
    "TestEnv",
    "balance_params",
    "base_options",
    "enter_environment",
    "hedge_position_params",
    "is_private_write",
    "leverage_params",
    "lookup_params",
    "market_types_option",
    "order_params",
    "position_mode_params",
    "profile_for",
    "reduce_only_exempt_from_min_notional",
    "replace_api_host",
    "supported_test_exchanges",
]

Environment = Literal["live", "testnet", "demo"]


class TestEnv(enum.StrEnum):
    """How ccxt enters an exchange's test environment."""

    __test__ = False  # not a pytest test class, despite the name

    DEMO_TRADING = "enable_demo_trading"  # swaps urls['api'] for urls['demo'] (or a header)
    SANDBOX = "set_sandbox_mode"  # swaps urls['api'] for urls['test'] (or a header)
    NONE = "none"


class LookupMethod(enum.StrEnum):
    """How an order is found by its client id."""

    UNIFIED = "unified"  # ccxt fetch_order / cancel_order with the client-id parameter
    MEXC_EXTERNAL = "mexc-external"  # MEXC contract: order/external and cancel_with_external
    # WEEX contracts: ccxt's fetch_order needs the exchange id, so the open orders and
    # then the order history are searched for the client id.
    SCAN = "scan"


class AmountUnit(enum.StrEnum):
    """What ccxt order amounts and position ``contracts`` count on an exchange."""

    # Contracts of the market's ``contractSize`` (base units where that is 1).
    CONTRACTS = "contracts"
    # The base coin, whatever ``contractSize`` says: WEEX's ``contractSize`` is the
    # venue's contract value (0.001 ETH) but orders and positions are in ETH.
    BASE = "base"


class MarginScope(enum.StrEnum):
    """Where an exchange keeps the margin mode."""

    SYMBOL = "symbol"  # a per-symbol account setting (Binance)
    ACCOUNT = "account"  # one setting for the whole account (Bybit unified)
    ORDER = "order"  # sent with every order (OKX tdMode, MEXC openType)


@dataclass(frozen=True, slots=True)
class ClientIdParams:
    """Parameter names carrying our client order id for each call."""

    create: str
    cancel: str
    fetch: str


_UNIFIED_IDS = ClientIdParams("clientOrderId", "clientOrderId", "clientOrderId")


@dataclass(frozen=True, slots=True)
class ExchangeProfile:
    """What the adapter needs to know about one exchange (see the module table)."""

    contract_ids: ClientIdParams = _UNIFIED_IDS
    spot_ids: ClientIdParams = _UNIFIED_IDS
    reduce_only: str = "reduceOnly (ccxt unified)"  # how the request spells it, for docs
    post_only: str = "postOnly (ccxt unified)"
    supports_reduce_only: bool = True
    lookup: LookupMethod = LookupMethod.UNIFIED
    lookup_unverified: bool = True  # not covered by a conformance test
    # Bybit's "realtime" endpoint forgets closed orders after a while; look in history too.
    lookup_history_fallback: bool = False
    # Extra parameters for the short side in hedge (dual) position mode.
    hedge_short: Mapping[str, Any] = field(default_factory=lambda: {"hedged": True})
    # Whether reduceOnly may be sent in hedge mode (Binance and OKX refuse it).
    reduce_only_in_hedge_mode: bool = True
    testnet: TestEnv = TestEnv.SANDBOX
    demo: TestEnv = TestEnv.DEMO_TRADING
    margin_scope: MarginScope = MarginScope.SYMBOL
    # Shape of options['fetchMarkets']['types']: "list" (binance/bybit), "okx", "mexc", None.
    market_types_style: str | None = None
    # fetch_balance() needs {'type': 'spot'} to read the spot wallet.
    spot_balance_type: bool = False
    # Binance futures tickers carry no bid/ask and no mark: use bookTicker + premiumIndex.
    contract_quotes: Literal["tickers", "mark-and-book"] = "tickers"
    # Spot prices from the book ticker instead of 24 h tickers: Binance weighs a spot
    # 24 h ticker request for a list of symbols as one for every symbol (cost 16 in
    # ccxt's limiter, 0.8 s of waiting each cycle) and the book ticker 0.8 (40 ms).
    spot_quotes: Literal["tickers", "book"] = "tickers"
    # API-name prefixes whose requests get a rate-limit bucket of their own. Binance
    # counts weights per API (spot api.binance.com, USDⓈ-M fapi, COIN-M dapi …, each
    # with its own per-minute limit), but ccxt keeps one bucket for all of them and
    # so queues a futures read behind a spot one. Each bucket keeps ccxt's costs.
    rate_limit_split: tuple[str, ...] = ()
    # Open orders are read per symbol (concurrently) up to this many symbols of one
    # market type, above it in one symbol-less request. Binance weighs a symbol-less
    # read as 40 per-symbol ones on USDⓈ-M (13 on spot): one bucket-emptying request
    # that held every later one, orders included, for 2 s.
    open_orders_per_symbol: int = 1
    # Most symbols in one batched spot price request (0: no limit). Binance lists them in
    # the URL (``bookTicker?symbols=[...]``), which passes 8 KiB at about 400 symbols.
    spot_symbols_per_request: int = 0
    # Private endpoints that read with POST (refused in read-only mode otherwise).
    read_post_paths: frozenset[str] = frozenset()
    # Position mode can be read with ccxt fetch_position_mode; else from positions.
    position_mode_from_positions: bool = False
    # The position mode is one account setting per contract type (Binance
    # ``dualSidePosition``), not one per symbol: read it once.
    position_mode_per_account: bool = False
    # Funding history: ccxt's ``amount`` does not share one sign across exchanges
    # (Binance: income, negative = paid; Bybit: a fee, positive = paid; ccxt issue
    # #26404). Where verified, read the raw field and its sign to get a balance
    # change; ``None`` trusts ccxt's ``amount`` as a balance change (unverified).
    funding_field: tuple[str, int] | None = None
    # Most entries per funding-history request, and the longest time range one takes.
    funding_page: int = 100
    funding_window_days: int = 7
    # Send the page size under this name too: ccxt's Bybit sends ``size``, which Bybit
    # ignores (it reads ``limit``, default 50), so a page would end at 50 unnoticed.
    funding_limit_param: str | None = None
    # Unit of ccxt amounts and positions (see AmountUnit); BASE makes a contract 1 base unit.
    amount_unit: AmountUnit = AmountUnit.CONTRACTS
    # Whether post-only orders exist (the maker execution style needs them).
    supports_post_only: bool = True
    # Whether fetch_positions takes {'subType': ...} (WEEX forwards unknown parameters).
    positions_sub_type: bool = True
    # Why a test environment that ccxt offers is refused here (shown to the user).
    test_env_refusal: str | None = None
    # set_position_mode needs the margin mode too (WEEX sets both in one request).
    position_mode_needs_margin: bool = False


_BINANCE = ExchangeProfile(
    contract_ids=ClientIdParams("newClientOrderId", "origClientOrderId", "origClientOrderId"),
    spot_ids=ClientIdParams("newClientOrderId", "origClientOrderId", "origClientOrderId"),
    reduce_only="reduceOnly=true",
    post_only="timeInForce=GTX (spot: type=LIMIT_MAKER)",
    lookup_unverified=False,
    hedge_short={"positionSide": "SHORT"},
    reduce_only_in_hedge_mode=False,
    # ccxt 4.5 refuses private futures calls on the old futures testnet: use demo trading.
    testnet=TestEnv.DEMO_TRADING,
    demo=TestEnv.DEMO_TRADING,
    market_types_style="list",
    spot_balance_type=True,
    contract_quotes="mark-and-book",
    spot_quotes="book",
    rate_limit_split=("fapi", "dapi", "papi", "eapi", "sapi"),
    # Creating and keeping alive a user-data stream key changes nothing (dry-run streams).
    read_post_paths=frozenset({"listenKey", "userDataStream"}),
    open_orders_per_symbol=12,
    spot_symbols_per_request=100,
    position_mode_per_account=True,
    funding_field=("income", 1),
    funding_page=1000,
)

#: Known exchanges by ccxt id.
PROFILES: Mapping[str, ExchangeProfile] = {
    "binance": _BINANCE,
    # The futures-only flavours read the futures wallet whatever `type` says.
    "binanceusdm": replace(_BINANCE, spot_balance_type=False),
    "binancecoinm": replace(_BINANCE, spot_balance_type=False),
    "bybit": ExchangeProfile(
        contract_ids=ClientIdParams("orderLinkId", "orderLinkId", "orderLinkId"),
        spot_ids=ClientIdParams("orderLinkId", "orderLinkId", "orderLinkId"),
        reduce_only='"reduceOnly":true',
        post_only='"timeInForce":"PostOnly"',
        lookup_unverified=False,
        lookup_history_fallback=True,
        hedge_short={"positionIdx": 2},
        testnet=TestEnv.SANDBOX,
        demo=TestEnv.DEMO_TRADING,
        margin_scope=MarginScope.ACCOUNT,
        market_types_style="list",
        position_mode_from_positions=True,
        funding_field=("execFee", -1),
        funding_limit_param="limit",
    ),
    "okx": ExchangeProfile(
        contract_ids=ClientIdParams("clOrdId", "clOrdId", "clOrdId"),
        spot_ids=ClientIdParams("clOrdId", "clOrdId", "clOrdId"),
        reduce_only='"reduceOnly":true',
        post_only='"ordType":"post_only"',
        lookup_unverified=False,
        hedge_short={"posSide": "short"},
        reduce_only_in_hedge_mode=False,
        # ccxt's okx set_sandbox_mode adds the x-simulated-trading: 1 header.
        testnet=TestEnv.SANDBOX,
        demo=TestEnv.SANDBOX,
        margin_scope=MarginScope.ORDER,
        market_types_style="okx",
    ),
    "bingx": ExchangeProfile(
        contract_ids=ClientIdParams("clientOrderID", "clientOrderID", "clientOrderId"),
        spot_ids=ClientIdParams("newClientOrderId", "clientOrderID", "clientOrderID"),
        reduce_only="reduceOnly=true",
        post_only="timeInForce=PostOnly",
        lookup_unverified=False,
        hedge_short={"positionSide": "SHORT"},
        reduce_only_in_hedge_mode=False,
        # VST (virtual USDT) host; swap markets only.
        testnet=TestEnv.SANDBOX,
        demo=TestEnv.SANDBOX,
        spot_balance_type=True,
    ),
    "mexc": ExchangeProfile(
        contract_ids=ClientIdParams("externalOid", "externalOid", "external_oid"),
        spot_ids=ClientIdParams("newClientOrderId", "origClientOrderId", "origClientOrderId"),
        reduce_only="side=2 (close short) / side=4 (close long); no flag",
        post_only="type=2",
        lookup=LookupMethod.MEXC_EXTERNAL,
        lookup_unverified=False,
        # MEXC's side codes name the position (3 open short, 2 close short) in both modes.
        hedge_short={},
        testnet=TestEnv.NONE,
        demo=TestEnv.NONE,
        margin_scope=MarginScope.ORDER,
        market_types_style="mexc",
        spot_balance_type=True,
    ),
    "bitget": ExchangeProfile(
        contract_ids=ClientIdParams("clientOid", "clientOid", "clientOid"),
        spot_ids=ClientIdParams("clientOid", "clientOid", "clientOid"),
        reduce_only="reduceOnly=YES",
        post_only="force=post_only",
        # ccxt's bitget sandbox/demo both send the PAPTRADING: 1 header.
        testnet=TestEnv.SANDBOX,
        demo=TestEnv.SANDBOX,
        margin_scope=MarginScope.ORDER,
        market_types_style="list-swap",
        spot_balance_type=True,
    ),
    "weex": ExchangeProfile(
        # ccxt sends clientOrderId as newClientOrderId and, on cancel, origClientOrderId.
        reduce_only='"reduceOnly":true with "positionSide":"SHORT"',
        post_only="none",
        supports_post_only=False,
        lookup=LookupMethod.SCAN,
        lookup_unverified=False,
        # ccxt derives positionSide from side and reduceOnly (sell -> SHORT, reduce-only
        # buy -> SHORT); naming it keeps a buy on the short side even without the flag,
        # where in hedge mode it would otherwise open a long.
        hedge_short={"positionSide": "SHORT"},
        testnet=TestEnv.NONE,
        demo=TestEnv.NONE,
        test_env_refusal=(
            "ccxt's WEEX demo mode (capi/v3/sim endpoints, swap only, SUSDT) is not "
            "request-tested by hedgekeeper; use dry-run (paper orders on live data) instead"
        ),
        # WEEX swap tickers carry no bid/ask: book ticker plus premiumIndex (mark, funding).
        contract_quotes="mark-and-book",
        amount_unit=AmountUnit.BASE,
        positions_sub_type=False,
        position_mode_needs_margin=True,
    ),
    # Kraken spot reads its private data with POST.
    "kraken": ExchangeProfile(
        read_post_paths=frozenset(
            {
                "Balance",
                "BalanceEx",
                "TradeBalance",
                "OpenOrders",
                "ClosedOrders",
                "QueryOrders",
                "OpenPositions",
                "TradesHistory",
                "Ledgers",
            }
        ),
        testnet=TestEnv.NONE,
        demo=TestEnv.NONE,
    ),
}

_GENERIC = ExchangeProfile()


def profile_for(exchange_id: str) -> ExchangeProfile:
    """The profile of a ccxt exchange id; unknown ids get ccxt's unified behaviour."""
    return PROFILES.get(exchange_id, _GENERIC)


def supported_test_exchanges() -> list[str]:
    """Exchanges with a known test or demo environment, for error messages."""
    return sorted(
        exchange_id
        for exchange_id, profile in PROFILES.items()
        if profile.testnet is not TestEnv.NONE or profile.demo is not TestEnv.NONE
    )


def _enter(exchange: Any, how: TestEnv) -> None:
    if how is TestEnv.DEMO_TRADING:
        exchange.enable_demo_trading(True)
    elif how is TestEnv.SANDBOX:
        exchange.set_sandbox_mode(True)


def enter_environment(exchange: Any, exchange_id: str, environment: Environment) -> None:
    """Switch a fresh ccxt exchange to its test or demo environment (``live``: nothing).

    Raises :class:`VenueConfigError` listing the supported exchanges when the
    exchange has no such environment.
    """
    if environment == "live":
        return
    profile = PROFILES.get(exchange_id)
    urls = exchange.urls if isinstance(getattr(exchange, "urls", None), dict) else {}
    if profile is not None:
        how = profile.testnet if environment == "testnet" else profile.demo
    elif environment == "testnet" and urls.get("test"):
        how = TestEnv.SANDBOX
    elif environment == "demo" and urls.get("demo"):
        how = TestEnv.DEMO_TRADING
    else:
        how = TestEnv.NONE
    if how is TestEnv.NONE and profile is not None and profile.test_env_refusal:
        raise VenueConfigError(
            f"{exchange_id} has no usable {environment} environment: "
            f"{profile.test_env_refusal}; supported: {', '.join(supported_test_exchanges())}"
        )
    if how is TestEnv.NONE:
        raise VenueConfigError(
            f"{exchange_id} has no {environment} environment in ccxt; supported: "
            f"{', '.join(supported_test_exchanges())}, or any ccxt exchange with urls['test']"
        )
    _enter(exchange, how)


_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_WS_AUTHORITY = re.compile(r"^wss?://([^/:]*)(?::\d+)?")


def replace_api_host(api_urls: Any, api_host: str) -> Any:
    """A copy of ``urls['api']`` with the scheme and host of every URL replaced, paths kept.

    Websocket URLs (ccxt.pro's ``ws``/``wss``) keep a websocket scheme (``ws`` for an
    ``http`` host, ``wss`` for an ``https`` one) and the original host name as their
    first path segment: exchanges serve streams from several hosts, and ccxt.pro tells
    some apart by their URL (Binance spot streams by ``/stream``).
    """
    host = api_host.rstrip("/")
    if isinstance(api_urls, str):
        if api_urls.startswith(("ws://", "wss://")):
            ws_host = re.sub(r"^http", "ws", host)
            return _WS_AUTHORITY.sub(lambda m: f"{ws_host}/{m.group(1)}", api_urls, count=1)
        return _AUTHORITY.sub(lambda _: host, api_urls, count=1)
    if isinstance(api_urls, dict):
        return {key: replace_api_host(value, api_host) for key, value in api_urls.items()}
    if isinstance(api_urls, list):
        return [replace_api_host(value, api_host) for value in api_urls]
    return api_urls


def market_types_option(exchange_id: str, market_types: Iterable[str]) -> Any:
    """The value of ``options['fetchMarkets']['types']`` for our market types, or ``None``.

    Our vocabulary: ``spot``, ``linear``, ``inverse`` (perpetuals and futures), and
    ``future`` (dated contracts wanted) / ``option`` passed through where the
    exchange keeps them apart (OKX), dropped where they come with linear/inverse.
    """
    wanted = list(dict.fromkeys(market_types))
    style = profile_for(exchange_id).market_types_style
    if style == "list":
        # Binance and Bybit list dated futures with their perpetuals (linear: fapi /
        # category linear; inverse: dapi / category inverse): no type of their own.
        return [kind for kind in wanted if kind != "future"]
    if style == "okx":  # OKX: spot / swap / future / option, linear and inverse together
        mapped = ["swap" if kind in ("linear", "inverse") else kind for kind in wanted]
        return list(dict.fromkeys(mapped))
    if style == "list-swap":  # bitget: spot / swap; its futures come with the swap markets
        mapped = ["swap" if kind in ("linear", "inverse", "future") else kind for kind in wanted]
        return list(dict.fromkeys(mapped))
    if style == "mexc":
        return {
            "spot": "spot" in wanted,
            "swap": {"linear": "linear" in wanted, "inverse": "inverse" in wanted},
        }
    return None


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def base_options(
    exchange_id: str, market_types: Iterable[str], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """ccxt options the adapter sets, with the caller's ``overrides`` deep-merged over them."""
    options: dict[str, Any] = {
        # Currencies are not needed and cost a (private, on Binance) request.
        "fetchCurrencies": False,
        # We filter by client-id prefix over all symbols in one request on purpose.
        "fetchOpenOrders": {"warnWithoutSymbol": False},
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        # "Already set" is success for us; do not make ccxt raise it.
        "setMarginMode": {"throwMarginModeAlreadySet": False},
        # Binance: margin pairs cost two private requests per load and are not used.
        "fetchMargins": False,
    }
    types = market_types_option(exchange_id, market_types)
    if types is not None:
        options["fetchMarkets"] = {"types": types}
    return _deep_merge(options, overrides or {})


def balance_params(exchange_id: str, market_types: Iterable[str]) -> dict[str, Any]:
    """Parameters for ``fetch_balance`` so that it reads the spot (or unified) wallet."""
    if "spot" in market_types and profile_for(exchange_id).spot_balance_type:
        return {"type": "spot"}
    return {}


def hedge_position_params(exchange_id: str) -> dict[str, Any]:
    """Extra order parameters that put an order on the short side in hedge mode."""
    return dict(profile_for(exchange_id).hedge_short)


def order_params(
    exchange_id: str,
    request: OrderRequest,
    *,
    spot: bool,
    hedged: bool,
    margin_mode: str | None = None,
    leverage: int | None = None,
) -> dict[str, Any]:
    """The ccxt ``params`` of ``create_order`` for a hedgekeeper order request.

    In hedge (dual) position mode every order goes to the SHORT side: the daemon
    only holds shorts, a sell opens and a buy reduces.
    """
    profile = profile_for(exchange_id)
    ids = profile.spot_ids if spot else profile.contract_ids
    params: dict[str, Any] = {ids.create: request.client_order_id}
    if request.post_only and not spot and not profile.supports_post_only:
        raise VenueConfigError(
            f"{exchange_id} has no post-only orders: use execution = 'market' for this group"
        )
    if request.post_only:
        params["postOnly"] = True
    if request.time_in_force is not None and not request.post_only:
        params["timeInForce"] = request.time_in_force
    if request.order_type is OrderType.MARKET and "timeInForce" in params:
        del params["timeInForce"]  # market orders take none
    if not spot:
        if hedged:
            params.update(profile.hedge_short)
        if request.reduce_only and (not hedged or profile.reduce_only_in_hedge_mode):
            params["reduceOnly"] = True
        if margin_mode is not None and profile.margin_scope is MarginScope.ORDER:
            params["marginMode"] = margin_mode
            if exchange_id == "mexc" and margin_mode == "isolated" and leverage is not None:
                params["leverage"] = leverage  # MEXC wants it on isolated orders
    return params


def leverage_params(exchange_id: str, *, hedged: bool, margin_mode: str | None) -> dict[str, Any]:
    """Extra ``set_leverage`` parameters some exchanges require (leverage of the short leg)."""
    params: dict[str, Any] = {}
    if profile_for(exchange_id).margin_scope is MarginScope.ORDER and margin_mode is not None:
        params["marginMode"] = margin_mode  # OKX: leverage is kept per margin mode
    if exchange_id == "bingx":
        params["side"] = "SHORT" if hedged else "BOTH"
    elif exchange_id == "mexc":
        params["openType"] = 1 if margin_mode == "isolated" else 2
        params["positionType"] = 2  # short
    elif exchange_id == "okx" and hedged and margin_mode == "isolated":
        params["posSide"] = "short"
    return params


def position_mode_params(exchange_id: str, margin_mode: str | None) -> dict[str, Any]:
    """Extra ``set_position_mode`` parameters (WEEX sets margin and position mode together)."""
    if not profile_for(exchange_id).position_mode_needs_margin:
        return {}
    if margin_mode is None:
        raise VenueConfigError(
            f"{exchange_id} sets the position mode together with the margin mode: "
            "set margin_mode ('cross' or 'isolated') on the group"
        )
    return {"marginMode": margin_mode}


def lookup_params(
    exchange_id: str, client_order_id: str, *, spot: bool, action: Literal["cancel", "fetch"]
) -> dict[str, Any]:
    """Parameters that make ccxt's ``cancel_order`` / ``fetch_order`` address a client id."""
    profile = profile_for(exchange_id)
    ids = profile.spot_ids if spot else profile.contract_ids
    params: dict[str, Any] = {ids.cancel if action == "cancel" else ids.fetch: client_order_id}
    if exchange_id == "bybit" and action == "fetch":
        # ccxt refuses Bybit fetch_order without acknowledging its 500-order horizon;
        # the adapter falls back to the order history for older orders.
        params["acknowledged"] = True
    return params


def is_private_write(exchange_id: str, api: Any, method: str, path: str) -> bool:
    """True when a ccxt request would change something on a private endpoint.

    Used as the last line of the read-only guard: any non-GET call to an API
    section not named public, unless the path is one of the exchange's known
    POST reads, plus paths that move money whatever their method.
    """
    sections = [api] if isinstance(api, str) else list(api or [])
    names = " ".join(str(section) for section in sections).lower()
    if re.search(r"withdraw|transfer", path, re.IGNORECASE) and method.upper() != "GET":
        return True
    if method.upper() in ("GET", "HEAD"):
        return False
    if "public" in names:
        return False
    return path not in profile_for(exchange_id).read_post_paths


def reduce_only_exempt_from_min_notional(exchange_id: str) -> bool:
    """Whether reduce-only orders may be smaller than the minimum notional.

    Binance USDⓈ-M documents that MIN_NOTIONAL does not apply to reduce-only
    orders (one-way mode); elsewhere the minimums apply to every order.
    """
    return exchange_id in ("binance", "binanceusdm")
