"""Kernel benchmark: the compiled perp simulator (``vibe_quant.sim``) against a plain numba loop,
our NautilusTrader path and the naive screening path, in one run.

1. **EMA cross, every FILUSDT 1m bar in ../shared/data** (21 months, 902,880 bars):
   ``ema_cross.yaml`` on 1m, EMA 20/100, always in the market (reversing through flat on each
   cross), exposure sizing at 10% of equity (as benchmarks/backtest.py and dsl.py, so fees and
   isolated-margin liquidations do not end the run early), taker fee 0.0005
   (``BacktestConfig(taker_fee=0.0005)``), validation mode: next-open fills with the volume
   slippage model, retail latency, isolated-margin liquidation checks, funding settlement on an
   injected 8-hourly +0.01% schedule (FILUSDT has no funding file in the shared data). Each
   variant runs in its own spawned process (clean peak RSS = the child's ``VmHWM``):

   * kernel: ``SimSession(plan, data)`` built once, its first ``run`` (recording the indicators and
     compiling the kernel: numba's on-disk cache is pointed at an empty directory, so this is a
     true compile), then ``--repeat`` warm runs of ``session.run(plan)`` (median), each split into
     the signal table (``inputs.strategy_arrays``), the compiled loop (``kernel.simulate_nb``) and
     the rest (record lists, ledger, metrics: ``assemble``); a second child with the now filled
     numba cache gives the cold start a user normally sees. One more warm run under cProfile
     says where the Python time goes (not timed).
   * numba loop: the same decisions as a bare numba loop written here (EMA 20/100 at the close,
     reverse at the next open, 0.05% fee on each fill, equity at each close; no latency, slippage,
     funding, liquidation, tick/step rounding or ledger): first call (compile) and median of
     ``--repeat`` after.
   * NautilusTrader: ``run_backtest(plan, data, replay="active")``, ``--nt-repeat`` runs (median);
     then, in the same child, ``run_sim`` on the same plan and data, compared field by field with
     the last NautilusTrader result (``vibe_quant.sim.compare.differences``: fills, funding,
     liquidations, equity curve, trades, every metric, floats within 1e-9 relative).

2. **Screening**: benchmarks/screening.py's setup (its FILUSDT 5m home, ``rsi_mean_reversion_mtf``,
   ``SweepSpec(max_points=100, sample_seed=0)``, 2 workers): ``run_screening`` with
   ``engine="sim"`` (its wall time includes the Pareto-front re-check on NautilusTrader, also timed
   apart), the same points with ``engine="nautilus"`` (NautilusTrader's fast path, screening.py's
   "ours"), and screening.py's naive path (a fresh ``BacktestNode`` per point) on the first
   ``--naive-points`` of the sample. Points/min = points / wall time x 60, as screening.py
   computes it. Sim and NautilusTrader must give the same metrics on every point (1e-9 relative),
   the naive path the same as both on its points (checked).

Peak RSS: every child's ``VmHWM``, the screening workers' peak (``peak_worker_rss_mb``), and this
process's and its children's ``ru_maxrss``. Writes ``benchmarks/results/kernel.json``
(``--quick``: a smoke run on fewer bars and points, written to ``$TMPDIR/kernel-quick.json``).

    uv run python benchmarks/kernel.py [--repeat 3] [--nt-repeat 2] [--points 100] [--naive-points 20] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from _child import fil_home, inject_funding, run_in_child  # noqa: E402

EMA_START, EMA_END, QUICK_EMA_END = dt.date(2023, 2, 1), dt.date(2026, 6, 30), dt.date(2023, 3, 31)
EXPECTED_BARS = 902_880
# benchmarks/backtest.py's figures for the same decisions and costs (0.0005 is FILUSDT's default taker fee)
EXPECTED = {"fills": 27_287, "trades": 13_643, "final_equity": 7127.50312807}
EXPOSURE = 0.1
TAKER_FEE = 0.0005
FAST, SLOW = 20, 100
QUICK_SCREEN_END = dt.date(2023, 6, 30)
QUOTED = {
    "source": "the issue author's measurements on the same 902,880 bars, same decisions, 0.05% fee, next-open fills",
    "plain_numba_loop_s": 0.004,
    "vectorbt_1.2_s": [0.15, 0.2],
    "backtesting.py_0.6.6_s": [6.0, 7.0],
    "our_nautilustrader_path_s": [46.0, 54.0],
}


def vm_mb(field: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` (VmHWM: this process's own peak RSS; VmRSS: now) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _ema_config(end: dt.date):
    import yaml

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.dsl.loader import SHIPPED_DIR

    doc = yaml.safe_load((SHIPPED_DIR / "ema_cross.yaml").read_text())
    doc["timeframe"] = "1m"
    doc["indicators"]["ema_fast"]["period"], doc["indicators"]["ema_slow"]["period"] = FAST, SLOW
    doc["position_management"] = {"sizing": {"method": "exposure", "fraction": EXPOSURE}}
    return BacktestConfig(
        strategy="ema_cross",
        kind="dsl",
        document=doc,
        symbols=("FILUSDT",),
        timeframe="1m",
        start=EMA_START,
        end=end,
        mode="validation",
        latency="retail",
        leverage=10,
        taker_fee=TAKER_FEE,
    )


def _ema_load(catalog: str, end: dt.date):
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    plan = plan_run(_ema_config(end))
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    inject_funding(data)
    return plan, data


def _outcome(result) -> dict:
    m = result.metrics
    return {
        "bars": result.bars_processed,
        "fills": m["fills"],
        "trades": m["total_trades"],
        "final_equity": m["final_equity"],
        "total_fees": m["total_fees"],
        "total_funding": m["total_funding"],
        "total_slippage": m["total_slippage"],
        "liquidations": m["liquidations"],
        "funding_settlements": len(result.recorder.funding),
    }


def run_kernel(queue: mp.Queue, catalog: str, end: dt.date, cache_dir: str, repeat: int) -> None:
    """One kernel child: session build, first run, `repeat` warm runs, each split; a profiled run."""
    os.environ["NUMBA_CACHE_DIR"] = cache_dir  # before numba is imported
    cached = any(Path(cache_dir).rglob("*.nbc"))
    t0 = time.perf_counter()
    import vibe_quant.sim.session as ss
    from vibe_quant.dsl.table import IndicatorCache
    from vibe_quant.sim import SimSession

    import_s = time.perf_counter() - t0
    split: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                split[name] = split.get(name, 0.0) + time.perf_counter() - s

        return wrapper

    ss.strategy_arrays = timed("signal_table_s", ss.strategy_arrays)
    ss.kn.simulate_nb = timed("simulate_s", ss.kn.simulate_nb)  # session.py calls kn.simulate_nb
    IndicatorCache.get = timed("indicator_recording_s", IndicatorCache.get)  # inside the signal table

    t0 = time.perf_counter()
    plan, data = _ema_load(catalog, end)
    load_s = time.perf_counter() - t0
    rss_after_load = vm_mb("VmRSS")

    def one(session):
        split.clear()
        s = time.perf_counter()
        result = session.run(plan)
        total = time.perf_counter() - s
        out = {
            "total_s": total,
            "signal_table_s": split["signal_table_s"],
            "simulate_s": split["simulate_s"],
            "indicator_recording_s": split.get("indicator_recording_s", 0.0),
            "post_run_s": total - split["signal_table_s"] - split["simulate_s"],
            "result_elapsed_s": result.elapsed_s,
        }
        return out, result

    t0 = time.perf_counter()
    session = SimSession(plan, data)
    build_s = time.perf_counter() - t0
    first, result = one(session)
    outcome, metrics = _outcome(result), dict(result.metrics)
    warm = []
    for _ in range(repeat):
        w, result = one(session)
        assert _outcome(result) == outcome, "a warm run differs from the first"
        warm.append(w)
    profiler = cProfile.Profile()
    profiler.enable()
    session.run(plan)
    profiler.disable()
    stats = pstats.Stats(profiler)
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]  # by own time
    profile = [
        {"function": f"{Path(f).name}:{line}({name})", "calls": nc, "own_s": tt, "cumulative_s": ct}
        for (f, line, name), (_, nc, tt, ct, _) in top
    ]
    session.dispose()
    queue.put(
        {
            "numba_cache_was_filled": cached,
            "import_s": import_s,
            "load_s": load_s,
            "session_build_s": build_s,
            "first_run": first,
            "cold_s": build_s + first["total_s"],
            "warm_runs": warm,
            "outcome": outcome,
            "metrics": metrics,
            "profile_extra_warm_run_top_own_time": profile,
            "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": vm_mb("VmHWM"),
        }
    )


def _numba_loop():
    from numba import njit

    @njit(cache=False)
    def ema_cross_loop(opens, closes, fast, slow, fee, exposure, balance, equity):  # pragma: no cover - numba
        """EMA fast/slow at each close (NautilusTrader's EMA: seeded with the first close, alpha
        2/(n+1), ready after n closes); always in the market: a direction change at a close
        reverses the position at the next open (close, then open at `exposure` x equity notional),
        `fee` on each fill's notional; `equity` at each close. Returns (fills, final equity)."""
        af, aslow = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0)
        f = s = closes[0]
        cash, pos = balance, 0.0
        pending, fills = 0, 0
        n = closes.size
        for i in range(n):
            if pending != 0:
                px = opens[i]
                if pos != 0.0:  # close at the open
                    cash += pos * px - abs(pos) * px * fee
                    pos = 0.0
                    fills += 1
                qty = exposure * cash / px
                if qty > 0.0:  # open the other way
                    pos = pending * qty
                    cash -= pos * px + qty * px * fee
                    fills += 1
                pending = 0
            c = closes[i]
            if i > 0:
                f += af * (c - f)
                s += aslow * (c - s)
            equity[i] = cash + pos * c
            if i + 1 >= slow:
                d = 1 if f > s else -1
                held = 1 if pos > 0.0 else (-1 if pos < 0.0 else 0)
                if d != held:
                    pending = d
        return fills, cash + pos * closes[n - 1]

    return ema_cross_loop


