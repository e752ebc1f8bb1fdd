"""Run an LPI experiment: walk-forward folds on the catalog's ticks, the baseline, the result bundle.

For each fold (``docs/specs.md#lpi-experiments``) the strategy runs continuously over train + test
on NautilusTrader in tick mode (``backtest/ticks.py``): the train span warms the rolling z-scores
up, and only the test span, after the purge, is scored: the equity change over it, its drawdown,
the fills and markouts stamped inside it. The EMA-cross baseline runs on the same ticks and folds
(its bars aggregated from the trades), through the same venue rules. Without ``walk_forward`` the
whole period is one fold scored from its start.

Everything in a bundle is a function of the resolved config, the data and the code: no wall times,
no paths of temporary files, rows in a fixed order (``bundle.py`` writes it), so the same
experiment gives byte-identical bundles whatever the order the data was ingested in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np

from vibe_quant.errors import UserError
from vibe_quant.experiments.config import Experiment, duration_ns, to_ns
from vibe_quant.home import Home
from vibe_quant.progress import Progress

log = logging.getLogger(__name__)

NS_PER_YEAR = 365 * 86_400 * 10**9
QUOTES_FREE_LABEL = ("quotes-free: no quote ticks were used, the touch (bid/ask) was inferred from the trades "
                     "(a sell print sets the bid, a buy print the ask); spreads and maker fills are approximations")  # fmt: skip


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold in ns: the run covers [start, end); [score_start, end) is scored."""

    index: int
    start: int
    train_end: int
    score_start: int
    end: int


def folds(exp: Experiment) -> list[Fold]:
    """The experiment's folds (one covering the whole period without ``walk_forward``)."""
    start, end = (to_ns(t) for t in exp.period())
    wf = exp.walk_forward
    if wf is None:
        return [Fold(0, start, start, start, end)]
    train, test = duration_ns(wf.train, "walk_forward.train"), duration_ns(wf.test, "walk_forward.test")
    step = duration_ns(wf.step or wf.test, "walk_forward.step")
    purge = duration_ns(wf.purge, "walk_forward.purge")
    out, t = [], start
    while t + train + test <= end:
        out.append(Fold(len(out), t, t + train, t + train + purge, t + train + test))
        t += step
    return out


@dataclass
class FoldResult:
    fold: Fold
    strategy: str
    metrics: dict
    fills: list  # FillRecord inside the scored span
    trades: list  # ledger trades entered inside the scored span
    funding: list
    liquidations: list
    markouts: list[dict]
    equity_ts: np.ndarray
    equity: np.ndarray
    warnings: list[str]


@dataclass
class ExperimentResult:
    experiment: Experiment  # resolved
    experiment_id: str
    data_digest: str
    folds: list[FoldResult]
    baseline: list[FoldResult]
    trace: np.ndarray  # SNAPSHOT_DTYPE over the whole period
    labels: list[str] = field(default_factory=list)
    effective: dict = field(default_factory=dict)  # ablations as they took effect on this data

    def summary(self) -> dict:
        """What ``summary.json`` holds (no wall times: the bundle is a function of config, data, code)."""
        exp = self.experiment
        return {
            "experiment_id": self.experiment_id, "name": exp.name, "strategy": exp.strategy,
            "instruments": list(exp.instruments), "start": exp.start, "end": exp.end,
            "labels": self.labels, "effective": self.effective, "data_digest": self.data_digest,
            "folds": [fold_row(f) for f in self.folds],
            "aggregate": aggregate(self.folds),
            "baseline": None if not self.baseline else {
                "strategy": exp.baseline.strategy, "folds": [fold_row(f) for f in self.baseline],
                "aggregate": aggregate(self.baseline),
            },
            "comparison": compare(self.folds, self.baseline) if self.baseline else None,
            "signal": {"snapshots": len(self.trace),
                       "lpi_fast_valid": int(np.isfinite(self.trace["lpi_fast"]).sum()) if len(self.trace) else 0},
        }  # fmt: skip


