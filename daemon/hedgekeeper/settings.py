"""Configuration: a TOML file, overridden by secret files, overridden by the environment.

Precedence, highest first:

1. environment variables ``HEDGEKEEPER_<FIELD>``, nested with ``__``
   (``HEDGEKEEPER_ACCOUNTS__BINANCE__SECRET``);
2. files in the secrets directory (``HEDGEKEEPER_SECRETS_DIR``, else systemd's
   ``$CREDENTIALS_DIRECTORY``), named like the variables, with or without the
   ``HEDGEKEEPER_`` prefix, case-insensitive (``accounts__binance__secret``);
3. the TOML file given with ``--config``.

Validation is strict: unknown keys, wrong types, out-of-range values and
references to unknown accounts or instruments fail with the field's path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hedgekeeper.config_hints import unknown_key_message
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.groups import (
    AllocationFields,
    WindowSettings,
    check_group,
    expand_groups,
    leg_spec,
)
from hedgekeeper.model import GroupSpec, Mode

__all__ = [
    "AccountSettings",
    "ControlSettings",
    "ExecutionSettings",
    "HedgeSettings",
    "LogSettings",
    "MetricsSettings",
    "NotifySettings",
    "PaperSettings",
    "Settings",
    "SimSettings",
    "StreamSettings",
    "WindowSettings",
    "client_id_code",
    "config_hash",
    "group_code_of",
    "load_settings",
    "readable_secrets",
    "redacted",
    "secret_values",
]

#: No amount, price or size of a real portfolio reaches this: a typo or hostile value does.
MAX_AMOUNT = Decimal("1e15")
PositiveDecimal = Annotated[Decimal, Field(gt=0, lt=MAX_AMOUNT, allow_inf_nan=False)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, lt=MAX_AMOUNT, allow_inf_nan=False)]
#: A duration in seconds: finite, positive, at most a week.
Seconds = Annotated[float, Field(gt=0, le=7 * 86400, allow_inf_nan=False)]
# No upper bound of its own: the cap is the group's max_ratio, which the group checks and
# names in its error (a bare "≤ 3" would point at the wrong setting).
Ratio = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
AssetName = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}$")]

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("hedgekeeper_config_file", default=None)


class _Strict(BaseModel):
    """Base of every section: unknown keys are an error, values are frozen."""

    # No inf or NaN anywhere: every float and Decimal must be a finite number.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SimSettings(_Strict):
    """The offline simulated venue (``exchange = "sim"``)."""

    prices: dict[AssetName, PositiveDecimal] = Field(description="asset -> starting USD price")
    balances: dict[AssetName, NonNegativeDecimal] = Field(default_factory=dict)
    contract_sizes: dict[AssetName, PositiveDecimal] = Field(
        default_factory=dict, description="linear perps {ASSET}/USDT:USDT: base per contract"
    )
    inverse: dict[AssetName, PositiveDecimal] = Field(
        default_factory=dict, description="inverse perps {ASSET}/USD:{ASSET}: USD per contract"
    )
    positions: dict[str, Annotated[Decimal, Field(gt=-MAX_AMOUNT, lt=MAX_AMOUNT)]] = Field(
        default_factory=dict, description="symbol -> signed contracts at start"
    )
    volatility: NonNegativeDecimal = Field(Decimal(0), description="annualised, e.g. 0.6")
    seed: int = 0
    speed: PositiveDecimal = Field(
        Decimal(1), description="simulated market seconds per wall-clock second"
    )
    spread_bps: NonNegativeDecimal = Decimal(2)
    min_notional: NonNegativeDecimal = Field(Decimal(5), description="USD, linear perps")
    collateral: NonNegativeDecimal | None = Field(
        default=None, description="USD collateral of the futures wallet (enables margin figures)"
    )
    replay: dict[AssetName, Path] = Field(
        default_factory=dict,
        description="asset -> OHLCV CSV (timestamp_ms,open,high,low,close,volume): spot prices",
    )
    replay_perp: dict[AssetName, Path] = Field(
        default_factory=dict, description="asset -> OHLCV CSV of its perpetual (mark prices)"
    )
    replay_start: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="epoch milliseconds where the replay begins (default: first bar)"
    )
    funding_rate: Annotated[Decimal, Field(ge=-0.05, le=0.05, allow_inf_nan=False)] = Field(
        Decimal("0.0001"), description="funding rate per settlement of every perp (0.0001 = 0.01 %)"
    )
    funding_interval_hours: Annotated[int, Field(ge=1, le=24)] = Field(
        8, description="hours between funding settlements (sim time, aligned to 00:00 UTC)"
    )
    replay_funding: dict[AssetName, Path] = Field(
        default_factory=dict,
        description="asset -> CSV (timestamp_ms,rate) of real funding settlements of its perp",
    )
    futures: dict[AssetName, list[Annotated[str, Field(pattern=r"^\d{6}$")]]] = Field(
        default_factory=dict,
        description="asset -> delivery dates (YYMMDD, 08:00 UTC) of dated futures: linear "
        "{ASSET}/USDT:USDT-YYMMDD if the asset has a contract size, inverse if under inverse",
    )
    futures_basis: Annotated[Decimal, Field(ge=-1, le=1, allow_inf_nan=False)] = Field(
        Decimal("0.05"),
        description="annualised premium of the dated futures over spot; it shrinks to 0 at expiry",
    )

    @model_validator(mode="after")
    def _known_assets(self) -> SimSettings:
        for section in ("replay", "replay_perp", "replay_funding"):
            for asset, path in getattr(self, section).items():
                if not path.is_file():
                    raise ValueError(f"{section}.{asset}: no such file {str(path)!r}")
                if asset not in self.prices:
                    raise ValueError(f"{section}.{asset}: give {asset} a price (used until replay)")
        for section in ("contract_sizes", "inverse"):
            for asset in getattr(self, section):
                if asset not in self.prices:
                    raise ValueError(f"{section}.{asset}: no price for {asset} in prices")
        for asset, codes in self.futures.items():
            if asset not in self.contract_sizes and asset not in self.inverse:
                raise ValueError(
                    f"futures.{asset}: give {asset} a contract size (contract_sizes or inverse)"
                )
            for code in codes:
                try:
                    datetime.strptime(code, "%y%m%d")
                except ValueError:
                    raise ValueError(f"futures.{asset}: {code!r} is not a date YYMMDD") from None
        symbols = set(self.symbols())
        for symbol in self.positions:
            if symbol not in symbols:
                raise ValueError(
                    f"positions: unknown instrument {symbol!r}; known: {sorted(symbols)}"
                )
        return self

    def symbols(self) -> Iterator[str]:
        """Every perpetual the simulated venue lists."""
        for asset in self.contract_sizes:
            yield f"{asset}/USDT:USDT"
        for asset in self.inverse:
            yield f"{asset}/USD:{asset}"
        for asset, codes in self.futures.items():
            for code in codes:
                if asset in self.contract_sizes:
                    yield f"{asset}/USDT:USDT-{code}"
                if asset in self.inverse:
                    yield f"{asset}/USD:{asset}-{code}"


class AccountSettings(_Strict):
    """One account at one exchange (``sim`` or a ccxt exchange id)."""

    exchange: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    sim: SimSettings | None = None
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    testnet_api_key: SecretStr | None = None
    testnet_secret: SecretStr | None = None
    testnet_password: SecretStr | None = None
    testnet_environment: Literal["testnet", "demo"] = Field(
        "testnet", description="Bybit: its testnet or its demo trading"
    )
    api_host: Annotated[str, Field(pattern=r"^https?://[^/]+$")] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: Annotated[int, Field(ge=100, le=120000)] = 10000
    rate_limit: bool = Field(
        default=True,
        description="ccxt's client-side rate limiter; turn off only for a local test exchange",
    )
    allow_withdraw_permission: bool = False
    position_mode: Literal["one-way", "hedge"] | None = Field(
        default=None,
        description="set the futures position mode at start; unset: detect and never change it",
    )

    @model_validator(mode="after")
    def _sim_section(self) -> AccountSettings:
        if self.exchange == "sim" and self.sim is None:
            raise ValueError("exchange 'sim' needs a [accounts.<name>.sim] section")
        if self.exchange != "sim" and self.sim is not None:
            raise ValueError(f"a sim section only goes with exchange 'sim', not {self.exchange!r}")
        return self


class HedgeSettings(AllocationFields, _Strict):
    """One hedge group: holdings (with betas) hedged by one instrument on one account.

    A group with ``instruments`` (a contract per asset) or ``targets`` (an allocation
    group) is split into one leg per instrument when the settings load; every leg is
    a ``HedgeSettings`` of its own, named ``{group}.{asset}`` (see :mod:`groups`).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
    assets: dict[
        AssetName, Annotated[Decimal, Field(ge=-10, le=10, allow_inf_nan=False)] | Literal[
            "estimate"]
    ] = Field(default_factory=dict, description='asset -> beta, or "estimate" (not with targets)')
    spot_accounts: list[str] = Field(default_factory=list)
    extra_holdings: dict[AssetName, NonNegativeDecimal] = Field(default_factory=dict)
    instrument: str = Field(
        "", description="the hedge contract; with instruments, the proxy for assets not listed"
    )
    hedge_account: str
    ratio: Ratio | None = Field(
        None, description="share of the exposure to hedge (required, except with targets)"
    )
    tolerance: Annotated[Decimal, Field(ge=0, le=Decimal("0.5"))] = Decimal("0.02")
    max_ratio: Annotated[Decimal, Field(gt=0, le=3)] = Decimal(1)
    price_account: str | None = Field(
        None, description="account whose spot tickers price the assets (default hedge_account)"
    )
    quote: AssetName = Field("USDT", description="assets are priced as {ASSET}/{quote}")

    # -- execution style ----------------------------------------------------------------
    execution: Literal["market", "maker"] = Field(
        default="market", description="marketable IOC limit, or post-only at the best price"
    )
    slippage_cap_bps: Annotated[Decimal, Field(gt=0, le=1000)] = Field(
        default=Decimal(50), description="market style: limit price this far past the best price"
    )
    reprice_after: Seconds = Field(
        default=10.0, description="maker style: seconds before a resting order is repriced"
    )
    deadline: Seconds = Field(
        default=60.0, description="maker style: seconds before falling back to market style"
    )
    max_order_usd: PositiveDecimal | None = Field(
        default=None, description="slice larger deltas into child orders of at most this"
    )

    # -- guards -----------------------------------------------------------------------------
    max_position_contracts: PositiveDecimal | None = None
    runaway_multiple: Annotated[Decimal, Field(gt=0, le=20)] = Field(
        default=Decimal(2), description="hedge added per window may not exceed this x exposure"
    )
    runaway_window: Seconds = 3600.0
    max_data_age: Seconds = Field(
        default=30.0, description="seconds; older or missing data is not traded on"
    )
    max_basis: Annotated[Decimal, Field(gt=0, le=1)] = Field(
        default=Decimal("0.03"), description="hold while |mark / index - 1| exceeds this"
    )
    max_jump: Annotated[Decimal, Field(gt=0, le=10)] = Field(
        default=Decimal("0.15"), description="a bigger move waits for a second snapshot"
    )
    shock: Annotated[Decimal, Field(ge=0, le=5)] = Field(
        default=Decimal("0.3"), description="a short must survive this rise above maintenance"
    )
    maintenance_margin_rate: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.005")
    min_liquidation_distance: Annotated[Decimal, Field(ge=0, le=10)] = Field(
        default=Decimal("0.15"), description="closer than this to liquidation: alert, REDUCING"
    )
    leverage: Annotated[int, Field(ge=1, le=125)] | None = None
    margin_mode: Literal["cross", "isolated"] | None = None
    topup_max_usd: NonNegativeDecimal = Field(
        default=Decimal(0),
        description="most moved from spot to futures collateral per 24 h to keep margin; 0: never",
    )
    topup_asset: AssetName = "USDT"

    #: Set on the legs :func:`groups.expand_groups` makes: (parent group, allocation asset).
    _leg: tuple[str, str | None] | None = PrivateAttr(default=None)

    # -- dated futures ------------------------------------------------------------------------
    roll_days_before: Annotated[Decimal, Field(gt=0, le=90)] = Field(
        default=Decimal(3),
        description="dated instrument: roll into the next contract this many days before expiry",
    )
    roll_to: str | None = Field(
        default=None,
        description="the contract to roll into (default: the next quarterly the venue lists)",
    )
    roll_basis_margin: Annotated[Decimal, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="roll early once the next contract's annualised basis beats this one's by "
        "this much (0.02 = 2 %/yr); unset: only roll_days_before",
    )
    min_days_to_expiry: Annotated[Decimal, Field(ge=0, le=90)] = Field(
        default=Decimal(1),
        description="an unrolled contract this close to expiry halts the group, loudly",
    )

    @model_validator(mode="after")
    def _roll_before_the_halt(self) -> HedgeSettings:
        if self.min_days_to_expiry >= self.roll_days_before:
            raise ValueError(
                f"min_days_to_expiry {self.min_days_to_expiry} must be below "
                f"roll_days_before {self.roll_days_before}: the roll comes first"
            )
        return self

    @model_validator(mode="after")
    def _ratio_under_cap(self) -> HedgeSettings:
        check_group(self)  # assets or targets, instrument(s), windows (see groups.py)
        if self.ratio is not None and self.ratio > self.max_ratio:
            raise ValueError(
                f"ratio {self.ratio} is above max_ratio {self.max_ratio}: lower ratio, or raise "
                "max_ratio (the cap on the hedge, at most 3)"
            )
        return self

    def spec(self) -> GroupSpec:
        """The core's view of this group."""
        return leg_spec(self, GroupSpec(
            name=self.name,
            assets={},  # betas: leg_spec (numbers, or "estimate" -> the fallback)
            spot_accounts=tuple(self.spot_accounts),
            extra_holdings=dict(self.extra_holdings),
            instrument=self.instrument,
            hedge_account=self.hedge_account,
            ratio=self.ratio if self.ratio is not None else Decimal(0),
            tolerance=self.tolerance,
            max_ratio=self.max_ratio,
        ))  # fmt: skip


