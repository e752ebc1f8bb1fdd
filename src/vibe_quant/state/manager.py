"""``StateManager``: create/read/update/delete over the state database.

One generic CRUD surface serves every table (strategies, sizing and risk configs, runs,
results, trades, sweeps, jobs, instruments, the raw-lake index). Column names are checked
against the live schema, so a typo is a clear error and never reaches SQL; columns declared
``JSON`` are encoded and decoded transparently.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vibe_quant.errors import UserError, did_you_mean
from vibe_quant.state.db import connect, transaction


class StateManager:
    """CRUD access to the state database at `path` (created and migrated on open).

    Parameters
    ----------
    path : str or Path
        The SQLite file, normally ``$VQ_HOME/state/vibe_quant.db``.
    check_same_thread : bool, default True
        See :func:`vibe_quant.state.db.connect` (the dashboard keeps one manager per session).
    """

    def __init__(self, path: str | Path, check_same_thread: bool = True):
        self.path = Path(path)
        self.conn = connect(self.path, check_same_thread=check_same_thread)
        self._columns: dict[str, dict[str, str]] = {}
        for (table,) in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ):
            info = self.conn.execute(f"PRAGMA table_info({table})").fetchall()
            self._columns[table] = {row["name"]: (row["type"] or "").upper() for row in info}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StateManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tables(self) -> list[str]:
        return sorted(self._columns)

    @contextmanager
    def transaction(self) -> Iterator[StateManager]:
        """Group several writes into one atomic transaction."""
        with transaction(self.conn):
            yield self

    # -- generic CRUD -------------------------------------------------------------------------

    def insert(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row and return its id."""
        cols = self._check(table, values)
        placeholders = ", ".join("?" for _ in cols)
        cur = self.conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders})",
            [self._encode(table, c, values[c]) for c in cols],
        )
        return int(cur.lastrowid)

    def get(self, table: str, row_id: int) -> dict[str, Any] | None:
        """Return the row with `row_id`, or None."""
        self._check(table, {})
        row = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        return self._decode(table, row) if row is not None else None

    def find(self, table: str, order_by: str = "id", **where: Any) -> list[dict[str, Any]]:
        """Return rows whose columns equal the keyword values, ordered by `order_by`."""
        cols = self._check(table, where)
        self._check(table, {order_by: None})
        clause = " AND ".join(f"{c} IS ?" for c in cols) or "1"
        rows = self.conn.execute(
            f"SELECT * FROM {table} WHERE {clause} ORDER BY {order_by}",
            [self._encode(table, c, where[c]) for c in cols],
        ).fetchall()
        return [self._decode(table, row) for row in rows]

    def update(self, table: str, row_id: int, values: Mapping[str, Any]) -> bool:
        """Update columns of one row; return whether it existed."""
        cols = self._check(table, values)
        if not cols:
            return self.get(table, row_id) is not None
        assignments = ", ".join(f"{c} = ?" for c in cols)
        cur = self.conn.execute(
            f"UPDATE {table} SET {assignments} WHERE id = ?",
            [*(self._encode(table, c, values[c]) for c in cols), row_id],
        )
        return cur.rowcount == 1

    def delete(self, table: str, row_id: int) -> bool:
        """Delete one row; return whether it existed."""
        self._check(table, {})
        cur = self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        return cur.rowcount == 1

    def count(self, table: str, **where: Any) -> int:
        """Number of rows (whose columns equal the keyword values)."""
        cols = self._check(table, where)
        clause = " AND ".join(f"{c} IS ?" for c in cols) or "1"
        params = [self._encode(table, c, where[c]) for c in cols]
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", params).fetchone()[0])

    # -- helpers --------------------------------------------------------------------------------

    def _check(self, table: str, values: Mapping[str, Any]) -> list[str]:
        columns = self._columns.get(table)
        if columns is None:
            raise UserError(f"unknown table {table!r}.{did_you_mean(table, self._columns)}")
        for name in values:
            if name not in columns:
                raise UserError(f"table {table!r} has no column {name!r}.{did_you_mean(name, columns)}")
        return list(values)

    def _encode(self, table: str, column: str, value: Any) -> Any:
        if self._columns[table][column] == "JSON" and value is not None:
            return json.dumps(value, sort_keys=True)
        return value

    def _decode(self, table: str, row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for name, kind in self._columns[table].items():
            if kind == "JSON" and isinstance(out.get(name), str):
                out[name] = json.loads(out[name])
        return out
