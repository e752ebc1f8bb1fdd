"""The ``python`` strategy kind: NautilusTrader strategy classes written in Python.

A class registered in :data:`PYTHON_STRATEGIES` (or given as ``module:Class`` whose config class is
``module:ClassConfig``) is a :class:`~vibe_quant.strategy.base.PerpStrategy` (one per symbol of the
run) or a :class:`~vibe_quant.strategy.portfolio.PortfolioStrategy` (one for all symbols). Its
parameters are the fields of its config class; a grid sweeps them (``--sweep fast=10,20``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.strategy.grid import Expansion, checked_rules, grid_points
from vibe_quant.strategy.registry import LegSpec, Parameter, StrategyRef, StrategySpec, per_leg

# name -> (module, strategy class, config class)
PYTHON_STRATEGIES: dict[str, tuple[str, str, str]] = {
    "ema_cross": ("vibe_quant.strategy.builtin.ema_cross", "EmaCross", "EmaCrossConfig"),
    "ema_trend_atr": ("vibe_quant.strategy.builtin.ema_trend_atr", "EmaTrendAtr", "EmaTrendAtrConfig"),
    "ema_cross_basket": ("vibe_quant.strategy.builtin.ema_cross_basket", "EmaCrossBasket", "EmaCrossBasketConfig"),
}
# Fields the runner fills in (never parameters).
_RUN_FIELDS = {"instrument_id", "bar_type", "instrument_ids", "bar_types", "ports", "order_id_tag", "strategy_id"}


def _classes(name: str):
    entry = PYTHON_STRATEGIES.get(name)
    if entry is None and ":" in name:  # module:Class, config module:ClassConfig
        module, _, cls = name.partition(":")
        entry = (module, cls, f"{cls}Config")
    if entry is None:
        raise ConfigError(
            f"unknown Python strategy {name!r}; choose from {', '.join(PYTHON_STRATEGIES)} or give module:Class."
            + did_you_mean(name, PYTHON_STRATEGIES)
        )
    try:
        module = importlib.import_module(entry[0])
        return module, getattr(module, entry[1]), getattr(module, entry[2])
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"Python strategy {name!r}: cannot import {entry[0]}:{entry[1]} and its {entry[2]} ({exc})"
        ) from None


def _parameters(config_cls) -> set[str]:
    """The config fields a user sets: the subclass's own (not NautilusTrader's, not the run's ids)."""
    from nautilus_trader.config import StrategyConfig

    base = {f.name for f in msgspec.structs.fields(StrategyConfig)}
    return {f.name for f in msgspec.structs.fields(config_cls)} - base - _RUN_FIELDS


@dataclass(frozen=True)
class BoundPython:
    spec: StrategySpec
    module: object
    strategy_cls: type
    config_cls: type
    portfolio: bool
    lookback_bars: int | None
    precomputed: bool = False
    has_stop_loss: bool | None = None

    def config(self, legs: Sequence[LegSpec], order_id_tag: str = "001"):
        """The strategy's NautilusTrader config for `legs` (all of them for a portfolio strategy)."""
        if self.portfolio:
            ids = {"instrument_ids": tuple(leg.instrument_id for leg in legs),
                   "bar_types": tuple(leg.bar_type for leg in legs)}  # fmt: skip
        else:
            (leg,) = legs
            ids = {"instrument_id": leg.instrument_id, "bar_type": leg.bar_type}
        try:
            return msgspec.convert({**self.spec.params, **ids, "order_id_tag": order_id_tag}, self.config_cls,
                                   strict=False)  # fmt: skip
        except msgspec.ValidationError as exc:
            raise ConfigError(f"strategy {self.spec.name!r} parameters: {exc}") from exc

    def code(self) -> list[bytes]:
        return [inspect.getsource(self.module).encode()]

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        if self.portfolio:
            return [self.strategy_cls(self.config(legs), ports)]
        return per_leg(lambda leg, tag: self.strategy_cls(self.config([leg], tag), ports), legs)

    def importable(self, legs: Sequence[LegSpec]) -> list:
        from nautilus_trader.config import ImportableStrategyConfig

        path = self.module.__name__
        groups = [list(legs)] if self.portfolio else [[leg] for leg in legs]
        return [
            ImportableStrategyConfig(
                strategy_path=f"{path}:{self.strategy_cls.__name__}", config_path=f"{path}:{self.config_cls.__name__}",
                config=msgspec.to_builtins(self.config(group, f"{i + 1:03d}")),
            )
            for i, group in enumerate(groups)
        ]  # fmt: skip


class PythonKind:
    name = "python"

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        return StrategyRef("python", text) if text in PYTHON_STRATEGIES else None

    def names(self, db_path: Path | None) -> list[str]:
        return list(PYTHON_STRATEGIES)

    def bind(self, spec: StrategySpec) -> BoundPython:
        """Check the parameter names, their types and values (the class's ``check``).

        Raises
        ------
        ConfigError
            Unknown strategy or parameter (with a did-you-mean), a value of the wrong type, or
            parameters the strategy rejects.
        """
        from vibe_quant.strategy.portfolio import PortfolioStrategy

        module, strategy_cls, config_cls = _classes(spec.name)
        own = _parameters(config_cls)
        for name in spec.params:
            if name not in own:
                raise ConfigError(
                    f"strategy {spec.name!r} has no parameter {name!r}; parameters: {', '.join(sorted(own))}."
                    + did_you_mean(name, own)
                )
        portfolio = issubclass(strategy_cls, PortfolioStrategy)
        lookback = getattr(strategy_cls, "lookback_bars", None)
        bound = BoundPython(spec, module, strategy_cls, config_cls, portfolio, None)
        # Types and values, with placeholder ids: the real ones are only known once data is loaded.
        placeholder = [LegSpec(s, "X-PERP.BINANCE", "X-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL") for s in spec.symbols]
        config = bound.config(placeholder if portfolio else placeholder[:1])
        strategy_cls.check(config)
        return BoundPython(spec, module, strategy_cls, config_cls, portfolio,
                           lookback(config) if lookback is not None else None)  # fmt: skip

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        """The grid of `overrides` (a Python strategy has no sweep of its own); a point the strategy
        rejects is skipped. Constraint keys are parameter names (their default when not swept)."""
        _, _, config_cls = _classes(spec.name)
        own = _parameters(config_cls)
        rules = checked_rules(spec.name, overrides, constraints, own)
        defaults = {f.name: f.default for f in msgspec.structs.fields(config_cls)}
        axes = {k: list(v) for k, v in overrides.items()}

        def check(point: dict) -> None:
            self.bind(msgspec.structs.replace(spec, params={**spec.params, **point}))

        return grid_points(axes, rules, lambda key: spec.params.get(key, defaults.get(key)), check)

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        """The config class's own fields: type from the annotation, default from the field (no sweep of its own)."""
        _, _, config_cls = _classes(ref.name)
        own = _parameters(config_cls)
        out = {}
        for f in msgspec.structs.fields(config_cls):
            if f.name not in own:
                continue
            default = None if f.default is msgspec.NODEFAULT else f.default
            kind = {int: "integer", float: "float", bool: "boolean", str: "string"}.get(type(default), "string")
            out[f.name] = Parameter(type=kind, default=default)
        return out


PYTHON = PythonKind()
