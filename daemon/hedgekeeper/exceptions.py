"""The daemon's own exceptions, one small hierarchy.

Venue adapters translate library errors (ccxt, sqlite, …) into these once, at
the boundary, so the engine decides what to do from the class alone:

* :class:`RetryableReadError` — try the read again later, with backoff;
* :class:`UnknownOutcomeError` — a write may or may not have happened: look the
  order up by its client id, never resend it blind;
* :class:`OrderRejectedError` — the venue definitively refused the order;
* :class:`AuthError` — keys are wrong or lack a permission: stop trading, alert;
* :class:`VenueConfigError` — the venue does not know the symbol, setting, …;
* :class:`WriteForbiddenError` — a private write was attempted in ``dry-run``.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "HedgekeeperError",
    "JournalError",
    "OrderRejectedError",
    "RetryableReadError",
    "UnknownOutcomeError",
    "VenueConfigError",
    "VenueError",
    "WriteForbiddenError",
]


class HedgekeeperError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(HedgekeeperError):
    """The configuration is invalid; start-up stops with exit code 2."""


class JournalError(HedgekeeperError):
    """The journal cannot be opened or is from an unknown schema."""


class VenueError(HedgekeeperError):
    """Base of errors that come from talking to a venue.

    ``retry_after`` (seconds) is set when the venue said how long to stay away
    (HTTP 429/418 ``Retry-After``): nothing is sent to it before then.
    """

    retry_after: float | None = None


class RetryableReadError(VenueError):
    """A transient failure (network, rate limit, 5xx, maintenance): retry later."""


class UnknownOutcomeError(VenueError):
    """A write's outcome is unknown (timeout, disconnect, 5xx after send)."""


class OrderRejectedError(VenueError):
    """The venue refused the order; it does not exist there."""


class AuthError(VenueError):
    """Authentication failed or the key lacks a permission."""


class VenueConfigError(VenueError):
    """The venue does not support what was asked (symbol, mode, parameter)."""


class WriteForbiddenError(VenueError):
    """A private write endpoint was called where the mode forbids it."""
