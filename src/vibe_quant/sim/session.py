"""Kernel sessions: ``backtest.engine.EngineSession``'s interface over the compiled perp simulator.

A :class:`SimSession` holds one market, period and venue as arrays (``inputs.Market``) and each
symbol's recorded indicators, and runs any plan that differs only in the strategy's parameters:
the signal table gives the per-bar arrays, :func:`~vibe_quant.sim.kernel.simulate_nb` runs the
venue and the strategy, and the records become the same ``BacktestResult`` (fills, funding,
liquidations, trades, costs, equity curve, metrics) the NautilusTrader path assembles
(``backtest.engine.assemble``).
"""

from __future__ import annotations

import time

import numpy as np

from vibe_quant.backtest.draws import seed_bits
from vibe_quant.backtest.engine import BacktestResult, assemble
from vibe_quant.backtest.market_data import MarketData, funding_warnings
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord, RunRecorder
from vibe_quant.sim import kernel as kn
from vibe_quant.sim.inputs import Market, strategy_arrays, venue_vectors

ENGINES = ("sim", "nautilus")
_FIRST_CAPACITY = 1 << 14  # fill records before the first retry with more room


def refusal(plan: RunPlan) -> str | None:
    """Why `plan` cannot run on the kernel (it then runs on NautilusTrader), or None when it can.

    The kernel runs strategies whose decisions are a precomputed signal table (the DSL) on the
    account's own sizing; the risk gate's sizing modules, circuit breakers and post-only entries
    run on NautilusTrader.
    """
    cfg = plan.config
    if not getattr(plan.strategy, "precomputed", False) or getattr(plan.strategy, "analysis", None) is None:
        return f"the kernel runs DSL strategies (signal tables), not the {cfg.kind} strategy {cfg.strategy}"
    if plan.sizing is not None or plan.risk is not None:
        return (
            "the risk gate (--sizing/--risk: sizing modules, circuit breakers, post-only entries) needs NautilusTrader"
        )
    return None


class SimSession:
    """One market, period and venue on the kernel; runs any plan differing only in strategy parameters.

    Raises
    ------
    ValueError
        The plan cannot run on the kernel (the message is :func:`refusal`'s).
    ConfigError
        A leverage above a symbol's maximum (as the NautilusTrader session).
    """

    def __init__(self, plan: RunPlan, data: MarketData):
        why = refusal(plan)
        if why is not None:
            raise ValueError(why)
        self.plan = plan
        self.data = data
        self.market = Market.build(plan, data)
        self._caches: list | None = None
        self._capacity = _FIRST_CAPACITY
        self.runs = 0

    def caches(self) -> list:
        """Each symbol's recorded indicators (built on first use, kept across runs)."""
        if self._caches is None:
            from vibe_quant.dsl.table import IndicatorCache

            self._caches = []
            for symbol in self.market.symbols:
                spec = self.data.specs[symbol]
                self._caches.append(IndicatorCache(self.data.bars[symbol], spec.price_precision, spec.size_precision))
        return self._caches

    def run(self, plan: RunPlan, run_id: str | None = None, reports: bool = False) -> BacktestResult:
        """Run `plan` (same market, period and venue as the session's) and return its result.

        `reports` is accepted for ``EngineSession`` compatibility; the kernel has no
        NautilusTrader positions report (bundles come from NautilusTrader runs).
        """
        if plan.engine_key != self.plan.engine_key:
            raise ValueError("this kernel session cannot run a plan with another market, period or venue")
        why = refusal(plan)
        if why is not None:
            raise ValueError(why)
        t0 = time.perf_counter()
        strategy = strategy_arrays(plan.strategy.analysis, self.market, self.caches())
        vf, vi, seed = venue_vectors(plan, strategy)
        mk = self.market
        while True:
            cap = self._capacity
            fi, ff = np.zeros((cap, 9), np.int64), np.zeros((cap, 5))
            li, lf = np.zeros((cap, 4), np.int64), np.zeros((cap, 5))
            ri, rf = np.zeros((mk.fts.size, 3), np.int64), np.zeros((mk.fts.size, 4))
            eq_ts, eq = np.zeros(mk.n_times, np.int64), np.zeros(mk.n_times)
            cnt, n_eq = kn.simulate_nb(
                mk.seq_sym, mk.seq_idx, mk.boff, mk.bts, mk.bo, mk.bh, mk.bl, mk.bc, mk.bvol, mk.bavg,
                strategy.sig, strategy.exl, strategy.exs, strategy.alw, strategy.stopd, strategy.tgtd,
                strategy.traild, mk.foff, mk.fts, mk.frate, mk.koff, mk.kfloor, mk.kcap, mk.kmmr, mk.kcum,
                mk.sp_f, np.stack([mk.keys, strategy.ready], axis=1), vf, vi, seed,
                fi, ff, ri, rf, li, lf, eq_ts, eq,
            )  # fmt: skip
            if cnt[kn.N_STATUS] == kn.OK:
                break
            self._capacity = cap * 4  # more fills than room: run again with more
        elapsed = time.perf_counter() - t0
        recorder = records(mk, cnt, fi, ff, ri, rf, li, lf)
        recorder.equity_ts, recorder.equity = eq_ts[:n_eq], eq[:n_eq]
        for message in [*funding_warnings(plan, self.data), *strategy.warnings]:
            recorder.warn(message)
        states = {symbol: _Leverage(symbol, mk.leverage_of[symbol]) for symbol in mk.symbols}
        bars = int(mk.seq_sym.size)
        result = assemble(plan, recorder, states, run_id or "", bars, elapsed)
        result.extra["bars_replayed"] = bars
        result.extra["engine"] = "sim"
        self.runs += 1
        return result

    def dispose(self) -> None:
        self._caches = None