def run_numba_loop(queue: mp.Queue, catalog: str, end: dt.date, repeat: int) -> None:
    import numpy as np

    t0 = time.perf_counter()
    plan, data = _ema_load(catalog, end)
    bars = data.bars["FILUSDT"]
    opens = np.array([b.open.as_double() for b in bars])
    closes = np.array([b.close.as_double() for b in bars])
    del plan, data, bars
    load_s = time.perf_counter() - t0
    loop = _numba_loop()
    equity = np.empty(closes.size)
    t0 = time.perf_counter()
    fills, final = loop(opens, closes, FAST, SLOW, TAKER_FEE, EXPOSURE, 100_000.0, equity)
    first_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = loop(opens, closes, FAST, SLOW, TAKER_FEE, EXPOSURE, 100_000.0, equity)
        runs.append(time.perf_counter() - t0)
        assert out == (fills, final)
    queue.put(
        {
            "load_s": load_s,
            "compile_and_first_s": first_s,
            "runs_s": runs,
            "bars": int(closes.size),
            "fills": int(fills),
            "final_equity": float(final),
            "peak_rss_mb": vm_mb("VmHWM"),
        }
    )


def run_nautilus(queue: mp.Queue, catalog: str, end: dt.date, repeat: int) -> None:
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.sim import run_sim
    from vibe_quant.sim.compare import differences

    t0 = time.perf_counter()
    plan, data = _ema_load(catalog, end)
    load_s = time.perf_counter() - t0
    runs = []
    nt = None
    for _ in range(repeat):
        nt = None  # one result held at a time
        t0 = time.perf_counter()
        nt = run_backtest(plan, data, replay="active")
        runs.append(
            {
                "wall_s": time.perf_counter() - t0,
                "result_elapsed_s": nt.elapsed_s,
                "bars_replayed": nt.extra.get("bars_replayed"),
            }
        )
    peak_nt = vm_mb("VmHWM")
    t0 = time.perf_counter()
    sim = run_sim(plan, data)
    sim_s = time.perf_counter() - t0
    diffs = differences(nt, sim, limit=5)
    queue.put(
        {
            "load_s": load_s,
            "runs": runs,
            "outcome": _outcome(nt),
            "metrics": dict(nt.metrics),
            "sim_outcome": _outcome(sim),
            "sim_metrics": dict(sim.metrics),
            "run_sim_cold_s": sim_s,
            "differences": diffs,
            "identical": not diffs,
            "peak_rss_mb": peak_nt,
            "peak_rss_with_identity_check_mb": vm_mb("VmHWM"),
        }
    )


