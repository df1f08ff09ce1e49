"""The paper venue: fills at the top of book, IOC expiry, resting post-only orders, restarts."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from hedgekeeper.exceptions import OrderRejectedError
from hedgekeeper.journal import Journal
from hedgekeeper.model import OrderRequest, OrderStatus, OrderType, Side
from hedgekeeper.settings import PaperSettings, SimSettings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue

BTC = "BTC/USDT:USDT"


async def make(tmp_path: Path) -> tuple[PaperVenue, SimVenue, Journal]:
    sim = SimVenue("demo", SimSettings(prices={"BTC": D(70000)}, contract_sizes={"BTC": D("0.01")},
                                       spread_bps=D(2)))  # fmt: skip
    journal = Journal(tmp_path / "j.db")
    paper = PaperVenue(sim, journal, PaperSettings(taker_fee=D("0.0005"), slippage_bps=D(1)))
    await paper.load_markets([BTC])
    return paper, sim, journal


def order(cid: str, side: Side, amount: str, *, price: str | None = None, post_only=False,
          reduce_only=False) -> OrderRequest:  # fmt: skip
    return OrderRequest(cid, BTC, side, D(amount), OrderType.LIMIT if price else OrderType.MARKET,
                        D(price) if price else None, reduce_only, post_only)  # fmt: skip


async def test_market_sell_fills_at_bid_minus_slippage_with_fee(tmp_path: Path) -> None:
    paper, _, _journal = await make(tmp_path)
    info = await paper.submit_order(order("a1", Side.SELL, "10"))
    bid = D(70000) * (1 - D("0.0001"))  # half of a 2 bps spread
    assert info.status is OrderStatus.FILLED and info.filled == 10
    assert info.average_price == (bid * (1 - D("0.0001"))).quantize(D("1e-8"))
    assert info.fee_usd == (10 * D("0.01") * info.average_price * D("0.0005")).quantize(D("1e-8"))
    positions = await paper.fetch_positions([BTC])
    assert positions[BTC].contracts == -10


async def test_ioc_limit_that_does_not_cross_expires(tmp_path: Path) -> None:
    paper, _, _ = await make(tmp_path)
    info = await paper.submit_order(order("a1", Side.SELL, "5", price="71000"))
    assert info.status is OrderStatus.CANCELED and info.filled == 0
    assert (await paper.fetch_positions([BTC]))[BTC].contracts == 0


async def test_slippage_never_past_the_limit(tmp_path: Path) -> None:
    paper, _, _ = await make(tmp_path)
    bid = D(70000) * (1 - D("0.0001"))
    info = await paper.submit_order(order("a1", Side.SELL, "5", price=str(bid)))
    assert info.status is OrderStatus.FILLED and info.average_price == bid


async def test_post_only_rests_then_fills_when_the_market_trades_through(tmp_path: Path) -> None:
    paper, sim, _journal = await make(tmp_path)
    ask = D(70000) * (1 + D("0.0001"))
    resting = await paper.submit_order(order("m1", Side.SELL, "3", price=str(ask), post_only=True))
    assert resting.status is OrderStatus.OPEN
    assert [o.client_order_id for o in await paper.fetch_open_orders([BTC], "m")] == ["m1"]
    assert (await paper.fetch_positions([BTC]))[BTC].contracts == 0
    sim.set_price("BTC", D(70100))  # buyers now pay above our ask
    await paper.fetch_quotes([BTC])
    filled = await paper.fetch_order(BTC, "m1")
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert filled.average_price == ask
    assert (await paper.fetch_positions([BTC]))[BTC].contracts == -3
    assert await paper.fetch_open_orders([BTC], "m") == []


async def test_post_only_that_would_cross_is_rejected(tmp_path: Path) -> None:
    paper, _, _ = await make(tmp_path)
    with pytest.raises(OrderRejectedError, match="post-only"):
        await paper.submit_order(order("m1", Side.SELL, "3", price="60000", post_only=True))


async def test_cancel_a_resting_order(tmp_path: Path) -> None:
    paper, _, _ = await make(tmp_path)
    await paper.submit_order(order("m1", Side.BUY, "3", price="60000", post_only=True))
    cancelled = await paper.cancel_order(BTC, "m1")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert await paper.cancel_order(BTC, "nope") is None


async def test_reduce_only_cannot_grow_or_flip(tmp_path: Path) -> None:
    paper, _, _ = await make(tmp_path)
    with pytest.raises(OrderRejectedError, match="reduce-only"):
        await paper.submit_order(order("r1", Side.BUY, "1", reduce_only=True))
    await paper.submit_order(order("s1", Side.SELL, "2"))
    with pytest.raises(OrderRejectedError, match="reduce-only"):
        await paper.submit_order(order("r2", Side.BUY, "3", reduce_only=True))
    await paper.submit_order(order("r3", Side.BUY, "2", reduce_only=True))
    assert (await paper.fetch_positions([BTC]))[BTC].contracts == 0


async def test_duplicate_client_id_is_rejected_and_state_survives_restart(tmp_path: Path) -> None:
    paper, _, journal = await make(tmp_path)
    await paper.submit_order(order("a1", Side.SELL, "4"))
    with pytest.raises(OrderRejectedError, match="duplicate"):
        await paper.submit_order(order("a1", Side.SELL, "4"))
    journal.close()
    paper2, _, _ = await make(tmp_path)
    assert (await paper2.fetch_positions([BTC]))[BTC].contracts == -4
    found = await paper2.fetch_order(BTC, "a1")
    assert found is not None and found.filled == 4


async def test_paper_position_carries_its_average_entry_price(tmp_path: Path) -> None:
    paper, sim, _journal = await make(tmp_path)
    first = await paper.submit_order(order("e1", Side.SELL, "10"))
    sim.set_price("BTC", D(80000))
    second = await paper.submit_order(order("e2", Side.SELL, "30"))
    assert first.average_price is not None and second.average_price is not None
    entry = (10 * first.average_price + 30 * second.average_price) / 40
    position = (await paper.fetch_positions([BTC]))[BTC]
    assert position.contracts == -40 and position.entry_price == entry
    # a buy back leaves the entry where it was
    await paper.submit_order(order("e3", Side.BUY, "15", reduce_only=True))
    assert (await paper.fetch_positions([BTC]))[BTC].entry_price == entry
