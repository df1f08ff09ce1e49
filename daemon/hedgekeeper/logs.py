"""Structured logging: JSON lines on stderr when not a terminal, readable console otherwise.

Every line carries ``event`` (a dotted verb such as ``order.submitted``) and
``mode``; the engine binds ``cycle`` and ``group`` where they apply. stdout is
left to command output (``plan --json``).

Secrets are kept out twice: configuration is redacted before it is logged, and
a last processor replaces any registered secret value that still shows up in a
line (defence in depth against a library echoing a key in an error message).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "register_secrets", "scrub"]

_SECRETS: set[str] = set()
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that no log line can ever print them."""
    _SECRETS.update(v for v in values if v and len(v) >= 4)


def scrub(value: Any) -> Any:
    """``value`` with every registered secret replaced by ``***`` (strings, dicts, lists)."""
    if isinstance(value, str):
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _redact_secrets(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if not _SECRETS:
        return event_dict
    return {k: scrub(v) for k, v in event_dict.items()}


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
    **context: Any,
) -> None:
    """Set up structlog for the process; ``context`` (e.g. ``mode``) goes on every line."""
    out = stream if stream is not None else sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> Any:
    """A bound structlog logger."""
    return structlog.get_logger(**initial)
