"""Backtests: launch a screening sweep, a validation run or an overfitting run as a background job
(the same ``vq`` command a user would type, see ``vq jobs``), and watch the active jobs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, widgets
from vibe_quant.home import Home

FILTERS = {"dsr": "deflated Sharpe", "wfa": "walk-forward", "pkfold": "purged K-fold", "cpcv": "CPCV", "pbo": "PBO"}


def render() -> None:
    common.page_header("Backtests", "Each launch runs the `vq` command shown as a background job (vq jobs list).")
    h = common.home()
    sweep_tab, validate_tab, overfit_tab = st.tabs(["Screening sweep", "Validation run", "Overfitting run"])
    with sweep_tab:
        screening_form(h)
    with validate_tab:
        validation_form(h)
    with overfit_tab:
        overfitting_form(h)
    st.subheader("Active jobs")
    if st.button("Refresh", key="jobs_refresh"):
        st.rerun()
    widgets.live_jobs_panel(h, key="backtests")


def catalog_symbols(h: Home) -> list[str]:
    """Symbols with bars in the catalog (from the instruments table)."""
    if not h.db_path.exists():
        return []
    return sorted({r["venue_symbol"] for r in common.state().find("instruments") if r["contract"] == "PERP"})


def strategy_names(h: Home) -> list[str]:
    from vibe_quant.strategy.registry import KINDS, strategy_kind

    names: list[str] = []
    for kind in KINDS:
        names += [n for n in strategy_kind(kind).names(h.db_path) if n not in names]
    return names


def screening_form(h: Home) -> None:
    from vibe_quant.errors import VibeQuantError
    from vibe_quant.strategy.registry import find_strategy, strategy_parameters

    symbols = catalog_symbols(h)
    if not symbols:
        st.info("The catalog has no perpetual yet: ingest data on the Data Lake page or with `vq data ingest`.")
        return
    names = strategy_names(h)
    name = st.selectbox("strategy", names, key="sweep_strategy")
    try:
        ref = find_strategy(name, h.db_path)
        params = strategy_parameters(ref)
    except VibeQuantError as exc:
        common.show_error(exc)
        return
    with st.form("screening"):
        chosen = st.multiselect("symbols", symbols, default=symbols[:1], key="sweep_symbols")
        c = st.columns(3)
        own_tf = (ref.document or {}).get("timeframe")
        timeframe = c[0].selectbox("timeframe", ["1m", "5m", "15m", "1h", "4h"],
                                   index=["1m", "5m", "15m", "1h", "4h"].index(own_tf) if own_tf in
                                   ("1m", "5m", "15m", "1h", "4h") else 1, disabled=own_tf is not None,
                                   help="a DSL strategy runs on its own timeframe")  # fmt: skip
        start = c[1].date_input("start (UTC)", value=None, key="sweep_start", help="empty: the catalog's first day")
        end = c[2].date_input("end (UTC, inclusive)", value=None, key="sweep_end", help="empty: the catalog's last day")
        st.markdown("**Sweep ranges** (comma-separated values; empty keeps the strategy's own sweep or default)")
        axes = {}
        cols = st.columns(3)
        for i, (key, p) in enumerate(params.items()):
            if p.type not in ("integer", "float"):
                continue
            bounds = f" [{p.min:g}..{p.max:g}]" if p.min is not None and p.max is not None else ""
            default = ",".join(str(v) for v in p.sweep) if p.sweep else ""
            axes[key] = cols[i % 3].text_input(f"{key}{bounds}", value=default, help=p.description or None,
                                               placeholder=f"default {p.default}", key=f"axis-{name}-{key}")  # fmt: skip
        constraints = st.text_input("constraints (; separated)", placeholder="ema_fast.period < ema_slow.period")
        c = st.columns(5)
        min_trades = c[0].number_input("min trades", 0, value=50)
        max_dd = c[1].number_input("max drawdown", 0.01, 1.0, value=0.30, step=0.05)
        min_pf = c[2].number_input("min profit factor", 0.0, value=1.0, step=0.1)
        max_points = c[3].number_input("max points", 0, value=500, step=50)
        workers = c[4].number_input("workers", 1, 64, value=2)
        c = st.columns(2)
        leverage = c[0].number_input("leverage", 1.0, 125.0, value=10.0)
        overfit = c[1].multiselect("then run the overfitting filters", list(FILTERS), format_func=FILTERS.get,
                                   key="sweep_overfit")  # fmt: skip
        submitted = st.form_submit_button("Launch the sweep", type="primary")
    if not submitted:
        return
    argv = ["screen", "run", "--strategy", name, "--symbols", ",".join(chosen), "--min-trades", str(int(min_trades)),
            "--max-dd", str(max_dd), "--min-pf", str(min_pf), "--max-points", str(int(max_points)),
            "--workers", str(int(workers)), "--leverage", str(leverage)]  # fmt: skip
    if own_tf is None:
        argv += ["--timeframe", timeframe]
    argv += [a for flag, d in (("--start", start), ("--end", end)) if d for a in (flag, d.isoformat())]
    for key, text in axes.items():
        values = ",".join(v.strip() for v in text.split(",") if v.strip())
        if values and values != ",".join(str(v) for v in (params[key].sweep or [])):
            argv += ["--sweep", f"{key}={values}"]
    for rule in (r.strip() for r in constraints.split(";")):
        if rule:
            argv += ["--constraint", rule]
    if overfit:
        argv += ["--overfit", ",".join(overfit)]
    if not chosen:
        st.error("choose at least one symbol")
        return
    if widgets.start_job(h, argv, "screening", f"sweep {name} {','.join(chosen)}"):
        st.rerun()


def latency_choices() -> list[str]:
    """The built-in latency presets and the custom ones saved on the Settings page."""
    from vibe_quant.backtest.latency import latency_presets

    return [*latency_presets(common.state()), "none"]


def validation_argv(base: dict, point: dict, latency: str = "retail", sizing: str | None = None,
                    risk: str | None = None, leverage: float | None = None,
                    point_id: int | None = None) -> list[str]:  # fmt: skip
    """``vq backtest run`` in validation mode for a sweep point (`base` is the sweep's stored config; with
    `point_id`, the run is linked to that ``sweep_results`` row: ``--validates``)."""
    argv = ["backtest", "run", "--strategy", base["strategy"], "--symbols", ",".join(base["symbols"]),
            "--timeframe", base["timeframe"], "--start", str(base["start"]), "--end", str(base["end"]),
            "--mode", "validation", "--latency", latency,
            "--leverage", str(leverage if leverage is not None else base.get("leverage", 10.0))]  # fmt: skip
    for key, value in point.items():
        argv += ["--param", f"{key}={value}"]
    if sizing:
        argv += ["--sizing", sizing]
    if risk:
        argv += ["--risk", risk]
    if point_id is not None:
        argv += ["--validates", str(point_id)]
    return argv


def validation_form(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.results import sweep_points

    sweeps = [r for r in list_runs(h, limit=200, sweeps=True) if r["points"]]
    if not sweeps:
        st.info("No screened candidates yet: run a screening sweep first.")
        return
    names = {r["id"]: widgets.describe_run(r) for r in sweeps}
    sweep = st.selectbox("candidates from sweep", list(names), format_func=names.get, key="validate_sweep")
    points = sweep_points(common.state(), sweep)
    points = points[points["error_message"].isna()]
    flag = lambda column: pd.to_numeric(points[column], errors="coerce").fillna(0)  # noqa: E731
    order = points.assign(_o=flag("overfitting_passed") * 2 + flag("is_pareto_optimal"))
    order = order.sort_values(["_o", "sharpe_ratio"], ascending=False).head(200)
    labels = {int(p.id): f"point {p.id}: Sharpe {p.sharpe_ratio:.2f}, "
              f"{'overfitting PASS, ' if p.overfitting_passed else ''}{'Pareto, ' if p.is_pareto_optimal else ''}"
              + ", ".join(f"{k}={v}" for k, v in (p.parameters or {}).items()) for p in order.itertuples()}  # fmt: skip
    with st.form("validation"):
        point = st.selectbox("candidate", list(labels), format_func=labels.get, key="validate_point")
        c = st.columns(4)
        latency = c[0].selectbox("latency preset", latency_choices(), index=3, key="validate_latency")
        sizing = c[1].selectbox("sizing preset", ["(strategy's own)", *preset_names("sizing")], key="validate_sizing")
        risk = c[2].selectbox("risk preset", ["(none)", *preset_names("risk")], key="validate_risk")
        leverage = c[3].number_input("leverage", 1.0, 125.0, value=5.0, key="validate_leverage")
        submitted = st.form_submit_button("Launch the validation run", type="primary")
    if not submitted:
        return
    base = common.state().get("backtest_runs", sweep)["parameters"]
    params = points.set_index("id").loc[point, "parameters"] or {}
    argv = validation_argv(base, params, latency, None if sizing.startswith("(") else sizing,
                           None if risk.startswith("(") else risk, leverage, point)  # fmt: skip
    if widgets.start_job(h, argv, "validation", f"validate sweep {sweep} point {point}"):
        st.rerun()


def preset_names(table: str) -> list[str]:
    rows = common.state().find("sizing_configs" if table == "sizing" else "risk_configs")
    return [r["name"] for r in rows]


def overfitting_form(h: Home) -> None:
    from vibe_quant.backtest.persist import list_runs

    sweeps = [r for r in list_runs(h, limit=200, sweeps=True) if r["points"]]
    if not sweeps:
        st.info("No screening sweep yet.")
        return
    names = {r["id"]: widgets.describe_run(r) for r in sweeps}
    with st.form("overfitting"):
        sweep = st.selectbox("screening run", list(names), format_func=names.get, key="overfit_sweep")
        filters = st.multiselect("filters (applied in this order)", list(FILTERS), default=["dsr", "wfa", "pkfold"],
                                 format_func=FILTERS.get, key="overfit_filters")  # fmt: skip
        c = st.columns(3)
        candidates = c[0].selectbox("candidates", ["passed", "front", "all"], key="overfit_candidates")
        workers = c[1].number_input("workers", 1, 64, value=2, key="overfit_workers")
        validate = c[2].checkbox("validate survivors with full costs", value=True, key="overfit_validate")
        submitted = st.form_submit_button("Launch the overfitting run", type="primary")
    if not submitted:
        return
    if not filters:
        st.error("choose at least one filter")
        return
    argv = ["overfit", "run", "--run-id", str(sweep), "--filters", ",".join(filters), "--candidates", candidates,
            "--workers", str(int(workers)), "--validate" if validate else "--no-validate"]  # fmt: skip
    if widgets.start_job(h, argv, "overfitting", f"overfit sweep {sweep}"):
        st.rerun()
