"""WEEX through the ccxt adapter, offline, from the replies ccxt recorded.

The request conformance of the four order calls is in ``test_ccxt_conformance``
(the ``weex`` case); this file covers what is peculiar to WEEX: sizes in the base
coin while ccxt's ``contractSize`` is the venue's contract value, look-up by
client id through the open orders and the history, book-ticker quotes, no
post-only orders and no test environment.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgekeeper.exceptions import RetryableReadError, VenueConfigError
from hedgekeeper.model import MarketKind, OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.integration.test_ccxt_conformance import (
    CLIENT_ID,
    assert_params,
    closing,
    fixture,
    make_venue,
    response_of,
)

__all__ = ["closing"]  # the fixture, re-exported for pytest

ETH = "ETH/USDT:USDT"


def weex_position(side: str, size: str) -> list[dict[str, Any]]:
    """The recorded WEEX position reply, on the given side and size."""
    reply = response_of("weex", "fetchPositions", "default")
    reply[0].update(side=side, size=size)
    return list(reply)


async def test_market_specs_count_the_base_coin(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    recorded = fixture("markets", "weex")[ETH]

    specs = await venue.load_markets([ETH, "DOGE/USDT:USDT", "ETH/USDT"])

    assert recorded["contractSize"] == 0.001  # ccxt: the venue's contract value
    eth = specs[ETH]
    # One of our contracts is 1 ETH, because WEEX orders and positions count ETH.
    assert (eth.kind, eth.contract_size, eth.amount_step) == (
        MarketKind.LINEAR,
        Decimal(1),
        Decimal("0.001"),
    )
    assert specs["DOGE/USDT:USDT"].contract_size == Decimal(1)
    assert specs["DOGE/USDT:USDT"].amount_step == Decimal(100)
    assert specs["ETH/USDT"].kind is MarketKind.SPOT
    assert http.sent == []


async def test_recorded_position_gives_signed_base_coin_contracts(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    http.reply("GET", "/capi/v3/account/position/allPosition", weex_position("SHORT", "0.036"))
    specs = await venue.load_markets([ETH])

    positions = await venue.fetch_positions([ETH, "BTC/USDT:USDT"])

    eth = positions[ETH]
    assert eth.contracts == Decimal("-0.036")  # not -36 contracts of 0.001, not -0.000036
    # Valued with our spec, the short is the recorded notional (0.036 ETH x 2279.56).
    exposure = eth.contracts * specs[ETH].contract_value_usd(Decimal("2279.56"))
    assert exposure == Decimal("-82.06416")
    assert eth.entry_price == Decimal("2279.56")
    assert eth.liquidation_price == Decimal("2019.83")
    assert positions["BTC/USDT:USDT"].contracts == 0
    assert venue.request_count == 1
    assert "subType" not in http.last().params  # WEEX would forward it to the venue


async def test_recorded_position_as_recorded_is_long(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    http.reply(
        "GET",
        "/capi/v3/account/position/allPosition",
        response_of("weex", "fetchPositions", "default"),
    )

    positions = await venue.fetch_positions([ETH])

    assert positions[ETH].contracts == Decimal("0.036")


async def test_an_unreadable_position_size_is_a_failed_read(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    reply = weex_position("SHORT", "0.036")
    del reply[0]["size"]
    http.reply("GET", "/capi/v3/account/position/allPosition", reply)

    with pytest.raises(RetryableReadError):
        await venue.fetch_positions([ETH])


async def test_balances_from_the_recorded_spot_reply(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    http.reply("GET", "/api/v3/account/", response_of("weex", "fetchBalance", "fetch spot balance"))

    balances = await venue.fetch_balances()

    assert balances == {"USDT": Decimal(20)}
    assert http.last().url.startswith("https://api-spot.weex.com/api/v3/account/")


async def test_lookup_by_client_id_scans_open_orders_then_history(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    working = response_of("weex", "fetchOpenOrders", "fetch open swap orders")
    history = response_of(
        "weex", "fetchCanceledAndClosedOrders", "fetch canceled and closed swap orders"
    )
    for entries in (working, history):
        for entry in entries:
            entry["symbol"] = "DOGEUSDT"
    history[0].update(clientOrderId=CLIENT_ID, side="SELL", positionSide="SHORT")
    http.reply("GET", "/capi/v3/openOrders", working)
    http.reply("GET", "/capi/v3/order/history", history)

    found = await venue.fetch_order("DOGE/USDT:USDT", CLIENT_ID)
    missing = await venue.fetch_order("DOGE/USDT:USDT", "hkT1g1s999999")

    assert found is not None and found.status is OrderStatus.FILLED
    assert (found.side, found.amount, found.filled) == (Side.SELL, Decimal(100), Decimal(100))
    assert found.average_price == Decimal("0.09213")
    assert missing is None  # neither working nor in the history: never placed
    assert [s.path for s in http.sent] == [
        "/capi/v3/openOrders",
        "/capi/v3/order/history",
    ] * 2
    assert_params(http.sent[0], {"symbol": "DOGEUSDT"}, ())


async def test_a_working_order_is_found_without_reading_the_history(
    closing: list[CcxtVenue],
) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    working = response_of("weex", "fetchOpenOrders", "fetch open swap orders")
    working[0]["clientOrderId"] = CLIENT_ID
    http.reply("GET", "/capi/v3/openOrders", working)

    found = await venue.fetch_order("DOGE/USDT:USDT", CLIENT_ID)

    assert found is not None and found.status is OrderStatus.OPEN
    assert found.amount == Decimal(1400) and found.price == Decimal("0.05")
    assert venue.request_count == 1


async def test_quotes_from_book_ticker_and_premium_index(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    marks = response_of("weex", "fetchMarkPrices", "fetch mark prices")
    books = response_of("weex", "fetchBidsAsks", "fetch swap bids asks")
    http.reply("GET", "/capi/v3/market/premiumIndex", marks)
    http.reply("GET", "/capi/v3/market/ticker/bookTicker", books)

    quotes = await venue.fetch_quotes([ETH])

    quote = quotes[ETH]
    assert (quote.bid, quote.ask) == (Decimal("1921.65"), Decimal("1921.66"))
    assert (quote.mark, quote.index) == (Decimal("1927.53"), Decimal("1927.9325"))
    assert quote.funding_rate == Decimal("0.00004879")
    assert quote.next_funding_at == 1786348800.0
    assert venue.request_count == 2


async def test_post_only_is_refused_before_any_request(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex")
    closing.append(venue)
    request = OrderRequest(
        CLIENT_ID, ETH, Side.SELL, Decimal("0.01"), OrderType.LIMIT, Decimal(2000), post_only=True
    )

    with pytest.raises(VenueConfigError, match="no post-only orders"):
        await venue.submit_order(request)

    assert http.sent == []


@pytest.mark.parametrize("environment", ["testnet", "demo"])
def test_test_environments_are_refused_clearly(environment: Any) -> None:
    with pytest.raises(VenueConfigError, match=r"weex has no usable .*WEEX demo mode.*dry-run"):
        CcxtVenue("w", "weex", environment=environment)


async def test_position_mode_is_set_with_the_margin_mode(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("weex", "weex", hedge_mode=True)
    closing.append(venue)
    http.reply("POST", "/capi/v3/account/marginType", {"code": "200", "msg": "success"})

    with pytest.raises(VenueConfigError, match="margin_mode"):
        await venue.setup_instrument(ETH, None, None)
    await venue.setup_instrument(ETH, None, "cross")

    assert (http.sent[0].method, http.sent[0].path) == ("POST", "/capi/v3/account/marginType")
    assert_params(
        http.sent[0],
        {"symbol": "ETHUSDT", "marginType": "CROSSED", "separatedType": "SEPARATED"},
        (),
    )
