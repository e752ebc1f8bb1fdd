"""The Pareto-front check (docs/specs.md#where-the-kernel-runs): a sweep run on the kernel re-runs its
front on NautilusTrader; identical metrics pass, a perturbed stored metric fails the run loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import linked_home
from vibe_quant.backtest.config import parse_config
from vibe_quant.errors import EngineMismatch
from vibe_quant.screening.check import check_front, metric_differences, same_metric
from vibe_quant.screening.pareto import HardFilters
from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening
from vibe_quant.state import StateManager
from vibe_quant.strategy.registry import find_strategy


def test_same_metric_is_equal_within_1e_9_relative_or_absolute() -> None:
    assert same_metric(None, None)
    assert not same_metric(None, 0.0)
    assert not same_metric(0.0, None)
    assert same_metric(12, 12.0)
    assert same_metric(1e6, 1e6 * (1 + 5e-10))
    assert not same_metric(1e6, 1e6 * (1 + 2e-9))
    assert same_metric(0.0, 5e-10)  # near zero the tolerance is absolute
    assert not same_metric(0.0, 2e-9)
    stored = {"total_trades": 10, "sharpe_ratio": None, "net_pnl": 1.5}
    assert metric_differences(stored, {"total_trades": 10, "sharpe_ratio": float("nan"), "net_pnl": 1.5}) == []
    diffs = metric_differences(stored, {"total_trades": 11, "sharpe_ratio": 0.3, "net_pnl": 1.5, "fills": 4})
    assert diffs == [("sharpe_ratio", None, 0.3), ("total_trades", 10, 11), ("fills", None, 4)]


def base_config():
    ref = find_strategy("rsi_mean_reversion_mtf")
    return parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                         "timeframe": "5m", "start": "2023-08-01", "end": "2023-08-31", "mode": "screening"})  # fmt: skip


def test_check_front_passes_identical_metrics_and_fails_on_a_perturbed_one(aug_2023_catalog: Path,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    home = linked_home(tmp_path / "home", aug_2023_catalog)
    spec = SweepSpec(overrides={"rsi.period": [7, 14], "stop_loss.atr_multiplier": [2.0], "rsi_oversold_threshold": [30],
                                "rsi_overbought_threshold": [70], "ema_fast.period": [20], "ema_trend_4h.period": [30],
                                "take_profit.percent": [3.0]},
                     filters=HardFilters(min_trades=1, max_drawdown=0.99, min_profit_factor=0.0))  # fmt: skip
    with StateManager(home.db_path) as db:
        run_row = create_screening_run(db, base_config(), spec)
    summary = run_screening(home, run_row, workers=1)
    assert summary.engine == "sim"
    assert summary.engines == {"sim": 2}
    assert summary.front
    assert summary.front_checked == len(summary.front)
    base = base_config()

    def front() -> list[dict]:
        with StateManager(home.db_path) as db:
            return [r for r in db.find("sweep_results", run_id=run_row) if r["is_pareto_optimal"]]

    assert check_front(home, run_row, base, front()) == len(summary.front)
    row = front()[0]
    fees = row["metrics"]["total_fees"]
    assert fees > 0
    with StateManager(home.db_path) as db:
        db.update("sweep_results", row["id"], {"metrics": {**row["metrics"], "total_fees": fees * (1 + 1e-6)}})
    with pytest.raises(EngineMismatch, match="report this as a bug; rerun with --engine nautilus") as caught:
        check_front(home, run_row, base, front())
    message = str(caught.value)
    assert f"kernel and NautilusTrader disagree on Pareto-front point {row['id']}" in message
    assert f"total_fees {fees * (1 + 1e-6)!r} (kernel) vs {fees!r} (NautilusTrader)" in message
    with StateManager(home.db_path) as db:
        run = db.get("backtest_runs", run_row)
    assert (run["status"], run["error_message"]) == ("failed", message)
