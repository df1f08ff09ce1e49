"""Funding fees: settlement in the emulator, read back through the real ccxt clients.

Binance ``GET /fapi/v1/income`` and Bybit ``GET /v5/execution/list`` as ccxt's
``fetch_funding_history`` (and Bybit ``fetch_my_trades``) call them. The sign
facts pinned here: ccxt's ``amount`` is Binance ``income`` (the balance change,
negative = paid) but Bybit ``execFee`` (positive = paid).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.emulator import Emulator, FundingPayment
from tests.emulator_tests.helpers import PRICES, SHARED_FIXTURES, make_client
from tests.emulator_tests.test_shapes import assert_same_shape, recorded

BTC_PERP = "BTC/USDT:USDT"
SHORT, LONG = "short-key", "long-key"
SECRETS = {SHORT: "short-secret", LONG: "long-secret"}
HOUR = 3_600_000
DAY = 24 * HOUR
EIGHT_HOURS = 8 * HOUR
D = Decimal

needs_fixtures = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(),
    reason=f"ccxt fixtures not found at {SHARED_FIXTURES} (../shared beside the repository)",
)


class Venue:
    """An emulator with a short and a long account, and a ccxt client for each."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.clients = {k: make_client(emu, api_key=k, secret=s) for k, s in SECRETS.items()}

    @property
    def bybit(self) -> bool:
        """Whether this is the Bybit dialect."""
        return self.emu.dialect_name == "bybit"

    def ccxt_amount(self, payment: FundingPayment) -> float:
        """What ccxt reports as ``amount``: the wallet change on Binance, the fee on Bybit."""
        return float(payment.fee if self.bybit else payment.amount)

    def ccxt_id(self, payment: FundingPayment) -> str:
        """What ccxt reports as ``id``: Binance ``tranId``, Bybit ``execId``."""
        return payment.exec_id if self.bybit else str(payment.payment_id)

    async def close(self) -> None:
        """Close every client."""
        for client in self.clients.values():
            await client.close()


@asynccontextmanager
async def _venue(dialect: str) -> AsyncIterator[Venue]:
    """A started emulator of one dialect, both accounts with 10k USDT of futures margin."""
    emu = Emulator(dialect, SECRETS, prices=PRICES)
    await emu.start()
    venue = Venue(emu)
    try:
        for key in SECRETS:
            emu.set_futures_wallet(key, "10000")
        yield venue
    finally:
        await venue.close()
        await emu.stop()


