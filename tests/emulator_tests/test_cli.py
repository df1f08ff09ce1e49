"""``python -m tests.emulator`` as a subprocess: announce, serve, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt

from tests.emulator.tls import loopback_session, venue_hostnames
from tests.emulator_tests.helpers import point_at

REPO = Path(__file__).resolve().parents[2]


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.emulator",
        "--port",
        "0",
        "--key",
        "K",
        "--secret",
        "S",
        "--price",
        "BTC/USDT=70000",
        "--price",
        "ETH/USDT=3500",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
    assert line.startswith("READY "), line
    return process, line.split()[1]


async def _terminate(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout=10)


def _client(dialect: str, **config: Any) -> Any:
    client = getattr(ccxt, dialect)(
        {
            "apiKey": "K",
            "secret": "S",
            "enableRateLimit": False,
            "options": {"defaultType": "swap", "fetchMarkets": {"types": ["spot", "linear"]}},
            **config,
        }
    )
    client.has["fetchCurrencies"] = False
    client.timeout_on_exit = 0
    return client


async def test_cli_serves_until_sigterm() -> None:
    process, base_url = await _spawn(
        "--dialect", "binance", "--futures-wallet", "K=1234", "--balance", "K:BTC=0.5"
    )
    client = _client("binance")
    try:
        assert base_url.startswith("http://127.0.0.1:")
        point_at(client, base_url)
        assert (await client.fetch_balance())["USDT"]["total"] == 1234
        assert (await client.fetch_balance({"type": "spot"}))["BTC"]["free"] == 0.5
    finally:
        await client.close()
        code = await _terminate(process)
    assert code == 0


async def test_cli_tls_with_real_hostnames(tmp_path: Path) -> None:
    ca_path = tmp_path / "ca.pem"
    process, base_url = await _spawn(
        "--dialect", "bybit", "--tls", str(ca_path), "--balance", "K:USDT=500"
    )
    port = int(base_url.rsplit(":", 1)[1])
    session = loopback_session(ca_path, {h: port for h in venue_hostnames("bybit")})
    client = _client("bybit", session=session)
    client.set_sandbox_mode(True)
    try:
        assert base_url.startswith("https://")
        assert (await client.fetch_balance())["USDT"]["total"] == 500
    finally:
        await client.close()
        await session.close()
        code = await _terminate(process)
    assert code == 0
