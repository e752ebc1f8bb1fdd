"""A Telegram Bot API client (``sendMessage``) over httpx, with bounded retries and a token that never
leaves it (docs/specs.md#alerts).

The Bot API puts the token in the request path (``/bot<token>/sendMessage``), so every URL is a
secret: httpx logs request URLs at INFO, and its exceptions quote them. The client therefore adds a
redacting filter to httpx's and httpcore's loggers, never logs or raises a URL itself, and re-raises
httpx errors as :class:`AlertError` with the token replaced by ``<token>``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import httpx

from vibe_quant.errors import VenueError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 8.0
REDACTED = "<token>"
# httpx logs each request (INFO, with the URL); httpcore traces connections and requests (DEBUG).
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class AlertError(VenueError):
    """Telegram could not be reached, or refused the message; the message never contains the token.

    Parameters
    ----------
    message : str
        What failed, already redacted.
    attempts : int
        How many requests were made.
    status : int, optional
        The last HTTP status, if a response came back.
    """

    def __init__(self, message: str, attempts: int, status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class _Redactor(logging.Filter):
    """Replace every registered token in a log record's rendered message."""

    def __init__(self) -> None:
        super().__init__("vibe_quant.alerts.redact")
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to logging's own error path
            return True
        if any(s in text for s in secrets):
            for s in secrets:
                text = text.replace(s, REDACTED)
            record.msg, record.args = text, None
        return True


_REDACTOR = _Redactor()
_INSTALLED_ON: set[str] = set()


def redact(text: str, token: str) -> str:
    """`text` with `token` replaced by ``<token>`` (also an empty token leaves `text` as it is)."""
    return text.replace(token, REDACTED) if token else text


def _protect(token: str) -> None:
    _REDACTOR.add(token)
    for name in HTTP_LOGGERS:
        if name not in _INSTALLED_ON:
            logging.getLogger(name).addFilter(_REDACTOR)
            _INSTALLED_ON.add(name)


class TelegramClient:
    """Send messages to one chat through the Telegram Bot API.

    Parameters
    ----------
    token : str
        The bot token (from @BotFather). Kept out of every log line, exception and repr.
    chat_id : str or int
        The chat (a user, group or ``@channel``) messages go to.
    base_url : str, default "https://api.telegram.org"
        The Bot API server (a self-hosted one, or a test server on 127.0.0.1).
    timeout_s : float, default 10
        Timeout of one request (connect, read, write).
    max_retries : int, default 3
        Requests after the first: a 429 (after its ``retry_after``), a 5xx, a timeout or a transport
        error is retried, so at most ``1 + max_retries`` requests are made. Other 4xx are never retried.
    max_retry_after_s : float, default 60
        The longest wait a 429's ``retry_after`` gets (a longer one is waited for this long).
    backoff_s : float, default 0.5
        The first wait after a 5xx or timeout; it doubles after each, up to 8 s.
    sleep : callable, default time.sleep
        How to wait (tests pass one that records the waits).

    Raises
    ------
    ValueError
        An empty token or chat id, or a negative retry count or timeout.
    """

    def __init__(self, token: str, chat_id: str | int, base_url: str = DEFAULT_API_URL, timeout_s: float = 10.0,
                 max_retries: int = 3, max_retry_after_s: float = MAX_RETRY_AFTER_S, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep):  # fmt: skip
        if not token or not str(token).strip():
            raise ValueError("TelegramClient: the bot token is empty")
        if chat_id is None or not str(chat_id).strip():
            raise ValueError("TelegramClient: the chat id is empty")
        if max_retries < 0 or timeout_s <= 0 or max_retry_after_s < 0 or backoff_s < 0:
            raise ValueError(f"TelegramClient: max_retries={max_retries}, timeout_s={timeout_s}, "
                             f"max_retry_after_s={max_retry_after_s}, backoff_s={backoff_s}: none may be negative")  # fmt: skip
        self._token = str(token).strip()
        _protect(self._token)
        self.chat_id = str(chat_id).strip()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.max_retry_after_s = float(max_retry_after_s)
        self.backoff_s = float(backoff_s)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"TelegramClient(chat_id={self.chat_id!r}, base_url={self.base_url!r}, token=<set>)"

    @property
    def endpoint(self) -> str:
        """Where messages go, with the token redacted (for messages and logs)."""
        return f"{self.base_url}/bot{REDACTED}/sendMessage"

    def send(self, text: str, parse_mode: str | None = None, disable_web_page_preview: bool = True) -> dict:
        """Send `text` to the chat; return ``{"attempts": n, "result": <the Bot API's Message>}``.

        Parameters
        ----------
        text : str
            The message (Telegram takes up to 4096 characters; longer text is cut there).
        parse_mode : str, optional
            ``"HTML"`` or ``"MarkdownV2"``; default plain text.
        disable_web_page_preview : bool, default True
            No link previews.

        Raises
        ------
        AlertError
            A 4xx other than 429 (bad token, unknown chat: not retried), or no success after
            ``1 + max_retries`` requests; its message has the status and Telegram's description.
        """
        payload: dict = {"chat_id": self.chat_id, "text": text[:4096],
                         "disable_web_page_preview": disable_web_page_preview}  # fmt: skip
        if parse_mode:
            payload["parse_mode"] = parse_mode
        url = f"{self.base_url}/bot{self._token}/sendMessage"
        attempts, backoff, problem, status = 0, self.backoff_s, "", None
        with httpx.Client(timeout=self.timeout_s) as http:
            while attempts <= self.max_retries:
                attempts += 1
                wait, grow = backoff, True
                try:
                    response = http.post(url, json=payload)
                except httpx.TimeoutException as exc:
                    problem, status = f"timed out after {self.timeout_s:g} s ({type(exc).__name__})", None
                except httpx.TransportError as exc:
                    problem, status = f"{type(exc).__name__}: {redact(str(exc), self._token)}", None
                else:
                    status = response.status_code
                    body = _json(response)
                    if status == 200 and body.get("ok"):
                        return {"attempts": attempts, "result": body.get("result")}
                    description = redact(str(body.get("description") or response.reason_phrase), self._token)
                    problem = f"HTTP {status}: {description}"
                    if status == 429:
                        retry_after = (body.get("parameters") or {}).get("retry_after")
                        with contextlib.suppress(TypeError, ValueError):  # none usable: back off as after a 5xx
                            wait, grow = min(max(float(retry_after), 0.0), self.max_retry_after_s), False
                    elif status < 500:
                        raise AlertError(f"Telegram refused the message ({problem}) at {self.endpoint}: check "
                                         "VQ_TELEGRAM_BOT_TOKEN and the chat id; not retried", attempts, status)  # fmt: skip
                if attempts > self.max_retries:
                    break
                log.warning("telegram sendMessage attempt %d/%d failed (%s); retrying in %.3g s",
                            attempts, self.max_retries + 1, problem, wait)  # fmt: skip
                self._sleep(wait)
                if grow:
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
        raise AlertError(f"Telegram sendMessage failed after {attempts} attempts at {self.endpoint}: {problem}",
                         attempts, status)  # fmt: skip


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