class ExecutionSettings(_Strict):
    """How orders are managed across groups and accounts."""

    orphan_orders: Literal["cancel", "adopt"] = Field(
        default="cancel",
        description="at start, working orders with our prefix that the journal lacks",
    )
    cancel_on_exit: bool = True
    flatten_on_exit: bool = False
    max_orders_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 20
    read_retries: Annotated[int, Field(ge=0, le=10)] = 2
    circuit_breaker_failures: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    circuit_breaker_cooldown: Seconds = 60.0
    lookup_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5,
        description="not-found look-ups before an unacknowledged order counts as never placed",
    )
    unknown_settle_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0,
        description="and at least this long after it was sent: longer than any venue's receive "
        "window (Binance at most 60 s), so a request in flight can no longer land",
    )
    position_settle_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=30.0,
        description="a position read that lags a fill learned this recently holds the group "
        "(never a second order); past it, the exchange's figure is adopted",
    )


class StreamSettings(_Strict):
    """Exchange push streams (ccxt.pro) that wake the engine; REST polling stays the floor."""

    enabled: bool = Field(
        default=False,
        description="watch balances, positions, orders and prices where ccxt.pro can",
    )
    reconcile_interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0,
        description="seconds between REST cycles while every stream is up "
        "(poll_interval again whenever one is down or stale)",
    )
    stale_after: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, description="a price stream silent this long counts as down"
    )
    price_move: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.5,
        description="a price move of this fraction of a group's tolerance wakes a cycle",
    )


