"""Run the emulator as a process: ``python -m tests.emulator --dialect binance ...``.

It prints one line ``READY <base_url>`` on stdout once it listens (tests read it
to learn the port when ``--port 0``), then serves until SIGTERM or SIGINT.

Example::

    python -m tests.emulator --dialect binance --port 8443 --key K --secret S \\
        --price BTC/USDT=70000 --price ETH/USDT=3500 --balance K:BTC=1 --futures-wallet K=1000

With ``--tls CA_PATH`` it serves HTTPS with a fresh test certificate for the
venues' demo/testnet hostnames and 127.0.0.1, and writes the CA to ``CA_PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from tests.emulator.server import Emulator

__all__ = ["main"]


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--{what} expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        out.append((name, value))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dialect", choices=["binance", "bybit"], default="binance")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", action="append", default=[], help="API key (repeatable)")
    parser.add_argument(
        "--secret", action="append", default=[], help="secret for the --key at the same position"
    )
    parser.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE")
    parser.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="KEY:ASSET=AMOUNT",
        help="spot balance (Bybit: unified wallet)",
    )
    parser.add_argument("--futures-wallet", action="append", default=[], metavar="KEY=AMOUNT")
    parser.add_argument("--spread-bps", default="2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock-offset-ms", type=int, default=0)
    parser.add_argument("--tls", metavar="CA_PATH", help="serve HTTPS; write the test CA here")
    args = parser.parse_args(argv)
    if len(args.key) != len(args.secret):
        parser.error("give one --secret per --key")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the emulator only listens on loopback")
    return args


async def serve(args: argparse.Namespace) -> None:
    """Start, announce, and wait for a termination signal."""
    ssl_context = None
    if args.tls:
        from tests.emulator.tls import TestPKI

        pki = TestPKI()
        pki.write_ca(args.tls)
        ssl_context = pki.server_context()
    emulator = Emulator(
        args.dialect,
        dict(zip(args.key, args.secret, strict=True)),
        prices=dict(_pairs(args.price, "price")),
        host=args.host,
        port=args.port,
        ssl_context=ssl_context,
        seed=args.seed,
        spread_bps=args.spread_bps,
    )
    emulator.clock_offset_ms = args.clock_offset_ms
    for target, amount in _pairs(args.balance, "balance"):
        key, asset = target.split(":", 1)
        emulator.set_balance(key, asset, amount)
    for key, amount in _pairs(args.futures_wallet, "futures-wallet"):
        emulator.set_futures_wallet(key, amount)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await emulator.start()
    print(f"READY {emulator.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
