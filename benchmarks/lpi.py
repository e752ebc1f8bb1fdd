"""LPI feature engine benchmark: the numba kernel vs the plain per-tick Python engine, one core.

Input: the tick benchmark's day (``benchmarks/ingest_ticks.py``), 3,158,400 trades: each row of
the real COIN-M BTCUSD_PERP 2026-05-08 aggTrades file (105,280 rows) repeated 30 times at its own
timestamp, built here in memory. Quotes-free mode (no bookTicker for that day), default parameters
(volume clock, 1,000,000 USD buckets, median/MAD z-scores).

* kernel: ``vibe_quant.lpi.compute`` on the whole day (compiled first on a small slice; median of
  `--repeat` runs).
* reference: ``compute_reference`` (``FeatureEngine`` fed tick by tick) on the first 1/30 of the
  day (105,280 trades), its rate taken as the whole day's (scaled, said so in the results); the
  kernel's snapshots of that slice must be identical to the reference's, column by column.

NautilusTrader runs (``--nt``, on by default), each in its own spawned process (clean peak RSS):
the same 3,158,400 trades as ticks of the linear BTCUSDT-PERP proxy (prices, times and aggressors of
the real rows, quantity = contracts x 100 / price at the 0.001 step, ``vibe_quant.data.proxy``),
quotes-free, through ``run_tick_backtest`` (the tick-level perp core: latency, L1 matching on the
trade-inferred touch, funding, liquidation):

* Variant B (``lpi_reversion``: the per-tick ``FeatureEngine`` in the strategy, post-only tranches,
  markouts; 250,000 USD buckets so it trades), validation mode, co-located latency;
* baseline: the EMA cross (``ema_cross``) on 1m bars NautilusTrader aggregates from the same ticks:
  the engine's own cost per tick without a tick strategy.

Each reports the wall time of the run (engine set-up to metrics), the ticks/s, the fills and the peak
RSS of its process (``ru_maxrss``, ticks built in that process included).

Writes ``benchmarks/results/lpi.json``.

    uv run python benchmarks/lpi.py [--repeat 3] [--no-nt]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from vibe_quant.lpi import LpiParams, compute, compute_reference
from vibe_quant.lpi.inputs import quotes_free_inputs

ROOT = Path(__file__).resolve().parents[1]
DAY = (
    ROOT.parent
    / "shared/data/binance-vision/data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
)
COPIES = 30
TRADE_COLS = ("trade_ts", "trade_price", "trade_notional", "trade_side")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nt", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    real = quotes_free_inputs(DAY, contract_size=100.0)
    day = replace(real, **{k: np.repeat(getattr(real, k), COPIES) for k in TRADE_COLS})
    n = day.trade_ts.size
    params = LpiParams(quotes_free=True)
    part = replace(day, **{k: getattr(day, k)[: n // COPIES] for k in TRADE_COLS})
    compute(replace(day, **{k: getattr(day, k)[:5000] for k in TRADE_COLS}), params)  # compile

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        snaps = compute(day, params)
        times.append(time.perf_counter() - t0)
    kernel_s = statistics.median(times)

    t0 = time.perf_counter()
    ref = compute_reference(part, params)
    ref_s = time.perf_counter() - t0
    fast = compute(part, params)
    identical = fast.dtype == ref.dtype and all(
        np.array_equal(fast[c], ref[c], equal_nan=True) for c in ref.dtype.names
    )
    if not identical:
        raise SystemExit("kernel and reference differ on the slice")
    ref_rate = part.trade_ts.size / ref_s
    result = {
        "input": f"BTCUSD_PERP 2026-05-08 aggTrades, each row x{COPIES} at its own timestamp (quotes-free)",
        "ticks": n,
        "params": "LpiParams(quotes_free=True): volume clock 1e6 USD, MAD z-scores, window 300",
        "snapshots": int(snaps.size),
        "kernel_seconds": round(kernel_s, 4),
        "ticks_per_s": round(n / kernel_s),
        "target_ticks_per_s": 2_000_000,
        "reference_ticks": int(part.trade_ts.size),
        "reference_seconds_on_slice": round(ref_s, 3),
        "reference_ticks_per_s": round(ref_rate),
        "reference_day_seconds_scaled": round(n / ref_rate, 1),
        "speedup": round((n / kernel_s) / ref_rate, 1),
        "identical_on_slice": identical,
        "slice_snapshots": int(ref.size),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.nt:
        import sys

        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _child import run_in_child

        variant_b = run_in_child(nt_run, "lpi_reversion", VARIANT_B)
        baseline = run_in_child(nt_run, "ema_cross", {})
        result["nautilus"] = {
            "input": f"{n:,} trades of the linear BTCUSDT-PERP proxy (x{COPIES} day), quotes-free, tick-level perp core",
            "variant_b": variant_b, "baseline_ema_cross": baseline,
            "variant_b_over_baseline_wall": round(variant_b["run_seconds"] / baseline["run_seconds"], 2),
        }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "lpi.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


VARIANT_B = {"quotes_free": True, "bucket_notional": 250_000.0, "n_max": 20_000.0}


def day_ticks(price_precision: int, size_precision: int) -> list:
    """The x30 day as TradeTicks of the linear proxy instrument (built in the calling process)."""
    from decimal import Decimal

    from nautilus_trader.model.data import TradeTick
    from nautilus_trader.model.identifiers import InstrumentId

    from vibe_quant.lpi.inputs import aggtrades_arrays

    t = aggtrades_arrays(DAY, contract_size=100.0)
    step = float(Decimal("0.001"))
    qty = np.maximum(np.round(t["trade_notional"] / t["trade_price"] / step) * step, step)
    n = t["trade_ts"].size * COPIES
    side = np.where(np.repeat(t["trade_side"], COPIES) > 0, 1, 2).astype(np.uint8)
    ts = np.repeat(t["trade_ts"], COPIES).astype(np.uint64)
    return TradeTick.from_raw_arrays_to_list(
        InstrumentId.from_str("BTCUSDT-PERP.BINANCE"), price_precision, size_precision, np.repeat(t["trade_price"], COPIES),
        np.repeat(qty, COPIES), side, [str(i) for i in range(n)], ts, ts,
    )  # fmt: skip


def nt_run(queue, strategy: str, params: dict) -> None:
    """One NautilusTrader tick run in this (spawned) process; puts its figures on `queue`."""
    import datetime as dt
    import resource

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.ticks import TickData, linear_spec, run_tick_backtest
    from vibe_quant.instruments.factory import crypto_perpetual
    from vibe_quant.instruments.specs import InstrumentSpecs

    spec = linear_spec(InstrumentSpecs(), "BTCUSDT")
    t0 = time.perf_counter()
    ticks = day_ticks(spec.price_precision, spec.size_precision)
    build_s = time.perf_counter() - t0
    data = TickData({"BTCUSDT": spec}, {"BTCUSDT": crypto_perpetual(spec)}, {"BTCUSDT": ticks}, {"BTCUSDT": []},
                    {"BTCUSDT": []}, "benchmark")  # fmt: skip
    kind = "lpi" if strategy.startswith("lpi") else "python"
    config = BacktestConfig(strategy=strategy, kind=kind, symbols=("BTCUSDT",), timeframe="1m",
                            start=dt.date(2026, 5, 8), end=dt.date(2026, 5, 8), params=params, mode="validation",
                            latency="co_located")  # fmt: skip
    t0 = time.perf_counter()
    result = run_tick_backtest(plan_run(config), data)
    run_s = time.perf_counter() - t0
    queue.put({
        "strategy": strategy, "params": params, "ticks": len(ticks), "build_ticks_seconds": round(build_s, 2),
        "run_seconds": round(run_s, 2), "engine_seconds": round(result.elapsed_s, 2),
        "ticks_per_s": round(len(ticks) / run_s), "fills": len(result.recorder.fills),
        "markouts": sum(1 for e in result.recorder.events if e.get("type") == "MARKOUT"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    })  # fmt: skip


if __name__ == "__main__":
    main()
