"""Results: a sweep's table and Pareto front, a run's detail (every figure, metrics, trades, costs,
overfitting badges), and 2-3 runs side by side. Everything is read from stored results.

The view and the run follow the URL (``?view=sweep&sweep=12``, ``?view=run&run=40``), so a link or a
bookmark opens them directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, widgets
from vibe_quant.home import Home

VIEWS = {"sweep": "Sweeps", "run": "Run detail", "compare": "Compare runs"}
SWEEP_TABLE_ROWS = 5000  # rows handed to the table widget (filter to see others); the plot shows every point


@st.cache_resource(max_entries=4, show_spinner=False)
def _run(root: str, run: int, stamp: float):
    from vibe_quant.results import load_run, run_figures

    r = load_run(Home(Path(root)), str(run))
    return r, run_figures(r)


@st.cache_resource(max_entries=4, show_spinner=False)
def _sweep(root: str, run: int, stamp: tuple):
    from vibe_quant.results import load_sweep, sweep_figures

    s = load_sweep(Home(Path(root)), str(run))
    return s, sweep_figures(s)


def render() -> None:
    common.page_header("Results", "Stored backtests and sweeps: nothing here re-runs a backtest.")
    h = common.home()
    if not h.db_path.exists():
        st.info("No state database yet: run `vq demo`, a backtest or a screening sweep first.")
        return
    wanted = st.query_params.get("view", "sweep")
    view = st.segmented_control("view", list(VIEWS), format_func=VIEWS.get, default=wanted if wanted in VIEWS else "sweep",
                                key="results_view", label_visibility="collapsed") or "sweep"  # fmt: skip
    if view != st.query_params.get("view"):
        st.query_params["view"] = view
    {"sweep": sweep_view, "run": run_view, "compare": compare_view}[view](h)


# -- sweeps ---------------------------------------------------------------------------------------


def sweep_view(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs

    sweeps = list_runs(h, limit=200, sweeps=True)
    row = widgets.run_choice(sweeps, "screening run", "results_sweep", "sweep")
    if row is None:
        st.info("No screening sweep yet: launch one on the Backtests page or with `vq screen run`.")
        return
    stamp = (row["status"], row["points"], str(common.state().get("backtest_runs", row["id"]).get("overfitting"))[:64])
    s, figures = _sweep(str(h.root), row["id"], stamp)
    points = s.points
    ok = points[points["error_message"].isna()]
    c = st.columns(5)
    c[0].metric("points", f"{len(points):,}")
    c[1].metric("failed", f"{len(points) - len(ok):,}")
    c[2].metric("passed hard filters", f"{_count(ok['passed_hard_filters']):,}")
    c[3].metric("Pareto front", f"{_count(ok['is_pareto_optimal']):,}")
    c[4].metric("passed overfitting", f"{_count(ok['overfitting_passed']):,}")
    summary = s.summary or {}
    if summary.get("engine"):  # which engine ran the points, and the front's re-check on NautilusTrader
        ran = ", ".join(f"{n:,} points on {'the perp kernel' if e == 'sim' else 'NautilusTrader'}"
                        for e, n in sorted((summary.get("engines") or {}).items()))  # fmt: skip
        checked = summary.get("front_checked") or 0
        st.caption(f"engine {summary['engine']}" + (f": {ran}" if ran else "")
                   + (f"; Pareto front re-checked on NautilusTrader: {checked:,} identical" if checked else ""))  # fmt: skip
    event = st.plotly_chart(figures["pareto"], key=f"pareto-{s.run_row}", on_select="rerun",
                            selection_mode="points", width="stretch")  # fmt: skip
    picked = [p.get("customdata") for p in (event.selection.points if event and event.selection else [])]
    for key in ("funnel", "walk_forward"):
        if key in figures:
            st.plotly_chart(figures[key], key=f"{key}-{s.run_row}", width="stretch")
    if picked:
        point_detail(h, s, int(picked[0]))
    st.subheader("Sweep table")
    table = sweep_table(ok)
    f = st.columns(4)
    only_front = f[0].checkbox("Pareto front only", key="only_front")
    only_passed = f[1].checkbox("passed hard filters only", key="only_passed")
    min_trades = f[2].number_input("min trades", min_value=0, value=0, step=10, key="min_trades")
    max_dd = f[3].number_input("max drawdown %", min_value=0.0, max_value=100.0, value=100.0, step=5.0, key="max_dd")
    trades = pd.to_numeric(table["trades"], errors="coerce").fillna(0)
    shown = table[(trades >= min_trades) & (table["max DD %"].fillna(0) <= max_dd)]
    if only_front:
        shown = shown[shown["Pareto"]]
    if only_passed:
        shown = shown[shown["hard filters"] == "PASS"]
    st.caption(f"{len(shown):,} of {len(table):,} points" + (f" (the first {SWEEP_TABLE_ROWS:,} listed)"
               if len(shown) > SWEEP_TABLE_ROWS else "") + "; click a column to sort.")  # fmt: skip
    st.dataframe(shown.head(SWEEP_TABLE_ROWS), hide_index=True, width="stretch", key="sweep_table")


def _count(flags: pd.Series) -> int:
    """How many of a column of 0/1/None flags are set."""
    return int(pd.to_numeric(flags, errors="coerce").fillna(0).sum())


def sweep_table(points: pd.DataFrame) -> pd.DataFrame:
    """One row per point: its parameters as columns, the metrics, the Pareto flag and each verdict."""
    from vibe_quant.present.report import VERDICTS

    params = pd.DataFrame.from_records([p or {} for p in points["parameters"]], index=points.index)
    out = pd.DataFrame({"row": points["id"]})
    out = pd.concat([out, params], axis=1)
    out["Sharpe"] = points["sharpe_ratio"].astype(float)
    out["return %"] = points["total_return"].astype(float) * 100
    out["max DD %"] = points["max_drawdown"].astype(float) * 100
    out["PF"] = points["profit_factor"].astype(float)
    out["trades"] = points["total_trades"]
    out["Pareto"] = pd.to_numeric(points["is_pareto_optimal"], errors="coerce").fillna(0).astype(bool)
    for column, label in VERDICTS:
        out[label] = points[column].map(lambda v: "-" if v is None or pd.isna(v) else ("PASS" if v else "FAIL"))
    out["validation run"] = points["validation_run_id"]
    return out


def point_detail(h: Home, s, point_id: int) -> None:
    """The clicked sweep point: parameters, metrics, verdicts, and its validation run (open it or launch one)."""
    match = s.points[s.points["id"] == point_id]
    if match.empty:
        return
    p = match.iloc[0]
    with st.container(border=True):
        st.markdown(
            f"**Sweep point {point_id}** · " + ", ".join(f"`{k}={v}`" for k, v in (p["parameters"] or {}).items())
        )
        badges(p)
        run = p["validation_run_id"]
        if run is not None and not pd.isna(run):
            if st.button(f"Open its validation run {int(run)}", key=f"open-{point_id}"):
                st.query_params.update({"view": "run", "run": str(int(run))})
                st.session_state.pop("results_view", None)
                st.rerun()
        else:
            from vibe_quant.dashboard.pages.backtests import validation_argv

            st.caption("No validation run yet: validate it with full costs as a background job.")
            if st.button("Validate this point", key=f"validate-{point_id}"):
                argv = validation_argv(s.row["parameters"], p["parameters"] or {}, point_id=point_id)
                widgets.start_job(h, argv, "validation", f"validate sweep {s.run_row} point {point_id}")
                st.rerun()


def badges(p) -> None:
    """Pass/fail badges of a sweep point's verdicts."""
    from vibe_quant.present.report import VERDICTS

    parts = []
    for column, label in VERDICTS:
        v = p.get(column)
        if v is None or pd.isna(v):
            continue
        parts.append(f":{'green' if v else 'red'}-badge[{label} {'PASS' if v else 'FAIL'}]")
    st.markdown(" ".join(parts) or "no verdict yet")


