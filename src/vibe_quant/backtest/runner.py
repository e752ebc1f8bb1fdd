"""Build and run one backtest on NautilusTrader's ``BacktestEngine`` with our venue rules.

:func:`load_market_data` reads bars, funding and instruments from the catalog;
:func:`run_backtest` wires the engine (BINANCE, NETTING, MARGIN; our fill model, venue module
and latency), runs the strategies, and returns a :class:`BacktestResult` with the ledger and
metrics computed by us (never the engine's built-in statistics).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np

from vibe_quant import code_version
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.execution import InstrumentState, PerpFillModel
from vibe_quant.backtest.ledger import Trade, build_trades, cost_summary
from vibe_quant.backtest.margin import brackets_from_spec
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.backtest.stats import performance, trade_statistics
from vibe_quant.backtest.strategies import resolve
from vibe_quant.backtest.strategies.base import RunContext
from vibe_quant.data.bars import NS_PER_MS, TIMEFRAME_BY_LABEL
from vibe_quant.data.catalog import data_dir
from vibe_quant.data.files import utc_ms
from vibe_quant.errors import ConfigError, UserError, did_you_mean
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs

log = logging.getLogger(__name__)

VENUE = "BINANCE"
NS_PER_HOUR = 3_600_000_000_000


@dataclass
class MarketData:
    """Everything a run reads: per symbol its spec, instrument, execution bars and funding."""

    specs: dict[str, InstrumentSpec]
    instruments: dict[str, object]
    bars: dict[str, list]
    funding: dict[str, list]  # symbol -> FundingRateUpdate list (sorted)
    digest: str  # sha256 over the catalog files read (part of the run id)


@dataclass
class BacktestResult:
    config: BacktestConfig  # resolved
    run_id: str
    metrics: dict[str, float | int | None]
    costs: dict[str, float]
    trades: list[Trade]
    equity_ts: np.ndarray
    equity: np.ndarray
    recorder: RunRecorder
    warnings: list[str]
    bars_processed: int
    elapsed_s: float
    fills_report: object = None
    positions_report: object = None
    extra: dict = field(default_factory=dict)


def _files_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def load_market_data(catalog_root: Path, config: BacktestConfig, specs: InstrumentSpecs) -> MarketData:
    """Read the run's bars, funding and instruments from the catalog.

    Raises
    ------
    UserError
        A symbol has no instrument or no bars in the range (with the ingest command to run),
        or its spec's precision no longer matches the stored bars.
    """
    from nautilus_trader.model.data import FundingRateUpdate
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    import vibe_quant.data.catalog  # noqa: F401 (registers the FundingRateUpdate codec)

    catalog = ParquetDataCatalog(str(catalog_root))
    tf = TIMEFRAME_BY_LABEL[config.timeframe]
    start_ns = utc_ms(config.start) * NS_PER_MS
    end_ns = utc_ms(config.end_exclusive) * NS_PER_MS
    out = MarketData({}, {}, {}, {}, "")
    files: list[Path] = []
    for symbol in config.symbols:
        spec = specs.get(symbol)
        iid = spec.nautilus_id
        found = catalog.instruments(instrument_ids=[iid])
        if not found:
            raise UserError(
                f"no {iid} instrument in {catalog_root}: ingest it first "
                f"(vq data ingest --symbols {symbol} --start {config.start} --end {config.end})"
            )
        instrument = found[0]
        if (instrument.price_precision, instrument.size_precision) != (spec.price_precision, spec.size_precision):
            raise UserError(
                f"{symbol}: catalog bars use precision {instrument.price_precision}/{instrument.size_precision} "
                f"but instrument_specs.yaml now says {spec.price_precision}/{spec.size_precision}; "
                "run `vq data rebuild --from-archive`"
            )
        bar_type = tf.bar_type(iid)
        # Bars closing inside (start, end]: the first bar opens at start.
        bars = catalog.bars([bar_type], start=start_ns + tf.step_ms * NS_PER_MS, end=end_ns)
        if not bars:
            raise UserError(
                f"no {config.timeframe} bars for {symbol} between {config.start} and {config.end} in "
                f"{catalog_root}: run `vq data ingest --symbols {symbol} --start {config.start} --end {config.end}`"
            )
        funding_start = start_ns - 24 * NS_PER_HOUR
        funding = catalog.query(FundingRateUpdate, identifiers=[iid], start=funding_start, end=end_ns)
        funding = [f.data if hasattr(f, "data") else f for f in funding]
        out.specs[symbol], out.instruments[symbol], out.bars[symbol], out.funding[symbol] = (
            spec,
            instrument,
            bars,
            funding,
        )
        for kind, ident in (("bar", bar_type), ("funding_rate_update", iid), ("crypto_perpetual", iid)):
            directory = data_dir(catalog_root, kind, ident)
            if directory.is_dir():
                files.extend(p for p in directory.glob("*.parquet") if _overlaps(p.name, funding_start, end_ns))
    out.digest = _files_digest(files)
    return out


def slice_market_data(data: MarketData, config: BacktestConfig) -> MarketData:
    """Return `data` cut to `config`'s dates (a sub-period of what was loaded), as
    :func:`load_market_data` would have read it: bars closing in (start, end], funding from a
    day before the start.

    Raises
    ------
    UserError
        A symbol has no bars in the sub-period.
    """
    tf = TIMEFRAME_BY_LABEL[config.timeframe]
    start_ns = utc_ms(config.start) * NS_PER_MS
    end_ns = utc_ms(config.end_exclusive) * NS_PER_MS
    out = MarketData(dict(data.specs), dict(data.instruments), {}, {}, f"{data.digest}:{config.start}:{config.end}")
    for symbol, bars in data.bars.items():
        out.bars[symbol] = [b for b in bars if start_ns + tf.step_ms * NS_PER_MS <= b.ts_init <= end_ns]
        if not out.bars[symbol]:
            raise UserError(f"no {config.timeframe} bars for {symbol} between {config.start} and {config.end}")
        out.funding[symbol] = [f for f in data.funding[symbol] if start_ns - 24 * NS_PER_HOUR <= f.ts_event <= end_ns]
    return out


def _overlaps(name: str, start_ns: int, end_ns: int) -> bool:
    from vibe_quant.data.catalog import parse_interval_filename

    span = parse_interval_filename(name)
    return span is None or (span[0] <= end_ns and span[1] >= start_ns)


def strategy_params(config: BacktestConfig):
    """Return ``(strategy_cls, config_cls, module)`` after checking the strategy, its parameter
    names, their types and values (the strategy's ``check``), before any engine or row exists.

    Raises
    ------
    ConfigError
        Unknown strategy or parameter (with a did-you-mean), a value of the wrong type, or
        parameters the strategy rejects.
    """
    if config.dsl is not None:
        from vibe_quant.dsl import strategy as dsl_module

        analysis, _ = dsl_module.bind(config.dsl, config.params, config.timeframe)
        if config.sizing is not None and config.sizing.method == "fixed_fractional" and analysis.doc.stop_loss is None:
            raise ConfigError(
                f"fixed_fractional sizing needs a stop-loss: strategy {analysis.name} has none "
                "(add stop_loss: to it, or use --sizing atr or kelly)"
            )
        return dsl_module.DslStrategy, dsl_module.DslStrategyConfig, dsl_module
    strategy_cls, config_cls, module = resolve(config.strategy)
    own = set(config_cls.__annotations__) - {"instrument_id", "bar_type"}
    for name in config.params:
        if name not in own:
            raise ConfigError(
                f"strategy {config.strategy!r} has no parameter {name!r}; parameters: {', '.join(sorted(own))}."
                + did_you_mean(name, own)
            )
    # Types and values, with placeholder ids: the real ones are only known once data is loaded.
    strategy_cls.check(
        strategy_config(config, config_cls, "X-PERP.BINANCE", "X-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", 0)
    )
    return strategy_cls, config_cls, module


def strategy_config(config: BacktestConfig, config_cls, instrument_id: str, bar_type: str, index: int):
    """Build the strategy's NautilusTrader config from `config.params` (types converted)."""
    ids = {"instrument_id": instrument_id, "bar_type": bar_type, "order_id_tag": f"{index + 1:03d}"}
    if config.dsl is not None:
        from vibe_quant.dsl.strategy import bind

        return config_cls(document=bind(config.dsl, config.params, config.timeframe)[1], **ids)
    try:
        return msgspec.convert({**config.params, **ids}, config_cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"strategy {config.strategy!r} parameters: {exc}") from exc


def run_id_for(config: BacktestConfig, data: MarketData) -> str:
    """Content hash of config + strategy and engine source + data + code version.

    The same inputs give the same id (and, the engine being deterministic, the same results).
    """
    _, _, module = strategy_params(config)
    h = hashlib.sha256()
    sources = sorted(Path(__file__).parent.rglob("*.py"))  # the whole backtest core, strategies included
    if config.dsl is not None:
        sources += sorted((Path(__file__).parent.parent / "dsl").rglob("*.py"))  # and the compiler
    parts = [config.canonical_json(), inspect.getsource(module).encode(), data.digest.encode(), code_version().encode()]
    parts += [p.read_bytes() for p in sources]
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def funding_warnings(config: BacktestConfig, data: MarketData) -> list[str]:
    """Say loudly where funding is not modelled (no silent zero)."""
    out = []
    start_ns = utc_ms(config.start) * NS_PER_MS
    end_ns = utc_ms(config.end_exclusive) * NS_PER_MS
    for symbol, updates in data.funding.items():
        inside = [u.ts_event for u in updates if start_ns <= u.ts_event < end_ns]
        if not inside:
            out.append(
                f"funding not modelled for {symbol}: no funding rates in the catalog for {config.start}..{config.end} "
                f"(vq data ingest --symbols {symbol} --datasets fundingRate ...)"
            )
            continue
        points = [start_ns, *inside, end_ns]
        longest = max((b - a for a, b in itertools.pairwise(points)), default=0)
        if longest > 12 * NS_PER_HOUR:
            out.append(
                f"funding partly not modelled for {symbol}: a {longest / NS_PER_HOUR:.0f} h span in the run has "
                "no funding rates in the catalog"
            )
    return out


def run_backtest(config: BacktestConfig, data: MarketData, run_id: str | None = None,
                 replay: str = "full") -> BacktestResult:  # fmt: skip
    """Run `config` on `data` and return the ledger, equity curve and metrics (`replay`: see EngineSession).

    Raises
    ------
    ConfigError
        Unknown strategy or parameter, or a parameter of the wrong type.
    """
    session = EngineSession(config, data, replay)
    try:
        return session.run(config, run_id)
    finally:
        session.dispose()


def instrument_states(cfg: BacktestConfig, data: MarketData) -> tuple[list, dict]:
    """Return the run's instruments (fees from `cfg`) and, per instrument id, its initial state
    (bars as plain lists, funding schedule, leverage, margin brackets).

    Raises
    ------
    ConfigError
        A leverage above the symbol's maximum.
    """
    from vibe_quant.instruments.factory import crypto_perpetual

    tf = TIMEFRAME_BY_LABEL[cfg.timeframe]
    instruments, states = [], {}
    for symbol in cfg.symbols:
        spec = data.specs[symbol]
        fees = {"maker_fee": Decimal(str(cfg.maker_fee)) if cfg.maker_fee is not None else spec.maker_fee,
                "taker_fee": Decimal(str(cfg.taker_fee)) if cfg.taker_fee is not None else spec.taker_fee}  # fmt: skip
        instrument = crypto_perpetual(msgspec.structs.replace(spec, **fees))
        instruments.append(instrument)
        leverage = cfg.leverage_for(symbol)
        if leverage > spec.margin_tiers[0].max_leverage:
            raise ConfigError(
                f"leverage {leverage:g} for {symbol} exceeds its maximum {spec.margin_tiers[0].max_leverage}"
            )
        st = InstrumentState.from_bars(
            data.bars[symbol], instrument_id=instrument.id, symbol=symbol, bar_ns=tf.step_ms * NS_PER_MS,
            tick=float(spec.tick_size), price_precision=spec.price_precision, size_precision=spec.size_precision,
            leverage=leverage, brackets=brackets_from_spec(spec), vol_window=cfg.vol_window,
        )  # fmt: skip
        # Binance stamps settlements a few ms after the hour: the snapshot is the whole second.
        st.funding = [
            (u.ts_event // 1_000_000_000 * 1_000_000_000, float(u.rate),
             ((u.next_funding_ns or u.ts_event) - u.ts_event) // NS_PER_HOUR)
            for u in data.funding[symbol]
        ]  # fmt: skip
        states[instrument.id] = st
    return instruments, states


# Fields that build the engine (venue, instruments, fills, latency); a session runs any config
# that differs from its own only in the others (the strategy and its parameters).
ENGINE_FIELDS = ("symbols", "timeframe", "start", "end", "mode", "latency", "latency_ns", "starting_balance",
                 "leverage", "leverages", "maker_fee", "taker_fee", "spread_ticks", "impact", "vol_window",
                 "prob_fill_on_limit", "prob_slippage", "seed")  # fmt: skip


REPLAYS = ("full", "signals", "active")


class EngineSession:
    """One ``BacktestEngine`` with the venue, instruments and bars of `config`, reusable across runs.

    Screening runs hundreds of parameter sets on the same data: building the engine and adding
    the bars once, then ``engine.reset()`` between runs, gives the same results as a fresh engine
    (tests/screening/test_pipeline.py) and saves that setup each time. Each run gets fresh
    instrument states, recorder, fill model and strategies.

    `replay` says how a DSL strategy meets the bars (other strategies, and runs with a sizing or
    risk gate, always replay every bar with streaming indicators):

    * ``full``: every bar, indicators and conditions evaluated bar by bar (validation, live);
    * ``signals``: every bar, decisions read from the precomputed :class:`~vibe_quant.dsl.table.SignalTable`;
    * ``active``: the table, and only the bars on which something can happen (``feed.py``).

    All three give the same fills and metrics (tests/backtest/test_feed.py); ``active`` is
    screening's default. Indicators are recorded once per session (``IndicatorCache``).
    """

    def __init__(self, config: BacktestConfig, data: MarketData, replay: str = "full"):
        from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
        from nautilus_trader.backtest.models import LatencyModel, MakerTakerFeeModel
        from nautilus_trader.config import LoggingConfig
        from nautilus_trader.model.currencies import USDT
        from nautilus_trader.model.enums import AccountType, OmsType
        from nautilus_trader.model.identifiers import Venue
        from nautilus_trader.model.objects import Money

        from vibe_quant.backtest.venue import PerpVenueModule, bar_positions

        cfg = self.config = config.resolved()
        self.data = data
        self.instruments, self.template = instrument_states(cfg, data)
        self.taker = {s: float(i.taker_fee) for s, i in zip(cfg.symbols, self.instruments, strict=True)}

        base, insert, update, cancel = cfg.latency_ns
        # Every order needs >= 1 ns in flight so the exchange executes it at the next bar's open,
        # not at the signal bar's close (see venue.py and execution.py).
        latency = LatencyModel(base_latency_nanos=max(base, 1), insert_latency_nanos=insert,
                               update_latency_nanos=update, cancel_latency_nanos=cancel)  # fmt: skip
        if replay not in REPLAYS:
            raise ValueError(f"replay must be one of {REPLAYS}, not {replay!r}")
        self.replay = replay
        # The engine replays bars in (ts, insertion) order: the venue module indexes its lists by
        # the same merged sequence instead of looking up each bar's type (see venue.py).
        self.all_bars, owners = merged_bars(cfg.symbols, data, self.template)
        self._owner_index = [cfg.symbols.index(st.symbol) for st in owners]
        # per merged bar, its index among its symbol's bars; per symbol, the merged index of its bars
        self._own, by_symbol = bar_positions(self._owner_index)
        self._merged = [by_symbol.get(x, []) for x in range(len(cfg.symbols))]
        self._caches: dict[str, object] = {}
        states, recorder, sequence = self._fresh()
        self.module = PerpVenueModule(states, recorder, sequence, VENUE, self._own)
        self.venue = Venue(VENUE)
        self.engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
        self.engine.add_venue(
            self.venue, oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None,
            starting_balances=[Money(cfg.starting_balance, USDT)], default_leverage=Decimal(str(cfg.leverage)),
            leverages={iid: Decimal(str(st.leverage)) for iid, st in self.template.items()},
            modules=[self.module], fill_model=self._fill_model(states, recorder), fee_model=MakerTakerFeeModel(),
            latency_model=latency, bar_execution=True, bar_adaptive_high_low_ordering=False,
        )  # fmt: skip
        for instrument in self.instruments:
            self.engine.add_instrument(instrument)
        if replay == "full":
            self.engine.add_data(self.all_bars, sort=False)  # kept by the engine across reset()
        self._pending = (states, recorder)  # the first run uses the objects the engine was built with
        self.runs = 0

    def _fresh(self) -> tuple[dict, RunRecorder, list]:
        states = {iid: st.fresh() for iid, st in self.template.items()}
        state_list = list(states.values())
        return states, RunRecorder(), [state_list[k] for k in self._owner_index]

    def _fill_model(self, states: dict, recorder: RunRecorder) -> PerpFillModel:
        cfg = self.config
        return PerpFillModel(
            states, recorder, cfg.mode, cfg.spread_ticks, cfg.impact, max(cfg.latency_ns[0], 1) + cfg.latency_ns[1],
            cfg.prob_fill_on_limit, cfg.prob_slippage, cfg.seed,
        )  # fmt: skip

    def run(self, config: BacktestConfig, run_id: str | None = None, reports: bool = True) -> BacktestResult:
        """Run `config` (same engine fields as the session's) and return its result (with
        NautilusTrader's fills and positions reports unless `reports` is False: screening skips them)."""
        cfg = config.resolved()
        changed = [f for f in ENGINE_FIELDS if getattr(cfg, f) != getattr(self.config, f)]
        if changed:
            raise ValueError(f"this engine session cannot run a config with other {', '.join(changed)}")
        strategy_cls, config_cls, _module = strategy_params(cfg)
        if self._pending is not None:
            states, recorder = self._pending
            self._pending = None
        else:  # a reused engine: reset it, then give every component this run's state
            self.engine.reset()
            self.engine.clear_strategies()
            self.engine.clear_actors()
            states, recorder, sequence = self._fresh()
            self.module.bind(states, recorder, sequence, self._own)
        # A new fill model each run, also the first: NautilusTrader's limit-fill draws come from
        # Python's global `random`, which its constructor seeds; seeding when the session was
        # built would let anything run in between (another session) change this run's fills.
        self.engine.change_fill_model(self.venue, self._fill_model(states, recorder))
        for message in funding_warnings(cfg, self.data):
            recorder.warn(message)
            log.warning(message)
        gate = self._gate(cfg, recorder)
        table = self.replay != "full" and gate is None and hasattr(strategy_cls, "next_action")
        strategies = []
        for i, symbol in enumerate(cfg.symbols):
            instrument = self.instruments[i]
            strategy_cfg = strategy_config(
                cfg, config_cls, str(instrument.id), str(self.data.bars[symbol][0].bar_type), i
            )
            strategy = strategy_cls(strategy_cfg)
            strategy.ctx = RunContext(self.module, recorder, states[instrument.id].leverage, self.taker[symbol], gate,
                                      self._indicator_cache(symbol) if table else None)  # fmt: skip
            strategies.append(strategy)
            if gate is not None:
                gate.attach(strategy)
        if gate is not None:  # actors first: at a bar close the breakers act before the strategies
            for actor in gate.actors():
                self.engine.add_actor(actor)
        for strategy in strategies:
            self.engine.add_strategy(strategy)
        t0 = time.perf_counter()
        replayed = self._run_engine(strategies if table and self.replay == "active" else None)
        elapsed = time.perf_counter() - t0
        self.runs += 1
        self.module.finish()
        recorder.equity_ts, recorder.equity = self.module.equity_curve()
        result = _assemble(cfg, recorder, states, run_id or "", len(self.all_bars), elapsed)
        if reports:
            result.fills_report = self.engine.trader.generate_order_fills_report()
            result.positions_report = self.engine.trader.generate_positions_report()
        if gate is not None:
            result.extra["risk"] = gate.summary()
        result.extra["bars_replayed"] = replayed
        for strategy in strategies:
            strategy.release()
        return result

    def _run_engine(self, active: list | None) -> int:
        """Run the engine over the bars (only the active ones given the strategies); return how many it replayed."""
        from vibe_quant.backtest.feed import ActiveFeed

        if self.replay == "full":
            self.engine.run()
            return len(self.all_bars)
        if active is not None:
            feed = ActiveFeed(self.all_bars, self._owner_index, self._own, self._merged, active, self.module)
            self.module.fed = feed.fed
            self.engine.add_data_iterator("bars", feed.chunks())
        else:
            feed = None
            self.module.fed = None
            self.engine.add_data_iterator("bars", iter([self.all_bars]))
        # the engine holds no static data here: give it the run's span
        self.engine.run(start=self.all_bars[0].ts_init, end=self.all_bars[-1].ts_init)
        return feed.replayed if feed is not None else len(self.all_bars)

    def _indicator_cache(self, symbol: str):
        if symbol not in self._caches:
            from vibe_quant.dsl.table import IndicatorCache

            spec = self.data.specs[symbol]
            self._caches[symbol] = IndicatorCache(self.data.bars[symbol], spec.price_precision, spec.size_precision)
        return self._caches[symbol]

    def _gate(self, cfg: BacktestConfig, recorder: RunRecorder):
        """The run's sizing/risk gate (None without --sizing/--risk), trading state set to ACTIVE."""
        from nautilus_trader.model.enums import TradingState

        risk_engine = self.engine.kernel.risk_engine
        if risk_engine.trading_state != TradingState.ACTIVE:  # a halt of the previous run on this engine
            risk_engine.set_trading_state(TradingState.ACTIVE)
        if cfg.sizing is None and cfg.risk is None:
            return None
        from vibe_quant.risk.gate import RiskGate

        min_notional = {s: float(self.data.specs[s].min_notional) for s in cfg.symbols}
        gate = RiskGate(cfg.sizing, cfg.risk, self.module, recorder, min_notional, cfg.starting_balance)
        gate.risk_engine = risk_engine
        return gate

    def dispose(self) -> None:
        self.engine.dispose()


def merged_bars(symbols, data: MarketData, states: dict) -> tuple[list, list]:
    """Return all execution bars sorted by close time (ties in symbol order) and their owners."""
    by_symbol = {st.symbol: st for st in states.values()}
    tagged = [(bar.ts_init, k, bar) for k, symbol in enumerate(symbols) for bar in data.bars[symbol]]
    tagged.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in tagged], [by_symbol[symbols[t[1]]] for t in tagged]


def _assemble(
    cfg: BacktestConfig, recorder: RunRecorder, states: dict, run_id: str, bars: int, elapsed: float
) -> BacktestResult:
    leverage_of = {st.symbol: st.leverage for st in states.values()}
    trades = build_trades(recorder.fills, recorder.funding, recorder.liquidations, leverage_of)
    costs = cost_summary(trades, recorder.fills, recorder.funding, recorder.liquidations)
    ts = np.asarray(recorder.equity_ts, dtype=np.int64)
    eq = np.asarray(recorder.equity, dtype=float)
    start_ns = utc_ms(cfg.start) * NS_PER_MS
    end_ns = utc_ms(cfg.end_exclusive) * NS_PER_MS
    closed = [t for t in trades if t.is_closed]
    metrics: dict = performance(ts, eq, cfg.starting_balance, start_ns, end_ns)
    metrics.update(trade_statistics(
        np.array([t.net_pnl for t in closed]), np.array([t.exit_ns - t.entry_ns for t in closed], dtype=np.int64),
    ))  # fmt: skip
    metrics.update(
        total_fees=costs["total_fees"],
        total_funding=costs["total_funding"],
        total_slippage=costs["total_slippage"],
        deflated_sharpe=None,
        walk_forward_efficiency=None,
        purged_kfold_mean_sharpe=None,
        execution_time_seconds=elapsed,
        starting_balance=cfg.starting_balance,
        final_equity=float(eq[-1]) if eq.size else cfg.starting_balance,
        net_pnl=(float(eq[-1]) if eq.size else cfg.starting_balance) - cfg.starting_balance,
        gross_pnl=costs["gross_pnl"],
        total_slippage_estimated=costs["total_slippage_estimated"],
        liquidations=costs["liquidations"],
        fills=costs["fills"],
        open_trades=len(trades) - len(closed),
    )
    return BacktestResult(cfg, run_id, metrics, costs, trades, ts, eq, recorder, list(recorder.warnings), bars, elapsed)
