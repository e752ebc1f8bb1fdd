"""One instrument traded by one strategy: the order logic every vibe-quant strategy shares.

A :class:`Leg` is what ``PerpStrategy`` (one instrument) has once and ``PortfolioStrategy`` (many
instruments, one account) has per instrument:

* Target-position API: ``go(bar, direction, qty, reason, stop=, target=)``. Reversals are a close
  followed by an open (two orders): NautilusTrader's NETTING flip with one order overwrites the
  closed position (docs/nautilus.md#netting-flip-with-one-order).
* Brackets: the entry goes out with its stop-market and take-profit limit (reduce-only) as one
  contingent order list: the exchange arms them the moment the entry fills (OTO), so they watch
  the entry bar itself, and one filling cancels the other (OUO). Their prices are set at the
  signal from the signal bar's close, as a trader sends a bracket.
* Pre-trade checks: the entry must fit Binance's maximum position at the leverage and its initial
  margin plus taker fee must fit the free equity (NautilusTrader's RiskEngine skips margin
  accounts); otherwise it is refused and logged. With a risk gate, the gate sizes it first.
* One order in flight at a time: market orders fill at the next bar's open, so the position is
  not visible in the bar they were sent; the leg waits instead of sending twice.
* Structured events (SIGNAL, ORDER, RISK_CHECK) into the ports' event sink.

The leg reads the account only through its ports (``strategy/ports.py``) and talks to the
exchange only through its NautilusTrader strategy, so it runs unchanged in a backtest, on paper
and live.
"""

from __future__ import annotations

import math

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import ContingencyType, OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import LimitOrder, MarketOrder, OrderList, StopMarketOrder

from vibe_quant.instruments.margin import max_notional_at
from vibe_quant.instruments.ticks import round_adverse
from vibe_quant.strategy.account import InstrumentBook
from vibe_quant.strategy.ports import StrategyPorts


