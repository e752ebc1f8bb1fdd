"""LPI experiments: the experiment bundles of the home (``vq lpi run`` / ``vq lpi sweep``,
``docs/specs.md#lpi-experiments``) and a form launching one as a background job.

An experiment's detail shows its labels (quotes-free and the ablations the data could not honour),
the folds beside the baseline, each fold's equity with its scored span, the LPI trace, the markouts,
the fills and, for a sweep, the latency x fee-tier grid. Everything is read from the bundle; the
chosen experiment follows the URL (``/lpi?experiment=<id>``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers, widgets
from vibe_quant.home import Home

FILLS_SHOWN = 5000  # rows handed to the fills table
EXAMPLE = Path(__file__).resolve().parents[2] / "experiments" / "examples" / "lpi_experiment.yaml"
EMPTY = ("No LPI experiment yet. Run one from the *Run an experiment* tab, or on the command line: "
         "`vq lpi run src/vibe_quant/experiments/examples/lpi_experiment.yaml` (a sensitivity grid: `vq lpi sweep ...`).")  # fmt: skip


@st.cache_resource(max_entries=4, show_spinner=False)
def _bundle(root: str, experiment_id: str, stamp: int):
    from vibe_quant.experiments.bundle import read_bundle

    return read_bundle(Home(Path(root)), experiment_id)


@st.cache_resource(max_entries=4, show_spinner=False)
def _trace_figure(root: str, experiment_id: str, stamp: int):
    from vibe_quant.plots.lpi import lpi_trace_figure

    bundle = _bundle(root, experiment_id, stamp)
    return lpi_trace_figure(bundle.trace(["ts_event", "lpi_fast", "exh", "mid"]))


def render() -> None:
    common.page_header("LPI experiments", "Bundles written by `vq lpi run` and `vq lpi sweep` under `$VQ_HOME/runs`: "
                       "nothing here re-runs an experiment.")  # fmt: skip
    h = common.home()
    browse, launch = st.tabs(["Experiments", "Run an experiment"])
    with browse:
        browse_view(h)
    with launch:
        launch_form(h)
        st.subheader("Active jobs")
        widgets.live_jobs_panel(h, key="lpi")


def browse_view(h: Home) -> None:
    rows = readers.experiment_rows(h)
    if not rows:
        st.info(EMPTY)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="lpi_list",
                 column_config={"return": st.column_config.NumberColumn(format="percent")})  # fmt: skip
    ids = [r["id"] for r in rows]
    wanted = st.query_params.get("experiment")
    names = {r["id"]: f"{r['id']}: {r['strategy']} {r['instruments']} {r['period']}" for r in rows}
    chosen = st.selectbox("experiment", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=names.get,
                          key="lpi_experiment")  # fmt: skip
    if chosen != st.query_params.get("experiment"):
        st.query_params["experiment"] = chosen
    from vibe_quant.errors import UserError

    try:
        stamp = (h.runs / chosen / "summary.json").stat().st_mtime_ns
        bundle = _bundle(str(h.root), chosen, stamp)
    except (OSError, UserError) as exc:  # removed since it was listed
        st.error(f"cannot read experiment {chosen}: {exc}")
        return
    experiment_detail(h, bundle, stamp)


def experiment_detail(h: Home, bundle, stamp: int) -> None:
    from vibe_quant.plots import lpi as plots

    s, key = bundle.summary, bundle.experiment_id
    agg, base = s.get("aggregate") or {}, s.get("baseline")
    st.markdown(f"**{s['name']}** · {s['strategy']} on {', '.join(s['instruments'])} · {s['start']}..{s['end']} · "
                f"{len(s['folds'])} fold(s) · `{key}`")  # fmt: skip
    for label in s.get("labels", []):
        st.warning(label, icon=":material/label_important:")
    effective = s.get("effective") or {}
    if effective:
        st.caption(
            "ablations as they took effect: " + ", ".join(f"{k} {'on' if v else 'off'}" for k, v in effective.items())
        )
    c = st.columns(6)
    c[0].metric("PnL (USDT)", common.fmt_number(agg.get("pnl"), ",.2f"))
    c[1].metric("return", common.fmt_pct(agg.get("return"), 3))
    c[2].metric("worst drawdown", common.fmt_pct(agg.get("worst_drawdown"), 3))
    c[3].metric("fills / trades", f"{agg.get('fills', 0):,} / {agg.get('trades', 0):,}")
    c[4].metric("positive folds", f"{agg.get('positive_folds', 0)} / {agg.get('folds', 0)}")
    c[5].metric("baseline PnL", common.fmt_number((base or {}).get("aggregate", {}).get("pnl"), ",.2f"),
                help=f"{base['strategy']} on the same ticks and folds" if base else "no baseline")  # fmt: skip
    comparison = s.get("comparison")
    if comparison and base:
        st.markdown(f"vs **{base['strategy']}**: PnL difference **{comparison['pnl_minus_baseline']:,.2f}** USDT, "
                    f"better in **{comparison['folds_better']}/{comparison['folds']}** folds")  # fmt: skip
    else:
        st.caption("no baseline in this experiment (`baseline: null`)")
    st.subheader("Folds")
    st.dataframe(readers.fold_table(s), hide_index=True, width="stretch", key=f"lpi-folds-{key}")
    st.plotly_chart(plots.fold_pnl_figure(s["folds"], (base or {}).get("folds"), (base or {}).get("strategy", "baseline")),
                    key=f"lpi-fold-pnl-{key}", width="stretch")  # fmt: skip
    if s["folds"]:
        folds = {row["fold"]: row for row in s["folds"]}
        traded = [f for f, row in folds.items() if row.get("fills")]
        fold = st.selectbox("fold", list(folds), index=list(folds).index(traded[0]) if traded else 0,
                            format_func=lambda f: f"fold {f}: scored {folds[f]['score_start']}..{folds[f]['end']}",
                            key=f"lpi-fold-{key}")  # fmt: skip
        equity = bundle.equity[bundle.equity["fold"] == fold]
        st.plotly_chart(plots.fold_equity_figure(equity, folds[fold]), key=f"lpi-equity-{key}", width="stretch")
    st.subheader("Signal")
    st.plotly_chart(_trace_figure(str(h.root), key, stamp), key=f"lpi-trace-{key}", width="stretch")
    st.subheader("Markouts")
    if bundle.markouts.empty:
        st.caption("no markout: the strategy had no fill in a scored span")
    else:
        st.dataframe(plots.markout_table(bundle.markouts).reset_index(), hide_index=True, key=f"lpi-markouts-{key}")
        st.plotly_chart(plots.markout_figure(bundle.markouts), key=f"lpi-markout-hist-{key}", width="stretch")
    fills = bundle.fills
    shown = f", the first {FILLS_SHOWN:,} listed" if len(fills) > FILLS_SHOWN else ""
    st.subheader(f"Fills in the scored spans ({len(fills):,}{shown}; column run: strategy or baseline)")
    st.dataframe(fills.head(FILLS_SHOWN), hide_index=True, width="stretch", key=f"lpi-fills-{key}")
    grid = bundle.sensitivity()
    if grid is not None:
        st.subheader("Sensitivity (vq lpi sweep)")
        st.plotly_chart(plots.sensitivity_figure(grid), key=f"lpi-sensitivity-{key}", width="stretch")
        st.dataframe(grid, hide_index=True, width="stretch", key=f"lpi-grid-{key}")
    with st.expander("configuration (config_resolved.yaml)"):
        st.code(bundle.text("config_resolved.yaml"), language="yaml")
    with st.expander("data manifest reference (manifest_ref.json)"):
        st.code(bundle.text("manifest_ref.json"), language="json")


# -- launching -------------------------------------------------------------------------------------


def experiment_path(h: Home, experiment) -> Path:
    """Where the form saves an experiment: ``runs/experiments/<name>.yaml`` (the name made file-safe)."""
    import re

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment.name).strip("-.") or "experiment"
    return h.runs / "experiments" / f"{slug}.yaml"


def launch_form(h: Home) -> None:
    """The experiment's YAML (the shipped example to start from), checked as ``vq lpi run`` checks it, saved
    under ``runs/experiments/`` and run as a background job (``vq lpi run`` or ``vq lpi sweep``)."""
    from vibe_quant.errors import ConfigError
    from vibe_quant.experiments.config import experiment_from_text
    from vibe_quant.staging import write_atomic

    st.caption(f"Starts from the shipped example ({EXAMPLE.name}); the catalog needs the instruments' trade ticks "
               "for the period (`vq data ingest --datasets aggTrades,bookTicker,...`).")  # fmt: skip
    with st.form("lpi_launch"):
        text = st.text_area("experiment.yaml", EXAMPLE.read_text(), height=420, key="lpi_yaml")
        command = st.radio("command", ["run", "sweep"], horizontal=True, key="lpi_command",
                           format_func={"run": "vq lpi run (walk-forward folds and the baseline)",
                                        "sweep": "vq lpi sweep (the latency x fee-tier grid of sweep:)"}.get)  # fmt: skip
        submitted = st.form_submit_button("Validate and launch", type="primary")
    if not submitted:
        return
    try:
        experiment = experiment_from_text(text, "experiment.yaml")
    except ConfigError as exc:
        common.show_error(exc, "not launched")
        return
    path = experiment_path(h, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    if widgets.start_job(h, ["lpi", command, str(path)], f"lpi {command}", f"lpi {command} {experiment.name}"):
        st.rerun()
