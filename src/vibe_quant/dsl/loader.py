"""Load a strategy file: YAML with positions -> :class:`StrategyDoc` -> checked :class:`Analysis`.

Every problem is reported with file, line and column (1-based), the offending value and the
fix; unknown names get a did-you-mean. All meaning checks run and are reported together; a
YAML syntax or shape error stops at the first.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from vibe_quant.dsl.analysis import Analysis, Issue, analyse
from vibe_quant.dsl.model import Indicator, ParameterSchema, StrategyDoc
from vibe_quant.errors import ConfigError, did_you_mean

Path_ = tuple  # a location in the document: keys and list indices


class DslError(ConfigError):
    """An invalid strategy file; ``issues`` holds each problem with its line and column."""

    def __init__(self, source: str, issues: list[Issue], positions: Positions | None = None):
        self.source = source
        located = [(positions or Positions()).locate(issue) for issue in issues]
        self.issues = located
        lines = [f"{source}:{i.line}:{i.col}: {i.message}" if i.line else f"{source}: {i.message}" for i in located]
        more = f"\n({len(located)} problems)" if len(located) > 1 else ""
        super().__init__("\n".join(lines) + more)

    @property
    def line(self) -> int | None:
        return self.issues[0].line if self.issues else None


@dataclass
class Positions:
    """Where each key and value of the YAML document starts (1-based line, column)."""

    values: dict[Path_, tuple[int, int, bool]] = field(default_factory=dict)  # (line, col, quoted)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, issue: Issue) -> Issue:
        if issue.line:
            return issue
        path = tuple(issue.path)
        if issue.at_key and path in self.keys:
            line, col = self.keys[path]
            return Issue(issue.message, path, line=line, col=col)
        while path:
            if path in self.values:
                line, col, quoted = self.values[path]
                return Issue(issue.message, tuple(issue.path), line=line, col=col + quoted + issue.offset)
            path = path[:-1]
        return Issue(issue.message, tuple(issue.path), line=1, col=1)


def _walk(node, path: Path_, pos: Positions, issues: list[Issue]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            sub = (*path, key)
            if key in seen:
                issues.append(Issue(f"duplicate key {key!r} (first on line {seen[key]}): YAML keeps only the last one; "
                                    "remove one", sub, line=key_node.start_mark.line + 1,
                                    col=key_node.start_mark.column + 1))  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
            pos.keys[sub] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, sub, pos, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), pos, issues)
    mark = node.start_mark
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
    pos.values[path] = (mark.line + 1, mark.column + 1, quoted)


def parse_yaml(text: str, source: str) -> tuple[Any, Positions]:
    """Return the YAML data and its positions.

    Raises
    ------
    DslError
        YAML syntax errors and duplicate keys.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise DslError(source, [Issue(f"YAML syntax error: {problem}", (), line=line, col=col)]) from None
    pos = Positions()
    issues: list[Issue] = []
    if node is not None:
        _walk(node, (), pos, issues)
    if issues:
        raise DslError(source, issues, pos)
    return data, pos


_MSGSPEC_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _msgspec_path(text: str) -> tuple[str, Path_]:
    m = _MSGSPEC_AT.search(text)
    if m is None:
        return text, ()
    path: list = []
    for part in re.findall(r"\.([A-Za-z_0-9]+)|\[(\d+)\]", m.group("path")):
        path.append(part[0] if part[0] else int(part[1]))
    return text[: m.start()], tuple(path)


def _struct_at(path: Path_):
    """The struct type reached by following `path` from the document root (None if not a struct)."""
    tp: Any = StrategyDoc
    for key in path:
        if isinstance(key, int):
            continue
        fields = getattr(tp, "__struct_fields__", ())
        if key not in fields:
            return None
        hints = typing.get_type_hints(tp)
        tp = hints[key]
        for _ in range(3):  # unwrap Optional / list / dict
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            origin = typing.get_origin(tp)
            if origin in (list, dict) and args:
                tp = args[-1]
            elif origin is not None and args and not hasattr(tp, "__struct_fields__"):
                tp = args[0]
    return tp if hasattr(tp, "__struct_fields__") else None


def _shape_issue(exc: msgspec.ValidationError, prefix: Path_) -> Issue:
    text, path = _msgspec_path(str(exc))
    path = (*prefix, *path)
    where = ".".join(str(p) for p in path) or "the document"
    m = re.match(r"Object contains unknown field `(?P<f>[^`]+)`", text)
    if m:
        name = m.group("f")
        struct = Indicator if prefix[:1] == ("indicators",) and len(path) == 2 else _struct_at(path)
        allowed = list(getattr(struct, "__struct_fields__", ()))
        hint = did_you_mean(name, allowed) if allowed else ""
        listing = f"; allowed keys: {', '.join(allowed)}" if allowed and struct is not Indicator else ""
        return Issue(f"unknown key {name!r} in {where}{listing}.{hint}".replace("..", "."), (*path, name), at_key=True)
    m = re.match(r"Object missing required field `(?P<f>[^`]+)`", text)
    if m:
        return Issue(f"{where}: missing required key {m.group('f')!r}", path)
    return Issue(f"{where}: {text[0].lower() + text[1:]}", path)


