"""Inside a job: the heartbeat thread writes heartbeat_at and the command's progress, and the end
of the command is recorded (exit code, status, the last error line)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.jobs.conftest import wait_for
from vibe_quant.home import Home
from vibe_quant.jobs.session import JobSession, heartbeat_interval, last_line
from vibe_quant.progress import Progress, TrackedProgress, rich_progress
from vibe_quant.state import StateManager


def new_job(home: Home, log_text: str = "") -> tuple[int, Path]:
    log = home.logs / "jobs" / "1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(log_text)
    with StateManager(home.db_path) as state:
        job_id = state.insert("background_jobs", {"pid": os.getpid(), "job_type": "test", "status": "running",
                                                  "log_file": str(log), "heartbeat_at": "2001-01-01T00:00:00+00:00"})  # fmt: skip
    return job_id, log


def row(home: Home, job_id: int) -> dict:
    with StateManager(home.db_path) as state:
        return state.get("background_jobs", job_id)


def test_the_heartbeat_writes_the_time_and_the_commands_progress(home: Home) -> None:
    job_id, _ = new_job(home)
    with JobSession(home.db_path, job_id, interval_s=0.05) as session:
        assert row(home, job_id)["heartbeat_at"] > "2001-01-01T00:00:00+00:00"  # beat on entry
        with rich_progress(False) as progress:
            assert isinstance(progress, TrackedProgress)
            first = progress.task("loading", 2)
            points = progress.task("points", 10)
            progress.update(points, 3)
            progress.finish(first)
            wait_for(lambda: row(home, job_id)["progress"] == [{"description": "loading", "completed": 2, "total": 2},
                                                              {"description": "points", "completed": 3, "total": 10}],
                     5, "the progress in the row")  # fmt: skip
            progress.advance(points, 2, description="points (2 workers)")
            wait_for(lambda: row(home, job_id)["progress"][-1]["completed"] == 5, 5, "the next beat")
        session.exit_code = 0
    done = row(home, job_id)
    assert (done["status"], done["exit_code"], done["error_message"]) == ("completed", 0, None)
    assert done["completed_at"] is not None
    assert done["progress"][-1] == {"description": "points (2 workers)", "completed": 5, "total": 10}
    with rich_progress(False) as progress:  # the observer is gone with the session
        assert type(progress) is Progress


def test_a_failed_command_records_its_exit_code_and_last_error_line(home: Home) -> None:
    job_id, _ = new_job(home, "working\nerror: no data in /x (no catalog/): ingest first\n\n")
    with JobSession(home.db_path, job_id, interval_s=30) as session:
        session.exit_code = 2
    done = row(home, job_id)
    assert (done["status"], done["exit_code"]) == ("failed", 2)
    assert done["error_message"] == "error: no data in /x (no catalog/): ingest first"


def test_an_exception_leaving_the_command_fails_the_job(home: Home) -> None:
    job_id, _ = new_job(home)
    with pytest.raises(RuntimeError, match="engine blew up"), JobSession(home.db_path, job_id, interval_s=30):
        raise RuntimeError("engine blew up")
    done = row(home, job_id)
    assert (done["status"], done["exit_code"], done["error_message"]) == ("failed", 1, "RuntimeError: engine blew up")


def test_a_killed_job_stays_killed(home: Home) -> None:
    job_id, _ = new_job(home)
    with JobSession(home.db_path, job_id, interval_s=30) as session:
        with StateManager(home.db_path) as state:
            state.update("background_jobs", job_id, {"status": "killed"})
        session.exit_code = 130
    assert row(home, job_id)["status"] == "killed"


def test_heartbeat_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VQ_JOB_HEARTBEAT_S", raising=False)
    assert heartbeat_interval() == 30.0
    monkeypatch.setenv("VQ_JOB_HEARTBEAT_S", "0.5")
    assert heartbeat_interval() == 0.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("VQ_JOB_HEARTBEAT_S", bad)
        assert heartbeat_interval() == 30.0


def test_last_line_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    assert last_line(path) is None
    path.write_text("a\nb  \n\n   \n")
    assert last_line(path) == "b"
