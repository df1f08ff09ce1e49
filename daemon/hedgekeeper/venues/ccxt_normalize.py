"""Pure conversions from ccxt's unified structures to hedgekeeper's domain types.

No I/O and no ccxt import: every function takes the dicts ccxt returns and
either returns domain values or raises ``ValueError`` / ``KeyError`` /
``TypeError`` when a reply does not say enough (the adapter turns those into
``RetryableReadError`` — an unreadable reply is never taken as zero).
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedgekeeper.exceptions import VenueConfigError
from hedgekeeper.model import (
    STABLECOINS,
    FundingPayment,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    Side,
)
from hedgekeeper.venues.base import to_decimal
from hedgekeeper.venues.ccxt_params import AmountUnit

__all__ = [
    "PARSE_ERRORS",
    "KeyPermissions",
    "balances",
    "binance_key_permissions",
    "bybit_hedged",
    "bybit_key_permissions",
    "check_balance_reply",
    "check_positions_reply",
    "fee_usd",
    "market_spec",
    "order_info",
    "orders_with_prefix",
    "positions",
    "quote",
    "quotes",
    "signed_contracts",
]

#: What a malformed reply raises here (and inside ccxt's own parsers).
# ArithmeticError: Decimal("n/a") raises decimal.InvalidOperation, which is not a ValueError.
PARSE_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError)

# ccxt precision modes (ccxt.base.decimal_to_precision), copied to avoid importing ccxt.
_DECIMAL_PLACES = 2
_TICK_SIZE = 4

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """What an API key may do, as far as the exchange tells (``None``: not said)."""

    can_trade: bool | None
    can_withdraw: bool | None
    ip_restricted: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _step(value: Any, precision_mode: int) -> Decimal | None:
    """A precision value as a step: TICK_SIZE gives the step, DECIMAL_PLACES a digit count."""
    if value is None:
        return None
    if precision_mode == _DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    if precision_mode == _TICK_SIZE:
        return to_decimal(value)
    raise VenueConfigError(f"precision mode {precision_mode} (significant digits) has no step")


def market_spec(
    market: Mapping[str, Any], precision_mode: int, unit: AmountUnit = AmountUnit.CONTRACTS
) -> MarketSpec | None:
    """Normalise a ccxt market; ``None`` for kinds the daemon does not trade (options).

    Where ccxt amounts are in the base coin (``unit`` BASE, WEEX) a contract is one
    base unit whatever ccxt's ``contractSize`` says, so that orders, positions and
    exposure all count the same thing (see :func:`signed_contracts`).
    """
    if market.get("spot"):
        kind = MarketKind.SPOT
    elif market.get("option"):
        return None
    elif market.get("linear"):
        kind = MarketKind.LINEAR
    elif market.get("inverse"):
        kind = MarketKind.INVERSE
    else:
        return None
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount_step = _step(precision.get("amount"), precision_mode)
    if amount_step is None or amount_step <= 0:
        raise VenueConfigError(f"{market.get('symbol')}: market has no amount precision")
    contract_size = market.get("contractSize") if market.get("contract") else None
    if unit is AmountUnit.BASE and kind is MarketKind.LINEAR:
        contract_size = 1
    return MarketSpec(
        symbol=str(market["symbol"]),
        kind=kind,
        base=str(market["base"]),
        quote=str(market["quote"]),
        settle=market.get("settle"),
        contract_size=to_decimal(contract_size) if contract_size is not None else Decimal(1),
        amount_step=amount_step,
        min_amount=_dec((limits.get("amount") or {}).get("min")) or Decimal(0),
        min_notional=_dec((limits.get("cost") or {}).get("min")) or Decimal(0),
        price_step=_step(precision.get("price"), precision_mode),
        expiry=int(market["expiry"]) / 1000 if market.get("expiry") else None,
    )


def signed_contracts(
    position: Mapping[str, Any], unit: AmountUnit = AmountUnit.CONTRACTS
) -> Decimal:
    """ccxt ``contracts`` signed by ``side``: the one place positions become numbers.

    ccxt counts contracts in the unit its orders use: base units (contract size
    1) on Binance and Bybit linear markets, contracts on OKX, MEXC and inverse
    markets. WEEX (``unit`` BASE) is the trap: ccxt's ``contracts`` is the venue's
    size in the base coin (0.036 ETH) while its ``contractSize`` is the contract
    value (0.001), so ``contracts × contractSize`` is *not* the position. The size
    is taken as base units (our WEEX market specs count contracts of 1 base unit)
    and must equal the venue's own ``size`` field: if ccxt ever converts it (to
    venue contracts, say), the read fails instead of hedging 1000x off.
    Raises ``ValueError`` when the reply does not say enough.
    """
    contracts = to_decimal(position["contracts"])
    if contracts == 0:
        return Decimal(0)
    if unit is AmountUnit.BASE:
        _check_base_size(abs(contracts), position)
    side = position.get("side")
    if side == "short":
        return -abs(contracts)
    if side == "long":
        return abs(contracts)
    raise ValueError(f"position of {contracts} contracts without a side")


def _check_base_size(size: Decimal, position: Mapping[str, Any]) -> None:
    info = position.get("info")
    raw = info.get("size") if isinstance(info, Mapping) else None
    if raw in (None, ""):
        raise ValueError(f"position without the venue's base-coin size: {str(info)[:200]}")
    if abs(to_decimal(raw)) != size:
        raise ValueError(
            f"position of {size} contracts is not the venue's size {raw} in the base coin; "
            "ccxt's unit for this exchange changed"
        )


def check_balance_reply(exchange_id: str, reply: Any) -> None:
    """Raise ``ValueError`` unless the raw HTTP reply really lists balances.

    ccxt turns a reply without its balances list (or one it could not parse) into
    an empty balance, which would read as "nothing held" and trim the whole hedge.
    """
    if exchange_id.startswith("binance"):
        entries = reply.get("balances", reply.get("assets")) if isinstance(reply, dict) else reply
    elif exchange_id == "bybit":
        entries = (reply or {}).get("result", {}).get("list") if isinstance(reply, dict) else None
    elif exchange_id == "okx":
        entries = (reply or {}).get("data") if isinstance(reply, dict) else None
    else:
        if not isinstance(reply, dict | list):
            raise ValueError(f"balance reply is {type(reply).__name__}")
        return
    if not isinstance(entries, list):
        raise ValueError(f"balance reply has no balances list: {str(reply)[:200]}")


def check_positions_reply(exchange_id: str, reply: Any) -> None:
    """Raise ``ValueError`` unless the raw HTTP reply really is a positions list.

    ccxt turns a malformed reply into "no positions" (Binance keeps only entries
    with an entry price, Bybit and OKX read a missing list as empty), which
    would read as flat; this looks at the exchange's own JSON first.
    """
    if exchange_id.startswith("binance"):
        entries, amount_key = reply, "positionAmt"
    elif exchange_id == "bybit":
        entries, amount_key = (reply or {}).get("result", {}).get("list"), "size"
    elif exchange_id == "okx":
        entries, amount_key = (reply or {}).get("data"), "pos"
    elif exchange_id == "weex":
        entries, amount_key = reply, "size"
    else:
        if not isinstance(reply, dict | list):
            raise ValueError(f"positions reply is {type(reply).__name__}")
        return
    if not isinstance(entries, list):
        raise ValueError(f"positions reply has no list: {str(reply)[:200]}")
    for entry in entries:
        amount = entry.get(amount_key)
        if amount is None or (amount != "" and not _is_number(amount)):
            raise ValueError(f"position without a readable {amount_key}: {str(entry)[:200]}")


def _is_number(value: Any) -> bool:
    try:
        return to_decimal(value).is_finite()
    except (ArithmeticError, ValueError):
        return False


def positions(
    symbols: Iterable[str],
    raw: Any,
    usd_margined: Container[str] = (),
    unit: AmountUnit = AmountUnit.CONTRACTS,
) -> dict[str, Position]:
    """Positions of ``symbols`` from a ccxt ``fetch_positions`` reply; absent means flat.

    Collateral and maintenance margin are reported in USD only for the
    ``usd_margined`` symbols (settled in a stablecoin); inverse ones are in coin.
    ``unit`` is what ccxt's ``contracts`` counts (see :func:`signed_contracts`).
    """
    if not isinstance(raw, list):
        raise TypeError(f"expected a list of positions, got {type(raw).__name__}")
    found: dict[str, list[Mapping[str, Any]]] = {}
    for entry in raw:
        found.setdefault(str(entry["symbol"]), []).append(entry)
    result: dict[str, Position] = {}
    for symbol in symbols:
        entries = found.get(symbol, [])
        signed = [(signed_contracts(entry, unit), entry) for entry in entries]
        total = sum((contracts for contracts, _ in signed), Decimal(0))
        # Prices come from the leg that holds the position (hedge mode has two legs).
        main: Mapping[str, Any] = max(signed, key=lambda item: abs(item[0]), default=(0, {}))[1]
        held = total != 0
        in_usd = held and symbol in usd_margined
        # ccxt's "collateral" is the margin posted for this position. Only in isolated
        # mode is that all that backs it; in cross (or unified) mode the whole wallet
        # does, and the position's own margin would make the shock check refuse every
        # addition. There the shock check has no figure and the exchange's liquidation
        # price (still reported) drives the liquidation-distance guard.
        isolated = str(main.get("marginMode") or "").lower() == "isolated"
        result[symbol] = Position(
            symbol=symbol,
            contracts=total,
            entry_price=_dec(main.get("entryPrice")) if held else None,
            liquidation_price=_dec(main.get("liquidationPrice")) if held else None,
            margin_ratio=_dec(main.get("marginRatio")) if held else None,
            collateral_usd=_dec(main.get("collateral")) if in_usd and isolated else None,
            maintenance_margin_usd=_dec(main.get("maintenanceMargin")) if in_usd else None,
        )
    return result


def bybit_hedged(raw: Any) -> bool:
    """Bybit hedge mode from a positions reply: legs 1 and 2 exist only in hedge mode."""
    return any(str((entry.get("info") or {}).get("positionIdx")) in ("1", "2") for entry in raw)


def balances(balance: Mapping[str, Any]) -> dict[str, Decimal]:
    """Asset -> total (free + used) from a ccxt balance; zero holdings are omitted."""
    holdings: dict[str, Decimal] = {}
    for asset, total in balance["total"].items():
        if total is None:
            entry = balance[asset]
            amount = to_decimal(entry.get("free") or 0) + to_decimal(entry.get("used") or 0)
        else:
            amount = to_decimal(total)
        if amount != 0:
            holdings[str(asset)] = amount
    return holdings


def fee_usd(order: Mapping[str, Any]) -> Decimal:
    """Fees paid in stablecoins; fees in other assets cannot be valued here and count 0."""
    fees = order.get("fees") or ([order["fee"]] if order.get("fee") else [])
    total = Decimal(0)
    for fee in fees:
        if fee and fee.get("cost") is not None and fee.get("currency") in STABLECOINS:
            total += to_decimal(fee["cost"])
    return total


# MEXC contract orders: ccxt leaves `side` as the exchange's position code (1 open long,
# 2 close short, 3 open short, 4 close long) and drops the client id (`externalOid`).
_MEXC_SIDES = {"1": ("buy", False), "2": ("buy", True), "3": ("sell", False), "4": ("sell", True)}


def _mexc_contract_fix(order: Mapping[str, Any]) -> Mapping[str, Any]:
    info = order.get("info") or {}
    code = str(info.get("side")) if isinstance(info, Mapping) else ""
    if "externalOid" not in info or code not in _MEXC_SIDES:
        return order
    side, closing = _MEXC_SIDES[code]
    client_order_id = order.get("clientOrderId") or info.get("externalOid")
    return {**order, "side": side, "reduceOnly": closing, "clientOrderId": client_order_id}


def order_info(
    order: Mapping[str, Any],
    *,
    fallback: OrderRequest | None = None,
    default_status: OrderStatus | None = None,
) -> OrderInfo:
    """Normalise a ccxt order; missing fields come from the request we sent, if any."""
    order = _mexc_contract_fix(order)
    client_order_id = order.get("clientOrderId") or (fallback and fallback.client_order_id)
    side = order.get("side") or (fallback and fallback.side.value)
    amount = order.get("amount") or (fallback and fallback.amount)
    status = _STATUS.get(str(order.get("status")), default_status)
    if not client_order_id or side not in ("buy", "sell") or not amount or status is None:
        raise ValueError("order reply lacks client id, side, amount or status")
    return OrderInfo(
        client_order_id=str(client_order_id),
        symbol=str(order.get("symbol") or (fallback and fallback.symbol)),
        side=Side(side),
        amount=to_decimal(amount),
        status=status,
        filled=_dec(order.get("filled")) or Decimal(0),
        average_price=_dec(order.get("average")),
        fee_usd=fee_usd(order),
        exchange_order_id=str(order["id"]) if order.get("id") is not None else None,
        reduce_only=bool(order.get("reduceOnly") or (fallback and fallback.reduce_only)),
        price=_dec(order.get("price") or (fallback and fallback.price)),
    )


def orders_with_prefix(raw: Any, prefix: str, symbols: Iterable[str]) -> list[OrderInfo]:
    """Our orders in a ccxt order list: client id starts with ``prefix``, symbol wanted."""
    wanted = set(symbols)
    return [
        order_info(order)
        for order in raw
        if str(order.get("clientOrderId") or "").startswith(prefix)
        and order.get("symbol") in wanted
    ]


def quote(symbol: str, book: Mapping[str, Any], marks: Mapping[str, Any]) -> Quote:
    """A quote from a ccxt ticker (``book``) and a ticker holding mark/index prices."""
    timestamp = book.get("timestamp") or marks.get("timestamp")
    # Funding rides along in the raw mark reply: Binance premiumIndex says
    # lastFundingRate, Bybit's ticker fundingRate; both say nextFundingTime (ms).
    raw_info = marks.get("info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    rate = info.get("lastFundingRate", info.get("fundingRate"))
    next_ms = info.get("nextFundingTime")
    return Quote(
        symbol=symbol,
        bid=_dec(book.get("bid")),
        ask=_dec(book.get("ask")),
        last=_dec(book.get("last")),
        mark=_dec(marks.get("markPrice")),
        index=_dec(marks.get("indexPrice")),
        timestamp=timestamp / 1000 if timestamp else time.time(),
        funding_rate=_dec(rate) if rate not in (None, "") else None,
        next_funding_at=int(next_ms) / 1000 if next_ms not in (None, "", 0, "0") else None,
    )


def quotes(
    symbols: Iterable[str], books: Mapping[str, Any], marks: Mapping[str, Any]
) -> dict[str, Quote]:
    """Quotes of the ``symbols`` present in ``books`` (tickers), with marks where given."""
    return {s: quote(s, books[s], marks.get(s) or {}) for s in symbols if s in books}


def funding_payments(
    raw: Any, symbols: Container[str], field: tuple[str, int] | None
) -> list[FundingPayment]:
    """ccxt funding-history entries of ``symbols``, as balance changes.

    ``field`` names the raw (``info``) field holding the amount and the sign that
    turns it into a balance change (see ``ExchangeProfile.funding_field``); without
    it ccxt's ``amount`` is taken as one. An entry without an id, a time or an
    amount makes the whole reply unusable (a failed read), never a zero.
    """
    if not isinstance(raw, list):
        raise TypeError(f"funding history is a {type(raw).__name__}, not a list")
    out: list[FundingPayment] = []
    for entry in raw:
        symbol = entry["symbol"]
        if symbol not in symbols:
            continue
        if field is None:
            amount = to_decimal(entry["amount"])
        else:
            name, sign = field
            amount = to_decimal(entry["info"][name]) * sign
        payment_id, timestamp, asset = entry["id"], entry["timestamp"], entry["code"]
        if not payment_id or not isinstance(timestamp, int) or not asset:
            raise ValueError(f"funding entry without id, time or asset: {entry.get('info')}")
        rate = entry.get("rate")
        payment = FundingPayment(
            id=str(payment_id), symbol=symbol, timestamp=timestamp / 1000, amount=amount,
            asset=str(asset), rate=None if rate is None else to_decimal(rate),
        )  # fmt: skip
        out.append(payment)
    return out


def binance_key_permissions(raw: Mapping[str, Any]) -> KeyPermissions:
    """Binance ``sapi/v1/account/apiRestrictions``."""
    return KeyPermissions(
        can_trade=bool(raw.get("enableSpotAndMarginTrading") or raw.get("enableFutures")),
        can_withdraw=bool(raw.get("enableWithdrawals")),
        ip_restricted=bool(raw.get("ipRestrict")),
        raw=raw,
    )


def bybit_key_permissions(reply: Mapping[str, Any]) -> KeyPermissions:
    """Bybit ``/v5/user/query-api``: withdrawal shows in ``Wallet`` (or its own group)."""
    result = reply["result"]
    permissions = result.get("permissions") or {}
    ips = result.get("ips") or []
    return KeyPermissions(
        can_trade=str(result.get("readOnly")) == "0",
        can_withdraw="Withdraw" in (permissions.get("Wallet") or [])
        or bool(permissions.get("Withdraw")),
        ip_restricted=bool(ips) and ips != ["*"],
        raw=result,
    )
