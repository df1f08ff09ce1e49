"""Hedge (dual) position mode at the request level for BingX, MEXC and WEEX.

As ``test_ccxt_conformance`` does for Binance, OKX and Bybit: the venue reads the
account's position mode from the exchange (one request, never changed), then
opens and trims the short; the requests are compared with the ones ccxt's own
static tests recorded (``../shared/fixtures/ccxt/request``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgekeeper.exceptions import UnknownOutcomeError
from hedgekeeper.model import OrderRequest, Side
from hedgekeeper.venues.ccxt_venue import CcxtVenue
from tests.integration.test_ccxt_conformance import (
    CLIENT_ID,
    TRIM_ID,
    FakeHttp,
    Sent,
    assert_params,
    closing,
    fixture_request,
    make_venue,
    response_of,
)

__all__ = ["closing"]  # the fixture, re-exported for pytest

BTC = "BTC/USDT:USDT"


async def open_and_trim(venue: CcxtVenue, http: FakeHttp, amount: str) -> tuple[Sent, Sent]:
    """Send the opening sell and the reduce-only buy; both time out after sending."""
    for request in (
        OrderRequest(CLIENT_ID, BTC, Side.SELL, Decimal(amount)),
        OrderRequest(TRIM_ID, BTC, Side.BUY, Decimal(amount), reduce_only=True),
    ):
        with pytest.raises(UnknownOutcomeError):
            await venue.submit_order(request)
    return http.sent[-2], http.sent[-1]


@pytest.mark.parametrize(
    ("dual", "side", "flag"), [("true", "SHORT", None), ("false", "BOTH", "true")]
)
async def test_bingx_orders_follow_the_position_mode(
    dual: str, side: str, flag: str | None, closing: list[CcxtVenue]
) -> None:
    venue, http = make_venue("bingx", "bingx", hedge_mode=None)
    closing.append(venue)
    http.reply(
        "GET",
        "/openApi/swap/v1/positionSide/dual",
        {"code": 0, "msg": "", "timestamp": 1, "data": {"dualSidePosition": dual}},
    )

    opening, trim = await open_and_trim(venue, http, "0.002")

    assert [s.path for s in http.sent].count("/openApi/swap/v1/positionSide/dual") == 1
    assert_params(opening, {"side": "SELL", "positionSide": side}, ("reduceOnly",))
    if flag is None:
        # BingX refuses reduceOnly in hedge mode: a BUY on the SHORT side can only reduce.
        assert_params(trim, {"side": "BUY", "positionSide": side}, ("reduceOnly",))
    else:
        assert_params(trim, {"side": "BUY", "positionSide": side, "reduceOnly": flag}, ())
    recorded = fixture_request(
        "bingx",
        "createOrder",
        "Swap attach a stop loss market order to an existing short position",
    )
    assert trim.path == recorded.path
    assert recorded.params["positionSide"] == "SHORT" and recorded.params["side"] == "BUY"
    assert "reduceOnly" not in recorded.params


async def test_mexc_hedge_mode_keeps_the_position_codes(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("mexc", "mexc", hedge_mode=None)
    closing.append(venue)
    http.reply(
        "GET",
        "/api/v1/private/position/position_mode",
        {"success": True, "code": 0, "data": 1},  # 1: hedge (dual side)
    )

    opening, trim = await open_and_trim(venue, http, "20")

    assert [s.path for s in http.sent].count("/api/v1/private/position/position_mode") == 1
    # MEXC's side codes name the position in both modes: 3 open short, 2 close short.
    assert_params(opening, {"side": 3, "vol": 20.0}, ("reduceOnly", "positionSide"))
    assert_params(trim, {"side": 2, "vol": 20.0}, ("reduceOnly", "positionSide"))
    recorded_open = fixture_request("mexc", "createOrder", "Swap limit sell")
    recorded_trim = fixture_request(
        "mexc",
        "createOrder",
        "Swap limit buy reduceOnly non-hedged - side must be 2, reduceOnly absent from body",
    )
    assert (opening.path, trim.path) == (recorded_open.path, recorded_trim.path)
    assert (recorded_open.params["side"], recorded_trim.params["side"]) == (3, 2)


async def test_mexc_enforced_hedge_mode_request(closing: list[CcxtVenue]) -> None:
    venue, http = make_venue("mexc", "mexc", hedge_mode=True)
    closing.append(venue)
    http.reply("POST", "/api/v1/private/position/change_position_mode", {"success": True})

    await venue.setup_instrument(BTC, None, None)

    recorded = fixture_request("mexc", "setPositionMode", "set linear position mode to dual side")
    assert http.last().path == recorded.path
    assert_params(http.last(), {"positionMode": 1}, ())
    assert recorded.params["positionMode"] == 1


def weex_mode(separated: str) -> Any:
    reply = response_of("weex", "fetchPositionMode", "fetch position mode")
    reply[0].update(symbol="BTCUSDT", separatedType=separated)
    return reply


@pytest.mark.parametrize("separated", ["SEPARATED", "COMBINED"])
async def test_weex_orders_name_the_short_side_in_both_modes(
    separated: str, closing: list[CcxtVenue]
) -> None:
    venue, http = make_venue("weex", "weex", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/capi/v3/account/symbolConfig", weex_mode(separated))

    opening, trim = await open_and_trim(venue, http, "0.002")

    assert [s.path for s in http.sent].count("/capi/v3/account/symbolConfig") == 1
    assert_params(http.sent[0], {"symbol": "BTCUSDT"}, ())
    assert_params(opening, {"side": "SELL", "positionSide": "SHORT"}, ("reduceOnly",))
    # Reduce-only travels as the flag plus the side being closed, in both modes.
    assert_params(trim, {"side": "BUY", "positionSide": "SHORT", "reduceOnly": True}, ())
    recorded = fixture_request("weex", "fetchPositionMode", "fetch position mode")
    assert http.sent[0].path == recorded.path


async def test_weex_buy_without_the_flag_still_stays_on_the_short_side(
    closing: list[CcxtVenue],
) -> None:
    # ccxt alone would send positionSide=LONG for a plain buy: in hedge mode a long.
    venue, http = make_venue("weex", "weex", hedge_mode=None)
    closing.append(venue)
    http.reply("GET", "/capi/v3/account/symbolConfig", weex_mode("SEPARATED"))

    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(OrderRequest(CLIENT_ID, BTC, Side.BUY, Decimal("0.001")))

    assert_params(http.last(), {"side": "BUY", "positionSide": "SHORT"}, ("reduceOnly",))
