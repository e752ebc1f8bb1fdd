"""The ``lpi`` strategy kind: the liquidation-pressure strategies ``lpi_cascade`` and ``lpi_reversion``.

A name fixes the variant (``docs/specs.md#lpi-strategies``); the parameters are the fields of
:class:`~vibe_quant.lpi.config.LpiStrategyConfig` (signal and decision), flat, swept like a Python
strategy's (``--sweep theta_lpi=2,3,4``). ``markout_ms`` is given as ``"1000,5000,30000"``. The
strategies read ticks: a run must aggregate its bars from trade ticks (``--ticks``); a bar-mode run
is refused when it builds them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.strategy.grid import Expansion, checked_rules, grid_points
from vibe_quant.strategy.registry import LegSpec, Parameter, StrategyRef, StrategySpec, per_leg

NAMES = {"lpi_cascade": "cascade", "lpi_reversion": "reversion"}
_RUN_FIELDS = {"instrument_id", "bar_type", "ports", "variant"}
_MODULES = ("params", "rolling", "features", "config", "decide", "strategy", "kind")


def own_fields() -> list[str]:
    """The config fields a user sets (not NautilusTrader's, not the run's ids, not the variant)."""
    from nautilus_trader.config import StrategyConfig

    base = {f.name for f in msgspec.structs.fields(StrategyConfig)}
    return [f.name for f in msgspec.structs.fields(LpiStrategyConfig) if f.name not in base | _RUN_FIELDS]


def _defaults() -> dict[str, object]:
    return {f.name: f.default for f in msgspec.structs.fields(LpiStrategyConfig)}


def _values(params: Mapping[str, object]) -> dict[str, object]:
    out = dict(params)
    m = out.get("markout_ms")
    if isinstance(m, str):
        try:
            out["markout_ms"] = tuple(int(x) for x in m.replace(" ", "").split(",") if x)
        except ValueError:
            raise ConfigError(f"lpi.markout_ms: {m!r} is not a list of integers; write e.g. 1000,5000,30000") from None
    elif isinstance(m, int):
        out["markout_ms"] = (m,)
    return out


@dataclass(frozen=True)
class BoundLpi:
    spec: StrategySpec
    variant: str
    precomputed: bool = False
    has_stop_loss: bool | None = None
    lookback_bars: int | None = None
    needs_ticks: bool = True  # a runner may refuse a bar-mode run before loading data; build() does anyway

    def config(self, leg: LegSpec, order_id_tag: str = "001") -> LpiStrategyConfig:
        """The strategy's config on `leg`."""
        data = {**_values(self.spec.params), "variant": self.variant, "instrument_id": leg.instrument_id,
                "bar_type": leg.bar_type, "order_id_tag": order_id_tag}  # fmt: skip
        try:
            return msgspec.convert(data, LpiStrategyConfig, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"strategy {self.spec.name!r} parameters: {exc}") from exc

    def code(self) -> list[bytes]:
        import importlib

        return [inspect.getsource(importlib.import_module(f"vibe_quant.lpi.{m}")).encode() for m in _MODULES]

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        """One strategy per leg; legs must carry bars aggregated from trade ticks.

        Raises
        ------
        ConfigError
            A leg's bars are not aggregated from ticks (a bar-mode run).
        """
        from vibe_quant.lpi.strategy import LpiStrategy

        for leg in legs:
            if not leg.bar_type.endswith("-INTERNAL"):
                raise ConfigError(f"LPI strategies need tick data: add --ticks (strategy {self.spec.name!r} was given "
                                  f"bars {leg.bar_type}, not trade ticks)")  # fmt: skip
        return per_leg(lambda leg, tag: LpiStrategy(self.config(leg, tag), ports), legs)

    def importable(self, legs: Sequence[LegSpec]) -> list:
        from nautilus_trader.config import ImportableStrategyConfig

        return [
            ImportableStrategyConfig(strategy_path="vibe_quant.lpi.strategy:LpiStrategy",
                                     config_path="vibe_quant.lpi.config:LpiStrategyConfig",
                                     config=msgspec.to_builtins(self.config(leg, f"{i + 1:03d}")))
            for i, leg in enumerate(legs)
        ]  # fmt: skip


class LpiKind:
    name = "lpi"

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        return StrategyRef("lpi", text) if text in NAMES else None

    def names(self, db_path: Path | None) -> list[str]:
        return list(NAMES)

    def bind(self, spec: StrategySpec) -> BoundLpi:
        """Check the name, the parameter names, their types and values.

        Raises
        ------
        ConfigError
            Unknown name or parameter (with a did-you-mean), a wrong type, an impossible value.
        """
        variant = NAMES.get(spec.name)
        if variant is None:
            raise ConfigError(f"unknown LPI strategy {spec.name!r}; choose from {', '.join(NAMES)}."
                              + did_you_mean(spec.name, NAMES))  # fmt: skip
        own = own_fields()
        for name in spec.params:
            if name not in own:
                hint = " (the variant is the strategy's name)" if name == "variant" else ""
                raise ConfigError(f"strategy {spec.name!r} has no parameter {name!r}{hint}; parameters: "
                                  f"{', '.join(sorted(own))}." + did_you_mean(name, own))  # fmt: skip
        bound = BoundLpi(spec, variant)
        bound.config(LegSpec("X", "X-PERP.BINANCE", "X-PERP.BINANCE-1-MINUTE-LAST-INTERNAL")).check()
        return bound

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        """The grid of `overrides`; a point the strategy rejects is skipped (as for Python strategies)."""
        own = own_fields()
        rules = checked_rules(spec.name, overrides, constraints, own)
        defaults = _defaults()

        def check(point: dict) -> None:
            self.bind(msgspec.structs.replace(spec, params={**spec.params, **point}))

        return grid_points({k: list(v) for k, v in overrides.items()}, rules,
                           lambda key: spec.params.get(key, defaults.get(key)), check)  # fmt: skip

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        """Every signal and decision field: type and default from the config class."""
        out = {}
        defaults = _defaults()
        for name in own_fields():
            default = defaults[name]
            if name == "markout_ms":
                out[name] = Parameter(type="string", default=",".join(str(h) for h in default),
                                      description="markout horizons in ms, comma-separated")  # fmt: skip
                continue
            if name == "markout_guard_bps":
                out[name] = Parameter(type="float", default=default, min=0.0)
                continue
            kind = {bool: "boolean", int: "integer", float: "float", str: "string"}.get(type(default), "string")
            out[name] = Parameter(type=kind, default=default)
        return out


LPI = LpiKind()
