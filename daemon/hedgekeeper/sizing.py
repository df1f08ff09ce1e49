"""Plan: exposure + target ratio + market rules -> at most one order intent (pure).

The rules, in order:

1. Target notional = ratio x exposure; target contracts = notional / contract value
   (contract_size x price for linear, contract_size USD for inverse).
2. The cap is ``max_ratio`` x exposure in contracts, rounded *down* to the step:
   no plan ever steers above it, after rounding.
3. Tolerance band: no order while |target - (hedge + pending)| x contract value
   <= tolerance x target notional.
4. Opening (more short): steer to the target rounded *down* to the step, so the
   hedge is at most one step under the target, never over it.
5. Trimming (less short): steer to the target rounded *up* to the step, so a trim
   never goes past the target (unless the cap forces it); a trim is reduce-only
   and never larger than the position itself.
6. An order under the market's minimum amount or minimum notional is not sent,
   except a reduce-only trim that closes the position to zero, and a reduce-only
   trim under the minimum notional where the exchange accepts those.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hedgekeeper.model import HedgeTarget, MarketSpec, OrderIntent, Plan, Side

__all__ = ["compute_target", "fmt", "plan_group", "round_to_step"]

_ZERO = Decimal(0)


def round_to_step(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    """Round ``value`` to a whole multiple of ``step``, up or down (toward +/- infinity)."""
    if step <= 0:
        raise ValueError(f"amount step must be positive, got {step}")
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return units * step if units else _ZERO


def fmt(value: Decimal) -> str:
    """Plain string for a Decimal: no exponent, no trailing zeros (``50``, ``0.333``)."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def _pct(value: Decimal) -> str:
    return f"{fmt((value * 100).quantize(Decimal('0.01')))}%"


def compute_target(
    exposure_usd: Decimal,
    ratio: Decimal,
    max_ratio: Decimal,
    market: MarketSpec,
    price: Decimal,
) -> HedgeTarget:
    """Target and cap for a group, in contracts (short as positive)."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    contract_value = market.contract_value_usd(price)
    positive_exposure = max(exposure_usd, _ZERO)  # a net short book needs no hedge
    target_notional = ratio * positive_exposure
    raw = target_notional / contract_value
    cap = round_to_step(
        max_ratio * positive_exposure / contract_value, market.amount_step, up=False
    )
    return HedgeTarget(
        exposure_usd=exposure_usd,
        target_notional_usd=target_notional,
        price=price,
        contract_value_usd=contract_value,
        raw_contracts=raw,
        cap_contracts=cap,
    )


def plan_group(
    group: str,
    target: HedgeTarget,
    market: MarketSpec,
    position_contracts: Decimal,
    pending_contracts: Decimal,
    tolerance: Decimal,
    ratio: Decimal,
) -> Plan:
    """Decide the order (if any) that moves the hedge toward the target.

    ``position_contracts`` is signed (negative = short); ``pending_contracts`` is the
    signed effect of working orders on the hedge (sells add, buys subtract).
    """
    hedge = -position_contracts  # short as positive; a long position is a negative hedge
    effective = hedge + pending_contracts
    step = market.amount_step
    cv = target.contract_value_usd
    drift_notional = (target.raw_contracts - effective) * cv
    band = tolerance * target.target_notional_usd

    def finish(target_contracts: Decimal, intent: OrderIntent | None, reason: str) -> Plan:
        return Plan(
            group=group,
            target=target,
            target_contracts=target_contracts,
            hedge_contracts=hedge,
            pending_contracts=pending_contracts,
            intent=intent,
            reason=reason,
        )

    opening = drift_notional > 0
    over_cap = effective > target.cap_contracts
    if opening:
        steer = round_to_step(min(target.raw_contracts, target.cap_contracts), step, up=False)
    else:
        steer = min(round_to_step(target.raw_contracts, step, up=True), target.cap_contracts)

    if abs(drift_notional) <= band and not over_cap:
        if target.target_notional_usd > 0:
            drift_pct = abs(drift_notional) / target.target_notional_usd
            reason = f"inside tolerance {_pct(drift_pct)} <= {_pct(tolerance)}"
        else:
            reason = "no exposure and no hedge"
        return finish(steer, None, reason)

    if opening:
        # Steer to min(target, cap) from wherever we are, rounding the order down:
        # the result is within one step under the target and never over the cap.
        contracts = round_to_step(
            min(target.raw_contracts, target.cap_contracts) - effective, step, up=False
        )
        if contracts <= 0:
            return finish(steer, None, f"within one step of target {fmt(target.raw_contracts)}")
        side, reduce_only = Side.SELL, False
    else:
        # Trim down to the target, rounding the order down so we stay at or above it,
        # unless that would leave us over the cap: then the cap wins.
        contracts = round_to_step(effective - target.raw_contracts, step, up=False)
        if effective - contracts > target.cap_contracts:
            contracts = round_to_step(effective - target.cap_contracts, step, up=True)
        # A trim is reduce-only: it can never be larger than the position it reduces.
        contracts = min(contracts, max(hedge, _ZERO))
        if contracts <= 0:
            if hedge <= 0 < effective - steer:
                return finish(steer, None, "over target only through pending orders")
            return finish(steer, None, f"within one step of target {fmt(target.raw_contracts)}")
        side, reduce_only = Side.BUY, True

    closes_position = reduce_only and contracts == hedge
    notional = contracts * cv
    if not closes_position:
        if contracts < market.min_amount:
            return finish(steer, None, f"below min amount {fmt(market.min_amount)} contracts")
        exempt = reduce_only and market.reduce_only_below_min_notional
        if notional < market.min_notional and not exempt:
            return finish(steer, None, f"below min notional {fmt(market.min_notional)} USD")

    verb = "short" if side is Side.SELL else "buy back"
    reason = (
        f"{verb} {fmt(contracts)} to reach {_pct(ratio)} of "
        f"{fmt(target.exposure_usd.quantize(Decimal('0.01')))} USD"
    )
    if steer == target.cap_contracts and steer < round_to_step(
        target.raw_contracts, step, up=False
    ):
        reason += f" (capped at {fmt(steer)})"
    intent = OrderIntent(group, market.symbol, side, contracts, reduce_only, reason)
    return finish(steer, intent, reason)
