"""Group shapes beyond "some assets, one contract": allocation groups, legs, windows.

Settings stay flat for the rest of the daemon: a configured group that trades
several instruments — ``instruments = {SOL = "SOL/USDT:USDT", AVAX = "ETH/USDT:USDT"}``
(a contract per asset, the others on the proxy ``instrument``) or ``targets``
(an allocation group, one contract per hedged asset) — is split into *legs* when
the settings load. Each leg is an ordinary hedge group of one instrument, named
``{group}.{ASSET}``, that sizes, bands, journals and trades on its own; the
engine, execution, journal and guards need no new path. A leg's client order id
code keeps its asset (``settings.client_id_code``), so legs never share orders.

This module holds the extra settings fields (:class:`AllocationFields`,
:class:`WindowSettings`), their cross-field checks, and the split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hedgekeeper.beta import BetaRules
from hedgekeeper.contracts import parse_symbol
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.model import STABLECOINS, AllocationSpec, GroupSpec
from hedgekeeper.windows import HedgeWindow

__all__ = [
    "AUTO",
    "ESTIMATE",
    "AllocationFields",
    "BetaSettings",
    "WindowSettings",
    "check_group",
    "expand_groups",
    "leg_spec",
    "own_perpetual",
    "parse_instant",
    "resolve_auto",
]

Weight = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]
Band = Annotated[Decimal, Field(gt=0, le=Decimal("0.5"), allow_inf_nan=False)]
AssetKey = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}$")]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

H = TypeVar("H", bound=BaseModel)

#: An asset's beta written as this word is estimated from market data (``[hedges.beta]``).
ESTIMATE = "estimate"
#: ``instruments = { SOL = "auto" }``: the asset's own linear perpetual if listed, else the proxy.
AUTO = "auto"

#: Which symbols an account lists, or ``None`` while that is not known yet (ccxt, before
#: markets load: :func:`resolve_auto` splits the groups again once it is).
Listed = Callable[[str], "set[str] | None"]


def own_perpetual(asset: str, proxy: str) -> str:
    """The asset's linear perpetual on the proxy's quote: ``SOL`` by ``ETH/USDT:USDT`` ->
    ``SOL/USDT:USDT`` (a non-linear proxy: the USDT one)."""
    try:
        parts = parse_symbol(proxy)
    except ValueError:
        return f"{asset}/USDT:USDT"
    if parts.settle is not None and parts.settle == parts.quote:
        return f"{asset}/{parts.quote}:{parts.settle}"
    return f"{asset}/USDT:USDT"


def _seconds(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60


class WindowSettings(BaseModel):
    """A hedge window: from ``start`` to ``end`` (UTC), or every ``weekdays`` between two times.

    Inside it, its ``ratio`` (or, for an allocation group, its ``targets``) replaces
    the group's. Naive date-times are taken as UTC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field("", description="a name shown in plan and logs")
    start: datetime | None = Field(None, description="absolute window: first instant (UTC)")
    end: datetime | None = Field(None, description="absolute window: first instant after it")
    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(_WEEKDAYS), description="recurring window: days it starts on"
    )
    daily_start: ClockTime | None = Field(None, description='recurring window: "HH:MM" UTC')
    daily_end: ClockTime | None = Field(
        None, description='"HH:MM" UTC, exclusive; before daily_start: runs past midnight'
    )
    ratio: Annotated[Decimal, Field(ge=0, le=3, allow_inf_nan=False)] | None = None
    targets: dict[AssetKey, Weight] | None = None

    @model_validator(mode="after")
    def _shape(self) -> WindowSettings:
        absolute = self.start is not None or self.end is not None
        recurring = self.daily_start is not None or self.daily_end is not None
        if absolute == recurring:
            raise ValueError("a window has start and end, or daily_start and daily_end")
        if absolute:
            if self.start is None or self.end is None:
                raise ValueError("an absolute window needs both start and end")
            if _epoch(self.end) <= _epoch(self.start):
                raise ValueError(f"end {self.end} is not after start {self.start}")
        elif self.daily_start is None or self.daily_end is None:
            raise ValueError("a recurring window needs both daily_start and daily_end")
        if not self.weekdays:
            raise ValueError("weekdays: name at least one day")
        if self.ratio is None and self.targets is None:
            raise ValueError("a window sets a ratio (or targets, in an allocation group)")
        return self

    def window(self) -> HedgeWindow:
        """The core's view of this window."""
        return HedgeWindow(
            ratio=self.ratio,
            targets=None if self.targets is None else dict(self.targets),
            start=None if self.start is None else _epoch(self.start),
            end=None if self.end is None else _epoch(self.end),
            weekdays=frozenset(_WEEKDAYS.index(day) for day in self.weekdays),
            daily_start=None if self.daily_start is None else _seconds(self.daily_start),
            daily_end=None if self.daily_end is None else _seconds(self.daily_end),
            label=self.label,
        )


