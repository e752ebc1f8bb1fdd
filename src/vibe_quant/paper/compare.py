"""A paper session against its validation backtest: re-run the backtest over the session's period
and compare the two ledgers trade by trade (``divergence.py``); ``vq paper compare`` and the dashboard.

The paper side is read back from the state database only (the fills, the last checkpoint's funding
and liquidation records, the equity rows), so the comparison checks what the session recorded,
not what a process still holds. The backtest side is the session's config run now on the same
catalog, cut at the session's cursor (a session stopped early is compared up to where it got).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibe_quant.backtest.ledger import build_trades
from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper import store
from vibe_quant.paper.divergence import DivergenceReport, Ledger, compare_ledgers
from vibe_quant.state import StateManager


@dataclass
class Comparison:
    session_id: int
    report: DivergenceReport
    parity: dict[str, bool]  # fills, funding, liquidations, equity: exactly equal?
    cursor_ns: int

    @property
    def exact(self) -> bool:
        return all(self.parity.values())

    def to_dict(self) -> dict:
        return {"session": self.session_id, "cursor_ns": self.cursor_ns, "parity": self.parity, "exact": self.exact,
                "breaches": self.report.breaches(), **self.report.to_dict()}  # fmt: skip


def paper_ledger(db: StateManager, row: dict, plan) -> Ledger:
    """The session's ledger as recorded in the state database."""
    sid = row["id"]
    checkpoint = store.last_checkpoint(db, sid)
    if checkpoint is None:
        raise UserError(f"session {sid} has no checkpoint yet: let it run (or stop it: vq paper stop {sid})")
    fills = [FillRecord(**r) for r in store.fill_records(db, sid)]
    funding = [FundingRecord(**r) for r in checkpoint["state"]["funding"]]
    liquidations = [LiquidationRecord(**r) for r in checkpoint["state"]["liquidations"]]
    leverage_of = {s: plan.venue.leverage_for(s) for s in plan.symbols}
    ts, eq = store.equity_series(db, sid)
    return Ledger(fills, funding, liquidations, build_trades(fills, funding, liquidations, leverage_of),
                  np.asarray(ts, dtype=np.int64), np.asarray(eq, dtype=np.float64),
                  plan.venue.starting_balance)  # fmt: skip


def backtest_ledger(home: Home, plan, until_ns: int) -> Ledger:
    """The validation backtest of `plan` on the home's catalog, up to feed time `until_ns`."""
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.instruments.specs import InstrumentSpecs

    result = run_backtest(plan, load_market_data(home.catalog, plan, InstrumentSpecs()))
    rec = result.recorder
    fills = [f for f in rec.fills if f.ts_ns <= until_ns]
    funding = [f for f in rec.funding if f.ts_ns <= until_ns]
    liquidations = [x for x in rec.liquidations if x.ts_ns <= until_ns]
    keep = result.equity_ts <= until_ns
    leverage_of = {s: plan.venue.leverage_for(s) for s in plan.symbols}
    return Ledger(fills, funding, liquidations, build_trades(fills, funding, liquidations, leverage_of),
                  result.equity_ts[keep], result.equity[keep], plan.venue.starting_balance)  # fmt: skip


def compare_session(home: Home, session_id: int) -> Comparison:
    """Compare session `session_id` with its validation backtest over the period it traded."""
    with StateManager(home.db_path) as db:
        row = store.get_session(db, session_id)
        if not row["cursor_ns"]:
            raise UserError(f"session {session_id} has not traded a bar yet")
        plan = store.session_plan(row)
        paper = paper_ledger(db, row, plan)
    backtest = backtest_ledger(home, plan, int(row["cursor_ns"]))
    parity = {
        "fills": paper.fills == backtest.fills,
        "funding": paper.funding == backtest.funding,
        "liquidations": paper.liquidations == backtest.liquidations,
        "equity": bool(np.array_equal(paper.equity_ts, backtest.equity_ts) and np.array_equal(paper.equity, backtest.equity)),
    }  # fmt: skip
    return Comparison(session_id, compare_ledgers(paper, backtest), parity, int(row["cursor_ns"]))


def session_divergence(home: Home, session_id: int) -> DivergenceReport:
    """The divergence report of a session (what the promotion gate to live judges)."""
    return compare_session(home, session_id).report
