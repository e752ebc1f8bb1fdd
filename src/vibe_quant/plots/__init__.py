"""Plotly figures of stored results: pure functions of arrays and tables, no database, no engine.

``run``: a backtest (equity, drawdown, monthly returns, trade PnL, PnL by exit reason and side,
cost attribution, exposure and margin); ``sweep``: a screening run (Pareto front, overfitting
funnel, walk-forward windows); ``coverage``: the catalog's data coverage. Long curves are
min/max-decimated (``decimate``) so every drawdown stays visible.
"""
