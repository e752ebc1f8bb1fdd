"""Tick-level backtests ("Mode 2 (L1)"): a plan replayed on the catalog's trade and quote ticks.

:func:`load_tick_data` reads a plan's ``trade_tick`` and ``quote_tick`` files (written by
``vq data ingest --datasets aggTrades,bookTicker``) and its funding; :func:`slice_tick_data` cuts
a window out of one load; :func:`run_tick_backtest` runs the plan on them and returns the same
:class:`~vibe_quant.backtest.engine.BacktestResult` as a bar run, so bundles, reports and the
state database take it unchanged.

The strategies are built exactly as for bars, each leg's bar type being the plan's timeframe
aggregated by NautilusTrader from the trades (``BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL``):
any strategy, a DSL one too, runs here unchanged and is judged by the venue rules of
``tick_venue.py`` (docs/specs.md#tick-level-backtests). The equity curve is sampled at every
bar close and at the last tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from vibe_quant.backtest.engine import (
    VENUE,
    BacktestResult,
    assemble,
    frozen_gc,
    instrument_states,
    positions_report,
    risk_gate,
)
from vibe_quant.backtest.market_data import NS_PER_HOUR, _files_digest, _overlaps, funding_warnings
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.backtest.recorder import RunRecorder
from vibe_quant.errors import UserError
from vibe_quant.instruments.specs import InstrumentSpec, InstrumentSpecs, UnknownSymbolError
from vibe_quant.progress import Progress
from vibe_quant.strategy.ports import StrategyPorts
from vibe_quant.strategy.registry import LegSpec

log = logging.getLogger(__name__)

INGEST_DATASETS = "aggTrades,bookTicker"


@dataclass
class TickData:
    """Everything a tick run reads: per symbol its spec, instrument, trade and quote ticks (sorted by
    time; an empty quote list means the symbol is quotes-free) and funding."""

    specs: dict[str, InstrumentSpec]
    instruments: dict[str, object]
    trades: dict[str, list]  # symbol -> TradeTick list
    quotes: dict[str, list]  # symbol -> QuoteTick list (empty: touch inferred from trades)
    funding: dict[str, list]  # symbol -> FundingRateUpdate list (sorted)
    digest: str  # sha256 over the catalog files read (part of the run id)
    # symbol -> slow custom data as NautilusTrader CustomData (open interest ``metrics`` rows and
    # ``bookDepth`` snapshots), sorted by time: the LPI signal's LEV prior and depth proxy read them
    slow: dict[str, list] = field(default_factory=dict)

    def has_slow(self, cls) -> bool:
        """True when some symbol's slow data holds a record of `cls` (e.g. ``BinanceOiMetrics``)."""
        return any(isinstance(d.data, cls) for rows in self.slow.values() for d in rows)

    @property
    def quotes_free(self) -> list[str]:
        """Symbols without quotes (their touch is inferred from their trades), in load order."""
        return [s for s in self.trades if not self.quotes.get(s)]

    @property
    def ticks(self) -> int:
        return sum(len(t) for t in self.trades.values()) + sum(len(q) for q in self.quotes.values())


def linear_spec(specs: InstrumentSpecs, symbol: str) -> InstrumentSpec:
    """The USD-M spec of `symbol`, refusing inverse contracts.

    Raises
    ------
    UserError
        `symbol` is a COIN-M (inverse) contract: the perp core simulates linear USDT-margined ones.
    UnknownSymbolError
        `symbol` is in no market of instrument_specs.yaml.
    """
    try:
        return specs.get(symbol)
    except UnknownSymbolError:
        try:
            specs.get(symbol, "cm")
        except UnknownSymbolError:
            raise
        raise UserError(
            f"{symbol} is a COIN-M inverse contract: the perp backtest core simulates linear USDT-margined "
            "perpetuals only; backtest its linear proxy instead (vibe_quant.data.proxy.write_linear_proxy "
            "writes a USD-M aggTrades file from a COIN-M day)"
        ) from None


