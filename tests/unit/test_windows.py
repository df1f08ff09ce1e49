"""Hedge windows: the right ratio at every instant, and no flapping at a boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgekeeper.allocation import plan_policy
from hedgekeeper.exposure import Exposure
from hedgekeeper.groups import WindowSettings, parse_instant
from hedgekeeper.model import GroupSpec, MarketKind, MarketSpec, Side
from hedgekeeper.windows import HedgeWindow, active_window, policy_at


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_absolute_window_is_half_open() -> None:
    window = HedgeWindow(ratio=D(1), start=ts("2026-03-18T18:00"), end=ts("2026-03-19T06:00"))
    base = D("0.5")
    assert policy_at(base, None, [window], ts("2026-03-18T17:59:59")).ratio == base
    assert policy_at(base, None, [window], ts("2026-03-18T18:00")).ratio == 1
    assert policy_at(base, None, [window], ts("2026-03-19T05:59:59")).ratio == 1
    assert policy_at(base, None, [window], ts("2026-03-19T06:00")).ratio == base


def test_recurring_window_past_midnight_belongs_to_its_start_day() -> None:
    fri_night = WindowSettings(weekdays=["fri"], daily_start="22:00", daily_end="02:00",
                               ratio=D(1)).window()  # fmt: skip
    # 2026-03-20 is a Friday.
    assert fri_night.contains(ts("2026-03-20T22:00"))
    assert fri_night.contains(ts("2026-03-21T01:59:59"))
    assert not fri_night.contains(ts("2026-03-21T02:00"))
    assert not fri_night.contains(ts("2026-03-20T21:59:59"))
    assert not fri_night.contains(ts("2026-03-19T23:00"))  # Thursday night
    assert not fri_night.contains(ts("2026-03-20T01:00"))  # Friday morning: Thursday's part


def test_first_listed_window_wins_an_overlap() -> None:
    first = HedgeWindow(ratio=D(1), start=0, end=100)
    second = HedgeWindow(ratio=D("0.2"), start=50, end=200)
    assert active_window([first, second], 75) is first
    assert active_window([first, second], 150) is second


def test_window_settings_refuse_half_shapes() -> None:
    with pytest.raises(ValueError, match="start and end"):
        WindowSettings(start=datetime(2026, 1, 1), ratio=D(1))
    with pytest.raises(ValueError, match="not after start"):
        WindowSettings(start=datetime(2026, 1, 2), end=datetime(2026, 1, 1), ratio=D(1))
    with pytest.raises(ValueError, match="sets a ratio"):
        WindowSettings(daily_start="10:00", daily_end="11:00")


def test_parse_instant_takes_z_offsets_and_naive_utc() -> None:
    assert parse_instant("2026-03-18T20:00Z") == parse_instant("2026-03-18T20:00") == ts(
        "2026-03-18T20:00")  # fmt: skip
    assert parse_instant("2026-03-18T21:00+01:00") == ts("2026-03-18T20:00")
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant("tomorrow")


windows_strategy = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(1, 5_000),
              st.sampled_from([D(0), D("0.5"), D(1), D("1.5")])),
    max_size=4,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(windows=windows_strategy, instants=st.lists(st.integers(-100, 16_000), max_size=60))
def test_ratio_at_every_instant_is_the_first_containing_window(windows, instants) -> None:
    specs = [HedgeWindow(ratio=r, start=float(s), end=float(s + n)) for s, n, r in windows]
    base = D("0.3")
    for at in instants:
        expected = next((r for s, n, r in windows if s <= at < s + n), base)
        assert policy_at(base, None, specs, float(at)).ratio == expected


def market() -> MarketSpec:
    return MarketSpec("BTC/USDT:USDT", MarketKind.LINEAR, "BTC", "USDT", "USDT", D("0.01"), D(1))


@settings(max_examples=100, deadline=None)
@given(windows=windows_strategy, start=st.integers(-100, 1000),
       step=st.integers(40, 400))  # fmt: skip
def test_no_flapping_orders_only_at_window_edges(windows, start, step) -> None:
    """Walking through time with fills applied, an order happens only when a window edge
    was crossed since the last instant, and at most once per edge crossing."""
    specs = tuple(HedgeWindow(ratio=r, start=float(s), end=float(s + n)) for s, n, r in windows)
    group = GroupSpec("g", {"BTC": D(1)}, ("a",), {}, "BTC/USDT:USDT", "a", D("0.3"),
                      tolerance=D("0.02"), max_ratio=D(2), windows=specs)  # fmt: skip
    exposure = Exposure("g", D(70000), {"BTC": D(1)}, {"BTC": D(70000)})
    edges = sorted({e for s, n, _ in windows for e in (s, s + n)})
    position = D(0)
    previous = None
    for at in range(start, 16_000, step):
        plan, _, _ = plan_policy(group, exposure, market(), D(70000), position, D(0), float(at))
        if plan.intent is not None:
            crossed = previous is None or any(previous < e <= at for e in edges)
            assert crossed, f"order at {at} without a window edge since {previous}"
            contracts = plan.intent.contracts
            position -= contracts if plan.intent.side is Side.SELL else -contracts  # the fill
        previous = at
    # and the final state is settled: one more plan at the same instant orders nothing
    if previous is not None:
        plan, _, _ = plan_policy(group, exposure, market(), D(70000), position, D(0), previous)
        assert plan.intent is None


def test_an_allocation_window_moves_the_targets() -> None:
    from hedgekeeper.model import AllocationSpec

    base = {"BTC": D("0.5"), "ETH": D("0.3"), "USDT": D("0.2")}
    wide = {"BTC": D("0.6"), "ETH": D("0.2"), "USDT": D("0.2")}
    window = HedgeWindow(targets=wide, start=100.0, end=200.0, label="bull")
    group = GroupSpec("rebal.BTC", {a: D(1) for a in base}, ("a",), {}, "BTC/USDT:USDT", "a",
                      D(0), allocation=AllocationSpec("BTC", base, D("0.05"), D("0.05")),
                      windows=(window,))  # fmt: skip
    holdings = {"BTC": D("1.2"), "ETH": D(8), "USDT": D(20000)}
    prices = {"BTC": D(50000), "ETH": D(2500), "USDT": D(1)}
    exposure = Exposure("rebal.BTC", D(0), holdings, prices)
    perp = MarketSpec("BTC/USDT:USDT", MarketKind.LINEAR, "BTC", "USDT", "USDT", D("0.1"), D(1))
    outside, _, _ = plan_policy(group, exposure, perp, D(50000), D(0), D(0), 50.0)
    assert outside.intent is not None and outside.intent.contracts == 2
    inside, _, details = plan_policy(group, exposure, perp, D(50000), D(0), D(0), 150.0)
    assert inside.intent is None and details["window"] == "bull"
    assert details["allocation"]["targets"]["BTC"] == "0.6"
