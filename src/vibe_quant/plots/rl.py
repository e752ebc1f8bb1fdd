"""Figures of an RL training run folder (``$VQ_HOME/rl/runs/<run_id>/``), each a pure function of what
the run stores: ``episodes.csv``, ``training.csv`` (columns of :mod:`vibe_quant.rl.logs`) and the
equity of ``evaluation.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vibe_quant.plots.decimate import DISPLAY_POINTS, minmax_decimate
from vibe_quant.plots.style import GREEN, GREY, RED, base_layout

SHARE_COLOURS = {"share_flat": GREY, "share_long": GREEN, "share_short": RED}


def _present(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and pd.to_numeric(frame[column], errors="coerce").notna().any()


def _by_env(frame: pd.DataFrame, column: str, title: str, yaxis: str) -> go.Figure:
    fig = go.Figure()
    envs = sorted(frame["env"].unique()) if "env" in frame.columns else [None]
    for env in envs:
        rows = frame if env is None else frame[frame["env"] == env]
        fig.add_trace(go.Scatter(x=rows["timesteps"], y=rows[column], mode="lines+markers", marker={"size": 4},
                                 name="episodes" if env is None else f"env {env}"))  # fmt: skip
    fig.update_layout(base_layout(title, height=320), xaxis_title="timesteps", yaxis_title=yaxis)
    return fig


def episode_return_figure(episodes: pd.DataFrame) -> go.Figure:
    """Each finished episode's summed reward, at the timestep it ended, one line per environment.

    Parameters
    ----------
    episodes : DataFrame
        ``episodes.csv``: columns ``env``, ``timesteps``, ``return`` (one row per episode).
    """
    return _by_env(episodes, "return", "Episodic return", "reward")


def final_equity_figure(episodes: pd.DataFrame) -> go.Figure:
    """Each finished episode's final equity (USDT), at the timestep it ended, one line per environment.

    Parameters
    ----------
    episodes : DataFrame
        ``episodes.csv``: columns ``env``, ``timesteps``, ``final_equity``.
    """
    return _by_env(episodes, "final_equity", "Final equity per episode (USDT)", "USDT")


def entropy_figure(training: pd.DataFrame) -> go.Figure:
    """How much the policy still explores: the policy entropy (minus SB3's ``entropy_loss``, PPO and SAC),
    SAC's entropy coefficient and DQN's exploration rate, whichever the algorithm logged.

    Parameters
    ----------
    training : DataFrame
        ``training.csv``: ``timesteps`` and any of ``entropy_loss``, ``ent_coef``, ``exploration_rate``.
    """
    fig = go.Figure()
    x = training["timesteps"]
    if _present(training, "entropy_loss"):
        fig.add_trace(go.Scatter(x=x, y=-pd.to_numeric(training["entropy_loss"], errors="coerce"), name="entropy"))
    for column, name in (("ent_coef", "entropy coefficient"), ("exploration_rate", "exploration rate")):
        if _present(training, column):
            fig.add_trace(go.Scatter(x=x, y=pd.to_numeric(training[column], errors="coerce"), name=name))
    fig.update_layout(base_layout("Policy entropy", height=320), xaxis_title="timesteps")
    return fig


def value_loss_figure(training: pd.DataFrame) -> go.Figure:
    """The critic's loss (``value_loss``; empty for DQN, which logs none) at each row of ``training.csv``."""
    fig = go.Figure()
    if _present(training, "value_loss"):
        fig.add_trace(go.Scatter(x=training["timesteps"], y=pd.to_numeric(training["value_loss"], errors="coerce"),
                                 name="value loss"))  # fmt: skip
    fig.update_layout(base_layout("Value loss", height=320), xaxis_title="timesteps")
    return fig


def action_shares_figure(training: pd.DataFrame) -> go.Figure:
    """Share of the steps since the previous row the policy chose flat, long and short, stacked to 1.

    Parameters
    ----------
    training : DataFrame
        ``training.csv``: ``timesteps``, ``share_flat``, ``share_long``, ``share_short``.
    """
    fig = go.Figure()
    for column, colour in SHARE_COLOURS.items():
        fig.add_trace(go.Scatter(x=training["timesteps"], y=training[column], name=column.removeprefix("share_"),
                                 stackgroup="shares", line={"color": colour, "width": 0.5}))  # fmt: skip
    fig.update_layout(base_layout("Action shares", height=320), xaxis_title="timesteps", yaxis={"range": [0, 1]})
    return fig


def evaluation_equity_figure(equity: list, max_points: int = DISPLAY_POINTS) -> go.Figure:
    """The evaluated policy's equity (USDT) at each bar close, min/max-decimated.

    Parameters
    ----------
    equity : list of [ts_ns, equity]
        ``evaluation.json``'s ``equity``.
    max_points : int, default DISPLAY_POINTS
    """
    data = np.asarray(equity, dtype=float).reshape(-1, 2)
    x, y = minmax_decimate(data[:, 0].astype(np.int64), data[:, 1], max_points)
    fig = go.Figure(go.Scatter(x=pd.to_datetime(x, unit="ns"), y=y, mode="lines", name="equity", line={"width": 1.4}))
    fig.update_layout(base_layout("Evaluation equity (USDT)", height=340), yaxis_title="USDT")
    return fig
