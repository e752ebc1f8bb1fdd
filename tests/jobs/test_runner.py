"""Real jobs: ``vq`` commands started with :func:`start_job`, killed by :func:`kill_job` or with
``kill -9``, and a sweep writing the state database while it is read."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import vq
from tests.jobs.conftest import LONG_SWEEP, wait_for
from vibe_quant.backtest.persist import list_runs
from vibe_quant.home import Home
from vibe_quant.jobs import get_job, kill_job, list_jobs, start_job
from vibe_quant.jobs.health import iso_utc, now_utc
from vibe_quant.jobs.procs import group_members, pid_alive, process_start, this_host
from vibe_quant.state import StateManager

SHORT_SWEEP = ["screen", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--workers", "2",
               "--sweep", "fast=10,20,30,40", "--start", "2023-08-01", "--end", "2023-08-20",
               "--min-trades", "1", "--max-dd", "0.9", "--min-pf", "0.1"]  # fmt: skip


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def workers_up(pgid: int) -> list[int] | None:
    """The job's group once its two pool workers exist (and the sweep row is running)."""
    members = group_members(pgid)
    return members if sum("spawn_main" in cmdline(p) for p in members) >= 2 else None


def sweep_row(home: Home) -> dict | None:
    with StateManager(home.db_path) as state:
        rows = state.find("backtest_runs")
    return rows[0] if rows else None


def test_a_sweep_job_beats_reports_progress_and_the_state_db_stays_usable(
    cat_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VQ_JOB_HEARTBEAT_S", "0.2")
    job_id = start_job(cat_home, SHORT_SWEEP, label="wal")
    beats, reads = set(), 0
    deadline = time.monotonic() + 60
    while get_job(cat_home, job_id).status == "running":  # any sqlite3.OperationalError fails the test
        assert time.monotonic() < deadline, "the sweep job did not finish in 60 s"
        with StateManager(cat_home.db_path) as state:
            state.count("sweep_results")
            state.find("backtest_runs", status="running")
            job = state.get("background_jobs", job_id)
        list_runs(cat_home, sweeps=True)
        list_jobs(cat_home)  # reconciles: reads, and writes when a row is gone
        if job["status"] == "running":
            beats.add(job["heartbeat_at"])
        reads += 1
        time.sleep(0.02)
    job = get_job(cat_home, job_id)
    assert (job.status, job.exit_code, job.error_message) == ("completed", 0, None), job_log_text(cat_home, job_id)
    assert reads >= 20
    assert len(beats) >= 2  # heartbeat_at moved while the job ran (whole seconds)
    assert job.progress[-1] == {"description": "screening run 1", "completed": 4, "total": 4}
    assert job.label == "wal"
    assert job.job_type == "screen run"
    with StateManager(cat_home.db_path) as state:
        assert state.count("sweep_results", run_id=1) == 4
        assert state.get("backtest_runs", 1)["status"] == "completed"
    assert "Pareto front" in job_log_text(cat_home, job_id)


def job_log_text(home: Home, job_id: int) -> str:
    return Path(get_job(home, job_id).log_file).read_text()


def test_kill_ends_the_job_and_its_worker_processes(cat_home: Home) -> None:
    job_id = start_job(cat_home, LONG_SWEEP)
    pid = get_job(cat_home, job_id).pid
    members = wait_for(lambda: workers_up(pid), 30, "the sweep's worker processes")
    assert pid in members
    outcome = kill_job(cat_home, job_id, grace_s=10.0)
    assert outcome.signals == ("SIGTERM",)  # the sweep stops on SIGTERM (cancelled), within the grace
    assert outcome.remaining == ()
    assert not [p for p in members if pid_alive(p)]
    assert group_members(pid) == []
    job = get_job(cat_home, job_id)
    assert job.status == "killed"
    assert job.error_message.startswith("killed by vq jobs kill (SIGTERM, ended after")
    assert sweep_row(cat_home)["status"] in ("cancelled", "failed")


def test_kill_escalates_to_sigkill_after_the_grace(home: Home) -> None:
    # A process that ignores SIGTERM, registered as a job the way start_job registers one.
    proc = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                             "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    assert proc.stdout.readline() == b"ready\n"
    with StateManager(home.db_path) as state:
        job_id = state.insert("background_jobs", {"pid": proc.pid, "pid_started": process_start(proc.pid),
                                                  "host": this_host(), "job_type": "test", "status": "running",
                                                  "started_at": iso_utc(now_utc()), "heartbeat_at": iso_utc(now_utc())})  # fmt: skip
    outcome = kill_job(home, job_id, grace_s=0.3)
    assert outcome.signals == ("SIGTERM", "SIGKILL")
    assert outcome.waited_s >= 0.3
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert get_job(home, job_id).status == "killed"
    assert "SIGKILL after 0.3 s grace" in get_job(home, job_id).error_message


def test_a_job_killed_with_kill_9_is_marked_failed_on_the_next_start(cat_home: Home) -> None:
    job_id = start_job(cat_home, LONG_SWEEP)
    pid = get_job(cat_home, job_id).pid
    wait_for(lambda: workers_up(pid), 30, "the sweep's worker processes")
    wait_for(lambda: (sweep_row(cat_home) or {}).get("status") == "running", 10, "the sweep row running")
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not group_members(pid), 10, "the killed group to be gone")
    with sqlite3.connect(cat_home.db_path) as con:  # nobody recorded the end: both rows still say running
        assert con.execute("SELECT status FROM background_jobs WHERE id = ?", (job_id,)).fetchone()[0] == "running"
        assert con.execute("SELECT status FROM backtest_runs WHERE id = 1").fetchone()[0] == "running"
    code, out, err = vq(["--home", str(cat_home.root), "jobs", "list", "--all"])
    assert code == 0, out + err
    assert f"marked failed: job {job_id}: process {pid} is gone (killed or crashed)" in out + err
    assert f"marked failed: run 1: process {pid} is gone" in out + err
    job = get_job(cat_home, job_id)
    assert job.status == "failed"
    assert job.error_message.startswith(f"process {pid} is gone (killed or crashed) — marked failed on ")
    assert sweep_row(cat_home)["status"] == "failed"


def test_a_failing_job_records_the_users_error(cat_home: Home) -> None:
    job_id = start_job(cat_home, ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT",
                                  "--start", "2023-08-01", "--end", "2023-08-02", "--leverage", "-3"])  # fmt: skip
    job = wait_for(lambda: (j := get_job(cat_home, job_id)).status != "running" and j, 30, "the job to end")
    assert (job.status, job.exit_code) == ("failed", 2)
    assert job.error_message.startswith("error: ")
    assert "leverage" in job.error_message
