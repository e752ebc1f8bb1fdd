"""The precomputed signal table (``dsl/table.py``) against the streaming strategy it mirrors.

* ``NextAction``: a scenario table and a hypothesis property against a brute-force replay of the
  streaming entry rule (side acted on once, forgotten on a bar without a signal, time filters
  only block), and ``zero_before``;
* ``IndicatorCache``: a 1h indicator recorded per 5m bar equals a fresh runtime fed the
  catalog's own 1h bars up to that 5m close (and holds between hour closes); hits and LRU
  eviction; every output of a multi-output Python indicator is recorded;
* ``SignalTable``: a "kitchen sink" strategy run bar by bar on real FILUSDT 5m bars (Aug 2023,
  with synthetic funding): every compiled condition's streaming value equals the table's, bar by
  bar, as do the readiness start, the entry signal and the exit rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from tests.conftest import MIRROR
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.engine import EngineSession
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.dsl.conditions import parse_condition
from vibe_quant.dsl.strategy import DslStrategy, bind
from vibe_quant.dsl.table import IndicatorCache, NextAction, SignalTable
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.registry import find_strategy

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
SYMBOL = "FILUSDT"
HOUR_NS = 3600 * 10**9


# -- NextAction -------------------------------------------------------------------------------------


def brute_first(sig, allowed, start: int, signalled, last: int) -> int:
    """The streaming rule, bar by bar: the first bar >= `start` on which a flat idle strategy enters."""
    s = signalled
    for k in range(last + 1, len(sig)):
        if k >= start and sig[k] != 0 and sig[k] != s and allowed[k]:
            return k
        if sig[k] == 0:
            s = None
    return len(sig)


def brute_zero_before(sig) -> list[int]:
    return [max((j for j in range(k) if sig[j] == 0), default=-1) for k in range(len(sig))]


def zero_before(na: NextAction) -> list[int]:
    return np.asarray(na.zero_before, dtype=np.int64).tolist()


def next_action(sig, allowed=None) -> NextAction:
    allowed = [True] * len(sig) if allowed is None else allowed
    return NextAction(np.asarray(sig, dtype=np.int8), np.asarray(allowed, dtype=bool))


T, F = True, False
WALK = [0, 1, 1, 0, 1, -1, -1, 0]


@pytest.mark.parametrize(
    ("sig", "allowed", "start", "signalled", "last", "expected"),
    [
        pytest.param(WALK, None, 0, None, -1, 1, id="fresh-enters-first-signal"),
        pytest.param(WALK, None, 2, 1, 1, 4, id="same-side-waits-for-a-zero-bar"),
        pytest.param(WALK, None, 3, 1, 2, 4, id="zero-at-start-then-same-side"),
        pytest.param(WALK, None, 5, 1, 4, 5, id="other-side-at-once"),
        pytest.param(WALK, None, 6, -1, 5, 8, id="held-side-until-the-end"),
        pytest.param([1, 1, -1, -1], None, 1, 1, 0, 2, id="reversal-without-a-zero"),
        pytest.param([-1, 1], None, 1, -1, 0, 1, id="reversal-from-short"),
        pytest.param([1, 1, 1, 0], [F, F, T, T], 0, None, -1, 2, id="blocked-signal-acts-once-allowed"),
        pytest.param([1, -1, -1, 1], [T, F, T, T], 1, 1, 0, 2, id="blocked-reversal-acts-once-allowed"),
        pytest.param([1, -1, 1, 1, 0, 1], [T, F, T, T, T, T], 1, 1, 0, 5, id="blocked-other-side-keeps-the-side"),
        pytest.param([1, 1, 0, 1], [T, T, T, F], 1, 1, 0, 4, id="lapsed-but-blocked-until-the-end"),
        pytest.param([1, 0, 1, 1], None, 2, 1, 0, 2, id="skipped-zero-bar-forgets-the-side"),
        pytest.param([1, 0, 1, 1], None, 2, 1, 1, 4, id="zero-bar-already-processed"),
        pytest.param([1, 1, 1, 1], None, 2, None, -1, 2, id="skipped-bars-never-act"),
        pytest.param([0, 0, 1], None, 0, None, -1, 2, id="signal-on-the-last-bar"),
        pytest.param([0, 0, 0], None, 0, None, -1, 3, id="no-signal"),
        pytest.param([0, 0, 0], None, 1, 1, -1, 3, id="no-signal-held-side"),
        pytest.param([], None, 0, None, -1, 0, id="empty"),
        pytest.param([], None, 0, -1, -1, 0, id="empty-held-side"),
        pytest.param([1, 0, 1], None, 3, None, 2, 3, id="start-at-the-end"),
        pytest.param([1, 0, 1], None, 7, 1, 0, 3, id="start-past-the-end"),
    ],
)
def test_next_action_scenarios(sig, allowed, start, signalled, last, expected) -> None:
    allowed = [True] * len(sig) if allowed is None else allowed
    assert brute_first(sig, allowed, start, signalled, last) == expected  # the reference agrees with the row
    assert next_action(sig, allowed).first(start, signalled, last) == expected


def test_zero_before_scenarios() -> None:
    assert zero_before(next_action(WALK)) == [-1, 0, 0, 0, 3, 3, 3, 3]
    assert zero_before(next_action([1, 1, 0])) == [-1, -1, -1]
    assert zero_before(next_action([0])) == [-1]
    assert zero_before(next_action([])) == []


@st.composite
def walks(draw):
    n = draw(st.integers(0, 40))
    sig = draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n))
    allowed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    signalled = draw(st.sampled_from([None, 1, -1]))
    last = draw(st.integers(-1, max(n - 1, -1)))
    return sig, allowed, signalled, last


@settings(max_examples=400, deadline=None)
@given(walks())
def test_next_action_matches_the_streaming_rule(walk) -> None:
    sig, allowed, signalled, last = walk
    na = next_action(sig, allowed)
    assert zero_before(na) == brute_zero_before(sig)
    j = brute_first(sig, allowed, last + 1, signalled, last)
    # any start up to the action: the bars skipped in between are known not to act
    for start in range(last + 1, min(j, len(sig)) + 1):
        assert na.first(start, signalled, last) == j, start


# -- real data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fil_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("table") / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), (SYMBOL,), ("klines",), START, END + dt.timedelta(days=1)),
               InstrumentSpecs())  # fmt: skip
    return home


def run_config(timeframe: str, **extra):
    return parse_config({"strategy": "ema_cross", "symbols": [SYMBOL], "timeframe": timeframe, "start": str(START),
                         "end": str(END), "mode": "screening", **extra})  # fmt: skip


def catalog_bars(home: Home, timeframe: str) -> list:
    return load_market_data(home.catalog, plan_run(run_config(timeframe)), InstrumentSpecs()).bars[SYMBOL]


@pytest.fixture(scope="module")
def mtf():
    """The shipped multi-timeframe RSI strategy's resolved indicators."""
    analysis, _ = bind(find_strategy("rsi_mean_reversion_mtf").document, {}, "5m")
    return analysis


