"""Latency presets: the built-in ones (docs/specs.md#latency-presets) and custom ones saved as a setting.

A custom preset is a name for four nanosecond figures ``(base, insert, update, cancel)``, stored under the
setting ``latency.custom_presets``; a run uses it as ``latency="custom"`` with those ``latency_ns``.
"""

from __future__ import annotations

import re

from vibe_quant.backtest.config import LATENCY_PRESETS
from vibe_quant.errors import ConfigError, UserError, did_you_mean
from vibe_quant.state import StateManager
from vibe_quant.state.settings import get_setting, set_setting

SETTING = "latency.custom_presets"
FIELDS = ("base", "insert", "update", "cancel")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_NS = 60_000_000_000  # one minute: anything longer is a typo in the units


def custom_latency_presets(state: StateManager) -> dict[str, tuple[int, int, int, int]]:
    """The saved custom presets, by name."""
    stored = get_setting(state, SETTING, {})
    return {name: tuple(int(v) for v in values) for name, values in sorted(stored.items())}


def latency_presets(state: StateManager) -> dict[str, tuple[int, int, int, int]]:
    """Every preset a run can name: the built-in ones, then the custom ones."""
    return {**LATENCY_PRESETS, **custom_latency_presets(state)}


def save_latency_preset(state: StateManager, name: str, ns: tuple[int, int, int, int]) -> None:
    """Store (or replace) the custom preset `name` = `ns` ``(base, insert, update, cancel)`` nanoseconds.

    Raises
    ------
    ConfigError
        A built-in name or ``custom``, a name that is not lowercase letters, digits and ``_``,
        not four values, or a value below 0 or above one minute (naming the field).
    """
    if name in LATENCY_PRESETS or name == "custom":
        raise ConfigError(f"latency preset {name!r} is built in; choose another name")
    if not NAME.match(name or ""):
        raise ConfigError(f"latency preset name {name!r}: use lowercase letters, digits and _ (e.g. 'my_vps')")
    if len(ns) != len(FIELDS):
        raise ConfigError(f"latency preset {name}: give {len(FIELDS)} values ({', '.join(FIELDS)}), got {len(ns)}")
    values = []
    for field, value in zip(FIELDS, ns, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NS:
            raise ConfigError(f"latency preset {name}: {field} = {value!r} ns; give an integer in [0, {MAX_NS:,}]")
        values.append(value)
    stored = dict(get_setting(state, SETTING, {}))
    stored[name] = values
    set_setting(state, SETTING, stored)


def delete_latency_preset(state: StateManager, name: str) -> None:
    """Forget the custom preset `name`.

    Raises
    ------
    UserError
        No custom preset of that name (built-in ones cannot be deleted).
    """
    stored = dict(get_setting(state, SETTING, {}))
    if name not in stored:
        kind = "built in and cannot be deleted" if name in LATENCY_PRESETS else "not a custom preset"
        raise UserError(f"latency preset {name!r} is {kind}." + did_you_mean(name, stored))
    del stored[name]
    set_setting(state, SETTING, stored)


def latency_fields(name: str | None, db_path) -> dict:
    """Config fields for ``--latency NAME``: a built-in preset as itself, a custom one saved in the state
    database at `db_path` as ``latency="custom"`` with its four figures (unknown names are left for the
    config check to refuse with the list of presets)."""
    if name is None or name in LATENCY_PRESETS or name == "custom" or db_path is None or not db_path.exists():
        return {"latency": name}
    with StateManager(db_path) as state:
        custom = custom_latency_presets(state)
    if name in custom:
        return {"latency": "custom", "latency_ns": list(custom[name])}
    return {"latency": name}
