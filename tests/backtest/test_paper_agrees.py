"""Paper trading and the backtest agree on the same bars.

The same hourly bars drive (a) the daemon's dry-run path — the sim venue
replaying the CSVs, wrapped in the paper venue, one engine cycle per bar — and
(b) ``run_backtest``. Both must send the same orders, get the same fills and
fees, and book the same funding. (The sim venue settles funding on a bar's open
time and the backtest on its close, one cycle apart: the prices stand still around
the settlements here, so the amounts are equal.)
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from hedgekeeper.backtest.runner import load_data, run_backtest
from hedgekeeper.engine import Engine
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.settings import load_settings
from hedgekeeper.venues.paper import PaperVenue
from hedgekeeper.venues.sim import SimVenue
from tests.backtest.helpers import HOUR_MS, START_MS, btc_config, write_bars, write_funding

STEPS = 40


def _spot(step: int) -> float:
    # moves for a while, then stands still through the funding settlements
    return 60000.0 + (400 * step * (1 if step % 2 else -0.5) if step < 13 else 1000)


def _perp(step: int) -> float:
    # the basis swings by up to 2 % (the direct hedge's target moves with it), then rests
    basis = 0.01 * ((step % 5) - 2) if step < 13 else 0.001
    return _spot(step) * (1 + basis)


async def test_paper_and_backtest_fill_and_fund_alike(tmp_path: Path) -> None:
    configure_logging("error", "json")
    bars = tmp_path / "bars"
    spot = write_bars(bars, "spot", "BTC", [(START_MS + i * HOUR_MS, _spot(i))
                                            for i in range(STEPS)])  # fmt: skip
    perp = write_bars(bars, "perp", "BTC", [(START_MS + i * HOUR_MS, _perp(i))
                                            for i in range(STEPS)])  # fmt: skip
    funding = write_funding(bars, "BTC", [(START_MS + h * HOUR_MS, "0.0002")
                                          for h in (20, 28, 36, 44)])  # fmt: skip
    config = btc_config(tmp_path, extra="tolerance = 0.001\nmax_jump = 0.5\n")
    text = config.read_text().replace(
        "contract_sizes = { BTC = 0.01 }",
        f'contract_sizes = {{ BTC = 0.01 }}\nspeed = 3600\nreplay = {{ BTC = "{spot}" }}\n'
        f'replay_perp = {{ BTC = "{perp}" }}\nreplay_funding = {{ BTC = "{funding}" }}',
    )
    config.write_text(text)
    settings = load_settings(config)

    # (a) the daemon's path: sim replay + paper, one cycle per bar in market time
    class Clock:
        step = 0

        def wall(self) -> float:
            return float(self.step)  # speed 3600: one wall second is one bar

        def market(self) -> float:
            return (START_MS + (self.step + 1) * HOUR_MS) / 1000

    clock = Clock()
    journal = Journal(None, clock=clock.market)
    account = settings.accounts["demo"].sim
    assert account is not None
    sim = SimVenue("demo", account, clock=clock.wall, epoch=0.0)
    paper = PaperVenue(sim, journal, settings.paper, clock=clock.market)
    engine = Engine(settings, {"demo": paper}, journal, clock=clock.market)
    await engine.start()
    for step in range(STEPS):
        clock.step = step
        await engine.run_cycle()
    daemon_fills = [(f["side"], f["amount"], f["price"], f["fee_usd"], f["at"])
                    for f in journal.fills()]  # fmt: skip
    daemon_funding = [(p.symbol, p.amount) for p in journal.paper_funding("demo", 0, 1e12)]

    # (b) the backtest on the same files
    run = await run_backtest(settings, load_data(settings, bars, "1h"))
    backtest_fills = [(f["side"], f["amount"], f["price"], f["fee_usd"], f["at"])
                      for f in run.journal.fills()]  # fmt: skip
    backtest_funding = [(p.symbol, p.amount) for p in run.journal.paper_funding("demo", 0, 1e12)]

    assert len(daemon_fills) >= 3, "the bars make it trade more than once"
    assert backtest_fills == daemon_fills
    assert daemon_funding and backtest_funding == daemon_funding
    assert sum(D(a) for _, a in daemon_funding) > 0  # a short receives a positive rate
    journal.close()
    run.journal.close()
