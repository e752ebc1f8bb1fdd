"""The batch runner: many backtests of one strategy on one dataset, in parallel.

A point is ``(index, params[, (start, end)])``: a parameter set, optionally on a sub-period.
:mod:`.worker` runs points in one process (data loaded once, one engine reused);
:mod:`.executors` spreads them over a process pool or Ray. Screening, the overfitting filters'
walk-forward (and later discovery) are its clients.
"""
