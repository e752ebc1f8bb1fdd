"""The kernel's inputs: a run's market, venue and strategy as flat arrays.

:class:`Market` holds what a session keeps across runs (bars, funding, margin brackets, instrument
rules, recorded indicators), built from the same objects the NautilusTrader path builds its
engine from (``backtest.engine.instrument_states``, ``merge_bars``). :func:`strategy_arrays` turns a
DSL strategy with its parameters into per-bar arrays through the same signal table the
NautilusTrader path's fast replay reads (``dsl/table.py``): entry signal, exit conditions, the time
filters and the stop, take-profit and trailing distances each bar's close would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibe_quant.backtest.draws import seed_bits
from vibe_quant.backtest.engine import instrument_states, merge_bars
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan
from vibe_quant.instruments.margin import max_notional_at
from vibe_quant.sim import kernel as kn


def _concat(parts: list, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated arrays and their offsets (``off[s]:off[s+1]`` is part ``s``)."""
    off = np.zeros(len(parts) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(p) for p in parts])
    flat = np.concatenate([np.asarray(p, dtype=dtype) for p in parts]) if parts else np.zeros(0, dtype)
    return flat, off


class _Book:
    """What ``SignalTable`` reads of an instrument's state: its bars and funding schedule."""

    def __init__(self, st):
        self.ts, self.opens, self.highs, self.lows, self.closes = st.ts, st.opens, st.highs, st.lows, st.closes
        self.volumes, self.funding = st.volumes, st.funding


@dataclass
class Market:
    """One market, period and venue as the kernel reads them (built once per session)."""

    symbols: tuple[str, ...]
    seq_sym: np.ndarray
    seq_idx: np.ndarray
    boff: np.ndarray
    bts: np.ndarray
    bo: np.ndarray
    bh: np.ndarray
    bl: np.ndarray
    bc: np.ndarray
    bvol: np.ndarray
    bavg: np.ndarray
    foff: np.ndarray
    fts: np.ndarray
    frate: np.ndarray
    koff: np.ndarray
    kfloor: np.ndarray
    kcap: np.ndarray
    kmmr: np.ndarray
    kcum: np.ndarray
    sp_f: np.ndarray
    keys: np.ndarray
    books: list
    leverage_of: dict[str, float]
    n_times: int  # distinct close times (equity points)

    @classmethod
    def build(cls, plan: RunPlan, data: MarketData) -> Market:
        instruments, states = instrument_states(plan, data)
        sts = list(states.values())
        _, owner = merge_bars(plan.symbols, data)
        seq_sym = np.frombuffer(owner, dtype=np.uint16).astype(np.int64) if len(owner) else np.zeros(0, np.int64)
        seq_idx = np.zeros(seq_sym.size, dtype=np.int64)  # each bar's index among its symbol's bars
        for s in range(len(sts)):
            mine = seq_sym == s
            seq_idx[mine] = np.arange(int(mine.sum()))
        bts, boff = _concat([st.ts for st in sts], np.int64)
        bo, _ = _concat([st.opens for st in sts], np.float64)
        bh, _ = _concat([st.highs for st in sts], np.float64)
        bl, _ = _concat([st.lows for st in sts], np.float64)
        bc, _ = _concat([st.closes for st in sts], np.float64)
        bvol, _ = _concat([st.vols for st in sts], np.float64)
        bavg, _ = _concat([st.avg_volumes for st in sts], np.float64)
        fts, foff = _concat([[f[0] for f in st.funding] for st in sts], np.int64)
        frate, _ = _concat([[f[1] for f in st.funding] for st in sts], np.float64)
        kfloor, koff = _concat([[b.floor for b in st.brackets] for st in sts], np.float64)
        kcap, _ = _concat([[b.cap for b in st.brackets] for st in sts], np.float64)
        kmmr, _ = _concat([[b.mmr for b in st.brackets] for st in sts], np.float64)
        kcum, _ = _concat([[b.cum for b in st.brackets] for st in sts], np.float64)
        sp_f = np.zeros((len(sts), 10))
        for s, (st, inst) in enumerate(zip(sts, instruments, strict=True)):
            pp, sp = st.price_precision, st.size_precision
            sp_f[s] = (inst.price_increment.as_double(), inst.size_increment.as_double(), st.leverage,
                       float(inst.taker_fee), float(inst.maker_fee), max_notional_at(st.leverage, st.brackets),
                       float(10**pp), float(10 ** (16 - pp)), float(10**sp), float(10 ** (16 - sp)))  # fmt: skip
        return cls(
            symbols=tuple(plan.symbols), seq_sym=seq_sym, seq_idx=seq_idx, boff=boff, bts=bts, bo=bo, bh=bh, bl=bl, bc=bc,
            bvol=bvol, bavg=bavg, foff=foff, fts=fts, frate=frate, koff=koff, kfloor=kfloor, kcap=kcap, kmmr=kmmr,
            kcum=kcum, sp_f=sp_f, keys=np.array([st.key for st in sts], dtype=np.int64),
            books=[_Book(st) for st in sts], leverage_of={st.symbol: st.leverage for st in sts},
            n_times=int(np.unique(bts).size),
        )  # fmt: skip


