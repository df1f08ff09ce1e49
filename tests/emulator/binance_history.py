"""Binance market history for the emulator: klines, mark-price klines, funding rates.

Tests put rows in :func:`history_of` (``emu``) and ccxt's ``fetch_ohlcv`` /
``fetch_funding_rate_history`` read them through the real endpoints
(``/api/v3/klines``, ``/fapi/v1/klines``, ``/fapi/v1/markPriceKlines``,
``/fapi/v1/fundingRate``), with Binance's paging: ``startTime``, ``endTime``,
``limit`` (klines: default 500, at most 1000 spot / 1500 futures; funding:
default 100, at most 1000), ascending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.emulator.common import RequestContext, Route, json_response

__all__ = ["History", "HistoryHandlers", "history_of"]

_INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000,
                "4h": 14_400_000, "1d": 86_400_000}  # fmt: skip


@dataclass
class History:
    """Rows served by the history endpoints."""

    #: (kind "spot" | "perp" | "mark", exchange id e.g. ``BTCUSDT``, interval) ->
    #: [(open time ms, close as text)]
    klines: dict[tuple[str, str, str], list[tuple[int, str]]] = field(default_factory=dict)
    #: exchange id -> [(settlement ms, rate as text)]
    funding: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def history_of(emulator: Any) -> History:
    """The emulator's history (made on first use)."""
    found = getattr(emulator, "history", None)
    if found is None:
        found = emulator.history = History()
    return found


def _window(ctx: RequestContext, default: int, most: int) -> tuple[int, int, int]:
    start = int(ctx.params.get("startTime") or 0)
    end = int(ctx.params.get("endTime") or ctx.now_ms)
    limit = min(int(ctx.params.get("limit") or default), most)
    return start, end, limit


class HistoryHandlers:
    """The history endpoints of one emulator."""

    def __init__(self, emulator: Any) -> None:
        self.emu = emulator

    def routes(self) -> list[Route]:
        """Klines for spot, perp and mark; funding rates."""
        return [
            Route("GET", "/api/v3/klines", self._klines("spot", 1000)),
            Route("GET", "/fapi/v1/klines", self._klines("perp", 1500)),
            Route("GET", "/fapi/v1/markPriceKlines", self._klines("mark", 1500)),
            Route("GET", "/fapi/v1/fundingRate", self.funding_rate),
        ]

    def _klines(self, kind: str, most: int) -> Any:
        async def handler(ctx: RequestContext) -> web.Response:
            interval = str(ctx.params.get("interval"))
            step = _INTERVAL_MS.get(interval)
            if step is None:
                return json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
            start, end, limit = _window(ctx, 500, most)
            rows = history_of(self.emu).klines.get((kind, str(ctx.params.get("symbol")), interval))
            inside = [(at, close) for at, close in rows or () if start <= at <= end]
            # Binance: with a startTime the first `limit` bars from it, without one the
            # most recent `limit` bars (what fetch_ohlcv without `since` asks for).
            chosen = inside[:limit] if "startTime" in ctx.params else inside[-limit:]
            volume = "0" if kind == "mark" else "1.0"
            out = [[at, close, close, close, close, volume, at + step - 1, "0", 1, "0", "0", "0"]
                   for at, close in chosen]  # fmt: skip
            return json_response(out)

        return handler

    async def funding_rate(self, ctx: RequestContext) -> web.Response:
        """``GET /fapi/v1/fundingRate``."""
        start, end, limit = _window(ctx, 100, 1000)
        symbol = str(ctx.params.get("symbol"))
        rows = history_of(self.emu).funding.get(symbol, [])
        out = [{"symbol": symbol, "fundingTime": at, "fundingRate": rate, "markPrice": ""}
               for at, rate in rows if start <= at <= end][:limit]  # fmt: skip
        return json_response(out)
