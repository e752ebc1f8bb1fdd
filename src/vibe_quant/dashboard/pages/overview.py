"""Overview: system health (catalog, state database, disk), active jobs, recent runs, recent alerts."""

from __future__ import annotations

import shutil

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, widgets
from vibe_quant.home import Home


def folder_bytes(path) -> int:
    from vibe_quant.dashboard.readers import folder_size

    return folder_size(path)[1]


def render() -> None:
    from vibe_quant.jobs import reconcile

    common.page_header("Overview", "Mission Control: the system's health, what runs now, what ran, what went wrong.")
    h = common.home()
    changed = reconcile(h) if h.db_path.exists() else []
    for change in changed:
        st.warning(f"{change.table} {change.row_id}: {change.error_message}")
    health(h)
    st.subheader("Active jobs")
    widgets.live_jobs_panel(h, key="overview")
    recent_runs(h)
    recent_alerts(h)


def health(h: Home) -> None:
    st.subheader("System health")
    c = st.columns(4)
    symbols = 0
    if h.db_path.exists():
        symbols = common.state().count("instruments")
    c[0].metric("catalog", f"{folder_bytes(h.catalog) / 1e6:,.1f} MB", f"{symbols} instruments", delta_color="off")
    db_mb = sum(p.stat().st_size for p in h.state_dir.glob("vibe_quant.db*")) / 1e6 if h.state_dir.exists() else 0.0
    version = common.state().conn.execute("PRAGMA user_version").fetchone()[0] if h.db_path.exists() else "-"
    c[1].metric("state database", f"{db_mb:,.1f} MB", f"schema v{version}", delta_color="off")
    usage = shutil.disk_usage(h.root if h.root.exists() else h.root.parent)
    c[2].metric("disk free", f"{usage.free / 1e9:,.1f} GB", f"{100 * usage.free / usage.total:.0f}% of {usage.total / 1e9:,.0f} GB",
                delta_color="off")  # fmt: skip
    c[3].metric("raw archive", f"{folder_bytes(h.archive) / 1e6:,.1f} MB")


def recent_runs(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs

    st.subheader("Recent runs")
    runs = list_runs(h, limit=10) + list_runs(h, limit=5, sweeps=True)
    if not runs:
        st.caption("nothing has run yet")
        return
    table = pd.DataFrame([{
        "id": r["id"], "kind": "sweep" if r["points"] else "backtest", "status": r["status"], "strategy": r["strategy"],
        "symbols": ",".join(r["symbols"]), "tf": r["timeframe"], "period": f"{r['start_date']}..{r['end_date']}",
        "Sharpe": r.get("sharpe_ratio"), "return %": None if r.get("total_return") is None else 100 * r["total_return"],
        "points": r["points"] or None, "created": r["created_at"],
    } for r in sorted(runs, key=lambda r: r["id"], reverse=True)])  # fmt: skip
    st.dataframe(table, hide_index=True, width="stretch", key="recent_runs")


def recent_alerts(h: Home) -> None:
    """Circuit-breaker trips of recent runs and failed runs and jobs (Telegram alerts arrive with their own issue)."""
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.dashboard.readers import breaker_runs, iso_ns
    from vibe_quant.jobs import list_jobs

    st.subheader("Recent alerts")
    alerts = [{"when": r["created_at"], "what": f"run {r['id']} failed", "detail": r.get("error_message")}
              for r in list_runs(h, limit=30, status="failed")]  # fmt: skip
    for run in breaker_runs(h, limit=30):
        for trip in run["trips"]:
            alerts.append({"when": iso_ns(trip.get("ts")), "what": f"run {run['id']}: {trip.get('scope')} "
                           f"{trip.get('breaker')}", "detail": f"{trip.get('value'):.4g} >= {trip.get('limit')}"})  # fmt: skip
    for job in list_jobs(h)[:30]:
        if job.status in ("failed", "killed"):
            alerts.append({"when": job.completed_at or job.started_at, "what": f"job {job.id} {job.status}",
                           "detail": job.error_message})  # fmt: skip
    if not alerts:
        st.caption("no alert")
        return
    st.dataframe(pd.DataFrame(alerts).sort_values("when", ascending=False, na_position="last"), hide_index=True,
                 width="stretch", key="recent_alerts")  # fmt: skip
