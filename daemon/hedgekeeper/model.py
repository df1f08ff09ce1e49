"""Domain types shared by the core and the shell.

Everything here is immutable and uses :class:`~decimal.Decimal` for quantities,
prices and money. Conversions from exchange floats happen at the venue boundary.

Sign conventions used throughout:

* a *position* is signed contracts: negative is short;
* the *hedge* of a group is the short side as a positive number of contracts;
* *pending* hedge is the signed effect of our working orders on the hedge:
  a working sell adds, a working buy subtracts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hedgekeeper.windows import HedgeWindow

__all__ = [
    "STABLECOINS",
    "AllocationSpec",
    "Balances",
    "FundingPayment",
    "GroupSpec",
    "HedgeTarget",
    "MarketKind",
    "MarketSpec",
    "Mode",
    "OrderInfo",
    "OrderIntent",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Plan",
    "Position",
    "Quote",
    "Side",
    "TradingState",
]

#: Assets valued at exactly 1 USD without asking a venue.
STABLECOINS = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDE"})


class Mode(enum.StrEnum):
    """How orders reach a market: paper fills, a test environment, or for real."""

    DRY_RUN = "dry-run"
    TESTNET = "testnet"
    LIVE = "live"


class TradingState(enum.StrEnum):
    """What the daemon may do: everything, only trims, or only cancels."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Side(enum.StrEnum):
    """Order side; a hedge is opened by selling and trimmed by buying."""

    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    """Order types the daemon sends."""

    MARKET = "market"
    LIMIT = "limit"


class MarketKind(enum.StrEnum):
    """Linear contracts are margined in the quote; inverse ones in the base asset."""

    LINEAR = "linear"
    INVERSE = "inverse"
    SPOT = "spot"


class OrderStatus(enum.StrEnum):
    """Life of an order as the daemon tracks it (see ``execution`` for the transitions)."""

    NEW = "new"  # journaled; may have been sent (a crash can come between)
    UNKNOWN = "unknown"  # outcome not known: resolve by look-up, never by resending
    OPEN = "open"  # working at the venue (possibly partly filled)
    FILLED = "filled"
    CANCELED = "canceled"  # canceled or expired, possibly after a partial fill
    REJECTED = "rejected"  # definitively refused by the venue


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A tradable instrument, normalised across exchanges.

    ``contract_size`` is base units per contract for linear contracts and USD per
    contract for inverse ones. ``amount_step`` and ``min_amount`` are in contracts,
    ``min_notional`` in USD.
    """

    symbol: str
    kind: MarketKind
    base: str
    quote: str
    settle: str | None
    contract_size: Decimal
    amount_step: Decimal
    min_amount: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    price_step: Decimal | None = None
    #: The exchange accepts reduce-only orders below ``min_notional`` (Binance USDⓈ-M
    #: in one-way mode), so small trims need not wait.
    reduce_only_below_min_notional: bool = False
    #: Dated futures: delivery time, epoch seconds (``None`` for perpetuals and spot).
    expiry: float | None = None

    def contract_value_usd(self, price: Decimal) -> Decimal:
        """USD value of one contract at ``price``."""
        if self.kind is MarketKind.INVERSE:
            return self.contract_size
        return self.contract_size * price


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and reference prices for one symbol, at one time."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    mark: Decimal | None = None
    index: Decimal | None = None
    timestamp: float = 0.0
    #: Perpetuals: the rate of the next (or just fixed) funding settlement, and when it
    #: settles (epoch seconds); ``None`` where the venue does not say.
    funding_rate: Decimal | None = None
    next_funding_at: float | None = None

    @property
    def reference(self) -> Decimal | None:
        """The price used for valuation: mark, else mid, else last."""
        if self.mark is not None:
            return self.mark
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


@dataclass(frozen=True, slots=True)
class Position:
    """A futures position in signed contracts (negative = short)."""

    symbol: str
    contracts: Decimal
    entry_price: Decimal | None = None
    liquidation_price: Decimal | None = None
    margin_ratio: Decimal | None = None  # maintenance margin / collateral (1 = liquidation)
    collateral_usd: Decimal | None = None  # margin backing the position (cross: equity)
    maintenance_margin_usd: Decimal | None = None


#: Spot holdings of one account: asset -> total (free + used).
Balances = Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as sent to a venue; amounts in contracts."""

    client_order_id: str
    symbol: str
    side: Side
    amount: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False
    time_in_force: str | None = None


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """What a venue says about one order."""

    client_order_id: str
    symbol: str
    side: Side
    amount: Decimal
    status: OrderStatus
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee_usd: Decimal = Decimal(0)
    exchange_order_id: str | None = None
    reduce_only: bool = False
    price: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        """Contracts not yet filled."""
        return self.amount - self.filled


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """The core's view of one hedge group (built from the configuration)."""

    name: str
    assets: Mapping[str, Decimal]  # asset -> beta
    spot_accounts: tuple[str, ...]
    extra_holdings: Mapping[str, Decimal]
    instrument: str
    hedge_account: str
    ratio: Decimal
    tolerance: Decimal = Decimal("0.02")
    max_ratio: Decimal = Decimal(1)
    #: Allocation (rebalancing) legs: the hedged asset and the portfolio's targets.
    allocation: AllocationSpec | None = None
    #: Time-bounded ratio (or targets) changes; the first window containing "now" wins.
    windows: tuple[HedgeWindow, ...] = ()
    #: The configured group this leg belongs to, when a group trades several instruments.
    parent: str | None = None
    #: Assets whose beta is estimated from market data (``assets`` holds the fallback).
    estimated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AllocationSpec:
    """One hedged asset of an allocation group (see :mod:`hedgekeeper.allocation`).

    ``targets`` are the portfolio weights (summing to 1) of every asset the group
    values; ``trigger`` and ``release`` are absolute weight points either side of
    the asset's target where the hedge is opened and bought back.
    """

    asset: str
    targets: Mapping[str, Decimal]
    trigger: Decimal
    release: Decimal


@dataclass(frozen=True, slots=True)
class HedgeTarget:
    """Where the hedge should be, and why."""

    exposure_usd: Decimal
    target_notional_usd: Decimal
    price: Decimal
    contract_value_usd: Decimal
    raw_contracts: Decimal  # unrounded target, short as positive
    cap_contracts: Decimal  # max_ratio x exposure, rounded down to the step


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the plan wants; the guard may shrink or block it."""

    group: str
    symbol: str
    side: Side
    contracts: Decimal
    reduce_only: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of planning one group: a target, zero or one intent, a reason."""

    group: str
    target: HedgeTarget
    target_contracts: Decimal  # rounded target the plan steers to
    hedge_contracts: Decimal  # current short, positive
    pending_contracts: Decimal  # signed effect of working orders on the hedge
    intent: OrderIntent | None
    reason: str
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement booked to an account for one perpetual.

    ``amount`` is the change to the account's balance in ``asset``: positive when
    the position *received* funding, negative when it *paid*. A short hedge
    receives when the rate is positive. Exchanges disagree on this sign (Bybit
    reports a fee, Binance an income); adapters normalise to this one.
    """

    id: str
    symbol: str
    #: Epoch seconds: the settlement time at an exchange; the sim and paper venues,
    #: whose settlements run on their own clocks, date a payment when they book it.
    timestamp: float
    amount: Decimal
    asset: str
    rate: Decimal | None = None
