"""``PolicyStrategy``: a policy's target positions traded on NautilusTrader through the strategy ports.

Each closed bar feeds the streaming feature builder (the same compiled step as the environment's
feature matrix); once the strategy's first ready bar is reached and no order is on its way, the policy
names a target level from the observation (window rows and the portfolio state read through the
ports) and the strategy moves to it with :meth:`Leg.go` as ``vibe_quant.sim.policy`` describes: the
kernel makes the same decision from the same levels, which is what the parity test proves.

A policy is a trained model (``policy="model"``, ``source`` a model directory with ``model.zip`` and
``config.json``) or a recorded sequence of levels, one per bar of the run (``policy="replay"``,
``source`` an ``.npy`` file): the replay is how the environment's actions are judged on
NautilusTrader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nautilus_trader.model.data import Bar

from vibe_quant.errors import ConfigError
from vibe_quant.rl.actions import observation, portfolio_state, to_level
from vibe_quant.rl.features import FeatureStream
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig


class PolicyStrategyConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    policy: str = "model"  # model | replay
    source: str = ""  # a model directory (model) or an .npy of levels per bar (replay)
    action_space: str = "discrete"
    levels: int = 4
    fraction: float = 1.0
    window: int = 120
    ready: int = 219  # the first bar index the policy decides on
    order_id_tag: str = "001"


class PolicyStrategy(PerpStrategy):
    """Trade a policy's target levels (see the module)."""

    @classmethod
    def check(cls, config: PolicyStrategyConfig) -> None:
        """The environment's own checks of the shared fields (``EnvConfig``), then the policy's."""
        from vibe_quant.rl.env import EnvConfig

        EnvConfig(
            window=config.window, action_space=config.action_space, levels=config.levels, fraction=config.fraction
        )
        if config.policy not in ("model", "replay"):
            raise ConfigError(f"policy={config.policy!r}: choose model or replay")
        if config.ready < config.window - 1:
            raise ConfigError(f"ready={config.ready}: must be >= window - 1 = {config.window - 1}")

    def setup(self) -> None:
        cfg = self.config
        self.check(cfg)
        self.stream = FeatureStream(cfg.window)
        self.level = 0.0
        self.levels_sent: list[tuple[int, float]] = []
        if cfg.policy == "replay":
            self._replay = np.load(cfg.source)
            self._model = None
        else:
            from vibe_quant.rl.train import load_policy

            self._replay = None
            self._model = load_policy(Path(cfg.source))

    def on_bar(self, bar: Bar) -> None:
        cfg = self.config
        book = self.book
        ts = bar.ts_init
        rates = np.array([r for snap, r, _ in book.funding if snap <= ts], dtype=np.float64)
        c = bar.close.as_double()
        self.stream.push(bar.open.as_double(), bar.high.as_double(), bar.low.as_double(), c, bar.volume.as_double(),
                         rates)  # fmt: skip
        i = self.stream.count - 1
        if i < cfg.ready or self.busy():
            return
        q = book.signed_qty
        current = self.level if q else 0.0
        if self._replay is not None:
            level = float(self._replay[i]) if i < self._replay.size else 0.0
        else:
            obs = observation(self.stream.window_rows(),
                              portfolio_state(q, c, book.avg_px, book.wallet, self.equity(), cfg.fraction, current))  # fmt: skip
            action, _ = self._model.predict(obs, deterministic=True)
            level = to_level(action, cfg.action_space, cfg.levels)
        if level == current:
            return
        self.level = level
        self.levels_sent.append((ts, level))
        if level == 0.0:
            self.go(bar, 0, 0.0, reason="exit")
            return
        equity = self.equity()
        want = min(abs(level) * equity * cfg.fraction / c, self.max_qty(c))
        self.signal(bar, 1 if level > 0 else -1, rule="policy", level=level)
        self.leg.go(bar, 1 if level > 0 else -1, want, reason="signal", resize=True)
