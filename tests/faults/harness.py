"""The whole engine in-process against the exchange emulator, and the invariants every
fault scenario must keep.

A :class:`Rig` is one emulator (Binance or Bybit dialect) plus the real engine,
journal and ccxt adapter pointed at it (``testnet`` mode, ``api_host``). Tests
drive cycles by hand (``await rig.cycle()``), inject faults on the emulator, and
finish with :meth:`Rig.check_all`, which asserts the four promises of the issue
"Execution you can trust":

1. no duplicate: client ids are unique at the emulator, no client id was sent in
   more than one create request, and the hedge never went past its target (two
   orders for one intent would push it there);
2. nothing lost: every order the emulator holds is in the journal;
3. the hedge is back within tolerance of its target once the fault is gone;
4. the journal agrees with the emulator: status and filled quantity of every
   resolved order, and an order the emulator never saw is ``rejected`` (never placed).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from hedgekeeper.engine import CycleReport, Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.model import OrderStatus
from hedgekeeper.settings import load_settings
from hedgekeeper.statelock import StateLock
from hedgekeeper.venues import build_venues
from tests.emulator import Emulator
from tests.emulator.state import OrderStatus as EmuStatus

__all__ = [
    "KEY",
    "PERP",
    "SECRET",
    "Rig",
    "config_text",
    "emu_status",
    "order_endpoint",
]

KEY, SECRET = "fault-key", "fault-secret"
PERP = "BTC/USDT:USDT"
D = Decimal

_EMU_STATUS = {
    EmuStatus.NEW: OrderStatus.OPEN,
    EmuStatus.PARTIALLY_FILLED: OrderStatus.OPEN,
    EmuStatus.FILLED: OrderStatus.FILLED,
    EmuStatus.CANCELED: OrderStatus.CANCELED,
    EmuStatus.EXPIRED: OrderStatus.CANCELED,
    EmuStatus.REJECTED: OrderStatus.REJECTED,
}
_UNRESOLVED = (OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.OPEN)


def emu_status(status: EmuStatus) -> OrderStatus:
    """The daemon's status for an emulator order status."""
    return _EMU_STATUS[status]


def order_endpoint(dialect: str, what: str) -> tuple[str, str]:
    """(method, path) of a contract order endpoint: ``create``, ``cancel`` or ``query``."""
    if dialect == "binance":
        return {"create": "POST", "cancel": "DELETE", "query": "GET"}[what], "/fapi/v1/order"
    return "POST" if what != "query" else "GET", {
        "create": "/v5/order/create",
        "cancel": "/v5/order/cancel",
        "query": "/v5/order/realtime",
    }[what]


def _client_id_param(dialect: str) -> str:
    return "newClientOrderId" if dialect == "binance" else "orderLinkId"


def _merge(defaults: str, extra: str) -> str:
    """TOML ``key = value`` lines: ``extra`` overrides ``defaults`` key by key."""
    lines: dict[str, str] = {}
    for line in (defaults + "\n" + extra).splitlines():
        if "=" in line:
            lines[line.split("=", 1)[0].strip()] = line.strip()
    return "\n".join(lines.values())


#: ``unknown_settle_seconds``: how long an unacknowledged order stays pending before it
#: may count as never placed. Short here so that tests stay quick, yet longer than any
#: request the emulator holds before applying it in these tests (1.5 s at most).
_EXECUTION = """\
max_orders_per_minute = 1000
lookup_attempts = 3
unknown_settle_seconds = 2
read_retries = 1
circuit_breaker_failures = 3
circuit_breaker_cooldown = 0.3
"""


def config_text(
    dialect: str, url: str, *, hedge: str = "leverage = 1", execution: str = "",
    account: str = "", assets: str = "{ BTC = 1.0 }",
) -> str:  # fmt: skip
    """A testnet configuration with one group ``btc`` on the emulator.

    ``execution`` and ``account`` are ``key = value`` lines that override the defaults;
    ``hedge`` lines are added to the group (1x leverage unless given: plenty of margin, so
    that no margin guard gets in the way of the fault under test; the default leverage
    has its own test, ``test_market.test_hedge_grows_once_open``).
    """
    account_lines = _merge(
        f'exchange = "{dialect}"\napi_host = "{url}"\nrate_limit = false\ntimeout_ms = 500',
        account,
    )
    return f"""\
mode = "testnet"
poll_interval = 1
[control]
enabled = false
[execution]
{_merge(_EXECUTION, execution)}
[accounts.ex]
{account_lines}
[[hedges]]
name = "btc"
assets = {assets}
spot_accounts = ["ex"]
instrument = "{PERP}"
hedge_account = "ex"
ratio = 0.5
tolerance = 0.02
{hedge}
"""


