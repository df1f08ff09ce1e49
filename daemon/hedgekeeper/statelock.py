"""One writer per state directory: an exclusive OS lock held for the process's life.

Every command that may write to the journal or to an exchange (``run``) takes the
lock *before* it opens the journal for writing. The kernel releases it when the
process ends, however it ends (``kill -9`` included), so a stale lock file never
blocks a restart. A second writer is refused with the holder's pid, host, start time
and config path, read from the lock file the holder wrote.

Read-only commands (``plan``, ``check``, ``status``) never take it: they work beside
a running daemon and cannot write (see :mod:`hedgekeeper.venues.readonly`).

The lock also answers "do I still own this state directory?" at every exchange write
(:meth:`StateLock.assert_held`): if the lock file was removed or replaced — a wiped
state directory, a restored backup — another process could now take a lock on the new
file, so this one stops writing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from hedgekeeper.exceptions import HedgekeeperError

__all__ = ["LOCK_NAME", "StateLock", "StateLockError", "StateLockLost", "lock_holder"]

LOCK_NAME = "hedgekeeper.lock"


class StateLockError(HedgekeeperError):
    """The state directory is owned by another process (``busy``) or is not writable."""

    def __init__(self, message: str, *, busy: bool) -> None:
        super().__init__(message)
        self.busy = busy


class StateLockLost(HedgekeeperError):
    """This process no longer owns its state directory: it must not write."""


def lock_holder(state_dir: Path) -> dict[str, Any] | None:
    """What the lock file says about its holder, or ``None`` when there is none to read."""
    try:
        data = json.loads((state_dir / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (its details are unreadable)"
    started = holder.get("started_at")
    when = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        if isinstance(started, int | float)
        else "?"
    )
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {when}, config {holder.get('config', '?')}"
    )


class StateLock:
    """The exclusive lock of one state directory; use :meth:`acquire`."""

    def __init__(self, state_dir: Path, fd: int, inode: tuple[int, int]) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = fd
        self._inode = inode

    @classmethod
    def acquire(cls, state_dir: Path, *, config: Path | str | None = None) -> StateLock:
        """Take the lock or raise :class:`StateLockError` naming the holder."""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StateLockError(
                f"state directory {state_dir} is not writable, so no journal can be opened "
                f"there ({error.strerror or error}; can uid {os.getuid()} write it?)",
                busy=False,
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = lock_holder(state_dir)
            raise StateLockError(
                f"state directory {state_dir} is in use by {_describe(holder)}; "
                "stop that process first, or give this one another --state-dir",
                busy=True,
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": time.time(),
            "config": None if config is None else str(config),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        stat = os.fstat(fd)
        return cls(state_dir, fd, (stat.st_dev, stat.st_ino))

    @staticmethod
    def holder_of(state_dir: Path) -> dict[str, Any] | None:
        """Who holds the lock now (``{}`` when its details are unreadable), or ``None``
        when it is free. Takes nothing and creates nothing (``check`` uses it)."""
        try:
            fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return lock_holder(state_dir) or {}
        finally:
            os.close(fd)  # closing releases a lock taken just now
        return None

    @property
    def held(self) -> bool:
        """True while this process holds the lock on the file still at :attr:`path`."""
        if self._fd is None:
            return False
        try:
            stat = os.stat(self.path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._inode

    def assert_held(self) -> None:
        """Raise :class:`StateLockLost` unless :attr:`held`."""
        if not self.held:
            raise StateLockLost(
                f"the lock {self.path} is gone or was replaced: another process may own "
                "this state directory now, so this one sends nothing more"
            )

    def release(self) -> None:
        """Give the lock up (the kernel does it anyway when the process ends)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
