"""Estimated betas: the minimum-variance hedge ratio of an asset against its hedge (pure).

For returns r_a of the asset and r_h of the hedge instrument over the same bars,
the hedge ratio that minimises the variance of r_a - h r_h is

    h* = Cov(r_a, r_h) / Var(r_h)

and R² = Corr(r_a, r_h)² says how much of the asset's variance the hedge can
take away. The estimate is shrunk toward 1 (a noisy estimate is pulled to the
plain one-for-one hedge), clamped to ``[beta_min, beta_max]``, and used only
with enough samples and an R² above a floor; otherwise the fallback is used and
the reason says why.

Statistics run in binary floating point: an estimate is not money, and its
error is many orders of magnitude above float rounding. The beta that leaves
this module is a ``Decimal`` rounded to 4 places, like a configured one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "BetaEstimate",
    "BetaRules",
    "WalkForward",
    "aligned_returns",
    "estimate_beta",
    "min_variance",
    "walk_forward",
]


@dataclass(frozen=True, slots=True)
class BetaRules:
    """How an estimate is made and when it may be used."""

    shrink: float = 0.1  # weight of 1 in the result: beta = (1 - shrink) h* + shrink
    beta_min: float = 0.0
    beta_max: float = 3.0
    min_samples: int = 168  # a week of hourly bars
    min_r2: float = 0.2
    fallback: Decimal = Decimal(1)
    halflife: float | None = None  # EWMA half-life in bars; None: equal weights


@dataclass(frozen=True, slots=True)
class BetaEstimate:
    """The beta to use, and what it rests on."""

    beta: Decimal
    estimated: bool  # False: the fallback was used (see reason)
    raw: float | None  # h* before shrinkage and clamping
    r2: float | None
    samples: int
    reason: str


def aligned_returns(
    asset: Mapping[int, float], hedge: Mapping[int, float]
) -> tuple[list[float], list[float]]:
    """Log returns of both close series over consecutive common timestamps.

    A return is taken only between two bars that both series have, one after the
    other in the common timeline; a gap in either series skips that step.
    """
    common = sorted(set(asset) & set(hedge))
    asset_returns: list[float] = []
    hedge_returns: list[float] = []
    for before, after in itertools.pairwise(common):
        a0, a1, h0, h1 = asset[before], asset[after], hedge[before], hedge[after]
        if a0 > 0 and a1 > 0 and h0 > 0 and h1 > 0:
            asset_returns.append(math.log(a1 / a0))
            hedge_returns.append(math.log(h1 / h0))
    return asset_returns, hedge_returns


def min_variance(
    asset_returns: Sequence[float], hedge_returns: Sequence[float], halflife: float | None = None
) -> tuple[float, float] | None:
    """``(h*, R²)`` of the asset on the hedge; ``None`` when the hedge did not move."""
    n = min(len(asset_returns), len(hedge_returns))
    if n < 2:
        return None
    if halflife is None:
        weights = [1.0] * n
    else:
        decay = 0.5 ** (1.0 / halflife)
        weights = [decay ** (n - 1 - i) for i in range(n)]  # the newest bar weighs 1
    total = sum(weights)
    mean_a = sum(w * a for w, a in zip(weights, asset_returns, strict=False)) / total
    mean_h = sum(w * h for w, h in zip(weights, hedge_returns, strict=False)) / total
    cov = var_h = var_a = 0.0
    for w, a, h in zip(weights, asset_returns, hedge_returns, strict=False):
        da, dh = a - mean_a, h - mean_h
        cov += w * da * dh
        var_h += w * dh * dh
        var_a += w * da * da
    if var_h <= 0 or var_a <= 0:
        return None
    return cov / var_h, cov * cov / (var_h * var_a)


def estimate_beta(
    asset_returns: Sequence[float], hedge_returns: Sequence[float], rules: BetaRules
) -> BetaEstimate:
    """The beta to use for one asset against its hedge, or the fallback and why."""
    samples = min(len(asset_returns), len(hedge_returns))
    if samples < rules.min_samples:
        return BetaEstimate(rules.fallback, False, None, None, samples,
                            f"{samples} samples < {rules.min_samples}")  # fmt: skip
    fitted = min_variance(asset_returns, hedge_returns, rules.halflife)
    if fitted is None:
        return BetaEstimate(rules.fallback, False, None, None, samples, "no variance")
    raw, r2 = fitted
    if r2 < rules.min_r2:
        return BetaEstimate(rules.fallback, False, raw, r2, samples,
                            f"R² {r2:.3f} < {rules.min_r2}")  # fmt: skip
    shrunk = (1 - rules.shrink) * raw + rules.shrink
    clamped = min(max(shrunk, rules.beta_min), rules.beta_max)
    reason = f"h* {raw:.4f}, R² {r2:.3f}, {samples} samples"
    if clamped != shrunk:
        reason += f", clamped to [{rules.beta_min}, {rules.beta_max}]"
    beta = Decimal(str(round(clamped, 4)))
    return BetaEstimate(beta, True, raw, r2, samples, reason)


@dataclass(frozen=True, slots=True)
class WalkForward:
    """Out-of-sample hedge effectiveness of a basket: estimated betas against fixed ones."""

    bars: int  # out-of-sample bars scored
    effectiveness_estimate: float  # 1 - Var(hedged) / Var(unhedged)
    effectiveness_fixed: float
    mean_beta: float  # the basket's estimated beta, averaged over the scored bars


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def walk_forward(
    baskets: Mapping[str, Mapping[int, float]],
    hedge: Mapping[int, float],
    rules: BetaRules,
    *,
    window: int = 720,
    refresh: int = 24,
    fixed_beta: float = 1.0,
) -> WalkForward:
    """Hedge an equal-weight basket bar by bar with betas estimated on the past only.

    Every ``refresh`` bars each asset's beta is estimated on the ``window`` bars
    before (never the bar being scored), as the daemon does on its schedule; the
    basket return of the next bars is hedged with the weighted sum of those betas,
    and with ``fixed_beta``. Closes are ``timestamp -> close``; only timestamps
    every series has are used.
    """
    common = sorted(set(hedge).intersection(*(set(series) for series in baskets.values())))
    hedge_returns = [math.log(hedge[b] / hedge[a]) for a, b in itertools.pairwise(common)]
    asset_returns = {
        asset: [math.log(series[b] / series[a]) for a, b in itertools.pairwise(common)]
        for asset, series in baskets.items()
    }
    weight = 1.0 / len(baskets)
    basket = [
        sum(weight * asset_returns[asset][i] for asset in baskets)
        for i in range(len(hedge_returns))
    ]
    unhedged: list[float] = []
    hedged_estimate: list[float] = []
    hedged_fixed: list[float] = []
    betas: list[float] = []
    beta = fixed_beta
    for i in range(window, len(hedge_returns)):
        if (i - window) % refresh == 0:
            past_hedge = hedge_returns[i - window : i]
            beta = sum(
                weight * float(estimate_beta(asset_returns[a][i - window : i], past_hedge,
                                             rules).beta)
                for a in baskets
            )  # fmt: skip
        unhedged.append(basket[i])
        hedged_estimate.append(basket[i] - beta * hedge_returns[i])
        hedged_fixed.append(basket[i] - fixed_beta * hedge_returns[i])
        betas.append(beta)
    if not unhedged:
        raise ValueError(f"fewer than {window + 1} common bars: nothing to score")
    base = _variance(unhedged)
    return WalkForward(
        bars=len(unhedged),
        effectiveness_estimate=1 - _variance(hedged_estimate) / base,
        effectiveness_fixed=1 - _variance(hedged_fixed) / base,
        mean_beta=sum(betas) / len(betas),
    )
