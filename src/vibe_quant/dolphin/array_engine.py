"""The array backtest: the NDAlphaEngine over a scan table's arrays (docs/specs.md#dolphin-engine).

:func:`run_array` drives :class:`~vibe_quant.dolphin.engine.EngineCore` over whole arrays. Flat, it
jumps to the next bar where the signal fires (a precomputed mask) and the entry rules allow one;
holding, it finds the first bar where the take-profit, the stop or the holding limit is reached
with one vectorised pass over the asset's prices (bar by bar only under an order-book provider,
whose dynamic limits change per bar). Sub-day ACB updates cut the day into segments at the bars
they are due. IRP ranks the assets with the compiled kernel. :func:`run_reference` runs the same
rows through the specification's per-bar loop (:class:`~vibe_quant.dolphin.engine.NDAlphaEngine`):
the two give identical ledgers, day rows and equity (tested, and timed in
``benchmarks/dolphin_engine.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from vibe_quant.dolphin import rules as R
from vibe_quant.dolphin.engine import Counts, DayRow, EngineCore, NDAlphaEngine, Trade
from vibe_quant.dolphin.engine_config import EngineConfig
from vibe_quant.dolphin.providers import AcbSchedule, McAssessor, OrderBookProvider, PostureSchedule
from vibe_quant.errors import UserError


@dataclass(frozen=True)
class ScanData:
    """The engine's input: rows of one or more dates (``offsets[d]..offsets[d+1]`` are date `d`'s rows)."""

    symbols: tuple[str, ...]
    days: tuple[dt.date, ...]
    offsets: np.ndarray  # (len(days) + 1,) int64
    ts: np.ndarray  # (T,) int64 ns, bar close
    vel_div: np.ndarray  # (T,) float64
    closes: np.ndarray  # (T, N) float64; <= 0 or NaN: no price on that row

    def __post_init__(self) -> None:
        t = len(self.ts)
        assert self.closes.shape == (t, len(self.symbols))
        assert len(self.vel_div) == t
        assert len(self.offsets) == len(self.days) + 1
        assert self.offsets[0] == 0
        assert self.offsets[-1] == t

    def window(self, start: dt.date, end: dt.date) -> ScanData:
        """The rows of dates `start`..`end` (inclusive).

        Raises
        ------
        UserError
            A date outside the data.
        """
        if not self.days or start < self.days[0] or end > self.days[-1] or end < start:
            span = f"{self.days[0]}..{self.days[-1]}" if self.days else "no dates"
            raise UserError(f"dates {start}..{end} are not inside the scan tables ({span})")
        if (start, end) == (self.days[0], self.days[-1]):
            return self
        a, b = self.days.index(start), self.days.index(end) + 1
        lo, hi = int(self.offsets[a]), int(self.offsets[b])
        return ScanData(self.symbols, self.days[a:b], self.offsets[a : b + 1] - lo, self.ts[lo:hi],
                        self.vel_div[lo:hi], self.closes[lo:hi])  # fmt: skip


@dataclass
class EngineResult:
    config: EngineConfig
    symbols: tuple[str, ...]
    trades: list[Trade]
    days: list[DayRow]
    counts: Counts
    capital: float
    ts: np.ndarray  # bar closes
    equity: np.ndarray  # capital + the open position marked at the bar's price, per bar


def _core_args(ob, mc, posture, acb) -> dict:
    args = {"ob": ob, "mc": mc, "posture": posture, "acb": acb}
    return {k: v for k, v in args.items() if v is not None}


def run_reference(data: ScanData, cfg: EngineConfig, ob: OrderBookProvider | None = None,
                  mc: McAssessor | None = None, posture: PostureSchedule | None = None,
                  acb: AcbSchedule | None = None) -> EngineResult:  # fmt: skip
    """The specification's per-bar loop over `data` (slow; the reference the array engine must equal)."""
    engine = NDAlphaEngine(cfg, data.symbols, **_core_args(ob, mc, posture, acb))
    for d, day in enumerate(data.days):
        s, e = data.offsets[d], data.offsets[d + 1]
        engine.process_day(day, data.ts[s:e], data.vel_div[s:e], data.closes[s:e])
    engine.finish()
    return _result(engine, data)


def run_array(data: ScanData, cfg: EngineConfig, ob: OrderBookProvider | None = None,
              mc: McAssessor | None = None, posture: PostureSchedule | None = None,
              acb: AcbSchedule | None = None) -> EngineResult:  # fmt: skip
    """The engine over `data`'s arrays, jumping between the bars where something can happen."""
    core = EngineCore(cfg, data.symbols, **_core_args(ob, mc, posture, acb))
    _ArrayDriver(core, data).run()
    return _result(core, data)


