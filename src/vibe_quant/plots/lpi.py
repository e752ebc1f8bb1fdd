"""Figures of an LPI experiment bundle (``docs/specs.md#lpi-experiments``), each a pure function of
what the bundle stores: ``summary.json``'s fold rows, ``account_report.csv``, ``markouts.csv``,
``signal_trace.parquet`` columns and the sweep's ``<id>.sensitivity.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vibe_quant.plots.decimate import DISPLAY_POINTS, minmax_decimate
from vibe_quant.plots.style import GREEN, GREY, RED, base_layout

STRATEGY_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#ff7f0e"


def _times(ts_ns) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ts_ns, dtype=np.int64), unit="ns")


def _iso_ns(text: str) -> int:
    """A summary's ISO time (UTC, no offset) in ns since the epoch."""
    return int(pd.Timestamp(text).value)


def fold_pnl_figure(
    folds: list[dict], baseline: list[dict] | None = None, baseline_name: str = "baseline"
) -> go.Figure:
    """PnL of each fold's scored span (USDT): the strategy's bars, the baseline's beside them.

    Parameters
    ----------
    folds, baseline : list of dict
        ``summary.json`` fold rows (``fold``, ``pnl``, ...); `baseline` None or empty draws the strategy only.
    baseline_name : str, default "baseline"
    """
    fig = go.Figure()
    labels = [f"fold {row['fold']}" for row in folds]
    fig.add_trace(go.Bar(x=labels, y=[row.get("pnl") for row in folds], name="strategy", marker_color=STRATEGY_COLOUR))
    if baseline:
        fig.add_trace(go.Bar(x=[f"fold {row['fold']}" for row in baseline], y=[row.get("pnl") for row in baseline],
                             name=baseline_name, marker_color=BASELINE_COLOUR))  # fmt: skip
    fig.update_layout(base_layout("PnL per fold, scored span (USDT)", height=320), barmode="group", yaxis_title="USDT")
    return fig


def fold_equity_figure(equity: pd.DataFrame, fold: dict, max_points: int = DISPLAY_POINTS) -> go.Figure:
    """One fold's equity at each bar close, the strategy's and the baseline's, over the whole run: the
    train span (warm-up, not scored) shaded grey, the scored span ``[score_start, end)`` shaded green.

    Parameters
    ----------
    equity : DataFrame
        ``account_report.csv`` rows of this fold: columns ``run`` (strategy/baseline), ``ts`` (ns), ``equity``.
    fold : dict
        The fold's ``summary.json`` row (``fold``, ``start``, ``train_end``, ``score_start``, ``end``).
    max_points : int, default DISPLAY_POINTS
        Points per curve after min/max decimation.
    """
    fig = go.Figure()
    for run, colour in (("strategy", STRATEGY_COLOUR), ("baseline", BASELINE_COLOUR)):
        part = equity[equity["run"] == run]
        if part.empty:
            continue
        x, y = minmax_decimate(part["ts"].to_numpy(dtype=np.int64), part["equity"].to_numpy(dtype=float), max_points)
        fig.add_trace(go.Scatter(x=_times(x), y=y, mode="lines", name=run, line={"width": 1.3, "color": colour}))
    start, train_end = _times([_iso_ns(fold["start"]), _iso_ns(fold["train_end"])])
    score_start, end = _times([_iso_ns(fold["score_start"]), _iso_ns(fold["end"])])
    if train_end > start:
        fig.add_vrect(x0=start, x1=train_end, fillcolor=GREY, opacity=0.12, line_width=0,
                      annotation_text="train (warm-up)", annotation_position="top left")  # fmt: skip
    fig.add_vrect(x0=score_start, x1=end, fillcolor=GREEN, opacity=0.12, line_width=0,
                  annotation_text="scored", annotation_position="top left")  # fmt: skip
    fig.update_layout(base_layout(f"Fold {fold['fold']}: equity (USDT)"), yaxis_title="USDT")
    return fig