def new_cache(bars: list, **kw) -> IndicatorCache:
    spec = InstrumentSpecs().get(SYMBOL)
    return IndicatorCache(bars, spec.price_precision, spec.size_precision, **kw)


def test_a_1h_indicator_per_5m_bar_is_the_last_closed_catalog_hour(fil_home: Home, mtf) -> None:
    five, hour = catalog_bars(fil_home, "5m"), catalog_bars(fil_home, "1h")
    ri = mtf.indicators["rsi_1h"]
    assert ri.timeframe.minutes == 60
    rec = new_cache(five).get(ri, 5)
    assert rec.outputs["value"].shape == rec.initialized.shape == (len(five),)

    # the reference: a fresh runtime fed the catalog's 1h bars, read after each hour close
    runtime = ri.definition.build(ri.params)
    after_hour = {}
    for bar in hour:
        runtime.handle_bar(bar)
        after_hour[bar.ts_event] = (runtime.value, runtime.initialized)
    closes = sorted(after_hour)

    matched = 0
    for k, bar in enumerate(five):
        ts = bar.ts_event
        i = np.searchsorted(closes, ts, side="right") - 1
        value, initialized = after_hour[closes[i]] if i >= 0 else (0.0, False)
        assert (rec.outputs["value"][k], bool(rec.initialized[k])) == (value, initialized), (k, ts)
        matched += ts in after_hour
    assert matched == len(hour) > 700  # every catalog hour closes on a 5m bar

    # the value moves only on the 5m bars that close an hour, and is not constant
    values = rec.outputs["value"]
    moves = np.flatnonzero(values[1:] != values[:-1]) + 1
    assert len(moves) > 600
    assert all(five[k].ts_event % HOUR_NS == 0 for k in moves)
    assert not rec.initialized[0]
    assert rec.initialized[-1]
    first_ready = int(np.argmax(rec.initialized))
    assert five[first_ready].ts_event == hour[ri.params["period"] - 1].ts_event  # RSI(14): with its 14th hour


