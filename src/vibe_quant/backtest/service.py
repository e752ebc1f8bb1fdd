"""Run a backtest end to end: state-database row, data, engine, bundle, results."""

from __future__ import annotations

from pathlib import Path

from vibe_quant.backtest.engine import BacktestResult, run_backtest
from vibe_quant.backtest.identity import run_id_for
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.persist import Heartbeat, create_run, record_results, write_bundle
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.progress import Progress
from vibe_quant.state import StateManager


def execute(home: Home, plan: RunPlan, specs: InstrumentSpecs, run_row: int | None = None,
            progress: Progress | None = None, ticks: bool = False) -> tuple[int, BacktestResult, Path]:  # fmt: skip
    """Create (or take) a ``backtest_runs`` row, run `plan`, write the bundle and results.

    The row goes pending -> running (pid, heartbeat) -> completed, or failed with the error.
    With `ticks` the plan runs on the catalog's trade and quote ticks (``ticks.py``) instead of
    its bars. Returns ``(run_row, result, bundle_path)``.

    Raises
    ------
    UserError
        No data for a symbol in the period (with the ingest command), or (`ticks`) an inverse contract.
    """
    home.ensure()
    with StateManager(home.db_path) as state:
        if run_row is None:
            run_row = create_run(state, plan.config)
    with Heartbeat(home.db_path, run_row):
        if ticks:
            from vibe_quant.backtest.ticks import load_tick_data, run_tick_backtest

            data = load_tick_data(home.catalog, plan, specs)
            result = run_tick_backtest(plan, data, run_id_for(plan, data), progress=progress)
        else:
            data = load_market_data(home.catalog, plan, specs)
            result = run_backtest(plan, data, run_id_for(plan, data), progress=progress)
        bundle = write_bundle(home, result, data.digest)
        with StateManager(home.db_path) as state:
            record_results(state, run_row, result, bundle)
    return run_row, result, bundle
