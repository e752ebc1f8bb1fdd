"""DOLPHIN: the scan tables of the home (``vq dolphin scans build``, docs/specs.md#dolphin-scans), the engine's
runs (``vq dolphin backtest``, docs/specs.md#dolphin-engine) and forms starting either as a background job.

A scan directory's view shows its universe, definitions and days, vel_div over every stored row with the
signal thresholds and the share of rows below each, the velocities of the short and long windows, the
perpetuals left out and why, and one day's rows. Everything is read from the day files and the manifest;
nothing is recomputed. The chosen directory follows the URL (``/dolphin?scans=<name>``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, widgets
from vibe_quant.home import Home

TIMEFRAMES = ["1h", "1m", "5m", "15m", "4h"]
WORKERS = max(1, min(4, os.cpu_count() or 1))
EMPTY = ("No scan table yet. Build one from the *Build scans* tab, or on the command line: "
         "`vq dolphin scans build --start 2025-12-31 --end 2026-02-25` (hourly bars of many perpetuals first: "
         "`vq data import-csv ../shared/data/perps-1d-1h/*_USDT_1h.csv`).")  # fmt: skip


def render() -> None:
    common.page_header("DOLPHIN", "Correlation-eigenvalue scan tables written by `vq dolphin scans build`: vel_div, "
                       "the window velocities and the universe's closes, one Parquet file per UTC date.")  # fmt: skip
    h = common.home()
    browse, runs, live, launch = st.tabs(["Scan tables", "Engine runs", "Live", "Build scans"])
    with browse:
        browse_view(h)
    with live:
        live_view()
    with runs:
        engine_runs_view(h)
        engine_form(h)
    with launch:
        launch_form(h)
        st.subheader("Active jobs")
        widgets.live_jobs_panel(h, key="dolphin")


def scan_dirs(h: Home) -> list[Path]:
    root = h.root / "dolphin" / "scans"
    return sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []


@st.cache_data(max_entries=4, show_spinner=False)
def _series(directory: str, stamp: float, columns: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vibe_quant.dolphin import store

    tables = [pq.read_table(p, columns=list(columns)) for p in store.day_files(Path(directory)).values()]
    table = pa.concat_tables(tables)
    frame = table.drop(["ts"]).to_pandas()
    frame.insert(0, "ts", table.column("ts").cast(pa.int64()).to_numpy())
    return frame


def browse_view(h: Home) -> None:
    from vibe_quant.dolphin import store
    from vibe_quant.errors import UserError

    dirs = scan_dirs(h)
    if not dirs:
        st.info(EMPTY)
        return
    names = [d.name for d in dirs]
    wanted = st.query_params.get("scans")
    chosen = st.selectbox("scan directory", names, index=names.index(wanted) if wanted in names else 0,
                          key="dolphin_scans", help=f"under {h.root / 'dolphin' / 'scans'}")  # fmt: skip
    if chosen != st.query_params.get("scans"):
        st.query_params["scans"] = chosen
    directory = dirs[names.index(chosen)]
    try:
        m = store.read_manifest(directory)
    except UserError as exc:
        common.show_error(exc, f"cannot read {directory / 'manifest.json'}")
        return
    d = m["definitions"]
    c = st.columns(4)
    c[0].metric("perpetuals", m["n_assets"], help="the universe: every perpetual covering the range and the warm-up")
    c[1].metric("days", len(m["days"]), help=f"{m['first_day']}..{m['last_day']}")
    c[2].metric("rows", f"{m['vel_div']['rows']:,}", help=f"{m['rows_per_day']} per day, one per {d['timeframe']} bar")
    c[3].metric("rows below -0.02", common.fmt_pct(m["vel_div"]["below"].get("-0.02")),
                help="the DOLPHIN entry gate (short side)")  # fmt: skip
    st.caption(f"{d['timeframe']} rows · windows {d['windows']} · vel_div = {d['vel_div']} · lambda_max = "
               f"{d['lambda_max']} · {m['first_day']}..{m['last_day']} · `{directory}`")  # fmt: skip
    short, long = f"v{d['windows'][0]}_lambda_max_velocity", f"v{d['windows'][-1]}_lambda_max_velocity"
    frame = _series(str(directory), (directory / "manifest.json").stat().st_mtime, ("ts", "vel_div", short, long))
    from vibe_quant.plots.dolphin import vel_div_figure

    st.plotly_chart(vel_div_figure(frame["ts"].to_numpy(), frame["vel_div"].to_numpy(), frame[short].to_numpy(),
                                   frame[long].to_numpy()), key=f"dolphin-vel-div-{chosen}", width="stretch")  # fmt: skip
    q = m["vel_div"]
    st.dataframe(pd.DataFrame([{**{f"q{k}": v for k, v in q["quantiles"].items()},
                                **{f"share < {k}": v for k, v in q["below"].items()}}]),
                 hide_index=True, width="stretch", key=f"dolphin-quantiles-{chosen}")  # fmt: skip
    with st.expander(f"universe ({m['n_assets']}) and left out ({len(m['left_out'])})"):
        st.write(", ".join(m["universe"]))
        if m["left_out"]:
            st.dataframe(pd.DataFrame([{"perpetual": k, "why": v} for k, v in m["left_out"].items()]),
                         hide_index=True, width="stretch", key=f"dolphin-left-out-{chosen}")  # fmt: skip
    days = sorted(m["days"])
    day = st.selectbox("day", days, index=len(days) - 1, key=f"dolphin_day_{chosen}")
    table = store.read_day(directory, dt.date.fromisoformat(day))
    rows = table.to_pandas()
    st.dataframe(rows, hide_index=True, width="stretch", key=f"dolphin-day-{chosen}-{day}")
    acb_view(directory, chosen)


def acb_view(directory: Path, name: str) -> None:
    """The ACB's daily factor table of the directory (``vq dolphin acb-factors build``), when built."""
    from vibe_quant.dolphin.acb_build import read_acb_factors
    from vibe_quant.errors import UserError

    st.subheader("ACB factors")
    if not (directory / "acb_factors.parquet").is_file():
        st.info(f"No factor table for these scans yet: `vq dolphin acb-factors build --scans {directory}` (funding "
                "from the catalog, taker volumes from the raw lake, optional dvol/fng CSVs).")  # fmt: skip
        return
    try:
        table, meta = read_acb_factors(directory)
    except UserError as exc:
        common.show_error(exc, f"cannot read {directory / 'acb_factors.parquet'}")
        return
    config = meta["config"]
    if meta.get("look_ahead"):
        st.warning("LOOK-AHEAD: the w750 threshold is one percentile over every date (`--w750-threshold "
                   "full_sample`); do not judge a strategy out of sample on this table.")  # fmt: skip
    st.caption(f"{meta['first_date']}..{meta['last_date']} · w750 threshold {config['w750_threshold_mode']} "
               f"(p{config['w750_percentile']:g}, from {config['w750_min_history']} dates) · funding "
               f"{config['funding_symbol']} · taker {config['taker_symbol']} ({config['taker_definition']}) · "
               f"fng confirmation {config['fng_confirmation']}")  # fmt: skip
    st.dataframe(table.to_pandas(), hide_index=True, width="stretch", key=f"dolphin-acb-{name}")


