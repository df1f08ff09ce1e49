"""Helpers for the backtest tests: configurations and tiny CSV data directories."""

from __future__ import annotations

from pathlib import Path

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 // HOUR_MS * HOUR_MS  # 2023-11-14 22:00 UTC


def btc_config(tmp_path: Path, *, ratio: str = "0.5", extra: str = "") -> Path:
    """1 BTC hedged with 0.01 BTC perps on a backtest (sim) account."""
    path = tmp_path / "backtest.toml"
    path.write_text(f"""\
mode = "dry-run"
[execution]
max_orders_per_minute = 1000
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = {{ BTC = 70000 }}
balances = {{ BTC = 1.0 }}
contract_sizes = {{ BTC = 0.01 }}
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
spot_accounts = ["demo"]
instrument = "BTC/USDT:USDT"
hedge_account = "demo"
ratio = {ratio}
{extra}""")
    return path


def write_bars(directory: Path, kind: str, asset: str, rows: list[tuple[int, float]],
               interval: str = "1h") -> Path:  # fmt: skip
    """An OHLCV file of (open time ms, close) rows in the shared layout."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"binance_{kind}_{asset}USDT_{interval}.csv"
    lines = ["timestamp_ms,open,high,low,close,volume"]
    lines += [f"{at},{close},{close},{close},{close},1" for at, close in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_funding(directory: Path, asset: str, rows: list[tuple[int, str]]) -> Path:
    """A funding file of (settlement ms, rate) rows."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"binance_funding_{asset}USDT.csv"
    path.write_text("timestamp_ms,rate\n" + "".join(f"{at},{rate}\n" for at, rate in rows))
    return path