def load_tick_data(catalog_root: Path, plan: RunPlan, specs: InstrumentSpecs, start_ns: int | None = None,
                   end_ns: int | None = None) -> TickData:  # fmt: skip
    """Read the plan's trade and quote ticks in its period (or ``[start_ns, end_ns)``) and funding.

    Parameters
    ----------
    catalog_root : Path
        The NautilusTrader ``ParquetDataCatalog`` root.
    plan : RunPlan
        Its symbols and period.
    specs : InstrumentSpecs
        instrument_specs.yaml.
    start_ns, end_ns : int, optional
        A window inside the period (default: the plan's whole period).

    Returns
    -------
    TickData

    Raises
    ------
    UserError
        An inverse (COIN-M) symbol, no trade ticks for a symbol in the window (with the ingest
        command to run), or ticks stored at other precisions than the spec's.
    """
    from nautilus_trader.model.data import CustomData, DataType, FundingRateUpdate, QuoteTick, TradeTick
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    import vibe_quant.data.catalog  # noqa: F401 (registers the FundingRateUpdate codec)
    from vibe_quant.data.catalog import data_dir
    from vibe_quant.data.custom import BinanceBookDepth, BinanceOiMetrics
    from vibe_quant.data.ticks import QUOTE_KIND, TRADE_KIND
    from vibe_quant.instruments.factory import crypto_perpetual

    catalog = ParquetDataCatalog(str(catalog_root))
    config = plan.config
    start_ns = plan.period.start_ns if start_ns is None else start_ns
    end_ns = plan.period.end_ns if end_ns is None else end_ns
    out = TickData({}, {}, {}, {}, {}, "")
    files: list[Path] = []
    for symbol in config.symbols:
        spec = linear_spec(specs, symbol)
        iid = spec.nautilus_id
        # catalog bounds are inclusive: [start, end - 1]
        trades = ordered_ticks(catalog, catalog_root, TradeTick, TRADE_KIND, iid, start_ns, end_ns)
        if not trades:
            raise UserError(
                f"no trade ticks for {symbol} between {config.start} and {config.end} in {catalog_root}: run "
                f"`vq data ingest --symbols {symbol} --datasets {INGEST_DATASETS} --start {config.start} "
                f"--end {config.end}`"
            )
        quotes = ordered_ticks(catalog, catalog_root, QuoteTick, QUOTE_KIND, iid, start_ns, end_ns)
        first = trades[0]
        if (first.price.precision, first.size.precision) != (spec.price_precision, spec.size_precision):
            raise UserError(
                f"{symbol}: catalog trade ticks use precision {first.price.precision}/{first.size.precision} but "
                f"instrument_specs.yaml says {spec.price_precision}/{spec.size_precision}; "
                "run `vq data rebuild --from-archive`"
            )
        funding_start = start_ns - 24 * NS_PER_HOUR
        funding = catalog.query(FundingRateUpdate, identifiers=[iid], start=funding_start, end=end_ns)
        out.specs[symbol] = spec
        out.instruments[symbol] = crypto_perpetual(spec)
        out.trades[symbol], out.quotes[symbol] = trades, quotes
        out.funding[symbol] = [f.data if hasattr(f, "data") else f for f in funding]
        # Slow data from a day before: the LEV window (288 five-minute rows) warms up on the day before.
        slow = []
        for cls in (BinanceOiMetrics, BinanceBookDepth):
            slow += catalog.query(cls, identifiers=[iid], start=funding_start, end=end_ns - 1)
            directory = data_dir(catalog_root, cls.kind(), iid)
            if directory.is_dir():
                files.extend(p for p in directory.glob("*.parquet") if _overlaps(p.name, funding_start, end_ns))
        # The catalog returns them as CustomData of DataType(cls) without metadata; strategies subscribe
        # per instrument (DataType(cls, metadata={"instrument_id": ...})): give them that data type.
        types = {cls: DataType(cls, metadata={"instrument_id": InstrumentId.from_str(iid)})
                 for cls in (BinanceOiMetrics, BinanceBookDepth)}  # fmt: skip
        slow = [CustomData(types[type(d.data)], d.data) for d in slow]
        out.slow[symbol] = sorted(slow, key=lambda d: d.ts_init)  # stable: a depth snapshot's rows keep their order
        for kind, lo in ((TRADE_KIND, start_ns), (QUOTE_KIND, start_ns), ("funding_rate_update", funding_start)):
            directory = data_dir(catalog_root, kind, iid)
            if directory.is_dir():
                files.extend(p for p in directory.glob("*.parquet") if _overlaps(p.name, lo, end_ns))
    out.digest = "ticks:" + _files_digest(files)
    return out