def launch_form(h: Home) -> None:
    """The settings of ``vq dolphin scans build``, run as a background job."""
    st.caption("Reads the catalog's bars (at least two perpetuals covering the range and the warm-up before it: "
               "751 bars at the default windows); writes one file per complete UTC date.")  # fmt: skip
    with st.form("dolphin_launch"):
        c = st.columns(4)
        start = c[0].date_input("start (UTC)", value=None, key="dolphin_start")
        end = c[1].date_input("end (UTC, inclusive)", value=None, key="dolphin_end")
        timeframe = c[2].selectbox("timeframe", TIMEFRAMES, key="dolphin_timeframe")
        workers = c[3].number_input("workers", min_value=1, max_value=64, value=WORKERS, step=1, key="dolphin_workers")
        universe = st.text_input("universe", "all", key="dolphin_universe",
                                 help="`all`: every perpetual covering the range; or comma-separated symbols")  # fmt: skip
        windows = st.text_input("windows", "50,150,300,750", key="dolphin_windows", help="rows, increasing")
        force = st.checkbox("rebuild days already built (--force)", key="dolphin_force")
        submitted = st.form_submit_button("Build scans", type="primary")
    if not submitted:
        return
    problems = []
    if start is None or end is None:
        problems.append("choose a start and an end date")
    elif end < start:
        problems.append(f"end {end} is before start {start}")
    if problems:
        st.error("**not launched**: " + "; ".join(problems))
        return
    argv = ["dolphin", "scans", "build", "--start", start.isoformat(), "--end", end.isoformat(), "--timeframe",
            timeframe, "--universe", universe.strip() or "all", "--windows", windows.strip(), "--workers", str(workers)]  # fmt: skip
    if force:
        argv.append("--force")
    if widgets.start_job(h, argv, "dolphin scans", f"dolphin scans {timeframe} {start}..{end}"):
        st.rerun()


