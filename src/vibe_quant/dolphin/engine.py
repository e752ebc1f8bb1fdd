"""The NDAlphaEngine: one state machine, two drivers (docs/specs.md#dolphin-engine).

:class:`EngineCore` holds the state the specification's ``process_day``/``process_bar`` loop
carries (capital, the open position, the warm-up and exit-bar counters, the Layer 7 trade memory,
the day's ACB/MC/posture, the RNG) and makes every decision: the day's gates, the exit of an open
position on a bar, the entry at a bar, the accounting of an exit. Two drivers feed it bars:

* :class:`NDAlphaEngine` (this module), the specification's per-bar loop: every row goes through
  ``process_bar`` with a ``{symbol: price}`` dict and Python price histories. It is the slow
  reference, and the per-bar API a NautilusTrader strategy calls.
* :func:`vibe_quant.dolphin.array_engine.run_array`, over the scan table's arrays: it jumps from
  one bar where something can happen to the next and ranks IRP with the compiled kernel.

Both make the same calls on the core at the same bars, so their ledgers are identical (tested).

Per bar, in this order: pending ACB updates whose time has come are applied (a drop from
>= 1.25 to < 1.10 marks the open position for ``SUBDAY_ACB_NORMALIZATION``); the bar's prices join
the histories; an open position is checked for an exit (HIBERNATE_HALT, SUBDAY, FIXED_TP, STOP_LOSS,
MAX_HOLD, in this priority; a bar without a price for its asset checks nothing); then, flat, not on
the exit bar, not halted, after ``lookback`` bars, an entry is tried. RNG: every exit draws three
uniforms from ``RandomState(seed)`` in this order, whatever the profile: the entry refund, the exit
refund, the legacy edge; so switching a bonus off never shifts another trade's draws.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from vibe_quant.dolphin import rules as R
from vibe_quant.dolphin.engine_config import EngineConfig
from vibe_quant.dolphin.providers import (
    AcbSchedule,
    McAssessor,
    NullOrderBook,
    OkAssessor,
    OrderBookProvider,
    PostureSchedule,
)
from vibe_quant.errors import ConfigError

FIXED_TP, STOP_LOSS, MAX_HOLD = "FIXED_TP", "STOP_LOSS", "MAX_HOLD"
HIBERNATE_HALT, SUBDAY = "HIBERNATE_HALT", "SUBDAY_ACB_NORMALIZATION"
END_OF_DATA = "END_OF_DATA"


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One closed trade (a ledger row). Money in the account currency, rates as fractions."""

    trade_id: int
    asset: str
    direction: int
    entry_ts: int
    exit_ts: int
    entry_bar: int
    exit_bar: int
    bars_held: int
    entry_price: float
    exit_price: float  # after the exit slip
    exit_bar_price: float  # the bar's price the exit was decided on
    notional: float
    leverage: float
    fraction: float
    bucket: int
    vel_div: float
    regime_size_mult: float
    posture: str
    exit_reason: str
    price_return: float  # (entry - exit) / entry for SHORT, the exit slip included, no bonuses
    pnl_pct_raw: float  # price_return plus the bonuses drawn (the specification's pnl_pct_raw)
    gross: float  # pnl_pct_raw * notional
    entry_fee: float
    exit_fee: float
    refund_entry: bool
    refund_exit: bool
    edge: bool
    edge_pct: float
    net: float
    capital: float  # after this trade


@dataclass
class Position:
    trade_id: int
    asset: int
    direction: int
    entry_price: float
    notional: float
    leverage: float
    fraction: float
    bucket: int
    entry_bar: int
    entry_ts: int
    vel_div: float
    regime_size_mult: float
    posture: str
    subday_exit: bool = False


@dataclass
class DayRow:
    date: dt.date
    pnl: float
    capital: float
    boost: float
    beta: float
    mc_status: str
    trades: int
    posture: str


@dataclass
class Counts:
    """Bonuses drawn and gates that stopped an entry (the report's counts)."""

    refund_entry: int = 0
    refund_exit: int = 0
    edge: int = 0
    candidates: int = 0  # bars where the signal fired and an entry was tried
    no_irp_asset: int = 0
    dc_contradict: int = 0
    ob_skip: int = 0
    halted_days: int = 0


