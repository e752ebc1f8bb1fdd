"""Paper Trading: watch a replay or testnet session as it trades (equity, PnL, costs, positions, orders,
fills, strategy states), HALT / RESUME / CLOSE ALL / STOP it, compare it with its validation backtest, and
start a session from a completed validation run as a background job (``vq paper start --from-run RUN``).
"""

from __future__ import annotations

import streamlit as st

from vibe_quant.dashboard import common, readers, sessions, widgets
from vibe_quant.home import Home

MODES = ("replay", "testnet")


def render() -> None:
    common.page_header("Paper Trading", "Replay and testnet sessions (`vq paper`); everything shown is what the "
                       "session wrote to the state database.")  # fmt: skip
    h = common.home()
    if not h.db_path.exists():
        st.info("No state database yet: run a validation backtest first (`vq backtest run ...`).")
        return
    watch, start = st.tabs(["Sessions", "Start paper trading"])
    with watch:
        rows = readers.paper_sessions(common.state(), MODES)
        row = sessions.session_choice(rows, "paper_session")
        if row is None:
            st.info("No paper session yet: start one from a validation run (tab *Start paper trading*) or with "
                    "`vq paper start --from-run RUN`.")  # fmt: skip
        else:
            sessions.session_panel(h, row, "paper")
    with start:
        start_form(h)
        st.subheader("Active jobs")
        widgets.live_jobs_panel(h, key="paper")


def validation_runs(h: Home) -> list[dict]:
    """Completed single backtests run in validation mode (what a paper session can trade), newest first."""
    from vibe_quant.backtest.persist import list_runs

    return [r for r in list_runs(h, limit=300, status="completed") if r.get("run_mode") == "validation"]


def start_form(h: Home) -> None:
    """Pick a completed validation run, a speed and a checkpoint interval; start ``vq paper start`` as a job."""
    from vibe_quant.errors import UserError
    from vibe_quant.paper.promote import list_promotions, promotion
    from vibe_quant.paper.service import parse_speed

    runs = validation_runs(h)
    if not runs:
        st.info("No completed validation run yet: validate a sweep point (Backtests page) or `vq backtest run`.")
        return
    promoted = {p["run_id"] for p in list_promotions(h) if p["stage"] == "paper"}
    names = {r["id"]: widgets.describe_run(r) + (" · promoted to paper" if r["id"] in promoted else "") for r in runs}
    run = st.selectbox("validation run", list(names), format_func=names.get, key="paper_run")
    row = next(r for r in runs if r["id"] == run)
    st.markdown(f"**{row['strategy']}** on {', '.join(row['symbols'])} {row['timeframe']} · "
                f"{row['start_date']}..{row['end_date']} · Sharpe {common.fmt_number(row['sharpe_ratio'], '.2f')} · "
                f"{common.fmt_number(row['total_trades'], ',')} trades")  # fmt: skip
    record = promotion(h, run, "paper")
    if record:
        st.success(f"promoted to paper by {record['who']} ({record['created_at']}): {record['why']}"
                   + (f" (override: {record['override']})" if record.get("override") else ""))  # fmt: skip
    else:
        st.warning(f"Run {run} was not promoted to paper (`vq promote {run} --to paper --why ...`): a replay "
                   "shows how the node trades it, but earns it nothing towards live.")  # fmt: skip
    with st.form("paper_start_form"):
        c = st.columns(2)
        speed = c[0].text_input("speed", "max", key="paper_speed",
                                help="feed seconds per wall second: 1 = real time, 600 = ten minutes a second, max")  # fmt: skip
        every = c[1].number_input("checkpoint every (s)", min_value=1.0, value=60.0, step=10.0, key="paper_every")
        submitted = st.form_submit_button("Start paper trading", type="primary")
    if not submitted:
        return
    try:
        parse_speed(speed)
    except UserError as exc:
        common.show_error(exc)
        return
    argv = ["paper", "start", "--from-run", str(run), "--speed", speed.strip(), "--checkpoint-every", f"{every:g}"]
    if widgets.start_job(h, argv, "paper", f"paper run {run}"):
        st.rerun()
