"""Hedge accounting: average entry, realised / unrealised PnL, net cost — worked by hand."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hedgekeeper.accounting import Book, apply_fill, hedge_pnl, unrealised_usd
from hedgekeeper.hedge_cost import group_costs
from hedgekeeper.journal import Journal
from hedgekeeper.model import MarketKind, MarketSpec, OrderStatus, OrderType, Side

BTC = MarketSpec("BTC/USDT:USDT", MarketKind.LINEAR, "BTC", "USDT", "USDT", D("0.01"), D(1))
INVERSE = MarketSpec("BTC/USD:BTC", MarketKind.INVERSE, "BTC", "USD", "BTC", D(100), D(1))

#: (signed contracts, price, fee): open 50 short, add 30, buy back 40, buy 60 (turns long 20)
SEQUENCE = [(D(-50), D(70000), D("17.5")), (D(-30), D(80000), D(12)),
            (D(40), D(60000), D(12)), (D(60), D(65000), D("19.5"))]  # fmt: skip


def test_hand_worked_sequence_of_fills_and_funding() -> None:
    book = Book()
    for signed, price, fee in SEQUENCE[:2]:
        book = apply_fill(book, BTC, signed, price, fee)
    # entry = (50 x 70000 + 30 x 80000) / 80
    assert (book.contracts, book.entry_price) == (D(-80), D(73750))
    book = apply_fill(book, BTC, *SEQUENCE[2])
    # 40 bought back: 0.4 BTC x (73750 - 60000) = 5500 realised, entry unchanged
    assert (book.contracts, book.entry_price, book.realised_usd) == (D(-40), D(73750), D(5500))
    book = apply_fill(book, BTC, *SEQUENCE[3])
    # the last 40 short close at 65000 (+3500), the other 20 open long at 65000
    assert (book.contracts, book.entry_price, book.realised_usd) == (D(20), D(65000), D(9000))
    book = book.with_funding(D(25))
    assert unrealised_usd(book, BTC, D(70000)) == D(1000)  # 0.2 BTC x 5000
    assert book.fees_usd == D(61)
    assert hedge_pnl(book, BTC, D(70000)) == D(9000) + D(1000) + D(25) - D(61)


def test_inverse_entry_is_the_harmonic_mean_and_pnl_is_in_coin() -> None:
    book = apply_fill(Book(), INVERSE, D(-10), D(50000), D(0))
    book = apply_fill(book, INVERSE, D(-10), D(40000), D(0))
    assert book.entry_price is not None
    assert abs(book.entry_price - D(20) / (D(10) / 50000 + D(10) / 40000)) < D("1e-20")
    book = apply_fill(book, INVERSE, D(20), D(45000), D(0))
    # 2000 USD of contracts: 2000/44444.44 - 2000/45000 BTC lost, valued at 45000 = -25 USD
    assert book.contracts == 0 and abs(book.realised_usd - D(-25)) < D("1e-18")


@given(st.lists(st.tuples(st.integers(-50, 50).filter(bool), st.integers(100, 200)),
                min_size=1, max_size=20))  # fmt: skip
def test_closing_everything_realises_the_whole_cash_flow(fills: list[tuple[int, int]]) -> None:
    # For linear contracts, PnL over a round trip = -sum(signed x size x price) once flat.
    book = Book()
    for contracts, price in fills:
        book = apply_fill(book, BTC, D(contracts), D(price), D(0))
    held = book.contracts
    if held:
        book = apply_fill(book, BTC, -held, D(150), D(0))
    cash = -sum(D(c) * BTC.contract_size * D(p) for c, p in fills) + held * BTC.contract_size * 150
    assert book.contracts == 0
    assert abs(book.realised_usd - cash) < D("1e-12")


def test_group_costs_from_a_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", clock=lambda: 1000.0)
    times = iter([1000.0, 1000.0 + 86400, 1000.0 + 2 * 86400, 1000.0 + 3 * 86400])
    for signed, price, fee in SEQUENCE:
        request = journal.new_order(
            instance="hk", group_code="btc", group="btc", account="demo", symbol=BTC.symbol,
            side=Side.BUY if signed > 0 else Side.SELL, amount=abs(signed),
            order_type=OrderType.LIMIT, price=price, reduce_only=False, post_only=False,
            reason="test", cycle=None,
        )  # fmt: skip
        order = journal.order(request.client_order_id)
        assert order is not None
        at = next(times)
        journal._now = lambda at=at: at  # each fill a day after the last
        journal.update_order(
            request.client_order_id, OrderStatus.FILLED, filled=abs(signed),
            average_price=price, fill=(order, abs(signed), price, fee),
        )  # fmt: skip

    (cost,) = group_costs(journal, {"btc": ("demo", BTC)}, {BTC.symbol: D(70000)})
    assert (cost.realised_usd, cost.unrealised_usd, cost.fees_usd) == (D(9000), D(1000), D(61))
    assert cost.net_cost_usd == D(61) - D(10000) and cost.fills == 4
    # only the last two fills in the window; the first two still set the entry
    (late,) = group_costs(journal, {"btc": ("demo", BTC)}, {BTC.symbol: D(70000)},
                          since=1000.0 + 2 * 86400)  # fmt: skip
    assert (late.realised_usd, late.fees_usd, late.fills) == (D(9000), D("31.5"), 2)
    journal.close()