def test_a_primary_indicator_is_the_runtime_fed_every_bar(fil_home: Home, mtf) -> None:
    five = catalog_bars(fil_home, "5m")[:3000]
    ri = mtf.indicators["atr"]
    rec = new_cache(five).get(ri, 5)
    runtime = ri.definition.build(ri.params)
    expected = []
    for bar in five:
        runtime.handle_bar(bar)
        expected.append((runtime.value, runtime.initialized))
    assert list(zip(rec.outputs["value"].tolist(), rec.initialized.tolist(), strict=True)) == expected


def test_cache_hits_equal_indicators_and_evicts_the_least_recently_used(fil_home: Home, mtf) -> None:
    five = catalog_bars(fil_home, "5m")[:2000]
    cache = new_cache(five, max_entries=2)
    rsi, ema, rsi_1h = mtf.indicators["rsi"], mtf.indicators["ema_fast"], mtf.indicators["rsi_1h"]
    rsi7 = dataclasses.replace(rsi, params={**rsi.params, "period": 7})

    def counts():
        return cache.hits, cache.misses

    first = cache.get(rsi, 5)
    assert counts() == (0, 1)
    assert cache.get(dataclasses.replace(rsi, name="another_name"), 5) is first  # equal indicator: a hit
    assert counts() == (1, 1)
    assert cache.get(rsi7, 5) is not first  # other parameters: a miss
    assert counts() == (1, 2)
    assert cache.get(rsi, 5) is first  # most recently used now; rsi7 is the oldest
    assert counts() == (2, 2)
    cache.get(ema, 5)  # third entry: evicts rsi7
    assert counts() == (2, 3)
    assert cache.get(rsi, 5) is first
    assert counts() == (3, 3)
    cache.get(rsi7, 5)
    assert counts() == (3, 4)  # was evicted, recorded again (and evicts ema)
    cache.get(ema, 5)
    assert counts() == (3, 5)

    # same type and parameters on another timeframe is another indicator
    hourly = cache.get(rsi_1h, 5)
    assert counts() == (3, 6)
    assert not np.array_equal(hourly.outputs["value"], first.outputs["value"])


def test_every_readable_output_of_ichimoku_is_recorded(fil_home: Home) -> None:
    doc = {"name": "ichimoku_probe", "timeframe": "5m", "indicators": {"ichi": {"type": "ICHIMOKU"}},
           "entry_conditions": {"long": ["ichi.tenkan > ichi.kijun", "close > ichi.senkou_a"]}}  # fmt: skip
    ri = bind(doc, {}, "5m")[0].indicators["ichi"]
    five = catalog_bars(fil_home, "5m")[:1000]
    rec = new_cache(five).get(ri, 5)
    runtime = ri.definition.build(ri.params)
    readable = ("tenkan", "kijun", "senkou_a", "senkou_b")
    for k, bar in enumerate(five):
        runtime.handle_bar(bar)
        assert bool(rec.initialized[k]) == runtime.initialized
        assert [rec.outputs[o][k] for o in readable] == [getattr(runtime, o) for o in readable]
    assert "chikou" not in rec.outputs  # look-ahead: refused in conditions, never recorded


# -- every condition: the table equals the streaming strategy, bar by bar -----------------------------

