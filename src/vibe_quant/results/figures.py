"""The figures of a stored backtest or sweep, in display order: one list for the dashboard and the reports."""

from __future__ import annotations

import plotly.graph_objects as go

from vibe_quant.plots import run as run_plots
from vibe_quant.plots import sweep as sweep_plots
from vibe_quant.results.load import RunResults, SweepResults


def run_figures(r: RunResults) -> dict[str, go.Figure]:
    """Equity, drawdown, monthly returns, trade PnL, PnL by exit reason/side, costs, exposure (when recorded)."""
    eq = r.equity
    balance = float(r.metrics.get("starting_balance") or (eq["equity"].iloc[0] if len(eq) else 0.0))
    ts, equity = eq["ts"].to_numpy(), eq["equity"].to_numpy()
    figures = {
        "equity": run_plots.equity_figure(ts, equity, balance),
        "drawdown": run_plots.drawdown_figure(ts, eq["drawdown"].to_numpy()),
        "monthly_returns": run_plots.monthly_returns_figure(ts, equity, balance),
        "trade_pnl": run_plots.trade_pnl_figure(r.trades),
        "pnl_breakdown": run_plots.pnl_breakdown_figure(r.trades),
        "costs": run_plots.cost_waterfall_figure(r.costs, r.metrics.get("net_pnl")),
    }
    if "exposure" in eq.columns and "margin" in eq.columns:
        figures["exposure"] = run_plots.exposure_figure(ts, eq["exposure"].to_numpy(), eq["margin"].to_numpy(), equity)
    return figures


def sweep_figures(s: SweepResults) -> dict[str, go.Figure]:
    """The Pareto front, and from the overfitting report (when one ran) the funnel and walk-forward windows."""
    figures = {"pareto": sweep_plots.pareto_figure(s.points)}
    report = s.overfitting or {}
    if report.get("funnel"):
        figures["funnel"] = sweep_plots.funnel_figure(report["funnel"])
    wfa = (report.get("run_level") or {}).get("wfa")
    if wfa and wfa.get("oos_returns"):
        figures["walk_forward"] = sweep_plots.walk_forward_figure(
            wfa.get("windows", []), wfa["oos_returns"],
            title="Walk-forward: out-of-sample return per test window (the point chosen in each train window)",
        )  # fmt: skip
    return figures
