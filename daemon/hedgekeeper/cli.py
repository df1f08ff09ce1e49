"""Command line: ``hedgekeeper run | plan | check``.

Logs go to stderr; stdout carries command output only (``plan --json`` prints
exactly one JSON document). Exit codes: 0 ok, 1 runtime failure, 2 bad
configuration or usage (with the field path and the reason, no traceback).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hedgekeeper.exceptions import ConfigError, HedgekeeperError, JournalError
from hedgekeeper.model import Mode

if TYPE_CHECKING:
    from hedgekeeper.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Keeps a crypto spot portfolio hedged with short futures.",
)

EXIT_CONFIG = 2


def _print_version(value: bool) -> None:
    if value:
        from hedgekeeper import __version__

        typer.echo(f"hedgekeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keeps a crypto spot portfolio hedged with short futures."""

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="HEDGEKEEPER_CONFIG", help="TOML configuration file.",
        dir_okay=False,
    ),
]  # fmt: skip
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the journal lives (default: state_dir from config, $STATE_DIRECTORY "
        "under systemd, else ~/.local/state/hedgekeeper/<instance>).",
        file_okay=False,
    ),
]


def _fail_config(message: str) -> typer.Exit:
    from hedgekeeper.stderr_lines import config_error

    config_error(message)  # one JSON line in JSON format, readable text on a terminal
    return typer.Exit(EXIT_CONFIG)


def _echo_config_error(error: Exception) -> None:
    """The plain-text copy of a logged config error, for a terminal (JSON has the log line)."""
    from hedgekeeper.stderr_lines import is_json

    if not is_json():
        _fail_config(str(error))


def _state_dir(cli_value: Path | None, settings: Settings) -> Path:
    from hedgekeeper.statedir import resolve_state_dir

    return resolve_state_dir(cli_value, settings)


def _load(config: Path) -> Any:
    from hedgekeeper.settings import load_settings, readable_secrets
    from hedgekeeper.stderr_lines import use_early_format, use_format, warning

    use_early_format(config)  # errors below come out in the format the logs will use
    try:
        settings = load_settings(config)
    except ConfigError as error:
        raise _fail_config(str(error)) from None
    use_format(settings.log.format, mode=settings.mode.value)
    if readable_secrets(config):
        # Logging is not set up yet: this goes straight to stderr, once.
        warning(
            "config.readable_secrets",
            f"{config} holds secrets and other users can read it: chmod 600 {config}",
            path=str(config),
        )
    return settings


def _setup_logging(settings: Any) -> Any:
    from hedgekeeper.logs import configure_logging, get_logger, register_secrets
    from hedgekeeper.settings import secret_values

    register_secrets(secret_values(settings))
    configure_logging(settings.log.level, settings.log.format, mode=settings.mode.value)
    from hedgekeeper.ops import route_stdlib_logging

    route_stdlib_logging(settings.log.level)  # library warnings are log lines from the start
    return get_logger()


@app.command()
def check(config: ConfigOption, state_dir: StateDirOption = None) -> None:
    """Validate everything ``run`` would, short of the network; exit 0 if valid, 2 if not."""
    settings = _load(config)
    directory = _state_dir(state_dir, settings)
    _preflight(settings, directory)
    configured = settings.__dict__.get("_configured", settings.hedges)  # before legs
    legs = f" ({len(settings.hedges)} legs)" if len(configured) != len(settings.hedges) else ""
    typer.echo(
        f"ok: mode {settings.mode.value}, {len(settings.accounts)} account(s), "
        f"{len(configured)} hedge group(s){legs}; state directory {directory}"
    )


def _preflight(settings: Any, state_dir: Path | None) -> None:
    """The one validation ``check``, ``plan`` and ``run`` share (see :mod:`preflight`)."""
    from hedgekeeper.preflight import preflight

    try:
        preflight(settings, state_dir)
    except ConfigError as error:
        raise _fail_config(str(error)) from None


@app.command()
def run(
    config: ConfigOption,
    state_dir: StateDirOption = None,
    live: Annotated[
        bool, typer.Option("--live", help='Required, with mode = "live", to trade for real.')
    ] = False,
    adopt_state: Annotated[
        bool,
        typer.Option("--adopt-state", help="Take over a state directory whose journal belongs "
                     "to another configuration (instance, accounts, mode)."),
    ] = False,
) -> None:
    """Run the daemon: hedge every group each poll interval until SIGTERM or SIGINT."""
    settings = _load(config)
    if settings.mode is Mode.LIVE and not live:
        raise _fail_config(
            'mode = "live" trades real money: add --live to the command line to confirm'
        )
    if live and settings.mode is not Mode.LIVE:
        raise _fail_config(
            f'--live given but the configuration says mode = "{settings.mode.value}"'
        )
    directory = _state_dir(state_dir, settings)
    # The state directory itself is taken below (lock, journal) with its own errors.
    _preflight(settings, None)
    log = _setup_logging(settings)
    from hedgekeeper.settings import config_hash, redacted

    # Short enough to read: the hash and what differs from the defaults; all of it at debug.
    log.info(
        "config.loaded",
        path=str(config),
        config_hash=config_hash(settings),
        config=redacted(settings, exclude_defaults=True),
    )
    log.debug("config.effective", config_hash=config_hash(settings), config=redacted(settings))
    code = asyncio.run(
        _run(settings, directory, log, config=config, adopt=adopt_state)
    )
    raise typer.Exit(code)


