"""Figures of one backtest run, each a pure function of its stored results.

Inputs are what the result bundle holds (``equity.parquet`` columns, ``trades.csv`` rows,
``summary.json``'s costs and metrics): the dashboard and the HTML reports draw the same figures
from the same files and never recompute a backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vibe_quant.plots.decimate import DISPLAY_POINTS, minmax_decimate
from vibe_quant.plots.style import GREEN, GREY, RED, base_layout

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _times(ts_ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ts_ns, dtype=np.int64), unit="ns")


def equity_figure(ts_ns: np.ndarray, equity: np.ndarray, starting_balance: float | None = None,
                  max_points: int = DISPLAY_POINTS) -> go.Figure:  # fmt: skip
    """Equity (balance + unrealised PnL) at each bar close, min/max-decimated; the last point is the final equity."""
    x, y = minmax_decimate(np.asarray(ts_ns, dtype=np.int64), np.asarray(equity, dtype=float), max_points)
    fig = go.Figure(go.Scatter(x=_times(x), y=y, mode="lines", name="equity", line={"width": 1.4}))
    if starting_balance is not None:
        fig.add_hline(y=starting_balance, line={"dash": "dot", "color": GREY}, annotation_text="starting balance")
    fig.update_layout(base_layout("Equity (USDT)"), yaxis_title="USDT")
    return fig


def drawdown_figure(ts_ns: np.ndarray, drawdown: np.ndarray, max_points: int = DISPLAY_POINTS) -> go.Figure:
    """Drawdown from the running peak, in percent below zero, filled red; the deepest point is kept."""
    x, y = minmax_decimate(np.asarray(ts_ns, dtype=np.int64), -100.0 * np.asarray(drawdown, dtype=float), max_points)
    fig = go.Figure(go.Scatter(x=_times(x), y=y, mode="lines", fill="tozeroy", name="drawdown",
                               line={"color": RED, "width": 1}, fillcolor="rgba(214,39,40,0.35)"))  # fmt: skip
    fig.update_layout(base_layout("Drawdown (%)"), yaxis_title="%")
    return fig


def monthly_returns(ts_ns: np.ndarray, equity: np.ndarray, starting_balance: float) -> pd.DataFrame:
    """Return per calendar month (UTC): equity at the month's last close over the previous month's
    (the first month over the starting balance). Index ``(year, month)``, column ``return``."""
    if len(equity) == 0:
        return pd.DataFrame({"return": []}, index=pd.MultiIndex.from_tuples([], names=["year", "month"]))
    # a bar closing at midnight on the 1st belongs to the month it opened in (hence the ns before its close)
    series = pd.Series(np.asarray(equity, dtype=float), index=_times(np.asarray(ts_ns, dtype=np.int64) - 1))
    month_end = series.groupby([series.index.year, series.index.month]).last()
    previous = month_end.shift(1)
    previous.iloc[0] = starting_balance
    out = (month_end / previous - 1.0).to_frame("return")
    out.index.names = ["year", "month"]
    return out


def monthly_returns_figure(ts_ns: np.ndarray, equity: np.ndarray, starting_balance: float) -> go.Figure:
    """Heatmap of monthly returns: years down, months across, each cell labelled in percent."""
    table = monthly_returns(ts_ns, equity, starting_balance)["return"].unstack("month")
    table = table.reindex(columns=range(1, 13))
    z = table.to_numpy() * 100.0
    text = [[("" if np.isnan(v) else f"{v:+.1f}%") for v in row] for row in z]
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=list(MONTHS), y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
        colorscale="RdYlGn", zmid=0, zmin=-limit, zmax=limit, colorbar={"title": "%"},
        hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(base_layout("Monthly returns"), yaxis={"type": "category", "autorange": "reversed"})
    return fig


def trade_pnl_figure(trades: pd.DataFrame) -> go.Figure:
    """Distribution of closed trades' net PnL, winners green and losers red."""
    pnl = pd.to_numeric(trades.get("net_pnl", pd.Series(dtype=float)), errors="coerce").dropna()
    fig = go.Figure()
    for label, part, colour in (("winners", pnl[pnl > 0], GREEN), ("losers", pnl[pnl <= 0], RED)):
        fig.add_trace(go.Histogram(x=part, name=f"{label} ({len(part)})", marker_color=colour, opacity=0.8,
                                   nbinsx=60))  # fmt: skip
    fig.update_layout(base_layout(f"Trade net PnL ({len(pnl)} closed trades)"), barmode="overlay",
                      xaxis_title="net PnL (USDT)", yaxis_title="trades")  # fmt: skip
    return fig


def pnl_by(trades: pd.DataFrame, column: str) -> pd.DataFrame:
    """Closed trades grouped by `column` (e.g. exit_reason, direction): count, net PnL, win rate, fees."""
    closed = trades[pd.to_numeric(trades["net_pnl"], errors="coerce").notna()]
    if closed.empty:
        return pd.DataFrame(columns=["trades", "net_pnl", "win_rate", "fees"])
    fees = closed["entry_fee"].fillna(0) + closed["exit_fee"].fillna(0)
    grouped = closed.assign(fees=fees, win=closed["net_pnl"] > 0).groupby(closed[column].fillna("open"))
    return pd.DataFrame({"trades": grouped.size().astype(int), "net_pnl": grouped["net_pnl"].sum(),
                         "win_rate": grouped["win"].mean(), "fees": grouped["fees"].sum()}).sort_values("net_pnl")  # fmt: skip