@dataclass
class Rig:
    """The engine against the emulator, with the bookkeeping the invariants need."""

    emu: Emulator
    workdir: Path
    engine: Engine | None = None
    journal: Journal | None = None
    lock: StateLock | None = None
    cycles: int = 0
    #: the largest short seen after any cycle, and the largest target seen so far
    peak_short: Decimal = field(default_factory=Decimal)
    peak_target: Decimal = field(default_factory=Decimal)
    over_hedged: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reports: list[CycleReport] = field(default_factory=list)
    #: assets -> beta of the group (for the independent target computation)
    assets: dict[str, Decimal] = field(default_factory=lambda: {"BTC": D(1)})
    ratio: Decimal = field(default_factory=lambda: D("0.5"))
    tolerance: Decimal = field(default_factory=lambda: D("0.02"))
    #: the position was changed outside the daemon and has not settled since
    outside: bool = False

    @property
    def dialect(self) -> str:
        return self.emu.dialect_name

    async def start(self, config: str) -> Engine:
        """Build and start the engine on ``config`` (journal in the work directory).

        The keys come from the environment (``HEDGEKEEPER_ACCOUNTS__EX__TESTNET_*``,
        set by the ``rig`` fixture).
        """
        configure_logging("error", "json", stream=open(os.devnull, "w"))
        path = self.workdir / "config.toml"
        path.write_text(config)
        settings = load_settings(path)
        if self.lock is None:
            # Like `run`: the state directory is this engine's alone while it lives.
            self.lock = StateLock.acquire(self.workdir, config=path)
        if self.journal is None:
            self.journal = Journal(self.workdir / "journal.db")
        self.engine = Engine(settings, build_venues(settings, self.journal), self.journal,
                             lock=self.lock)  # fmt: skip
        self.engine.events.add_listener(self.events.append)
        await self.engine.start()
        return self.engine

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
            self.engine = None

    def release(self) -> None:
        """Give up the state lock (a process that ended)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- driving -------------------------------------------------------------------------

    async def cycle(self, n: int = 1) -> CycleReport:
        """Run ``n`` cycles; after each, note the short and the target (over-hedge check)."""
        assert self.engine is not None
        report = None
        for _ in range(n):
            report = await self.engine.run_cycle()
            self.reports.append(report)
            self.cycles += 1
            self._watch()
        assert report is not None
        return report

    async def until(self, condition: Callable[[], bool], max_cycles: int = 40,
                    what: str = "", pause: float = 0.0) -> int:  # fmt: skip
        """Cycle until ``condition()`` holds; returns the cycles it took.

        ``pause`` seconds pass between cycles (for cool-downs measured in wall time).
        """
        for n in range(max_cycles):
            if condition():
                return n
            await self.cycle()
            if pause:
                await asyncio.sleep(pause)
        if condition():
            return max_cycles
        raise AssertionError(f"{what or condition} not reached in {max_cycles} cycles; "
                             f"{self.describe()}")  # fmt: skip

    async def settle(self, max_cycles: int = 40, pause: float = 0.0) -> int:
        """Cycle until the hedge is within tolerance and no order is unresolved."""
        return await self.until(
            lambda: self.hedged() and not self.unresolved(), max_cycles, "settled hedge", pause
        )

    def outside_change(self) -> None:
        """The position was changed outside the daemon: no over-hedge check until it settles."""
        self.outside = True

    def _watch(self) -> None:
        short, target = self.short(), self.target()
        self.peak_target = max(self.peak_target, target)
        self.peak_short = max(self.peak_short, short)
        if self.outside:
            self.outside = not self.hedged()
            return
        band = self.tolerance * self.peak_target + self.step()
        if short > self.peak_target + band:
            self.over_hedged.append(
                f"cycle {self.cycles}: short {short} > target {self.peak_target} + {band}"
            )

    # -- the truth, from the emulator -------------------------------------------------------

    def step(self) -> Decimal:
        return self.emu.engine.markets[PERP].step_size

    def short(self) -> Decimal:
        """The hedge at the emulator (short as a positive number)."""
        return -self.emu.position(KEY, PERP).qty

    def target(self) -> Decimal:
        """The target short computed from the emulator's balances and prices, not the daemon's."""
        balances = self.emu.balances(KEY)
        exposure = D(0)
        for asset, beta in self.assets.items():
            free, locked = balances.get(asset, (D(0), D(0)))
            exposure += (
                (free + locked)
                * self.emu.engine.mid(self.emu.engine.markets[f"{asset}/USDT"])
                * beta
            )
        price = self.emu.engine.mark(PERP)
        raw = exposure * self.ratio / price
        step = self.step()
        return (raw / step).to_integral_value(ROUND_DOWN) * step

    def hedged(self) -> bool:
        """|short - target| within the group's band (and one step of rounding)."""
        target = self.target()
        return abs(self.short() - target) <= self.tolerance * target + self.step()

    def unresolved(self) -> list[Any]:
        assert self.journal is not None
        return [o for o in self.journal.orders() if o.status in _UNRESOLVED]

    def describe(self) -> str:
        assert self.journal is not None
        last = self.reports[-1] if self.reports else None
        decisions = [(d.group, d.action, d.reason) for d in last.decisions] if last else []
        journal = [(o.request.client_order_id[-4:], o.status.value, str(o.filled))
                   for o in self.journal.orders()]  # fmt: skip
        emulator = [(o.client_id[-4:], o.status.value, str(o.executed_qty))
                    for o in self.emu.orders(KEY)]  # fmt: skip
        return (f"short={self.short()} target={self.target()} journal={journal} "
                f"emulator={emulator} last={decisions}")  # fmt: skip

    # -- the invariants ------------------------------------------------------------------------

    def create_requests(self) -> Counter[str]:
        """How many create requests carried each client id."""
        _, path = order_endpoint(self.dialect, "create")
        param = _client_id_param(self.dialect)
        return Counter(
            str(r.params.get(param)) for r in self.emu.requests
            if r.method == "POST" and r.path == path and r.params.get(param)
        )  # fmt: skip

    def check_no_duplicates(self, *, over_hedge: bool = True) -> None:
        ids = [o.client_id for o in self.emu.orders(KEY)]
        assert len(ids) == len(set(ids)), f"a client id was used twice at the emulator: {ids}"
        resent = {cid: n for cid, n in self.create_requests().items() if n > 1}
        assert not resent, f"an order was sent again under the same client id: {resent}"
        if over_hedge:
            assert not self.over_hedged, f"two orders for one intent: {self.over_hedged}"

    def check_nothing_lost(self) -> None:
        assert self.journal is not None
        journaled = {o.request.client_order_id for o in self.journal.orders()}
        missing = [o.client_id for o in self.emu.orders(KEY) if o.client_id not in journaled]
        assert not missing, f"orders at the emulator missing from the journal: {missing}"

    def check_hedged(self) -> None:
        assert self.hedged(), f"hedge not within tolerance: {self.describe()}"

    def check_consistent(self) -> None:
        """Each journaled order agrees with the emulator's own record of it."""
        assert self.journal is not None
        at_emulator = {o.client_id: o for o in self.emu.orders(KEY)}
        for order in self.journal.orders():
            cid = order.request.client_order_id
            seen = at_emulator.get(cid)
            if seen is None:
                assert order.status is OrderStatus.REJECTED, (
                    f"{cid} never reached the emulator but the journal says "
                    f"{order.status.value}: {self.describe()}"
                )
                continue
            expected = emu_status(seen.status)
            assert order.status is expected, (
                f"{cid}: journal {order.status.value}, emulator {seen.status.value}: "
                f"{self.describe()}"
            )
            assert order.filled == seen.executed_qty, (
                f"{cid}: journal filled {order.filled}, emulator {seen.executed_qty}"
            )
            same = (order.request.amount == seen.qty
                    and order.request.side.value == seen.side.value.lower())  # fmt: skip
            assert same, f"{cid}: journal and emulator disagree on the order"

    def check_all(self, *, over_hedge: bool = True) -> None:
        """Every promise at once (call after the fault has cleared and the rig settled)."""
        self.check_no_duplicates(over_hedge=over_hedge)
        self.check_nothing_lost()
        self.check_hedged()
        self.check_consistent()

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e.get("event") == event)
