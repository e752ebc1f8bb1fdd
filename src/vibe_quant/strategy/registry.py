"""Kinds of strategy and how a run finds, checks and builds its strategy.

A *kind* (Python class, DSL document, and later an RL policy, a DOLPHIN engine or a generated
genome) is one entry in :data:`KINDS`: ``name -> "module:attribute"`` of an object implementing
:class:`StrategyKind`, imported when first used (so this module depends on no kind). The runner
only talks to :class:`BoundStrategy`: it never asks which kind it runs.

What to trade is a :class:`StrategySpec` (kind, name, document, parameters, symbols, timeframe);
``bind(spec)`` checks it once and returns the bound strategy that builds the NautilusTrader
strategies for a run (backtest: with its ports; paper/live: as ``ImportableStrategyConfig``),
names the code that determines its behaviour (part of the run id), and says whether a backtest may
read its decisions from a precomputed signal table (screening's fast replay).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.strategy.grid import Expansion

# kind -> object implementing StrategyKind (imported lazily). Resolution order of names: this order.
KINDS: dict[str, str] = {
    "python": "vibe_quant.strategy.python:PYTHON",
    "dsl": "vibe_quant.dsl.kind:DSL",
    "lpi": "vibe_quant.lpi.kind:LPI",
    "rl": "vibe_quant.rl.kind:RL",
    "dolphin": "vibe_quant.dolphin.kind:DOLPHIN",
}

ParamValue = int | float | str | bool


class StrategySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a run trades: a strategy of some kind with its parameters, on symbols at a timeframe."""

    kind: str
    name: str
    document: dict[str, Any] | None = None  # the kind's document (a DSL strategy's YAML as data)
    params: dict[str, ParamValue] = {}
    symbols: tuple[str, ...]
    timeframe: str


class StrategyRef(msgspec.Struct, frozen=True):
    """A strategy named on the command line, found: its kind, name and document."""

    kind: str
    name: str
    document: dict[str, Any] | None = None


@dataclass(frozen=True)
class LegSpec:
    """One instrument a run gives its strategies: NautilusTrader instrument id and bar type."""

    symbol: str
    instrument_id: str
    bar_type: str


class BoundStrategy(Protocol):
    """A checked strategy spec, ready to build the strategies of a run."""

    spec: StrategySpec
    precomputed: bool  # a backtest may read its decisions from a precomputed signal table
    has_stop_loss: bool | None  # None: not known (the strategy sizes and exits itself)
    lookback_bars: int | None  # longest indicator warm-up + history, in bars of the timeframe

    def code(self) -> list[bytes]:
        """Sources that determine its behaviour (hashed into the run id)."""

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        """The NautilusTrader strategies of a run, built with `ports`."""

    def importable(self, legs: Sequence[LegSpec]) -> list:
        """The same strategies as ``ImportableStrategyConfig`` (a paper/live node builds them)."""

    # A kind that runs on an engine of its own (DOLPHIN's array backtest) also has
    # ``runner(home: Path) -> PointRunner``: the batch worker and the consistency check then run its
    # points with it and never load market data (see :class:`PointRunner`).


class PointRunner(Protocol):
    """Runs a kind's points on its own engine (made once per worker by ``BoundStrategy.runner``)."""

    engine: str  # recorded as the engine that ran each point

    def run(self, plan, validation: bool = False) -> dict:
        """One point over ``plan.period``: ``metrics``, daily ``returns``, ``warnings``, ``engine``,
        ``bars``, ``bars_replayed``; `validation` runs it with full costs."""


class StrategyKind(Protocol):
    name: str

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        """The strategy `text` names if it is of this kind (None otherwise)."""

    def names(self, db_path: Path | None) -> list[str]:
        """Names this kind knows (for messages and listings)."""

    def bind(self, spec: StrategySpec) -> BoundStrategy:
        """Check `spec` (raise ConfigError) and bind it."""

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        """The parameter grid of `spec` with `overrides` replacing or adding axes."""

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        """The parameters a user sets or sweeps (forms are generated from them), by sweep key."""


class Parameter(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter of a strategy as a form shows it: its type, default, bounds and default sweep values."""

    type: str  # integer, float, boolean, string (or a kind's own, e.g. session_list)
    default: object = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    sweep: list | None = None  # the strategy's own sweep values for this key, if it has a sweep
    description: str = ""


def strategy_parameters(ref: StrategyRef) -> dict[str, Parameter]:
    """The parameters of `ref` (found with :func:`find_strategy`), asked of its kind."""
    return strategy_kind(ref.kind).parameters(ref)


def strategy_kind(name: str) -> StrategyKind:
    """The registered kind `name`.

    Raises
    ------
    ConfigError
        No such kind (with a did-you-mean).
    """
    path = KINDS.get(name)
    if path is None:
        raise ConfigError(f"unknown strategy kind {name!r}; kinds: {', '.join(KINDS)}.{did_you_mean(name, KINDS)}")
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def bind(spec: StrategySpec) -> BoundStrategy:
    """Check and bind `spec` with its kind (see :class:`StrategyKind`)."""
    return strategy_kind(spec.kind).bind(spec)


def find_strategy(text: str, db_path: Path | None = None) -> StrategyRef:
    """The strategy `text` names, by one rule for every command.

    Each kind is asked in :data:`KINDS` order: a registered Python strategy name; then a DSL
    strategy: a ``FILE.yaml`` (``NAME.yaml`` not in the working directory: the shipped one), a
    name saved in the state database (`db_path`; its latest version), a shipped name; then an LPI
    strategy name (``lpi_cascade``, ``lpi_reversion``).

    Raises
    ------
    ConfigError
        Nothing of that name (with what exists and a did-you-mean).
    """
    text = text.strip()
    kinds = [strategy_kind(k) for k in KINDS]
    for kind in kinds:
        found = kind.find(text, db_path)
        if found is not None:
            return found
    known = sorted({n for kind in kinds for n in kind.names(db_path)})
    raise ConfigError(
        f"unknown strategy {text!r}: give a strategy file (FILE.yaml) or one of {', '.join(known)}."
        + did_you_mean(text, known)
    )


def per_leg(make, legs: Sequence[LegSpec]) -> list:
    """One single-instrument strategy per leg: ``make(leg, order_id_tag)`` with tags 001, 002, ..."""
    return [make(leg, f"{i + 1:03d}") for i, leg in enumerate(legs)]
