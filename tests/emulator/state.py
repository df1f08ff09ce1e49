"""The emulator's book-keeping types: accounts, orders, fills, positions.

Everything here is dialect-neutral and uses ``Decimal`` for quantities and
money. The dialect modules translate these records into Binance or Bybit JSON
and translate :class:`Rejected` kinds into the venue's error codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from tests.emulator.markets import MarketDef

__all__ = [
    "Account",
    "FeeSchedule",
    "Fill",
    "FundingPayment",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "Permissions",
    "Position",
    "Reject",
    "Rejected",
    "Side",
    "TimeInForce",
    "Transfer",
    "VenueRules",
]

ZERO = Decimal(0)
_SPOT_FEE = Decimal("0.001")
_LINEAR_TAKER = Decimal("0.0005")  # Binance USDⓈ-M VIP 0
_LINEAR_MAKER = Decimal("0.0002")


class Side(StrEnum):
    """Order side, spelled the Binance way (Bybit renders ``Buy``/``Sell``)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1


class TimeInForce(StrEnum):
    """Neutral time-in-force; ``POST_ONLY`` is Binance ``GTX`` / Bybit ``PostOnly``."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"


class OrderStatus(StrEnum):
    """Neutral order life-cycle states."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        """Whether the order still works on the book."""
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Reject(StrEnum):
    """Why the engine refused a request; dialects map each kind to a code."""

    BAD_SYMBOL = "BAD_SYMBOL"
    BAD_PARAM = "BAD_PARAM"
    QTY_STEP = "QTY_STEP"
    QTY_TOO_SMALL = "QTY_TOO_SMALL"
    QTY_TOO_LARGE = "QTY_TOO_LARGE"
    PRICE_TICK = "PRICE_TICK"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    INVALID_CLIENT_ID = "INVALID_CLIENT_ID"
    DUPLICATE_CLIENT_ID = "DUPLICATE_CLIENT_ID"
    POSITION_SIDE_MISMATCH = "POSITION_SIDE_MISMATCH"
    REDUCE_ONLY_IN_HEDGE_MODE = "REDUCE_ONLY_IN_HEDGE_MODE"
    REDUCE_ONLY_REJECTED = "REDUCE_ONLY_REJECTED"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    LEVERAGE_NOT_MODIFIED = "LEVERAGE_NOT_MODIFIED"
    MARGIN_MODE_NOT_MODIFIED = "MARGIN_MODE_NOT_MODIFIED"
    MARGIN_MODE_HAS_POSITION = "MARGIN_MODE_HAS_POSITION"
    MARGIN_MODE_HAS_ORDERS = "MARGIN_MODE_HAS_ORDERS"
    POSITION_MODE_NOT_MODIFIED = "POSITION_MODE_NOT_MODIFIED"
    POSITION_MODE_HAS_POSITION = "POSITION_MODE_HAS_POSITION"
    POSITION_MODE_HAS_ORDERS = "POSITION_MODE_HAS_ORDERS"
    TRANSFER_INSUFFICIENT = "TRANSFER_INSUFFICIENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"


class Rejected(Exception):
    """A request the (emulated) venue refuses; ``kind`` selects the error code."""

    def __init__(self, kind: Reject, detail: str = "", **context: object) -> None:
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value)
        self.kind = kind
        self.detail = detail
        self.context = context


@dataclass
class Fill:
    """One execution of an order."""

    trade_id: int
    order_id: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    time_ms: int
    realized_pnl: Decimal = ZERO
    #: The part of ``qty`` that reduced an existing futures position (Bybit ``closedSize``).
    closed_qty: Decimal = ZERO

    @property
    def quote_qty(self) -> Decimal:
        """Price times quantity."""
        return self.price * self.qty


@dataclass(frozen=True)
class FundingPayment:
    """One funding-fee settlement of one futures position.

    ``qty`` is the signed position size in base units at settlement and
    ``amount`` the wallet change, ``-qty * mark_price * rate`` rounded to 8
    decimals: negative when the account paid (a long at a positive rate), like
    Binance ``income``. Bybit reports the opposite sign as ``execFee``
    (:attr:`fee`).
    """

    #: Binance ``tranId``.
    payment_id: int
    #: Bybit ``execId`` and ``orderId`` (UUIDs).
    exec_id: str
    order_id: str
    #: Bybit ``seq``; shares one counter with fill trade ids, so it is unique among both.
    seq: int
    api_key: str
    symbol: str
    position_side: str
    time_ms: int
    rate: Decimal
    mark_price: Decimal
    qty: Decimal
    amount: Decimal

    @property
    def fee(self) -> Decimal:
        """Bybit ``execFee``: positive when the account paid."""
        return ZERO - self.amount

    @property
    def notional(self) -> Decimal:
        """Absolute position value at the mark (Bybit ``execValue``)."""
        return abs(self.qty) * self.mark_price


@dataclass
class Order:
    """An order the emulator accepted (rejected requests are never recorded)."""

    order_id: str
    api_key: str
    market: MarketDef
    client_id: str
    side: Side
    order_type: str  # "MARKET" | "LIMIT" | "LIMIT_MAKER"
    qty: Decimal
    price: Decimal | None
    tif: TimeInForce
    reduce_only: bool
    position_side: str  # BOTH | LONG | SHORT
    created_ms: int
    updated_ms: int
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fee_total: Decimal = ZERO
    fee_asset: str = ""
    #: Spot market buy by quote amount (Binance ``quoteOrderQty``, Bybit quoteCoin).
    quote_qty: Decimal | None = None
    #: Venue-specific extras (e.g. Bybit ``rejectReason``, ``marketUnit``).
    extra: dict[str, str] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        """Unified symbol of the order's market."""
        return self.market.symbol

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return max(ZERO, self.qty - self.executed_qty)

    @property
    def avg_price(self) -> Decimal:
        """Average fill price, zero before the first fill."""
        if self.executed_qty == 0:
            return ZERO
        return self.cum_quote / self.executed_qty


