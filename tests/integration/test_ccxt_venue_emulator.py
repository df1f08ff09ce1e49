"""CcxtVenue against the local exchange emulator (Binance and Bybit dialects).

The real ccxt code path runs — signing, URL building, parsing, error mapping —
over HTTP to 127.0.0.1 through ``api_host``. Faults injected by the emulator
check the three order outcomes: confirmed, rejected, unknown-then-resolved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hedgekeeper.exceptions import (
    OrderRejectedError,
    RetryableReadError,
    UnknownOutcomeError,
    WriteForbiddenError,
)
from hedgekeeper.model import OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.venues.ccxt_client import _family
from hedgekeeper.venues.ccxt_venue import CcxtVenue

emulator_module = pytest.importorskip("tests.emulator")
Emulator: Any = getattr(emulator_module, "Emulator", None)
Fault: Any = getattr(emulator_module, "Fault", None)
if Emulator is None or Fault is None:  # pragma: no cover - emulator not built yet
    pytest.skip("tests.emulator does not expose Emulator and Fault", allow_module_level=True)

from tests.emulator.markets import MarketDef  # noqa: E402

KEY, SECRET = "hk-test-key", "hk-test-secret"
PERP, SPOT = "BTC/USDT:USDT", "BTC/USDT"


@pytest.fixture(params=["binance", "bybit"])
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    emu = Emulator(request.param, {KEY: SECRET}, prices={"BTC/USDT": 60000, "ETH/USDT": 3000})
    await emu.start()
    emu.set_balance(KEY, "BTC", "0.5")
    emu.set_futures_wallet(KEY, 10000)
    try:
        yield emu
    finally:
        await emu.stop()


@dataclass
class Venues:
    """Venues on one injected session (as the daemon's tests inject one)."""

    session: aiohttp.ClientSession
    made: list[CcxtVenue] = field(default_factory=list)

    def connect(self, emu: Any, **kwargs: Any) -> CcxtVenue:
        venue = CcxtVenue(
            "emu",
            emu.dialect_name,
            api_key=KEY,
            secret=SECRET,
            api_host=emu.base_url,
            session=self.session,
            **kwargs,
        )
        venue.exchange.enableRateLimit = False  # no throttling sleeps in tests
        self.made.append(venue)
        return venue


@pytest.fixture
async def venues() -> AsyncIterator[Venues]:
    async with aiohttp.ClientSession() as session:
        made = Venues(session)
        yield made
        for venue in made.made:
            await venue.close()
        assert not session.closed  # ccxt left the injected session alone


def short(client_id: str, amount: str = "0.002") -> OrderRequest:
    return OrderRequest(client_id, PERP, Side.SELL, Decimal(amount))


async def test_a_hedge_cycle(emulator: Any, venues: Venues) -> None:
    venue = venues.connect(emulator)

    specs = await venue.load_markets([SPOT, PERP])
    balances = await venue.fetch_balances()
    quote = (await venue.fetch_quotes([PERP]))[PERP]
    opened = await venue.submit_order(short("hkE1g1s1"))
    after_open = (await venue.fetch_positions([PERP]))[PERP]
    trimmed = await venue.submit_order(
        OrderRequest("hkE1g1s2", PERP, Side.BUY, Decimal("0.001"), reduce_only=True)
    )
    after_trim = (await venue.fetch_positions([PERP]))[PERP]
    resting = await venue.submit_order(
        OrderRequest(
            "hkE1g1s3",
            PERP,
            Side.SELL,
            Decimal("0.002"),
            OrderType.LIMIT,
            Decimal(70000),
            post_only=True,
        )
    )
    working = await venue.fetch_open_orders([PERP], "hkE1")
    canceled = await venue.cancel_order(PERP, "hkE1g1s3")
    looked_up = await venue.fetch_order(PERP, "hkE1g1s1")

    assert specs[PERP].amount_step == Decimal("0.001")
    assert balances["BTC"] == Decimal("0.5")
    assert quote.bid is not None and quote.ask is not None and quote.bid < quote.ask
    assert quote.mark == Decimal(60000)
    assert opened.client_order_id == "hkE1g1s1" and opened.status in (
        OrderStatus.OPEN,
        OrderStatus.FILLED,
    )  # Bybit acknowledges before filling
    assert after_open.contracts == Decimal("-0.002")
    assert after_open.entry_price is not None and after_open.liquidation_price is not None
    assert trimmed.reduce_only
    assert after_trim.contracts == Decimal("-0.001")
    assert resting.status is OrderStatus.OPEN
    assert [o.client_order_id for o in working] == ["hkE1g1s3"]
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert looked_up is not None and looked_up.status is OrderStatus.FILLED
    assert looked_up.filled == Decimal("0.002")
    assert await venue.fetch_order(PERP, "hkE1never") is None
    assert await venue.cancel_order(PERP, "hkE1never") is None


async def test_backend_timeout_is_unknown_and_resolved_by_lookup(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator)
    await venue.load_markets([PERP])
    emulator.faults.add(Fault.backend_timeout(), method="POST", path="*/order*")

    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(short("hkE2g1s1"))
    found = await venue.fetch_order(PERP, "hkE2g1s1")

    assert found is not None and found.status is OrderStatus.FILLED
    assert emulator.order(KEY, "hkE2g1s1") is not None


async def test_response_lost_after_accept_is_unknown_and_resolved_by_lookup(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator, timeout_ms=300)
    await venue.load_markets([PERP])
    emulator.faults.add(Fault.accept_then_timeout(delay=5), method="POST", path="*/order*")

    with pytest.raises(UnknownOutcomeError):
        await venue.submit_order(short("hkE3g1s1"))

    found = await venue.fetch_order(PERP, "hkE3g1s1")
    assert found is not None and found.client_order_id == "hkE3g1s1"


async def test_rate_limit_is_retryable_for_reads_and_a_rejection_for_writes(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator)
    await venue.setup_instrument(PERP, None, None)  # reads the position mode once
    await venue.fetch_balances()  # Bybit's one-off account-type probe
    emulator.faults.add(Fault.rate_limit(retry_after=1), method="GET")
    emulator.faults.add(Fault.rate_limit(retry_after=1), method="POST")

    with pytest.raises(RetryableReadError) as read_error:
        await venue.fetch_balances()
    if emulator.dialect_name == "binance":  # Bybit says it in its own headers, not Retry-After
        assert read_error.value.retry_after == 1  # the venue's Retry-After is kept
    # A 429/418 is refused before the matching engine: definitively not placed.
    with pytest.raises(OrderRejectedError):
        await venue.submit_order(short("hkE4g1s1"))

    assert await venue.fetch_order(PERP, "hkE4g1s1") is None  # never applied


async def test_insufficient_margin_is_a_rejection_on_loopback(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator)
    await venue.load_markets([PERP])
    emulator.set_futures_wallet(KEY, 1)

    with pytest.raises(OrderRejectedError, match=r"-2019|110007"):
        await venue.submit_order(short("hkE5g1s1", "1"))


async def test_read_only_venue_sends_no_private_write(emulator: Any, venues: Venues) -> None:
    venue = venues.connect(emulator, read_only=True)
    await venue.load_markets([SPOT, PERP])

    await venue.fetch_balances()
    await venue.fetch_positions([PERP])
    await venue.fetch_open_orders([PERP], "hk")
    with pytest.raises(WriteForbiddenError):
        await venue.submit_order(short("hkE6g1s1"))
    with pytest.raises(WriteForbiddenError):
        await venue.exchange.set_leverage(2, PERP)

    assert emulator.private_writes() == []


async def test_setup_instrument_never_changes_position_mode_unasked(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator)
    await venue.load_markets([PERP])

    await venue.setup_instrument(PERP, 3, "cross")
    await venue.setup_instrument(PERP, 3, "cross")  # already set: still fine

    paths = {record.path for record in emulator.private_writes()}
    assert not any("positionSide/dual" in path or "switch-mode" in path for path in paths)


async def test_binance_position_mode_is_read_once_per_account(venues: Venues) -> None:
    # Binance's dualSidePosition is one account setting (cost 30 a read), not per symbol.
    emu = Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000, "ETH/USDT": 3000})
    await emu.start()
    try:
        emu.set_futures_wallet(KEY, 10000)
        venue = venues.connect(emu)
        eth = "ETH/USDT:USDT"
        await venue.load_markets([PERP, eth])
        await asyncio.gather(venue.setup_instrument(PERP, None, None),
                             venue.setup_instrument(eth, None, None))  # fmt: skip
        await venue.submit_order(short("hkE7g1s1"))
        await venue.submit_order(dataclasses.replace(short("hkE7g2s1", "0.01"), symbol=eth))
        reads = [r for r in emu.requests if r.path.endswith("/positionSide/dual")]
        assert len(reads) == 1
    finally:
        await emu.stop()


