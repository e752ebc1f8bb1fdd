"""DolphinStrategy on NautilusTrader: the pending-flag ACB listener, the once-per-date replay guard,
replay parity with the engine's own loop on real scan tables, and the orders mode on hand-drawn bars
(next-open fill, fee, funding)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from decimal import Decimal
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import MarketData, load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.dolphin.array_engine import run_reference
from vibe_quant.dolphin.backtest import load_scan_data
from vibe_quant.dolphin.config import ScanConfig
from vibe_quant.dolphin.engine import HIBERNATE_HALT, DayRow, NDAlphaEngine
from vibe_quant.dolphin.engine_config import engine_config
from vibe_quant.dolphin.kind import BoundDolphin
from vibe_quant.dolphin.providers import PostureSchedule
from vibe_quant.dolphin.scans import StreamingScanner
from vibe_quant.dolphin.store import FORMAT, MANIFEST, read_manifest
from vibe_quant.dolphin.strategy import DolphinStrategy, DolphinStrategyConfig
from vibe_quant.errors import ConfigError
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs

SYMBOLS = ("FILUSDT", "NEARUSDT")
DAY = dt.date(2024, 1, 1)
T0 = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
MIN = 60 * 10**9
HOUR = 60 * MIN


def iid(symbol: str) -> str:
    return f"{symbol}-PERP.BINANCE"


def strategy(mode: str = "orders", scans: Path | None = None, step: str = "1-HOUR", **kw) -> DolphinStrategy:
    config = DolphinStrategyConfig(instrument_ids=tuple(iid(s) for s in SYMBOLS),
                                   bar_types=tuple(f"{iid(s)}-{step}-LAST-EXTERNAL" for s in SYMBOLS),
                                   mode=mode, scans=str(scans) if scans else None, **kw)  # fmt: skip
    return DolphinStrategy(config)


def bar(symbol: str, ts: int, close: float = 10.0, step: str = "1-HOUR") -> Bar:
    p = Price(close, 3)
    return Bar(BarType.from_str(f"{iid(symbol)}-{step}-LAST-EXTERNAL"), p, p, p, p, Quantity(1, 1), ts, ts)


@pytest.fixture
def fake_scans(tmp_path: Path) -> Path:
    (tmp_path / MANIFEST).write_text(json.dumps({"format": FORMAT, "universe": list(SYMBOLS)}))
    return tmp_path


def day_rows(day: dt.date, n: int = 3, price: float = 10.0):
    """`n` hourly scan rows of `day` (a ScanData-like object with ts, vel_div, closes)."""
    base = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 10**9
    ts = np.array([base + (i + 1) * HOUR for i in range(n)], dtype=np.int64)
    return mock.Mock(ts=ts, vel_div=np.zeros(n), closes=np.full((n, len(SYMBOLS)), price))


# -- the specification's CI tests ---------------------------------------------------------------


def test_instantiation_and_refusals(fake_scans: Path) -> None:
    s = strategy()
    assert s.config.mode == "orders"
    assert s.symbols == SYMBOLS
    assert s.scanner.config == ScanConfig(timeframe="1h")
    assert s.engine.cfg == engine_config()
    assert strategy("replay", fake_scans).engine.symbols == SYMBOLS
    with pytest.raises(ConfigError, match="mode 'live'"):
        strategy(mode="live")
    with pytest.raises(ConfigError, match="'replay' needs scans"):
        strategy(mode="replay")
    with pytest.raises(ConfigError, match="unknown key 'fixed_tp'"):
        strategy(engine={"fixed_tp": 0.01})


def test_acb_listener_only_stores_the_payload_the_next_bar_applies_it() -> None:
    s = strategy()
    with mock.patch.object(s.engine, "update_acb_boost") as update:
        s.on_acb_event({"boost": 1.35, "beta": 0.8})
        assert s._pending_acb["boost"] == 1.35
        update.assert_not_called()
        s.on_bar(bar(SYMBOLS[0], T0 + HOUR))
        update.assert_called_once_with(1.35, 0.8)
        assert s._pending_acb is None
        s.on_bar(bar(SYMBOLS[0], T0 + 2 * HOUR))
        update.assert_called_once()


def test_replay_processes_each_date_once(fake_scans: Path) -> None:
    s = strategy("replay", fake_scans)
    row = DayRow(DAY, 0.0, 10_000.0, 1.0, 0.0, "OK", 0, "APEX")
    with mock.patch.object(s, "load_day", side_effect=day_rows), \
         mock.patch.object(s.engine, "process_day", return_value=row) as process_day:  # fmt: skip
        for h in (1, 2, 3):  # three bars opened on DAY
            s.on_bar(bar(SYMBOLS[0], T0 + h * HOUR))
        assert process_day.call_count == 1
        s.on_bar(bar(SYMBOLS[0], T0 + 25 * HOUR))  # opened on the next date
        assert process_day.call_count == 2
    assert [c.args[0] for c in process_day.call_args_list] == [DAY, DAY + dt.timedelta(days=1)]
    assert s._processed_dates == {DAY, DAY + dt.timedelta(days=1)}
    assert set(s.results[DAY]) == {"date", "pnl", "capital", "boost", "beta", "mc_status", "trades"}


def test_replay_hibernate_day_closes_the_position_and_is_marked_done(fake_scans: Path) -> None:
    nxt = DAY + dt.timedelta(days=1)
    s = strategy("replay", fake_scans, engine={"use_asset_selection": False, "dc_fallback_symbol": "FILUSDT",
                                               "lookback": 1, "dc_enabled": False})  # fmt: skip
    s.engine.posture = PostureSchedule({nxt: "HIBERNATE"})
    first = day_rows(DAY)
    first.vel_div = np.full(3, -0.03)  # fires: a SHORT opens on DAY's first row
    days = {DAY: first, nxt: day_rows(nxt, price=10.5)}
    with mock.patch.object(s, "load_day", side_effect=days.__getitem__):
        s.on_bar(bar(SYMBOLS[0], T0 + HOUR))
        assert s.engine.position is not None
        s.on_bar(bar(SYMBOLS[0], T0 + 25 * HOUR))
    (trade,) = s.engine.trades
    assert trade.exit_reason == HIBERNATE_HALT
    assert trade.exit_ts == int(days[nxt].ts[0])  # the HIBERNATE day's first row
    assert nxt in s._processed_dates
    assert s.results[nxt]["trades"] == 1


# -- replay parity on real scan tables ----------------------------------------------------------


def run_capturing(monkeypatch, plan, data):
    built = []
    build = BoundDolphin.build

    def spy(self, legs, ports):
        out = build(self, legs, ports)
        built.extend(out)
        return out

    monkeypatch.setattr(BoundDolphin, "build", spy)
    return run_backtest(plan, data), built[0]


def test_replay_ledger_equals_the_engine(monkeypatch, hourly_home, champion_scans: Path) -> None:
    start, end = dt.date(2026, 1, 5), dt.date(2026, 1, 31)
    universe = read_manifest(champion_scans)["universe"]
    plan = plan_run(BacktestConfig(strategy="dolphin_replay", kind="dolphin", symbols=tuple(universe[:2]),
                                   timeframe="1h", start=start, end=end, mode="screening",
                                   document={"name": "dolphin_replay", "mode": "replay", "scans": str(champion_scans),
                                             "engine": {}}))  # fmt: skip
    assert plan.strategy.runner is None
    result, s = run_capturing(monkeypatch, plan, load_market_data(hourly_home.catalog, plan, InstrumentSpecs()))
    reference = run_reference(load_scan_data(champion_scans, start, end), engine_config())
    assert len(reference.trades) > 5
    assert s.engine.trades == reference.trades  # every field, floats identical
    assert sorted(s.results) == [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    assert [s.results[d.date]["capital"] for d in reference.days] == [d.capital for d in reference.days]
    assert result.recorder.fills == []  # replay sends no orders


# -- orders mode on hand-drawn bars -------------------------------------------------------------


def drawn_market(n: int, seed: int = 3) -> tuple[MarketData, dict[str, list[tuple]]]:
    """`n` 1m bars per symbol: random-walk closes, each open 0.1% above the previous close (so a
    fill at the next open is told apart from one at the signal close)."""
    rng = np.random.default_rng(seed)
    specs = InstrumentSpecs()
    rows, bars = {}, {}
    for symbol, start in zip(SYMBOLS, (10.0, 1.5), strict=True):
        spec = specs.get(symbol)
        dp = spec.price_precision
        closes = np.round(start * np.exp(np.cumsum(rng.normal(0, 0.004, n))), dp)
        opens = np.round(np.concatenate([[start], closes[:-1]]) * 1.001, dp)
        rows[symbol] = [(o, round(max(o, c) * 1.002, dp), round(min(o, c) * 0.998, dp), c)
                        for o, c in zip(opens, closes, strict=True)]  # fmt: skip
        bt = BarType.from_str(f"{iid(symbol)}-1-MINUTE-LAST-EXTERNAL")
        bars[symbol] = [Bar(bt, Price(o, dp), Price(h, dp), Price(lo, dp), Price(c, dp),
                            Quantity(1e6, spec.size_precision), T0 + (i + 1) * MIN, T0 + (i + 1) * MIN)
                        for i, (o, h, lo, c) in enumerate(rows[symbol])]  # fmt: skip
    data = MarketData(specs={s: specs.get(s) for s in SYMBOLS},
                      instruments={s: crypto_perpetual(specs.get(s)) for s in SYMBOLS}, bars=bars,
                      funding={s: [] for s in SYMBOLS}, digest="dolphin-scenario")  # fmt: skip
    return data, rows


def test_orders_mode_enters_at_the_next_open_with_fee_and_funding(monkeypatch) -> None:
    n, windows = 60, (5, 10)
    data, rows = drawn_market(n)
    # Where the engine fires: the scan rows of these closes, then the engine over them (capital = the
    # starting balance: the account is flat until the entry fills).
    scanner = StreamingScanner(ScanConfig(timeframe="1m", windows=windows), len(SYMBOLS))
    scan = [(i, scanner.push(T0 + (i + 1) * MIN, np.array([rows[s][i][3] for s in SYMBOLS]))) for i in range(n)]
    scan = [(i, r) for i, r in scan if r is not None]
    assert scan[0][0] == ScanConfig(windows=windows).warmup_rows == 11  # 11 bars before the first row
    k0 = next(k for k, (_, r) in enumerate(scan) if k >= 4 and r["vel_div"] < -1e-4)
    entry_bar = scan[k0][0]
    assert entry_bar < n - 20  # the scenario holds the position for a while after the entry
    engine = {"vel_div_threshold": -1e-4, "vel_div_extreme": -1.0, "lookback": 5, "irp_window": 5,
              "dc_lookback_bars": 2, "dc_enabled": False, "use_asset_selection": False,
              "dc_fallback_symbol": "FILUSDT", "fixed_tp_pct": 0.5, "stop_pct": 0.9, "max_hold_bars": 15,
              "use_acb": False, "initial_capital": 10_000.0}  # fmt: skip
    offline = NDAlphaEngine(engine_config(engine), SYMBOLS)
    for i, r in scan:
        offline.process_bar(T0 + (i + 1) * MIN, r["vel_div"], {j: float(c) for j, c in enumerate(r["closes"])})
        if offline.position is not None:
            break
    assert i == entry_bar
    assert (offline.position.asset, offline.position.direction) == (0, -1)  # SHORT FILUSDT
    signal_close = rows["FILUSDT"][entry_bar][3]
    qty = math.floor(offline.position.notional / signal_close / 0.1 + 1e-9) * 0.1
    # funding settles 10 minutes after the fill: mark = the close of the bar ending then
    settle = entry_bar + 12
    rate = 0.0004
    data.funding["FILUSDT"] = [FundingRateUpdate(InstrumentId.from_str(iid("FILUSDT")), Decimal(str(rate)),
                                                 T0 + settle * MIN, T0 + settle * MIN,
                                                 next_funding_ns=T0 + settle * MIN + 8 * HOUR)]  # fmt: skip
    plan = plan_run(BacktestConfig(strategy="dolphin_scenario", kind="dolphin", symbols=SYMBOLS, timeframe="1m",
                                   start=DAY, end=DAY, mode="screening", prob_slippage=0.0, starting_balance=10_000.0,
                                   document={"name": "dolphin_scenario", "mode": "orders", "windows": list(windows),
                                             "engine": engine}))  # fmt: skip
    result, s = run_capturing(monkeypatch, plan, data)
    entry = result.recorder.fills[0]
    assert (entry.instrument, entry.side, entry.reason) == ("FILUSDT", -1, "entry")
    assert entry.qty == pytest.approx(qty)
    next_open = rows["FILUSDT"][entry_bar + 1][0]
    assert next_open != signal_close
    assert entry.price == next_open  # the next bar's open, not the signal bar's close
    assert entry.economic_ns == T0 + (entry_bar + 1) * MIN + 1
    assert entry.fee == pytest.approx(qty * next_open * 0.0005)  # taker fee on the fill
    (funding,) = result.recorder.funding
    mark = rows["FILUSDT"][settle - 1][3]
    assert funding.amount == pytest.approx(-qty * mark * rate)  # a short receives positive funding
    # the engine's MAX_HOLD exit 15 rows later flattens the leg at the open after its exit bar
    first = s.engine.trades[0]
    assert (first.exit_reason, first.entry_ts) == ("MAX_HOLD", T0 + (entry_bar + 1) * MIN)
    exit_bar = entry_bar + 15
    assert first.exit_ts == T0 + (exit_bar + 1) * MIN
    close = result.recorder.fills[1]
    assert (close.side, close.qty, close.reason) == (1, entry.qty, "MAX_HOLD")
    assert close.price == rows["FILUSDT"][exit_bar + 1][0]
    assert close.fee == pytest.approx(close.qty * close.price * 0.0005)


# -- every real hourly perpetual, through `vq backtest run` ---------------------------------------


def test_orders_mode_on_every_hourly_symbol(cli, tmp_path: Path, hourly_home, champion_scans: Path) -> None:
    """The champion in orders mode (IRP on) over the 55 real hourly perpetuals: 751 bars of scanner
    warm-up, then 10 days of engine rows; peak RSS under 4 GB."""
    import resource

    from tests.conftest import linked_home
    from vibe_quant.state import StateManager

    home = linked_home(tmp_path / "home", hourly_home.catalog)
    universe = read_manifest(champion_scans)["universe"]
    assert len(universe) == 55
    code, text = cli(["--home", str(home.root), "backtest", "run", "--strategy", "dolphin_champion", "--symbols",
                      ",".join(universe), "--timeframe", "1h", "--start", "2026-01-01", "--end", "2026-02-10",
                      "--mode", "screening"])  # fmt: skip
    assert code == 0, text
    trades = next(line.split()[1] for line in text.splitlines() if line.startswith("total_trades"))
    assert int(trades) > 0  # the engine traded after the warm-up, through the legs
    with StateManager(home.db_path) as db:
        (run,) = db.find("backtest_runs")
    assert run["status"] == "completed"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 4 * 1024**2  # KiB


# -- under the services: the feature store's posture, ACB and MC; heartbeat, equity, results ---------------


def _store_run(monkeypatch, redis_url: str, prepare) -> tuple:
    import redis

    from vibe_quant.dolphin.features import DolphinStore, RedisFeatureStore

    with redis.Redis.from_url(redis_url) as raw:
        raw.flushdb()
    data, _rows = drawn_market(60)
    engine = {"vel_div_threshold": -1e-4, "vel_div_extreme": -1.0, "lookback": 5, "irp_window": 5,
              "dc_enabled": False, "use_asset_selection": False, "dc_fallback_symbol": "FILUSDT",
              "fixed_tp_pct": 0.5, "stop_pct": 0.9, "max_hold_bars": 15, "use_acb": True}  # fmt: skip
    with DolphinStore(RedisFeatureStore(redis_url)) as store:
        prepare(store)
    plan = plan_run(BacktestConfig(strategy="dolphin_live", kind="dolphin", symbols=SYMBOLS, timeframe="1m",
                                   start=DAY, end=DAY, mode="screening", prob_slippage=0.0, starting_balance=10_000.0,
                                   document={"name": "dolphin_live", "mode": "orders", "windows": [5, 10],
                                             "engine": engine, "store": redis_url}))  # fmt: skip
    result, s = run_capturing(monkeypatch, plan, data)
    return result, s, DolphinStore(RedisFeatureStore(redis_url))


def test_under_the_services_the_store_drives_the_engine(monkeypatch, redis_url: str) -> None:
    from vibe_quant.dolphin.services import WatchdogService

    def healthy(store) -> None:
        WatchdogService().cycle(store, time.time_ns())  # APEX: every sensor fine
        store.write_acb(1.35, 0.8)

    result, s, store = _store_run(monkeypatch, redis_url, healthy)
    with store:
        first = s.engine.trades[0]
        strength = min(1.0, (-1e-4 - first.vel_div) / (-1e-4 + 1.0))
        assert first.regime_size_mult == pytest.approx(1.35 * (1 + 0.8 * strength**3), abs=1e-12)
        assert result.recorder.fills[0].reason == "entry"
        assert store.heartbeat_age_s("strategy", time.time_ns()) < 60
        equity = store.read_equity()
        assert equity["peak"] >= equity["equity"] > 0
        assert store.read_result(-1, DAY)["trades"] == len(s.engine.trades)
        closed = [t.trade_id for t in s.engine.trades if t.exit_reason != "END_OF_DATA"]
        assert closed
        assert [t["trade_id"] for t in store.read_trades(-1, DAY)] == closed


def test_a_stopped_heartbeat_hibernates_and_the_strategy_enters_nothing(monkeypatch, redis_url: str) -> None:
    from vibe_quant.dolphin.services import WatchdogService

    def stopped(store) -> None:
        now = time.time_ns()
        store.beat("strategy", now - 31 * 10**9)  # the strategy's last beat, 31 s ago
        assert WatchdogService().cycle(store, now)["posture"] == "HIBERNATE"  # one watchdog cycle

    result, s, store = _store_run(monkeypatch, redis_url, stopped)
    with store:
        assert result.recorder.fills == []
        assert s.engine.trades == []
        assert s.engine.counts.candidates == 0  # halted: not even tried


def test_store_urls_never_carry_a_password(monkeypatch) -> None:
    from vibe_quant.dolphin.strategy import store_url

    with pytest.raises(ConfigError, match=r"carries a password.*VQ_DOLPHIN_STORE"):
        store_url("redis://:hunter2@127.0.0.1:6379/0")
    monkeypatch.delenv("VQ_DOLPHIN_STORE", raising=False)
    with pytest.raises(ConfigError, match=r"set \$VQ_DOLPHIN_STORE"):
        store_url("env")
    monkeypatch.setenv("VQ_DOLPHIN_STORE", "redis://:hunter2@127.0.0.1:6379/0")
    assert store_url("env").endswith("6379/0")


def test_orders_mode_through_screening_and_walk_forward(cli, tmp_path: Path, hourly_home, champion_scans: Path) -> None:
    """dolphin_champion (orders on NautilusTrader) screened on real hourly bars, then walk-forward: each window
    runs from its train start, the scanner warming up inside the train period."""
    from tests.conftest import linked_home
    from vibe_quant.state import StateManager

    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root)]
    symbols = ",".join(read_manifest(champion_scans)["universe"][:6])
    code, text = cli([*base, "screen", "run", "--strategy", "dolphin_champion", "--symbols", symbols, "--timeframe",
                      "1h", "--start", "2025-12-01", "--end", "2026-02-25", "--sweep", "fixed_tp_pct=0.006,0.0095",
                      "--min-trades", "0", "--max-dd", "0.99", "--min-pf", "0", "--workers", "1"])  # fmt: skip
    assert code == 0, text
    with StateManager(home.db_path) as db:
        (run,) = db.find("backtest_runs", run_mode="screening")
        rows = db.find("sweep_results", run_id=run["id"])
    assert len(rows) == 2
    assert all(r["error_message"] is None for r in rows)
    config = tmp_path / "of.yaml"
    config.write_text("overfitting:\n  walk_forward: {train_window_days: 40, test_window_days: 10, step_days: 10, "
                      "min_windows: 3, min_efficiency: -100.0, min_profitable_windows_pct: 0.0}\n")  # fmt: skip
    code, text = cli([*base, "overfit", "run", "--run-id", str(run["id"]), "--config", str(config), "--filters", "wfa",
                      "--candidates", "all", "--workers", "1", "--no-validate"])  # fmt: skip
    assert code == 0, text
    assert "walk-forward optimisation over 4 windows" in text
