"""A real Telegram Bot API stand-in on 127.0.0.1: ``POST /bot<token>/sendMessage`` answered from a script
(success, 429 with ``retry_after``, 5xx, a reply slower than the client's timeout), recording every request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN = "123456789:AAFakeTokenForTestsOnly_xyzXYZ0123456789"
CHAT = "424242"


class FakeTelegram:
    """Answers from `script` in order, then success; ``requests`` holds ``(monotonic time, path, json body)``."""

    def __init__(self) -> None:
        self.script: list[tuple] = []
        self.requests: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def messages(self, token: str = TOKEN) -> list[str]:
        """Texts of the requests that were answered with success, for the right token."""
        with self.lock:
            return [body["text"] for _, path, body in self.requests if path == f"/bot{token}/sendMessage:ok"]

    def wait_messages(self, n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {n} messages; got {self.messages()}")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                with fake.lock:
                    step = fake.script.pop(0) if fake.script else ("ok",)
                    outcome = "ok" if step[0] == "ok" and self.path == f"/bot{TOKEN}/sendMessage" else step[0]
                    fake.requests.append((time.monotonic(), f"{self.path}:{outcome}", body))
                if self.path != f"/bot{TOKEN}/sendMessage":
                    return self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                if step[0] == "sleep":
                    time.sleep(step[1])
                    return self._reply(200, {"ok": True, "result": {"message_id": 0}})
                if step[0] == "429":
                    return self._reply(429, {"ok": False, "error_code": 429,
                                             "description": f"Too Many Requests: retry after {step[1]}",
                                             "parameters": {"retry_after": step[1]}})  # fmt: skip
                if step[0] in ("500", "502", "400"):
                    code = int(step[0])
                    return self._reply(code, {"ok": False, "error_code": code, "description": f"error {code}"})
                with fake.lock:
                    n = len(fake.requests)
                return self._reply(200, {"ok": True, "result": {"message_id": n, "chat": {"id": int(CHAT)},
                                                                "text": body.get("text")}})  # fmt: skip

            def _reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

        return Handler


@pytest.fixture
def telegram_env(telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> FakeTelegram:
    """The environment pointing vibe-quant's alerts at the fake server."""
    monkeypatch.setenv("VQ_TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("VQ_TELEGRAM_CHAT_ID", CHAT)
    monkeypatch.setenv("VQ_TELEGRAM_API_URL", telegram.url)
    monkeypatch.delenv("VQ_TELEGRAM_TOKEN_FILE", raising=False)
    return telegram


@pytest.fixture(autouse=True)
def _no_alert_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Telegram configuration leaks in from the machine; no installed dispatcher leaks out of a test."""
    for name in ("VQ_TELEGRAM_BOT_TOKEN", "VQ_TELEGRAM_TOKEN_FILE", "VQ_TELEGRAM_CHAT_ID", "VQ_TELEGRAM_API_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
    from vibe_quant.alerts import uninstall

    uninstall(timeout=5)
