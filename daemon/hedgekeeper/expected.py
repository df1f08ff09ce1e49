"""The position the daemon expects, so that a read lagging a fill never gets a second order.

Exchanges confirm a fill in the order's reply before their position endpoint shows it
(Binance's ``positionRisk`` is documented as eventually consistent). Had the engine
trusted such a read, it would see the hedge still missing and order it again.

For each (account, symbol) this keeps the last confirmed read and the signed fills
learned since, each with the time it was learned. At the next read:

* the read equals the expected figure (confirmed read + fills learned before the
  read was taken), or also includes fills learned just after it: confirmed;
* it differs *in the direction of* fills learned within ``settle_seconds``: the read
  lags, and the group is held for the cycle (both figures logged) — never re-ordered;
* otherwise (no recent fill, another direction, or the window has passed): the
  exchange's figure is adopted, and that is said when it contradicts our fills.

A read can also run *ahead*: it shows a fill the daemon learns of only afterwards (Bybit
replies without fills; the look-up comes after that cycle's read). Such a movement is
adopted and remembered as unexplained for the settle window; a fill learned within that
window in the same direction, *of an order sent before that read was taken*, is taken as
already shown, up to the unexplained amount, so it is not counted twice. An order sent
after the read cannot be in it: its fill is always expected in full, so a movement from
outside (a liquidation, a trade by hand) can never hide the next fill of ours.

Pure bookkeeping; times are the engine clock's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

__all__ = ["ExpectedPositions", "Verdict"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of comparing one read with the expected position."""

    hold: bool
    expected: Decimal | None
    adopted: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Fill:
    learned_at: float  # when the daemon learned of it
    signed: Decimal  # contracts, negative = sold
    sent_at: float  # when its order was sent: a read taken before that cannot show it


@dataclass(slots=True)
class _Track:
    confirmed: Decimal | None = None
    fills: list[_Fill] = field(default_factory=list)
    #: movement adopted without a fill to explain it, and when it was read
    unexplained: Decimal = _ZERO
    unexplained_at: float = 0.0

    def adopt(self, contracts: Decimal, expected: Decimal | None, at: float,
              after: list[_Fill]) -> None:  # fmt: skip
        """Take the read as the truth. Fills learned after it was taken whose orders were
        sent before it, in the direction it moved, count as already shown; the rest of the
        movement stays unexplained."""
        self.fills = []
        moved = _ZERO if expected is None else contracts - expected
        for fill in after:
            signed = fill.signed
            if fill.sent_at < at:
                signed, moved = _absorb(signed, moved)
            if signed:
                self.fills.append(replace(fill, signed=signed))
        if moved:
            self.unexplained += moved
            self.unexplained_at = at
        self.confirmed = contracts


def _absorb(fill: Decimal, unexplained: Decimal) -> tuple[Decimal, Decimal]:
    """Split ``fill`` into what an unexplained movement in its direction already showed;
    returns (the fill not yet shown, the movement still unexplained)."""
    if not fill or not unexplained or (fill > 0) != (unexplained > 0):
        return fill, unexplained
    shown = min(abs(fill), abs(unexplained))
    shown = shown if fill > 0 else -shown
    return fill - shown, unexplained - shown


def _total(fills: list[_Fill]) -> Decimal:
    return sum((f.signed for f in fills), _ZERO)


class ExpectedPositions:
    """See the module docstring."""

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._tracks: dict[tuple[str, str], _Track] = {}

    def on_fill(self, account: str, symbol: str, signed: Decimal, at: float,
                sent_at: float = float("-inf")) -> None:  # fmt: skip
        """A fill learned at ``at`` of an order sent at ``sent_at`` (unknown: long ago)."""
        track = self._tracks.setdefault((account, symbol), _Track())
        if track.unexplained and at - track.unexplained_at < self.settle_seconds:
            # Only an order already sent when that read was taken can be what it showed.
            if sent_at < track.unexplained_at:
                signed, track.unexplained = _absorb(signed, track.unexplained)
        else:
            track.unexplained = _ZERO
        if signed:
            track.fills.append(_Fill(at, signed, sent_at))

    def expected(self, account: str, symbol: str) -> Decimal | None:
        """The confirmed read plus every fill since (``None`` before the first read)."""
        track = self._tracks.get((account, symbol))
        if track is None or track.confirmed is None:
            return None
        return track.confirmed + _total(track.fills)

    def on_read(self, account: str, symbol: str, contracts: Decimal, taken_at: float,
                now: float) -> Verdict:  # fmt: skip
        """Compare a read taken at ``taken_at`` with what the fills say it should show."""
        track = self._tracks.setdefault((account, symbol), _Track())
        before = [f for f in track.fills if f.learned_at <= taken_at]
        after = [f for f in track.fills if f.learned_at > taken_at]
        if track.confirmed is None or not track.fills:
            track.adopt(contracts, track.confirmed, taken_at, after)
            return Verdict(False, contracts)
        early = _total(before)
        expected = track.confirmed + early
        if contracts == expected:
            track.confirmed, track.fills = contracts, after
            return Verdict(False, expected)
        in_flight = [f for f in after if f.sent_at < taken_at]  # may or may not show yet
        if in_flight and contracts == expected + _total(in_flight):
            track.confirmed = contracts
            track.fills = [f for f in after if f.sent_at >= taken_at]
            return Verdict(False, contracts)
        last_fill = max(f.learned_at for f in track.fills)
        missing = expected - contracts  # what the read has not caught up with yet
        pending = early if early != 0 else _total(after)
        lagging = pending != 0 and (missing > 0) == (pending > 0) and abs(missing) <= abs(pending)
        if lagging and now - last_fill < self.settle_seconds:
            return Verdict(
                True, expected, reason=(
                    f"position read {contracts} lags the fills: expected {expected} "
                    f"(fill {now - last_fill:.1f}s ago, settle window {self.settle_seconds:g}s)"
                ),
            )  # fmt: skip
        track.adopt(contracts, expected, taken_at, after)
        return Verdict(
            False, expected, adopted=True,
            reason=f"position read {contracts} adopted; fills since the last read said {expected}",
        )  # fmt: skip
