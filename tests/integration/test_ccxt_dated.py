"""Dated futures through the ccxt adapter, offline: the markets are loaded by their
real type, carry their expiry, and orders reach the endpoint of that type.

The exchange-info replies are the ones ccxt recorded for the perpetuals
(``../shared/fixtures/ccxt/markets``, the ``info`` of each market), with the
fields the exchanges use for a quarterly (Binance ``contractType`` and
``deliveryDate``; OKX ``instType`` FUTURES and ``expTime``).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgekeeper.exceptions import UnknownOutcomeError
from hedgekeeper.model import MarketKind, OrderRequest, Side
from hedgekeeper.settings import load_settings
from hedgekeeper.venues import market_types
from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.integration.test_ccxt_conformance import (
    CLIENT_ID,
    FakeHttp,
    assert_params,
    closing,
    fixture,
)

__all__ = ["closing"]  # the fixture, re-exported for pytest

DELIVERY_MS = 1798185600000  # 2026-12-25 08:00 UTC
LINEAR_DEC = "BTC/USDT:USDT-261225"
INVERSE_DEC = "BTC/USD:BTC-261225"

CONFIG = """\
mode = "dry-run"
[accounts.ex]
exchange = "binance"
[[hedges]]
name = "btc"
assets = {{ BTC = 1.0 }}
instrument = "{instrument}"
hedge_account = "ex"
ratio = 0.5
"""


def exchange_info(*symbols: dict[str, Any]) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": 1,
        "rateLimits": [],
        "exchangeFilters": [],
        "assets": [],
        "symbols": list(symbols),
    }


def quarterly(perp_symbol: str, symbol: str) -> dict[str, Any]:
    """A Binance quarterly: the recorded perpetual's entry, delivering in December 2026."""
    info = copy.deepcopy(fixture("markets", "binance")[perp_symbol]["info"])
    info.update(symbol=symbol, contractType="CURRENT_QUARTER", deliveryDate=str(DELIVERY_MS))
    return info


@pytest.mark.parametrize(
    ("instrument", "expected"),
    [
        (LINEAR_DEC, ("future", "linear", "spot")),
        (INVERSE_DEC, ("future", "inverse", "spot")),
        ("BTC/USDT:USDT-quarterly", ("future", "linear", "spot")),
        ("BTC/USDT:USDT", ("linear", "spot")),
    ],
)
def test_market_types_read_the_settle_coin_without_the_date(
    instrument: str, expected: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(instrument=instrument))

    assert market_types("ex", load_settings(path)) == expected


@pytest.mark.parametrize(
    ("kinds", "symbol", "perp", "raw_id", "paths", "kind", "contract_size"),
    [
        (
            ("future", "linear", "spot"),
            LINEAR_DEC,
            "BTC/USDT:USDT",
            "BTCUSDT_261225",
            ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo"],
            MarketKind.LINEAR,
            Decimal(1),
        ),
        (
            ("future", "inverse", "spot"),
            INVERSE_DEC,
            "BTC/USD:BTC",
            "BTCUSD_261225",
            ["/api/v3/exchangeInfo", "/dapi/v1/exchangeInfo"],
            MarketKind.INVERSE,
            Decimal(100),
        ),
    ],
)
async def test_binance_quarterlies_load_from_their_own_api(
    kinds: tuple[str, ...],
    symbol: str,
    perp: str,
    raw_id: str,
    paths: list[str],
    kind: MarketKind,
    contract_size: Decimal,
    closing: list[CcxtVenue],
) -> None:
    venue = CcxtVenue("b", "binance", api_key="k" * 8, secret="s" * 8, market_types=kinds,
                      hedge_mode=False)  # fmt: skip
    closing.append(venue)
    venue.exchange.enableRateLimit = False
    http = FakeHttp(venue.exchange)
    venue.transport = http
    perp_info = fixture("markets", "binance")[perp]["info"]
    contract_info = exchange_info(perp_info, quarterly(perp, raw_id))
    http.reply("GET", "/api/v3/exchangeInfo", exchange_info())
    http.reply("GET", "/fapi/v1/exchangeInfo", contract_info)
    http.reply("GET", "/dapi/v1/exchangeInfo", contract_info)

    specs = await venue.load_markets([symbol, perp])
    listed = await venue.list_contracts(perp)

    assert sorted(s.path for s in http.sent) == paths  # the right API, nothing else
    spec = specs[symbol]
    assert (spec.kind, spec.contract_size, spec.expiry) == (kind, contract_size, 1798185600.0)
    assert specs[perp].expiry is None
    assert list(listed) == [symbol]
    with pytest.raises(UnknownOutcomeError):  # Captured after sending
        await venue.submit_order(OrderRequest(CLIENT_ID, symbol, Side.SELL, Decimal(1)))
    api = "/fapi/v1/order" if kind is MarketKind.LINEAR else "/dapi/v1/order"
    assert http.last().path == api
    assert_params(http.last(), {"symbol": raw_id, "side": "SELL"}, ())


async def test_okx_futures_are_loaded_as_futures(closing: list[CcxtVenue]) -> None:
    venue = CcxtVenue("o", "okx", api_key="k" * 8, secret="s" * 8, password="p" * 8,
                      market_types=("future", "inverse", "spot"), hedge_mode=False)  # fmt: skip
    closing.append(venue)
    venue.exchange.enableRateLimit = False
    http = FakeHttp(venue.exchange)
    venue.transport = http
    swap = copy.deepcopy(fixture("markets", "okx")["BTC/USD:BTC"]["info"])
    future = dict(swap, instId="BTC-USD-261225", instType="FUTURES", expTime=str(DELIVERY_MS),
                  alias="quarter")  # fmt: skip
    replies = {"SPOT": [], "SWAP": [swap], "FUTURES": [future]}
    asked: list[str] = []

    async def record(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        # OKX's instruments endpoint is one path for every type: answer by the query.
        asked.append(url)
        for inst_type, data in replies.items():
            if f"instType={inst_type}" in url:
                return {"code": "0", "msg": "", "data": data}
        return await http(url, method, headers, body)

    venue.transport = record

    specs = await venue.load_markets([INVERSE_DEC, "BTC/USD:BTC"])

    assert sorted(u.split("instType=")[1].split("&")[0] for u in asked) == [
        "FUTURES",
        "SPOT",
        "SWAP",
    ]
    spec = specs[INVERSE_DEC]
    assert (spec.kind, spec.contract_size, spec.expiry) == (
        MarketKind.INVERSE,
        Decimal(100),
        1798185600.0,
    )
