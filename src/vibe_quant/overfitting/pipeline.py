"""The overfitting pipeline: a screening run's candidates -> toggleable filters -> SQLite + report.

Reads the run's ``sweep_results`` (every point keeps its daily returns), applies the chosen
filters in order (a candidate eliminated by one is not tested by the next), writes each
filter's figures and verdict per point, the funnel and run-level figures on the run row, and a
markdown + JSON report in ``runs/screening-<id>/``. All outcomes are written in one transaction
at the end: a failed or cancelled pipeline leaves the previous outcomes untouched.

* DSR uses every trial the sweep ran (``n_trials``) and their Sharpe variance.
* WFA runs backtests (screening mode, the worker pool; on the perp kernel where it can run the
  strategy, else NautilusTrader: docs/specs.md#where-the-kernel-runs) of each candidate on each
  window, from train start to test end: the strategy runs continuously, the train period is the
  test period's indicator warm-up, and the test is scored on its own (docs/specs.md#walk-forward-loop).
* Purged K-fold and CPCV split the daily returns; purge and embargo are the strategy's longest
  indicator lookback (or the configured bars) rounded up to days.
* PBO (CSCV) and CPCV judge the selection across all trials: one verdict for every candidate.
* Consistency: the survivors are validated with full costs; a Sharpe that degrades by more than
  ``max_degradation`` flags the candidate "execution-sensitive".
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.persist import clean, now_iso
from vibe_quant.batch.executors import run_points
from vibe_quant.batch.worker import WorkerSpec
from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
from vibe_quant.data.files import NS_PER_MS
from vibe_quant.errors import ConfigError, UserError
from vibe_quant.home import Home
from vibe_quant.overfitting import filters as F
from vibe_quant.overfitting.config import SECTIONS, OverfittingConfig
from vibe_quant.overfitting.splits import walk_forward_windows
from vibe_quant.screening.pipeline import check_engine, load_screening_run, returns_blob, returns_from_blob
from vibe_quant.staging import write_atomic
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000
CANDIDATE_SETS = ("passed", "front", "all")
# Filter -> (sweep_results pass column, figure column, figure key)
COLUMNS = {
    "dsr": ("passed_deflated_sharpe", "deflated_sharpe", "dsr"),
    "wfa": ("passed_walk_forward", "walk_forward_efficiency", "efficiency"),
    "pkfold": ("passed_purged_kfold", "purged_kfold_mean_sharpe", "mean_oos_sharpe"),
    "cpcv": ("passed_cpcv", None, None),
    "pbo": ("passed_pbo", None, None),
}
LABELS = {"dsr": "DSR", "wfa": "WFA", "pkfold": "PKFold", "cpcv": "CPCV", "pbo": "PBO"}


@dataclass
class Candidate:
    row: dict
    returns: np.ndarray
    verdicts: dict[str, F.Verdict] = field(default_factory=dict)
    validation: dict | None = None

    @property
    def id(self) -> int:
        return self.row["id"]

    @property
    def alive(self) -> bool:
        return all(v.passed for v in self.verdicts.values())


@dataclass
class OverfittingReport:
    run_row: int
    strategy: str
    filters: list[str]
    n_trials: int
    candidates: list[Candidate]
    funnel: list[tuple[str, int]]  # ("in", n), ("DSR", n), ...
    run_level: dict[str, dict]  # pbo / cpcv figures, walk-forward selection
    elapsed_s: float
    report_md: Path | None = None
    report_json: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def survivors(self) -> list[Candidate]:
        return [c for c in self.candidates if c.alive]


def lookback_days(base: BacktestConfig, params_list: list[dict], purge_bars: int | str) -> int:
    """Days covering the purge: `purge_bars` primary bars, or ('auto') the longest indicator
    warm-up + history any candidate needs (its strategy kind says how long).

    Raises
    ------
    ConfigError
        ``auto`` for a strategy that does not say its lookback.
    """
    from vibe_quant.backtest.plan import plan_run

    tf = TIMEFRAME_BY_LABEL[base.timeframe]
    if purge_bars != "auto":
        return math.ceil(int(purge_bars) * tf.step_ms * NS_PER_MS / NS_PER_DAY)
    longest = 0
    for params in params_list or [{}]:
        bars = plan_run(msgspec.structs.replace(base, params=params)).strategy.lookback_bars
        if bars is None:
            raise ConfigError(
                f"purged_kfold.purge_bars: auto needs the lookback of strategy {base.strategy}, which does not give one; "
                "set purge_bars to a number of bars in the overfitting config"
            )
        longest = max(longest, bars)
    return math.ceil(longest * tf.step_ms * NS_PER_MS / NS_PER_DAY)


def _candidates(rows: list[dict], which: str) -> list[dict]:
    ok = [r for r in rows if r["error_message"] is None and r["metrics"] is not None]
    if which == "passed":
        return [r for r in ok if r["passed_hard_filters"]]
    if which == "front":
        return [r for r in ok if r["is_pareto_optimal"]]
    return ok


def _fill_missing_returns(home: Home, run_row: int, base: BacktestConfig, trials: list[dict], workers: int,
                          specs_path: str | None, on_progress, engine: str) -> None:  # fmt: skip
    """Points screened before daily returns were stored: run them again (same engine) and store them."""
    missing = [r for r in trials if r["daily_returns"] is None]
    if not missing:
        return
    log.info("screening run %s: %d points have no stored daily returns; re-running them", run_row, len(missing))
    spec = WorkerSpec(str(home.root), specs_path, msgspec.to_builtins(base), engine=engine)
    by_index = dict(enumerate(missing))
    with StateManager(home.db_path) as state:
        for n, result in enumerate(run_points([(k, r["parameters"]) for k, r in by_index.items()], spec, workers), 1):
            row = by_index[result["index"]]
            if result["error"] is not None:
                raise UserError(f"re-running point {row['parameters']} of run {run_row} failed: {result['error']}")
            row["daily_returns"] = returns_blob(result["returns"])
            state.update("sweep_results", row["id"], {"daily_returns": row["daily_returns"]})
            on_progress("returns", n, len(missing))


def wfa_windows(base: BacktestConfig, cfg) -> list:
    """The run's walk-forward windows; too few for `cfg.min_windows` is a configuration error."""
    windows = walk_forward_windows(base.start, base.end, cfg.train_window_days, cfg.test_window_days, cfg.step_days)
    days = (base.end - base.start).days + 1
    if len(windows) < cfg.min_windows:
        raise ConfigError(
            f"walk-forward: {days} days ({base.start}..{base.end}) give {len(windows)} window(s) of "
            f"{cfg.train_window_days}+{cfg.test_window_days} days stepping {cfg.step_days}, fewer than "
            f"min_windows {cfg.min_windows}; lower train_window_days/test_window_days/step_days or min_windows "
            "in the overfitting config, or screen a longer period"
        )
    return windows