class PaperSettings(_Strict):
    """The dry-run fill model."""

    taker_fee: Annotated[Decimal, Field(ge=0, le=Decimal("0.01"))] = Decimal("0.0005")
    maker_fee: Annotated[Decimal, Field(ge=-0.01, le=Decimal("0.01"))] = Decimal("0.0002")
    slippage_bps: Annotated[Decimal, Field(ge=0, le=500)] = Decimal(1)


_LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Control tokens shorter than this are refused (a guessable token is no token).
MIN_TOKEN_LENGTH = 16


class ControlSettings(_Strict):
    """The local control channel (health, status, events, commands)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    token: SecretStr | None = Field(
        default=None,
        description="required for commands, and for every endpoint on a non-loopback host; "
        f"at least {MIN_TOKEN_LENGTH} characters, no whitespace",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser Origins allowed on the websocket (none by default: a web page "
        "in the operator's browser must not read positions or send commands)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="extra Host header names accepted besides the bind address, localhost "
        "and 127.0.0.1 (DNS-rebinding guard)",
    )

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Never echo the token: the message names the rule, not the value.
        if value is None:
            return None
        text = value.get_secret_value()
        if not text or any(c.isspace() for c in text):
            raise ValueError("the token must not be empty or contain whitespace")
        if len(text) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must be at least {MIN_TOKEN_LENGTH} characters long")
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ControlSettings:
        if self.enabled and self.host not in _LOOPBACK and self.token is None:
            raise ValueError(f"host {self.host!r} is not loopback: set control.token")
        return self


class MetricsSettings(_Strict):
    """Prometheus exposition (off unless a port is set)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] | None = None


