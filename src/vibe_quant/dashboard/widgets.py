"""Pieces several pages show: the background-jobs panel, run pickers, cached loaders of stored results."""

from __future__ import annotations

import streamlit as st

from vibe_quant.dashboard import common
from vibe_quant.home import Home


def start_job(h: Home, argv: list[str], job_type: str, label: str) -> int | None:
    """Start `vq <argv>` as a background job; flash its id and log (a bad command is shown, not raised)."""
    from vibe_quant.errors import VibeQuantError
    from vibe_quant.jobs import start_job as start

    try:
        job = start(h, argv, job_type=job_type, label=label)
    except VibeQuantError as exc:
        common.show_error(exc, "the job did not start")
        return None
    common.flash(f"job {job} started: vq {' '.join(argv)}")
    return job


def jobs_panel(h: Home, active_only: bool = True, key: str = "jobs") -> None:
    """Background jobs with status (stale and gone shown as such), heartbeat age, progress, a log tail and a
    kill button (with confirmation)."""
    from vibe_quant.jobs import job_log, kill_job, list_jobs

    jobs = list_jobs(h, active_only=active_only)
    if not jobs:
        st.caption("no active job" if active_only else "no job yet")
        return
    for job in jobs[:30]:
        age = "-" if job.heartbeat_age_s is None else f"{job.heartbeat_age_s:.0f} s"
        state = job.health if job.health != job.status else job.status
        with st.container(border=True):
            top = st.columns([1, 4, 2, 2])
            top[0].markdown(f"**job {job.id}**")
            top[1].markdown(f"`{job.label or job.job_type}` {' '.join(job.command)[:120]}")
            top[2].markdown(f"status **{state}** · pid {job.pid}")
            top[3].markdown(f"heartbeat {age} ago")
            for task in job.progress:
                total, done = task.get("total"), task.get("completed") or 0
                text = f"{task.get('description', '')}: {done:,.0f}" + (f"/{total:,.0f}" if total else "")
                st.progress(min(1.0, done / total) if total else 0.0, text=text)
            if job.error_message:
                st.error(job.error_message)
            with st.expander("log"):
                st.code(job_log(h, job.id, tail=40) or "(empty)", language=None)
            if job.status == "running" and common.confirm(f"{key}-kill-{job.id}", f"Kill job {job.id}",
                                                          f"Kill job {job.id} and its workers (SIGTERM, then SIGKILL)?"):  # fmt: skip
                outcome = kill_job(h, job.id)
                common.flash(f"job {job.id}: {outcome.status} ({', '.join(outcome.signals)})")
                st.rerun()


POLL_S = 2  # how often a page with running jobs re-reads them (docs/specs.md#dashboard-and-background-jobs)


@st.fragment(run_every=POLL_S)
def _polled_jobs_panel(h: Home, key: str) -> None:
    jobs_panel(h, active_only=True, key=key)


def live_jobs_panel(h: Home, key: str) -> None:
    """The active jobs, re-read every :data:`POLL_S` seconds while any runs (only this panel reruns)."""
    from vibe_quant.jobs import list_jobs

    if list_jobs(h, active_only=True):
        _polled_jobs_panel(h, key)
    else:
        jobs_panel(h, active_only=True, key=key)


def run_choice(runs: list[dict], label: str, key: str, param: str) -> dict | None:
    """A select box of stored runs that follows the URL's `param` query parameter (links open a run directly)."""
    return query_choice(runs, label, key, param, describe_run)


def query_choice(rows: list[dict], label: str, key: str, param: str, describe) -> dict | None:
    """A select box of `rows` (each with an ``id``; shown as ``describe(row)``) that follows the URL's `param`
    query parameter; the first row is chosen when the URL names none of them. None without rows."""
    if not rows:
        return None
    ids = [r["id"] for r in rows]
    wanted = st.query_params.get(param)
    index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in ids else 0
    names = {r["id"]: describe(r) for r in rows}
    chosen = st.selectbox(label, ids, index=index, format_func=names.get, key=key)
    if str(chosen) != st.query_params.get(param):
        st.query_params[param] = str(chosen)
    return next(r for r in rows if r["id"] == chosen)


def describe_run(r: dict) -> str:
    extra = f", {r['points']} points" if r.get("points") else ""
    return (f"{r['id']}: {r['strategy']} {','.join(r['symbols'])} {r['timeframe']} {r['start_date']}..{r['end_date']} "
            f"[{r['status']}{extra}]")  # fmt: skip