# -- engine runs (``vq dolphin backtest``) ---------------------------------------------------------------


def engine_bundles(h: Home) -> list[Path]:
    """Engine run folders under runs/, newest first."""
    found = [p for p in h.runs.glob("dolphin-*") if (p / "summary.json").is_file()] if h.runs.is_dir() else []
    return sorted(found, key=lambda p: (p / "summary.json").stat().st_mtime, reverse=True)


def engine_runs_view(h: Home) -> None:
    """One engine run: profile, headline metrics, the PnL and cost breakdown, bonus draws, equity, ledger, days."""
    import json

    import numpy as np
    import pyarrow.parquet as pq

    from vibe_quant.plots.run import equity_figure

    bundles = engine_bundles(h)
    if not bundles:
        st.info("No engine run yet. Run one below, or on the command line: `vq dolphin backtest --profile honest` "
                "(the scan tables first: the *Build scans* tab).")  # fmt: skip
        return
    names = [b.name for b in bundles]
    chosen = st.selectbox("engine run", names, key="dolphin_run", help=f"under {h.runs}")
    bundle = bundles[names.index(chosen)]
    summary = json.loads((bundle / "summary.json").read_text())
    m, c = summary["metrics"], summary["costs"]
    cols = st.columns(6)
    cols[0].metric("profile", summary["profile"], help="honest: fees and slips only; seed: also refunds and the edge")
    cols[1].metric("trades", c["trades"])
    cols[2].metric("net", f"{c['net']:,.2f}")
    cols[3].metric("total return", common.fmt_pct(m.get("total_return")))
    cols[4].metric("Sharpe", "-" if m.get("sharpe_ratio") is None else f"{m['sharpe_ratio']:.2f}")
    cols[5].metric("max drawdown", common.fmt_pct(m.get("max_drawdown")))
    st.caption(f"{summary['start']}..{summary['end']} · {len(summary['universe'])} assets · engine {summary['engine']} "
               f"· config {summary['config_digest']} · `{bundle}`")  # fmt: skip
    costs = {
        k: c[k] for k in ("price_pnl", "exit_slippage", "refunds", "edge", "gross", "entry_fees", "exit_fees", "net")
    }
    st.dataframe(pd.DataFrame([costs]), hide_index=True, width="stretch", key=f"dolphin-costs-{chosen}")
    st.caption(f"bonuses drawn: entry refund {c['refund_entry_draws']}, exit refund {c['refund_exit_draws']}, "
               f"legacy edge {c['edge_draws']} · exits: "
               + (", ".join(f"{k} {v}" for k, v in summary["exit_reasons"].items()) or "none"))  # fmt: skip
    for note in summary["notes"]:
        st.caption(f"note: {note}")
    equity = pq.read_table(bundle / "equity.parquet")
    ts = equity.column("ts").cast("int64").to_numpy()
    st.plotly_chart(equity_figure(ts, np.asarray(equity.column("equity").to_numpy()),
                                  summary["config"]["initial_capital"]), key=f"dolphin-equity-{chosen}", width="stretch")  # fmt: skip
    st.subheader("Trades")
    st.dataframe(pd.read_csv(bundle / "ledger.csv"), hide_index=True, width="stretch", key=f"dolphin-ledger-{chosen}")
    st.subheader("Days")
    st.dataframe(pd.read_csv(bundle / "daily.csv"), hide_index=True, width="stretch", key=f"dolphin-daily-{chosen}")


