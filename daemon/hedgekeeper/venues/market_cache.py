"""ccxt's market list cached on disk: start on yesterday's list, refresh it behind.

Loading markets is the heaviest start-up read (Binance: an ``exchangeInfo`` of
several megabytes per market type). With a fresh cache (younger than ``ttl``) the
exchange starts on the cached list at once and reloads it in the background,
replacing the file; an older or unreadable cache is ignored and the list is read
as before. A market's rules rarely change within a day, and the background reload
makes the next start as fresh as this one.

The file lives beside the journal (``<state_dir>/markets/``), one per exchange,
environment, API host and market types.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TTL", "MarketCache"]

#: How old a cached market list may be to be started on.
DEFAULT_TTL = 86400.0


class MarketCache:
    """One exchange's cached market list (see the module docstring)."""

    def __init__(self, directory: Path, key_parts: Iterable[str], ttl: float = DEFAULT_TTL) -> None:
        digest = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:16]
        self.path = directory / f"markets-{digest}.json"
        self.ttl = ttl

    def load(self, now: float | None = None) -> dict[str, Any] | None:
        """The cached markets when fresh, else ``None`` (missing, old or unreadable)."""
        try:
            age = (time.time() if now is None else now) - self.path.stat().st_mtime
            if age > self.ttl or age < -60:
                return None
            markets = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return markets if isinstance(markets, dict) and markets else None

    def save(self, markets: dict[str, Any]) -> None:
        """Replace the cached list atomically (a crash leaves the old file or the new)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(markets, default=str))
            os.replace(temporary, self.path)
        except (OSError, TypeError, ValueError):
            pass  # a cache that cannot be written costs the next start a read, nothing more