async def test_read_cycle_request_budget(emulator: Any, venues: Venues) -> None:
    venue = venues.connect(emulator)
    await venue.load_markets([SPOT, PERP])
    await venue.fetch_positions([PERP])  # one-off: Binance leverage brackets
    await venue.fetch_balances()  # one-off: Bybit account-type probe

    before = venue.request_count
    await venue.fetch_balances()
    await venue.fetch_positions([PERP])
    await venue.fetch_quotes([PERP])
    await venue.fetch_open_orders([PERP], "hk")

    # Binance futures quotes take two light calls (bookTicker + premiumIndex).
    expected = 5 if emulator.dialect_name == "binance" else 4
    assert venue.request_count - before == expected


async def test_binance_hedge_mode_account_gets_short_side_orders(
    venues: Venues,
) -> None:
    emu = Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000, "ETH/USDT": 3000})
    await emu.start()
    try:
        emu.set_futures_wallet(KEY, 10000)
        emu.set_hedge_mode(KEY, True)
        venue = venues.connect(emu)

        # Above the 100 USDT minimum: without reduceOnly (refused in hedge mode) a
        # closing order gets no minimum-notional exemption.
        await venue.submit_order(short("hkE7g1s1", "0.004"))
        await venue.submit_order(
            OrderRequest("hkE7g1s2", PERP, Side.BUY, Decimal("0.002"), reduce_only=True)
        )

        assert emu.position(KEY, PERP, "SHORT").qty == Decimal("-0.002")
        assert (await venue.fetch_positions([PERP]))[PERP].contracts == Decimal("-0.002")
    finally:
        await emu.stop()


