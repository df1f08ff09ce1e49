"""The market and the account change under the daemon: outside trades, liquidation,
price spikes, margin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.emulator import Emulator
from tests.faults.harness import KEY, PERP, Rig, config_text


async def test_position_changed_outside(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """Position liquidated, then enlarged by hand, outside the daemon."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    # One more read confirms the fill. A position that vanishes within the settle window
    # of a fill looks exactly like a read lagging it: that is held, not re-ordered
    # (test_safety.test_lagging_read_never_doubles).
    await rig.cycle()
    emu.set_position(KEY, PERP, 0)  # liquidated
    rig.outside_change()
    reopened = await rig.settle()
    assert rig.short() == Decimal("0.5")
    emu.set_position(KEY, PERP, "-0.9", entry_price=60000)  # someone shorted more by hand
    rig.outside_change()
    trimmed = await rig.settle()
    sides = [o.request.side.value for o in rig.journal.orders()]  # type: ignore[union-attr]
    assert sides == ["sell", "sell", "buy"]
    assert rig.journal.orders()[-1].request.reduce_only  # type: ignore[union-attr]
    record(f"liquidated: re-hedged in {reopened} cycles; shorted by hand: trimmed "
           f"reduce-only in {trimmed}")  # fmt: skip
    rig.check_all()


PROXY = "{ ETH = 1.0 }"  # ETH held, hedged with the BTC perpetual (a proxy hedge)


async def proxy_rig(rig: Rig, emu: Emulator) -> None:
    rig.assets = {"ETH": Decimal(1)}
    emu.set_balance(KEY, "BTC", 0)
    emu.set_balance(KEY, "ETH", 20)  # 60,000 USD: a 0.5 BTC short at 50 %
    await rig.start(config_text(emu.dialect_name, emu.base_url, assets=PROXY))
    await rig.settle()
    assert rig.short() == Decimal("0.5")


# Regression (held-asset): the jump guard watched the instrument's price only.
@pytest.mark.parametrize("pair", ["BTC/USDT", "ETH/USDT"], ids=["instrument", "held-asset"])
async def test_price_spike_one_snapshot(rig: Rig, emu: Emulator, pair: str,
                                        request: pytest.FixtureRequest, record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Price spike +50 % for one snapshot on a proxy hedge: no order for the spike."""
    await proxy_rig(rig, emu)
    before = len(emu.orders(KEY))
    base = Decimal(60000) if pair == "BTC/USDT" else Decimal(3000)
    emu.set_price(pair, base * Decimal("1.5"))
    spiked = await rig.cycle()
    emu.set_price(pair, base)
    await rig.cycle(3)
    decision = spiked.decisions[0]
    record(f"spike cycle: {decision.action} ({decision.reason[:60]}); "
           f"{len(emu.orders(KEY)) - before} order(s) for it")  # fmt: skip
    assert len(emu.orders(KEY)) == before, "an order was sent for a one-snapshot spike"
    rig.check_all()


# Regression (Bybit): the margin guard took the position's own margin as the collateral of
# a cross / unified account and blocked every addition to an open hedge at 10x.
async def test_hedge_grows_once_open(rig: Rig, emu: Emulator, request: pytest.FixtureRequest,
                                     record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """At the default leverage, an open hedge grows when the holdings grow."""
    await rig.start(config_text(emu.dialect_name, emu.base_url, hedge=""))
    await rig.settle()
    emu.set_balance(KEY, "BTC", "1.6")
    await rig.settle()
    record(f"short {rig.short()} for a target of {rig.target()}")
    rig.check_all()


async def test_trim_resting_when_holdings_grow_again(rig: Rig, emu: Emulator,
                                                     record) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Maker trim resting when the holdings grow back: no sell against our own buy."""
    hedge = ('leverage = 1\nexecution = "maker"\nreprice_after = 600\ndeadline = 600\n'
             "max_ratio = 0.6")  # fmt: skip
    await rig.start(config_text(emu.dialect_name, emu.base_url, hedge=hedge))
    await rig.cycle()
    (sell,) = emu.open_orders(KEY)
    emu.set_price("BTC/USDT", sell.price + 50)  # type: ignore[operator]  # taken: short 0.5
    await rig.settle()
    emu.set_balance(KEY, "BTC", "0.2")  # holdings drop: trim to 0.1, a maker buy rests
    await rig.until(lambda: any(o.side.value == "BUY" for o in emu.open_orders(KEY)), 5)
    emu.set_balance(KEY, "BTC", "1.0")  # and come back before it fills
    await rig.cycle(2)
    sells = [o for o in emu.open_orders(KEY) if o.side.value == "SELL"]
    for order in sells:  # the market takes any resting sell (the buy, below, stays)
        emu.set_price("BTC/USDT", order.price + 50)  # type: ignore[operator]
    await rig.cycle(2)
    cap = Decimal("0.6")  # max_ratio x 1.0 BTC
    record(f"sell sent against our own resting buy: {bool(sells)}; peak short "
           f"{rig.peak_short} (target 0.5, cap {cap})")  # fmt: skip
    assert rig.peak_short <= cap, "the hedge went over the cap"
    assert not rig.over_hedged
