"""The compiled perp simulator (``--engine sim``): our bar venue rules as numba array code, proven
identical to the NautilusTrader path (docs/specs.md#the-perp-kernel).

Public API: :func:`refusal` (why a plan cannot run on the kernel, None when it can),
:class:`SimSession` (the kernel's counterpart of ``backtest.engine.EngineSession``: same
``run(plan, run_id=None, reports=False) -> BacktestResult``) and :func:`run_sim`.
"""

from vibe_quant.sim.session import ENGINES, SimSession, refusal, run_sim

__all__ = ["ENGINES", "SimSession", "refusal", "run_sim"]
