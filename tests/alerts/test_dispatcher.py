"""The dispatcher against the real server on 127.0.0.1: one message per kind per minute with what was held
back summarised, every alert stored, a dead Telegram never raising into the caller, a bounded queue, the daily
summary at its UTC time, and the configuration (token from the environment only)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest

from tests.alerts.conftest import CHAT, TOKEN
from vibe_quant.alerts import AlertDispatcher, TelegramClient, list_alerts, load_settings, save_settings
from vibe_quant.alerts.config import read_token
from vibe_quant.errors import ConfigError
from vibe_quant.state import StateManager


class Clock:
    """A settable monotonic clock and UTC wall time, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = dt.datetime(2024, 3, 1, 12, 1, 0, tzinfo=dt.UTC)
        self.lock = threading.Lock()

    def mono(self) -> float:
        with self.lock:
            return self.t

    def now(self) -> dt.datetime:
        with self.lock:
            return self.wall

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.t += seconds
            self.wall += dt.timedelta(seconds=seconds)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "vibe_quant.db"


def statuses(db: Path) -> list[tuple[str, str]]:
    return [(a["kind"], a["status"]) for a in reversed(list_alerts(db, limit=100))]


def test_five_halts_in_a_minute_send_one_and_the_next_counts_the_rest(telegram, db) -> None:
    clock = Clock()
    client = TelegramClient(TOKEN, CHAT, base_url=telegram.url, backoff_s=0.05)
    d = AlertDispatcher(db, client, clock=clock.mono, now=clock.now, tick_s=0.02)
    for i in range(5):
        d.notify("strategy_halt", f"strategy S{i} halted", strategy=f"S{i}")
        clock.advance(5)
    d.notify("kill_switch", "kill switch: operator")  # another kind is not held back by the halts
    assert d.wait_idle(5)
    first = telegram.wait_messages(2)
    assert first == ["vibe-quant strategy halt: strategy S0 halted", "vibe-quant kill switch: kill switch: operator"]
    time.sleep(0.1)
    assert len(telegram.messages()) == 2  # the interval has not passed: nothing more
    clock.advance(40)  # 65 s after the first message
    d.notify("strategy_halt", "strategy S5 halted")
    messages = telegram.wait_messages(3)
    assert d.close(5)
    assert messages[2].startswith("vibe-quant strategy halt: ")
    assert "+4 more strategy_halt alerts since 12:01 UTC (latest 3): strategy S2 halted | strategy S3 halted | " \
           "strategy S4 halted" in messages[2]  # fmt: skip
    assert statuses(db)[:6] == [("strategy_halt", "sent")] + [("strategy_halt", "held")] * 4 + [("kill_switch", "sent")]
    assert len(telegram.messages()) == 3
    assert len(list_alerts(db, limit=100)) == 7


def test_what_is_held_is_sent_once_the_interval_passes_without_a_new_alert(telegram, db) -> None:
    clock = Clock()
    client = TelegramClient(TOKEN, CHAT, base_url=telegram.url)
    d = AlertDispatcher(db, client, clock=clock.mono, now=clock.now, tick_s=0.02)
    d.notify("portfolio_halt", "portfolio drawdown 21% >= 20%")
    d.notify("portfolio_halt", "portfolio drawdown 22% >= 20%")
    assert d.wait_idle(5)
    clock.advance(61)
    messages = telegram.wait_messages(2)
    d.close(5)
    assert messages[1] == ("vibe-quant portfolio halt: +1 more portfolio_halt alerts since 12:01 UTC: "
                           "portfolio drawdown 22% >= 20%")  # fmt: skip


def test_a_dead_telegram_stores_failed_alerts_and_never_raises(telegram, db) -> None:
    telegram.script = [("500",)] * 100
    client = TelegramClient(TOKEN, CHAT, base_url=telegram.url, max_retries=2, backoff_s=0.01)
    d = AlertDispatcher(db, client, tick_s=0.02)
    t0 = time.monotonic()
    for kind in ("error", "kill_switch"):
        d.notify(kind, f"{kind} while Telegram is down")
    assert time.monotonic() - t0 < 0.1  # notify only queues
    assert d.close(10)
    rows = list_alerts(db)
    assert [(r["kind"], r["status"], r["attempts"]) for r in rows] == [("kill_switch", "failed", 3),
                                                                        ("error", "failed", 3)]  # fmt: skip
    assert rows[0]["error"].startswith("Telegram sendMessage failed after 3 attempts")
    assert len(telegram.requests) == 6  # bounded: 3 requests per alert


