"""Market history through ccxt: OHLCV (trade and mark price) and funding rates.

Public data only (no keys): ccxt's ``fetch_ohlcv`` (``params={"price": "mark"}``
for mark-price bars) and ``fetch_funding_rate_history``, paged forward from a
start time until an end time. Every call goes through the same
:class:`~hedgekeeper.venues.ccxt_client.CcxtClient` as the daemon's venue: its
rate limiter and its error translation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hedgekeeper.venues.ccxt_client import CcxtClient

__all__ = ["CcxtHistory"]

#: Rows asked per request (Binance serves up to 1000 spot klines, 1500 futures ones).
_PAGE = 1000


class CcxtHistory:
    """Read-only history of one exchange (``binance`` by default)."""

    def __init__(self, exchange_id: str = "binance", *, api_host: str | None = None,
                 rate_limit: bool = True, timeout_ms: int = 10000) -> None:  # fmt: skip
        self.client = CcxtClient(
            "history", exchange_id, api_key=None, secret=None, password=None,
            environment="live", read_only=True, api_host=api_host,
            market_types=("spot", "linear"), options=None, session=None,
            timeout_ms=timeout_ms, rate_limit=rate_limit,
        )  # fmt: skip
        self._loaded = False

    async def _markets(self) -> None:
        if not self._loaded:
            await self.client.read("load_markets", self.client.exchange.load_markets)
            self._loaded = True

    async def ohlcv(self, symbol: str, timeframe: str, since_ms: int, until_ms: int, *,
                    mark: bool = False) -> list[list[Any]]:  # fmt: skip
        """Bars opening in ``[since_ms, until_ms]``: [open ms, open, high, low, close, volume]."""
        await self._markets()
        exchange = self.client.exchange
        params = {"price": "mark"} if mark else {}
        rows: list[list[Any]] = []
        cursor = since_ms
        while cursor <= until_ms:
            call = partial(exchange.fetch_ohlcv, symbol, timeframe, cursor, _PAGE, dict(params))
            page: list[list[Any]] = await self.client.read("fetch_ohlcv", call)
            page = [row for row in page if cursor <= int(row[0]) <= until_ms]
            if not page:
                break
            rows.extend(page)
            cursor = int(page[-1][0]) + 1
            if cursor > until_ms:
                break  # the last bar wanted came: no empty page to ask for
        return rows

    async def funding(self, symbol: str, since_ms: int, until_ms: int) -> list[tuple[int, Any]]:
        """Funding settlements in ``[since_ms, until_ms]``: (time ms, rate)."""
        await self._markets()
        exchange = self.client.exchange
        out: list[tuple[int, Any]] = []
        cursor = since_ms
        while cursor <= until_ms:
            call = partial(exchange.fetch_funding_rate_history, symbol, cursor, _PAGE)
            page = await self.client.read("fetch_funding_rate_history", call)
            rows = [(int(r["timestamp"]), r["fundingRate"]) for r in page
                    if cursor <= int(r["timestamp"]) <= until_ms]  # fmt: skip
            if not rows:
                break
            out.extend(rows)
            cursor = rows[-1][0] + 1
        return out

    async def close(self) -> None:
        """Release the connection."""
        await self.client.close()
