"""Edit a strategy document through values rather than text: the form a ``parameters_schema`` describes,
indicator timeframes, time filters, and new strategies copied from a shipped template.

An edit changes the values in place in the YAML text (comments and layout kept) when every changed
value is an existing scalar or flow-style node; otherwise the document is written out again
(comments lost). Either way the result is checked by :func:`vibe_quant.dsl.loader.load_text`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from vibe_quant.dsl.analysis import Analysis, document_value, sweep_target
from vibe_quant.dsl.loader import SHIPPED_DIR, DslError, Issue, load_text, shipped_names
from vibe_quant.dsl.model import StrategyDoc
from vibe_quant.errors import ConfigError, did_you_mean

# Document paths the form edits besides the parameters_schema keys (``indicators.<name>.timeframe`` too).
TIME_FILTER_KEYS = (
    "time_filters.allowed_sessions",
    "time_filters.blocked_days",
    "time_filters.avoid_around_funding.enabled",
    "time_filters.avoid_around_funding.minutes_before",
    "time_filters.avoid_around_funding.minutes_after",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class FormField:
    """One input of a strategy's form, from its ``parameters_schema`` entry.

    ``value`` is what the document holds now (the schema's default when the document has none).
    """

    key: str
    type: str
    value: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    description: str = ""
    options: tuple | None = None


def form_fields(analysis: Analysis) -> list[FormField]:
    """The inputs of `analysis`'s ``parameters_schema``, in file order."""
    out = []
    for key, schema in analysis.doc.parameters_schema.items():
        value = current_value(analysis, key)
        out.append(FormField(key=key, type=schema.type, value=schema.default if value is None else value,
                             min=schema.min, max=schema.max, step=schema.step, description=schema.description,
                             options=tuple(schema.options) if schema.options else None))  # fmt: skip
    return out


def current_value(analysis: Analysis, key: str) -> Any:
    """The value the document holds for a form key (a parameter key or a document path; None if unset)."""
    target = sweep_target(analysis, key)
    if isinstance(target, tuple):
        return document_value(analysis, key)
    node: Any = msgspec.to_builtins(analysis.doc)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _path(analysis: Analysis, key: str) -> tuple:
    target = sweep_target(analysis, key)
    if isinstance(target, tuple):
        return target
    parts = tuple(key.split("."))
    if parts[0] == "indicators" and len(parts) == 3 and parts[1] in analysis.doc.indicators and parts[2] == "timeframe":
        return parts
    if key in TIME_FILTER_KEYS:
        return parts
    fields = StrategyDoc.__struct_fields__
    raise ConfigError(f"{analysis.name}: {key!r} is not a form field (a parameter key, indicators.NAME.timeframe or "
                      f"one of {', '.join(TIME_FILTER_KEYS)}).{did_you_mean(parts[0], fields)}")  # fmt: skip


def edit(analysis: Analysis, changes: Mapping[str, Any], catalog=None) -> Analysis:
    """Return the checked strategy with `changes` applied to its text.

    Parameters
    ----------
    analysis : Analysis
        A loaded strategy (its ``text`` is edited).
    changes : Mapping[str, Any]
        Parameter keys (``rsi.period``, ``rsi_oversold_threshold``, ``stop_loss.atr_multiplier``),
        ``indicators.NAME.timeframe`` (None removes it: the primary timeframe) or a key of
        :data:`TIME_FILTER_KEYS`, mapped to their new values.
    catalog : Path, optional
        Check the timeframes exist there (as :func:`load_text`).

    Raises
    ------
    ConfigError
        A key the form does not edit (with a did-you-mean).
    DslError
        The edited document is invalid (each problem located in the new text).
    """
    paths = {_path(analysis, key): value for key, value in changes.items()}
    text = analysis.text
    data = yaml.safe_load(text)
    wanted = copy.deepcopy(data)
    for path, value in paths.items():
        _set(wanted, path, value)
    if wanted == data:
        return analysis
    new_text = _in_place(text, paths)
    if new_text is None or yaml.safe_load(new_text) != wanted:
        new_text = dump(wanted)
    return load_text(new_text, analysis.source, catalog=catalog)


def _set(data: dict, path: tuple, value: Any) -> None:
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _node_at(root: yaml.Node | None, path: tuple) -> yaml.Node | None:
    node = root
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if k.value == part), None)
    return node


def _flow(value: Any) -> str:
    return yaml.safe_dump([value], default_flow_style=True, width=1_000_000, sort_keys=False).strip()[1:-1]


def _in_place(text: str, paths: Mapping[tuple, Any]) -> str | None:
    """`text` with each value replaced where it stands; None when one cannot be (missing key, block node, removal)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    spans = []
    for path, value in paths.items():
        node = _node_at(root, path)
        if value is None:
            return None
        if node is None:  # a new key: added at the end of a one-line mapping, `{ a: 1 }` -> `{ a: 1, key: value }`
            parent = _node_at(root, path[:-1])
            if not isinstance(parent, yaml.MappingNode) or not parent.flow_style or not parent.value:
                return None
            at = parent.end_mark.index - 1
            while text[at - 1] in " \t":
                at -= 1
            spans.append((at, at, f", {path[-1]}: {_flow(value)}"))
            continue
        if not isinstance(node, yaml.ScalarNode) and not getattr(node, "flow_style", False):
            return None
        spans.append((node.start_mark.index, node.end_mark.index, _flow(value)))
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def dump(data: dict) -> str:
    """A strategy document as YAML (keys in document order, collections of scalars on one line)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)


def from_template(template: str, name: str, catalog=None) -> Analysis:
    """A new strategy named `name`: the shipped strategy `template` with its ``name:`` changed.

    Raises
    ------
    DslError
        `template` is not a shipped strategy, or `name` is not a valid strategy name.
    """
    if template not in shipped_names():
        raise DslError(template, [Issue(f"no shipped strategy {template!r}; shipped: {', '.join(shipped_names())}."
                                        + did_you_mean(template, shipped_names()), ())])  # fmt: skip
    path = SHIPPED_DIR / f"{template}.yaml"
    base = load_text(path.read_text(encoding="utf-8"), str(path))
    renamed = _in_place(base.text, {("name",): name})
    return load_text(renamed if renamed is not None else dump({**yaml.safe_load(base.text), "name": name}),
                     f"{name}.yaml", catalog=catalog)  # fmt: skip
