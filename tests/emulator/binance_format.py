"""Binance JSON bodies, shaped like the real ones recorded in the ccxt fixtures.

Numbers are strings where Binance sends strings (prices, quantities, money) and
integers where it sends integers (ids, times). Spot prints 8 decimals; USDⓈ-M
prints at the market's precision.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

from tests.emulator.common import fmt
from tests.emulator.engine import Engine
from tests.emulator.markets import MarketDef, decimals_of
from tests.emulator.state import Account, Fill, FundingPayment, Order, Position, TimeInForce

__all__ = [
    "exchange_info",
    "futures_account",
    "futures_balance",
    "futures_order",
    "futures_symbol",
    "income_item",
    "position_risk_v2",
    "position_risk_v3",
    "spot_account",
    "spot_order",
    "spot_symbol",
]

ZERO = Decimal(0)
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
]


def s8(value: Decimal) -> str:
    """Spot style: always eight decimals."""
    return fmt(value, 8)


def px(market: MarketDef, value: Decimal) -> str:
    """A price at the market's tick precision."""
    return fmt(value, decimals_of(market.tick_size))


def qty(market: MarketDef, value: Decimal) -> str:
    """A quantity at the market's step precision."""
    return fmt(value, decimals_of(market.step_size))


# -- exchangeInfo -----------------------------------------------------------------
def spot_symbol(m: MarketDef) -> dict[str, Any]:
    """One ``/api/v3/exchangeInfo`` symbol entry."""
    return {
        "symbol": m.id,
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": s8(m.min_price),
                "maxPrice": s8(m.max_price),
                "tickSize": s8(m.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": s8(m.min_qty),
                "maxQty": s8(m.max_qty),
                "stepSize": s8(m.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": s8(ZERO),
                "maxQty": s8(m.max_for(True)),
                "stepSize": s8(ZERO),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": s8(m.min_notional),
                "applyMinToMarket": True,
                "maxNotional": s8(m.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def futures_symbol(m: MarketDef) -> dict[str, Any]:
    """One ``/fapi/v1/exchangeInfo`` symbol entry."""
    return {
        "symbol": m.id,
        "pair": f"{m.base}{m.quote}",
        "contractType": "PERPETUAL" if m.expiry_ms is None else "CURRENT_QUARTER",
        "deliveryDate": 4133404800000 if m.expiry_ms is None else m.expiry_ms,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": m.base,
        "quoteAsset": m.quote,
        "marginAsset": m.quote,
        "pricePrecision": decimals_of(m.tick_size),
        "quantityPrecision": decimals_of(m.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["PoW"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(m.min_price),
                "maxPrice": fmt(m.max_price),
                "tickSize": fmt(m.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "stepSize": fmt(m.step_size),
                "minQty": fmt(m.min_qty),
                "maxQty": fmt(m.max_qty),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "stepSize": fmt(m.step_size),
                "minQty": fmt(m.min_qty),
                "maxQty": fmt(m.max_for(True)),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": fmt(m.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def exchange_info(engine: Engine, kind: str, now: int) -> dict[str, Any]:
    """The whole ``exchangeInfo`` body of spot or USDⓈ-M futures."""
    markets = engine.markets_of_kind(kind)
    if kind == "spot":
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [spot_symbol(m) for m in markets],
        }
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [futures_symbol(m) for m in markets],
    }


# -- orders -------------------------------------------------------------------------
_TIF = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.POST_ONLY: "GTX",
}


def _status(order: Order) -> str:
    return order.status.value


def spot_fill(fill: Fill) -> dict[str, Any]:
    """One entry of a FULL response's ``fills``."""
    return {
        "price": s8(fill.price),
        "qty": s8(fill.qty),
        "commission": s8(fill.fee),
        "commissionAsset": fill.fee_asset,
        "tradeId": fill.trade_id,
    }


def spot_order(order: Order, view: str, cancel_client_id: str = "") -> dict[str, Any]:
    """A spot order as ``POST`` (view ``new``), ``GET`` (``query``) or ``DELETE`` (``cancel``)."""
    base: dict[str, Any] = {
        "symbol": order.market.id,
        "orderId": int(order.order_id),
        "orderListId": -1,
        "clientOrderId": order.client_id,
    }
    if view == "cancel":
        base = {
            "symbol": order.market.id,
            "origClientOrderId": order.client_id,
            "orderId": int(order.order_id),
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
        }
    if view in ("new", "cancel"):
        base["transactTime"] = order.updated_ms
    body = {
        **base,
        "price": s8(order.price or ZERO),
        "origQty": s8(order.qty),
        "executedQty": s8(order.executed_qty),
        "cummulativeQuoteQty": s8(order.cum_quote),
        "status": _status(order),
        "timeInForce": "GTC" if order.tif is TimeInForce.POST_ONLY else _TIF[order.tif],
        "type": order.order_type,
        "side": order.side.value,
    }
    if view == "query":
        body.update(
            {
                "stopPrice": s8(ZERO),
                "icebergQty": s8(ZERO),
                "time": order.created_ms,
                "updateTime": order.updated_ms,
                "isWorking": True,
                "workingTime": order.created_ms,
            }
        )
    body["origQuoteOrderQty"] = s8(order.quote_qty or ZERO)
    if view == "new":
        body["workingTime"] = order.created_ms
        body["fills"] = [spot_fill(f) for f in order.fills]
    body["selfTradePreventionMode"] = "EXPIRE_MAKER"
    return body


def futures_order(order: Order, view: str) -> dict[str, Any]:
    """A USDⓈ-M order as ``POST``/``DELETE`` (``new``) or ``GET``/openOrders (``query``)."""
    m = order.market
    avg = order.avg_price
    body: dict[str, Any] = {
        "orderId": int(order.order_id),
        "symbol": m.id,
        "status": _status(order),
        "clientOrderId": order.client_id,
        "price": px(m, order.price) if order.price is not None else "0",
        "avgPrice": fmt(avg, decimals_of(m.tick_size) + 4) if avg else "0",
        "origQty": qty(m, order.qty),
        "executedQty": qty(m, order.executed_qty),
    }
    if view == "new":
        body["cumQty"] = qty(m, order.executed_qty)
    body.update(
        {
            "cumQuote": fmt(order.cum_quote, 5),
            "timeInForce": _TIF[order.tif],
            "type": order.order_type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side.value,
            "positionSide": order.position_side,
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.order_type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
        }
    )
    if view == "query":
        body["time"] = order.created_ms
    body["updateTime"] = order.updated_ms
    return body


# -- accounts and positions ---------------------------------------------------------
def spot_account(acct: Account, now: int) -> dict[str, Any]:
    """``GET /api/v3/account``."""
    assets = sorted(set(acct.spot_free) | set(acct.spot_locked))
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": "0.00100000",
            "taker": "0.00100000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": acct.permissions.trade,
        "canWithdraw": acct.permissions.withdraw,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": now,
        "accountType": "SPOT",
        "balances": [
            {
                "asset": a,
                "free": s8(acct.spot_free.get(a, ZERO)),
                "locked": s8(acct.spot_locked.get(a, ZERO)),
            }
            for a in assets
        ],
        "permissions": ["SPOT"],
        "uid": zlib.crc32(acct.api_key.encode()) % 10**9,
    }


def _asset_entry(engine: Engine, acct: Account, now: int, v2: bool) -> dict[str, Any]:
    mm = engine.margin
    wallet = acct.collateral()
    upnl = mm.total_upnl(acct)
    pos_im, ord_im = mm.total_position_im(acct), mm.total_order_im(acct)
    avail = mm.available(acct)
    entry: dict[str, Any] = {
        "asset": "USDT",
        "walletBalance": fmt(wallet, 8),
        "unrealizedProfit": fmt(upnl, 8),
        "marginBalance": fmt(wallet + upnl, 8),
        "maintMargin": fmt(mm.total_maint(acct), 8),
        "initialMargin": fmt(pos_im + ord_im, 8),
        "positionInitialMargin": fmt(pos_im, 8),
        "openOrderInitialMargin": fmt(ord_im, 8),
        "crossWalletBalance": fmt(wallet, 8),
        "crossUnPnl": fmt(upnl, 8),
        "availableBalance": fmt(avail, 8),
        "maxWithdrawAmount": fmt(max(ZERO, min(wallet, avail)), 8),
    }
    if v2:
        entry["marginAvailable"] = True
    # ccxt skips assets whose updateTime is 0, like Binance does for untouched ones.
    entry["updateTime"] = now if (wallet != 0 or acct.open_positions()) else 0
    return entry


def futures_account(engine: Engine, acct: Account, now: int, v2: bool) -> dict[str, Any]:
    """``GET /fapi/v2/account`` (``v2``) or ``/fapi/v3/account``."""
    mm = engine.margin
    asset = _asset_entry(engine, acct, now, v2)
    totals = {
        "totalInitialMargin": asset["initialMargin"],
        "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"],
        "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"],
        "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["crossWalletBalance"],
        "totalCrossUnPnl": asset["crossUnPnl"],
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
    }
    positions: list[dict[str, Any]] = []
    for m in engine.markets_of_kind("linear"):
        sides = ["LONG", "SHORT"] if acct.hedge_mode else ["BOTH"]
        for side in sides:
            pos = acct.position(m.symbol, side)
            if not v2 and pos.qty == 0:
                continue  # v3 lists only symbols with a position
            im = mm.position_im(acct, pos)
            common = {
                "symbol": m.id,
                "positionSide": side,
                "positionAmt": qty(m, pos.qty),
                "unrealizedProfit": fmt(mm.unrealized_pnl(pos), 8),
            }
            if v2:
                positions.append(
                    {
                        **common,
                        "initialMargin": fmt(im, 8),
                        "maintMargin": fmt(mm.maint_margin(pos), 8),
                        "positionInitialMargin": fmt(im, 8),
                        "openOrderInitialMargin": "0",
                        "leverage": str(mm.leverage(acct, m.symbol)),
                        "isolated": acct.margin_mode_of(m.symbol) == "isolated",
                        "entryPrice": px(m, pos.entry_price),
                        "breakEvenPrice": "0.0",
                        "maxNotional": "5000000",
                        "bidNotional": "0",
                        "askNotional": "0",
                        "updateTime": pos.updated_ms,
                    }
                )
            else:
                iso = mm.isolated_margin(acct, pos)
                positions.append(
                    {
                        **common,
                        "isolatedMargin": fmt(iso, 8),
                        "notional": fmt(mm.notional(pos), 8),
                        "isolatedWallet": fmt(iso, 8),
                        "initialMargin": fmt(im, 8),
                        "maintMargin": fmt(mm.maint_margin(pos), 8),
                        "updateTime": pos.updated_ms,
                    }
                )
    head: dict[str, Any] = {}
    if v2:
        head = {
            "feeTier": 0,
            "canTrade": acct.permissions.trade,
            "canDeposit": True,
            "canWithdraw": acct.permissions.withdraw,
            "tradeGroupId": -1,
            "updateTime": 0,
            "multiAssetsMargin": False,
        }
    return {**head, **totals, "assets": [asset], "positions": positions}


def futures_balance(engine: Engine, acct: Account, now: int) -> list[dict[str, Any]]:
    """``GET /fapi/v2/balance``."""
    asset = _asset_entry(engine, acct, now, v2=True)
    return [
        {
            "accountAlias": "SgsR",
            "asset": "USDT",
            "balance": asset["walletBalance"],
            "crossWalletBalance": asset["crossWalletBalance"],
            "crossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "marginAvailable": True,
            "updateTime": asset["updateTime"],
        }
    ]


def _risk_common(engine: Engine, acct: Account, m: MarketDef, pos: Position) -> dict[str, Any]:
    mm = engine.margin
    iso = mm.isolated_margin(acct, pos)
    return {
        "symbol": m.id,
        "positionAmt": qty(m, pos.qty),
        "entryPrice": fmt(pos.entry_price, 8) if pos.entry_price else "0.0",
        "breakEvenPrice": fmt(pos.entry_price, 8) if pos.entry_price else "0.0",
        "markPrice": fmt(engine.mark(m.symbol), 8),
        "unRealizedProfit": fmt(mm.unrealized_pnl(pos), 8),
        "liquidationPrice": fmt(mm.liquidation_price(acct, pos), 8),
        "isolatedMargin": fmt(iso, 8),
        "notional": fmt(mm.notional(pos), 8),
        "isolatedWallet": fmt(iso, 8),
        "positionSide": pos.position_side,
        "updateTime": pos.updated_ms,
    }


def position_risk_v3(engine: Engine, acct: Account, m: MarketDef, pos: Position) -> dict[str, Any]:
    """``GET /fapi/v3/positionRisk`` entry (no leverage, no marginType)."""
    mm = engine.margin
    c = _risk_common(engine, acct, m, pos)
    im = mm.position_im(acct, pos)
    return {
        "symbol": c["symbol"],
        "positionSide": c["positionSide"],
        "positionAmt": c["positionAmt"],
        "entryPrice": c["entryPrice"],
        "breakEvenPrice": c["breakEvenPrice"],
        "markPrice": c["markPrice"],
        "unRealizedProfit": c["unRealizedProfit"],
        "liquidationPrice": c["liquidationPrice"],
        "isolatedMargin": c["isolatedMargin"],
        "notional": c["notional"],
        "marginAsset": m.quote,
        "isolatedWallet": c["isolatedWallet"],
        "initialMargin": fmt(im, 8),
        "maintMargin": fmt(mm.maint_margin(pos), 8),
        "positionInitialMargin": fmt(im, 8),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": c["updateTime"],
    }


def position_risk_v2(engine: Engine, acct: Account, m: MarketDef, pos: Position) -> dict[str, Any]:
    """``GET /fapi/v2/positionRisk`` entry (with leverage and marginType)."""
    c = _risk_common(engine, acct, m, pos)
    isolated = acct.margin_mode_of(m.symbol) == "isolated"
    return {
        "symbol": c["symbol"],
        "positionAmt": c["positionAmt"],
        "entryPrice": c["entryPrice"],
        "breakEvenPrice": c["breakEvenPrice"],
        "markPrice": c["markPrice"],
        "unRealizedProfit": c["unRealizedProfit"],
        "liquidationPrice": c["liquidationPrice"],
        "leverage": str(engine.margin.leverage(acct, m.symbol)),
        "maxNotionalValue": "5000000",
        "marginType": "isolated" if isolated else "cross",
        "isolatedMargin": c["isolatedMargin"],
        "isAutoAddMargin": "false",
        "positionSide": c["positionSide"],
        "notional": c["notional"],
        "isolatedWallet": c["isolatedWallet"],
        "updateTime": c["updateTime"],
        "isolated": isolated,
        "adlQuantile": 0,
    }


# -- income -------------------------------------------------------------------------
def income_item(m: MarketDef, payment: FundingPayment) -> dict[str, Any]:
    """One ``GET /fapi/v1/income`` entry for a funding fee.

    ``income`` is the wallet change (negative = paid). ``time`` and ``tranId``
    are JSON integers as Binance documents them (the ccxt fixture stringifies
    every number); ``tradeId`` is an empty string.
    """
    return {
        "symbol": m.id,
        "incomeType": "FUNDING_FEE",
        "income": fmt(payment.amount, 8),
        "asset": m.quote,
        "time": payment.time_ms,
        "info": "FUNDING_FEE",
        "tranId": payment.payment_id,
        "tradeId": "",
    }
