"""The baseline: the simplest hedge loop a user could write with ccxt.

Every ``--poll`` seconds: read the spot balance, the perpetual's position and one
ticker; if the short is more than ``--tolerance`` away from ``--ratio`` of the spot
holding, send one market order for the difference. No journal, no guards, no
reconciliation: what hedgekeeper's figures are compared with (``bench/all.py``).

Runnable on its own against any Binance-dialect host (the emulator in the benches)::

    .venv/bin/python bench/simple_loop.py --url http://127.0.0.1:PORT --key K --secret S

It prints ``decided`` after its first cycle (start-up timing) and then runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

# bench/requests.py is named like the ``requests`` package that ccxt imports: take this
# folder off the path so that the import finds the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

PERP, SPOT, ASSET = "BTC/USDT:USDT", "BTC/USDT", "BTC"


def make_exchange(url: str, key: str, secret: str, rate_limit: bool = True) -> Any:
    """A ccxt Binance pointed at ``url`` (every API host replaced, as the daemon does)."""
    import ccxt.async_support as ccxt

    options = {"fetchMarkets": {"types": ["spot", "linear"]}, "fetchCurrencies": False,
               "fetchMargins": False}  # fmt: skip
    exchange = ccxt.binance(
        {"apiKey": key, "secret": secret, "enableRateLimit": rate_limit, "options": options}
    )
    exchange.has["fetchCurrencies"] = False
    exchange.enable_demo_trading(True)

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            scheme_end = value.find("://")
            path = value.find("/", scheme_end + 3)
            return url + (value[path:] if path > 0 else "")
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    exchange.urls["api"] = swap(exchange.urls["api"])
    return exchange


async def cycle(exchange: Any, ratio: float = 0.5, tolerance: float = 0.02) -> bool:
    """One read-decide-order cycle; True when it sent an order."""
    balance = await exchange.fetch_balance({"type": "spot"})
    positions = await exchange.fetch_positions([PERP])
    ticker = await exchange.fetch_ticker(PERP)
    held = float(balance.get("total", {}).get(ASSET) or 0)
    short = -sum(float(p.get("contracts") or 0) * (1 if p.get("side") == "long" else -1)
                 for p in positions if p.get("symbol") == PERP)  # fmt: skip
    target = held * ratio
    if ticker.get("last") and abs(target - short) > tolerance * max(target, 1e-12):
        amount = float(exchange.amount_to_precision(PERP, abs(target - short)))
        if amount > 0:
            side = "sell" if target > short else "buy"
            await exchange.create_order(PERP, "market", side, amount)
            return True
    return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    exchange = make_exchange(args.url, args.key, args.secret)
    try:
        await exchange.load_markets()
        first = True
        while True:
            began = time.monotonic()
            await cycle(exchange)
            if first:
                print("decided", flush=True)
                first = False
            await asyncio.sleep(max(0.0, args.poll - (time.monotonic() - began)))
    finally:
        await exchange.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
