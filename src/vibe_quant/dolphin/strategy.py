"""``DolphinStrategy``: the NDAlphaEngine as one NautilusTrader strategy over the run's perpetuals
(docs/specs.md#dolphin-on-nautilustrader).

Two modes (``DolphinStrategyConfig.mode``):

* ``orders`` (the default): at each close, once the last leg's bar has arrived, the closes of every
  leg go through a :class:`~vibe_quant.dolphin.scans.StreamingScanner`; once it yields rows, each
  row goes to :meth:`NDAlphaEngine.process_bar` with the engine's capital set to the account's
  equity. What the engine did becomes orders through the legs: a trade it closed flattens that
  asset's leg (the engine's exit reason is the order's reason), a position it opened is a market
  entry of ``notional / price`` (floored to the step, capped by the position limit). Fills are the
  perp core's (next open, fees, slippage, funding, liquidation); the engine's own ledger
  (``self.engine.trades``) is kept for the comparison.
* ``replay`` (parity with the engine's own loop): on the first bar of a date not processed yet,
  that date's stored scan rows go through :meth:`NDAlphaEngine.process_day`; the day's row is kept
  in ``self.results``. No orders. At stop, :meth:`NDAlphaEngine.finish` closes an open position
  (``END_OF_DATA``).

A sub-day ACB update arrives through :meth:`DolphinStrategy.on_acb_event`, which only stores it;
the next bar applies it (the pending-flag pattern: the event may come from another thread).

With a feature store (``store``: a ``redis://`` URL without a password, or ``env`` for the URL in
``$VQ_DOLPHIN_STORE``), the strategy runs under DOLPHIN's services (docs/specs.md#dolphin-services):
the ACB boost and beta come from the store (the store's listener only sets the pending flag), the
date's MC status from the MC assessor's record, and the posture from the watchdog's, read at every
bar (an unreachable store reads HIBERNATE). Each bar it beats the ``strategy`` heartbeat and writes
its equity and peak; each finished date its result (``DOLPHIN_PNL_BLUE`` for SHORT, ``GREEN`` for
LONG).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
from nautilus_trader.model.data import Bar

from vibe_quant.data.bars import TIMEFRAMES
from vibe_quant.dolphin.config import ScanConfig
from vibe_quant.dolphin.engine import DayRow, NDAlphaEngine
from vibe_quant.dolphin.engine_config import engine_config
from vibe_quant.dolphin.providers import AcbSchedule, PostureSchedule
from vibe_quant.dolphin.scans import StreamingScanner
from vibe_quant.errors import ConfigError
from vibe_quant.strategy.portfolio import PortfolioStrategy, PortfolioStrategyConfig
from vibe_quant.strategy.ports import StrategyPorts

MODES = ("orders", "replay")
NS_PER_DAY = 86_400 * 10**9


class DolphinStrategyConfig(PortfolioStrategyConfig, frozen=True, kw_only=True):
    """The engine's fields (``engine``, EngineConfig fields; missing ones: the champion's), the scan
    windows of the streaming scanner (``orders``), and the scan directory (``replay`` only)."""

    mode: str = "orders"
    engine: dict = msgspec.field(default_factory=dict)
    windows: tuple[int, ...] = (50, 150, 300, 750)
    scans: str | None = None
    store: str | None = None  # a redis:// URL without a password, or "env" ($VQ_DOLPHIN_STORE)


STORE_ENV = "VQ_DOLPHIN_STORE"


def store_url(value: str) -> str:
    """The feature store URL `value` names (``env``: ``$VQ_DOLPHIN_STORE``).

    Raises
    ------
    ConfigError
        ``env`` with the variable unset, or a URL carrying a password (it would be saved with the run).
    """
    from urllib.parse import urlsplit

    if value == "env":
        url = os.environ.get(STORE_ENV)
        if not url:
            raise ConfigError(f"DOLPHIN strategy store 'env': set ${STORE_ENV} to the feature store URL")
        return url
    if urlsplit(value).password:
        raise ConfigError("DOLPHIN strategy store: the URL carries a password, which would be saved with the run; "
                          f"put the URL in ${STORE_ENV} and write store: env")  # fmt: skip
    return value


class StoreAcb:
    """The ACB's boost and beta as the services last wrote them (1.0 and 0 before any)."""

    updates = ()

    def __init__(self, store) -> None:
        self.store = store

    def for_date(self, day: dt.date) -> tuple[float, float]:
        return self.store.read_acb() or (1.0, 0.0)


class StoreAssessor:
    """The MC assessor's record for the date (OK when it has none for that date)."""

    def __init__(self, store) -> None:
        self.store = store

    def assess(self, config: dict, day: dt.date):
        from vibe_quant.dolphin.providers import McReport

        record = self.store.read_mc() or {}
        if record.get("date") != day.isoformat():
            return McReport(0.0, 0.0)
        return McReport(float(record["catastrophic_probability"]), float(record["envelope_score"]))