def parse_instant(text: str) -> float:
    """Epoch seconds of an ISO 8601 date-time (``Z`` or an offset; naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {text!r} (e.g. 2026-03-18T20:00Z)") from None
    return _epoch(moment)


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class BetaSettings(BaseModel):
    """How ``"estimate"`` betas are estimated (see :mod:`hedgekeeper.beta`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = Field(
        default="1h", description="bar length of the returns"
    )
    window: Annotated[int, Field(ge=10, le=1000)] = Field(
        default=720, description="bars in the estimate (720 hourly bars: 30 days)"
    )
    halflife: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="EWMA half-life in bars; unset: equal weights"
    )
    shrink: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1, description="pull toward 1: beta = (1 - shrink) h* + shrink"
    )
    beta_min: Annotated[float, Field(ge=-10, le=10)] = 0.0
    beta_max: Annotated[float, Field(ge=-10, le=10)] = 3.0
    min_samples: Annotated[int, Field(ge=2)] = Field(
        default=168, description="fewer bars: the fallback"
    )
    min_r2: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.2, description="a weaker fit: the fallback"
    )
    fallback: Annotated[Decimal, Field(ge=-10, le=10, allow_inf_nan=False)] = Field(
        default=Decimal(1), description="the beta used while no estimate may be"
    )
    refresh: Annotated[float, Field(ge=60)] = Field(
        default=3600.0, description="seconds between two estimates"
    )

    @model_validator(mode="after")
    def _bounds(self) -> BetaSettings:
        if self.beta_min > self.beta_max:
            raise ValueError(f"beta_min {self.beta_min} is above beta_max {self.beta_max}")
        if self.min_samples > self.window:
            raise ValueError(f"min_samples {self.min_samples} is above window {self.window}")
        return self

    def rules(self) -> BetaRules:
        """The core's view of these settings."""
        return BetaRules(shrink=self.shrink, beta_min=self.beta_min, beta_max=self.beta_max,
                         min_samples=self.min_samples, min_r2=self.min_r2,
                         fallback=self.fallback, halflife=self.halflife)  # fmt: skip


