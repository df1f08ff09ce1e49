"""Assess: holdings x prices x betas -> USD exposure of a hedge group (pure).

A group's holdings are the spot balances (free + used) of its assets across its
spot accounts, plus the ``extra_holdings`` it declares (cold storage). Each
asset counts with its beta: 1.0 for a direct hedge, another value for a proxy
hedge (an altcoin hedged with a BTC or ETH contract).

Missing data is never zero: if an account's balances or an asset's price is
unknown, :func:`assess` raises :class:`MissingDataError` naming what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from hedgekeeper.model import Balances, GroupSpec

__all__ = ["Exposure", "MissingDataError", "assess"]


class MissingDataError(Exception):
    """A value the assessment needs is unknown (a failed read is not zero)."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """USD exposure of a group, with the per-asset holdings that make it up."""

    group: str
    exposure_usd: Decimal
    holdings: Mapping[str, Decimal]  # asset -> amount (accounts + extra)
    prices: Mapping[str, Decimal]  # asset -> USD price used


def assess(
    group: GroupSpec,
    balances: Mapping[str, Balances | None],
    prices: Mapping[str, Decimal | None],
) -> Exposure:
    """Value the group's holdings.

    ``balances`` maps account name -> spot balances (``None`` = the read failed);
    ``prices`` maps asset -> USD price (``None`` or absent = unknown).
    """
    holdings: dict[str, Decimal] = {}
    for account in group.spot_accounts:
        account_balances = balances.get(account)
        if account_balances is None:
            raise MissingDataError(f"balances of account {account!r} are missing")
        for asset in group.assets:
            holdings[asset] = holdings.get(asset, Decimal(0)) + account_balances.get(
                asset, Decimal(0)
            )
    for asset, amount in group.extra_holdings.items():
        holdings[asset] = holdings.get(asset, Decimal(0)) + amount

    exposure = Decimal(0)
    used_prices: dict[str, Decimal] = {}
    for asset, beta in group.assets.items():
        amount = holdings.get(asset, Decimal(0))
        price = prices.get(asset)
        if price is None:
            if amount == 0:
                continue  # nothing held: its price does not matter
            raise MissingDataError(f"price of {asset} is missing")
        if price <= 0:
            raise MissingDataError(f"price of {asset} is not positive: {price}")
        used_prices[asset] = price
        exposure += amount * price * beta
    return Exposure(group.name, exposure, holdings, used_prices)
