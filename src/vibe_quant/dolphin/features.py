"""The DOLPHIN feature store: named maps of string keys to string values (docs/specs.md#dolphin-feature-store).

The specification's services share their state through a sharded key-value grid. Here it is a small
protocol, :class:`FeatureStore` (``put``/``get``/``delete``/``keys`` on a named map, ``listen`` to one
key, ``ping``, ``close``), with two backends:

* :class:`InProcessFeatureStore`: a dict of dicts behind a lock, for one process (tests, backtests,
  a paper session without services); listeners run synchronously inside ``put``/``delete``.
* :class:`RedisFeatureStore`: one Redis hash per map; every write also publishes the key on the
  map's channel ``dolphin:<map>``, and a listener is a subscriber thread that reads the new value.

:class:`DolphinStore` puts the DOLPHIN layout on either: per-asset features routed to one of
``SHARD_COUNT`` shard maps by :func:`shard_of`, the posture, the ACB boost, the per-date results of
each direction and the services' heartbeats, as JSON. :class:`PendingUpdate` is the pending-flag
pattern: a listener (on the backend's thread) only stores the latest value; the strategy's own
thread takes it at its next bar. A listener never calls the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

from vibe_quant.dolphin.engine_config import POSTURES
from vibe_quant.errors import ConfigError, UserError, did_you_mean

SHARD_COUNT = 10
SHARD_MAP_PREFIX = "DOLPHIN_FEATURES_SHARD_"
SAFETY_MAP, POSTURE_KEY = "DOLPHIN_SAFETY", "latest"
FEATURES_MAP, ACB_KEY = "DOLPHIN_FEATURES", "acb_boost"
MC_KEY, EQUITY_KEY = "mc_status", "equity"  # the MC assessor's record; the running strategy's equity and peak
PNL_MAPS = {-1: "DOLPHIN_PNL_BLUE", 1: "DOLPHIN_PNL_GREEN"}  # -1 SHORT ("blue"), +1 LONG ("green")
HEARTBEAT_MAP = "DOLPHIN_HEARTBEAT"
RESULT_FIELDS = ("date", "pnl", "capital", "boost", "beta", "mc_status", "trades")
CHANNEL_PREFIX = "dolphin:"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

log = logging.getLogger(__name__)
T = TypeVar("T")


def shard_of(symbol: str) -> int:
    """Return the shard of `symbol`: the sum of its characters' code points modulo ``SHARD_COUNT``."""
    return sum(ord(c) for c in symbol) % SHARD_COUNT


def shard_map(symbol: str) -> str:
    """Return the name of the map holding `symbol`'s features (``DOLPHIN_FEATURES_SHARD_07`` for BTCUSDT)."""
    return f"{SHARD_MAP_PREFIX}{shard_of(symbol):02d}"


def feature_key(symbol: str, feature: str) -> str:
    """Return the key of one feature of one asset inside its shard map (``vel_div_BTCUSDT``)."""
    return f"{feature}_{symbol}"


class Subscription(Protocol):
    def close(self) -> None: ...


