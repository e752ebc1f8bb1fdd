"""The catalog's data coverage: symbol x day heatmap with gaps marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vibe_quant.plots.style import RED, base_layout

COVERAGE_SCALE = [[0.0, "#b2182b"], [0.5, "#fdae61"], [0.999, "#fee08b"], [1.0, "#1a9850"]]


def coverage_figure(rows: list[dict]) -> go.Figure:
    """Heatmap of the share of 1m bars present per symbol and UTC day (``daily_coverage`` rows:
    symbol, day, bars, expected); every day short of a full one is marked with an x."""
    frame = pd.DataFrame(rows, columns=["symbol", "day", "bars", "expected"])
    frame["share"] = frame["bars"] / frame["expected"].where(frame["expected"] > 0)
    table = frame.pivot(index="symbol", columns="day", values="share").sort_index()
    days = list(table.columns)
    bars = frame.pivot(index="symbol", columns="day", values="bars").reindex(index=table.index, columns=days)
    z = table.to_numpy(dtype=float)
    text = np.where(
        np.isnan(z), "no data", np.char.add(np.nan_to_num(bars.to_numpy(dtype=float)).astype(int).astype(str), " bars")
    )
    fig = go.Figure(go.Heatmap(
        z=z, x=days, y=list(table.index), text=text, colorscale=COVERAGE_SCALE, zmin=0, zmax=1,
        colorbar={"title": "share of 1m bars"}, hovertemplate="%{y} %{x}: %{text} (%{z:.1%})<extra></extra>",
    ))  # fmt: skip
    gaps = frame[frame["share"] < 1]
    fig.add_trace(go.Scatter(
        x=gaps["day"], y=gaps["symbol"], mode="markers", name=f"gap days ({len(gaps)})",
        marker={"symbol": "x", "color": RED, "size": 7, "line": {"width": 1}},
        customdata=(gaps["expected"] - gaps["bars"]).to_numpy(),
        hovertemplate="%{y} %{x}: %{customdata} bars missing<extra></extra>",
    ))  # fmt: skip
    layout = base_layout("Data coverage (1m bars per UTC day)", height=max(260, 60 + 28 * len(table.index)))
    layout["hovermode"] = "closest"
    fig.update_layout(layout, yaxis={"type": "category"}, xaxis={"type": "date"})
    return fig
