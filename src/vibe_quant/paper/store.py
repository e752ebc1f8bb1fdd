"""Paper and live sessions in the state database (schema 9, ``0009_paper.sql``).

A session is one node trading one resolved backtest config. The node writes as it goes (status
snapshot, equity per bar, fills: idempotent rows a restarted session writes again, identically),
a checkpoint every 60 s and on halt, stop and finish, and reads the operator's commands, which it
applies at a bar boundary and journals with the bar count (a restarted replay applies each again
at the same bar). Everything here is small SQL over :class:`~vibe_quant.state.StateManager`.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

from vibe_quant.errors import UserError
from vibe_quant.state import StateManager

MODES = ("replay", "testnet", "live")
COMMANDS = ("halt", "resume", "close_all", "stop")
ACTIVE_STATUSES = ("starting", "running")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_session(db: StateManager, mode: str, config: dict, feed: dict, limits: dict | None = None,
                   from_run: int | None = None, bars_total: int | None = None) -> int:  # fmt: skip
    """A new session row (status ``starting``); returns its id."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return db.insert("paper_sessions", {
        "mode": mode, "config": config, "feed": feed, "limits": limits, "from_run": from_run, "status": "starting",
        "host": socket.gethostname(), "bars_total": bars_total, "cursor_ns": None, "bars_done": 0,
    })  # fmt: skip


def get_session(db: StateManager, session_id: int) -> dict:
    """The session row, or a UserError naming the sessions there are."""
    row = db.get("paper_sessions", session_id)
    if row is None:
        ids = [str(r["id"]) for r in db.find("paper_sessions")][-10:]
        known = f"; sessions: {', '.join(ids)}" if ids else "; there are none yet (vq paper start)"
        raise UserError(f"no paper session {session_id}{known}")
    return row


def session_plan(row: dict):
    """The :class:`~vibe_quant.backtest.plan.RunPlan` a session trades (its stored, resolved config)."""
    import msgspec

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.plan import plan_run

    return plan_run(msgspec.convert(row["config"], BacktestConfig, strict=False))


def list_sessions(db: StateManager, limit: int = 50) -> list[dict]:
    rows = db.conn.execute("SELECT * FROM paper_sessions ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [db._decode("paper_sessions", row) for row in rows]


def update_session(db: StateManager, session_id: int, **values) -> None:
    db.update("paper_sessions", session_id, values)


# -- commands ---------------------------------------------------------------------------------


def add_command(db: StateManager, session_id: int, command: str, target: str | None = None,
                reason: str | None = None, who: str | None = None) -> int:  # fmt: skip
    """Queue an operator command for a running session; returns its id."""
    if command not in COMMANDS:
        raise UserError(f"unknown command {command!r}: one of {', '.join(COMMANDS)}")
    get_session(db, session_id)
    return db.insert("paper_commands", {"session_id": session_id, "command": command, "target": target,
                                        "reason": reason, "requested_by": who})  # fmt: skip


def pending_commands(db: StateManager, session_id: int) -> list[dict]:
    return db.find("paper_commands", session_id=session_id, applied_at=None)


def applied_commands(db: StateManager, session_id: int) -> list[dict]:
    """The journal: applied commands in the order they were applied."""
    rows = db.conn.execute(
        "SELECT * FROM paper_commands WHERE session_id = ? AND applied_at IS NOT NULL ORDER BY applied_bar, id",
        (session_id,),
    ).fetchall()
    return [db._decode("paper_commands", row) for row in rows]


def mark_applied(db: StateManager, command_id: int, bars_done: int, result: str) -> None:
    db.update("paper_commands", command_id, {"applied_at": now_iso(), "applied_bar": bars_done, "result": result})


def commands(db: StateManager, session_id: int) -> list[dict]:
    return db.find("paper_commands", session_id=session_id)


# -- progress, checkpoints --------------------------------------------------------------------


def write_progress(db: StateManager, session_id: int, *, cursor_ns: int | None, bars_done: int, snapshot: dict,
                   equity: list[tuple[int, float]], fills: list[tuple[int, int, dict]], status: str | None = None) -> None:  # fmt: skip
    """One atomic write of what the node did since the last: equity rows, fills, snapshot, cursor."""
    with db.transaction():
        if equity:
            db.conn.executemany("INSERT OR REPLACE INTO paper_equity (session_id, ts_ns, equity) VALUES (?, ?, ?)",
                                [(session_id, ts, eq) for ts, eq in equity])  # fmt: skip
        if fills:
            db.conn.executemany(
                "INSERT OR REPLACE INTO paper_fills (session_id, seq, ts_ns, record) VALUES (?, ?, ?, ?)",
                [(session_id, seq, ts, json.dumps(record)) for seq, ts, record in fills],
            )
        values = {"cursor_ns": cursor_ns, "bars_done": bars_done, "snapshot": snapshot, "heartbeat_at": now_iso()}
        if status is not None:
            values["status"] = status
        db.update("paper_sessions", session_id, values)


def write_checkpoint(db: StateManager, session_id: int, reason: str, cursor_ns: int | None, bars_done: int,
                     state: dict) -> int:  # fmt: skip
    return db.insert("paper_checkpoints", {"session_id": session_id, "reason": reason, "cursor_ns": cursor_ns,
                                           "bars_done": bars_done, "state": state})  # fmt: skip


def last_checkpoint(db: StateManager, session_id: int) -> dict | None:
    row = db.conn.execute(
        "SELECT * FROM paper_checkpoints WHERE session_id = ? ORDER BY id DESC LIMIT 1", (session_id,)
    ).fetchone()
    return db._decode("paper_checkpoints", row) if row is not None else None


def checkpoints(db: StateManager, session_id: int) -> list[dict]:
    rows = db.conn.execute(
        "SELECT id, created_at, reason, cursor_ns, bars_done FROM paper_checkpoints WHERE session_id = ? ORDER BY id",
        (session_id,),
    ).fetchall()
    return [dict(row) for row in rows]


def equity_series(db: StateManager, session_id: int) -> tuple[list[int], list[float]]:
    rows = db.conn.execute(
        "SELECT ts_ns, equity FROM paper_equity WHERE session_id = ? ORDER BY ts_ns", (session_id,)
    ).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def fill_records(db: StateManager, session_id: int, limit: int | None = None) -> list[dict]:
    """The session's fills (FillRecord fields), oldest first (the newest `limit` when given)."""
    if limit is None:
        rows = db.conn.execute("SELECT record FROM paper_fills WHERE session_id = ? ORDER BY seq", (session_id,))
        return [json.loads(r[0]) for r in rows.fetchall()]
    rows = db.conn.execute(
        "SELECT record FROM paper_fills WHERE session_id = ? ORDER BY seq DESC LIMIT ?", (session_id, limit)
    ).fetchall()
    return [json.loads(r[0]) for r in reversed(rows)]


def events_path(logs: Path, session_id: int) -> Path:
    """The session's structured event log (JSON lines; docs/specs.md#event-log)."""
    return logs / "events" / f"paper-{session_id}.jsonl"
