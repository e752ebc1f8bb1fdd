"""Settings kept in the state database (table ``settings``): one JSON value per dotted key.

This is the store only; what a key means, its default and its checks belong to the stage that
reads it (``backtest.latency`` for ``latency.custom_presets``, ``overfitting.config`` for
``overfitting.defaults``), so a setting is validated by the same code that uses it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vibe_quant.errors import ConfigError
from vibe_quant.state.manager import StateManager

KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise ConfigError(f"setting key {key!r}: use dotted lowercase names such as 'latency.custom_presets'")
    return key


def get_setting(state: StateManager, key: str, default: Any = None) -> Any:
    """Return the stored value of `key`, or `default` (None) when it was never set.

    Raises
    ------
    ConfigError
        `key` is not a dotted lowercase name.
    """
    row = state.conn.execute("SELECT value FROM settings WHERE key = ?", (_check_key(key),)).fetchone()
    return default if row is None else json.loads(row["value"])


def set_setting(state: StateManager, key: str, value: Any) -> None:
    """Store `value` (anything JSON can hold) under `key`, replacing an earlier value.

    Raises
    ------
    ConfigError
        `key` is not a dotted lowercase name, or `value` is None or not JSON-serialisable.
    """
    _check_key(key)
    if value is None:
        raise ConfigError(f"setting {key}: a value is required (delete the setting to go back to its default)")
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key}: the value cannot be stored as JSON ({exc})") from None
    state.conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, datetime('now')) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, text),
    )


def delete_setting(state: StateManager, key: str) -> bool:
    """Forget `key` (its default applies again); return whether it was set.

    Raises
    ------
    ConfigError
        `key` is not a dotted lowercase name.
    """
    cur = state.conn.execute("DELETE FROM settings WHERE key = ?", (_check_key(key),))
    return cur.rowcount == 1


def all_settings(state: StateManager) -> dict[str, dict[str, Any]]:
    """Every stored setting: ``{key: {"value": ..., "updated_at": "YYYY-MM-DD HH:MM:SS"}}`` (UTC), by key."""
    rows = state.conn.execute("SELECT key, value, updated_at FROM settings ORDER BY key").fetchall()
    return {r["key"]: {"value": json.loads(r["value"]), "updated_at": r["updated_at"]} for r in rows}