@pytest.fixture(params=["binance", "bybit"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    """Each dialect in turn."""
    async with _venue(request.param) as v:
        yield v


@pytest.fixture
async def binance_venue() -> AsyncIterator[Venue]:
    """The Binance dialect only."""
    async with _venue("binance") as v:
        yield v


@pytest.fixture
async def bybit_venue() -> AsyncIterator[Venue]:
    """The Bybit dialect only."""
    async with _venue("bybit") as v:
        yield v


async def test_settle_and_fetch_funding_history(venue: Venue) -> None:
    emu, short, long = venue.emu, venue.clients[SHORT], venue.clients[LONG]
    await short.create_order(BTC_PERP, "market", "sell", 0.01)
    await long.create_order(BTC_PERP, "market", "buy", 0.01)
    before = {k: emu.futures_wallet(k) for k in SECRETS}
    now = emu.now_ms()
    t1, t2 = now - 2 * EIGHT_HOURS, now - EIGHT_HOURS
    first = emu.settle_funding(BTC_PERP, "0.0001", at_ms=t1)
    second = emu.settle_funding(BTC_PERP, "-0.0003", at_ms=t2)

    # 0.01 BTC at the 70000 mark: 0.07 USDT at 0.01 %, 0.21 at -0.03 %.
    booked = {(p.api_key, p.time_ms): p for p in first + second}
    assert {k: p.amount for k, p in booked.items()} == {
        (SHORT, t1): D("0.07"),  # a short receives a positive rate
        (LONG, t1): D("-0.07"),  # a long pays it
        (SHORT, t2): D("-0.21"),
        (LONG, t2): D("0.21"),
    }
    assert all(p.mark_price == 70000 and p.position_side == "BOTH" for p in booked.values())
    assert booked[(SHORT, t1)].qty == D("-0.01") and booked[(LONG, t1)].qty == D("0.01")
    for key in SECRETS:
        payments = emu.funding_payments(key)
        assert [p.time_ms for p in payments] == [t1, t2]
        assert emu.futures_wallet(key) - before[key] == sum(p.amount for p in payments)

    all_ids: list[str] = []
    for key, client in venue.clients.items():
        payments = emu.funding_payments(key, BTC_PERP)
        history = await client.fetch_funding_history(BTC_PERP, now - DAY)
        assert [h["timestamp"] for h in history] == [t1, t2]
        assert [h["amount"] for h in history] == [venue.ccxt_amount(p) for p in payments]
        assert [h["id"] for h in history] == [venue.ccxt_id(p) for p in payments]
        assert all(h["symbol"] == BTC_PERP and h["code"] == "USDT" for h in history)
        again = await client.fetch_funding_history(BTC_PERP, now - DAY)
        assert [h["id"] for h in again] == [h["id"] for h in history]  # stable
        later = await client.fetch_funding_history(BTC_PERP, t1 + 1)
        assert [h["id"] for h in later] == [history[1]["id"]]
        all_ids += [h["id"] for h in history]
    assert len(set(all_ids)) == 4

    rate = await short.fetch_funding_rate(BTC_PERP)
    assert rate["fundingRate"] == -0.0003
    assert emu.funding_rate(BTC_PERP) == D("-0.0003")
    if venue.bybit:
        reply = await short.publicGetV5MarketTickers({"category": "linear", "symbol": "BTCUSDT"})
        raw, served_at = reply["result"]["list"][0], reply["time"]
        assert raw["fundingRate"] == "-0.0003"
    else:
        raw = await short.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT"})
        served_at = raw["time"]
        assert raw["lastFundingRate"] == "-0.00030000"
    # nextFundingTime stays the next 8-hour boundary after the server's now.
    next_funding = int(raw["nextFundingTime"])
    assert next_funding % EIGHT_HOURS == 0 and 0 < next_funding - served_at <= EIGHT_HOURS


async def test_ccxt_funding_amount_signs_disagree(venue: Venue) -> None:
    """ccxt ``amount`` is Binance ``income`` (< 0 = paid) but Bybit ``execFee`` (> 0 = paid)."""
    emu = venue.emu
    emu.set_position(LONG, BTC_PERP, "0.5")
    [paid] = emu.settle_funding(BTC_PERP, "0.0001")  # the long pays 3.5 USDT
    assert paid.amount == D("-3.5") and paid.fee == D("3.5")
    [entry] = await venue.clients[LONG].fetch_funding_history(BTC_PERP)
    if venue.bybit:
        assert entry["amount"] == 3.5  # paid, yet positive
        assert entry["info"]["execFee"] == "3.5" and entry["info"]["side"] == "Buy"
        assert entry["rate"] == 0.0001
    else:
        assert entry["amount"] == -3.5
        assert entry["info"]["income"] == "-3.50000000"
        assert "rate" not in entry  # ccxt's Binance parser has no rate
    assert emu.futures_wallet(LONG) == D("9996.5")


async def test_hedge_mode_sides_settle_separately(venue: Venue) -> None:
    emu = venue.emu
    emu.set_hedge_mode(LONG, True)
    emu.set_position(LONG, BTC_PERP, "0.03", position_side="LONG")
    emu.set_position(LONG, BTC_PERP, "-0.01", position_side="SHORT")
    emu.set_position(SHORT, "ETH/USDT:USDT", "-1")  # another perpetual: not settled
    payments = emu.settle_funding(BTC_PERP, "0.0002")
    assert {(p.position_side, p.amount) for p in payments} == {
        ("LONG", D("-0.42")),
        ("SHORT", D("0.14")),
    }
    assert emu.funding_payments(SHORT) == []
    assert emu.futures_wallet(LONG) == D("9999.72")
    history = await venue.clients[LONG].fetch_funding_history(BTC_PERP)
    assert sorted(h["amount"] for h in history) == sorted(venue.ccxt_amount(p) for p in payments)
    if venue.bybit:
        raw = await venue.clients[LONG].privateGetV5ExecutionList(
            {"category": "linear", "execType": "Funding"}
        )
        sides = {(e["side"], e["execQty"]) for e in raw["result"]["list"]}
        assert sides == {("Buy", "0.030"), ("Sell", "0.010")}
    with pytest.raises(ValueError):
        emu.settle_funding("BTC/USDT", "0.0001")  # spot has no funding
    with pytest.raises(KeyError):
        emu.settle_funding("DOGE/USDT:USDT", "0.0001")


async def test_default_lookback_is_seven_days(venue: Venue) -> None:
    emu = venue.emu
    emu.set_position(SHORT, BTC_PERP, "-0.01")
    now = emu.now_ms()
    old = emu.settle_funding(BTC_PERP, "0.0001", at_ms=now - 8 * DAY)[0]
    recent = emu.settle_funding(BTC_PERP, "0.0001", at_ms=now - DAY)[0]
    client = venue.clients[SHORT]
    history = await client.fetch_funding_history(BTC_PERP)
    assert [h["id"] for h in history] == [venue.ccxt_id(recent)]
    if venue.bybit:
        # startTime alone opens a 7-day window from it: the recent payment is outside.
        from_old = await client.fetch_funding_history(BTC_PERP, now - 9 * DAY)
        assert [h["id"] for h in from_old] == [venue.ccxt_id(old)]
    else:
        # Binance: startTime alone reaches up to now.
        from_old = await client.fetch_funding_history(BTC_PERP, now - 9 * DAY)
        assert [h["id"] for h in from_old] == [venue.ccxt_id(old), venue.ccxt_id(recent)]
    until = await client.fetch_funding_history(
        BTC_PERP, now - 9 * DAY, None, {"until": now - 7 * DAY}
    )
    assert [h["id"] for h in until] == [venue.ccxt_id(old)]


async def test_bybit_window_over_seven_days_is_rejected(bybit_venue: Venue) -> None:
    emu, client = bybit_venue.emu, bybit_venue.clients[SHORT]
    now = emu.now_ms()
    with pytest.raises(ccxt.BadRequest):  # retCode 10001
        await client.fetch_funding_history(BTC_PERP, now - 8 * DAY, None, {"until": now})
    assert emu.requests[-1].error_code == "10001"
    with pytest.raises(ccxt.BadRequest):  # endTime before startTime
        await client.fetch_funding_history(BTC_PERP, now, None, {"until": now - DAY})
    with pytest.raises(ccxt.BadRequest):  # limit 1..100
        await client.fetch_funding_history(BTC_PERP, None, None, {"limit": 101})
    exactly_seven = await client.fetch_funding_history(
        BTC_PERP, now - 7 * DAY, None, {"until": now}
    )
    assert exactly_seven == []


async def test_binance_limit_page_and_income_type(binance_venue: Venue) -> None:
    emu, client = binance_venue.emu, binance_venue.clients[LONG]
    emu.set_position(LONG, BTC_PERP, "0.01")
    now = emu.now_ms()
    payments = [
        emu.settle_funding(BTC_PERP, "0.0001", at_ms=now - (5 - i) * EIGHT_HOURS)[0]
        for i in range(5)
    ]
    ids = [str(p.payment_id) for p in payments]
    since = now - DAY * 2
    first_two = await client.fetch_funding_history(BTC_PERP, since, 2)
    assert [h["id"] for h in first_two] == ids[:2]  # limit cuts from the oldest
    assert emu.requests[-1].params["limit"] == "2"
    page_two = await client.fetch_funding_history(BTC_PERP, since, 2, {"page": 2})
    assert [h["id"] for h in page_two] == ids[2:4]
    raw = await client.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
    assert [str(r["tranId"]) for r in raw] == ids  # ascending; the last 7 days by default
    assert isinstance(raw[0]["tranId"], int) and isinstance(raw[0]["time"], int)
    assert await client.fapiPrivateGetIncome({"incomeType": "COMMISSION"}) == []
    assert len(await client.fapiPrivateGetIncome({})) == 5  # no incomeType: every kind
    with pytest.raises(ccxt.BadRequest):  # -1130
        await client.fetch_funding_history(BTC_PERP, since, 1001)
    assert emu.requests[-1].error_code == "-1130"
    with pytest.raises(ccxt.BadSymbol):
        await client.fapiPrivateGetIncome({"symbol": "NOPEUSDT"})


async def test_bybit_cursor_pagination(bybit_venue: Venue) -> None:
    emu, client = bybit_venue.emu, bybit_venue.clients[SHORT]
    emu.set_position(SHORT, BTC_PERP, "-0.01")
    now = emu.now_ms()
    payments = [
        emu.settle_funding(BTC_PERP, "0.0001", at_ms=now - (60 - i) * HOUR)[0] for i in range(60)
    ]
    ids = [p.exec_id for p in payments]
    since = now - 3 * DAY

    # ccxt sends ``size`` (ignored by Bybit v5), never ``limit``: one default page of 50.
    page = await client.fetch_funding_history(BTC_PERP, since)
    last = emu.requests[-1].params
    assert "limit" not in last and last["size"] == "100"
    assert [h["id"] for h in page] == ids[10:]  # the newest 50, ascending after ccxt
    two = await client.fetch_funding_history(BTC_PERP, since, 2)
    assert [h["id"] for h in two] == ids[10:12]  # trimmed by ccxt from the page's oldest

    # Manual cursor: ccxt puts nextPageCursor into the newest entry's info.
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 25}
        if cursor:
            params["cursor"] = cursor
        chunk = await client.fetch_funding_history(BTC_PERP, since, None, params)
        seen = [h["id"] for h in chunk] + seen
        cursor = chunk[-1]["info"].get("nextPageCursor")
        if not cursor:
            break
    assert seen == ids
    raw = await client.privateGetV5ExecutionList(
        {"category": "linear", "execType": "Funding", "limit": 60}
    )
    assert raw["result"]["nextPageCursor"] == ""
    assert [e["execId"] for e in raw["result"]["list"]] == ids[::-1]  # newest first

    # ccxt's own cursor pagination (needs ``since``) returns every entry, newest first.
    emu.clear_requests()
    everything = await client.fetch_funding_history(BTC_PERP, since, None, {"paginate": True})
    assert [h["id"] for h in everything] == ids[::-1]
    assert len([r for r in emu.requests if r.path == "/v5/execution/list"]) == 2


async def test_bybit_trade_executions_from_fills(bybit_venue: Venue) -> None:
    emu, client = bybit_venue.emu, bybit_venue.clients[SHORT]
    await client.create_order(BTC_PERP, "market", "sell", 0.01, None, {"clientOrderId": "s1"})
    await client.create_order(
        BTC_PERP, "market", "buy", 0.004, None, {"clientOrderId": "b1", "reduceOnly": True}
    )
    emu.settle_funding(BTC_PERP, "0.0001")
    fills = emu.fills(SHORT, BTC_PERP)
    trades = await client.fetch_my_trades(BTC_PERP)  # ccxt asks for execType=Trade
    trades.sort(key=lambda t: int(t["info"]["seq"]))  # both fills share one millisecond
    assert [(t["side"], t["amount"], t["price"]) for t in trades] == [
        (f.side.value.lower(), float(f.qty), float(f.price)) for f in fills
    ]
    assert trades[0]["fee"]["cost"] == float(fills[0].fee)
    assert trades[0]["takerOrMaker"] == "taker" and trades[0]["order"] == fills[0].order_id
    assert trades[1]["info"]["closedSize"] == "0.004" and trades[1]["info"]["orderLinkId"] == "b1"
    raw = await client.privateGetV5ExecutionList({"category": "linear"})
    assert [e["execType"] for e in raw["result"]["list"]] == ["Funding", "Trade", "Trade"]
    spot = await client.privateGetV5ExecutionList({"category": "spot", "execType": "Funding"})
    assert spot["result"]["list"] == []


@needs_fixtures
async def test_funding_reply_shapes(venue: Venue) -> None:
    emu, client = venue.emu, venue.clients[LONG]
    emu.set_position(LONG, BTC_PERP, "0.01")
    emu.settle_funding(BTC_PERP, "0.0001", at_ms=emu.now_ms() - EIGHT_HOURS)
    emu.settle_funding(BTC_PERP, "-0.0001")
    if venue.bybit:
        body = await client.privateGetV5ExecutionList(
            {"category": "linear", "symbol": "BTCUSDT", "execType": "Funding", "limit": 1}
        )
        assert body["result"]["nextPageCursor"]
        # The fixture's items carry ccxt's nextPageCursor artefact, not a Bybit field.
        assert_same_shape(
            "bybit fetchFundingHistory",
            recorded("bybit", "fetchFundingHistory", "linear funding history"),
            body,
            missing_ok={"result.list[].nextPageCursor"},
        )
        emu.set_balance(LONG, "BTC", "1")
        await client.create_order(BTC_PERP, "market", "sell", 0.01)
        await client.create_order("BTC/USDT", "market", "sell", 0.001)
        for category, description in (
            ("linear", "swap trades without symbol"),
            ("spot", "spot trades without symbol"),
        ):
            trades = await client.privateGetV5ExecutionList(
                {"category": category, "execType": "Trade"}
            )
            assert_same_shape(
                f"bybit fetchMyTrades {description}",
                recorded("bybit", "fetchMyTrades", description),
                trades,
                missing_ok={"result.list[].nextPageCursor"},
            )
    else:
        body = await client.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
        assert len(body) == 2
        assert_same_shape(
            "binance fetchFundingHistory",
            recorded("binance", "fetchFundingHistory", "fetch portfolio margin funding history"),
            body,
        )