class NotifySettings(_Strict):
    """Notifications through apprise URLs (Telegram, Slack, Discord, e-mail, …)."""

    urls: list[SecretStr] = Field(default_factory=list, description="apprise URLs (secrets)")
    min_interval: Annotated[float, Field(ge=0, le=7 * 86400)] = Field(
        default=300.0, description="seconds between two notifications of the same kind and subject"
    )
    daily_summary: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = Field(
        default="08:00", description='UTC time of the daily summary; "off" to disable'
    )

    @field_validator("daily_summary", mode="before")
    @classmethod
    def _summary_off(cls, value: Any) -> Any:
        # TOML has no null: "off" (or an empty string) turns the daily summary off.
        return None if isinstance(value, str) and value.strip().lower() in ("", "off") else value


class LogSettings(_Strict):
    """Log level and format (``auto``: console on a terminal, JSON lines otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def client_id_code(group_name: str) -> str:
    """The group's part of a client order id: alphanumerics of its name, at most 10.

    A leg ``group.ASSET`` keeps up to 4 characters of its asset at the end, so the legs
    of one long group name do not all shorten to the same code.
    """
    parent, dot, leg = group_name.partition(".")
    if dot:
        leg_code = re.sub(r"[^A-Za-z0-9]", "", leg)[:4]
        return re.sub(r"[^A-Za-z0-9]", "", parent)[: 10 - len(leg_code)] + leg_code
    return re.sub(r"[^A-Za-z0-9]", "", group_name)[:10]


#: Fixed-width tail of every client order id: a 4-character journal epoch, 10 digits.
ID_TAIL = 14


def group_code_of(client_order_id: str, instance: str) -> str | None:
    """The group code inside one of our client order ids, or ``None`` if it is not ours.

    Ids are ``{instance}{group_code}{epoch:4}{seq:010d}``; the fixed-width tail makes
    the split exact, so group ``g1`` never claims the orders of group ``g10``.
    """
    if not client_order_id.startswith(instance):
        return None
    if len(client_order_id) <= len(instance) + ID_TAIL:
        return None
    if not client_order_id[-10:].isdigit() or not client_order_id[-ID_TAIL:-10].isalnum():
        return None
    return client_order_id[len(instance) : -ID_TAIL]


class Settings(BaseSettings):
    """The whole configuration of one daemon instance."""

    model_config = SettingsConfigDict(
        env_prefix="HEDGEKEEPER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        allow_inf_nan=False,
    )

    mode: Mode = Mode.DRY_RUN
    instance: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")] = Field(
        "hk", description="prefix of our client order ids; unique per daemon on an account"
    )
    poll_interval: Annotated[float, Field(ge=0.2, le=3600)] = Field(
        10.0, description="seconds between two cycles (at least 0.2: exchanges rate-limit)"
    )
    state_dir: Path | None = None
    accounts: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], AccountSettings]
    hedges: list[HedgeSettings]
    paper: PaperSettings = PaperSettings()
    execution: ExecutionSettings = ExecutionSettings()
    log: LogSettings = LogSettings()
    heartbeat_interval: Annotated[float, Field(ge=1, le=86400)] = Field(
        60.0, description="seconds between two daemon.heartbeat log lines"
    )
    funding_poll_interval: Annotated[float, Field(ge=0, le=86400)] = Field(
        900.0, description="seconds between two reads of funding payments; 0 turns them off"
    )
    journal_keep_days: Annotated[float, Field(ge=0, le=36500)] = Field(
        90.0, description="days of cycles and decisions the journal keeps (orders, fills, "
        "funding and operator actions are kept forever); 0 keeps everything"
    )
    streams: StreamSettings = StreamSettings()
    control: ControlSettings = ControlSettings()
    metrics: MetricsSettings = MetricsSettings()
    notify: NotifySettings = NotifySettings()

    @model_validator(mode="after")
    def _legs(self) -> Settings:
        """Split groups with a contract per asset or targets into legs (see groups.py)."""
        self.__dict__["_configured"] = self.hedges  # as written (resolve_auto splits again)

        def listed(account: str) -> set[str] | None:
            sim = self.accounts[account].sim if account in self.accounts else None
            return None if sim is None else set(sim.symbols())

        legs = expand_groups(self.hedges, listed)
        if legs is not self.hedges:
            object.__setattr__(self, "hedges", legs)
            self.__dict__["_hedges_by_name"] = {h.name: h for h in legs}
        return self

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names: set[str] = set()
        codes: dict[str, str] = {}
        instruments: dict[tuple[str, str], str] = {}
        sim_listings: dict[str, set[str]] = {}
        for index, hedge in enumerate(self.hedges):
            # An exchange keeps one position per instrument and account: two groups on it
            # would each see the other's hedge as their own and fight over it.
            key = (hedge.hedge_account, hedge.instrument)
            if key in instruments:
                raise ValueError(
                    f"hedges.{index}.instrument: {hedge.instrument!r} on account "
                    f"{hedge.hedge_account!r} already hedges group {instruments[key]!r}; "
                    "an instrument can back one group per account (merge the groups' assets)"
                )
            instruments[key] = hedge.name
            if hedge.name in names:
                raise ValueError(f"hedges: duplicate name {hedge.name!r}")
            names.add(hedge.name)
            code = client_id_code(hedge.name)
            if code in codes:
                raise ValueError(
                    f"hedges: names {codes[code]!r} and {hedge.name!r} give the same client "
                    f"order id code {code!r}; rename one"
                )
            codes[code] = hedge.name
            for field_name in ("hedge_account", "price_account"):
                account = getattr(hedge, field_name)
                if account is not None and account not in self.accounts:
                    raise ValueError(
                        f"hedges[{hedge.name}].{field_name}: unknown account {account!r}; "
                        f"known: {sorted(self.accounts)}"
                    )
            for account in hedge.spot_accounts:
                if account not in self.accounts:
                    raise ValueError(
                        f"hedges[{hedge.name}].spot_accounts: unknown account {account!r}; "
                        f"known: {sorted(self.accounts)}"
                    )
            sim = self.accounts[hedge.hedge_account].sim
            if hedge.hedge_account not in sim_listings:  # once per account, not per group
                sim_listings[hedge.hedge_account] = set() if sim is None else set(sim.symbols())
            listed = sim_listings[hedge.hedge_account]
            if hedge.instrument.endswith("-quarterly"):  # resolved at start from the listing
                family = hedge.instrument.removesuffix("quarterly")
                if any(s.startswith(family) for s in listed):
                    listed = listed | {hedge.instrument}  # a copy: the listing is shared
            if sim is not None and hedge.instrument not in listed:
                raise ValueError(
                    f"hedges[{hedge.name}].instrument: {hedge.instrument!r} is not listed by "
                    f"sim account {hedge.hedge_account!r}; it lists {sorted(sim.symbols())}"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over secret files over the TOML file (no ``.env`` files)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = _secrets_dir()
        if secrets_dir is not None:
            sources.append(_PrefixOptionalSecrets(settings_cls, secrets_dir))
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    def model_post_init(self, context: Any, /) -> None:
        """Index the hedges by name once: the engine looks them up for every group."""
        object.__setattr__(self, "_hedges_by_name", {h.name: h for h in self.hedges})

    def hedge(self, name: str) -> HedgeSettings:
        """The settings of one hedge group by name."""
        by_name: dict[str, HedgeSettings] = self.__dict__.get("_hedges_by_name") or {
            h.name: h for h in self.hedges
        }
        return by_name[name]

    def group_specs(self) -> list[GroupSpec]:
        """The core's view of every hedge group."""
        return [hedge.spec() for hedge in self.hedges]