def ordered_ticks(catalog, catalog_root: Path, cls, kind: str, iid: str, start_ns: int, end_ns: int) -> list:
    """The ticks of `iid` in ``[start_ns, end_ns)`` in the catalog files' own order, ``(ts_event, id)``
    as ingested (docs/nautilus.md#catalog-time-filters-reorder-ties).

    NautilusTrader 1.221's ``ParquetDataCatalog.query`` with ``start``/``end`` returns rows sorted by
    time but not stably: rows sharing a timestamp come back in another order than the file's (45 of
    the proxy day's 105,280 trades). The order decides which quote is the last at a time and which
    trade closes a volume bucket, so the files overlapping the window are read whole, one at a time
    in interval order (a query given ``files`` and no time filter keeps the file order), and cut.
    """
    import bisect

    from vibe_quant.data.catalog import data_dir, parse_interval_filename

    directory = data_dir(catalog_root, kind, iid)
    if not directory.is_dir():
        return []
    spans = sorted((span, p) for p in directory.glob("*.parquet")
                   if (span := parse_interval_filename(p.name)) is not None and span[0] < end_ns and span[1] >= start_ns)  # fmt: skip
    out: list = []
    for _, path in spans:
        out += catalog.query(cls, identifiers=[iid], files=[str(path)])
    keys = [t.ts_init for t in out]
    return out[bisect.bisect_left(keys, start_ns) : bisect.bisect_left(keys, end_ns)]


def slice_tick_data(data: TickData, start_ns: int, end_ns: int) -> TickData:
    """Return the ticks of `data` in ``[start_ns, end_ns)`` and the funding from a day before
    (walk-forward windows reuse one load; the digest names the window).

    Raises
    ------
    UserError
        A symbol has no trade ticks in the window.
    """
    import bisect

    def cut(ticks: list) -> list:
        keys = [t.ts_init for t in ticks]
        return ticks[bisect.bisect_left(keys, start_ns) : bisect.bisect_left(keys, end_ns)]

    out = TickData(dict(data.specs), dict(data.instruments), {}, {}, {}, f"{data.digest}:{start_ns}:{end_ns}")
    for symbol, trades in data.trades.items():
        out.trades[symbol] = cut(trades)
        if not out.trades[symbol]:
            raise UserError(f"no trade ticks for {symbol} in [{start_ns}, {end_ns}) ns of the loaded data")
        out.quotes[symbol] = cut(data.quotes.get(symbol, []))
        out.funding[symbol] = [f for f in data.funding[symbol] if start_ns - 24 * NS_PER_HOUR <= f.ts_event < end_ns]
        out.slow[symbol] = [d for d in data.slow.get(symbol, []) if start_ns - 24 * NS_PER_HOUR <= d.ts_init < end_ns]
    return out


def merge_ticks(data: TickData, symbols) -> list:
    """All ticks of `symbols` in replay order, with their funding updates in the ticks' span: by
    time; at one time funding first, then quotes, then trades (the book a trade meets is the one
    quoted at that time); then in symbol order."""
    if len(symbols) == 1 and not data.quotes.get(symbols[0]) and not data.funding.get(symbols[0]):
        return list(data.trades[symbols[0]])  # the catalog's order already
    keyed = []
    for k, symbol in enumerate(symbols):
        keyed += [(q.ts_init, 1, k, q) for q in data.quotes.get(symbol, [])]
        keyed += [(t.ts_init, 2, k, t) for t in data.trades[symbol]]
    first, last = min(row[0] for row in keyed), max(row[0] for row in keyed)
    for k, symbol in enumerate(symbols):
        keyed += [(u.ts_init, 0, k, u) for u in data.funding.get(symbol, []) if first <= u.ts_init <= last]
    keyed.sort(key=lambda row: row[:3])  # stable: each list keeps its own order at one time
    return [row[3] for row in keyed]


