"""The event bus: the engine publishes, the control channel, metrics and notifiers listen.

Publishing never blocks the engine. Each subscriber has a bounded queue; when a
slow subscriber's queue is full, its oldest event is dropped and a counter says
how many it lost, so one stuck client can never stall trading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["EventBus", "Subscription"]


class Subscription:
    """One listener's queue of events (dicts with at least ``event`` and ``at``)."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> dict[str, Any]:
        """The next event."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._subscriptions.discard(self)


class EventBus:
    """Fan-out of engine events to subscribers and synchronous listeners."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """A new queue that receives every event from now on."""
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(event)`` synchronously for every event (keep it cheap)."""
        self._listeners.append(listener)

    def publish(self, event: str, **fields: Any) -> None:
        """Send an event to everyone; never blocks, never raises."""
        payload = {"event": event, "at": time.time(), **fields}
        for subscription in list(self._subscriptions):
            subscription._offer(payload)
        for listener in self._listeners:
            try:
                listener(payload)
            except Exception:  # a broken listener must not break the engine
                continue