def engine_form(h: Home) -> None:
    """The settings of ``vq dolphin backtest``, run as a background job."""
    dirs = scan_dirs(h)
    st.subheader("Run the engine")
    if not dirs:
        st.caption("Needs scan tables (the *Build scans* tab).")
        return
    with st.form("dolphin_engine"):
        c = st.columns(4)
        scans = c[0].selectbox("scan directory", [d.name for d in dirs], key="dolphin_engine_scans")
        profile = c[1].selectbox("cost profile", ["honest", "seed"], key="dolphin_engine_profile",
                                 help="honest: fees and slips only; seed: also the refunds and the random edge")  # fmt: skip
        start = c[2].date_input("start (UTC)", value=None, key="dolphin_engine_start", help="empty: the first day")
        end = c[3].date_input("end (UTC, inclusive)", value=None, key="dolphin_engine_end", help="empty: the last day")
        config = st.text_input("engine config YAML", "", key="dolphin_engine_config",
                               help="empty: the shipped champion (dolphin_champion.yaml)")  # fmt: skip
        submitted = st.form_submit_button("Run the engine", type="primary")
    if not submitted:
        return
    if start is not None and end is not None and end < start:
        st.error(f"**not launched**: end {end} is before start {start}")
        return
    if config.strip() and not Path(config.strip()).is_file():
        st.error(f"**not launched**: no config file {config.strip()}")
        return
    argv = ["dolphin", "backtest", "--scans", str(dirs[[d.name for d in dirs].index(scans)]), "--profile", profile]
    if start is not None:
        argv += ["--start", start.isoformat()]
    if end is not None:
        argv += ["--end", end.isoformat()]
    if config.strip():
        argv += ["--config", config.strip()]
    if widgets.start_job(h, argv, "dolphin backtest", f"dolphin engine {scans} {profile}"):
        st.rerun()


# -- live state (the services' feature store) ----------------------------------------------------------

STORE_ENV = "VQ_DOLPHIN_STORE"


def live_view() -> None:
    """What the services last wrote: posture, Rm and its sensors, ACB boost/beta, MC status, heartbeats, and the
    running strategy's daily results (``DOLPHIN_PNL_BLUE``/``GREEN``)."""
    import time

    from vibe_quant.dolphin.features import DolphinStore, open_store
    from vibe_quant.dolphin.services import live_state
    from vibe_quant.errors import UserError

    url = st.text_input("feature store", os.environ.get(STORE_ENV, ""), key="dolphin_store",
                        help=f"redis://127.0.0.1:6379/0 (default: ${STORE_ENV}); the services write there")  # fmt: skip
    if not url.strip():
        st.info("No feature store given. Start the services with `vq dolphin services start --store "
                "redis://127.0.0.1:6379/0`, then enter that URL here (or set $VQ_DOLPHIN_STORE).")  # fmt: skip
        return
    try:
        store = DolphinStore(open_store(url.strip()))
    except UserError as exc:
        common.show_error(exc, "cannot open the feature store")
        return
    with store:
        if not store.store.ping():
            st.error(f"the feature store does not answer ({store.store!r})")
            return
        live = live_state(store, time.time_ns())
        posture, acb, mc = live["posture"], live["acb"] or {}, live["mc"] or {}
        c = st.columns(5)
        c[0].metric("posture", "-" if posture is None else posture["posture"])
        c[1].metric("Rm", "-" if posture is None else f"{posture['rm']:.3f}")
        c[2].metric("ACB boost", "-" if "boost" not in acb else f"{acb['boost']:.4f}")
        c[3].metric("ACB beta", "-" if "beta" not in acb else f"{acb['beta']:.2f}")
        c[4].metric("MC status", mc.get("status", "-"))
        if posture is not None:
            st.dataframe(pd.DataFrame([posture["sensors"]]), hide_index=True, width="stretch", key="dolphin-sensors")
        st.caption("heartbeats: " + ", ".join(f"{k} {'-' if v is None else f'{v:.0f} s ago'}"
                                              for k, v in live["heartbeats"].items()))  # fmt: skip
        equity = live["equity"]
        if equity is not None:
            st.caption(f"strategy equity {equity['equity']:,.2f} (peak {equity['peak']:,.2f}, drawdown "
                       f"{1 - equity['equity'] / equity['peak']:.2%})")  # fmt: skip
        for side, trades in live["trades"].items():
            if trades:
                st.subheader(f"Today's trades ({side})")
                st.dataframe(pd.DataFrame(trades), hide_index=True, width="stretch", key=f"dolphin-trades-{side}")
        for side, rows in live["results"].items():
            if rows:
                frame = pd.DataFrame(rows)
                st.subheader(f"Strategy results ({side})")
                st.line_chart(frame.set_index("date")["capital"], height=220)
                st.dataframe(frame, hide_index=True, width="stretch", key=f"dolphin-pnl-{side}")