class _Leverage:
    """What ``assemble`` reads of an instrument's state: its symbol and leverage."""

    __slots__ = ("leverage", "symbol")

    def __init__(self, symbol: str, leverage: float):
        self.symbol, self.leverage = symbol, leverage


def records(mk: Market, cnt, fi, ff, ri, rf, li, lf) -> RunRecorder:
    """The kernel's record arrays as the recorder lists the ledger reads."""
    rec = RunRecorder()
    symbols = mk.symbols
    n = int(cnt[kn.N_FILL])
    ints, floats = fi[:n].tolist(), ff[:n].tolist()
    for (ts, econ, s, side, taker, otype, reason, order, trade), (qty, px, fee, ref, est) in zip(ints, floats,
                                                                                               strict=True):  # fmt: skip
        symbol = symbols[s]
        rec.fills.append(FillRecord(
            ts_ns=ts, economic_ns=econ, instrument=symbol, order_id=f"SIM-{order}" if order > 0 else f"LIQ-{symbol}-{-order}",
            side=side, qty=qty, price=px, fee=fee, liquidity="TAKER" if taker else "MAKER",
            order_type=kn.ORDER_TYPES[otype], reason=kn.REASONS[reason], reference_price=ref,
            slippage_estimated=est, position_id=f"{symbol}-{trade}",
        ))  # fmt: skip
    for (ts, s, trade), (qty, mark, rate, amount) in zip(ri[: cnt[kn.N_FUND]].tolist(), rf[: cnt[kn.N_FUND]].tolist(),
                                                         strict=True):  # fmt: skip
        rec.funding.append(FundingRecord(ts, symbols[s], trade, qty, mark, rate, amount))
    for (ts, s, side, trade), (qty, entry, px, wallet, clearance) in zip(li[: cnt[kn.N_LIQ]].tolist(),
                                                                       lf[: cnt[kn.N_LIQ]].tolist(), strict=True):  # fmt: skip
        rec.liquidations.append(
            LiquidationRecord(ts, symbols[s], f"{symbols[s]}-{trade}", side, qty, entry, px, wallet, clearance)
        )
    return rec


def warm_up() -> None:
    """Compile the kernel (or load it from numba's on-disk cache) on a three-bar market with the argument
    types a real run passes, so the processes started after this one load it instead of compiling it
    (a cold compile takes ~15 s; the test suite calls this once before its worker processes start)."""
    i8, f8 = np.int64, np.float64
    n = 3
    z = np.zeros
    sp_f = np.array([[0.001, 0.1, 10.0, 0.0005, 0.0002, 1e6, 1e3, 1e13, 10.0, 1e15]])
    vf = np.array([1.0, 0.1, 1.0, 0.0, 1.0, 0.02, np.nan, np.nan, np.nan])
    vi = z(12, i8)
    vi[kn.W_BASE], vi[kn.W_FILL_LAT], vi[kn.W_BAR_NS], vi[kn.W_BAL_UNITS] = 1, 1, 60_000_000_000, 10**13
    bts = np.arange(1, n + 1, dtype=i8) * 60_000_000_000
    px = np.full(n, 10.0)
    kn.simulate_nb(
        z(n, i8), np.arange(n, dtype=i8), np.array([0, n], dtype=i8), bts, px, px, px, px, z(n, f8), z(n, f8),
        np.array([0, 1, 0], dtype=np.int8), z(n, np.bool_), z(n, np.bool_), np.ones(n, np.bool_), z(n, f8), z(n, f8),
        z(n, f8), z(2, i8), z(0, i8), z(0, f8), np.array([0, 1], dtype=i8), z(1, f8), np.array([1e9]), np.array([0.01]),
        z(1, f8), sp_f, z((1, 2), i8), vf, vi, seed_bits(0), z((8, 9), i8), z((8, 5), f8), z((0, 3), i8),
        z((0, 4), f8), z((8, 4), i8), z((8, 5), f8), z(n, i8), z(n, f8),
    )  # fmt: skip


def run_sim(plan: RunPlan, data: MarketData, run_id: str | None = None) -> BacktestResult:
    """One run of `plan` on the kernel (raises ValueError with the reason when it cannot run there)."""
    session = SimSession(plan, data)
    try:
        return session.run(plan, run_id)
    finally:
        session.dispose()