@dataclass
class StrategyArrays:
    """A DSL strategy's decisions per bar (all symbols concatenated like the bars) and its exit rules."""

    sig: np.ndarray
    exl: np.ndarray
    exs: np.ndarray
    alw: np.ndarray
    stopd: np.ndarray
    tgtd: np.ndarray
    traild: np.ndarray
    ready: np.ndarray
    vf: np.ndarray
    flags: dict
    warnings: list[str]


def strategy_arrays(analysis, market: Market, caches: list) -> StrategyArrays:
    """Per-bar arrays of a DSL strategy (its parameters applied) over `market`, from each symbol's
    recorded indicators (`caches`, ``IndicatorCache`` per symbol)."""
    from vibe_quant.dsl.filters import EntryFilters
    from vibe_quant.dsl.table import SignalTable

    doc = analysis.doc
    sl, tp = doc.stop_loss, doc.take_profit
    sizing = doc.position_management.sizing
    parts: dict[str, list] = {k: [] for k in ("sig", "exl", "exs", "alw", "stopd", "tgtd", "traild")}
    ready = []
    warnings: list[str] = []
    for s, symbol in enumerate(market.symbols):
        book = market.books[s]
        filters = EntryFilters(analysis, lambda book=book: [ts for ts, _, _ in book.funding], warnings.append)
        table = SignalTable(analysis, caches[s], book, filters, symbol)
        n = table.n
        closes = np.asarray(book.closes, dtype=np.float64)
        parts["sig"].append(table.sig_array)
        parts["exl"].append(table.exit_long_array)
        parts["exs"].append(table.exit_short_array)
        parts["alw"].append(table.allowed)
        parts["stopd"].append(_distance(sl, table, closes) if sl is not None else np.full(n, np.nan))
        parts["tgtd"].append(
            _distance(tp, table, closes) if tp is not None and tp.type != "risk_reward" else np.full(n, np.nan)
        )
        if sl is not None and sl.type == "atr_trailing":
            parts["traild"].append(sl.atr_multiplier * np.asarray(table.raw(sl.indicator, "value"), dtype=np.float64))
        else:
            parts["traild"].append(np.full(n, np.nan))
        ready.append(table.ready_start)
    arrays = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    nan = np.nan
    vf = np.array([0.0, 0.0, 0.0, 0.0, sizing.fraction, sizing.risk_per_trade,
                   sizing.max_margin_fraction if sizing.max_margin_fraction is not None else nan,
                   sizing.max_leverage if sizing.max_leverage is not None else nan,
                   tp.ratio if tp is not None and tp.type == "risk_reward" else nan])  # fmt: skip
    flags = {
        "sizing": 1 if sizing.method == "fixed_fractional" else 0,
        "tp": kn.TP_NONE if tp is None else (kn.TP_RISK_REWARD if tp.type == "risk_reward" else kn.TP_DISTANCE),
        "sl": sl is not None,
        "trail": sl is not None and sl.type == "atr_trailing",
    }
    return StrategyArrays(**arrays, ready=np.asarray(ready, dtype=np.int64), vf=vf, flags=flags,
                          warnings=list(dict.fromkeys(warnings)))  # fmt: skip


def _distance(rule, table, closes: np.ndarray) -> np.ndarray:
    """A stop or take-profit distance at each bar's close, as ``DslStrategy._distance_fn`` computes it."""
    if rule.type == "fixed_pct":
        return closes * (rule.percent / 100.0)
    return rule.atr_multiplier * np.asarray(table.raw(rule.indicator, "value"), dtype=np.float64)


def venue_vectors(plan: RunPlan, strategy: StrategyArrays) -> tuple[np.ndarray, np.ndarray, np.uint64]:
    """The run's float and int parameter vectors and its draw seed."""
    v = plan.venue
    base, insert, update, cancel = v.latency_ns
    base = max(base, 1)  # every order needs >= 1 ns in flight (backtest/engine.py)
    vf = strategy.vf.copy()
    vf[kn.V_SPREAD], vf[kn.V_IMPACT], vf[kn.V_PLIMIT], vf[kn.V_PSLIP] = (
        v.spread_ticks, v.impact, v.prob_fill_on_limit, v.prob_slippage,
    )  # fmt: skip
    balance_units = round(v.starting_balance * 1e8)
    vi = np.zeros(12, dtype=np.int64)
    vi[kn.W_VALID] = v.mode == "validation"
    vi[kn.W_BASE], vi[kn.W_INSERT], vi[kn.W_UPDATE], vi[kn.W_CANCEL] = base, insert, update, cancel
    vi[kn.W_FILL_LAT] = base + insert
    vi[kn.W_BAR_NS] = plan.bar_ns
    vi[kn.W_BAL_UNITS] = balance_units
    f = strategy.flags
    vi[kn.W_SIZING], vi[kn.W_TP], vi[kn.W_SL], vi[kn.W_TRAIL] = f["sizing"], f["tp"], f["sl"], f["trail"]
    return vf, vi, seed_bits(v.seed)
