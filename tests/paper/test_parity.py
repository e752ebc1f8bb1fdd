"""A replay paper node and the validation backtest give the same fills, funding, liquidations,
costs and equity curve for the same strategy, sizing, risk and data (real FIL/NEAR bars)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.paper.conftest import day
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.plan import plan_run
from vibe_quant.paper.node import replay
from vibe_quant.risk.config import RISK_PRESETS, SIZING_PRESETS
from vibe_quant.strategy.registry import find_strategy

VOLATILE = {"execution_time_seconds"}


def dsl(name: str) -> dict:
    ref = find_strategy(name)
    return {"strategy": ref.name, "kind": ref.kind, "document": ref.document}


CASES = {
    # entries with a stop-loss and take-profit bracket (OTO/OUO at the exchange)
    "brackets": BacktestConfig(strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=day(1),
                               end=day(31), leverage=10),
    # two instruments, one account, 20x: isolated positions are liquidated
    "liquidated": BacktestConfig(strategy="ema_cross_basket", symbols=("FILUSDT", "NEARUSDT"), timeframe="15m",
                                 start=day(1), end=day(31), leverage=20),
    # the risk gate with live safety: post-only GTD entries, breakers, ATR sizing
    "live_safety": BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="5m", start=day(1),
                                  end=day(15), params={"fast": 20, "slow": 100, "exposure": 0.5}, leverage=3,
                                  sizing=SIZING_PRESETS["atr"], risk=RISK_PRESETS["live_safety"]),
    # a DSL strategy reading the funding rate (strategy C)
    "dsl_funding": BacktestConfig(**dsl("funding_aware_ema"), symbols=("NEARUSDT",), timeframe="15m", start=day(1),
                                  end=day(31), leverage=5),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_replay_paper_equals_validation_backtest(case: str, aug_data_loader) -> None:
    plan = plan_run(CASES[case])
    # funding x5 so that "liquidated" also sees funding drain isolated margins (real rates, scaled)
    data = aug_data_loader(plan, scale=5.0)
    backtest = run_backtest(plan, data)
    paper = replay(plan, data)

    assert paper.recorder.fills == backtest.recorder.fills
    assert paper.recorder.funding == backtest.recorder.funding
    assert paper.recorder.liquidations == backtest.recorder.liquidations
    assert np.array_equal(paper.equity_ts, backtest.equity_ts)
    assert np.array_equal(paper.equity, backtest.equity)
    assert paper.costs == backtest.costs
    assert {k: v for k, v in paper.metrics.items() if k not in VOLATILE} == {
        k: v for k, v in backtest.metrics.items() if k not in VOLATILE
    }
    # each case exercises what it is named for
    assert backtest.recorder.fills
    assert backtest.recorder.funding
    reasons = {f.reason for f in backtest.recorder.fills}
    if case == "brackets":
        assert {"stop_loss", "take_profit"} <= reasons
    if case == "liquidated":
        assert backtest.recorder.liquidations
    if case == "live_safety":
        assert {f.liquidity for f in backtest.recorder.fills if f.reason == "entry"} == {"MAKER"}
        assert backtest.extra["risk"]["decisions"] == paper.extra["risk"]["decisions"]


def test_a_replay_started_from_inside_a_running_event_loop_runs_in_its_own_thread(aug_data_loader) -> None:
    from vibe_quant.paper.loops import run_async

    plan = plan_run(BacktestConfig(strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=day(1),
                                   end=day(5), leverage=10))  # fmt: skip
    data = aug_data_loader(plan)

    async def caller():  # e.g. a notebook or a service calling the paper API
        return replay(plan, data)

    paper = run_async(caller)  # (itself on a worker thread when the test session runs a loop)
    assert paper.recorder.fills == run_backtest(plan, data).recorder.fills
    assert paper.recorder.fills
