"""The DOLPHIN engine inside screening and the overfitting filters: swept parameters, stored daily returns,
DSR / walk-forward / PBO and the consistency check, on real 1h scan tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import linked_home
from vibe_quant.dolphin.backtest import run_dolphin
from vibe_quant.dolphin.engine_config import engine_config
from vibe_quant.home import Home
from vibe_quant.screening.pipeline import returns_from_blob
from vibe_quant.state import StateManager

OVERFITTING = """overfitting:
  deflated_sharpe: {confidence_threshold: 0.01}
  walk_forward: {train_window_days: 21, test_window_days: 7, step_days: 7, min_windows: 3, min_efficiency: -100.0,
                 min_profitable_windows_pct: 0.0}
  pbo: {n_splits: 8}
"""


def test_screen_then_overfit(cli, tmp_path: Path, hourly_home: Home, champion_scans: Path) -> None:
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root)]
    code, text = cli([*base, "dolphin", "screen", "--scans", str(champion_scans), "--sweep", "fixed_tp_pct=0.006,0.015",
                      "--sweep", "vel_div_threshold=-0.01,-0.02", "--min-trades", "1", "--max-dd", "0.9",
                      "--min-pf", "0", "--workers", "1"])  # fmt: skip
    assert code == 0, text
    assert "4 points" in text
    assert "dolphin-array" in text
    with StateManager(home.db_path) as db:
        (run,) = db.find("backtest_runs", run_mode="screening")
        rows = db.find("sweep_results", run_id=run["id"])
    assert len(rows) == 4
    assert all(r["error_message"] is None for r in rows)
    # each point is the engine's own run with those parameters: same metrics, one return per day
    row = next(r for r in rows if r["parameters"] == {"fixed_tp_pct": 0.015, "vel_div_threshold": -0.01})
    direct = run_dolphin(champion_scans, engine_config(fixed_tp_pct=0.015, vel_div_threshold=-0.01))
    assert row["total_trades"] == direct.metrics["total_trades"]
    assert row["sharpe_ratio"] == pytest.approx(direct.metrics["sharpe_ratio"], abs=1e-12)
    assert np.array_equal(returns_from_blob(row["daily_returns"]), direct.returns)
    assert len(direct.returns) == 57
    config = tmp_path / "of.yaml"
    config.write_text(OVERFITTING)
    code, text = cli([*base, "overfit", "run", "--run-id", str(run["id"]), "--config", str(config),
                      "--filters", "dsr,wfa,pbo", "--candidates", "all", "--workers", "1", "--validate"])  # fmt: skip
    assert code == 0, text
    assert "walk-forward optimisation over 5 windows" in text
    assert "PBO" in text
    with StateManager(home.db_path) as db:
        rows = db.find("sweep_results", run_id=run["id"])
    assert all(r["passed_deflated_sharpe"] is not None for r in rows)
    assert any(r["walk_forward_efficiency"] is not None for r in rows)


def test_screen_refusals(cli, tmp_path: Path, hourly_home: Home, champion_scans: Path) -> None:
    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root), "dolphin", "screen", "--scans", str(champion_scans)]
    code, text = cli([*base, "--sweep", "fixed_tp=0.01,0.02"])
    assert code != 0
    assert "fixed_tp" in text
    assert "fixed_tp_pct" in text
    code, text = cli([*base, "--start", str(dt.date(2025, 1, 1))])
    assert code != 0
    assert "2025-12-31..2026-02-25" in text
    code, text = cli([*base, "--profile", "lucky"])
    assert code != 0
    assert "--profile 'lucky'" in text
    assert not home.db_path.exists() or not StateManager(home.db_path).find("backtest_runs")
