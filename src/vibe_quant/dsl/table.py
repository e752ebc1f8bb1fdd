"""A strategy's decisions over a whole bar series, computed before the run (screening's fast path).

A backtest knows every bar up front, so what the DSL strategy would compute bar by bar can be
computed once: each indicator's outputs after every bar, and from them, per bar, the entry
signal (+1, -1, 0) and whether each side's exit conditions hold. Two wins follow:

* **indicators once per worker**: :class:`IndicatorCache` replays the bars through the *same*
  indicator objects the live strategy uses (NautilusTrader's or ours; higher timeframes built
  by the same :class:`~vibe_quant.dsl.higher_bars.HigherBars`) and keeps the recorded outputs, so
  a sweep computes ``RSI(14)`` once for all the points that use it, and each value is the one
  the streaming strategy would read (same objects, same bars, same order);
* **only the bars that matter**: with the signals known, the engine can skip every bar on which
  the strategy is flat with nothing on its way and no entry can fire
  (:meth:`SignalTable.first_action`; ``backtest/feed.py``): nothing on such a bar changes the
  account, so the run is the same with or without it.

The conditions are evaluated with numpy over the recorded series, with the streaming
compiler's exact rules (``strategy.py``): nothing before every indicator is initialised, ``x[n]``
and crosses false until the strategy has recorded enough values, both sides at once = no signal.
``tests/dsl/test_table.py`` checks the table against the streaming strategy bar by bar and
whole backtests against the full replay.
"""

from __future__ import annotations

import functools
import operator
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from vibe_quant.dsl.conditions import PRICE_FIELDS, Condition

if TYPE_CHECKING:
    from vibe_quant.dsl.analysis import Analysis, ResolvedIndicator

_COMPARE = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal}


class Recorded:
    """One indicator's raw outputs after every primary bar, and where it is initialised."""

    __slots__ = ("initialized", "outputs")

    def __init__(self, outputs: dict[str, np.ndarray], initialized: np.ndarray):
        self.outputs = outputs
        self.initialized = initialized