def fold_row(f: FoldResult) -> dict:
    return {"fold": f.fold.index, "start": _iso(f.fold.start), "train_end": _iso(f.fold.train_end),
            "score_start": _iso(f.fold.score_start), "end": _iso(f.fold.end), **f.metrics}  # fmt: skip


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _r(x: float) -> float | None:
    """Rounded to 10 significant digits (JSON stays readable; equal inputs give equal text)."""
    if x is None or not np.isfinite(x):
        return None
    return float(f"{x:.10g}")


def scored_records(fold: Fold, result) -> dict[str, list]:
    """What a fold's run recorded inside its scored span: fills, trades entered, funding,
    liquidations and markouts."""
    lo, hi = fold.score_start, fold.end
    rec = result.recorder
    return {
        "fills": [f for f in rec.fills if lo <= f.ts_ns < hi],
        "trades": [t for t in result.trades if lo <= t.entry_ns < hi],
        "funding": [f for f in rec.funding if lo <= f.ts_ns < hi],
        "liquidations": [x for x in rec.liquidations if lo <= x.ts_ns < hi],
        "markouts": [e for e in rec.events if e.get("type") == "MARKOUT" and lo <= e["ts"] < hi],
    }


def score(fold: Fold, result, bar_ns: int, start_equity: float, records: dict | None = None) -> dict:
    """Metrics of the scored span of one fold's run (`records`: its :func:`scored_records`)."""
    ts, eq = np.asarray(result.equity_ts, dtype=np.int64), np.asarray(result.equity, dtype=float)
    before = ts < fold.score_start
    base = float(eq[before][-1]) if before.any() else start_equity
    keep = (ts >= fold.score_start) & (ts <= fold.end)
    curve = np.concatenate(([base], eq[keep]))
    r = np.diff(curve) / curve[:-1] if curve.size > 1 else np.empty(0)
    sharpe = (
        float(r.mean() / r.std(ddof=1) * np.sqrt(NS_PER_YEAR / bar_ns)) if r.size > 1 and r.std(ddof=1) > 0 else None
    )
    peak = np.maximum.accumulate(curve)
    records = records if records is not None else scored_records(fold, result)
    fills, trades, funding, marks = records["fills"], records["trades"], records["funding"], records["markouts"]
    makers = sum(1 for f in fills if f.liquidity == "MAKER")
    out = {
        "pnl": _r(curve[-1] - base), "return": _r(curve[-1] / base - 1.0),
        "max_drawdown": _r(float(np.max(1.0 - curve / peak))) if curve.size else 0.0,
        "sharpe_bars": _r(sharpe) if sharpe is not None else None,
        "fills": len(fills), "maker_fills": makers, "trades": len(trades),
        "wins": sum(1 for t in trades if (t.net_pnl or 0.0) > 0),
        "fees": _r(sum(f.fee for f in fills)), "funding": _r(sum(f.amount for f in funding)),
        "liquidations": len(records["liquidations"]),
    }  # fmt: skip
    for horizon in sorted({e["horizon_ms"] for e in marks}):
        values = [e["markout_bps"] for e in marks if e["horizon_ms"] == horizon and e.get("markout_bps") is not None]
        out[f"markout_{horizon}ms_bps"] = _r(float(np.mean(values))) if values else None
    return out


def aggregate(rows: list[FoldResult]) -> dict:
    """Totals over the folds' scored spans (returns compounded)."""
    if not rows:
        return {}
    growth = float(np.prod([1.0 + (f.metrics["return"] or 0.0) for f in rows]))
    return {
        "folds": len(rows), "pnl": _r(sum(f.metrics["pnl"] or 0.0 for f in rows)), "return": _r(growth - 1.0),
        "worst_drawdown": _r(max(f.metrics["max_drawdown"] or 0.0 for f in rows)),
        "fills": sum(f.metrics["fills"] for f in rows), "trades": sum(f.metrics["trades"] for f in rows),
        "fees": _r(sum(f.metrics["fees"] or 0.0 for f in rows)),
        "positive_folds": sum(1 for f in rows if (f.metrics["pnl"] or 0.0) > 0),
    }  # fmt: skip


