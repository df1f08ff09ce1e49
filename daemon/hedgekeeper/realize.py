"""Realize a hedge ("Option B"): sell the hedged spot and buy back the short, as one operation.

A hedge locks in the price of the spot it covers. To turn that into a sale, the
operator asks the running daemon (``hedgekeeper realize GROUP [ASSET]`` through the
control channel, so the daemon stays the only writer of its state directory). The
spot must sit on the same exchange as the short: one account sells the spot, the
hedge account buys the short back.

1. The command only checks and records the request in the journal
   (``realize.requested``); the engine carries it out at the group's turn in its next
   cycle, from a fresh snapshot, so no ordinary cycle can interleave with it.
2. There the size is fixed — the short held (or the ``amount`` asked, in base units,
   rounded down to whole contracts), no more than the spot on that account — and
   **both legs are journaled** (``NEW``, client ids from the journal's sequence) and
   written into the operation's record *before the first is sent*.
3. The spot sell (a limit IOC at the bid less ``slippage_cap_bps``) goes first; if it
   filled in full the reduce-only buy-back follows at once. Otherwise the buy-back is
   marked rejected unsent, and a new one is journaled for what the spot actually sold.
4. Every later step is derived from the journal, never from memory: contracts to buy
   back = what the spot legs sold (whole contracts, at most the planned size) − what
   the buy-back legs bought, capped at the short still held. When that is zero the
   operation ends (``realize.done``) with what was sold, at what price, and bought.

A crash between the legs (``kill -9``) is completed on restart: the unresolved legs
are looked up by client id (never sent again blind); a leg never sent resolves as
rejected; then step 4 buys back what the spot sold. A crash before the spot sell went
out ends the operation with nothing traded. While it runs the exposure is at most one
operation short of flat (spot sold, short not yet bought back) — never long-unhedged.

Every write goes through the executor and the engine's write gate: a halt refuses the
next leg (the operation waits, and completes after ``resume``); a realize is refused
unless trading is ``ACTIVE``; the buy-back is reduce-only so a flatten lets it through.
While an operation is in progress the group's ordinary hedging waits.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hedgekeeper.decide import GroupDecision
from hedgekeeper.exceptions import HedgekeeperError
from hedgekeeper.execution import HaltRequired
from hedgekeeper.model import (
    GroupSpec,
    MarketKind,
    MarketSpec,
    Mode,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TradingState,
)
from hedgekeeper.orders import TERMINAL, check_transition
from hedgekeeper.settings import client_id_code
from hedgekeeper.sizing import round_to_step
from hedgekeeper.snapshot import Snapshot

__all__ = ["RealizeRefused", "Realizer"]

_ZERO = Decimal(0)
_BPS = Decimal("0.0001")
#: Buy-back legs rejected in a row before the operation gives up (ordinary hedging then
#: trims the short to the smaller spot, so the hedge still converges).
_MAX_BUYBACK_ATTEMPTS = 3


class RealizeRefused(HedgekeeperError):
    """A realize request that cannot start: nothing was journaled or sent."""


def _key(group: str) -> str:
    return f"realize:{group}"


class Realizer:
    """Carries out ``realize`` operations for the engine; see the module docstring."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    # -- the request (control channel) ------------------------------------------------------

    def _leg_of(self, group: str, asset: str | None) -> tuple[GroupSpec, str]:
        """The engine group (an allocation group's leg for ``asset``) and its asset."""
        candidates = [g for g in self.engine.groups if g.name == group or g.parent == group]
        if not candidates:
            known = sorted({g.parent or g.name for g in self.engine.groups})
            raise RealizeRefused(f"group: unknown group {group!r}; known: {', '.join(known)}")
        found: list[tuple[GroupSpec, str]] = []
        for spec in candidates:
            market = self.engine.markets.get(spec.hedge_account, {}).get(spec.instrument)
            base = market.base if market is not None else spec.instrument.split("/")[0]
            if asset is None or asset.upper() == base:
                found.append((spec, base))
        if not found:
            raise RealizeRefused(f"asset: {asset!r} is not hedged by its own contract in group "
                                 f"{group!r}")  # fmt: skip
        if len(found) > 1:
            raise RealizeRefused(f"asset: group {group!r} hedges several assets; name one of "
                                 f"{', '.join(b for _, b in found)}")  # fmt: skip
        spec, base = found[0]
        if base not in spec.assets:
            raise RealizeRefused(
                f"asset: group {spec.name!r} hedges {', '.join(spec.assets)} with "
                f"{spec.instrument} (a proxy): realize needs the asset's own contract"
            )
        return spec, base

    def _spot_account(self, spec: GroupSpec) -> str:
        """The account that sells the spot: the hedge account itself when it holds the
        group's spot, else a spot account on the same exchange (not a sim: a sim
        account is its own exchange)."""
        accounts = self.engine.settings.accounts
        hedge = spec.hedge_account
        if hedge in spec.spot_accounts:
            return hedge
        exchange = accounts[hedge].exchange
        for name in spec.spot_accounts:
            if accounts[name].exchange == exchange and accounts[name].sim is None \
                    and accounts[hedge].sim is None:  # fmt: skip
                return name
        where = ", ".join(f"{n} ({accounts[n].exchange})" for n in spec.spot_accounts) or "none"
        raise RealizeRefused(
            f"spot_accounts: the spot of group {spec.name!r} is on {where}, the hedge on "
            f"{hedge} ({exchange}): realize needs the spot on the same exchange as the short"
        )

    def request(self, data: dict[str, Any], source: str, reason: str) -> dict[str, Any]:
        """Check and record a realize request; the engine carries it out next cycle.

        ``data``: ``group`` (required), ``asset`` (an allocation group's leg), ``amount``
        (base units; default: the whole short), ``live`` (must be true in live mode).
        Raises :class:`RealizeRefused` with the field and value at fault.
        """
        engine = self.engine
        if engine.read_only:
            raise RealizeRefused("this engine is read-only")
        state = engine.journal.trading_state()
        if state is not TradingState.ACTIVE or engine.flattening:
            raise RealizeRefused(f"trading is {state.value}: realize needs ACTIVE (resume first)")
        if engine.settings.mode is Mode.LIVE and data.get("live") is not True:
            raise RealizeRefused("live: the daemon trades live; confirm with --live")
        group = data.get("group")
        if not isinstance(group, str) or not group:
            raise RealizeRefused("group: required, e.g. {\"group\": \"btc\"}")
        asset = data.get("asset")
        if asset is not None and not isinstance(asset, str):
            raise RealizeRefused(f"asset: expected a symbol like BTC, got {asset!r}")
        amount: Decimal | None = None
        if data.get("amount") is not None:
            try:
                amount = Decimal(str(data["amount"]))
            except ArithmeticError:
                raise RealizeRefused(f"amount: not a number: {data['amount']!r}") from None
            if not amount.is_finite() or amount <= 0:
                raise RealizeRefused(f"amount: must be positive, got {data['amount']!r}")
        spec, base = self._leg_of(group, asset)
        market = engine.markets.get(spec.hedge_account, {}).get(spec.instrument)
        if market is None or market.kind is not MarketKind.LINEAR:
            raise RealizeRefused(f"group: {spec.instrument} is not a linear contract; realize "
                                 "sizes the spot in the contract's base units")  # fmt: skip
        spot_account = self._spot_account(spec)
        for account in {spot_account, spec.hedge_account}:
            if not getattr(engine.venues[account], "supports_spot_orders", False) \
                    and account == spot_account:  # fmt: skip
                raise RealizeRefused(
                    f"accounts.{account}: this venue cannot place spot orders yet (dry-run "
                    "paper, the sim and Binance can; see docs/operations.md)"
                )
        if engine.journal.operation(_key(spec.name)) is not None:
            raise RealizeRefused(f"group: a realize of {spec.name!r} is already in progress")
        if engine.journal.roll_state(spec.name) is not None:
            raise RealizeRefused(f"group: {spec.name!r} is rolling its contract; try after")
        record: dict[str, Any] = {
            "group": spec.name, "asset": base, "spot_account": spot_account,
            "spot_symbol": f"{base}/{market.quote}", "hedge_account": spec.hedge_account,
            "instrument": spec.instrument, "amount": None if amount is None else str(amount),
            "phase": "requested", "orders": [], "attempts": 0, "source": source,
            "reason": reason,
        }  # fmt: skip
        engine.journal.set_operation(_key(spec.name), record, "realize.requested")
        engine.log.warning("realize.requested", **{k: v for k, v in record.items()
                                                   if k != "orders"})  # fmt: skip
        engine.events.publish("realize.requested", group=spec.name, asset=base)
        engine.hedge_now()
        return {"requested": spec.name, "asset": base, "spot_account": spot_account,
                "amount": record["amount"] or "the whole short"}  # fmt: skip

    # -- each cycle ----------------------------------------------------------------------------

    async def step(self, group: GroupSpec, snap: Snapshot, can_trade: bool,
                   cycle: int | None, log: Any) -> GroupDecision | None:  # fmt: skip
        """Advance the group's realize; ``None`` when there is none (hedge as usual)."""
        if self.engine.read_only:
            return None
        record = self.engine.journal.operation(_key(group.name))
        if record is None:
            return None
        if not can_trade:
            return GroupDecision(group.name, "blocked", "realize in progress: trading not "
                                 "reconciled")  # fmt: skip
        if self.engine.executor.unresolved(group.name):
            return GroupDecision(group.name, "skipped", "realize: waiting for a leg to resolve")
        try:
            if record["phase"] == "requested":
                return await self._start(group, record, snap, cycle, log)
            return await self._continue(group, record, snap, cycle, log)
        except HaltRequired as error:
            await self.engine._halt_for("order", str(error))
            return GroupDecision(group.name, "blocked", f"realize: {error}")

    async def _market(self, account: str, symbol: str) -> MarketSpec | None:
        markets = self.engine.markets.setdefault(account, {})
        if symbol not in markets:
            markets.update(await self.engine.venues[account].load_markets([symbol]))
        found: MarketSpec | None = markets.get(symbol)
        return found

    async def _quote(self, snap: Snapshot, account: str, symbol: str) -> Quote | None:
        quote = (snap.quotes.get(account) or {}).get(symbol)
        if quote is None:
            quote = (await self.engine.venues[account].fetch_quotes([symbol])).get(symbol)
        return quote

    def _limit(self, group: GroupSpec, side: Side, quote: Quote | None,
               market: MarketSpec) -> Decimal | None:  # fmt: skip
        """The best price past which the IOC does not go (``slippage_cap_bps``)."""
        best = None if quote is None else (quote.bid if side is Side.SELL else quote.ask)
        if best is None:
            return None
        cap = Decimal(self.engine.settings.hedge(group.name).slippage_cap_bps) * _BPS
        price: Decimal = best * (1 - cap) if side is Side.SELL else best * (1 + cap)
        if market.price_step:
            mode = ROUND_CEILING if side is Side.SELL else ROUND_FLOOR
            price = (price / market.price_step).to_integral_value(mode) * market.price_step
        return price

    def _short(self, snap: Snapshot, record: dict[str, Any]) -> Decimal | None:
        position = (snap.positions.get(record["hedge_account"]) or {}).get(record["instrument"])
        return None if position is None else max(_ZERO, -Decimal(position.contracts))

    def _journal_leg(self, group: GroupSpec, record: dict[str, Any], side: Side,
                     amount: Decimal, price: Decimal, cycle: int | None) -> Any:  # fmt: skip
        spot = side is Side.SELL
        return self.engine.journal.new_order(
            instance=self.engine.settings.instance, group_code=client_id_code(group.name),
            group=group.name, account=record["spot_account" if spot else "hedge_account"],
            symbol=record["spot_symbol" if spot else "instrument"], side=side, amount=amount,
            order_type=OrderType.LIMIT, price=price, reduce_only=not spot, post_only=False,
            reason="realize: sell spot" if spot else "realize: buy back the short",
            cycle=cycle, time_in_force="IOC",
        )  # fmt: skip

    def _end(self, group: GroupSpec, record: dict[str, Any], outcome: str, log: Any,
             **figures: Any) -> GroupDecision:  # fmt: skip
        detail = {"group": group.name, "asset": record["asset"], "outcome": outcome, **figures}
        self.engine.journal.end_operation(_key(group.name), "realize.done", detail)
        log.warning("realize.done", **detail)
        self.engine.events.publish("realize.done", **detail)
        return GroupDecision(group.name, "hold", f"realize {outcome}: " + ", ".join(
            f"{k} {v}" for k, v in figures.items()))  # fmt: skip

    async def _start(self, group: GroupSpec, record: dict[str, Any], snap: Snapshot,
                     cycle: int | None, log: Any) -> GroupDecision:  # fmt: skip
        engine = self.engine
        state = engine.executor.trading_state
        if state is not TradingState.ACTIVE:
            # Nothing sent yet: a halt or flatten since the request cancels it.
            return self._end(group, record, "cancelled", log, reason=f"trading {state.value}")
        perp = engine.markets[record["hedge_account"]][record["instrument"]]
        spot = await self._market(record["spot_account"], record["spot_symbol"])
        short = self._short(snap, record)
        balances = snap.balances.get(record["spot_account"])
        if spot is None or short is None or balances is None:
            return GroupDecision(group.name, "skipped", "realize: spot market, position or "
                                 "balance unreadable this cycle")  # fmt: skip
        held = balances.get(record["asset"], _ZERO)
        contracts = short
        if record["amount"] is not None:
            contracts = min(contracts, Decimal(record["amount"]) / perp.contract_size)
        contracts = min(contracts, held / perp.contract_size)
        contracts = round_to_step(contracts, perp.amount_step, up=False)
        sell = round_to_step(contracts * perp.contract_size, spot.amount_step, up=False)
        contracts = round_to_step(sell / perp.contract_size, perp.amount_step, up=False)
        if contracts <= 0:
            return self._end(group, record, "nothing to do", log, short=str(short),
                             spot_held=str(held))  # fmt: skip
        spot_quote = await self._quote(snap, record["spot_account"], record["spot_symbol"])
        perp_quote = await self._quote(snap, record["hedge_account"], record["instrument"])
        spot_price = self._limit(group, Side.SELL, spot_quote, spot)
        perp_price = self._limit(group, Side.BUY, perp_quote, perp)
        if spot_price is None or perp_price is None:
            return GroupDecision(group.name, "skipped", "realize: no price this cycle")
        # Write-ahead: both legs and the record that names them, before anything is sent.
        sell_leg = self._journal_leg(group, record, Side.SELL, sell, spot_price, cycle)
        buy_leg = self._journal_leg(group, record, Side.BUY, contracts, perp_price, cycle)
        record.update(phase="sending", contracts=str(contracts), spot_amount=str(sell),
                      orders=[sell_leg.client_order_id, buy_leg.client_order_id])  # fmt: skip
        engine.journal.set_operation(_key(group.name), record, "realize.started")
        log.warning("realize.started", group=group.name, asset=record["asset"],
                    sell=str(sell), buy_back=str(contracts), orders=record["orders"])  # fmt: skip
        executor = engine.executor
        decision = GroupDecision(group.name, "order",
                                 f"realize: sell {sell} {record['asset']}, buy back {contracts}")
        decision.orders = []
        sold = await executor.submit(sell_leg, group.name, record["spot_account"],
                                     "realize: sell spot", cycle, log)  # fmt: skip
        if sold is not None:
            decision.orders.append(sold)
        if sold is None or sold.status is not OrderStatus.FILLED or sold.filled < sell:
            # The buy-back was never sent: it ends here, and step 4 resizes it.
            check_transition(buy_leg.client_order_id, OrderStatus.NEW, OrderStatus.REJECTED,
                             amount=contracts, filled_before=_ZERO, filled_after=_ZERO)
            engine.journal.update_order(buy_leg.client_order_id, OrderStatus.REJECTED)
            return decision
        bought = await executor.submit(buy_leg, group.name, record["hedge_account"],
                                       "realize: buy back the short", cycle, log)  # fmt: skip
        if bought is not None:
            decision.orders.append(bought)
            if bought.status is OrderStatus.FILLED and bought.filled == contracts:
                self._end(group, record, "done", log, sold=str(sold.filled),
                          bought_back=str(bought.filled),
                          average_price=str(sold.average_price))  # fmt: skip
        return decision

    async def _continue(self, group: GroupSpec, record: dict[str, Any], snap: Snapshot,
                        cycle: int | None, log: Any) -> GroupDecision:  # fmt: skip
        engine = self.engine
        perp = engine.markets[record["hedge_account"]][record["instrument"]]
        legs = [engine.journal.order(cid) for cid in record["orders"]]
        if any(leg is None or leg.status not in TERMINAL for leg in legs):
            # Cannot happen after the executor's look-ups: wait rather than guess.
            return GroupDecision(group.name, "skipped", "realize: a leg is not resolved yet")
        sold = sum((leg.filled for leg in legs if leg and leg.request.side is Side.SELL), _ZERO)
        bought = sum((leg.filled for leg in legs if leg and leg.request.side is Side.BUY), _ZERO)
        proceeds = sum((leg.filled * (leg.average_price or _ZERO) for leg in legs
                        if leg and leg.request.side is Side.SELL), _ZERO)  # fmt: skip
        target = min(Decimal(record["contracts"]),
                     round_to_step(sold / perp.contract_size, perp.amount_step, up=False))
        left = target - bought
        short = self._short(snap, record)
        if short is None:
            return GroupDecision(group.name, "skipped", "realize: position unreadable")
        left = min(left, short)
        figures = {"sold": str(sold), "bought_back": str(bought),
                   "average_price": str((proceeds / sold).quantize(Decimal("1e-8")))
                   if sold else None}  # fmt: skip
        if left <= 0:
            return self._end(group, record, "done" if sold else "nothing sold", log, **figures)
        if record["attempts"] >= _MAX_BUYBACK_ATTEMPTS:
            engine.events.publish("alert", kind="realize", group=group.name,
                                  reason=f"buy-back failed {record['attempts']} times")
            return self._end(group, record, "incomplete", log, left=str(left), **figures)
        state = engine.executor.trading_state
        if state is TradingState.HALTED:
            return GroupDecision(group.name, "blocked", f"realize paused (HALTED): {left} "
                                 "contracts to buy back after resume")  # fmt: skip
        quote = await self._quote(snap, record["hedge_account"], record["instrument"])
        price = self._limit(group, Side.BUY, quote, perp)
        if price is None:
            return GroupDecision(group.name, "skipped", "realize: no price this cycle")
        leg = self._journal_leg(group, record, Side.BUY, left, price, cycle)
        record["orders"].append(leg.client_order_id)
        record["attempts"] += 1
        engine.journal.set_operation(_key(group.name), record, "realize.resumed")
        log.warning("realize.buy_back", group=group.name, contracts=str(left), **figures)
        decision = GroupDecision(group.name, "order",
                                 f"realize: buy back {left} (spot sold {sold})")
        info = await engine.executor.submit(leg, group.name, record["hedge_account"],
                                            "realize: buy back the short", cycle, log)
        decision.orders = [] if info is None else [info]
        if info is not None and info.status is OrderStatus.FILLED and info.filled == left:
            figures["bought_back"] = str(bought + info.filled)
            self._end(group, record, "done", log, **figures)
        return decision