# -- funding ----------------------------------------------------------------------------


async def test_funding_is_read_as_balance_changes_on_both_dialects(
    emulator: Any, venues: Venues
) -> None:
    venue = venues.connect(emulator, read_only=True)  # a dry-run read: no write needed
    await venue.load_markets([PERP, SPOT])
    emulator.set_position(KEY, PERP, "-0.5")  # short 30,000 USD at 60,000
    now_ms = emulator.now_ms()
    emulator.settle_funding(PERP, "0.0001", at_ms=now_ms - 16 * 3_600_000)
    emulator.settle_funding(PERP, "-0.0002", at_ms=now_ms - 8 * 3_600_000)
    payments = await venue.fetch_funding([PERP], now_ms / 1000 - 86400, now_ms / 1000)
    # The short received 3 and then paid 6, whatever sign the exchange reports them in
    # (Binance income -> ccxt amount +3; Bybit execFee -> ccxt amount -3).
    assert [p.amount for p in payments] == [Decimal(3), Decimal(-6)]
    assert all(p.asset == "USDT" and p.symbol == PERP for p in payments)
    assert len({p.id for p in payments}) == 2
    later = await venue.fetch_funding([PERP], now_ms / 1000 - 12 * 3600, now_ms / 1000)
    assert [p.id for p in later] == [payments[1].id], "since is honoured"
    assert await venue.fetch_funding(["ETH/USDT:USDT"], 0, now_ms / 1000) == []
    quote = (await venue.fetch_quotes([PERP]))[PERP]
    assert quote.funding_rate == Decimal("-0.0002") and quote.next_funding_at is not None
    assert emulator.private_writes() == []


async def test_funding_reads_every_page_and_every_window(emulator: Any, venues: Venues) -> None:
    venue = venues.connect(emulator)
    await venue.load_markets([PERP])
    emulator.set_position(KEY, PERP, "-0.5")
    now_ms = emulator.now_ms()
    hour = 3_600_000
    # 120 hourly payments in the last 5 days (over a Bybit page of 100 - and over the
    # 50 Bybit returns when asked with ccxt's own `size`), and 3 more 10-20 days ago
    # (Bybit refuses a range over 7 days).
    times = [now_ms - n * hour for n in range(1, 121)] + [
        now_ms - d * 86_400_000 for d in (10, 15, 20)
    ]
    for at in sorted(times):
        emulator.settle_funding(PERP, "0.0001", at_ms=at)
    payments = await venue.fetch_funding([PERP], now_ms / 1000 - 21 * 86400, now_ms / 1000)
    assert sorted(int(p.timestamp * 1000) for p in payments) == sorted(times)
    assert len({p.id for p in payments}) == 123


