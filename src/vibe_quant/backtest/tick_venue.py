"""The perpetual-futures venue rules on ticks (docs/specs.md#tick-level-backtests).

With quote and trade ticks NautilusTrader's own matching is good enough for what bars could not
express: an L1 book (``book_type=L1_MBP``) follows the quotes, and with ``trade_execution=True``
each trade also moves the touch (a buyer-aggressor trade is the ask, a seller-aggressor trade the
bid), so a symbol without quotes ("quotes-free") trades against the touch inferred from its trades.
Every command reaches the exchange after the plan's latency and is executed at the first tick
at or after its arrival, once that tick has updated the book. Hence:

* market orders (and triggered stops) fill in full at the touch then (:class:`TickFillModel`):
  the ask for a buy, the bid for a sell;
* limit and post-only orders rest; NautilusTrader fills a buy limit at its price once the ask
  is at or below it (a sell: the bid at or above). If the bid is then exactly at the limit (the
  order is only touched and may still be queued) it fills with the queue probability
  ``prob_fill_on_limit``, a draw keyed by the instrument, the tick's time and its rank
  (:meth:`~vibe_quant.backtest.execution.PerpFillModel.is_limit_filled`, ``draws.py``); a later tick that
  leaves the ask at the limit and moves the bid away fills it (the market crossed it);
* stop and take-profit orders are matched tick by tick: the path inside a bar is known, so there
  is no stop-before-take-profit assumption to make.

:class:`TickVenueModule` adds, before NautilusTrader matches each tick:

1. **funding**: every settlement whose snapshot is at or before the tick is applied to the
   position held then, with the last trade price (or mid) before the tick as the mark (the bar
   module takes the previous close); balance, margin and records as in ``venue.py``;
2. **liquidation**: isolated margin with the tiered maintenance schedule, checked on every tick
   (the trade price, or the quote's mid); the position closes at the liquidation price and the
   rest of its margin is the clearance fee (``PerpVenueModule._liquidate``).

It keeps the strategies' books (``strategy/account.py``) from the bars NautilusTrader aggregates
from the trades, and shares the bar module's fill, position and equity bookkeeping.
"""

from __future__ import annotations

import heapq

from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder, QuoteTick, TradeTick
from nautilus_trader.model.enums import BookType, OrderSide, OrderType
from nautilus_trader.model.objects import Quantity

from vibe_quant.backtest.execution import InstrumentState, PerpFillModel
from vibe_quant.backtest.venue import PerpVenueModule

# Run before the strategies' own bar handlers: the book must hold the bar they are told about.
_BEFORE_STRATEGIES = 10


class TickFillModel(PerpFillModel):
    """Fills market and stop-market orders in full at the touch, limits at their price, forced
    orders (liquidations) at the price the venue module set; limit queue draws as
    :class:`~vibe_quant.backtest.execution.PerpFillModel` (keyed per tick)."""

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        coid = order.client_order_id.value
        if coid in self.recorder.forced or order.order_type not in (OrderType.MARKET, OrderType.STOP_MARKET):
            return super().get_orderbook_for_fill_simulation(instrument, order, best_bid, best_ask)
        st: InstrumentState = self.states[instrument.id]
        buy = order.side == OrderSide.BUY
        touch = best_ask if buy else best_bid
        # In full at the touch: the L1 book only knows the size of the last quote or trade, and a
        # partial fill of a bracket's entry leaves its stop and target sized for the whole order.
        book = OrderBook(instrument.id, BookType.L2_MBP)
        size = Quantity(max(order.quantity.as_double() * 10.0, 1.0), st.size_precision)
        book.add(BookOrder(OrderSide.SELL if buy else OrderSide.BUY, touch, size, 1), 0, 0)
        return book


class TickVenueModule(PerpVenueModule):
    """Funding, isolated-margin liquidation and bookkeeping on ticks (see the module docstring).

    Parameters
    ----------
    states : dict
        InstrumentId -> :class:`~vibe_quant.backtest.execution.InstrumentState` without bars (the
        bars aggregated from the trades are appended as they close).
    recorder : RunRecorder
        Where fills, funding, liquidations, equity and events go.
    bar_types : dict
        Instrument id string -> the internally aggregated ``BarType`` the books follow.
    venue : str, default "BINANCE"
    """

    def __init__(self, states: dict, recorder, bar_types: dict, venue: str = "BINANCE"):
        self.bar_types = bar_types
        super().__init__(states, recorder, [], venue, range(0))

    def bind(self, states: dict, recorder, sequence: list, own=None, fed=None) -> None:
        super().bind(states, recorder, sequence, own, fed)
        self.last_px = {str(iid): 0.0 for iid in states}  # last trade (or mid) per instrument
        self.ticks = 0

    def pre_process(self, data) -> None:
        cls = data.__class__
        if cls is TradeTick:
            price = data.price.as_double()
        elif cls is QuoteTick:
            price = (data.bid_price.as_double() + data.ask_price.as_double()) / 2.0
        else:
            return
        self.ticks += 1
        key = data.instrument_id.value
        st = self.by_instrument[key]
        ts = data.ts_init
        if ts > self._last_ts:
            if not self._subscribed:
                self._subscribe()
            if self._dirty:
                self._record_change(self._last_ts)
            self._last_ts = ts
            if ts >= self._report_at:
                self._report(ts)
            arrivals = self._arrivals
            while arrivals and arrivals[0] <= ts:  # NautilusTrader executes them itself after the tick
                heapq.heappop(arrivals)
        if st.next_funding < len(st.funding) and st.funding[st.next_funding][0] <= ts:
            self._settle_funding(st, ts)
        self.last_px[key] = price
        self.exchange.fill_model.at(st.key, ts)
        qty = st.signed_qty
        if qty:
            lp = st.liq_price
            if (qty > 0 and lp > 0 and price <= lp) or (qty < 0 and price >= lp):
                self._liquidate(st, ts, price)

    def _subscribe(self) -> None:
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self.msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)
        for bar_type in self.bar_types.values():
            self.msgbus.subscribe(topic=f"data.bars.{bar_type.standard()}", handler=self._on_bar,
                                  priority=_BEFORE_STRATEGIES)  # fmt: skip
        self._subscribed = True

    def _on_bar(self, bar) -> None:
        self.by_instrument[bar.bar_type.instrument_id.value].append_bar(bar)

    def _funding_mark(self, st: InstrumentState) -> float:
        # The last trade (or mid) before the tick that reached the snapshot: never one after it.
        return self.last_px[st.instrument_id.value]

    def finish(self) -> None:
        """Record the state after the last tick and close each book's curve there (the last trade or
        mid after the last full bar), so the equity curve ends at the end of the data."""
        super().finish()
        for key, st in self.by_instrument.items():
            if self.last_px[key] and (not st.ts or st.ts[-1] < self._last_ts):
                st.ts.append(self._last_ts)
                for column in (st.opens, st.highs, st.lows, st.closes):
                    column.append(self.last_px[key])
                st.volumes.append(0.0)
                st.i = len(st.ts) - 1
            st._arrays = None
