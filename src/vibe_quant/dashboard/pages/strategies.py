"""Strategies: the stored strategies and their versions; edit a DSL strategy through the form its
``parameters_schema`` describes or as YAML checked on every change; create one from a shipped template;
compare any two versions."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers
from vibe_quant.errors import ConfigError

SELECT_KEY = "strategies_selected"
NEXT_KEY = "_strategies_select_next"


def save(state, analysis) -> tuple[int, int, bool]:
    """Store a checked strategy as ``vq dsl save`` does; return ``(strategy_id, version, is_new_version)``."""
    from vibe_quant.backtest.persist import save_strategy_version
    from vibe_quant.dsl.strategy import document_json

    return save_strategy_version(state, "dsl", json.loads(document_json(analysis)), analysis.text)


def render() -> None:
    common.page_header("Strategies", "Stored strategies and their versions; a saved change becomes a new version.")
    h, state = common.home(), common.state()
    rows = readers.strategy_rows(state)
    if rows:
        table = pd.DataFrame(rows)[["name", "kind", "version", "versions", "updated", "description"]]
        st.dataframe(table, hide_index=True, width="stretch")
    _new_from_template(state, h, {r["name"] for r in rows})
    dsl = [r for r in rows if r["kind"] == "dsl"]
    if not dsl:
        st.info("No DSL strategy stored yet: create one from a template above, or run `vq dsl save FILE`.")
        return
    names = [r["name"] for r in dsl]
    if st.session_state.get(NEXT_KEY) in names:
        st.session_state[SELECT_KEY] = st.session_state.pop(NEXT_KEY)
    name = st.selectbox("Strategy", names, key=SELECT_KEY)
    row = next(r for r in dsl if r["name"] == name)
    versions = readers.strategy_versions(state, row["id"])
    current = next((v for v in versions if v["version"] == row["version"]), versions[-1])
    st.subheader(f"{name} - version {row['version']} of {len(versions)}")

    from vibe_quant.dsl.loader import DslError, load_text

    try:
        analysis = load_text(current["text"], f"{name}.yaml")
    except DslError as exc:  # stored before a rule tightened: the YAML tab still lets the user fix it
        common.show_error(exc, f"version {row['version']} no longer passes the checks")
        analysis = None
    form_tab, yaml_tab, history_tab = st.tabs(["Form", "YAML", "History"])
    with form_tab:
        if analysis is not None:
            _form(state, h, analysis, row["version"])
    with yaml_tab:
        _yaml_editor(state, h, name, current["text"], row["version"])
    with history_tab:
        _history(versions, name)


def _new_from_template(state, h, existing: set[str]) -> None:
    from vibe_quant.dsl.edit import from_template
    from vibe_quant.dsl.loader import shipped_names

    with st.expander("New strategy from a shipped template"), st.form("new_strategy"):
        template = st.selectbox("Template", shipped_names(), key="new_template")
        new_name = st.text_input("Name", key="new_name", placeholder="my_strategy")
        if not st.form_submit_button("Create"):
            return
        if new_name in existing:
            st.error(f"a strategy named {new_name!r} exists; choose another name (or edit it below)")
            return
        try:
            analysis = from_template(template, new_name, catalog=common.bars_catalog(h))
        except ConfigError as exc:
            common.show_error(exc, "cannot create it")
            return
        _, version, _ = save(state, analysis)
        common.flash(f"created strategy {new_name} (version {version}) from {template}")
        st.session_state[NEXT_KEY] = new_name
        st.rerun()


def _number_input(field, key: str):
    integer = field.type == "integer"
    cast = int if integer else float
    value = cast(field.value)
    low = None if field.min is None or value < field.min else cast(field.min)
    high = None if field.max is None or value > field.max else cast(field.max)
    step = cast(field.step) if field.step else (1 if integer else None)
    return st.number_input(field.key, min_value=low, max_value=high, value=value, step=step,
                           help=field.description or None, key=key, format=None if integer else "%g")  # fmt: skip


def _sessions_editor(value: list[dict], key: str, label: str) -> list[dict]:
    frame = pd.DataFrame(value or [], columns=["start", "end", "timezone"]).astype(str)
    edited = st.data_editor(frame, num_rows="dynamic", key=key, hide_index=True,
                            column_config={"start": st.column_config.TextColumn(help="HH:MM"),
                                           "end": st.column_config.TextColumn(help="HH:MM"),
                                           "timezone": st.column_config.TextColumn(default="UTC")})  # fmt: skip
    st.caption(label)
    return [{k: str(r[k]) for k in ("start", "end", "timezone")} for r in edited.to_dict("records")
            if str(r.get("start") or "").strip() and str(r.get("end") or "").strip()]  # fmt: skip


def _form(state, h, analysis, version: int) -> None:
    from vibe_quant.dsl.edit import DAYS, form_fields
    from vibe_quant.dsl.loader import DslError

    fields = form_fields(analysis)
    doc = analysis.doc
    prefix = f"form_{analysis.name}_v{version}"
    values: dict = {}
    with st.form(prefix):
        st.markdown("**Parameters** (from `parameters_schema`)")
        if not fields:
            st.caption("This strategy declares no parameters_schema.")
        for field in fields:
            key = f"{prefix}_{field.key}"
            if field.type in ("integer", "float"):
                values[field.key] = _number_input(field, key)
            elif field.type == "boolean":
                values[field.key] = st.checkbox(field.key, value=bool(field.value), help=field.description, key=key)
            elif field.type == "string" and field.options:
                options = list(field.options)
                index = options.index(field.value) if field.value in options else 0
                values[field.key] = st.selectbox(field.key, options, index=index, key=key, help=field.description)
            elif field.type == "string":
                values[field.key] = st.text_input(field.key, value=str(field.value or ""), key=key)
            else:  # session_list
                values[field.key] = _sessions_editor(field.value, key, f"{field.key}: {field.description}")

        st.markdown("**Indicators and their timeframes**")
        frames = [analysis.primary.label, *(t.label for t in analysis.higher)]
        for name, spec in doc.indicators.items():
            current = spec.timeframe or analysis.primary.label
            options = frames if current in frames else [*frames, current]
            values[f"indicators.{name}.timeframe"] = st.selectbox(
                f"{name} ({spec.type})", options, index=options.index(current), key=f"{prefix}_tf_{name}"
            )

        st.markdown("**Time filters** (entries only)")
        tf = doc.time_filters
        if "time_filters.allowed_sessions" not in values:
            sessions = [{"start": s.start, "end": s.end, "timezone": s.timezone} for s in tf.allowed_sessions]
            values["time_filters.allowed_sessions"] = _sessions_editor(
                sessions, f"{prefix}_sessions", "allowed sessions (none: all day)"
            )
        values["time_filters.blocked_days"] = st.multiselect("blocked days", DAYS, default=list(tf.blocked_days),
                                                             key=f"{prefix}_blocked")  # fmt: skip
        fa = tf.avoid_around_funding
        values["time_filters.avoid_around_funding.enabled"] = st.checkbox(
            "no entries around funding", value=fa.enabled, key=f"{prefix}_funding"
        )
        left, right = st.columns(2)
        values["time_filters.avoid_around_funding.minutes_before"] = left.number_input(
            "minutes before", min_value=0, value=fa.minutes_before, step=1, key=f"{prefix}_before"
        )
        values["time_filters.avoid_around_funding.minutes_after"] = right.number_input(
            "minutes after", min_value=0, value=fa.minutes_after, step=1, key=f"{prefix}_after"
        )
        submitted = st.form_submit_button("Save as a new version")
    if not submitted:
        return
    from vibe_quant.dsl.edit import edit

    changes = _changed(analysis, values, fields)
    if not changes:
        st.info("Nothing changed.")
        return
    try:
        new = edit(analysis, changes, catalog=common.bars_catalog(h))
    except (DslError, ConfigError) as exc:
        common.show_error(exc, "not saved")
        return
    _, saved, is_new = save(state, new)
    common.flash(f"stored {analysis.name} version {saved}" if is_new else
                 f"{analysis.name}: that document is version {saved} (now current again)")  # fmt: skip
    st.rerun()


def _changed(analysis, values: dict, fields) -> dict:
    from vibe_quant.dsl.edit import current_value

    out = {}
    for key, value in values.items():
        now = current_value(analysis, key)
        if key.startswith("indicators."):
            now = now or analysis.primary.label
        elif key == "time_filters.allowed_sessions" and now is None:
            now = []
        if now != value:
            out[key] = value
    return out


def _yaml_editor(state, h, name: str, text: str, version: int) -> None:
    from vibe_quant.dsl.loader import DslError, load_text

    key = f"yaml_{name}_v{version}"
    edited = st.text_area("Strategy YAML (checked on every change)", value=text, height=520, key=key)
    try:
        analysis = load_text(edited, f"{name}.yaml", catalog=common.bars_catalog(h))
    except DslError as exc:
        lines = edited.splitlines()
        st.error(f"{len(exc.issues)} problem(s): not saved")
        for issue in exc.issues:
            field = ".".join(str(p) for p in issue.path) or "-"
            where = f"line {issue.line}, column {issue.col}" if issue.line else "the document"
            st.error(f"{where} (field {field}): {issue.message}")
            if issue.line and 0 < issue.line <= len(lines):
                st.code(
                    f"{issue.line:>4} | {lines[issue.line - 1]}\n       {' ' * max(issue.col - 1, 0)}^", language=None
                )
        return
    st.success(f"valid: {analysis.name}, {analysis.primary.label}"
               + (" + " + ", ".join(t.label for t in analysis.higher) if analysis.higher else "")
               + f", {len(analysis.indicators)} indicators")  # fmt: skip
    if analysis.name != name:
        st.warning(f"the document is named {analysis.name!r}: saving stores it under that name, not {name!r}")
    if st.button("Save YAML as a new version", key=f"save_{key}", disabled=edited == text):
        _, saved, is_new = save(state, analysis)
        common.flash(f"stored {analysis.name} version {saved}" if is_new else
                     f"{analysis.name}: that document is version {saved} (now current again)")  # fmt: skip
        st.session_state[NEXT_KEY] = analysis.name
        st.rerun()


def _history(versions: list[dict], name: str) -> None:
    table = pd.DataFrame([{"version": v["version"], "saved": v["created"], "sha256": v["sha256"][:16]}
                          for v in versions])  # fmt: skip
    st.dataframe(table, hide_index=True)
    if len(versions) < 2:
        st.caption("One version so far: a diff needs two.")
        return
    numbers = [v["version"] for v in versions]
    left, right = st.columns(2)
    old = left.selectbox("from version", numbers, index=len(numbers) - 2, key=f"diff_from_{name}")
    new = right.selectbox("to version", numbers, index=len(numbers) - 1, key=f"diff_to_{name}")
    by_number = {v["version"]: v["text"] for v in versions}
    diff = readers.unified_diff(by_number[old], by_number[new], f"{name} v{old}", f"{name} v{new}")
    if diff:
        st.code(diff, language="diff")
    else:
        st.info(f"versions {old} and {new} have the same text")