# -- one run ------------------------------------------------------------------------------------------


def run_view(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.errors import UserError

    runs = list_runs(h, limit=300)
    row = widgets.run_choice(runs, "backtest run", "results_run", "run")
    if row is None:
        st.info("No backtest yet: `vq backtest run ...` or validate a sweep point.")
        return
    if not row.get("bundle_path"):
        st.warning(f"run {row['id']} is {row['status']}: it has no results" +
                   (f" ({row['error_message']})" if row.get("error_message") else ""))  # fmt: skip
        return
    try:
        r, figures = _run(str(h.root), row["id"], _stamp(Path(row["bundle_path"]) / "summary.json"))
    except UserError as exc:
        common.show_error(exc)
        return
    run_detail(h, r, figures)


def _stamp(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def run_detail(h: Home, r, figures: dict) -> None:
    from vibe_quant.plots.run import cost_steps
    from vibe_quant.present.backtest import METRICS, risk_lines
    from vibe_quant.present.format import plain
    from vibe_quant.present.report import metric_text

    cfg, m = r.config, r.metrics
    st.markdown(f"**{cfg['strategy']}** on {', '.join(cfg['symbols'])} {cfg['timeframe']} · {cfg['start']}..{cfg['end']}"
                f" · {cfg['mode']} · latency {cfg.get('latency')} · leverage {cfg.get('leverage')}x · run `{r.run_id}`")  # fmt: skip
    verdicts = common.state().find("sweep_results", validation_run_id=r.row["id"])
    if verdicts:
        st.caption(f"validation of sweep point {verdicts[0]['id']} (screening run {verdicts[0]['run_id']}):")
        badges(verdicts[0])
    cols = st.columns(5)
    for i, key in enumerate(METRICS):
        cols[i % 5].metric(key.replace("_", " "), metric_text(key, m.get(key)))
    for line in risk_lines(r.summary.get("risk")):
        st.warning(plain(line))
    for warning in r.summary.get("warnings", []):
        st.caption(f"warning: {warning}")
    for key, fig in figures.items():
        st.plotly_chart(fig, key=f"{key}-{r.run_id}", width="stretch")
        if key == "costs":
            steps = cost_steps(r.costs, m.get("net_pnl"))
            table = pd.DataFrame([*steps, ("net PnL", sum(v for _, v in steps))], columns=["item", "USDT"])
            st.dataframe(table, hide_index=True, key=f"costs-table-{r.run_id}")
    still_open = int(r.trades["exit_time"].isna().sum()) if "exit_time" in r.trades.columns else 0
    st.subheader(
        f"Trade log ({len(r.trades):,} trades" + (f", {still_open} still open at the end)" if still_open else ")")
    )
    st.dataframe(r.trades, hide_index=True, width="stretch", key=f"trades-{r.run_id}")
    with st.expander("configuration (config_resolved.yaml)"):
        st.code(r.text("config_resolved.yaml"), language="yaml")
    with st.expander("data manifest reference (manifest_ref.json)"):
        st.code(r.text("manifest_ref.json"), language="json")
    if st.button("Write the HTML tearsheet (report.html)", key=f"report-{r.run_id}"):
        from vibe_quant.present.report import write_run_report

        path = write_run_report(r)
        st.success(f"written: {path}")


# -- comparison -------------------------------------------------------------------------------------


def compare_view(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.plots.run import compare_equity_figure
    from vibe_quant.present.backtest import METRICS
    from vibe_quant.present.report import metric_text

    runs = [r for r in list_runs(h, limit=300) if r.get("bundle_path")]
    names = {r["id"]: widgets.describe_run(r) for r in runs}
    chosen = st.multiselect("runs to compare (2-3)", list(names), format_func=names.get, max_selections=3,
                            key="compare_runs")  # fmt: skip
    if len(chosen) < 2:
        st.caption("Choose two or three finished runs.")
        return
    loaded = {}
    for run in chosen:
        row = next(r for r in runs if r["id"] == run)
        loaded[run] = _run(str(h.root), run, _stamp(Path(row["bundle_path"]) / "summary.json"))[0]
    table = pd.DataFrame({f"{run}: {r.config['strategy']}": [metric_text(k, r.metrics.get(k)) for k in METRICS]
                          for run, r in loaded.items()}, index=list(METRICS))  # fmt: skip
    st.dataframe(table, width="stretch", key="compare_table")
    curves = {f"{run}: {r.config['strategy']}": (r.equity["ts"].to_numpy(), r.equity["equity"].to_numpy(),
                                                 float(r.metrics["starting_balance"])) for run, r in loaded.items()}  # fmt: skip
    st.plotly_chart(compare_equity_figure(curves), key="compare_equity", width="stretch")