@dataclass
class EngineCore:
    """The engine's state and decisions, driven bar by bar by a driver (see the module docstring)."""

    cfg: EngineConfig
    symbols: tuple[str, ...]
    ob: OrderBookProvider = field(default_factory=NullOrderBook)
    mc: McAssessor = field(default_factory=OkAssessor)
    posture: Callable[[dt.date], str] = field(default_factory=PostureSchedule)
    acb: AcbSchedule = field(default_factory=AcbSchedule)

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.capital = cfg.initial_capital
        self.rng = np.random.RandomState(cfg.seed)
        self.position: Position | None = None
        self.last_exit_bar = -1
        self.bar_count = 0
        self.trades: list[Trade] = []
        self.days: list[DayRow] = []
        self.counts = Counts()
        self._bucket_wins = {b: deque(maxlen=cfg.bucket_window) for b in range(4)}
        self._recent_losses: deque = deque(maxlen=cfg.streak_window)
        self._update_i = 0  # next sub-day ACB update to apply
        self._irp = R.irp_params(cfg)
        self.fallback = -1
        if not cfg.use_asset_selection:
            if cfg.dc_fallback_symbol not in self.symbols:
                raise ConfigError(
                    f"dc_fallback_symbol {cfg.dc_fallback_symbol!r} is not in the scan universe "
                    f"({len(self.symbols)} symbols); name one of them, or turn use_asset_selection on"
                )
            self.fallback = self.symbols.index(cfg.dc_fallback_symbol)
        self.day: dt.date | None = None
        self.day_base_boost, self.day_beta, self.day_mc_scale = 1.0, 0.0, 1.0
        self.day_mc_status, self.day_posture, self.regime_dd_halt = R.MC_OK, "APEX", False
        self._day_open_capital = self.capital
        self._day_trades = 0
        self._day_boost = (1.0, 0.0)

    # -- days -------------------------------------------------------------------------------------

    def begin_day(self, day: dt.date) -> None:
        """The day's ACB boost and beta, MC gate and posture (``process_day``'s preamble)."""
        if self.day is not None:
            self.end_day()
        cfg = self.cfg
        self.day = day
        self.day_posture = self.posture(day)
        if cfg.use_acb:
            self.day_base_boost, self.day_beta = self.acb.for_date(day)
        else:
            self.day_base_boost, self.day_beta = 1.0, 0.0
        report = self.mc.assess({**msgspec.to_builtins(cfg), "max_leverage": cfg.max_leverage * self.day_base_boost},
                                day)  # fmt: skip
        self.day_mc_status = R.mc_status(report.catastrophic_probability, report.envelope_score)
        self.day_mc_scale = cfg.mc_orange_scale if self.day_mc_status == R.MC_ORANGE else 1.0
        self.regime_dd_halt = self.day_mc_status == R.MC_RED or self.day_posture in ("TURTLE", "HIBERNATE")
        self.counts.halted_days += self.regime_dd_halt
        self._day_open_capital = self.capital
        self._day_trades = 0
        self._day_boost = (self.day_base_boost, self.day_beta)

    def set_posture(self, posture: str) -> None:
        """A posture change within the day (the survival stack's): STALKER caps the next entries' leverage,
        TURTLE and HIBERNATE halt entries, HIBERNATE closes an open position at its next price."""
        self.day_posture = posture
        self.regime_dd_halt = self.day_mc_status == R.MC_RED or posture in ("TURTLE", "HIBERNATE")

    def end_day(self) -> None:
        assert self.day is not None
        self.days.append(DayRow(self.day, self.capital - self._day_open_capital, self.capital, self._day_boost[0],
                                self._day_boost[1], self.day_mc_status, self._day_trades, self.day_posture))  # fmt: skip
        self.day = None

    # -- ACB --------------------------------------------------------------------------------------

    def update_acb_boost(self, boost: float, beta: float) -> None:
        """A sub-day ACB update: replaces the day's boost and beta; from >= 1.25 to < 1.10 the open
        position is closed at the next price of its asset (``SUBDAY_ACB_NORMALIZATION``)."""
        old = self.day_base_boost
        self.day_base_boost, self.day_beta = boost, beta
        if self.position is not None and old >= self.cfg.subday_exit_from and boost < self.cfg.subday_exit_to:
            self.position.subday_exit = True

    def apply_updates(self, ts_ns: int) -> None:
        """Apply the scheduled sub-day updates due at a bar closing at `ts_ns`."""
        updates = self.acb.updates
        while self._update_i < len(updates) and updates[self._update_i].ts_ns <= ts_ns:
            u = updates[self._update_i]
            self.update_acb_boost(u.boost, u.beta)
            self._update_i += 1

    def next_update_ts(self) -> int | None:
        updates = self.acb.updates
        return updates[self._update_i].ts_ns if self._update_i < len(updates) else None

    def regime_size_mult(self, vel_div: float) -> float:
        return R.regime_size_mult(vel_div, self.day_base_boost, self.day_beta, self.day_mc_scale, self.cfg)

    # -- exits ------------------------------------------------------------------------------------

    def exit_reason(self, bar: int, ts_ns: int, price: float) -> str | None:
        """The reason the open position exits at `price` on bar `bar`, or None."""
        p = self.position
        assert p is not None
        if self.day_posture == "HIBERNATE":
            return HIBERNATE_HALT
        if p.subday_exit:
            return SUBDAY
        cfg = self.cfg
        pnl = R.pnl_pct(p.entry_price, price, p.direction)
        tp, sl, hold = cfg.fixed_tp_pct, cfg.stop_pct, cfg.max_hold_bars
        if self.ob.enabled:
            tp, sl, hold = self._duress(p, ts_ns, pnl, tp, sl, hold)
        if pnl >= tp:
            return FIXED_TP
        if pnl <= -sl:
            return STOP_LOSS
        if bar - p.entry_bar >= hold:
            return MAX_HOLD
        return None

    def _duress(self, p: Position, ts_ns: int, pnl: float, tp: float, sl: float, hold: int) -> tuple[float, float, int]:
        """OB-5: the order book's dynamic take-profit, stop and holding limit."""
        symbol = self.symbols[p.asset]
        macro, sig = self.ob.macro(ts_ns), self.ob.signal(symbol, ts_ns)
        eff_imb = -sig.imbalance_ma5 if p.direction < 0 else sig.imbalance_ma5
        base_hold = self.cfg.max_hold_bars
        stressed = False
        if macro.cascade_count > 0:
            tp *= 1.40
            hold = int(base_hold * 0.50)
            stressed = True
        elif macro.regime_signal == 1:
            sl = 0.10
            if pnl > 0.0:
                tp *= 0.60
            if eff_imb < -0.10:
                hold = int(base_hold * 0.40)
            stressed = True
        elif macro.regime_signal == -1 and eff_imb > 0.15:
            hold = int(base_hold * 1.50)
        if sig.withdrawal_velocity < -0.20 and not stressed:
            hold = min(hold, int(base_hold * 0.40))
            if pnl > 0.0:
                tp *= 0.75
        return tp, sl, hold

    def close(self, bar: int, ts_ns: int, price: float, reason: str) -> Trade:
        """Close the open position at bar price `price` (the exit slip applied), book fees and bonuses."""
        cfg, p = self.cfg, self.position
        assert p is not None
        slip = cfg.sl_slip if reason == STOP_LOSS else cfg.tp_slip if reason == FIXED_TP else cfg.other_slip
        xp = R.exit_price(price, p.direction, slip)
        price_return = R.pnl_pct(p.entry_price, xp, p.direction)
        u_entry, u_exit, u_edge = self.rng.random_sample(3)
        refund_entry = bool(cfg.refunds and u_entry < cfg.sp_maker_entry_rate)
        refund_exit = bool(cfg.refunds and reason != STOP_LOSS and u_exit < cfg.sp_maker_exit_rate)
        raw = price_return
        if refund_entry:
            raw += cfg.sp_refund
        if refund_exit:
            raw += cfg.sp_refund
        edge_pct = 0.0
        if cfg.legacy_edge:
            if self.ob.enabled:
                placement = self.ob.placement(self.symbols[p.asset], ts_ns)
                if placement.depth_quality > 0.5:
                    edge_pct = placement.fill_probability * cfg.ob_edge_bps * 1e-4
            elif u_edge < cfg.ob_confirm_rate:
                edge_pct = cfg.ob_edge_bps * 1e-4
        raw += edge_pct
        gross = raw * p.notional
        entry_fee = cfg.entry_fee_rate * p.notional
        exit_fee = (cfg.taker_fee if reason == STOP_LOSS else cfg.exit_fee_rate) * p.notional
        net = gross - entry_fee - exit_fee
        self.capital += net
        trade = Trade(
            trade_id=p.trade_id, asset=self.symbols[p.asset], direction=p.direction, entry_ts=p.entry_ts,
            exit_ts=ts_ns, entry_bar=p.entry_bar, exit_bar=bar, bars_held=bar - p.entry_bar,
            entry_price=p.entry_price, exit_price=xp, exit_bar_price=price, notional=p.notional, leverage=p.leverage, fraction=p.fraction,
            bucket=p.bucket, vel_div=p.vel_div, regime_size_mult=p.regime_size_mult, posture=p.posture,
            exit_reason=reason, price_return=price_return, pnl_pct_raw=raw, gross=gross, entry_fee=entry_fee,
            exit_fee=exit_fee, refund_entry=refund_entry, refund_exit=refund_exit, edge=edge_pct > 0,
            edge_pct=edge_pct, net=net, capital=self.capital,
        )  # fmt: skip
        self.trades.append(trade)
        self.counts.refund_entry += refund_entry
        self.counts.refund_exit += refund_exit
        self.counts.edge += edge_pct > 0
        self._bucket_wins[p.bucket].append(net > 0)
        self._recent_losses.append(net <= 0)
        self._day_trades += 1
        self.position = None
        self.last_exit_bar = bar
        return trade

    def end_of_data(self, bar: int, ts_ns: int, price: float) -> Trade:
        """Close the open position at the end of the data, booked on the last day's row."""
        trade = self.close(bar, ts_ns, price, END_OF_DATA)
        if self.day is None and self.days:
            row = self.days[-1]
            row.pnl += trade.net
            row.capital = self.capital
            row.trades += 1
        return trade

    # -- entries ----------------------------------------------------------------------------------

    def can_enter(self, bar: int) -> bool:
        """Flat, not on the exit bar, not halted, warmed up (``bar_count`` counts this bar)."""
        return (self.position is None and bar > self.last_exit_bar and not self.regime_dd_halt
                and bar + 1 >= self.cfg.lookback)  # fmt: skip

    def try_entry(self, bar: int, ts_ns: int, vel_div: float, vd_trend: float | None,
                  select: Callable[[], int], history: Callable[[int], Sequence[float]],
                  price: Callable[[int], float]) -> Position | None:  # fmt: skip
        """``_try_entry``: IRP (`select` gives the asset or -1), signal + DC (on `history(asset)`),
        OB-2, sizing, the leverage clamp; opens the position at `price(asset)` (the bar's price)."""
        cfg = self.cfg
        if self.capital <= 0 or not R.signal_fires(vel_div, cfg):
            return None
        self.counts.candidates += 1
        asset = select() if cfg.use_asset_selection else self.fallback
        if asset < 0 or not price(asset) > 0:
            self.counts.no_irp_asset += 1
            return None
        dc = R.direction_confirmation(history(asset), cfg) if cfg.dc_enabled else R.NEUTRAL
        if dc == R.CONTRADICT and cfg.dc_skip_contradicts:
            self.counts.dc_contradict += 1
            return None
        if self.ob.enabled:
            sig = self.ob.signal(self.symbols[asset], ts_ns)
            if R.ob_confirmation(sig.imbalance_ma5, sig.imbalance_persistence, cfg.direction) is None:
                self.counts.ob_skip += 1
                return None
        s = R.strength(vel_div, cfg)
        extreme = R.is_extreme(vel_div, cfg)
        b = R.bucket(vel_div, cfg)
        mult = R.trend_mult(vd_trend, cfg) * R.bucket_boost(self._win_rate(b)) * R.streak_mult(self._losses())
        fraction = R.eff_fraction(s, extreme, mult, cfg)
        market = self.ob.market_multiplier(ts_ns) if self.ob.enabled else 1.0
        rsm = self.regime_size_mult(vel_div)
        dc_mult = cfg.dc_leverage_boost if dc == R.CONFIRM else 1.0
        leverage, _ = R.final_leverage(R.size_leverage(s, cfg), rsm, market, dc_mult, self.day_posture, cfg)
        notional = self.capital * fraction * leverage
        self.position = Position(len(self.trades) + 1, asset, cfg.direction, price(asset), notional, leverage,
                                 fraction, b, bar, ts_ns, vel_div, rsm, self.day_posture)  # fmt: skip
        return self.position

    def _win_rate(self, b: int) -> float | None:
        wins = self._bucket_wins[b]
        return sum(wins) / len(wins) if len(wins) >= self.cfg.bucket_min_trades else None

    def _losses(self) -> int | None:
        recent = self._recent_losses
        return sum(recent) if len(self.trades) >= self.cfg.streak_min_trades else None