class IndicatorCache:
    """Recorded indicator outputs over one instrument's primary bars, kept across runs.

    Parameters
    ----------
    bars : list[Bar]
        The primary bars of the run (what the engine would replay).
    price_precision, size_precision : int
        The instrument's (for the higher-timeframe bars).
    max_entries : int
        Recorded indicators kept (least recently used dropped): one is 8 bytes per bar and output.
    """

    def __init__(self, bars: list, price_precision: int, size_precision: int, max_entries: int = 64):
        self.bars = bars
        self.pp, self.sp = price_precision, size_precision
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Recorded] = OrderedDict()
        self._higher: dict[
            int, tuple[list, np.ndarray]
        ] = {}  # minutes -> (bars, index of the primary bar closing each)
        self.hits = self.misses = 0

    def get(self, ri: ResolvedIndicator, primary_minutes: int) -> Recorded:
        key = (ri.definition.name, tuple(sorted(ri.params.items())), ri.timeframe.minutes)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        if ri.timeframe.minutes == primary_minutes:
            found = _record(ri, self.bars)
        else:
            higher, closing = self.higher_bars(ri.timeframe, primary_minutes)
            found = _expand(_record(ri, higher), closing, len(self.bars))
        self._entries[key] = found
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found

    def higher_bars(self, timeframe, primary_minutes: int) -> tuple[list, np.ndarray]:
        """The higher-timeframe bars the streaming strategy builds, and the primary bar closing each."""
        if timeframe.minutes not in self._higher:
            from nautilus_trader.model.data import BarType

            from vibe_quant.dsl.higher_bars import HigherBars

            iid = self.bars[0].bar_type.instrument_id.value
            bt = BarType.from_str(timeframe.bar_type(iid).replace("-EXTERNAL", "-INTERNAL"))
            hb = HigherBars(bt, timeframe.step_ms * 1_000_000, timeframe.minutes // primary_minutes, self.pp, self.sp)
            sink = _Sink()
            hb.indicators.append(sink)
            closing = []
            for k, bar in enumerate(self.bars):
                before = len(sink.bars)
                hb.add(bar)
                if len(sink.bars) != before:
                    closing.append(k)
            self._higher[timeframe.minutes] = (sink.bars, np.asarray(closing, dtype=np.int64))
        return self._higher[timeframe.minutes]


class _Sink:
    __slots__ = ("bars",)

    def __init__(self):
        self.bars: list = []

    def handle_bar(self, bar) -> None:
        self.bars.append(bar)


def _record(ri: ResolvedIndicator, bars: list) -> Recorded:
    """Feed `bars` to a fresh runtime of `ri` and record (initialized, outputs...) after each."""
    runtime = ri.definition.build(ri.params)
    # look-ahead outputs (Ichimoku's chikou) are refused in conditions and absent from runtimes
    outputs = tuple(o for o in ri.definition.outputs if o not in ri.definition.lookahead)
    get = operator.attrgetter("initialized", *outputs)
    handle = runtime.handle_bar
    rows = []
    append = rows.append
    for bar in bars:
        handle(bar)
        append(get(runtime))
    table = np.array(rows, dtype=np.float64).reshape(len(bars), len(outputs) + 1)
    return Recorded({name: table[:, j + 1].copy() for j, name in enumerate(outputs)}, table[:, 0] != 0)


def _expand(rec: Recorded, closing: np.ndarray, n: int) -> Recorded:
    """Higher-timeframe values per primary bar: those after the last higher bar closed at or before it."""
    last = np.searchsorted(closing, np.arange(n), side="right") - 1
    seen = last >= 0
    take = np.maximum(last, 0)
    outputs = {k: np.where(seen, v[take] if v.size else 0.0, 0.0) for k, v in rec.outputs.items()}
    init = np.where(seen, rec.initialized[take] if rec.initialized.size else False, False)
    return Recorded(outputs, init)


def _next_true(mask: np.ndarray) -> np.ndarray:
    """out[k] = first j >= k with mask[j] (len(mask) if none); two sentinels past the end."""
    n = mask.size
    idx = np.where(mask, np.arange(n), n)
    out = np.minimum.accumulate(idx[::-1])[::-1] if n else idx
    return np.concatenate([out, [n, n]]).astype(np.int64)


class SignalTable:
    """Per primary bar of one run: entry signal, exit conditions and the values exits read.

    Parameters
    ----------
    analysis : Analysis
        The strategy with its parameters applied.
    cache : IndicatorCache
        The instrument's recorded indicators.
    state : InstrumentState
        The instrument's bars as floats (``backtest/execution.py``) and funding schedule.
    entry_allowed : EntryFilters, callable or None
        The strategy's own time filters: an :class:`~vibe_quant.dsl.filters.EntryFilters` (asked
        once for all the bars with a signal), a ``ts -> bool`` callable (asked bar by bar), or None
        (no time filter).
    label : str
        The instrument, for the filters' fallback warning.
    """

    def __init__(self, analysis: Analysis, cache: IndicatorCache, state, entry_allowed, label: str = ""):
        self.analysis = a = analysis
        self.n = n = len(state.ts)
        self._state = state
        self._recorded = {name: cache.get(ri, a.primary.minutes) for name, ri in a.indicators.items()}
        init = np.ones(n, dtype=bool)
        for rec in self._recorded.values():
            init &= rec.initialized
        first = np.flatnonzero(init)
        self.ready_start = int(first[0]) if first.size else n  # the strategy latches "ready" here
        self._index = np.arange(n)
        self._funding: np.ndarray | None = None

        def side(conds: list[Condition]) -> np.ndarray:
            out = np.zeros(n, dtype=bool)
            if conds:
                out[self.ready_start :] = True
                for cond in conds:
                    out &= self._condition(cond)
            return out

        long, short = side(a.entry["long"]), side(a.entry["short"])
        sig = np.where(long & ~short, 1, np.where(short & ~long, -1, 0)).astype(np.int8)
        allowed = sig != 0
        signalled = np.flatnonzero(allowed)
        if entry_allowed is None or not signalled.size:
            pass
        elif hasattr(entry_allowed, "allowed_at"):
            if entry_allowed.active:
                ts = np.asarray(state.ts, dtype=np.int64)[signalled]
                allowed[signalled] = entry_allowed.allowed_at(ts, label)
        else:
            for k in signalled.tolist():
                allowed[k] = entry_allowed(state.ts[k])
        # arrays for array code (the perp kernel); lists (below) for the strategy's per-bar reads
        self.sig_array = sig
        self.exit_long_array = side(a.exit["long"])
        self.exit_short_array = side(a.exit["short"])
        self.allowed = allowed  # the time filters at the bars with a signal (False elsewhere)
        self.signal_bars = int(signalled.size)

    @functools.cached_property
    def sig(self) -> list[int]:
        """Entry signal per bar (+1, -1, 0) as a list: read per bar by the strategy, list items are Python ints."""
        return self.sig_array.tolist()

    @functools.cached_property
    def exit_long(self) -> list[bool]:
        return self.exit_long_array.tolist()

    @functools.cached_property
    def exit_short(self) -> list[bool]:
        return self.exit_short_array.tolist()

    @functools.cached_property
    def next(self) -> NextAction:
        """When a flat, idle strategy next acts (the NautilusTrader fast replay's feed)."""
        return NextAction(self.sig_array, self.allowed)

    @property
    def zero_before(self) -> np.ndarray:
        return self.next.zero_before

    # -- series ---------------------------------------------------------------------------------

    def raw(self, name: str, output: str = "") -> list[float]:
        """An indicator output as the runtime holds it (no DSL scale), per bar, as Python floats."""
        ri = self.analysis.indicators[name]
        return self._recorded[name].outputs[output or ri.definition.outputs[0]].tolist()

    def _series(self, name: str, output: str):
        """Current value per bar of a named series (array), or a constant (float)."""
        a, st = self.analysis, self._state
        if name in PRICE_FIELDS:
            return np.asarray(getattr(st, name + "s"), dtype=np.float64)  # opens, highs, ... (as_double)
        if name == "funding_rate":
            return self._funding_rates()
        if name in a.thresholds:
            return a.thresholds[name]
        ri = a.indicators[name]
        output = output or ri.definition.outputs[0]
        values = self._recorded[name].outputs[output]
        scale = ri.definition.scale.get(output)
        return values * scale if scale is not None else values

    def _funding_rates(self) -> np.ndarray:
        """The last settled rate at each bar close (0 before the first), as the strategy reads it."""
        if self._funding is None:
            st = self._state
            times = np.asarray([ts for ts, _, _ in st.funding], dtype=np.int64)
            rates = np.asarray([0.0] + [rate for _, rate, _ in st.funding], dtype=np.float64)
            self._funding = rates[np.searchsorted(times, np.asarray(st.ts, dtype=np.int64), side="right")]
        return self._funding

    def _past(self, operand, extra: int = 0) -> tuple[object, np.ndarray | None]:
        """(values, valid mask) of an operand read `operand.ago + extra` bars back."""
        if operand.is_number:
            return operand.number, None
        series = self._series(operand.name, operand.output)
        lag = operand.ago + extra
        if isinstance(series, float) or lag == 0:
            return series, None
        shifted = np.empty_like(series)
        shifted[lag:] = series[:-lag]
        shifted[:lag] = np.nan
        # the strategy keeps values from its first ready bar on: x[n] exists n bars after it
        return shifted, self._index - lag >= self.ready_start

    def _condition(self, cond: Condition) -> np.ndarray:
        n = self.n
        if cond.op in _COMPARE:
            (a, va), (b, vb) = (self._past(op) for op in cond.operands)
            out = np.broadcast_to(_COMPARE[cond.op](a, b), (n,)).copy()
            masks = [va, vb]
        elif cond.op == "between":
            (x, vx), (lo, vl), (hi, vh) = (self._past(op) for op in cond.operands)
            out = np.broadcast_to(np.less_equal(lo, x) & np.less_equal(x, hi), (n,)).copy()
            masks = [vx, vl, vh]
        else:  # crosses: now against one bar earlier
            (a1, va1), (b1, vb1) = (self._past(op) for op in cond.operands)
            (a0, va0), (b0, vb0) = (self._past(op, 1) for op in cond.operands)
            if cond.op == "crosses_above":
                hit = np.less_equal(a0, b0) & np.greater(a1, b1)
            else:
                hit = np.greater_equal(a0, b0) & np.less(a1, b1)
            out = np.broadcast_to(hit, (n,)).copy()
            masks = [va1, vb1, va0, vb0]
        for mask in masks:
            if mask is not None:
                out &= mask
        return out

    def first_action(self, start: int, signalled: int | None, last: int) -> int:
        return self.next.first(start, signalled, last)


class NextAction:
    """When a flat, idle strategy next enters, from its per-bar entry signals.

    The streaming rule (``DslStrategy.on_bar``): on a bar where the strategy is flat and idle it
    enters when a side's conditions hold (``sig`` +1/-1), that side is not the one it already
    acted on (``signalled``) and the time filters allow it (``allowed``); a bar without a signal
    makes it forget ``signalled`` (an entry signal is acted on once). Nothing else can happen on
    such a bar, which is what lets the feed skip it.

    Parameters
    ----------
    sig : np.ndarray
        int8 per bar: +1, -1 or 0 (0 also before the strategy is ready).
    allowed : np.ndarray
        bool per bar: the time filters allow an entry (only read where ``sig != 0``).
    """

    def __init__(self, sig: np.ndarray, allowed: np.ndarray):
        self.n = n = sig.size
        act = allowed & (sig != 0)
        zero = sig == 0
        index = np.arange(n)
        last_zero = np.maximum.accumulate(np.where(zero, index, -1)) if n else index
        # zero_before[k]: the last bar before k without a signal (-1: none). Arrays, not lists:
        # read only on replayed bars, and a list of large ints costs 36 bytes a bar.
        self.zero_before = np.concatenate([[-1], last_zero[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        self._act = _next_true(act)
        self._side = {1: _next_true(act & (sig == 1)), -1: _next_true(act & (sig == -1))}
        self._zero = _next_true(zero)

    def first(self, start: int, signalled: int | None, last: int) -> int:
        """The first bar at or after `start` on which the strategy enters (or tries to).

        `signalled` and `last` are its state: the side it last acted on and the last bar it
        processed; the bars between `last` and `start` are known not to act (skipped). Returns
        ``n`` when nothing happens until the end.
        """
        if start >= self.n:
            return self.n
        if signalled is not None and self.zero_before[start] > last:
            signalled = None  # a bar without a signal came since
        if signalled is None:
            return int(self._act[start])
        # the other side at once, or any signal once the current one has lapsed
        other = int(self._side[-signalled][start])
        zero = int(self._zero[start])
        return min(other, int(self._act[zero + 1]) if zero < self.n else self.n)
