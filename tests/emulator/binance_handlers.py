"""Binance endpoint handlers (spot ``/api/v3``, USDⓈ-M ``/fapi``, a little ``/sapi``).

Each handler parses Binance's parameters, calls the engine, and renders the
answer with :mod:`tests.emulator.binance_format`. Engine rejections propagate
as :class:`Rejected` and are turned into Binance errors by the dialect.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.emulator import account_ops
from tests.emulator import binance_format as bf
from tests.emulator.binance import error
from tests.emulator.common import RequestContext, Route, dec, fmt, json_response
from tests.emulator.engine import OrderRequest
from tests.emulator.markets import MarketDef
from tests.emulator.state import Order, Reject, Rejected, Side, TimeInForce

if TYPE_CHECKING:
    from tests.emulator.server import Emulator

__all__ = ["BinanceHandlers"]

ZERO = Decimal(0)
WEEK_MS = 7 * 86_400_000
_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "GTX": TimeInForce.POST_ONLY,
}
_TRANSFER = {
    "MAIN_UMFUTURE": ("spot", "futures"),
    "UMFUTURE_MAIN": ("futures", "spot"),
    "MAIN_FUNDING": ("spot", "funding"),
    "FUNDING_MAIN": ("funding", "spot"),
    "UMFUTURE_FUNDING": ("futures", "funding"),
    "FUNDING_UMFUTURE": ("funding", "futures"),
}


def _kind(ctx: RequestContext) -> str:
    return "linear" if ctx.request.path.startswith("/fapi") else "spot"


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    """An optional integer parameter; malformed is -1102."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise Rejected(Reject.BAD_PARAM, name) from None


