"""Estimated betas: recovery on synthetic series, fallbacks, and the out-of-sample test."""

from __future__ import annotations

import csv
import random
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgekeeper.beta import BetaRules, aligned_returns, estimate_beta, min_variance, walk_forward
from tests.conftest import shared_or_skip

PLAIN = BetaRules(shrink=0.0, min_samples=100, min_r2=0.1)


def synthetic(beta: float, n: int, noise: float, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    hedge = [rng.gauss(0, 0.01) for _ in range(n)]
    asset = [beta * h + rng.gauss(0, noise) for h in hedge]
    return asset, hedge


@settings(max_examples=25, deadline=None)
@given(beta=st.floats(0.5, 2.5), seed=st.integers(0, 10_000))
def test_recovers_a_known_beta_within_tolerance(beta: float, seed: int) -> None:
    asset, hedge = synthetic(beta, 720, noise=0.005, seed=seed)
    estimate = estimate_beta(asset, hedge, PLAIN)
    assert estimate.estimated
    # 720 bars, noise half the hedge's volatility: the standard error is about 0.02.
    assert abs(float(estimate.beta) - beta) < 0.1
    expected_r2 = (beta * 0.01) ** 2 / ((beta * 0.01) ** 2 + 0.005**2)
    assert estimate.samples == 720 and estimate.r2 is not None
    assert abs(estimate.r2 - expected_r2) < 0.1


def test_thin_data_falls_back_and_says_why() -> None:
    asset, hedge = synthetic(1.5, 50, noise=0.001, seed=1)
    estimate = estimate_beta(asset, hedge, BetaRules(min_samples=168, fallback=D("1.2")))
    assert not estimate.estimated and estimate.beta == D("1.2")
    assert estimate.reason == "50 samples < 168"


def test_a_weak_fit_falls_back() -> None:
    asset, hedge = synthetic(0.2, 720, noise=0.05, seed=2)  # R² about 0.0016
    estimate = estimate_beta(asset, hedge, BetaRules(min_r2=0.2))
    assert not estimate.estimated and estimate.beta == 1
    assert estimate.reason.startswith("R² 0.0") and estimate.reason.endswith("< 0.2")


def test_a_flat_hedge_falls_back() -> None:
    estimate = estimate_beta([0.01, -0.01] * 200, [0.0] * 400, BetaRules())
    assert not estimate.estimated and estimate.reason == "no variance"


def test_shrinks_toward_one_and_clamps() -> None:
    asset, hedge = synthetic(2.0, 720, noise=0.001, seed=3)
    shrunk = estimate_beta(asset, hedge, BetaRules(shrink=0.5))
    assert abs(float(shrunk.beta) - 1.5) < 0.02  # halfway between ~2 and 1
    clamped = estimate_beta(asset, hedge, BetaRules(shrink=0.0, beta_max=1.6))
    assert clamped.beta == D("1.6") and "clamped" in clamped.reason


def test_ewma_follows_a_change_of_beta_faster() -> None:
    old_a, old_h = synthetic(0.5, 600, noise=0.001, seed=4)
    new_a, new_h = synthetic(1.5, 120, noise=0.001, seed=5)
    asset, hedge = old_a + new_a, old_h + new_h
    equal = min_variance(asset, hedge)
    ewma = min_variance(asset, hedge, halflife=24)
    assert equal is not None and ewma is not None
    assert abs(ewma[0] - 1.5) < abs(equal[0] - 1.5)
    assert abs(ewma[0] - 1.5) < 0.05


def test_returns_are_taken_only_across_common_consecutive_bars() -> None:
    asset = {0: 100.0, 3600: 110.0, 7200: 121.0, 10800: 133.1}
    hedge = {0: 10.0, 3600: 10.5, 10800: 11.0}  # 7200 missing
    a, h = aligned_returns(asset, hedge)
    assert len(a) == len(h) == 2  # 0 -> 3600, 3600 -> 10800


def closes(path) -> dict[int, float]:
    with path.open() as handle:
        rows = csv.reader(handle)
        next(rows)
        return {int(row[0]): float(row[4]) for row in rows}


ALTS = ("SOL", "DOGE", "XRP", "BNB", "AVAX", "LINK", "ADA")


def test_out_of_sample_the_estimate_beats_beta_one_on_the_altcoin_basket() -> None:
    """Seven altcoins (equal USD weights) hedged 100 % with the ETH perpetual, hourly,
    2025-08 to 2026-02: 30-day rolling betas, refreshed daily, estimated on the past only."""
    data = shared_or_skip("data", "binance")
    basket = {a: closes(data / f"binance_spot_{a}USDT_1h.csv") for a in ALTS}
    eth = closes(data / "binance_perp_ETHUSDT_1h.csv")
    result = walk_forward(basket, eth, BetaRules(), window=720, refresh=24)
    assert result.bars > 4000
    assert result.effectiveness_estimate > result.effectiveness_fixed
    # not by a hair: the residual variance is at least 1 % lower than with beta 1
    residual_estimate = 1 - result.effectiveness_estimate
    residual_fixed = 1 - result.effectiveness_fixed
    assert residual_estimate < 0.99 * residual_fixed
    assert 0.7 < result.mean_beta < 1.0  # the basket moves less than ETH


def test_walk_forward_refuses_too_short_a_history() -> None:
    series = {t * 3600: 100.0 + t for t in range(10)}
    with pytest.raises(ValueError, match="nothing to score"):
        walk_forward({"A": series}, series, BetaRules(), window=720)


def test_ccxt_bars_become_sorted_closes_and_a_bad_bar_is_refused() -> None:
    from hedgekeeper.venues.ccxt_venue import _closes

    raw = [[7200000, 1, 2, 0.5, 1.5, 10], [3600000, 1, 2, 0.5, 1.25, 10]]
    assert _closes(raw) == [(3600000, D("1.25")), (7200000, D("1.5"))]
    with pytest.raises(ValueError, match="at or below zero"):
        _closes([[0, 1, 1, 1, 0, 1]])
    with pytest.raises(IndexError):
        _closes([[0, 1]])  # a short row: an unusable reply (a failed read, never a zero)
