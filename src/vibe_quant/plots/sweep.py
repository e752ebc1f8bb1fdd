"""Figures of a screening sweep and its overfitting filters, from the stored sweep rows and report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vibe_quant.plots.style import GREEN, HIGHLIGHT, RED, base_layout

PARETO_NAME = "Pareto front"


def _sizes(trades: pd.Series) -> np.ndarray:
    """Marker sizes 5..22 px growing with the square root of the trade count."""
    t = np.sqrt(pd.to_numeric(trades, errors="coerce").fillna(0).clip(lower=0).to_numpy(dtype=float))
    top = t.max() if t.size and t.max() > 0 else 1.0
    return 5.0 + 17.0 * t / top


def pareto_figure(points: pd.DataFrame) -> go.Figure:
    """Sharpe against max drawdown for every evaluated point: colour = profit factor, size = trades,
    the Pareto-optimal points (``is_pareto_optimal``) drawn again on top with a red ring.

    `points` needs columns ``id``, ``sharpe_ratio``, ``max_drawdown`` (fraction), ``profit_factor``,
    ``total_trades`` and ``is_pareto_optimal``. Each marker's ``customdata`` is its sweep row id.
    """
    ok = points[pd.to_numeric(points["sharpe_ratio"], errors="coerce").notna()]
    pf = pd.to_numeric(ok["profit_factor"], errors="coerce").clip(
        upper=5.0
    )  # inf (no losing trade) would flatten the scale
    hover = "row %{customdata}: Sharpe %{y:.2f}, max DD %{x:.1f}%, PF %{marker.color:.2f}<extra></extra>"
    fig = go.Figure(go.Scattergl(
        x=ok["max_drawdown"].astype(float) * 100, y=ok["sharpe_ratio"].astype(float), mode="markers", name="points",
        customdata=ok["id"].to_numpy(), hovertemplate=hover,
        marker={"color": pf, "size": _sizes(ok["total_trades"]), "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "profit factor"}, "opacity": 0.7, "line": {"width": 0}},
    ))  # fmt: skip
    front = ok[ok["is_pareto_optimal"].fillna(0).astype(bool)].sort_values("max_drawdown")
    fig.add_trace(go.Scatter(
        x=front["max_drawdown"].astype(float) * 100, y=front["sharpe_ratio"].astype(float), mode="lines+markers",
        name=f"{PARETO_NAME} ({len(front)})", customdata=front["id"].to_numpy(),
        hovertemplate="Pareto row %{customdata}: Sharpe %{y:.2f}, max DD %{x:.1f}%<extra></extra>",
        line={"color": HIGHLIGHT, "width": 1, "dash": "dot"},
        marker={"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": HIGHLIGHT, "width": 2}},
    ))  # fmt: skip
    layout = base_layout(f"Sharpe vs max drawdown ({len(ok):,} points)", height=460)
    layout["hovermode"] = "closest"
    fig.update_layout(layout, xaxis_title="max drawdown (%)", yaxis_title="Sharpe ratio")
    return fig


def funnel_figure(funnel: list) -> go.Figure:
    """Candidates left after each overfitting filter (the report's ``funnel``: ``[[stage, count], ...]``)."""
    stages = [str(stage) for stage, _ in funnel]
    counts = [int(count) for _, count in funnel]
    fig = go.Figure(go.Funnel(y=stages, x=counts, textinfo="value+percent initial"))
    layout = base_layout("Overfitting funnel")
    layout["hovermode"] = "closest"
    fig.update_layout(layout)
    return fig


def walk_forward_figure(windows: list[dict], oos_returns: list[float], is_returns: list[float] | None = None,
                        title: str = "Walk-forward: return per test window") -> go.Figure:  # fmt: skip
    """Out-of-sample (and in-sample, when given) return per walk-forward window, in percent.

    `windows` are the report's ``[{"train": [a, b], "test": [c, d]}, ...]``; labels are the test periods.
    """
    labels = [f"{w['test'][0]}..{w['test'][1]}" for w in windows] or [
        f"window {i + 1}" for i in range(len(oos_returns))
    ]
    oos = np.asarray(oos_returns, dtype=float) * 100
    fig = go.Figure()
    if is_returns is not None:
        fig.add_trace(go.Bar(x=labels, y=np.asarray(is_returns, dtype=float) * 100, name="in-sample (train)",
                             marker_color="#9ecae1"))  # fmt: skip
    fig.add_trace(go.Bar(x=labels, y=oos, name="out-of-sample (test)", marker_color=[GREEN if v > 0 else RED for v in oos],
                         text=[f"{v:+.2f}%" for v in oos], textposition="auto"))  # fmt: skip
    fig.update_layout(base_layout(title), yaxis_title="%", barmode="group")
    return fig