class BinanceHandlers:
    """The handler set, bound to one emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        """The route table (method, path, handler, signed?)."""
        r: list[Route] = []
        for prefix in ("/api/v3", "/fapi/v1"):
            r += [
                Route("GET", f"{prefix}/ping", self.ping),
                Route("GET", f"{prefix}/time", self.time),
                Route("GET", f"{prefix}/exchangeInfo", self.exchange_info),
                Route("GET", f"{prefix}/ticker/24hr", self.ticker_24hr),
                Route("GET", f"{prefix}/ticker/bookTicker", self.book_ticker),
                Route("POST", f"{prefix}/order", self.new_order, True),
                Route("GET", f"{prefix}/order", self.query_order, True),
                Route("DELETE", f"{prefix}/order", self.cancel_order, True),
                Route("GET", f"{prefix}/openOrders", self.open_orders, True),
            ]
        r += [
            Route("GET", "/api/v3/account", self.spot_account, True),
            Route("DELETE", "/api/v3/openOrders", self.cancel_all, True),
            Route("DELETE", "/fapi/v1/allOpenOrders", self.cancel_all, True),
            Route("GET", "/fapi/v1/premiumIndex", self.premium_index),
            Route("GET", "/fapi/v1/income", self.income, True),
            Route("GET", "/fapi/v1/leverageBracket", self.leverage_bracket, True),
            Route("GET", "/fapi/v2/account", self.futures_account, True),
            Route("GET", "/fapi/v3/account", self.futures_account, True),
            Route("GET", "/fapi/v2/balance", self.futures_balance, True),
            Route("GET", "/fapi/v3/balance", self.futures_balance, True),
            Route("GET", "/fapi/v2/positionRisk", self.position_risk, True),
            Route("GET", "/fapi/v3/positionRisk", self.position_risk, True),
            Route("POST", "/fapi/v1/leverage", self.set_leverage, True),
            Route("POST", "/fapi/v1/marginType", self.set_margin_type, True),
            Route("GET", "/fapi/v1/positionSide/dual", self.get_dual, True),
            Route("POST", "/fapi/v1/positionSide/dual", self.set_dual, True),
            Route("GET", "/sapi/v1/system/status", self.system_status),
            Route("GET", "/sapi/v1/account/apiRestrictions", self.api_restrictions, True),
            Route("GET", "/sapi/v1/margin/allPairs", self.margin_pairs, True),
            Route("GET", "/sapi/v1/margin/isolated/allPairs", self.margin_pairs, True),
            Route("POST", "/sapi/v1/asset/transfer", self.transfer, True),
        ]
        from tests.emulator.binance_history import HistoryHandlers

        r += HistoryHandlers(self.emu).routes()
        return r

    # -- helpers --------------------------------------------------------------------
    def _market(self, ctx: RequestContext, required: bool = True) -> MarketDef | None:
        symbol = ctx.params.get("symbol")
        if not symbol:
            if required:
                raise Rejected(Reject.BAD_PARAM, "symbol")
            return None
        return ctx.engine.market_by_id(str(symbol), _kind(ctx))

    def _markets(self, ctx: RequestContext) -> list[MarketDef]:
        """Markets named by ``symbol`` / ``symbols`` (a JSON list), or all of the kind."""
        kind = _kind(ctx)
        if ctx.params.get("symbols"):
            ids = json.loads(str(ctx.params["symbols"]))
            return [ctx.engine.market_by_id(i, kind) for i in ids]
        one = self._market(ctx, required=False)
        return [one] if one else ctx.engine.priced_markets_of_kind(kind)

    def _one_or_list(self, ctx: RequestContext, items: list[dict[str, Any]]) -> web.Response:
        return json_response(items[0] if ctx.params.get("symbol") else items)

    # -- public ---------------------------------------------------------------------
    async def ping(self, ctx: RequestContext) -> web.Response:
        """``GET /ping``."""
        return json_response({})

    async def time(self, ctx: RequestContext) -> web.Response:
        """``GET /time`` - the (possibly skewed) server clock."""
        return json_response({"serverTime": ctx.now_ms})

    async def system_status(self, ctx: RequestContext) -> web.Response:
        """``GET /sapi/v1/system/status``."""
        return json_response({"status": 0, "msg": "normal"})

    async def exchange_info(self, ctx: RequestContext) -> web.Response:
        """``GET /exchangeInfo`` for spot or USDⓈ-M."""
        return json_response(bf.exchange_info(ctx.engine, _kind(ctx), ctx.now_ms))

    async def ticker_24hr(self, ctx: RequestContext) -> web.Response:
        """``GET /ticker/24hr``; futures tickers carry no bid/ask (like Binance)."""
        items = []
        for m in self._markets(ctx):
            bid, ask = ctx.engine.quote(m)
            mid = ctx.engine.mid(m)
            fmt_p = bf.s8 if m.kind == "spot" else (lambda v, m=m: bf.px(m, v))
            item: dict[str, Any] = {
                "symbol": m.id,
                "priceChange": fmt_p(ZERO),
                "priceChangePercent": "0.000",
                "weightedAvgPrice": fmt_p(mid),
            }
            if m.kind == "spot":
                item.update(
                    {
                        "prevClosePrice": fmt_p(mid),
                        "lastPrice": fmt_p(mid),
                        "lastQty": bf.s8(m.min_qty),
                        "bidPrice": fmt_p(bid),
                        "bidQty": bf.s8(Decimal(1)),
                        "askPrice": fmt_p(ask),
                        "askQty": bf.s8(Decimal(1)),
                    }
                )
            else:
                item.update({"lastPrice": fmt_p(mid), "lastQty": bf.qty(m, m.min_qty)})
            item.update(
                {
                    "openPrice": fmt_p(mid),
                    "highPrice": fmt_p(mid * Decimal("1.01")),
                    "lowPrice": fmt_p(mid * Decimal("0.99")),
                    "volume": fmt(Decimal(1000), 3),
                    "quoteVolume": fmt(mid * 1000, 2),
                    "openTime": ctx.now_ms - 86_400_000,
                    "closeTime": ctx.now_ms,
                    "firstId": 1,
                    "lastId": 1000,
                    "count": 1000,
                }
            )
            items.append(item)
        return self._one_or_list(ctx, items)

    async def book_ticker(self, ctx: RequestContext) -> web.Response:
        """``GET /ticker/bookTicker``."""
        items: list[dict[str, Any]] = []
        for m in self._markets(ctx):
            bid, ask = ctx.engine.quote(m)
            if m.kind == "spot":
                items.append(
                    {
                        "symbol": m.id,
                        "bidPrice": bf.s8(bid),
                        "bidQty": bf.s8(Decimal(1)),
                        "askPrice": bf.s8(ask),
                        "askQty": bf.s8(Decimal(1)),
                    }
                )
            else:
                items.append(
                    {
                        "symbol": m.id,
                        "bidPrice": bf.px(m, bid),
                        "bidQty": "10.000",
                        "askPrice": bf.px(m, ask),
                        "askQty": "10.000",
                        "time": ctx.now_ms,
                        "lastUpdateId": ctx.now_ms,
                    }
                )
        return self._one_or_list(ctx, items)

    async def premium_index(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v1/premiumIndex`` - mark prices (ccxt ``fetchMarkPrice(s)``)."""
        items = []
        next_funding = (ctx.now_ms // 28_800_000 + 1) * 28_800_000
        for m in self._markets(ctx):
            mark = ctx.engine.mark(m.symbol)
            items.append(
                {
                    "symbol": m.id,
                    "markPrice": fmt(mark, 8),
                    "indexPrice": fmt(ctx.engine.mid(m), 8),
                    "estimatedSettlePrice": fmt(mark, 8),
                    "lastFundingRate": fmt(ctx.engine.funding_rate(m.symbol), 8),
                    "interestRate": "0.00010000",
                    "nextFundingTime": next_funding,
                    "time": ctx.now_ms,
                }
            )
        return self._one_or_list(ctx, items)

    # -- income -------------------------------------------------------------------------
    async def income(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v1/income`` - funding fees only (ccxt ``fetchFundingHistory``).

        Without ``startTime`` and ``endTime`` the last 7 days; with one of them
        the range is open on the other side. Ascending by time; ``limit``
        (default 100, at most 1000) cuts from the oldest, ``page`` (from 1)
        skips whole pages. Another ``incomeType`` answers ``[]``: only
        ``FUNDING_FEE`` is modelled.
        """
        p = ctx.params
        limit = _opt_int(p, "limit")
        limit = 100 if limit is None else limit
        if not 1 <= limit <= 1000:
            return error(-1130, "Data sent for parameter 'limit' is not valid.")
        page = _opt_int(p, "page")
        page = 1 if page is None else page
        if page < 1:
            return error(-1130, "Data sent for parameter 'page' is not valid.")
        market = self._market(ctx, required=False)
        income_type = p.get("incomeType")
        if income_type and income_type != "FUNDING_FEE":
            return json_response([])
        start, end = _opt_int(p, "startTime"), _opt_int(p, "endTime")
        if start is None and end is None:
            start, end = ctx.now_ms - WEEK_MS, ctx.now_ms
        payments = ctx.acct.funding_payments_between(market.symbol if market else None, start, end)
        offset = (page - 1) * limit
        chosen = payments[offset : offset + limit]
        return json_response([bf.income_item(ctx.engine.markets[f.symbol], f) for f in chosen])

    # -- orders ---------------------------------------------------------------------
    async def new_order(self, ctx: RequestContext) -> web.Response:
        """``POST /order`` (spot FULL response, futures RESULT response)."""
        p, acct = ctx.params, ctx.acct
        market = self._market(ctx)
        assert market is not None
        side_raw = str(p.get("side", "")).upper()
        if side_raw not in ("BUY", "SELL"):
            raise Rejected(Reject.BAD_PARAM, "side")
        order_type = str(p.get("type", "")).upper()
        allowed = ("MARKET", "LIMIT") + (("LIMIT_MAKER",) if market.kind == "spot" else ())
        if order_type not in allowed:
            return error(-1116, "Invalid orderType.")
        tif_raw = p.get("timeInForce")
        if order_type == "LIMIT" and not tif_raw:
            raise Rejected(Reject.BAD_PARAM, "timeInForce")
        tif = _TIF.get(str(tif_raw or "GTC"))
        if tif is None or (tif is TimeInForce.POST_ONLY and market.kind == "spot"):
            return error(-1115, "Invalid timeInForce.")
        quantity, quote_qty = dec(p.get("quantity")), dec(p.get("quoteOrderQty"))
        if quantity is None and (quote_qty is None or market.kind != "spot"):
            raise Rejected(Reject.BAD_PARAM, "quantity")
        price = dec(p.get("price")) if order_type != "MARKET" else None
        if order_type != "MARKET" and price is None:
            raise Rejected(Reject.BAD_PARAM, "price")
        if market.is_contract and acct.hedge_mode and "reduceOnly" in p:
            raise Rejected(Reject.REDUCE_ONLY_IN_HEDGE_MODE)
        request = OrderRequest(
            market,
            Side(side_raw),
            order_type,
            quantity,
            price,
            tif,
            str(p.get("newClientOrderId") or ctx.engine.random_client_id()),
            str(p.get("reduceOnly", "false")).lower() == "true",
            str(p.get("positionSide", "BOTH")).upper(),
            quote_qty,
        )
        order = ctx.engine.place(acct, request, ctx.fill_fraction)
        if market.kind == "spot":
            return json_response(bf.spot_order(order, "new"))
        return json_response(bf.futures_order(order, "new"))

    def _lookup(self, ctx: RequestContext, op: str) -> Order:
        ctx.extra["op"] = op
        market = self._market(ctx)
        assert market is not None
        order_id = ctx.params.get("orderId")
        client_id = ctx.params.get("origClientOrderId")
        if not order_id and not client_id:
            raise Rejected(Reject.BAD_PARAM, "orderId")
        if op == "cancel":
            return ctx.engine.cancel(ctx.acct, market, order_id or None, client_id or None)
        return ctx.engine.find_order(ctx.acct, market, order_id or None, client_id or None)

    async def query_order(self, ctx: RequestContext) -> web.Response:
        """``GET /order`` by ``orderId`` or ``origClientOrderId`` (-2013 when unknown)."""
        order = self._lookup(ctx, "query")
        if order.market.kind == "spot":
            return json_response(bf.spot_order(order, "query"))
        return json_response(bf.futures_order(order, "query"))

    async def cancel_order(self, ctx: RequestContext) -> web.Response:
        """``DELETE /order`` (-2011 when unknown or no longer open)."""
        order = self._lookup(ctx, "cancel")
        if order.market.kind == "spot":
            # Spot echoes the cancel request's own client id in ``clientOrderId``.
            cancel_id = str(ctx.params.get("newClientOrderId") or ctx.engine.random_client_id())
            return json_response(bf.spot_order(order, "cancel", cancel_id))
        return json_response(bf.futures_order(order, "new"))

    async def open_orders(self, ctx: RequestContext) -> web.Response:
        """``GET /openOrders`` for one symbol or all of the kind."""
        market = self._market(ctx, required=False)
        kind = _kind(ctx)
        orders = [
            o
            for o in ctx.acct.open_orders(market.symbol if market else None)
            if o.market.kind == kind
        ]
        if kind == "spot":
            return json_response([bf.spot_order(o, "query") for o in orders])
        return json_response([bf.futures_order(o, "query") for o in orders])

    async def cancel_all(self, ctx: RequestContext) -> web.Response:
        """``DELETE /api/v3/openOrders`` and ``DELETE /fapi/v1/allOpenOrders``."""
        market = self._market(ctx)
        assert market is not None
        canceled = [
            ctx.engine.cancel(ctx.acct, market, o.order_id)
            for o in ctx.acct.open_orders(market.symbol)
        ]
        if market.kind == "spot":
            return json_response(
                [bf.spot_order(o, "cancel", ctx.engine.random_client_id()) for o in canceled]
            )
        return json_response(
            {"code": 200, "msg": "The operation of cancel all open order is done."}
        )

    # -- accounts -------------------------------------------------------------------
    async def spot_account(self, ctx: RequestContext) -> web.Response:
        """``GET /api/v3/account``."""
        return json_response(bf.spot_account(ctx.acct, ctx.now_ms))

    async def futures_account(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v2/account`` and ``/fapi/v3/account``."""
        v2 = ctx.request.path.startswith("/fapi/v2")
        return json_response(bf.futures_account(ctx.engine, ctx.acct, ctx.now_ms, v2))

    async def futures_balance(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v2/balance``."""
        return json_response(bf.futures_balance(ctx.engine, ctx.acct, ctx.now_ms))

    async def position_risk(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v3/positionRisk`` (open positions only) or ``/fapi/v2`` (all)."""
        v2 = ctx.request.path.startswith("/fapi/v2")
        acct = ctx.acct.position_view()  # may lag a fill (faults)
        sides = ["LONG", "SHORT"] if acct.hedge_mode else ["BOTH"]
        items = []
        for m in self._markets(ctx):
            for side in sides:
                pos = acct.position(m.symbol, side)
                if v2:
                    items.append(bf.position_risk_v2(ctx.engine, acct, m, pos))
                elif pos.qty != 0:
                    items.append(bf.position_risk_v3(ctx.engine, acct, m, pos))
        return json_response(items)

    async def leverage_bracket(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v1/leverageBracket`` - one tier per symbol (the margin model's)."""
        items = [
            {
                "symbol": m.id,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": m.max_leverage,
                        "notionalCap": 100_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(m.maint_margin_rate),
                        "cum": 0.0,
                    }
                ],
            }
            for m in self._markets(ctx)
        ]
        return self._one_or_list(ctx, items)

    async def set_leverage(self, ctx: RequestContext) -> web.Response:
        """``POST /fapi/v1/leverage`` (setting the same value is a success)."""
        market = self._market(ctx)
        assert market is not None
        try:
            leverage = int(str(ctx.params.get("leverage")))
        except ValueError:
            raise Rejected(Reject.BAD_PARAM, "leverage") from None
        account_ops.set_leverage(ctx.engine, ctx.acct, market, leverage, reject_unchanged=False)
        return json_response(
            {"leverage": leverage, "maxNotionalValue": "5000000", "symbol": market.id}
        )

    async def set_margin_type(self, ctx: RequestContext) -> web.Response:
        """``POST /fapi/v1/marginType`` (-4046 when unchanged)."""
        market = self._market(ctx)
        mode = {"ISOLATED": "isolated", "CROSSED": "cross", "CROSS": "cross"}.get(
            str(ctx.params.get("marginType", "")).upper()
        )
        if mode is None:
            raise Rejected(Reject.BAD_PARAM, "marginType")
        if not account_ops.set_margin_mode(ctx.acct, market, mode):
            raise Rejected(Reject.MARGIN_MODE_NOT_MODIFIED)
        return json_response({"code": 200, "msg": "success"})

    async def get_dual(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v1/positionSide/dual``."""
        return json_response({"dualSidePosition": ctx.acct.hedge_mode})

    async def set_dual(self, ctx: RequestContext) -> web.Response:
        """``POST /fapi/v1/positionSide/dual`` (-4059 when unchanged)."""
        hedged = str(ctx.params.get("dualSidePosition", "")).lower() == "true"
        account_ops.set_hedge_mode(ctx.acct, hedged)
        return json_response({"code": 200, "msg": "success"})

    async def api_restrictions(self, ctx: RequestContext) -> web.Response:
        """``GET /sapi/v1/account/apiRestrictions`` from the key's permissions."""
        perms = ctx.acct.permissions
        return json_response(
            {
                "ipRestrict": perms.ip_restricted,
                "createTime": 1_700_000_000_000,
                "enableReading": True,
                "enableWithdrawals": perms.withdraw,
                "enableInternalTransfer": perms.transfer,
                "enableMargin": False,
                "enableFutures": perms.futures,
                "permitsUniversalTransfer": perms.transfer,
                "enableVanillaOptions": False,
                "enableFixApiTrade": False,
                "enableFixReadOnly": False,
                "enableSpotAndMarginTrading": perms.trade,
                "enablePortfolioMarginTrading": False,
            }
        )

    async def margin_pairs(self, ctx: RequestContext) -> web.Response:
        """``GET /sapi/v1/margin/(isolated/)allPairs`` (ccxt loads them with keys set)."""
        return json_response(
            [
                {
                    "id": 100 + i,
                    "symbol": m.id,
                    "base": m.base,
                    "quote": m.quote,
                    "isMarginTrade": True,
                    "isBuyAllowed": True,
                    "isSellAllowed": True,
                }
                for i, m in enumerate(ctx.engine.markets_of_kind("spot"))
            ]
        )

    async def transfer(self, ctx: RequestContext) -> web.Response:
        """``POST /sapi/v1/asset/transfer`` (universal transfer)."""
        route = _TRANSFER.get(str(ctx.params.get("type", "")))
        amount = dec(ctx.params.get("amount"))
        if route is None or amount is None or not ctx.params.get("asset"):
            raise Rejected(Reject.BAD_PARAM, "type")
        tran_id = str(ctx.engine.new_order_id(ctx.engine.markets_of_kind("spot")[0]))
        account_ops.transfer(
            ctx.engine, ctx.acct, str(ctx.params["asset"]), amount, *route, transfer_id=tran_id
        )
        return json_response({"tranId": int(tran_id)})
