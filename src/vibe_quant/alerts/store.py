"""The ``alerts`` table: every alert, sent or not (docs/specs.md#alerts), and the message texts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from vibe_quant.state import StateManager

KINDS = ("error", "strategy_halt", "portfolio_halt", "kill_switch", "circuit_breaker", "trade", "job_failed",
         "daily_summary", "test")  # fmt: skip
SEVERITY = {"error": "critical", "strategy_halt": "warning", "portfolio_halt": "critical", "kill_switch": "critical",
            "circuit_breaker": "warning", "trade": "info", "job_failed": "warning", "daily_summary": "info",
            "test": "info"}  # fmt: skip
STATUSES = ("sent", "held", "failed", "unconfigured")
SHOWN_HELD = 3


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def insert_alert(state: StateManager, created: dt.datetime, kind: str, text: str, fields: dict, status: str,
                 attempts: int = 0, error: str | None = None, sent_at: dt.datetime | None = None) -> int:  # fmt: skip
    """Store one alert; return its id."""
    return state.insert("alerts", {
        "created_at": iso(created), "kind": kind, "severity": SEVERITY.get(kind, "warning"), "text": text,
        "fields": json.loads(json.dumps(fields, default=str)), "status": status, "attempts": attempts, "error": error,
        "sent_at": iso(sent_at) if sent_at is not None else None,
    })  # fmt: skip


def list_alerts(db_path: str | Path, limit: int = 50, kind: str | None = None) -> list[dict]:
    """The newest `limit` alerts (all kinds, or one), newest first; empty without a database."""
    if not Path(db_path).exists():
        return []
    with StateManager(db_path) as state:
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = state.conn.execute(f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ?",
                                  [*args, int(limit)]).fetchall()  # fmt: skip
    out = []
    for row in rows:
        item = dict(row)
        item["fields"] = json.loads(item["fields"]) if item["fields"] else {}
        out.append(item)
    return out


def message(kind: str, text: str, held: list[tuple[dt.datetime, str]] = (), dropped: int = 0) -> str:
    """The Telegram text of an alert of `kind`, with the alerts `held` back since the last message of its kind.

    ``held`` is ``[(raised at, text), ...]`` oldest first; the newest :data:`SHOWN_HELD` are quoted.
    """
    lines = [f"vibe-quant {kind.replace('_', ' ')}: {text}"]
    if held:
        lines.append(_held_line(kind, held))
    if dropped:
        lines.append(f"({dropped} alerts dropped: the alert queue was full)")
    return "\n".join(lines)


def held_summary(kind: str, held: list[tuple[dt.datetime, str]]) -> str:
    """The text of a message that only reports alerts held back (no new alert of their kind came)."""
    return f"vibe-quant {kind.replace('_', ' ')}: {_held_line(kind, held)}"


def _held_line(kind: str, held: list[tuple[dt.datetime, str]]) -> str:
    since = held[0][0].astimezone(dt.UTC).strftime("%H:%M")
    shown = " | ".join(t[:300] for _, t in held[-SHOWN_HELD:])
    latest = f" (latest {SHOWN_HELD})" if len(held) > SHOWN_HELD else ""
    return f"+{len(held)} more {kind} alerts since {since} UTC{latest}: {shown}"
