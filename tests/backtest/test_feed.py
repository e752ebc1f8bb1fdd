"""Screening's fast path gives the full replay's results: every bundled DSL strategy and random
sweep points, on real bars, with funding, time filters, trailing stops and two symbols.

``replay="full"`` evaluates indicators and conditions bar by bar on every bar; ``signals`` reads
them from the precomputed table on every bar; ``active`` also skips the bars where nothing can
happen (backtest/feed.py). All three must produce the same fills, equity curve and metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pytest
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

import vibe_quant.dsl
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.engine import EngineSession
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.strategy.registry import find_strategy

DSL_DIR = Path(vibe_quant.dsl.__file__).parent / "strategies"
START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
SYMBOLS = ("FILUSDT", "NEARUSDT")
BUNDLED = ("rsi_mean_reversion_mtf", "ema_cross", "bollinger_mean_reversion", "bollinger_squeeze",
           "macd_crossover_session", "funding_aware_ema", "ema_trend_atr")  # fmt: skip
DROP = {"execution_time_seconds"}


@pytest.fixture(scope="module")
def catalog(aug_2023_catalog):
    return aug_2023_catalog  # FILUSDT + NEARUSDT, August 2023 (tests/conftest.py)


def with_funding(data, seed: int = 7):
    """Real bars have no funding file here: settle random rates (both signs) every 8 hours."""
    rng = random.Random(seed)
    eight_h = 8 * 3600 * 10**9
    for symbol, bars in data.bars.items():
        iid = InstrumentId.from_str(f"{symbol}-PERP.BINANCE")
        first = bars[0].ts_event // eight_h * eight_h
        data.funding[symbol] = [
            FundingRateUpdate(iid, Decimal(f"{rng.uniform(-0.002, 0.003):.6f}"), ts, ts, next_funding_ns=ts + eight_h)
            for ts in range(first, bars[-1].ts_event, eight_h)
        ]
    return data


def config(strategy: str, symbols=("FILUSDT",), **extra):
    # the YAML file, not the Python strategy of the same name (ema_cross, ema_trend_atr)
    ref = find_strategy(str(DSL_DIR / f"{strategy}.yaml"))
    return parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": list(symbols),
                         "timeframe": ref.document["timeframe"],
                         "start": str(START), "end": str(END), "mode": "screening", **extra})  # fmt: skip


def outcome(result) -> dict:
    return {
        "fills": [dataclasses.astuple(f) for f in result.recorder.fills],
        "funding": [dataclasses.astuple(f) for f in result.recorder.funding],
        "liquidations": [dataclasses.astuple(x) for x in result.recorder.liquidations],
        "metrics": {k: v for k, v in result.metrics.items() if k not in DROP},
        "equity_ts": result.equity_ts.tolist(),
        "equity": result.equity.tolist(),
    }


def compare(base, data, points: list[dict], replays=("full", "signals", "active")) -> list[dict]:
    """Run every point in each replay mode (one reused engine per mode); assert equal outcomes."""
    sessions = {mode: EngineSession(plan_run(base), data, replay=mode) for mode in replays}
    stats = []
    try:
        for params in points:
            cfg = msgspec.structs.replace(base, params=params)
            results = {mode: s.run(plan_run(cfg)) for mode, s in sessions.items()}
            reference = outcome(results["full"])
            for mode in replays[1:]:
                got = outcome(results[mode])
                for key in reference:
                    assert got[key] == reference[key], f"{mode} differs in {key} for {params}"
            stats.append({"trades": results["full"].metrics["total_trades"],
                          "fills": len(reference["fills"]), "funding": len(reference["funding"]),
                          "liquidations": len(reference["liquidations"]),
                          "replayed": results[replays[-1]].extra["bars_replayed"],
                          "bars": len(results["full"].equity_ts)})  # fmt: skip
    finally:
        for s in sessions.values():
            s.dispose()
    return stats


@pytest.mark.parametrize("strategy", BUNDLED)
def test_every_bundled_strategy_trades_the_same_on_the_active_bars_only(catalog, strategy: str) -> None:
    base = config(strategy, leverage=5.0)
    data = with_funding(load_market_data(catalog, plan_run(base), InstrumentSpecs()))
    [stats] = compare(base, data, [{}])
    assert stats["fills"] > 0, "the strategy must trade for the comparison to mean anything"
    assert stats["funding"] > 0
    assert stats["replayed"] < stats["bars"]


def test_random_sweep_points_agree_and_most_bars_are_skipped(catalog) -> None:
    base = config("rsi_mean_reversion_mtf")
    data = with_funding(load_market_data(catalog, plan_run(base), InstrumentSpecs()))
    dsl_points = expand_grid_sample(base, 6)
    stats = compare(base, data, dsl_points, replays=("full", "active"))
    assert sum(s["trades"] for s in stats) > 30
    assert sum(s["replayed"] for s in stats) < 0.5 * sum(s["bars"] for s in stats)


def expand_grid_sample(base, n: int) -> list[dict]:
    from vibe_quant.screening.pipeline import SweepSpec, build_grid

    return build_grid(base, SweepSpec(max_points=n, sample_seed=3)).points


def test_two_symbols_share_the_account_and_agree(catalog) -> None:
    """Sizing reads the shared equity: a bar skipped on one symbol must not change the other's trades."""
    base = config("rsi_mean_reversion_mtf", symbols=SYMBOLS, leverage=5.0)
    data = with_funding(load_market_data(catalog, plan_run(base), InstrumentSpecs()))
    stats = compare(base, data, [{}, {"rsi.period": 7, "stop_loss.atr_multiplier": 1.5}])
    assert all(s["trades"] > 0 for s in stats)
    assert all(s["replayed"] < s["bars"] for s in stats)


