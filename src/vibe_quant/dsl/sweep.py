"""Parameter overrides and sweep grids of a strategy.

A parameter key is what ``sweep:`` uses: ``rsi.period`` (an indicator parameter),
``stop_loss.atr_multiplier``, ``take_profit.percent``, ``position_management.sizing.fraction``,
or a threshold declared in ``parameters_schema`` (``rsi_oversold_threshold``).
:func:`apply_params` returns a new, re-checked document; :func:`grid` expands ``sweep:`` into
the cartesian product of its lists (keys in file order, last key varying fastest).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Mapping

import msgspec

from vibe_quant.dsl.analysis import Analysis, analyse, constraint_issues, document_value, sweep_target
from vibe_quant.dsl.model import StrategyDoc
from vibe_quant.errors import ConfigError
from vibe_quant.strategy.grid import Expansion, grid_points, parse_constraint


def apply_params(analysis: Analysis, params: Mapping[str, object]) -> Analysis:
    """Return the analysis of the document with `params` set.

    Raises
    ------
    ConfigError
        An unknown key (with the reason and a did-you-mean) or a value the document rejects
        (e.g. a negative period), naming the key and value.
    """
    if not params:
        return analysis
    data = msgspec.to_builtins(analysis.doc)
    for key, value in params.items():
        target = sweep_target(analysis, key)
        if isinstance(target, str):
            raise ConfigError(f"{analysis.name}: parameter {key!r}: {target}")
        node = data
        for part in target[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node
        node[target[-1]] = value
    try:
        doc = msgspec.convert(data, StrategyDoc, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{analysis.name}: parameters {dict(params)}: {exc}") from None
    new, issues = analyse(doc)
    if issues:
        raise ConfigError(f"{analysis.name}: parameters {dict(params)}: " + "; ".join(i.message for i in issues))
    new.source, new.text = analysis.source, analysis.text
    return new


def grid_size(analysis: Analysis) -> int:
    return math.prod(len(v) for v in analysis.doc.sweep.values()) if analysis.doc.sweep else 1


def grid(analysis: Analysis) -> Iterator[dict[str, object]]:
    """Yield each parameter combination of the ``sweep:`` section (one empty dict if none)."""
    keys = list(analysis.doc.sweep)
    for values in itertools.product(*(analysis.doc.sweep[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def check_grid(analysis: Analysis) -> list[tuple[dict, str]]:
    """Return ``(params, problem)`` for each grid point the document rejects (empty when all compile)."""
    bad = []
    for params in grid(analysis):
        try:
            apply_params(analysis, params)
        except ConfigError as exc:
            bad.append((params, str(exc)))
    return bad


def schema_range_problem(analysis: Analysis, key: str, value: object) -> str | None:
    """Why `value` is outside the ``parameters_schema`` min/max declared for `key` (None if inside or undeclared)."""
    schema = analysis.doc.parameters_schema.get(key)
    if schema is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if (schema.min is not None and value < schema.min) or (schema.max is not None and value > schema.max):
        low = "-inf" if schema.min is None else f"{schema.min:g}"
        high = "inf" if schema.max is None else f"{schema.max:g}"
        return f"{value!r} is outside the range parameters_schema declares for {key}: [{low}, {high}]"
    return None


def expand(
    analysis: Analysis,
    overrides: Mapping[str, list] | None = None,
    constraints: list[str] | None = None,
) -> Expansion:
    """Expand the grid: the document's ``sweep:`` with `overrides` replacing or adding axes.

    A point that breaks a constraint (the document's ``sweep_constraints`` plus `constraints`)
    or that the document rejects (e.g. a Bollinger period of 1) is skipped and counted.

    Raises
    ------
    ConfigError
        An override key the strategy does not have, an empty value list, or a malformed constraint.
    """
    axes = {k: list(v) for k, v in analysis.doc.sweep.items()}
    for key, values in (overrides or {}).items():
        target = sweep_target(analysis, key)
        if isinstance(target, str):
            raise ConfigError(f"{analysis.name}: sweep key {key!r}: {target}")
        if not values:
            raise ConfigError(f"{analysis.name}: sweep key {key!r}: give at least one value")
        for value in values:
            problem = schema_range_problem(analysis, key, value)
            if problem:
                raise ConfigError(f"{analysis.name}: sweep key {key!r}: {problem}")
        axes[key] = list(values)
    extra = list(constraints or [])
    problems = constraint_issues(analysis, extra)
    if problems:
        raise ConfigError(f"{analysis.name}: " + "; ".join(p.message for p in problems))
    rules = [parse_constraint(t) for t in [*analysis.doc.sweep_constraints, *extra]]
    return grid_points(
        axes, rules, functools.partial(document_value, analysis), functools.partial(apply_params, analysis)
    )
