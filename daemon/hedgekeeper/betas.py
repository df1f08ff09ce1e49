"""Estimated betas in the daemon: read bars, estimate, hand the core a group with numbers.

Every asset configured as ``"estimate"`` is estimated against its group's hedge
instrument from the venues' past bars (ccxt ``fetch_ohlcv``; the sim and paper
venues from their replay files), every ``[hedges.beta] refresh`` seconds, in the
background so a slow history read never delays a cycle. Until an estimate may be
used — too few bars, an R² under the floor, a venue that cannot serve bars, or an
estimate gone stale after repeated failed reads — the group uses the fallback.
Each estimate is logged (``beta.estimated``) with its R², sample count and reason,
and ``plan`` shows it with its age.

Estimates are cached in the journal (key per group, asset and hedge instrument, with the
time they were made): a restart within the refresh interval uses them at once and reads
no history; an older one is refreshed as usual. A read-only engine (``plan``) reads the
cache and never writes it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from hedgekeeper.beta import BetaEstimate, aligned_returns, estimate_beta
from hedgekeeper.exceptions import VenueError
from hedgekeeper.model import GroupSpec
from hedgekeeper.sizing import fmt

__all__ = ["STALE_REFRESHES", "BetaBook"]

#: An estimate older than this many refresh intervals is no longer used.
STALE_REFRESHES = 3


@dataclass(frozen=True, slots=True)
class _Entry:
    estimate: BetaEstimate
    at: float  # clock time of the estimate


class BetaBook:
    """The current beta estimates of every group; refreshed by :meth:`refresh`."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._task: asyncio.Task[Any] | None = None
        self._loaded = False

    @staticmethod
    def _key(group: GroupSpec, asset: str) -> str:
        return f"beta:{group.name}:{asset}:{group.instrument}"

    def _load(self) -> None:
        """Estimates the journal remembers from before a restart (good ones only)."""
        self._loaded = True
        for group, asset in self._wanted():
            raw = self.engine.journal.cached(self._key(group, asset))
            if raw is None:
                continue
            try:
                data = json.loads(raw)
                estimate = BetaEstimate(Decimal(data["beta"]), True, data.get("raw"),
                                        data.get("r2"), int(data["samples"]),
                                        f"{data['reason']} (from the journal)")  # fmt: skip
                at = float(data["at"])
            except (ValueError, KeyError, TypeError, ArithmeticError):
                continue  # a damaged cache entry is only a cache miss
            self._entries[(group.name, asset)] = _Entry(estimate, at)

    def _remember(self, group: GroupSpec, asset: str, estimate: BetaEstimate,
                  at: float) -> None:  # fmt: skip
        if getattr(self.engine, "read_only", False) or not estimate.estimated:
            return
        self.engine.journal.remember(self._key(group, asset), json.dumps({
            "beta": str(estimate.beta), "raw": estimate.raw, "r2": estimate.r2,
            "samples": estimate.samples, "reason": estimate.reason, "at": at,
        }))  # fmt: skip

    def _wanted(self) -> list[tuple[GroupSpec, str]]:
        return [(g, asset) for g in self.engine.groups for asset in sorted(g.estimated)]

    def poll(self) -> None:
        """Start a background refresh unless one is running (called every cycle)."""
        if not self._wanted() or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.ensure_future(self.refresh())

    async def wait(self) -> None:
        """Let a running refresh finish (briefly) before shutting down."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=5.0)

    async def refresh(self, *, force: bool = False) -> None:
        """Estimate every asset whose estimate is due (all of them with ``force``)."""
        if not self._loaded:
            self._load()
        now = self.engine.clock()
        due = []
        for group, asset in self._wanted():
            entry = self._entries.get((group.name, asset))
            every = self.engine.settings.hedge(group.name).beta.refresh
            if force or entry is None or now - entry.at >= every:
                due.append(self._estimate(group, asset, now))
        await asyncio.gather(*due)

    async def _estimate(self, group: GroupSpec, asset: str, now: float) -> None:
        engine = self.engine
        config = engine.settings.hedge(group.name).beta
        log = engine.log.bind(group=group.name, asset=asset)
        source = engine.price_sources.get(group.name, {}).get(asset)
        if source is None:
            return  # priced at 1 (a stablecoin): nothing to estimate
        account, symbol = source
        asset_fetch = getattr(engine.venues[account], "fetch_closes", None)
        hedge_fetch = getattr(engine.venues[group.hedge_account], "fetch_closes", None)
        if asset_fetch is None or hedge_fetch is None:
            self._fallback(group, asset, now, "the venue cannot read past bars", log)
            return
        try:
            asset_bars, hedge_bars = await asyncio.gather(
                asset_fetch(symbol, config.timeframe, config.window + 1),
                hedge_fetch(group.instrument, config.timeframe, config.window + 1),
            )
        except VenueError as error:
            # Keep the last good estimate (until it goes stale): one failed read is no news.
            log.warning("beta.read_failed", error=str(error))
            if (group.name, asset) not in self._entries:
                self._fallback(group, asset, now, f"no bars: {error}", log)
            return
        asset_returns, hedge_returns = aligned_returns(
            {t: float(c) for t, c in asset_bars}, {t: float(c) for t, c in hedge_bars}
        )
        estimate = estimate_beta(asset_returns, hedge_returns, config.rules())
        self._entries[(group.name, asset)] = _Entry(estimate, now)
        self._remember(group, asset, estimate, now)
        log.info(
            "beta.estimated", beta=fmt(estimate.beta), estimated=estimate.estimated,
            r2=None if estimate.r2 is None else round(estimate.r2, 4),
            samples=estimate.samples, reason=estimate.reason, hedge=group.instrument,
        )  # fmt: skip

    def _fallback(self, group: GroupSpec, asset: str, now: float, reason: str, log: Any) -> None:
        fallback = self.engine.settings.hedge(group.name).beta.fallback
        estimate = BetaEstimate(fallback, False, None, None, 0, reason)
        self._entries[(group.name, asset)] = _Entry(estimate, now)
        log.warning("beta.fallback", beta=fmt(fallback), reason=reason)

    def _current(self, group: GroupSpec, asset: str) -> tuple[Decimal, _Entry | None, str]:
        entry = self._entries.get((group.name, asset))
        config = self.engine.settings.hedge(group.name).beta
        if entry is None:
            return config.fallback, None, "not estimated yet"
        age = self.engine.clock() - entry.at
        if age > STALE_REFRESHES * config.refresh:
            return config.fallback, entry, f"stale: {age:.0f} s old"
        return entry.estimate.beta, entry, entry.estimate.reason

    def apply(self, group: GroupSpec) -> GroupSpec:
        """``group`` with its estimated assets' betas in place of the fallback."""
        if not group.estimated:
            return group
        betas = dict(group.assets)
        for asset in group.estimated:
            betas[asset] = self._current(group, asset)[0]
        return replace(group, assets=betas)

    def details(self, group: GroupSpec) -> dict[str, Any]:
        """What ``plan`` shows of each estimated beta: value, fit, samples, age, why."""
        out: dict[str, Any] = {}
        for asset in sorted(group.estimated):
            beta, entry, reason = self._current(group, asset)
            estimate = None if entry is None else entry.estimate
            out[asset] = {
                "beta": fmt(beta),
                "estimated": estimate is not None and estimate.estimated and beta == estimate.beta,
                "r2": None if estimate is None or estimate.r2 is None else f"{estimate.r2:.4f}",
                "samples": 0 if estimate is None else estimate.samples,
                "age_s": None if entry is None else round(self.engine.clock() - entry.at),
                "reason": reason,
            }
        return out
