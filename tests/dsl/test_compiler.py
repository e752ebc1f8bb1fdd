"""The compiled DSL strategy: identical trades to the hand-written Python strategies on real data,
higher timeframes only from closed bars, entry/exit semantics, trailing stops, time filters and
the funding-rate operand (hand-drawn bar scenarios through the real runner)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import yaml

from tests.backtest.scenario import DAY, IID, MIN, SYMBOL, T0, bars, flat, funding
from tests.conftest import MIRROR
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import MarketData, load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.dsl.higher_bars import HigherBars
from vibe_quant.dsl.loader import SHIPPED_DIR, load_text
from vibe_quant.dsl.strategy import DslStrategy, DslStrategyConfig, document_json
from vibe_quant.home import Home
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.ports import StrategyPorts

START, END = dt.date(2023, 8, 1), dt.date(2023, 10, 31)


def shipped(name: str, **override) -> dict:
    doc = yaml.safe_load((SHIPPED_DIR / f"{name}.yaml").read_text())
    doc.update(override)
    return doc


@pytest.fixture(scope="module")
def fil_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("dsl") / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), START, END + dt.timedelta(days=1)),
               InstrumentSpecs())  # fmt: skip
    return home


def fills(result) -> list[tuple]:
    return [(f.ts_ns, f.side, f.qty, f.price, f.reason) for f in result.recorder.fills]


# -- the YAML twins of the Python strategies trade identically --------------------------------------


@pytest.mark.parametrize(
    ("python", "params", "latency"),
    [("ema_cross", {"exposure": 1.0}, "retail"), ("ema_trend_atr", {}, "domestic")],
)
def test_yaml_twin_trades_exactly_like_the_python_strategy(fil_home: Home, python, params, latency) -> None:
    specs = InstrumentSpecs()
    common = {"symbols": ("FILUSDT",), "timeframe": "15m", "start": START, "end": END, "latency": latency,
              "leverage": 5}  # fmt: skip
    hand = BacktestConfig(strategy=python, params=params, **common)
    dsl = BacktestConfig(strategy=python, kind="dsl", document=shipped(python, timeframe="15m"), **common)
    results = [
        run_backtest(plan_run(cfg), load_market_data(fil_home.catalog, plan_run(cfg), specs)) for cfg in (hand, dsl)
    ]
    assert len(results[0].recorder.fills) > 100
    assert fills(results[0]) == fills(results[1])
    assert results[0].metrics["total_return"] == results[1].metrics["total_return"]


# -- higher timeframes ------------------------------------------------------------------------------


def test_higher_timeframe_bars_built_from_closed_primary_bars_equal_the_catalog(fil_home: Home) -> None:
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(fil_home.catalog))
    five = catalog.bars([f"{IID}-5-MINUTE-LAST-EXTERNAL"])
    four = catalog.bars([f"{IID}-4-HOUR-LAST-EXTERNAL"])
    built = []
    hb = HigherBars(BarType.from_str(f"{IID}-4-HOUR-LAST-INTERNAL"), 4 * 60 * MIN, 48, 3, 1)
    hb.indicators.append(SimpleNamespace(handle_bar=built.append))
    for bar in five[7:]:  # start mid-bucket: the first, incomplete 4h bucket must not produce a bar
        hb.add(bar)

    def key(b):
        return (b.ts_event, b.open.raw, b.high.raw, b.low.raw, b.close.raw, b.volume.raw)

    assert [key(b) for b in built] == [key(b) for b in four[1:]]
    assert len(built) > 500


def test_a_4h_indicator_never_sees_an_unfinished_4h_bar(fil_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    from nautilus_trader.indicators import ExponentialMovingAverage
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    doc = {"name": "mtf_probe", "timeframe": "5m", "additional_timeframes": ["4h"],
           "indicators": {"ema_4h": {"type": "EMA", "period": 3, "timeframe": "4h"}},
           "entry_conditions": {"long": ["close > ema_4h"]}}  # fmt: skip
    seen: list[tuple[int, float]] = []
    original = DslStrategy.on_bar

    def spy(self, bar):
        original(self, bar)
        ema = self._runtimes["ema_4h"]
        if ema.initialized:
            seen.append((bar.ts_event, ema.value))

    monkeypatch.setattr(DslStrategy, "on_bar", spy)
    cfg = BacktestConfig(strategy="mtf_probe", kind="dsl", document=doc, symbols=("FILUSDT",), timeframe="5m", start=START,
                         end=dt.date(2023, 8, 31), mode="screening")  # fmt: skip
    run_backtest(plan_run(cfg), load_market_data(fil_home.catalog, plan_run(cfg), InstrumentSpecs()))

    four = ParquetDataCatalog(str(fil_home.catalog)).bars([f"{IID}-4-HOUR-LAST-EXTERNAL"])
    reference = ExponentialMovingAverage(3)
    expected: dict[int, float] = {}
    closes = iter(four)
    pending = next(closes)
    for ts, _ in seen:
        while pending is not None and pending.ts_event <= ts:  # only 4h bars closed by this 5m close
            reference.handle_bar(pending)
            pending = next(closes, None)
        expected[ts] = reference.value
    assert len(seen) > 8000
    assert all(value == expected[ts] for ts, value in seen)
    # and the value does change exactly at 4h boundaries, not before
    changes = [ts for (ts, v), (_, w) in itertools.pairwise(seen) if v != w]
    assert changes
    assert all((ts + 5 * MIN) % (4 * 60 * MIN) == 0 for ts in changes)


# -- bar-scenario harness for DSL documents -----------------------------------------------------------


def run_dsl(rows, doc: dict, funding_rows=(), **config):
    spec = InstrumentSpecs().get(SYMBOL)
    data = MarketData(specs={SYMBOL: spec}, instruments={SYMBOL: crypto_perpetual(spec)},
                      bars={SYMBOL: bars(rows)}, funding={SYMBOL: funding(list(funding_rows))}, digest="scenario")  # fmt: skip
    config.setdefault("mode", "screening")
    config.setdefault("prob_slippage", 0.0)
    config.setdefault("prob_fill_on_limit", 1.0)
    base = {"name": "probe", "timeframe": "1m", "position_management": {"sizing": {"method": "exposure",
                                                                                   "fraction": 0.1}}}  # fmt: skip
    cfg = BacktestConfig(strategy="probe", kind="dsl", document={**base, **doc}, symbols=(SYMBOL,), timeframe="1m", start=DAY,
                         end=DAY, **config)  # fmt: skip
    return run_backtest(plan_run(cfg), data, run_id="scenario")


def closes(*values: float) -> list[tuple]:
    return [(c, c, c, c, 1000.0) for c in values]


def test_entry_exit_and_one_attempt_per_signal() -> None:
    doc = {"entry_conditions": {"long": ["close > 10.2"]}, "exit_conditions": {"long": ["close < 10.0"]}}
    # bar: 0 10.0 | 1 10.3 signal | 2 10.4 (still true: no second entry) | 3 9.9 exit | 4 10.5 signal again
    r = run_dsl(closes(10.0, 10.3, 10.4, 9.9, 10.5, 10.6, 10.6), doc)
    assert [(f.side, f.price, f.reason) for f in r.recorder.fills] == [
        (1, 10.4, "entry"), (-1, 10.5, "exit"), (1, 10.6, "entry"),
    ]  # fmt: skip


def test_stopped_out_signal_is_not_reentered_until_it_resets() -> None:
    doc = {"entry_conditions": {"long": ["close > 10.2"]}, "stop_loss": {"type": "fixed_pct", "percent": 2.0}}
    rows = [*closes(10.0, 10.3), (10.3, 10.3, 10.0, 10.25, 1000.0), *closes(10.3, 10.4, 10.1, 10.3, 10.3)]
    r = run_dsl(rows, doc)
    # entry at 10.3 (bar 2 open), stop 10.3 * 0.98 -> 10.094 hit in bar 2; no new entry while close > 10.2 holds;
    # bar 5 closes 10.1 (resets), bar 6 closes 10.3 -> new entry at bar 7's open
    assert [(f.side, f.reason) for f in r.recorder.fills] == [(1, "entry"), (-1, "stop_loss"), (1, "entry")]
    assert r.recorder.fills[-1].ts_ns == T0 + 8 * MIN


def test_opposite_entry_reverses_through_flat_on_the_exit_bar() -> None:
    doc = {"entry_conditions": {"long": ["close > 10.2"], "short": ["close < 9.8"]},
           "exit_conditions": {"long": ["close < 10.0"]}}  # fmt: skip
    r = run_dsl(closes(10.0, 10.3, 10.3, 9.7, 9.7, 9.7), doc)
    assert [(f.side, f.price, f.reason) for f in r.recorder.fills] == [
        (1, 10.3, "entry"), (-1, 9.7, "signal"), (-1, 9.7, "entry"),
    ]  # fmt: skip


def test_atr_trailing_stop_ratchets_and_exits_at_the_trailed_level() -> None:
    # every bar spans 0.2 around a close rising 0.05 a bar: ATR(1) = 0.2, stop = close - 0.2
    rising = [(10.0 + 0.05 * i, 10.1 + 0.05 * i, 9.9 + 0.05 * i, 10.0 + 0.05 * i, 1000.0) for i in range(8)]
    last = rising[-1][3]  # 10.35: the stop was trailed to 10.15 at that close
    rows = [*rising, (last, last, 10.0, 10.05, 1000.0), *flat(2, 10.05)]
    doc = {"indicators": {"atr": {"type": "ATR", "period": 1}}, "entry_conditions": {"long": ["close > 9.0"]},
           "stop_loss": {"type": "atr_trailing", "atr_multiplier": 1.0, "indicator": "atr"}}  # fmt: skip
    r = run_dsl(rows, doc)
    entry, stop = r.recorder.fills
    assert (entry.reason, stop.reason, stop.order_type) == ("entry", "stop_loss", "STOP_MARKET")
    assert stop.price == pytest.approx(last - 0.2)
    assert stop.price > entry.price - 0.2  # it moved up from the initial stop


def test_session_filter_delays_a_level_entry_to_the_first_allowed_bar() -> None:
    doc = {"entry_conditions": {"long": ["close > 9.0"]},
           "time_filters": {"allowed_sessions": [{"start": "00:05", "end": "23:59"}]}}  # fmt: skip
    r = run_dsl(flat(10), doc)
    # decisions at 00:01..00:04 are blocked; the bar closing at 00:05 decides; fill at its next bar's close stamp
    assert r.recorder.fills[0].ts_ns == T0 + 6 * MIN


def test_funding_rate_operand_sees_only_settled_rates() -> None:
    doc = {"entry_conditions": {"long": ["funding_rate > 0.0005"]}}
    r = run_dsl(flat(8), doc, funding_rows=[(0, 0.0001), (4, 0.001)])
    # the 0.001 settlement at minute 4 is visible from the bar closing at minute 4; fill at the next open
    assert r.recorder.fills[0].ts_ns == T0 + 5 * MIN


# -- time filters in isolation ------------------------------------------------------------------------


def _filters(doc_extra: dict, funding_times=()) -> DslStrategy:
    text = yaml.safe_dump({"name": "f", "timeframe": "5m", "entry_conditions": {"long": ["close > 0"]}, **doc_extra})
    a = load_text(text)
    book = SimpleNamespace(funding=[(t, 0.0001, 8) for t in funding_times])
    ports = StrategyPorts(account=SimpleNamespace(book=lambda iid: book), events=RunRecorder())
    strategy = DslStrategy(DslStrategyConfig(instrument_id=IID, bar_type=f"{IID}-5-MINUTE-LAST-EXTERNAL",
                                             document=document_json(a)), ports)  # fmt: skip
    strategy.analysis, strategy.book = a, book  # what on_start sets, without an engine
    strategy._setup_filters(a)
    return strategy


def _ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()) * 10**9


@pytest.mark.parametrize(
    ("sessions", "when", "allowed"),
    [
        ([{"start": "08:00", "end": "20:00"}], "2024-01-03 08:00", True),
        ([{"start": "08:00", "end": "20:00"}], "2024-01-03 20:00", True),
        ([{"start": "08:00", "end": "20:00"}], "2024-01-03 20:05", False),
        ([{"start": "08:00", "end": "20:00"}], "2024-01-03 07:55", False),
        ([{"start": "22:00", "end": "02:00"}], "2024-01-03 23:30", True),  # across midnight
        ([{"start": "22:00", "end": "02:00"}], "2024-01-03 01:00", True),
        ([{"start": "22:00", "end": "02:00"}], "2024-01-03 12:00", False),
        ([{"start": "08:00", "end": "09:00", "timezone": "Europe/London"}], "2024-07-03 07:30", True),  # BST
        ([{"start": "08:00", "end": "09:00", "timezone": "Europe/London"}], "2024-01-03 07:30", False),  # GMT
        ([{"start": "01:00", "end": "02:00"}, {"start": "10:00", "end": "11:00"}], "2024-01-03 10:30", True),
    ],
)
def test_sessions(sessions, when, allowed) -> None:
    assert _filters({"time_filters": {"allowed_sessions": sessions}}).entry_allowed(_ts(when)) is allowed


def test_blocked_days_use_the_utc_weekday() -> None:
    s = _filters({"time_filters": {"blocked_days": ["Saturday", "sun"]}})
    assert not s.entry_allowed(_ts("2024-01-06 12:00"))  # a Saturday
    assert not s.entry_allowed(_ts("2024-01-07 00:00"))  # Sunday
    assert s.entry_allowed(_ts("2024-01-08 00:00"))  # Monday


def test_funding_window_uses_the_symbols_funding_times() -> None:
    hourly = [_ts("2024-01-03 09:00"), _ts("2024-01-03 10:00")]  # a 1h funding symbol
    s = _filters({"time_filters": {"avoid_around_funding": {"enabled": True, "minutes_before": 5,
                                                            "minutes_after": 10}}}, hourly)  # fmt: skip
    assert not s.entry_allowed(_ts("2024-01-03 08:55"))
    assert s.entry_allowed(_ts("2024-01-03 08:50"))
    assert not s.entry_allowed(_ts("2024-01-03 09:10"))
    assert s.entry_allowed(_ts("2024-01-03 09:15"))
    assert s.entry_allowed(_ts("2024-01-03 16:00"))  # not a funding time for this symbol


def test_funding_window_falls_back_to_binance_8h_schedule_with_a_warning() -> None:
    s = _filters({"time_filters": {"avoid_around_funding": {"enabled": True}}})
    assert not s.entry_allowed(_ts("2024-01-03 16:05"))
    assert s.entry_allowed(_ts("2024-01-03 12:00"))
    assert any("00:00/08:00/16:00" in w for w in s.events.warnings)


# -- every shipped strategy compiles and trades on real data --------------------------------------------


@pytest.mark.parametrize("path", sorted(SHIPPED_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_strategies_run(fil_home: Home, path: Path) -> None:
    a = load_text(path.read_text(), str(path))
    doc = json.loads(document_json(a))
    tf = "15m" if a.primary.label == "1m" else a.primary.label  # keep the suite fast
    doc["timeframe"] = tf
    cfg = BacktestConfig(strategy=a.name, kind="dsl", document=doc, symbols=("FILUSDT",), timeframe=tf, start=START, end=END,
                         leverage=5)  # fmt: skip
    result = run_backtest(plan_run(cfg), load_market_data(fil_home.catalog, plan_run(cfg), InstrumentSpecs()))
    assert result.metrics["total_trades"] > 5, a.name
    assert msgspec.to_builtins(result.config)["document"]["name"] == a.name
