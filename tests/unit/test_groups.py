"""Allocation groups, a contract per asset and windows in the settings: checks and legs."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from hedgekeeper.exceptions import ConfigError
from hedgekeeper.settings import client_id_code, load_settings

SIM = """\
mode = "dry-run"
[accounts.demo]
exchange = "sim"
[accounts.demo.sim]
prices = { BTC = 50000, ETH = 2500, SOL = 150, AVAX = 30 }
balances = { BTC = 1.2, ETH = 8, USDT = 20000, SOL = 100, AVAX = 100 }
contract_sizes = { BTC = 0.1, ETH = 0.1, SOL = 1 }
"""

ALLOCATION = """\
[[hedges]]
name = "rebal"
targets = { BTC = 0.5, ETH = 0.3, USDT = 0.2 }
trigger = 0.05
instruments = { BTC = "BTC/USDT:USDT", ETH = "ETH/USDT:USDT" }
spot_accounts = ["demo"]
hedge_account = "demo"
"""


def load(tmp_path: Path, hedges: str):
    path = tmp_path / "c.toml"
    path.write_text(SIM + hedges)
    return load_settings(path)


def test_an_allocation_group_is_one_leg_per_hedged_asset(tmp_path: Path) -> None:
    settings = load(tmp_path, ALLOCATION)
    assert [h.name for h in settings.hedges] == ["rebal.BTC", "rebal.ETH"]
    spec = settings.hedge("rebal.BTC").spec()
    assert spec.instrument == "BTC/USDT:USDT" and spec.parent == "rebal"
    assert spec.allocation is not None and spec.allocation.asset == "BTC"
    assert spec.allocation.release == D("0.05")  # release defaults to the trigger
    assert set(spec.assets) == {"BTC", "ETH", "USDT"}  # every leg values the whole portfolio
    assert {client_id_code(h.name) for h in settings.hedges} == {"rebalBTC", "rebalETH"}


def test_long_group_names_keep_their_legs_apart_in_client_ids() -> None:
    assert client_id_code("portfolio-main.BTC") == "portfolBTC"
    assert client_id_code("portfolio-main.ETH") != client_id_code("portfolio-main.BTC")
    assert client_id_code("portfolio-main") == "portfoliom"  # plain groups unchanged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("0.2 }", "0.3 }"), "targets: the weights sum to 1.1, not 1"),
        (('instruments = {', 'instrument = "BTC/USDT:USDT"\ninstruments = {'),
         "instrument: an allocation group names a contract per hedged asset"),
        (('ETH = "ETH/USDT:USDT"', 'ETH = "BTC/USDT:USDT"'),
         "instruments.ETH: 'BTC/USDT:USDT' already hedges BTC"),
        (('ETH = "ETH/USDT:USDT"', 'USDT = "ETH/USDT:USDT"'), "a stablecoin is not hedged"),
        (('ETH = "ETH/USDT:USDT"', 'SOL = "SOL/USDT:USDT"'), "SOL has no target weight"),
        (("trigger = 0.05", "trigger = 0.05\nratio = 0.5"), "ratio: an allocation group"),
        (("trigger = 0.05", "trigger = 0.7"), "hedges.0.trigger"),
    ],
)  # fmt: skip
def test_allocation_mistakes_name_the_field(tmp_path: Path, change, message) -> None:
    with pytest.raises(ConfigError, match=r"hedges\.0") as error:
        load(tmp_path, ALLOCATION.replace(*change))
    assert message in str(error.value)


def test_a_contract_per_asset_splits_by_instrument(tmp_path: Path) -> None:
    settings = load(tmp_path, """\
[[hedges]]
name = "alts"
assets = { ETH = 1.0, SOL = 1.2, AVAX = 1.4 }
instrument = "ETH/USDT:USDT"                  # the proxy for assets not listed below
instruments = { SOL = "SOL/USDT:USDT" }
extra_holdings = { SOL = 5, AVAX = 7 }
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.8
""")  # fmt: skip
    legs = {h.name: h for h in settings.hedges}
    assert set(legs) == {"alts.ETH", "alts.SOL"}
    assert legs["alts.ETH"].assets == {"ETH": D("1.0"), "AVAX": D("1.4")}
    assert legs["alts.ETH"].extra_holdings == {"AVAX": D(7)}
    assert legs["alts.SOL"].instrument == "SOL/USDT:USDT"
    assert legs["alts.SOL"].spec().parent == "alts" and legs["alts.SOL"].spec().allocation is None


def test_one_instrument_through_instruments_keeps_the_group_name(tmp_path: Path) -> None:
    settings = load(tmp_path, """\
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
instruments = { BTC = "BTC/USDT:USDT" }
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.5
""")  # fmt: skip
    assert [h.name for h in settings.hedges] == ["btc"]
    assert settings.hedges[0].instrument == "BTC/USDT:USDT"


def test_legs_of_two_groups_cannot_share_an_instrument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"already hedges group .rebal\.BTC."):
        load(tmp_path, ALLOCATION + """\
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
instrument = "BTC/USDT:USDT"
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.5
""")  # fmt: skip


def test_a_plain_group_still_needs_assets_ratio_and_instrument(tmp_path: Path) -> None:
    base = """\
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
instrument = "BTC/USDT:USDT"
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.5
"""
    for line, message in [
        ("assets = { BTC = 1.0 }\n", "assets: a hedge needs at least one asset"),
        ('instrument = "BTC/USDT:USDT"\n', "instrument: required"),
        ("ratio = 0.5\n", "ratio: required"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, base.replace(line, ""))


def test_windows_are_checked_against_the_group(tmp_path: Path) -> None:
    plain = """\
