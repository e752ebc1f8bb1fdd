"""Risk & Controls: the sizing and circuit-breaker presets in force, and the breaker trips of recent runs
(each run's ``summary.json`` ``risk`` block and its ``CIRCUIT_BREAKER`` events)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from vibe_quant.dashboard import common, readers


def render() -> None:
    common.page_header(
        "Risk & Controls", "Sizing and circuit-breaker presets, and what the breakers did in recent runs."
    )
    h, state = common.home(), common.state()
    _presets(state)
    st.divider()
    _trips(h)


def _breakers_on(row: dict) -> list[str]:
    return [f"{level.split('_')[0]}.{k}={v:g}" for level in ("strategy_level", "portfolio_level")
            for k, v in row[level].items()
            if (k.startswith("max_") or k.startswith("rolling_drawdown")) and v is not None]  # fmt: skip


def _presets(state) -> None:
    from vibe_quant.risk.config import BUILTIN_NOTES, list_presets, preset_document

    st.subheader("Presets")
    st.caption("Attach one to a run with `--sizing NAME` / `--risk NAME`; create, edit and delete them on Settings.")
    sizing, risk = list_presets(state, "sizing"), list_presets(state, "risk")
    left, right = st.columns(2)
    with left:
        st.markdown("**Sizing**")
        st.dataframe(pd.DataFrame([{
            "name": r["name"], "method": r["method"],
            "risk/trade": common.fmt_pct(r["config"].get("risk_per_trade")),
            "max position": common.fmt_pct(r["config"].get("max_position_pct")),
            "max leverage": f"{r['config'].get('max_leverage', 0):g}x", "note": BUILTIN_NOTES.get(r["name"], ""),
        } for r in sizing]), hide_index=True, width="stretch")  # fmt: skip
    with right:
        st.markdown("**Circuit breakers**")
        st.dataframe(pd.DataFrame([{"name": r["name"], "breakers on": len(_breakers_on(r)),
                                    "note": BUILTIN_NOTES.get(r["name"], "")} for r in risk]),
                     hide_index=True, width="stretch")  # fmt: skip
    choices = [f"sizing: {r['name']}" for r in sizing] + [f"risk: {r['name']}" for r in risk]
    chosen = st.selectbox("Show a preset as YAML", choices, key="risk_preset_show")
    kind, _, name = chosen.partition(": ")
    row = next(r for r in (sizing if kind == "sizing" else risk) if r["name"] == name)
    st.code(yaml.safe_dump(preset_document(kind, row), sort_keys=False), language="yaml")


def _trips(h) -> None:
    st.subheader("Circuit-breaker trips of recent runs")
    limit = st.number_input("runs to scan (newest first)", min_value=1, max_value=1000, value=50, step=10,
                            key="risk_runs_limit")  # fmt: skip
    runs = readers.breaker_runs(h, limit=int(limit))
    if not runs:
        st.info("No completed run with sizing or circuit breakers yet: run one with `vq backtest run ... --risk "
                "seed_default`.")  # fmt: skip
        return
    tripped = [r for r in runs if r["trips"]]
    st.metric("runs with breakers", len(runs), help="completed runs with a sizing or risk config")
    st.caption(f"{len(tripped)} of them tripped at least one breaker")
    rows = []
    for r in runs:
        refused = sum(v for k, v in r["decisions"].items() if k.startswith("refused_"))
        for trip in r["trips"] or [None]:
            rows.append({
                "run": r["id"], "run id": r["run_id"], "strategy": r["strategy"], "symbols": r["symbols"],
                "period": r["period"], "scope": trip["scope"] if trip else "-",
                "breaker": trip["breaker"] if trip else "(no trip)",
                "at (UTC)": readers.iso_ns(trip["ts"]) if trip else "-",
                "value": common.fmt_number(trip["value"], ".4f") if trip else "-",
                "limit": common.fmt_number(trip["limit"], ".4f") if trip else "-",
                "until": ("rest of run" if trip["until"] is None else readers.iso_ns(trip["until"])) if trip else "-",
                "entries refused": refused,
            })  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if not tripped:
        return
    labels = {f"{r['id']} {r['strategy']} {r['symbols']} {r['period']} ({r['run_id']})": r for r in tripped}
    run = labels[st.selectbox("Run", list(labels), key="risk_run")]
    st.markdown("**Entry decisions**: " + ", ".join(f"{k} {v}" for k, v in sorted(run["decisions"].items())))
    if run["halted_at_end"]:
        st.warning(f"halted at the end of the run: {', '.join(run['halted_at_end'])}")
    events = readers.query_events(h, runs=[run["run_id"]], types=["CIRCUIT_BREAKER"])
    st.markdown(f"**CIRCUIT_BREAKER events** (`logs/events/{run['run_id']}.jsonl`): {len(events)}")
    st.dataframe(events, hide_index=True, width="stretch")
    with st.expander("Risk config in force"):
        st.code(yaml.safe_dump({"sizing": run["sizing"], "risk": run["config"]}, sort_keys=False), language="yaml")