def lpi_trace_figure(trace: pd.DataFrame, max_points: int = DISPLAY_POINTS) -> go.Figure:
    """LPI_fast and EXH at each bucket close (left axis), the mid price (right axis), min/max-decimated.

    Parameters
    ----------
    trace : DataFrame
        ``signal_trace.parquet`` columns ``ts_event`` (ns), ``lpi_fast``, ``exh``, ``mid`` (NaN where a
        value is not valid yet: the gaps stay gaps).
    max_points : int, default DISPLAY_POINTS
        Points per curve after decimation.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    ts = trace["ts_event"].to_numpy(dtype=np.int64)
    for column, name, colour, right in (("lpi_fast", "LPI_fast", RED, False), ("exh", "EXH", GREEN, False),
                                        ("mid", "mid", GREY, True)):  # fmt: skip
        x, y = minmax_decimate(ts, trace[column].to_numpy(dtype=float), max_points)
        fig.add_trace(go.Scatter(x=_times(x), y=y, mode="lines", name=name, line={"width": 1, "color": colour}),
                      secondary_y=right)  # fmt: skip
    fig.update_layout(base_layout(f"LPI signal trace ({len(trace):,} snapshots)"))
    fig.update_yaxes(title_text="z-score", secondary_y=False)
    fig.update_yaxes(title_text="mid price", secondary_y=True)
    return fig


def markout_table(markouts: pd.DataFrame) -> pd.DataFrame:
    """Markouts per horizon: fills measured, mean, median and share positive (bps; positive: in the fill's favour).

    Parameters
    ----------
    markouts : DataFrame
        ``markouts.csv`` rows (``horizon_ms``, ``markout_bps``; rows without a mid at the horizon are skipped).

    Returns
    -------
    DataFrame
        Index ``horizon_ms``, columns ``fills, mean_bps, median_bps, positive``.
    """
    bps = pd.to_numeric(markouts["markout_bps"], errors="coerce")
    valid = markouts.assign(markout_bps=bps)[bps.notna()]
    grouped = valid.groupby("horizon_ms")["markout_bps"]
    out = pd.DataFrame({"fills": grouped.size().astype(int), "mean_bps": grouped.mean(), "median_bps": grouped.median(),
                        "positive": grouped.apply(lambda s: float((s > 0).mean()))})  # fmt: skip
    out.index.name = "horizon_ms"
    return out


def markout_figure(markouts: pd.DataFrame) -> go.Figure:
    """Histogram of the fills' markouts (bps), one overlaid series per horizon, its mean in the legend."""
    fig = go.Figure()
    bps = pd.to_numeric(markouts["markout_bps"], errors="coerce")
    for horizon in sorted(markouts["horizon_ms"].dropna().unique()):
        part = bps[(markouts["horizon_ms"] == horizon) & bps.notna()]
        mean = f"{part.mean():+.2f}" if len(part) else "-"
        fig.add_trace(go.Histogram(x=part, name=f"{int(horizon):,} ms (mean {mean} bps, {len(part)})", opacity=0.6,
                                   nbinsx=40))  # fmt: skip
    fig.add_vline(x=0, line={"dash": "dot", "color": GREY})
    fig.update_layout(base_layout("Fill markouts (bps)", height=340), barmode="overlay", xaxis_title="bps",
                      yaxis_title="fills", legend={"orientation": "h", "y": -0.3})  # fmt: skip
    return fig


def sensitivity_figure(grid: pd.DataFrame, value: str = "pnl") -> go.Figure:
    """Heatmap of a sweep's `value` (default the aggregate PnL): latency presets down (fastest first),
    fee tiers across (in the grid's order), each cell labelled.

    Parameters
    ----------
    grid : DataFrame
        ``<id>.sensitivity.csv`` rows: ``latency``, ``latency_ms``, ``fee_tier`` and `value`.
    value : str, default "pnl"
    """
    latencies = grid.sort_values("latency_ms", kind="stable")["latency"].drop_duplicates().tolist()
    tiers = grid["fee_tier"].drop_duplicates().tolist()
    table = grid.pivot_table(index="latency", columns="fee_tier", values=value, aggfunc="first")
    table = table.reindex(index=latencies, columns=tiers)
    z = table.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    text = [["" if np.isnan(v) else f"{v:,.2f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=tiers, y=latencies, text=text, texttemplate="%{text}", colorscale="RdYlGn",
                               zmid=0, zmin=-limit, zmax=limit, colorbar={"title": value},
                               hovertemplate="latency %{y}, fee tier %{x}: %{z:,.2f}<extra></extra>"))  # fmt: skip
    fig.update_layout(base_layout(f"Sensitivity: {value} by latency and fee tier", height=320),
                      xaxis={"type": "category", "title": "fee tier"},
                      yaxis={"type": "category", "title": "latency", "autorange": "reversed"})  # fmt: skip
    return fig
