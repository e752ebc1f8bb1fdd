"""Stored results, read back: a backtest's bundle and rows, a screening sweep's points and verdicts.

Readers only: the reports and the dashboard draw from these and never recompute a backtest.
"""

from vibe_quant.results.figures import run_figures, sweep_figures
from vibe_quant.results.load import RunResults, SweepResults, find_run, load_run, load_sweep, sweep_points

__all__ = [
    "RunResults",
    "SweepResults",
    "find_run",
    "load_run",
    "load_sweep",
    "run_figures",
    "sweep_figures",
    "sweep_points",
]