def compare(strategy: list[FoldResult], baseline: list[FoldResult]) -> dict:
    """The strategy against the baseline, fold by fold on the same scored spans."""
    diff = [(s.metrics["pnl"] or 0.0) - (b.metrics["pnl"] or 0.0) for s, b in zip(strategy, baseline, strict=True)]
    return {"pnl_minus_baseline": _r(sum(diff)), "folds_better": sum(1 for d in diff if d > 0), "folds": len(diff)}


# -- running ------------------------------------------------------------------------------------------


def backtest_config(exp: Experiment, strategy: str, kind: str, params: dict, timeframe: str):
    """The :class:`BacktestConfig` of one run of the experiment (its venue from ``execution``)."""
    from vibe_quant.backtest.config import BacktestConfig

    ex = exp.execution
    start, end = exp.period()
    last_day = (end - dt.timedelta(microseconds=1)).date()
    latency = {"latency": ex.latency} if ex.latency != "custom" else {
        "latency": "custom", "latency_ns": (int(ex.latency_ms * 1e6), 0, 0, 0)}  # fmt: skip
    return BacktestConfig(
        strategy=strategy, kind=kind, symbols=tuple(exp.instruments), timeframe=timeframe, start=start.date(),
        end=last_day, params=params, mode="validation", maker_fee=ex.maker_fee, taker_fee=ex.taker_fee,
        leverage=ex.leverage, starting_balance=ex.starting_balance, prob_fill_on_limit=ex.prob_fill_on_limit,
        seed=exp.seed, **latency,
    )  # fmt: skip


def strategy_params(exp: Experiment, quotes_free: bool, depth: bool, oi: bool) -> dict:
    """The flat parameters of the LPI strategy: signal + decision parameters, then the ablations as
    they take effect on the data (each sets only its own keys)."""
    params = {**exp.signal, **exp.params, "quotes_free": quotes_free, "use_lev": oi, **variants(depth)}
    if exp.execution.maker_only is not None:
        params["maker_only"] = exp.execution.maker_only
    return params


def run_experiment(home: Home, experiment: Experiment, progress: Progress | None = None,
                   data=None) -> ExperimentResult:  # fmt: skip
    """Run `experiment` on the catalog of `home` (see the module docstring); `data`: the ticks of
    its period already loaded (:func:`load_data`; a sweep loads them once).

    Raises
    ------
    UserError
        No tick data for an instrument in the period (with the ingest command), no fold fits.
    ConfigError
        A parameter the strategy rejects.
    """
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.ticks import run_tick_backtest, slice_tick_data
    from vibe_quant.data.custom import BinanceBookDepth, BinanceOiMetrics

    exp = experiment.resolved()
    fold_list = folds(exp)
    if data is None:
        data = load_data(home, experiment)
    labels = []
    no_quotes = [s for s in exp.instruments if not data.quotes.get(s)]
    quotes_free = exp.ablations.quotes_free or bool(no_quotes)
    if quotes_free:
        if exp.ablations.quotes_free:
            data = dataclasses.replace(data, quotes={s: [] for s in data.quotes})
        labels.append(QUOTES_FREE_LABEL + ("" if exp.ablations.quotes_free else
                                           f" (the catalog has no quote ticks for {', '.join(no_quotes)})"))  # fmt: skip
    depth = exp.ablations.depth_proxy and data.has_slow(BinanceBookDepth)
    if exp.ablations.depth_proxy and not depth:
        labels.append("depth proxy unavailable: the catalog has no bookDepth for the period; LD and EXH use the spread")
    oi = exp.ablations.oi_prior and data.has_slow(BinanceOiMetrics)
    if exp.ablations.oi_prior and not oi:
        labels.append("open-interest prior unavailable: the catalog has no metrics (open interest) for the period; "
                      "the LEV filter is off")  # fmt: skip
    effective = {"quotes_free": quotes_free, "depth_proxy": depth, "oi_prior": oi}
    params = strategy_params(exp, quotes_free, depth, oi)
    runs = [("lpi", exp.strategy, params, exp.timeframe, "strategy")]
    if exp.baseline is not None:
        runs.append(("python", exp.baseline.strategy, dict(exp.baseline.params), exp.baseline.timeframe, "baseline"))
    out: dict[str, list[FoldResult]] = {"strategy": [], "baseline": []}
    task = progress.task(f"experiment {exp.name}", len(fold_list) * len(runs)) if progress else None
    for fold in fold_list:
        window = slice_tick_data(data, fold.start, fold.end)
        for kind, name, run_params, timeframe, role in runs:
            plan = plan_run(backtest_config(exp, name, kind, run_params, timeframe))
            result = run_tick_backtest(plan, window)
            rec = scored_records(fold, result)
            metrics = score(fold, result, plan.bar_ns, exp.execution.starting_balance, rec)
            out[role].append(FoldResult(
                fold, name, metrics, rec["fills"], rec["trades"], rec["funding"], rec["liquidations"],
                rec["markouts"], np.asarray(result.equity_ts, dtype=np.int64), np.asarray(result.equity, dtype=float),
                list(result.warnings),
            ))  # fmt: skip
            if progress:
                progress.advance(task)
    if progress:
        progress.finish(task)
    return ExperimentResult(exp, experiment.experiment_id, data.digest, out["strategy"], out["baseline"],
                            signal_trace(data, exp, quotes_free, depth, oi), labels, effective)  # fmt: skip


