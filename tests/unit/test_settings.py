"""Settings: the contract file, strictness with field paths, env and secret-file overrides."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from hedgekeeper.exceptions import ConfigError
from hedgekeeper.settings import load_settings, redacted
from tests.conftest import CONTRACT_TOML


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_contract_configuration_is_accepted(contract_config: Path) -> None:
    settings = load_settings(contract_config)
    assert settings.mode.value == "dry-run"
    hedge = settings.hedges[0]
    assert (hedge.name, hedge.ratio, hedge.tolerance) == ("btc", Decimal("0.5"), Decimal("0.02"))
    sim = settings.accounts["demo"].sim
    assert sim is not None and sim.contract_sizes["BTC"] == Decimal("0.01")
    assert sim.inverse["BTC"] == 100


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("ratio = 0.5", "ratio = 1.5"), "hedges.0: ratio 1.5 is above max_ratio 1"),
        (
            ("ratio = 0.5", "ratio = -0.1"),
            "hedges.0.ratio: Input should be greater than or equal to 0",
        ),
        (
            ("ratio = 0.5", 'ratio = "half"'),
            "hedges.0.ratio: Input should be a valid decimal",
        ),
        (
            ("tolerance = 0.02", "tolerance = 0.02\nbogus = 1"),
            "hedges.0.bogus: unknown key; known here: assets,",
        ),
        (
            ('hedge_account = "demo"', 'hedge_account = "nope"'),
            "hedge_account: unknown account 'nope'",
        ),
        (
            ('spot_accounts = ["demo"]', 'spot_accounts = ["x"]'),
            "spot_accounts: unknown account 'x'",
        ),
        (
            ('instrument = "BTC/USDT:USDT"', 'instrument = "DOGE/USDT:USDT"'),
            "instrument: 'DOGE/USDT:USDT' is not listed by sim account 'demo'",
        ),
        (
            ('mode = "dry-run"', 'mode = "paper"'),
            "mode: Input should be 'dry-run', 'testnet' or 'live'",
        ),
        (
            ("seed = 1", "seed = 1\nvolatility_pct = 3"),
            "accounts.demo.sim.volatility_pct: unknown key; did you mean "
            "accounts.demo.sim.volatility?",
        ),
        (
            ('positions = { "BTC/USDT:USDT" = 0 }', 'positions = { "XRP/USDT:USDT" = 0 }'),
            "unknown instrument 'XRP/USDT:USDT'",
        ),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in CONTRACT_TOML
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, CONTRACT_TOML.replace(old, new, 1)))
    assert expected in str(caught.value)


def test_unparsable_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(write(tmp_path, "mode = = 'x'"))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_environment_overrides_file(contract_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDGEKEEPER_POLL_INTERVAL", "3.5")
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__DEMO__API_KEY", "from-env-key")
    settings = load_settings(contract_config)
    assert settings.poll_interval == 3.5
    key = settings.accounts["demo"].api_key
    assert key is not None and key.get_secret_value() == "from-env-key"
    # untouched keys of the same account keep their file values
    assert settings.accounts["demo"].sim is not None


def test_secret_files_override_file_and_env_overrides_them(
    contract_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "accounts__demo__secret").write_text("s3cr3t-from-file")
    (secrets / "HEDGEKEEPER_ACCOUNTS__DEMO__API_KEY").write_text("key-from-file")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(secrets))
    settings = load_settings(contract_config)
    account = settings.accounts["demo"]
    assert account.secret is not None and account.secret.get_secret_value() == "s3cr3t-from-file"
    assert account.api_key is not None and account.api_key.get_secret_value() == "key-from-file"
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__DEMO__SECRET", "from-env")
    assert load_settings(contract_config).accounts["demo"].secret.get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_redacted_hides_every_secret(
    contract_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEKEEPER_ACCOUNTS__DEMO__SECRET", "very-secret-value")
    data = redacted(load_settings(contract_config))
    assert data["accounts"]["demo"]["secret"] == "***"
    assert "very-secret-value" not in repr(data)


def test_two_groups_on_one_position_are_refused(tmp_path: Path) -> None:
    second = CONTRACT_TOML[CONTRACT_TOML.index("[[hedges]]") :].replace(
        'name = "btc"', 'name = "b"'
    )
    expected = "hedges.1.instrument: 'BTC/USDT:USDT' on account 'demo' already hedges group 'btc'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(write(tmp_path, CONTRACT_TOML + second))


def test_clashing_group_codes_are_refused(tmp_path: Path) -> None:
    text = CONTRACT_TOML + CONTRACT_TOML[CONTRACT_TOML.index("[[hedges]]") :].replace(
        'name = "btc"', 'name = "btc-2"'
    ).replace('instrument = "BTC/USDT:USDT"', 'instrument = "BTC/USD:BTC"')
    with pytest.raises(ConfigError, match=r"the same client order id code 'btc2'"):
        load_settings(write(tmp_path, text.replace('name = "btc"\n', 'name = "btc2"\n', 1)))
    # a name that merely starts like another is fine: the sequence width keeps ids apart
    load_settings(write(tmp_path, text.replace('name = "btc-2"', 'name = "btc22"')))


def test_group_code_is_parsed_exactly() -> None:
    from hedgekeeper.settings import group_code_of

    assert group_code_of(f"hkgab12{1:010d}", "hk") == "g"
    assert group_code_of(f"hkg1ab12{1:010d}", "hk") == "g1"
    assert group_code_of(f"hkg10ab12{12:010d}", "hk") == "g10"
    assert group_code_of(f"xxgab12{1:010d}", "hk") is None
    assert group_code_of("hkab120000000001", "hk") is None


def test_daily_summary_can_be_turned_off(contract_config: Path, tmp_path: Path) -> None:
    text = contract_config.read_text() + '[notify]\ndaily_summary = "off"\n'
    assert load_settings(write(tmp_path, text)).notify.daily_summary is None
    text = contract_config.read_text() + '[notify]\ndaily_summary = "25:00"\n'
    with pytest.raises(ConfigError, match=r"notify\.daily_summary"):
        load_settings(write(tmp_path, text))


def test_sim_listings_are_read_once_per_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation used to list the sim's symbols once per group: 8 s at 5,000 groups.
    from hedgekeeper.settings import SimSettings

    calls: list[int] = []
    listing = SimSettings.symbols
    monkeypatch.setattr(SimSettings, "symbols", lambda self: calls.append(1) or listing(self))
    groups = "".join(
        f'[[hedges]]\nname = "g{n}"\nassets = {{ A{n} = 1.0 }}\nspot_accounts = ["demo"]\n'
        f'instrument = "A{n}/USDT:USDT"\nhedge_account = "demo"\nratio = 0.5\n'
        for n in range(20)
    )
    sizes = ", ".join(f"A{n} = 0.01" for n in range(20))
    prices = ", ".join(f"A{n} = 10" for n in range(20))
    path = write(tmp_path, 'mode = "dry-run"\n[accounts.demo]\nexchange = "sim"\n'
                 f"[accounts.demo.sim]\nprices = {{ {prices} }}\n"
                 f"contract_sizes = {{ {sizes} }}\n" + groups)  # fmt: skip
    assert len(load_settings(path).hedges) == 20
    assert len(calls) <= 2  # the sim section's own check and the groups' one, not 20