KITCHEN_SINK = {
    "name": "kitchen_sink",
    "timeframe": "5m",
    "additional_timeframes": ["1h"],
    "indicators": {
        "rsi": {"type": "RSI", "period": 14},
        "ema_fast": {"type": "EMA", "period": 12},
        "ema_slow": {"type": "EMA", "period": 48, "source": "hlc3"},
        "atr": {"type": "ATR", "period": 14},
        "macd": {"type": "MACD", "fast": 12, "slow": 26, "signal": 9},
        "bb": {"type": "BBANDS", "period": 20, "std": 2.0},
        "stoch": {"type": "STOCH", "k": 14, "d": 3, "smooth_k": 3},
        "willr": {"type": "WILLR", "period": 14},
        "mfi": {"type": "MFI", "period": 14},
        "vwap": {"type": "VWAP"},
        "rsi_1h": {"type": "RSI", "period": 14, "timeframe": "1h"},
        "ema_1h": {"type": "EMA", "period": 20, "timeframe": "1h"},  # the last to initialise: 20 hours
    },
    "entry_conditions": {
        "long": [
            "rsi < rsi_low",  # threshold from parameters_schema
            "rsi_1h > 45",
            "close > ema_fast",
            "ema_fast >= ema_slow",
            "close > bb",  # bare name: the first output (middle)
            "close < bb.upper",
            "close >= ema_1h",
            "macd.histogram <= 0",
            "macd.value crosses_above macd.signal",
            "stoch.k crosses_below stoch.d",
            "mfi crosses_above 50",
            "close crosses_above vwap",
            "rsi_low crosses_above rsi",  # threshold on the left of a cross
            "funding_rate crosses_above 0",
            "close crosses_above close[1]",  # equal closes are common: a cross from equality counts
            "high crosses_below high[2]",
            "bb.percent_b between 0.2 0.8",
            "bb.width > 1.5",
            "stoch.k between stoch.d 80",  # a series as a bound
            "close[1] between bb.lower bb.middle",
            "willr < -50",
            "close > close[3]",
            "volume > volume[1]",
            "rsi > rsi[2]",
            "macd.signal[3] < macd.signal",
            "rsi_1h[12] < rsi_1h",  # history of a higher-timeframe series, in primary bars
            "atr > atr[5]",
            "funding_rate > 0",
        ],
        "short": ["rsi > rsi_high", "mfi >= 40", "funding_rate < 0.001"],
    },
    "exit_conditions": {
        "long": ["rsi > rsi_high", "close crosses_below ema_fast"],
        "short": ["close crosses_above ema_1h", "stoch.d < 50"],
    },
    "stop_loss": {"type": "atr_trailing", "atr_multiplier": 2.0, "indicator": "atr"},
    "take_profit": {"type": "fixed_pct", "percent": 3.0},
    "position_management": {"sizing": {"method": "exposure", "fraction": 0.5}},
    "parameters_schema": {
        "rsi_low": {"type": "float", "min": 5, "max": 50, "default": 45},
        "rsi_high": {"type": "float", "min": 50, "max": 95, "default": 58},
    },
}
SECTIONS = [("entry", "long"), ("entry", "short"), ("exit", "long"), ("exit", "short")]


def with_funding(data, seed: int = 3):
    """Settle random rates of both signs every 8 hours (a few ms after the hour, as Binance stamps them)."""
    rng = random.Random(seed)
    eight_h = 8 * HOUR_NS
    bars = data.bars[SYMBOL]
    iid = InstrumentId.from_str(f"{SYMBOL}-PERP.BINANCE")
    first = bars[0].ts_event // eight_h * eight_h
    data.funding[SYMBOL] = [
        FundingRateUpdate(
            iid,
            Decimal(f"{rng.uniform(-0.002, 0.003):.6f}"),
            ts + 3_000_000,
            ts + 3_000_000,
            next_funding_ns=ts + eight_h,
        )
        for ts in range(first, bars[-1].ts_event, eight_h)
    ]
    return data


@pytest.fixture(scope="module")
def streamed(fil_home: Home):
    """Run the kitchen sink with streaming evaluation; record every compiled condition on every ready bar."""
    bind(KITCHEN_SINK, {}, "5m")  # validates
    config = run_config("5m", strategy="kitchen_sink", kind="dsl", document=KITCHEN_SINK)
    data = with_funding(load_market_data(fil_home.catalog, plan_run(config), InstrumentSpecs()))
    rows, strategies = [], []
    original = DslStrategy._observe

    def observe(self, bar):
        ready = original(self, bar)
        if ready:
            k = self.book.i
            assert self.book.ts[k] == bar.ts_event
            compiled = {"entry": self._entry, "exit": self._exit}
            values = {(sec, side): [c() for c in compiled[sec][side]] for sec, side in SECTIONS}
            rows.append((k, values, self._entry_signal() or 0, self._exit_holds(1), self._exit_holds(-1)))
            if not strategies:  # what the table needs (the strategy releases its run state at the end)
                assert self.table is None  # really the streaming path
                state = self.book
                strategies.append(
                    SimpleNamespace(analysis=self.analysis, state=state, entry_allowed=self.entry_allowed)
                )
        return ready

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DslStrategy, "_observe", observe)
        result = EngineSession(plan_run(config), data, replay="full").run(plan_run(config), reports=False)
    (strategy,) = strategies
    assert result.metrics["total_trades"] > 0
    return data, strategy, rows


@pytest.fixture(scope="module")
def cache(streamed) -> IndicatorCache:
    data, _, _ = streamed
    return new_cache(data.bars[SYMBOL])


@pytest.fixture(scope="module")
def table(streamed, cache) -> SignalTable:
    _, strategy, _ = streamed
    return SignalTable(strategy.analysis, cache, strategy.state, strategy.entry_allowed)


def test_the_table_is_ready_where_the_streaming_strategy_is(streamed, table: SignalTable) -> None:
    data, _, rows = streamed
    n = len(data.bars[SYMBOL])
    assert table.n == n > 8000
    ks = [k for k, *_ in rows]
    assert ks == list(range(table.ready_start, n))  # ready from its first ready bar on, every bar
    # the 1h EMA(20) initialises last, with the 20th hour: the 5m bar 20 * 12 - 1
    assert table.ready_start == 239
    assert len(rows) > 8000


