"""Terminal views of background jobs (``vq jobs list``) and of rows marked failed by reconciliation."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from vibe_quant.present.format import fmt

COMMAND_WIDTH = 60
STYLES = {"running": "green", "stale": "yellow", "gone": "red", "failed": "red", "killed": "magenta"}


def age(seconds: float | None) -> str:
    """``42s ago``, ``3m ago``, ``2h ago``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def progress_cell(tasks) -> str:
    """The newest progress task: ``description completed/total`` (``-`` without one)."""
    if not tasks:
        return "-"
    task = tasks[-1]
    total = task.get("total")
    done = fmt(task.get("completed"), ",.0f") if task.get("completed") is not None else "?"
    text = f"{task.get('description', '')} {done}"
    return f"{text}/{fmt(total, ',.0f')}" if total else text


def jobs_table(jobs, title: str) -> Table:
    """Background jobs (:class:`vibe_quant.jobs.Job`), one line each; status is the health now
    (running, stale, gone, or the final status)."""
    table = Table(title=title, title_justify="left")
    for col in ("id", "type", "label / command", "status", "pid", "heartbeat", "progress", "started", "log"):
        table.add_column(col, justify="right" if col in ("id", "pid") else "left", overflow="fold")
    for job in jobs:
        what = job.label or "vq " + " ".join(job.command)
        what = what if len(what) <= COMMAND_WIDTH else what[: COMMAND_WIDTH - 1] + "…"  # vq jobs list --json: all of it
        status = job.health
        if job.exit_code is not None and status in ("completed", "failed"):
            status += f" ({job.exit_code})"
        style = STYLES.get(job.health)
        table.add_row(str(job.id), job.job_type, escape(what), f"[{style}]{status}[/]" if style else status,
                      str(job.pid), age(job.heartbeat_age_s), escape(progress_cell(job.progress)),
                      (job.started_at or "-").replace("T", " ").removesuffix("+00:00"), job.log_file or "-")  # fmt: skip
    return table


def reconciled_lines(changes) -> list[str]:
    """One line per row :func:`vibe_quant.jobs.reconcile` just marked failed."""
    names = {"background_jobs": "job", "backtest_runs": "run"}
    return [f"[yellow]marked failed:[/] {names.get(c.table, c.table)} {c.row_id}: {escape(c.error_message)}"
            for c in changes]  # fmt: skip