def _walk_forward(home: Home, base: BacktestConfig, alive: list[Candidate], cfg, windows: list, workers: int,
                  specs_path: str | None, on_progress, engine: str) -> tuple[dict[int, F.Verdict], dict]:  # fmt: skip
    tasks, owner = [], {}
    for w in windows:  # window-major: each worker keeps one engine per window
        for c in alive:
            owner[len(tasks)] = (c.id, w.index)
            tasks.append((len(tasks), c.row["parameters"], (w.train_start.isoformat(), w.test_end.isoformat())))
    spec = WorkerSpec(str(home.root), specs_path, msgspec.to_builtins(base), engine=engine)
    results: dict[tuple[int, int], F.WindowResult] = {}
    errors: dict[int, str] = {}
    for n, result in enumerate(run_points(tasks, spec, workers), 1):
        cid, wi = owner[result["index"]]
        if result["error"] is not None:
            errors.setdefault(cid, f"window {wi}: {result['error']}")
        else:
            results[(cid, wi)] = F.WindowResult(np.asarray(result["returns"]), windows[wi].train_days)
        on_progress("wfa", n, len(tasks))
    verdicts, per_candidate = {}, {}
    for c in alive:
        if c.id in errors:
            verdicts[c.id] = F.Verdict(False, f"walk-forward run failed: {errors[c.id]}")
            continue
        per_candidate[c.id] = [results[(c.id, w.index)] for w in windows]
        verdicts[c.id] = F.walk_forward_filter(per_candidate[c.id], cfg)
    selection = F.walk_forward_selection(per_candidate) if per_candidate else {}
    selection["windows"] = [
        {"train": [w.train_start.isoformat(), w.train_end.isoformat()], "test": [w.test_start.isoformat(), w.test_end.isoformat()]}
        for w in windows
    ]  # fmt: skip
    return verdicts, selection


@dataclass(frozen=True)
class OverfittingRequest:
    """A checked request: the screening run's base config, row, finished trials, candidates and
    walk-forward windows."""

    base: BacktestConfig
    row: dict
    trials: list[dict]
    candidates: list[dict]
    windows: list


