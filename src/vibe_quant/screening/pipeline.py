"""The screening pipeline: grid -> parallel backtests -> hard filters -> Pareto front -> SQLite.

A screening run is one ``backtest_runs`` row (``run_mode='screening'``) whose ``parameters``
hold the base backtest config (the DSL document included) and whose ``sweep_spec`` holds the
grid definition. Each finished point is written at once as a ``sweep_results`` row keyed by a
hash of its parameters, so a crashed or cancelled run resumes where it stopped
(:func:`run_screening` on the same row skips finished points). Filters and the front are
computed over every row of the run when all points are in.

Points run on the compiled perp kernel (``engine="sim"``, the default) where it can run the
strategy, else on NautilusTrader; after the front is marked, every front point the kernel may have
run is re-run on NautilusTrader and must give the same metrics (docs/specs.md#where-the-kernel-runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from vibe_quant.backtest.config import BacktestConfig, parse_config
from vibe_quant.backtest.persist import Heartbeat, clean, create_run, now_iso
from vibe_quant.batch.executors import EXECUTORS, run_points
from vibe_quant.batch.worker import WorkerSpec
from vibe_quant.errors import ConfigError, UserError
from vibe_quant.home import Home
from vibe_quant.screening.check import check_front
from vibe_quant.screening.pareto import HardFilters, objective_matrix, pareto_mask, rejection
from vibe_quant.sim import ENGINES, refusal
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

DEFAULT_MAX_POINTS = 500
STALE_HEARTBEAT_S = 60


class SweepSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The grid of a screening run (stored in ``backtest_runs.sweep_spec``)."""

    overrides: dict[str, list[int | float | str | bool]] = {}  # replace or add sweep axes
    constraints: list[str] = []  # in addition to the document's sweep_constraints
    max_points: int = DEFAULT_MAX_POINTS  # larger grids are sampled (0: run every point)
    sample_seed: int = 0
    filters: HardFilters = HardFilters()

    def __post_init__(self) -> None:
        if self.max_points < 0:
            raise ConfigError(f"max_points must be >= 0 (0: every point), got {self.max_points}")


@dataclass
class Grid:
    points: list[dict]  # what the run screens (after constraints, maybe sampled)
    total: int  # cartesian size
    skipped: Counter  # reason -> count (constraints, rejected parameters)
    sampled_from: int | None = None  # valid points before sampling


@dataclass
class ScreeningSummary:
    run_row: int
    grid: Grid
    ran: int  # points run by this call
    resumed: int  # points already finished before this call
    errors: int
    front: list[dict]  # sweep_results rows on the Pareto front, best Sharpe first
    passed: int  # rows passing the hard filters
    elapsed_s: float
    peak_rss_mb: float
    warnings: list[str] = field(default_factory=list)
    status: str = "completed"
    replay: str = "active"
    bars: int = 0  # execution bars of the points this call ran, summed
    bars_replayed: int = 0  # of those, the bars the engine replayed (active replay skips idle bars)
    engine: str = "sim"  # the engine asked for: sim (the perp kernel where it can run) or nautilus
    engines: dict[str, int] = field(default_factory=dict)  # engine that ran them -> points this call ran
    front_checked: int = 0  # front points re-run on NautilusTrader with identical metrics

    @property
    def points_per_minute(self) -> float:
        return self.ran / self.elapsed_s * 60 if self.elapsed_s > 0 else 0.0


class Cancelled(UserError):
    """The user stopped the run (Ctrl-C or SIGTERM); finished points are kept."""

    exit_code = 130


