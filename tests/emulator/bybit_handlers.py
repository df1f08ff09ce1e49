"""Bybit v5 endpoint handlers (market data, account, position, order, asset)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from aiohttp import web

from tests.emulator import account_ops
from tests.emulator import bybit_format as yf
from tests.emulator.bybit import bybit_error
from tests.emulator.common import RequestContext, Route, dec, fmt, json_response
from tests.emulator.engine import OrderRequest
from tests.emulator.markets import MarketDef, floor_to_step
from tests.emulator.state import Order, Reject, Rejected, Side, TimeInForce

if TYPE_CHECKING:
    from tests.emulator.server import Emulator

__all__ = ["BybitHandlers"]

ZERO = Decimal(0)
WEEK_MS = 7 * 86_400_000
_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "POSTONLY": TimeInForce.POST_ONLY,
}
_IDX = {0: "BOTH", 1: "LONG", 2: "SHORT"}
_WALLET = {"UNIFIED": "spot", "SPOT": "spot", "CONTRACT": "spot", "FUND": "funding"}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _parse_cursor(raw: str) -> tuple[int, int] | None:
    """``execTime:seq`` of the last entry already sent; Bybit cursors arrive URL-encoded."""
    text = raw
    for _ in range(3):  # the cursor is sent pre-encoded and clients may encode it again
        if "%" not in text:
            break
        text = unquote(text)
    if not text:
        return None
    time_ms, sep, seq = text.partition(":")
    if not sep:
        raise ValueError("cursor invalid")
    return int(time_ms), int(seq)


class BybitHandlers:
    """The handler set, bound to one emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        """The route table (method, path, handler, signed?)."""
        return [
            Route("GET", "/v5/market/time", self.time),
            Route("GET", "/v5/market/instruments-info", self.instruments),
            Route("GET", "/v5/market/tickers", self.tickers),
            Route("GET", "/v5/account/wallet-balance", self.wallet_balance, True),
            Route("GET", "/v5/account/info", self.account_info, True),
            Route("GET", "/v5/user/query-api", self.query_api, True),
            Route("GET", "/v5/position/list", self.positions, True),
            Route("GET", "/v5/order/realtime", self.realtime, True),
            Route("GET", "/v5/order/history", self.history, True),
            Route("GET", "/v5/execution/list", self.executions, True),
            Route("GET", "/v5/asset/transfer/query-account-coins-balance", self.fund_balance, True),
            Route("POST", "/v5/order/create", self.create, True),
            Route("POST", "/v5/order/cancel", self.cancel, True),
            Route("POST", "/v5/order/cancel-all", self.cancel_all, True),
            Route("POST", "/v5/position/set-leverage", self.set_leverage, True),
            Route("POST", "/v5/position/switch-isolated", self.switch_isolated, True),
            Route("POST", "/v5/position/switch-mode", self.switch_mode, True),
            Route("POST", "/v5/account/set-margin-mode", self.set_margin_mode, True),
            Route("POST", "/v5/asset/transfer/inter-transfer", self.transfer, True),
        ]

    # -- helpers --------------------------------------------------------------------
    @staticmethod
    def _ok(ctx: RequestContext, result: Any, msg: str = "OK") -> web.Response:
        return json_response(yf.envelope(result, ctx.now_ms, 0, msg))

    @staticmethod
    def _category(ctx: RequestContext) -> str:
        category = str(ctx.params.get("category", ""))
        if category not in ("spot", "linear"):
            raise Rejected(Reject.BAD_PARAM, "category")
        return category

    def _market(self, ctx: RequestContext, required: bool = True) -> MarketDef | None:
        category = self._category(ctx)
        symbol = ctx.params.get("symbol")
        if not symbol:
            if required:
                raise Rejected(Reject.BAD_PARAM, "symbol")
            return None
        return ctx.engine.market_by_id(str(symbol), category)

    def _markets(self, ctx: RequestContext) -> list[MarketDef]:
        one = self._market(ctx, required=False)
        return [one] if one else ctx.engine.priced_markets_of_kind(self._category(ctx))

    # -- market data ------------------------------------------------------------------
    async def time(self, ctx: RequestContext) -> web.Response:
        """``/v5/market/time``."""
        return self._ok(
            ctx, {"timeSecond": str(ctx.now_ms // 1000), "timeNano": str(ctx.now_ms * 1_000_000)}
        )

    async def instruments(self, ctx: RequestContext) -> web.Response:
        """``/v5/market/instruments-info``; one page, pre-listing and cursors are empty."""
        category = self._category(ctx)
        markets = self._markets(ctx)
        if ctx.params.get("status") == "PreLaunch" or ctx.params.get("cursor"):
            markets = []
        result: dict[str, Any] = {"category": category, "list": [yf.instrument(m) for m in markets]}
        if category != "spot":
            result["nextPageCursor"] = ""
        return self._ok(ctx, result)

    async def tickers(self, ctx: RequestContext) -> web.Response:
        """``/v5/market/tickers``."""
        return self._ok(
            ctx,
            {
                "category": self._category(ctx),
                "list": [yf.ticker(ctx.engine, m, ctx.now_ms) for m in self._markets(ctx)],
            },
        )

    # -- account ----------------------------------------------------------------------
    async def wallet_balance(self, ctx: RequestContext) -> web.Response:
        """``/v5/account/wallet-balance`` (``accountType=UNIFIED`` only)."""
        if ctx.params.get("accountType") != "UNIFIED":
            return bybit_error(10001, "accountType only support UNIFIED", ctx.now_ms)
        return self._ok(ctx, yf.wallet_balance(ctx.engine, ctx.acct))

    async def fund_balance(self, ctx: RequestContext) -> web.Response:
        """``/v5/asset/transfer/query-account-coins-balance`` for the FUND wallet."""
        coins = [
            {"coin": c, "walletBalance": fmt(v), "transferBalance": fmt(v), "bonus": "0"}
            for c, v in sorted(ctx.acct.funding.items())
        ]
        return self._ok(
            ctx,
            {
                "accountType": ctx.params.get("accountType", "FUND"),
                "bizType": None,
                "memberId": "1",
                "balance": coins,
            },
            "success",
        )

    async def account_info(self, ctx: RequestContext) -> web.Response:
        """``/v5/account/info``: a UTA 2.0 account."""
        mode = "ISOLATED_MARGIN" if ctx.acct.account_margin_mode == "isolated" else "REGULAR_MARGIN"
        return self._ok(
            ctx,
            {
                "unifiedMarginStatus": 5,
                "marginMode": mode,
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
                "updatedTime": "1700000000000",
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
            },
        )

    async def query_api(self, ctx: RequestContext) -> web.Response:
        """``/v5/user/query-api``: the key's permissions."""
        perms = ctx.acct.permissions
        return self._ok(
            ctx,
            {
                "id": "13770661",
                "note": "hedgekeeper-test",
                "apiKey": ctx.acct.api_key,
                "readOnly": 0 if perms.trade else 1,
                "secret": "",
                "permissions": {
                    "ContractTrade": ["Order", "Position"] if perms.futures else [],
                    "Spot": ["SpotTrade"] if perms.trade else [],
                    "Wallet": ["AccountTransfer"] if perms.transfer else [],
                    "Options": [],
                    "Derivatives": [],
                    "CopyTrading": [],
                    "BlockTrade": [],
                    "Exchange": [],
                    "NFT": [],
                    "Affiliate": [],
                    "Earn": [],
                    "Withdraw": ["Withdraw"] if perms.withdraw else [],
                },
                "ips": ["127.0.0.1"] if perms.ip_restricted else ["*"],
                "type": 1,
                "deadlineDay": 90,
                "expiredAt": "2030-01-01T00:00:00Z",
                "createdAt": "2024-01-01T00:00:00Z",
                "unified": 0,
                "uta": 1,
                "userID": 24617703,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "rsaPublicKey": "",
                "isMaster": True,
                "parentUid": "0",
                "kycLevel": "LEVEL_DEFAULT",
                "kycRegion": "",
            },
        )

    async def positions(self, ctx: RequestContext) -> web.Response:
        """``/v5/position/list``: with a symbol every side, else only non-zero sizes."""
        market = self._market(ctx, required=False)
        acct = ctx.acct.position_view()  # may lag a fill (faults)
        sides = ["LONG", "SHORT"] if acct.hedge_mode else ["BOTH"]
        items = []
        for m in [market] if market else ctx.engine.markets_of_kind("linear"):
            for side in sides:
                pos = acct.position(m.symbol, side)
                if market is not None or pos.qty != 0:
                    items.append(yf.position_item(ctx.engine, acct, m, pos))
        return self._ok(ctx, {"list": items, "nextPageCursor": "", "category": "linear"})

    # -- executions ---------------------------------------------------------------------
    async def executions(self, ctx: RequestContext) -> web.Response:
        """``/v5/execution/list``: fills (``execType=Trade``) and funding fees (``Funding``).

        No ``execType`` lists both, like Bybit; other types (AdlTrade, BustTrade,
        Settle) are not modelled and list nothing. Time window: neither
        ``startTime`` nor ``endTime`` -> the last 7 days; one of them -> 7 days
        from/until it; both -> at most 7 days apart, else retCode 10001.
        Newest first; ``limit`` 1-100 (default 50; ccxt's ``size`` is ignored, as
        by Bybit); ``nextPageCursor`` continues after the page's last entry and
        is ``""`` on the last page.
        """
        p = ctx.params
        category = self._category(ctx)
        market = self._market(ctx, required=False)
        try:
            limit = int(str(p.get("limit") or 50))
            start = int(str(p["startTime"])) if p.get("startTime") else None
            end = int(str(p["endTime"])) if p.get("endTime") else None
            after = _parse_cursor(str(p.get("cursor") or ""))
        except ValueError as exc:
            return bybit_error(10001, f"params error: {exc}", ctx.now_ms)
        if not 1 <= limit <= 100:
            return bybit_error(10001, "params error: limit must be in [1, 100]", ctx.now_ms)
        if start is None and end is None:
            start, end = ctx.now_ms - WEEK_MS, ctx.now_ms
        elif end is None:
            assert start is not None
            end = start + WEEK_MS
        elif start is None:
            start = end - WEEK_MS
        if end < start or end - start > WEEK_MS:
            return bybit_error(
                10001,
                "params error: The time range between startTime and endTime cannot exceed 7 days",
                ctx.now_ms,
            )
        exec_type = p.get("execType") or None
        entries: list[tuple[int, int, dict[str, Any]]] = []
        symbol = market.symbol if market else None
        if exec_type in (None, "Funding") and category == "linear":
            for f in ctx.acct.funding_payments_between(symbol, start, end):
                m = ctx.engine.markets[f.symbol]
                entries.append((f.time_ms, f.seq, yf.funding_execution(m, f)))
        if exec_type in (None, "Trade"):
            orders = {o.order_id: o for o in ctx.acct.orders}
            for fill in ctx.acct.fills:
                order = orders[fill.order_id]
                if order.market.kind != category or (symbol and fill.symbol != symbol):
                    continue
                if not start <= fill.time_ms <= end:
                    continue
                rate = ctx.engine.fees.rate(order.market, fill.is_maker)
                entries.append((fill.time_ms, fill.trade_id, yf.trade_execution(fill, order, rate)))
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
        if after is not None:
            entries = [e for e in entries if (e[0], e[1]) < after]
        page, rest = entries[:limit], entries[limit:]
        cursor = quote(f"{page[-1][0]}:{page[-1][1]}", safe="") if page and rest else ""
        return self._ok(
            ctx,
            {"nextPageCursor": cursor, "category": category, "list": [e[2] for e in page]},
        )

    # -- orders -----------------------------------------------------------------------
    def _select(self, ctx: RequestContext, history: bool) -> list[Order]:
        category = self._category(ctx)
        market = self._market(ctx, required=False)
        order_id = ctx.params.get("orderId") or None
        link_id = ctx.params.get("orderLinkId") or None
        open_only = str(ctx.params.get("openOnly", "0"))
        found = []
        for order in reversed(ctx.acct.orders[-500:]):  # newest first, the recent 500
            if order.market.kind != category or (market and order.market != market):
                continue
            if order_id or link_id:
                if order_id and order.order_id != order_id:
                    continue
                if not order_id and order.client_id != link_id:
                    continue
            elif order.status.is_open != (not history and open_only == "0"):
                continue
            found.append(order)
        limit = int(str(ctx.params.get("limit") or 20))
        return found[:limit]

    async def realtime(self, ctx: RequestContext) -> web.Response:
        """``/v5/order/realtime``: open orders; by id or link id also recent closed ones."""
        items = [yf.order_item(o) for o in self._select(ctx, history=False)]
        return self._ok(ctx, {"list": items, "nextPageCursor": "", "category": self._category(ctx)})

    async def history(self, ctx: RequestContext) -> web.Response:
        """``/v5/order/history``: closed (filled, cancelled, rejected) orders."""
        items = [yf.order_item(o) for o in self._select(ctx, history=True)]
        return self._ok(ctx, {"list": items, "nextPageCursor": "", "category": self._category(ctx)})

    async def create(self, ctx: RequestContext) -> web.Response:
        """``/v5/order/create``: answers only ids; post-only crossing is accepted then cancelled."""
        p, acct = ctx.params, ctx.acct
        market = self._market(ctx)
        assert market is not None
        side = {"Buy": Side.BUY, "Sell": Side.SELL}.get(str(p.get("side")))
        order_type = str(p.get("orderType", "")).upper()
        if side is None or order_type not in ("MARKET", "LIMIT"):
            raise Rejected(Reject.BAD_PARAM, "side or orderType")
        tif = _TIF.get(
            str(p.get("timeInForce") or ("IOC" if order_type == "MARKET" else "GTC")).upper()
        )
        if tif is None:
            raise Rejected(Reject.BAD_PARAM, "timeInForce")
        quantity = dec(p.get("qty"))
        if quantity is None:
            raise Rejected(Reject.BAD_PARAM, "qty")
        price = dec(p.get("price")) if order_type == "LIMIT" else None
        quote_qty = None
        extra = {}
        if market.kind == "spot" and order_type == "MARKET":
            # Spot market buys count qty in quote coin unless marketUnit says otherwise.
            unit = str(p.get("marketUnit") or ("quoteCoin" if side is Side.BUY else "baseCoin"))
            extra["marketUnit"] = unit
            if unit == "quoteCoin":
                quote_qty, quantity = quantity, None
        position_idx = int(str(p.get("positionIdx", 0)))
        if position_idx not in _IDX:
            raise Rejected(Reject.BAD_PARAM, "positionIdx")
        request = OrderRequest(
            market,
            side,
            order_type,
            quantity,
            price,
            tif,
            str(p.get("orderLinkId") or ""),
            _truthy(p.get("reduceOnly")),
            _IDX[position_idx],
            quote_qty,
        )
        bid, ask = ctx.engine.quote(market)
        order = ctx.engine.place(acct, request, ctx.fill_fraction)
        order.extra.update(extra)
        order.extra["lastPrice"] = fmt(ctx.engine.mid(market))
        if order_type == "MARKET" and market.is_contract:
            # Bybit prints the slippage-protection price on linear market orders.
            protect = ask * Decimal("1.1") if side is Side.BUY else bid * Decimal("0.9")
            order.extra["protectPrice"] = fmt(floor_to_step(protect, market.tick_size))
        return self._ok(ctx, {"orderId": order.order_id, "orderLinkId": order.client_id})

    async def cancel(self, ctx: RequestContext) -> web.Response:
        """``/v5/order/cancel`` by ``orderId`` or ``orderLinkId`` (110001 when unknown)."""
        market = self._market(ctx)
        assert market is not None
        order_id = ctx.params.get("orderId") or None
        link_id = ctx.params.get("orderLinkId") or None
        if not order_id and not link_id:
            raise Rejected(Reject.BAD_PARAM, "orderId or orderLinkId")
        order = ctx.engine.cancel(ctx.acct, market, order_id, link_id)
        order.extra["cancelType"] = "CancelByUser"
        return self._ok(ctx, {"orderId": order.order_id, "orderLinkId": order.client_id})

    async def cancel_all(self, ctx: RequestContext) -> web.Response:
        """``/v5/order/cancel-all`` for a symbol (or the whole category)."""
        market = self._market(ctx, required=False)
        category = self._category(ctx)
        done = []
        for order in ctx.acct.open_orders(market.symbol if market else None):
            if order.market.kind == category:
                ctx.engine.cancel(ctx.acct, order.market, order.order_id)
                order.extra["cancelType"] = "CancelByUser"
                done.append({"orderId": order.order_id, "orderLinkId": order.client_id})
        return self._ok(ctx, {"list": done, "success": "1"})

    # -- settings -----------------------------------------------------------------------
    async def set_leverage(self, ctx: RequestContext) -> web.Response:
        """``/v5/position/set-leverage`` (110043 when unchanged)."""
        market = self._market(ctx)
        assert market is not None
        buy, sell = dec(ctx.params.get("buyLeverage")), dec(ctx.params.get("sellLeverage"))
        if buy is None or sell is None or buy != sell or buy != buy.to_integral_value():
            raise Rejected(Reject.INVALID_LEVERAGE, str(buy))
        account_ops.set_leverage(ctx.engine, ctx.acct, market, int(buy), reject_unchanged=True)
        return self._ok(ctx, {})

    async def switch_isolated(self, ctx: RequestContext) -> web.Response:
        """``/v5/position/switch-isolated``: refused on unified accounts, like Bybit."""
        return bybit_error(100028, "The API cannot be executed for unified account.", ctx.now_ms)

    async def switch_mode(self, ctx: RequestContext) -> web.Response:
        """``/v5/position/switch-mode`` (mode 0 one-way, 3 hedge; 110025 when unchanged)."""
        mode = str(ctx.params.get("mode"))
        if mode not in ("0", "3"):
            raise Rejected(Reject.BAD_PARAM, "mode")
        account_ops.set_hedge_mode(ctx.acct, mode == "3")
        return self._ok(ctx, {})

    async def set_margin_mode(self, ctx: RequestContext) -> web.Response:
        """``/v5/account/set-margin-mode`` (account level; unchanged is a success)."""
        mode = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross"}.get(
            str(ctx.params.get("setMarginMode"))
        )
        if mode is None:
            return bybit_error(
                3400045,
                "Set margin mode failed",
                ctx.now_ms,
                {
                    "reasons": [
                        {
                            "reasonCode": "3400000",
                            "reasonMsg": "Equity needs to be equal to or greater than 1000 USDC",
                        }
                    ]
                },
            )
        account_ops.set_margin_mode(ctx.acct, None, mode)
        return self._ok(ctx, {"reasons": []}, "Request accepted")

    async def transfer(self, ctx: RequestContext) -> web.Response:
        """``/v5/asset/transfer/inter-transfer`` between UNIFIED and FUND."""
        p = ctx.params
        source = _WALLET.get(str(p.get("fromAccountType")))
        target = _WALLET.get(str(p.get("toAccountType")))
        amount = dec(p.get("amount"))
        if source is None or target is None or amount is None or not p.get("coin"):
            raise Rejected(Reject.BAD_PARAM, "transfer")
        transfer_id = str(p.get("transferId") or uuid.uuid4())
        account_ops.transfer(
            ctx.engine, ctx.acct, str(p["coin"]), amount, source, target, transfer_id
        )
        return self._ok(ctx, {"transferId": transfer_id, "status": "SUCCESS"}, "success")
