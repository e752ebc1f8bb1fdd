"""A portfolio strategy (one strategy, many instruments, one account) against one single-instrument
strategy per instrument on the same account: where the decisions are per instrument they must
agree exactly (fills, funding, liquidations, equity curve, metrics), with brackets, margin and
position-limit refusals, funding and liquidation all in play. Real FILUSDT + NEARUSDT bars."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage, MovingAverageType

from tests.backtest.test_feed import with_funding
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.errors import ConfigError
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.risk.config import RISK_PRESETS, SIZING_PRESETS
from vibe_quant.strategy.builtin.ema_trend_atr import EmaTrendAtr
from vibe_quant.strategy.portfolio import PortfolioStrategy, PortfolioStrategyConfig

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
SYMBOLS = ("FILUSDT", "NEARUSDT")


class EmaTrendAtrBasketConfig(PortfolioStrategyConfig, frozen=True, kw_only=True):
    fast: int = 20
    slow: int = 100
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    risk: float = 0.02


class EmaTrendAtrBasket(PortfolioStrategy):
    """Strategy A's rules (``strategy/builtin/ema_trend_atr.py``) on every leg: cross entries with
    ATR stop and target brackets, sized on the whole account's equity."""

    def setup(self) -> None:
        cfg = self.config
        self.ind, self.above = {}, {}
        for leg in self.legs:
            fast, slow = ExponentialMovingAverage(cfg.fast), ExponentialMovingAverage(cfg.slow)
            atr = AverageTrueRange(cfg.atr_period, MovingAverageType.WILDER)
            for indicator in (fast, slow, atr):
                self.register_indicator_for_bars(leg.bar_type, indicator)
            self.ind[leg.bar_type], self.above[leg.bar_type] = (fast, slow, atr), None

    def on_bar(self, bar) -> None:
        fast, slow, atr = self.ind[bar.bar_type]
        if not (slow.initialized and atr.initialized):
            return
        above = fast.value > slow.value
        crossed = self.above[bar.bar_type] is not None and above != self.above[bar.bar_type]
        self.above[bar.bar_type] = above
        leg = self.leg_for(bar)
        if not crossed or leg.busy():
            return
        cfg = self.config
        direction = 1 if above else -1
        stop = cfg.stop_atr * atr.value
        if stop <= 0:
            return
        leg.signal(bar, direction, atr=atr.value, fast=fast.value, slow=slow.value)
        price, equity = bar.close.as_double(), self.equity()
        qty = min(equity * cfg.risk / stop, 0.95 * equity * leg.leverage / price, leg.max_qty(price))
        leg.go(bar, direction, qty, stop=stop, target=cfg.target_atr * atr.value)


@pytest.fixture(scope="module")
def catalog(aug_2023_catalog):
    return aug_2023_catalog  # FILUSDT + NEARUSDT, August 2023 (tests/conftest.py)


def run(catalog, strategy: str, **config):
    plan = plan_run(BacktestConfig(strategy=strategy, symbols=SYMBOLS, timeframe="15m", start=START, end=END,
                                   mode="validation", latency="retail", **config))  # fmt: skip
    return run_backtest(plan, with_funding(load_market_data(catalog, plan, InstrumentSpecs())))


def same_run(a, b) -> None:
    """Identical trading: fills (strategy-specific ids aside), funding, liquidations, equity, metrics."""

    def fills(r):
        return [(f.ts_ns, f.instrument, f.side, f.qty, f.price, f.fee, f.reason, f.liquidity) for f in r.recorder.fills]

    def plain(records):
        return [{k: v for k, v in dataclasses.asdict(x).items() if k != "position_id"} for x in records]

    assert fills(a) == fills(b)
    assert plain(a.recorder.funding) == plain(b.recorder.funding)
    assert plain(a.recorder.liquidations) == plain(b.recorder.liquidations)
    np.testing.assert_array_equal(a.equity_ts, b.equity_ts)
    np.testing.assert_array_equal(a.equity, b.equity)

    def metrics(r):  # nan != nan: compare it as None; wall-clock time is not a result
        return {k: None if v != v else v for k, v in r.metrics.items() if k != "execution_time_seconds"}

    assert metrics(a) == metrics(b)


@pytest.mark.parametrize(("leverage", "exposure", "what"), [(50, 10.0, "liquidations"), (2, 1.5, "margin refusals")])
def test_basket_trades_like_one_ema_cross_per_symbol(catalog, leverage, exposure, what) -> None:
    params = {"fast": 10, "slow": 40, "exposure": exposure}
    single = run(catalog, "ema_cross", params=params, leverage=leverage)
    basket = run(catalog, "ema_cross_basket", params=params, leverage=leverage)
    assert {f.instrument for f in single.recorder.fills} == set(SYMBOLS)
    assert len(single.recorder.funding) > 50
    refusals = [e for e in single.recorder.events if e["type"] == "RISK_CHECK"]
    if what == "liquidations":  # 50x: positions get liquidated
        assert single.metrics["liquidations"] > 10
    else:  # 75% of equity as margin per position: the second symbol's entry does not fit beside the first
        assert {e["check"] for e in refusals} == {"insufficient_margin"}
    same_run(single, basket)
    assert len([e for e in basket.recorder.events if e["type"] == "RISK_CHECK"]) == len(refusals)


def test_portfolio_legs_keep_brackets_and_position_limits(catalog) -> None:
    basket = run(catalog, f"{__name__}:EmaTrendAtrBasket", leverage=20)
    single = run(catalog, "ema_trend_atr", leverage=20)
    reasons = {f.reason for f in basket.recorder.fills}
    assert {"stop_loss", "take_profit"} <= reasons
    same_run(single, basket)


def test_portfolio_legs_pass_the_risk_gate_like_single_strategies(catalog) -> None:
    params = {"fast": 10, "slow": 40, "exposure": 0.5}
    single = run(catalog, "ema_cross", params=params, risk=RISK_PRESETS["seed_default"])
    basket = run(catalog, "ema_cross_basket", params=params, risk=RISK_PRESETS["seed_default"])
    decisions = single.extra["risk"]["decisions"]
    assert decisions["entries_passed"] > 10
    # the portfolio exposure cap refuses entries; strategy-level breakers (daily loss) halt legs
    assert decisions["refused_max_total_exposure"] > 10
    assert decisions["refused_strategy_halted"] > 10
    same_run(single, basket)
    assert basket.extra["risk"]["decisions"] == decisions
    trips = [(t["ts"], t["breaker"]) for t in single.extra["risk"]["trips"]]
    assert trips == [(t["ts"], t["breaker"]) for t in basket.extra["risk"]["trips"]]
    sized = run(
        catalog, "ema_cross_basket", params=params, sizing=SIZING_PRESETS["atr"], risk=RISK_PRESETS["live_safety"]
    )
    assert sized.extra["risk"]["decisions"]["limited_by_max_portfolio_heat"] > 10  # the sizers see every leg


def test_a_portfolio_strategy_needs_one_bar_type_per_instrument() -> None:
    from vibe_quant.strategy.builtin.ema_cross_basket import EmaCrossBasket, EmaCrossBasketConfig

    with pytest.raises(ConfigError, match="one bar type per instrument"):
        EmaCrossBasket(EmaCrossBasketConfig(instrument_ids=("A-PERP.BINANCE",), bar_types=()))
    assert issubclass(EmaTrendAtrBasket, PortfolioStrategy)
    assert not issubclass(EmaTrendAtr, PortfolioStrategy)
