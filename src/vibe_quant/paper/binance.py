"""Binance USD-M on a ``TradingNode``: keys, the node's configuration, its build and a redacted check.

``vq paper start --feed testnet`` and ``vq live start`` run NautilusTrader's own Binance adapter
(testnet and production endpoints). This module goes as far as a built node: building opens no
connection, the clients connect when the node starts (docs/nautilus.md#binance-live-clients).

Keys never reach a log, a repr or an encoded config: they travel inside :class:`Credentials`, whose
repr masks them and which refuses to be pickled, and are handed to NautilusTrader's client
factories only when the clients are built.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

from nautilus_trader.adapters.binance import (
    BINANCE_VENUE,
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.common.urls import get_http_base_url, get_ws_base_url
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesMarginType
from nautilus_trader.cache.config import CacheConfig
from nautilus_trader.common.config import DatabaseConfig, InstrumentProviderConfig, register_config_encoding
from nautilus_trader.config import LiveExecEngineConfig, LoggingConfig, TradingNodeConfig
from nautilus_trader.live.factories import LiveDataClientFactory, LiveExecClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.identifiers import ClientId, InstrumentId, TraderId

from vibe_quant.errors import ConfigError, DataFileError, UserError, did_you_mean
from vibe_quant.instruments.specs import InstrumentSpecs, normalize_symbol

MODES = ("testnet", "live")
KEYS_FILE_FLAG = "--keys-file"
CLIENT_NAME = "BINANCE"  # the node's data/exec client name; NautilusTrader's Binance venue
DEFAULT_TRADER_ID = "VIBEQUANT-001"
TRADER_ID = re.compile(r"[A-Za-z0-9_]+-[A-Za-z0-9_]+")

# (key, secret) variable pairs, most specific first. NautilusTrader's adapter reads
# BINANCE_FUTURES_TESTNET_* for the futures testnet (BINANCE_TESTNET_* is its spot testnet);
# ours is accepted too.
KEY_VARIABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "testnet": (
        ("BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET"),
        ("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET"),
    ),
    "live": (("BINANCE_API_KEY", "BINANCE_API_SECRET"),),
}

# Orders placed up to a day before a restart are matched against the venue on start; open
# orders and positions are fetched whatever their age (docs/nautilus.md#binance-live-clients).
RECONCILIATION_LOOKBACK_MINS = 1440
OPEN_CHECK_INTERVAL_SECS = 10.0
REDIS_PROBE_TIMEOUT_SECS = 2.0


class Credentials:
    """A Binance API key and secret that never show themselves.

    ``repr``/``str`` give the key as ``abcd…wxyz`` and the secret as ``***``; pickling and
    copying raise ``TypeError``; NautilusTrader's config encoder writes only the masked form.
    The values come out through :meth:`api_key` and :meth:`api_secret` only.

    Parameters
    ----------
    api_key : str
        The API key.
    api_secret : str
        The API secret.
    mode : {"testnet", "live"}
        Which endpoints the keys belong to.
    source : str
        Where they were read (variable names or a file path), for messages.
    """

    __slots__ = ("_key", "_secret", "mode", "source")

    def __init__(self, api_key: str, api_secret: str, mode: str, source: str):
        if not api_key or not api_secret:
            raise ValueError("api_key and api_secret must be non-empty")
        self._key = api_key
        self._secret = api_secret
        self.mode = mode
        self.source = source

    def api_key(self) -> str:
        """Return the API key in clear (for the client factory only)."""
        return self._key

    def api_secret(self) -> str:
        """Return the API secret in clear (for the client factory only)."""
        return self._secret

    @property
    def masked_key(self) -> str:
        """The key as ``abcd…wxyz`` (``***`` for a key shorter than 16 characters)."""
        return f"{self._key[:4]}…{self._key[-4:]}" if len(self._key) >= 16 else "***"

    def redacted(self) -> dict[str, str]:
        """Return ``mode``, ``source`` and the masked key; no secret."""
        return {"mode": self.mode, "source": self.source, "api_key": self.masked_key, "api_secret": "***"}

    def __repr__(self) -> str:
        return f"Credentials(mode={self.mode!r}, source={self.source!r}, api_key={self.masked_key!r}, api_secret='***')"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("Credentials cannot be pickled or copied: load them again where they are needed")


# NautilusTrader's config.json()/config.id encode every field; ours encode to the masked form.
register_config_encoding(Credentials, Credentials.redacted)


class VQBinanceDataClientConfig(BinanceDataClientConfig, frozen=True, kw_only=True):
    """``BinanceDataClientConfig`` whose keys live in `credentials` (``api_key``/``api_secret`` stay None)."""

    credentials: Credentials | None = None


class VQBinanceExecClientConfig(BinanceExecClientConfig, frozen=True, kw_only=True):
    """``BinanceExecClientConfig`` whose keys live in `credentials` (``api_key``/``api_secret`` stay None)."""

    credentials: Credentials | None = None


def _with_keys(config: VQBinanceDataClientConfig | VQBinanceExecClientConfig, plain: type) -> Any:
    if config.credentials is None:
        raise ConfigError("the Binance client config has no credentials. Fix: build it with node_config()")
    fields = {name: getattr(config, name) for name in plain.__struct_fields__}
    fields["api_key"] = config.credentials.api_key()
    fields["api_secret"] = config.credentials.api_secret()
    return plain(**fields)


class VQBinanceDataClientFactory(LiveDataClientFactory):
    """NautilusTrader's Binance data client factory, given the keys from the config's credentials."""

    @staticmethod
    def create(loop, name, config, msgbus, cache, clock):  # type: ignore[override]
        plain = _with_keys(config, BinanceDataClientConfig)
        return BinanceLiveDataClientFactory.create(loop, name, plain, msgbus, cache, clock)


class VQBinanceExecClientFactory(LiveExecClientFactory):
    """NautilusTrader's Binance execution client factory, given the keys from the config's credentials."""

    @staticmethod
    def create(loop, name, config, msgbus, cache, clock):  # type: ignore[override]
        plain = _with_keys(config, BinanceExecClientConfig)
        return BinanceLiveExecClientFactory.create(loop, name, plain, msgbus, cache, clock)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(MODES)}.{did_you_mean(mode, MODES)}")


def _how_to_set(mode: str) -> str:
    key, secret = KEY_VARIABLES[mode][-1 if mode == "testnet" else 0]
    site = "https://testnet.binancefuture.com" if mode == "testnet" else "https://www.binance.com (API Management)"
    return (
        f"create keys at {site}, then `export {key}=...` and `export {secret}=...`, or write both "
        f"NAME=VALUE lines to a file, `chmod 600` it and pass {KEYS_FILE_FLAG} FILE"
    )


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UserError(f"{KEYS_FILE_FLAG} {path}: {exc.strerror}. Fix: pass the path of your keys file") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"{KEYS_FILE_FLAG} {path} can be read by other users (mode {stat.S_IMODE(mode):03o}). Fix: chmod 600 {path}"
        )
    values: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            # The line may hold a key: never echo it.
            raise DataFileError(path, "expected NAME=VALUE", line=n, fix="write one NAME=VALUE per line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def load_credentials(mode: str, keys_file: Path | None = None) -> Credentials:
    """Read the Binance API key and secret for `mode` from the environment or from `keys_file`.

    Testnet reads ``BINANCE_FUTURES_TESTNET_API_KEY``/``_SECRET`` (NautilusTrader's names) or else
    ``BINANCE_TESTNET_API_KEY``/``_SECRET``; live reads ``BINANCE_API_KEY``/``BINANCE_API_SECRET``.
    A key and its secret always come from the same pair.

    Parameters
    ----------
    mode : {"testnet", "live"}
        The endpoints the keys are for.
    keys_file : Path, optional
        A file of ``NAME=VALUE`` lines (``#`` comments, ``export`` prefixes and quotes allowed)
        with the same names; when given, the environment is not read. Default None.

    Returns
    -------
    Credentials

    Raises
    ------
    UserError
        If the file cannot be read or other users can read it (fix: ``chmod 600``), if only one
        of a pair is set, or if no pair is set; the message names the variables and how to set them.
    DataFileError
        If a line of the file is not ``NAME=VALUE`` (the line's text is not shown).
    ConfigError
        If `mode` is not ``testnet`` or ``live``.
    """
    _check_mode(mode)
    if keys_file is not None:
        values, where = _read_keys_file(Path(keys_file)), f"{KEYS_FILE_FLAG} {keys_file}"
    else:
        values, where = dict(os.environ), "the environment"
    for key_name, secret_name in KEY_VARIABLES[mode]:
        key, secret = values.get(key_name, "").strip(), values.get(secret_name, "").strip()
        if key and secret:
            return Credentials(key, secret, mode, f"{where}: {key_name}, {secret_name}")
        if key or secret:
            missing = secret_name if key else key_name
            present = key_name if key else secret_name
            raise UserError(f"{present} is set in {where} but {missing} is empty or missing. Fix: set {missing} too")
    names = " or ".join(f"{k} and {s}" for k, s in KEY_VARIABLES[mode])
    raise UserError(f"no Binance {mode} API keys in {where}: set {names}. Fix: {_how_to_set(mode)}")


def _resolve_symbols(
    symbols: list[str], leverages: dict[str, int], specs: InstrumentSpecs
) -> list[tuple[str, InstrumentId, int]]:
    if not symbols:
        raise ConfigError("no symbols to trade. Fix: the run's strategy must name at least one symbol")
    levs = {normalize_symbol(name): value for name, value in leverages.items()}
    out: list[tuple[str, InstrumentId, int]] = []
    for text in symbols:
        symbol = normalize_symbol(text)
        if symbol not in specs:
            raise ConfigError(
                f"unknown symbol {text!r}: no USD-M perpetual {symbol!r} in {specs.path}."
                f"{did_you_mean(symbol, specs.symbols)} Fix: use a symbol listed there"
            )
        spec = specs.get(symbol)
        if symbol not in levs:
            raise ConfigError(f"no leverage for {symbol}. Fix: give a leverage for every symbol")
        lev = levs.pop(symbol)
        ceiling = spec.margin_tiers[0].max_leverage
        if isinstance(lev, bool) or not isinstance(lev, int) or not 1 <= lev <= ceiling:
            raise ConfigError(
                f"leverage {lev!r} for {symbol} is outside 1..{ceiling} (the max of its first margin tier, "
                f"schedule {spec.margin_schedule!r}). Fix: use a whole number from 1 to {ceiling}"
            )
        out.append((symbol, InstrumentId.from_str(spec.nautilus_id), lev))
    if levs:
        raise ConfigError(f"leverage given for {', '.join(sorted(levs))}, which is not traded. Fix: drop it")
    return out


def node_config(
    symbols: list[str],
    leverages: dict[str, int],
    mode: str,
    credentials: Credentials,
    trader_id: str = DEFAULT_TRADER_ID,
    cache_redis: tuple[str, int] | None = None,
    log_directory: Path | None = None,
    specs: InstrumentSpecs | None = None,
) -> TradingNodeConfig:
    """Return the configuration of a node trading `symbols` on Binance USD-M.

    Data and execution use NautilusTrader's Binance adapter (``USDT_FUTURES``, testnet when
    `mode` is ``testnet``), loading only the traded instruments; each symbol gets its leverage
    and isolated margin (docs/specs.md#isolated-margin-liquidation), reduce-only is sent to the
    venue, and execution is reconciled with the venue on start.

    Parameters
    ----------
    symbols : list of str
        Traded symbols in any accepted spelling (``FILUSDT``, ``FILUSDT-PERP``, ...).
    leverages : dict of str to int
        Leverage of each symbol (same spellings); 1 to the max of its first margin tier.
    mode : {"testnet", "live"}
        Testnet or production endpoints.
    credentials : Credentials
        Keys for `mode`, from :func:`load_credentials`.
    trader_id : str, default "VIBEQUANT-001"
        NautilusTrader trader id (``NAME-TAG``).
    cache_redis : tuple of (str, int), optional
        Redis host and port backing the cache (orders, positions survive a restart). Default
        None: the cache lives in memory.
    log_directory : Path, optional
        Directory for NautilusTrader's log file; default None (stdout only).
    specs : InstrumentSpecs, optional
        Instrument specs; default the packaged file.

    Returns
    -------
    TradingNodeConfig

    Raises
    ------
    ConfigError
        On an unknown mode or symbol (with a did-you-mean), a leverage missing, not traded or
        above the symbol's max, keys of the other mode, a bad trader id or Redis port.
    """
    _check_mode(mode)
    if credentials.mode != mode:
        raise ConfigError(f"the keys are for {credentials.mode}, the node for {mode}. Fix: load {mode} keys")
    # A TraderId without a hyphen is a Rust panic that aborts the interpreter: check first.
    if not isinstance(trader_id, str) or not TRADER_ID.fullmatch(trader_id):
        raise ConfigError(f"trader_id {trader_id!r} must look like NAME-TAG (e.g. {DEFAULT_TRADER_ID})")
    trader = TraderId(trader_id)
    resolved = _resolve_symbols(symbols, leverages, specs or InstrumentSpecs())
    ids = [iid for _, iid, _ in resolved]
    testnet = mode == "testnet"
    provider = InstrumentProviderConfig(load_all=False, load_ids=frozenset(ids))
    common: dict[str, Any] = {
        "account_type": BinanceAccountType.USDT_FUTURES,
        "testnet": testnet,
        "credentials": credentials,
        "instrument_provider": provider,
    }
    data = VQBinanceDataClientConfig(**common)
    execution = VQBinanceExecClientConfig(
        **common,
        use_reduce_only=True,
        futures_leverages={BinanceSymbol(symbol): lev for symbol, _, lev in resolved},
        futures_margin_types={BinanceSymbol(symbol): BinanceFuturesMarginType.ISOLATED for symbol, _, _ in resolved},
    )
    exec_engine = LiveExecEngineConfig(
        reconciliation=True,
        reconciliation_lookback_mins=RECONCILIATION_LOOKBACK_MINS,
        reconciliation_instrument_ids=ids,
        open_check_interval_secs=OPEN_CHECK_INTERVAL_SECS,
    )
    cache = None
    if cache_redis is not None:
        host, port = cache_redis
        if not host or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"Redis address {host}:{port} is not host:port with a port in 1..65535")
        cache = CacheConfig(database=DatabaseConfig(type="redis", host=host, port=port))
    logging = LoggingConfig(  # with a log file, the console gets warnings and errors only
        log_level="WARNING" if log_directory is not None else "INFO",
        log_level_file="INFO" if log_directory is not None else None,
        log_directory=str(log_directory) if log_directory is not None else None,
        log_colors=False,
    )
    return TradingNodeConfig(
        trader_id=trader,
        logging=logging,
        exec_engine=exec_engine,
        cache=cache,
        data_clients={CLIENT_NAME: data},
        exec_clients={CLIENT_NAME: execution},
    )


def _probe_redis(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=REDIS_PROBE_TIMEOUT_SECS).close()
    except OSError as exc:
        raise UserError(
            f"no Redis answers at {host}:{port} ({exc.strerror or exc}). "
            "Fix: start Redis there (e.g. `redis-server --port PORT`) or run without a Redis cache"
        ) from exc


def build_node(config: TradingNodeConfig) -> TradingNode:
    """Build a ``TradingNode`` from `config` with the Binance data and execution clients.

    Must run inside a running asyncio event loop (``asyncio.run``): NautilusTrader 1.221 builds
    its live clients on the running loop. Building opens no connection to Binance; the clients
    connect, set leverage and margin type, and reconcile when the node starts. A Redis-backed
    cache is the exception: NautilusTrader connects to Redis while constructing the node and
    waits for it without end, so Redis is probed first (docs/nautilus.md#binance-live-clients).

    Parameters
    ----------
    config : TradingNodeConfig
        From :func:`node_config`.

    Returns
    -------
    TradingNode
        Built, not started.

    Raises
    ------
    UserError
        If the config has a Redis cache and nothing accepts connections at its address.
    RuntimeError
        If no event loop is running, or a Binance client was not built.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError as exc:
        raise RuntimeError("build_node() must be called inside a running event loop (asyncio.run)") from exc
    database = config.cache.database if config.cache is not None else None
    if database is not None:
        _probe_redis(database.host or "127.0.0.1", database.port or 6379)
    from vibe_quant.paper.loops import node_signals

    with node_signals():  # off the main thread (loops.run_async), without the kernel's signal handlers
        node = TradingNode(config=config, loop=loop)
    node.add_data_client_factory(CLIENT_NAME, VQBinanceDataClientFactory)
    node.add_exec_client_factory(CLIENT_NAME, VQBinanceExecClientFactory)
    node.build()
    client = ClientId(CLIENT_NAME)
    # NautilusTrader only logs an error when a client cannot be built; a node without one must not start.
    if (
        client not in node.kernel.data_engine.registered_clients
        or client not in node.kernel.exec_engine.registered_clients
    ):
        raise RuntimeError(f"the {CLIENT_NAME} data or execution client was not built; see the node's log")
    return node


def check_config(config: TradingNodeConfig) -> dict[str, Any]:
    """Return a redacted summary of what a start would connect to and set (no secret in it).

    Parameters
    ----------
    config : TradingNodeConfig
        From :func:`node_config`.

    Returns
    -------
    dict
        ``venue``, ``mode``, ``endpoints`` (HTTP and WebSocket base URLs as NautilusTrader
        resolves them), ``account_type``, ``credentials`` (source and masked key),
        ``trader_id``, ``instruments``, ``leverages``, ``margin_types``, ``reduce_only``,
        ``reconciliation``, ``cache`` and ``log_directory``.

    Raises
    ------
    ConfigError
        If `config` has no Binance clients.
    """
    data = config.data_clients.get(CLIENT_NAME)
    execution = config.exec_clients.get(CLIENT_NAME)
    if not isinstance(data, VQBinanceDataClientConfig) or not isinstance(execution, VQBinanceExecClientConfig):
        raise ConfigError("the node has no Binance clients. Fix: build its config with node_config()")
    account, testnet = execution.account_type, execution.testnet
    engine = config.exec_engine
    database = config.cache.database if config.cache is not None else None
    creds = execution.credentials
    return {
        "venue": str(BINANCE_VENUE),
        "mode": "testnet" if testnet else "live",
        "endpoints": {
            "http": execution.base_url_http or get_http_base_url(account, testnet, execution.us),
            "ws_data": data.base_url_ws or get_ws_base_url(account, testnet, data.us),
            "ws_exec": execution.base_url_ws or get_ws_base_url(account, testnet, execution.us),
        },
        "account_type": account.value,
        "credentials": {"source": creds.source, "api_key": creds.masked_key} if creds is not None else None,
        "trader_id": str(config.trader_id),
        "instruments": sorted(str(i) for i in data.instrument_provider.load_ids or ()),
        "leverages": {str(s): lev for s, lev in sorted((execution.futures_leverages or {}).items())},
        "margin_types": {str(s): t.value for s, t in sorted((execution.futures_margin_types or {}).items())},
        "reduce_only": execution.use_reduce_only,
        "reconciliation": {
            "on_start": engine.reconciliation,
            "lookback_mins": engine.reconciliation_lookback_mins,
            "instrument_ids": sorted(str(i) for i in engine.reconciliation_instrument_ids or ()),
            "open_check_interval_secs": engine.open_check_interval_secs,
        },
        "cache": f"redis://{database.host}:{database.port}" if database is not None else "memory",
        "log_directory": config.logging.log_directory if config.logging is not None else None,
    }