def point_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def build_grid(base: BacktestConfig, spec: SweepSpec) -> Grid:
    """Expand the strategy's grid with `spec`'s overrides and constraints; sample if too large.

    A DSL strategy's grid is its ``sweep:`` with the overrides replacing or adding axes; a Python
    strategy's is the overrides alone (its parameters' defaults otherwise).

    Raises
    ------
    ConfigError
        An unknown sweep key, a malformed constraint, or no valid point.
    """
    from vibe_quant.strategy.registry import strategy_kind

    expansion = strategy_kind(base.kind).expand(base.strategy_spec(), spec.overrides, spec.constraints)
    if not expansion.points:
        reasons = "; ".join(f"{n} x {r}" for r, n in expansion.skipped.most_common(3))
        raise ConfigError(f"{base.strategy}: no valid grid point out of {expansion.total} ({reasons})")
    grid = Grid(expansion.points, expansion.total, expansion.skipped)
    if spec.max_points and len(grid.points) > spec.max_points:
        rng = random.Random(spec.sample_seed)  # noqa: S311 (a reproducible sample, not crypto)
        keep = sorted(rng.sample(range(len(grid.points)), spec.max_points))
        grid.sampled_from = len(grid.points)
        grid.points = [grid.points[i] for i in keep]
    return grid


def create_screening_run(state: StateManager, base: BacktestConfig, spec: SweepSpec) -> int:
    """Check the strategy and the grid, then insert a pending screening run; return its ``backtest_runs`` id."""
    from vibe_quant.backtest.plan import plan_run

    base = msgspec.structs.replace(base, mode="screening", params={})
    plan_run(base)  # refuse an unknown strategy or a bad config before any row exists
    build_grid(base, spec)
    run_row = create_run(state, base)
    state.update("backtest_runs", run_row, {"sweep_spec": msgspec.to_builtins(spec)})
    return run_row


def load_screening_run(state: StateManager, run_row: int) -> tuple[BacktestConfig, SweepSpec, dict]:
    row = state.get("backtest_runs", run_row)
    if row is None:
        raise UserError(f"no backtest run {run_row} in the state database")
    if row["run_mode"] != "screening" or row.get("sweep_spec") is None:
        raise UserError(f"backtest run {run_row} is a {row['run_mode']} run, not a screening run")
    return parse_config(row["parameters"]), msgspec.convert(row["sweep_spec"], SweepSpec), row


