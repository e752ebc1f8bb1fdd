"""Alerts (docs/specs.md#alerts): Telegram messages for halts, breakers, errors, failed jobs and a daily
summary, sent from a queue and a worker thread so trading never waits for Telegram; every alert is
stored in the ``alerts`` table.

Library code only; ``vq alerts`` (``vibe_quant.cli.alerts``), the dashboard, the paper/live sessions
and the job manager call it.
"""

from vibe_quant.alerts.config import AlertSettings, load_settings, save_settings
from vibe_quant.alerts.dispatcher import AlertDispatcher
from vibe_quant.alerts.service import (
    deliver,
    event_alert,
    install,
    installed,
    job_failed,
    send_test,
    uninstall,
)
from vibe_quant.alerts.store import KINDS, list_alerts
from vibe_quant.alerts.summary import daily_summary
from vibe_quant.alerts.telegram import AlertError, TelegramClient

__all__ = [
    "KINDS", "AlertDispatcher", "AlertError", "AlertSettings", "TelegramClient", "daily_summary", "deliver",
    "event_alert", "install", "installed", "job_failed", "list_alerts", "load_settings", "save_settings",
    "send_test", "uninstall",
]  # fmt: skip
