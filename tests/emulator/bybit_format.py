"""Bybit v5 JSON bodies, shaped like the real ones recorded in the ccxt fixtures.

Bybit sends almost every number as a string; ``retCode`` and ``time`` are
integers. Empty values are ``""`` rather than ``null``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from tests.emulator.common import fmt
from tests.emulator.engine import Engine
from tests.emulator.markets import MarketDef, decimals_of
from tests.emulator.state import (
    Account,
    Fill,
    FundingPayment,
    Order,
    OrderStatus,
    Position,
    TimeInForce,
)

__all__ = [
    "envelope",
    "funding_execution",
    "instrument",
    "order_item",
    "position_item",
    "ticker",
    "trade_execution",
    "wallet_balance",
]

ZERO = Decimal(0)
POSITION_IDX = {"BOTH": 0, "LONG": 1, "SHORT": 2}


def envelope(
    result: Any, now: int, ret_code: int = 0, ret_msg: str = "OK", ext: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The v5 wrapper around every answer."""
    return {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result,
        "retExtInfo": ext or {},
        "time": now,
    }


def _px(m: MarketDef, value: Decimal) -> str:
    return fmt(value, decimals_of(m.tick_size))


def _qty(m: MarketDef, value: Decimal) -> str:
    return fmt(value, decimals_of(m.step_size))


