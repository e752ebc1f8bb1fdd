"""The DOLPHIN feature store on both backends, Redis being a real ``redis-server`` on 127.0.0.1
(docs/specs.md#dolphin-feature-store)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import free_port
from vibe_quant.dolphin.features import (
    ACB_KEY,
    FEATURES_MAP,
    HEARTBEAT_MAP,
    SHARD_COUNT,
    DolphinStore,
    InProcessFeatureStore,
    PendingUpdate,
    RedisFeatureStore,
    open_store,
    redact_url,
    shard_map,
    shard_of,
)
from vibe_quant.errors import ConfigError, UserError

GOLDEN_SHARDS = {"BTCUSDT": 7, "ETHUSDT": 5, "SOLUSDT": 8, "ALGOUSDT": 1, "FILUSDT": 9, "NEARUSDT": 4,
                 "AVAXUSDT": 4, "LINKUSDT": 2}  # fmt: skip
GENERATED = [f"SYM{i}USDT" for i in range(400)]
WAIT_S = 5.0


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[DolphinStore]:
    """The DOLPHIN maps on each backend (the Redis database emptied first)."""
    if request.param == "memory":
        backend = InProcessFeatureStore()
    else:
        url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(url) as raw:
            raw.flushdb()
        backend = RedisFeatureStore(url)
    with DolphinStore(backend) as dolphin:
        yield dolphin


def wait_for(predicate, timeout_s: float = WAIT_S):
    """Poll `predicate` until it returns a value that is not None (at most `timeout_s`, 500 polls)."""
    deadline = time.monotonic() + timeout_s
    for _ in range(500):
        value = predicate()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.01)
    return None


def test_golden_shards() -> None:
    assert {s: shard_of(s) for s in GOLDEN_SHARDS} == GOLDEN_SHARDS
    assert shard_map("BTCUSDT") == "DOLPHIN_FEATURES_SHARD_07"
    assert shard_map("ALGOUSDT") == "DOLPHIN_FEATURES_SHARD_01"
    for symbol in GENERATED:
        assert shard_of(symbol) == sum(map(ord, symbol)) % 10
    assert {shard_of(s) for s in GENERATED} == set(range(SHARD_COUNT))


def test_features_land_in_their_shard_map(store: DolphinStore) -> None:
    symbols = [*GOLDEN_SHARDS, *GENERATED]
    for i, symbol in enumerate(symbols):
        store.put_feature(symbol, "vel_div", -i / 1000)
    raw = store.store
    for i, symbol in enumerate(symbols):
        shard = sum(map(ord, symbol)) % 10
        assert raw.get(f"DOLPHIN_FEATURES_SHARD_{shard:02d}", f"vel_div_{symbol}") == repr(-i / 1000)
    held = {n: raw.keys(f"DOLPHIN_FEATURES_SHARD_{n:02d}") for n in range(SHARD_COUNT)}
    assert sum(map(len, held.values())) == len(symbols)
    assert "vel_div_BTCUSDT" in held[7]
    assert "vel_div_LINKUSDT" in held[2]


def test_round_trip(store: DolphinStore) -> None:
    store.put_feature("BTCUSDT", "vel_div", -0.031)
    store.put_feature("BTCUSDT", "irp_alignment", 0.52)
    assert store.get_feature("BTCUSDT", "vel_div") == -0.031
    assert store.store.keys("DOLPHIN_FEATURES_SHARD_07") == ["irp_alignment_BTCUSDT", "vel_div_BTCUSDT"]
    store.delete_feature("BTCUSDT", "vel_div")
    assert store.get_feature("BTCUSDT", "vel_div") is None
    assert store.store.keys("DOLPHIN_FEATURES_SHARD_07") == ["irp_alignment_BTCUSDT"]
    assert store.get_feature("ETHUSDT", "vel_div") is None

    assert store.read_posture() is None
    store.write_posture({"posture": "STALKER", "rm": 0.62})
    assert store.read_posture() == {"posture": "STALKER", "rm": 0.62}
    assert json.loads(store.store.get("DOLPHIN_SAFETY", "latest")) == {"posture": "STALKER", "rm": 0.62}

    assert store.read_acb() is None
    store.write_acb(1.35, 0.8)
    assert store.read_acb() == (1.35, 0.8)
    assert json.loads(store.store.get(FEATURES_MAP, ACB_KEY)) == {"boost": 1.35, "beta": 0.8}

    blue = {"pnl": 12.5, "capital": 10012.5, "boost": 1.35, "beta": 0.8, "mc_status": "OK", "trades": 2}
    green = {**blue, "pnl": -3.0, "capital": 9997.0, "trades": 1}
    store.write_result(-1, dt.date(2026, 1, 5), blue)
    store.write_result(1, "2026-01-05", {**green, "date": "2026-01-05"})
    assert store.read_result(-1, "2026-01-05") == {**blue, "date": "2026-01-05"}
    assert store.read_result(1, dt.date(2026, 1, 5)) == {**green, "date": "2026-01-05"}
    assert store.store.keys("DOLPHIN_PNL_BLUE") == store.store.keys("DOLPHIN_PNL_GREEN") == ["2026-01-05"]
    assert store.read_result(-1, "2026-01-06") is None

    assert store.heartbeat_age_s("scanner", 0) is None
    store.beat("scanner", now_ns=1_000_000_000_000)
    assert store.heartbeat_age_s("scanner", 1_002_500_000_000) == 2.5
    assert store.store.keys(HEARTBEAT_MAP) == ["scanner"]


def test_listener_hands_the_acb_to_the_strategy_thread(store: DolphinStore) -> None:
    pending: PendingUpdate[str | None] = PendingUpdate()
    calls: list[str] = []

    def on_acb(value: str | None) -> None:
        calls.append(threading.current_thread().name)
        pending.set(value)

    subscription = store.store.listen(FEATURES_MAP, ACB_KEY, on_acb)
    store.write_acb(1.35, 0.8)
    store.put_feature("BTCUSDT", "vel_div", -0.03)  # another map and key: not delivered
    taken = wait_for(pending.take)
    assert taken is not None, f"no ACB update within {WAIT_S} s"
    assert json.loads(taken) == {"boost": 1.35, "beta": 0.8}
    assert pending.take() is None
    subscription.close()
    store.write_acb(1.0, 0.0)
    time.sleep(0.2)
    assert pending.take() is None
    assert len(calls) == 1
    if isinstance(store.store, RedisFeatureStore):
        assert calls[0] != threading.current_thread().name  # the subscriber's own thread
        assert not subscription.thread.is_alive()


def test_in_process_listeners_run_synchronously_and_see_deletes() -> None:
    backend = InProcessFeatureStore()
    seen: list[str | None] = []
    subscription = backend.listen("M", "k", seen.append)
    backend.put("M", "k", "1")
    backend.put("M", "other", "2")
    backend.delete("M", "k")
    assert seen == ["1", None]
    subscription.close()
    backend.put("M", "k", "3")
    assert seen == ["1", None]


def test_redis_listener_sees_deletes_and_stops_on_a_failing_callback(redis_url: str) -> None:
    backend = RedisFeatureStore(redis_url)
    try:
        seen: list[str | None] = []
        done = threading.Event()

        def callback(value: str | None) -> None:
            seen.append(value)
            if len(seen) == 2:
                done.set()
                raise RuntimeError("callback failed")

        subscription = backend.listen("M", "k", callback)
        backend.put("M", "k", "1")
        assert wait_for(lambda: seen or None) == ["1"]
        backend.delete("M", "k")
        assert done.wait(WAIT_S)
        subscription.thread.join(WAIT_S)
        assert not subscription.thread.is_alive()
        assert isinstance(subscription.error, RuntimeError)
        assert seen == ["1", None]
    finally:
        backend.close()


def test_pending_update_keeps_the_latest_value() -> None:
    pending: PendingUpdate[int] = PendingUpdate()
    assert pending.take() is None
    writer = threading.Thread(target=lambda: [pending.set(i) for i in range(1000)])
    writer.start()
    writer.join(WAIT_S)
    assert pending.take() == 999
    assert pending.take() is None


def test_open_store() -> None:
    assert isinstance(open_store(None), InProcessFeatureStore)
    remote = open_store("redis://127.0.0.1:6379/3")
    assert isinstance(remote, RedisFeatureStore)
    remote.close()
    with pytest.raises(UserError, match=r"feature store 'memcached://x': give no URL .* redis://127\.0\.0\.1:6379/0"):
        open_store("memcached://x")


def test_unreachable_redis_names_the_url_without_its_password() -> None:
    port = free_port()
    backend = RedisFeatureStore(f"redis://:secret@127.0.0.1:{port}/0", timeout_s=1.0)
    try:
        assert backend.ping() is False
        assert "secret" not in repr(backend)
        for call in (lambda: backend.get("M", "k"), lambda: backend.put("M", "k", "v"),
                     lambda: backend.listen("M", "k", print)):  # fmt: skip
            with pytest.raises(UserError) as info:
                call()
            message = str(info.value)
            assert f"redis://:***@127.0.0.1:{port}/0" in message
            assert f"redis-server --port {port} --bind 127.0.0.1" in message
            assert "secret" not in message
    finally:
        backend.close()


def test_redact_url() -> None:
    assert redact_url("redis://:s3cr3t@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("redis://dolphin:s3cr3t@host/1") == "redis://dolphin:***@host/1"
    assert redact_url("redis://host:6379/0?password=s3cr3t&db=2") == "redis://host:6379/0?password=***&db=2"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_bad_values_are_refused() -> None:
    store = DolphinStore(InProcessFeatureStore())
    with pytest.raises(ConfigError, match=r"direction 0: use -1 \(SHORT, blue\) or 1 \(LONG, green\)"):
        store.write_result(0, "2026-01-05", {})
    with pytest.raises(ConfigError, match=r"date '05/01/2026': write it as YYYY-MM-DD"):
        store.read_result(1, "05/01/2026")
    result = {"pnl": 1.0, "capital": 1.0, "boost": 1.0, "beta": 0.0, "mc_status": "OK", "trades": 0}
    with pytest.raises(ConfigError, match=r"result field 'trade' is not one of .* Did you mean 'trades'\?"):
        store.write_result(1, "2026-01-05", {**result, "trade": 1})
    with pytest.raises(ConfigError, match=r"result for 2026-01-05 lacks mc_status"):
        store.write_result(1, "2026-01-05", {k: v for k, v in result.items() if k != "mc_status"})
    with pytest.raises(ConfigError, match=r"result date '2026-01-04' is not the date it is stored under"):
        store.write_result(1, "2026-01-05", {**result, "date": "2026-01-04"})
    with pytest.raises(ConfigError, match=r"posture 'PANIC': choose one of APEX, STALKER, TURTLE, HIBERNATE"):
        store.write_posture({"posture": "PANIC"})
    with pytest.raises(ConfigError, match=r"ACB .* not storable as JSON"):
        store.write_acb(float("nan"), 0.0)
    store.store.put("DOLPHIN_SAFETY", "latest", "{not json")
    with pytest.raises(UserError, match=r"DOLPHIN_SAFETY/latest holds '\{not json', not JSON"):
        store.read_posture()
    store.store.put(FEATURES_MAP, ACB_KEY, '{"boost": 1.2}')
    with pytest.raises(UserError, match=r"DOLPHIN_FEATURES/acb_boost holds .* without a numeric boost, beta"):
        store.read_acb()
    store.store.put("DOLPHIN_FEATURES_SHARD_07", "vel_div_BTCUSDT", "high")
    with pytest.raises(UserError, match=r"DOLPHIN_FEATURES_SHARD_07/vel_div_BTCUSDT holds 'high', not a number"):
        store.get_feature("BTCUSDT", "vel_div")
