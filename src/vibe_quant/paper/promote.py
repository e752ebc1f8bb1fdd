"""Manual promotion gates: validated backtest -> paper -> live (docs/specs.md#promotion-gates).

A promotion is a ``promotions`` row: who, why, the evidence the gate looked at, and the reason a
failed gate was overridden. Only granted promotions are recorded; a refused one raises a
:class:`~vibe_quant.errors.UserError` listing what failed and how to override it.

* ``paper``: the run is the validation run of a screening point that passed every overfitting
  filter its sweep ran, and was not flagged execution-sensitive.
* ``live``: the run was promoted to paper, has at least `min_paper_days` of testnet paper trading
  and every counted session's divergence report is within the thresholds.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Callable
from pathlib import Path

from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper.divergence import DivergenceReport, DivergenceThresholds
from vibe_quant.state import StateManager

STAGES = ("paper", "live")
PAPER_MODES = ("testnet",)  # replaying the catalog shows nothing the backtest did not: it earns no paper days
COUNTED_STATUSES = ("running", "finished", "stopped")
MIN_PAPER_DAYS = 14.0
NS_PER_DAY = 86_400 * 1_000_000_000
OVERRIDE_FIX = 'pass --override "REASON" to promote anyway (the reason is recorded with the promotion)'


def default_who() -> str:
    """``$USER``, else the login name."""
    return os.environ.get("USER") or getpass.getuser()


def _db_path(home_or_db: Home | Path | str) -> Path:
    return home_or_db.db_path if isinstance(home_or_db, Home) else Path(home_or_db)


def _run_row(state: StateManager, run_id: int) -> dict:
    row = state.get("backtest_runs", run_id)
    if row is None:
        raise UserError(f"no backtest run {run_id} (vq backtest list shows the runs)")
    if row.get("sweep_spec") is not None:
        raise UserError(f"run {run_id} is a screening sweep; promote the validation run of one of its points "
                        f"(vq overfit show {run_id} lists them)")  # fmt: skip
    if row["status"] != "completed":
        raise UserError(f"backtest run {run_id} is {row['status']}; only a completed run can be promoted")
    return row


def paper_gate(state: StateManager, run_id: int) -> tuple[dict, list[str]]:
    """Judge whether run `run_id` passed the overfitting filters; return ``(evidence, failures)``.

    A validation run passed when a ``sweep_results`` point names it as ``validation_run_id``,
    the point's ``overfitting_passed`` is true, every filter its sweep's last overfitting run
    applied (``backtest_runs.overfitting.filters``, at least one) recorded a pass for it, and the
    point is not ``execution_sensitive``. One such point is enough.
    """
    points = state.find("sweep_results", validation_run_id=run_id)
    if not points:
        return {"points": []}, [
            f"run {run_id} is not the validation run of any screening point, so no overfitting filter judged it "
            "(screen, then vq overfit run --run-id SWEEP --validate: the survivors' validation runs can be promoted)"
        ]
    checked, failures = [], []
    for point in points:
        sweep = state.get("backtest_runs", point["run_id"]) or {}
        summary = sweep.get("overfitting") or {}
        filters = list(summary.get("filters") or [])
        verdicts = point.get("overfitting") or {}
        problems = []
        if not filters:
            problems.append("no overfitting filter was run")
        for name in filters:
            verdict = verdicts.get(name)
            if verdict is None:
                problems.append(f"{name}: no verdict")
            elif not verdict.get("passed"):
                problems.append(f"{name} failed ({verdict.get('reason') or 'no reason stored'})")
        if not point.get("overfitting_passed"):
            problems.append("overfitting_passed is false")
        if point.get("execution_sensitive"):
            problems.append("flagged execution-sensitive (validation Sharpe degraded past consistency.max_degradation)")
        checked.append({"sweep_run": point["run_id"], "point": point["id"], "parameters": point["parameters"],
                        "filters": {n: verdicts.get(n) for n in filters}, "overfitting_at": summary.get("created_at"),
                        "execution_sensitive": point.get("execution_sensitive"), "passed": not problems})  # fmt: skip
        if problems:
            failures.append(f"screening run {point['run_id']} point {point['id']}: " + "; ".join(problems))
    if any(c["passed"] for c in checked):
        failures = []
    return {"points": checked}, failures


def paper_days(state: StateManager, run_id: int) -> tuple[float, list[dict]]:
    """Days of paper trading run `run_id` has: the feed time its counted sessions covered.

    Counted: ``paper_sessions`` with ``from_run`` = `run_id`, mode in :data:`PAPER_MODES` and
    status running, finished or stopped. A session covers ``bars_done`` bars of its config's
    timeframe. Returns the total and one entry per session (counted or not, with ``days``).
    """
    total, sessions = 0.0, []
    for s in state.find("paper_sessions", from_run=run_id):
        timeframe = (s.get("config") or {}).get("timeframe")
        bar = TIMEFRAME_BY_LABEL[timeframe].step_ms * 1_000_000 if timeframe in TIMEFRAME_BY_LABEL else 0
        days = (s.get("bars_done") or 0) * bar / NS_PER_DAY
        counted = s["mode"] in PAPER_MODES and s["status"] in COUNTED_STATUSES
        total += days if counted else 0.0
        sessions.append({"id": s["id"], "mode": s["mode"], "status": s["status"], "bars_done": s.get("bars_done"),
                         "timeframe": timeframe, "days": days, "counted": counted})  # fmt: skip
    return total, sessions


def _default_divergence(home: Home) -> Callable[[int], DivergenceReport]:
    def divergence(session_id: int) -> DivergenceReport:
        from vibe_quant.paper.compare import session_divergence

        return session_divergence(home, session_id)

    return divergence


def live_gate(state: StateManager, run_id: int, min_paper_days: float, divergence: Callable[[int], DivergenceReport],
              thresholds: DivergenceThresholds) -> tuple[dict, list[str]]:  # fmt: skip
    """Judge whether run `run_id` may go live; return ``(evidence, failures)``.

    Raises
    ------
    UserError
        The run was never promoted to paper (not overridable: promote it to paper first).
    """
    paper = state.find("promotions", run_id=run_id, stage="paper")
    if not paper:
        raise UserError(f"run {run_id} was never promoted to paper; promote it first: vq promote {run_id} --to paper "
                        '--why "..."')  # fmt: skip
    days, sessions = paper_days(state, run_id)
    failures = []
    if days < min_paper_days:
        counted = sum(s["counted"] for s in sessions)
        failures.append(f"{days:.2f} days of paper trading ({counted} counted {'/'.join(PAPER_MODES)} session(s)), "
                        f"fewer than --min-paper-days {min_paper_days:g}")  # fmt: skip
    if not any(s["counted"] for s in sessions):
        failures.append(f"no {'/'.join(PAPER_MODES)} paper session of run {run_id} to compare with its backtest "
                        "(start a testnet session from this run with vq paper)")  # fmt: skip
    for s in sessions:
        if not s["counted"]:
            continue
        report = divergence(s["id"])
        breaches = report.breaches(thresholds)
        figures = report.to_dict()
        figures.pop("trades")
        s.update(divergence=figures, breaches=breaches)
        failures += [f"session {s['id']}: {b}" for b in breaches]
    evidence = {"paper_promotion": paper[-1]["id"], "paper_days": days, "min_paper_days": min_paper_days,
                "sessions": sessions, "thresholds": dataclasses.asdict(thresholds)}  # fmt: skip
    return evidence, failures


def promote(home: Home, run_id: int, stage: str, why: str, who: str | None = None, override: str | None = None,
            min_paper_days: float = MIN_PAPER_DAYS, divergence: Callable[[int], DivergenceReport] | None = None,
            thresholds: DivergenceThresholds | None = None) -> dict:  # fmt: skip
    """Promote backtest run `run_id` to `stage` if its gate passes (or `override` says why not); return the row.

    Parameters
    ----------
    home : Home
    run_id : int
        A ``backtest_runs`` id: the validation run of a screening point.
    stage : {"paper", "live"}
    why : str
        Why it is promoted (required, recorded).
    who : str or None, default None
        Who promotes it (default ``$USER`` or the login name).
    override : str or None, default None
        The reason to promote although the gate failed; recorded only when it overrode something.
    min_paper_days : float, default 14
        ``live``: days of counted paper trading needed (see :func:`paper_days`).
    divergence : callable or None, default None
        ``live``: session id -> its :class:`DivergenceReport` (default
        ``vibe_quant.paper.compare.session_divergence(home, session_id)``).
    thresholds : DivergenceThresholds or None, default None (the defaults)

    Returns
    -------
    dict
        The ``promotions`` row (id, run_id, stage, who, why, evidence, override, created_at).

    Raises
    ------
    UserError
        An unknown stage, an empty `why` or `override`, a negative `min_paper_days`, no state
        database, no such completed backtest run, ``live`` without a paper promotion, or a failed
        gate without `override` (listing every failure).
    """
    if stage not in STAGES:
        raise UserError(f"--to {stage!r}: choose paper or live")
    if not why or not why.strip():
        raise UserError('--why: say why the run is promoted, e.g. --why "DSR 0.97, WFA 0.62, 3 months validated"')
    if override is not None and not override.strip():
        raise UserError('--override: give the reason the failed gate is overridden, e.g. --override "..."')
    if min_paper_days < 0:
        raise UserError(f"--min-paper-days must be >= 0, got {min_paper_days:g}")
    home.require_state("nothing to promote: run a backtest first (vq backtest run ...)")
    with StateManager(home.db_path) as state:
        _run_row(state, run_id)
        if stage == "paper":
            evidence, failures = paper_gate(state, run_id)
        else:
            evidence, failures = live_gate(state, run_id, min_paper_days, divergence or _default_divergence(home),
                                           thresholds or DivergenceThresholds())  # fmt: skip
        if failures and override is None:
            raise UserError(
                f"run {run_id} cannot be promoted to {stage}: " + "; ".join(failures) + f". Fix it, or {OVERRIDE_FIX}"
            )
        evidence["failures"] = failures
        row_id = state.insert("promotions", {"run_id": run_id, "stage": stage, "who": who or default_who(),
                                             "why": why.strip(), "evidence": evidence,
                                             "override": override.strip() if failures else None})  # fmt: skip
        return state.get("promotions", row_id)


def promotion(home_or_db: Home | Path | str, run_id: int, stage: str) -> dict | None:
    """The latest promotion of run `run_id` to `stage` (``paper`` or ``live``), or None (also without a database)."""
    path = _db_path(home_or_db)
    if not path.is_file():
        return None
    with StateManager(path) as state:
        rows = state.find("promotions", run_id=run_id, stage=stage)
    return rows[-1] if rows else None


def list_promotions(home_or_db: Home | Path | str, run_id: int | None = None) -> list[dict]:
    """Every promotion (of run `run_id` when given), oldest first; empty without a database."""
    path = _db_path(home_or_db)
    if not path.is_file():
        return []
    where = {} if run_id is None else {"run_id": run_id}
    with StateManager(path) as state:
        return state.find("promotions", **where)
