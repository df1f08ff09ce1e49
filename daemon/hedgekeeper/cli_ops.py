"""Operator commands that talk to a running daemon through its control channel.

``status``, ``events``, ``health``, ``halt``, ``resume``, ``flatten``, ``realize`` and
``hedge-now`` register themselves on :data:`hedgekeeper.cli.app`. Each finds the
daemon from ``--url`` (and ``--token``), else from the configuration
(``--config`` or ``$HEDGEKEEPER_CONFIG``: ``[control]`` host, port and token, with
the token also read from the environment and secret files as usual), else at
``http://127.0.0.1:8765``.

Exit codes: 0 ok (healthy), 1 refused, failed or unhealthy, 2 unreachable or bad
usage — so ``hedgekeeper health`` suits scripts and probes.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from hedgekeeper.cli import app

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "Endpoint",
    "Unreachable",
    "resolve_endpoint",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2

DEFAULT_URL = "http://127.0.0.1:8765"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="HEDGEKEEPER_CONFIG",
        dir_okay=False,
        help="The daemon's TOML configuration: where its control channel listens, its token.",
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="HEDGEKEEPER_CONTROL_URL",
        help=f"The control channel, e.g. {DEFAULT_URL} (wins over --config).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="HEDGEKEEPER_CONTROL__TOKEN",
        show_default=False,
        help="control.token of the daemon (default: from the configuration).",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the daemon.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (recorded in the journal and the log).")
]


class Unreachable(Exception):
    """The daemon's control channel did not answer."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a daemon's control channel is, and the token to show it."""

    base_url: str
    token: str | None = None

    def ws_url(self, path: str) -> str:
        """The WebSocket URL of ``path`` (``http`` → ``ws``, ``https`` → ``wss``)."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{path}"

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer`` when there is a token."""
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


def resolve_endpoint(config: Path | None, url: str | None, token: str | None) -> Endpoint:
    """The endpoint from ``--url``, else the configuration, else the default address."""
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"expected http://host:port, got {url!r}", param_hint="--url")
        return Endpoint(url.rstrip("/"), token)
    if config is None:
        return Endpoint(DEFAULT_URL, token)
    from hedgekeeper.cli import _load

    settings = _load(config)
    control = settings.control
    if not control.enabled:
        typer.echo(f"the control channel is disabled in {config} ([control] enabled)", err=True)
        raise typer.Exit(EXIT_UNREACHABLE)
    host = _WILDCARDS.get(control.host, control.host)
    netloc = f"[{host}]:{control.port}" if ":" in host else f"{host}:{control.port}"
    if token is None and control.token is not None:
        token = control.token.get_secret_value()
    return Endpoint(f"http://{netloc}", token)


def _http_get(endpoint: Endpoint, path: str, timeout: float) -> tuple[int, Any]:
    # No proxies: the control channel is local, and *_proxy variables must not reroute it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(endpoint.base_url + path, headers=endpoint.headers())
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), _json(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), _json(error.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise Unreachable(f"{endpoint.base_url}: {reason}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"error": body.decode(errors="replace").strip()}


def _unreachable(error: Exception) -> typer.Exit:
    typer.echo(f"daemon unreachable: {error}", err=True)
    return typer.Exit(EXIT_UNREACHABLE)


# -- health and status ------------------------------------------------------------------------


@app.command()
def health(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Exit 0 when the daemon's cycles succeed, 1 when they do not, 2 when unreachable."""
    endpoint = resolve_endpoint(config, url, token)
    try:
        code, body = _http_get(endpoint, "/healthz", timeout)
    except Unreachable as error:
        raise _unreachable(error) from None
    reason = body.get("reason", body.get("error", "")) if isinstance(body, dict) else body
    if code == 200:
        typer.echo(f"healthy: {reason}")
        return
    typer.echo(f"unhealthy ({code}): {reason}")
    raise typer.Exit(EXIT_FAILED)


@app.command()
def status(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    timeout: TimeoutOption = 5.0,
    as_json: JsonOption = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every figure exact, with instrument, drift USD, …")
    ] = False,
) -> None:
    """Show the running daemon: mode, trading state, last cycle, every group's hedge."""
    endpoint = resolve_endpoint(config, url, token)
    try:
        code, body = _http_get(endpoint, "/status", timeout)
    except Unreachable as error:
        raise _unreachable(error) from None
    if code != 200:
        message = body.get("error", body) if isinstance(body, dict) else body
        typer.echo(f"status refused ({code}): {message}", err=True)
        raise typer.Exit(EXIT_FAILED)
    if as_json:
        sys.stdout.write(json.dumps(body) + "\n")
        return
    _print_status(body, wide=wide)


def _print_status(document: dict[str, Any], wide: bool = False) -> None:
    from rich.console import Console

    from hedgekeeper.status_table import NARROW_WIDTH, status_table

    width = Console().width
    # Narrow: at most 80 columns, whatever the terminal. Wide: never squeezed, even in a pipe.
    console = Console(width=max(width, 200) if wide else min(width, NARROW_WIDTH))
    console.print(status_table(document, wide=wide))


# -- events ------------------------------------------------------------------------------------


