"""Contract symbols, expiry and basis: pure functions, no I/O.

Symbols follow ccxt: ``BTC/USDT:USDT`` is a linear perpetual, ``BTC/USD:BTC``
an inverse one, ``BTC/USDT:USDT-261225`` a linear future delivering on
2026-12-25 and ``BTC/USD:BTC-261225`` its inverse twin. A hedge group may also
name ``BTC/USDT:USDT-quarterly``: the nearest quarterly contract (March, June,
September, December) with enough days left, resolved from what the venue lists
at start and again at every roll.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from hedgekeeper.model import MarketSpec

__all__ = [
    "QUARTERLY",
    "ContractSymbol",
    "annualised_basis",
    "contract_kind",
    "days_to_expiry",
    "expiry_note",
    "expiry_of_code",
    "next_contract",
    "parse_symbol",
    "resolve_alias",
]

#: The alias suffix a group may name instead of a delivery date.
QUARTERLY = "quarterly"
_SYMBOL = re.compile(
    r"^(?P<base>[^/:]+)/(?P<quote>[^/:]+)(?::(?P<settle>[^-]+)(?:-(?P<code>\d{6}|quarterly))?)?$"
)
_DAY = Decimal(86400)
_YEAR_DAYS = Decimal(365)
_QUARTER_MONTHS = frozenset({3, 6, 9, 12})
#: Delivery hour (UTC) of the exchanges named in the guides (Binance, Bybit, OKX: 08:00).
DELIVERY_HOUR = 8


@dataclass(frozen=True, slots=True)
class ContractSymbol:
    """The parts of a ccxt symbol: ``code`` is ``YYMMDD``, ``quarterly`` or ``None``."""

    base: str
    quote: str
    settle: str | None
    code: str | None

    @property
    def family(self) -> str:
        """The symbol without its delivery date: ``BTC/USDT:USDT``."""
        return f"{self.base}/{self.quote}:{self.settle}"

    @property
    def dated(self) -> bool:
        """A future with an expiry (or the quarterly alias)."""
        return self.code is not None

    @property
    def alias(self) -> bool:
        """The ``-quarterly`` alias, to be resolved to a listed contract."""
        return self.code == QUARTERLY


def parse_symbol(symbol: str) -> ContractSymbol:
    """Split a ccxt symbol; raises ``ValueError`` naming the symbol when it is not one."""
    match = _SYMBOL.match(symbol)
    if match is None:
        raise ValueError(f"{symbol!r} is not a ccxt symbol (BASE/QUOTE[:SETTLE[-YYMMDD]])")
    return ContractSymbol(match["base"], match["quote"], match["settle"], match["code"])


def contract_kind(symbol: str) -> str:
    """``spot``, ``linear`` (settled in the quote) or ``inverse``, dated or not."""
    parts = parse_symbol(symbol)
    if parts.settle is None:
        return "spot"
    return "linear" if parts.settle == parts.quote else "inverse"


def expiry_of_code(code: str) -> float:
    """Epoch seconds of delivery for a ``YYMMDD`` code (08:00 UTC that day)."""
    moment = datetime.strptime(code, "%y%m%d").replace(hour=DELIVERY_HOUR, tzinfo=UTC)
    return moment.timestamp()


def days_to_expiry(expiry: float, now: float) -> Decimal:
    """Days (fractional, never negative) from ``now`` to ``expiry``, epoch seconds."""
    return max(Decimal(0), (Decimal(str(expiry)) - Decimal(str(now))) / _DAY)


def annualised_basis(future: Decimal, index: Decimal, days: Decimal) -> Decimal | None:
    """``(future / index - 1) × 365 / days``: the yearly carry of selling the future.

    ``None`` when it cannot be said (no index, or less than an hour to expiry, where
    annualising a residue would print nonsense).
    """
    if index <= 0 or days < Decimal(1) / 24:
        return None
    return (future / index - 1) * _YEAR_DAYS / days


def _is_quarterly(expiry: float) -> bool:
    moment = datetime.fromtimestamp(expiry, UTC)
    if moment.month not in _QUARTER_MONTHS:
        return False
    # Quarterlies deliver on the last Friday of the quarter's last month.
    last_day = calendar.monthrange(moment.year, moment.month)[1]
    last_friday = max(
        day for day in range(last_day - 6, last_day + 1)
        if calendar.weekday(moment.year, moment.month, day) == calendar.FRIDAY
    )  # fmt: skip
    return moment.day == last_friday


def _family_contracts(
    family: str, listed: Iterable[MarketSpec], *, quarterly_only: bool
) -> list[MarketSpec]:
    found = []
    for spec in listed:
        if spec.expiry is None:
            continue
        parts = parse_symbol(spec.symbol)
        if parts.family != family or (quarterly_only and not _is_quarterly(spec.expiry)):
            continue
        found.append(spec)
    return sorted(found, key=lambda spec: spec.expiry or 0.0)


def resolve_alias(
    alias: str, listed: Mapping[str, MarketSpec], now: float, min_days: Decimal
) -> str | None:
    """The listed quarterly of ``alias``'s family nearest to expiry with more than
    ``min_days`` left; ``None`` when there is none."""
    family = parse_symbol(alias).family
    for spec in _family_contracts(family, listed.values(), quarterly_only=True):
        if spec.expiry is not None and days_to_expiry(spec.expiry, now) > min_days:
            return spec.symbol
    return None


def next_contract(
    current: MarketSpec, listed: Mapping[str, MarketSpec], *, quarterly_only: bool = True
) -> str | None:
    """The first listed contract of ``current``'s family delivering after it."""
    family = parse_symbol(current.symbol).family
    after = current.expiry or 0.0
    for spec in _family_contracts(family, listed.values(), quarterly_only=quarterly_only):
        if (spec.expiry or 0.0) > after:
            return spec.symbol
    return None


def expiry_note(group: Mapping[str, object]) -> str:
    """`` · 9.50 d to expiry, basis 5.00 %/yr`` for a dated group's row, else ``""``."""
    days, basis = group.get("days_to_expiry"), group.get("basis_annualised")
    if days is None:
        return ""
    note = f" · {days} d to expiry"
    if basis is not None:
        note += f", basis {Decimal(str(basis)) * 100:.2f} %/yr"
    return note
