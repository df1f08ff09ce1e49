"""The services around the engine in ``hedgekeeper run``.

:class:`Operations` starts, beside the engine: the control channel, the metrics
endpoint, the notifier, the ``daemon.heartbeat`` log line, and systemd
notifications (``READY=1`` after start-up, ``WATCHDOG=1`` only after a successful
cycle, ``STATUS=`` with mode, trading state and last cycle age, ``STOPPING=1``).

It also routes the standard library's ``logging`` (websockets, apprise, asyncio,
warnings) through structlog, so that every line on stderr stays one JSON object
with ``event`` and ``mode`` and passes the secret filter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import structlog

from hedgekeeper.redact import Redactor
from hedgekeeper.settings import secret_values
from hedgekeeper.status import STALE_CYCLES, health
from hedgekeeper.systemd import SystemdNotifier, watchdog_interval

if TYPE_CHECKING:
    from hedgekeeper.control import ControlServer
    from hedgekeeper.engine import Engine
    from hedgekeeper.metrics import Metrics
    from hedgekeeper.notify import Notifier

__all__ = ["Operations", "route_stdlib_logging"]


class _ToStructlog(logging.Handler):
    """Re-emits standard ``logging`` records as structlog ``library.logged`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log = structlog.get_logger()
            method = {
                logging.DEBUG: log.debug,
                logging.INFO: log.info,
                logging.WARNING: log.warning,
            }.get(record.levelno, log.error)
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            method("library.logged", **fields)
        except Exception:
            self.handleError(record)


def route_stdlib_logging(level: str = "info") -> None:
    """Send every standard ``logging`` record (and ``warnings``) through structlog.

    Libraries log at ``warning`` and above, or ``info`` with ``level = "debug"``.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    root.setLevel(logging.INFO if level == "debug" else logging.WARNING)
    logging.captureWarnings(True)


class Operations:
    """Control channel, metrics, notifier, heartbeat and systemd around one engine."""

    def __init__(
        self,
        engine: Engine,
        log: Any,
        *,
        notify_socket: str | None = None,
        version: str = "",
    ) -> None:
        """``notify_socket`` defaults to ``$NOTIFY_SOCKET``."""
        self.engine = engine
        self.settings = engine.settings
        self.log = log
        self.version = version
        self.systemd = SystemdNotifier(notify_socket)
        self.redactor = Redactor(secret_values(engine.settings))
        self.control: ControlServer | None = None
        self.metrics: Metrics | None = None
        self.notifier: Notifier | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_cycle: tuple[int, bool, float] | None = None  # cycle, ok, at
        self._last_success_at: float | None = None
        self._started = False
        self._crashed = False

    # -- status line ------------------------------------------------------------------------

    def status_line(self, now: float | None = None) -> str:
        """``dry-run, ACTIVE, cycle 42 ok, last success 3s ago`` (systemd ``STATUS=``)."""
        now = time.time() if now is None else now
        parts = [self.settings.mode.value, self.engine.executor.trading_state.value]
        if self._last_cycle is None:
            parts.append("no cycle yet")
        else:
            cycle, ok, _at = self._last_cycle
            parts.append(f"cycle {cycle} {'ok' if ok else 'with read errors'}")
        success = self._last_success_at or self.engine.last_success_at
        parts.append(
            "no successful cycle yet"
            if success is None
            else f"last success {max(0.0, now - success):.0f}s ago"
        )
        return ", ".join(parts)

    # -- life --------------------------------------------------------------------------------

    def starting(self) -> None:
        """Route library logs to structlog and tell systemd what start-up is doing.

        Call before ``engine.start()``, so that start-up problems are JSON lines too.
        """
        route_stdlib_logging(self.settings.log.level)
        self.systemd.status(f"{self.settings.mode.value}, starting: loading markets, reconciling")

    async def start(self, *, ready: bool = True) -> None:
        """Start every configured service, then (unless ``ready=False``) :meth:`ready`.

        With ``ready=False`` the control channel already answers (``/healthz`` says not
        ready) while the engine is still starting — e.g. waiting for an unreachable
        exchange at boot — and systemd hears ``READY=1`` only once it has started.
        Raises ``OSError`` if a port is taken.
        """
        settings = self.settings
        route_stdlib_logging(settings.log.level)
        self.engine.events.add_listener(self._on_event)
        if settings.control.enabled:
            from hedgekeeper.control import ControlServer

            self.control = ControlServer(self.engine, redactor=self.redactor, log=self.log)
            await self.control.start()
        if settings.metrics.port is not None:
            from hedgekeeper.metrics import Metrics

            self.metrics = Metrics(self.engine, version=self.version)
            port = self.metrics.serve(settings.metrics.host, settings.metrics.port)
            self.log.info("metrics.listening", host=settings.metrics.host, port=port)
        if settings.notify.urls:
            self._start_notifier()
        self._check_watchdog()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        self._started = True
        if ready:
            self.ready()

    def waiting(self, status: str, extend_s: float) -> None:
        """Still starting (e.g. the exchange is unreachable): tell systemd, keep it waiting."""
        self.systemd.notify(STATUS=status, EXTEND_TIMEOUT_USEC=str(int(extend_s * 1_000_000)))

    def ready(self) -> None:
        """The engine has started: ``READY=1`` to systemd, a "started" notification."""
        self.systemd.ready(self.status_line())
        if self.notifier is not None:
            from hedgekeeper.notify import Notification

            self.notifier.submit(
                Notification(
                    "daemon.started",
                    "",
                    f"{self.notifier.prefix}: started",
                    f"{len(self.engine.groups)} group(s), trading "
                    f"{self.engine.executor.trading_state.value}",
                    "info",
                ),
                limit=False,
            )

    def _start_notifier(self) -> None:
        from hedgekeeper.notify import Notifier, apprise_sender

        notify = self.settings.notify
        sender = apprise_sender([url.get_secret_value() for url in notify.urls], self.log)
        if sender is None:
            self.log.warning("notify.disabled", why="no valid apprise URL")
            return
        self.notifier = Notifier(
            sender,
            redactor=self.redactor,
            log=self.log,
            min_interval=notify.min_interval,
            daily_summary=notify.daily_summary,
            engine=self.engine,
        )
        self.notifier.start()
        self.log.info(
            "notify.enabled",
            urls=len(notify.urls),
            min_interval=notify.min_interval,
            daily_summary=notify.daily_summary,
        )

    def _check_watchdog(self) -> None:
        timeout = watchdog_interval()
        if timeout is None:
            return
        needed = STALE_CYCLES * self.settings.poll_interval
        if timeout < needed:
            # Cycles that are merely slow would get the daemon killed.
            self.log.warning(
                "systemd.watchdog_short",
                watchdog_s=timeout,
                suggested_s=needed + 30,
                poll_interval=self.settings.poll_interval,
            )
        else:
            self.log.info("systemd.watchdog", watchdog_s=timeout)

    def crashed(self, error: BaseException) -> None:
        """Notify that the daemon is going down on an error (sent by :meth:`stop`)."""
        self._crashed = True
        if self.notifier is not None:
            from hedgekeeper.notify import Notification

            self.notifier.submit(
                Notification(
                    "daemon.crashed",
                    "",
                    f"{self.notifier.prefix}: crashed",
                    f"{type(error).__name__}: {error}",
                    "failure",
                ),
                limit=False,
            )

    async def stop(self) -> None:
        """Stop every service (quickly: shutdown must finish within seconds)."""
        if self._started:
            why = "crashed" if self._crashed else "stopping"
            self.systemd.stopping(f"{self.settings.mode.value}, {why}")
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self.control is not None:
            await self.control.close()
            self.control = None
        if self.notifier is not None:
            if not self._crashed:
                from hedgekeeper.notify import Notification

                self.notifier.submit(
                    Notification(
                        "daemon.stopped",
                        "",
                        f"{self.notifier.prefix}: stopped",
                        self.status_line(),
                        "info",
                    ),
                    limit=False,
                )
            await self.notifier.close(grace=1.5)
            self.notifier = None
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
            self.metrics = None
        self.systemd.close()

    # -- events and heartbeat ------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if name == "cycle.completed":
            at = float(event.get("at", time.time()))
            ok = bool(event.get("ok"))
            self._last_cycle = (int(event.get("cycle") or 0), ok, at)
            if ok:
                self._last_success_at = at
                # The watchdog is fed only by a successful cycle: a daemon whose cycles
                # keep failing is restarted by systemd.
                self.systemd.watchdog(self.status_line(at))
            else:
                self.systemd.status(self.status_line(at))
        elif name == "state.changed":
            self.systemd.status(self.status_line())

    async def _beat(self) -> None:
        interval = self.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.heartbeat()
            except Exception as error:  # a failed beat is logged; the next one still comes
                self.log.error("daemon.heartbeat_failed", error=repr(error))

    def heartbeat(self) -> None:
        """Log one ``daemon.heartbeat`` line and refresh systemd's status."""
        now = time.time()
        engine = self.engine
        success = self._last_success_at or engine.last_success_at
        state = health(success, STALE_CYCLES * self.settings.poll_interval, now)
        last = self._last_cycle
        self.log.info(
            "daemon.heartbeat",
            trading_state=engine.executor.trading_state.value,
            cycles_run=engine.cycles_run,
            last_cycle=None if last is None else last[0],
            last_cycle_ok=None if last is None else last[1],
            last_cycle_age_s=None if last is None else round(now - last[2], 1),
            last_success_age_s=None if success is None else round(now - success, 1),
            healthy=state.healthy,
        )
        self.systemd.status(self.status_line(now))