[[hedges]]
name = "btc"
assets = { BTC = 1.0 }
instrument = "BTC/USDT:USDT"
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.5
[[hedges.windows]]
start = 2026-03-18T18:00:00Z
end = 2026-03-19T06:00:00Z
"""
    settings = load(tmp_path, plain + "ratio = 1.0\n")
    (window,) = settings.hedges[0].spec().windows
    assert window.ratio == 1 and window.end - window.start == 12 * 3600
    with pytest.raises(ConfigError, match=r"windows\.0\.ratio: 1\.5 is above max_ratio 1"):
        load(tmp_path, plain + "ratio = 1.5\n")
    with pytest.raises(ConfigError, match="only an allocation group has targets"):
        load(tmp_path, plain + "targets = { BTC = 1 }\n")
    allocation = ALLOCATION + '[[hedges.windows]]\ndaily_start = "00:00"\ndaily_end = "00:00"\n'
    with pytest.raises(ConfigError, match=r"windows.0.targets: give a weight for exactly"):
        load(tmp_path, allocation + "targets = { BTC = 1 }\n")
    with pytest.raises(ConfigError, match=r"windows\.0\.ratio: an allocation group.s windows"):
        load(tmp_path, allocation + "ratio = 1\n")
    legs = load(tmp_path, allocation + "targets = { BTC = 0.4, ETH = 0.4, USDT = 0.2 }\n")
    assert legs.hedges[1].spec().windows[0].targets == {"BTC": D("0.4"), "ETH": D("0.4"),
                                                         "USDT": D("0.2")}  # fmt: skip


def test_status_shows_the_same_extra_figures_as_plan() -> None:
    from hedgekeeper.decide import GroupDecision
    from hedgekeeper.status import group_view

    details = {"parent": "rebal", "window": "announcement",
               "betas": {"SOL": {"beta": "0.93", "estimated": True}}}  # fmt: skip
    decision = GroupDecision("rebal.BTC", "skipped", "price missing", details=details)
    view = group_view(decision, "BTC/USDT:USDT").as_dict()
    assert decision.as_dict()["window"] == view["window"] == "announcement"
    assert view["parent"] == "rebal" and view["betas"]["SOL"]["beta"] == "0.93"


AUTO_GROUP = """\
[[hedges]]
name = "alts"
assets = { ETH = 1.0, SOL = 1.2, AVAX = 1.4 }
instrument = "ETH/USDT:USDT"
instruments = { SOL = "auto", AVAX = "auto" }
spot_accounts = ["demo"]
hedge_account = "demo"
ratio = 0.8
"""


def test_auto_on_a_sim_account_uses_the_listed_perpetuals_at_once(tmp_path: Path) -> None:
    # the sim lists SOL/USDT:USDT (contract_sizes has SOL) but no AVAX perpetual
    legs = {h.name: h for h in load(tmp_path, AUTO_GROUP).hedges}
    assert set(legs) == {"alts.ETH", "alts.SOL"}
    assert legs["alts.SOL"].instrument == "SOL/USDT:USDT"
    assert set(legs["alts.ETH"].assets) == {"ETH", "AVAX"}  # AVAX stays on the proxy


class _Listing:
    def __init__(self, symbols: set[str]) -> None:
        self.symbols = symbols

    async def load_markets(self, symbols):
        from hedgekeeper.model import MarketKind, MarketSpec

        return {s: MarketSpec(s, MarketKind.LINEAR, s.split("/")[0], "USDT", "USDT", D(1), D(1))
                for s in symbols if s in self.symbols}  # fmt: skip


async def test_auto_on_an_exchange_is_decided_once_its_markets_are_known(
    tmp_path: Path,
) -> None:
    from hedgekeeper.groups import resolve_auto

    exchange = '[accounts.ex]\nexchange = "binance"\n'
    text = (SIM + AUTO_GROUP).replace('hedge_account = "demo"', 'hedge_account = "ex"') + exchange
    path = tmp_path / "c.toml"
    path.write_text(text)
    settings = load_settings(path)
    # not known yet: each "auto" asset gets a provisional leg on its own perpetual
    assert {h.name for h in settings.hedges} == {"alts.ETH", "alts.SOL", "alts.AVAX"}
    resolved = await resolve_auto(settings, {"ex": _Listing({"SOL/USDT:USDT"})})
    legs = {h.name: h for h in resolved.hedges}
    assert set(legs) == {"alts.ETH", "alts.SOL"}
    assert set(legs["alts.ETH"].assets) == {"ETH", "AVAX"}
    assert resolved.hedge("alts.SOL").instrument == "SOL/USDT:USDT"
    assert resolved.hedge("alts.ETH").spec().parent == "alts"
    assert await resolve_auto(load(tmp_path, ALLOCATION), {}) is not None  # nothing to do


def test_auto_needs_a_proxy_and_is_not_for_allocation_groups(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='"auto" falls back to the proxy: set instrument'):
        load(tmp_path, AUTO_GROUP.replace('instrument = "ETH/USDT:USDT"\n', ""))
    with pytest.raises(ConfigError, match='not "auto"'):
        load(tmp_path, ALLOCATION.replace('ETH = "ETH/USDT:USDT"', 'ETH = "auto"'))
