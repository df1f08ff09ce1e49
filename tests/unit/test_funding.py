"""Funding: settlement math, window splitting, ccxt normalisation, journal, sim and paper."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hedgekeeper.funding import payment_usd, settlement, split_window
from hedgekeeper.journal import FundingRecord, Journal
from hedgekeeper.model import FundingPayment, MarketKind, MarketSpec, OrderRequest, OrderType, Side
from hedgekeeper.settings import PaperSettings, SimSettings
from hedgekeeper.venues import ccxt_normalize as norm
from hedgekeeper.venues.ccxt_params import profile_for
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.conftest import shared_or_skip

BTC = "BTC/USDT:USDT"
LINEAR = MarketSpec(BTC, MarketKind.LINEAR, "BTC", "USDT", "USDT", D("0.01"), D(1))
INVERSE = MarketSpec("BTC/USD:BTC", MarketKind.INVERSE, "BTC", "USD", "BTC", D(100), D(1))
HOUR = 3600.0


# -- the arithmetic ------------------------------------------------------------------------


def test_a_short_receives_a_positive_rate_and_pays_a_negative_one() -> None:
    # short 50 contracts of 0.01 BTC at 70,000: 35,000 USD; 0.01 % of it is 3.5 USD
    assert settlement(LINEAR, D(-50), D(70000), D("0.0001")) == (D("3.5"), D("3.5"))
    assert settlement(LINEAR, D(-50), D(70000), D("-0.0003")) == (D("-10.5"), D("-10.5"))
    assert settlement(LINEAR, D(50), D(70000), D("0.0001")) == (D("-3.5"), D("-3.5"))


def test_inverse_contracts_settle_in_the_coin() -> None:
    amount, usd = settlement(INVERSE, D(-10), D(50000), D("0.0001"))  # 1,000 USD short
    assert usd == D("0.1") and amount == D("0.000002")  # 0.1 USD in BTC at 50,000
    payment = FundingPayment("x", "BTC/USD:BTC", 0.0, amount, "BTC")
    assert payment_usd(payment, D(50000)) == D("0.1")
    assert payment_usd(payment, None) is None, "no price: unknown, never zero"


@given(
    contracts=st.integers(-10_000, 10_000),
    mark=st.decimals(D("0.01"), D(200_000), places=2),
    rate=st.decimals(D("-0.03"), D("0.03"), places=6),
)
def test_funding_flows_from_the_side_the_rate_charges(contracts: int, mark: D, rate: D) -> None:
    amount, usd = settlement(LINEAR, D(contracts), mark, rate)
    assert amount == usd
    expected = abs(D(contracts) * D("0.01") * mark * rate)
    assert abs(abs(usd) - expected) <= D("0.00000001")
    if contracts and rate and abs(usd) > 0:
        # longs pay a positive rate, shorts a negative one
        assert (usd > 0) == ((contracts < 0) == (rate > 0))


@given(start=st.integers(0, 10**13), length=st.integers(-5, 10**9), span=st.integers(1, 10**9))
def test_windows_cover_the_range_exactly_once(start: int, length: int, span: int) -> None:
    assume(length // span < 1000)
    windows = split_window(start, start + length, span)
    if length < 0:
        assert windows == []
        return
    assert windows[0][0] == start and windows[-1][1] == start + length
    for (_, b), (c, _) in itertools.pairwise(windows):
        assert c == b + 1, "consecutive, no gap and no overlap"
    assert all(0 <= b - a < span for a, b in windows)


# -- ccxt replies --------------------------------------------------------------------------


def _fixture(exchange: str) -> dict[str, object]:
    path = shared_or_skip("fixtures", "ccxt", "response", f"{exchange}.json")
    entry = json.loads(path.read_text())["methods"]["fetchFundingHistory"][0]
    assert isinstance(entry, dict)
    return entry


def test_binance_income_is_already_a_balance_change() -> None:
    parsed = _fixture("binance")["parsedResponse"]
    [payment] = norm.funding_payments(parsed, {BTC}, profile_for("binance").funding_field)
    assert payment.amount == D("-0.04618913"), "Binance: negative income = paid"
    assert payment.id == "8082457372019390060" and payment.asset == "USDT"
    assert payment.timestamp == 1707465600.0


def test_bybit_exec_fee_is_a_fee_so_its_sign_is_flipped() -> None:
    entry = _fixture("bybit")
    parsed = entry["parsedResponse"]
    assert isinstance(parsed, list)
    payments = norm.funding_payments(parsed, {"LTC/USDT:USDT"}, profile_for("bybit").funding_field)
    by_id = {p.id: p for p in payments}
    # A long (side Buy) with a negative rate receives: Bybit says execFee -0.00708126 and
    # ccxt passes that through as the amount; as a balance change it is +0.00708126.
    [raw] = [p for p in parsed if p["info"]["execFee"] == "-0.00708126"]
    assert raw["amount"] == -0.00708126 and raw["info"]["side"] == "Buy"
    assert by_id[raw["id"]].amount == D("0.00708126") and by_id[raw["id"]].rate == D("-0.000881")
    assert [p.amount > 0 for p in payments] == [D(p["info"]["feeRate"]) < 0 for p in parsed], (
        "a long receives exactly when the rate is negative"
    )


def _entry(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "symbol": BTC, "id": "1", "timestamp": 1_700_000_000_000, "code": "USDT",
        "amount": 1.5, "info": {"income": "1.5"},
    }  # fmt: skip
    entry.update(overrides)
    return entry


def test_other_symbols_are_left_out_and_generic_exchanges_use_ccxts_amount() -> None:
    raw = [_entry(), _entry(symbol="ETH/USDT:USDT", id="2")]
    [payment] = norm.funding_payments(raw, {BTC}, None)
    assert payment.amount == D("1.5") and payment.symbol == BTC


@pytest.mark.parametrize(
    "raw",
    [
        {"not": "a list"},
        [_entry(id=None)],
        [_entry(timestamp=None)],
        [_entry(info={"income": "n/a"})],
        [_entry(info={})],
    ],
)
def test_an_unusable_funding_reply_is_an_error_never_nothing(raw: object) -> None:
    with pytest.raises(norm.PARSE_ERRORS):
        norm.funding_payments(raw, {BTC}, ("income", 1))


def test_quotes_carry_the_funding_rate_and_next_settlement() -> None:
    marks = {"markPrice": 70000.0, "info": {"lastFundingRate": "0.00012",
                                           "nextFundingTime": 1_700_028_800_000}}  # fmt: skip
    quote = norm.quote(BTC, {"bid": 1.0, "ask": 2.0, "timestamp": 1}, marks)
    assert quote.funding_rate == D("0.00012") and quote.next_funding_at == 1_700_028_800.0
    bybit = norm.quote(BTC, {}, {"info": {"fundingRate": "-0.0001", "nextFundingTime": "0"}})
    assert bybit.funding_rate == D("-0.0001") and bybit.next_funding_at is None
    assert norm.quote("BTC/USDT", {"bid": 1.0}, {}).funding_rate is None


# -- the journal ---------------------------------------------------------------------------


def test_the_journal_counts_each_payment_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    now = time.time()
    a = FundingPayment("p1", BTC, now - 2 * 86400, D("3.5"), "USDT", D("0.0001"))
    b = FundingPayment("p2", BTC, now - HOUR, D("-1.25"), "USDT")
    records = [
        FundingRecord("acct", "btc", a, D("3.5")),
        FundingRecord("acct", "btc", b, D("-1.25")),
    ]
    assert journal.record_funding(records) == records
    assert journal.record_funding(records) == [], "the same ids again: nothing new"
    other = FundingRecord("other", "btc", a, D("3.5"))  # ids are per account
    assert journal.record_funding([other]) == [other]
    assert journal.funding_usd() == {"btc": D("5.75")}
    assert journal.funding_usd(since=now - 86400) == {"btc": D("-1.25")}
    assert journal.funding_cursor("acct") is None
    journal.set_funding_cursor("acct", now)
    journal.close()
    assert Journal(tmp_path / "j.db").funding_cursor("acct") == now, "survives a restart"


# -- the sim venue -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sim(clock: Clock, **extra: object) -> SimVenue:
    settings = SimSettings(prices={"BTC": D(70000)}, contract_sizes={"BTC": D("0.01")},
                           collateral=D(1000), replay_start=0, **extra)  # type: ignore[arg-type]  # fmt: skip
    return SimVenue("demo", settings, clock=clock, epoch=0.0)


async def test_sim_settles_on_the_position_held_at_each_settlement() -> None:
    clock = Clock()  # simulated time starts at 1970-01-01 00:00 (replay_start = 0)
    venue = sim(clock)
    venue.set_position(BTC, D(-50))
    clock.now = 8 * HOUR  # the 08:00 settlement, short 50 at 70,000: +3.5
    venue.set_position(BTC, D(-100))
    clock.now = 16 * HOUR + 1  # the 16:00 one, short 100: +7
    payments = await venue.fetch_funding([BTC], 0, time.time() + 60)
    assert [p.amount for p in payments] == [D("3.5"), D("7")]
    assert [p.id for p in payments] == [f"sim-demo-{BTC}-28800000", f"sim-demo-{BTC}-57600000"]
    position = (await venue.fetch_positions([BTC]))[BTC]
    assert position.collateral_usd == D("1010.5"), "funding moves the futures wallet"
    quote = (await venue.fetch_quotes([BTC]))[BTC]
    assert quote.next_funding_at == 24 * HOUR and quote.funding_rate == D("0.0001")
    assert await venue.fetch_funding(["ETH/USDT:USDT"], 0, time.time() + 60) == []


async def test_sim_replays_real_funding_rates(tmp_path: Path) -> None:
    rates = tmp_path / "funding.csv"
    rates.write_text("timestamp_ms,rate\n3600000,0.0002\n7200000,-0.0005\n")
    clock = Clock()
    venue = sim(clock, replay_funding={"BTC": rates}, funding_rate=D(0))
    venue.set_position(BTC, D(-10))  # 7,000 USD short
    clock.now = 3 * HOUR
    payments = await venue.fetch_funding([BTC], 0, time.time() + 60)
    assert [(p.amount, p.rate) for p in payments] == [
        (D("1.4"), D("0.0002")), (D("-3.5"), D("-0.0005"))
    ]  # fmt: skip
    quote = (await venue.fetch_quotes([BTC]))[BTC]
    assert quote.next_funding_at is None, "past the file's end: no more settlements"


async def test_sim_funding_can_fail_like_a_read() -> None:
    venue = sim(Clock())
    venue.failing.add("funding")
    with pytest.raises(Exception, match="funding history unavailable"):
        await venue.fetch_funding([BTC], 0, 1)


# -- the paper venue -----------------------------------------------------------------------


async def test_paper_positions_pay_funding_when_the_settlement_time_moves_on(
    tmp_path: Path,
) -> None:
    clock = Clock()
    inner = sim(clock)
    journal = Journal(tmp_path / "j.db")
    paper = PaperVenue(inner, journal, PaperSettings(taker_fee=D(0), slippage_bps=D(0)))
    await paper.load_markets([BTC])
    await paper.fetch_quotes([BTC])  # first sight: waits for the 08:00 settlement
    sell = OrderRequest("c1", BTC, Side.SELL, D(50), OrderType.MARKET, None, False, False)
    await paper.submit_order(sell)
    clock.now = 4 * HOUR
    await paper.fetch_quotes([BTC])
    assert await paper.fetch_funding([BTC], 0, time.time() + 60) == [], "not yet settled"
    clock.now = 8 * HOUR + 5
    await paper.fetch_quotes([BTC])
    await paper.fetch_quotes([BTC])  # seen twice: still one payment
    [payment] = await paper.fetch_funding([BTC], 0, time.time() + 60)
    assert payment.amount == D("3.5") and payment.id == f"paper-{BTC}-28800000"
    assert payment.asset == "USDT" and payment.rate == D("0.0001")
    assert await inner.fetch_funding([BTC], 0, time.time() + 60) == [], "the sim holds nothing"

    # A restart remembers which settlement it waits for: none is booked twice or lost.
    restarted = PaperVenue(inner, journal, PaperSettings())
    await restarted.load_markets([BTC])
    await restarted.fetch_quotes([BTC])
    assert len(await restarted.fetch_funding([BTC], 0, time.time() + 60)) == 1
    clock.now = 16 * HOUR + 5
    await restarted.fetch_quotes([BTC])
    amounts = [p.amount for p in await restarted.fetch_funding([BTC], 0, time.time() + 60)]
    assert amounts == [D("3.5"), D("3.5")]