def _secrets_dir() -> Path | None:
    raw = os.environ.get("HEDGEKEEPER_SECRETS_DIR") or os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(raw) if raw else None


class _PrefixOptionalSecrets(PydanticBaseSettingsSource):
    """Secret files named with or without the ``HEDGEKEEPER_`` prefix.

    systemd's ``LoadCredential=`` names are chosen by the operator; accepting both
    spellings keeps the unit file short (``LoadCredential=accounts__binance__secret:…``).
    """

    def __init__(self, settings_cls: type[BaseSettings], secrets_dir: Path) -> None:
        super().__init__(settings_cls)
        self._sources = [
            NestedSecretsSettingsSource(
                file_secret_settings=settings_cls,  # type: ignore[arg-type]
                secrets_dir=secrets_dir,
                secrets_dir_missing="error",
                secrets_prefix=prefix,
                secrets_nested_delimiter="__",
                secrets_case_sensitive=False,
            )
            for prefix in ("", "HEDGEKEEPER_")
        ]

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for source in self._sources:
            _deep_merge(merged, source())
        return merged


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        # Only numbers are echoed: a string may be a secret from an environment variable
        # or a secret file put in the wrong place, and its source is not known here.
        hide = not isinstance(value, int | float | Decimal) or isinstance(value, bool) or (
            path.endswith(tuple(_SECRET_FIELDS))
        )
        if item["type"] == "extra_forbidden":
            # A misspelt key's value may be a secret: name the key, never show the value.
            message, hide = unknown_key_message(Settings, item["loc"]), True
        shown = "" if hide else f" (got {value!r})"
        # Cross-field checks at the top level already name their field in the message.
        lines.append(f"{path}: {message}{shown}" if path else message)
    return "\n".join(lines)


