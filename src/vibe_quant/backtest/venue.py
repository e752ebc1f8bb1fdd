"""The perpetual-futures venue rules NautilusTrader 1.221 lacks, as a ``SimulationModule``.

NautilusTrader matches a bar against the resting orders first and only then executes the
commands that arrived during it, so with bars an order sent at one bar's close, or a stop that
a fill arms, meets the market one bar late. Here, when the first bar of a new close time is
about to be matched (``pre_process``):

1. **open**: every instrument with a bar at that time advances to it;
2. **funding**: every settlement whose snapshot is at or before the bar's open is applied to
   the position held at that moment (orders from the previous close arrive after it):
   ``amount = signed_qty * mark * rate`` is debited (positive rate: longs pay, shorts
   receive), with the previous close as the mark. It moves the account balance via
   ``adjust_account`` and the position's isolated margin.
3. **arrivals**: the exchange executes the commands that arrived by the bar's close (market
   orders fill at its open, see ``execution.py``; cancels take effect), so the orders a fill
   arms (a bracket's stop and take-profit) already watch that bar, as on a real exchange.

Then, for each bar, before NautilusTrader matches it:

4. **liquidation**: isolated margin with the tiered maintenance schedule; if the bar reaches
   the liquidation price (low for longs, high for shorts) before a resting stop would close
   the position, the venue cancels the symbol's orders, closes the position at the
   liquidation price and takes the rest of the isolated margin as the clearance fee: the
   trade loses exactly its margin.
5. **SL before TP**: when a bar reaches both a position's resting stop and its take-profit
   limit, the path inside the bar is unknown; the take-profit is cancelled so the stop fills
   (pessimistic, docs/specs.md#stop-loss-before-take-profit).

It also follows fills and positions on the message bus to keep isolated margins, the
reference prices of fills, the event log, and the equity curve (balance plus unrealised PnL at
each bar's close) in the :class:`~vibe_quant.backtest.recorder.RunRecorder`.
"""

from __future__ import annotations

import heapq
from array import array

import numpy as np
from nautilus_trader.backtest.modules import SimulationModule, SimulationModuleConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import OrderSide, OrderType, liquidity_side_to_str, order_type_to_str
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderPendingUpdate,
    OrderRejected,
    OrderSubmitted,
    OrderUpdated,
)
from nautilus_trader.model.identifiers import ClientOrderId, PositionId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.model.orders import MarketOrder

from vibe_quant.backtest.execution import InstrumentState
from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord, RunRecorder
from vibe_quant.instruments.margin import liquidation_price
from vibe_quant.instruments.ticks import round_adverse

_EQUITY_CHUNK = 1 << 16  # bars per step of equity_curve()
_CLOSING_EVENTS = frozenset((OrderCanceled, OrderExpired, OrderRejected, OrderDenied))
_COMMAND_EVENTS = frozenset((OrderSubmitted, OrderPendingCancel, OrderPendingUpdate))


def bar_positions(owners) -> tuple:
    """For bars in replay order tagged with their owner: each bar's index among its owner's bars,
    and per owner the replay index of each of its bars (``array('q')``: 8 bytes a bar where a
    list of Python ints takes ~36). With one owner both are ``range`` objects (no memory)."""
    n = len(owners)
    if n and owners.count(owners[0]) == n:
        return range(n), {owners[0]: range(n)}
    own = array("q", bytes(8 * n))
    merged: dict[object, array] = {}
    for m, owner in enumerate(owners):
        mine = merged.get(owner)
        if mine is None:
            mine = merged[owner] = array("q")
        own[m] = len(mine)
        mine.append(m)
    return own, merged