def test_liquidations_are_the_same_on_the_fast_path(catalog) -> None:
    """50x isolated margin, no stop (ema_cross): a 2% move against a position liquidates it."""
    base = config("ema_cross", leverage=50.0)
    data = with_funding(load_market_data(catalog, plan_run(base), InstrumentSpecs()))
    [stats] = compare(base, data, [{}])
    assert stats["liquidations"] > 0


def test_runs_with_a_sizing_gate_replay_every_bar(catalog) -> None:
    """The risk gate's breakers watch every bar: no skipping there (and still the same results)."""
    sizing = {"method": "fixed_fractional", "risk_per_trade": 0.01, "max_position_pct": 0.10, "max_leverage": 5}
    base = config("rsi_mean_reversion_mtf", sizing=sizing, leverage=5.0)
    data = load_market_data(catalog, plan_run(base), InstrumentSpecs())
    [stats] = compare(base, data, [{}], replays=("full", "active"))
    assert stats["replayed"] == stats["bars"]
    assert stats["trades"] > 0


def test_indicators_are_recorded_once_per_session(catalog) -> None:
    base = config("rsi_mean_reversion_mtf")
    data = load_market_data(catalog, plan_run(base), InstrumentSpecs())
    session = EngineSession(plan_run(base), data, replay="active")
    try:
        for period in (7, 14, 7, 14):
            session.run(plan_run(msgspec.structs.replace(base, params={"rsi.period": period})), reports=False)
        cache = session.indicator_cache("FILUSDT-PERP.BINANCE")
        # rsi(7), rsi(14), ema_fast, atr, rsi_1h, ema_trend_4h: recorded once each
        assert cache.misses == 6
        assert cache.hits == 4 * 5 - 6
    finally:
        session.dispose()


def test_a_reused_engine_does_not_keep_earlier_runs_subscribed(catalog) -> None:
    base = config("ema_cross")
    data = load_market_data(catalog, plan_run(base), InstrumentSpecs())
    session = EngineSession(plan_run(base), data, replay="active")
    try:
        counts = []
        for fast in (5, 8, 13, 21):
            session.run(plan_run(msgspec.structs.replace(base, params={"ema_fast.period": fast})), reports=False)
            counts.append(len(session.engine.kernel.msgbus.subscriptions()))
        assert counts == [counts[0]] * 4  # (NautilusTrader alone would add 3 per run)
    finally:
        session.dispose()


def test_unknown_replay_mode_is_refused(catalog) -> None:
    base = config("ema_cross")
    data = load_market_data(catalog, plan_run(base), InstrumentSpecs())
    with pytest.raises(ValueError, match="replay"):
        EngineSession(plan_run(base), data, replay="fast")
    assert np.all(np.diff([b.ts_init for b in data.bars["FILUSDT"]]) > 0)


def test_the_streamed_positions_report_is_nautilus_traders(catalog) -> None:
    from vibe_quant.backtest.engine import positions_report

    plan = plan_run(parse_config({"strategy": "ema_cross", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "15m",
                                  "start": str(START), "end": str(END), "params": {"fast": 10, "slow": 40}}))  # fmt: skip
    session = EngineSession(plan, load_market_data(catalog, plan, InstrumentSpecs()))
    try:
        session.run(plan, reports=False)
        ours = positions_report(session.engine.cache)
        assert len(ours) > 100  # NETTING: one position id per instrument, its round trips as snapshots
        assert ours.equals(session.engine.trader.generate_positions_report())
    finally:
        session.dispose()
