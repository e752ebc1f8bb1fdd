"""The DSL compiler: one NautilusTrader strategy class driven by a compiled, frozen config.

Why not generated Python source? A strategy here is a list of indicator objects and a few
comparisons; compiling the document into closures once per run costs microseconds, needs no
``exec``, keeps the config a plain frozen (picklable) struct that the run id hashes, and runs
unchanged in the backtest, screening, paper and live. ``benchmarks/dsl.py`` measures it against
hand-written strategies with the same logic.

Per primary bar (its close is the decision time; orders fill at the next open):

1. indicators update: NautilusTrader indicators on the primary bars through
   ``register_indicator_for_bars``; higher timeframes from bars *we* build out of closed
   primary bars: a 4h bar exists once its last primary bar has closed and all of its primary
   bars were seen, exactly as the catalog builds it (so no value ever uses an unfinished bar,
   and NautilusTrader's bar matching never treats a 4h range as the price path);
2. nothing happens until every indicator is initialised;
3. series that conditions read in the past (``x[n]``, crosses) record their value;
4. while an order is on its way nothing more happens;
5. exits: in a long, when every ``exit_conditions.long`` holds, close (or reverse if a short
   entry holds); likewise for shorts; an ``atr_trailing`` stop ratchets;
6. entries: when every condition of one side holds, outside any time filter (sessions,
   blocked days, minutes around the symbol's funding times), enter with the bracket. An entry
   signal is acted on once: after an attempt the same side waits until its conditions have
   been false (a stopped-out trade is not re-entered at once). Time filters only block entries.
"""

from __future__ import annotations

import functools
import json
import operator
from collections import deque

import msgspec
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price

from vibe_quant.dsl.analysis import Analysis, analyse
from vibe_quant.dsl.conditions import PRICE_FIELDS, Condition
from vibe_quant.dsl.filters import EntryFilters
from vibe_quant.dsl.higher_bars import HigherBars
from vibe_quant.dsl.model import StrategyDoc
from vibe_quant.dsl.sweep import apply_params
from vibe_quant.dsl.table import SignalTable
from vibe_quant.errors import ConfigError
from vibe_quant.instruments.ticks import round_adverse
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig

_COMPARE = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}


class DslStrategyConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    """`document` is the canonical JSON of the strategy document with its parameters applied."""

    document: str


@functools.lru_cache(maxsize=256)
def compile_document(document: str) -> Analysis:
    """Decode and check a canonical document (cached: sweeps compile each point once).

    Raises
    ------
    ConfigError
        The document does not validate.
    """
    try:
        doc = msgspec.json.decode(document, type=StrategyDoc)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"strategy document: {exc}") from None
    analysis, issues = analyse(doc)
    if issues:
        raise ConfigError(f"strategy {doc.name}: " + "; ".join(i.message for i in issues))
    return analysis


def document_json(analysis: Analysis) -> str:
    """Canonical JSON (sorted keys) of a checked document."""
    return json.dumps(msgspec.to_builtins(analysis.doc), sort_keys=True, separators=(",", ":"))


def bind(dsl: dict, params: dict, timeframe: str) -> tuple[Analysis, str]:
    """Apply run parameters to a stored document; return the analysis and its canonical JSON.

    Raises
    ------
    ConfigError
        Invalid document or parameters, or a run timeframe other than the strategy's.
    """
    base = compile_document(json.dumps(dsl, sort_keys=True, separators=(",", ":")))
    analysis = apply_params(base, params)
    if analysis.primary.label != timeframe:
        raise ConfigError(
            f"strategy {analysis.name} runs on {analysis.primary.label} bars, the run asks for {timeframe}: "
            f"drop --timeframe or change 'timeframe:' in the strategy file"
        )
    return analysis, document_json(analysis)


