"""systemd's service notification protocol (``sd_notify``), in a few lines.

Under ``Type=notify`` systemd gives the service ``$NOTIFY_SOCKET``, an AF_UNIX
datagram socket; each datagram is newline-separated ``KEY=VALUE`` pairs:
``READY=1`` once start-up is done, ``STATUS=…`` for ``systemctl status``,
``WATCHDOG=1`` as the keep-alive ping, ``STOPPING=1`` on the way out.
Without ``$NOTIFY_SOCKET`` (a terminal, Docker) every call does nothing.

The protocol is small and stable, so this module speaks it itself rather than
adding a dependency.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["SystemdNotifier", "watchdog_interval"]


class SystemdNotifier:
    """Sends notifications to the service manager; never raises."""

    def __init__(self, address: str | None = None) -> None:
        """``address`` defaults to ``$NOTIFY_SOCKET``; ``@name`` is an abstract socket."""
        raw = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = raw or None
        self.errors = 0
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to tell."""
        return self.address is not None

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram (``READY="1"`` → ``READY=1``)."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        target = self.address
        if target.startswith("@"):  # abstract namespace
            target = "\0" + target[1:]
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), target)
        except OSError:
            # A missing or full socket must never break the daemon.
            self.errors += 1
            return False
        return True

    def ready(self, status: str) -> bool:
        """Start-up is complete."""
        return self.notify(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        """Update the one-line status ``systemctl status`` shows."""
        return self.notify(STATUS=status)

    def watchdog(self, status: str | None = None) -> bool:
        """The keep-alive ping (with a fresh status line, if given)."""
        if status is None:
            return self.notify(WATCHDOG="1")
        return self.notify(WATCHDOG="1", STATUS=status)

    def stopping(self, status: str) -> bool:
        """The daemon is shutting down."""
        return self.notify(STOPPING="1", STATUS=status)

    def close(self) -> None:
        """Release the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects pings within, in seconds, or ``None``.

    Reads ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, which must be this process).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None
