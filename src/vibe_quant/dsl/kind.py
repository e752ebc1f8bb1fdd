"""The ``dsl`` strategy kind: YAML strategy documents compiled to :class:`~vibe_quant.dsl.strategy.DslStrategy`.

A DSL strategy is named by a file (``FILE.yaml``), a name saved in the state database
(``vq dsl save``; its latest version) or a shipped name; its parameters are sweep keys
(``rsi.period``); its grid is the document's ``sweep:`` with overrides and constraints. A
backtest may read its decisions from a precomputed signal table (``dsl/table.py``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.dsl.analysis import Analysis
from vibe_quant.errors import ConfigError
from vibe_quant.strategy.grid import Expansion
from vibe_quant.strategy.registry import LegSpec, Parameter, StrategyRef, StrategySpec, per_leg


def _canonical(document: dict) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def lookback_bars(analysis: Analysis) -> int:
    """Primary bars covering the longest indicator warm-up plus the history conditions read,
    each on the indicator's own timeframe."""
    history: dict[str, int] = {}
    for (name, _output), bars in analysis.history.items():
        history[name] = max(history.get(name, 0), bars)
    longest = 0
    for name, ind in analysis.indicators.items():
        bars = ind.definition.warmup(ind.params) + history.get(name, 0)
        longest = max(longest, bars * ind.timeframe.step_ms)
    return math.ceil(longest / analysis.primary.step_ms)


@dataclass(frozen=True)
class BoundDsl:
    spec: StrategySpec
    analysis: Analysis
    document: str  # canonical JSON with the parameters applied (what DslStrategyConfig carries)
    precomputed: bool = True

    @property
    def has_stop_loss(self) -> bool:
        return self.analysis.doc.stop_loss is not None

    @property
    def lookback_bars(self) -> int:
        return lookback_bars(self.analysis)

    def config(self, leg: LegSpec, order_id_tag: str):
        from vibe_quant.dsl.strategy import DslStrategyConfig

        return DslStrategyConfig(document=self.document, instrument_id=leg.instrument_id, bar_type=leg.bar_type,
                                 order_id_tag=order_id_tag)  # fmt: skip

    def code(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(Path(__file__).parent.rglob("*.py"))]  # the compiler

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        from vibe_quant.dsl.strategy import DslStrategy

        return per_leg(lambda leg, tag: DslStrategy(self.config(leg, tag), ports), legs)

    def importable(self, legs: Sequence[LegSpec]) -> list:
        from nautilus_trader.config import ImportableStrategyConfig

        return per_leg(lambda leg, tag: ImportableStrategyConfig(
            strategy_path="vibe_quant.dsl.strategy:DslStrategy", config_path="vibe_quant.dsl.strategy:DslStrategyConfig",
            config=msgspec.to_builtins(self.config(leg, tag))), legs)  # fmt: skip


class DslKind:
    name = "dsl"

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        """A file (``.yaml``/``.yml`` or a path), a name saved in the state database, a shipped name.

        Raises
        ------
        DslError
            The file is missing or invalid (located message).
        """
        from vibe_quant.dsl.loader import load_file, resolve_strategy_file
        from vibe_quant.dsl.strategy import document_json

        if not (text.endswith((".yaml", ".yml")) or os.sep in text) and db_path is not None and db_path.exists():
            from vibe_quant.state import StateManager

            with StateManager(db_path) as db:
                rows = db.find("strategies", name=text, strategy_type="dsl")
            if rows:
                return StrategyRef("dsl", text, rows[0]["dsl_config"])
        path = resolve_strategy_file(text)
        if path is None:
            return None
        analysis = load_file(path)
        return StrategyRef("dsl", analysis.name, json.loads(document_json(analysis)))

    def names(self, db_path: Path | None) -> list[str]:
        from vibe_quant.dsl.loader import shipped_names

        names = shipped_names()
        if db_path is not None and db_path.exists():
            from vibe_quant.state import StateManager

            with StateManager(db_path) as db:
                names += [r["name"] for r in db.find("strategies", strategy_type="dsl")]
        return sorted(set(names))

    def bind(self, spec: StrategySpec) -> BoundDsl:
        """Apply the parameters to the document and check it; the run's timeframe must be its own.

        Raises
        ------
        ConfigError
            No document, an invalid document or parameters, or another timeframe.
        """
        from vibe_quant.dsl.strategy import bind

        if spec.document is None:
            raise ConfigError(f"DSL strategy {spec.name!r} has no document: give its FILE.yaml or a saved name")
        analysis, document = bind(spec.document, spec.params, spec.timeframe)
        return BoundDsl(spec, analysis, document)

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        from vibe_quant.dsl.strategy import compile_document
        from vibe_quant.dsl.sweep import apply_params, expand

        if spec.document is None:
            raise ConfigError(f"DSL strategy {spec.name!r} has no document: give its FILE.yaml or a saved name")
        analysis = apply_params(compile_document(_canonical(spec.document)), spec.params)
        return expand(analysis, overrides, constraints)

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        """The document's ``parameters_schema`` (type, bounds, default, description) and its ``sweep:`` keys."""
        document = ref.document or {}
        schema = document.get("parameters_schema") or {}
        sweep = document.get("sweep") or {}
        out = {}
        for key in [*schema, *(k for k in sweep if k not in schema)]:
            entry = schema.get(key, {})
            values = sweep.get(key)
            kind = entry.get("type") or ("float" if any(isinstance(v, float) for v in values or []) else "integer")
            out[key] = Parameter(type=kind, default=entry.get("default", values[0] if values else None),
                                 min=entry.get("min"), max=entry.get("max"), step=entry.get("step"),
                                 sweep=list(values) if values is not None else None,
                                 description=entry.get("description", ""))  # fmt: skip
        return out


DSL = DslKind()
