"""Liveness of running rows: stale heartbeats, pids that are gone or reused, other hosts, and
reconciliation marking them failed (background jobs and backtest runs alike)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from vibe_quant.home import Home
from vibe_quant.jobs import STALE_S, job_health, reconcile
from vibe_quant.jobs.health import iso_utc
from vibe_quant.jobs.procs import group_members, pid_alive, process_start, this_host
from vibe_quant.state import StateManager

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def job_row(**values) -> dict:
    me = os.getpid()
    row = {"status": "running", "pid": me, "pid_started": process_start(me), "host": this_host(),
           "started_at": iso_utc(NOW - dt.timedelta(seconds=600)), "heartbeat_at": iso_utc(NOW)}  # fmt: skip
    return {**row, **values}


def add_job(state: StateManager, **values) -> int:
    return state.insert("background_jobs", {"job_type": "screen run", **job_row(**values)})


def add_run(state: StateManager, **values) -> int:
    row = {"run_mode": "validation", "symbols": ["FILUSDT-PERP"], "timeframe": "5m", "start_date": "2023-08-01",
           "end_date": "2023-08-31", "parameters": {"strategy": "ema_cross"}, "status": "running",
           "pid": os.getpid(), "host": this_host(), "started_at": iso_utc(NOW), "heartbeat_at": iso_utc(NOW)}  # fmt: skip
    return state.insert("backtest_runs", {**row, **values})


def test_procs_see_this_process_and_not_an_exited_one() -> None:
    me = os.getpid()
    assert pid_alive(me)
    assert not pid_alive(dead_pid())
    started = process_start(me)
    assert started is not None
    assert NOW.timestamp() - 7 * 86400 < started <= dt.datetime.now(dt.UTC).timestamp()
    assert me in group_members(os.getpgid(me))


def test_a_fresh_heartbeat_of_a_live_process_is_running() -> None:
    health = job_health(job_row(heartbeat_at=iso_utc(NOW - dt.timedelta(seconds=40))), NOW)
    assert health.state == "running"
    assert health.heartbeat_age_s == pytest.approx(40)


def test_a_heartbeat_older_than_120_s_is_stale_even_if_the_process_lives() -> None:
    old = job_row(heartbeat_at=iso_utc(NOW - dt.timedelta(seconds=STALE_S + 5)))
    assert job_health(old, NOW).state == "stale"
    assert job_health(job_row(heartbeat_at=iso_utc(NOW - dt.timedelta(seconds=STALE_S - 5))), NOW).state == "running"
    # SQLite's own datetime('now') format (naive, UTC) reads the same
    naive = (NOW - dt.timedelta(seconds=300)).replace(tzinfo=None).isoformat(sep=" ")
    assert job_health(job_row(heartbeat_at=naive), NOW).heartbeat_age_s == pytest.approx(300)


def test_a_pid_that_exited_or_was_reused_is_gone() -> None:
    assert job_health(job_row(pid=dead_pid()), NOW).state == "gone"
    # our pid, but the row's process started 1000 s before this one: another process had the pid
    reused = job_row(pid_started=process_start(os.getpid()) - 1000)
    assert job_health(reused, NOW).state == "gone"
    # a run row (no pid_started): its run started before this process existed
    assert job_health({"status": "running", "pid": os.getpid(), "started_at": "2001-01-01T00:00:00+00:00",
                       "heartbeat_at": iso_utc(NOW)}, NOW).state == "gone"  # fmt: skip
    assert job_health({"status": "running", "pid": os.getpid(), "started_at": iso_utc(NOW),
                       "heartbeat_at": iso_utc(NOW)}, NOW).state == "running"  # fmt: skip


def test_a_pid_of_another_host_is_judged_by_its_heartbeat_only() -> None:
    remote = job_row(pid=dead_pid(), host="some-other-machine")
    assert job_health(remote, NOW).state == "running"
    remote["heartbeat_at"] = iso_utc(NOW - dt.timedelta(seconds=500))
    assert job_health(remote, NOW).state == "stale"


def test_finished_rows_keep_their_status() -> None:
    for status in ("completed", "failed", "killed", "pending"):
        assert job_health(job_row(status=status, pid=dead_pid()), NOW).state == status


def test_reconcile_marks_gone_and_stale_rows_failed_and_leaves_the_rest(home: Home) -> None:
    assert reconcile(home) == []  # no database yet: nothing to do, nothing created
    assert not home.db_path.exists()
    gone_pid = dead_pid()
    with StateManager(home.db_path) as state:
        live = add_job(state)
        gone = add_job(state, pid=gone_pid, pid_started=None)
        stale = add_job(state, heartbeat_at=iso_utc(NOW - dt.timedelta(seconds=600)))
        done = add_job(state, pid=gone_pid, status="completed")
        run_gone = add_run(state, pid=gone_pid)
        run_live = add_run(state)
    changes = reconcile(home, NOW)
    assert {(c.table, c.row_id, c.health) for c in changes} == {
        ("background_jobs", gone, "gone"), ("background_jobs", stale, "stale"), ("backtest_runs", run_gone, "gone"),
    }  # fmt: skip
    with StateManager(home.db_path) as state:
        jobs = {r["id"]: r for r in state.find("background_jobs")}
        runs = {r["id"]: r for r in state.find("backtest_runs")}
    assert jobs[live]["status"] == "running"
    assert jobs[done]["status"] == "completed"
    assert jobs[gone]["status"] == "failed"
    assert jobs[gone]["error_message"] == (
        f"process {gone_pid} is gone (killed or crashed) — marked failed on {iso_utc(NOW)}"
    )
    assert jobs[stale]["status"] == "failed"
    assert jobs[stale]["error_message"].startswith("no heartbeat for 600 s (stale)")
    assert runs[run_gone]["status"] == "failed"
    assert runs[run_gone]["completed_at"] == iso_utc(NOW)
    assert f"process {gone_pid} is gone" in runs[run_gone]["error_message"]
    assert runs[run_live]["status"] == "running"
    assert reconcile(home, NOW) == []  # nothing left to change