def load_request(home: Home, run_row: int, config: OverfittingConfig, filters: list[str],
                 candidates: str = "passed") -> OverfittingRequest:  # fmt: skip
    """Load screening run `run_row` and check the request before anything is written.

    Raises
    ------
    UserError
        No state database or no such screening run, a run not completed or with fewer than 2
        finished points, an unknown candidate set, or a walk-forward configuration with too few
        windows.
    """
    home.require_state(
        f"no screening run {run_row} to filter; screen first (vq screen run --strategy ... --symbols ...)"
    )
    if candidates not in CANDIDATE_SETS:
        raise UserError(f"--candidates {candidates!r}: choose one of {', '.join(CANDIDATE_SETS)}")
    with StateManager(home.db_path) as state:
        base, _spec, row = load_screening_run(state, run_row)
        rows = state.find("sweep_results", run_id=run_row)
    if row["status"] != "completed":
        raise UserError(
            f"screening run {run_row} is {row['status']}; finish it first (vq screen run --resume {run_row})"
        )
    trials = [r for r in rows if r["error_message"] is None and r["metrics"] is not None]
    if len(trials) < 2:
        raise UserError(
            f"screening run {run_row} has {len(trials)} finished point(s); the filters need at least 2 trials"
        )
    windows = wfa_windows(base, config.walk_forward) if "wfa" in filters else []
    return OverfittingRequest(base, row, trials, _candidates(trials, candidates), windows)


def run_overfitting(
    home: Home, run_row: int, config: OverfittingConfig, filters: list[str], workers: int = 2,
    specs_path: str | None = None, candidates: str = "passed", validate: bool | None = None,
    on_progress: Callable[[str, int, int], None] | None = None, engine: str = "sim",
) -> OverfittingReport:  # fmt: skip
    """Apply `filters` (in order) to screening run `run_row`'s candidates; store and report.

    `on_progress(stage, done, total)` is called for every stage the pipeline will run as soon as
    the request is checked (``done`` 0; ``total`` the most work it can take), then as the stage
    advances, ending with ``done == total``. Stages: ``returns`` (re-running points screened
    without stored daily returns; only when some are missing), each of `filters` (``dsr``,
    ``pkfold``: one step per candidate still alive; ``pbo``, ``cpcv``: one step; ``wfa``: one
    backtest per candidate and window), and ``validate`` (one validation backtest per survivor;
    only when validating).

    `engine` (default ``sim``) is where the re-run and walk-forward backtests run: the perp kernel
    where it can run the strategy, else NautilusTrader; ``nautilus``: NautilusTrader for all. The
    validation backtests always run on NautilusTrader (full costs).

    Raises
    ------
    UserError
        As :func:`load_request`; a PBO/CPCV configuration the run's days cannot satisfy; an
        `engine` other than ``sim`` or ``nautilus``.
    """
    check_engine(engine)
    t0 = time.perf_counter()
    request = load_request(home, run_row, config, filters, candidates)
    base, trials = request.base, request.trials
    validating = validate if validate is not None else config.consistency.enabled
    progress = on_progress or (lambda stage, done, total: None)
    missing = sum(r["daily_returns"] is None for r in trials)
    if missing:
        progress("returns", 0, missing)
    n_cands = len(request.candidates)
    for name in filters:  # the most work each stage can take (fewer candidates may reach it)
        steps = {"wfa": n_cands * len(request.windows), "pbo": 1, "cpcv": 1}.get(name, n_cands)
        progress(name, 0, steps)
    if validating:
        progress("validate", 0, n_cands)
    _fill_missing_returns(home, run_row, base, trials, workers, specs_path, progress, engine)
    returns = {r["id"]: returns_from_blob(r["daily_returns"]) for r in trials}
    cands = [Candidate(r, returns[r["id"]]) for r in request.candidates]
    ids = [r["id"] for r in trials]
    matrix = np.column_stack([returns[i] for i in ids])
    windows = request.windows
    purge = embargo = 0
    if {"pkfold", "cpcv"} & set(filters):
        purge = lookback_days(base, [c.row["parameters"] for c in cands] or [trials[0]["parameters"]],
                              config.purged_kfold.purge_bars)  # fmt: skip
        embargo = lookback_days(base, [], config.purged_kfold.embargo_bars)
    run_verdicts = {}  # run-level filters: computed first (cheap; a bad block count fails before any backtest)
    for name in ("pbo", "cpcv"):
        if name in filters:
            try:
                run_verdicts[name] = (F.pbo_filter(matrix, config.pbo) if name == "pbo"
                                      else F.cpcv_filter(matrix, config.cpcv, purge, embargo, ids))  # fmt: skip
            except ValueError as exc:  # too few days for the blocks asked for
                raise ConfigError(f"{LABELS[name]}: {exc} (overfitting.{SECTIONS[name]} in the config)") from None
    run_level: dict[str, dict] = {}
    funnel = [("in", len(cands))]
    trial_sharpes = F.TrialSharpes.of([returns[i] for i in ids])
    for name in filters:
        alive = [c for c in cands if c.alive]
        if name in ("dsr", "pkfold"):
            progress(name, 0, len(alive))
            for n, c in enumerate(alive, 1):
                c.verdicts[name] = (F.deflated_sharpe(c.returns, trial_sharpes, config.deflated_sharpe) if name == "dsr"
                                    else F.purged_kfold_filter(c.returns, config.purged_kfold, purge, embargo))  # fmt: skip
                progress(name, n, len(alive))
        elif name == "wfa":
            progress(name, 0, len(alive) * len(windows))
            if alive:
                verdicts, run_level["wfa"] = _walk_forward(home, base, alive, config.walk_forward, windows, workers,
                                                           specs_path, progress, engine)  # fmt: skip
                for c in alive:
                    c.verdicts[name] = verdicts[c.id]
        elif name in run_verdicts:
            run_level[name] = run_verdicts[name].figures
            for c in alive:
                c.verdicts[name] = run_verdicts[name]
            progress(name, 1, 1)
        funnel.append((LABELS[name], sum(c.alive for c in cands)))
    report = OverfittingReport(run_row, base.strategy, filters, len(trials), cands, funnel, run_level,
                               time.perf_counter() - t0)  # fmt: skip
    if validating:
        progress("validate", 0, len(report.survivors))
        _validate_survivors(home, base, report, config, specs_path, progress)
    _store(home, report, config)
    report.elapsed_s = time.perf_counter() - t0
    write_reports(home, report, config)
    return report