class DslStrategy(PerpStrategy):
    """Runs a compiled strategy document (see the module docstring for the bar cycle)."""

    @classmethod
    def check(cls, config: DslStrategyConfig) -> None:
        compile_document(config.document)

    # -- compilation ----------------------------------------------------------------------------

    def setup(self) -> None:
        a = compile_document(self.config.document)
        self.analysis = a
        self._signalled: int | None = None
        self._setup_filters(a)
        self.table: SignalTable | None = None
        source = self.ports.indicators
        cache = source.for_instrument(self.instrument_id.value) if source is not None else None
        if cache is not None:  # a backtest that precomputed the bars' signals (dsl/table.py)
            self._state = self.book
            self.table = SignalTable(a, cache, self._state, self._filters, self.instrument_id.value)
            self._k = self._last_k = -1
            self._observe, self._entry_signal, self._exit_holds = (
                self._observe_table, self._entry_signal_table, self._exit_holds_table,
            )  # fmt: skip
        else:
            self._setup_streaming(a)
        self._setup_exits(a)

    def _setup_streaming(self, a: Analysis) -> None:
        from nautilus_trader.indicators.base import Indicator

        inst = self.instrument
        self._runtimes: dict[str, object] = {}
        self._python_updates = []  # primary-timeframe indicators we feed ourselves
        self._higher: list[HigherBars] = []
        by_tf: dict[int, HigherBars] = {}
        for tf in a.higher:
            bt = BarType.from_str(tf.bar_type(self.instrument_id.value).replace("-EXTERNAL", "-INTERNAL"))
            hb = HigherBars(bt, tf.step_ms * 1_000_000, tf.minutes // a.primary.minutes,
                            inst.price_precision, inst.size_precision)  # fmt: skip
            by_tf[tf.minutes] = hb
            self._higher.append(hb)
        for name, ri in a.indicators.items():
            runtime = ri.definition.build(ri.params)
            self._runtimes[name] = runtime
            if ri.timeframe != a.primary:
                by_tf[ri.timeframe.minutes].indicators.append(runtime)
            elif isinstance(runtime, Indicator):
                self.register_indicator_for_bars(self.bar_type, runtime)  # updated in Cython before on_bar
            else:
                self._python_updates.append(runtime.handle_bar)
        self._all_runtimes = list(self._runtimes.values())
        self._ready = False
        self._bar: Bar | None = None

        # series that conditions read in the past
        self._series = []  # (getter, deque) pushed once per ready bar
        self._hist: dict[tuple[str, str], deque] = {}
        for key, depth in a.history.items():
            if depth > 0:
                q: deque = deque(maxlen=depth + 1)
                self._hist[key] = q
                self._series.append((self._getter(*key), q))
        self._entry = {side: [self._compile(c) for c in a.entry[side]] for side in ("long", "short")}
        self._exit = {side: [self._compile(c) for c in a.exit[side]] for side in ("long", "short")}

    def _getter(self, name: str, output: str):
        """Return a no-argument function giving the current value of a named series."""
        if name in PRICE_FIELDS:
            return lambda: getattr(self._bar, name).as_double()
        if name == "funding_rate":
            return self._funding_rate
        if name in self.analysis.thresholds:
            value = self.analysis.thresholds[name]
            return lambda: value
        runtime = self._runtimes[name]
        ri = self.analysis.indicators[name]
        output = output or ri.definition.outputs[0]
        scale = ri.definition.scale.get(output)
        if scale is not None:
            return lambda: getattr(runtime, output) * scale
        return functools.partial(getattr, runtime, output)

    def _value_fn(self, operand):
        """No-argument function for an operand (number, series now, or series n bars ago; None if unknown)."""
        if operand.is_number:
            value = operand.number
            return lambda: value
        ri = self.analysis.indicators.get(operand.name)
        key = (operand.name, operand.output or (ri.definition.outputs[0] if ri else ""))
        if operand.ago == 0:
            return self._getter(*key)
        q, n = self._hist[key], operand.ago

        def past():
            return q[-1 - n] if len(q) > n else None

        return past

    def _compile(self, cond: Condition):
        """Return a no-argument predicate for one condition."""
        fns = [self._value_fn(op) for op in cond.operands]
        if cond.op in _COMPARE:
            compare, (left, right) = _COMPARE[cond.op], fns
            hist = any(op.ago for op in cond.operands)
            if not hist:
                return lambda: compare(left(), right())

            def compared():
                a, b = left(), right()
                return a is not None and b is not None and compare(a, b)

            return compared
        if cond.op == "between":
            x, lo, hi = fns

            def between():
                v, a, b = x(), lo(), hi()
                return v is not None and a is not None and b is not None and a <= v <= b

            return between
        # crosses: compare now with one bar earlier
        prev = [self._past(op, 1) for op in cond.operands]
        left, right = fns
        above = cond.op == "crosses_above"

        def crosses():
            a0, b0, a1, b1 = prev[0](), prev[1](), left(), right()
            if a0 is None or b0 is None or a1 is None or b1 is None:
                return False
            return (a0 <= b0 and a1 > b1) if above else (a0 >= b0 and a1 < b1)

        return crosses

    def _past(self, operand, extra: int):
        if operand.is_number:
            value = operand.number
            return lambda: value
        if operand.name in self.analysis.thresholds:
            return self._getter(operand.name, "")
        ri = self.analysis.indicators.get(operand.name)
        key = (operand.name, operand.output or (ri.definition.outputs[0] if ri else ""))
        q, n = self._hist[key], operand.ago + extra
        return lambda: q[-1 - n] if len(q) > n else None

    def _setup_exits(self, a: Analysis) -> None:
        doc = a.doc
        sl, tp = doc.stop_loss, doc.take_profit
        self._stop_fn = self._distance_fn(sl) if sl is not None else None
        self._target_fn = None
        if tp is not None:
            if tp.type == "risk_reward":
                ratio = tp.ratio
                self._target_fn = lambda price, stop: stop * ratio if stop is not None else None
            else:
                fn = self._distance_fn(tp)
                self._target_fn = lambda price, stop: fn(price)
        self._trailing = None
        if sl is not None and sl.type == "atr_trailing":
            atr, mult = self._raw_value(sl.indicator), sl.atr_multiplier
            self._trailing = lambda: mult * atr()
        self._sizing = doc.position_management.sizing

    def _distance_fn(self, rule):
        if rule.type == "fixed_pct":
            pct = rule.percent / 100.0
            return lambda price: price * pct
        atr, mult = self._raw_value(rule.indicator), rule.atr_multiplier
        return lambda price: mult * atr()

    def _raw_value(self, name: str, output: str = "value"):
        """No-argument function: an indicator output as its runtime holds it, at the current bar."""
        if self.table is not None:
            values = self.table.raw(name, output)
            return lambda: values[self._k]
        return functools.partial(getattr, self._runtimes[name], output)

    def _setup_filters(self, a: Analysis) -> None:
        self._filters = EntryFilters(a, lambda: [ts for ts, _, _ in self.book.funding], self.events.warn)
        self._funding_times: list[int] = []
        self._funding_rates: list[float] = []
        self._funding_i = 0
        self._funding_loaded = False

    def _load_funding(self) -> None:
        """Funding settlement times and rates of this symbol for the run (known schedule; rates used once settled)."""
        self._funding_loaded = True
        st = self.book
        self._funding_times = [ts for ts, _, _ in st.funding]
        self._funding_rates = [rate for _, rate, _ in st.funding]

    # -- filters and values ---------------------------------------------------------------------

    def _funding_rate(self) -> float:
        if not self._funding_loaded:
            self._load_funding()
        ts, times, i = self._bar.ts_event, self._funding_times, self._funding_i
        while i < len(times) and times[i] <= ts:
            i += 1
        self._funding_i = i
        return self._funding_rates[i - 1] if i else 0.0

    def entry_allowed(self, ts: int) -> bool:
        """Time filters at decision time `ts` (the bar's close, ns UTC; ``filters.py``)."""
        return self._filters.allowed(ts, self.instrument_id.value)

    # -- the bar cycle --------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self._bar = bar
        if not self._observe(bar):
            return
        if self.busy():
            return
        qty = self.position_qty()
        side = (qty > 0) - (qty < 0)
        sig = self._entry_signal()
        if sig is None:
            self._signalled = None  # the entry conditions went false: the next signal is a new one
        if side:
            if self._exit_holds(side):
                if sig == -side and sig != self._signalled and self.entry_allowed(bar.ts_event):
                    if self._enter(bar, sig):
                        self._signalled = sig
                else:
                    self.signal(bar, 0, rule="exit")
                    self.go(bar, 0, 0.0, reason="exit")
                return
            if self._trailing is not None:
                self._trail(bar, side)
        if sig is None or sig == self._signalled:
            return
        if side == sig:
            self._signalled = sig
            return
        if not self.entry_allowed(bar.ts_event):
            return  # blocked by a time filter: the signal may still hold on the next allowed bar
        if self._enter(bar, sig):
            self._signalled = sig

    # streaming: indicators and conditions evaluated bar by bar (live, paper, validation)

    def _observe(self, bar: Bar) -> bool:
        """Update the indicators with `bar`; False until every one is initialised."""
        for update in self._python_updates:
            update(bar)
        for hb in self._higher:
            hb.add(bar)
        if not self._ready:
            if not all(r.initialized for r in self._all_runtimes):
                return False
            self._ready = True
        for getter, q in self._series:
            q.append(getter())
        return True

    def _entry_signal(self) -> int | None:
        """+1 / -1 when every entry condition of one side holds, None otherwise (or both at once)."""
        entry = self._entry
        sig = None
        if entry["long"] and all(c() for c in entry["long"]):
            sig = 1
        if entry["short"] and all(c() for c in entry["short"]):
            sig = None if sig == 1 else -1  # both sides at once: conflicting, do nothing
        return sig

    def _exit_holds(self, side: int) -> bool:
        rules = self._exit["long" if side > 0 else "short"]
        return bool(rules) and all(c() for c in rules)

    # table: the same values precomputed for every bar (screening; dsl/table.py)

    def _observe_table(self, bar: Bar) -> bool:
        k = self._state.i  # the venue module points at this bar before the strategy sees it
        if self.table.zero_before[k] > self._last_k:
            self._signalled = None  # a skipped bar had no signal (see SignalTable.first_action)
        self._k = self._last_k = k
        return k >= self.table.ready_start

    def _entry_signal_table(self) -> int | None:
        return self.table.sig[self._k] or None

    def _exit_holds_table(self, side: int) -> bool:
        return (self.table.exit_long if side > 0 else self.table.exit_short)[self._k]

    def release(self) -> None:
        super().release()
        # the bound methods setup() stored make a cycle through NautilusTrader objects; the table is large
        for name in (
            "table",
            "_state",
            "_observe",
            "_entry_signal",
            "_exit_holds",
            "_trailing",
            "_stop_fn",
            "_target_fn",
            "_runtimes",
            "_all_runtimes",
            "_series",
            "_hist",
            "_entry",
            "_exit",
            "_higher",
        ):
            self.__dict__.pop(name, None)

    def next_action(self, start: int) -> int:
        """Feed protocol (backtest/feed.py): the first bar at or after `start` this strategy may act on
        while flat and idle; only valid with a table."""
        return self.table.first_action(start, self._signalled, self._last_k)

    def _enter(self, bar: Bar, direction: int) -> bool:
        price = bar.close.as_double()
        stop = self._stop_fn(price) if self._stop_fn is not None else None
        if stop is not None and not stop > 0:
            return False  # e.g. ATR of a flat market: no meaningful stop, wait for the next bar
        target = self._target_fn(price, stop) if self._target_fn is not None else None
        sizing, equity = self._sizing, self.equity()
        if sizing.method == "fixed_fractional":
            qty = equity * sizing.risk_per_trade / stop
        else:
            qty = equity * sizing.fraction / price
        caps = [qty]
        if sizing.max_margin_fraction is not None:
            caps.append(sizing.max_margin_fraction * equity * self.leverage / price)
        if sizing.max_leverage is not None:
            caps.append(sizing.max_leverage * equity / price)
        caps.append(self.max_qty(price))
        self.signal(bar, direction, rule="entry_long" if direction > 0 else "entry_short")
        self.go(bar, direction, min(caps), stop=stop, target=target)
        return True

    def _trail(self, bar: Bar, side: int) -> None:
        coid = self.stop_order_id
        if coid is None:
            return
        order = self.cache.order(ClientOrderId(coid))
        if order is None or not order.is_open or order.is_pending_update or order.is_pending_cancel:
            return
        distance = self._trailing()
        if not distance > 0:
            return
        tick = self.instrument.price_increment.as_double()
        candidate = round_adverse(bar.close.as_double() - side * distance, tick, -side)
        current = order.trigger_price.as_double()
        if (candidate > current + tick / 2) if side > 0 else (candidate < current - tick / 2):
            self.modify_order(order, trigger_price=Price(candidate, self.instrument.price_precision))
