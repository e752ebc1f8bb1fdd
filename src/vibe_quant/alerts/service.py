"""The alerts stage's entry points (docs/specs.md#alerts): :func:`install` the dispatcher as a risk-gate alert
hook, turn gate and supervisor events into one-line alerts, report a failed background job, and send a test
message."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import sqlite3
import threading
from pathlib import Path

from vibe_quant.alerts.config import load_settings
from vibe_quant.alerts.dispatcher import AlertDispatcher
from vibe_quant.alerts.store import insert_alert, iso, message, utc_now
from vibe_quant.alerts.summary import daily_summary
from vibe_quant.alerts.telegram import AlertError
from vibe_quant.errors import UserError, VibeQuantError
from vibe_quant.home import Home
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)
JOB_TIMEOUT_S = 5.0
MIN_INTERVAL_S = 60.0

_lock = threading.Lock()
_installed: dict = {}  # {"dispatcher": AlertDispatcher, "hook": callable}


def _num(x) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else str(x)


def event_alert(event: dict) -> tuple[str, str, dict] | None:
    """``(kind, text, fields)`` for a risk-gate or supervisor event, or None for one that is not alerted.

    ``CIRCUIT_BREAKER`` at strategy level (a trip or a resume) is ``strategy_halt``, at portfolio level
    ``portfolio_halt``; ``STRATEGY_HALTED`` is ``strategy_halt``; ``KILL_SWITCH`` is ``kill_switch``;
    ``RISK_CHECK`` (an entry refused by a portfolio limit) is ``circuit_breaker``; ``STRATEGY_ERROR``
    and anything else is ``error``; ``FILL`` is ``trade``.
    """
    kind_of = event.get("type")
    fields = {k: v for k, v in event.items() if k not in ("traceback",)}
    if kind_of == "CIRCUIT_BREAKER":
        level, scope, action = event.get("level"), event.get("scope"), event.get("action", "")
        kind = "portfolio_halt" if level == "portfolio" else "strategy_halt"
        if event.get("breaker"):
            text = (f"{level} breaker {event['breaker']} tripped for {scope}: {_num(event.get('value'))} >= "
                    f"{_num(event.get('limit'))}; {action}")  # fmt: skip
            if event.get("permanent"):
                text += " (until an operator resumes)"
        else:
            text = f"{level} {scope} {action}"
        return kind, text, fields
    if kind_of == "STRATEGY_HALTED":
        return "strategy_halt", f"strategy {event.get('strategy')} halted: {event.get('reason')}", fields
    if kind_of == "KILL_SWITCH":
        return (
            "kill_switch",
            f"kill switch: every order cancelled, every position closed ({event.get('reason')})",
            fields,
        )
    if kind_of == "RISK_CHECK":
        return "circuit_breaker", (f"{event.get('strategy')} {event.get('instrument')}: entry refused by "
                                   f"{event.get('check')} ({event.get('message')})"), fields  # fmt: skip
    if kind_of == "FILL":
        return "trade", " ".join(f"{k}={_num(v)}" for k, v in event.items() if k not in ("type", "ts")), fields
    if kind_of == "STRATEGY_ERROR":
        return "error", f"strategy {event.get('strategy')} failed: {event.get('error')}", fields
    return "error", f"{kind_of}: " + ", ".join(f"{k}={_num(v)}" for k, v in fields.items() if k != "type"), fields


def dispatcher_for(home: Home, **kwargs) -> AlertDispatcher:
    """A dispatcher for `home` configured from the environment and its settings (see ``alerts.config``).

    Raises
    ------
    ConfigError
        A bad token file or stored alert setting.
    """
    settings = load_settings(home.db_path)
    if not settings.configured:
        log.info("telegram alerts not configured (%s): alerts are stored only", settings.missing())
    return AlertDispatcher(home, settings.client(), trades=settings.trades,
                           daily_summary_utc=settings.daily_summary_utc,
                           summary=lambda: daily_summary(home), **kwargs)  # fmt: skip


def install(home: Home, **kwargs) -> AlertDispatcher:
    """Start the dispatcher of `home` and register it with the risk gate's alert hooks; return it.

    Idempotent: a second call for the same home returns the installed dispatcher (one hook); a call
    for another home uninstalls the first. The dispatcher drains its queue at interpreter exit.
    Keyword arguments go to :class:`AlertDispatcher`.

    Raises
    ------
    ConfigError
        A bad token file or stored alert setting.
    """
    from vibe_quant.risk.gate import register_alert_hook

    with _lock:
        current = _installed.get("dispatcher")
        if current is not None and current.db_path == home.db_path:
            return current
    if current is not None:
        uninstall()
    dispatcher = dispatcher_for(home, **kwargs)

    def hook(event: dict, _d: AlertDispatcher = dispatcher) -> None:
        alert = event_alert(event)
        if alert is not None:
            kind, text, fields = alert
            _d.notify(kind, text, **fields)

    with _lock:
        register_alert_hook(hook)
        _installed.update(dispatcher=dispatcher, hook=hook)
    return dispatcher


def installed() -> AlertDispatcher | None:
    """The installed dispatcher, or None."""
    return _installed.get("dispatcher")


def uninstall(timeout: float = 10.0) -> None:
    """Remove the hook :func:`install` registered and close its dispatcher (drained for at most `timeout` s)."""
    with _lock:
        dispatcher, hook = _installed.pop("dispatcher", None), _installed.pop("hook", None)
    if hook is not None:  # the gate is imported already (install did); importing it at exit would fail
        from vibe_quant.risk.gate import unregister_alert_hook

        unregister_alert_hook(hook)
    if dispatcher is not None:
        dispatcher.close(timeout)


atexit.register(uninstall)


def deliver(db_path: str | Path, kind: str, text: str, fields: dict, timeout_s: float = 10.0,
            max_retries: int = 3, min_interval_s: float | None = None) -> dict:  # fmt: skip
    """Store an alert and send it now, in this thread (a job ending, ``vq alerts test``); return the stored row.

    With `min_interval_s`, an alert of `kind` sent less than that long ago (by any process) holds this
    one back; otherwise the ones held since the last message of `kind` are summarised in this one.

    Raises
    ------
    ConfigError
        A bad token file or stored alert setting.
    """
    settings = load_settings(db_path)
    client = settings.client(timeout_s=timeout_s, max_retries=max_retries, backoff_s=min(0.5, timeout_s / 4))
    created = utc_now()
    with StateManager(db_path) as state:
        if client is None:
            row_id = insert_alert(state, created, kind, text, fields, "unconfigured", error=settings.missing())
            return state.get("alerts", row_id)
        # Check and claim in one transaction: two jobs failing at once must not both send.
        with state.transaction():
            last = state.conn.execute("SELECT id, created_at FROM alerts WHERE kind = ? AND status = 'sent' "
                                      "ORDER BY id DESC LIMIT 1", (kind,)).fetchone()  # fmt: skip
            if min_interval_s is not None and last is not None:
                age = (created - dt.datetime.fromisoformat(last["created_at"])).total_seconds()
                if age < min_interval_s:
                    return state.get("alerts", insert_alert(state, created, kind, text, fields, "held"))
            held = state.conn.execute("SELECT created_at, text FROM alerts WHERE kind = ? AND status = 'held' "
                                      "AND id > ? ORDER BY id", (kind, last["id"] if last else 0)).fetchall()  # fmt: skip
            body = message(kind, text, [(dt.datetime.fromisoformat(r["created_at"]), r["text"]) for r in held])
            row_id = insert_alert(state, created, kind, body, fields, "sent")  # the claim; updated below
        try:
            sent = client.send(body)
        except AlertError as exc:
            state.update("alerts", row_id, {"status": "failed", "attempts": exc.attempts, "error": str(exc)})
        else:
            state.update("alerts", row_id, {"attempts": sent["attempts"], "sent_at": iso(utc_now())})
        return state.get("alerts", row_id)


def job_failed(db_path: str | Path, job_id: int, command, message_text: str | None) -> dict | None:
    """Store and send a ``job_failed`` alert for background job `job_id`; never raises (the job is ending).

    Sends synchronously with a 5 s timeout and one retry; at most one message a minute across jobs
    (the others are held and summarised in the next). Returns the stored row, or None if even storing failed.
    """
    words = " ".join(command) if isinstance(command, list | tuple) else str(command or "")
    text = f"job {job_id} failed: vq {words}: {message_text or 'no message'}"
    try:
        return deliver(db_path, "job_failed", text, {"job_id": job_id, "command": words, "error": message_text},
                       timeout_s=JOB_TIMEOUT_S, max_retries=1, min_interval_s=MIN_INTERVAL_S)  # fmt: skip
    except (VibeQuantError, sqlite3.Error, OSError, ValueError) as exc:
        log.error("job %s: the job_failed alert was not stored or sent: %s", job_id, exc)
        return None


def send_test(home: Home) -> dict:
    """Send a test message to the configured chat now; return the stored row.

    Raises
    ------
    UserError
        No token or chat id (naming ``VQ_TELEGRAM_BOT_TOKEN`` / ``VQ_TELEGRAM_CHAT_ID``).
    AlertError
        Telegram refused the message or could not be reached (after the bounded retries).
    """
    home.ensure()
    settings = load_settings(home.db_path)
    if not settings.configured:
        raise UserError(f"telegram alerts are not configured: {settings.missing()}")
    row = deliver(home.db_path, "test", f"test message from {home.root} (vq alerts test)", {})
    if row["status"] != "sent":
        raise AlertError(row["error"] or "not sent", row["attempts"])
    return row
