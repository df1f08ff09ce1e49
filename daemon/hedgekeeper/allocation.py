"""Rebalancing with futures: hedge what an asset holds above its target weight (pure).

The micro-futures guide's "synthetic sale": a portfolio has target weights
(50 % BTC / 30 % ETH / 20 % stablecoins). When an asset's *effective* weight —
its spot value minus the notional of its short hedge, over the portfolio value —
rises above ``target + trigger``, the hedge is sold up to the overweight
``spot value - target x portfolio value``; when the effective weight falls below
``target - release``, the hedge is bought back down to the (smaller) overweight,
reduce-only. In between nothing is traded, so small moves do not churn.

Invariants (tested as properties): the hedge is never long; an opening order
never takes the hedge above the overweight (rounded down to whole contracts);
a release order is reduce-only and never buys back more than the hedge; no order
while the weight is inside ``[target - release, target + trigger]``.

The portfolio value is the spot value of the group's assets (stablecoins at
1 USD); futures profit and loss is not part of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgekeeper.exposure import Exposure
from hedgekeeper.model import AllocationSpec, GroupSpec, HedgeTarget, MarketSpec, Plan
from hedgekeeper.sizing import compute_target, fmt, plan_group, round_to_step
from hedgekeeper.windows import policy_at

__all__ = ["AllocationView", "allocation_view", "plan_allocation", "plan_policy"]

_ZERO = Decimal(0)


def _pct(value: Decimal) -> str:
    return f"{fmt((value * 100).quantize(Decimal('0.01')))}%"


def _usd(value: Decimal) -> str:
    return fmt(value.quantize(Decimal("0.01")))


@dataclass(frozen=True, slots=True)
class AllocationView:
    """Where one asset stands against its target weight."""

    asset: str
    portfolio_usd: Decimal
    asset_usd: Decimal  # spot value of the asset
    hedge_usd: Decimal  # notional of the short (hedge + pending) at the contract price
    weights: Mapping[str, Decimal]  # every asset's spot weight (the hedged one: effective)
    targets: Mapping[str, Decimal]
    effective_weight: Decimal  # (asset_usd - hedge_usd) / portfolio_usd
    overweight_usd: Decimal  # max(0, asset_usd - target x portfolio_usd): the hedge wanted
    state: str  # "over" (open), "under" (release), "inside" / "underweight" (hold)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures for ``plan`` and ``status`` (decimals as strings)."""
        q = Decimal("0.0001")
        return {
            "asset": self.asset,
            "portfolio_usd": _usd(self.portfolio_usd),
            "asset_usd": _usd(self.asset_usd),
            "hedge_usd": _usd(self.hedge_usd),
            "weights": {a: fmt(w.quantize(q)) for a, w in self.weights.items()},
            "targets": {a: fmt(t) for a, t in self.targets.items()},
            "effective_weight": fmt(self.effective_weight.quantize(q)),
            "overweight_usd": _usd(self.overweight_usd),
            "state": self.state,
        }


def allocation_view(
    spec: AllocationSpec,
    targets: Mapping[str, Decimal],
    holdings: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    hedge_usd: Decimal,
) -> AllocationView:
    """Weights, overweight and band state of ``spec.asset`` (``hedge_usd``: short notional)."""
    values = {a: holdings.get(a, _ZERO) * prices.get(a, _ZERO) for a in targets}
    portfolio = sum(values.values(), _ZERO)
    asset_usd = values.get(spec.asset, _ZERO)
    target = targets[spec.asset]
    if portfolio <= 0:
        # Nothing held: no weight to speak of; any hedge left is released.
        weights = {a: _ZERO for a in targets}
        state = "under" if hedge_usd > 0 else "inside"
        return AllocationView(spec.asset, portfolio, asset_usd, hedge_usd, weights, targets,
                              _ZERO, _ZERO, state)  # fmt: skip
    weights = {a: v / portfolio for a, v in values.items()}
    effective = (asset_usd - hedge_usd) / portfolio
    weights[spec.asset] = effective
    overweight = max(asset_usd - target * portfolio, _ZERO)
    if effective > target + spec.trigger:
        state = "over"
    elif effective < target - spec.release:
        state = "under" if hedge_usd > 0 else "underweight"  # never long: nothing to do
    else:
        state = "inside"
    return AllocationView(spec.asset, portfolio, asset_usd, hedge_usd, weights, targets,
                          effective, overweight, state)  # fmt: skip