@dataclass
class Position:
    """A futures position; ``qty`` is signed (negative = short), in base units."""

    symbol: str
    position_side: str = "BOTH"
    qty: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0


@dataclass
class Permissions:
    """What an API key may do (shown by apiRestrictions / query-api, enforced)."""

    trade: bool = True
    futures: bool = True
    withdraw: bool = False
    transfer: bool = True
    ip_restricted: bool = False


@dataclass
class Transfer:
    """An internal transfer between wallets of one account."""

    transfer_id: str
    asset: str
    amount: Decimal
    from_account: str
    to_account: str
    time_ms: int


@dataclass
class Account:
    """One API key's account: spot wallet, futures wallet, positions, orders.

    With ``unified`` (Bybit UTA) there is one wallet: the futures collateral is
    the spot ``USDT`` balance itself, and ``futures_wallet`` is unused.
    """

    api_key: str
    secret: str
    unified: bool = False
    spot_free: dict[str, Decimal] = field(default_factory=dict)
    spot_locked: dict[str, Decimal] = field(default_factory=dict)
    futures_wallet: Decimal = ZERO
    funding: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_mode: dict[str, str] = field(default_factory=dict)  # symbol -> cross|isolated
    account_margin_mode: str = "cross"  # Bybit UTA: account level
    hedge_mode: bool = False
    permissions: Permissions = field(default_factory=Permissions)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    funding_payments: list[FundingPayment] = field(default_factory=list)
    #: a lagging position endpoint: this many position reads still show ``lag_view``
    lagging_reads: int = 0
    lag_view: dict[tuple[str, str], Position] = field(default_factory=dict)

    def lag_positions(self, reads: int) -> None:
        """The next ``reads`` position reads show the positions as they are *now*
        (what an eventually consistent position endpoint does after a fill)."""
        self.lag_view = {k: replace(p) for k, p in self.positions.items()}
        self.lagging_reads = reads

    def position_view(self) -> Account:
        """The account as one position read sees it (consumes one lagging read)."""
        if self.lagging_reads <= 0:
            return self
        self.lagging_reads -= 1
        return replace(self, positions={k: replace(p) for k, p in self.lag_view.items()},
                       lagging_reads=0)  # fmt: skip

    # -- wallets ---------------------------------------------------------
    def collateral(self) -> Decimal:
        """Futures wallet balance (USDT), before unrealized PnL."""
        if self.unified:
            return self.spot_free.get("USDT", ZERO) + self.spot_locked.get("USDT", ZERO)
        return self.futures_wallet

    def add_collateral(self, delta: Decimal) -> None:
        """Credit (or debit) the futures wallet: realized PnL and fees."""
        if self.unified:
            self.spot_free["USDT"] = self.spot_free.get("USDT", ZERO) + delta
        else:
            self.futures_wallet += delta

    def spot_total(self, asset: str) -> Decimal:
        """Free plus locked spot balance of an asset."""
        return self.spot_free.get(asset, ZERO) + self.spot_locked.get(asset, ZERO)

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked (a resting spot order)."""
        self.spot_free[asset] = self.spot_free.get(asset, ZERO) - amount
        self.spot_locked[asset] = self.spot_locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Release a lock back to free."""
        self.lock(asset, -amount)

    # -- positions and orders --------------------------------------------
    def position(self, symbol: str, position_side: str = "BOTH") -> Position:
        """The position record for a symbol and side, created flat when absent."""
        key = (symbol, position_side)
        if key not in self.positions:
            self.positions[key] = Position(symbol, position_side)
        return self.positions[key]

    def open_positions(self) -> list[Position]:
        """Positions with a non-zero quantity."""
        return [p for p in self.positions.values() if p.qty != 0]

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Working orders, optionally for one unified symbol."""
        return [
            o for o in self.orders if o.status.is_open and (symbol is None or o.symbol == symbol)
        ]

    def funding_payments_between(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None
    ) -> list[FundingPayment]:
        """Funding payments in ``[start_ms, end_ms]`` (open ends: ``None``), oldest first."""
        found = [
            p
            for p in self.funding_payments
            if (symbol is None or p.symbol == symbol)
            and (start_ms is None or p.time_ms >= start_ms)
            and (end_ms is None or p.time_ms <= end_ms)
        ]
        return sorted(found, key=lambda p: (p.time_ms, p.seq))

    def leverage_of(self, symbol: str, default: int) -> int:
        """Leverage set for a symbol, or the venue default."""
        return self.leverage.get(symbol, default)

    def margin_mode_of(self, symbol: str) -> str:
        """``cross`` or ``isolated`` for a symbol (account level on UTA)."""
        if self.unified:
            return self.account_margin_mode
        return self.margin_mode.get(symbol, "cross")


@dataclass(frozen=True)
class FeeSchedule:
    """Commission rates (fractions, e.g. ``0.001`` = 0.1 %)."""

    spot_taker: Decimal = _SPOT_FEE
    spot_maker: Decimal = _SPOT_FEE
    linear_taker: Decimal = _LINEAR_TAKER
    linear_maker: Decimal = _LINEAR_MAKER

    def rate(self, market: MarketDef, is_maker: bool) -> Decimal:
        """The rate for a market kind and liquidity role."""
        if market.is_contract:
            return self.linear_maker if is_maker else self.linear_taker
        return self.spot_maker if is_maker else self.spot_taker


@dataclass(frozen=True)
class VenueRules:
    """Where Binance and Bybit behave differently inside the engine."""

    client_id_pattern: str
    #: ``open``: a client id must be unique among open orders (Binance);
    #: ``all``: unique among all orders ever placed (Bybit).
    client_id_scope: str
    #: Binance rejects a crossing post-only order outright (-5022 / -2010);
    #: Bybit accepts it and cancels it at once (``EC_PostOnlyWillTakeLiquidity``).
    post_only_rejects: bool
    order_id_style: str  # "int" | "bybit"
    default_leverage: int
    unified: bool


@dataclass
class OrderRequest:
    """A parsed order request, already converted to base-unit ``Decimal``."""

    market: MarketDef
    side: Side
    order_type: str  # MARKET | LIMIT | LIMIT_MAKER
    qty: Decimal | None
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    client_id: str = ""
    reduce_only: bool = False
    position_side: str = "BOTH"
    quote_qty: Decimal | None = None