class PerpVenueModule(SimulationModule):
    """Funding, isolated-margin liquidation, SL-before-TP and bookkeeping for one venue.

    Parameters
    ----------
    states : dict
        InstrumentId -> :class:`~vibe_quant.backtest.execution.InstrumentState` (shared with the
        fill model and the strategies).
    recorder : RunRecorder
        Where fills, funding, liquidations, equity and events go.
    venue : str, default "BINANCE"
    """

    def __init__(self, states: dict, recorder: RunRecorder, sequence: list, venue: str = "BINANCE",
                 own: list | None = None):  # fmt: skip
        super().__init__(SimulationModuleConfig())
        self.venue = Venue(venue)
        self._subscribed = False  # to the message bus, once per engine (survives engine.reset())
        self._progress = None
        self.report_progress(None)
        self.bind(states, recorder, sequence, own)

    def bind(self, states: dict, recorder: RunRecorder, sequence: list, own: list | None = None,
             fed=None) -> None:  # fmt: skip
        """Start a run with fresh per-instrument states (an engine reused after ``reset()`` calls this).

        `sequence` holds the owner state of each execution bar in replay order and `own` each
        bar's index in its owner's lists (computed when not given). `fed` (a deque) is for runs
        that replay only some bars (``feed.py``): it says which bar of the sequence comes next.
        """
        self.states = states
        self.state_list = list(states.values())
        self.by_instrument = {str(iid): st for iid, st in states.items()}
        self.sequence = sequence
        self.own = own if own is not None else bar_positions([id(st) for st in sequence])[0]
        self.fed = fed
        self.recorder = recorder
        self._k = -1
        self._last_ts = 0
        self._balance: float | None = None  # cached account balance; None when it may have changed
        self._dirty = True  # balance or positions changed since the last change point
        # resting stop/limit orders by symbol: client order id -> (kind, side, price)
        self._resting: dict[str, dict[str, tuple[str, int, float]]] = {st.symbol: {} for st in self.state_list}
        self._liquidations = 0
        self._arrivals: list[int] = []  # heap: when the commands on their way reach the exchange
        # Change points of (ts, balance, signed qty per state, avg price per state): the equity
        # curve is rebuilt from them and the bars after the run (see equity_curve()).
        self.changes: list[tuple[int, float, tuple, tuple]] = []

    def reset(self) -> None:
        """Called by ``engine.reset()``; the next run's state comes from :meth:`bind`."""

    def report_progress(self, progress, label: str = "", first_ns: int = 0, last_ns: int = 0) -> None:
        """Advance a `progress` task (``vibe_quant.progress``) in 200 steps of bar time as the run
        goes (None: stop reporting). One comparison per close time when off."""
        if progress is None:
            if self._progress is not None:
                self._progress.finish(self._task)
            self._progress, self._report_at = None, 1 << 62
            return
        self._progress = progress
        self._task = progress.task(label, 200)
        self._report_first, self._report_step = first_ns, max((last_ns - first_ns) // 200, 1)
        self._report_at, self._reported = first_ns, 0

    def _report(self, ts: int) -> None:
        done = min((ts - self._report_first) // self._report_step, 200)
        self._progress.advance(self._task, done - self._reported)
        self._reported = done
        self._report_at = self._report_first + (done + 1) * self._report_step

    # -- bar processing (before matching) -----------------------------------------------------

    def pre_process(self, data) -> None:
        if data.__class__ is not Bar:
            return
        k = self._k = self._k + 1 if self.fed is None else self.fed.popleft()
        st = self.sequence[k]
        ts = data.ts_init
        if ts > self._last_ts:
            # Steps 1-3 of the module docstring, once per close time, before any of its bars is
            # matched (inline: with one symbol this runs on every bar, and a call costs as much).
            if not self._subscribed:
                self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
                self.msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)
                self._subscribed = True
            if self._dirty:
                self._record_change(self._last_ts)
            self._last_ts = ts
            if ts >= self._report_at:
                self._report(ts)
            sequence, own = self.sequence, self.own
            while k < len(sequence):  # the bars stamped `ts` are consecutive in the sequence
                nst = sequence[k]
                nxt = own[k]
                if nst.ts[nxt] != ts:
                    break
                nst.i = nxt
                if nst.next_funding < len(nst.funding) and nst.funding[nst.next_funding][0] <= ts - nst.bar_ns:
                    self._settle_funding(nst, ts - nst.bar_ns)
                k += 1
            arrivals = self._arrivals
            if arrivals and arrivals[0] <= ts:  # most bars have no command on its way: skip the call
                while arrivals and arrivals[0] <= ts:
                    heapq.heappop(arrivals)
                self.exchange.process(ts)
        i = st.i
        if st.ts[i] != ts:  # the engine must replay exactly the bars we indexed
            raise RuntimeError(f"bar sequence out of step at {data.bar_type} {ts} (expected {st.ts[i]})")
        self.exchange.fill_model.at(st.key, ts)
        qty = st.signed_qty
        if qty:
            # fast path inline: most bars are nowhere near the liquidation price
            lp = st.liq_price
            if (qty > 0 and lp > 0 and st.lows[i] <= lp) or (qty < 0 and st.highs[i] >= lp):
                self._check_liquidation(st, ts)
            if st.signed_qty and self._resting[st.symbol]:
                self._stop_before_target(st, ts)

    def process(self, ts_now: int) -> None:
        return None

    def log_diagnostics(self, logger) -> None:
        """Called by the engine after a run logged at INFO (the default): one summary line."""
        logger.info(
            f"PerpVenueModule: {len(self.recorder.funding)} funding settlements, {self._liquidations} liquidations"
        )

    def _record_change(self, ts: int) -> None:
        if self._balance is None:
            self._balance = self.cache.account_for_venue(self.venue).balance_total(USDT).as_double()
        self.changes.append((
            ts, self._balance, tuple(st.signed_qty for st in self.state_list),
            tuple(st.avg_px for st in self.state_list), sum(st.wallet for st in self.state_list if st.signed_qty),
        ))  # fmt: skip
        self._dirty = False

    def finish(self) -> None:
        """Record the state after the last bar (call after the engine ran)."""
        if self._dirty or not self.changes:
            self._record_change(self._last_ts)
        if self.fed is not None:  # bars left out after the last replayed one were all flat: curve to the end
            for st in self.state_list:
                st.i = len(st.ts) - 1

    def commands_pending(self) -> bool:
        """True while an order command (submit, cancel, modify) is on its way to the exchange."""
        return bool(self._arrivals)

    def equity_curve(
        self, exposure: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Return (bar close times, equity, gross exposure, margin) with equity = balance + unrealised PnL at each
        close, gross exposure = sum of |position| x close and margin = the isolated margin of the open positions
        (the last two only when `exposure`, else None: the result bundle's, not a sweep point's)."""
        series = [st.arrays() for st in self.state_list]
        seen = [(ts[: st.i + 1], closes[: st.i + 1]) for (ts, closes), st in zip(series, self.state_list, strict=True)]
        times = seen[0][0] if len(seen) == 1 else np.unique(np.concatenate([ts for ts, _ in seen]))
        if times.size == 0:
            return times, np.empty(0), (np.empty(0) if exposure else None), (np.empty(0) if exposure else None)
        change_ts = np.array([c[0] for c in self.changes], dtype=np.int64)
        balances = np.array([c[1] for c in self.changes])
        qtys = np.array([c[2] for c in self.changes])
        avgs = np.array([c[3] for c in self.changes])
        out = np.empty(times.size)
        gross = np.empty(times.size) if exposure else None
        margin = np.array([c[4] for c in self.changes]) if exposure else None
        margin_out = np.empty(times.size) if exposure else None
        # In chunks of bars: the same element-wise arithmetic, without a dozen whole-run temporaries
        # (~55 MB of RSS on 900k bars that the allocator then keeps).
        for a in range(0, times.size, _EQUITY_CHUNK):
            t = times[a : a + _EQUITY_CHUNK]
            idx = np.maximum(np.searchsorted(change_ts, t, side="right") - 1, 0)
            equity, qty, avg = balances[idx], qtys[idx], avgs[idx]
            notional = np.zeros(t.size) if exposure else None
            for j, (st_ts, st_closes) in enumerate(seen):
                pos = np.searchsorted(st_ts, t, side="right") - 1  # last close at or before t
                closes = st_closes[np.maximum(pos, 0)]
                held = qty[:, j] != 0
                equity = equity + np.where(held, qty[:, j] * (closes - avg[:, j]), 0.0)
                if exposure:
                    notional += np.abs(qty[:, j]) * closes
            out[a : a + t.size] = equity
            if exposure:
                gross[a : a + t.size] = notional
                margin_out[a : a + t.size] = margin[idx]
        return times, out, gross, margin_out

    def equity(self) -> float:
        """Current equity at the last closes (for strategies' sizing and margin checks)."""
        if self._balance is None:
            self._balance = self.cache.account_for_venue(self.venue).balance_total(USDT).as_double()
        return self._balance + sum(st.signed_qty * (st.close - st.avg_px) for st in self.state_list if st.signed_qty)

    def resting(self, instrument_id: str) -> dict:
        """Resting stop/limit orders of an instrument: client order id -> (kind, side, price)."""
        return self._resting[self.by_instrument[instrument_id].symbol]

    def used_margin(self) -> float:
        return sum(st.wallet for st in self.state_list if st.signed_qty)

    # -- funding ------------------------------------------------------------------------------

    def _settle_funding(self, st: InstrumentState, upto_ns: int) -> None:
        while st.next_funding < len(st.funding) and st.funding[st.next_funding][0] <= upto_ns:
            snapshot_ns, rate, _hours = st.funding[st.next_funding]
            st.next_funding += 1
            if not st.signed_qty:
                continue
            mark = self._funding_mark(st)
            amount = st.signed_qty * mark * rate
            self.exchange.adjust_account(Money(-amount, USDT))
            self._balance, self._dirty = None, True
            st.wallet -= amount
            st.cash -= amount
            self._update_liq_price(st)
            self.recorder.funding.append(
                FundingRecord(snapshot_ns, st.symbol, st.trade_seq, st.signed_qty, mark, rate, amount)
            )
            self.recorder.event(snapshot_ns, "FUNDING", instrument=st.symbol, position_id=st.position_id,
                                signed_qty=st.signed_qty, mark=mark, rate=rate, amount=-amount)  # fmt: skip

    def _funding_mark(self, st: InstrumentState) -> float:
        # The last trade before the snapshot (the previous close); mark-price klines come with
        # the derivatives datasets. Never the current bar's close (look-ahead).
        return st.closes[st.i - 1] if st.i > 0 else st.opens[st.i]

    # -- liquidation --------------------------------------------------------------------------

    def _update_liq_price(self, st: InstrumentState) -> None:
        if not st.signed_qty:
            st.liq_price = 0.0
            return
        side = 1 if st.signed_qty > 0 else -1
        st.liq_price = liquidation_price(side, abs(st.signed_qty), st.avg_px, st.wallet, st.brackets)

    def _check_liquidation(self, st: InstrumentState, ts: int) -> None:
        lp = st.liq_price
        low, high = st.lows[st.i], st.highs[st.i]
        if st.signed_qty > 0:
            if lp <= 0 or low > lp:
                return
            # A resting sell stop above the liquidation price fires first on the way down,
            # unless the bar opened below the liquidation price.
            if st.open > lp and any(
                kind == "stop" and side < 0 and price >= lp for kind, side, price in self._resting[st.symbol].values()
            ):
                return
        else:
            if high < lp:
                return
            if st.open < lp and any(
                kind == "stop" and side > 0 and price <= lp for kind, side, price in self._resting[st.symbol].values()
            ):
                return
        self._liquidate(st, ts)

    def _liquidate(self, st: InstrumentState, ts: int, market: float | None = None) -> None:
        """Close `st`'s position at its liquidation price (at `market`, default the bar's open,
        when the position is already past it) and take the rest of its margin as the clearance fee."""
        engine = self.exchange.get_matching_engine(st.instrument_id)
        for order in engine.get_open_orders():  # Binance cancels the symbol's open orders first
            engine.cancel_order(order)
        position = self.cache.position(PositionId(st.position_id))
        side = 1 if st.signed_qty > 0 else -1
        qty, entry, wallet = abs(st.signed_qty), st.avg_px, st.wallet
        lp = st.liq_price
        if (lp >= entry) if side > 0 else (lp <= entry):
            lp = st.open if market is None else market  # already below maintenance (e.g. funding drained it)
        price = round_adverse(lp, st.tick, -side)
        self._liquidations += 1
        coid = ClientOrderId(f"LIQ-{st.symbol}-{self._liquidations}")
        order = MarketOrder(
            trader_id=position.trader_id, strategy_id=position.strategy_id, instrument_id=st.instrument_id,
            client_order_id=coid, order_side=OrderSide.SELL if side > 0 else OrderSide.BUY,
            quantity=position.quantity, init_id=UUID4(), ts_init=ts, reduce_only=True, tags=["LIQUIDATION"],
        )  # fmt: skip
        self.recorder.forced[coid.value] = price
        self.recorder.reasons[coid.value] = "liquidation"
        # Give the venue-made order an account, as a submitted order has: the portfolio only
        # books a fill's PnL and fee into the balance for orders carrying one.
        account_id = self.exchange.exec_client.account_id
        order.apply(OrderSubmitted(position.trader_id, position.strategy_id, st.instrument_id, coid, account_id,
                                   UUID4(), ts, ts))  # fmt: skip
        self.cache.add_order(order, position_id=position.id)
        engine.fill_market_order(order)
        fee = next((f.fee for f in reversed(self.recorder.fills) if f.order_id == coid.value), 0.0)
        # The trade loses exactly its isolated margin: the rest is the clearance fee, or (past
        # the bankruptcy price) a negative one paid back by the insurance fund.
        loss_so_far = -side * qty * (price - entry) + fee
        clearance = wallet - loss_so_far
        if clearance:
            self.exchange.adjust_account(Money(-clearance, USDT))
            self._balance, self._dirty = None, True
            st.cash -= clearance
            if not st.signed_qty and st.closed:  # the close was booked before the clearance fee
                net = st.cash - st.flat_cash + st.closed[-1][0]
                st.closed[-1] = (net, net / st.entry_notional if st.entry_notional else 0.0)
                st.flat_cash = st.cash
        self.recorder.liquidations.append(
            LiquidationRecord(ts, st.symbol, position.id.value, side, qty, entry, price, wallet, clearance)
        )
        self.recorder.event(ts, "LIQUIDATION", instrument=st.symbol, position_id=position.id.value, side=side,
                            qty=qty, entry=entry, liquidation_price=price, margin_lost=wallet,
                            clearance_fee=clearance)  # fmt: skip

    # -- stop before take-profit ----------------------------------------------------------------

    def _stop_before_target(self, st: InstrumentState, ts: int) -> None:
        long = st.signed_qty > 0
        low, high = st.lows[st.i], st.highs[st.i]
        exit_side = -1 if long else 1
        stop_hit = target = None
        for coid, (kind, side, price) in self._resting[st.symbol].items():
            if side != exit_side:
                continue
            if kind == "stop" and (low <= price if long else high >= price):
                stop_hit = coid
            elif kind == "limit" and (high >= price if long else low <= price):
                target = coid
        if stop_hit is None or target is None:
            return
        order = self.cache.order(ClientOrderId(target))
        # not its OUO sibling: that is the stop which must fill
        self.exchange.get_matching_engine(st.instrument_id).cancel_order(order, cancel_contingencies=False)
        self.recorder.event(ts, "RISK_CHECK", check="stop_and_target_in_one_bar", instrument=st.symbol,
                            action="take-profit cancelled, stop fills first (pessimistic)", target=target,
                            stop=stop_hit)  # fmt: skip

    # -- message-bus handlers -------------------------------------------------------------------

    def _on_order_event(self, event) -> None:
        cls = event.__class__  # most order events (initialised, ...) are not ours to track
        if cls in _COMMAND_EVENTS:  # a command left the strategy: note when it reaches the exchange
            latency = self.exchange.latency_model
            delay = (latency.insert_latency_nanos if cls is OrderSubmitted else
                     latency.cancel_latency_nanos if cls is OrderPendingCancel else latency.update_latency_nanos)  # fmt: skip
            heapq.heappush(self._arrivals, event.ts_event + delay)
        elif cls is OrderFilled:
            st = self.by_instrument.get(event.instrument_id.value)
            if st is not None:
                coid = event.client_order_id.value
                self._on_fill(event, coid, st)
                self._resting[st.symbol].pop(coid, None)
        elif cls is OrderAccepted:
            st = self.by_instrument.get(event.instrument_id.value)
            if st is None:
                return
            order = self.cache.order(event.client_order_id)
            side = 1 if order.side == OrderSide.BUY else -1
            if order.order_type == OrderType.STOP_MARKET:
                self._resting[st.symbol][event.client_order_id.value] = ("stop", side, order.trigger_price.as_double())
            elif order.order_type == OrderType.LIMIT:
                self._resting[st.symbol][event.client_order_id.value] = ("limit", side, order.price.as_double())
        elif cls is OrderUpdated:  # a stop moved (trailing) or a limit repriced
            st = self.by_instrument.get(event.instrument_id.value)
            resting = self._resting[st.symbol] if st is not None else {}
            coid = event.client_order_id.value
            if coid in resting:
                kind, side, price = resting[coid]
                moved = event.trigger_price if kind == "stop" else event.price
                resting[coid] = (kind, side, moved.as_double() if moved is not None else price)
        elif cls in _CLOSING_EVENTS:
            st = self.by_instrument.get(event.instrument_id.value)
            if st is None:
                return
            coid = event.client_order_id.value
            self._resting[st.symbol].pop(coid, None)
            if cls is OrderRejected or cls is OrderDenied:
                self.recorder.event(event.ts_event, "ORDER_REJECTED", instrument=st.symbol, order_id=coid,
                                    reason=event.reason)  # fmt: skip

    def _on_fill(self, event: OrderFilled, coid: str, st: InstrumentState) -> None:
        side = 1 if event.order_side == OrderSide.BUY else -1
        price = event.last_px.as_double()
        reference, estimated, economic = self.recorder.pricing.pop(coid, (price, 0.0, event.ts_event))
        record = FillRecord(
            ts_ns=event.ts_event, economic_ns=economic, instrument=st.symbol, order_id=coid, side=side,
            qty=event.last_qty.as_double(), price=price, fee=event.commission.as_double(),
            liquidity=liquidity_side_to_str(event.liquidity_side), order_type=order_type_to_str(event.order_type),
            reason=self.recorder.reasons.get(coid, "signal"), reference_price=reference,
            slippage_estimated=estimated,
            position_id=event.position_id.value if event.position_id is not None else "",
        )  # fmt: skip
        self.recorder.fills.append(record)  # FILL events are written from these (recorder.all_events)
        self._balance, self._dirty = None, True
        st.book_fill(side, record.qty, price, record.fee)

    def _on_position_event(self, event) -> None:
        st = self.by_instrument.get(event.instrument_id.value)
        if st is None:
            return
        self._dirty = True
        change = st.book_position(event)
        if change == "close":
            st.liq_price = 0.0
            self.recorder.event(event.ts_event, "POSITION_CLOSE", instrument=st.symbol,
                                position_id=event.position_id.value, realized_pnl=event.realized_pnl.as_double())  # fmt: skip
            return
        if change == "open":
            self.recorder.event(event.ts_event, "POSITION_OPEN", instrument=st.symbol,
                                position_id=event.position_id.value, signed_qty=event.signed_qty,
                                avg_px=event.avg_px_open, margin=st.wallet)  # fmt: skip
        self._update_liq_price(st)
