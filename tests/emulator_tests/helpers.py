"""Helpers for emulator tests: ccxt clients pointed at the emulator, polling waits."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import ccxt.async_support as ccxt

from tests.emulator import Emulator

__all__ = [
    "KEY",
    "PRICES",
    "SECRET",
    "SHARED_FIXTURES",
    "eventually",
    "make_client",
    "point_at",
]

KEY = "test-key-1"
SECRET = "test-secret-1"
PRICES = {"BTC/USDT": "70000", "ETH/USDT": "3500"}
#: ``../shared`` beside the repository (never copied into it).
SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ccxt"

T = TypeVar("T")


def point_at(exchange: Any, base_url: str) -> None:
    """Replace scheme and host of every ``urls['api']`` entry, keeping the paths."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and "://" in url:
            rest = url.split("://", 1)[1]
            path = rest[rest.find("/") :] if "/" in rest else ""
            exchange.urls["api"][name] = base_url + path


def make_client(
    emu: Emulator,
    *,
    api_key: str = KEY,
    secret: str = SECRET,
    default_type: str = "swap",
    timeout_ms: int = 5000,
    loopback: bool = True,
    exchange_id: str | None = None,
    **options: Any,
) -> Any:
    """A real ccxt async client for the emulator's dialect (rate limiter off).

    ``exchange_id`` picks another ccxt class for the dialect, e.g. ``binanceusdm``.
    """
    cls = getattr(ccxt, exchange_id or emu.dialect_name)
    exchange = cls(
        {
            "apiKey": api_key,
            "secret": secret,
            "timeout": timeout_ms,
            "enableRateLimit": False,
            "options": {
                "defaultType": default_type,
                "fetchMarkets": {"types": ["spot", "linear"]},
                **options,
            },
        }
    )
    exchange.has["fetchCurrencies"] = False  # the daemon's setting: no private currency call
    exchange.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() otherwise
    if loopback:
        point_at(exchange, emu.base_url)
    return exchange


async def eventually(
    predicate: Callable[[], T | Awaitable[T]], within: float = 5.0, interval: float = 0.01
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
