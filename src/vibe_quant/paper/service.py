"""Paper sessions end to end: create, run (or restart), command, read back (what the CLI and dashboard call)."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket

import msgspec

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import RunPlan, plan_run
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper import store
from vibe_quant.paper.loops import run_async
from vibe_quant.paper.session import Outcome, Pacing, run_session
from vibe_quant.progress import Progress
from vibe_quant.state import StateManager

STALE_S = 120  # a running session whose heartbeat is older (and whose pid is gone) crashed


def parse_speed(text: str | None) -> float | None:
    """``--speed``: ``max`` (None) or a positive number of feed seconds per wall second."""
    if text is None or str(text).strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--speed {text!r}: a number (1 = real time, 600 = ten minutes a second) or max") from None
    if not value > 0:
        raise UserError(f"--speed {text!r}: must be > 0 (or max)")
    return value


def create_replay(home: Home, config: BacktestConfig, speed: float | None, from_run: int | None = None,
                  limits: dict | None = None) -> tuple[int, RunPlan]:  # fmt: skip
    """Check `config` and write a new replay session row; returns (session id, plan).

    The replay trades the config's period (its first to last day); the data must be in the catalog.
    """
    plan = plan_run(config)
    with StateManager(home.db_path) as db:
        sid = store.create_session(db, "replay", msgspec.to_builtins(plan.config),
                                   {"speed": speed, "start": plan.config.start.isoformat(),
                                    "end": plan.config.end.isoformat()}, limits=limits, from_run=from_run)  # fmt: skip
    return sid, plan


def run_replay(home: Home, session_id: int, pacing: Pacing, resume: bool = False, progress: Progress | None = None,
               metrics_port: int | None = None, metrics_linger_s: float = 0.0) -> Outcome:  # fmt: skip
    """Run replay session `session_id` to its end or a stop (restart it when `resume`); with
    `metrics_port`, serve its Prometheus metrics on 127.0.0.1 (see ``session.run_session``)."""
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.instruments.specs import InstrumentSpecs

    with StateManager(home.db_path) as db:
        row = store.get_session(db, session_id)
    if row["mode"] != "replay":
        raise UserError(f"session {session_id} is a {row['mode']} session: this runs replay sessions")
    if row["status"] in store.ACTIVE_STATUSES and resume and _alive(row):
        raise UserError(f"session {session_id} is running (pid {row['pid']}): stop it first (vq paper stop "
                        f"{session_id}) or watch it (vq paper status {session_id})")  # fmt: skip
    plan = store.session_plan(row)
    data = load_market_data(home.catalog, plan, InstrumentSpecs())
    task = None
    on_progress = None
    if progress is not None:
        total = sum(len(data.bars[s]) for s in plan.symbols)
        task = progress.task(f"paper replay {plan.config.strategy} {','.join(plan.symbols)} {plan.timeframe}", total)
        seen = {"done": 0}

        def on_progress(done: int, total: int) -> None:
            progress.advance(task, done - seen["done"])
            seen["done"] = done

    try:
        return run_async(lambda: run_session(home, session_id, plan, data, pacing, resume=resume,
                                             on_progress=on_progress, metrics_port=metrics_port,
                                             metrics_linger_s=metrics_linger_s))  # fmt: skip
    finally:
        if task is not None:
            progress.finish(task)


def _alive(row: dict) -> bool:
    from vibe_quant.jobs.procs import pid_alive

    if row.get("host") not in (None, socket.gethostname()):
        return _fresh(row)
    return bool(row.get("pid")) and pid_alive(int(row["pid"]))


def _fresh(row: dict) -> bool:
    beat = row.get("heartbeat_at")
    if not beat:
        return False
    at = dt.datetime.fromisoformat(beat.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - at).total_seconds() < STALE_S


def liveness(row: dict) -> str:
    """The session's status as a user needs it: a 'running' row whose process is gone is 'crashed'."""
    if row["status"] in store.ACTIVE_STATUSES and not _alive(row):
        return "crashed"
    return row["status"]


def describe(home: Home, session_id: int) -> dict:
    """Everything `vq paper status` and the dashboard show of a session."""
    with StateManager(home.db_path) as db:
        row = store.get_session(db, session_id)
        row["liveness"] = liveness(row)
        row["commands"] = store.commands(db, session_id)[-20:]
        row["checkpoints"] = store.checkpoints(db, session_id)[-5:]
    row["events_log"] = str(store.events_path(home.logs, session_id))
    return row


def request(home: Home, session_id: int, command: str, target: str | None = None, reason: str | None = None) -> int:
    """Queue an operator command (the session applies it at its next bar boundary, within a second)."""
    with StateManager(home.db_path) as db:
        row = store.get_session(db, session_id)
        state = liveness(row)
        if state not in store.ACTIVE_STATUSES:
            raise UserError(f"session {session_id} is {state}: commands go to a running session"
                            + (f" (restart it: vq paper start --resume {session_id})" if state in ("crashed", "stopped") else ""))  # fmt: skip
        strategies = (row.get("snapshot") or {}).get("strategies") or {}
        if target is not None and strategies and target not in strategies:
            raise UserError(f"session {session_id} has no strategy {target!r}; strategies: {', '.join(strategies)}")
        return store.add_command(db, session_id, command, target, reason, who=_who())


def _who() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:
        return "unknown"


def live_plan(config: BacktestConfig, mode: str, allow_looser: str | None, from_run: int | None,
              home: Home) -> tuple[RunPlan, dict]:  # fmt: skip
    """The plan a testnet/live session trades (live safety applied) and the limits it records.

    Live trading needs a run promoted to live (``vq promote RUN --to live``).

    Raises
    ------
    ConfigError
        A limit looser than live safety without ``--allow-looser-limits``.
    UserError
        Live without a promoted run.
    """
    from vibe_quant.paper.safety import apply_live_safety

    if mode == "live":
        from vibe_quant.paper.promote import promotion

        if from_run is None:
            raise UserError("live trading takes a promoted run: vq live start --from-run RUN")
        if promotion(home, from_run, "live") is None:
            raise UserError(f"run {from_run} is not promoted to live: vq promote {from_run} --to live --why ... "
                            "(needs a paper promotion, 14 days of testnet paper and a divergence report within "
                            "its thresholds)")  # fmt: skip
    traded, limits = apply_live_safety(config, allow_looser)
    return plan_run(traded), limits


def create_live(home: Home, plan: RunPlan, mode: str, limits: dict, from_run: int | None) -> int:
    """A new testnet/live session row; returns its id."""
    with StateManager(home.db_path) as db:
        return store.create_session(db, mode, msgspec.to_builtins(plan.config), {}, limits=limits, from_run=from_run)