async def _run(settings: Any, state_dir: Path, log: Any, *, config: Path | None = None,
               adopt: bool = False) -> int:  # fmt: skip
    from hedgekeeper import __version__
    from hedgekeeper.engine import Engine
    from hedgekeeper.groups import resolve_auto
    from hedgekeeper.journal import Journal
    from hedgekeeper.ops import Operations
    from hedgekeeper.statedir import check_identity
    from hedgekeeper.statelock import StateLock, StateLockError
    from hedgekeeper.venues import build_venues

    log.info("state.directory", state_dir=str(state_dir))
    try:
        # One writer per state directory, taken before the journal is opened for writing.
        lock = StateLock.acquire(state_dir, config=config)
    except StateLockError as error:
        log.error("daemon.refused" if error.busy else "daemon.failed", error=str(error))
        _echo_config_error(error)
        return EXIT_CONFIG
    try:
        journal = Journal(state_dir / "journal.db")
    except JournalError as error:  # damaged, or an unwritable volume: no restart heals it
        log.error("daemon.failed", error=f"{error} (can uid {os.getuid()} write {state_dir}?)"
                  if "damaged" not in str(error) else str(error))  # fmt: skip
        _echo_config_error(error)
        lock.release()
        return EXIT_CONFIG
    try:
        check_identity(journal, settings, adopt=adopt)
    except ConfigError as error:
        log.error("daemon.config_invalid", error=str(error))
        _echo_config_error(error)
        journal.close()
        lock.release()
        return EXIT_CONFIG
    engine: Engine | None = None
    ops: Operations | None = None
    try:
        try:
            venues = build_venues(settings, journal)
            settings = await resolve_auto(settings, venues)  # instruments = { X = "auto" }
        except ConfigError as error:  # e.g. testnet on an exchange that has none
            log.error("daemon.config_invalid", error=str(error))
            _echo_config_error(error)
            return EXIT_CONFIG
        engine = Engine(settings, venues, journal, lock=lock)
        ops = Operations(engine, log, version=__version__)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _on_signal, stop, signum, log)
        # The kill switch without the control channel: kill -USR1 halts, kill -USR2 flattens.
        for signum, command in ((signal.SIGUSR1, engine.halt), (signal.SIGUSR2, engine.flatten)):
            loop.add_signal_handler(signum, _on_command_signal, command, signum, log)
        ops.starting()
        try:
            # control, metrics, notifier, heartbeat; /healthz answers "not ready" until the
            # engine has started, and systemd hears READY=1 only then.
            await ops.start(ready=False)
        except OSError as error:  # a port already taken
            log.error(
                "daemon.failed",
                error=f"cannot start the control or metrics server: {error}",
                hint="another process (a hedgekeeper service?) holds the port: set [control] "
                "port or [metrics] port (HEDGEKEEPER_CONTROL__PORT=0 picks a free one; "
                "make run CONTROL_PORT=…)",
            )
            return 1
        try:
            started = await _start_engine(engine, ops, stop, log)
        except ConfigError as error:
            log.error("daemon.config_invalid", error=str(error))
            _echo_config_error(error)
            return EXIT_CONFIG
        if not started:
            log.info("daemon.stopped", before="the exchange was reachable")
            return 0
        ops.ready()
        log.info(
            "daemon.started",
            state_dir=str(state_dir),
            groups=len(engine.groups),
            trading_state=engine.executor.trading_state.value,
        )
        await engine.run(stop)
        await engine.shutdown()  # cancel_on_exit / flatten_on_exit
        log.info("daemon.stopped")
        return 0
    except HedgekeeperError as error:
        log.error("daemon.failed", error=str(error))
        if ops is not None:
            ops.crashed(error)
        return 1
    except Exception as error:  # a bug: one JSON line with the traceback, a notification
        log.exception("daemon.crashed", error=repr(error))
        if ops is not None:
            ops.crashed(error)
        return 1
    finally:
        if ops is not None:
            await ops.stop()
        if engine is not None:
            await engine.close()
        journal.close()
        lock.release()


