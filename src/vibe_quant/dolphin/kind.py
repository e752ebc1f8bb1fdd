"""The ``dolphin`` strategy kind: the NDAlphaEngine in screening and the overfitting filters (docs/specs.md#dolphin-in-screening).

A DOLPHIN strategy's document is ``{"name", "scans": DIR, "engine": {EngineConfig fields},
"sweep": {field: [values]}}``; its parameters are :class:`~vibe_quant.dolphin.engine_config.EngineConfig`
fields (swept like a Python strategy's: ``--sweep fixed_tp_pct=0.008,0.0095``). It runs on its own
engine, the array backtest over the scan tables: the bound strategy gives the batch worker a
:class:`DolphinRunner` (``runner``), so screening, walk-forward windows and the consistency check run
it without loading market data. On NautilusTrader (``build``) it is refused: the engine's orders do
not go through the perp core until the DolphinStrategy exists.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.dolphin.engine_config import EngineConfig, engine_config
from vibe_quant.errors import ConfigError, UserError, did_you_mean
from vibe_quant.strategy.grid import Expansion, checked_rules, grid_points
from vibe_quant.strategy.registry import LegSpec, Parameter, StrategyRef, StrategySpec

_MODULES = ("engine_config", "rules", "providers", "engine", "array_engine", "backtest", "kind")
_FIELDS = tuple(EngineConfig.__struct_fields__)
ENGINE = "dolphin-array"


def document(name: str, scans: Path, engine: Mapping | None = None, sweep: Mapping | None = None) -> dict:
    """A DOLPHIN strategy document (what a screening run stores)."""
    return {"name": name, "scans": str(Path(scans).resolve()), "engine": dict(engine or {}),
            "sweep": {k: list(v) for k, v in (sweep or {}).items()}}  # fmt: skip


@dataclass(frozen=True)
class BoundDolphin:
    spec: StrategySpec
    config: EngineConfig
    precomputed: bool = False
    has_stop_loss: bool | None = None  # the engine sizes and exits itself

    @property
    def lookback_bars(self) -> int:
        """Rows before the first entry (warm-up) or the IRP window, whichever is longer."""
        return max(self.config.lookback, self.config.irp_window)

    @property
    def scans(self) -> Path:
        return Path(self.spec.document["scans"])

    def code(self) -> list[bytes]:
        import importlib

        return [inspect.getsource(importlib.import_module(f"vibe_quant.dolphin.{m}")).encode() for m in _MODULES]

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        raise ConfigError(
            f"strategy {self.spec.name!r} is a DOLPHIN engine: it runs on its array backtest (vq dolphin backtest, "
            "vq dolphin screen, and the overfitting filters of such a screening run), not as NautilusTrader orders yet"
        )

    def importable(self, legs: Sequence[LegSpec]) -> list:
        return self.build(legs, None)

    def runner(self, home: Path) -> DolphinRunner:
        return DolphinRunner(self.scans)


class DolphinRunner:
    """Runs DOLPHIN points of one screening run: the scan tables and the ACB schedule are read once."""

    engine = ENGINE

    def __init__(self, scans: Path):
        from vibe_quant.dolphin.backtest import load_acb_schedule, load_scan_data

        self.data = load_scan_data(scans)
        self.acb, self.note = load_acb_schedule(scans)

    def run(self, plan, validation: bool = False) -> dict:
        """One point over `plan`'s period: metrics, daily returns, warnings. `validation` runs it under the
        ``honest`` cost profile (the consistency check's full costs)."""
        from vibe_quant.dolphin.array_engine import run_array
        from vibe_quant.dolphin.backtest import score
        from vibe_quant.stats.performance import NS_PER_DAY, daily_returns

        cfg = plan.strategy.config
        if validation:
            cfg = msgspec.structs.replace(cfg, profile="honest")
        data = self.data.window(plan.period.start, plan.period.end)
        result = run_array(data, cfg, acb=self.acb if cfg.use_acb else None)
        start_ns = int(dt.datetime.combine(plan.period.start, dt.time(), dt.UTC).timestamp()) * 1_000_000_000
        metrics, _costs = score(result, start_ns, start_ns + len(data.days) * NS_PER_DAY)
        return {"metrics": metrics, "returns": daily_returns(result.ts, result.equity, cfg.initial_capital, start_ns),
                "warnings": [self.note] if self.note and cfg.use_acb else [], "engine": ENGINE,
                "bars": len(data.ts), "bars_replayed": len(data.ts)}  # fmt: skip


class DolphinKind:
    name = "dolphin"

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        return None  # reached through `vq dolphin screen`, which names the scans

    def names(self, db_path: Path | None) -> list[str]:
        return []

    def bind(self, spec: StrategySpec) -> BoundDolphin:
        """Check the document (scans, engine fields) and the parameters (EngineConfig fields and values).

        Raises
        ------
        ConfigError
            No document or scans, an unknown field (with a did-you-mean), a bad value.
        """
        doc = spec.document or {}
        if not doc.get("scans"):
            raise ConfigError(f"DOLPHIN strategy {spec.name!r}: its document names no scan directory")
        unknown = sorted(set(spec.params) - set(_FIELDS))
        if unknown:
            raise ConfigError(
                f"strategy {spec.name!r} has no parameter {unknown[0]!r}." + did_you_mean(unknown[0], _FIELDS)
            )
        config = engine_config(doc.get("engine") or {}, f"strategy {spec.name!r}", **spec.params)
        return BoundDolphin(spec, config)

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        """The document's ``sweep`` with `overrides` replacing or adding axes; a point the config rejects is skipped."""
        axes = {**(spec.document or {}).get("sweep", {}), **overrides}
        rules = checked_rules(spec.name, axes, constraints, _FIELDS)
        base = self.bind(msgspec.structs.replace(spec, params={})).config

        def check(point: dict) -> None:
            self.bind(msgspec.structs.replace(spec, params={**spec.params, **point}))

        return grid_points({k: list(v) for k, v in axes.items()}, rules,
                           lambda key: spec.params.get(key, getattr(base, key)), check)  # fmt: skip

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        """Every engine field: type and default (the document's value, else the champion's)."""
        engine = (ref.document or {}).get("engine") or {}
        sweep = (ref.document or {}).get("sweep") or {}
        out = {}
        for name in _FIELDS:
            default = engine.get(name, getattr(EngineConfig(), name))
            kind = {bool: "boolean", int: "integer", float: "float", str: "string"}.get(type(default), "string")
            out[name] = Parameter(type=kind, default=default, sweep=sweep.get(name))
        return out


DOLPHIN = DolphinKind()


def screening_base(scans: Path, config_path: Path | None, start: dt.date | None, end: dt.date | None,
                   profile: str | None = None, sweep: Mapping | None = None) -> dict:  # fmt: skip
    """The base backtest config (plain data) of a DOLPHIN screening run over `scans`.

    Raises
    ------
    UserError
        No scan tables there, or dates outside them.
    ConfigError
        A bad engine config.
    """
    from vibe_quant.dolphin.engine_config import CHAMPION_YAML, load_engine_config
    from vibe_quant.dolphin.store import day_files, read_manifest

    manifest = read_manifest(scans)
    files = day_files(scans)
    if manifest is None or not files:
        raise UserError(f"{scans}: no scan tables; build them with `vq dolphin scans build`")
    first, last = min(files), max(files)
    start, end = start or first, end or last
    if start < first or end > last or end < start:
        raise UserError(f"{scans} holds {first}..{last}; --start/--end {start}..{end} must lie inside it, in order")
    cfg = load_engine_config(config_path, profile=profile)
    name = (config_path or CHAMPION_YAML).stem
    return {"strategy": name, "kind": "dolphin", "symbols": manifest["universe"],
            "timeframe": manifest["definitions"]["timeframe"], "start": start.isoformat(), "end": end.isoformat(),
            "mode": "screening", "starting_balance": cfg.initial_capital,
            "document": document(name, scans, msgspec.to_builtins(cfg), sweep)}  # fmt: skip