class WorkerPeaks:
    """Peak RSS (``VmHWM``) of this process's spawned worker processes, sampled from /proc every `period` s.

    The workers' own ``ru_maxrss`` (what ``peak_worker_rss_mb`` reports) is not theirs alone: a spawned
    child's ``ru_maxrss`` starts at its parent's peak (the parent's memory is recorded when the child
    execs), so with a parent larger than its workers every worker reports the parent's peak. ``VmHWM``
    is the worker's own address space's peak; it only grows, so the last sample before a worker exits
    is its peak up to `period` s before the end.
    """

    def __init__(self, period: float = 0.1):
        import threading

        self.period = period
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _scan(self) -> None:
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) != me:
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if b"spawn_main" not in fh.read():  # a pool worker, not the resource tracker
                        continue
                with open(f"/proc/{entry}/status") as fh:
                    hwm = next((int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:")), None)
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if hwm is not None:
                self.peaks[int(entry)] = max(self.peaks.get(int(entry), 0.0), hwm)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self._scan()

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        values = sorted(self.peaks.values())
        return {"workers_seen": len(values), "max_mb": max(values, default=None), "each_mb": values}


def _same_metrics(a: dict, b: dict) -> list[str]:
    """Metrics on which two result dicts differ (floats: 1e-9 relative, floored at 1e-9; the elapsed time skipped)."""
    from vibe_quant.sim.compare import close

    out = []
    for key in sorted(set(a) | set(b)):
        if key == "execution_time_seconds":
            continue
        x, y = a.get(key), b.get(key)
        if not (close(x, y) if isinstance(x, float) and isinstance(y, float) else x == y):
            out.append(f"{key}: {x!r} vs {y!r}")
    return out


def ema_part(catalog: str, args, end: dt.date) -> dict:
    with tempfile.TemporaryDirectory() as cache_dir:
        runs = []
        for label in ("cold (empty numba cache)", "numba cache filled"):
            print(f"EMA cross: kernel, {label} ...", flush=True)
            k = run_in_child(run_kernel, catalog, end, cache_dir, args.repeat)
            print(f"  session build {k['session_build_s']:.2f}s, first run {k['first_run']['total_s']:.2f}s "
                  f"(simulate {k['first_run']['simulate_s']:.2f}s), warm {[round(w['total_s'], 3) for w in k['warm_runs']]}",
                  flush=True)  # fmt: skip
            runs.append(k)
        kernel, kernel_cached = runs
    print("EMA cross: plain numba loop ...", flush=True)
    loop = run_in_child(run_numba_loop, catalog, end, args.repeat)
    print(
        f"  compile+first {loop['compile_and_first_s']:.2f}s, runs {[round(r, 4) for r in loop['runs_s']]}", flush=True
    )
    print(f"EMA cross: NautilusTrader path x{args.nt_repeat}, then the identity check ...", flush=True)
    nt = run_in_child(run_nautilus, catalog, end, args.nt_repeat)
    print(f"  runs {[round(r['wall_s'], 2) for r in nt['runs']]}, identical: {nt['identical']}", flush=True)

    bars = kernel["outcome"]["bars"]
    warm = kernel["warm_runs"]
    med = {k: statistics.median(w[k] for w in warm) for k in ("total_s", "signal_table_s", "simulate_s", "post_run_s")}
    loop_med = statistics.median(loop["runs_s"])
    nt_med = statistics.median(r["wall_s"] for r in nt["runs"])
    # identity: NautilusTrader vs the kernel in its child (field by field), and the kernel children agree with it
    cross = _same_metrics(nt["metrics"], kernel["metrics"]) + _same_metrics(kernel["metrics"], kernel_cached["metrics"])
    identical = nt["identical"] and not cross and kernel["outcome"] == nt["sim_outcome"] == kernel_cached["outcome"]
    checks = {"bars": bars, "all_bars": bars == EXPECTED_BARS}
    if end == EMA_END:
        checks["expected_from_backtest_py"] = EXPECTED
        checks["matches_expected"] = (
            bars == EXPECTED_BARS
            and nt["outcome"]["fills"] == EXPECTED["fills"]
            and nt["outcome"]["trades"] == EXPECTED["trades"]
            and abs(nt["outcome"]["final_equity"] - EXPECTED["final_equity"]) < 1e-8
        )
    kernel_bps = bars / med["total_s"]
    return {
        "work": {
            "strategy": f"ema_cross.yaml on 1m: EMA {FAST}/{SLOW}, always in the market (reversal on each "
            "cross, through flat), exposure sizing (10% of equity notional)",
            "symbol": "FILUSDT",
            "timeframe": "1m",
            "start": EMA_START.isoformat(),
            "end": end.isoformat(),
            "bars": bars,
            "costs": "mode validation: next-open fills + volume slippage model, retail latency, taker fee 0.0005 "
            "(BacktestConfig(taker_fee=0.0005)), leverage 10, isolated-margin liquidation checks, "
            "funding settled on an injected 8-hourly +0.01% schedule",
        },
        "kernel": {
            "cold_empty_numba_cache": {k: kernel[k] for k in ("import_s", "session_build_s", "first_run", "cold_s")},
            "cold_numba_cache_filled": {
                k: kernel_cached[k]
                for k in ("import_s", "session_build_s", "first_run", "cold_s", "numba_cache_was_filled")
            },
            "warm_runs": warm,
            "warm_median_s": med["total_s"],
            "warm_split_median_s": {
                "signal_table": med["signal_table_s"],
                "simulate_nb": med["simulate_s"],
                "records_ledger_metrics": med["post_run_s"],
            },
            "warm_share_simulate_nb": med["simulate_s"] / med["total_s"],
            "warm_runs_numba_cache_filled_child": [w["total_s"] for w in kernel_cached["warm_runs"]],
            "bars_per_s_warm": kernel_bps,
            "bars_per_s_simulate_nb_only": bars / med["simulate_s"],
            "outcome": kernel["outcome"],
            "peak_rss_mb": kernel["peak_rss_mb"],
            "peak_rss_numba_cache_filled_child_mb": kernel_cached["peak_rss_mb"],
            "rss_after_data_load_mb": kernel["rss_after_load_mb"],
            "data_load_s": kernel["load_s"],
            "profile_extra_warm_run_top_own_time": kernel["profile_extra_warm_run_top_own_time"],
        },
        "numba_loop": {
            "models": "EMA 20/100 at the close, reverse at the next open, 0.05% fee per fill, equity per close; "
            "no latency, slippage, funding, liquidation, tick/step rounding, ledger or metrics",
            "compile_and_first_s": loop["compile_and_first_s"],
            "runs_s": loop["runs_s"],
            "median_s": loop_med,
            "bars_per_s": loop["bars"] / loop_med,
            "fills": loop["fills"],
            "final_equity": loop["final_equity"],
            "peak_rss_mb": loop["peak_rss_mb"],
        },
        "nautilus": {
            "call": 'run_backtest(plan, data, replay="active")',
            "runs": nt["runs"],
            "median_s": nt_med,
            "bars_per_s": bars / nt_med,
            "outcome": nt["outcome"],
            "peak_rss_mb": nt["peak_rss_mb"],
            "peak_rss_with_identity_check_mb": nt["peak_rss_with_identity_check_mb"],
        },
        "identical": identical,
        "identity_check": "tests/sim/compare.py:differences(NautilusTrader result, run_sim result) in the "
        "NautilusTrader child (fills, funding, liquidations, equity curve, trades, every metric; "
        "floats 1e-9 relative), and every metric of the kernel children against NautilusTrader's",
        "differences": nt["differences"] + cross,
        "checks": checks,
        "ratios": {
            "nautilus_over_kernel_warm": nt_med / med["total_s"],
            "nautilus_over_kernel_cold_cache_filled": nt_med / kernel_cached["cold_s"],
            "kernel_warm_over_numba_loop": med["total_s"] / loop_med,
            "simulate_nb_over_numba_loop": med["simulate_s"] / loop_med,
        },
        "targets": {"kernel_warm_under_1s": med["total_s"] < 1.0},
        "not_measured": "vectorbt and backtesting.py are not installed in this environment (uv pip list) and are "
        "not added as dependencies: they are not measured here",
        "quoted_not_measured": {
            **QUOTED,
            "kernel_warm_vs_quoted_backtesting_py": f"faster than 6-7 s: {med['total_s'] < 6.0}",
            "kernel_warm_vs_quoted_vectorbt": f"{med['total_s'] / 0.2:.1f}x-{med['total_s'] / 0.15:.1f}x of 0.15-0.2 s "
            f"(target within 5x: {med['total_s'] <= 5 * 0.15} at 0.15 s, "
            f"{med['total_s'] <= 5 * 0.2} at 0.2 s)",
        },
    }


def screening_part(args, start: dt.date, end: dt.date) -> dict:
    import msgspec

    import vibe_quant.screening.pipeline as pipeline
    from screening import _naive  # benchmarks/screening.py's naive path
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.persist import clean
    from vibe_quant.screening.check import metric_differences, same_metric
    from vibe_quant.screening.pipeline import SweepSpec, build_grid, create_screening_run, point_key, run_screening
    from vibe_quant.state import StateManager
    from vibe_quant.strategy.registry import find_strategy

    recheck: dict = {}
    check_front = pipeline.check_front

    def timed_check_front(*a, **k):  # the front re-check on NautilusTrader, inside run_screening
        t0 = time.perf_counter()
        n = check_front(*a, **k)
        recheck.update(s=time.perf_counter() - t0, points=n)
        return n

    pipeline.check_front = timed_check_front
    with tempfile.TemporaryDirectory() as tmp:
        home = fil_home(tmp)
        ref = find_strategy("rsi_mean_reversion_mtf")
        base = parse_config(
            {
                "strategy": ref.name,
                "kind": ref.kind,
                "document": ref.document,
                "symbols": ["FILUSDT"],
                "timeframe": "5m",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "mode": "screening",
            }
        )

        def screen(engine: str, points: int) -> tuple[dict, dict]:
            spec = SweepSpec(max_points=points, sample_seed=0)
            grid = build_grid(base, spec)
            with StateManager(home.db_path) as db:
                run_row = create_screening_run(db, base, spec)
            print(
                f"screening, engine={engine}: {len(grid.points)} points of {grid.sampled_from} on {args.workers} "
                "workers ...",
                flush=True,
            )
            per_point: list[tuple[float, str]] = []

            def progress(done, total, r):
                per_point.append((r["elapsed_s"], r["engine"]))
                if done % 20 == 0 or done == total:
                    print(f"  {done}/{total}", flush=True)

            recheck.clear()
            with WorkerPeaks() as peaks:
                t0 = time.perf_counter()
                summary = run_screening(home, run_row, args.workers, on_progress=progress, engine=engine)
                wall = time.perf_counter() - t0
            with StateManager(home.db_path) as db:
                metrics = {r["point_key"]: r["metrics"] for r in db.find("sweep_results", run_id=run_row)}
            point_s = [s for s, _ in per_point]
            out = {
                "engine": engine,
                "points": summary.ran,
                "wall_s": wall,
                "points_per_minute": summary.ran / wall * 60,
                "s_per_point": wall * args.workers / summary.ran,
                "engines": summary.engines,
                "worker_point_s_median": statistics.median(point_s),
                "worker_point_s_max": max(point_s),
                "worker_point_s_sum": sum(point_s),
                "outside_points_s_estimate": wall - sum(point_s) / args.workers - recheck.get("s", 0.0),
                "peak_worker_rss_mb": summary.peak_rss_mb,
                "worker_vmhwm_mb": peaks.summary(),
                "bars_per_point": summary.bars // max(summary.ran, 1),
                "errors": summary.errors,
                "passed_filters": summary.passed,
                "front_size": len(summary.front),
                "front_checked": summary.front_checked,
                "grid": grid.sampled_from,
                "grid_points": grid.points,
            }
            if recheck:
                out["front_recheck_s"] = recheck["s"]
                out["front_recheck_points"] = recheck["points"]
                out["points_per_minute_without_front_recheck"] = summary.ran / (wall - recheck["s"]) * 60
            print(
                f"  {out['points_per_minute']:.1f} points/min, {wall:.1f}s wall"
                + (f" (front re-check {recheck['s']:.1f}s)" if recheck else ""),
                flush=True,
            )
            return out, metrics

        sim, sim_metrics = screen("sim", args.points)
        nts, nt_metrics = screen("nautilus", args.nautilus_points)
        points = sim.pop("grid_points")
        nt_points = nts.pop("grid_points")
        assert nt_points == points[: len(nt_points)], "the nautilus run screened other points"
        naive_points = points[: args.naive_points]
        print(f"naive: {len(naive_points)} points, a fresh BacktestNode each, {args.workers} workers ...", flush=True)
        from concurrent.futures import ProcessPoolExecutor

        base_plain = msgspec.to_builtins(msgspec.structs.replace(base, params={}))
        with WorkerPeaks() as naive_peaks:
            t0 = time.perf_counter()
            with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
                naive = list(
                    pool.map(
                        _naive, [str(home.root)] * len(naive_points), [base_plain] * len(naive_points), naive_points
                    )
                )
            naive_s = time.perf_counter() - t0
        print(f"  {len(naive) / naive_s * 60:.1f} points/min, {naive_s:.1f}s wall", flush=True)

    # identity: sim vs nautilus on every point both ran; naive vs both on its points
    sim_vs_nt = []
    for p in nt_points:
        key = point_key(p)
        d = metric_differences(sim_metrics[key], nt_metrics[key])
        if d:
            sim_vs_nt.append({"params": p, "differences": [list(x) for x in d]})
    exact = sum(sim_metrics[point_key(p)] == nt_metrics[point_key(p)] for p in nt_points)
    naive_keys = ("total_trades", "sharpe_ratio", "net_pnl", "fills")  # what screening.py compares
    naive_diff = []
    for n, p in zip(naive, naive_points, strict=True):
        key = point_key(p)
        for k in naive_keys:
            v = clean(n["metrics"][k])
            for name, other in (("sim", sim_metrics), ("nautilus", nt_metrics)):
                if key in other and not same_metric(v, other[key][k]):
                    naive_diff.append(f"{p} {k}: naive {v!r} vs {name} {other[key][k]!r}")
    naive_ppm = len(naive) / naive_s * 60
    identical = not sim_vs_nt and not naive_diff and sim["errors"] == 0 and nts["errors"] == 0
    return {
        "work": {
            "strategy": "rsi_mean_reversion_mtf.yaml (5m + 1h + 4h, ATR trailing stop, session + funding filters)",
            "setup": "benchmarks/screening.py's (FILUSDT home, screening mode, SweepSpec(max_points, sample_seed=0))",
            "symbol": "FILUSDT",
            "timeframe": "5m",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "bars_per_point": sim["bars_per_point"],
            "grid": sim["grid"],
            "workers": args.workers,
            "funding": "the FILUSDT sample has no funding file: funding is not exercised here",
        },
        "sim": sim,
        "nautilus": {
            **nts,
            "note": 'NautilusTrader\'s fast path (engine="nautilus", --replay active): what '
            "benchmarks/screening.py measures as 'ours'; the first points of the same sample",
        },
        "naive": {
            "wall_s": naive_s,
            "points": len(naive),
            "points_per_minute": naive_ppm,
            "s_per_point": naive_s * args.workers / len(naive),
            "peak_worker_rss_mb": max(n["rss_mb"] for n in naive),
            "worker_vmhwm_mb": naive_peaks.summary(),
            "note": "benchmarks/screening.py's naive path (a fresh BacktestNode per point), the first N points "
            "of the same sample",
        },
        "ratios": {
            "sim_over_naive_points_per_minute": sim["points_per_minute"] / naive_ppm,
            "sim_over_nautilus_points_per_minute": sim["points_per_minute"] / nts["points_per_minute"],
            "nautilus_over_naive_points_per_minute": nts["points_per_minute"] / naive_ppm,
            "sim_without_front_recheck_over_naive": sim.get("points_per_minute_without_front_recheck", float("nan"))
            / naive_ppm,
            "worker_point_s_median_nautilus_over_sim": nts["worker_point_s_median"] / sim["worker_point_s_median"],
        },
        "targets": {"sim_at_least_100x_naive": sim["points_per_minute"] / naive_ppm >= 100},
        "identical": identical,
        "identity_check": "every POINT_METRICS metric of sim vs nautilus on each point both ran (1e-9 relative); "
        f"the naive path's {', '.join(naive_keys)} vs both on its points",
        "points_compared_sim_vs_nautilus": len(nt_points),
        "points_bit_identical_sim_vs_nautilus": exact,
        "differences_sim_vs_nautilus": sim_vs_nt[:10],
        "differences_naive": naive_diff[:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm kernel runs and numba-loop runs (median)")
    parser.add_argument("--nt-repeat", type=int, default=2, help="NautilusTrader EMA-cross runs (median)")
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--nautilus-points", type=int, help="points on engine=nautilus (default: --points)")
    parser.add_argument("--naive-points", type=int, default=20, help="the first N of the same points")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: EMA cross to {QUICK_EMA_END}, screening to {QUICK_SCREEN_END}, 10 points, "
        "2 naive, 1 NautilusTrader run; written to $TMPDIR/kernel-quick.json",
    )
    parser.add_argument("--skip-screening", action="store_true", help="EMA cross only (not for the recorded JSON)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from screening import END as SCREEN_END
    from screening import START as SCREEN_START

    ema_end, screen_end = EMA_END, SCREEN_END
    if args.quick:
        ema_end, screen_end = QUICK_EMA_END, QUICK_SCREEN_END
        args.points, args.naive_points, args.nt_repeat = min(args.points, 10), min(args.naive_points, 2), 1
    args.nautilus_points = args.nautilus_points or args.points
    out = args.out or (
        Path(tempfile.gettempdir()) / "kernel-quick.json"
        if args.quick
        else ROOT / "benchmarks" / "results" / "kernel.json"
    )
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        print("ingesting FILUSDT into a temporary home ...", flush=True)
        catalog = str(fil_home(tmp).catalog)
        ema = ema_part(catalog, args, ema_end)
    screening = None if args.skip_screening else screening_part(args, SCREEN_START, screen_end)
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    import nautilus_trader
    import numba

    result = {
        "benchmark": "kernel: the compiled perp simulator vs a plain numba loop, our NautilusTrader path and the "
        "naive screening path",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": mp.cpu_count(),
            "platform": platform.platform(),
            "numba": numba.__version__,
            "nautilus_trader": nautilus_trader.__version__,
        },
        "quick": args.quick,
        "method": "one spawned process per variant (clean VmHWM); kernel: SimSession built once, first run apart "
        "(cold: empty numba cache; again with the cache filled), median of --repeat warm runs split by "
        "wrapping inputs.strategy_arrays and kernel.simulate_nb; numba loop: median of --repeat after the "
        "compiling call; NautilusTrader: median of --nt-repeat; screening: points / wall x 60 as "
        "benchmarks/screening.py (sim's wall includes its front re-check on NautilusTrader)",
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "headline": {
            "ema_kernel_warm_s": ema["kernel"]["warm_median_s"],
            "ema_kernel_bars_per_s": ema["kernel"]["bars_per_s_warm"],
            "ema_kernel_cold_s_empty_cache": ema["kernel"]["cold_empty_numba_cache"]["cold_s"],
            "ema_kernel_cold_s_cache_filled": ema["kernel"]["cold_numba_cache_filled"]["cold_s"],
            "ema_numba_loop_s": ema["numba_loop"]["median_s"],
            "ema_nautilus_s": ema["nautilus"]["median_s"],
            "ema_nautilus_over_kernel": ema["ratios"]["nautilus_over_kernel_warm"],
            "ema_kernel_over_numba_loop": ema["ratios"]["kernel_warm_over_numba_loop"],
            "ema_identical": ema["identical"],
            **(
                {}
                if screening is None
                else {
                    "screening_sim_points_per_minute": screening["sim"]["points_per_minute"],
                    "screening_nautilus_points_per_minute": screening["nautilus"]["points_per_minute"],
                    "screening_naive_points_per_minute": screening["naive"]["points_per_minute"],
                    "screening_sim_over_naive": screening["ratios"]["sim_over_naive_points_per_minute"],
                    "screening_sim_over_nautilus": screening["ratios"]["sim_over_nautilus_points_per_minute"],
                    "screening_identical": screening["identical"],
                }
            ),
        },
        "ema_cross": ema,
        "screening": screening,
        "peak_rss_mb": {
            "this_process": self_peak,
            "largest_child_or_worker": children_peak,
            "kernel_child": ema["kernel"]["peak_rss_mb"],
            "numba_loop_child": ema["numba_loop"]["peak_rss_mb"],
            "nautilus_child": ema["nautilus"]["peak_rss_mb"],
            **(
                {}
                if screening is None
                else {
                    "screening_sim_workers_vmhwm": screening["sim"]["worker_vmhwm_mb"]["max_mb"],
                    "screening_nautilus_workers_vmhwm": screening["nautilus"]["worker_vmhwm_mb"]["max_mb"],
                    "screening_naive_workers_vmhwm": screening["naive"]["worker_vmhwm_mb"]["max_mb"],
                    "screening_sim_peak_worker_rss_mb_as_reported": screening["sim"]["peak_worker_rss_mb"],
                    "screening_nautilus_peak_worker_rss_mb_as_reported": screening["nautilus"]["peak_worker_rss_mb"],
                    "screening_naive_ru_maxrss_as_reported": screening["naive"]["peak_worker_rss_mb"],
                }
            ),
            "note": "children and workers: their own VmHWM (workers sampled from /proc every 0.1 s); "
            "this_process / largest_child_or_worker: ru_maxrss of RUSAGE_SELF / RUSAGE_CHILDREN (the parent "
            "ingests, runs the screening pipelines and the front re-check). The '_as_reported' figures are "
            "the workers' ru_maxrss (ScreeningSummary.peak_worker_rss_mb): a spawned process's ru_maxrss "
            "starts at its parent's peak, so they are at least this process's peak when they started",
        },
        "wall_s": time.perf_counter() - t_start,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["headline"], indent=2))
    print(f"peak RSS: {json.dumps(result['peak_rss_mb'])}")
    print(f"wrote {out} ({result['wall_s']:.0f}s)")
    if not (ema["identical"] and (screening is None or screening["identical"])):
        raise SystemExit("the kernel and NautilusTrader disagree: see 'differences' in the JSON")


if __name__ == "__main__":
    main()