def test_a_slow_telegram_never_blocks_the_caller(telegram, db) -> None:
    telegram.script = [("sleep", 1.0)]
    d = AlertDispatcher(db, TelegramClient(TOKEN, CHAT, base_url=telegram.url, timeout_s=5), tick_s=0.02)
    t0 = time.monotonic()
    for i in range(50):
        d.notify("circuit_breaker", f"refused {i}")
    assert time.monotonic() - t0 < 0.2
    assert d.close(10)
    assert [(r["status"], r["attempts"]) for r in list_alerts(db, limit=100)] == [("held", 0)] * 49 + [("sent", 1)]
    assert len(telegram.requests) == 1  # the 49 others came within the minute: held


def test_a_full_queue_drops_the_oldest_and_says_so(db) -> None:
    gate = threading.Event()

    class Blocking:
        def __init__(self) -> None:
            self.texts: list[str] = []

        def send(self, text: str) -> dict:
            gate.wait(5)
            self.texts.append(text)
            return {"attempts": 1, "result": {}}

    client = Blocking()
    d = AlertDispatcher(db, client, queue_size=3, min_interval_s=0, tick_s=0.02)
    d.notify("error", "first")  # taken by the worker, which then blocks in send
    deadline = time.monotonic() + 5
    while d.handled == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(6):
        d.notify("error", f"queued {i}")
    assert d.dropped == 3
    gate.set()
    assert d.close(5)
    assert client.texts[0] == "vibe-quant error: first"
    assert client.texts[1] == "vibe-quant error: queued 3\n(3 alerts dropped: the alert queue was full)"
    assert client.texts[2:] == ["vibe-quant error: queued 4", "vibe-quant error: queued 5"]


def test_without_a_client_alerts_are_stored_unconfigured(db) -> None:
    d = AlertDispatcher(db, None, tick_s=0.02)
    d.notify("strategy_halt", "S halted", strategy="S")
    d.notify("trade", "a fill")  # trade alerts are off by default: ignored
    assert d.close(5)
    (row,) = list_alerts(db)
    assert (row["kind"], row["status"], row["severity"], row["fields"]) == ("strategy_halt", "unconfigured",
                                                                           "warning", {"strategy": "S"})  # fmt: skip
    with pytest.raises(ValueError, match="unknown alert kind 'halt'"):
        d.notify("halt", "x")


def test_the_daily_summary_goes_once_at_its_utc_time(db) -> None:
    clock = Clock()  # 12:01 UTC
    sent: list[str] = []

    class Recorder:
        def send(self, text: str) -> dict:
            sent.append(text)
            return {"attempts": 1, "result": {}}

    calls = []
    d = AlertDispatcher(db, Recorder(), clock=clock.mono, now=clock.now, daily_summary_utc="12:30", tick_s=0.01,
                        summary=lambda: calls.append(1) or f"summary #{len(calls)}")  # fmt: skip
    time.sleep(0.1)
    assert sent == []
    clock.advance(29 * 60)  # 12:30
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # many more worker ticks at 12:30: still one summary
    assert sent == ["vibe-quant daily summary: summary #1"]
    clock.advance(24 * 3600)
    deadline = time.monotonic() + 5
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    d.close(5)
    assert sent == ["vibe-quant daily summary: summary #1", "vibe-quant daily summary: summary #2"]


def test_configuration_from_the_environment_and_the_settings(db, tmp_path) -> None:
    db.parent.mkdir()
    with StateManager(db) as state:
        save_settings(state, chat_id="-1001234", trades=True, daily_summary_utc="07:30")
        with pytest.raises(ConfigError, match="use a 24-hour UTC time HH:MM"):
            save_settings(state, chat_id="1", trades=False, daily_summary_utc="7h30")
        with pytest.raises(ConfigError, match="chat id 'me'"):
            save_settings(state, chat_id="me", trades=False, daily_summary_utc=None)
    env = {"VQ_TELEGRAM_BOT_TOKEN": TOKEN}
    s = load_settings(db, env)
    assert (s.chat_id, s.chat_from, s.trades, s.daily_summary_utc, s.token_from) == ("-1001234", "settings", True,
                                                                                     "07:30", "env")  # fmt: skip
    assert s.configured
    assert TOKEN not in repr(s)
    assert load_settings(db, {**env, "VQ_TELEGRAM_CHAT_ID": "99"}).chat_id == "99"
    bare = load_settings(db, {})
    assert not bare.configured
    assert "set VQ_TELEGRAM_BOT_TOKEN" in bare.missing()
    with StateManager(db) as state:
        stored = [r["value"] for r in state.conn.execute("SELECT value FROM settings")]
    assert not [v for v in stored if TOKEN in v]

    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"group or others can read it \(mode 644\); refused. Fix: chmod 600"):
        read_token({"VQ_TELEGRAM_TOKEN_FILE": str(path)})
    os.chmod(path, 0o600)
    assert read_token({"VQ_TELEGRAM_TOKEN_FILE": str(path)}) == (TOKEN, "file")
    with pytest.raises(ConfigError, match="cannot read it"):
        read_token({"VQ_TELEGRAM_TOKEN_FILE": str(tmp_path / "nope")})
