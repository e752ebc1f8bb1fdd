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

Writes ``benchmarks/results/lpi.json``.

    uv run python benchmarks/lpi.py [--repeat 3]
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
    out = ROOT / "benchmarks" / "results" / "lpi.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
