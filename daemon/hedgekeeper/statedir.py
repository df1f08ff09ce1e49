"""Where a daemon's state lives, and whose state it is.

The state directory belongs to one configuration: its journal records the identity of
what it hedges (instance, accounts with their exchanges, mode). Opening it with a
configuration of another identity is refused — a new config must never trade on the
demo's paper positions or another account's history — unless the operator says so
explicitly (``--adopt-state``).

The default directory is per instance and never the current directory: ``$STATE_DIRECTORY``
under systemd, else ``$XDG_STATE_HOME/hedgekeeper/<instance>`` (``~/.local/state/…``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hedgekeeper.exceptions import ConfigError
from hedgekeeper.journal import Journal

__all__ = ["check_identity", "default_state_dir", "identity_of", "resolve_state_dir"]


def default_state_dir(instance: str) -> Path:
    """``$STATE_DIRECTORY`` (systemd), else the XDG state home's ``hedgekeeper/<instance>``."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])  # systemd may list several, colon-separated
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "hedgekeeper" / instance


def resolve_state_dir(cli_value: Path | None, settings: Any) -> Path:
    """``--state-dir``, else ``state_dir`` from the config, else :func:`default_state_dir`."""
    if cli_value is not None:
        return cli_value
    if settings.state_dir is not None:
        return Path(settings.state_dir)
    return default_state_dir(settings.instance)


def identity_of(settings: Any) -> dict[str, Any]:
    """What a configuration hedges: instance, accounts (with exchange) and mode."""
    return {
        "instance": settings.instance,
        "mode": settings.mode.value,
        "accounts": {
            name: ("sim" if account.sim is not None else str(account.exchange))
            for name, account in sorted(settings.accounts.items())
        },
    }


def _describe(identity: dict[str, Any]) -> str:
    accounts = ", ".join(f"{n} ({e})" for n, e in identity.get("accounts", {}).items())
    return f"instance {identity.get('instance')!r}, mode {identity.get('mode')}, {accounts}"


def check_identity(journal: Journal, settings: Any, *, adopt: bool = False,
                   record: bool = True) -> None:  # fmt: skip
    """Refuse a journal that belongs to another configuration (``ConfigError``, exit 2).

    A journal without an identity (new, or from before identities) takes this one when
    ``record``; ``adopt`` replaces a different one, on the operator's explicit word.
    """
    mine = identity_of(settings)
    theirs = journal.identity()
    if theirs is None:
        # New, or older than identities: it takes this configuration's.
        if record:
            journal.set_identity(mine)
        return
    if theirs == mine:
        return
    if adopt and record:
        journal.set_identity(mine)
        return
    raise ConfigError(
        f"state directory {journal.path.parent if journal.path else '?'} belongs to another "
        f"configuration: its journal hedges {_describe(theirs)}; this config hedges "
        f"{_describe(mine)}. Give this config its own --state-dir (or state_dir), or pass "
        "--adopt-state to take that journal over on purpose"
    )