class FeatureStore(Protocol):
    """Named maps of string keys to string values; what the DOLPHIN services share.

    ``listen(map, key, callback)`` calls ``callback(value)`` after each change of that key, with the
    value then stored (None once deleted), until the returned subscription is closed. Which thread
    calls it is the backend's (see each backend); a callback only hands the value over (see
    :class:`PendingUpdate`).
    """

    def put(self, map_name: str, key: str, value: str) -> None: ...

    def get(self, map_name: str, key: str) -> str | None: ...

    def delete(self, map_name: str, key: str) -> None: ...

    def keys(self, map_name: str) -> list[str]: ...

    def listen(self, map_name: str, key: str, callback: Callable[[str | None], None]) -> Subscription: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class PendingUpdate(Generic[T]):
    """The latest value a listener saw, until the strategy's thread takes it (the pending-flag pattern).

    The listener calls :meth:`set` (and nothing else: it never calls the engine, whose state only the
    strategy's thread touches); the strategy calls :meth:`take` at its next bar and applies the value
    itself. Values set twice before a take: the later one wins.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None

    def set(self, value: T) -> None:
        """Store `value` as the pending one (replacing any not taken yet)."""
        with self._lock:
            self._value = value

    def take(self) -> T | None:
        """Return the pending value and clear it; None when nothing arrived since the last take."""
        with self._lock:
            value, self._value = self._value, None
        return value


# -- in process ------------------------------------------------------------------------------------


class _Listener:
    def __init__(self, store: InProcessFeatureStore, map_name: str, key: str, callback: Callable[[str | None], None]):
        self.store, self.map_name, self.key, self.callback = store, map_name, key, callback

    def close(self) -> None:
        self.store._remove(self)


class InProcessFeatureStore:
    """A :class:`FeatureStore` in this process: a dict of dicts behind one lock.

    Listeners are called synchronously by ``put``/``delete``, on the writer's thread, after the lock
    is released (so a callback may read the store); an exception in a callback reaches the writer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: dict[str, dict[str, str]] = {}
        self._listeners: list[_Listener] = []

    def __repr__(self) -> str:
        return "InProcessFeatureStore()"

    def put(self, map_name: str, key: str, value: str) -> None:
        with self._lock:
            self._maps.setdefault(map_name, {})[key] = value
        self._notify(map_name, key, value)

    def get(self, map_name: str, key: str) -> str | None:
        with self._lock:
            return self._maps.get(map_name, {}).get(key)

    def delete(self, map_name: str, key: str) -> None:
        with self._lock:
            self._maps.get(map_name, {}).pop(key, None)
        self._notify(map_name, key, None)

    def keys(self, map_name: str) -> list[str]:
        with self._lock:
            return sorted(self._maps.get(map_name, {}))

    def listen(self, map_name: str, key: str, callback: Callable[[str | None], None]) -> Subscription:
        listener = _Listener(self, map_name, key, callback)
        with self._lock:
            self._listeners.append(listener)
        return listener

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._listeners.clear()

    def _remove(self, listener: _Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self, map_name: str, key: str, value: str | None) -> None:
        with self._lock:
            due = [li for li in self._listeners if li.map_name == map_name and li.key == key]
        for listener in due:
            listener.callback(value)


# -- Redis -----------------------------------------------------------------------------------------

_NETLOC = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)(.*)$", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """Return `url` with the password (in the user part or a ``password=`` query option) as ``***``."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    match = _NETLOC.match(url)
    if not match or "@" not in match.group(2):
        return url
    scheme, netloc, rest = match.groups()
    userinfo, host = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0] + ":***" if ":" in userinfo else "***"
    return f"{scheme}{user}@{host}{rest}"


def _secrets(url: str) -> list[str]:
    match = _NETLOC.match(url)
    found = []
    if match and "@" in match.group(2):
        userinfo = match.group(2).rsplit("@", 1)[0]
        found.append(userinfo.split(":", 1)[1] if ":" in userinfo else userinfo)
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(url)]
    return sorted({s for raw in found if raw for s in (raw, unquote(raw))}, key=len, reverse=True)


class _RedisSubscription:
    """One key's listener on Redis: a pub/sub connection read by a daemon thread (see :meth:`close`)."""

    def __init__(self) -> None:
        self.thread: Any = None
        self.error: BaseException | None = None  # what stopped the thread (a lost server, a failing callback)

    def close(self) -> None:
        """Stop the subscriber thread and close its connection (waits for the thread, about 0.1 s)."""
        if self.thread is not None:
            self.thread.stop(timeout=5.0)


