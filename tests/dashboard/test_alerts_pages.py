"""Alerts on the dashboard: the Logs page lists the stored alerts newest first; the Settings page stores the
Telegram settings, says whether a token is configured (never its value) and sends a test message to a real
server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.alerts.conftest import CHAT, TOKEN
from vibe_quant.alerts import list_alerts
from vibe_quant.alerts.config import CHAT_SETTING, SUMMARY_SETTING, TRADES_SETTING
from vibe_quant.alerts.store import insert_alert
from vibe_quant.state import StateManager
from vibe_quant.state.settings import get_setting


@pytest.fixture(autouse=True)
def _no_alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VQ_TELEGRAM_BOT_TOKEN", "VQ_TELEGRAM_TOKEN_FILE", "VQ_TELEGRAM_CHAT_ID", "VQ_TELEGRAM_API_URL"):
        monkeypatch.delenv(name, raising=False)


def _texts(at) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "info", "success", "error", "warning") for e in getattr(at, kind)
    ]
    parts += [w.value for w in at.text_input]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(str(p) for p in parts)


def test_the_logs_page_lists_the_stored_alerts_newest_first(dash_home, page) -> None:
    t0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
    with StateManager(dash_home.db_path) as state:
        insert_alert(state, t0, "strategy_halt", "strategy S halted: error: boom", {"strategy": "S"}, "sent",
                     attempts=1, sent_at=t0)  # fmt: skip
        insert_alert(state, t0, "strategy_halt", "strategy T halted", {}, "held")
        insert_alert(state, t0, "job_failed", "job 3 failed: vq screen run", {}, "failed", attempts=4,
                     error="Telegram sendMessage failed after 4 attempts")  # fmt: skip
    at = page("logs")
    (frame,) = [d.value for d in at.dataframe if "kind" in d.value.columns and "status" in d.value.columns]
    assert list(frame["kind"]) == ["job_failed", "strategy_halt", "strategy_halt"]
    assert list(frame["status"]) == ["failed", "held", "sent"]
    assert frame["text"].iloc[2] == "strategy S halted: error: boom"
    assert frame["error"].iloc[0] == "Telegram sendMessage failed after 4 attempts"
    at.selectbox(key="alerts_kind").set_value("job_failed").run()
    (frame,) = [d.value for d in at.dataframe if "kind" in d.value.columns and "status" in d.value.columns]
    assert list(frame["kind"]) == ["job_failed"]


def test_telegram_settings_are_stored_and_the_token_is_never_shown(dash_home, page, telegram, monkeypatch) -> None:
    at = page("settings")
    assert "**Bot token configured:** no" in _texts(at)
    at.button(key="telegram_test").click().run()
    assert "test message not sent" in at.error[0].value
    assert "set VQ_TELEGRAM_BOT_TOKEN" in at.error[0].value

    at.text_input(key="telegram_chat").set_value("12345")
    at.text_input(key="telegram_summary").set_value("7h")
    next(b for b in at.button if b.label == "Save Telegram settings").click().run()
    assert "use a 24-hour UTC time HH:MM" in at.error[0].value
    at.text_input(key="telegram_summary").set_value("07:30")
    at.checkbox(key="telegram_trades").check()
    next(b for b in at.button if b.label == "Save Telegram settings").click().run()
    assert not at.exception
    with StateManager(dash_home.db_path) as state:
        stored = {k: get_setting(state, k) for k in (CHAT_SETTING, TRADES_SETTING, SUMMARY_SETTING)}
    assert stored == {CHAT_SETTING: "12345", TRADES_SETTING: True, SUMMARY_SETTING: "07:30"}

    monkeypatch.setenv("VQ_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("VQ_TELEGRAM_CHAT_ID", CHAT)
    monkeypatch.setenv("VQ_TELEGRAM_API_URL", telegram.url)
    at = page("settings")
    assert "**Bot token configured:** yes (from VQ_TELEGRAM_BOT_TOKEN)" in _texts(at)
    at.button(key="telegram_test").click().run()
    assert at.success[-1].value.startswith("test message sent (alert ")
    (message,) = telegram.messages()
    assert message.startswith("vibe-quant test: test message from ")
    assert TOKEN not in _texts(at)
    assert list_alerts(dash_home.db_path, limit=1)[0]["status"] == "sent"