def symbol_of(instrument_id: str) -> str:
    """``FILUSDT-PERP.BINANCE`` -> ``FILUSDT`` (the scan tables' column name)."""
    return instrument_id.split(".")[0].removesuffix("-PERP")


def timeframe_of(bar_type) -> str:
    """The timeframe label (``1h``) of a NautilusTrader bar type.

    Raises
    ------
    ConfigError
        A bar step that is not one of our timeframes.
    """
    minutes = int(bar_type.spec.timedelta.total_seconds()) // 60
    for tf in TIMEFRAMES:
        if tf.minutes == minutes:
            return tf.label
    raise ConfigError(f"bar type {bar_type}: a {minutes}-minute step is not one of {[t.label for t in TIMEFRAMES]}")


class DolphinStrategy(PortfolioStrategy):
    """The NDAlphaEngine on NautilusTrader (see the module docstring).

    Parameters
    ----------
    config : DolphinStrategyConfig
    ports : StrategyPorts, optional
        Given by the backtest runner; a node resolves them at start.
    posture : callable, optional
        The survival stack's posture per date (default: APEX every day).
    acb : AcbSchedule, optional
        The ACB's daily boost and beta (default: the scan directory's factor table in ``replay``,
        boost 1.0 and beta 0 otherwise).

    Raises
    ------
    ConfigError
        An unknown mode, ``replay`` without ``scans``, a bad engine field.
    """

    def __init__(self, config: DolphinStrategyConfig, ports: StrategyPorts | None = None,
                 posture: Callable[[dt.date], str] | None = None, acb: AcbSchedule | None = None,
                 store=None) -> None:  # fmt: skip
        super().__init__(config, ports)
        self.store = store  # a DolphinStore; else opened from config.store at start
        self._subscription = None
        self._peak = 0.0
        self.check(config)
        self.cfg = engine_config(config.engine, f"strategy {self.id.value} engine")
        self.posture = posture or PostureSchedule()
        self.symbols = tuple(symbol_of(i) for i in config.instrument_ids)
        self.step_ns = int(self.legs[0].bar_type.spec.timedelta.total_seconds()) * 10**9
        self.results: dict[dt.date, dict] = {}
        self._processed_dates: set[dt.date] = set()
        self._pending_acb: dict | None = None
        if config.mode == "replay":
            from vibe_quant.dolphin.backtest import load_acb_schedule
            from vibe_quant.dolphin.store import read_manifest

            scans = Path(config.scans)
            manifest = read_manifest(scans)
            if manifest is None:
                raise ConfigError(f"strategy {self.id.value}: {scans} holds no scan tables (no manifest)")
            universe = tuple(manifest["universe"])
            if acb is None and self.cfg.use_acb:
                acb, _note = load_acb_schedule(scans)
            self.engine = NDAlphaEngine(self.cfg, universe, posture=self.posture, acb=acb or AcbSchedule())
        else:
            self.engine = NDAlphaEngine(self.cfg, self.symbols, posture=self.posture, acb=acb or AcbSchedule())
            scan = ScanConfig(timeframe=timeframe_of(self.legs[0].bar_type), windows=tuple(config.windows))
            self.scanner = StreamingScanner(scan, len(self.legs))
            self._leg_index = {leg.bar_type: j for j, leg in enumerate(self.legs)}
            self._bars: list[Bar | None] = [None] * len(self.legs)
            self._last_push: int | None = None

    def on_start(self) -> None:
        super().on_start()
        if self.store is None and self.config.store:
            from vibe_quant.dolphin.features import DolphinStore, open_store

            self.store = DolphinStore(open_store(store_url(self.config.store)))
        if self.store is not None:
            from vibe_quant.dolphin.features import ACB_KEY, FEATURES_MAP

            self.engine.acb, self.engine.mc = StoreAcb(self.store), StoreAssessor(self.store)
            self.engine.posture = lambda day: self._live_posture()
            self._subscription = self.store.store.listen(FEATURES_MAP, ACB_KEY, self._on_store_acb)

    def _on_store_acb(self, value: str | None) -> None:
        """The store's listener thread: only the pending flag (never the engine)."""
        if value is not None:
            self.on_acb_event(json.loads(value))

    def _live_posture(self) -> str:
        """The watchdog's posture; HIBERNATE when the store does not answer or holds none."""
        try:
            record = self.store.read_posture() if self.store.store.ping() else None
        except Exception as exc:  # any store failure reads as the kill switch, not a crash
            self.log.warning(f"DOLPHIN feature store unreadable ({exc}): HIBERNATE")
            record = None
        return "HIBERNATE" if record is None else record["posture"]

    def _report(self) -> None:
        """Heartbeat, equity and peak, and each finished date's result, to the store."""
        store = self.store
        store.beat("strategy", time.time_ns())
        equity = self.equity()
        self._peak = max(self._peak, equity)
        store.write_equity(equity, self._peak)
        self._write_results()

    def _write_results(self) -> None:
        for row in self.engine.days[len(self.results) :]:
            result = {"date": row.date.isoformat(), "pnl": row.pnl, "capital": row.capital, "boost": row.boost,
                      "beta": row.beta, "mc_status": row.mc_status, "trades": row.trades}  # fmt: skip
            self.store.write_result(self.cfg.direction, row.date, result)
            self.results[row.date] = result

    @classmethod
    def check(cls, config: DolphinStrategyConfig) -> None:
        if config.mode not in MODES:
            raise ConfigError(f"DOLPHIN strategy mode {config.mode!r}: choose one of {', '.join(MODES)}")
        if config.mode == "replay" and not config.scans:
            raise ConfigError("DOLPHIN strategy mode 'replay' needs scans (the scan directory it replays)")
        ScanConfig(windows=tuple(config.windows))  # raises on bad windows
        engine_config(config.engine, "DOLPHIN strategy engine")

    # -- the pending-flag pattern ---------------------------------------------------------------

    def on_acb_event(self, payload: dict) -> None:
        """A sub-day ACB update (``{"boost", "beta"}``): stored only; the next bar applies it.

        It may be called from another thread: touching the engine here would race the bar loop.
        """
        self._pending_acb = payload

    def _apply_pending_acb(self) -> None:
        payload, self._pending_acb = self._pending_acb, None
        if payload is not None:
            self.engine.update_acb_boost(float(payload["boost"]), float(payload["beta"]))

    # -- bars -----------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self._apply_pending_acb()
        if self.config.mode == "replay":
            self._replay(bar)
        else:
            self._orders(bar)

    def _day_of(self, ts_ns: int) -> dt.date:
        """The UTC date a bar closing at `ts_ns` opened on (the scan file holding its row)."""
        return dt.datetime.fromtimestamp((ts_ns - self.step_ns) // 10**9, dt.UTC).date()

    def load_day(self, day: dt.date):
        from vibe_quant.dolphin.backtest import load_scan_data

        return load_scan_data(Path(self.config.scans), day, day)

    def _replay(self, bar: Bar) -> None:
        day = self._day_of(bar.ts_event)
        if day in self._processed_dates:
            return
        self._processed_dates.add(day)  # marked first: a failing day is not retried on every bar
        data = self.load_day(day)
        # a HIBERNATE day is processed too: the engine closes an open position at its first row
        row: DayRow = self.engine.process_day(day, data.ts, data.vel_div, data.closes)
        self.results[day] = {"date": row.date, "pnl": row.pnl, "capital": row.capital, "boost": row.boost,
                             "beta": row.beta, "mc_status": row.mc_status, "trades": row.trades}  # fmt: skip

    def _orders(self, bar: Bar) -> None:
        j = self._leg_index[bar.bar_type]
        self._bars[j] = bar
        if j != len(self.legs) - 1:
            return  # the decision waits for the last leg's bar of this close
        ts = bar.ts_event
        if any(b is None or b.ts_event != ts for b in self._bars):
            return  # a leg has no bar at this close: no scan row
        closes = np.array([b.close.as_double() for b in self._bars])
        if self._last_push is not None and ts != self._last_push + self.step_ns:
            self.log.warning(f"DOLPHIN scanner: no full cross-section for {(ts - self._last_push) // self.step_ns - 1}"
                             " close(s) before this one; the scanner warms up again")  # fmt: skip
            self.scanner = StreamingScanner(self.scanner.config, len(self.legs))
        self._last_push = ts
        row = self.scanner.push(ts, closes)
        if row is not None:
            self._step(ts, float(row["vel_div"]), closes)
        if self.store is not None:
            self._report()

    def _step(self, ts: int, vel_div: float, closes: np.ndarray) -> None:
        engine = self.engine
        day = self._day_of(ts)
        if engine.day != day:
            engine.begin_day(day)
        if self.store is not None:
            engine.set_posture(self._live_posture())
        before_trades, before_position = len(engine.trades), engine.position
        engine.capital = self.equity()  # size from the real account
        engine.process_bar(ts, vel_div, {j: float(c) for j, c in enumerate(closes)})
        for trade in engine.trades[before_trades:]:
            leg = self.legs[self.symbols.index(trade.asset)]
            leg.flatten(ts, trade.exit_reason)
            if self.store is not None:
                self.store.write_trade(self.cfg.direction, day, trade.trade_id, msgspec.to_builtins(trade))
        position = engine.position
        if position is not None and position is not before_position:
            leg, bar = self.legs[position.asset], self._bars[position.asset]
            price = bar.close.as_double()
            qty = leg.floor_qty(min(position.notional / price, leg.max_qty(price)))
            leg.signal(bar, position.direction, vel_div=vel_div, notional=position.notional,
                       leverage=position.leverage)  # fmt: skip
            leg.go(bar, position.direction, qty, reason="entry")

    def on_stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        engine = self.engine
        if engine.day is not None:
            engine.end_day()
        if engine.global_bar:
            engine.finish()  # END_OF_DATA: the engine's own ledger; the run's end closes the legs
        if self.store is not None and self.config.mode == "orders":
            self._write_results()
            if self.config.store:  # opened here: closed here
                self.store.close()
