"""Venue adapters and the factory that builds them from the configuration.

ccxt is imported only when an account names a ccxt exchange, so the offline
demo starts without loading it.
"""

from __future__ import annotations

from hedgekeeper.exceptions import ConfigError
from hedgekeeper.journal import Journal
from hedgekeeper.model import Mode
from hedgekeeper.settings import AccountSettings, Settings
from hedgekeeper.venues.base import Venue
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

__all__ = ["Venue", "build_venue", "build_venues"]


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return None if get is None else str(get())


def build_venue(name: str, account: AccountSettings, mode: Mode) -> Venue:
    """The raw venue of one account (not yet wrapped for paper trading)."""
    if account.sim is not None:
        return SimVenue(name, account.sim)
    try:
        from hedgekeeper.venues.ccxt_venue import CcxtVenue
    except ImportError as error:  # pragma: no cover - ccxt is a hard dependency
        raise ConfigError(f"accounts.{name}.exchange: ccxt is not available: {error}") from error
    testnet = mode is Mode.TESTNET
    prefix = "testnet_" if testnet else ""
    return CcxtVenue(
        name,
        account.exchange,
        api_key=_secret(getattr(account, f"{prefix}api_key")),
        secret=_secret(getattr(account, f"{prefix}secret")),
        password=_secret(getattr(account, f"{prefix}password")),
        environment=account.testnet_environment if testnet else "live",
        read_only=mode is Mode.DRY_RUN,
        api_host=account.api_host,
        options=account.options,
        timeout_ms=account.timeout_ms,
    )


def build_venues(settings: Settings, journal: Journal) -> dict[str, Venue]:
    """One venue per account; in ``dry-run`` each is wrapped in the paper venue."""
    venues: dict[str, Venue] = {}
    for name, account in settings.accounts.items():
        venue = build_venue(name, account, settings.mode)
        if settings.mode is Mode.DRY_RUN:
            venue = PaperVenue(venue, journal, settings.paper)
        venues[name] = venue
    return venues
