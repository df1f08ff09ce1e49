"""Hedge windows: time-bounded changes of a group's ratio or targets (pure, no I/O).

A window is either *absolute* (``start`` to ``end``, epoch seconds, UTC) or
*recurring* (every listed weekday from ``daily_start`` to ``daily_end``, seconds
after 00:00 UTC; a window whose end is before its start runs past midnight and
belongs to the weekday it starts on). Every window is half-open, ``[start, end)``:
at the instant ``end`` the base setting is back, so there is exactly one answer
for every instant and nothing to flap between at a boundary.

When windows overlap, the first one listed wins (the configuration's order is
the operator's priority).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["HedgeWindow", "Policy", "active_window", "policy_at"]

_DAY = 86400


@dataclass(frozen=True, slots=True)
class HedgeWindow:
    """One window and what applies inside it (``ratio`` and/or allocation ``targets``)."""

    ratio: Decimal | None = None
    targets: Mapping[str, Decimal] | None = None
    start: float | None = None  # absolute windows: epoch seconds, inclusive
    end: float | None = None  # exclusive
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(7)))  # 0 = Monday
    daily_start: int | None = None  # recurring windows: seconds after 00:00 UTC, inclusive
    daily_end: int | None = None  # exclusive; <= daily_start: the window runs past midnight
    label: str = ""

    def contains(self, at: float) -> bool:
        """True when instant ``at`` (epoch seconds) is inside the window."""
        if self.start is not None and self.end is not None:
            return self.start <= at < self.end
        if self.daily_start is None or self.daily_end is None:
            return False
        moment = datetime.fromtimestamp(at, UTC)
        seconds = at - (at // _DAY) * _DAY  # exact second of the UTC day, fractions kept
        weekday = moment.weekday()
        if self.daily_start < self.daily_end:
            return weekday in self.weekdays and self.daily_start <= seconds < self.daily_end
        # Past midnight: the evening part on a listed day, the morning part the day after.
        if seconds >= self.daily_start:
            return weekday in self.weekdays
        return seconds < self.daily_end and (weekday - 1) % 7 in self.weekdays


@dataclass(frozen=True, slots=True)
class Policy:
    """What applies to a group at one instant: its ratio, its targets and the window."""

    ratio: Decimal
    targets: Mapping[str, Decimal] | None
    window: HedgeWindow | None


def active_window(windows: Sequence[HedgeWindow], at: float) -> HedgeWindow | None:
    """The first window containing ``at``, or ``None`` (the base applies)."""
    return next((window for window in windows if window.contains(at)), None)


def policy_at(
    ratio: Decimal,
    targets: Mapping[str, Decimal] | None,
    windows: Sequence[HedgeWindow],
    at: float,
) -> Policy:
    """The ratio and targets in force at ``at``: the active window's, else the base."""
    window = active_window(windows, at)
    if window is None:
        return Policy(ratio, targets, None)
    return Policy(
        window.ratio if window.ratio is not None else ratio,
        window.targets if window.targets is not None else targets,
        window,
    )