def _validate_survivors(home: Home, base: BacktestConfig, report: OverfittingReport, config: OverfittingConfig,
                        specs_path: str | None, on_progress) -> None:  # fmt: skip
    """Run each survivor in validation mode (full costs) and flag the execution-sensitive ones."""
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs(specs_path)
    survivors = report.survivors
    for n, c in enumerate(survivors, 1):  # each run's funding warnings are collected into the report
        _validate_one(home, base, c, config, specs, report)
        on_progress("validate", n, len(survivors))


def _validate_one(home: Home, base: BacktestConfig, c: Candidate, config: OverfittingConfig, specs, report) -> None:
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute

    cfg = msgspec.structs.replace(base, mode="validation", latency=None, latency_ns=None, prob_fill_on_limit=None,
                                  prob_slippage=None, params=c.row["parameters"])  # fmt: skip
    plan = plan_run(cfg)
    make_runner = getattr(plan.strategy, "runner", None)
    if make_runner is not None:  # a kind with an engine of its own validates there, with full costs
        done = make_runner(home.root).run(plan, validation=True)
        run_row, metrics, warnings = None, done["metrics"], done["warnings"]
    else:
        run_row, result, _bundle = execute(home, plan, specs)
        metrics, warnings = result.metrics, result.warnings
    report.warnings.extend(w for w in warnings if w not in report.warnings)
    screen_sr, valid_sr = c.row["sharpe_ratio"], metrics.get("sharpe_ratio")
    degradation, sensitive = F.execution_degradation(screen_sr, valid_sr, config.consistency.max_degradation)
    c.validation = {"run_id": run_row, "screening_sharpe": screen_sr, "validation_sharpe": valid_sr,
                    "screening_return": c.row["total_return"], "validation_return": metrics.get("total_return"),
                    "sharpe_degradation": degradation, "execution_sensitive": sensitive}  # fmt: skip


def _store(home: Home, report: OverfittingReport, config: OverfittingConfig) -> None:
    reset = {col: None for name in COLUMNS for col in COLUMNS[name][:2] if col}
    reset.update(overfitting=None, overfitting_passed=None, execution_sensitive=None, validation_run_id=None)
    with StateManager(home.db_path) as state, state.transaction():
        for r in state.find("sweep_results", run_id=report.run_row):
            state.update("sweep_results", r["id"], reset)
        for c in report.candidates:
            values: dict = {"overfitting": clean({name: {"passed": v.passed, "reason": v.reason, **v.figures}
                                                   for name, v in c.verdicts.items()}),
                            "overfitting_passed": c.alive}  # fmt: skip
            for name, v in c.verdicts.items():
                passed_col, figure_col, key = COLUMNS[name]
                values[passed_col] = v.passed
                if figure_col:
                    values[figure_col] = clean(v.figures.get(key))
            if c.validation is not None:
                values["execution_sensitive"] = c.validation["execution_sensitive"]
                values["validation_run_id"] = c.validation["run_id"]
            state.update("sweep_results", c.id, values)
        state.update("backtest_runs", report.run_row, {"overfitting": clean(_summary(report, config))})


