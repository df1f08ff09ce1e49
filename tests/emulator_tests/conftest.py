"""Fixtures: one emulator per dialect per test, plus ccxt clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.emulator import Emulator
from tests.emulator.tls import TestPKI
from tests.emulator_tests.helpers import KEY, PRICES, make_client


async def _started(dialect: str, **kwargs: Any) -> Emulator:
    emu = Emulator(dialect, {KEY: "test-secret-1"}, prices=PRICES, **kwargs)
    await emu.start()
    emu.set_balance(KEY, "BTC", "2")
    emu.set_balance(KEY, "USDT", "10000")
    emu.set_futures_wallet(KEY, "10000")
    return emu


@pytest.fixture
async def binance() -> AsyncIterator[Emulator]:
    """A Binance emulator with a funded account (spot BTC 2 / USDT 10k, futures 10k)."""
    emu = await _started("binance")
    yield emu
    await emu.stop()


@pytest.fixture
async def bybit() -> AsyncIterator[Emulator]:
    """A Bybit emulator with a funded unified account (BTC 2, USDT 10k)."""
    emu = await _started("bybit")
    yield emu
    await emu.stop()


@pytest.fixture(params=["binance", "bybit"])
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """Each dialect in turn, funded like ``binance`` / ``bybit``."""
    emulator = await _started(request.param)
    yield emulator
    await emulator.stop()


@pytest.fixture
async def bn(binance: Emulator) -> AsyncIterator[Any]:
    """ccxt ``binance`` with ``defaultType=swap`` on the loopback URL."""
    client = make_client(binance)
    yield client
    await client.close()


@pytest.fixture
async def bn_spot(binance: Emulator) -> AsyncIterator[Any]:
    """ccxt ``binance`` with ``defaultType=spot``."""
    client = make_client(binance, default_type="spot")
    yield client
    await client.close()


@pytest.fixture
async def by(bybit: Emulator) -> AsyncIterator[Any]:
    """ccxt ``bybit`` with ``defaultType=swap`` on the loopback URL."""
    client = make_client(bybit)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """One test CA for the session (certificate for all demo/testnet hostnames)."""
    return TestPKI()
