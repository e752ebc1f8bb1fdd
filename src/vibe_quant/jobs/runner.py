"""Start, list, read and kill background jobs: ``vq`` commands run as subprocesses, one row each in ``background_jobs``.

A job is the CLI a user types (``python -m vibe_quant --home HOME ARGS...``) started in a new
session, so the job and every worker process it starts share one process group that
:func:`kill_job` signals as a whole. Its output goes to ``logs/jobs/<id>.log``; the job itself
beats and records its end (:mod:`vibe_quant.jobs.session`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.jobs.health import iso_utc, job_health, now_utc, process_alive, reconcile
from vibe_quant.jobs.procs import group_members, pid_alive, process_start, this_host
from vibe_quant.state import StateManager

JOB_ENV = "VQ_JOB_ID"
HEARTBEAT_ENV = "VQ_JOB_HEARTBEAT_S"
POLL_S = 0.05


@dataclass(frozen=True)
class Job:
    """A ``background_jobs`` row as shown: its stored fields plus its health now.

    ``health`` is ``running``, ``stale``, ``gone`` or the final status; ``progress`` the job's
    progress tasks (``{"description", "completed", "total"}``), newest last. ``alive``: its process
    still runs on this machine (a job marked failed for a stale heartbeat may still be running).
    """

    id: int
    job_type: str
    label: str | None
    command: tuple[str, ...]
    status: str
    health: str
    pid: int
    host: str | None
    heartbeat_age_s: float | None
    progress: tuple[dict, ...]
    started_at: str | None
    completed_at: str | None
    exit_code: int | None
    log_file: str | None
    error_message: str | None
    run_id: int | None
    alive: bool


def can_kill(job: Job) -> bool:
    """A running job, or one marked failed (stale) whose process still runs."""
    return job.status == "running" or (job.status == "failed" and job.alive)


@dataclass(frozen=True)
class KillOutcome:
    """What :func:`kill_job` did: the signals it sent to the job's process group (none when the
    process was already gone), how long it waited, and any process of the group still alive."""

    job_id: int
    pid: int
    signals: tuple[str, ...]
    waited_s: float
    remaining: tuple[int, ...]
    status: str


def _job(row: dict) -> Job:
    health = job_health(row)
    return Job(
        id=row["id"], job_type=row["job_type"], label=row.get("label"), command=tuple(row.get("command") or ()),
        status=row["status"], health=health.state, pid=row["pid"], host=row.get("host"),
        heartbeat_age_s=health.heartbeat_age_s, progress=tuple(row.get("progress") or ()),
        started_at=row.get("started_at"), completed_at=row.get("completed_at"), exit_code=row.get("exit_code"),
        log_file=row.get("log_file"), error_message=row.get("error_message"), run_id=row.get("run_id"),
        alive=process_alive(row),
    )  # fmt: skip


def default_job_type(argv: list[str]) -> str:
    """``screen run`` for ``screen run --strategy ...``: the command's leading words."""
    words = []
    for arg in argv:
        if arg.startswith("-") or len(words) == 2:
            break
        words.append(arg)
    return " ".join(words) or "vq"


