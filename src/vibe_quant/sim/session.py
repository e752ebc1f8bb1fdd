"""Kernel sessions: the same interface as ``backtest.engine.EngineSession`` over the compiled simulator."""

from __future__ import annotations

from vibe_quant.backtest.engine import BacktestResult, EngineSession
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan

ENGINES = ("sim", "nautilus")


def refusal(plan: RunPlan) -> str | None:
    """Why `plan` cannot run on the kernel (it then runs on NautilusTrader), or None when it can."""
    if plan.config.kind != "dsl":
        return f"the kernel runs DSL strategies; {plan.config.kind} strategy {plan.config.strategy} runs on NautilusTrader"
    if plan.sizing is not None or plan.risk is not None:
        return "the risk gate (--sizing/--risk) runs on NautilusTrader"
    return None


class SimSession:
    """One market, period and venue on the kernel; runs any plan differing only in strategy parameters.

    (Interim: delegates to NautilusTrader until the kernel lands; same results by definition.)
    """

    def __init__(self, plan: RunPlan, data: MarketData):
        why = refusal(plan)
        if why is not None:
            raise ValueError(why)
        self._session = EngineSession(plan, data, replay="active")

    def run(self, plan: RunPlan, run_id: str | None = None, reports: bool = False) -> BacktestResult:
        result = self._session.run(plan, run_id, reports=reports)
        result.extra["engine"] = "sim"
        return result

    def dispose(self) -> None:
        self._session.dispose()


def run_sim(plan: RunPlan, data: MarketData, run_id: str | None = None) -> BacktestResult:
    """One run of `plan` on the kernel (raises ValueError with the reason when it cannot run there)."""
    session = SimSession(plan, data)
    try:
        return session.run(plan, run_id)
    finally:
        session.dispose()
