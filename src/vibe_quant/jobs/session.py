"""The job's own side: inside a process started by :func:`~vibe_quant.jobs.runner.start_job`
(``VQ_JOB_ID`` set), beat every :data:`~vibe_quant.jobs.health.HEARTBEAT_S` seconds with the
latest progress, and record how the command ended."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
from pathlib import Path

from vibe_quant.home import resolve_home
from vibe_quant.jobs.health import HEARTBEAT_S, iso_utc, now_utc
from vibe_quant.jobs.runner import HEARTBEAT_ENV, JOB_ENV
from vibe_quant.progress import TrackedProgress, observe
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)
TAIL_BYTES = 16_384


def heartbeat_interval() -> float:
    """``$VQ_JOB_HEARTBEAT_S`` (tests shorten it), else :data:`HEARTBEAT_S`."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_S))
    except ValueError:
        return HEARTBEAT_S
    return value if value > 0 else HEARTBEAT_S


def last_line(path: Path | None) -> str | None:
    """The last non-blank line of `path` (what a failed command said last), or None."""
    if path is None or not path.is_file():
        return None
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
        lines = [line.strip() for line in fh.read().decode("utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:2000] if lines else None


class JobSession:
    """Beat for background job `job_id` while the command runs; record its end on exit.

    Set ``exit_code`` before leaving the block; an exception leaving it marks the job failed
    with that exception.

    Parameters
    ----------
    db_path : Path
        The state database holding the job's row.
    job_id : int
        The ``background_jobs`` id.
    interval_s : float, default HEARTBEAT_S (30)
        Seconds between heartbeats.
    """

    def __init__(self, db_path: Path, job_id: int, interval_s: float = HEARTBEAT_S):
        self.db_path, self.job_id, self.interval_s = db_path, job_id, interval_s
        self.exit_code: int | None = None
        self._sinks: list[TrackedProgress] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat", daemon=True)

    @classmethod
    def from_env(cls) -> JobSession | None:
        """The session of this process's job (``VQ_JOB_ID``, ``VQ_HOME``), or None outside a job."""
        raw = os.environ.get(JOB_ENV)
        if not raw:
            return None
        if not raw.isdigit():
            log.warning("%s=%r is not a job id: no job heartbeat", JOB_ENV, raw)
            return None
        return cls(resolve_home().db_path, int(raw), heartbeat_interval())

    def progress(self) -> list[dict]:
        """Every progress task of the command so far, in creation order."""
        return [task for sink in list(self._sinks) for task in sink.snapshot()]

    def __enter__(self) -> JobSession:
        observe(self._sinks.append)
        with StateManager(self.db_path) as state:
            if not state.update("background_jobs", self.job_id, {"heartbeat_at": iso_utc(now_utc())}):
                log.warning("no background job %d in %s: this run is not recorded as a job", self.job_id, self.db_path)
        self._thread.start()
        return self

    def _beat(self) -> None:
        with StateManager(self.db_path) as state:
            while not self._stop.wait(self.interval_s):
                try:
                    state.update("background_jobs", self.job_id, {"heartbeat_at": iso_utc(now_utc()),
                                                                  "progress": self.progress()})  # fmt: skip
                except sqlite3.OperationalError as exc:  # busy past the timeout: the next beat retries
                    log.warning("job %d heartbeat not written: %s", self.job_id, exc)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        self._thread.join()
        observe(None)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        code = self.exit_code if exc is None else 1
        if code is None:
            code = 0
        message = None
        if exc is not None:
            message = f"{type(exc).__name__}: {exc}"[:2000]
        elif code != 0:
            with StateManager(self.db_path) as state:
                row = state.get("background_jobs", self.job_id)
            message = last_line(Path(row["log_file"])) if row and row.get("log_file") else None
            message = message or f"exited with code {code}"
        now = iso_utc(now_utc())
        with StateManager(self.db_path) as state:
            cur = state.conn.execute(
                "UPDATE background_jobs SET status = ?, exit_code = ?, completed_at = ?, heartbeat_at = ?, "
                "error_message = ?, progress = ? WHERE id = ? AND status != 'killed'",
                ("completed" if code == 0 else "failed", code, now, now, message,
                 json.dumps(self.progress(), sort_keys=True), self.job_id),
            )  # fmt: skip
            row = state.get("background_jobs", self.job_id) if code != 0 and cur.rowcount == 1 else None
        if row is not None:  # failed (a killed job was stopped on purpose: no alert)
            from vibe_quant.alerts import job_failed

            job_failed(self.db_path, self.job_id, row.get("command") or row.get("job_type"), message)
