"""Keep secret values out of everything the daemon shows: events, status, notifications.

Logs have their own last-line filter (:mod:`hedgekeeper.logs`); the control channel
and the notifier send data that never passes through the logger, so they scrub it
with a :class:`Redactor` built from the configuration's secret values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "Redactor"]

#: What a secret is replaced with.
MASK = "***"


class Redactor:
    """Replaces every known secret value (at least 4 characters) inside strings."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data (dicts, lists, strings) with every secret masked."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