async def _start_engine(engine: Any, ops: Any, stop: asyncio.Event, log: Any) -> bool:
    """Start the engine, retrying with capped backoff while the exchange is unreachable.

    A configuration or credential problem raises at once (no retry heals it). A network
    failure (DNS, refused, TLS, timeout, 5xx) is logged once per change of root cause,
    then retried after 1, 2, 4 … seconds, at most ``poll_interval``; nothing trades
    meanwhile. Returns False when asked to stop while waiting.
    """
    from hedgekeeper.exceptions import AuthError, VenueConfigError, VenueError
    from hedgekeeper.netcause import root_cause

    delay, last_cause, attempts = 1.0, None, 0
    cap = max(1.0, float(engine.settings.poll_interval))
    while True:
        attempts += 1
        try:
            await engine.start()
            if attempts > 1:
                log.info("startup.exchange_reachable", attempts=attempts)
            return True
        except (AuthError, VenueConfigError):
            raise
        except VenueError as error:
            cause = root_cause(error)
            if cause != last_cause:
                log.error("startup.exchange_unreachable", cause=cause, error=str(error),
                          retry="with backoff, trading nothing until it answers")  # fmt: skip
                engine.events.publish("alert", kind="startup", reason=f"{cause}: {error}")
                last_cause = cause
            ops.waiting(f"waiting for the exchange ({cause})", extend_s=delay + 60)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return False
        except TimeoutError:
            pass
        delay = min(cap, delay * 2)


_BACKGROUND: set[asyncio.Task[Any]] = set()


def _on_command_signal(command: Any, signum: int, log: Any) -> None:
    name = signal.Signals(signum).name
    log.warning("control.signal", signal=name, command=command.__name__)
    task = asyncio.ensure_future(command(f"signal {name}", f"{command.__name__} by {name}"))
    _BACKGROUND.add(task)  # keep a reference until it is done
    task.add_done_callback(_BACKGROUND.discard)


def _on_signal(stop: asyncio.Event, signum: int, log: Any) -> None:
    log.info("daemon.stopping", signal=signal.Signals(signum).name)
    stop.set()


@app.command()
def plan(
    config: ConfigOption,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Plan as at this UTC time (windows), e.g. 2026-03-18T20:00Z"),
    ] = None,
) -> None:
    """Run one cycle without sending or journaling anything, and show the plan."""
    settings = _load(config)
    _preflight(settings, None)  # plan only reads: no state-dir check
    log = _setup_logging(settings)
    directory = _state_dir(state_dir, settings)
    log.info("state.directory", state_dir=str(directory), access="read-only")
    from hedgekeeper.groups import parse_instant

    try:
        at_epoch = None if at is None else parse_instant(at)
    except ValueError as error:
        typer.echo(f"--at: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    result = asyncio.run(_plan(settings, directory, log, at_epoch))
    if isinstance(result, int):
        raise typer.Exit(result)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    _print_plan_table(result)


async def _plan(
    settings: Any, state_dir: Path, log: Any, at: float | None = None
) -> dict[str, Any] | int:
    from hedgekeeper.engine import Engine
    from hedgekeeper.groups import resolve_auto
    from hedgekeeper.journal import Journal
    from hedgekeeper.statedir import check_identity
    from hedgekeeper.venues import build_venues

    # Read the running daemon's journal if there is one (paper positions live there),
    # read-only: plan never writes to it, and its venues have no write methods at all.
    # Without one, plan against an empty in-memory journal and leave no files behind.
    path = state_dir / "journal.db"
    try:
        journal = Journal(path if path.exists() else None, read_only=True)
        check_identity(journal, settings, record=False)
        venues = build_venues(settings, journal, read_only=True)
    except (ConfigError, JournalError) as error:
        _fail_config(str(error))
        return EXIT_CONFIG
    engine: Engine | None = None
    try:
        settings = await resolve_auto(settings, venues)  # instruments = { X = "auto" }
        engine = Engine(settings, venues, journal)
        engine.decider.plan_at = at
        await engine.start()
        report = await engine.run_cycle(trade=False)
        trading_state = engine.executor.trading_state.value
    except ConfigError as error:
        _fail_config(str(error))
        return EXIT_CONFIG
    except HedgekeeperError as error:
        log.error("plan.failed", error=str(error))
        return 1
    finally:
        if engine is not None:
            await engine.close()
        else:
            await asyncio.gather(*(v.close() for v in venues.values()), return_exceptions=True)
        journal.close()
    return {
        "mode": settings.mode.value,
        **({} if at is None else {"at": at}),
        "trading_state": trading_state,
        "groups": [d.as_dict() for d in report.decisions],
    }


def _print_plan_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from hedgekeeper.contracts import expiry_note

    table = Table(title=f"hedgekeeper plan — mode {result['mode']}, {result['trading_state']}")
    for column in ("group", "exposure USD", "target", "hedge", "pending", "order", "reason"):
        table.add_column(column, justify="left" if column in ("group", "reason") else "right")
    for group in result["groups"]:
        order = group["order"]
        order_text = (
            "—"
            if order is None
            else f"{order['side']} {order['contracts']}" + (" RO" if order["reduce_only"] else "")
        )
        table.add_row(
            group["name"],
            group["exposure_usd"] or "?",
            group["target_contracts"] or "?",
            group["hedge_contracts"] or "?",
            group["pending_contracts"] or "?",
            order_text,
            group["reason"] + expiry_note(group),
        )
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()


# Operator commands that talk to a running daemon (status, events, health, halt, …)
# live in their own module and register themselves on ``app``.
from hedgekeeper import cli_ops as _cli_ops  # noqa: E402, F401, I001
from hedgekeeper import cli_backtest as _cli_backtest  # noqa: E402, F401


if __name__ == "__main__":  # pragma: no cover
    main()
