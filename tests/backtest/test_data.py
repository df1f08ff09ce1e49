"""Reading and joining bars: timestamps, not row numbers; gaps held, then missing."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from hedgekeeper.backtest.data import join, load_funding, load_ohlcv
from hedgekeeper.exceptions import ConfigError
from tests.backtest.helpers import HOUR_MS, START_MS, write_bars, write_funding


def test_series_are_joined_by_timestamp_and_gaps_are_held_then_missing(tmp_path: Path) -> None:
    # spot lacks hours 2..5 (four bars): held for 2, then missing for 2, then back
    perp_rows = [(START_MS + i * HOUR_MS, 100.0 + i) for i in range(8)]
    spot_rows = [(START_MS + i * HOUR_MS, 200.0 + i) for i in (0, 1, 6, 7)]
    perp = load_ohlcv(write_bars(tmp_path, "perp", "BTC", perp_rows))
    spot = load_ohlcv(write_bars(tmp_path, "spot", "BTC", spot_rows))

    timeline = join({"perp:BTC": perp, "spot:BTC": spot}, HOUR_MS, max_hold=2)

    assert timeline.times == [at for at, _ in perp_rows]
    assert timeline.closes["spot:BTC"] == [D(200), D(201), D(201), D(201), None, None,
                                           D(206), D(207)]  # fmt: skip
    # the perp row at step 6 is the perp's own hour 6: never spot's row 2
    assert timeline.closes["perp:BTC"][6] == D(106)
    assert timeline.held == {"perp:BTC": 0, "spot:BTC": 2}
    assert timeline.missing == {"perp:BTC": 0, "spot:BTC": 2}


def test_a_window_keeps_only_bars_opening_inside_it(tmp_path: Path) -> None:
    rows = [(START_MS + i * HOUR_MS, 1.0 + i) for i in range(10)]
    series = load_ohlcv(write_bars(tmp_path, "perp", "BTC", rows),
                        START_MS + 2 * HOUR_MS, START_MS + 4 * HOUR_MS)  # fmt: skip
    assert series.times == [START_MS + i * HOUR_MS for i in (2, 3, 4)]


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "binance_perp_BTCUSDT_1h.csv"
    path.write_text("time,close\n1,2\n")
    with pytest.raises(ConfigError, match="header must start with timestamp_ms"):
        load_ohlcv(path)
    path.write_text("timestamp_ms,open,high,low,close,volume\n2,1,1,1,1,0\n1,1,1,1,1,0\n")
    with pytest.raises(ConfigError, match=r"BTCUSDT_1h.csv:3: timestamp_ms 1 is not after 2"):
        load_ohlcv(path)
    path.write_text("timestamp_ms,open,high,low,close,volume\n2,1,1,1,-5,0\n")
    with pytest.raises(ConfigError, match="close '-5' is not positive"):
        load_ohlcv(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_ohlcv(tmp_path / "absent.csv")


def test_funding_next_settlement_is_strictly_after(tmp_path: Path) -> None:
    series = load_funding(write_funding(tmp_path, "BTC", [(8, "0.0001"), (16, "-0.0002")]))
    assert series.next_after(7) == (8, D("0.0001"))
    assert series.next_after(8) == (16, D("-0.0002"))
    assert series.next_after(16) is None