class Leg:
    """One instrument of `strategy`; `name` identifies it in risk events and breaker scopes.

    Built with the strategy; :meth:`start` (from the strategy's ``on_start``) binds it to the
    run's ports and the instrument NautilusTrader holds.
    """

    def __init__(self, strategy, instrument_id: InstrumentId, bar_type: BarType, name: str):
        self.strategy = strategy
        self.instrument_id = instrument_id
        self.bar_type = bar_type
        self.name = name
        self.instrument = None
        self.book: InstrumentBook | None = None
        self.ports: StrategyPorts | None = None
        self.in_flight: set[str] = set()
        self.stop_order_id: str | None = None  # the stop-loss of the last bracket sent

    def start(self, ports: StrategyPorts) -> None:
        self.ports = ports
        self.instrument = self.strategy.cache.instrument(self.instrument_id)
        self.book = ports.account.book(self.instrument_id.value)

    def release(self) -> None:
        """Drop the run's objects (NautilusTrader keeps finished strategies reachable)."""
        self.ports = self.book = None

    # -- state ----------------------------------------------------------------------------------

    @property
    def leverage(self) -> float:
        return self.book.leverage

    def position_qty(self) -> float:
        """Signed open quantity (base units)."""
        return self.book.signed_qty

    def busy(self) -> bool:
        """True while a market order is on its way (fills at the next bar's open)."""
        return bool(self.in_flight)

    def idle(self) -> bool:
        """Flat, with no order on its way or resting: a bar changes nothing unless the strategy acts."""
        return (
            not self.in_flight and not self.book.signed_qty and not self.ports.account.resting(self.instrument_id.value)
        )

    def equity(self) -> float:
        return self.ports.account.equity()

    def free_margin(self) -> float:
        account = self.ports.account
        return account.equity() - account.used_margin()

    def max_qty(self, price: float) -> float:
        """Largest quantity Binance accepts at the leverage (its bracket rule), at `price`."""
        book = self.book
        return max_notional_at(book.leverage, book.brackets) / price * 0.999 if price > 0 else 0.0

    def floor_qty(self, qty: float) -> float:
        """Round a quantity down to the instrument's step (0 if below one step)."""
        step = self.instrument.size_increment.as_double()
        return math.floor(qty / step + 1e-9) * step if qty > 0 else 0.0

    # -- actions --------------------------------------------------------------------------------

    def signal(self, bar: Bar, direction: int, **info) -> None:
        self.ports.events.event(bar.ts_event, "SIGNAL", instrument=self.instrument_id.value,
                                strategy=self.strategy.id.value, direction=direction, close=bar.close.as_double(),
                                **info)  # fmt: skip

    def go(self, bar: Bar, direction: int, qty: float, reason: str = "signal",
           stop: float | None = None, target: float | None = None, resize: bool = False) -> bool:  # fmt: skip
        """Move to `direction` (+1 long, -1 short, 0 flat) with `qty` for a new position.

        `stop`/`target` are distances from the signal bar's close for the bracket orders. With
        `resize`, a position already on `direction` is closed and opened again with `qty` (the venue
        books whole positions; a policy's new target size goes through flat).
        Returns False when nothing could be sent (in flight, refused by a check).
        """
        if self.in_flight:
            return False
        book = self.book
        current = book.signed_qty
        side_now = (current > 0) - (current < 0)
        if side_now == direction and not (resize and direction):
            return False
        price = bar.close.as_double()
        released = 0.0
        if side_now:
            self.cancel_resting()  # brackets of the position being closed
            self.submit_market(bar.ts_event, -side_now, abs(current), reason, reduce_only=True)
            released = book.wallet
        if direction == 0:
            return True
        gate = self.ports.gate
        if gate is not None:  # sizing and risk checks (docs/specs.md#circuit-breaker-flow)
            qty = gate.entry(self, bar, direction, qty, price, stop)
            if qty <= 0:
                return side_now != 0
        qty = self.floor_qty(qty)
        if qty <= 0:
            self.refuse(bar, "size_below_step", f"quantity rounds to zero at step {self.instrument.size_increment}")
            return side_now != 0
        limit = max_notional_at(book.leverage, book.brackets)
        if qty * price > limit:
            self.refuse(bar, "max_position_at_leverage",
                        f"entry notional {qty * price:.2f} exceeds the {limit:.0f} USDT Binance allows at "
                        f"{book.leverage:g}x", notional=qty * price, limit=limit)  # fmt: skip
            return side_now != 0
        required = qty * price / book.leverage + qty * price * max(book.taker_fee, 0.0)
        free = self.free_margin() + released
        if required > free:
            self.refuse(bar, "insufficient_margin",
                        f"entry needs {required:.2f} USDT initial margin + fee, free equity is {free:.2f}",
                        required=required, free=free)  # fmt: skip
            return side_now != 0
        if stop is None and target is None:
            if self._post_only() is not None:
                order = self._entry_order(bar, direction, Quantity(qty, self.instrument.size_precision),
                                          self.strategy.order_factory.generate_client_order_id(), None, None)  # fmt: skip
                self._send(order, bar.ts_event, "entry", track=True)
            else:
                self.submit_market(bar.ts_event, direction, qty, "entry", reduce_only=False)
        else:
            self._submit_bracket(bar, direction, qty, stop, target)
        return True

    def flatten(self, ts: int, reason: str) -> None:
        """Kill switch for this leg: cancel its open orders, close its position at market."""
        s = self.strategy
        for order in s.cache.orders_open(instrument_id=self.instrument_id, strategy_id=s.id):
            if not order.is_pending_cancel:
                s.cancel_order(order)
        current = self.book.signed_qty
        reasons = self.ports.events.reasons
        if current and not any(reasons.get(c, "").startswith(("halt", "portfolio")) for c in self.in_flight):
            self.submit_market(ts, -1 if current > 0 else 1, abs(current), reason, reduce_only=True)

    def cancel_resting(self) -> None:
        # The account tracks the instrument's resting orders; NautilusTrader's cancel_all_orders
        # scans the cache and grows with every order of the run.
        s = self.strategy
        for coid in list(self.ports.account.resting(self.instrument_id.value)):
            order = s.cache.order(ClientOrderId(coid))
            if order is not None and order.is_open:
                s.cancel_order(order)

    def submit_market(self, ts: int, direction: int, qty: float, reason: str, reduce_only: bool) -> str:
        order = self.strategy.order_factory.market(
            self.instrument_id, OrderSide.BUY if direction > 0 else OrderSide.SELL,
            Quantity(qty, self.instrument.size_precision), reduce_only=reduce_only, tags=[reason],
        )  # fmt: skip
        return self._send(order, ts, reason, track=True)

    def _submit_bracket(self, bar: Bar, direction: int, qty: float, stop: float | None, target: float | None) -> None:
        # Built by hand rather than with OrderFactory.bracket, which requires both exits.
        s = self.strategy
        factory, iid = s.order_factory, self.instrument_id
        ts, ref = s.clock.timestamp_ns(), bar.close.as_double()
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
                "trader_id": s.trader_id, "strategy_id": s.id, "instrument_id": iid, "client_order_id": coid,
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
        s.submit_order_list(OrderList(list_id, orders))

    def _post_only(self) -> int | None:
        """Bars a post-only entry rests (the risk config's prefer_post_only), else None."""
        gate = self.ports.gate
        return gate.post_only_bars if gate is not None else None

    def _entry_order(self, bar: Bar, direction: int, quantity: Quantity, entry_id, list_id, ids):
        """The entry: a market order, or (prefer_post_only) a post-only limit one tick on the passive
        side of the signal close, cancelled if not filled within `post_only_bars` bars (maker only:
        it fills when the market trades through it, never at a worse price; a missed entry is missed)."""
        s = self.strategy
        side = OrderSide.BUY if direction > 0 else OrderSide.SELL
        contingency = {"contingency_type": ContingencyType.OTO if ids else ContingencyType.NO_CONTINGENCY,
                       "order_list_id": list_id, "linked_order_ids": ids or None, "tags": ["entry"]}  # fmt: skip
        ts = s.clock.timestamp_ns()
        bars = self._post_only()
        if bars is None:
            return MarketOrder(s.trader_id, s.id, self.instrument_id, entry_id, side, quantity, UUID4(), ts,
                               **contingency)  # fmt: skip
        tick = self.instrument.price_increment.as_double()
        px = round_adverse(bar.close.as_double() - direction * tick, tick, -direction)  # passive: down for buys
        return LimitOrder(s.trader_id, s.id, self.instrument_id, entry_id, side, quantity,
                          Price(px, self.instrument.price_precision), UUID4(), ts, time_in_force=TimeInForce.GTD,
                          expire_time_ns=bar.ts_event + bars * self.book.bar_ns + 1, post_only=True,
                          **contingency)  # fmt: skip

    def _send(self, order, ts: int, reason: str, track: bool) -> str:
        coid = self._log_order(order, ts, reason, track)
        self.strategy.submit_order(order)
        return coid

    def _log_order(self, order, ts: int, reason: str, track: bool) -> str:
        coid = order.client_order_id.value
        events = self.ports.events
        events.reasons[coid] = reason
        if track:
            self.in_flight.add(coid)
        events.event(ts, "ORDER", instrument=self.instrument_id.value, strategy=self.strategy.id.value,
                     order_id=coid, order_type=order.type_string(), side=order.side_string(),
                     qty=order.quantity.as_double(), reason=reason,
                     price=order.price.as_double() if order.has_price else None,
                     trigger=order.trigger_price.as_double() if order.has_trigger_price else None)  # fmt: skip
        return coid

    def refuse(self, bar: Bar, check: str, message: str, **info) -> None:
        """Log an entry this leg refused (RISK_CHECK event and a warning)."""
        self.strategy.log.warning(f"{check}: {message}")
        self.ports.events.event(bar.ts_event, "RISK_CHECK", instrument=self.instrument_id.value,
                                strategy=self.strategy.id.value, check=check, action="order refused", message=message,
                                **info)  # fmt: skip

    # -- order events ---------------------------------------------------------------------------

    def done(self, client_order_id: str) -> None:
        """An order is no longer on its way (filled, cancelled, denied, expired)."""
        self.in_flight.discard(client_order_id)

    def rejected(self, event) -> None:
        coid = event.client_order_id.value
        was_stop = self.ports.events.reasons.get(coid) == "stop_loss"
        self.in_flight.discard(coid)
        current = self.book.signed_qty
        if was_stop and current and not self.in_flight:
            # The market was already through the stop when the exchange armed it (Binance: "order
            # would immediately trigger"). Exit at the next open instead of holding unprotected.
            self.cancel_resting()
            self.submit_market(event.ts_event, -1 if current > 0 else 1, abs(current), "stop_loss", reduce_only=True)
