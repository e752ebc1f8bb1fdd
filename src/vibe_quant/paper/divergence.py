"""The divergence report: a paper (or testnet/live) session's ledger against its validation
backtest's over the same period (docs/specs.md#divergence-report).

Pure computation over two :class:`Ledger` objects: trades are matched one by one (same
instrument and direction, entries within a tolerance), each matched pair gets its time, price
and cost differences, and the totals compare counts, costs, net PnL and the equity curves.
:meth:`DivergenceReport.breaches` judges the report against :class:`DivergenceThresholds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vibe_quant.backtest.ledger import Trade
from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord

NS_PER_S = 1_000_000_000
ENTRY_TOLERANCE_NS = 60 * NS_PER_S  # the shortest bar (1m): two entries further apart are two trades


@dataclass
class Ledger:
    """What one side of the comparison traded: fills, funding, liquidations, round trips and the
    equity curve (``equity_ts`` int64 ns and ``equity`` float64, both shape (n,))."""

    fills: list[FillRecord]
    funding: list[FundingRecord]
    liquidations: list[LiquidationRecord]
    trades: list[Trade]
    equity_ts: np.ndarray
    equity: np.ndarray
    starting_balance: float

    @classmethod
    def from_result(cls, result) -> Ledger:
        """The ledger of a :class:`~vibe_quant.backtest.engine.BacktestResult` (or anything with its fields)."""
        rec = result.recorder
        return cls(list(rec.fills), list(rec.funding), list(rec.liquidations), list(result.trades),
                   np.asarray(result.equity_ts, dtype=np.int64), np.asarray(result.equity, dtype=np.float64),
                   float(result.config.starting_balance))  # fmt: skip


@dataclass(frozen=True)
class DivergenceThresholds:
    """How far a paper session may drift from its validation backtest (docs/specs.md#divergence-report).

    Fractions: 0.10 = 10%. ``*_of_balance`` thresholds are fractions of the backtest's starting balance.
    """

    trade_count_pct: float = 0.10  # |paper trades - backtest trades| / backtest trades
    unmatched_pct: float = 0.20  # (missing + extra trades) / backtest trades
    net_pnl_of_balance: float = 0.02  # |net PnL difference|
    equity_gap_of_balance: float = 0.03  # largest |equity difference| at a common timestamp
    mean_price_bps: float = 10.0  # mean |entry and exit price difference| of the matched trades, bps
    cost_pct: float = 0.25  # |fees + funding + slippage difference| / backtest's, when above 1 bp of the balance

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"DivergenceThresholds.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class TradePair:
    """One matched trade, or one trade found on a single side (the other is None)."""

    paper: Trade | None
    backtest: Trade | None

    @property
    def status(self) -> str:
        return "matched" if self.paper and self.backtest else ("extra" if self.paper else "missing")

    def row(self) -> dict:
        """This pair as a table row: both sides' key figures and the differences (paper - backtest).

        ``entry_bps``/``exit_bps`` are signed so that a positive value is a worse price for the
        paper side (a long bought higher or sold lower, a short the opposite).
        """
        p, b = self.paper, self.backtest
        one = p or b
        row = {"status": self.status, "symbol": one.symbol, "direction": one.direction,
               "paper_entry_ns": p.entry_ns if p else None, "backtest_entry_ns": b.entry_ns if b else None,
               "paper_net_pnl": p.net_pnl if p else None, "backtest_net_pnl": b.net_pnl if b else None}  # fmt: skip
        if self.status != "matched":
            return row
        sign = 1.0 if one.direction == "LONG" else -1.0
        closed = p.is_closed and b.is_closed
        row.update(
            entry_time_diff_s=(p.entry_ns - b.entry_ns) / NS_PER_S,
            exit_time_diff_s=(p.exit_ns - b.exit_ns) / NS_PER_S if closed else None,
            entry_bps=sign * (p.entry_price - b.entry_price) / b.entry_price * 1e4 + 0.0,  # no -0.0
            exit_bps=-sign * (p.exit_price - b.exit_price) / b.exit_price * 1e4 + 0.0 if closed else None,
            quantity_diff=p.quantity - b.quantity,
            slippage_diff=p.slippage_cost - b.slippage_cost,
            fees_diff=(p.entry_fee + p.exit_fee) - (b.entry_fee + b.exit_fee),
            funding_diff=p.funding_fees - b.funding_fees,
            net_pnl_diff=p.net_pnl - b.net_pnl if closed else None,
        )
        return row


@dataclass
class DivergenceReport:
    """Paper vs backtest: matched trades and totals. Build it with :func:`compare_ledgers`."""

    pairs: list[TradePair]
    totals: dict[str, dict]  # figure -> {"paper", "backtest", "diff"}
    starting_balance: float
    max_equity_gap: float | None  # largest |paper - backtest| equity at a common timestamp; None without one
    common_equity_points: int

    @property
    def matched(self) -> list[TradePair]:
        return [p for p in self.pairs if p.status == "matched"]

    def table(self) -> list[dict]:
        """One row per trade (matched, missing from paper, extra in paper), by entry time."""
        return [pair.row() for pair in self.pairs]

    def mean_price_bps(self) -> float | None:
        """Mean absolute entry and exit price difference of the matched trades, in bps (None without one)."""
        values = [abs(v) for r in self.table() if r["status"] == "matched" for v in (r["entry_bps"], r["exit_bps"])
                  if v is not None]  # fmt: skip
        return float(np.mean(values)) if values else None

    def breaches(self, thresholds: DivergenceThresholds | None = None) -> list[str]:
        """Sentences naming each threshold the report exceeds (empty: within thresholds)."""
        th = thresholds or DivergenceThresholds()
        out = []
        n_paper, n_back = self.totals["trades"]["paper"], self.totals["trades"]["backtest"]
        base = max(n_back, 1)
        if abs(n_paper - n_back) / base > th.trade_count_pct:
            out.append(f"trade count: paper {n_paper}, backtest {n_back} ({abs(n_paper - n_back) / base:.1%} apart; "
                       f"threshold {th.trade_count_pct:.1%})")  # fmt: skip
        unmatched = len(self.pairs) - len(self.matched)
        if unmatched / base > th.unmatched_pct:
            missing = sum(p.status == "missing" for p in self.pairs)
            out.append(f"unmatched trades: {missing} missing from paper, {unmatched - missing} only in paper "
                       f"({unmatched / base:.1%} of the backtest's {n_back}; threshold {th.unmatched_pct:.1%})")  # fmt: skip
        balance = self.starting_balance
        pnl = self.totals["net_pnl"]["diff"]
        if abs(pnl) / balance > th.net_pnl_of_balance:
            out.append(f"net PnL differs by {pnl:,.2f} ({abs(pnl) / balance:.2%} of the {balance:,.0f} starting "
                       f"balance; threshold {th.net_pnl_of_balance:.2%})")  # fmt: skip
        if self.max_equity_gap is not None and self.max_equity_gap / balance > th.equity_gap_of_balance:
            out.append(f"equity curves drift apart by up to {self.max_equity_gap:,.2f} ({self.max_equity_gap / balance:.2%} "
                       f"of the starting balance; threshold {th.equity_gap_of_balance:.2%})")  # fmt: skip
        bps = self.mean_price_bps()
        if bps is not None and bps > th.mean_price_bps:
            out.append(
                f"matched trades' prices differ by {bps:.2f} bps on average (threshold {th.mean_price_bps:g} bps)"
            )
        cost = {
            side: sum(self.totals[k][side] for k in ("fees", "funding", "slippage")) for side in ("paper", "backtest")
        }
        cost_diff = cost["paper"] - cost["backtest"]
        if abs(cost_diff) > 1e-4 * balance and abs(cost_diff) > th.cost_pct * abs(cost["backtest"]):
            rel = abs(cost_diff) / abs(cost["backtest"]) if cost["backtest"] else math.inf
            out.append(f"costs (fees + funding + slippage): paper {cost['paper']:,.2f}, backtest {cost['backtest']:,.2f} "
                       f"({rel:.1%} apart; threshold {th.cost_pct:.1%})")  # fmt: skip
        return out

    def to_dict(self) -> dict:
        """JSON-able: totals, equity gap, the mean price difference and the per-trade table."""
        return _clean({"starting_balance": self.starting_balance, "totals": self.totals,
                       "matched": len(self.matched), "max_equity_gap": self.max_equity_gap,
                       "common_equity_points": self.common_equity_points, "mean_price_bps": self.mean_price_bps(),
                       "trades": self.table()})  # fmt: skip


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def match_trades(paper: Sequence[Trade], backtest: Sequence[Trade],
                 tolerance_ns: int = ENTRY_TOLERANCE_NS) -> list[TradePair]:  # fmt: skip
    """Pair trades of the same instrument and direction whose entries are at most `tolerance_ns` apart.

    Per instrument, both sides are walked in entry order: two entries within the tolerance (and
    the same direction) are a pair; otherwise the earlier one has no counterpart and is listed
    alone. Returns every pair, by entry time.
    """
    pairs: list[TradePair] = []
    for symbol in sorted({t.symbol for t in (*paper, *backtest)}):
        ps = sorted((t for t in paper if t.symbol == symbol), key=lambda t: t.entry_ns)
        bs = sorted((t for t in backtest if t.symbol == symbol), key=lambda t: t.entry_ns)
        i = j = 0
        while i < len(ps) or j < len(bs):
            p = ps[i] if i < len(ps) else None
            b = bs[j] if j < len(bs) else None
            if p is not None and b is not None and abs(p.entry_ns - b.entry_ns) <= tolerance_ns:
                if p.direction == b.direction:
                    pairs.append(TradePair(p, b))
                else:
                    pairs += [TradePair(p, None), TradePair(None, b)]
                i, j = i + 1, j + 1
            elif b is None or (p is not None and p.entry_ns < b.entry_ns):
                pairs.append(TradePair(p, None))
                i += 1
            else:
                pairs.append(TradePair(None, b))
                j += 1
    return sorted(pairs, key=lambda pr: ((pr.backtest or pr.paper).entry_ns, (pr.backtest or pr.paper).symbol))


def _totals(ledger: Ledger) -> dict[str, float]:
    return {
        "trades": len(ledger.trades),
        "fills": len(ledger.fills),
        "fees": sum(f.fee for f in ledger.fills) + sum(x.clearance_fee for x in ledger.liquidations),
        "funding": sum(r.amount for r in ledger.funding),
        "slippage": sum(f.side * f.qty * (f.price - f.reference_price) for f in ledger.fills),
        "net_pnl": sum(t.net_pnl for t in ledger.trades if t.is_closed),
        "liquidations": len(ledger.liquidations),
        "final_equity": float(ledger.equity[-1]) if len(ledger.equity) else ledger.starting_balance,
    }


def compare_ledgers(paper: Ledger, backtest: Ledger, tolerance_ns: int = ENTRY_TOLERANCE_NS) -> DivergenceReport:
    """Compare a paper session's ledger with its validation backtest's over the same period.

    Parameters
    ----------
    paper, backtest : Ledger
        The two sides; PnL thresholds are judged against `backtest.starting_balance`.
    tolerance_ns : int, default 60 s
        Two entries of the same instrument and direction at most this far apart are one trade.

    Returns
    -------
    DivergenceReport
        Pairs (matched, missing from paper, extra in paper), totals per figure as
        ``{"paper", "backtest", "diff"}`` (diff = paper - backtest) and the largest equity gap at
        a timestamp both curves have.
    """
    pairs = match_trades(paper.trades, backtest.trades, tolerance_ns)
    tp, tb = _totals(paper), _totals(backtest)
    totals = {k: {"paper": tp[k], "backtest": tb[k], "diff": tp[k] - tb[k]} for k in tp}
    common, ip, ib = np.intersect1d(paper.equity_ts, backtest.equity_ts, return_indices=True)
    gap = float(np.max(np.abs(paper.equity[ip] - backtest.equity[ib]))) if len(common) else None
    return DivergenceReport(pairs, totals, backtest.starting_balance, gap, len(common))
