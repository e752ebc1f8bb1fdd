"""SQLite connection factory and schema migrations for the state database.

Every connection runs in WAL mode with ``busy_timeout=5000`` (docs/specs.md#state-database) so the
dashboard, background jobs and the CLI can share one file. Migrations are numbered SQL files in
``migrations/``; ``PRAGMA user_version`` records the last one applied.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("vibe_quant.state.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


SCHEMA_VERSION = max(number for number, _, _ in _migrations())


def connect(path: str | Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open the state database, apply pending migrations and return the connection.

    The connection is in autocommit mode; group writes with :func:`transaction`.

    Parameters
    ----------
    path : str or Path
        Database file; its directory must exist.
    check_same_thread : bool, default True
        False lets a connection move between threads used one at a time (a dashboard session
        reruns its script on a new thread); never share it between threads running at once.

    Returns
    -------
    sqlite3.Connection
        With WAL, ``busy_timeout=5000``, foreign keys on and ``sqlite3.Row`` rows.
    """
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=check_same_thread
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    if not _ready(conn):
        # A new database, or the first open after an upgrade. Processes opening it at once (the
        # dashboard, a job, its workers) would each switch it to WAL and run the same migration:
        # "database is locked", "table ... already exists". One at a time; the others find it done.
        with _setup_lock(Path(path)):
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)
    return conn


def _ready(conn: sqlite3.Connection) -> bool:
    wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    return wal and conn.execute("PRAGMA user_version").fetchone()[0] >= max(n for n, _, _ in _migrations())


@contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".setup.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's ``user_version``; return the version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, _name, sql in _migrations():
        if number <= current:
            continue
        # executescript would COMMIT first; BEGIN..COMMIT inside keeps each migration atomic.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = number
    return current


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction; roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
