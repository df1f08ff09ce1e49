"""The matching engine and margin model without HTTP: fast, exact Decimal checks."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.emulator.account_ops import set_hedge_mode, transfer
from tests.emulator.engine import Engine
from tests.emulator.markets import default_markets
from tests.emulator.state import (
    FeeSchedule,
    OrderRequest,
    OrderStatus,
    Reject,
    Rejected,
    Side,
    TimeInForce,
    VenueRules,
)

RULES = VenueRules(r"[A-Za-z0-9_-]{1,36}", "open", True, "int", 20, False)
D = Decimal


def make_engine() -> Engine:
    engine = Engine(
        default_markets("binance"),
        RULES,
        FeeSchedule(),
        lambda: int(time.time() * 1000),
        seed=1,
        spread_bps=D(2),
    )
    engine.set_price("BTC/USDT", D(70000))
    acct = engine.add_account("k", "s")
    acct.futures_wallet = D(1000)
    acct.spot_free.update({"USDT": D(1000), "BTC": D(1)})
    return engine


def perp_request(side: Side, qty: str, **kw: object) -> OrderRequest:
    engine_markets = {m.symbol: m for m in default_markets("binance")}
    return OrderRequest(
        engine_markets["BTC/USDT:USDT"], side, str(kw.pop("type", "MARKET")), D(qty), **kw
    )  # type: ignore[arg-type]


def test_quote_is_on_the_tick_grid() -> None:
    engine = make_engine()
    bid, ask = engine.quote(engine.markets["BTC/USDT:USDT"])
    assert (bid, ask) == (D("69993.0"), D("70007.0"))


def test_short_then_close_books_pnl_and_fees() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    engine.place(acct, perp_request(Side.SELL, "0.010"))
    engine.set_price("BTC/USDT", D(69000))
    _, ask = engine.quote(engine.markets["BTC/USDT:USDT"])
    assert ask == D("69006.9")
    engine.place(acct, perp_request(Side.BUY, "0.010", reduce_only=True))
    pos = acct.position("BTC/USDT:USDT")
    assert pos.qty == 0 and pos.entry_price == 0
    pnl = (D("69993.0") - ask) * D("0.010")  # sold at the bid, bought back at the ask
    fees = (D("69993.0") + ask) * D("0.010") * D("0.0005")
    assert acct.futures_wallet == D(1000) + pnl - fees


def test_margin_check_counts_only_growing_exposure() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    acct.leverage["BTC/USDT:USDT"] = 1
    with pytest.raises(Rejected) as info:
        engine.place(acct, perp_request(Side.SELL, "0.020"))  # 1400 USDT at 1x > 1000
    assert info.value.kind is Reject.INSUFFICIENT_MARGIN
    engine.place(acct, perp_request(Side.SELL, "0.010"))
    # buying back can never need margin, even with the wallet nearly used up
    engine.place(acct, perp_request(Side.BUY, "0.005"))


def test_liquidation_price_of_a_short_is_above_entry() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    engine.place(acct, perp_request(Side.SELL, "0.100"))
    pos = acct.position("BTC/USDT:USDT")
    liq = engine.margin.liquidation_price(acct, pos)
    # 1000 USDT backing a 0.1 BTC short: liquidation ~10 % above entry
    assert D(76000) < liq < D(80000)


def test_partial_fill_ioc_and_fok() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    ioc = engine.place(
        acct,
        perp_request(Side.SELL, "0.010", type="LIMIT", price=D(69000), tif=TimeInForce.IOC),
        fill_fraction=D("0.3"),
    )
    assert (ioc.status, ioc.executed_qty) == (OrderStatus.EXPIRED, D("0.003"))
    fok = engine.place(
        acct,
        perp_request(Side.SELL, "0.010", type="LIMIT", price=D(69000), tif=TimeInForce.FOK),
        fill_fraction=D("0.3"),
    )
    assert (fok.status, fok.executed_qty) == (OrderStatus.EXPIRED, D(0))


def test_spot_locks_and_fee_in_received_asset() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    spot = engine.markets["BTC/USDT"]
    order = engine.place(acct, OrderRequest(spot, Side.BUY, "LIMIT", D("0.01"), D(60000)))
    assert acct.spot_locked["USDT"] == D(600) and acct.spot_free["USDT"] == D(400)
    engine.set_price("BTC/USDT", D(59000))  # falls through the bid: fills as maker
    assert order.status is OrderStatus.FILLED
    assert acct.spot_locked["USDT"] == 0 and acct.spot_free["USDT"] == D(400)
    assert acct.spot_free["BTC"] == D(1) + D("0.01") * (1 - D("0.001"))


def test_hedge_mode_and_transfer_rules() -> None:
    engine = make_engine()
    acct = engine.accounts["k"]
    engine.place(acct, perp_request(Side.SELL, "0.010"))
    with pytest.raises(Rejected) as info:
        set_hedge_mode(acct, True)
    assert info.value.kind is Reject.POSITION_MODE_HAS_POSITION
    with pytest.raises(Rejected) as info:  # margin in use cannot leave the futures wallet
        transfer(engine, acct, "USDT", D(990), "futures", "spot", "t1")
    assert info.value.kind is Reject.TRANSFER_INSUFFICIENT
    transfer(engine, acct, "USDT", D(100), "futures", "spot", "t2")
    assert acct.spot_free["USDT"] == D(1100)
