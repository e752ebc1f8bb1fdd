"""Settings: sizing and risk presets (create, edit, delete), latency presets, overfitting defaults, Telegram
alerts (docs/specs.md#alerts) and system information. Everything is stored in the state database, so it survives restarts."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from vibe_quant.dashboard import common, readers
from vibe_quant.errors import ConfigError, UserError, VibeQuantError

NEW = "+ new preset"


def render() -> None:
    common.page_header(
        "Settings",
        "Stored in the state database: they survive restarts. Sizing and risk presets are the ones "
        "`--sizing` / `--risk` take.",
    )
    h, state = common.home(), common.state()
    presets_tab, latency_tab, overfit_tab, telegram_tab, system_tab = st.tabs(
        ["Sizing & risk presets", "Latency presets", "Overfitting defaults", "Telegram alerts", "System"]
    )
    with presets_tab:
        _presets(state)
    with latency_tab:
        _latency(state)
    with overfit_tab:
        _overfitting(state)
    with telegram_tab:
        _telegram(h, state)
    with system_tab:
        _system(h, state)


def _yaml(text: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError("expected a YAML mapping at the top level")
    return data


def _presets(state) -> None:
    import msgspec

    from vibe_quant.risk.config import (
        RISK_PRESETS,
        SIZING_PRESETS,
        delete_preset,
        list_presets,
        preset_document,
        save_preset_data,
        sizing_data,
    )

    kind = st.radio("kind", ["sizing", "risk"], horizontal=True, key="settings_preset_kind")
    rows = list_presets(state, kind)
    names = [r["name"] for r in rows]
    widget, pending = f"settings_{kind}_preset", f"_settings_{kind}_preset_next"
    if pending in st.session_state:  # chosen by the previous run's save or delete (before the widget exists)
        st.session_state[widget] = st.session_state.pop(pending) or names[0]
    chosen = st.selectbox(f"{kind} preset", [*names, NEW], key=widget)
    if chosen == NEW:
        name = st.text_input("new preset name", key=f"settings_{kind}_new_name")
        template = (sizing_data(SIZING_PRESETS["fixed_fractional"]) if kind == "sizing" else
                    msgspec.to_builtins(RISK_PRESETS["seed_default"]))  # fmt: skip
    else:
        name = chosen
        template = preset_document(kind, next(r for r in rows if r["name"] == chosen))
    text = st.text_area("preset (YAML, the shape `vq " + kind + " show` prints)",
                        value=yaml.safe_dump(template, sort_keys=False), height=360,
                        key=f"settings_{kind}_yaml_{chosen}")  # fmt: skip
    if st.button("Save preset", key=f"settings_{kind}_save", type="primary"):
        try:
            with state.transaction():
                row_id = save_preset_data(state, kind, name.strip() if chosen == NEW else name, _yaml(text),
                                          f"{kind} preset {name or '(no name)'}")  # fmt: skip
        except UserError as exc:
            common.show_error(exc, "not saved")
        else:
            common.flash(f"saved {kind} preset {name!r} (id {row_id}); use it with --{kind} {name}")
            st.session_state[pending] = name.strip() if chosen == NEW else name
            st.rerun()
    if chosen != NEW and common.confirm(f"settings_{kind}_delete_{chosen}", "Delete preset",
                                        f"Delete the {kind} preset {chosen!r}? This cannot be undone "
                                        "(a built-in one comes back with its defaults on next use)."):  # fmt: skip
        try:
            with state.transaction():
                delete_preset(state, kind, chosen)
        except UserError as exc:
            common.show_error(exc, "not deleted")
        else:
            common.flash(f"deleted {kind} preset {chosen!r}")
            st.session_state[pending] = None
            st.rerun()


def _latency(state) -> None:
    from vibe_quant.backtest.config import LATENCY_PRESETS
    from vibe_quant.backtest.latency import (
        FIELDS,
        custom_latency_presets,
        delete_latency_preset,
        save_latency_preset,
    )

    custom = custom_latency_presets(state)
    rows = [{"preset": name, "kind": "built in" if name in LATENCY_PRESETS else "custom",
             **{f: common.fmt_ns(v) for f, v in zip(FIELDS, ns, strict=True)},
             "order travels": common.fmt_ns(ns[0] + ns[1])}
            for name, ns in {**LATENCY_PRESETS, **custom}.items()]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("NautilusTrader adds base to each of the others, so an order travels base + insert. A custom preset "
               "is stored as the setting `latency.custom_presets` (nanoseconds); `vq backtest run --latency` "
               "takes the built-in names only so far.")  # fmt: skip
    with st.form("settings_latency_new"):
        st.markdown("**Add or replace a custom preset** (nanoseconds)")
        name = st.text_input("name", key="latency_name", placeholder="my_vps")
        columns = st.columns(len(FIELDS))
        values = [col.number_input(field, min_value=0, value=0, step=1_000_000, key=f"latency_{field}")
                  for col, field in zip(columns, FIELDS, strict=True)]  # fmt: skip
        if st.form_submit_button("Save latency preset"):
            try:
                save_latency_preset(state, name.strip(), tuple(int(v) for v in values))
            except ConfigError as exc:
                common.show_error(exc, "not saved")
            else:
                common.flash(f"saved latency preset {name.strip()!r}")
                st.rerun()
    if custom:
        doomed = st.selectbox("custom preset", list(custom), key="latency_delete_choice")
        if common.confirm(
            f"latency_delete_{doomed}", "Delete latency preset", f"Delete the latency preset {doomed!r}?"
        ):
            delete_latency_preset(state, doomed)
            common.flash(f"deleted latency preset {doomed!r}")
            st.rerun()


def _overfitting(state) -> None:
    import msgspec

    from vibe_quant.overfitting.config import SETTING, reset_defaults, save_defaults, stored_defaults
    from vibe_quant.state.settings import get_setting

    try:
        current = stored_defaults(state)
    except ConfigError as exc:
        common.show_error(exc, "the stored defaults are invalid; save new ones or reset")
        from vibe_quant.overfitting.config import OverfittingConfig

        current = OverfittingConfig()
    stored = get_setting(state, SETTING) is not None
    st.caption(("Stored defaults" if stored else "Built-in defaults (nothing stored yet)")
               + f", kept as the setting `{SETTING}`: thresholds, windows and folds of the filters "
               "(docs/specs.md#overfitting-filters). `vq overfit run` and `vq screen run --overfit` use them unless "
               "`--config FILE` is given.")  # fmt: skip
    text = st.text_area("overfitting defaults (YAML)", value=yaml.safe_dump(msgspec.to_builtins(current), sort_keys=False),
                        height=480, key=f"overfit_yaml_{stored}")  # fmt: skip
    if st.button("Save overfitting defaults", key="overfit_save", type="primary"):
        try:
            data = _yaml(text)
            save_defaults(state, data.get("overfitting", data))
        except ConfigError as exc:
            common.show_error(exc, "not saved")
        else:
            common.flash("saved the overfitting defaults")
            st.rerun()
    if stored and common.confirm("overfit_reset", "Reset to built-in defaults",
                                 "Forget the stored overfitting defaults and use the built-in ones?"):  # fmt: skip
        reset_defaults(state)
        common.flash("the built-in overfitting defaults apply again")
        st.rerun()


def _telegram(h, state) -> None:
    from vibe_quant.alerts import load_settings, save_settings, send_test
    from vibe_quant.alerts.config import CHAT_ENV, TOKEN_ENV, TOKEN_FILE_ENV

    try:
        current = load_settings(h.db_path)
    except ConfigError as exc:
        common.show_error(exc, "the alert configuration is invalid")
        return
    token = {"env": f"yes (from {TOKEN_ENV})", "file": f"yes (from the file {TOKEN_FILE_ENV} names)"}
    st.markdown(f"**Bot token configured:** {token.get(current.token_from, 'no')}")
    st.caption(f"The token is read from the environment only ({TOKEN_ENV}, or a chmod-600 file named by "
               f"{TOKEN_FILE_ENV}) and is never stored, logged or shown.")  # fmt: skip
    from vibe_quant.alerts.config import CHAT_SETTING, SUMMARY_SETTING, TRADES_SETTING
    from vibe_quant.state.settings import get_setting

    if current.chat_from == "env":
        st.info(f"{CHAT_ENV} is set: messages go to chat {current.chat_id}; the chat id below applies without it.")
    with st.form("settings_telegram"):
        chat = st.text_input("chat id", value=get_setting(state, CHAT_SETTING) or "", key="telegram_chat",
                             help="a number (negative for a group) or @channelname")  # fmt: skip
        trades = st.checkbox("alert on every trade (fill)", value=bool(get_setting(state, TRADES_SETTING)),
                             key="telegram_trades")  # fmt: skip
        summary = st.text_input("daily summary at (UTC, HH:MM; empty: none)",
                                value=get_setting(state, SUMMARY_SETTING) or "", key="telegram_summary")  # fmt: skip
        if st.form_submit_button("Save Telegram settings"):
            try:
                save_settings(state, chat_id=chat, trades=trades, daily_summary_utc=summary)
            except ConfigError as exc:
                common.show_error(exc, "not saved")
            else:
                common.flash("saved the Telegram alert settings")
                st.rerun()
    if st.button("Send test message", key="telegram_test"):
        try:
            row = send_test(h)
        except VibeQuantError as exc:
            common.show_error(exc, "test message not sent")
        else:
            st.success(f"test message sent (alert {row['id']}, {row['attempts']} attempt(s))")


def _system(h, state) -> None:
    st.markdown("**Versions**")
    st.dataframe(pd.DataFrame(list(readers.versions().items()), columns=["package", "version"]), hide_index=True)
    st.markdown("**Home**")
    st.dataframe(pd.DataFrame([{"what": what, "path": str(path)} for what, path in
                               (("home", h.root), ("catalog", h.catalog), ("raw lake", h.archive),
                                ("state database", h.db_path), ("logs", h.logs), ("runs", h.runs))]),
                 hide_index=True)  # fmt: skip
    catalog = readers.catalog_info(h)
    archive_files, archive_bytes = readers.folder_size(h.archive)
    left, mid, right = st.columns(3)
    left.metric("catalog size", common.fmt_bytes(catalog["bytes"]), help=f"{catalog['files']:,} files")
    mid.metric("raw lake size", common.fmt_bytes(archive_bytes), help=f"{archive_files:,} files")
    db = readers.sqlite_info(h, state)
    right.metric("state database", common.fmt_bytes(db["bytes"]), help=f"WAL {common.fmt_bytes(db['wal_bytes'])}")
    if catalog["bars"]:
        st.markdown(f"**Bars in the catalog** (manifest of {catalog['manifest_generated']})")
        st.dataframe(pd.DataFrame(catalog["bars"]).T.fillna(0).astype(int), width="stretch")
    st.markdown(f"**SQLite**: schema version {db['schema_version']}, {db['journal_mode']} journal, "
                f"{db['page_count']:,} pages of {db['page_size']:,} bytes")  # fmt: skip
    st.dataframe(pd.DataFrame(list(db["rows"].items()), columns=["table", "rows"]), hide_index=True)
    creds = readers.credential_status()
    st.markdown("**Credentials in the environment** (names only; values are never read or shown)")
    if creds:
        st.dataframe(pd.DataFrame(list(creds.items()), columns=["variable", "status"]), hide_index=True)
    else:
        st.caption("none set")
