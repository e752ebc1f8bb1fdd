"""What every dashboard page shares: the home, the session's state database, formatting, the confirmation
step of destructive actions, and user errors shown as messages (never tracebacks)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import streamlit as st

from vibe_quant.errors import UserError, VibeQuantError
from vibe_quant.home import Home, resolve_home
from vibe_quant.state import StateManager

STATE_KEY = "_vq_state_manager"
FLASH_KEY = "_vq_flash"


def home() -> Home:
    """The data home: ``$VQ_HOME``, else ``./data`` (as the CLI without ``--home``).

    Raises
    ------
    UserError
        A file is where the home or one of its folders should be.
    """
    return resolve_home(None)


def state() -> StateManager:
    """The session's state database connection (created with the home's folders on first use, reopened when
    the home changes). A session reruns its script one run at a time, each maybe on another thread."""
    h = home()
    cached = st.session_state.get(STATE_KEY)
    if cached is not None and cached.path == h.db_path and h.db_path.exists():
        return cached
    if cached is not None:
        cached.close()
    h.ensure()
    manager = StateManager(h.db_path, check_same_thread=False)
    st.session_state[STATE_KEY] = manager
    return manager


def bars_catalog(h: Home) -> Path | None:
    """The catalog to check strategy timeframes against (None while nothing was ingested), as ``vq dsl validate``."""
    return h.catalog if (h.catalog / "data" / "bar").is_dir() else None


def page_header(title: str, caption: str | None = None) -> None:
    """The page title, an optional one-line caption, and a message left by the previous run (see :func:`flash`)."""
    st.title(title)
    if caption:
        st.caption(caption)
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)


def flash(message: str) -> None:
    """Show `message` at the top of the page on the next run (after a write and ``st.rerun()``)."""
    st.session_state[FLASH_KEY] = message


def sidebar(h: Home | None = None) -> None:
    """The sidebar's home line (the path every page reads and writes)."""
    try:
        h = h or home()
    except UserError as exc:
        st.sidebar.error(str(exc))
        return
    st.sidebar.caption("Data home ($VQ_HOME)")
    st.sidebar.code(str(h.root), language=None)


def show_error(exc: VibeQuantError, title: str | None = None) -> None:
    """A user or venue error as one red message; a DSL error lists each problem with its line and column."""
    issues = getattr(exc, "issues", None)
    if issues:
        lines = [f"line {i.line}, column {i.col}: {i.message}" if i.line else i.message for i in issues]
        st.error((f"**{title}**\n\n" if title else "") + "\n\n".join(f"- {line}" for line in lines))
        return
    st.error((f"**{title}**: " if title else "") + str(exc))


def confirm(key: str, label: str, prompt: str) -> bool:
    """A destructive action in two steps: the `label` button arms it, then "Yes, <label>" does it (Cancel disarms).

    Returns True on the run where the user confirmed; one click never does anything destructive.
    """
    armed = f"_confirm_{key}"
    if not st.session_state.get(armed):
        if not st.button(label, key=f"{key}__ask"):
            return False
        st.session_state[armed] = True
    st.warning(prompt)
    yes, no = st.columns(2)
    if yes.button(f"Yes, {label[0].lower()}{label[1:]}", key=f"{key}__yes", type="primary"):
        st.session_state[armed] = False
        return True
    if no.button("Cancel", key=f"{key}__no"):
        st.session_state[armed] = False
        st.rerun()
    return False


# -- formatting ---------------------------------------------------------------------------------


def fmt_number(value, spec: str = ",.4g") -> str:
    """`value` formatted with `spec`; ``-`` for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def fmt_pct(value, digits: int = 2) -> str:
    """A fraction as a percentage (0.1234 -> ``12.34%``); ``-`` for None."""
    return fmt_number(value, f".{digits}%")


def fmt_bytes(n: int | None) -> str:
    """A byte count in B, KB, MB, GB (powers of 1024)."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_ns(ns: int | None) -> str:
    """Nanoseconds as a readable duration (``200 ms``, ``1.5 s``, ``500 µs``)."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:,.4g} {unit}"
    return f"{ns} ns"


def fmt_time(ns: int | None) -> str:
    """Nanoseconds since the epoch as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
