"""``backtest --fetch``: bars and funding through ccxt (against the local emulator), cached
on disk in the data layout, and not fetched again once cached."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from hedgekeeper.cli import app
from tests.backtest.helpers import HOUR_MS, btc_config
from tests.emulator import Emulator
from tests.emulator.binance_history import history_of

START_MS = 1_746_057_600_000  # 2025-05-01 00:00 UTC
BARS = 1200  # more than one page of klines (1000) on every series


async def test_fetch_reads_pages_through_ccxt_and_then_only_the_cache(tmp_path: Path) -> None:
    emu = Emulator("binance", prices={"BTC/USDT": 90000})
    await emu.start()
    try:
        history = history_of(emu)
        closes = [(START_MS + i * HOUR_MS, str(90000 + (i % 50) * 10)) for i in range(BARS)]
        history.klines[("spot", "BTCUSDT", "1h")] = closes
        history.klines[("perp", "BTCUSDT", "1h")] = [(t, str(float(c) + 15)) for t, c in closes]
        history.klines[("mark", "BTCUSDT", "1h")] = [(t, str(float(c) + 10)) for t, c in closes]
        history.funding["BTCUSDT"] = [(START_MS + k * 8 * HOUR_MS, "0.0001")
                                      for k in range(BARS // 8 + 2)]  # fmt: skip
        config = btc_config(tmp_path)
        cache = tmp_path / "cache"
        args = ["backtest", "-c", str(config), "--fetch", "--cache", str(cache), "--from",
                "2025-05-01", "--to", "2025-06-19T23:00", "--api-host", emu.base_url,
                "--json"]  # fmt: skip
        runner = CliRunner()

        # the command runs its own event loop: in a thread, while the emulator serves here
        first = await asyncio.to_thread(runner.invoke, app, args)
        assert first.exit_code == 0, first.output
        document = json.loads(first.stdout)
        assert document["bars"] == BARS  # 2025-05-01 00:00 .. 06-19 23:00, hourly
        spot = (cache / "binance_spot_BTCUSDT_1h.csv").read_text().splitlines()
        assert spot[0] == "timestamp_ms,open,high,low,close,volume" and len(spot) == BARS + 1
        assert spot[1].startswith(f"{START_MS},")
        paths = [r.path for r in emu.requests]
        assert paths.count("/api/v3/klines") == 2, "1200 bars: two pages of 1000"
        assert "/fapi/v1/markPriceKlines" in paths and "/fapi/v1/fundingRate" in paths
        (group,) = document["groups"]
        assert group["hedgekeeper"]["orders"] >= 1 and group["hedgekeeper"]["funding_usd"] > 0

        emu.requests.clear()
        again = await asyncio.to_thread(runner.invoke, app, args)
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["groups"] == document["groups"]
        assert not [r for r in emu.requests if "klines" in r.path.lower() or "funding" in r.path]
    finally:
        await emu.stop()


def test_fetch_needs_a_start(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["backtest", "-c", str(btc_config(tmp_path)), "--fetch"])
    assert done.exit_code == 2 and "--fetch needs --from" in done.output
