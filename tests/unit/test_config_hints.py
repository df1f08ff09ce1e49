"""Unknown keys get a did-you-mean naming the field path, and never show their value."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgekeeper.config_hints import section_fields, unknown_key_message
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.settings import Settings, load_settings
from tests.conftest import CONTRACT_TOML


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tolerance = 0.02", "toleranse = 0.02", "hedges.0.toleranse: unknown key; did you mean "
         "hedges.0.tolerance?"),
        ('exchange = "sim"', 'exchange = "sim"\nexchang = "x"',
         "accounts.demo.exchang: unknown key; did you mean accounts.demo.exchange?"),
        ('mode = "dry-run"', 'mode = "dry-run"\npoll_intervall = 3',
         "poll_intervall: unknown key; did you mean poll_interval?"),
        # a key of another section: named with the section it belongs to
        ('mode = "dry-run"', 'mode = "dry-run"\nmaker_fee = 0.001',
         "maker_fee: unknown key here; did you mean [paper] maker_fee?"),
        ('mode = "dry-run"', 'mode = "dry-run"\nratoi = 0.5',
         "ratoi: unknown key here; did you mean [[hedges.windows]] ratio or [[hedges]] ratio?"),
        ("tolerance = 0.02", "tolerance = 0.02\nzzzz = 1", "hedges.0.zzzz: unknown key; known "
         "here: assets, beta, deadline,"),
    ],
)  # fmt: skip
def test_unknown_keys_name_the_path_and_a_suggestion(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in CONTRACT_TOML
    message = error_of(tmp_path, CONTRACT_TOML.replace(old, new, 1))
    assert expected in message
    assert "Extra inputs are not permitted" not in message


def test_the_value_of_an_unknown_key_is_never_shown(tmp_path: Path) -> None:
    text = CONTRACT_TOML.replace(
        'exchange = "sim"', 'exchange = "sim"\nsecrte = "s3cr3t-value-xyz"\napi_kee = 12345678'
    )
    message = error_of(tmp_path, text)
    assert "accounts.demo.secrte: unknown key; did you mean accounts.demo.secret?" in message
    assert "accounts.demo.api_kee: unknown key; did you mean accounts.demo.api_key?" in message
    assert "s3cr3t-value-xyz" not in message and "12345678" not in message


def test_a_ratio_over_the_cap_names_max_ratio(tmp_path: Path) -> None:
    message = error_of(tmp_path, CONTRACT_TOML.replace("ratio = 0.5", "ratio = 5"))
    assert "ratio 5 is above max_ratio 1" in message and "raise max_ratio" in message
    assert "less than or equal to 3" not in message
    # raising the cap within its own bound makes it valid
    path = tmp_path / "ok.toml"
    path.write_text(CONTRACT_TOML.replace("ratio = 0.5", "ratio = 2.5\nmax_ratio = 3"))
    assert load_settings(path).hedges[0].ratio == 2.5


def test_section_fields_walk_nested_models() -> None:
    fields = set(section_fields(Settings))
    assert ("", "mode") in fields and ("[paper]", "maker_fee") in fields
    assert ("[[hedges]]", "ratio") in fields and ("[accounts.NAME.sim]", "seed") in fields
    assert ("[control]", "enabled") in fields
    assert unknown_key_message(Settings, ("nope", "deeper", "x")) == "unknown key"
