"""Run a backtest end to end: state-database row, data, engine, bundle, results."""

from __future__ import annotations

from pathlib import Path

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.persist import Heartbeat, create_run, record_results, write_bundle
from vibe_quant.backtest.runner import BacktestResult, load_market_data, run_backtest, run_id_for, strategy_params
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager


def execute(
    home: Home, config: BacktestConfig, specs: InstrumentSpecs, run_row: int | None = None
) -> tuple[int, BacktestResult, Path]:
    """Create (or take) a ``backtest_runs`` row, run `config`, write the bundle and results.

    The row goes pending -> running (pid, heartbeat) -> completed, or failed with the error.
    Returns ``(run_row, result, bundle_path)``.
    """
    strategy_params(config)  # unknown strategy/parameters: refuse before any row exists
    home.ensure()
    with StateManager(home.db_path) as state:
        if run_row is None:
            run_row = create_run(state, config)
    with Heartbeat(home.db_path, run_row):
        data = load_market_data(home.catalog, config, specs)
        result = run_backtest(config, data, run_id_for(config, data))
        bundle = write_bundle(home, result, data.digest)
        with StateManager(home.db_path) as state:
            record_results(state, run_row, result, bundle)
    return run_row, result, bundle