@pytest.mark.parametrize(("section", "side"), SECTIONS)
def test_each_condition_equals_the_streaming_value_on_every_bar(streamed, table, section, side) -> None:
    _, strategy, rows = streamed
    ks = np.array([k for k, *_ in rows])
    conditions = getattr(strategy.analysis, section)[side]
    assert conditions
    for j, cond in enumerate(conditions):
        streaming = np.array([values[(section, side)][j] for _, values, *_ in rows], dtype=bool)
        computed = table._condition(cond)
        assert computed.shape == (table.n,)
        wrong = np.flatnonzero(computed[ks] != streaming)
        assert not wrong.size, f"{cond.text!r} differs on bars {ks[wrong][:10].tolist()}"
        # not vacuous: the condition changes over the month
        assert 0 < streaming.sum() < len(streaming), f"{cond.text!r} is constant"
        assert streaming.sum() >= 20, cond.text


def test_history_and_crosses_are_false_until_enough_ready_bars(streamed, table) -> None:
    _, strategy, _ = streamed
    by_text = {c.text: c for c in strategy.analysis.entry["long"]}
    r = table.ready_start
    unmasked_true = 0
    for text, name, lag, op in (("close > close[3]", "close", 3, np.greater), ("volume > volume[1]", "volume", 1, np.greater),
                                ("rsi > rsi[2]", "rsi", 2, np.greater), ("atr > atr[5]", "atr", 5, np.greater),
                                ("rsi_1h[12] < rsi_1h", "rsi_1h", 12, np.less)):  # fmt: skip
        computed = table._condition(by_text[text])
        assert not computed[: r + lag].any(), text  # x[lag] exists `lag` bars after the first ready bar
        series = table._series(name, "")
        now, before = series[r : r + lag], series[r - lag : r]
        unmasked_true += int(op(now, before).sum())  # what the values recorded before readiness would say
    assert unmasked_true > 0  # so the readiness mask is what keeps them false
    crosses = table._condition(by_text["macd.value crosses_above macd.signal"])
    assert not crosses[r]


def test_entry_signal_and_exits_equal_the_streaming_strategy(streamed, table) -> None:
    _, _, rows = streamed
    assert [table.sig[k] for k, *_ in rows] == [sig for _, _, sig, _, _ in rows]
    assert [table.exit_long[k] for k, *_ in rows] == [x for *_, x, _ in rows]
    assert [table.exit_short[k] for k, *_ in rows] == [x for *_, x in rows]
    r = table.ready_start
    assert not any(table.sig[:r])
    assert not any(table.exit_long[:r])
    assert not any(table.exit_short[:r])
    signals = [sig for _, _, sig, _, _ in rows]
    assert signals.count(-1) > 100  # (the 26 long conditions never hold together)
    assert table.signal_bars == sum(1 for s in signals if s)
    assert any(x for *_, x, _ in rows)
    assert any(x for *_, x in rows)


def test_sides_hold_from_the_ready_bar_and_both_at_once_is_no_signal(streamed, cache, table) -> None:
    _, strategy, _ = streamed
    state = strategy.state
    r, n = table.ready_start, table.n
    always = [parse_condition("close > 0")]
    asked = []

    def allowed(ts: int) -> bool:
        asked.append(ts)
        return ts >= state.ts[r + 100]

    analysis = dataclasses.replace(strategy.analysis, entry={"long": always, "short": []},
                                   exit={"long": always, "short": []})  # fmt: skip
    hits = cache.hits
    one_side = SignalTable(analysis, cache, state, allowed)
    assert cache.hits == hits + len(analysis.indicators)  # recorded once, for the first table
    assert one_side.ready_start == r
    assert one_side.sig == [0] * r + [1] * (n - r)
    assert one_side.exit_long == [False] * r + [True] * (n - r)
    assert one_side.exit_short == [False] * n  # no conditions: never
    assert asked == list(state.ts[r:])  # the time filters are asked about the signal bars only
    assert one_side.first_action(0, None, -1) == r + 100  # blocked until then
    assert one_side.first_action(r + 101, 1, r + 100) == n  # held, and no bar without a signal follows

    both = dataclasses.replace(analysis, entry={"long": always, "short": [parse_condition("volume >= 0")]})
    conflicting = SignalTable(both, cache, state, allowed)
    assert conflicting.sig == [0] * n
    assert conflicting.signal_bars == 0
    assert conflicting.first_action(0, None, -1) == n