@app.command()
def events(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    timeout: TimeoutOption = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events.")
    ] = None,
) -> None:
    """Follow the daemon's events (fills, decisions, state changes) until Ctrl-C."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    endpoint = resolve_endpoint(config, url, token)
    seen = 0
    try:
        with connect(
            endpoint.ws_url("/events"),
            additional_headers=endpoint.headers(),
            open_timeout=timeout,
            proxy=None,
            compression=None,
        ) as connection:
            for message in connection:
                event = json.loads(message)
                if event.get("event") == "events.subscribed":
                    continue
                if as_json:
                    sys.stdout.write(
                        (message if isinstance(message, str) else message.decode()) + "\n"
                    )
                else:
                    sys.stdout.write(_pretty_event(event) + "\n")
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    return
    except KeyboardInterrupt:
        return
    except InvalidStatus as error:
        typer.echo(f"events refused: HTTP {error.response.status_code}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except ConnectionClosed:
        typer.echo("the daemon closed the event stream", err=True)
    except (OSError, TimeoutError, WebSocketException) as error:
        raise _unreachable(error) from None


def _pretty_event(event: dict[str, Any]) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(float(event.get("at", time.time()))))
    fields = " ".join(
        f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"
        for key, value in event.items()
        if key not in ("event", "at")
    )
    return f"{at} {event.get('event', '?'):<22} {fields}"


# -- commands ----------------------------------------------------------------------------------


def _command(name: str, endpoint: Endpoint, reason: str | None, timeout: float,
             extra: dict[str, Any] | None = None) -> None:  # fmt: skip
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    message: dict[str, Any] = {"command": name, **(extra or {})}
    if reason:
        message["reason"] = reason
    try:
        with connect(
            endpoint.ws_url("/command"),
            additional_headers=endpoint.headers(),
            open_timeout=timeout,
            proxy=None,
            compression=None,
        ) as connection:
            connection.send(json.dumps(message))
            reply = json.loads(connection.recv(timeout=max(timeout, 30.0)))
    except InvalidStatus as error:
        typer.echo(f"{name} refused: HTTP {error.response.status_code}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except (OSError, TimeoutError, WebSocketException) as error:
        raise _unreachable(error) from None
    if not reply.get("ok"):
        refusal = str(reply.get("error"))
        typer.echo(f"{name} refused: {refusal}", err=True)
        # When the daemon has no token at all, the refusal itself says what to set there;
        # "pass --token" would send the operator looking for a token that does not exist.
        if endpoint.token is None and "no control token" not in refusal:
            typer.echo(
                "hint: pass --token TOKEN, set HEDGEKEEPER_CONTROL__TOKEN, or give --config "
                "the daemon's configuration (its control.token is read from there)",
                err=True,
            )
        raise typer.Exit(EXIT_FAILED)
    result = reply.get("result") or {}
    details = ", ".join(f"{key} {value}" for key, value in result.items())
    typer.echo(f"{name}: ok" + (f" ({details})" if details else ""))


def _confirm(yes: bool, what: str, question: str) -> None:
    """Ask before a command that trades; without a terminal, ``--yes`` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        typer.echo(f"{what}: add --yes to confirm", err=True)
        raise typer.Exit(EXIT_UNREACHABLE)
    typer.confirm(question, abort=True)


@app.command()
def halt(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    reason: ReasonOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Stop trading: cancel working orders, then HALTED (cycles go on, no orders)."""
    _command("halt", resolve_endpoint(config, url, token), reason, timeout)


@app.command()
def resume(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    reason: ReasonOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Trade again (ACTIVE) and run a cycle now."""
    _command("resume", resolve_endpoint(config, url, token), reason, timeout)


@app.command()
def flatten(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    reason: ReasonOption = None,
    timeout: TimeoutOption = 5.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Close every hedge with reduce-only orders, then halt."""
    _confirm(yes, "flatten closes every hedge", "Close every hedge (reduce-only) and then halt?")
    _command("flatten", resolve_endpoint(config, url, token), reason, timeout)


@app.command()
def realize(
    group: Annotated[str, typer.Argument(help="The hedge group (an allocation group's name).")],
    asset: Annotated[
        str | None, typer.Argument(help="The asset, for a group that hedges several.")
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="Base units to realize (default: the whole short)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Required when the daemon trades live.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    reason: ReasonOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Sell the hedged spot and buy back the short, as one journaled operation (Option B).

    The running daemon carries it out in its next cycle; follow it with ``events`` or
    ``status``. The spot must be on the hedge's exchange.
    """
    _confirm(yes, "realize sells spot and closes the short",
             f"Sell the hedged spot of {group} and buy back its short?")  # fmt: skip
    extra: dict[str, Any] = {"group": group, "live": live}
    if asset is not None:
        extra["asset"] = asset
    if amount is not None:
        extra["amount"] = amount
    _command("realize", resolve_endpoint(config, url, token), reason, timeout, extra)


@app.command("hedge-now")
def hedge_now(
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    reason: ReasonOption = None,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Run the next cycle at once instead of waiting for the timer."""
    _command("hedge_now", resolve_endpoint(config, url, token), reason, timeout)
