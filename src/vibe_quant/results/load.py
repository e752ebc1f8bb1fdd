"""Load a finished backtest or a screening sweep from the state database and ``runs/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from vibe_quant.backtest.persist import load_summary
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.state import StateManager

# sweep_results columns a results view needs (the daily-returns blob stays in the database)
POINT_COLUMNS = (
    "id", "parameters", "sharpe_ratio", "sortino_ratio", "max_drawdown", "total_return", "profit_factor", "win_rate",
    "total_trades", "total_fees", "total_funding", "execution_time_seconds", "is_pareto_optimal",
    "passed_hard_filters", "rejected_by", "error_message", "passed_deflated_sharpe", "passed_purged_kfold",
    "passed_cpcv", "passed_pbo", "passed_walk_forward", "overfitting_passed", "deflated_sharpe",
    "walk_forward_efficiency", "purged_kfold_mean_sharpe", "execution_sensitive", "validation_run_id", "overfitting",
)  # fmt: skip


@dataclass
class RunResults:
    """One finished backtest: its ``backtest_runs`` row, bundle directory and the bundle's tables."""

    row: dict
    summary: dict
    bundle: Path
    equity: pd.DataFrame  # ts (ns), equity, drawdown (fraction), exposure and margin when recorded
    trades: pd.DataFrame  # trades.csv: one row per trade with fees, funding, slippage, exit reason
    funding: pd.DataFrame

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]

    @property
    def metrics(self) -> dict:
        return self.summary["metrics"]

    @property
    def costs(self) -> dict:
        return self.summary["costs"]

    @property
    def config(self) -> dict:
        return self.summary["config"]

    def text(self, name: str) -> str:
        """A bundle file as text ('' when absent): config_resolved.yaml, manifest_ref.json."""
        path = self.bundle / name
        return path.read_text(encoding="utf-8") if path.is_file() else ""


@dataclass
class SweepResults:
    """One screening sweep: its run row, every evaluated point and the overfitting report."""

    row: dict
    points: pd.DataFrame
    overfitting: dict | None  # the last overfitting run's report (funnel, run-level figures), if any
    summary: dict | None  # runs/screening-<id>/summary.json

    @property
    def run_row(self) -> int:
        return int(self.row["id"])

    @property
    def strategy(self) -> str:
        return self.row["parameters"].get("strategy", "?")


def find_run(home: Home, run: str) -> dict:
    """The ``backtest_runs`` row named by `run`: a row id, a run id hash, or ``screening-<id>``.

    Raises
    ------
    UserError
        No state database, or no such run.
    """
    if not home.db_path.exists():
        raise UserError(f"no state database in {home.root}: nothing has run there yet (vq demo, vq backtest run)")
    key = run.strip()
    if key.startswith("screening-"):
        key = key.removeprefix("screening-")
    with StateManager(home.db_path) as state:
        rows = state.find("backtest_runs", id=int(key)) if key.isdigit() else state.find("backtest_runs", run_hash=key)
    if not rows:
        raise UserError(f"no run {run!r} in {home.db_path}: give a row id or run id from `vq backtest list` "
                        "or `vq screen list`")  # fmt: skip
    return rows[-1]


def load_run(home: Home, run: str) -> RunResults:
    """A finished backtest by row id or run id hash, read from its bundle.

    Raises
    ------
    UserError
        No such run, not finished, a screening sweep, or its bundle is gone or unreadable.
    """
    row, summary = load_summary(home, run)
    bundle = Path(row["bundle_path"])
    try:
        equity = pq.read_table(bundle / "equity.parquet").to_pandas()
        trades = pd.read_csv(bundle / "trades.csv")
        funding = pd.read_csv(bundle / "funding.csv")
    except (OSError, ValueError) as exc:
        raise UserError(f"run {row['id']}: its bundle {bundle} cannot be read ({exc}). Fix: run the same backtest "
                        f"again to rewrite it (run id {row['run_hash']})") from exc  # fmt: skip
    return RunResults(row=row, summary=summary, bundle=bundle, equity=equity, trades=trades, funding=funding)


def sweep_points(state: StateManager, run_row: int) -> pd.DataFrame:
    """Every sweep point of run `run_row` (one row per point, parameters and overfitting as dicts)."""
    cur = state.conn.execute(f"SELECT {', '.join(POINT_COLUMNS)} FROM sweep_results WHERE run_id = ? ORDER BY id",
                             (run_row,))  # fmt: skip
    frame = pd.DataFrame.from_records(cur.fetchall(), columns=list(POINT_COLUMNS))
    for column in ("parameters", "overfitting"):
        frame[column] = [json.loads(v) if isinstance(v, str) else v for v in frame[column]]
    return frame


def load_sweep(home: Home, run: str) -> SweepResults:
    """A screening sweep by row id (or ``screening-<id>``) with its points and overfitting report.

    Raises
    ------
    UserError
        No such run, or it is a single backtest rather than a sweep.
    """
    row = find_run(home, run)
    if row.get("sweep_spec") is None:
        raise UserError(f"run {row['id']} is a single backtest, not a screening sweep: vq report {row['id']} "
                        "writes its tearsheet")  # fmt: skip
    with StateManager(home.db_path) as state:
        points = sweep_points(state, int(row["id"]))
    summary_path = home.runs / f"screening-{row['id']}" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return SweepResults(row=row, points=points, overfitting=row.get("overfitting"), summary=summary)
