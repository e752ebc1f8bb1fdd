"""Data Lake: the catalog (symbols, ranges, bars per timeframe, tick and custom streams), the raw
archive, the coverage heatmap, quality (gaps, duplicates, OHLC anomalies, failed ingests), and
ingest / update / rebuild / validate launched as background jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, widgets
from vibe_quant.home import Home

DATASETS = ("klines", "fundingRate", "aggTrades", "trades", "bookTicker", "metrics", "bookDepth", "markPriceKlines",
            "indexPriceKlines", "premiumIndexKlines")  # fmt: skip


@st.cache_resource(max_entries=2, show_spinner="reading the catalog...")
def _summary(root: str, stamp: float) -> dict:
    """The catalog's manifest.json (written by every ingest and validate); summarised afresh without one."""
    from vibe_quant.data.validate import summarize
    from vibe_quant.state import StateManager

    h = Home(Path(root))
    manifest = h.catalog / "manifest.json"
    if manifest.is_file():
        return json.loads(manifest.read_text())
    with StateManager(h.db_path) as db:
        return summarize(h, db)


@st.cache_resource(max_entries=2, show_spinner="counting bars per day...")
def _coverage(root: str, stamp: float) -> list[dict]:
    from vibe_quant.data.validate import daily_coverage
    from vibe_quant.state import StateManager

    h = Home(Path(root))
    with StateManager(h.db_path) as db:
        return daily_coverage(h, db)


def render() -> None:
    common.page_header("Data Lake", "The Parquet catalog, the raw archive it is rebuilt from, and its quality.")
    h = common.home()
    if not h.db_path.exists() or not (h.catalog / "data").is_dir():
        st.info("The catalog is empty: ingest data below or with `vq data ingest` (or run `vq demo`).")
        jobs_forms(h)
        return
    manifest = h.catalog / "manifest.json"
    stamp = manifest.stat().st_mtime if manifest.exists() else 0.0
    summary = _summary(str(h.root), stamp)
    symbols = summary.get("symbols", {})
    st.caption(f"manifest generated {summary.get('generated_at', '-')} (code {summary.get('code_version', '-')})")
    st.subheader("Catalog")
    rows = []
    for symbol, s in symbols.items():
        for tf, t in s.get("timeframes", {}).items():
            if t.get("bars"):
                rows.append({"symbol": symbol, "timeframe": tf, "bars": t["bars"], "files": t["files"],
                             "first close": t["first_close"], "last close": t["last_close"]})  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="catalog_table")
    streams = [{"symbol": symbol, "stream": name, **{k: v for k, v in info.items() if not isinstance(v, dict | list)}}
               for symbol, s in symbols.items() for name, info in (s.get("streams") or {}).items()]  # fmt: skip
    if streams:
        st.markdown("**Tick and custom streams**")
        st.dataframe(pd.DataFrame(streams), hide_index=True, width="stretch", key="streams_table")
    st.subheader("Coverage")
    coverage = _coverage(str(h.root), stamp)
    if coverage:
        from vibe_quant.plots.coverage import coverage_figure

        st.plotly_chart(coverage_figure(coverage), key="coverage", width="stretch")
    quality(summary)
    st.subheader("Raw archive")
    archive = summary.get("archive", {})
    st.markdown(f"{archive.get('files', 0):,} files, {archive.get('bytes', 0) / 1e6:,.1f} MB in `{h.archive}`")
    by = archive.get("by_dataset", {})
    if by:
        st.dataframe(pd.DataFrame([{"dataset": k, **v} for k, v in by.items()]), hide_index=True, key="archive_table")
    jobs_forms(h)


def quality(summary: dict) -> None:
    """Gaps, duplicates, OHLC anomalies and failed ingests, one row per symbol."""
    st.subheader("Quality")
    duplicates: dict[str, int] = {}
    for key, d in summary.get("datasets", {}).items():
        symbol = key.rsplit("/", 1)[-1]
        duplicates[symbol] = duplicates.get(symbol, 0) + int(d.get("duplicates", 0))
    rows = []
    for symbol, s in summary.get("symbols", {}).items():
        gaps = s.get("gaps_1m") or {}
        rows.append({
            "symbol": symbol, "1m gaps": gaps.get("count", 0), "missing 1m bars": gaps.get("missing_bars", 0),
            "duplicates dropped": duplicates.get(symbol, 0),
            "OHLC violations": s.get("ohlc_violations", "run validate --deep"),
            "aggregation mismatches": s.get("aggregation_mismatches", "run validate --deep"),
            "irregular funding": len((s.get("funding") or {}).get("irregular", []) or []),
        })  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="quality_table")
    errors = summary.get("ingest_errors") or []
    if isinstance(errors, dict):
        errors = [{"key": k, "count": v} for k, v in errors.items()]
    if errors:
        st.markdown("**Failed ingests**")
        st.dataframe(pd.DataFrame(errors), hide_index=True, key="ingest_errors")
    else:
        st.caption("no failed ingest")


def jobs_forms(h: Home) -> None:
    st.subheader("Ingest, update, rebuild, validate (background jobs)")
    ingest_tab, update_tab, rebuild_tab, validate_tab = st.tabs(["Ingest", "Update", "Rebuild", "Validate"])
    with ingest_tab, st.form("ingest"):
        symbols = st.text_input("symbols (comma-separated)", placeholder="BTCUSDT,ETHUSDT")
        datasets = st.multiselect("datasets", DATASETS, default=["klines", "fundingRate"])
        c = st.columns(3)
        start = c[0].date_input("start (UTC)", value=None)
        end = c[1].date_input("end (UTC, inclusive)", value=None)
        market = c[2].selectbox("market", ["um", "cm", "spot"])
        source = st.text_input("source (archive URL or a local directory; empty: data.binance.vision)")
        if st.form_submit_button("Launch the ingest", type="primary"):
            if not symbols.strip():
                st.error("give at least one symbol")
            else:
                argv = ["data", "ingest", "--symbols", symbols.replace(" ", ""), "--datasets", ",".join(datasets),
                        "--market", market]  # fmt: skip
                argv += [a for flag, d in (("--start", start), ("--end", end)) if d for a in (flag, d.isoformat())]
                if source.strip():
                    argv += ["--source", source.strip()]
                if widgets.start_job(h, argv, "ingest", f"ingest {symbols}"):
                    st.rerun()
    with update_tab, st.form("update"):
        since = st.text_input("since", value="auto", help="'auto' (after the last 1m bar) or YYYY-MM-DD")
        if st.form_submit_button("Launch the update (Binance REST)") and widgets.start_job(
            h, ["data", "update", "--since", since], "update", "update from REST"):  # fmt: skip
            st.rerun()
    with rebuild_tab:
        st.caption("Rebuilds the whole catalog from the raw archive and reports whether it is byte-identical.")
        if common.confirm("rebuild", "Rebuild the catalog", "Replace every catalog file by a rebuild from the archive?") \
                and widgets.start_job(h, ["data", "rebuild", "--from-archive"], "rebuild", "rebuild from archive"):  # fmt: skip
            st.rerun()
    with validate_tab, st.form("validate"):
        deep = st.checkbox("deep (decode every bar: OHLC and aggregation checks)", value=True)
        if st.form_submit_button("Launch the validation") and widgets.start_job(
            h, ["data", "validate", "--deep" if deep else "--no-deep"], "validate", "validate catalog"):  # fmt: skip
            st.rerun()