class RedisFeatureStore:
    """A :class:`FeatureStore` on a Redis server: one hash per map, a channel per map for listeners.

    ``put`` and ``delete`` run ``HSET``/``HDEL`` and ``PUBLISH dolphin:<map> <key>`` in one
    ``MULTI``/``EXEC`` transaction (a single write is atomic). ``listen`` returns once the server has
    confirmed the subscription (a write after it is always seen); its callback runs on the
    subscription's own daemon thread, with the value read when the message arrives (two quick writes
    may both report the later value). An error on that thread (the server lost, the callback raising)
    stops it and is kept in the subscription's ``error``.

    Parameters
    ----------
    url : str, default "redis://127.0.0.1:6379/0"
        The server, ``redis://[[user]:password@]host:port/db``. The password is never printed.
    timeout_s : float, default 2.0
        Seconds to connect and to wait for a reply (and for a subscription's confirmation).

    Raises
    ------
    UserError
        A URL redis-py cannot parse. Nothing connects here: an unreachable server is reported by
        the first call (``ping`` returns False).
    """

    def __init__(self, url: str = DEFAULT_REDIS_URL, timeout_s: float = 2.0):
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.url, self.timeout_s = url, timeout_s
        self._redis = redis
        self._subscriptions: list[_RedisSubscription] = []
        try:
            self._client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout_s,
                                                socket_connect_timeout=timeout_s,
                                                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1))  # fmt: skip
        except ValueError as exc:
            raise UserError(f"feature store URL {redact_url(url)!r}: {self._scrub(str(exc))}; "
                            f"write it as {DEFAULT_REDIS_URL}") from exc  # fmt: skip

    def __repr__(self) -> str:
        return f"RedisFeatureStore({redact_url(self.url)!r})"

    def put(self, map_name: str, key: str, value: str) -> None:
        self._write(map_name, key, value)

    def get(self, map_name: str, key: str) -> str | None:
        return self._call(self._client.hget, map_name, key)

    def delete(self, map_name: str, key: str) -> None:
        self._write(map_name, key, None)

    def keys(self, map_name: str) -> list[str]:
        return sorted(self._call(self._client.hkeys, map_name))

    def listen(self, map_name: str, key: str, callback: Callable[[str | None], None]) -> Subscription:
        """Call `callback` from a subscriber thread after each change of `key` in `map_name`.

        Raises
        ------
        UserError
            The server cannot be reached, or did not confirm the subscription within ``timeout_s``.
        """
        sub = _RedisSubscription()

        def on_message(message: dict) -> None:
            if message.get("data") == key:
                callback(self.get(map_name, key))

        def on_error(exc: BaseException, pubsub: Any, thread: Any) -> None:
            sub.error = exc
            log.warning("feature store listener on %s/%s stopped: %s", map_name, key, self._scrub(str(exc)))
            thread.stop()

        pubsub = self._client.pubsub()
        try:
            self._call(pubsub.subscribe, **{CHANNEL_PREFIX + map_name: on_message})
            deadline = time.monotonic() + self.timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UserError(f"the feature store at {redact_url(self.url)} did not confirm a subscription "
                                    f"to {CHANNEL_PREFIX}{map_name} within {self.timeout_s:g} s; check the server")  # fmt: skip
                message = self._call(pubsub.get_message, timeout=remaining)
                if message is not None and message.get("type") == "subscribe":
                    break
        except UserError:
            pubsub.close()
            raise
        sub.thread = pubsub.run_in_thread(sleep_time=0.1, daemon=True, exception_handler=on_error)
        self._subscriptions.append(sub)
        return sub

    def ping(self) -> bool:
        """Return True when the server answers, False when it cannot be reached (never raises)."""
        try:
            return bool(self._client.ping())
        except self._redis.RedisError:
            return False

    def close(self) -> None:
        """Stop every subscription's thread, then close the connections."""
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()
        self._client.close()

    def _write(self, map_name: str, key: str, value: str | None) -> None:
        def run() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                if value is None:
                    pipe.hdel(map_name, key)
                else:
                    pipe.hset(map_name, key, value)
                pipe.publish(CHANNEL_PREFIX + map_name, key)
                pipe.execute()

        self._call(run)

    def _scrub(self, text: str) -> str:
        text = text.replace(self.url, redact_url(self.url))
        for secret in _secrets(self.url):
            text = text.replace(secret, "***")
        return text

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        errors = self._redis.exceptions
        where = redact_url(self.url)
        try:
            return fn(*args, **kwargs)
        except errors.AuthenticationError as exc:
            raise UserError(f"the feature store at {where} refused the credentials ({self._scrub(str(exc))}); "
                            "fix the user or password in the URL") from exc  # fmt: skip
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            port = self._client.connection_pool.connection_kwargs.get("port", 6379)
            raise UserError(f"cannot reach the feature store at {where} ({self._scrub(str(exc))}); start a server "
                            f"with `redis-server --port {port} --bind 127.0.0.1`, or pass another URL") from exc  # fmt: skip
        except errors.ResponseError as exc:
            raise UserError(f"the feature store at {where} refused a command ({self._scrub(str(exc))}); "
                            "another program may use these keys: give DOLPHIN its own database "
                            "(the number after the port in the URL)") from exc  # fmt: skip


