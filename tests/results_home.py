"""A data home holding stored results, built once per test session from real data (read only).

August 2023 FILUSDT and NEARUSDT klines; one validation backtest of the portfolio strategy
``ema_cross_basket`` on both (row ``backtest``); one at 2x equity under a 15% drawdown halt (row
``guarded``, its breaker trips in events.jsonl); a 12-point screening sweep of ``ema_cross`` on
FILUSDT 15m (row ``sweep``) judged by DSR and PBO, then by a walk-forward analysis whose survivors are validated (the stored
report: funnel, windows, validation runs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from vibe_quant.home import Home


@dataclass(frozen=True)
class ResultsHome:
    home: Home
    backtest: int  # backtest_runs.id of the portfolio backtest
    guarded: int  # backtest_runs.id of the backtest under a 15% drawdown halt (it trips)
    sweep: int  # backtest_runs.id of the screening sweep


def build_results_home(root: Path) -> ResultsHome:
    from tests.conftest import MIRROR
    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.validate import write_artifacts
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.overfitting.config import PBO, OverfittingConfig, PurgedKFold, WalkForward
    from vibe_quant.overfitting.pipeline import run_overfitting
    from vibe_quant.risk.config import PortfolioRiskConfig, RiskConfig, StrategyRiskConfig
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening
    from vibe_quant.state import StateManager

    home = Home(root).ensure()
    specs = InstrumentSpecs()
    request = IngestRequest(str(MIRROR), ("FILUSDT", "NEARUSDT"), ("klines",), dt.date(2023, 8, 1), dt.date(2023, 9, 1))
    run_ingest(home, request, specs)
    with StateManager(home.db_path) as db:
        write_artifacts(home, db)
    base = BacktestConfig(strategy="ema_cross_basket", symbols=("FILUSDT", "NEARUSDT"), timeframe="15m",
                          start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 31), mode="validation", latency="retail",
                          leverage=5)  # fmt: skip
    backtest, _, _ = execute(home, plan_run(base), specs)
    halt_only = RiskConfig(  # only the 15% drawdown halt: it trips in August 2023 at 2x equity
        strategy_level=StrategyRiskConfig(max_drawdown_scale_pct=None, max_daily_loss_pct=None,
                                          max_consecutive_losses=None),
        portfolio_level=PortfolioRiskConfig(max_portfolio_drawdown_pct=None, max_portfolio_daily_loss_pct=None,
                                            max_total_exposure_pct=None, max_correlated_exposure_pct=None),
    )  # fmt: skip
    guarded_cfg = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="5m", start=dt.date(2023, 8, 1),
                                 end=dt.date(2023, 8, 31), mode="validation", latency="retail",
                                 params={"fast": 20, "slow": 100, "exposure": 2.0},
                                 risk=halt_only)  # fmt: skip
    guarded, _, _ = execute(home, plan_run(guarded_cfg), specs)
    sweep_base = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="15m", start=dt.date(2023, 8, 1),
                                end=dt.date(2023, 8, 31), mode="screening", leverage=5)  # fmt: skip
    spec = SweepSpec(overrides={"fast": [5, 10, 20], "slow": [40, 80, 120, 160]},
                     filters=HardFilters(min_trades=5, max_drawdown=0.9, min_profit_factor=0.0))  # fmt: skip
    with StateManager(home.db_path) as db:
        sweep = create_screening_run(db, sweep_base, spec)
    run_screening(home, sweep, workers=1)
    config = OverfittingConfig(walk_forward=WalkForward(train_window_days=14, test_window_days=7, step_days=7,
                                                        min_windows=2), purged_kfold=PurgedKFold(n_splits=3),
                              pbo=PBO(n_splits=6))  # fmt: skip
    run_overfitting(home, sweep, config, ["dsr", "pbo"], 1, None, "all")
    run_overfitting(home, sweep, config, ["wfa"], 1, None, "all", validate=True)  # the report kept: funnel, windows
    return ResultsHome(home, backtest, guarded, sweep)
