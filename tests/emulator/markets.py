"""Market definitions the emulator lists and enforces.

A :class:`MarketDef` carries the trading rules (tick, step, minimums) in one
dialect-neutral form; ``binance_format`` and ``bybit_format`` render them as the
exchange's own ``exchangeInfo`` / ``instruments-info`` entries, and the engine
validates orders against the very same numbers, so what ccxt parses is what the
emulator enforces.

The defaults follow the live venues closely (values checked against the ccxt
market fixtures in ``../shared/fixtures/ccxt/markets``), except that Binance
USDⓈ-M ``BTCUSDT`` uses today's ``MIN_NOTIONAL`` of 100 USDT (the fixture is
older and shows 5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Literal

__all__ = [
    "MarketDef",
    "MarketKind",
    "dated_markets",
    "decimals_of",
    "default_markets",
    "floor_to_step",
    "is_multiple",
]

MarketKind = Literal["spot", "linear"]

D = Decimal
_MMR = D("0.004")
_MIN_PRICE = D("0.01")
_MAX_PRICE = D("1000000")
_MAX_NOTIONAL = D("9000000")


@dataclass(frozen=True)
class MarketDef:
    """One tradable market: a spot pair or a USDT-margined linear perpetual."""

    base: str
    quote: str
    kind: MarketKind
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    #: Market orders may have a smaller maximum (Binance ``MARKET_LOT_SIZE``,
    #: Bybit ``maxMktOrderQty``); ``None`` means the same as ``max_qty``.
    market_max_qty: Decimal | None = None
    max_leverage: int = 100
    #: First maintenance-margin tier; used for liquidation prices and brackets.
    maint_margin_rate: Decimal = _MMR
    min_price: Decimal = _MIN_PRICE
    max_price: Decimal = _MAX_PRICE
    max_notional: Decimal = _MAX_NOTIONAL
    #: A dated linear future: its delivery (epoch ms) and the exchange's own id for it
    #: (Binance ``BTCUSDT_261225``, Bybit ``BTCUSDT-25DEC26``); ``None`` for a perpetual.
    expiry_ms: int | None = None
    dated_id: str | None = None

    @property
    def id(self) -> str:
        """Exchange market id, e.g. ``BTCUSDT`` (the same for spot and perp)."""
        return self.dated_id or f"{self.base}{self.quote}"

    @property
    def symbol(self) -> str:
        """ccxt unified symbol: ``BTC/USDT``, ``BTC/USDT:USDT`` or ``BTC/USDT:USDT-261225``."""
        if self.kind == "spot":
            return f"{self.base}/{self.quote}"
        if self.expiry_ms is not None:
            code = datetime.fromtimestamp(self.expiry_ms / 1000, UTC).strftime("%y%m%d")
            return f"{self.base}/{self.quote}:{self.quote}-{code}"
        return f"{self.base}/{self.quote}:{self.quote}"

    @property
    def pair(self) -> str:
        """The spot-style pair shared by the spot market and its perpetual."""
        return f"{self.base}/{self.quote}"

    @property
    def is_contract(self) -> bool:
        """True for the linear perpetual."""
        return self.kind == "linear"

    def max_for(self, is_market: bool) -> Decimal:
        """Maximum quantity for a market or a limit order."""
        if is_market and self.market_max_qty is not None:
            return self.market_max_qty
        return self.max_qty


def decimals_of(step: Decimal) -> int:
    """Decimals of a step as written: ``0.001`` -> 3, ``0.10`` -> 2."""
    exponent = step.as_tuple().exponent
    return max(0, -int(exponent))


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` down to a multiple of ``step``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is an exact multiple of ``step``."""
    if step <= 0:
        return True
    return (value % step) == 0


def _binance() -> list[MarketDef]:
    return [
        MarketDef(
            "BTC",
            "USDT",
            "spot",
            D("0.01"),
            D("0.00001"),
            D("0.00001"),
            D("9000"),
            D("5"),
            market_max_qty=D("128.52621715"),
        ),
        MarketDef(
            "ETH",
            "USDT",
            "spot",
            D("0.01"),
            D("0.0001"),
            D("0.0001"),
            D("9000"),
            D("5"),
            market_max_qty=D("3277.54882761"),
        ),
        MarketDef(
            "BTC",
            "USDT",
            "linear",
            D("0.10"),
            D("0.001"),
            D("0.001"),
            D("1000"),
            D("100"),
            market_max_qty=D("120"),
            max_leverage=125,
            min_price=D("556.80"),
            max_price=D("4529764"),
        ),
        MarketDef(
            "ETH",
            "USDT",
            "linear",
            D("0.01"),
            D("0.001"),
            D("0.001"),
            D("10000"),
            D("20"),
            market_max_qty=D("2000"),
            max_leverage=125,
            min_price=D("39.86"),
            max_price=D("306177"),
        ),
    ]


def _bybit() -> list[MarketDef]:
    return [
        MarketDef(
            "BTC",
            "USDT",
            "spot",
            D("0.1"),
            D("0.000001"),
            D("0.000011"),
            D("83"),
            D("5"),
            max_notional=D("8000000"),
        ),
        MarketDef(
            "ETH",
            "USDT",
            "spot",
            D("0.01"),
            D("0.00001"),
            D("0.00029"),
            D("4616.1353715"),
            D("5"),
            max_notional=D("7000000"),
        ),
        MarketDef(
            "BTC",
            "USDT",
            "linear",
            D("0.10"),
            D("0.001"),
            D("0.001"),
            D("1190"),
            D("5"),
            market_max_qty=D("119"),
            max_leverage=100,
            min_price=D("0.10"),
            max_price=D("1999999.80"),
        ),
        MarketDef(
            "ETH",
            "USDT",
            "linear",
            D("0.01"),
            D("0.01"),
            D("0.01"),
            D("7240"),
            D("5"),
            market_max_qty=D("724"),
            max_leverage=100,
            min_price=D("0.01"),
            max_price=D("199999.98"),
        ),
    ]


def default_markets(dialect: str) -> list[MarketDef]:
    """The default market list of a dialect: BTC and ETH, spot and linear perp."""
    if dialect == "binance":
        return _binance()
    if dialect == "bybit":
        return _bybit()
    raise ValueError(f"unknown dialect {dialect!r}")


def dated_markets(dialect: str, *deliveries: datetime) -> list[MarketDef]:
    """BTC linear futures delivering at ``deliveries`` (08:00 UTC), with the perp's rules.

    Ids as the exchanges write them: Binance ``BTCUSDT_261225``, Bybit
    ``BTCUSDT-25DEC26``.
    """
    perp = next(m for m in default_markets(dialect) if m.kind == "linear" and m.base == "BTC")
    out = []
    for moment in deliveries:
        at = moment.replace(hour=8, minute=0, second=0, microsecond=0, tzinfo=UTC)
        if dialect == "binance":
            dated_id = f"BTCUSDT_{at:%y%m%d}"
        else:
            dated_id = f"BTCUSDT-{at:%d}{at:%b}{at:%y}".upper()
        out.append(replace(perp, expiry_ms=int(at.timestamp() * 1000), dated_id=dated_id))
    return out
