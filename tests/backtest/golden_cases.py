"""Golden backtests on real data (FILUSDT 2023-08..10 from ../shared/data), shared by the
golden test and the script that regenerates the goldens (scripts/regen_backtest_goldens.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from vibe_quant.backtest.config import BacktestConfig

GOLDEN_DIR = Path(__file__).parent / "goldens"
START, END = dt.date(2023, 8, 1), dt.date(2023, 10, 31)
VOLATILE = {"execution_time_seconds"}  # wall-clock, not a result

CASES = {
    "ema_cross_5m_validation": BacktestConfig(
        strategy="ema_cross", symbols=("FILUSDT",), timeframe="5m", start=START, end=END,
        params={"fast": 20, "slow": 100, "exposure": 0.5}, mode="validation", latency="retail", leverage=5,
    ),
    "ema_trend_atr_15m_validation": BacktestConfig(
        strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=START, end=END,
        mode="validation", latency="domestic", leverage=10,
    ),
    "ema_cross_1h_screening": BacktestConfig(
        strategy="ema_cross", symbols=("FILUSDT", "NEARUSDT"), timeframe="1h", start=START, end=END,
        mode="screening", leverage=3,
    ),
}  # fmt: skip


def golden_payload(result) -> dict:
    """What a golden pins: every metric but wall-clock time, and exact fill and trade counts."""
    metrics = {k: v for k, v in result.metrics.items() if k not in VOLATILE}
    return {
        "metrics": metrics,
        "fills": len(result.recorder.fills),
        "trades": len(result.trades),
        "exit_reasons": sorted({t.exit_reason or "open" for t in result.trades}),
        "first_fill": [result.recorder.fills[0].price, result.recorder.fills[0].ts_ns]
        if result.recorder.fills
        else None,
    }