def bars_from_trades(trades: list, bar_type, step_ns: int) -> list:
    """Time bars of `trades` as NautilusTrader aggregates them internally in a tick run.

    A bar closing at ``T`` holds the trades in ``(T - step, T]`` (a trade exactly on a boundary
    closes the bar; Binance klines put it in the next one) and the first bar also the trades at
    its start; a step without trades repeats the last close with zero volume; the last bar is
    the last one closing at or before the last trade. Bar runs on these bars see exactly what a
    tick run's strategies see (tests/backtest/test_ticks_vs_bars.py; benchmarks).

    Parameters
    ----------
    trades : list of TradeTick
        One instrument's trades in time order (at least one).
    bar_type : BarType
        The bars' type (e.g. ``...-1-MINUTE-LAST-EXTERNAL`` for a bar run).
    step_ns : int
        The bar length in ns.

    Returns
    -------
    list of Bar
    """
    import numpy as np
    from nautilus_trader.model.data import Bar
    from nautilus_trader.model.objects import Quantity

    ts = np.fromiter((t.ts_init for t in trades), dtype=np.int64, count=len(trades))
    prices = [t.price for t in trades]
    sizes = np.fromiter((t.size.as_double() for t in trades), dtype=np.float64, count=len(trades))
    size_precision = trades[0].size.precision
    closes = np.maximum((ts + step_ns - 1) // step_ns * step_ns, ts[0] // step_ns * step_ns + step_ns)
    bounds = np.searchsorted(closes, np.arange(int(closes[0]), int(ts[-1]) + 1, step_ns), side="right")
    out, lo, last = [], 0, prices[0]
    for k, hi in enumerate(bounds.tolist()):
        close_ns = int(closes[0]) + k * step_ns
        if hi == lo:
            out.append(Bar(bar_type, last, last, last, last, Quantity(0, size_precision), close_ns, close_ns))
            continue
        window = prices[lo:hi]
        high = max(window, key=lambda p: p.raw)
        low = min(window, key=lambda p: p.raw)
        volume = Quantity(round(float(sizes[lo:hi].sum()), size_precision), size_precision)
        out.append(Bar(bar_type, window[0], high, low, window[-1], volume, close_ns, close_ns))
        lo, last = hi, window[-1]
    return out


def tick_bar_type(plan: RunPlan, spec: InstrumentSpec) -> str:
    """The bar type a tick run's strategies see: the plan's timeframe aggregated from the trades."""
    from vibe_quant.data.bars import TIMEFRAME_BY_LABEL

    external = str(TIMEFRAME_BY_LABEL[plan.timeframe].bar_type(spec.nautilus_id))
    return external.replace("-EXTERNAL", "-INTERNAL")


def run_tick_backtest(plan: RunPlan, data: TickData, run_id: str | None = None,
                      progress: Progress | None = None) -> BacktestResult:  # fmt: skip
    """Run `plan` on the ticks of `data` and return its ledger, equity curve and metrics.

    Parameters
    ----------
    plan : RunPlan
    data : TickData
        From :func:`load_tick_data` (or built by hand: tests).
    run_id : str, optional
    progress : Progress, optional
        Gets a task advanced in tick time.

    Returns
    -------
    BacktestResult
        As a bar run's; ``bars_processed`` is the number of ticks replayed and ``extra`` holds
        ``{"mode": "ticks", "trades": n, "quotes": q, "quotes_free": [...]}``.

    Raises
    ------
    ConfigError
        A leverage above a symbol's maximum.
    """
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.backtest.models import LatencyModel, MakerTakerFeeModel
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money

    from vibe_quant.backtest.account import SimAccount
    from vibe_quant.backtest.tick_venue import TickFillModel, TickVenueModule

    instruments, states = instrument_states(plan, data, from_bars=False)
    recorder = RunRecorder()
    bar_types = {str(iid): BarType.from_str(tick_bar_type(plan, data.specs[st.symbol])) for iid, st in states.items()}
    module = TickVenueModule(states, recorder, bar_types, VENUE)
    v = plan.venue
    base, insert, update, cancel = v.latency_ns
    fill_model = TickFillModel(states, recorder, v.mode, v.spread_ticks, v.impact, base + insert,
                               v.prob_fill_on_limit, v.prob_slippage, v.seed)  # fmt: skip
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    try:
        engine.add_venue(
            Venue(VENUE), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None,
            starting_balances=[Money(v.starting_balance, USDT)], default_leverage=Decimal(str(v.leverage)),
            leverages={iid: Decimal(str(st.leverage)) for iid, st in states.items()}, modules=[module],
            fill_model=fill_model, fee_model=MakerTakerFeeModel(),
            latency_model=LatencyModel(base_latency_nanos=base, insert_latency_nanos=insert,
                                       update_latency_nanos=update, cancel_latency_nanos=cancel),
            book_type=BookType.L1_MBP, bar_execution=False, trade_execution=True,
        )  # fmt: skip
        for instrument in instruments:
            engine.add_instrument(instrument)
        from nautilus_trader.model.identifiers import ClientId

        ticks = merge_ticks(data, plan.symbols)  # funding updates too: strategies may subscribe to them
        slow = sorted((d for s in plan.symbols for d in data.slow.get(s, []) if d.ts_init <= ticks[-1].ts_init),
                      key=lambda d: d.ts_init)  # fmt: skip
        if slow:
            # Custom data needs a data client; added first, the stable sort by ts_init puts each record
            # before the ticks stamped with its time (state before the trades that see it), and the
            # ticks keep merge_ticks' order among themselves. Records before the first tick warm the
            # signal's slow windows up.
            engine.add_data(slow, client_id=ClientId(VENUE), sort=False)
            engine.add_data(ticks, sort=True)
        else:
            engine.add_data(ticks, sort=False)
        for message in funding_warnings(plan, data):
            recorder.warn(message)
            log.info(message)
        for symbol in data.quotes_free:
            recorder.warn(f"quotes-free: touch inferred from trades for {symbol} (no bookTicker quotes in the catalog)")
        account = SimAccount(module)
        gate = risk_gate(plan, engine, data.specs, account, recorder)
        legs = [LegSpec(st.symbol, str(iid), str(bar_types[str(iid)])) for iid, st in states.items()]
        strategies = plan.strategy.build(legs, StrategyPorts(account, recorder, gate, None))
        if gate is not None:
            for actor in gate.actors():
                engine.add_actor(actor)
        for strategy in strategies:
            engine.add_strategy(strategy)
        if progress is not None:
            label = f"backtest {plan.config.strategy} {','.join(plan.symbols)} ticks"
            module.report_progress(progress, label, ticks[0].ts_init, ticks[-1].ts_init)
        t0 = time.perf_counter()
        try:
            with frozen_gc():
                engine.run()
        finally:
            module.report_progress(None)
        elapsed = time.perf_counter() - t0
        module.finish()
        recorder.equity_ts, recorder.equity, recorder.exposure, recorder.margin = module.equity_curve(True)
        result = assemble(plan, recorder, states, run_id or "", module.ticks, elapsed)
        result.positions_report = positions_report(engine.cache)
        if gate is not None:
            result.extra["risk"] = gate.summary()
        result.extra.update(mode="ticks", trades=sum(len(data.trades[s]) for s in plan.symbols),
                            quotes=sum(len(data.quotes.get(s, [])) for s in plan.symbols),
                            quotes_free=list(data.quotes_free))  # fmt: skip
        for strategy in strategies:
            strategy.release()
        return result
    finally:
        engine.dispose()