def _summary(report: OverfittingReport, config: OverfittingConfig) -> dict:
    return {
        "created_at": now_iso(), "filters": report.filters, "config": msgspec.to_builtins(config),
        "n_trials": report.n_trials, "funnel": report.funnel, "run_level": report.run_level,
        "survivors": [c.id for c in report.survivors], "elapsed_s": report.elapsed_s,
    }  # fmt: skip


def write_reports(home: Home, report: OverfittingReport, config: OverfittingConfig) -> None:
    """Write ``overfitting.json`` and ``overfitting.md`` in the screening run's bundle."""
    out = home.runs / f"screening-{report.run_row}"
    out.mkdir(parents=True, exist_ok=True)
    doc = _summary(report, config)
    doc["candidates"] = [
        {"sweep_result_id": c.id, "parameters": c.row["parameters"], "survived": c.alive,
         "filters": {n: {"passed": v.passed, "reason": v.reason, **v.figures} for n, v in c.verdicts.items()},
         "validation": c.validation}
        for c in report.candidates
    ]  # fmt: skip
    report.report_json = out / "overfitting.json"
    write_atomic(report.report_json, json.dumps(clean(doc), indent=2, default=str) + "\n")
    report.report_md = out / "overfitting.md"
    write_atomic(report.report_md, markdown(report))


def markdown(report: OverfittingReport) -> str:
    lines = [f"# Overfitting filters: screening run {report.run_row} ({report.strategy})", "",
             f"{report.n_trials} trials screened; filters in order: {', '.join(LABELS[f] for f in report.filters)}.", "",
             "## Funnel", "", " -> ".join(f"{name} {n}" for name, n in report.funnel), ""]  # fmt: skip
    if "pbo" in report.run_level:
        p = report.run_level["pbo"]
        lines += [f"PBO (CSCV, {p['n_splits']} blocks, {p['combinations']} splits): **{p['pbo']:.2f}**; "
                  f"P(OOS loss of the IS best) {p['prob_oos_loss']:.2f}.", ""]  # fmt: skip
    if "cpcv" in report.run_level:
        p = report.run_level["cpcv"]
        lines += [f"CPCV ({p['splits']} splits, {p['paths']} paths): mean path Sharpe {p['mean_path_sharpe']:.2f}, "
                  f"std {p['std_path_sharpe']:.2f}.", ""]  # fmt: skip
    if report.run_level.get("wfa", {}).get("chosen_per_window"):
        p = report.run_level["wfa"]
        lines += [f"Walk-forward optimisation ({len(p['windows'])} windows, best IS Sharpe chosen per window): "
                  f"efficiency {p['efficiency']:.2f}, {p['profitable_windows_pct']:.0%} of OOS windows profitable, "
                  f"OOS Sharpe {p['oos_sharpe']:.2f}.", ""]  # fmt: skip
    lines += ["## Candidates", "", "| id | parameters | " + " | ".join(LABELS[f] for f in report.filters) + " | verdict |",
              "|---|---|" + "---|" * len(report.filters) + "---|"]  # fmt: skip
    for c in report.candidates:
        cells = []
        for f in report.filters:
            v = c.verdicts.get(f)
            cells.append("-" if v is None else ("pass" if v.passed else f"FAIL: {v.reason}"))
        verdict = "survives" if c.alive else "rejected"
        if c.validation is not None and c.validation["execution_sensitive"]:
            verdict += " (execution-sensitive)"
        lines.append(
            f"| {c.id} | `{json.dumps(c.row['parameters'], sort_keys=True)}` | " + " | ".join(cells) + f" | {verdict} |"
        )
    validated = [c for c in report.candidates if c.validation is not None]
    if validated:
        lines += ["", "## Screening vs validation (full costs)", "",
                  "| id | screening Sharpe | validation Sharpe | degradation | validation run |", "|---|---|---|---|---|"]  # fmt: skip
        for c in validated:
            v = c.validation
            lines.append(f"| {c.id} | {v['screening_sharpe']:.2f} | {v['validation_sharpe']:.2f} | "
                         f"{v['sharpe_degradation']:.0%} | {v['run_id']} |")  # fmt: skip
    return "\n".join(lines) + "\n"
