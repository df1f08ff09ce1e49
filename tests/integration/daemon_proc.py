"""Run ``hedgekeeper run`` as a subprocess for integration tests, and read its journal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


class Daemon:
    """A ``hedgekeeper run`` subprocess whose stderr (JSON lines) is collected."""

    def __init__(self, config: Path, state_dir: Path, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.config = config
        self.state_dir = state_dir
        self.env = {**os.environ, "PYTHONPATH": str(REPO / "daemon"), **(env or {})}
        self.extra_args = extra_args
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hedgekeeper", "run", "--config", str(self.config),
            "--state-dir", str(self.state_dir), *self.extra_args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=self.env,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            if text.startswith("{"):
                try:
                    self.lines.append(json.loads(text))
                except json.JSONDecodeError:
                    pass

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def stop(self, signum: int = signal.SIGTERM, within: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signum)
        code = await asyncio.wait_for(self.proc.wait(), within)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, within)
        return code

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        if self._reader is not None:
            await self._reader

    def journal_orders(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.state_dir / "journal.db")
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute("SELECT * FROM orders ORDER BY seq")]
        finally:
            db.close()

    def journal_funding(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.state_dir / "journal.db")
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute("SELECT * FROM funding ORDER BY at, id")]
        finally:
            db.close()

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.raw[-n:])
