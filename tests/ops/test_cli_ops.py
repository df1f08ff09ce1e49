"""The operator CLI against real daemons, and secrets kept out of everything it shows."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import urllib.request
from pathlib import Path

from hedgekeeper.control import ControlServer
from hedgekeeper.logs import configure_logging
from hedgekeeper.redact import Redactor
from tests.ops.helpers import (
    HEDGEKEEPER,
    Daemon,
    Receiver,
    clean_env,
    cli,
    make_engine,
    sim_config,
    wait_until,
    write_config,
)

API_SECRET = "sk-live-3f9a7c21d0b84e6f"
API_KEY = "ak-7e1d2c9b5a40"
CONTROL_TOKEN = "ctl-9d8e7f6a5b4c3d2e"


def test_no_secret_in_logs_events_status_metrics_or_notifications(tmp_path: Path) -> None:
    receiver = Receiver()
    notify_url = receiver.url("hook-n0t1fy", "-X-Api-Token=n0t1fy-s3cr3t")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "accounts__demo__api_key").write_text(API_KEY)
    (secrets_dir / "control__token").write_text(CONTROL_TOKEN)
    config = write_config(
        tmp_path,
        sim_config(
            heartbeat_interval=1.0,
            metrics='host = "127.0.0.1"\nport = 0',
            notify="min_interval = 0",
        ),
    )
    env = clean_env(
        HEDGEKEEPER_SECRETS_DIR=str(secrets_dir),
        HEDGEKEEPER_ACCOUNTS__DEMO__SECRET=API_SECRET,
        HEDGEKEEPER_NOTIFY__URLS=json.dumps([notify_url]),
    )
    secrets = [API_SECRET, API_KEY, CONTROL_TOKEN, notify_url, "n0t1fy-s3cr3t"]
    outputs: dict[str, str] = {}
    with Daemon(tmp_path, config, env) as daemon:
        port = daemon.port("control.listening")
        metrics_port = daemon.port("metrics.listening")
        wait_until(lambda: sum(line["event"] == "cycle.completed" for line in daemon.lines()) >= 2)
        # The operator's tools, as documented: the token comes from the secrets directory.
        client_env = {**env, "HEDGEKEEPER_CONTROL_URL": f"http://127.0.0.1:{port}"}
        for name, args in {
            "status_json": ("status", "--json"),
            "status_table": ("status",),
            "health": ("health",),
            "events": ("events", "--json", "--count", "6"),
            "halt": ("halt", "--config", str(config), "--reason", "secret test"),
            "resume": ("resume", "--config", str(config)),
            "hedge_now": ("hedge-now", "--config", str(config)),
        }.items():
            if name in ("halt", "resume", "hedge_now"):
                run_env = {**env, "HEDGEKEEPER_CONTROL__PORT": str(port)}
            else:
                run_env = client_env
            result = cli(*args, env=run_env)
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            outputs[name] = result.stdout + result.stderr
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            outputs["metrics"] = response.read().decode()
        wait_until(
            lambda: any("trading ACTIVE" in t for t in receiver.titles()),
            what="notifications of the halt and the resume",
        )
        assert daemon.stop() == 0
        outputs["stderr"] = daemon.stderr()
        outputs["stdout"] = daemon.stdout_path.read_text()
    outputs["notifications"] = json.dumps(
        [{"title": b.get("title"), "message": b.get("message")} for b in receiver.bodies]
    )
    receiver.close()

    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
    status = json.loads(outputs["status_json"])
    assert status["mode"] == "dry-run" and {g["name"] for g in status["groups"]} == {"btc", "alts"}
    assert "hedgekeeper hk — dry-run, ACTIVE" in outputs["status_table"]
    assert outputs["health"].startswith("healthy: last successful cycle")
    events = [json.loads(line) for line in outputs["events"].splitlines()]
    assert len(events) == 6 and all("event" in e and "at" in e for e in events)
    assert outputs["halt"].startswith("halt: ok (state HALTED")
    assert outputs["resume"].startswith("resume: ok (state ACTIVE)")
    lines = [json.loads(line) for line in outputs["stderr"].splitlines()]
    loaded = next(line for line in lines if line["event"] == "config.loaded")["config"]
    assert loaded["accounts"]["demo"]["secret"] == "***"
    assert loaded["control"]["token"] == "***" and loaded["notify"]["urls"] == ["***"]
    commands = [line["command"] for line in lines if line["event"] == "control.command"]
    assert commands == ["halt", "resume", "hedge_now"]
    assert any(b["title"].endswith("filled") for b in receiver.bodies)
    assert 'hedgekeeper_exposure_usd{group="btc"} 70000.0' in outputs["metrics"]


async def test_health_and_command_exit_codes(tmp_path: Path) -> None:
    configure_logging("warning", "json", stream=io.StringIO())
    engine, sim, _ = make_engine(tmp_path, sim_config())
    await engine.start()
    server = ControlServer(engine, redactor=Redactor([]), log=engine.log, port=0,
                           stale_after=60.0)  # a loaded CI machine starts the CLI slowly
    await server.start()
    url = f"http://127.0.0.1:{server.port}"

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *HEDGEKEEPER,
            *args,
            env=clean_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    try:
        sim.failing.add("positions")
        await engine.run_cycle()
        code, out, _ = await run("health", "--url", url)
        assert (code, out.strip()) == (1, "unhealthy (503): no successful cycle yet")
        sim.failing.discard("positions")
        await engine.run_cycle()
        code, out, _ = await run("health", "--url", url)
        assert code == 0 and out.startswith("healthy")
        # No token configured in the daemon: refused, with the way out.
        code, _, err = await run("halt", "--url", url, "--token", "guess")
        assert code == 1 and "set control.token" in err
        code, _, err = await run("halt", "--url", url)
        assert code == 1 and "set control.token" in err and "pass --token" not in err
        code, _, err = await run("flatten", "--url", url)
        assert code == 2 and "--yes" in err, "flatten asks for confirmation"
    finally:
        await server.close()
        await engine.close()
        engine.journal.close()
    code, _, err = await run("health", "--url", url)
    assert code == 2 and "unreachable" in err
    code, _, err = await run("status", "--url", url.removeprefix("http://"))
    assert code == 2, "a URL without a scheme is a usage error"


def test_config_wildcard_host_is_reached_on_loopback(tmp_path: Path) -> None:
    from hedgekeeper.cli_ops import resolve_endpoint

    config = write_config(
        tmp_path, sim_config(control='host = "0.0.0.0"\nport = 9\ntoken = "t0k3n-0123456789abcdef"')
    )
    endpoint = resolve_endpoint(config, None, None)
    assert endpoint.base_url == "http://127.0.0.1:9" and endpoint.token == "t0k3n-0123456789abcdef"
    assert endpoint.ws_url("/events") == "ws://127.0.0.1:9/events"
    assert resolve_endpoint(config, "http://[::1]:1/", "x").ws_url("/c") == "ws://[::1]:1/c"
    assert sys.executable  # the CLI runs under this interpreter in the other tests
