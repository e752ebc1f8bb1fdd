"""Python strategies usable by name in the runner (the DSL will compile to the same base)."""

from __future__ import annotations

from vibe_quant.errors import ConfigError, did_you_mean

# name -> (module, strategy class, config class)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "ema_cross": ("vibe_quant.backtest.strategies.ema_cross", "EmaCross", "EmaCrossConfig"),
    "ema_trend_atr": ("vibe_quant.backtest.strategies.ema_trend_atr", "EmaTrendAtr", "EmaTrendAtrConfig"),
}


def resolve(name: str):
    """Return ``(strategy_cls, config_cls, module)`` for a registered strategy name.

    Raises
    ------
    ConfigError
        For an unknown name (with a did-you-mean).
    """
    import importlib

    entry = REGISTRY.get(name)
    if entry is None:
        raise ConfigError(
            f"unknown strategy {name!r}; choose from {', '.join(REGISTRY)}.{did_you_mean(name, REGISTRY)}"
        )
    module = importlib.import_module(entry[0])
    return getattr(module, entry[1]), getattr(module, entry[2]), module