def plan_allocation(
    group: str,
    spec: AllocationSpec,
    targets: Mapping[str, Decimal],
    holdings: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    market: MarketSpec,
    price: Decimal,
    position_contracts: Decimal,
    pending_contracts: Decimal,
    max_ratio: Decimal = Decimal(1),
) -> tuple[Plan, AllocationView]:
    """The order (if any) that brings ``spec.asset`` back to its target weight.

    ``price`` is the hedge instrument's price; ``position_contracts`` is signed
    (negative = short), ``pending_contracts`` the signed effect of working orders.
    """
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    contract_value = market.contract_value_usd(price)
    hedge = -position_contracts
    effective = hedge + pending_contracts
    view = allocation_view(spec, targets, holdings, prices, effective * contract_value)
    # The hedge wanted is the overweight, never more than max_ratio x the asset's value.
    wanted = min(view.overweight_usd, max_ratio * view.asset_usd)
    raw = wanted / contract_value
    target = HedgeTarget(
        exposure_usd=view.asset_usd,
        target_notional_usd=wanted,
        price=price,
        contract_value_usd=contract_value,
        raw_contracts=raw,
        cap_contracts=round_to_step(raw, market.amount_step, up=False),
    )
    weight = _pct(view.effective_weight)
    goal = _pct(targets[spec.asset])
    if view.state in ("inside", "underweight"):
        reason = (
            f"{spec.asset} weight {weight} within {goal} -{_pct(spec.release)}"
            f"/+{_pct(spec.trigger)}"
            if view.state == "inside"
            else f"{spec.asset} weight {weight} under {goal}: nothing hedged (never long)"
        )
        plan = Plan(group, target, target.cap_contracts, hedge, pending_contracts, None, reason)
        return plan, view
    # Outside the band: steer to the overweight with the ordinary sizing rules and no
    # tolerance (the band above already is the tolerance). Rounding: an opening order
    # rounds down, a release ends at the overweight rounded down (the cap), reduce-only.
    plan = plan_group(group, target, market, position_contracts, pending_contracts, _ZERO, _ZERO)
    if plan.intent is None:
        return replace(plan, reason=f"{spec.asset} weight {weight}: {plan.reason}"), view
    if view.state == "over":
        why = (
            f"{spec.asset} weight {weight} > {goal} + {_pct(spec.trigger)}: short "
            f"{fmt(plan.intent.contracts)} ({_usd(view.overweight_usd)} USD overweight)"
        )
    else:
        why = (
            f"{spec.asset} weight {weight} < {goal} - {_pct(spec.release)}: buy back "
            f"{fmt(plan.intent.contracts)} (overweight now {_usd(view.overweight_usd)} USD)"
        )
    return replace(plan, reason=why, intent=replace(plan.intent, reason=why)), view


def plan_policy(
    group: GroupSpec,
    exposure: Exposure,
    market: MarketSpec,
    price: Decimal,
    position_contracts: Decimal,
    pending_contracts: Decimal,
    at: float,
    *,
    flattening: bool = False,
) -> tuple[Plan, Decimal, dict[str, Any]]:
    """Plan any group at instant ``at``: its window's ratio or targets, allocation or ratio.

    Returns the plan, the exposure it rests on (an allocation leg: its asset's spot
    value) and the figures ``plan`` shows beyond the usual ones (window, allocation).
    """
    policy = policy_at(group.ratio, None if group.allocation is None
                       else group.allocation.targets, group.windows, at)  # fmt: skip
    details: dict[str, Any] = {}
    if policy.window is not None:
        details["window"] = policy.window.label or "active"
    if group.allocation is not None and not flattening and policy.targets is not None:
        plan, view = plan_allocation(
            group.name, group.allocation, policy.targets, exposure.holdings, exposure.prices,
            market, price, position_contracts, pending_contracts, group.max_ratio,
        )  # fmt: skip
        details["allocation"] = view.as_dict()
        return plan, view.asset_usd, details
    ratio = _ZERO if flattening else policy.ratio
    if policy.window is not None:
        details["ratio"] = fmt(ratio)
    target = compute_target(exposure.exposure_usd, ratio, group.max_ratio, market, price)
    plan = plan_group(group.name, target, market, position_contracts, pending_contracts,
                      group.tolerance, ratio)  # fmt: skip
    return plan, exposure.exposure_usd, details