class AllocationFields(BaseModel):
    """Fields a hedge group has beyond one static ratio on one contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: dict[AssetKey, str] = Field(
        default_factory=dict,
        description="asset -> its own hedge contract (a leg each); others use instrument",
    )
    targets: dict[AssetKey, Weight] = Field(
        default_factory=dict,
        description="allocation group: asset -> target weight, summing to 1",
    )
    trigger: Band = Field(
        Decimal("0.05"), description="allocation: hedge once a weight exceeds target + this"
    )
    release: Band | None = Field(
        None, description="allocation: buy back below target - this (default: trigger)"
    )
    windows: list[WindowSettings] = Field(
        default_factory=list, description="time-bounded ratio (or targets); first match wins"
    )
    beta: BetaSettings = Field(
        BetaSettings(), description='how assets = { X = "estimate" } are estimated'
    )


def check_group(hedge: Any) -> None:
    """Cross-field checks of one configured group; raises ``ValueError`` naming the field."""
    if hedge.targets:
        _check_allocation(hedge)
        return
    if not hedge.assets:
        raise ValueError("assets: a hedge needs at least one asset (or targets)")
    if hedge.ratio is None:
        raise ValueError("ratio: required (an allocation group sets targets instead)")
    for asset, symbol in hedge.instruments.items():
        if asset not in hedge.assets:
            raise ValueError(f"instruments.{asset}: {asset} is not one of the assets")
        if not symbol:
            raise ValueError(f"instruments.{asset}: empty instrument")
    if not hedge.instrument:
        autos = sorted(a for a, symbol in hedge.instruments.items() if symbol == AUTO)
        if autos:
            raise ValueError(
                f'instruments.{autos[0]}: "auto" falls back to the proxy: set instrument'
            )
        unmapped = sorted(a for a in hedge.assets if a not in hedge.instruments)
        if unmapped:
            raise ValueError(
                f"instrument: required (the contract hedging {', '.join(unmapped)}); "
                "or give each asset one in instruments"
            )
    for index, window in enumerate(hedge.windows):
        if window.targets is not None:
            raise ValueError(f"windows.{index}.targets: only an allocation group has targets")
        if window.ratio is not None and window.ratio > hedge.max_ratio:
            raise ValueError(
                f"windows.{index}.ratio: {window.ratio} is above max_ratio {hedge.max_ratio}"
            )


def _check_targets(where: str, targets: dict[str, Decimal]) -> None:
    total = sum(targets.values(), Decimal(0))
    if total != 1:
        raise ValueError(f"{where}: the weights sum to {total}, not 1")


def _check_allocation(hedge: Any) -> None:
    if hedge.assets:
        raise ValueError(
            "assets: an allocation group values the assets of its targets; drop assets"
        )
    if hedge.ratio is not None:
        raise ValueError("ratio: an allocation group hedges the overweight; drop ratio")
    if hedge.instrument:
        raise ValueError(
            "instrument: an allocation group names a contract per hedged asset: "
            'instruments = { BTC = "BTC/USDT:USDT" }'
        )
    _check_targets("targets", hedge.targets)
    if not hedge.instruments:
        raise ValueError("instruments: name the contract of at least one asset to hedge")
    used: dict[str, str] = {}
    for asset, symbol in hedge.instruments.items():
        if asset not in hedge.targets:
            raise ValueError(f"instruments.{asset}: {asset} has no target weight")
        if asset in STABLECOINS:
            raise ValueError(f"instruments.{asset}: a stablecoin is not hedged")
        if symbol == AUTO:
            raise ValueError(
                f'instruments.{asset}: an allocation group names each contract, not "auto"'
            )
        if symbol in used:
            raise ValueError(
                f"instruments.{asset}: {symbol!r} already hedges {used[symbol]}; an allocation "
                "group needs a separate contract for each hedged asset"
            )
        used[symbol] = asset
    for index, window in enumerate(hedge.windows):
        if window.ratio is not None:
            raise ValueError(f"windows.{index}.ratio: an allocation group's windows set targets")
        if window.targets is not None:
            if set(window.targets) != set(hedge.targets):
                raise ValueError(
                    f"windows.{index}.targets: give a weight for exactly the group's assets "
                    f"{sorted(hedge.targets)}"
                )
            _check_targets(f"windows.{index}.targets", window.targets)


def _leg(hedge: H, name: str, parent: str, asset: str | None, **update: Any) -> H:
    leg = hedge.model_copy(update={"name": name, "instruments": {}, **update})
    leg._leg = (parent, asset)  # type: ignore[attr-defined]
    return leg


def _no_listing(account: str) -> set[str] | None:
    return None


def expand_groups(hedges: Sequence[H], listed: Listed = _no_listing) -> list[H]:
    """Every configured group as groups of one instrument each (legs); see the module doc.

    ``"auto"`` picks the asset's own linear perpetual when ``listed`` says the hedge
    account lists it (or cannot say yet), else the proxy ``instrument``. Returns the
    same list when no group needs splitting.
    """
    if not any(h.targets or h.instruments for h in hedges):  # type: ignore[attr-defined]
        return list(hedges) if not isinstance(hedges, list) else hedges
    result: list[H] = []
    for hedge in hedges:
        config: Any = hedge
        if config.targets:
            everything = {asset: Decimal(1) for asset in config.targets}
            for asset, symbol in config.instruments.items():
                result.append(_leg(hedge, f"{config.name}.{asset}", config.name, asset,
                                   assets=everything, instrument=symbol))  # fmt: skip
            continue
        if not config.instruments:
            result.append(hedge)
            continue
        by_symbol: dict[str, list[str]] = {}
        for asset in config.assets:
            symbol = config.instruments.get(asset) or config.instrument
            if symbol == AUTO:
                own = own_perpetual(asset, config.instrument)
                known = listed(config.hedge_account)
                symbol = own if known is None or own in known else config.instrument
            by_symbol.setdefault(symbol, []).append(asset)
        if len(by_symbol) == 1:
            (symbol,) = by_symbol
            result.append(_leg(hedge, config.name, config.name, None, instrument=symbol))
            continue
        for symbol, assets in by_symbol.items():
            base = symbol.split("/")[0]
            result.append(_leg(
                hedge, f"{config.name}.{base}", config.name, None, instrument=symbol,
                assets={a: config.assets[a] for a in assets},
                extra_holdings={a: q for a, q in config.extra_holdings.items() if a in assets},
            ))  # fmt: skip
    return result


def leg_spec(hedge: Any, spec: GroupSpec) -> GroupSpec:
    """Add what the core needs of a leg and of windows to a group's spec."""
    leg: tuple[str, str | None] | None = hedge._leg
    allocation = None
    if leg is not None and leg[1] is not None:
        allocation = AllocationSpec(
            asset=leg[1],
            targets=dict(hedge.targets),
            trigger=hedge.trigger,
            release=hedge.release if hedge.release is not None else hedge.trigger,
        )
    estimated = frozenset(a for a, beta in hedge.assets.items() if beta == ESTIMATE)
    if allocation is not None:
        estimated = frozenset()  # an allocation leg values spot at 1 x price
    return replace(
        spec,
        assets={
            a: hedge.beta.fallback if a in estimated else Decimal(beta)
            for a, beta in hedge.assets.items()
        },
        estimated=estimated,
        allocation=allocation,
        windows=tuple(w.window() for w in hedge.windows),
        parent=None if leg is None else leg[0],
    )