class _ArrayDriver:
    def __init__(self, core: EngineCore, data: ScanData):
        self.core, self.data = core, data
        cfg = core.cfg
        self.valid = data.closes > 0  # NaN compares False
        self.count = np.cumsum(self.valid, axis=0, dtype=np.int64)  # valid prices up to and including each row
        fires = data.vel_div < cfg.vel_div_threshold if cfg.direction < 0 else data.vel_div > cfg.long_threshold
        rows = np.arange(len(data.ts))
        self.candidates = np.flatnonzero(fires & (rows + 1 >= cfg.lookback))

    def run(self) -> None:
        core, data = self.core, self.data
        last = len(data.ts) - 1
        for d, day in enumerate(data.days):
            core.begin_day(day)
            t, e = int(data.offsets[d]), int(data.offsets[d + 1])
            while t < e:
                core.apply_updates(int(data.ts[t]))
                due = core.next_update_ts()
                seg_end = e if due is None else min(e, int(np.searchsorted(data.ts, due, "left")))
                t = self._exit(t, seg_end) if core.position is not None else self._entry(t, seg_end)
            core.end_day()
        core.bar_count = last + 1
        if core.position is not None:
            a = core.position.asset
            seen = np.flatnonzero(self.valid[:, a])
            core.end_of_data(last, int(data.ts[last]), float(data.closes[seen[-1], a]))

    def _exit(self, t: int, end: int) -> int:
        """Close the position at its first exit bar in [t, end) and return the bar after it, else `end`."""
        core, data = self.core, self.data
        p = core.position
        a = p.asset
        ok = self.valid[t:end, a]
        if core.day_posture == "HIBERNATE" or p.subday_exit or core.ob.enabled:
            hits = np.flatnonzero(ok)  # checked bar by bar below
        else:
            cfg = core.cfg
            px = data.closes[t:end, a]
            pnl = (p.entry_price - px) / p.entry_price if p.direction < 0 else (px - p.entry_price) / p.entry_price
            held = np.arange(t, end) - p.entry_bar
            hits = np.flatnonzero(
                ok & ((pnl >= cfg.fixed_tp_pct) | (pnl <= -cfg.stop_pct) | (held >= cfg.max_hold_bars))
            )
        for i in hits:
            x = t + int(i)
            price = float(data.closes[x, a])
            reason = core.exit_reason(x, int(data.ts[x]), price)
            if reason is not None:
                core.close(x, int(data.ts[x]), price, reason)
                return x + 1  # no entry on the exit bar
        return end

    def _entry(self, t: int, end: int) -> int:
        """Try an entry at each candidate bar in [t, end) until one opens; return the bar after it, else `end`."""
        core, data, cfg = self.core, self.data, self.core.cfg
        if core.regime_dd_halt:
            return end
        i = int(np.searchsorted(self.candidates, max(t, core.last_exit_bar + 1), "left"))
        while i < len(self.candidates) and self.candidates[i] < end:
            c = int(self.candidates[i])
            ts_c = int(data.ts[c])
            trend = float(data.vel_div[c] - data.vel_div[c - cfg.trend_lag + 1]) if c + 1 >= cfg.trend_lag else None
            opened = core.try_entry(c, ts_c, float(data.vel_div[c]), trend, lambda c=c, ts_c=ts_c: self._select(c, ts_c),
                                    lambda j, c=c: self._history(c, j, cfg.dc_lookback_bars + 1),
                                    lambda j, c=c: float(data.closes[c, j]) if self.valid[c, j] else 0.0)  # fmt: skip
            if opened is not None:
                return c + 1
            i += 1
        return end

    def _select(self, c: int, ts_ns: int) -> int:
        core, data = self.core, self.data
        w = core.cfg.irp_window
        eligible = self.valid[c] & (self.count[c] >= w)
        if core.ob.enabled:
            for j in np.flatnonzero(eligible):
                eligible[j] = core.ob.placement(data.symbols[j], ts_ns).depth_quality >= 0.20
        before = self.count[c - w] if c >= w else 0
        full = self.count[c] - before == w  # the last w rows all have prices
        if c + 1 >= w and np.all(full[eligible]):
            windows = data.closes[c - w + 1 : c + 1]
        else:
            windows = np.zeros((w, len(data.symbols)))
            for j in np.flatnonzero(eligible):
                windows[:, j] = self._history(c, j, w)
        return int(R.best_irp_asset_nb(windows, eligible, core.cfg.direction, core._irp))

    def _history(self, c: int, j: int, n: int) -> np.ndarray:
        """Asset `j`'s last `n` prices up to row `c` (fewer at the start of the data)."""
        if c + 1 >= n and self.count[c, j] - (self.count[c - n, j] if c >= n else 0) == n:
            return self.data.closes[c - n + 1 : c + 1, j]
        rows = np.flatnonzero(self.valid[: c + 1, j])[-n:]
        return self.data.closes[rows, j]


def _result(core: EngineCore, data: ScanData) -> EngineResult:
    return EngineResult(core.cfg, data.symbols, core.trades, core.days, core.counts, core.capital, data.ts,
                        equity_curve(data, core.trades, core.cfg.initial_capital))  # fmt: skip


def equity_curve(data: ScanData, trades: list[Trade], initial: float) -> np.ndarray:
    """Capital after the trades closed so far plus the open position marked at its asset's last price, per bar."""
    t = len(data.ts)
    realized = np.zeros(t)
    for tr in trades:
        realized[tr.exit_bar] += tr.net
    equity = initial + np.cumsum(realized)
    index = {s: j for j, s in enumerate(data.symbols)}
    for tr in trades:
        lo, hi = tr.entry_bar, tr.exit_bar  # open at the end of bars lo..hi-1
        if hi <= lo:
            continue
        px = data.closes[lo:hi, index[tr.asset]].copy()
        bad = ~(px > 0)
        if bad.any():  # carry the last price over rows without one
            idx = np.where(bad, 0, np.arange(len(px)))
            np.maximum.accumulate(idx, out=idx)
            px = px[idx]
        equity[lo:hi] += tr.notional * R.pnl_pct(tr.entry_price, px, tr.direction)
    return equity
