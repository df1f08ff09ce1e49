"""``check``, ``plan`` and ``run`` give the same verdict on every bad configuration.

Each case is refused by all three with exit 2, a message naming the field path (or the
value's place), and no traceback — and none of them echoes a secret. Round 1: ``check``
said ``ok`` to an unknown exchange that ``plan`` met with a 66-line traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hedgekeeper.cli import app

SIM = """\
mode = "dry-run"
poll_interval = 1
{top}
[control]
enabled = false
{control}
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000, ETH = 3000 }}
balances = {{ BTC = 1.0 }}
contract_sizes = {{ BTC = 0.01, ETH = 0.1 }}
[[hedges]]
name = "btc"
assets = {assets}
spot_accounts = ["demo"]
instrument = "{instrument}"
hedge_account = "{hedge_account}"
ratio = {ratio}
{hedge}
"""

EXCHANGE = """\
mode = "{mode}"
[control]
enabled = false
[accounts.ex]
exchange = "{exchange}"
{keys}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["ex"]
instrument = "BTC/USDT:USDT"
hedge_account = "ex"
ratio = 0.5
"""

SECRET = "do-not-echo-this-secret-1234567890"


def sim(**changes: str) -> str:
    values = {"top": "", "control": "", "assets": "{ BTC = 1.0 }", "instrument": "BTC/USDT:USDT",
              "hedge_account": "demo", "ratio": "0.5", "hedge": ""}  # fmt: skip
    values.update(changes)
    return SIM.format(**values)


def exchange(exchange: str = "binance", mode: str = "dry-run", keys: str = "") -> str:
    return EXCHANGE.format(exchange=exchange, mode=mode, keys=keys)


#: (case id, config text, a piece of the message that names what is wrong)
CASES: list[tuple[str, str, str]] = [
    ("unknown-exchange", exchange("binanse"), "accounts.ex.exchange"),
    ("sim-in-live", sim(top='mode = "live"').replace('mode = "dry-run"\n', ""), "live"),
    ("testnet-on-mexc", exchange("mexc", "testnet"), "testnet"),
    ("testnet-with-live-keys-only",
     exchange("bybit", "testnet", f'api_key = "{SECRET}"\nsecret = "{SECRET}"'),
     "accounts.ex: testnet mode needs"),
    ("live-without-keys", exchange("binance", "live"), "accounts.ex"),
    ("held-asset-without-price", sim(assets="{ BTC = 1.0, DOGE = 1.0 }"),
     "hedges.0.assets.DOGE"),
    ("instrument-not-listed", sim(instrument="FOO/USDT:USDT"), "].instrument: 'FOO/USDT:USDT'"),
    ("unknown-top-level-key", sim(top="pol_interval = 5"), "pol_interval"),
    ("unknown-hedge-key", sim(hedge="ration = 0.5"), "ration"),
    ("ratio-above-max", sim(ratio="5"), "max_ratio"),
    ("poll-interval-too-short", sim().replace("poll_interval = 1", "poll_interval = 0.05"),
     "poll_interval"),
    ("poll-interval-inf", sim().replace("poll_interval = 1", "poll_interval = inf"),
     "poll_interval"),
    ("heartbeat-zero", sim(top="heartbeat_interval = 0"), "heartbeat_interval"),
    ("holdings-absurd", sim(hedge="extra_holdings = { BTC = 1e16 }"),
     "hedges.0.extra_holdings.BTC"),
    ("token-short", sim(control='token = "abc"'), "control.token"),
    ("token-whitespace", sim(control=f'token = " {SECRET} "'), "control.token"),
    ("token-off-loopback", sim(control='enabled = true\nhost = "0.0.0.0"').replace(
        "enabled = false\n", "", 1), "control"),
    ("unknown-hedge-account", sim(hedge_account="nowhere"), "nowhere"),
    ("negative-tolerance", sim(hedge="tolerance = -1"), "hedges.0.tolerance"),
    ("beta-out-of-range", sim(assets="{ BTC = 20.0 }"), "hedges.0.assets.BTC"),
    ("zero-max-order", sim(hedge="max_order_usd = 0"), "hedges.0.max_order_usd"),
    ("mode-unknown", sim().replace('mode = "dry-run"', 'mode = "paper"'), "mode"),
    ("toml-syntax", sim() + "\n[[hedges]\n", "cannot read configuration"),
    ("empty-assets", sim(assets="{}"), "hedges.0: assets"),
]


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HEDGEKEEPER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEDGEKEEPER_LOG__FORMAT", "console")


@pytest.mark.parametrize(("text", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_plan_and_run_agree(tmp_path: Path, text: str, names: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    state = tmp_path / "state"
    runner = CliRunner()
    verdicts = {}
    for command in ("check", "plan", "run"):
        live = ["--live"] if command == "run" and 'mode = "live"' in text else []
        result = runner.invoke(app, [command, "--config", str(config), "--state-dir", str(state),
                                     *live])  # fmt: skip
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        verdicts[command] = result.exit_code
        assert result.exit_code == 2, f"{command}: exit {result.exit_code}\n{output}"
        assert "Traceback" not in output, f"{command}: {output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), output
        assert names.lower() in output.lower(), f"{command} does not name {names!r}:\n{output}"
        assert SECRET not in output, f"{command} echoed a secret"
    assert set(verdicts.values()) == {2}