def load_settings(config_file: Path | None, **overrides: Any) -> Settings:
    """Read and validate the configuration; raise :class:`ConfigError` with field paths."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    token = _CONFIG_FILE.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None
    except (OSError, ValueError) as error:  # unreadable TOML or secrets directory
        raise ConfigError(f"cannot read configuration: {error}") from None
    finally:
        _CONFIG_FILE.reset(token)


def redacted(settings: Settings, *, exclude_defaults: bool = False) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by ``'***'``.

    With ``exclude_defaults`` only what differs from the defaults (what the operator set).
    """

    # pydantic already dumps every SecretStr as '**********'; say it plainly.
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return "***" if value == "**********" else value

    dumped = settings.model_dump(mode="json", exclude_defaults=exclude_defaults)
    result: dict[str, Any] = walk(dumped)
    return result


def config_hash(settings: Settings) -> str:
    """A short fingerprint of the effective configuration (secrets excluded, so it is safe
    to log): two start-ups with the same hash ran the same settings."""
    canonical = json.dumps(redacted(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_SECRET_FIELDS = frozenset(
    {"api_key", "secret", "password", "testnet_api_key", "testnet_secret", "testnet_password",
     "token", "urls"}
)  # fmt: skip


_SECRET_LINE = re.compile(
    r"^\s*(api_key|secret|password|testnet_api_key|testnet_secret|testnet_password|token|urls)"
    r"\s*=\s*\S",
    re.MULTILINE,
)


def readable_secrets(config_file: Path) -> bool:
    """True when ``config_file`` holds a secret and users other than its owner can read it."""
    try:
        mode = config_file.stat().st_mode
        text = config_file.read_text()
    except OSError:
        return False
    return bool(mode & 0o044) and _SECRET_LINE.search(text) is not None


def secret_values(settings: Settings) -> list[str]:
    """Every secret value in the configuration (to keep them out of logs)."""
    values: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            items = value if isinstance(value, list) else list(value.values()) if isinstance(
                value, dict) else [value]  # fmt: skip
            for item in items:
                if isinstance(item, SecretStr):
                    values.append(item.get_secret_value())
                elif isinstance(item, BaseModel):
                    walk(item)

    walk(settings)
    return values
