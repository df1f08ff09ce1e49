"""The life of an order as an explicit state machine (pure).

::

    NEW ──► OPEN ──► FILLED
     │  ╲     │  ╲
     │   ╲    │   ► CANCELED
     │    ► UNKNOWN ─► (any of OPEN, FILLED, CANCELED, REJECTED once looked up)
     └──► REJECTED

``NEW`` is journaled and may have been sent. ``UNKNOWN`` is an order whose
request got no definite answer: only a look-up by client id may move it on.
Terminal states never change. Filled quantity never decreases and never
exceeds the order's amount. Anything else is a bug and raises.
"""

from __future__ import annotations

from decimal import Decimal

from hedgekeeper.model import OrderStatus

__all__ = ["TERMINAL", "TRANSITIONS", "IllegalTransition", "check_transition"]

S = OrderStatus

#: Terminal states: the order's story is over.
TERMINAL = frozenset({S.FILLED, S.CANCELED, S.REJECTED})

#: from-state -> the states it may move to (staying put is always allowed).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.OPEN, S.FILLED, S.CANCELED, S.REJECTED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.OPEN, S.FILLED, S.CANCELED, S.REJECTED}),
    # OPEN -> UNKNOWN: a cancel or amend whose outcome is unknown.
    S.OPEN: frozenset({S.FILLED, S.CANCELED, S.UNKNOWN}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
}


class IllegalTransition(Exception):
    """An order was asked to move in a way its life does not allow."""


def check_transition(
    client_order_id: str,
    current: OrderStatus,
    new: OrderStatus,
    *,
    amount: Decimal,
    filled_before: Decimal,
    filled_after: Decimal,
) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> new`` (with fills) is legal."""
    if new != current and new not in TRANSITIONS[current]:
        raise IllegalTransition(f"{client_order_id}: {current.value} -> {new.value} is not allowed")
    if filled_after < filled_before:
        raise IllegalTransition(
            f"{client_order_id}: filled went down from {filled_before} to {filled_after}"
        )
    if filled_after > amount:
        raise IllegalTransition(f"{client_order_id}: filled {filled_after} exceeds amount {amount}")
    if new is S.FILLED and filled_after != amount:
        raise IllegalTransition(f"{client_order_id}: FILLED with {filled_after} of {amount}")
    if new is S.REJECTED and filled_after > 0:
        raise IllegalTransition(f"{client_order_id}: REJECTED after filling {filled_after}")
