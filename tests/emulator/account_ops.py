"""Account settings and wallet moves: leverage, margin mode, position mode, transfers.

Kept apart from the matching engine; each function validates like the venues do
(no change -> a "not modified" rejection, a change with open positions or
orders -> refused) and raises :class:`Rejected` with a neutral kind.
"""

from __future__ import annotations

from decimal import Decimal

from tests.emulator.engine import Engine
from tests.emulator.markets import MarketDef
from tests.emulator.state import Account, Reject, Rejected, Transfer

__all__ = [
    "set_hedge_mode",
    "set_leverage",
    "set_margin_mode",
    "set_position",
    "transfer",
]

ZERO = Decimal(0)


def set_leverage(
    engine: Engine, acct: Account, market: MarketDef, leverage: int, *, reject_unchanged: bool
) -> None:
    """Set a symbol's leverage; Bybit refuses a no-op (``reject_unchanged``)."""
    if not acct.permissions.futures:
        raise Rejected(Reject.PERMISSION_DENIED)
    if leverage < 1 or leverage > market.max_leverage:
        raise Rejected(Reject.INVALID_LEVERAGE, str(leverage))
    current = engine.margin.leverage(acct, market.symbol)
    if reject_unchanged and current == leverage:
        raise Rejected(Reject.LEVERAGE_NOT_MODIFIED)
    acct.leverage[market.symbol] = leverage


def set_margin_mode(acct: Account, market: MarketDef | None, mode: str) -> bool:
    """Switch cross/isolated for a symbol (or the whole account when ``market`` is None).

    Returns False when nothing changed and the caller decides whether that is
    an error (Binance -4046) or a success (Bybit UTA).
    """
    if mode not in ("cross", "isolated"):
        raise Rejected(Reject.BAD_PARAM, mode)
    current = acct.account_margin_mode if market is None else acct.margin_mode_of(market.symbol)
    if current == mode:
        return False
    symbol = None if market is None else market.symbol
    if any(p.qty != 0 and (symbol is None or p.symbol == symbol) for p in acct.positions.values()):
        raise Rejected(Reject.MARGIN_MODE_HAS_POSITION)
    if any(o.market.is_contract for o in acct.open_orders(symbol)):
        raise Rejected(Reject.MARGIN_MODE_HAS_ORDERS)
    if market is None:
        acct.account_margin_mode = mode
    else:
        acct.margin_mode[market.symbol] = mode
    return True


def set_hedge_mode(acct: Account, hedged: bool) -> None:
    """Switch one-way / hedge mode; refused with open positions or orders."""
    if acct.hedge_mode == hedged:
        raise Rejected(Reject.POSITION_MODE_NOT_MODIFIED)
    if acct.open_positions():
        raise Rejected(Reject.POSITION_MODE_HAS_POSITION)
    if any(o.market.is_contract for o in acct.open_orders()):
        raise Rejected(Reject.POSITION_MODE_HAS_ORDERS)
    acct.hedge_mode = hedged
    acct.positions = {k: v for k, v in acct.positions.items() if v.qty != 0}


def set_position(
    engine: Engine,
    acct: Account,
    market: MarketDef,
    contracts: Decimal,
    entry_price: Decimal | None = None,
    position_side: str = "BOTH",
) -> None:
    """Force a position (a trade or liquidation that happened 'elsewhere')."""
    pos = acct.position(market.symbol, position_side)
    now = engine.clock()
    if contracts == 0:
        pos.qty, pos.entry_price = ZERO, ZERO
    else:
        if pos.qty == 0:
            pos.created_ms = now
        pos.qty = contracts
        pos.entry_price = entry_price if entry_price is not None else engine.mark(market.symbol)
    pos.updated_ms = now


def _wallet_get(acct: Account, wallet: str, asset: str) -> Decimal:
    if wallet == "spot":
        return acct.spot_free.get(asset, ZERO)
    if wallet == "futures":
        return acct.futures_wallet if asset == "USDT" else ZERO
    return acct.funding.get(asset, ZERO)


def _wallet_add(acct: Account, wallet: str, asset: str, delta: Decimal) -> None:
    if wallet == "spot":
        acct.spot_free[asset] = acct.spot_free.get(asset, ZERO) + delta
    elif wallet == "futures":
        if asset != "USDT":
            raise Rejected(Reject.BAD_PARAM, asset)
        acct.futures_wallet += delta
    else:
        acct.funding[asset] = acct.funding.get(asset, ZERO) + delta


def transfer(
    engine: Engine,
    acct: Account,
    asset: str,
    amount: Decimal,
    source: str,
    target: str,
    transfer_id: str,
) -> Transfer:
    """Move funds between ``spot``, ``futures`` and ``funding`` wallets."""
    if not acct.permissions.transfer:
        raise Rejected(Reject.PERMISSION_DENIED)
    if amount <= 0:
        raise Rejected(Reject.BAD_PARAM, str(amount))
    available = _wallet_get(acct, source, asset)
    if source == "futures" or (acct.unified and source == "spot" and asset == "USDT"):
        # Margin in use cannot leave the futures side.
        available = min(available, engine.margin.available(acct))
    if amount > available:
        raise Rejected(Reject.TRANSFER_INSUFFICIENT, f"{amount} > {available}")
    _wallet_add(acct, source, asset, -amount)
    _wallet_add(acct, target, asset, amount)
    record = Transfer(transfer_id, asset, amount, source, target, engine.clock())
    acct.transfers.append(record)
    return record
