"""Higher-timeframe bars built from closed primary bars, exactly as the catalog aggregates them.

A 4h bar exists once its last primary bar has closed and all of its primary bars were seen: no
value ever uses an unfinished bar, and NautilusTrader's bar matching never treats a 4h range as
the price path. Shared by the streaming strategy (``strategy.py``) and the precomputed signal
table (``table.py``), so both read the same higher bars.
"""

from __future__ import annotations

from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.objects import Price, Quantity


class HigherBars:
    """Build one higher-timeframe bar from the primary bars of its UTC bucket, when it closes."""

    __slots__ = ("_c", "_h", "_l", "_o", "_v", "bar_type", "count", "end", "indicators", "per", "pp", "sp", "step")

    def __init__(self, bar_type: BarType, step_ns: int, per: int, price_precision: int, size_precision: int):
        self.bar_type, self.step, self.per = bar_type, step_ns, per
        self.pp, self.sp = price_precision, size_precision
        self.indicators: list = []
        self.end = -1
        self.count = 0
        self._o = self._h = self._l = self._c = self._v = 0

    def add(self, bar: Bar) -> None:
        ts = bar.ts_event
        end = -(-ts // self.step) * self.step
        if end != self.end:
            self.end, self.count = end, 0
            self._o, self._h, self._l, self._v = bar.open.raw, bar.high.raw, bar.low.raw, 0
        else:
            high, low = bar.high.raw, bar.low.raw
            if high > self._h:
                self._h = high
            if low < self._l:
                self._l = low
        self._c = bar.close.raw
        self._v += bar.volume.raw
        self.count += 1
        if ts == end and self.count == self.per:  # closed, and no primary bar missing
            pp = self.pp
            built = Bar(self.bar_type, Price.from_raw(self._o, pp), Price.from_raw(self._h, pp),
                        Price.from_raw(self._l, pp), Price.from_raw(self._c, pp),
                        Quantity.from_raw(self._v, self.sp), ts, ts)  # fmt: skip
            for indicator in self.indicators:
                indicator.handle_bar(built)