async def test_binance_spot_and_futures_have_their_own_rate_limit_buckets(
    venues: Venues,
) -> None:
    emu = Emulator("binance", {KEY: SECRET}, prices={"BTC/USDT": 60000})
    await emu.start()
    try:
        emu.set_futures_wallet(KEY, 1000)
        venue = venues.connect(emu)
        venue.exchange.enableRateLimit = True  # this test is about the limiter
        await venue.load_markets([PERP, SPOT])
        client = venue._client
        waits: list[tuple[str, float]] = []
        family_throttle = venue.exchange.throttle

        async def recording(cost: float | None = None) -> None:
            waits.append((_family.get(), cost or 0.0))  # the bucket the request queues in
            await family_throttle(cost)

        venue.exchange.throttle = recording
        await venue.fetch_balances()  # spot /api/v3/account: weight 20, ccxt cost 4
        await venue.fetch_positions([PERP])  # /fapi/v3/positionRisk
        await venue.fetch_quotes([SPOT, PERP])  # spot book ticker; futures mark + book
        await venue.fetch_open_orders([PERP], "hk")
        assert waits[0] == ("", 4) and waits[1] == ("fapi", 1)
        spot = [cost for family, cost in waits if family == ""]
        assert spot == [4, 0.8], "spot prices from the book ticker (0.8), not the 24 h one (16)"
        assert {f for f, _ in waits} == {"", "fapi"}
        assert client.buckets[""] is not client.buckets["fapi"]
    finally:
        await emu.stop()


async def test_binance_spot_prices_of_many_symbols_are_split_across_requests(
    venues: Venues,
) -> None:
    # bookTicker?symbols=[...] carries the symbols in the URL: 8 KiB at about 400.
    d = Decimal
    spot = [MarketDef(f"A{n}", "USDT", "spot", d("0.01"), d("0.001"), d("0.001"), d("1e6"), d(5))
            for n in range(250)]  # fmt: skip
    emu = Emulator("binance", {KEY: SECRET}, markets=spot,
                   prices={f"A{n}/USDT": 10 + n for n in range(250)})  # fmt: skip
    await emu.start()
    try:
        venue = venues.connect(emu, market_types=("spot",))
        symbols = [f"A{n}/USDT" for n in range(250)]
        await venue.load_markets(symbols)
        emu.clear_requests()
        quotes = await venue.fetch_quotes(symbols)
        assert sorted(quotes) == sorted(symbols)
        books = [r for r in emu.requests if r.path == "/api/v3/ticker/bookTicker"]
        sizes = sorted(len(json.loads(str(r.params["symbols"]))) for r in books)
        assert sizes == [50, 100, 100]
    finally:
        await emu.stop()


async def test_markets_start_from_a_fresh_disk_cache_and_reload_behind(
    emulator: Any, venues: Venues, tmp_path: Path
) -> None:
    first = venues.connect(emulator, market_cache=tmp_path)
    specs = await first.load_markets([SPOT, PERP])
    assert list(tmp_path.glob("markets-*.json")), "the first start writes the cache"
    reads = len(emulator.requests)
    assert reads > 0

    second = venues.connect(emulator, market_cache=tmp_path)
    emulator.clear_requests()
    refresh = asyncio.Event()
    cache = second._client.market_cache
    assert cache is not None
    save = cache.save

    def saved(markets: dict[str, Any]) -> None:
        save(markets)
        refresh.set()

    cache.save = saved  # type: ignore[method-assign]
    for pattern in ("*exchangeInfo", "*instruments-info"):  # a slow market list
        emulator.faults.add(Fault.latency(2.0), path=pattern, count=None)
    began = asyncio.get_running_loop().time()
    again = await second.load_markets([SPOT, PERP])
    assert again == specs
    assert asyncio.get_running_loop().time() - began < 1.5  # not waiting for the list
    assert not refresh.is_set()
    await asyncio.wait_for(refresh.wait(), 10)  # reloaded and rewritten behind
    emulator.faults.clear()


async def test_an_old_market_cache_is_read_again(
    emulator: Any, venues: Venues, tmp_path: Path
) -> None:
    await venues.connect(emulator, market_cache=tmp_path).load_markets([PERP])
    (path,) = tmp_path.glob("markets-*.json")
    old = path.stat().st_mtime - 2 * 86400
    os.utime(path, (old, old))
    emulator.clear_requests()
    await venues.connect(emulator, market_cache=tmp_path).load_markets([PERP])
    assert any("exchangeInfo" in r.path or "instruments-info" in r.path
               for r in emulator.requests)  # fmt: skip
    assert path.stat().st_mtime > old  # and rewritten
