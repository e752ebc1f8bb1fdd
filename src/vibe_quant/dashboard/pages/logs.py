"""Logs: the runs' JSON event logs (``logs/events/<run_id>.jsonl``) and the application log (``logs/vq.log``),
filtered with DuckDB where they lie, and the stored alerts (docs/specs.md#alerts)."""

from __future__ import annotations

import streamlit as st

from vibe_quant.dashboard import common, readers


def render() -> None:
    common.page_header("Logs", "Event logs of the runs and the application log, queried with DuckDB in place; "
                               "the alerts sent (or held, failed) to Telegram.")  # fmt: skip
    h = common.home()
    events_tab, app_tab, alerts_tab = st.tabs(["Event logs", "Application log", "Alerts"])
    with events_tab:
        _events(h)
    with app_tab:
        _app_log(h)
    with alerts_tab:
        _alerts(h)


def _alerts(h) -> None:
    import pandas as pd

    from vibe_quant.alerts import KINDS, list_alerts

    left, right = st.columns([3, 1])
    kind = left.selectbox("kind", ["all", *KINDS], key="alerts_kind")
    limit = right.number_input("max rows", min_value=1, max_value=10_000, value=200, step=50, key="alerts_limit")
    rows = list_alerts(h.db_path, limit=int(limit), kind=None if kind == "all" else kind)
    if not rows:
        st.info("No alerts stored yet: halts, breakers, errors and failed jobs are stored here (and sent to Telegram "
                "when it is configured on Settings).")  # fmt: skip
        return
    st.caption("Newest first. held: within a minute of the last message of its kind, summarised in the next one; "
               "unconfigured: no Telegram token or chat id.")  # fmt: skip
    frame = pd.DataFrame([{"id": r["id"], "created (UTC)": r["created_at"], "kind": r["kind"], "status": r["status"],
                           "severity": r["severity"], "text": r["text"], "attempts": r["attempts"],
                           "error": r["error"] or ""} for r in rows])  # fmt: skip
    st.dataframe(frame, hide_index=True, width="stretch")


def _events(h) -> None:
    facets = readers.event_facets(h)
    if not facets["runs"]:
        st.info(f"No event log in {h.logs / 'events'} yet: every backtest writes one.")
        return
    left, mid, right = st.columns([2, 2, 1])
    runs = left.multiselect("runs", facets["runs"], key="logs_runs", placeholder="all runs")
    types = mid.multiselect("event types", facets["types"], key="logs_types", placeholder="all types")
    limit = right.number_input("max rows", min_value=1, max_value=1_000_000, value=1000, step=100, key="logs_limit")
    left, mid, right = st.columns([1, 1, 2])
    start = left.date_input("from (UTC)", value=facets["first"], min_value=facets["first"], max_value=facets["last"],
                            key="logs_from")  # fmt: skip
    end = mid.date_input("to (UTC, inclusive)", value=facets["last"], min_value=facets["first"],
                         max_value=facets["last"], key="logs_to")  # fmt: skip
    text = right.text_input("text (any field, case-insensitive)", key="logs_text")
    frame = readers.query_events(h, runs=runs or None, types=types or None, start=start, end=end,
                                 text=text.strip() or None, limit=int(limit))  # fmt: skip
    st.metric("matching events", len(frame), help="capped at max rows")
    st.dataframe(frame, hide_index=True, width="stretch")


def _app_log(h) -> None:
    path = readers.app_log_path(h)
    if not path.is_file():
        st.info(f"No application log at {path} yet: `vq` commands that write to the home log there.")
        return
    left, mid, right = st.columns([2, 2, 1])
    levels = left.multiselect("levels", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], key="applog_levels",
                              placeholder="all levels")  # fmt: skip
    text = mid.text_input("text (logger, message, traceback)", key="applog_text")
    limit = right.number_input("max rows", min_value=1, max_value=1_000_000, value=1000, step=100, key="applog_limit")
    frame = readers.query_app_log(h, levels=levels or None, text=text.strip() or None, limit=int(limit))
    st.metric("matching lines", len(frame), help="newest first, capped at max rows")
    st.dataframe(frame, hide_index=True, width="stretch")
