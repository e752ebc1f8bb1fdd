"""Figures of a discovery run (docs/specs.md#discovery-search), each a pure function of what the run stores:
the statistics of each checkpointed generation and the genomes of a Pareto front.
"""

from __future__ import annotations

import plotly.graph_objects as go

from vibe_quant.plots.style import GREEN, GREY, RED, base_layout

BEST, MEAN, WORST = GREEN, "#1f77b4", RED
OBJECTIVES = {"sharpe": "training Sharpe", "fitness_sharpe": "Sharpe - Occam penalty"}


def fitness_figure(generations: list[dict], objective: str = "sharpe") -> go.Figure:
    """The best, mean and worst `objective` of each generation's feasible genomes (lines) and how many genomes of
    the population were feasible (bars, right axis).

    Parameters
    ----------
    generations : list of dict
        One per checkpointed generation, in order: ``generation`` and the stored statistics (``feasible``,
        ``population`` and ``objective`` = ``{best, mean, worst}``, None when no genome was feasible).
    objective : str, default "sharpe"
        ``sharpe`` (training Sharpe) or ``fitness_sharpe`` (the search's first objective: Sharpe minus the
        Occam penalty per gene beyond the first).

    Raises
    ------
    ValueError
        `objective` is neither of them.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    x = [g["generation"] for g in generations]
    fig = go.Figure()
    for stat, colour in (("best", BEST), ("mean", MEAN), ("worst", WORST)):
        y = [(g.get(objective) or {}).get(stat) for g in generations]  # None (no feasible genome): a gap
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=stat, line={"color": colour},
                                 marker={"size": 6}))  # fmt: skip
    fig.add_trace(go.Bar(x=x, y=[g.get("feasible", 0) for g in generations], name="feasible genomes", yaxis="y2",
                         marker={"color": GREY}, opacity=0.25,
                         customdata=[g.get("population") for g in generations],
                         hovertemplate="%{y} of %{customdata} feasible<extra></extra>"))  # fmt: skip
    top = max([g.get("population") or 0 for g in generations], default=0)
    fig.update_layout(base_layout(f"Fitness by generation ({OBJECTIVES[objective]} of the feasible genomes)"),
                      xaxis={"title": "generation", "dtick": 1}, yaxis={"title": OBJECTIVES[objective]},
                      yaxis2={"title": "feasible genomes", "overlaying": "y", "side": "right", "showgrid": False,
                              "range": [0, max(top, 1) * 1.05]})  # fmt: skip
    return fig


def front_figure(rows: list[dict]) -> go.Figure:
    """A Pareto front's genomes: training Sharpe against max drawdown, sized by complexity, the rules on hover.

    Parameters
    ----------
    rows : list of dict
        One per genome: ``key``, ``description``, ``sharpe``, ``max_drawdown`` (a fraction), ``profit_factor``,
        ``trades``, ``complexity`` (genes).
    """
    fig = go.Figure(go.Scatter(
        x=[r.get("max_drawdown") for r in rows], y=[r.get("sharpe") for r in rows], mode="markers", name="front",
        marker={"size": [8 + 3 * (r.get("complexity") or 1) for r in rows], "color": BEST,
                "line": {"width": 1, "color": "#333"}},
        customdata=[[r["key"], r.get("description", ""), r.get("profit_factor"), r.get("trades"), r.get("complexity")]
                    for r in rows],
        hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>Sharpe %{y:.2f} · max drawdown %{x:.1%}"
                       " · profit factor %{customdata[2]:.2f} · %{customdata[3]} trades · %{customdata[4]} gene(s)"
                       "<extra></extra>"),
    ))  # fmt: skip
    layout = base_layout(f"Pareto front ({len(rows)} genome(s)): training Sharpe vs max drawdown")
    layout["hovermode"] = "closest"
    fig.update_layout(layout, xaxis={"title": "max drawdown", "tickformat": ".1%"},
                      yaxis={"title": "training Sharpe"})  # fmt: skip
    return fig
