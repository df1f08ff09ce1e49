"""Config fuzz: hostile values anywhere in the schema are refused by name or run cleanly.

Hypothesis starts from a valid offline configuration and sets fields all over the
schema (top level, execution, control, paper, the sim, the hedge group) — and keys that
do not exist — to hostile values: inf, nan, negatives, zero, 1e308, huge integers, empty
and whitespace strings, wrong types, nested tables. Every document must either be
refused as a ``ConfigError`` whose message names the field (never a traceback, never the
secret planted in it), or pass the shared preflight and run one cycle without raising.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hedgekeeper.engine import Engine
from hedgekeeper.exceptions import ConfigError
from hedgekeeper.journal import Journal
from hedgekeeper.logs import configure_logging
from hedgekeeper.preflight import preflight
from hedgekeeper.settings import load_settings
from hedgekeeper.venues import build_venues

SECRET = "fuzz-secret-value-0123456789"

BASE: dict[str, Any] = {
    "mode": "dry-run",
    "poll_interval": 1,
    "control": {"enabled": False},
    "execution": {},
    "paper": {},
    "accounts": {"demo": {"exchange": "sim", "sim": {
        "prices": {"BTC": 70000, "ETH": 3000}, "balances": {"BTC": 1.0},
        "contract_sizes": {"BTC": 0.01, "ETH": 0.1}}}},
    "hedges": [{"name": "btc", "assets": {"BTC": 1.0}, "spot_accounts": ["demo"],
                "instrument": "BTC/USDT:USDT", "hedge_account": "demo", "ratio": 0.5}],
}  # fmt: skip

#: (path into BASE, key): where a hostile value lands.
PLACES = [
    ((), k) for k in ("mode", "poll_interval", "heartbeat_interval", "funding_poll_interval",
                      "instance", "state_dir", "pol_interval")
] + [
    (("execution",), k) for k in ("max_orders_per_minute", "read_retries", "lookup_attempts",
                                  "unknown_settle_seconds", "position_settle_seconds",
                                  "circuit_breaker_cooldown", "orphan_orders", "bogus")
] + [
    (("control",), k) for k in ("token", "host", "port", "allowed_origins", "enabled")
] + [
    (("paper",), k) for k in ("taker_fee", "maker_fee", "slippage_bps")
] + [
    (("accounts", "demo", "sim"), k) for k in ("prices", "balances", "volatility", "speed",
                                               "spread_bps", "funding_rate", "positions")
] + [
    (("hedges", 0), k) for k in ("ratio", "tolerance", "max_ratio", "assets", "extra_holdings",
                                 "max_order_usd", "reprice_after", "deadline", "max_data_age",
                                 "runaway_window", "max_jump", "slippage_cap_bps", "leverage",
                                 "instrument", "name", "spot_accounts", "topup_max_usd", "rati0")
]  # fmt: skip

HOSTILE = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 0, -1, -0.0, 1e308, 10**30, 2**63,
                     1e-300, "", " ", "\t", SECRET, f" {SECRET} ", "inf", "NaN", True, False,
                     [], {}, [1, "a"], {"x": {"y": 1}}, {"BTC": math.inf}, {"BTC": -5},
                     {"BTC": 1e16}, {"": 1}, ["demo", "demo"], "0.0.0.0", "é" * 300]),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}"
                               for k, v in value.items()) + "}"  # fmt: skip
    raise TypeError(value)


def toml_document(data: dict[str, Any]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if k not in ("hedges",)
             and not isinstance(v, dict)]  # fmt: skip
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{key} = {toml_value(value)}")
    for hedge in data.get("hedges", []):
        lines.append("[[hedges]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in hedge.items())
    return "\n".join(lines) + "\n"


async def one_cycle(settings_obj: Any) -> None:
    journal = Journal(None)
    engine = Engine(settings_obj, build_venues(settings_obj, journal), journal)
    try:
        await engine.start()
        await engine.run_cycle()
    finally:
        await engine.close()
        journal.close()


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(PLACES), HOSTILE), min_size=1, max_size=3))
def test_hostile_configs_are_refused_by_name_or_run_cleanly(
    tmp_path_factory: Any, changes: list[tuple[tuple[tuple[Any, ...], str], Any]]
) -> None:
    configure_logging("error", "json", stream=open("/dev/null", "w"))
    data = json.loads(json.dumps(BASE))
    for (where, key), value in changes:
        target: Any = data
        for part in where:
            target = target[part]
        target[key] = value
    path = Path(tmp_path_factory.mktemp("fuzz")) / "config.toml"
    path.write_text(toml_document(data))
    try:
        loaded = load_settings(path)
        preflight(loaded)
    except ConfigError as error:
        text = str(error)
        assert "Traceback" not in text
        assert SECRET not in text, f"a config error echoed a value: {text}"
        named = {key for (_, key), _ in changes} | {"cannot read configuration"}
        assert any(n in text for n in named) or re.search(r"\w+(\.\w+)+", text), text
        return
    asyncio.run(one_cycle(loaded))
