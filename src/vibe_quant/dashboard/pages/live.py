"""Live Trading: testnet and live sessions (the Paper Trading page's monitor and controls, plus each
session's live safety limits), the promotion records, and for a run what promotion to live still needs
(docs/specs.md#promotion-gates). Live sessions are started from the command line only
(``vq live start ... --confirm-live``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers, sessions, widgets
from vibe_quant.errors import VibeQuantError
from vibe_quant.home import Home

MODES = ("testnet", "live")
PASS, FAIL = ":green[:material/check_circle:]", ":red[:material/cancel:]"  # Streamlit's icon font: no emoji font needed


def render() -> None:
    common.page_header("Live Trading", "Testnet and live sessions, their safety limits, and the promotion gates. "
                       "A live session starts from the command line only (`vq live start ... --confirm-live`).")  # fmt: skip
    h = common.home()
    if not h.db_path.exists():
        st.info("No state database yet: nothing was backtested, promoted or traded in this home.")
        return
    st.subheader("Sessions")
    rows = readers.paper_sessions(common.state(), MODES)
    row = sessions.session_choice(rows, "live_session")
    if row is None:
        st.info("No testnet or live session yet. A run goes live after its promotion to paper, 14 days of testnet "
                "paper trading and a divergence report within the thresholds: see the checklist below.")  # fmt: skip
    else:
        sessions.session_panel(h, row, "live", limits=True)
    st.subheader("Promotion records")
    promotions_table(h)
    st.subheader("What promotion to live still needs")
    checklist_view(h)


def promotions_table(h: Home) -> None:
    from vibe_quant.paper.promote import list_promotions

    records = list_promotions(h)
    if not records:
        st.caption("No promotion yet (`vq promote RUN --to paper --why ...`).")
        return
    table = pd.DataFrame([{"id": p["id"], "run": p["run_id"], "stage": p["stage"], "who": p["who"], "why": p["why"],
                           "override": p["override"] or "",
                           "overridden failures": "; ".join((p.get("evidence") or {}).get("failures") or []),
                           "at": p["created_at"]} for p in reversed(records)])  # fmt: skip
    st.dataframe(table, hide_index=True, width="stretch", key="promotions")


def checklist_view(h: Home) -> None:
    """Pick a completed run (promoted ones first); list each gate to live as passed or failed."""
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.paper.promote import list_promotions

    runs = list_runs(h, limit=300, status="completed")
    if not runs:
        st.caption("No completed backtest run yet.")
        return
    promoted = {p["run_id"] for p in list_promotions(h)}
    runs.sort(key=lambda r: (r["id"] not in promoted, -r["id"]))
    names = {r["id"]: widgets.describe_run(r) for r in runs}
    run = st.selectbox("run", list(names), format_func=names.get, key="live_checklist_run")
    judge = st.checkbox("judge the divergence of its testnet sessions (re-runs the validation backtest of each)",
                        key=f"live_judge_{run}")  # fmt: skip
    try:
        items, command = live_checklist(h, run, judge)
    except VibeQuantError as exc:
        common.show_error(exc)
        return
    st.markdown("\n".join(f"- {PASS if ok else FAIL} {text}" for ok, text in items))
    if command:
        st.code(command, language="bash")


def live_checklist(h: Home, run: int, judge: bool) -> tuple[list[tuple[bool, str]], str | None]:
    """The gates to live of `run` as ``[(passed, sentence)]`` and the command that comes next (or None).

    The divergence reports (a backtest re-run per counted testnet session) are judged only when `judge`.
    """
    from vibe_quant.paper import promote
    from vibe_quant.paper.compare import session_divergence
    from vibe_quant.paper.divergence import DivergenceThresholds

    state = common.state()
    paper, live = promote.promotion(h, run, "paper"), promote.promotion(h, run, "live")
    if paper is None:
        _, failures = promote.paper_gate(state, run)
        items = [(False, f"not promoted to paper: {f}") for f in failures]
        if not failures:
            return [(False, "not promoted to paper; its gate passes")], f'vq promote {run} --to paper --why "..."'
        return items, None
    items = [(True, f"promoted to paper by {paper['who']} ({paper['created_at']}): {paper['why']}")]
    days, counted = promote.paper_days(state, run)
    counted = [s for s in counted if s["counted"]]
    if counted and not judge:
        enough = days >= promote.MIN_PAPER_DAYS
        items.append((enough, f"{days:.2f} days of testnet paper trading (at least {promote.MIN_PAPER_DAYS:g} needed)"))
        items.append((False, f"divergence of {len(counted)} testnet session(s) from the validation backtest: not "
                             "judged yet (tick the box above)"))  # fmt: skip
        return items, None
    _, failures = promote.live_gate(state, run, promote.MIN_PAPER_DAYS, lambda sid: session_divergence(h, sid),
                                    DivergenceThresholds())  # fmt: skip
    items += [(False, f) for f in failures]
    if failures:
        return items, None
    items.append((True, f"{days:.2f} days of testnet paper trading, every session within the divergence thresholds"))
    if live is None:
        return items, f'vq promote {run} --to live --why "..."'
    items.append((True, f"promoted to live by {live['who']} ({live['created_at']}): {live['why']}"))
    return items, f"vq live start --from-run {run} --confirm-live"