async def resolve_auto(settings: Any, venues: Mapping[str, Any]) -> Any:
    """``settings`` with every ``"auto"`` instrument decided by what the exchange lists.

    ``venues`` maps account -> its venue (only ``load_markets`` is used). Settings load before
    any exchange is asked (a sim account knows its symbols at once); this asks each
    hedge account whether the wanted perpetuals exist, splits the groups again and
    repeats the cross-group checks. Without ``"auto"`` it returns ``settings`` itself.
    """
    configured = settings.__dict__.get("_configured") or settings.hedges
    wanted: dict[str, set[str]] = {}
    for hedge in configured:
        for asset, symbol in hedge.instruments.items():
            if symbol == AUTO:
                wanted.setdefault(hedge.hedge_account, set()).add(
                    own_perpetual(asset, hedge.instrument)
                )
    if not wanted:
        return settings
    found: dict[str, set[str]] = {}
    for account, symbols in wanted.items():
        markets = await venues[account].load_markets(sorted(symbols))
        found[account] = {s for s, m in markets.items() if m.kind.value == "linear"}
    legs = expand_groups(configured, lambda account: found.get(account, set()))
    resolved = settings.model_copy(update={"hedges": legs})
    resolved.__dict__["_hedges_by_name"] = {h.name: h for h in legs}
    resolved.__dict__["_configured"] = configured
    try:
        resolved._references()  # two legs on one instrument, client id codes, accounts
    except ValueError as error:
        raise ConfigError(f"instruments = auto: {error}") from None
    return resolved
