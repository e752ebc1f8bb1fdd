"""The perp kernel gives NautilusTrader's answer: same fills (times, prices, quantities, reasons),
fees, funding, liquidations, trades, metrics, and the equity curve within 1e-9 relative.

Real data: every shipped DSL strategy, both modes, on FILUSDT (August 2023, first half); two symbols
on one account with random funding heavy enough to liquidate both ways; commands slower than a
bar. Synthetic data: a property test over random strategies, sweep points, venues, funding and
random walks (``cases.py``). A failing case prints how it differs and the seed to chase it with.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.cases import document, random_case, random_funding, random_point
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.dsl.loader import shipped_names
from vibe_quant.risk.config import SizingConfig
from vibe_quant.sim import SimSession, refusal, run_sim
from vibe_quant.sim.compare import differences

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 14)
HOUR = 3_600_000_000_000


def _plan(name: str, symbols=("FILUSDT",), params=None, **venue):
    doc = document(name)
    cfg = BacktestConfig(strategy=doc["name"], kind="dsl", document=doc, symbols=symbols, timeframe=doc["timeframe"],
                         start=START, end=END, params=params or {}, **venue)  # fmt: skip
    return plan_run(cfg)


def _assert_identical(nt, sim, what: str) -> None:
    diffs = differences(nt, sim)
    assert not diffs, f"{what}: the kernel differs from NautilusTrader:\n" + "\n".join(diffs)


@pytest.mark.parametrize("mode", ["screening", "validation"])
def test_every_shipped_strategy_matches_nautilus_on_real_data(aug_2023_catalog: Path, specs, mode: str) -> None:
    rng = random.Random(7)
    fills = 0
    for name in shipped_names():
        plan = _plan(name, params=random_point(document(name), rng), mode=mode)
        data = load_market_data(aug_2023_catalog, plan, specs)
        nt, sim = run_backtest(plan, data, replay="active"), run_sim(plan, data)
        _assert_identical(nt, sim, f"{name} {plan.config.params} {mode}")
        fills += len(nt.recorder.fills)
    assert fills > 500  # the strategies traded: identity over empty ledgers would prove nothing


def test_two_symbols_random_funding_liquidations_and_slow_commands(aug_2023_catalog: Path, specs) -> None:
    """Two symbols on one account, funding heavy enough to drain margins, 40x leverage, and every
    command slower than a 5m bar (base 200 s + insert 150 s, cancels 330 s): liquidations of longs
    and shorts, stops and exits that arrive bars later, reversals through flat."""
    latency = (200_000_000_000, 150_000_000_000, 60_000_000_000, 130_000_000_000)
    for name, mode in (("ema_cross", "screening"), ("rsi_mean_reversion_mtf", "validation")):
        plan = _plan(name, ("FILUSDT", "NEARUSDT"), mode=mode, leverage=40, latency="custom", latency_ns=latency)
        data = random_funding(load_market_data(aug_2023_catalog, plan, specs), 11, 0.01)
        nt, sim = run_backtest(plan, data, replay="active"), run_sim(plan, data)
        _assert_identical(nt, sim, f"{name} two symbols {mode}")
        liquidated = {(liq.instrument, liq.side) for liq in nt.recorder.liquidations}
        if name == "ema_cross":  # always in the market: both sides of both symbols get liquidated
            assert {side for _, side in liquidated} == {1, -1}
            assert {symbol for symbol, _ in liquidated} == {"FILUSDT", "NEARUSDT"}
        assert nt.recorder.funding


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_random_strategies_and_data_match_nautilus(seed: int) -> None:
    """Property: any shipped strategy at any sweep point, either mode, one or two symbols, any leverage,
    latency (none, retail, slower than a bar), slippage and queue probabilities, random funding,
    on random walks with jumps, gives NautilusTrader's answer."""
    plan, data, what = random_case(seed, bars=1500)
    _assert_identical(run_backtest(plan, data, replay="active"), run_sim(plan, data), what)


def test_a_session_reruns_points_without_carrying_state(aug_2023_catalog: Path, specs) -> None:
    """One session, several parameter sets, in and out of order: each run equals a fresh one."""
    plan = _plan("ema_trend_atr", ("FILUSDT", "NEARUSDT"), mode="screening")
    data = load_market_data(aug_2023_catalog, plan, specs)
    session = SimSession(plan, data)
    points = [{"ema_fast.period": f, "ema_slow.period": 100} for f in (10, 20)]
    first = [session.run(plan.with_params(p)).metrics for p in points]
    again = [session.run(plan.with_params(p)).metrics for p in reversed(points)][::-1]
    fresh = [run_sim(plan.with_params(p), data).metrics for p in points]
    for a, b, c in zip(first, again, fresh, strict=True):
        assert (
            {k: v for k, v in a.items() if k != "execution_time_seconds"}
            == {k: v for k, v in b.items() if k != "execution_time_seconds"}
            == {k: v for k, v in c.items() if k != "execution_time_seconds"}
        )
    assert first[0]["total_trades"] != first[1]["total_trades"]  # the points differ


def test_what_the_kernel_cannot_run_is_refused_with_the_reason() -> None:
    python = plan_run(BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="5m", start=START, end=END))
    assert "not the python strategy ema_cross" in refusal(python)
    with pytest.raises(ValueError, match="DSL strategies"):
        SimSession(python, None)
    gated = plan_run(msgspec.structs.replace(_plan("ema_cross").config, sizing=SizingConfig(method="kelly")))
    assert "risk gate" in refusal(gated)
    assert refusal(_plan("ema_cross")) is None


def test_the_warm_up_compiles_the_signature_real_runs_use(aug_2023_catalog: Path, specs) -> None:
    """``warm_up`` (run once before the suite's worker processes start) must compile the kernel for the
    argument types of a real run: a second specialisation would mean every process compiles again."""
    from vibe_quant.sim import kernel
    from vibe_quant.sim.session import warm_up

    warm_up()
    plan = _plan("ema_cross", ("FILUSDT", "NEARUSDT"))
    run_sim(plan, load_market_data(aug_2023_catalog, plan, specs))
    assert len(kernel.simulate_nb.signatures) == 1
