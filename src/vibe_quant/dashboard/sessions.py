"""What the Paper Trading and Live Trading pages share: the session picker, a session's monitor (equity,
PnL, costs, positions, orders, fills, strategy states; re-read every :data:`~vibe_quant.dashboard.widgets.POLL_S`
seconds while it runs), the operator controls, the commands journal, the comparison with the validation
backtest and the live safety limits (docs/specs.md#paper-trading-and-live-execution).

Every figure is read back from the state database as the session wrote it (``paper_sessions.snapshot``,
``paper_equity``, ``paper_fills``, ``paper_commands``); commands go through ``paper.service.request``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers, widgets
from vibe_quant.errors import VibeQuantError
from vibe_quant.home import Home

FILLS_SHOWN = 200  # newest fills listed in the recent-trades table
CONTROLS = {  # command -> (button label, what it does: the question asked before it is queued)
    "halt": ("Halt", "cancel the strategies' orders; no new decisions until resumed (positions stay)"),
    "resume": ("Resume", "let halted strategies trade again"),
    "close_all": ("Close all", "cancel every order, close every position at market and halt every strategy"),
    "stop": ("Stop", "stop the session at the next bar boundary (checkpointed; restartable with --resume)"),
}
ALL = "(all strategies)"
POSITION_COLUMNS = ("instrument", "signed_qty", "avg_px", "mark", "unrealized_pnl", "margin", "liquidation_price")
ORDER_COLUMNS = ("order_id", "strategy", "instrument", "type", "side", "qty", "price", "trigger", "reason")


def describe_session(row: dict) -> str:
    """A session in one line: id, mode, strategy, symbols, timeframe, source run, liveness, bars."""
    cfg = row["config"]
    source = f" from run {row['from_run']}" if row.get("from_run") else ""
    return (f"{row['id']}: {row['mode']} {cfg['strategy']} {','.join(cfg['symbols'])} {cfg['timeframe']}{source} "
            f"[{row['liveness']}] bar {row.get('bars_done') or 0}/{row.get('bars_total') or '?'}")  # fmt: skip


def session_choice(rows: list[dict], key: str) -> dict | None:
    """A select box of sessions (newest first) following the URL's ``session`` query parameter."""
    return widgets.query_choice(rows, "session", key, "session", describe_session)


# -- monitor --------------------------------------------------------------------------------------


def monitor(h: Home, session_id: int, key: str) -> None:
    """The session's monitor: re-read every :data:`~vibe_quant.dashboard.widgets.POLL_S` seconds while it runs
    (only the monitor reruns); a session that ends while watched reruns the page once (controls go away)."""
    info = _describe(h, session_id)
    if info is None:
        return
    if info["liveness"] in ("starting", "running"):
        _polled_monitor(h, session_id, key)
    else:
        session_view(h, info, key)


@st.fragment(run_every=widgets.POLL_S)
def _polled_monitor(h: Home, session_id: int, key: str) -> None:
    info = _describe(h, session_id)
    if info is None:
        return
    if info["liveness"] not in ("starting", "running"):
        st.rerun()
    session_view(h, info, key)


def _describe(h: Home, session_id: int) -> dict | None:
    from vibe_quant.paper.service import describe

    try:
        return describe(h, session_id)
    except VibeQuantError as exc:
        common.show_error(exc)
        return None