def check_command(argv: list[str]) -> list[str]:
    """Return `argv` as strings if it can run as a job.

    Raises
    ------
    UserError
        No command, or the command names its own ``--home`` (a job runs in the home it was started in).
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise UserError("no command to run: pass the vq command after --, e.g. vq jobs start -- backtest run ...")
    if any(a == "--home" or a.startswith("--home=") for a in argv):
        raise UserError("the job's command names --home: a job runs in the home of `vq jobs start`; put --home "
                        "before `jobs` instead (vq --home DIR jobs start -- ...)")  # fmt: skip
    return argv


def start_job(home: Home, argv: list[str], job_type: str | None = None, label: str | None = None,
              extra_env: dict[str, str] | None = None) -> int:  # fmt: skip
    """Start ``vq --home HOME <argv...>`` in the background; return the job id.

    The row is written first (its pid is this process until the job's process exists), then the
    process is spawned in a new session with stdout and stderr to ``logs/jobs/<id>.log`` and
    ``VQ_JOB_ID=<id>`` in its environment.

    Parameters
    ----------
    home : Home
        The data home; the job runs in it (its state database holds the row).
    argv : list of str
        The command after ``vq``, e.g. ``["screen", "run", "--strategy", "ema_cross", ...]``.
    job_type : str, optional
        What kind of job (default: the command's leading words, e.g. ``screen run``).
    label : str, optional
        A name for people (default: none; lists show the command).
    extra_env : dict, optional
        Variables added to the job's environment and never saved with its row (a URL carrying a
        secret, say).

    Raises
    ------
    UserError
        No command, or the command names its own ``--home`` (a job runs in `home`).
    """
    argv = check_command(argv)
    home.ensure()
    (home.logs / "jobs").mkdir(parents=True, exist_ok=True)
    now = iso_utc(now_utc())
    me = os.getpid()
    with StateManager(home.db_path) as state:
        job_id = state.insert("background_jobs", {
            "pid": me, "pid_started": process_start(me), "host": this_host(), "job_type": job_type or default_job_type(argv),
            "label": label, "command": argv, "status": "running", "started_at": now, "heartbeat_at": now,
        })  # fmt: skip
        log_path = home.logs / "jobs" / f"{job_id}.log"
        state.update("background_jobs", job_id, {"log_file": str(log_path)})
        env = {**os.environ, **(extra_env or {}), JOB_ENV: str(job_id), "VQ_HOME": str(home.root)}
        try:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "vibe_quant", "--home", str(home.root), *argv], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            state.update("background_jobs", job_id, {"status": "failed", "completed_at": iso_utc(now_utc()),
                                                     "error_message": f"could not start: {exc}"})  # fmt: skip
            raise
        state.update("background_jobs", job_id, {"pid": proc.pid, "pid_started": process_start(proc.pid)})
    return job_id


def list_jobs(home: Home, active_only: bool = False) -> list[Job]:
    """Background jobs, newest first, after :func:`~vibe_quant.jobs.health.reconcile`; with
    `active_only` only those still running (empty without a state database)."""
    if not home.db_path.exists():
        return []
    reconcile(home)
    with StateManager(home.db_path) as state:
        rows = state.find("background_jobs", status="running") if active_only else state.find("background_jobs")
    return [_job(row) for row in sorted(rows, key=lambda r: -r["id"])]


def get_job(home: Home, job_id: int) -> Job:
    """One job by id.

    Raises
    ------
    UserError
        No state database, or no such job.
    """
    if not home.db_path.exists():
        raise UserError(f"no job {job_id}: {home.root} has no state database yet (vq jobs start -- ... starts one)")
    with StateManager(home.db_path) as state:
        row = state.get("background_jobs", job_id)
    if row is None:
        raise UserError(f"no job {job_id} in {home.db_path} (vq jobs list --all shows them)")
    return _job(row)


def job_log(home: Home, job_id: int, tail: int | None = None) -> str:
    """The job's output so far (its last `tail` lines when given).

    Raises
    ------
    UserError
        No such job, `tail` below 1, or its log file is missing.
    """
    if tail is not None and tail < 1:
        raise UserError(f"--tail must be >= 1, got {tail}")
    job = get_job(home, job_id)
    if not job.log_file or not os.path.exists(job.log_file):
        raise UserError(f"job {job_id} has no log file ({job.log_file or 'none recorded'}): it was deleted, or the "
                        "job never started")  # fmt: skip
    with open(job.log_file, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:])
    return text


def kill_job(home: Home, job_id: int, grace_s: float = 10.0) -> KillOutcome:
    """Stop a running job (or one marked failed for a stale heartbeat whose process still runs) and
    every process of its group: SIGTERM, then SIGKILL after `grace_s`.

    The job is marked ``killed`` once no process of its group is left; a backtest run the job's
    process had marked running is marked failed. A job whose process was already gone is marked
    failed (nothing is signalled).

    Parameters
    ----------
    home : Home
        The data home holding the job.
    job_id : int
        The ``background_jobs`` id.
    grace_s : float, default 10.0
        Seconds between SIGTERM and SIGKILL.

    Raises
    ------
    UserError
        No such job, it already finished, it runs on another machine, or `grace_s` is negative.
    """
    if grace_s < 0:
        raise UserError(f"--grace must be >= 0 seconds, got {grace_s}")
    job = get_job(home, job_id)
    if not can_kill(job):
        raise UserError(f"job {job_id} is already {job.status}"
                        + (f" (exit code {job.exit_code})" if job.exit_code is not None else "")
                        + ": nothing to kill (vq jobs logs " + str(job_id) + " shows its output)")  # fmt: skip
    if job.host is not None and job.host != this_host():
        raise UserError(f"job {job_id} runs on {job.host}, not on this machine ({this_host()}): kill it there")
    pgid = job.pid
    # The group id is the job's pid (new session); a pid in use as a group id is never reused, so
    # members of that group are the job's own workers even when the job's main process is gone.
    members = group_members(pgid)
    if not job.alive and (not members or pid_alive(pgid)):
        reconcile(home)
        return KillOutcome(job_id, pgid, (), 0.0, (), "failed")
    signals = ["SIGTERM"]
    t0 = time.monotonic()
    _signal_group(pgid, signal.SIGTERM)
    while group_members(pgid) and time.monotonic() - t0 < grace_s:
        time.sleep(POLL_S)
    if group_members(pgid):
        signals.append("SIGKILL")
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(POLL_S)
    waited = time.monotonic() - t0
    remaining = tuple(group_members(pgid))
    how = (f"SIGTERM, ended after {waited:.1f} s" if len(signals) == 1
           else f"SIGTERM, then SIGKILL after {grace_s:g} s grace")  # fmt: skip
    when = iso_utc(now_utc())
    with StateManager(home.db_path) as state:
        state.update("background_jobs", job_id, {"status": "killed", "completed_at": when,
                                                 "error_message": f"killed by vq jobs kill ({how}) on {when}"})  # fmt: skip
        state.conn.execute(
            "UPDATE backtest_runs SET status = 'failed', completed_at = ?, error_message = ? "
            "WHERE status = 'running' AND pid = ? AND (host IS NULL OR host = ?)",
            (when, f"killed with background job {job_id} on {when}", pgid, this_host()),
        )
    return KillOutcome(job_id, pgid, tuple(signals), waited, remaining, "killed")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.killpg(pgid, sig)