def _refuse_if_live(row: dict) -> None:
    if row["status"] != "running" or not row.get("heartbeat_at"):
        return
    age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(row["heartbeat_at"])).total_seconds()
    alive = row.get("pid") is not None and _pid_alive(row["pid"])
    if age < STALE_HEARTBEAT_S and alive:
        raise UserError(
            f"screening run {row['id']} is running (pid {row['pid']}, heartbeat {age:.0f}s ago); "
            f"stop it first (kill {row['pid']}) or wait"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return pid != os.getpid()


def check_engine(engine: str) -> None:
    """Refuse an ``--engine`` value other than ``sim`` or ``nautilus``.

    Raises
    ------
    UserError
        Naming ``--engine``, the value and the choices.
    """
    if engine not in ENGINES:
        raise UserError(f"--engine {engine!r}: choose sim (the compiled perp kernel, NautilusTrader where it cannot "
                        "run the strategy) or nautilus (NautilusTrader for every point)")  # fmt: skip


def check_run_options(workers: int, executor: str = "process", replay: str = "active", engine: str = "sim") -> None:
    """Refuse bad ``--workers``/``--executor``/``--replay``/``--engine`` values (before any row is written).

    Raises
    ------
    UserError
        Naming the option, the value and the choices.
    """
    check_engine(engine)
    if executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if replay not in ("active", "full"):
        raise UserError(f"--replay {replay!r}: choose active (only the bars that matter) or full (every bar)")


def run_screening(
    home: Home, run_row: int, workers: int, specs_path: str | None = None, executor: str = "process",
    address: str | None = None, reuse_engine: bool = True, on_progress: Callable[[int, int, dict], None] | None = None,
    replay: str = "active", engine: str = "sim",
) -> ScreeningSummary:  # fmt: skip
    """Run (or resume) screening run `run_row` and return its summary.

    `replay` (``active`` or ``full``) only changes speed, never results: see
    :class:`~vibe_quant.backtest.engine.EngineSession`. `engine` (default ``sim``) runs the
    points on the compiled perp kernel where it can run the strategy (NautilusTrader otherwise,
    said in the warnings); ``nautilus`` runs every point on NautilusTrader.

    Finished points (rows already in ``sweep_results``) are not run again. Ctrl-C or SIGTERM
    stops the workers, keeps the finished points, marks the run ``cancelled`` and raises
    :class:`Cancelled`; run it again to resume.

    When the kernel can run the strategy and ran this call's points (or the run resumed points
    whose engine is not recorded), every Pareto-front point is re-run on NautilusTrader
    (:func:`~vibe_quant.screening.check.check_front`).

    Raises
    ------
    UserError
        A bad option, or no such screening run.
    Cancelled
        Ctrl-C or SIGTERM.
    EngineMismatch
        The kernel and NautilusTrader disagree on a front point (the run is marked ``failed``).
    """
    from vibe_quant.backtest.plan import plan_run

    check_run_options(workers, executor, replay, engine)
    with StateManager(home.db_path) as state:
        base, spec, row = load_screening_run(state, run_row)
        _refuse_if_live(row)
        done = {r["point_key"] for r in state.find("sweep_results", run_id=run_row)}
    grid = build_grid(base, spec)
    todo = [(i, p) for i, p in enumerate(grid.points) if point_key(p) not in done]
    resumed = len(grid.points) - len(todo)
    worker_spec = WorkerSpec(str(home.root), specs_path, msgspec.to_builtins(base), reuse_engine, replay, engine)
    # A resumed point's engine is not recorded: check the front whenever the kernel may have run a point.
    checking = (engine == "sim" or resumed > 0) and refusal(plan_run(base)) is None
    engines: Counter = Counter()
    checked = 0
    warnings: list[str] = []
    errors = 0
    peak = 0.0
    bars = replayed = 0
    t0 = time.perf_counter()
    status = "completed"
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with Heartbeat(home.db_path, run_row), StateManager(home.db_path) as state:
            try:
                for n, result in enumerate(run_points(todo, worker_spec, workers, executor, address), 1):
                    _store_point(state, run_row, result)
                    errors += result["error"] is not None
                    peak = max(peak, result["rss_mb"])
                    bars += result.get("bars", 0)
                    replayed += result.get("bars_replayed", 0)
                    if result.get("engine"):
                        engines[result["engine"]] += 1
                    warnings.extend(w for w in result["warnings"] if w not in warnings)
                    if on_progress is not None:
                        on_progress(resumed + n, len(grid.points), result)
            except KeyboardInterrupt:
                status = "cancelled"
            if status == "completed":
                front, passed = finalize(state, run_row, spec.filters)
                try:
                    checked = check_front(home, run_row, base, front, specs_path) if checking else 0
                except KeyboardInterrupt:
                    status = "cancelled"
    finally:
        signal.signal(signal.SIGTERM, previous)
    elapsed = time.perf_counter() - t0
    with StateManager(home.db_path) as state:
        finished = state.count("sweep_results", run_id=run_row)
        if status == "cancelled":
            state.update("backtest_runs", run_row, {"status": "cancelled", "completed_at": now_iso(),
                                                    "error_message": f"cancelled after {finished} of {len(grid.points)} points"})  # fmt: skip
            raise Cancelled(
                f"screening run {run_row} cancelled: {finished} of {len(grid.points)} points are stored; "
                f"resume with `vq screen run --resume {run_row}`"
            )
        state.update("backtest_runs", run_row, {"status": "completed", "completed_at": now_iso()})
    summary = ScreeningSummary(run_row, grid, len(todo), resumed, errors, front, passed, elapsed, peak, warnings,
                               replay=replay, bars=bars, bars_replayed=replayed, engine=engine, engines=dict(engines),
                               front_checked=checked)  # fmt: skip
    write_report(home, summary, base, spec)
    return summary


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


SWEEP_METRIC_COLUMNS = ("sharpe_ratio", "sortino_ratio", "max_drawdown", "total_return", "profit_factor", "win_rate",
                        "total_trades", "total_fees", "total_funding")  # fmt: skip


def _store_point(state: StateManager, run_row: int, result: dict) -> None:
    m = result["metrics"] or {}
    values = {k: m.get(k) for k in SWEEP_METRIC_COLUMNS}
    state.insert("sweep_results", {
        "run_id": run_row, "parameters": result["params"], "point_key": point_key(result["params"]), **values,
        "metrics": {k: clean(v) for k, v in m.items()} if result["metrics"] is not None else None,
        "execution_time_seconds": result["elapsed_s"], "error_message": result["error"], "created_at": now_iso(),
        "daily_returns": returns_blob(result.get("returns")),
    })  # fmt: skip


def returns_blob(returns) -> bytes | None:
    """Daily returns as stored in ``sweep_results.daily_returns`` (float64 little-endian)."""
    return None if returns is None else np.asarray(returns, dtype="<f8").tobytes()


def returns_from_blob(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f8").copy()


def finalize(state: StateManager, run_row: int, filters: HardFilters) -> tuple[list[dict], int]:
    """Apply the hard filters and mark the Pareto front over every point of the run.

    Returns the front rows (best Sharpe first) and the number of rows passing the filters.
    """
    rows = state.find("sweep_results", run_id=run_row)
    reasons = [(row["error_message"] and "error") or rejection(row, filters) for row in rows]
    passing = [row for row, why in zip(rows, reasons, strict=True) if why is None]
    on_front = pareto_mask(objective_matrix(passing)) if passing else []
    front_ids = {row["id"] for row, on in zip(passing, on_front, strict=True) if on}
    with state.transaction():
        for row, why in zip(rows, reasons, strict=True):
            state.update("sweep_results", row["id"], {"passed_hard_filters": why is None, "rejected_by": why,
                                                      "is_pareto_optimal": row["id"] in front_ids})  # fmt: skip
    front = [dict(row, is_pareto_optimal=True) for row in passing if row["id"] in front_ids]
    front.sort(key=lambda r: -(r["sharpe_ratio"] if r["sharpe_ratio"] is not None else -1e9))
    return front, len(passing)


def ranked(state: StateManager, run_row: int) -> list[dict]:
    """Rows passing the hard filters: the Pareto front first, then the rest, each by Sharpe (best first)."""
    rows = [r for r in state.find("sweep_results", run_id=run_row) if r["passed_hard_filters"]]
    return sorted(rows, key=lambda r: (not r["is_pareto_optimal"], -(r["sharpe_ratio"] or 0.0)))


def write_report(home: Home, summary: ScreeningSummary, base: BacktestConfig, spec: SweepSpec) -> Path:
    """Write ``runs/screening-<run>/summary.json`` (grid, funnel, front) and return it."""
    out = home.runs / f"screening-{summary.run_row}"
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "run_row": summary.run_row, "strategy": base.strategy, "symbols": list(base.symbols),
        "timeframe": base.timeframe, "start": base.start.isoformat(), "end": base.end.isoformat(),
        "sweep_spec": msgspec.to_builtins(spec),
        "grid": {"cartesian": summary.grid.total, "skipped": dict(summary.grid.skipped),
                 "sampled_from": summary.grid.sampled_from, "points": len(summary.grid.points)},
        "ran": summary.ran, "resumed": summary.resumed, "errors": summary.errors, "passed_filters": summary.passed,
        "front_size": len(summary.front), "elapsed_s": summary.elapsed_s, "points_per_minute": summary.points_per_minute,
        "peak_worker_rss_mb": summary.peak_rss_mb, "warnings": summary.warnings,
        "replay": summary.replay, "bars": summary.bars, "bars_replayed": summary.bars_replayed,
        "engine": summary.engine, "engines": summary.engines, "front_checked": summary.front_checked,
        "front": [{"sweep_result_id": r["id"], "parameters": r["parameters"], "metrics": r["metrics"]} for r in summary.front],
    }  # fmt: skip
    path = out / "summary.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=clean) + "\n")
    tmp.replace(path)
    return path