def session_view(h: Home, info: dict, key: str) -> None:
    """Equity and PnL (figure and metrics), strategy states, positions, open orders, recent fills, the journal."""
    from vibe_quant.paper import store
    from vibe_quant.plots.run import equity_figure

    cfg, snap = info["config"], info.get("snapshot") or {}
    st.markdown(f"**session {info['id']}** ({info['mode']}) **{info['liveness']}** · {cfg['strategy']} on "
                f"{', '.join(cfg['symbols'])} {cfg['timeframe']} · {cfg['start']}..{cfg['end']} · from run "
                f"{info['from_run'] or '-'} · heartbeat {info.get('heartbeat_at') or '-'}")  # fmt: skip
    if info.get("error"):
        st.error(f"error: {info['error']}")
    if info["liveness"] == "crashed":
        st.warning(f"The session's process is gone: restart it with `vq paper start --resume {info['id']}`.")
    for warning in snap.get("warnings") or []:
        st.caption(f"warning: {warning}")
    if not snap:
        st.info("No status yet: the session has not traded a bar.")
        return
    costs = snap.get("costs") or {}
    start = snap.get("starting_balance") or cfg.get("starting_balance") or 0.0
    equity = snap.get("equity") or 0.0
    c = st.columns(4)
    c[0].metric("equity (USDT)", f"{equity:,.2f}")
    c[1].metric("net PnL (USDT)", f"{equity - start:+,.2f}")
    c[2].metric("fees burned", f"{costs.get('fees', 0.0):,.2f}")
    c[3].metric("funding accrued", f"{costs.get('funding', 0.0):+,.2f}",
                help=f"{costs.get('funding_settlements', 0)} settlements")  # fmt: skip
    c = st.columns(4)
    c[0].metric("liquidations", f"{costs.get('liquidations', 0)}")
    c[1].metric("fills", f"{costs.get('fills', 0):,}")
    c[2].metric("bars", f"{info.get('bars_done') or 0:,}/{info.get('bars_total') or '?'}",
                help="bars done / bars of the session's period")  # fmt: skip
    c[3].metric("slippage", f"{costs.get('slippage', 0.0):,.2f}", help="against the fill model's reference prices")
    st.markdown(
        f"feed time **{common.fmt_time(info.get('cursor_ns'))}** · balance {snap.get('balance') or 0:,.2f} USDT"
    )
    db = common.state()
    ts, eq = store.equity_series(db, info["id"])
    if ts:
        st.plotly_chart(equity_figure(ts, eq, start), key=f"{key}-equity-{info['id']}", width="stretch")
    st.markdown("**Strategies**")
    st.dataframe(strategies_table(snap), hide_index=True, key=f"{key}-strategies")
    if snap.get("breakers"):
        st.caption(f"circuit breakers: {snap['breakers']}")
    left, right = st.columns(2)
    left.markdown("**Positions**")
    if snap.get("positions"):
        left.dataframe(_columns(snap["positions"], POSITION_COLUMNS), hide_index=True, key=f"{key}-positions")
    else:
        left.caption("no open position")
    right.markdown("**Open orders**")
    if snap.get("open_orders"):
        right.dataframe(_columns(snap["open_orders"], ORDER_COLUMNS), hide_index=True, key=f"{key}-orders")
    else:
        right.caption("no open order")
    fills = store.fill_records(db, info["id"], limit=FILLS_SHOWN)
    st.markdown(f"**Recent trades** (the newest {len(fills)} of {costs.get('fills', len(fills)):,} fills)")
    if fills:
        st.dataframe(fills_table(fills), hide_index=True, width="stretch", key=f"{key}-fills")
    st.markdown("**Commands journal**")
    if info["commands"]:
        st.dataframe(commands_table(info["commands"]), hide_index=True, width="stretch", key=f"{key}-commands")
    else:
        st.caption("no command sent to this session")
    if info["checkpoints"]:
        last = info["checkpoints"][-1]
        st.caption(f"last checkpoint {last['created_at']} ({last['reason']}, bar {last['bars_done']}) · events: "
                   f"`{info['events_log']}`")  # fmt: skip


