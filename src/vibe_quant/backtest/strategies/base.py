"""``PerpStrategy``: what every vibe-quant strategy shares on top of NautilusTrader's ``Strategy``.

* Target-position API: ``go(direction, qty, reason, stop=, target=)``. Reversals are a close
  followed by an open (two orders): NautilusTrader's NETTING flip with one order overwrites the
  closed position (NAUTILUS_FACTS.md).
* Brackets: the entry goes out with its stop-market and take-profit limit (reduce-only) as
  one contingent order list: the exchange arms them the moment the entry fills (OTO), so they
  watch the entry bar itself, and one filling cancels the other (OUO). Their prices are set
  at the signal from the signal bar's close, as a trader sends a bracket.
* Pre-trade margin check: an entry needing more initial margin (plus its taker fee) than the
  free equity is refused and logged (the engine's RiskEngine skips margin accounts).
* One order in flight at a time: market orders fill at the next bar's open, so the position
  is not visible in the bar they were sent; the strategy waits instead of sending twice.
* Structured events (SIGNAL, ORDER, RISK_CHECK) into the run's recorder.
"""

from __future__ import annotations

import math

from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import ContingencyType, OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import LimitOrder, MarketOrder, OrderList, StopMarketOrder
from nautilus_trader.trading.strategy import Strategy

from vibe_quant.backtest.execution import round_adverse
from vibe_quant.backtest.margin import max_notional_at


class PerpStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    """Fields every perp strategy needs; subclasses add their parameters."""

    instrument_id: str
    bar_type: str


class RunContext:
    """What a strategy can see of the run beyond NautilusTrader: the venue module and recorder."""

    def __init__(self, module, recorder, leverage: float, taker_fee: float, gate=None, indicators=None):
        self.module = module
        self.recorder = recorder
        self.leverage = leverage
        self.taker_fee = taker_fee
        self.gate = gate  # vibe_quant.risk.gate.RiskGate when the run has --sizing/--risk
        # vibe_quant.dsl.table.IndicatorCache when the run precomputes signals (screening)
        self.indicators = indicators


