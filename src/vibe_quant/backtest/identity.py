"""Run ids: a backtest is identified by its content (STYLE: runs are identified by content)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from vibe_quant import code_version
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan

_PACKAGE = Path(__file__).resolve().parent.parent
# The code every run's result depends on: the backtest core, the strategy layer, sizing and risk.
_CORE = ("backtest", "strategy", "risk", "instruments")


def run_id_for(plan: RunPlan, data: MarketData) -> str:
    """Content hash of the resolved config, the strategy's code (its kind names it), the engine
    code, the data read and the versions: the same inputs give the same id and, the engine being
    deterministic, the same results."""
    h = hashlib.sha256()
    parts = [plan.config.canonical_json(), *plan.strategy.code(), data.digest.encode(), code_version().encode()]
    parts += [p.read_bytes() for folder in _CORE for p in sorted((_PACKAGE / folder).rglob("*.py"))]
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]
