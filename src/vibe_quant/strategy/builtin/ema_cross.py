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


def check_ema_cross(name: str, cfg) -> None:
    """The parameter rules of the EMA cross (any config with fast, slow and exposure)."""
    if not 0 < cfg.fast < cfg.slow:
        raise ConfigError(f"{name} needs 0 < fast < slow, got fast={cfg.fast}, slow={cfg.slow}")
    if cfg.exposure <= 0:
        raise ConfigError(f"{name} exposure must be > 0, got {cfg.exposure}")


def cross_act(leg, bar: Bar, direction: int, fast: float, slow: float, exposure: float, equity: float) -> None:
    """Act on a new EMA-cross signal on `leg`: already on that side, nothing; else signal and move
    there with `exposure` x `equity` in notional (capped at Binance's limit at the leverage)."""
    current = leg.book.signed_qty
    if (current > 0) - (current < 0) == direction:
        return
    leg.signal(bar, direction, fast=fast, slow=slow)
    price = bar.close.as_double()
    leg.go(bar, direction, min(equity * exposure / price, leg.max_qty(price)))


class EmaCross(PerpStrategy):
    """Trend-following EMA crossover, reversing through flat (close, then open)."""

    @classmethod
    def check(cls, cfg: EmaCrossConfig) -> None:
        check_ema_cross("ema_cross", cfg)

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
        cross_act(self.leg, bar, direction, self.fast.value, self.slow.value, cfg.exposure, self.equity())
        self._signalled = direction
