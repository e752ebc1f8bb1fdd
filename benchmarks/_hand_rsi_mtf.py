"""``rsi_mean_reversion_mtf.yaml`` written by hand on ``PerpStrategy`` (the DSL benchmark's baseline).

Primary bars carry RSI(14), EMA(20) and ATR(14); 1h RSI(14) and 4h EMA(50) come from bars built
out of closed primary bars (the same builder the DSL uses). Entries as the YAML: RSI < 30 with
1h RSI > 40 and close above the 4h EMA (short mirrored), inside 08:00-20:00 UTC and not within 5
minutes of a funding time; exit when RSI crosses back over 50; 2 x ATR trailing stop, 3% target;
risk 1% of equity per trade, at most 3x equity notional.
"""

from __future__ import annotations

import bisect

from nautilus_trader.indicators import (
    AverageTrueRange,
    ExponentialMovingAverage,
    MovingAverageType,
    RelativeStrengthIndex,
)
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price

from vibe_quant.dsl.higher_bars import HigherBars
from vibe_quant.instruments.ticks import round_adverse
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig

MIN_NS = 60_000_000_000


class HandRsiMtfConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    pass


class HandRsiMtf(PerpStrategy):
    def setup(self) -> None:
        wilder = MovingAverageType.WILDER
        self.rsi, self.ema_fast, self.atr = (
            RelativeStrengthIndex(14, wilder),
            ExponentialMovingAverage(20),
            AverageTrueRange(14, wilder),
        )
        for indicator in (self.rsi, self.ema_fast, self.atr):
            self.register_indicator_for_bars(self.bar_type, indicator)
        self.rsi_1h, self.ema_4h = RelativeStrengthIndex(14, wilder), ExponentialMovingAverage(50)
        iid, inst = self.instrument_id.value, self.instrument
        self.h1 = HigherBars(BarType.from_str(f"{iid}-1-HOUR-LAST-INTERNAL"), 60 * MIN_NS, 60,
                             inst.price_precision, inst.size_precision)  # fmt: skip
        self.h4 = HigherBars(BarType.from_str(f"{iid}-4-HOUR-LAST-INTERNAL"), 240 * MIN_NS, 240,
                             inst.price_precision, inst.size_precision)  # fmt: skip
        self.h1.indicators.append(self.rsi_1h)
        self.h4.indicators.append(self.ema_4h)
        self.all = (self.rsi, self.ema_fast, self.atr, self.rsi_1h, self.ema_4h)
        self.ready = False
        self.signalled: int | None = None
        self.funding_times: list[int] | None = None

    def allowed(self, ts: int) -> bool:
        minute = ts // MIN_NS % 1440
        if not 480 <= minute <= 1200:
            return False
        if self.funding_times is None:
            self.funding_times = [t for t, _, _ in self.book.funding]
        i = bisect.bisect_left(self.funding_times, ts - 5 * MIN_NS)
        return not (i < len(self.funding_times) and self.funding_times[i] <= ts + 5 * MIN_NS)

    def on_bar(self, bar: Bar) -> None:
        self.h1.add(bar)
        self.h4.add(bar)
        if not self.ready:
            if not all(i.initialized for i in self.all):
                return
            self.ready = True
        if self.busy():
            return
        qty = self.position_qty()
        side = (qty > 0) - (qty < 0)
        rsi, rsi_1h, close = self.rsi.value * 100.0, self.rsi_1h.value * 100.0, bar.close.as_double()
        sig = None
        if rsi < 30.0 and rsi_1h > 40.0 and close > self.ema_4h.value:
            sig = 1
        if rsi > 70.0 and rsi_1h < 60.0 and close < self.ema_4h.value:
            sig = None if sig == 1 else -1
        if sig is None:
            self.signalled = None
        if side:
            if (rsi > 50.0) if side > 0 else (rsi < 50.0):
                if sig == -side and sig != self.signalled and self.allowed(bar.ts_event):
                    if self.enter(bar, sig):
                        self.signalled = sig
                else:
                    self.signal(bar, 0, rule="exit")
                    self.go(bar, 0, 0.0, reason="exit")
                return
            self.trail(bar, side)
        if sig is None or sig == self.signalled:
            return
        if side == sig:
            self.signalled = sig
            return
        if not self.allowed(bar.ts_event):
            return
        if self.enter(bar, sig):
            self.signalled = sig

    def enter(self, bar: Bar, direction: int) -> bool:
        price = bar.close.as_double()
        stop = 2.0 * self.atr.value
        if not stop > 0:
            return False
        equity = self.equity()
        qty = min(equity * 0.01 / stop, 3.0 * equity / price, self.max_qty(price))
        self.signal(bar, direction, rule="entry_long" if direction > 0 else "entry_short")
        self.go(bar, direction, qty, stop=stop, target=price * 0.03)
        return True

    def trail(self, bar: Bar, side: int) -> None:
        if self.stop_order_id is None:
            return
        order = self.cache.order(ClientOrderId(self.stop_order_id))
        if order is None or not order.is_open or order.is_pending_update or order.is_pending_cancel:
            return
        distance = 2.0 * self.atr.value
        if not distance > 0:
            return
        tick = self.instrument.price_increment.as_double()
        candidate = round_adverse(bar.close.as_double() - side * distance, tick, -side)
        current = order.trigger_price.as_double()
        if (candidate > current + tick / 2) if side > 0 else (candidate < current - tick / 2):
            self.modify_order(order, trigger_price=Price(candidate, self.instrument.price_precision))
