"""The ``dolphin`` strategy kind: the NDAlphaEngine in screening, the overfitting filters and NautilusTrader
(docs/specs.md#dolphin-in-screening, docs/specs.md#dolphin-on-nautilustrader).

A DOLPHIN strategy's document is ``{"name", "mode", "scans": DIR, "engine": {EngineConfig fields},
"windows": [scan windows], "sweep": {field: [values]}}``; its parameters are
:class:`~vibe_quant.dolphin.engine_config.EngineConfig` fields (swept like a Python strategy's:
``--sweep fixed_tp_pct=0.008,0.0095``). ``mode``:

* ``array`` (a document without ``mode``): it runs on its own engine, the array backtest over the
  scan tables: the bound strategy gives the batch worker a :class:`DolphinRunner` (``runner``), so
  screening, walk-forward windows and the consistency check run it without loading market data;
  ``build`` refuses NautilusTrader.
* ``orders`` or ``replay``: it runs on NautilusTrader as one
  :class:`~vibe_quant.dolphin.strategy.DolphinStrategy` over the run's symbols (``runner`` is None),
  through ``vq backtest run`` and ``vq screen run``. ``orders`` needs no scans (it scans the bars it
  sees); ``replay`` replays the document's scan tables. The names ``dolphin`` and ``dolphin_champion``
  are the champion engine in ``orders`` mode.
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
MODES = ("array", "orders", "replay")
NAMES = ("dolphin", "dolphin_champion", "dolphin_live")  # dolphin_live: under the services (store: env)
STRATEGY = "vibe_quant.dolphin.strategy"


def champion_document(name: str) -> dict:
    """The champion engine in ``orders`` mode: no scans, the scan windows of the scan tables."""
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.dolphin.engine_config import load_engine_config

    doc = {"name": name, "mode": "orders", "engine": msgspec.to_builtins(load_engine_config()),
           "windows": list(ScanConfig().windows), "sweep": {}}  # fmt: skip
    if name == "dolphin_live":  # the feature store's URL from $VQ_DOLPHIN_STORE, never saved with the run
        doc["store"] = "env"
    return doc


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
        """Rows before the first entry (warm-up) or the IRP window, whichever is longer (on NautilusTrader in
        ``orders`` mode, plus the bars the streaming scanner needs before its first row)."""
        rows = max(self.config.lookback, self.config.irp_window)
        return rows + (self.windows[-1] + 1 if self.mode == "orders" else 0)

    @property
    def mode(self) -> str:
        return (self.spec.document or {}).get("mode") or "array"

    @property
    def windows(self) -> tuple[int, ...]:
        from vibe_quant.dolphin.config import ScanConfig

        return tuple((self.spec.document or {}).get("windows") or ScanConfig().windows)

    @property
    def scans(self) -> Path:
        return Path(self.spec.document["scans"])

    def code(self) -> list[bytes]:
        import importlib

        modules = _MODULES if self.mode == "array" else (*_MODULES, "config", "scans", "eigen", "strategy")
        return [inspect.getsource(importlib.import_module(f"vibe_quant.dolphin.{m}")).encode() for m in modules]

    def strategy_config(self, legs: Sequence[LegSpec]) -> dict:
        """The :class:`~vibe_quant.dolphin.strategy.DolphinStrategyConfig` of a run over `legs`, as plain data.

        Raises
        ------
        ConfigError
            Mode ``array`` (it runs on its own engine, not on NautilusTrader).
        """
        if self.mode == "array":
            raise ConfigError(
                f"strategy {self.spec.name!r} is a DOLPHIN engine in mode 'array': it runs on its array backtest "
                "(vq dolphin backtest, vq dolphin screen, and the overfitting filters of such a screening run); "
                "on NautilusTrader run it with mode 'orders' (e.g. --strategy dolphin_champion) or 'replay'"
            )
        doc = self.spec.document
        return {"instrument_ids": [leg.instrument_id for leg in legs], "bar_types": [leg.bar_type for leg in legs],
                "order_id_tag": "001", "mode": self.mode, "engine": msgspec.to_builtins(self.config),
                "windows": list(self.windows), "scans": doc.get("scans"), "store": doc.get("store")}  # fmt: skip

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        from vibe_quant.dolphin.strategy import DolphinStrategy, DolphinStrategyConfig

        config = msgspec.convert(self.strategy_config(legs), DolphinStrategyConfig)
        return [DolphinStrategy(config, ports)]

    def importable(self, legs: Sequence[LegSpec]) -> list:
        from nautilus_trader.config import ImportableStrategyConfig

        return [ImportableStrategyConfig(strategy_path=f"{STRATEGY}:DolphinStrategy",
                                         config_path=f"{STRATEGY}:DolphinStrategyConfig",
                                         config=self.strategy_config(legs))]  # fmt: skip

    @property
    def runner(self):
        """``runner(home) -> DolphinRunner`` in mode ``array`` (the batch worker runs its points on the array
        engine); None in the NautilusTrader modes."""
        return self._runner if self.mode == "array" else None

    def _runner(self, home: Path) -> DolphinRunner:
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
        """``dolphin``/``dolphin_champion``: the champion on NautilusTrader (mode ``orders``); ``dolphin_live``:
        the same under the services (posture, ACB and MC from the feature store named by
        ``$VQ_DOLPHIN_STORE``). The array mode is reached through `vq dolphin screen`, which names the scans."""
        return StrategyRef("dolphin", text, champion_document(text)) if text in NAMES else None

    def names(self, db_path: Path | None) -> list[str]:
        return list(NAMES)

    def bind(self, spec: StrategySpec) -> BoundDolphin:
        """Check the document (scans, engine fields) and the parameters (EngineConfig fields and values).

        Raises
        ------
        ConfigError
            No document or scans, an unknown field (with a did-you-mean), a bad value.
        """
        doc = spec.document or {}
        mode = doc.get("mode") or "array"
        if mode not in MODES:
            raise ConfigError(f"DOLPHIN strategy {spec.name!r}: mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode != "orders" and not doc.get("scans"):
            raise ConfigError(f"DOLPHIN strategy {spec.name!r}: its document names no scan directory (mode {mode!r})")
        if mode != "array":
            from vibe_quant.dolphin.config import ScanConfig

            ScanConfig(windows=tuple(doc.get("windows") or ScanConfig().windows))  # raises on bad windows
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
