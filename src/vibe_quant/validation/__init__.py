"""Validation stage: full-fidelity backtests (the core lives in ``vibe_quant.backtest``)."""
