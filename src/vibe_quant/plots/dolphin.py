"""Figures of DOLPHIN scan tables (docs/specs.md#dolphin-scans), pure functions of the stored columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vibe_quant.plots.decimate import DISPLAY_POINTS, minmax_decimate
from vibe_quant.plots.style import GREY, RED, base_layout

THRESHOLD_COLOURS = {-0.02: "#ff7f0e", -0.05: RED, -0.075: "#8c0000"}


def vel_div_figure(
    ts_ns: np.ndarray,
    vel_div: np.ndarray,
    v_short: np.ndarray,
    v_long: np.ndarray,
    thresholds: tuple[float, ...] = (-0.02, -0.05, -0.075),
    max_points: int = DISPLAY_POINTS,
) -> go.Figure:
    """vel_div per scan row with the signal thresholds (top), the short and long window velocities (bottom).

    Parameters
    ----------
    ts_ns : ndarray, shape (rows,)
        Bar close times, ns since the epoch (UTC).
    vel_div, v_short, v_long : ndarray, shape (rows,)
        ``vel_div`` and the first and last windows' lambda_max velocities.
    thresholds : tuple of float
        Horizontal lines: the entry gate, the extreme level, the extreme bucket.
    max_points : int, default DISPLAY_POINTS
        Each curve is min/max-decimated to about this many points.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.06)
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    for row, (name, values, colour) in enumerate(
        [("vel_div", vel_div, "#1f77b4"), ("short window", v_short, "#2ca02c"), ("long window", v_long, GREY)]
    ):
        x, y = minmax_decimate(ts_ns, np.asarray(values, dtype=np.float64), max_points)
        fig.add_trace(go.Scattergl(x=pd.to_datetime(x, unit="ns", utc=True), y=y, name=name, mode="lines",
                                   line={"color": colour, "width": 1}), row=1 if row == 0 else 2, col=1)  # fmt: skip
    for t in thresholds:
        share = float(np.mean(np.asarray(vel_div) < t)) if len(vel_div) else 0.0
        fig.add_hline(y=t, line={"color": THRESHOLD_COLOURS.get(t, RED), "dash": "dot", "width": 1}, row=1, col=1,
                      annotation_text=f"{t:g} ({share:.2%} of rows below)", annotation_position="bottom left")  # fmt: skip
    fig.update_layout(base_layout("vel_div = short-window minus long-window lambda_max velocity", height=520))
    fig.update_yaxes(title_text="vel_div", row=1, col=1)
    fig.update_yaxes(title_text="velocity per row", row=2, col=1)
    return fig