def to_doc(data: Any, source: str, pos: Positions | None = None) -> StrategyDoc:
    """Convert YAML data to a :class:`StrategyDoc` (shapes and types only).

    Raises
    ------
    DslError
        With the location of the first shape/type error.
    """
    pos = pos or Positions()
    if not isinstance(data, dict):
        raise DslError(source, [Issue("a strategy file is a YAML mapping with name, timeframe, indicators, "
                                      "entry_conditions, ...", ())], pos)  # fmt: skip
    # Sections keyed by user names are converted entry by entry, so errors name the entry.
    for section, struct in (("indicators", Indicator), ("parameters_schema", ParameterSchema)):
        entries = data.get(section)
        if isinstance(entries, dict):
            for name, value in entries.items():
                try:
                    msgspec.convert(value, struct, strict=True)
                except msgspec.ValidationError as exc:
                    raise DslError(source, [_shape_issue(exc, (section, name))], pos) from None
    sweep = data.get("sweep")
    if isinstance(sweep, dict):
        for key, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise DslError(source, [Issue(f"sweep.{key}: give a non-empty list of values, e.g. [7, 14, 21]",
                                              ("sweep", key))], pos)  # fmt: skip
            for i, v in enumerate(values):
                if not isinstance(v, int | float | str | bool):
                    raise DslError(source, [Issue(f"sweep.{key}[{i}]: a value is a number, text or true/false, "
                                                  f"got {v!r}", ("sweep", key, i))], pos)  # fmt: skip
    try:
        return msgspec.convert(data, StrategyDoc, strict=True)
    except msgspec.ValidationError as exc:
        raise DslError(source, [_shape_issue(exc, ())], pos) from None


def load_text(text: str, source: str = "<strategy>", catalog=None) -> Analysis:
    """Parse and check a strategy from YAML text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str, default "<strategy>"
        The name used in messages (the file path).
    catalog : Path, optional
        A catalog root: the timeframes the strategy uses must exist there.

    Raises
    ------
    DslError
        Every problem found, each with its line and column.
    """
    data, pos = parse_yaml(text, source)
    doc = to_doc(data, source, pos)
    analysis, issues = analyse(doc, catalog=catalog)
    if analysis is not None:
        issues = _sweep_value_issues(analysis)
    if issues:
        raise DslError(source, issues, pos)
    analysis.source = source
    analysis.text = text
    return analysis


def _sweep_value_issues(analysis: Analysis) -> list[Issue]:
    """Each ``sweep:`` value the document rejects (e.g. a negative period), found one value at a time."""
    from vibe_quant.dsl.sweep import apply_params, schema_range_problem

    issues = []
    for key, values in analysis.doc.sweep.items():
        for i, value in enumerate(values):
            problem = schema_range_problem(analysis, key, value)
            if problem:
                issues.append(Issue(f"sweep {key} value {problem}", ("sweep", key, i)))
                continue
            try:
                apply_params(analysis, {key: value})
            except ConfigError as exc:
                issues.append(Issue(f"sweep {key} value {value!r} is invalid: {exc}", ("sweep", key, i)))
    return issues


def load_file(path: str | Path, catalog=None) -> Analysis:
    """Parse and check a strategy file (see :func:`load_text`).

    Raises
    ------
    DslError
        Invalid file (a missing or unreadable file included).
    """
    p = Path(path)
    if not p.is_file():
        raise DslError(str(p), [Issue(f"no such strategy file; shipped strategies: {', '.join(shipped_names())}", ())])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DslError(str(p), [Issue(f"cannot read the file: {exc}", ())]) from None
    return load_text(text, str(p), catalog=catalog)


SHIPPED_DIR = Path(__file__).parent / "strategies"


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def resolve_strategy_file(name_or_path: str) -> Path | None:
    """A path to a ``.yaml`` file (``NAME.yaml`` not in the working directory: the shipped one), or the
    shipped strategy of that name; None if neither."""
    p = Path(name_or_path)
    if p.suffix.lower() in (".yaml", ".yml"):
        shipped = SHIPPED_DIR / p.name
        return shipped if not p.exists() and p.parent == Path() and shipped.is_file() else p
    shipped = SHIPPED_DIR / f"{name_or_path}.yaml"
    return shipped if shipped.is_file() else None