def load_data(home: Home, experiment: Experiment, specs=None):
    """The ticks (and funding) of the experiment's instruments over its folds, from the catalog.

    Raises
    ------
    UserError
        No fold fits the period; no ticks for an instrument (with the ingest command).
    """
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.ticks import load_tick_data
    from vibe_quant.instruments.specs import InstrumentSpecs

    exp = experiment.resolved()
    fold_list = folds(exp)
    if not fold_list:
        raise UserError(f"experiment {exp.name}: no walk-forward fold fits in {exp.start}..{exp.end}")
    probe = plan_run(backtest_config(exp, "ema_cross", "python", {}, exp.timeframe))
    return load_tick_data(home.catalog, probe, specs or InstrumentSpecs(), fold_list[0].start, fold_list[-1].end)


def signal_trace(data, exp: Experiment, quotes_free: bool, depth: bool, oi: bool) -> np.ndarray:
    """The LPI snapshots of the first instrument over the whole period, from what its strategy reads
    (trades, quotes unless quotes-free, open interest and depth when their ablation is on, funding),
    by the numba kernel: identical to the per-tick engine the strategy runs (``tests/lpi/test_parity.py``)."""
    from vibe_quant.data.custom import BinanceBookDepth, BinanceOiMetrics
    from vibe_quant.lpi import LpiParams, compute
    from vibe_quant.lpi.inputs import nautilus_inputs

    symbol = exp.instruments[0]
    params = LpiParams(**{**exp.signal, "quotes_free": quotes_free, **variants(depth)})
    kinds = tuple(k for k, on in ((BinanceOiMetrics, oi), (BinanceBookDepth, depth)) if on)
    slow = [d for d in data.slow.get(symbol, []) if isinstance(d.data, kinds)] if kinds else []
    inputs = nautilus_inputs(data.trades[symbol], [] if quotes_free else data.quotes.get(symbol, []), slow,
                             data.funding.get(symbol, []), exp.params.get("depth_pct", 1.0))  # fmt: skip
    return compute(inputs.checked(), params)


def variants(depth: bool) -> dict:
    """LD and EXH with the depth proxy, or their spread forms."""
    return {"ld_variant": "spread_depth", "exh_variant": "depth"} if depth else \
        {"ld_variant": "spread_mid", "exh_variant": "spread"}  # fmt: skip
