"""Fixtures of the fault-injection suite: an emulator per dialect and a rig around it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.emulator import Emulator
from tests.faults.harness import KEY, SECRET, Rig

BOTH = ["binance", "bybit"]


async def make_emulator(dialect: str, seed: int = 7) -> Emulator:
    emu = Emulator(dialect, {KEY: SECRET}, prices={"BTC/USDT": 60000, "ETH/USDT": 3000},
                   seed=seed)  # fmt: skip
    await emu.start()
    emu.set_balance(KEY, "BTC", "1.0")
    emu.set_balance(KEY, "USDT", "50000")
    emu.set_futures_wallet(KEY, 500000)
    return emu


@pytest.fixture(params=BOTH)
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    emulator = await make_emulator(request.param)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def binance() -> AsyncIterator[Emulator]:
    emulator = await make_emulator("binance")
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def rig(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    made = Rig(emu, tmp_path)
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY", KEY)
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET", SECRET)
    try:
        yield made
    finally:
        await made.close()
        made.release()
        if made.journal is not None:
            made.journal.close()


@pytest.fixture
async def binance_rig(binance: Emulator, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:  # fmt: skip
    made = Rig(binance, tmp_path)
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_API_KEY", KEY)
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__EX__TESTNET_SECRET", SECRET)
    try:
        yield made
    finally:
        await made.close()
        made.release()
        if made.journal is not None:
            made.journal.close()


# -- the summary table: scenario -> outcome, printed at the end of the run ----------------

_OUTCOMES: list[tuple[str, str, str, str]] = []


@pytest.fixture
def record(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``record("what happened")``: a note for the summary table of this scenario."""

    def note(text: str) -> None:
        request.node.user_properties.append(("outcome", text))

    return note


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        doc = (getattr(item, "function", None).__doc__ or item.name).strip().splitlines()[0]
        dialect = item.callspec.id if hasattr(item, "callspec") else ""
        dialect = dialect or ("binance" if "binance" in item.fixturenames else "")
        notes = "; ".join(v for k, v in item.user_properties if k == "outcome")
        if hasattr(report, "wasxfail"):
            status = "XFAIL " + report.wasxfail.removeprefix("BUG: ")[:70]
        else:
            status = report.outcome.upper()
        _OUTCOMES.append((doc.rstrip("."), dialect, status, notes))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _OUTCOMES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault scenarios")
    for scenario, dialect, status, notes in _OUTCOMES:
        write(f"| {scenario} | {dialect} | {status} | {notes} |")
