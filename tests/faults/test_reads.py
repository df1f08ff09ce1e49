"""Failed reads: 5xx, maintenance, clock skew, a reply without balances."""

from __future__ import annotations

from decimal import Decimal

from tests.emulator import Emulator, Fault
from tests.faults.harness import KEY, Rig, config_text


async def test_5xx_on_reads(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """5xx on reads (every GET fails for a while, then every third)."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    solid = emu.faults.add(Fault.http_error(502), method="GET", count=None)
    await rig.cycle(2)
    assert rig.short() == 0, "no order while the reads fail"
    solid.count = solid.hits
    spotty = emu.faults.add(Fault.http_error(503), method="GET", count=None, probability=0.3)
    await rig.settle(pause=0.05)
    spotty.count = 0
    cycles = await rig.settle(pause=0.05)
    skipped = sum(1 for r in rig.reports for d in r.decisions if d.action == "skipped")
    record(f"{solid.hits + spotty.hits} failed reads, {skipped} group-cycles skipped, "
           f"hedged {cycles} cycles after")  # fmt: skip
    rig.check_all()


async def test_maintenance(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """Exchange maintenance: nothing traded while it lasts, hedged once it ends."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    emu.maintenance = True
    emu.set_balance("fault-key", "BTC", "1.6")  # the need for an order arises meanwhile
    await rig.cycle(4)  # long enough to trip the circuit breaker (3 failures)
    orders_during = len(emu.orders("fault-key"))
    emu.maintenance = False
    cycles = await rig.settle(pause=0.05)
    assert orders_during == 1
    record(f"no request succeeded during maintenance; breaker tripped; hedged {cycles} "
           "cycles after it ended")  # fmt: skip
    rig.check_all()


async def test_clock_skew(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """Clock skew (Binance -1021, Bybit 10002): signed requests refused while it lasts."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    emu.clock_offset_ms = 20_000  # the server is 20 s ahead: every signature is too old
    await rig.cycle(2)
    code = "-1021" if emu.dialect_name == "binance" else "10002"
    refused = sum(1 for r in emu.requests if r.error_code == code)
    assert rig.short() == 0 and refused > 0 and emu.orders(KEY) == []
    emu.clock_offset_ms = 0
    cycles = await rig.settle(pause=0.05)
    record(f"{refused} signed requests refused ({code}), no order; hedged {cycles} cycles "
           "after the clock was right again")  # fmt: skip
    rig.check_all()


# Regression: ccxt reads a reply without its balances list as an empty balance; it was
# taken as "nothing held" and the whole hedge was trimmed.
async def test_balances_missing_from_reply(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """A balance reply without balances is a failed read, never zero holdings."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    before = rig.short()
    path = "/api/v3/account" if emu.dialect_name == "binance" else "/v5/account/wallet-balance"
    body = '{"makerCommission":10,"canTrade":true,"updateTime":0}' if emu.dialect_name == \
        "binance" else '{"retCode":0,"retMsg":"OK","result":{},"time":0}'  # fmt: skip
    rule = emu.faults.add(Fault.http_error(200, body=body), method="GET", path=path, count=4)
    await rig.cycle(3)
    assert rule.hits >= 1
    record(f"short {before} -> {rig.short()} while balances were missing")
    assert rig.short() == before, "an order was placed on balances that were not there"
    assert len(emu.orders("fault-key")) == 1
    rule.count = 0
    await rig.settle()
    rig.check_all()


async def test_balances_reply_not_json(rig: Rig, emu: Emulator, record) -> None:  # type: ignore[no-untyped-def]
    """A truncated (malformed JSON) balance reply is a failed read."""
    await rig.start(config_text(emu.dialect_name, emu.base_url))
    await rig.settle()
    path = "/api/v3/account" if emu.dialect_name == "binance" else "/v5/account/wallet-balance"
    rule = emu.faults.add(Fault.http_error(200, body='{"balances": [{"asset": "BTC", "fr'),
                          method="GET", path=path, count=3)  # fmt: skip
    await rig.cycle(3)
    assert rule.hits >= 1 and rig.short() == Decimal("0.5")
    record("groups skipped while unreadable; no order")
    await rig.settle()
    rig.check_all()