def open_store(url: str | None) -> FeatureStore:
    """Return the feature store `url` names: None for one in this process, ``redis://...`` for Redis.

    Raises
    ------
    UserError
        Any other value (naming it and the two choices), or a malformed Redis URL.
    """
    if url is None:
        return InProcessFeatureStore()
    if url.startswith("redis://"):
        return RedisFeatureStore(url)
    raise UserError(f"feature store {redact_url(url)!r}: give no URL for the in-process store, "
                    f"or a Redis URL such as {DEFAULT_REDIS_URL}")  # fmt: skip


# -- the DOLPHIN layout ----------------------------------------------------------------------------


def _direction_map(direction: int) -> str:
    if direction not in PNL_MAPS:
        raise ConfigError(f"direction {direction!r}: use -1 (SHORT, blue) or 1 (LONG, green)")
    return PNL_MAPS[direction]


def _date_key(date: dt.date | str) -> str:
    try:
        return (date if isinstance(date, dt.date) else dt.date.fromisoformat(date)).isoformat()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"date {date!r}: write it as YYYY-MM-DD") from exc


class DolphinStore:
    """The DOLPHIN maps on a :class:`FeatureStore`: features by shard, posture, ACB, results, heartbeats.

    Values are JSON (features: the float's ``repr``). Readers return None for a key never written.

    Parameters
    ----------
    store : FeatureStore
        The backend (:func:`open_store`); closed by :meth:`close`.
    """

    def __init__(self, store: FeatureStore):
        self.store = store

    def __enter__(self) -> DolphinStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # -- per-asset features

    def put_feature(self, symbol: str, feature: str, value: float) -> None:
        """Store one feature of one asset in the asset's shard map."""
        self.store.put(shard_map(symbol), feature_key(symbol, feature), repr(float(value)))

    def get_feature(self, symbol: str, feature: str) -> float | None:
        """Return one feature of one asset, or None.

        Raises
        ------
        UserError
            The stored value is not a number (naming the map and key).
        """
        map_name, key = shard_map(symbol), feature_key(symbol, feature)
        raw = self.store.get(map_name, key)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError as exc:
            raise UserError(f"feature store {map_name}/{key} holds {raw[:80]!r}, not a number; "
                            "rewrite it with put_feature") from exc  # fmt: skip

    def delete_feature(self, symbol: str, feature: str) -> None:
        self.store.delete(shard_map(symbol), feature_key(symbol, feature))

    # -- posture, ACB

    def write_posture(self, posture: Mapping[str, Any]) -> None:
        """Store the survival stack's latest posture, a JSON object with a ``posture`` field.

        Raises
        ------
        ConfigError
            No ``posture`` field, a posture not in APEX/STALKER/TURTLE/HIBERNATE, or a value JSON cannot hold.
        """
        if posture.get("posture") not in POSTURES:
            raise ConfigError(f"posture {posture.get('posture')!r}: choose one of {', '.join(POSTURES)}")
        self.store.put(SAFETY_MAP, POSTURE_KEY, _dumps(posture, "posture"))

    def read_posture(self) -> dict | None:
        return self._read_json(SAFETY_MAP, POSTURE_KEY)

    def write_acb(self, boost: float, beta: float) -> None:
        """Store the current ACB boost and beta (``{"boost": ..., "beta": ...}``)."""
        self.store.put(FEATURES_MAP, ACB_KEY, _dumps({"boost": float(boost), "beta": float(beta)}, "ACB"))

    def read_acb(self) -> tuple[float, float] | None:
        """Return the current ``(boost, beta)``, or None."""
        value = self._read_fields(FEATURES_MAP, ACB_KEY, boost=float, beta=float)
        return None if value is None else (value["boost"], value["beta"])

    # -- per-date results

    def write_result(self, direction: int, date: dt.date | str, result: Mapping[str, Any]) -> None:
        """Store one date's result of one direction (-1 in DOLPHIN_PNL_BLUE, +1 in DOLPHIN_PNL_GREEN).

        `result` holds ``pnl, capital, boost, beta, mc_status, trades`` (and ``date``, which must
        then be `date`).

        Raises
        ------
        ConfigError
            Another direction, a date not YYYY-MM-DD, a missing or unknown field (with a did-you-mean),
            or a ``date`` field that is not `date`.
        """
        map_name, key = _direction_map(direction), _date_key(date)
        unknown = [f for f in result if f not in RESULT_FIELDS]
        if unknown:
            raise ConfigError(f"result field {unknown[0]!r} is not one of {', '.join(RESULT_FIELDS)}."
                              f"{did_you_mean(unknown[0], RESULT_FIELDS)}")  # fmt: skip
        missing = [f for f in RESULT_FIELDS[1:] if f not in result]
        if missing:
            raise ConfigError(f"result for {key} lacks {', '.join(missing)}")
        if "date" in result and _date_key(result["date"]) != key:
            raise ConfigError(f"result date {result['date']!r} is not the date it is stored under ({key})")
        self.store.put(map_name, key, _dumps({**result, "date": key}, "result"))

    def read_result(self, direction: int, date: dt.date | str) -> dict | None:
        return self._read_json(_direction_map(direction), _date_key(date))

    # -- the running strategy's closed trades (``DOLPHIN_TRADES_BLUE``/``GREEN``, key ``YYYY-MM-DD:trade_id``)

    def write_trade(self, direction: int, date: dt.date | str, trade_id: int, trade: Mapping[str, Any]) -> None:
        """Store one closed trade (an engine ledger row) under its exit date."""
        map_name = _direction_map(direction).replace("_PNL_", "_TRADES_")
        self.store.put(map_name, f"{_date_key(date)}:{int(trade_id):06d}", _dumps(dict(trade), "trade"))

    def read_trades(self, direction: int, date: dt.date | str) -> list[dict]:
        """The closed trades of one direction whose exit date is `date`, in trade order."""
        map_name, day = _direction_map(direction).replace("_PNL_", "_TRADES_"), _date_key(date)
        keys = sorted(k for k in self.store.keys(map_name) if k.startswith(f"{day}:"))
        return [self._read_json(map_name, k) for k in keys]

    # -- heartbeats

    def beat(self, service: str, now_ns: int | None = None) -> None:
        """Record that `service` is alive (``{"ts_ns", "pid"}``; `now_ns` defaults to the clock)."""
        ts_ns = time.time_ns() if now_ns is None else int(now_ns)
        self.store.put(HEARTBEAT_MAP, service, _dumps({"ts_ns": ts_ns, "pid": os.getpid()}, "heartbeat"))

    def heartbeat_age_s(self, service: str, now_ns: int) -> float | None:
        """Return the seconds from `service`'s last beat to `now_ns`, or None if it never beat."""
        value = self._read_fields(HEARTBEAT_MAP, service, ts_ns=int)
        return None if value is None else (now_ns - value["ts_ns"]) / 1e9

    # -- the services' other records: the MC status and the strategy's equity

    def write_mc(self, record: Mapping[str, Any]) -> None:
        """The MC assessor's record ``{"date", "status", "catastrophic_probability", "envelope_score", "ts_ns"}``."""
        self.store.put(FEATURES_MAP, MC_KEY, _dumps(dict(record), "MC status"))

    def read_mc(self) -> dict | None:
        return self._read_json(FEATURES_MAP, MC_KEY)

    def write_equity(self, equity: float, peak: float) -> None:
        """The running strategy's equity and its peak (the watchdog's drawdown)."""
        self.store.put(FEATURES_MAP, EQUITY_KEY, _dumps({"equity": float(equity), "peak": float(peak)}, "equity"))

    def read_equity(self) -> dict | None:
        return self._read_fields(FEATURES_MAP, EQUITY_KEY, equity=float, peak=float)

    def _read_json(self, map_name: str, key: str) -> Any:
        raw = self.store.get(map_name, key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UserError(f"feature store {map_name}/{key} holds {raw[:80]!r}, not JSON ({exc}); "
                            "another program may write these keys: give DOLPHIN its own store") from exc  # fmt: skip

    def _read_fields(self, map_name: str, key: str, **fields: Callable[[Any], Any]) -> dict | None:
        value = self._read_json(map_name, key)
        if value is None:
            return None
        try:
            return {name: convert(value[name]) for name, convert in fields.items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"feature store {map_name}/{key} holds {json.dumps(value)[:80]!r}, without a numeric "
                            f"{', '.join(fields)}; rewrite it with the matching write method") from exc  # fmt: skip


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} {value!r}: not storable as JSON ({exc}); use numbers, strings, lists and objects") from exc  # fmt: skip