def _columns(rows: list[dict], order: tuple[str, ...]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    return table[[c for c in order if c in table.columns] + [c for c in table.columns if c not in order]]


def strategies_table(snap: dict) -> pd.DataFrame:
    """One row per strategy of a snapshot: id, ACTIVE/HALTED, reason, since (feed time)."""
    rows = [{"strategy": sid, "state": s.get("state"), "reason": s.get("reason") or "",
             "since": readers.iso_ns(s.get("since")) or ""} for sid, s in (snap.get("strategies") or {}).items()]  # fmt: skip
    return pd.DataFrame(rows, columns=["strategy", "state", "reason", "since"])


def fills_table(fills: list[dict]) -> pd.DataFrame:
    """Fill records newest first, with readable times and sides."""
    table = pd.DataFrame(fills[::-1])
    table.insert(0, "time", [readers.iso_ns(ns) for ns in table["ts_ns"]])
    table["side"] = ["buy" if s > 0 else "sell" for s in table["side"]]
    keep = ["time", "instrument", "side", "qty", "price", "reference_price", "fee", "liquidity", "order_type",
            "reason", "order_id"]  # fmt: skip
    return table[[c for c in keep if c in table.columns]]


def commands_table(commands: list[dict]) -> pd.DataFrame:
    rows = [{"id": c["id"], "command": c["command"], "target": c["target"] or "all", "reason": c["reason"] or "",
             "requested": c["requested_at"], "by": c["requested_by"] or "", "applied at bar": c["applied_bar"],
             "result": c["result"] or "pending"} for c in commands]  # fmt: skip
    return pd.DataFrame(rows)


# -- controls ---------------------------------------------------------------------------------------


def controls(h: Home, info: dict, key: str) -> None:
    """HALT / RESUME (one strategy or all), CLOSE ALL, STOP for a running session, each confirmed before it is
    queued; the session applies it at its next bar boundary."""
    if info["liveness"] not in ("starting", "running"):
        st.caption(f"Session {info['id']} is {info['liveness']}: commands go to a running session only.")
        return
    strategies = list((info.get("snapshot") or {}).get("strategies") or {})
    c = st.columns([2, 3])
    target = c[0].selectbox("HALT / RESUME target", [ALL, *strategies], key=f"{key}-target")
    reason = c[1].text_input("reason (journaled with the command)", key=f"{key}-reason")
    cols = st.columns(len(CONTROLS))
    for col, (command, (label, effect)) in zip(cols, CONTROLS.items(), strict=True):
        aimed = target if command in ("halt", "resume") and target != ALL else None
        whom = f" {aimed}" if aimed else (" every strategy" if command in ("halt", "resume") else "")
        with col:
            if common.confirm(f"{key}-{command}-{info['id']}", label,
                              f"{label.upper()}{whom} of session {info['id']}: {effect}?"):  # fmt: skip
                _send(h, info["id"], command, aimed, reason.strip() or None)


def _send(h: Home, session_id: int, command: str, target: str | None, reason: str | None) -> None:
    from vibe_quant.paper.service import request

    try:
        cid = request(h, session_id, command, target, reason)
    except VibeQuantError as exc:
        common.show_error(exc, f"{CONTROLS[command][0].upper()} was not sent")
        return
    common.flash(f"{CONTROLS[command][0].upper()} queued for session {session_id}{f' ({target})' if target else ''} as "
                 f"command {cid}: it applies at the next bar boundary")  # fmt: skip
    st.rerun()


# -- comparison with the validation backtest ---------------------------------------------------------


def compare_panel(h: Home, session_id: int, key: str) -> None:
    """A button running ``paper.compare.compare_session`` (the validation backtest re-run up to the session's
    cursor), then its parity line, totals, breaches and per-trade table (kept until another session is chosen)."""
    from vibe_quant.paper.compare import compare_session

    store_key = f"{key}-comparison"
    if st.button("Compare with the validation backtest", key=f"{key}-compare-{session_id}"):
        try:
            with st.spinner("re-running the validation backtest over the session's period..."):
                st.session_state[store_key] = compare_session(h, session_id)
        except VibeQuantError as exc:
            st.session_state.pop(store_key, None)
            common.show_error(exc, "no comparison")
            return
    comparison = st.session_state.get(store_key)
    if comparison is None or comparison.session_id != session_id:
        st.caption("Re-runs the session's config as a backtest up to the session's feed time and matches the trades "
                   "one by one (docs/specs.md#divergence-report).")  # fmt: skip
        return
    show_comparison(comparison, key)


def show_comparison(comparison, key: str) -> None:
    report = comparison.report
    parity = ", ".join(f"{k} {'equal' if v else 'DIFFER'}" for k, v in comparison.parity.items())
    if comparison.exact:
        st.success(f"parity: exact ({parity}): the session traded exactly as its validation backtest")
    else:
        st.warning(f"parity: not exact ({parity})")
    gap = report.max_equity_gap
    bps = report.mean_price_bps()
    st.caption(f"up to {common.fmt_time(comparison.cursor_ns)} · {report.common_equity_points:,} common equity points, "
               f"largest gap {'-' if gap is None else f'{gap:,.2f} USDT'} · matched trades {len(report.matched)}/"
               f"{len(report.pairs)} · mean price difference {common.fmt_number(bps, ',.2f')} bps")  # fmt: skip
    totals = pd.DataFrame([{"figure": name, **row} for name, row in report.totals.items()])
    st.dataframe(totals, hide_index=True, key=f"{key}-totals")
    breaches = report.breaches()
    if breaches:
        st.error("Outside the divergence thresholds:\n\n" + "\n".join(f"- {b}" for b in breaches))
    else:
        st.success("within the divergence thresholds")
    rows = report.table()
    if rows:
        table = pd.DataFrame(rows)
        for column in ("paper_entry_ns", "backtest_entry_ns"):
            table[column] = [readers.iso_ns(None if pd.isna(v) else int(v)) for v in table[column]]
        table = table.rename(columns={"paper_entry_ns": "paper entry", "backtest_entry_ns": "backtest entry"})
        st.dataframe(table, hide_index=True, width="stretch", key=f"{key}-pairs")


# -- live safety -------------------------------------------------------------------------------------


def limits_panel(info: dict) -> None:
    """The live safety limits the session trades (``paper_sessions.limits``, docs/specs.md#live-safety-merge)."""
    from vibe_quant.paper.safety import show

    limits = info.get("limits")
    if not limits:
        st.caption(f"Session {info['id']} recorded no live safety limits.")
        return
    applied = pd.DataFrame([{"field": k, "traded": show(k, v)} for k, v in limits.get("applied", {}).items()])
    st.dataframe(applied, hide_index=True, key=f"limits-applied-{info['id']}")
    for name, what in (("tightened", "the run's own value is stricter than the limit: kept"),
                       ("loosened", "looser than the limit: traded because a reason was given"),
                       ("capped", "the venue leverage lowered to the cap")):  # fmt: skip
        entries = limits.get(name) or []
        if entries:
            st.markdown(f"**{name}** ({what})")
            st.dataframe(pd.DataFrame([{"field": e["field"], "limit": show(e["field"], e["limit"]),
                                        "value": show(e["field"], e["value"])} for e in entries]),
                         hide_index=True, key=f"limits-{name}-{info['id']}")  # fmt: skip
        else:
            st.caption(f"{name}: none")
    if limits.get("reason"):
        st.warning(f"looser limits accepted with --allow-looser-limits: {limits['reason']}")


def session_panel(h: Home, row: dict, key: str, limits: bool = False) -> None:
    """One session as both pages show it: the monitor, the controls, (`limits`: its live safety limits) and the
    comparison with its validation backtest."""
    monitor(h, row["id"], key)
    st.subheader("Controls")
    controls(h, row, key)
    if limits:
        st.subheader("Live safety limits")
        limits_panel(row)
    st.subheader("Compare with the validation backtest")
    compare_panel(h, row["id"], key)