def instrument(m: MarketDef) -> dict[str, Any]:
    """One ``/v5/market/instruments-info`` entry (spot or linear)."""
    risk = {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}
    if m.kind == "spot":
        return {
            "symbol": m.id,
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": fmt(m.step_size),
                "quotePrecision": "0.0000001",
                "minOrderQty": fmt(m.min_qty),
                "maxOrderQty": fmt(m.max_qty),
                "minOrderAmt": fmt(m.min_notional),
                "maxOrderAmt": fmt(m.max_notional),
            },
            "priceFilter": {"tickSize": fmt(m.tick_size)},
            "riskParameters": risk,
        }
    return {
        "symbol": m.id,
        "contractType": "LinearPerpetual" if m.expiry_ms is None else "LinearFutures",
        "status": "Trading",
        "baseCoin": m.base,
        "quoteCoin": m.quote,
        "launchTime": "1584230400000",
        "deliveryTime": "0" if m.expiry_ms is None else str(m.expiry_ms),
        "deliveryFeeRate": "",
        "priceScale": str(decimals_of(m.tick_size)),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{m.max_leverage}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": _px(m, m.min_price),
            "maxPrice": _px(m, m.max_price),
            "tickSize": fmt(m.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": _qty(m, m.max_qty),
            "minOrderQty": _qty(m, m.min_qty),
            "qtyStep": fmt(m.step_size),
            "postOnlyMaxOrderQty": _qty(m, m.max_qty),
            "maxMktOrderQty": _qty(m, m.max_for(True)),
            "minNotionalValue": fmt(m.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": m.quote,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": risk,
        "displayName": "",
    }


def ticker(engine: Engine, m: MarketDef, now: int) -> dict[str, Any]:
    """One ``/v5/market/tickers`` entry."""
    bid, ask = engine.quote(m)
    mid = engine.mid(m)
    common = {
        "symbol": m.id,
        "bid1Price": _px(m, bid),
        "bid1Size": "1",
        "ask1Price": _px(m, ask),
        "ask1Size": "1",
        "lastPrice": _px(m, mid),
        "prevPrice24h": _px(m, mid),
        "price24hPcnt": "0",
        "highPrice24h": _px(m, mid * Decimal("1.01")),
        "lowPrice24h": _px(m, mid * Decimal("0.99")),
        "turnover24h": fmt(mid * 1000, 4),
        "volume24h": "1000",
    }
    if m.kind == "spot":
        return {**common, "usdIndexPrice": fmt(mid, 6)}
    next_funding = (now // 28_800_000 + 1) * 28_800_000
    mark = engine.mark(m.symbol)
    return {
        **common,
        "indexPrice": _px(m, mid),
        "markPrice": _px(m, mark),
        "prevPrice1h": _px(m, mid),
        "openInterest": "10000",
        "openInterestValue": fmt(mark * 10000, 2),
        "fundingRate": fmt(engine.funding_rate(m.symbol)),
        "nextFundingTime": str(next_funding),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "basis": "",
    }


def _status(order: Order) -> str:
    if order.status is OrderStatus.EXPIRED:
        if order.market.kind == "spot" and order.executed_qty > 0:
            return "PartiallyFilledCanceled"
        return "Cancelled"
    return {
        OrderStatus.NEW: "New",
        OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
        OrderStatus.FILLED: "Filled",
        OrderStatus.CANCELED: "Cancelled",
        OrderStatus.REJECTED: "Rejected",
    }[order.status]


def _tif(order: Order) -> str:
    if order.order_type == "MARKET":
        return "IOC"
    return {
        TimeInForce.GTC: "GTC",
        TimeInForce.IOC: "IOC",
        TimeInForce.FOK: "FOK",
        TimeInForce.POST_ONLY: "PostOnly",
    }[order.tif]


def order_item(order: Order) -> dict[str, Any]:
    """One ``/v5/order/realtime`` or ``/v5/order/history`` entry."""
    m = order.market
    contract = m.is_contract
    leaves = order.remaining if order.status.is_open else ZERO
    avg = order.avg_price
    if order.order_type == "MARKET":
        price = order.extra.get("protectPrice", "0")
    else:
        price = _px(m, order.price or ZERO)
    reject = order.extra.get("rejectReason", "EC_NoError")
    if order.status is OrderStatus.EXPIRED and reject == "EC_NoError":
        reject = "EC_CancelForNoFullFill"
    item: dict[str, Any] = {
        "symbol": m.id,
        "orderType": order.order_type.title(),
        "orderLinkId": order.client_id,
        "slLimitPrice": "0",
        "orderId": order.order_id,
        "cancelType": order.extra.get("cancelType", "UNKNOWN"),
        "avgPrice": (_px(m, avg) if avg else ("" if contract else "0")),
        "stopOrderType": "",
        "lastPriceOnCreated": order.extra.get("lastPrice", ""),
        "orderStatus": _status(order),
    }
    if contract:
        item["createType"] = "CreateByUser"
    item.update({"takeProfit": "", "cumExecValue": fmt(order.cum_quote)})
    if contract:
        item["tpslMode"] = ""
    item.update(
        {
            "smpType": "None",
            "triggerDirection": 0,
            "blockTradeId": "",
            "cumFeeDetail": {order.fee_asset: fmt(order.fee_total)} if order.fee_total else {},
            "isLeverage": "" if contract else "0",
            "rejectReason": reject,
            "price": price,
            "orderIv": "",
            "createdTime": str(order.created_ms),
            "tpTriggerBy": "",
            "positionIdx": POSITION_IDX.get(order.position_side, 0),
            "timeInForce": _tif(order),
            "leavesValue": fmt(leaves * (order.price or ZERO)),
            "updatedTime": str(order.updated_ms),
            "side": order.side.value.title(),
            "smpGroup": 0,
            "triggerPrice": "",
            "tpLimitPrice": "0",
            "cumExecFee": fmt(order.fee_total),
            "leavesQty": _qty(m, leaves),
            "slTriggerBy": "",
            "closeOnTrigger": False,
            "placeType": "",
            "cumExecQty": _qty(m, order.executed_qty),
            "reduceOnly": order.reduce_only,
            "qty": (fmt(order.quote_qty) if order.quote_qty is not None else _qty(m, order.qty)),
            "stopLoss": "",
            "marketUnit": order.extra.get("marketUnit", ""),
            "smpOrderId": "",
            "triggerBy": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "0",
            "extraFees": "",
        }
    )
    return item


def position_item(engine: Engine, acct: Account, m: MarketDef, pos: Position) -> dict[str, Any]:
    """One ``/v5/position/list`` entry (a flat position prints empty strings)."""
    mm = engine.margin
    flat = pos.qty == 0
    liq = mm.liquidation_price(acct, pos)
    bust = mm.bust_price(acct, pos)
    side = "" if flat else ("Buy" if pos.qty > 0 else "Sell")
    value = abs(pos.qty) * pos.entry_price
    im = mm.position_im(acct, pos)
    return {
        "symbol": m.id,
        "leverage": str(mm.leverage(acct, m.symbol)),
        "autoAddMargin": 0,
        "avgPrice": "0" if flat else _px(m, pos.entry_price),
        "liqPrice": "" if flat or not liq else _px(m, liq),
        "riskLimitValue": "2000000",
        "takeProfit": "",
        "positionValue": "" if flat else fmt(value, 8),
        "isReduceOnly": False,
        "tpslMode": "Full",
        "riskId": 1,
        "trailingStop": "0",
        "unrealisedPnl": "" if flat else fmt(mm.unrealized_pnl(pos), 8),
        "markPrice": _px(m, engine.mark(m.symbol)),
        "adlRankIndicator": 0 if flat else 2,
        "cumRealisedPnl": fmt(pos.realized_pnl, 8),
        "positionMM": fmt(mm.maint_margin(pos), 8),
        "createdTime": str(pos.created_ms),
        "positionIdx": POSITION_IDX[pos.position_side],
        "positionIM": fmt(im, 8),
        "seq": pos.updated_ms,
        "updatedTime": str(pos.updated_ms),
        "side": side,
        "bustPrice": "" if flat or not bust else _px(m, bust),
        "positionBalance": fmt(im, 8),
        "leverageSysUpdatedTime": "",
        "size": _qty(m, abs(pos.qty)),
        "positionStatus": "Normal",
        "mmrSysUpdatedTime": "",
        "stopLoss": "",
        "tradeMode": 1 if acct.margin_mode_of(m.symbol) == "isolated" else 0,
        "curRealisedPnl": fmt(pos.realized_pnl, 8),
        "breakEvenPrice": "" if flat else _px(m, pos.entry_price),
    }


def _usd_price(engine: Engine, coin: str) -> Decimal:
    if coin in ("USDT", "USDC", "USD"):
        return Decimal(1)
    for m in engine.markets.values():
        if m.base == coin and m.quote == "USDT" and m.kind == "spot":
            return engine.mid(m)
    return ZERO


def wallet_balance(engine: Engine, acct: Account) -> dict[str, Any]:
    """``/v5/account/wallet-balance?accountType=UNIFIED`` result."""
    mm = engine.margin
    upnl, pos_im = mm.total_upnl(acct), mm.total_position_im(acct)
    ord_im, maint = mm.total_order_im(acct), mm.total_maint(acct)
    coins, total_usd = [], ZERO
    for coin in sorted(set(acct.spot_free) | set(acct.spot_locked)):
        wallet = acct.spot_total(coin)
        usdt = coin == "USDT"
        equity = wallet + (upnl if usdt else ZERO)
        usd = equity * _usd_price(engine, coin)
        total_usd += wallet * _usd_price(engine, coin)
        coins.append(
            {
                "availableToBorrow": "",
                "bonus": "0",
                "accruedInterest": "0",
                "availableToWithdraw": "",
                "totalOrderIM": fmt(ord_im if usdt else ZERO),
                "equity": fmt(equity),
                "totalPositionMM": fmt(maint if usdt else ZERO),
                "usdValue": fmt(usd),
                "unrealisedPnl": fmt(upnl if usdt else ZERO),
                "collateralSwitch": True,
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "totalPositionIM": fmt(pos_im if usdt else ZERO),
                "walletBalance": fmt(wallet),
                "cumRealisedPnl": "0",
                "locked": fmt(acct.spot_locked.get(coin, ZERO)),
                "marginCollateral": True,
                "coin": coin,
            }
        )
    margin_balance = total_usd + upnl
    return {
        "list": [
            {
                "totalEquity": fmt(margin_balance),
                "accountIMRate": fmt((pos_im + ord_im) / margin_balance, 4)
                if margin_balance
                else "0",
                "totalMarginBalance": fmt(margin_balance),
                "totalInitialMargin": fmt(pos_im + ord_im),
                "accountType": "UNIFIED",
                "totalAvailableBalance": fmt(margin_balance - pos_im - ord_im),
                "accountMMRate": fmt(maint / margin_balance, 4) if margin_balance else "0",
                "totalPerpUPL": fmt(upnl),
                "totalWalletBalance": fmt(total_usd),
                "accountLTV": "0",
                "totalMaintenanceMargin": fmt(maint),
                "coin": coins,
            }
        ]
    }


# -- executions (/v5/execution/list) ---------------------------------------------------
def funding_execution(m: MarketDef, payment: FundingPayment) -> dict[str, Any]:
    """One ``execType=Funding`` entry of ``/v5/execution/list``.

    ``execFee`` is what the account paid (positive = paid, the opposite sign
    of the wallet change); ``side`` is the position's (``Buy`` = long);
    ``execPrice`` is the mark price and ``execValue`` the position value at it.
    """
    return {
        "symbol": m.id,
        "orderType": "UNKNOWN",
        "underlyingPrice": "",
        "orderLinkId": "",
        "orderId": payment.order_id,
        "stopOrderType": "UNKNOWN",
        "execTime": str(payment.time_ms),
        "feeCurrency": "",
        "createType": "",
        "feeRate": fmt(payment.rate),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": _px(m, payment.mark_price),
        "execPrice": _px(m, payment.mark_price),
        "markIv": "",
        "orderQty": "0",
        "orderPrice": "0",
        "execValue": fmt(payment.notional),
        "closedSize": "0",
        "execType": "Funding",
        "seq": str(payment.seq),
        "side": "Buy" if payment.qty > 0 else "Sell",
        "indexPrice": "",
        "leavesQty": "0",
        "isMaker": False,
        "execFee": fmt(payment.fee),
        "execId": payment.exec_id,
        "marketUnit": "",
        "execQty": _qty(m, abs(payment.qty)),
    }


def trade_execution(fill: Fill, order: Order, fee_rate: Decimal) -> dict[str, Any]:
    """One ``execType=Trade`` entry of ``/v5/execution/list`` (spot or linear).

    ``markPrice`` of a linear fill is its own price (the emulator keeps no mark
    history); ``leavesQty`` is what the order had left after this fill.
    """
    m = order.market
    contract = m.is_contract
    done = ZERO
    for f in order.fills:
        done += f.qty
        if f.trade_id == fill.trade_id:
            break
    if order.order_type == "MARKET":
        order_price = order.extra.get("protectPrice", "0")
    else:
        order_price = _px(m, order.price or ZERO)
    item: dict[str, Any] = {
        "symbol": m.id,
        "orderType": order.order_type.title(),
        "underlyingPrice": "",
        "orderLinkId": order.client_id,
        "orderId": order.order_id,
        "stopOrderType": "UNKNOWN" if contract else "",
        "execTime": str(fill.time_ms),
        "feeCurrency": "" if contract else fill.fee_asset,
    }
    if contract:
        item["createType"] = "CreateByUser"
    item.update(
        {
            "feeRate": fmt(fee_rate),
            "tradeIv": "",
            "blockTradeId": "",
            "markPrice": _px(m, fill.price) if contract else "",
            "execPrice": _px(m, fill.price),
            "markIv": "",
            "orderQty": (
                fmt(order.quote_qty) if order.quote_qty is not None else _qty(m, order.qty)
            ),
            "orderPrice": order_price,
            "execValue": fmt(fill.quote_qty),
            "closedSize": _qty(m, fill.closed_qty) if contract else "",
            "execType": "Trade",
            "seq": str(fill.trade_id),
            "side": fill.side.value.title(),
            "indexPrice": "",
            "leavesQty": _qty(m, max(ZERO, order.qty - done)),
            "isMaker": fill.is_maker,
            "execFee": fmt(fill.fee),
            "execId": execution_id(fill, contract),
            "marketUnit": order.extra.get("marketUnit", ""),
            "execQty": _qty(m, fill.qty),
        }
    )
    return item


def execution_id(fill: Fill, contract: bool) -> str:
    """A fill's stable ``execId``: a UUID for linear, a long number for spot (like Bybit)."""
    if contract:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"hedgekeeper-emulator-exec-{fill.trade_id}"))
    return str(2_100_000_000_000_000_000 + fill.trade_id)
