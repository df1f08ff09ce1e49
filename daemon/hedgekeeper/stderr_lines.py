"""What the process writes on stderr outside structlog, in the format the logs use.

Configuration errors and start-up warnings are written before logging is set up (the
format is itself configuration) or instead of it. In JSON format each of them is one
JSON object per line, like every log line, so ``hedgekeeper run … 2>&1 | jq .`` never
meets plain text; on a terminal (or with ``format = "console"``) they stay readable
text.

The format is chosen twice: first from what can be read without validating anything
(``HEDGEKEEPER_LOG__FORMAT``, else the file's ``[log] format`` if the TOML parses, else
``auto``), then from the validated settings.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from hedgekeeper.logs import scrub

__all__ = ["config_error", "emit", "is_json", "use_early_format", "use_format", "warning"]

_state: dict[str, Any] = {"json": None, "mode": None}


def _stream() -> TextIO:
    return sys.stderr


def _resolve(fmt: str | None) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    try:
        return not _stream().isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return True


def use_early_format(config_file: Path | None) -> None:
    """Pick the format (and the mode, for the ``mode`` field) before the settings validate."""
    fmt = os.environ.get("HEDGEKEEPER_LOG__FORMAT")
    mode = os.environ.get("HEDGEKEEPER_MODE")
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            raw = {}
    log_section = raw.get("log")
    if fmt is None and isinstance(log_section, dict):
        fmt = log_section.get("format") if isinstance(log_section.get("format"), str) else None
    if mode is None and isinstance(raw.get("mode"), str):
        mode = raw["mode"]
    _state["mode"] = mode.lower() if mode in ("dry-run", "testnet", "live") else None
    use_format(fmt.lower() if isinstance(fmt, str) else None, mode=_state["mode"])


def use_format(fmt: str | None, mode: str | None = None) -> None:
    """Use the validated ``[log] format`` (``auto``, ``json`` or ``console``) from now on."""
    _state["json"] = _resolve(fmt)
    if mode is not None:
        _state["mode"] = mode
    # A crash outside the daemon's own handlers (a bug) is one JSON line too, not a
    # multi-line traceback that breaks ``jq``.
    sys.excepthook = _json_excepthook if _state["json"] else sys.__excepthook__


def is_json() -> bool:
    """Whether stderr carries JSON lines (decided from the environment if not chosen yet)."""
    if _state["json"] is None:
        _state["json"] = _resolve(os.environ.get("HEDGEKEEPER_LOG__FORMAT"))
    return bool(_state["json"])


def emit(level: str, event: str, text: str, **fields: Any) -> None:
    """One line: a JSON object (``event``, ``level``, ``timestamp``, ``mode``, ``message``,
    ``fields``), or ``text`` as it is on a terminal."""
    stream = _stream()
    if not is_json():
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
        return
    line: dict[str, Any] = {"event": event, "level": level}
    line["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if _state["mode"] is not None:
        line["mode"] = _state["mode"]
    line["message"] = text.strip()
    line.update(fields)
    stream.write(json.dumps(scrub(line), default=str) + "\n")
    stream.flush()


def config_error(message: str, **fields: Any) -> None:
    """A configuration error: ``configuration error:`` and one indented line per problem."""
    problems = [line for line in message.splitlines() if line.strip()]
    text = "configuration error:\n" + "".join(f"  {line}\n" for line in problems)
    if is_json():
        emit("error", "config.invalid", "configuration error", errors=problems, **fields)
    else:
        emit("error", "config.invalid", text)


def warning(event: str, message: str, **fields: Any) -> None:
    """A warning written before logging is set up (``warning: …`` on a terminal)."""
    emit("warning", event, f"warning: {message}" if not is_json() else message, **fields)


def _json_excepthook(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    emit(
        "error",
        "daemon.crashed",
        repr(error),
        exception="".join(traceback.format_exception(kind, error, tb)),
    )
