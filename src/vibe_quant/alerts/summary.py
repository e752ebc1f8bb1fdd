"""The daily summary (docs/specs.md#alerts): per paper/testnet/live session running or ended in the last
24 hours, its equity, net PnL against its starting balance, open positions, fees and funding, the
halted strategies, and the alerts of the day; read from the sessions' status snapshots."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from vibe_quant.alerts.store import utc_now
from vibe_quant.home import Home
from vibe_quant.state import StateManager

ACTIVE = ("starting", "running")
WINDOW = dt.timedelta(hours=24)
MAX_SESSIONS = 20


def _when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)  # SQLite's datetime('now') is UTC


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+,.2f}"


def session_line(row: dict, first_equity: float | None) -> str:
    """One session's line: ``#3 replay ema_trend_atr FILUSDT-PERP 15m (finished): equity ..., net PnL ...``."""
    config = json.loads(row["config"]) if isinstance(row["config"], str) else (row["config"] or {})
    snap = json.loads(row["snapshot"]) if isinstance(row["snapshot"], str) else (row["snapshot"] or {})
    start = snap.get("starting_balance") or config.get("starting_balance") or first_equity
    equity = snap.get("equity")
    costs = snap.get("costs") or {}
    positions = snap.get("positions") or []
    pnl = equity - start if equity is not None and start else None
    pct = f" ({pnl / start:+.2%})" if pnl is not None else ""
    what = " ".join(str(x) for x in (config.get("strategy"), ",".join(config.get("symbols") or ()),
                                     config.get("timeframe")) if x)  # fmt: skip
    line = (f"#{row['id']} {row['mode']} {what} ({row['status']}): equity {_money(equity)}, net PnL {_signed(pnl)}"
            f"{pct} vs {_money(start)}, open positions {len(positions)}")  # fmt: skip
    if positions:
        line += " [" + ", ".join(f"{p['instrument']} {p['signed_qty']:+g}" for p in positions[:5]) + "]"
    line += (
        f", fees {_money(costs.get('fees'))}, funding {_signed(costs.get('funding'))}, fills {costs.get('fills', 0)}"
    )
    halted = [sid for sid, s in (snap.get("strategies") or {}).items() if s.get("state") == "HALTED"]
    if halted:
        line += f"; HALTED: {', '.join(halted)}"
    return line


def daily_summary(home: Home | str | Path, now: dt.datetime | None = None) -> str:
    """The daily summary's text, from the state database of `home` (a Home or the database file).

    Parameters
    ----------
    home : Home, str or Path
        The data home or its state database.
    now : datetime, optional
        The UTC time the summary is for (default: now); sessions running then, or ended or
        started within the 24 hours before it, are listed (newest first, at most 20).
    """
    now = now or utc_now()
    db_path = home.db_path if isinstance(home, Home) else Path(home)
    header = f"vibe-quant daily summary {now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if not db_path.exists():
        return f"{header}\nno state database at {db_path}"
    since = now - WINDOW
    lines = []
    with StateManager(db_path) as state:
        rows = [dict(r) for r in state.conn.execute("SELECT * FROM paper_sessions ORDER BY id DESC LIMIT 200")]
        for row in rows:
            recent = max((t for t in (_when(row["finished_at"]), _when(row["heartbeat_at"]), _when(row["created_at"]))
                          if t is not None), default=None)  # fmt: skip
            if row["status"] not in ACTIVE and (recent is None or recent < since):
                continue
            first = state.conn.execute("SELECT equity FROM paper_equity WHERE session_id = ? ORDER BY ts_ns LIMIT 1",
                                       (row["id"],)).fetchone()  # fmt: skip
            lines.append(session_line(row, first["equity"] if first else None))
            if len(lines) == MAX_SESSIONS:
                break
        counts = dict(state.conn.execute(
            "SELECT status, count(*) FROM alerts WHERE created_at >= ? GROUP BY status", (since.isoformat(timespec="seconds"),)
        ).fetchall())  # fmt: skip
    if not lines:
        lines.append("no paper, testnet or live session ran in the last 24 hours")
    alerts = ", ".join(f"{counts[s]} {s}" for s in ("sent", "held", "failed", "unconfigured") if counts.get(s))
    lines.append(f"alerts in the last 24 h: {alerts or 'none'}")
    return "\n".join([header, *lines])
