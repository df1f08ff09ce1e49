"""A local crypto exchange for tests: Binance (spot + USDⓈ-M) and Bybit v5 on 127.0.0.1.

The real ccxt client talks to it, so signing, parsing and error mapping are the
production code paths. Quick start::

    emu = Emulator("binance", {"KEY": "SECRET"}, prices={"BTC/USDT": 70000})
    await emu.start()                       # emu.base_url == "http://127.0.0.1:PORT"
    emu.set_futures_wallet("KEY", 10_000)
    exchange = ccxt.binance({"apiKey": "KEY", "secret": "SECRET", ...})
    # point every exchange.urls["api"] entry at emu.base_url (keep the paths), or
    # use real hostnames over HTTPS: see tests.emulator.tls
    ...
    emu.settle_funding("BTC/USDT:USDT", "0.0001")  # funding fees on open positions
    assert emu.private_writes() == []       # the request log
    await emu.stop()

Modules: ``server`` (the :class:`Emulator` and its inspection API), ``engine``
(matching), ``margin`` (margin model), ``state`` (records), ``faults`` (fault
scripts), ``binance*`` / ``bybit*`` (dialects), ``tls`` (HTTPS + resolver),
``__main__`` (CLI).

Endpoints - Binance: ``/api/v3`` ping, time, exchangeInfo, ticker/24hr,
ticker/bookTicker, account, order (POST/GET/DELETE), openOrders (GET/DELETE);
``/fapi/v1`` ping, time, exchangeInfo, ticker/24hr, ticker/bookTicker,
premiumIndex, leverageBracket, income (``FUNDING_FEE`` only), order
(POST/GET/DELETE), openOrders, allOpenOrders (DELETE), leverage, marginType,
positionSide/dual (GET/POST); ``/fapi/v2`` and ``/fapi/v3`` account, balance,
positionRisk; ``/sapi/v1`` system/status, account/apiRestrictions,
asset/transfer, margin/allPairs, margin/isolated/allPairs.
Bybit: ``/v5/market`` time, instruments-info, tickers; ``/v5/account``
wallet-balance, info, set-margin-mode; ``/v5/user/query-api``; ``/v5/position``
list, set-leverage, switch-mode, switch-isolated (refused on UTA like Bybit);
``/v5/order`` create, cancel, cancel-all, realtime, history; ``/v5/execution/list``
(execType ``Trade`` from fills, ``Funding`` from funding fees, none = both);
``/v5/asset/transfer`` inter-transfer, query-account-coins-balance.

Funding fees: :meth:`Emulator.settle_funding` charges ``size * mark * rate`` on
every open perpetual position (a long pays a positive rate) and sets the rate
shown by ``premiumIndex`` / ``tickers``. Binance ``income`` without
``startTime``/``endTime`` covers the last 7 days, ascending, ``limit`` from the
oldest; Bybit's list is newest first with ``cursor`` paging, 7 days by default
and at most 7 days wide (10001 otherwise).

ccxt behaviours worth knowing (ccxt 4.5.90, all exercised in tests/emulator_tests):

* Binance on a loopback URL maps several futures codes to plain ``ExchangeError``
  (-2019, -2022, -4116, -4164, -5022); under the real demo hostnames they are
  ``InsufficientFunds``, ``InvalidOrder``, ``InvalidOrder``, ``InvalidOrder``,
  ``OrderNotFillable``. Bybit maps by ``retCode`` alone, the same everywhere.
* Binance with ``defaultType='swap'`` resolves ``'BTC/USDT'`` to the perpetual:
  use a separate ``defaultType='spot'`` client for spot calls.
* Binance ``load_markets`` with keys set (not in demo mode) makes two signed
  ``/sapi/v1/margin/*allPairs`` calls; a bad key already fails there.
* Binance ``-2015`` after one successful spot private call is raised as
  ``DDoSProtection`` (ccxt assumes a temporary ban). 429/418 are ``DDoSProtection``,
  not ``RateLimitExceeded``. ``-4046`` (margin type unchanged) is raised as
  ``MarginModeAlreadySet`` unless ``options.setMarginMode.throwMarginModeAlreadySet``
  is False. Spot ``cancelOrder`` returns the cancel request's client id; the
  original is ``info.origClientOrderId``. ``fetchOpenOrders()`` without a symbol
  raises unless ``options.fetchOpenOrders.warnWithoutSymbol`` is False. USDⓈ-M
  24 h tickers carry no bid/ask: use ``fetchBidsAsks``. ``/fapi/v3/positionRisk``
  has no leverage (``useV2=True`` reads ``/fapi/v2``).
* Bybit ``createOrder`` returns only ids (status ``None``); ``fetchOrder`` needs
  ``params={'acknowledged': True}``; ``fetchPositions`` takes at most one symbol;
  ``fetchTickers`` one market type; 110043 (leverage unchanged) is ``BadRequest``;
  10016 (backend error) is a plain ``ExchangeError`` although the outcome is
  unknown; an HTTP 403 is ``RateLimitExceeded``; maintenance (plain 503) is
  ``ExchangeNotAvailable`` - ccxt has no Bybit maintenance code.
* ``fetchFundingHistory`` ``amount`` is Binance ``income`` (the balance change,
  negative = paid) but Bybit ``execFee`` (positive = paid): the signs disagree
  (ccxt issue #26404, fix PR #26455 unmerged). Binance entries have no ``rate``.
* Bybit ``fetchFundingHistory`` sends ``size``, which v5 ignores, not ``limit``:
  the answer is one page of up to 50 newest entries, which ccxt cuts to ``limit``
  from that page's oldest end. Page with ``params={'limit': n, 'cursor': c}``
  (ccxt puts ``nextPageCursor`` in the newest entry's ``info``) or
  ``{'paginate': True}`` (needs ``since``; returns newest first).
* aiohttp retries an idempotent request (GET, DELETE - so Binance cancels too)
  once when the server drops the connection: a one-shot ``disconnect`` fault on
  those is invisible to ccxt; queue ``count=2`` to surface ``ExchangeNotAvailable``.
"""

from tests.emulator.faults import Fault, FaultKind, FaultRule, FaultScript
from tests.emulator.markets import MarketDef, default_markets
from tests.emulator.server import Emulator
from tests.emulator.state import (
    FeeSchedule,
    Fill,
    FundingPayment,
    Order,
    OrderStatus,
    Permissions,
    Position,
)

__all__ = [
    "Emulator",
    "Fault",
    "FaultKind",
    "FaultRule",
    "FaultScript",
    "FeeSchedule",
    "Fill",
    "FundingPayment",
    "MarketDef",
    "Order",
    "OrderStatus",
    "Permissions",
    "Position",
    "default_markets",
]
