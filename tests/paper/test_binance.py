"""Binance testnet/live node: keys, configuration, a build that connects nowhere, and no secret in any output."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from nautilus_trader.adapters.binance import BinanceAccountType
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.futures.data import BinanceFuturesDataClient
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesMarginType
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient
from nautilus_trader.model.identifiers import ClientId, InstrumentId

from vibe_quant.errors import ConfigError, DataFileError, UserError
from vibe_quant.paper.binance import (
    KEY_VARIABLES,
    RECONCILIATION_LOOKBACK_MINS,
    Credentials,
    build_node,
    check_config,
    load_credentials,
    node_config,
)
from vibe_quant.paper.loops import run_async

KEY = "vqKEYa1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuVwXyZ0123456789abcdefKEYZ"
SECRET = "vqSECRETz9y8x7w6v5u4t3s2r1q0PoNmLkJiHgFeDcBa9876543210SECRETX"
ALL_KEY_VARS = [name for pairs in KEY_VARIABLES.values() for pair in pairs for name in pair]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ALL_KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def creds() -> Credentials:
    return Credentials(KEY, SECRET, "testnet", "test")


def keys_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "binance.env"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


# --- credentials --------------------------------------------------------------------------------


def test_testnet_keys_come_from_our_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BINANCE_TESTNET_API_KEY", KEY)
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", SECRET)
    got = load_credentials("testnet")
    assert (got.api_key(), got.api_secret(), got.mode) == (KEY, SECRET, "testnet")
    assert "BINANCE_TESTNET_API_KEY" in got.source


def test_nautilus_futures_testnet_names_win_over_ours(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BINANCE_TESTNET_API_KEY", "spot-testnet-key-0000000")
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", "spot-testnet-secret-0000")
    clean_env.setenv("BINANCE_FUTURES_TESTNET_API_KEY", KEY)
    clean_env.setenv("BINANCE_FUTURES_TESTNET_API_SECRET", SECRET)
    got = load_credentials("testnet")
    assert (got.api_key(), got.api_secret()) == (KEY, SECRET)
    assert "BINANCE_FUTURES_TESTNET_API_KEY" in got.source


def test_live_reads_binance_api_key_and_never_testnet_keys(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BINANCE_TESTNET_API_KEY", "t" * 20)
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", "t" * 20)
    with pytest.raises(UserError, match="BINANCE_API_KEY and BINANCE_API_SECRET"):
        load_credentials("live")
    clean_env.setenv("BINANCE_API_KEY", KEY)
    clean_env.setenv("BINANCE_API_SECRET", SECRET)
    got = load_credentials("live")
    assert (got.api_key(), got.api_secret(), got.mode) == (KEY, SECRET, "live")


@pytest.mark.parametrize(
    ("mode", "names"),
    [
        ("testnet", ["BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET", "testnet.binancefuture.com"]),
        ("live", ["BINANCE_API_KEY", "BINANCE_API_SECRET"]),
    ],
)
def test_missing_keys_name_the_variables_and_the_fix(
    clean_env: pytest.MonkeyPatch, mode: str, names: list[str]
) -> None:
    with pytest.raises(UserError) as info:
        load_credentials(mode)
    message = str(info.value)
    for name in [*names, "export", "--keys-file", "chmod 600"]:
        assert name in message


def test_empty_value_counts_as_missing_and_half_a_pair_is_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BINANCE_API_KEY", KEY)
    clean_env.setenv("BINANCE_API_SECRET", "  ")
    with pytest.raises(UserError, match=r"BINANCE_API_KEY is set .* but BINANCE_API_SECRET is empty or missing"):
        load_credentials("live")


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'tesnet' is not one of testnet, live\. Did you mean 'testnet'"):
        load_credentials("tesnet")


def test_keys_file_is_read_and_the_environment_ignored(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("BINANCE_API_KEY", "from-environment-0000000")
    clean_env.setenv("BINANCE_API_SECRET", "from-environment-0000000")
    path = keys_file(tmp_path, f"# my keys\n\nexport BINANCE_API_KEY={KEY}\nBINANCE_API_SECRET = '{SECRET}'\n")
    got = load_credentials("live", path)
    assert (got.api_key(), got.api_secret()) == (KEY, SECRET)
    assert str(path) in got.source


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_keys_file_readable_by_others_is_refused_with_chmod_600(tmp_path: Path, mode: int) -> None:
    path = keys_file(tmp_path, f"BINANCE_API_KEY={KEY}\nBINANCE_API_SECRET={SECRET}\n", mode)
    with pytest.raises(UserError, match=rf"can be read by other users \(mode {mode:03o}\). Fix: chmod 600 "):
        load_credentials("live", path)


def test_keys_file_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--keys-file .*nope\.env: No such file"):
        load_credentials("live", tmp_path / "nope.env")
    path = keys_file(tmp_path, f"BINANCE_API_KEY={KEY}\n{SECRET}\n")
    with pytest.raises(DataFileError, match=r"binance.env, line 2: expected NAME=VALUE") as info:
        load_credentials("live", path)
    assert SECRET not in str(info.value)


def test_credentials_show_only_the_masked_key(creds: Credentials) -> None:
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", str([creds]), str(creds.redacted())):
        assert KEY not in text
        assert SECRET not in text
        assert "vqKE…KEYZ" in text
    assert Credentials("short-key", SECRET, "live", "x").masked_key == "***"


def test_credentials_refuse_every_serialisation(creds: Credentials) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(creds)
    with pytest.raises(TypeError):
        json.dumps(creds)
    with pytest.raises(TypeError):
        msgspec.json.encode(creds)
    assert not hasattr(creds, "__dict__")  # vars() cannot reach the values


# --- node configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_node_config_sets_venue_leverage_and_reconciliation(mode: str) -> None:
    creds = Credentials(KEY, SECRET, mode, "test")
    config = node_config(["FILUSDT-PERP", "btcusdt"], {"FILUSDT": 5, "BTCUSDT-PERP.BINANCE": 3}, mode, creds)
    data, execution = config.data_clients["BINANCE"], config.exec_clients["BINANCE"]
    ids = {InstrumentId.from_str("FILUSDT-PERP.BINANCE"), InstrumentId.from_str("BTCUSDT-PERP.BINANCE")}
    for client in (data, execution):
        assert client.testnet is (mode == "testnet")
        assert client.account_type == BinanceAccountType.USDT_FUTURES
        assert client.instrument_provider.load_all is False
        assert client.instrument_provider.load_ids == frozenset(ids)
        assert client.api_key is None
        assert client.api_secret is None
        assert client.credentials is creds
    assert execution.futures_leverages == {BinanceSymbol("FILUSDT"): 5, BinanceSymbol("BTCUSDT"): 3}
    assert all(type(k) is BinanceSymbol for k in execution.futures_leverages)
    assert set(execution.futures_margin_types.values()) == {BinanceFuturesMarginType.ISOLATED}
    assert execution.use_reduce_only is True
    engine = config.exec_engine
    assert engine.reconciliation is True
    assert engine.reconciliation_lookback_mins == RECONCILIATION_LOOKBACK_MINS
    assert set(engine.reconciliation_instrument_ids) == ids
    assert config.cache is None
    assert str(config.trader_id) == "VIBEQUANT-001"


def test_redis_cache_and_log_directory(creds: Credentials, tmp_path: Path) -> None:
    config = node_config(
        ["FILUSDT"],
        {"FILUSDT": 2},
        "testnet",
        creds,
        trader_id="PAPER-007",
        cache_redis=("10.1.2.3", 6380),
        log_directory=tmp_path,
    )
    assert (config.cache.database.type, config.cache.database.host, config.cache.database.port) == (
        "redis",
        "10.1.2.3",
        6380,
    )
    assert (config.logging.log_directory, config.logging.log_level_file) == (str(tmp_path), "INFO")
    summary = check_config(config)
    assert (summary["cache"], summary["trader_id"], summary["log_directory"]) == (
        "redis://10.1.2.3:6380",
        "PAPER-007",
        str(tmp_path),
    )
    with pytest.raises(ConfigError, match=r"port in 1\.\.65535"):
        node_config(["FILUSDT"], {"FILUSDT": 2}, "testnet", creds, cache_redis=("localhost", 0))
    with pytest.raises(ConfigError, match="trader_id 'paper' must look like NAME-TAG"):
        node_config(["FILUSDT"], {"FILUSDT": 2}, "testnet", creds, trader_id="paper")


def test_unknown_symbol_says_did_you_mean(creds: Credentials) -> None:
    with pytest.raises(ConfigError, match=r"unknown symbol 'FILUSDX-PERP': .* Did you mean 'FILUSDT'\?"):
        node_config(["FILUSDX-PERP"], {"FILUSDX": 2}, "testnet", creds)


@pytest.mark.parametrize(("leverages", "pattern"), [
    ({"FILUSDT": 51}, r"leverage 51 for FILUSDT is outside 1..50 .*Fix: use a whole number from 1 to 50"),
    ({"FILUSDT": 0}, r"leverage 0 for FILUSDT is outside 1..50"),
    ({"FILUSDT": True}, r"leverage True for FILUSDT"),
    ({"FILUSDT": 2.5}, r"leverage 2.5 for FILUSDT"),
    ({}, r"no leverage for FILUSDT"),
    ({"FILUSDT": 2, "NEARUSDT": 2}, r"leverage given for NEARUSDT, which is not traded"),
])  # fmt: skip
def test_bad_leverage_is_refused(creds: Credentials, leverages: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        node_config(["FILUSDT"], leverages, "testnet", creds)


def test_btc_allows_its_own_higher_max_leverage(creds: Credentials) -> None:
    config = node_config(["BTCUSDT"], {"BTCUSDT": 125}, "testnet", creds)
    assert config.exec_clients["BINANCE"].futures_leverages == {"BTCUSDT": 125}
    with pytest.raises(ConfigError, match=r"outside 1\.\.125"):
        node_config(["BTCUSDT"], {"BTCUSDT": 126}, "testnet", creds)


def test_keys_of_the_other_mode_and_no_symbols_are_refused(creds: Credentials) -> None:
    with pytest.raises(ConfigError, match="the keys are for testnet, the node for live"):
        node_config(["FILUSDT"], {"FILUSDT": 2}, "live", creds)
    with pytest.raises(ConfigError, match="no symbols to trade"):
        node_config([], {}, "testnet", creds)


@pytest.mark.parametrize(("mode", "http", "ws"), [
    ("testnet", "https://testnet.binancefuture.com", "wss://stream.binancefuture.com"),
    ("live", "https://fapi.binance.com", "wss://fstream.binance.com"),
])  # fmt: skip
def test_check_config_summarises_endpoints_without_secrets(mode: str, http: str, ws: str) -> None:
    config = node_config(["FILUSDT"], {"FILUSDT": 4}, mode, Credentials(KEY, SECRET, mode, "env X"))
    summary = check_config(config)
    assert summary["mode"] == mode
    assert summary["venue"] == "BINANCE"
    assert summary["endpoints"] == {"http": http, "ws_data": ws, "ws_exec": ws}
    assert summary["account_type"] == "USDT_FUTURES"
    assert summary["credentials"] == {"source": "env X", "api_key": "vqKE…KEYZ"}
    assert summary["instruments"] == ["FILUSDT-PERP.BINANCE"]
    assert summary["leverages"] == {"FILUSDT": 4}
    assert summary["margin_types"] == {"FILUSDT": "ISOLATED"}
    assert summary["reduce_only"] is True
    assert summary["reconciliation"]["on_start"] is True
    assert summary["cache"] == "memory"
    text = json.dumps(summary)
    assert KEY not in text
    assert SECRET not in text


def test_config_repr_and_json_hold_no_secret(creds: Credentials) -> None:
    config = node_config(["FILUSDT"], {"FILUSDT": 4}, "testnet", creds)
    for text in (repr(config), str(config), config.json().decode(), json.dumps(config.json_primitives()), config.id):
        assert KEY not in text
        assert SECRET not in text
    assert "vqKE…KEYZ" in config.json().decode("utf-8")


# --- building the node --------------------------------------------------------------------------


def test_build_node_needs_a_running_event_loop(creds: Credentials) -> None:
    config = node_config(["FILUSDT"], {"FILUSDT": 4}, "testnet", creds)
    # in a thread of its own: the test session may run a loop in the main thread (Playwright's sync API)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        pytest.raises(RuntimeError, match=r"inside a running event loop \(asyncio.run\)"),
    ):
        pool.submit(build_node, config).result()


def test_build_node_refuses_a_redis_that_does_not_answer(creds: Credentials) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    config = node_config(["FILUSDT"], {"FILUSDT": 4}, "testnet", creds, cache_redis=("127.0.0.1", port))

    async def build() -> None:
        build_node(config)

    with pytest.raises(UserError, match=rf"no Redis answers at 127.0.0.1:{port} .*Fix: start Redis"):
        run_async(build)


def socket_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def test_build_node_registers_the_binance_clients_and_connects_nowhere(
    creds: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both clients point at a local listener: any connection during the build would land there.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(TimeoutError):
            accepted.append(listener.accept())

    config = node_config(["FILUSDT"], {"FILUSDT": 4}, "testnet", creds)
    local = {"base_url_http": f"http://127.0.0.1:{port}", "base_url_ws": f"ws://127.0.0.1:{port}"}
    config = msgspec.structs.replace(
        config,
        data_clients={"BINANCE": msgspec.structs.replace(config.data_clients["BINANCE"], **local)},
        exec_clients={"BINANCE": msgspec.structs.replace(config.exec_clients["BINANCE"], **local)},
    )
    assert check_config(config)["endpoints"]["http"] == f"http://127.0.0.1:{port}"
    attempts: list[object] = []

    def no_connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"connection attempted to {address}")

    async def build():
        before = socket_fds()
        monkeypatch.setattr(socket.socket, "connect", no_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
        node = build_node(config)
        await asyncio.sleep(0.2)  # let anything scheduled on the loop run
        monkeypatch.undo()
        return node, before, socket_fds()

    thread = threading.Thread(target=accept)
    thread.start()
    node, before, after = run_async(build)
    thread.join()
    listener.close()
    assert attempts == []
    assert accepted == []
    assert after == before  # no socket (Python's or NautilusTrader's Rust) was left open
    data = node.kernel.data_engine.registered_clients
    assert data == [ClientId("BINANCE")]
    assert node.kernel.exec_engine.registered_clients == [ClientId("BINANCE")]
    data_client = node.kernel.data_engine._clients[ClientId("BINANCE")]
    exec_client = node.kernel.exec_engine._clients[ClientId("BINANCE")]
    assert isinstance(data_client, BinanceFuturesDataClient)
    assert isinstance(exec_client, BinanceFuturesExecutionClient)
    assert not data_client.is_connected
    assert not exec_client.is_connected
    assert exec_client._use_reduce_only is True
    assert exec_client._leverages == {"FILUSDT": 4}
    # the factories handed the keys over at build, and only there
    assert exec_client._http_client.api_key == KEY


# --- no secret anywhere -------------------------------------------------------------------------

SECRETS_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
import msgspec
from nautilus_trader.common.component import flush_logger
from vibe_quant.paper.binance import build_node, check_config, load_credentials, node_config

logs = Path(sys.argv[1])
creds = load_credentials("testnet")
print(creds, repr(creds), creds.redacted())
config = node_config(["FILUSDT", "NEARUSDT"], {"FILUSDT": 3, "NEARUSDT": 2}, "testnet", creds, log_directory=logs)
config = msgspec.structs.replace(config, logging=msgspec.structs.replace(config.logging, log_level="DEBUG", log_level_file="DEBUG"))
print(json.dumps(check_config(config), ensure_ascii=False))
print(repr(config), str(config), config.json().decode(), config.id)
for client in (*config.data_clients.values(), *config.exec_clients.values()):
    print(repr(client), client.json().decode(), client.dict())

async def main():
    node = build_node(config)
    print(node.kernel.data_engine.registered_clients, node.kernel.exec_engine.registered_clients)
    print(repr(node.kernel.exec_engine._clients))
    await asyncio.sleep(0.2)
    print("BUILT")
    return node

node = asyncio.run(main())
node.dispose()
flush_logger()
"""


def test_no_output_of_a_start_holds_the_key_or_the_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ALL_KEY_VARS}
    env |= {"BINANCE_FUTURES_TESTNET_API_KEY": KEY, "BINANCE_FUTURES_TESTNET_API_SECRET": SECRET}
    logs = tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, "-c", SECRETS_SCRIPT, str(logs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log_files = list(logs.glob("*.log"))
    assert len(log_files) == 1
    log_text = log_files[0].read_text(encoding="utf-8")
    # the outputs are the real ones: the summary, the reprs, NautilusTrader's build log
    assert "BUILT" in done.stdout
    assert "vqKE…KEYZ" in done.stdout
    assert "Registered ExecutionClient-BINANCE" in log_text
    assert "[DEBUG]" in log_text
    for name, text in (("stdout", done.stdout), ("stderr", done.stderr), ("log", log_text)):
        for value in (KEY, SECRET):
            for start in range(0, len(value) - 12, 6):  # no 12-character piece either
                assert value[start : start + 12] not in text, f"{name} holds part of {value[:6]}..."
