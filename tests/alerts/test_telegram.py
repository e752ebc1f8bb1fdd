"""The Telegram client against a real HTTP server on 127.0.0.1: success, 429 with retry_after honoured,
5xx and timeouts retried with a bound, other 4xx never retried, and the token in no log line, error or repr."""

from __future__ import annotations

import logging
import time

import pytest

from tests.alerts.conftest import CHAT, TOKEN
from vibe_quant.alerts import AlertError, TelegramClient


def client(telegram, **kwargs) -> TelegramClient:
    kwargs.setdefault("backoff_s", 0.05)
    return TelegramClient(TOKEN, CHAT, base_url=telegram.url, **kwargs)


def test_a_message_is_posted_with_the_chat_and_text(telegram) -> None:
    sent = client(telegram).send("hello from the tests")
    assert sent["attempts"] == 1
    assert sent["result"]["text"] == "hello from the tests"
    ((_, path, body),) = telegram.requests
    assert path == f"/bot{TOKEN}/sendMessage:ok"
    assert body == {"chat_id": CHAT, "text": "hello from the tests", "disable_web_page_preview": True}


def test_a_429_waits_retry_after_and_counts_as_a_retry(telegram) -> None:
    telegram.script = [("429", 1)]
    t0 = time.monotonic()
    sent = client(telegram).send("after the flood")
    assert time.monotonic() - t0 >= 1.0
    assert sent["attempts"] == 2
    first, second = telegram.requests
    assert second[0] - first[0] >= 1.0


def test_retry_after_is_capped(telegram) -> None:
    waits: list[float] = []
    telegram.script = [("429", 3600)]
    sent = client(telegram, max_retry_after_s=0.2, sleep=waits.append).send("capped")
    assert (sent["attempts"], waits) == (2, [0.2])


def test_5xx_is_retried_with_growing_backoff(telegram) -> None:
    waits: list[float] = []
    telegram.script = [("502",), ("500",)]
    sent = client(telegram, sleep=waits.append).send("eventually")
    assert sent["attempts"] == 3
    assert waits == [0.05, 0.1]


def test_a_timeout_is_retried(telegram) -> None:
    telegram.script = [("sleep", 1.5)]
    t0 = time.monotonic()
    sent = client(telegram, timeout_s=0.3).send("slow server")
    assert sent["attempts"] == 2
    assert time.monotonic() - t0 < 1.5  # did not wait for the slow reply
    assert len(telegram.requests) == 2


def test_permanent_5xx_stops_after_the_bounded_retries(telegram) -> None:
    telegram.script = [("500",)] * 10
    with pytest.raises(AlertError, match=r"failed after 3 attempts .*HTTP 500: error 500") as info:
        client(telegram, max_retries=2).send("never")
    assert (info.value.attempts, info.value.status) == (3, 500)
    assert len(telegram.requests) == 3


def test_a_4xx_is_not_retried(telegram) -> None:
    telegram.script = [("400",)]
    with pytest.raises(AlertError, match=r"refused the message \(HTTP 400: error 400\).*not retried") as info:
        client(telegram).send("bad")
    assert info.value.attempts == 1
    assert len(telegram.requests) == 1


def test_an_unreachable_server_fails_without_the_token(telegram) -> None:
    telegram.server.shutdown()
    telegram.server.server_close()
    with pytest.raises(AlertError, match="failed after 2 attempts") as info:
        client(telegram, max_retries=1).send("nobody there")
    assert TOKEN not in str(info.value)
    assert "<token>" in str(info.value)


def test_the_token_is_in_no_log_line_error_or_repr(telegram, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records, httpx and httpcore included
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    telegram.script = [("500",), ("429", 0), ("sleep", 0.6)]
    c = client(telegram, timeout_s=0.3, max_retries=2)
    with pytest.raises(AlertError) as info:
        c.send("logged")
    c.send("ok now")
    lines = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request: POST" in line for line in lines)  # httpx did log the requests ...
    assert any("<token>" in line for line in lines)  # ... with the token redacted
    assert not [line for line in lines if TOKEN in line]
    assert TOKEN not in caplog.text
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert TOKEN not in repr(c)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"token": " "}, "bot token is empty"), ({"chat_id": ""}, "chat id is empty"),
     ({"max_retries": -1}, "max_retries=-1")],
)  # fmt: skip
def test_bad_arguments_are_named(kwargs, message) -> None:
    args = {"token": TOKEN, "chat_id": CHAT, **kwargs}
    with pytest.raises(ValueError, match=message):
        TelegramClient(**args)
