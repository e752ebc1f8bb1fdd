"""EMA-cross baseline (docs/specs.md#ema-cross-baseline): long when the fast EMA is above the slow
one, short when below (or flat with ``allow_short=False``), always sized at ``exposure`` times
equity in notional."""

from __future__ import annotations

from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import Bar

from vibe_quant.errors import ConfigError
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig


class EmaCrossConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    fast: int = 20
    slow: int = 100
    exposure: float = 1.0  # position notional as a multiple of equity
    allow_short: bool = True


class EmaCross(PerpStrategy):
    """Trend-following EMA crossover, reversing through flat (close, then open)."""

    @classmethod
    def check(cls, cfg: EmaCrossConfig) -> None:
        if not 0 < cfg.fast < cfg.slow:
            raise ConfigError(f"ema_cross needs 0 < fast < slow, got fast={cfg.fast}, slow={cfg.slow}")
        if cfg.exposure <= 0:
            raise ConfigError(f"ema_cross exposure must be > 0, got {cfg.exposure}")

    @classmethod
    def lookback_bars(cls, cfg: EmaCrossConfig) -> int:
        return cfg.slow

    def setup(self) -> None:
        cfg: EmaCrossConfig = self.config
        self.fast = ExponentialMovingAverage(cfg.fast)
        self.slow = ExponentialMovingAverage(cfg.slow)
        self.register_indicator_for_bars(self.bar_type, self.fast)
        self.register_indicator_for_bars(self.bar_type, self.slow)
        self._signalled: int | None = None

    def on_bar(self, bar: Bar) -> None:
        if not self.slow.initialized or self.busy():
            return
        cfg: EmaCrossConfig = self.config
        up = self.fast.value > self.slow.value
        direction = 1 if up else (-1 if cfg.allow_short else 0)
        if direction == self._signalled:
            return  # act once per signal: a refused or stopped-out entry waits for the next cross
        current = self.position_qty()
        if (current > 0) - (current < 0) == direction:
            self._signalled = direction
            return
        self.signal(bar, direction, fast=self.fast.value, slow=self.slow.value)
        price = bar.close.as_double()
        self.go(bar, direction, min(self.equity() * cfg.exposure / price, self.max_qty(price)))
        self._signalled = direction
