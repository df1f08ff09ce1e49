"""One validation for every command: what ``run`` would refuse, found without the network.

``check`` runs it and reports; ``plan`` and ``run`` run the very same code first, so the
three never disagree about a configuration (round 1: an unknown exchange was ``ok`` for
``check``, a traceback for ``plan`` and a clean error for ``run``). Checks, in order:

* every account's venue can be built offline: the exchange is known to ccxt, it has the
  test environment the mode needs, the sim is not asked to trade live;
* the keys the mode needs are present (testnet keys in testnet — live keys are never
  used there; live keys in live; none in dry-run, which reads public data only);
* every held asset has a price: a stablecoin, a sim price, or (on an exchange) a market
  checked at start-up when markets load;
* for commands that write (``run``, ``check``): the state directory is writable and its
  lock is free.

Each problem names the field path; none echoes a value (keys and tokens stay unsaid).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hedgekeeper.exceptions import ConfigError
from hedgekeeper.model import STABLECOINS, Mode

__all__ = ["preflight"]


def _venue_problems(settings: Any) -> list[str]:
    from hedgekeeper.venues import build_venue, market_types

    problems: list[str] = []
    for name, account in settings.accounts.items():
        if account.sim is not None:
            if settings.mode is Mode.LIVE:
                problems.append(f"accounts.{name}: the sim venue cannot trade in live mode")
            continue
        try:
            venue = build_venue(name, account, settings.mode, market_types(name, settings),
                                read_only=True)  # fmt: skip
        except ConfigError as error:
            problems.append(str(error))
            continue
        _close_quietly(venue)
    return problems


def _close_quietly(venue: Any) -> None:
    """Release a venue built only to be checked (no event loop may be running here)."""
    import asyncio

    try:
        asyncio.run(venue.close())
    except RuntimeError:
        pass  # inside a running loop (tests): the object is dropped unused


def _key_problems(settings: Any) -> list[str]:
    problems: list[str] = []
    if settings.mode is Mode.DRY_RUN:
        return problems
    prefix = "testnet_" if settings.mode is Mode.TESTNET else ""
    where = "test-environment" if prefix else "live"
    for name, account in settings.accounts.items():
        if account.sim is not None:
            continue
        missing = [f"{prefix}{k}" for k in ("api_key", "secret")
                   if getattr(account, f"{prefix}{k}") is None]  # fmt: skip
        if missing:
            hint = (" (live keys are never used in testnet)" if prefix
                    and account.api_key is not None else "")  # fmt: skip
            problems.append(
                f"accounts.{name}: {settings.mode.value} mode needs the account's {where} keys: "
                f"set {' and '.join(missing)} (environment HEDGEKEEPER_ACCOUNTS__"
                f"{name.upper()}__{missing[0].upper()} or a secret file){hint}"
            )
    return problems


def _price_problems(settings: Any) -> list[str]:
    problems: list[str] = []
    for index, hedge in enumerate(settings.hedges):
        account = settings.accounts.get(hedge.price_account or hedge.hedge_account)
        if account is None or account.sim is None:
            continue  # exchanges: checked against their markets at start-up
        for asset in hedge.assets:
            if asset in STABLECOINS or asset in account.sim.prices:
                continue
            problems.append(
                f"hedges.{index}.assets.{asset}: no price for {asset} on sim account "
                f"{hedge.price_account or hedge.hedge_account!r} (add it to sim.prices)"
            )
    return problems


def _sim_listing_problems(settings: Any) -> list[str]:
    """Instruments on a sim account must be listed by it (known offline, no network)."""
    import asyncio

    from hedgekeeper.venues.sim import SimVenue

    problems: list[str] = []
    for name, account in settings.accounts.items():
        if account.sim is None:
            continue
        wanted = sorted({h.instrument for h in settings.hedges if h.hedge_account == name})
        if not wanted:
            continue
        try:
            listed = asyncio.run(SimVenue(name, account.sim).load_markets(wanted))
        except Exception as error:  # a sim that cannot even list: say so, never a traceback
            problems.append(f"accounts.{name}.sim: cannot list markets: {error}")
            continue
        for index, hedge in enumerate(settings.hedges):
            if hedge.hedge_account == name and hedge.instrument not in listed:
                problems.append(
                    f"hedges.{index}.instrument: {hedge.instrument!r} is not listed by sim "
                    f"account {name!r} (sim.contract_sizes / sim.inverse list its perpetuals)"
                )
    return problems


def _state_problems(state_dir: Path) -> list[str]:
    from hedgekeeper.statelock import StateLock

    probe = state_dir
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return [f"state directory {state_dir}: {probe} is not a directory"]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [f"state directory {state_dir}: not writable by uid {os.getuid()}"]
    try:
        holder = StateLock.holder_of(state_dir)
    except OSError as error:
        return [f"state directory {state_dir}: lock file unusable ({error.strerror})"]
    if holder is not None:
        return [f"state directory {state_dir} is in use by pid {holder.get('pid', '?')} "
                f"(config {holder.get('config', '?')})"]  # fmt: skip
    return []


def preflight(settings: Any, state_dir: Path | None = None) -> None:
    """Raise :class:`ConfigError` listing every problem ``run`` would meet, offline.

    ``state_dir`` (for commands that write) adds the writable-and-free check.
    """
    problems = (_venue_problems(settings) + _key_problems(settings)
                + _price_problems(settings) + _sim_listing_problems(settings))  # fmt: skip
    if state_dir is not None:
        problems += _state_problems(state_dir)
    if problems:
        raise ConfigError("\n".join(problems))
