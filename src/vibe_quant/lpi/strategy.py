"""The LPI strategies as one NautilusTrader ``Strategy`` (``docs/specs.md#lpi-strategies``).

Every trade tick, quote tick and slow custom record (open interest, ``bookDepth``, funding) goes to
a :class:`~vibe_quant.lpi.features.FeatureEngine`, the same per-tick engine in a backtest, on paper
and live; each snapshot it emits, each tick and each order event goes to the pure
:class:`~vibe_quant.lpi.decide.Decider`, whose actions this class turns into orders and events.
The touch the strategy posts at and marks fills against is the engine's: the quotes, or in
quotes-free mode the touch inferred from the trades.

:class:`LpiCascade` and :class:`LpiReversion` are the same class with the variant fixed.
"""

from __future__ import annotations

import math

from nautilus_trader.model.data import BarType, DataType
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from vibe_quant.errors import ConfigError
from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.lpi.decide import Cancel, Decider, Event, InstrumentRules, Market, MarkoutBook, Place
from vibe_quant.lpi.features import FeatureEngine
from vibe_quant.strategy.leg import Leg
from vibe_quant.strategy.ports import StrategyPorts, resolve_ports


class LpiStrategy(Strategy):
    """Variant A (cascade momentum) or B (post-exhaustion mean reversion), by ``config.variant``.

    Parameters
    ----------
    config : LpiStrategyConfig
        Instrument, signal and decision parameters.
    ports : StrategyPorts or None, default None
        Account, event sink (and risk gate, attached to the leg); None: resolved at start
        (``config.ports``, a node's own account by default).

    Attributes
    ----------
    markouts : list of dict
        Every markout recorded (``order_id``, ``side``, ``fill_price``, ``fill_ts``, ``horizon_ms``,
        ``mid``, ``markout_bps``, ``ts``).
    snapshots : int
        Snapshots the engine emitted.
    """

    variant: str | None = None  # fixed by a subclass

    def __init__(self, config: LpiStrategyConfig, ports: StrategyPorts | None = None) -> None:
        if self.variant is not None and config.variant != self.variant:
            raise ConfigError(f"{type(self).__name__}: config variant {config.variant!r}, expected {self.variant!r}")
        config.check()
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.ports = ports
        self.leg = Leg(self, self.instrument_id, self.bar_type, self.id.value)
        self.instrument = self.book = self.engine = self.decider = self.marks = None
        self.markouts: list[dict] = []
        self.snapshots = 0
        self._coid: dict[int, str] = {}
        self._seq: dict[str, int] = {}
        self._queue: list = []
        self._applying = False
        if ports is not None and ports.gate is not None:
            ports.gate.attach(self.leg)

    @classmethod
    def check(cls, config: LpiStrategyConfig) -> None:
        """Reject impossible parameters (:meth:`LpiStrategyConfig.check`)."""
        config.check()

    # -- lifecycle ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        cfg: LpiStrategyConfig = self.config
        if self.ports is None:
            self.ports = resolve_ports(self)
        self.leg.start(self.ports)
        self.instrument, self.book = self.leg.instrument, self.leg.book
        inst = self.instrument
        self.engine = FeatureEngine(cfg.lpi_params(), multiplier=float(inst.multiplier), inverse=bool(inst.is_inverse),
                                    depth_pct=cfg.depth_pct)  # fmt: skip
        step = inst.size_increment.as_double()
        min_qty = inst.min_quantity.as_double() if inst.min_quantity is not None else step
        self.decider = Decider(cfg, InstrumentRules(inst.price_increment.as_double(), step, max(min_qty, step)))
        self.marks = MarkoutBook(cfg.markout_ms)
        self.subscribe_trade_ticks(self.instrument_id)
        if not cfg.quotes_free:
            self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_bars(self.bar_type)  # closes for a node's account; decisions never read bars
        self._subscribe_slow_data()

    def _subscribe_slow_data(self) -> None:
        from nautilus_trader.model.data import FundingRateUpdate

        from vibe_quant.data.custom import BinanceBookDepth, BinanceOiMetrics

        # NautilusTrader 1.221 has no subscribe_funding_rates on a Strategy: every slow series is
        # generic data; a run without such data simply delivers none (LEV stays NaN).
        for cls in (BinanceOiMetrics, BinanceBookDepth, FundingRateUpdate):
            self.subscribe_data(DataType(cls, metadata={"instrument_id": self.instrument_id}))

    def on_stop(self) -> None:
        pass  # orders and positions left at the end belong to the run's report

    def release(self) -> None:
        """Drop what the run lent the strategy (see ``PerpStrategy.release``)."""
        self.leg.release()
        self.ports = self.book = None

    # -- market data --------------------------------------------------------------------------------

    def on_trade_tick(self, tick) -> None:
        self.engine.on_trade_tick(tick)
        self._after()

    def on_quote_tick(self, tick) -> None:
        self.engine.on_quote_tick(tick)
        self._after()

    def on_data(self, data) -> None:
        self.engine.on_custom_data(getattr(data, "data", data))  # catalog reads wrap it in CustomData
        self._after()

    def on_bar(self, bar) -> None:
        pass

    def _market(self, ts: int, sizing: bool = False) -> Market:
        bid, ask = self.engine.bid, self.engine.ask
        if not sizing:
            return Market(ts, bid, ask)
        mid = (bid + ask) * 0.5
        cap = math.inf
        if mid > 0:  # the venue's maximum position at the leverage, and what the free margin carries
            cap = min(self.leg.max_qty(mid), max(self.leg.free_margin(), 0.0) * self.book.leverage / mid)
        return Market(ts, bid, ask, self.ports.account.equity(), cap)

    def _after(self) -> None:
        ts = self.clock.timestamp_ns()
        mk = self._market(ts)
        actions: list = []
        mid = (mk.bid + mk.ask) * 0.5
        for m in self.marks.mid(ts, mid):
            self.markouts.append(m)
            self.ports.events.event(ts, "MARKOUT", instrument=self.instrument_id.value, strategy=self.id.value,
                                    **{k: v for k, v in m.items() if k != "ts"})  # fmt: skip
            actions += self.decider.on_markout(self._seq.get(m["order_id"], -1), m["horizon_ms"], m["markout_bps"], mk)
        self._apply(actions)
        while (snap := self.engine.maybe_emit_signal()) is not None:
            self.snapshots += 1
            self._apply(self.decider.on_snapshot(snap, self._market(ts, sizing=True)))
        self._apply(self.decider.on_tick(mk))

    # -- actions ------------------------------------------------------------------------------------

    def _apply(self, actions: list) -> None:
        # Order events may arrive while orders are being sent: queue, never recurse.
        self._queue.extend(actions)
        if self._applying:
            return
        self._applying = True
        try:
            while self._queue:
                self._do(self._queue.pop(0))
        finally:
            self._applying = False

    def _do(self, a) -> None:
        if isinstance(a, Event):
            fields = dict(a.fields)
            ts = fields.pop("ts")
            self.ports.events.event(ts, a.kind, instrument=self.instrument_id.value, strategy=self.id.value, **fields)
        elif isinstance(a, Cancel):
            order = self.cache.order(ClientOrderId(self._coid[a.seq]))
            if order is not None and order.is_open and not order.is_pending_cancel:
                self.cancel_order(order)
        elif isinstance(a, Place):
            inst = self.instrument
            side = OrderSide.BUY if a.side > 0 else OrderSide.SELL
            qty = Quantity(a.qty, inst.size_precision)
            if a.price is None:
                order = self.order_factory.market(self.instrument_id, side, qty, reduce_only=a.reduce_only,
                                                  tags=[a.reason])  # fmt: skip
            else:
                order = self.order_factory.limit(self.instrument_id, side, qty, Price(a.price, inst.price_precision),
                                                 time_in_force=TimeInForce.GTC, post_only=True,
                                                 reduce_only=a.reduce_only, tags=[a.reason])  # fmt: skip
            coid = order.client_order_id.value
            self._coid[a.seq], self._seq[coid] = coid, a.seq
            self.leg._log_order(order, a.ts, a.reason, track=False)
            self.submit_order(order)

    # -- order events -------------------------------------------------------------------------------

    def on_order_filled(self, event) -> None:
        coid = event.client_order_id.value
        seq = self._seq.get(coid)
        side = 1 if event.order_side == OrderSide.BUY else -1
        mk = self._market(self.clock.timestamp_ns())
        if seq is None:  # not ours to decide (a risk gate's flattening order): the position moved all the same
            if event.instrument_id == self.instrument_id:
                self._apply(self.decider.on_foreign_fill(side, event.last_qty.as_double(), mk))
            return
        px = round(event.last_px.as_double(), self.instrument.price_precision)
        self.marks.fill(coid, side, px, int(event.ts_event))
        self._apply(self.decider.on_fill(seq, event.last_qty.as_double(), px, mk))

    def _done(self, event, rejected: bool) -> None:
        seq = self._seq.get(event.client_order_id.value)
        if seq is not None:
            self._apply(self.decider.on_done(seq, self._market(self.clock.timestamp_ns()), rejected))

    def on_order_canceled(self, event) -> None:
        self._done(event, False)

    on_order_expired = on_order_canceled

    def on_order_rejected(self, event) -> None:
        self._done(event, True)

    on_order_denied = on_order_rejected


class LpiCascade(LpiStrategy):
    """Variant A: trade with a liquidation cascade before it exhausts."""

    variant = "cascade"


class LpiReversion(LpiStrategy):
    """Variant B: fade the pressure once it is exhausted, maker first."""

    variant = "reversion"
