"""``vq jobs start|list|logs|kill`` and ``vq backtest list`` after a terminal run was killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import vq
from tests.jobs.conftest import wait_for
from vibe_quant.home import Home
from vibe_quant.jobs import get_job
from vibe_quant.jobs.health import iso_utc, now_utc
from vibe_quant.jobs.procs import process_start, this_host
from vibe_quant.state import StateManager


def jobs(home: Home, *args: str) -> tuple[int, str]:
    code, out, err = vq(["--home", str(home.root), "jobs", *args])
    return code, out + err


@pytest.fixture
def sleeper(home: Home):
    """A running job: a sleeping process in its own session, registered as start_job registers one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    with StateManager(home.db_path) as state:
        job_id = state.insert("background_jobs", {"pid": proc.pid, "pid_started": process_start(proc.pid),
                                                  "host": this_host(), "job_type": "sleep", "status": "running",
                                                  "command": ["sleep"], "label": "nap",
                                                  "started_at": iso_utc(now_utc()), "heartbeat_at": iso_utc(now_utc())})  # fmt: skip
    yield job_id, proc
    proc.kill()
    proc.wait()


def test_a_quick_job_from_start_to_logs(home: Home) -> None:
    code, out = jobs(home, "start", "--label", "strategies", "--", "dsl", "list")
    assert code == 0, out
    assert "job 1 started (pid " in out
    assert f"log: {home.logs / 'jobs' / '1.log'}" in out
    job = wait_for(lambda: (j := get_job(home, 1)).status != "running" and j, 30, "the job to end")
    assert (job.status, job.exit_code, job.job_type, job.command) == ("completed", 0, "dsl list", ("dsl", "list"))
    code, out = jobs(home, "logs", "1")
    assert code == 0
    assert "rsi_mean_reversion_mtf" in out
    code, tail = jobs(home, "logs", "1", "--tail", "1")
    assert code == 0
    assert tail.strip() == out.strip().splitlines()[-1].strip()
    code, out = jobs(home, "list")
    assert code == 0
    assert "no job running" in out
    code, out = jobs(home, "list", "--all")
    assert code == 0
    assert "strategies" in out
    assert "completed (0)" in out
    code, out = jobs(home, "kill", "1", "--yes")
    assert code == 2
    assert "job 1 is already completed: nothing to kill" in out


def test_start_refuses_bad_commands(home: Home) -> None:
    code, out = jobs(home, "start", "--", "scren", "run")
    assert code == 2
    assert "'scren' is not a vq command to run as a job. Did you mean 'screen'?" in out
    code, out = jobs(home, "start", "--", "-q", "dsl", "lst")
    assert code == 2
    assert "vq dsl has no command 'lst'. Did you mean 'list'?" in out
    code, out = jobs(home, "start", "--", "jobs", "list")
    assert code == 2
    assert "not a vq command to run as a job" in out
    code, out = jobs(home, "start", "--", "--home", "/elsewhere", "dsl", "list")
    assert code == 2
    assert "a job runs in the home of `vq jobs start`" in out
    code, out = jobs(home, "start")
    assert code == 2
    assert "Missing argument" in out
    with StateManager(home.db_path) as state:
        assert state.count("background_jobs") == 0


def test_unknown_jobs_and_bad_options_are_clear_errors(home: Home) -> None:
    for args in (["logs", "7"], ["kill", "7", "--yes"]):
        code, out = jobs(home, *args)
        assert code == 2
        assert "no job 7" in out
    code, out = jobs(home, "list", "--all")
    assert code == 0
    assert "no job:" in out


def test_kill_asks_first_then_ends_the_job(home: Home, sleeper) -> None:
    job_id, proc = sleeper
    code, out = jobs(home, "list")
    assert code == 0
    assert "nap" in out
    assert "running" in out
    code, out = jobs(home, "kill", str(job_id))  # no terminal to ask on
    assert code == 2
    assert "confirm on a terminal, or pass --yes" in out
    assert proc.poll() is None
    code, out = jobs(home, "kill", str(job_id), "--grace", "-1", "--yes")
    assert code == 2
    assert "--grace must be >= 0 seconds, got -1" in out
    code, out = jobs(home, "kill", str(job_id), "--yes", "--grace", "2")
    assert code == 0, out
    assert f"job {job_id} killed (SIGTERM" in out
    assert proc.wait(timeout=5) == -signal.SIGTERM
    code, out = jobs(home, "list", "--all")
    assert "killed" in out


def test_backtest_list_shows_a_run_killed_with_kill_9_as_failed(home: Home) -> None:
    # A terminal run marks its row through persist.Heartbeat (as `vq backtest run` does), then dies with -9.
    with StateManager(home.db_path) as state:
        run_row = state.insert("backtest_runs", {"run_mode": "validation", "symbols": ["FILUSDT-PERP"],
                                                 "timeframe": "5m", "start_date": "2023-08-01", "end_date": "2023-08-31",
                                                 "parameters": {"strategy": "ema_cross"}, "status": "pending"})  # fmt: skip
    code = (f"from pathlib import Path; import time; from vibe_quant.backtest.persist import Heartbeat\n"
            f"with Heartbeat(Path({str(home.db_path)!r}), {run_row}):\n    print('running', flush=True); time.sleep(60)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"running\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    with StateManager(home.db_path) as state:
        assert state.get("backtest_runs", run_row)["status"] == "running"  # the measured bug: nobody marks it
    code, out, err = vq(["--home", str(home.root), "backtest", "list"])
    assert code == 0, out + err
    assert f"marked failed: run {run_row}: process {proc.pid} is gone (killed or crashed)" in err
    assert "failed" in out
    with StateManager(home.db_path) as state:
        row = state.get("backtest_runs", run_row)
    assert row["status"] == "failed"
    assert row["host"] == this_host()
    code, out, err = vq(["--home", str(home.root), "backtest", "list"])
    assert "marked failed" not in err  # once


def test_a_job_marked_failed_for_a_stale_heartbeat_can_still_be_killed(home: Home, sleeper) -> None:
    job_id, proc = sleeper
    with StateManager(home.db_path) as state:
        state.update("background_jobs", job_id, {"heartbeat_at": "2001-01-01T00:00:00+00:00"})
    code, out = jobs(home, "list", "--all")
    assert code == 0
    assert f"marked failed: job {job_id}: no heartbeat for" in out
    job = get_job(home, job_id)
    assert (job.status, job.alive) == ("failed", True)
    code, out = jobs(home, "kill", str(job_id), "--yes", "--grace", "2")
    assert code == 0, out
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert get_job(home, job_id).status == "killed"
    assert not get_job(home, job_id).alive
