"""Exchange push streams through ccxt.pro, as wake-up calls for the engine.

Each ``watch_*`` method waits for the exchange's next update of one kind and
returns; what it carries is only a hint. The daemon never trades on stream
content: a wake-up starts a cycle, and the cycle reads the venue over REST, as
always (write-ahead journal, reconciliation and guards unchanged). Prices are the
exception that is used, and only to decide *whether* to wake: the mid of each
updated symbol is returned so the caller can compare it with its last cycle's.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hedgekeeper.venues import ccxt_params

if TYPE_CHECKING:
    from hedgekeeper.venues.ccxt_client import CcxtClient

__all__ = ["CcxtStreams"]


class CcxtStreams:
    """The watchers of one ccxt.pro exchange (see the module docstring)."""

    def __init__(self, client: CcxtClient) -> None:
        self._client = client
        self.exchange: Any = client.exchange

    async def watch_balances(self) -> None:
        """Return at the next update of the spot (or unified) wallet."""
        params = ccxt_params.balance_params(self._client.exchange_id, self._client.market_types)
        await self.exchange.watch_balance(params)

    async def watch_positions(self, symbols: Iterable[str]) -> None:
        """Return at the next position update of any of the contract ``symbols``."""
        wanted = [s for s in symbols if not (await self._client.market(s)).get("spot")]
        await self.exchange.watch_positions(wanted or None)

    async def watch_orders(self, symbols: Iterable[str]) -> None:
        """Return at the next order update (fills, cancels) of the contract ``symbols``."""
        for symbol in symbols:
            market = await self._client.market(symbol)
            if not market.get("spot"):
                # One user stream per contract type carries every symbol's orders.
                await self.exchange.watch_orders(None, None, None, _contract_params(market))
                return

    async def price_groups(self, symbols: Iterable[str]) -> list[list[str]]:
        """The symbols split into what one price watcher can follow (one market type each)."""
        return list((await self._client.group(symbols)).values())

    async def watch_prices(self, symbols: list[str]) -> dict[str, Decimal]:
        """Mid prices at the next best-bid/ask update of ``symbols`` (one market type)."""
        tickers = await self.exchange.watch_bids_asks(symbols)
        mids: dict[str, Decimal] = {}
        for symbol, ticker in (tickers or {}).items():
            bid, ask = ticker.get("bid"), ticker.get("ask")
            if bid and ask:
                mids[symbol] = (Decimal(str(bid)) + Decimal(str(ask))) / 2
        return mids

    async def close(self) -> None:
        """Nothing of its own: the exchange object closes with the venue."""


def _contract_params(market: Any) -> dict[str, Any]:
    sub_type = "linear" if market.get("linear") else "inverse"
    return {"type": str(market.get("type") or "swap"), "subType": sub_type}
