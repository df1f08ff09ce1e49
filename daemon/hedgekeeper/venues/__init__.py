"""Venue adapters and the factory that builds them from the configuration.

ccxt is imported only when an account names a ccxt exchange, so the offline
demo starts without loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from hedgekeeper.contracts import contract_kind, parse_symbol
from hedgekeeper.exceptions import ConfigError, VenueConfigError
from hedgekeeper.journal import Journal
from hedgekeeper.model import Mode
from hedgekeeper.settings import AccountSettings, Settings
from hedgekeeper.venues.base import Venue
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

__all__ = ["Venue", "build_venue", "build_venues", "market_types"]


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return None if get is None else str(get())


def market_types(name: str, settings: Settings) -> tuple[str, ...]:
    """The ccxt market types an account needs: spot for balances and prices, and the
    contract kinds of the instruments it holds — so nothing else is loaded."""
    kinds: set[str] = set()
    for hedge in settings.hedges:
        if name in hedge.spot_accounts or (hedge.price_account or hedge.hedge_account) == name:
            kinds.add("spot")
        if hedge.hedge_account == name:
            # BTC/USDT:USDT-261225 is linear: the settle coin is read without the date.
            kinds.add(contract_kind(hedge.instrument))
            if parse_symbol(hedge.instrument).dated:
                kinds.add("future")
    return tuple(sorted(kinds)) or ("spot",)


def build_venue(
    name: str,
    account: AccountSettings,
    mode: Mode,
    kinds: tuple[str, ...] = ("spot", "linear"),
    streams: bool = False,
    market_cache: Path | None = None,
    *,
    read_only: bool = False,
) -> Venue:
    """The raw venue of one account (not yet wrapped for paper trading).

    ``read_only`` (and ``dry-run``) makes the ccxt client refuse every private write
    before it is signed — a second lock behind :class:`~hedgekeeper.gate.ReadOnlyVenue`.
    """
    if account.sim is not None:
        return SimVenue(name, account.sim)
    try:
        from hedgekeeper.venues.ccxt_venue import CcxtVenue
    except ImportError as error:  # pragma: no cover - ccxt is a hard dependency
        raise ConfigError(f"accounts.{name}.exchange: ccxt is not available: {error}") from error
    testnet = mode is Mode.TESTNET
    # Test-environment keys are separate from live ones: testnet never sees live keys.
    prefix = "testnet_" if testnet else ""
    try:
        return CcxtVenue(
            name,
            account.exchange,
            api_key=_secret(getattr(account, f"{prefix}api_key")),
            secret=_secret(getattr(account, f"{prefix}secret")),
            password=_secret(getattr(account, f"{prefix}password")),
            environment=account.testnet_environment if testnet else "live",
            read_only=read_only or mode is Mode.DRY_RUN,
            api_host=account.api_host,
            market_types=kinds,
            options=account.options,
            timeout_ms=account.timeout_ms,
            rate_limit=account.rate_limit,
            streams=streams,
            market_cache=market_cache,
            hedge_mode=None if account.position_mode is None else account.position_mode == "hedge",
        )
    except VenueConfigError as error:
        raise ConfigError(f"accounts.{name}.exchange: {error}") from error


def build_venues(settings: Settings, journal: Journal, *,
                 read_only: bool = False) -> dict[str, Venue]:  # fmt: skip
    """One venue per account; in ``dry-run`` each is wrapped in the paper venue.

    ``read_only`` (``plan``, ``check``, ``status``): each is a
    :class:`~hedgekeeper.gate.ReadOnlyVenue`, which has no write methods at all.
    """
    from hedgekeeper.gate import ReadOnlyVenue

    venues: dict[str, Venue] = {}
    for name, account in settings.accounts.items():
        if account.sim is not None and settings.mode is Mode.LIVE:
            raise ConfigError(f"accounts.{name}: the sim venue cannot trade in live mode")
        # Markets are cached beside the journal (none for an in-memory journal).
        cache = None if journal.path is None else journal.path.parent / "markets"
        venue = build_venue(
            name, account, settings.mode, market_types(name, settings), settings.streams.enabled,
            None if read_only else cache,  # plan writes nothing, not even a cache
            read_only=read_only,
        )
        if settings.mode is Mode.DRY_RUN:
            venue = PaperVenue(venue, journal, settings.paper)
        # Typed as Venue for the engine's reads; a write on it has no method to call.
        venues[name] = cast(Venue, ReadOnlyVenue(venue)) if read_only else venue
    return venues
