"""The alert dispatcher: a bounded queue and one daemon worker between the trading loop and Telegram
(docs/specs.md#alerts).

``notify`` only appends to the queue (dropping the oldest alert, counted, when it is full), so a
slow or dead Telegram never blocks nor stops trading. The worker stores every alert, sends at most
one message per kind per ``min_interval_s`` (what comes sooner is stored ``held`` and summarised in
the next message of its kind, or in a message of its own once the interval has passed), and sends
the daily summary at the configured UTC time.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vibe_quant.alerts.store import KINDS, held_summary, insert_alert, message, utc_now
from vibe_quant.alerts.telegram import AlertError, TelegramClient
from vibe_quant.home import Home
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)
DAY = dt.timedelta(days=1)


@dataclasses.dataclass
class _Pending:
    kind: str
    text: str
    fields: dict
    created: dt.datetime
    t: float  # the rate limit's clock when it was raised


@dataclasses.dataclass
class _KindState:
    last_sent: float | None = None
    held: list[tuple[dt.datetime, str]] = dataclasses.field(default_factory=list)


class AlertDispatcher:
    """Store and send alerts from a worker thread; ``notify`` never blocks and never raises for Telegram.

    Parameters
    ----------
    home_or_db_path : Home, str or Path
        The data home, or the state database file itself.
    client : TelegramClient or None
        Where messages go; None stores every alert as ``unconfigured``.
    min_interval_s : float, default 60
        At most one message per kind per this many seconds of `clock`.
    clock : callable, default time.monotonic
        Seconds, for the rate limit.
    now : callable, default datetime.now(UTC)
        The UTC wall time, for timestamps and the daily summary.
    queue_size : int, default 1000
        Alerts waiting for the worker; beyond this the oldest is dropped and counted.
    trades : bool, default False
        Whether ``trade`` alerts are kept (otherwise ignored).
    daily_summary_utc : str, optional
        ``"HH:MM"``: send ``summary()`` once a day at this UTC time (default: never).
    summary : callable, optional
        ``summary() -> str``, the daily summary's text (required with `daily_summary_utc`).
    tick_s : float, default 0.5
        How often the idle worker checks held alerts and the summary time.

    Raises
    ------
    ValueError
        A negative interval, a queue size below 1, or `daily_summary_utc` without `summary`.
    """

    def __init__(self, home_or_db_path: Home | str | Path, client: TelegramClient | None, min_interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], dt.datetime] = utc_now,
                 queue_size: int = 1000, trades: bool = False, daily_summary_utc: str | None = None,
                 summary: Callable[[], str] | None = None, tick_s: float = 0.5):  # fmt: skip
        if min_interval_s < 0 or queue_size < 1 or tick_s <= 0:
            raise ValueError(f"AlertDispatcher: min_interval_s={min_interval_s} (>= 0), queue_size={queue_size} "
                             f"(>= 1), tick_s={tick_s} (> 0)")  # fmt: skip
        if daily_summary_utc and summary is None:
            raise ValueError("AlertDispatcher: daily_summary_utc needs a summary() function")
        self.db_path = home_or_db_path.db_path if isinstance(home_or_db_path, Home) else Path(home_or_db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.client = client
        self.min_interval_s = float(min_interval_s)
        self.clock, self.now = clock, now
        self.trades = trades
        self.daily_summary_utc = daily_summary_utc
        self.summary = summary
        self.tick_s = tick_s
        self.dropped = 0
        self.handled = 0
        self._reported_dropped = 0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._kinds: dict[str, _KindState] = collections.defaultdict(_KindState)
        self._next_summary = _next_time(now(), daily_summary_utc) if daily_summary_utc else None
        self._thread = threading.Thread(target=self._run, name="vq-alerts", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AlertDispatcher(db_path={str(self.db_path)!r}, client={self.client!r})"

    # -- the caller's side ---------------------------------------------------------------------------

    def notify(self, kind: str, text: str, **fields) -> None:
        """Queue an alert of `kind` (one of :data:`~vibe_quant.alerts.store.KINDS`); return at once.

        Raises
        ------
        ValueError
            An unknown kind (a programming error, not a Telegram problem).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; kinds: {', '.join(KINDS)}")
        if kind == "trade" and not self.trades:
            return
        item = _Pending(kind, str(text), fields, self.now(), self.clock())
        with self._cond:
            if self._closing:
                log.warning("alert after the dispatcher closed, not sent: %s: %s", kind, text)
                return
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(item)
            self._cond.notify()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty and the worker idle (tests and shutdown); return whether it is."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is queued (for at most `timeout` seconds), then stop the worker; return whether it drained.

        Alerts held back by the rate limit stay stored as ``held``; they are not sent on close.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("alert worker still sending after %.3g s; %d alerts not sent", timeout, len(self._queue))
            return False
        return True

    # -- the worker ------------------------------------------------------------------------------------

    def _run(self) -> None:
        with StateManager(self.db_path) as state:
            while True:
                with self._cond:
                    if not self._queue and not self._closing:
                        self._cond.wait(self.tick_s)
                    items = list(self._queue)
                    self._queue.clear()
                    closing = self._closing
                    self._busy = bool(items)
                for item in items:
                    self._guarded(self._handle, state, item)
                if not closing:
                    self._guarded(self._flush_held, state)
                    self._guarded(self._daily, state)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
                    if closing and not self._queue:
                        return

    def _guarded(self, step, *args) -> None:
        try:
            step(*args)
        except Exception:  # the worker must outlive any one alert (a locked database, a bug in a summary)
            log.exception("alert worker: %s failed", getattr(step, "__name__", step))

    def _handle(self, state: StateManager, item: _Pending) -> None:
        self.handled += 1
        if self.client is None:
            insert_alert(state, item.created, item.kind, item.text, item.fields, "unconfigured")
            return
        ks = self._kinds[item.kind]
        t = item.t
        if ks.last_sent is not None and t - ks.last_sent < self.min_interval_s:
            insert_alert(state, item.created, item.kind, item.text, item.fields, "held")
            ks.held.append((item.created, item.text))
            return
        dropped = self.dropped - self._reported_dropped
        self._reported_dropped += dropped
        text = message(item.kind, item.text, ks.held, dropped)
        fields = {**item.fields, "held": len(ks.held)} if ks.held else item.fields
        ks.held, ks.last_sent = [], t
        self._send(state, item.kind, text, fields, item.created)

    def _send(self, state: StateManager, kind: str, text: str, fields: dict, created: dt.datetime) -> None:
        try:
            sent = self.client.send(text)
        except AlertError as exc:
            log.error("alert %s not delivered: %s", kind, exc)
            insert_alert(state, created, kind, text, fields, "failed", attempts=exc.attempts, error=str(exc))
        else:
            insert_alert(state, created, kind, text, fields, "sent", attempts=sent["attempts"], sent_at=self.now())

    def _flush_held(self, state: StateManager) -> None:
        if self.client is None:
            return
        t = self.clock()
        for kind, ks in self._kinds.items():
            if ks.held and ks.last_sent is not None and t - ks.last_sent >= self.min_interval_s:
                held, ks.held, ks.last_sent = ks.held, [], t
                self._send(state, kind, held_summary(kind, held), {"held": len(held)}, self.now())

    def _daily(self, state: StateManager) -> None:
        if self._next_summary is None:
            return
        now = self.now()
        if now < self._next_summary:
            return
        while self._next_summary <= now:
            self._next_summary += DAY
        self._handle(state, _Pending("daily_summary", self.summary(), {}, now, self.clock()))


def _next_time(now: dt.datetime, hhmm: str) -> dt.datetime:
    """The first `hhmm` UTC strictly after `now`."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    at = now.astimezone(dt.UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + DAY
