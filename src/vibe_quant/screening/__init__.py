"""Screening: a DSL strategy's parameter grid run in parallel on NautilusTrader (funding,
leverage and liquidation still modelled), hard filters, a 3-objective Pareto front, all stored
in the state database (``sweep_results``) and resumable."""
