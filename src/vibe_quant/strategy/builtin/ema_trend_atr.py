"""Strategy A (EMA trend, docs/specs.md#strategies-a-b-c): enter on an EMA 20/100 cross, stop 1.5 x ATR(14), take
profit 3 x ATR(14), risking 2% of equity per trade (size = equity * risk / stop distance, capped
so the position's margin fits the leverage)."""

from __future__ import annotations

from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage, MovingAverageType
from nautilus_trader.model.data import Bar

from vibe_quant.errors import ConfigError
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig


class EmaTrendAtrConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    fast: int = 20
    slow: int = 100
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    risk: float = 0.02  # fraction of equity lost if the stop fills at its price
    allow_short: bool = True


class EmaTrendAtr(PerpStrategy):
    """Cross entries with ATR bracket exits; an opposite cross reverses (close, then open)."""

    @classmethod
    def check(cls, cfg: EmaTrendAtrConfig) -> None:
        if not 0 < cfg.fast < cfg.slow:
            raise ConfigError(f"ema_trend_atr needs 0 < fast < slow, got fast={cfg.fast}, slow={cfg.slow}")
        if not 0 < cfg.risk < 1:
            raise ConfigError(f"ema_trend_atr risk must be in (0, 1), got {cfg.risk}")
        if cfg.atr_period < 1 or cfg.stop_atr <= 0 or cfg.target_atr <= 0:
            raise ConfigError("ema_trend_atr needs atr_period >= 1, stop_atr > 0 and target_atr > 0")

    @classmethod
    def lookback_bars(cls, cfg: EmaTrendAtrConfig) -> int:
        return max(cfg.slow, cfg.atr_period) + 1  # +1: a cross compares with the bar before

    def setup(self) -> None:
        cfg: EmaTrendAtrConfig = self.config
        self.fast = ExponentialMovingAverage(cfg.fast)
        self.slow = ExponentialMovingAverage(cfg.slow)
        self.atr = AverageTrueRange(cfg.atr_period, MovingAverageType.WILDER)  # Wilder, as everyone means
        for indicator in (self.fast, self.slow, self.atr):
            self.register_indicator_for_bars(self.bar_type, indicator)
        self._above: bool | None = None

    def on_bar(self, bar: Bar) -> None:
        if not (self.slow.initialized and self.atr.initialized):
            return
        above = self.fast.value > self.slow.value
        crossed = self._above is not None and above != self._above
        self._above = above
        if not crossed or self.busy():
            return
        cfg: EmaTrendAtrConfig = self.config
        direction = 1 if above else (-1 if cfg.allow_short else 0)
        stop = cfg.stop_atr * self.atr.value
        if stop <= 0:
            return
        self.signal(bar, direction, atr=self.atr.value, fast=self.fast.value, slow=self.slow.value)
        price = bar.close.as_double()
        equity = self.equity()
        qty = min(equity * cfg.risk / stop, 0.95 * equity * self.leverage / price, self.max_qty(price))
        self.go(bar, direction, qty, stop=stop, target=cfg.target_atr * self.atr.value)