class PerpStrategy(Strategy):
    """Base class; subclasses implement ``setup()`` (indicators) and ``on_bar``."""

    def __init__(self, config: PerpStrategyConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.ctx: RunContext | None = None  # set by the runner before the engine starts
        self.instrument = None
        self._in_flight: set[str] = set()
        self.stop_order_id: str | None = None  # the stop-loss of the last bracket sent

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        self.setup()
        self.subscribe_bars(self.bar_type)

    def setup(self) -> None:
        """Create and register indicators (override)."""

    @classmethod
    def check(cls, config: PerpStrategyConfig) -> None:
        """Reject impossible parameters before any engine starts (override; raise ConfigError)."""

    # -- state ----------------------------------------------------------------------------------

    def position_qty(self) -> float:
        """Signed open quantity of this strategy's instrument (base units)."""
        return self.ctx.module.by_instrument[self.instrument_id.value].signed_qty

    def busy(self) -> bool:
        """True while a market order is on its way (fills at the next bar's open)."""
        return bool(self._in_flight)

    def release(self) -> None:
        """Drop what the run lent the strategy (called after the run): NautilusTrader keeps finished
        strategies reachable, and a sweep must not keep every point's state alive."""
        self.ctx = None

    def idle(self) -> bool:
        """Flat, with no order on its way or resting: a bar changes nothing unless the strategy acts."""
        return not self._in_flight and not self.position_qty() and not self.ctx.module.resting(self.instrument_id.value)

    def equity(self) -> float:
        return self.ctx.module.equity()

    def free_margin(self) -> float:
        return self.equity() - self.ctx.module.used_margin()

    def max_qty(self, price: float) -> float:
        """Largest quantity Binance accepts at the run's leverage (its bracket rule), at `price`."""
        st = self.ctx.module.by_instrument[self.instrument_id.value]
        return max_notional_at(self.ctx.leverage, st.brackets) / price * 0.999 if price > 0 else 0.0

    def floor_qty(self, qty: float) -> float:
        """Round a quantity down to the instrument's step (0 if below one step)."""
        step = self.instrument.size_increment.as_double()
        return math.floor(qty / step + 1e-9) * step if qty > 0 else 0.0

    # -- actions --------------------------------------------------------------------------------

    def signal(self, bar: Bar, direction: int, **info) -> None:
        self.ctx.recorder.event(bar.ts_event, "SIGNAL", instrument=self.instrument_id.value,
                                strategy=self.id.value, direction=direction, close=bar.close.as_double(), **info)  # fmt: skip

    def go(self, bar: Bar, direction: int, qty: float, reason: str = "signal",
           stop: float | None = None, target: float | None = None) -> bool:  # fmt: skip
        """Move to `direction` (+1 long, -1 short, 0 flat) with `qty` for a new position.

        `stop`/`target` are distances from the signal bar's close for the bracket orders.
        Returns False when nothing could be sent (in flight, refused by the margin check).
        """
        if self._in_flight:
            return False
        current = self.position_qty()
        side_now = (current > 0) - (current < 0)
        if side_now == direction:
            return False
        price = bar.close.as_double()
        released = 0.0
        if side_now:
            self._cancel_resting()  # brackets of the position being closed
            self._submit_market(bar.ts_event, -side_now, abs(current), reason, reduce_only=True)
            released = self.ctx.module.by_instrument[self.instrument_id.value].wallet
        if direction == 0:
            return True
        if self.ctx.gate is not None:  # sizing and risk checks (seed 001's circuit-breaker flow)
            qty = self.ctx.gate.entry(self, bar, direction, qty, price, stop)
            if qty <= 0:
                return side_now != 0
        qty = self.floor_qty(qty)
        if qty <= 0:
            self._risk(bar, "size_below_step", f"quantity rounds to zero at step {self.instrument.size_increment}")
            return side_now != 0
        limit = max_notional_at(self.ctx.leverage, self.ctx.module.by_instrument[self.instrument_id.value].brackets)
        if qty * price > limit:
            self._risk(bar, "max_position_at_leverage",
                       f"entry notional {qty * price:.2f} exceeds the {limit:.0f} USDT Binance allows at "
                       f"{self.ctx.leverage:g}x", notional=qty * price, limit=limit)  # fmt: skip
            return side_now != 0
        required = qty * price / self.ctx.leverage + qty * price * max(self.ctx.taker_fee, 0.0)
        free = self.free_margin() + released
        if required > free:
            self._risk(bar, "insufficient_margin",
                       f"entry needs {required:.2f} USDT initial margin + fee, free equity is {free:.2f}",
                       required=required, free=free)  # fmt: skip
            return side_now != 0
        if stop is None and target is None:
            if self._post_only() is not None:
                self._send(self._entry_order(bar, direction, Quantity(qty, self.instrument.size_precision),
                                             self.order_factory.generate_client_order_id(), None, None), bar.ts_event,
                           "entry", track=True)  # fmt: skip
            else:
                self._submit_market(bar.ts_event, direction, qty, "entry", reduce_only=False)
        else:
            self._submit_bracket(bar, direction, qty, stop, target)
        return True

    def flatten(self, ts: int, reason: str) -> None:
        """Kill switch for this strategy: cancel its open orders, close its position at market."""
        for order in self.cache.orders_open(instrument_id=self.instrument_id, strategy_id=self.id):
            if not order.is_pending_cancel:
                self.cancel_order(order)
        current = self.position_qty()
        if current and not any(self.ctx.recorder.reasons.get(c, "").startswith(("halt", "portfolio"))
                               for c in self._in_flight):  # fmt: skip
            self._submit_market(ts, -1 if current > 0 else 1, abs(current), reason, reduce_only=True)

    def _cancel_resting(self) -> None:
        # The venue module tracks this symbol's resting orders; NautilusTrader's
        # cancel_all_orders scans the cache and grows with every order of the run.
        for coid in list(self.ctx.module.resting(self.instrument_id.value)):
            order = self.cache.order(ClientOrderId(coid))
            if order is not None and order.is_open:
                self.cancel_order(order)

    def _submit_market(self, ts: int, direction: int, qty: float, reason: str, reduce_only: bool) -> str:
        order = self.order_factory.market(
            self.instrument_id, OrderSide.BUY if direction > 0 else OrderSide.SELL,
            Quantity(qty, self.instrument.size_precision), reduce_only=reduce_only, tags=[reason],
        )  # fmt: skip
        return self._send(order, ts, reason, track=True)

    def _submit_bracket(self, bar: Bar, direction: int, qty: float, stop: float | None, target: float | None) -> None:
        # Built by hand rather than with OrderFactory.bracket, which requires both exits.
        factory, iid = self.order_factory, self.instrument_id
        ts, ref = self.clock.timestamp_ns(), bar.close.as_double()
        tick, precision = self.instrument.price_increment.as_double(), self.instrument.price_precision
        quantity = Quantity(qty, self.instrument.size_precision)
        list_id = factory.generate_order_list_id()
        entry_id = factory.generate_client_order_id()
        exit_side = OrderSide.SELL if direction > 0 else OrderSide.BUY
        legs = []  # (reason, client order id, price), both rounded away from the entry
        for reason, distance, away in (("stop_loss", stop, -direction), ("take_profit", target, direction)):
            if distance is not None:
                px = round_adverse(ref + away * distance, tick, away)
                if px > 0:
                    legs.append((reason, factory.generate_client_order_id(), px))
        ids = [coid for _, coid, _ in legs]
        self.stop_order_id = next((coid.value for reason, coid, _ in legs if reason == "stop_loss"), None)
        orders = [self._entry_order(bar, direction, quantity, entry_id, list_id, ids)]
        for reason, coid, px in legs:
            common = {
                "trader_id": self.trader_id, "strategy_id": self.id, "instrument_id": iid, "client_order_id": coid,
                "order_side": exit_side, "quantity": quantity, "init_id": UUID4(), "ts_init": ts,
                "time_in_force": TimeInForce.GTC, "reduce_only": True,
                "contingency_type": ContingencyType.OUO if len(legs) > 1 else ContingencyType.NO_CONTINGENCY,
                "order_list_id": list_id, "linked_order_ids": [c for c in ids if c != coid] or None,
                "parent_order_id": entry_id, "tags": [reason],
            }  # fmt: skip
            if reason == "stop_loss":
                orders.append(StopMarketOrder(trigger_price=Price(px, precision), trigger_type=TriggerType.DEFAULT,
                                              **common))  # fmt: skip
            else:
                orders.append(LimitOrder(price=Price(px, precision), **common))
        self._log_order(orders[0], bar.ts_event, "entry", track=True)
        for (reason, _, _), order in zip(legs, orders[1:], strict=True):
            self._log_order(order, bar.ts_event, reason, track=False)
        self.submit_order_list(OrderList(list_id, orders))

    def _post_only(self) -> int | None:
        """Bars a post-only entry rests (the risk config's prefer_post_only), else None."""
        gate = self.ctx.gate
        return gate.pcfg.post_only_bars if gate is not None and gate.post_only else None

    def _entry_order(self, bar: Bar, direction: int, quantity: Quantity, entry_id, list_id, ids):
        """The entry: a market order, or (prefer_post_only) a post-only limit one tick on the passive
        side of the signal close, cancelled if not filled within `post_only_bars` bars (maker only:
        it fills when the market trades through it, never at a worse price; a missed entry is missed)."""
        side = OrderSide.BUY if direction > 0 else OrderSide.SELL
        contingency = {"contingency_type": ContingencyType.OTO if ids else ContingencyType.NO_CONTINGENCY,
                       "order_list_id": list_id, "linked_order_ids": ids or None, "tags": ["entry"]}  # fmt: skip
        ts = self.clock.timestamp_ns()
        bars = self._post_only()
        if bars is None:
            return MarketOrder(self.trader_id, self.id, self.instrument_id, entry_id, side, quantity, UUID4(), ts,
                               **contingency)  # fmt: skip
        tick = self.instrument.price_increment.as_double()
        px = round_adverse(bar.close.as_double() - direction * tick, tick, -direction)  # passive: down for buys
        st = self.ctx.module.by_instrument[self.instrument_id.value]
        return LimitOrder(self.trader_id, self.id, self.instrument_id, entry_id, side, quantity,
                          Price(px, self.instrument.price_precision), UUID4(), ts, time_in_force=TimeInForce.GTD,
                          expire_time_ns=bar.ts_event + bars * st.bar_ns + 1, post_only=True, **contingency)  # fmt: skip

    def _send(self, order, ts: int, reason: str, track: bool) -> str:
        coid = self._log_order(order, ts, reason, track)
        self.submit_order(order)
        return coid

    def _log_order(self, order, ts: int, reason: str, track: bool) -> str:
        coid = order.client_order_id.value
        self.ctx.recorder.reasons[coid] = reason
        if track:
            self._in_flight.add(coid)
        self.ctx.recorder.event(ts, "ORDER", instrument=self.instrument_id.value, strategy=self.id.value,
                                order_id=coid, order_type=order.type_string(), side=order.side_string(),
                                qty=order.quantity.as_double(), reason=reason,
                                price=order.price.as_double() if order.has_price else None,
                                trigger=order.trigger_price.as_double() if order.has_trigger_price else None)  # fmt: skip
        return coid

    def _risk(self, bar: Bar, check: str, message: str, **info) -> None:
        self.log.warning(f"{check}: {message}")
        self.ctx.recorder.event(bar.ts_event, "RISK_CHECK", instrument=self.instrument_id.value,
                                strategy=self.id.value, check=check, action="order refused", message=message, **info)  # fmt: skip

    # -- order events ---------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        self._in_flight.discard(event.client_order_id.value)

    on_order_canceled = on_order_denied = on_order_expired = on_order_filled  # no longer on its way

    def on_order_rejected(self, event) -> None:
        coid = event.client_order_id.value
        was_stop = self.ctx.recorder.reasons.get(coid) == "stop_loss"
        self._in_flight.discard(coid)
        current = self.position_qty()
        if was_stop and current and not self._in_flight:
            # The market was already through the stop when the exchange armed it (Binance: "order
            # would immediately trigger"). Exit at the next open instead of holding unprotected.
            self._cancel_resting()
            self._submit_market(event.ts_event, -1 if current > 0 else 1, abs(current), "stop_loss", reduce_only=True)