def pnl_breakdown_figure(trades: pd.DataFrame) -> go.Figure:
    """Net PnL by exit reason (left) and by side (right), each bar labelled with its trade count."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by exit reason", "by side"), horizontal_spacing=0.12)
    for col, column in ((1, "exit_reason"), (2, "direction")):
        table = pnl_by(trades, column)
        colours = [GREEN if v > 0 else RED for v in table["net_pnl"]]
        fig.add_trace(go.Bar(x=table.index.astype(str), y=table["net_pnl"], marker_color=colours, showlegend=False,
                             text=[f"{n} trades" for n in table["trades"]], textposition="auto",
                             customdata=np.c_[table["trades"], table["win_rate"] * 100],
                             hovertemplate="%{x}: %{y:,.2f} USDT, %{customdata[0]} trades, "
                                           "win rate %{customdata[1]:.1f}%<extra></extra>"), row=1, col=col)  # fmt: skip
    fig.update_layout(base_layout("Net PnL by exit reason and by side"), yaxis_title="USDT")
    return fig


def cost_steps(costs: dict, net_pnl: float | None = None) -> list[tuple[str, float]]:
    """The cost waterfall's steps: gross PnL at reference prices, minus fees, funding and slippage,
    plus (when `net_pnl` differs) the open position's unrealised PnL and its fees so far."""
    gross = float(costs.get("gross_pnl") or 0.0)
    steps = [("gross PnL", gross), ("fees", 0.0 - float(costs.get("total_fees") or 0.0)),
             ("funding", 0.0 - float(costs.get("total_funding") or 0.0)),
             ("slippage", 0.0 - float(costs.get("total_slippage") or 0.0))]  # fmt: skip
    closed_net = sum(v for _, v in steps)
    if net_pnl is not None and abs(net_pnl - closed_net) > 1e-6 * max(1.0, abs(net_pnl)):
        steps.append(("open position", net_pnl - closed_net))
    return steps


def cost_waterfall_figure(costs: dict, net_pnl: float | None = None) -> go.Figure:
    """Waterfall gross -> fees -> funding -> slippage -> net (funding received shows as a gain)."""
    steps = cost_steps(costs, net_pnl)
    net = sum(v for _, v in steps)
    fig = go.Figure(go.Waterfall(
        x=[label for label, _ in steps] + ["net PnL"], y=[v for _, v in steps] + [net],
        measure=["absolute"] + ["relative"] * (len(steps) - 1) + ["total"],
        text=[f"{v:,.2f}" for _, v in steps] + [f"{net:,.2f}"], textposition="outside",
        increasing={"marker": {"color": GREEN}}, decreasing={"marker": {"color": RED}},
        totals={"marker": {"color": "#1f77b4"}},
    ))  # fmt: skip
    fig.update_layout(base_layout("Cost attribution (USDT)"), yaxis_title="USDT", showlegend=False)
    return fig


def exposure_figure(ts_ns: np.ndarray, exposure: np.ndarray, margin: np.ndarray, equity: np.ndarray,
                    max_points: int = DISPLAY_POINTS) -> go.Figure:  # fmt: skip
    """Gross exposure (sum of |position| x close, USDT) and margin use (isolated margin / equity, %)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, y = minmax_decimate(ts, exposure, max_points)
    fig.add_trace(go.Scatter(x=_times(x), y=y, mode="lines", name="gross exposure (USDT)", line={"width": 1}),
                  secondary_y=False)  # fmt: skip
    eq = np.asarray(equity, dtype=float)
    use = np.divide(100.0 * np.asarray(margin, dtype=float), eq, out=np.full(eq.size, np.nan), where=eq > 0)
    x, y = minmax_decimate(ts, use, max_points)
    fig.add_trace(go.Scatter(x=_times(x), y=y, mode="lines", name="margin use (% of equity)",
                               line={"width": 1, "color": "#ff7f0e"}), secondary_y=True)  # fmt: skip
    fig.update_layout(base_layout("Exposure and margin use"))
    fig.update_yaxes(title_text="USDT", secondary_y=False)
    fig.update_yaxes(title_text="% of equity", secondary_y=True)
    return fig


def compare_equity_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]],
                          max_points: int = DISPLAY_POINTS) -> go.Figure:  # fmt: skip
    """Several runs' equity as a return on each one's starting balance (%), one line each, decimated."""
    fig = go.Figure()
    for label, (ts, equity, balance) in curves.items():
        ret = (np.asarray(equity, dtype=float) / balance - 1.0) * 100.0
        x, y = minmax_decimate(np.asarray(ts, dtype=np.int64), ret, max_points)
        fig.add_trace(go.Scatter(x=_times(x), y=y, mode="lines", name=label, line={"width": 1.3}))
    fig.update_layout(base_layout("Return on starting balance (%)"), yaxis_title="%")
    return fig
