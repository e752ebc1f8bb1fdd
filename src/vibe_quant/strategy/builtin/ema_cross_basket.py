"""EMA cross over a basket: the baseline of docs/specs.md#ema-cross-baseline on every instrument of the run, as one portfolio
strategy on one account.

Each instrument is long when its fast EMA is above its slow one, short when below (flat with
``allow_short=False``), sized at ``exposure`` times the account's equity in notional, reversing
through flat: the decisions of ``ema_cross`` run once per symbol, so the two trade identically
(tests/strategy/test_portfolio.py). It is the reference for portfolio strategies: one strategy,
many legs, the same order rules per leg.
"""

from __future__ import annotations

from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import Bar

from vibe_quant.strategy.builtin.ema_cross import check_ema_cross, cross_act
from vibe_quant.strategy.portfolio import PortfolioStrategy, PortfolioStrategyConfig


class EmaCrossBasketConfig(PortfolioStrategyConfig, frozen=True, kw_only=True):
    fast: int = 20
    slow: int = 100
    exposure: float = 1.0  # each position's notional as a multiple of equity
    allow_short: bool = True


class EmaCrossBasket(PortfolioStrategy):
    """Trend-following EMA crossover on every instrument (see the module docstring)."""

    @classmethod
    def check(cls, cfg: EmaCrossBasketConfig) -> None:
        check_ema_cross("ema_cross_basket", cfg)

    @classmethod
    def lookback_bars(cls, cfg: EmaCrossBasketConfig) -> int:
        return cfg.slow

    def setup(self) -> None:
        cfg: EmaCrossBasketConfig = self.config
        self.emas = {}
        self.signalled: dict = {}
        for leg in self.legs:
            fast, slow = ExponentialMovingAverage(cfg.fast), ExponentialMovingAverage(cfg.slow)
            self.register_indicator_for_bars(leg.bar_type, fast)
            self.register_indicator_for_bars(leg.bar_type, slow)
            self.emas[leg.bar_type] = (fast, slow)
            self.signalled[leg.bar_type] = None

    def on_bar(self, bar: Bar) -> None:
        fast, slow = self.emas[bar.bar_type]
        leg = self.leg_for(bar)
        if not slow.initialized or leg.busy():
            return
        cfg: EmaCrossBasketConfig = self.config
        direction = 1 if fast.value > slow.value else (-1 if cfg.allow_short else 0)
        if direction == self.signalled[bar.bar_type]:
            return  # act once per signal: a refused or stopped-out entry waits for the next cross
        cross_act(leg, bar, direction, fast.value, slow.value, cfg.exposure, self.equity())
        self.signalled[bar.bar_type] = direction
