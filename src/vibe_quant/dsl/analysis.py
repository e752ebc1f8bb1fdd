"""What a strategy document means: resolved indicators, timeframes, conditions, thresholds,
exits, sizing and time filters, and every semantic problem with its location.

Used by both the validator (``vq dsl validate``) and the compiler, so a document that
validates is exactly a document that compiles.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from vibe_quant.data.bars import TIMEFRAME_BY_LABEL, Timeframe
from vibe_quant.dsl.conditions import (
    BUILTINS,
    MAX_BARS_AGO,
    PRICE_FIELDS,
    Condition,
    ConditionSyntaxError,
    Operand,
    parse_condition,
)
from vibe_quant.dsl.indicators import SOURCES, IndicatorDef, indicator_registry
from vibe_quant.dsl.model import StrategyDoc
from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.strategy.grid import parse_constraint

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Issue:
    """One problem: message and document path; line/col filled in from the YAML positions."""

    message: str
    path: tuple = ()
    offset: int = 0  # column inside a string value (conditions)
    at_key: bool = False
    line: int | None = None
    col: int | None = None


@dataclass(frozen=True)
class ResolvedIndicator:
    name: str
    definition: IndicatorDef
    params: dict[str, Any]  # every parameter with its default filled in (and "source" if it takes one)
    timeframe: Timeframe


@dataclass
class Analysis:
    """A checked strategy, ready to compile."""

    doc: StrategyDoc
    primary: Timeframe
    higher: list[Timeframe]
    indicators: dict[str, ResolvedIndicator]
    thresholds: dict[str, float]
    entry: dict[str, list[Condition]]  # "long"/"short"
    exit: dict[str, list[Condition]]
    history: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, output) -> bars of history needed
    sessions: list[tuple[int, int, str]] = field(default_factory=list)  # (start minute, end minute, timezone)
    blocked_days: frozenset[int] = frozenset()
    sweep_paths: dict[str, tuple] = field(default_factory=dict)  # sweep key -> path in the document
    source: str = "<strategy>"
    text: str = ""

    @property
    def name(self) -> str:
        return self.doc.name


def _tf(label: str) -> Timeframe | None:
    return TIMEFRAME_BY_LABEL.get(label)


def analyse(doc: StrategyDoc, catalog: Path | None = None) -> tuple[Analysis | None, list[Issue]]:
    """Check `doc`'s meaning; return ``(analysis, issues)`` (analysis is None when issues exist)."""
    issues: list[Issue] = []
    add = issues.append
    labels = ", ".join(TIMEFRAME_BY_LABEL)

    primary = _tf(doc.timeframe)
    if primary is None:
        add(Issue(f"timeframe {doc.timeframe!r} is not one we store; choose one of {labels}."
                  + did_you_mean(doc.timeframe, TIMEFRAME_BY_LABEL), ("timeframe",)))  # fmt: skip
    higher: list[Timeframe] = []
    for i, label in enumerate(doc.additional_timeframes):
        tf = _tf(label)
        if tf is None:
            add(Issue(f"additional timeframe {label!r}: choose from {labels}." + did_you_mean(label, TIMEFRAME_BY_LABEL),
                      ("additional_timeframes", i)))  # fmt: skip
        elif primary is not None and (tf.minutes <= primary.minutes or tf.minutes % primary.minutes):
            add(Issue(f"additional timeframe {label} must be a multiple of the primary timeframe {primary.label} "
                      "(higher-timeframe bars are built from closed primary bars)", ("additional_timeframes", i)))  # fmt: skip
        elif tf in higher:
            add(Issue(f"additional timeframe {label} is listed twice", ("additional_timeframes", i)))
        else:
            higher.append(tf)

    # -- indicators ---------------------------------------------------------------------------
    resolved: dict[str, ResolvedIndicator] = {}
    for name, ind in doc.indicators.items():
        path = ("indicators", name)
        if not _NAME.match(name) or name in BUILTINS:
            why = (
                "is a built-in value"
                if name in BUILTINS
                else "must be letters, digits and _ (not starting with a digit)"
            )
            add(Issue(f"indicator name {name!r} {why}; rename it", path, at_key=True))
            continue
        d = indicator_registry.get(ind.type)
        if d is None:
            add(Issue(f"unknown indicator type {ind.type!r} for {name!r}; known: {', '.join(indicator_registry.names())}."
                      + did_you_mean(str(ind.type).upper(), indicator_registry.all_names()), (*path, "type")))  # fmt: skip
            continue
        params: dict[str, Any] = {}
        for pname, spec in d.params.items():
            value = getattr(ind, pname)
            if value is None:
                value = spec.default
            if spec.kind is int and (isinstance(value, bool) or not float(value).is_integer()):
                add(Issue(f"{name}.{pname} must be a whole number, got {value!r}", (*path, pname)))
                continue
            if not spec.minimum <= value <= spec.maximum:
                add(Issue(f"{name}.{pname} = {value} is out of range: it must be between {spec.minimum:g} and "
                          f"{spec.maximum:g} ({spec.description})", (*path, pname)))  # fmt: skip
                continue
            params[pname] = int(value) if spec.kind is int else float(value)
        given = {
            f for f in ind.__struct_fields__ if f not in ("type", "timeframe", "source") and getattr(ind, f) is not None
        }
        for extra in sorted(given - set(d.params)):
            allowed = ", ".join(d.params) or "no parameters"
            add(Issue(f"{d.name} has no parameter {extra!r} (it takes {allowed}).{did_you_mean(extra, d.params)}",
                      (*path, extra), at_key=True))  # fmt: skip
        if ind.source is not None:
            if not d.uses_source:
                add(
                    Issue(
                        f"{d.name} reads the whole bar and takes no source; remove 'source'",
                        (*path, "source"),
                        at_key=True,
                    )
                )
            elif ind.source not in SOURCES:
                add(Issue(f"source {ind.source!r}: choose one of {', '.join(SOURCES)}.{did_you_mean(ind.source, SOURCES)}",
                          (*path, "source")))  # fmt: skip
        if d.uses_source:
            params["source"] = ind.source or "close"
        tf = primary
        if ind.timeframe is not None:
            tf = _tf(ind.timeframe)
            if tf is None:
                add(Issue(f"{name}.timeframe {ind.timeframe!r}: choose from {labels}."
                          + did_you_mean(ind.timeframe, TIMEFRAME_BY_LABEL), (*path, "timeframe")))  # fmt: skip
                continue
            if primary is not None and tf != primary and tf not in higher:
                if tf.minutes < primary.minutes:
                    add(Issue(f"{name} is on {tf.label}, below the primary timeframe {primary.label}: its value at a "
                              f"{primary.label} close would depend on bars the strategy never sees; use {primary.label} "
                              "or a higher timeframe", (*path, "timeframe")))  # fmt: skip
                else:
                    add(Issue(f"{name} uses timeframe {tf.label}, which is not declared: add it to "
                              f"additional_timeframes (now {doc.additional_timeframes or '[]'})", (*path, "timeframe")))  # fmt: skip
                continue
        if tf is not None:
            resolved[name] = ResolvedIndicator(name, d, params, tf)

    # -- thresholds (named numbers for conditions, declared in parameters_schema) --------------
    thresholds: dict[str, float] = {}
    for pname, ps in doc.parameters_schema.items():
        if "." in pname or pname in resolved or pname in BUILTINS:
            continue  # a form entry for a document field (checked with the sweep keys below)
        if not _NAME.match(pname):
            add(
                Issue(
                    f"parameter name {pname!r} must be letters, digits and _", ("parameters_schema", pname), at_key=True
                )
            )
            continue
        if (
            ps.type not in ("integer", "float")
            or isinstance(ps.default, bool)
            or not isinstance(ps.default, int | float)
        ):
            add(Issue(f"threshold {pname} needs type integer or float and a numeric default (e.g. default: 30)",
                      ("parameters_schema", pname)))  # fmt: skip
            continue
        if (ps.min is not None and ps.default < ps.min) or (ps.max is not None and ps.default > ps.max):
            add(
                Issue(
                    f"{pname}: default {ps.default} is outside [{ps.min}, {ps.max}]",
                    ("parameters_schema", pname, "default"),
                )
            )
        thresholds[pname] = float(ps.default)

    # -- conditions ---------------------------------------------------------------------------
    history: dict[tuple[str, str], int] = {}
    parsed: dict[str, dict[str, list[Condition]]] = {"entry_conditions": {}, "exit_conditions": {}}
    for section in ("entry_conditions", "exit_conditions"):
        block = getattr(doc, section)
        for side in ("long", "short"):
            out = parsed[section].setdefault(side, [])
            for i, text in enumerate(getattr(block, side)):
                path = (section, side, i)
                try:
                    cond = parse_condition(text)
                except ConditionSyntaxError as exc:
                    add(Issue(f"{exc} in condition {text!r}", path, offset=exc.offset))
                    continue
                ok = True
                for operand in cond.operands:
                    if operand.name in doc.indicators and operand.name not in resolved:
                        ok = False  # the indicator itself is invalid: reported once, above
                        continue
                    ok &= _check_operand(operand, cond, resolved, thresholds, history, path, add)
                if ok:
                    out.append(cond)
    if not doc.entry_conditions.long and not doc.entry_conditions.short:
        add(Issue("entry_conditions has no conditions: give at least one under long or short", ("entry_conditions",)))

    # -- exits and sizing ---------------------------------------------------------------------
    for section in ("stop_loss", "take_profit"):
        rule = getattr(doc, section)
        if rule is None:
            continue
        needs = {"fixed_pct": ("percent",), "atr_fixed": ("atr_multiplier", "indicator"),
                 "atr_trailing": ("atr_multiplier", "indicator"), "risk_reward": ("ratio",)}[rule.type]  # fmt: skip
        for key in needs:
            if getattr(rule, key) is None:
                add(Issue(f"{section} type {rule.type} needs {key!r}", (section,)))
        for key in ("percent", "atr_multiplier", "indicator", "ratio"):
            if key in rule.__struct_fields__ and key not in needs and getattr(rule, key) is not None:
                add(Issue(f"{section} type {rule.type} does not use {key!r}; remove it", (section, key), at_key=True))
        if rule.indicator is not None and "indicator" in needs:
            ref = resolved.get(rule.indicator)
            if ref is None and rule.indicator in doc.indicators:
                pass  # declared but invalid: reported once, above
            elif ref is None:
                add(Issue(f"{section}.indicator {rule.indicator!r} is not a declared indicator."
                          + did_you_mean(rule.indicator, resolved), (section, "indicator")))  # fmt: skip
            elif ref.definition.name != "ATR":
                add(Issue(f"{section}.indicator {rule.indicator!r} is a {ref.definition.name}; "
                          f"{rule.type} needs an ATR indicator", (section, "indicator")))  # fmt: skip
        if rule.percent is not None and rule.percent >= 100:
            add(Issue(f"{section}.percent {rule.percent} must be below 100", (section, "percent")))
    if doc.take_profit is not None and doc.take_profit.type == "risk_reward" and doc.stop_loss is None:
        add(Issue("take_profit type risk_reward is a multiple of the stop distance: add a stop_loss", ("take_profit",)))
    pm = doc.position_management
    if pm.sizing.method == "fixed_fractional" and doc.stop_loss is None:
        add(Issue("sizing method fixed_fractional risks a fraction of equity down to the stop: add a stop_loss",
                  ("position_management", "sizing", "method")))  # fmt: skip
    for key in ("scale_in", "partial_exit"):
        if getattr(pm, key).enabled:
            add(Issue(f"position_management.{key} is not supported yet (full entries and exits only); "
                      "set enabled: false", ("position_management", key, "enabled")))  # fmt: skip

    # -- time filters -------------------------------------------------------------------------
    sessions: list[tuple[int, int, str]] = []
    for i, s in enumerate(doc.time_filters.allowed_sessions):
        path = ("time_filters", "allowed_sessions", i)
        minutes = []
        for key in ("start", "end"):
            m = _HHMM.match(getattr(s, key))
            if m is None:
                add(Issue(f"session {key} {getattr(s, key)!r} is not a time: write HH:MM in 24-hour form, "
                          "e.g. '08:00'", (*path, key)))  # fmt: skip
            else:
                minutes.append(int(m.group(1)) * 60 + int(m.group(2)))
        try:
            zoneinfo.ZoneInfo(s.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            add(Issue(f"unknown timezone {s.timezone!r}; use an IANA name such as UTC or Europe/London."
                      + did_you_mean(s.timezone, zoneinfo.available_timezones()), (*path, "timezone")))  # fmt: skip
            continue
        if len(minutes) == 2:
            if minutes[0] == minutes[1]:
                add(Issue(f"session {s.start}-{s.end} is empty; for all day write start '00:00', end '23:59'", path))
            sessions.append((minutes[0], minutes[1], s.timezone))
    blocked: set[int] = set()
    for i, day in enumerate(doc.time_filters.blocked_days):
        key = str(day).lower()
        match = [d for d in DAYS if d == key or d[:3] == key]
        if not match:
            add(Issue(f"blocked day {day!r} is not a weekday name.{did_you_mean(key, DAYS)}",
                      ("time_filters", "blocked_days", i)))  # fmt: skip
        else:
            blocked.add(DAYS.index(match[0]))

    analysis = Analysis(doc, primary, higher, resolved, thresholds,
                        {s: parsed["entry_conditions"].get(s, []) for s in ("long", "short")},
                        {s: parsed["exit_conditions"].get(s, []) for s in ("long", "short")},
                        history, sessions, frozenset(blocked))  # fmt: skip

    # -- sweep keys and form entries ----------------------------------------------------------
    for section in ("sweep", "parameters_schema"):
        for key in getattr(doc, section):
            if section == "parameters_schema" and key in thresholds:
                continue
            if section == "parameters_schema" and "." not in key and key not in resolved:
                continue  # reported above as a threshold problem
            if section == "parameters_schema" and doc.parameters_schema[key].type == "session_list":
                if key != "time_filters.allowed_sessions":
                    add(Issue(f"parameters_schema key {key!r}: type session_list describes time_filters.allowed_sessions",
                              (section, key), at_key=True))  # fmt: skip
                continue
            head = key.partition(".")[0]
            if head in doc.indicators and head not in resolved:
                continue  # the indicator itself is invalid: reported once, above
            target = sweep_target(analysis, key)
            if isinstance(target, str):
                add(Issue(f"{section} key {key!r}: {target}", (section, key), at_key=True))
            elif section == "sweep":
                analysis.sweep_paths[key] = target
    if not issues:
        issues.extend(constraint_issues(analysis))
    if catalog is not None and primary is not None:
        issues.extend(_catalog_issues(catalog, [primary, *higher]))
    return (None if issues else analysis), issues


def _check_operand(op: Operand, cond: Condition, resolved, thresholds, history, path, add) -> bool:
    where = f"in condition {cond.text!r}"
    if op.is_number:
        return True
    if op.ago < 0:
        add(Issue(f"{op.text} reads {-op.ago} bar(s) into the future (look-ahead); a backtest must only use closed "
                  f"bars: use {op.name}{'.' + op.output if op.output else ''}[{-op.ago}] for the past", path, offset=op.offset))  # fmt: skip
        return False
    if op.ago > MAX_BARS_AGO:
        add(Issue(f"{op.text}: at most {MAX_BARS_AGO} bars ago {where}", path, offset=op.offset))
        return False
    if op.name in BUILTINS or op.name in thresholds:
        if op.output:
            add(Issue(f"{op.name} has no outputs; write {op.name} {where}", path, offset=op.offset))
            return False
        if op.name in thresholds and op.ago:
            add(Issue(f"{op.name} is a fixed threshold; [n] only applies to series {where}", path, offset=op.offset))
            return False
        if op.name in PRICE_FIELDS or op.name == "funding_rate":
            _need(history, op, cond)
        return True
    ind = resolved.get(op.name)
    if ind is None:
        known = [*resolved, *thresholds, *BUILTINS]
        add(Issue(f"{op.name!r} is not a declared indicator, price field or threshold {where}."
                  + did_you_mean(op.name, known)
                  + " (declare a threshold under parameters_schema with a default)", path, offset=op.offset))  # fmt: skip
        return False
    d = ind.definition
    output = op.output or d.outputs[0]
    if output in d.lookahead:
        add(Issue(f"{op.name}.{output} is refused as look-ahead: {d.lookahead[output]}", path, offset=op.offset))
        return False
    if output not in d.outputs:
        add(Issue(f"{d.name} {op.name!r} has no output {output!r}; outputs: "
                  f"{', '.join(o for o in d.outputs if o not in d.lookahead)}.{did_you_mean(output, d.outputs)}",
                  path, offset=op.offset))  # fmt: skip
        return False
    _need(history, Operand(op.text, op.offset, name=op.name, output=output, ago=op.ago), cond)
    return True


def _need(history: dict, op: Operand, cond: Condition) -> None:
    """Record how many past values of a series the conditions read."""
    depth = op.ago + (1 if cond.op in ("crosses_above", "crosses_below") else 0)
    key = (op.name, op.output)
    history[key] = max(history.get(key, 0), depth)


def sweep_target(analysis: Analysis, key: str) -> tuple | str:
    """Return the document path a sweep/parameter key sets, or why it sets nothing."""
    doc = analysis.doc
    if key in analysis.thresholds:
        return ("parameters_schema", key, "default")
    head, _, rest = key.partition(".")
    if not rest:
        known = [
            *analysis.thresholds,
            *(f"{n}.{p}" for n, r in analysis.indicators.items() for p in r.definition.params),
        ]
        return (f"not an indicator parameter (name.param), a stop_loss/take_profit field or a threshold declared in "
                f"parameters_schema.{did_you_mean(key, known)}")  # fmt: skip
    if head in doc.indicators:
        ind = analysis.indicators.get(head)
        if ind is None:
            return f"indicator {head!r} is invalid"
        if rest not in ind.definition.params:
            return (f"{ind.definition.name} has no parameter {rest!r} (it takes {', '.join(ind.definition.params) or 'none'})."
                    + did_you_mean(rest, ind.definition.params))  # fmt: skip
        return ("indicators", head, rest)
    numeric = {
        "stop_loss": ("percent", "atr_multiplier"), "take_profit": ("percent", "atr_multiplier", "ratio"),
        "position_management.sizing": ("fraction", "risk_per_trade", "max_leverage", "max_margin_fraction"),
        "time_filters.avoid_around_funding": ("minutes_before", "minutes_after"),
    }  # fmt: skip
    section, _, leaf = key.rpartition(".")
    if section in numeric:
        if section in ("stop_loss", "take_profit") and getattr(doc, section) is None:
            return f"the strategy has no {section}"
        if leaf not in numeric[section]:
            return f"{section} has no numeric field {leaf!r}; sweepable: {', '.join(numeric[section])}." + did_you_mean(
                leaf, numeric[section]
            )
        return (*section.split("."), leaf)
    known = [*doc.indicators, *numeric]
    return f"{head!r} is not a declared indicator or a sweepable section.{did_you_mean(head, known)}"


def _catalog_issues(catalog: Path, timeframes: list[Timeframe]) -> list[Issue]:
    bar_dir = Path(catalog) / "data" / "bar"
    stored = [p.name for p in bar_dir.iterdir()] if bar_dir.is_dir() else []
    issues = []
    for tf in timeframes:
        suffix = f"-{tf.nautilus_spec}-LAST-EXTERNAL"
        if not any(name.endswith(suffix) for name in stored):
            where = ("timeframe",) if tf.label else ()
            issues.append(Issue(f"no {tf.label} bars in the catalog {catalog}: ingest data first "
                                "(vq data ingest --symbols ...)", where))  # fmt: skip
    return issues


# -- constraints between parameters --------------------------------------------------------------


def document_value(analysis: Analysis, side: str):
    """The value a sweep key has in the document (an indicator's parameter with its default filled in)."""
    head, _, rest = side.partition(".")
    if head in analysis.indicators:  # every parameter, registry defaults filled in
        return analysis.indicators[head].params.get(rest)
    node = msgspec.to_builtins(analysis.doc)
    for part in sweep_target(analysis, side):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def constraint_issues(analysis: Analysis, texts: list[str] | None = None) -> list:
    """Problems with the document's ``sweep_constraints`` (or `texts`): syntax and unknown keys."""
    out = []
    in_doc = texts is None
    for i, text in enumerate(analysis.doc.sweep_constraints if in_doc else texts):
        where = ("sweep_constraints", i) if in_doc else ()
        try:
            constraint = parse_constraint(text)
        except ConfigError as exc:
            out.append(Issue(str(exc), where))
            continue
        for side in (constraint.left, constraint.right):
            if isinstance(side, str):
                target = sweep_target(analysis, side)
                if isinstance(target, str):
                    out.append(Issue(f"constraint {text!r}: {side}: {target}", where))
                elif document_value(analysis, side) is None:
                    out.append(Issue(f"constraint {text!r}: {side!r} has no value in the strategy", where))
    return out
