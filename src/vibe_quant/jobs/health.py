"""Is a ``running`` row really running? Liveness of background jobs and backtest runs, and reconciliation.

A row (``background_jobs`` or ``backtest_runs``) with status ``running`` is:

- ``gone`` when its pid no longer exists on this machine, or now belongs to a process that
  started after the row's process did (the pid was reused);
- ``stale`` when its last heartbeat is older than :data:`STALE_S` seconds (jobs beat every
  :data:`HEARTBEAT_S` seconds, backtests and sweeps every 5);
- ``running`` otherwise.

Pids only mean something on the machine that started them: a row whose ``host`` is another
machine is judged by its heartbeat alone (rows without a host are taken as local).
:func:`reconcile` marks gone and stale rows ``failed`` with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from vibe_quant.home import Home
from vibe_quant.jobs.procs import pid_alive, process_start, this_host
from vibe_quant.state import StateManager

HEARTBEAT_S = 30.0
STALE_S = 120.0
# A process must have started by the time its row says it did; allow for clock ticks and the
# whole seconds the rows store.
START_SLACK_S = 2.0
FINAL = ("completed", "failed", "killed", "cancelled")


@dataclass(frozen=True)
class Health:
    """What a row's status means now: ``running``, ``stale``, ``gone``, or its final status.

    ``heartbeat_age_s`` is the seconds since its last heartbeat (or start), None without either.
    """

    state: str
    heartbeat_age_s: float | None


@dataclass(frozen=True)
class Change:
    """One row :func:`reconcile` marked failed."""

    table: str
    row_id: int
    pid: int | None
    health: str  # gone or stale
    error_message: str


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso_utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def parse_time(text: str | None) -> dt.datetime | None:
    """A stored time (ISO 8601, or SQLite's naive ``datetime('now')``, which is UTC) as aware UTC."""
    if not text:
        return None
    when = dt.datetime.fromisoformat(text)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def process_alive(row: dict) -> bool:
    """Whether the row's process still runs on this machine (False for another host's row, or no pid)."""
    pid, host = row.get("pid"), row.get("host")
    if pid is None or (host is not None and host != this_host()):
        return False
    return pid_alive(pid) and _same_process(row, pid)


def _same_process(row: dict, pid: int) -> bool:
    started = process_start(pid)
    if started is None:
        return False
    if row.get("pid_started") is not None:
        return abs(started - float(row["pid_started"])) <= 1.0
    row_started = parse_time(row.get("started_at"))
    return row_started is None or started <= row_started.timestamp() + START_SLACK_S


def job_health(row: dict, now: dt.datetime | None = None) -> Health:
    """How a ``background_jobs`` or ``backtest_runs`` row stands at `now` (default: the clock).

    Parameters
    ----------
    row : dict
        The row, with at least ``status``, ``pid``, ``heartbeat_at`` and ``started_at``; ``host``
        and ``pid_started`` are used when present.
    now : datetime, optional
        Aware UTC time to judge the heartbeat against (default: now).

    Returns
    -------
    Health
        ``running``, ``stale`` or ``gone`` for a running row, else its status unchanged.
    """
    now = now or now_utc()
    beat = parse_time(row.get("heartbeat_at")) or parse_time(row.get("started_at"))
    age = None if beat is None else max(0.0, (now - beat).total_seconds())
    status = row.get("status") or "pending"
    if status != "running":
        return Health(status, age)
    local = row.get("host") is None or row.get("host") == this_host()
    if row.get("pid") is not None and local and not process_alive(row):
        return Health("gone", age)
    if age is not None and age > STALE_S:
        return Health("stale", age)
    return Health("running", age)


def failure_message(health: str, pid: int | None, age: float | None, now: dt.datetime) -> str:
    when = iso_utc(now)
    if health == "gone":
        return f"process {pid} is gone (killed or crashed) — marked failed on {when}"
    return f"no heartbeat for {age:.0f} s (stale) — marked failed on {when}"


def reconcile(home: Home, now: dt.datetime | None = None) -> list[Change]:
    """Mark every ``running`` background job, backtest run and discovery run whose process is gone or whose
    heartbeat is stale as ``failed``, saying why; return what changed (nothing without a database).

    Call it when the dashboard starts and before listing jobs or runs. A row that finishes while
    this runs keeps its own final status (only rows still ``running`` are updated).
    """
    if not home.db_path.exists():
        return []
    now = now or now_utc()
    changes: list[Change] = []
    with StateManager(home.db_path) as state:
        for table in ("background_jobs", "backtest_runs", "discovery_runs"):
            for row in state.find(table, status="running"):
                health = job_health(row, now)
                if health.state not in ("gone", "stale"):
                    continue
                message = failure_message(health.state, row.get("pid"), health.heartbeat_age_s, now)
                cur = state.conn.execute(
                    f"UPDATE {table} SET status = 'failed', completed_at = ?, error_message = ? "
                    "WHERE id = ? AND status = 'running'",
                    (iso_utc(now), message, row["id"]),
                )
                if cur.rowcount == 1:
                    changes.append(Change(table, row["id"], row.get("pid"), health.state, message))
    return changes
