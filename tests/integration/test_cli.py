"""The command line as a user and other tools see it: subprocesses, stdout, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CONTRACT_TOML, REPO

HEDGEKEEPER = [sys.executable, "-m", "hedgekeeper"]
# The contract config has no [control] section: port 0 keeps these daemons off the default
# 8765, which a hedgekeeper service on this machine may hold (the suite holds it too).
ENV = {**os.environ, "PYTHONPATH": str(REPO / "daemon"), "HEDGEKEEPER_CONTROL__PORT": "0"}


def cli(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("env", ENV)
    return subprocess.run([*HEDGEKEEPER, *args], capture_output=True, text=True,
                          timeout=60, **kw)  # fmt: skip


def test_plan_json_contract(contract_config: Path, tmp_path: Path) -> None:
    result = cli(
        "plan", "--config", str(contract_config), "--json", "--state-dir", str(tmp_path / "s")
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert document["mode"] == "dry-run"
    (group,) = document["groups"]
    assert group["name"] == "btc"
    assert group["exposure_usd"] == "70000"
    assert group["target_contracts"] == "50"
    assert group["hedge_contracts"] == "0"
    assert group["pending_contracts"] == "0"
    assert group["order"] == {"side": "sell", "contracts": "50", "reduce_only": False}
    assert group["reason"] == "short 50 to reach 50% of 70000 USD"
    assert not (tmp_path / "s").exists(), "plan must not create a state directory"
    # logs went to stderr as JSON lines carrying the mode
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and all(line["mode"] == "dry-run" for line in lines)


def test_plan_table_is_readable(contract_config: Path) -> None:
    result = cli("plan", "--config", str(contract_config))
    assert result.returncode == 0, result.stderr
    assert "btc" in result.stdout and "sell 50" in result.stdout


def test_check_exit_codes(contract_config: Path, tmp_path: Path) -> None:
    assert cli("check", "--config", str(contract_config)).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(CONTRACT_TOML.replace("ratio = 0.5", "ratio = 7"))
    result = cli("check", "--config", str(bad))
    assert result.returncode == 2
    assert "hedges.0: ratio 7 is above max_ratio 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONTRACT_TOML.replace('hedge_account = "demo"', 'hedge_account = "ghost"'))
    result = cli("run", "--config", str(bad), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "unknown account 'ghost'" in result.stderr
    assert "Traceback" not in result.stderr


def test_live_needs_the_flag(tmp_path: Path) -> None:
    live = tmp_path / "live.toml"
    live.write_text(CONTRACT_TOML.replace('mode = "dry-run"', 'mode = "live"'))
    result = cli("run", "--config", str(live), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "--live" in result.stderr


def test_ccxt_is_not_imported_for_sim_only_configs(contract_config: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from hedgekeeper.cli import _plan\n"
        "from hedgekeeper.settings import load_settings\n"
        "from hedgekeeper.logs import configure_logging, get_logger\n"
        "from pathlib import Path\n"
        f"s = load_settings(Path({str(contract_config)!r}))\n"
        "configure_logging('error', 'json')\n"
        "r = asyncio.run(_plan(s, Path('/nonexistent'), get_logger()))\n"
        "assert r['groups'][0]['target_contracts'] == '50', r\n"
        "print('ccxt' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_on_signal_with_exit_0_within_5s(
    contract_config: Path, tmp_path: Path, signum: int
) -> None:
    proc = subprocess.Popen(
        [*HEDGEKEEPER, "run", "--config", str(contract_config), "--state-dir", str(tmp_path / "s")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    for line in proc.stderr:  # wait for the first completed cycle, not a fixed time
        seen.append(line)
        if '"cycle.completed"' in line or time.monotonic() > deadline:
            break
    assert any('"cycle.completed"' in line for line in seen), "".join(seen)
    sent = time.monotonic()
    proc.send_signal(signum)
    remaining, _ = proc.communicate(timeout=10)[1], None
    took = time.monotonic() - sent
    assert proc.returncode == 0, remaining
    assert took < 5.0
    assert '"daemon.stopped"' in remaining


def test_shipped_configs_are_valid(tmp_path: Path) -> None:
    import tomllib

    for path in sorted((REPO / "config").glob("*.toml")):
        # Keys come from the environment or secret files: a testnet or live config is
        # checked with placeholder keys for every account (check fails without them).
        accounts = tomllib.loads(path.read_text()).get("accounts", {})
        keys = {f"HEDGEKEEPER_ACCOUNTS__{name.upper()}__{prefix}{part}": "placeholder-key-0"
                for name in accounts for prefix in ("", "TESTNET_")
                for part in ("API_KEY", "SECRET")}  # fmt: skip
        result = cli("check", "--config", str(path), "--state-dir", str(tmp_path / path.stem),
                     env={**ENV, **keys})  # fmt: skip
        assert result.returncode == 0, (path, result.stderr)


def test_warns_when_secrets_are_readable_by_others(contract_config: Path) -> None:
    contract_config.write_text(
        CONTRACT_TOML.replace('exchange = "sim"', 'exchange = "sim"\nsecret = "abcd1234"')
    )
    contract_config.chmod(0o644)
    result = cli("check", "--config", str(contract_config))
    assert result.returncode == 0
    assert "other users can read it" in result.stderr and "abcd1234" not in result.stderr
    contract_config.chmod(0o600)
    assert "other users can read it" not in cli("check", "--config", str(contract_config)).stderr


async def test_kill_switch_signals_halt_and_flatten(contract_config: Path, tmp_path: Path) -> None:
    import sqlite3
    from decimal import Decimal

    from tests.conftest import eventually
    from tests.integration.daemon_proc import Daemon

    text = contract_config.read_text().replace(
        'mode = "dry-run"', 'mode = "dry-run"\npoll_interval = 0.2'
    )
    contract_config.write_text(text + "[control]\nenabled = false\n")
    state = tmp_path / "state"
    daemon = Daemon(contract_config, state)
    await daemon.start()

    def trading_state() -> str | None:
        if not (state / "journal.db").exists():
            return None
        db = sqlite3.connect(state / "journal.db")
        try:
            row = db.execute("SELECT value FROM kv WHERE key = 'trading_state'").fetchone()
            return None if row is None else row[0]
        except sqlite3.OperationalError:  # the file exists a moment before its schema
            return None
        finally:
            db.close()

    def paper_short() -> Decimal | None:
        if not (state / "journal.db").exists():
            return None
        db = sqlite3.connect(state / "journal.db")
        try:
            row = db.execute("SELECT contracts FROM paper_positions").fetchone()
            return None if row is None else Decimal(row[0])
        except sqlite3.OperationalError:
            return None
        finally:
            db.close()

    try:
        await eventually(lambda: paper_short() == -50, within=20)
        daemon.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
        await eventually(lambda: trading_state() == "HALTED", within=10)
        assert paper_short() == -50, "halt leaves positions in place"
        daemon.proc.send_signal(signal.SIGUSR2)  # type: ignore[union-attr]
        await eventually(lambda: paper_short() == 0, within=20)
        await eventually(lambda: trading_state() == "HALTED", within=10)
        assert await daemon.stop() == 0
    except AssertionError:
        print(daemon.log_tail(30))
        raise
    finally:
        await daemon.kill()
    signals = [e["signal"] for e in daemon.events("control.signal")]
    assert signals == ["SIGUSR1", "SIGUSR2"]
    states = [e["state"] for e in daemon.events("state.changed")]
    assert states == ["HALTED", "REDUCING", "HALTED"]
