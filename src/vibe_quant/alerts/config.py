"""Where alerts go: the bot token from the environment only, the chat id and the alert options from the
environment or the settings table (docs/specs.md#alerts).

=================================  ==========================================================
``VQ_TELEGRAM_BOT_TOKEN``          the bot token (never stored, logged or shown)
``VQ_TELEGRAM_TOKEN_FILE``         or a file holding it, readable by its owner only (chmod 600)
``VQ_TELEGRAM_CHAT_ID``            the chat; else the setting ``alerts.telegram.chat_id``
``VQ_TELEGRAM_API_URL``            the Bot API server (default https://api.telegram.org)
``alerts.trades``                  setting: also alert on every fill (default false)
``alerts.daily_summary_utc``       setting: ``"HH:MM"`` UTC time of the daily summary (default: none)
=================================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path

from vibe_quant.alerts.telegram import DEFAULT_API_URL, TelegramClient
from vibe_quant.errors import ConfigError
from vibe_quant.state import StateManager
from vibe_quant.state.settings import delete_setting, get_setting, set_setting

TOKEN_ENV = "VQ_TELEGRAM_BOT_TOKEN"  # noqa: S105 (a variable name, not a secret)
TOKEN_FILE_ENV = "VQ_TELEGRAM_TOKEN_FILE"  # noqa: S105 (a variable name)
CHAT_ENV = "VQ_TELEGRAM_CHAT_ID"
API_URL_ENV = "VQ_TELEGRAM_API_URL"
CHAT_SETTING = "alerts.telegram.chat_id"
TRADES_SETTING = "alerts.trades"
SUMMARY_SETTING = "alerts.daily_summary_utc"
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,63})$")


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """The alert configuration of one home, resolved; the token is kept out of its repr.

    Parameters
    ----------
    chat_id : str or None
        Where messages go (None: not configured).
    chat_from : str
        ``"env"`` (``VQ_TELEGRAM_CHAT_ID``), ``"settings"`` or ``"none"``.
    api_url : str
        The Bot API server.
    trades : bool
        Whether fills are alerted.
    daily_summary_utc : str or None
        ``"HH:MM"``, or None for no daily summary.
    token : str or None
        The bot token (never printed: ``repr`` leaves it out).
    token_from : str
        ``"env"``, ``"file"`` or ``"none"``.
    """

    chat_id: str | None
    chat_from: str
    api_url: str
    trades: bool
    daily_summary_utc: str | None
    token: str | None = dataclasses.field(default=None, repr=False)
    token_from: str = "none"  # noqa: S105 (where it came from)

    @property
    def configured(self) -> bool:
        """Both a token and a chat id: messages can be sent."""
        return bool(self.token) and bool(self.chat_id)

    def missing(self) -> str:
        """What is missing before messages can be sent, and how to give it ("" when nothing is)."""
        parts = []
        if not self.token:
            parts.append(f"no bot token: set {TOKEN_ENV} (or {TOKEN_FILE_ENV} naming a chmod-600 file)")
        if not self.chat_id:
            parts.append(f"no chat id: set {CHAT_ENV} or the chat id on the dashboard's Settings page "
                         f"(setting {CHAT_SETTING})")  # fmt: skip
        return "; ".join(parts)

    def client(self, timeout_s: float = 10.0, max_retries: int = 3, **kwargs) -> TelegramClient | None:
        """A client for this configuration, or None when it is not :attr:`configured`."""
        if not self.configured:
            return None
        return TelegramClient(self.token, self.chat_id, base_url=self.api_url, timeout_s=timeout_s,
                              max_retries=max_retries, **kwargs)  # fmt: skip


def read_token(env: dict | None = None) -> tuple[str | None, str]:
    """The bot token and where it came from (``"env"``, ``"file"`` or ``"none"``).

    Raises
    ------
    ConfigError
        ``VQ_TELEGRAM_TOKEN_FILE`` names a missing or empty file, or one its group or others can read.
    """
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip()
    if token:
        return token, "env"
    name = (env.get(TOKEN_FILE_ENV) or "").strip()
    if not name:
        return None, "none"
    path = Path(name).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{TOKEN_FILE_ENV}={path}: cannot read it ({exc.strerror}). Fix: point it at the file "
                          "holding the bot token") from None  # fmt: skip
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{TOKEN_FILE_ENV}={path}: group or others can read it (mode {stat.S_IMODE(mode):o}); "
                          f"refused. Fix: chmod 600 {path}")  # fmt: skip
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    token = lines[0].split("=", 1)[1].strip() if lines and lines[0].startswith(f"{TOKEN_ENV}=") else (lines or [""])[0]
    if not token:
        raise ConfigError(f"{TOKEN_FILE_ENV}={path}: the file is empty. Fix: write the bot token in it")
    return token, "file"


def check_chat_id(value) -> str:
    """`value` as a chat id (a number, negative for groups, or ``@channelname``).

    Raises
    ------
    ConfigError
        Anything else.
    """
    text = str(value).strip()
    if not CHAT.match(text):
        raise ConfigError(f"chat id {text!r}: use the numeric chat id (e.g. 123456789, or -100... for a group) "
                          "or @channelname")  # fmt: skip
    return text


def check_summary_time(value) -> str:
    """`value` as a daily-summary time ``"HH:MM"`` (UTC).

    Raises
    ------
    ConfigError
        Not a 24-hour ``HH:MM`` time.
    """
    text = str(value).strip()
    if not HHMM.match(text):
        raise ConfigError(f"{SUMMARY_SETTING} {text!r}: use a 24-hour UTC time HH:MM, e.g. 07:30")
    return text


def load_settings(db_path: str | Path | None, env: dict | None = None) -> AlertSettings:
    """The alert configuration: environment first, then the settings table of `db_path` (if it exists).

    Raises
    ------
    ConfigError
        A bad token file (see :func:`read_token`), or a stored setting that is not valid.
    """
    env = os.environ if env is None else env
    stored: dict = {}
    if db_path is not None and Path(db_path).exists():
        with StateManager(db_path) as state:
            stored = {k: get_setting(state, k) for k in (CHAT_SETTING, TRADES_SETTING, SUMMARY_SETTING)}
    token, token_from = read_token(env)
    chat, chat_from = (env.get(CHAT_ENV) or "").strip(), "env"
    if not chat:
        chat, chat_from = stored.get(CHAT_SETTING), "settings"
    if chat:
        chat = check_chat_id(chat)
    else:
        chat, chat_from = None, "none"
    summary = stored.get(SUMMARY_SETTING)
    return AlertSettings(
        chat_id=chat, chat_from=chat_from, api_url=(env.get(API_URL_ENV) or "").strip() or DEFAULT_API_URL,
        trades=bool(stored.get(TRADES_SETTING) or False),
        daily_summary_utc=check_summary_time(summary) if summary else None, token=token, token_from=token_from,
    )  # fmt: skip


def save_settings(state: StateManager, chat_id: str | None, trades: bool, daily_summary_utc: str | None) -> None:
    """Store the dashboard's alert settings (an empty chat id or time removes the setting).

    Raises
    ------
    ConfigError
        A chat id or time that is not valid (nothing is stored then).
    """
    chat = check_chat_id(chat_id) if chat_id and str(chat_id).strip() else None
    summary = check_summary_time(daily_summary_utc) if daily_summary_utc and str(daily_summary_utc).strip() else None
    with state.transaction():
        for key, value in ((CHAT_SETTING, chat), (SUMMARY_SETTING, summary)):
            if value is None:
                delete_setting(state, key)
            else:
                set_setting(state, key, value)
        set_setting(state, TRADES_SETTING, bool(trades))
