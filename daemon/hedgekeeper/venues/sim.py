"""The ``sim`` venue: an offline market declared in the configuration.

Prices stand still or follow a seeded geometric random walk with the given
annualised volatility. The path takes one step per wall-clock second, each
step covering ``speed`` simulated seconds, so a seed gives the same path
whatever the poll interval. Spot markets
``{ASSET}/USDT`` exist for every priced asset; linear perps ``{ASSET}/USDT:USDT``
for each ``contract_sizes`` entry (step 1 contract); inverse perps
``{ASSET}/USD:{ASSET}`` for each ``inverse`` entry.

Instead of a random walk, an asset can replay real history: ``replay`` maps it to
an OHLCV file of spot bars and ``replay_perp`` to one of its perpetual; each bar
lasts its interval divided by ``speed`` in wall-clock time. Perps are marked at
their own replay (so the basis to spot is real) and indexed at spot.

Perps settle funding every ``funding_interval_hours`` of simulated time (aligned
to 00:00 UTC) at ``funding_rate``, or at the real settlements of a
``replay_funding`` file (``timestamp_ms,rate``): a position pays or receives
``contracts × contract value × rate`` (see :mod:`hedgekeeper.funding`), which
also moves the futures ``collateral``. Positions change only through this
venue's methods, and each settles the funding due before anything changes, so
every payment uses the position held at its settlement. Simulated time starts at
``replay_start`` (or the replay's first bar, or now) and runs ``speed`` times as
fast as the wall clock; a payment is dated when the venue books it (wall clock),
and its id carries the simulated settlement time.

Dated futures (``futures``: asset -> ``YYMMDD`` delivery dates, 08:00 UTC) are
listed as ``{ASSET}/USDT:USDT-YYMMDD`` (with the asset's linear contract size)
and ``{ASSET}/USD:{ASSET}-YYMMDD`` (inverse) and priced at the perp's mark plus
an annualised ``futures_basis`` that shrinks linearly to zero at expiry; they
pay no funding. At expiry a position is delivered (it becomes 0) and new orders
are refused.

The venue fills orders at the top of book (so tests can trade on it directly);
in ``dry-run`` the engine wraps it in the ``paper`` venue, which never calls
``submit_order`` here.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from hedgekeeper.contracts import days_to_expiry, expiry_of_code
from hedgekeeper.exceptions import OrderRejectedError, RetryableReadError, VenueError
from hedgekeeper.funding import settlement
from hedgekeeper.model import (
    Balances,
    FundingPayment,
    MarketKind,
    MarketSpec,
    OrderInfo,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    Side,
)
from hedgekeeper.settings import SimSettings

__all__ = ["SimVenue"]

_SECONDS_PER_YEAR = 365 * 24 * 3600
_BPS = Decimal("0.0001")
#: Maintenance margin rate of the simulated perps (0.5 %, like the lowest tiers).
_MAINTENANCE_RATE = Decimal("0.005")


class _PricePath:
    """A reproducible geometric random walk, one step per wall-clock second.

    Each step covers ``speed`` simulated seconds. Only the running sum is kept:
    the clock is monotonic, so steps are drawn once, in order.
    """

    def __init__(self, start: Decimal, volatility: Decimal, speed: Decimal, seed: str) -> None:
        self._start = float(start)
        self._sigma = float(volatility) * math.sqrt(float(speed) / _SECONDS_PER_YEAR)
        self._seed = seed
        self._rng = random.Random(seed)
        self._step = 0
        self._log_move = 0.0

    def at(self, elapsed_seconds: float) -> Decimal:
        step = int(elapsed_seconds)
        if self._sigma == 0.0:
            return Decimal(str(self._start))
        if step < self._step:  # only if the clock went back: replay from the seed
            self._rng, self._step, self._log_move = random.Random(self._seed), 0, 0.0
        while self._step < step:
            self._log_move += self._sigma * self._rng.gauss(0.0, 1.0) - self._sigma**2 / 2
            self._step += 1
        return Decimal(f"{self._start * math.exp(self._log_move):.8g}")


class _Replay:
    """Closes of real OHLCV bars, one bar per ``bar seconds / speed`` wall seconds."""

    def __init__(self, path: Path, speed: Decimal, start_ms: int | None) -> None:
        with path.open(newline="") as handle:
            rows = [(int(r["timestamp_ms"]), Decimal(r["close"])) for r in csv.DictReader(handle)]
        if len(rows) < 2:
            raise ValueError(f"{path}: a replay needs at least two bars")
        self._closes = [close for _, close in rows]
        self._times = [ts for ts, _ in rows]
        self._bar_seconds = (rows[1][0] - rows[0][0]) / 1000
        self._speed = float(speed)
        first = 0
        if start_ms is not None:
            first = next((i for i, (ts, _) in enumerate(rows) if ts >= start_ms), len(rows) - 1)
        self._first = first
        #: Epoch milliseconds of the bar the replay begins with.
        self.origin_ms = rows[first][0]

    def at(self, elapsed_seconds: float) -> Decimal:
        index = self._first + int(elapsed_seconds * self._speed / self._bar_seconds)
        return self._closes[min(index, len(self._closes) - 1)]  # the last bar holds

    @property
    def bar_seconds(self) -> float:
        """Seconds between two bars of the file."""
        return self._bar_seconds

    def history(self, elapsed_seconds: float, limit: int) -> list[tuple[int, Decimal]]:
        """The ``limit`` bars up to the current one (its close is today's price), oldest first."""
        index = self._first + int(elapsed_seconds * self._speed / self._bar_seconds)
        end = min(index, len(self._closes) - 1) + 1
        start = max(0, end - limit)
        return list(zip(self._times[start:end], self._closes[start:end], strict=True))


_TIMEFRAMES = {"1m": 60.0, "5m": 300.0, "15m": 900.0, "1h": 3600.0, "4h": 14400.0,
               "1d": 86400.0}  # fmt: skip


class _FundingSchedule:
    """When a simulated perp settles funding, and at what rate (simulated epoch ms)."""

    def __init__(self, interval_hours: int, rate: Decimal, path: Path | None) -> None:
        self._interval_ms = interval_hours * 3_600_000
        self._rate = rate
        self._times: list[int] = []
        self._rates: list[Decimal] = []
        if path is not None:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    self._times.append(int(row["timestamp_ms"]))
                    self._rates.append(Decimal(row["rate"]))

    def next_after(self, ms: int) -> tuple[int, Decimal] | None:
        """The first settlement strictly after ``ms``: (time, rate)."""
        if not self._times:
            return (ms // self._interval_ms + 1) * self._interval_ms, self._rate
        index = bisect.bisect_right(self._times, ms)
        if index == len(self._times):
            return None  # past the end of the file: no more settlements
        return self._times[index], self._rates[index]


class SimVenue:
    """An offline venue; see the module docstring."""

    def __init__(
        self,
        name: str,
        settings: SimSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        epoch: float | None = None,
    ) -> None:
        """``clock`` drives the price path from ``epoch`` (default: now)."""
        self.name = name
        self._settings = settings
        self._clock = clock
        self._started = clock() if epoch is None else epoch
        self._paths = {
            asset: _PricePath(
                price, settings.volatility, settings.speed, f"{settings.seed}:{asset}"
            )
            for asset, price in settings.prices.items()
        }
        self._replays = {
            asset: _Replay(path, settings.speed, settings.replay_start)
            for asset, path in settings.replay.items()
        }
        self._perp_replays = {
            asset: _Replay(path, settings.speed, settings.replay_start)
            for asset, path in settings.replay_perp.items()
        }
        self._overrides: dict[str, Decimal] = {}
        self._balances: dict[str, Decimal] = dict(settings.balances)
        self._positions: dict[str, Decimal] = dict(settings.positions)
        self._orders: dict[str, OrderInfo] = {}
        self._collateral = settings.collateral
        self._markets = self._build_markets()
        first_replay = next(iter(self._replays.values()), None)
        origin = settings.replay_start
        if origin is None and first_replay is not None:
            origin = first_replay.origin_ms
        #: Simulated epoch ms at ``epoch``: where the replay starts, else now.
        self._origin_ms = origin if origin is not None else int(time.time() * 1000)
        self._schedules = {
            symbol: _FundingSchedule(
                settings.funding_interval_hours, settings.funding_rate,
                settings.replay_funding.get(market.base),
            )
            for symbol, market in self._markets.items()
            if market.kind is not MarketKind.SPOT and market.expiry is None
        }  # fmt: skip
        self._funding_done_ms = self.sim_ms()
        self._funding: list[FundingPayment] = []
        #: Reads that fail until cleared (test hook): "balances", "positions", "quotes".
        self.failing: set[str] = set()
        #: Calls that raise a given error until cleared (test hook): name -> exception.
        self.raising: dict[str, Exception] = {}

    # -- test and demo hooks ------------------------------------------------------------

    def set_price(self, asset: str, price: Decimal) -> None:
        """Pin an asset's price (overrides the random walk)."""
        self._overrides[asset] = price

    def set_balance(self, asset: str, amount: Decimal) -> None:
        """Change a spot balance, as a deposit or withdrawal would."""
        self._balances[asset] = amount

    def set_position(self, symbol: str, contracts: Decimal) -> None:
        """Change a position behind the daemon's back."""
        self._settle_funding()
        self._positions[symbol] = contracts

    # -- simulated time and funding ----------------------------------------------------

    def sim_ms(self) -> int:
        """The simulated clock, epoch milliseconds."""
        elapsed = self._clock() - self._started
        return self._origin_ms + int(elapsed * float(self._settings.speed) * 1000)

    def _elapsed_at(self, sim_ms: int) -> float:
        return (sim_ms - self._origin_ms) / 1000 / float(self._settings.speed)

    def _settle_funding(self) -> None:
        """Book every settlement due up to now, on the positions held until now."""
        now_ms = self.sim_ms()
        if now_ms <= self._funding_done_ms:
            return
        booked_at = time.time()
        for symbol, schedule in self._schedules.items():
            contracts = self._positions.get(symbol, Decimal(0))
            if contracts == 0:
                continue
            market = self._markets[symbol]
            due = schedule.next_after(self._funding_done_ms)
            while due is not None and due[0] <= now_ms:
                at_ms, rate = due
                mark = self._perp_price_at(market.base, at_ms)
                amount, usd = settlement(market, contracts, mark, rate)
                asset = market.settle or market.quote
                self._funding.append(FundingPayment(
                    f"sim-{self.name}-{symbol}-{at_ms}", symbol, booked_at, amount, asset, rate
                ))  # fmt: skip
                if self._collateral is not None:
                    self._collateral += usd
                due = schedule.next_after(at_ms)
        self._funding_done_ms = now_ms

    def _perp_price_at(self, asset: str, sim_ms: int) -> Decimal:
        """The perp's mark at a past simulated time: exact for replays, else the current one
        (a random walk is only drawn forward; a cycle later at most)."""
        replay = self._perp_replays.get(asset) or self._replays.get(asset)
        if replay is not None and asset not in self._overrides:
            return replay.at(self._elapsed_at(sim_ms))
        return self.perp_price(asset)

    async def fetch_funding(
        self, symbols: Iterable[str], since: float, until: float
    ) -> list[FundingPayment]:
        """Funding booked for ``symbols`` in ``[since, until]`` (wall-clock booking time)."""
        self._check("fetch_funding")
        if "funding" in self.failing:
            raise RetryableReadError(f"{self.name}: funding history unavailable (simulated)")
        self._settle_funding()
        wanted = set(symbols)
        return [p for p in self._funding if p.symbol in wanted and since <= p.timestamp <= until]

    # -- reads -----------------------------------------------------------------------------

    def _build_markets(self) -> dict[str, MarketSpec]:
        markets: dict[str, MarketSpec] = {}
        for asset in self._settings.prices:
            markets[f"{asset}/USDT"] = MarketSpec(
                f"{asset}/USDT", MarketKind.SPOT, asset, "USDT", None, Decimal(1), Decimal("1e-8")
            )
        for asset, size in self._settings.contract_sizes.items():
            symbol = f"{asset}/USDT:USDT"
            markets[symbol] = MarketSpec(
                symbol,
                MarketKind.LINEAR,
                asset,
                "USDT",
                "USDT",
                contract_size=size,
                amount_step=Decimal(1),
                min_amount=Decimal(1),
                min_notional=self._settings.min_notional,
                price_step=Decimal("0.01"),
            )
        for asset, usd in self._settings.inverse.items():
            symbol = f"{asset}/USD:{asset}"
            markets[symbol] = MarketSpec(
                symbol,
                MarketKind.INVERSE,
                asset,
                "USD",
                asset,
                usd,
                Decimal(1),
                Decimal(1),
                price_step=Decimal("0.01"),
            )
        for asset, codes in self._settings.futures.items():
            for code in codes:
                for perp in (f"{asset}/USDT:USDT", f"{asset}/USD:{asset}"):
                    if perp in markets:
                        symbol = f"{perp}-{code}"
                        markets[symbol] = replace(
                            markets[perp], symbol=symbol, expiry=expiry_of_code(code)
                        )
        return markets

    async def list_contracts(self, family: str) -> dict[str, MarketSpec]:
        """Every dated contract of ``family`` (``BTC/USDT:USDT``) this venue lists."""
        return {
            symbol: market
            for symbol, market in self._markets.items()
            if market.expiry is not None and symbol.startswith(f"{family}-")
        }

    def market_time(self) -> float:
        """The simulated clock, epoch seconds (expiry and rolls are judged by it)."""
        return self.sim_ms() / 1000

    def _expired(self, market: MarketSpec) -> bool:
        return market.expiry is not None and self.sim_ms() >= market.expiry * 1000

    def contract_price(self, market: MarketSpec) -> Decimal:
        """The mark of a contract: the perp's, plus the dated future's shrinking basis."""
        mark = self.perp_price(market.base)
        if market.expiry is None:
            return mark
        days = days_to_expiry(market.expiry, self.sim_ms() / 1000)
        return mark * (1 + self._settings.futures_basis * days / 365)

    def price(self, asset: str) -> Decimal:
        """The asset's current mid price (spot)."""
        if asset in self._overrides:
            return self._overrides[asset]
        if asset in self._replays:
            return self._replays[asset].at(self._clock() - self._started)
        return self._paths[asset].at(self._clock() - self._started)

    def perp_price(self, asset: str) -> Decimal:
        """The mark price of the asset's perpetuals: its own replay, else the spot price."""
        if asset in self._perp_replays and asset not in self._overrides:
            return self._perp_replays[asset].at(self._clock() - self._started)
        return self.price(asset)

    async def load_markets(self, symbols: Iterable[str]) -> dict[str, MarketSpec]:
        return {s: self._markets[s] for s in symbols if s in self._markets}

    async def fetch_closes(
        self, symbol: str, timeframe: str, limit: int
    ) -> list[tuple[int, Decimal]]:
        """Past bars from the replay files (a perp without its own replay: the spot's).

        A simulated random walk has no history: assets without a replay raise, and an
        estimated beta falls back, as it would on an exchange that cannot serve bars.
        """
        self._check("fetch_closes")
        market = self._markets.get(symbol)
        if market is None:
            raise VenueError(f"{self.name}: unknown symbol {symbol!r}")
        replay = self._replays.get(market.base)
        if market.kind is not MarketKind.SPOT:
            replay = self._perp_replays.get(market.base) or replay
        if replay is None:
            raise VenueError(f"{self.name}: no replay of {market.base}: no past bars")
        seconds = _TIMEFRAMES.get(timeframe)
        if seconds != replay.bar_seconds:
            raise VenueError(
                f"{self.name}: the replay of {market.base} has {replay.bar_seconds:.0f} s bars, "
                f"not {timeframe!r}"
            )
        return replay.history(self._clock() - self._started, limit)

    def _check(self, call: str) -> None:
        error = self.raising.get(call)
        if error is not None:
            raise error

    async def fetch_balances(self) -> Balances:
        self._check("fetch_balances")
        if "balances" in self.failing:
            raise RetryableReadError(f"{self.name}: balances unavailable (simulated)")
        return dict(self._balances)

    async def fetch_positions(self, symbols: Iterable[str]) -> dict[str, Position]:
        self._check("fetch_positions")
        if "positions" in self.failing:
            raise RetryableReadError(f"{self.name}: positions unavailable (simulated)")
        self._settle_funding()
        for symbol in symbols:
            market = self._markets.get(symbol)
            if market is not None and self._expired(market):
                self._positions.pop(symbol, None)  # delivered (cash-settled) at expiry
        return {s: self._position(s) for s in symbols if s in self._markets}

    def _position(self, symbol: str) -> Position:
        contracts = self._positions.get(symbol, Decimal(0))
        collateral = self._collateral
        if collateral is None or contracts == 0:
            return Position(symbol, contracts, collateral_usd=collateral)
        market = self._markets[symbol]
        notional = abs(contracts) * market.contract_value_usd(self.price(market.base))
        maintenance = notional * _MAINTENANCE_RATE
        return Position(
            symbol, contracts, collateral_usd=collateral, maintenance_margin_usd=maintenance,
            margin_ratio=maintenance / collateral if collateral else None,
        )  # fmt: skip

    async def fetch_quotes(self, symbols: Iterable[str]) -> dict[str, Quote]:
        self._check("fetch_quotes")
        if "quotes" in self.failing:
            raise RetryableReadError(f"{self.name}: quotes unavailable (simulated)")
        now = time.time()
        now_ms = self.sim_ms()
        half_spread = self._settings.spread_bps * _BPS / 2
        quotes: dict[str, Quote] = {}
        for symbol in symbols:
            market = self._markets.get(symbol)
            if market is None:
                continue
            spot = self.price(market.base)
            mid = spot if market.kind is MarketKind.SPOT else self.contract_price(market)
            schedule = self._schedules.get(symbol)
            due = schedule.next_after(now_ms) if schedule is not None else None
            quotes[symbol] = Quote(
                symbol,
                bid=mid * (1 - half_spread),
                ask=mid * (1 + half_spread),
                last=mid,
                mark=mid if market.kind is not MarketKind.SPOT else None,
                index=spot,
                timestamp=now,
                funding_rate=None if due is None else due[1],
                next_funding_at=None if due is None else due[0] / 1000,
            )
        return quotes

    async def fetch_open_orders(self, symbols: Iterable[str], prefix: str) -> list[OrderInfo]:
        wanted = set(symbols)
        return [
            o
            for o in self._orders.values()
            if o.status is OrderStatus.OPEN
            and o.symbol in wanted
            and o.client_order_id.startswith(prefix)
        ]

    # -- writes ----------------------------------------------------------------------------

    async def submit_order(self, request: OrderRequest) -> OrderInfo:
        self._check("submit_order")
        if request.client_order_id in self._orders:
            raise OrderRejectedError(f"duplicate client order id {request.client_order_id}")
        market = self._markets.get(request.symbol)
        if market is not None and market.kind is MarketKind.SPOT:
            return await self._spot_order(request, market)
        if market is None:
            raise OrderRejectedError(f"{self.name}: no perpetual {request.symbol!r}")
        if self._expired(market):
            raise OrderRejectedError(f"{self.name}: {request.symbol} has expired")
        signed = request.amount if request.side is Side.BUY else -request.amount
        self._settle_funding()  # on the position held until now
        position = self._positions.get(request.symbol, Decimal(0))
        if request.reduce_only and (
            position == 0
            or abs(position + signed) > abs(position)
            or (position + signed) * position < 0
        ):
            raise OrderRejectedError(f"{self.name}: reduce-only order would increase position")
        quote = (await self.fetch_quotes([request.symbol]))[request.symbol]
        price = quote.ask if request.side is Side.BUY else quote.bid
        self._positions[request.symbol] = position + signed
        info = OrderInfo(
            request.client_order_id,
            request.symbol,
            request.side,
            request.amount,
            OrderStatus.FILLED,
            filled=request.amount,
            average_price=price,
            exchange_order_id=f"sim{len(self._orders) + 1}",
            reduce_only=request.reduce_only,
        )
        self._orders[request.client_order_id] = info
        return info

    #: Spot orders are accepted (``realize`` sells spot here).
    supports_spot_orders = True

    async def _spot_order(self, request: OrderRequest, market: MarketSpec) -> OrderInfo:
        """A spot order in base units, filled at the top of book against the balances."""
        quote = (await self.fetch_quotes([request.symbol]))[request.symbol]
        price = quote.ask if request.side is Side.BUY else quote.bid
        assert price is not None  # the sim always quotes both sides
        if request.price is not None and (
            price > request.price if request.side is Side.BUY else price < request.price
        ):
            raise OrderRejectedError(f"{self.name}: {request.side} {request.symbol} at "
                                     f"{request.price} does not cross {price}")  # fmt: skip
        base_held = self._balances.get(market.base, Decimal(0))
        quote_held = self._balances.get(market.quote, Decimal(0))
        notional = request.amount * price
        if request.side is Side.SELL and base_held < request.amount:
            raise OrderRejectedError(f"{self.name}: {base_held} {market.base} < {request.amount}")
        if request.side is Side.BUY and quote_held < notional:
            raise OrderRejectedError(f"{self.name}: {quote_held} {market.quote} < {notional}")
        sign = 1 if request.side is Side.BUY else -1
        self._balances[market.base] = base_held + sign * request.amount
        self._balances[market.quote] = quote_held - sign * notional
        info = OrderInfo(
            request.client_order_id, request.symbol, request.side, request.amount,
            OrderStatus.FILLED, filled=request.amount, average_price=price,
            exchange_order_id=f"sim{len(self._orders) + 1}",
        )  # fmt: skip
        self._orders[request.client_order_id] = info
        return info

    async def cancel_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return self._orders.get(client_order_id)

    def set_collateral(self, amount: Decimal) -> None:
        """Change the futures wallet (test hook: a loss elsewhere, a deposit)."""
        self._collateral = amount

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> None:
        """Move ``amount`` of a stablecoin from spot into the futures collateral."""
        self._check("transfer")
        held = self._balances.get(asset, Decimal(0))
        if held < amount:
            raise OrderRejectedError(f"{self.name}: {held} {asset} in spot < {amount}")
        self._balances[asset] = held - amount
        self._collateral = (self._collateral or Decimal(0)) + amount

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderInfo | None:
        return self._orders.get(client_order_id)

    async def close(self) -> None:
        return None
