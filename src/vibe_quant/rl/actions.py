"""Actions as target levels and the observation layout, shared by the environment and the strategy."""

from __future__ import annotations

import numpy as np

from vibe_quant.errors import ConfigError

ACTION_SPACES = ("discrete", "continuous")
DISCRETE_LEVELS = (0.0, 1.0, -1.0)  # docs/specs.md#reinforcement-learning: 0 flat, 1 long, 2 short (a target position)


def to_level(action, action_space: str, levels: int) -> float:
    """The target level an action names: discrete 0/1/2 -> 0/+1/-1; continuous a in [-1, 1] -> round(a*levels)/levels.

    Raises
    ------
    ConfigError
        A discrete action outside 0..2.
    """
    if action_space == "discrete":
        a = int(action) if isinstance(action, (int, np.integer)) else int(np.asarray(action).reshape(-1)[0])
        if not 0 <= a <= 2:
            raise ConfigError(f"discrete action {a}: must be 0 (flat), 1 (long) or 2 (short)")
        return DISCRETE_LEVELS[a]
    a = float(action.flat[0]) if isinstance(action, np.ndarray) else float(np.asarray(action).reshape(-1)[0])
    if a != a:
        raise ConfigError("continuous action NaN: the policy's output is not a number")
    return round(min(1.0, max(-1.0, a)) * levels) / levels  # half to even, as numpy's round


def portfolio_state(qty: float, close: float, avg_px: float, wallet: float, equity: float, fraction: float,
                    level: float) -> tuple[float, float, float, float]:  # fmt: skip
    """(position as a signed fraction of full size, unrealised PnL / equity, isolated margin / equity, level)."""
    if not equity > 0:
        return 0.0, 0.0, 0.0, level
    return qty * close / (equity * fraction), qty * (close - avg_px) / equity, wallet / equity, level


def observation(rows: np.ndarray, portfolio: tuple[float, float, float, float]) -> np.ndarray:
    """The flat float32 observation: the window's feature rows (oldest first), then the portfolio state."""
    return np.concatenate([rows.ravel(), np.asarray(portfolio, dtype=np.float64)]).astype(np.float32)