class NDAlphaEngine(EngineCore):
    """The specification's per-bar loop (the reference driver; the per-bar API of a live strategy)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.histories: list[list[float]] = [[] for _ in self.symbols]
        self.vel_div_history: list[float] = []
        self.global_bar = 0
        self.last_ts = 0
        self.last_prices: dict[int, float] = {}

    def process_day(self, day: dt.date, ts: Sequence[int], vel_div: Sequence[float], closes: np.ndarray) -> DayRow:
        """Run one date's rows (``closes`` (rows, assets)); return the day's row."""
        self.begin_day(day)
        for i in range(len(ts)):
            row = closes[i]
            prices = {j: float(row[j]) for j in range(len(self.symbols)) if row[j] > 0}
            self.process_bar(int(ts[i]), float(vel_div[i]), prices)
        self.end_day()
        return self.days[-1]

    def process_bar(self, ts_ns: int, vel_div: float, prices: dict[int, float]) -> None:
        """One bar: pending ACB updates, histories, the exit check, then an entry attempt."""
        cfg = self.cfg
        bar = self.global_bar
        self.apply_updates(ts_ns)
        for j, p in prices.items():
            h = self.histories[j]
            h.append(p)
            if len(h) > cfg.price_history_max:
                self.histories[j] = h[-cfg.price_history_keep :]
        self.last_prices.update(prices)
        self.vel_div_history.append(vel_div)
        if len(self.vel_div_history) > cfg.vel_div_history:
            self.vel_div_history = self.vel_div_history[-cfg.vel_div_history :]
        self.bar_count += 1
        if self.position is not None and self.position.asset in prices:
            reason = self.exit_reason(bar, ts_ns, prices[self.position.asset])
            if reason is not None:
                self.close(bar, ts_ns, prices[self.position.asset], reason)
        if self.can_enter(bar):
            h = self.vel_div_history
            trend = h[-1] - h[-cfg.trend_lag] if len(h) >= cfg.trend_lag else None
            self.try_entry(bar, ts_ns, vel_div, trend, lambda: self._select(prices, ts_ns),
                           lambda j: self.histories[j], lambda j: prices.get(j, 0.0))  # fmt: skip
        self.global_bar += 1
        self.last_ts = ts_ns

    def _select(self, prices: dict[int, float], ts_ns: int) -> int:
        cfg = self.cfg
        w = cfg.irp_window
        eligible = np.array([j in prices and len(h) >= w for j, h in enumerate(self.histories)])
        if self.ob.enabled:
            for j in np.flatnonzero(eligible):
                eligible[j] = self.ob.placement(self.symbols[j], ts_ns).depth_quality >= 0.20
        windows = np.zeros((w, len(self.symbols)))
        for j in np.flatnonzero(eligible):
            windows[:, j] = self.histories[j][-w:]
        return R.best_irp_asset_py(windows, eligible, cfg.direction, self._irp)

    def finish(self) -> Trade | None:
        """End of the data: close an open position at its asset's last price (``END_OF_DATA``)."""
        if self.position is None:
            return None
        return self.end_of_data(self.global_bar - 1, self.last_ts, self.last_prices[self.position.asset])
