"""Kernel sweep at scale: the whole 15,360-point RSI-MTF grid on the perp kernel, 2 workers, against
the same pipeline on NautilusTrader (its fast path) on a 100-point sample, in one process run.

* kernel: ``run_screening(engine="sim")`` over every point of rsi_mean_reversion_mtf's sweep grid
  (``max_points=0``) on FILUSDT 5m, one year; rows streamed into SQLite as they finish; the
  Pareto front re-run on NautilusTrader at the end (part of the wall time).
* baseline: ``run_screening(engine="nautilus")`` on a seeded 100-point sample of the same grid,
  same workers; its points' metrics must equal the kernel run's (checked).

Reports points per minute, peak worker RSS (bounded memory: it must not grow with the number of
points), the front re-check, and writes ``benchmarks/results/kernel_sweep.json``.

    uv run python benchmarks/kernel_sweep.py [--workers 2] [--start 2025-05-01 --end 2026-04-30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_home  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start", default="2025-05-01")
    parser.add_argument("--end", default="2026-04-30")
    parser.add_argument("--baseline-points", type=int, default=100)
    parser.add_argument("--max-points", type=int, default=0, help="0: the whole grid (15,360 points)")
    args = parser.parse_args()

    from vibe_quant.backtest.config import parse_config
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, build_grid, create_screening_run, run_screening
    from vibe_quant.state import StateManager
    from vibe_quant.strategy.registry import find_strategy

    with tempfile.TemporaryDirectory() as tmp:
        home = fil_home(tmp)
        ref = find_strategy("rsi_mean_reversion_mtf")
        base = parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                             "timeframe": "5m", "start": args.start, "end": args.end, "mode": "screening"})  # fmt: skip

        def sweep(spec: SweepSpec, engine: str, label: str):
            grid = build_grid(base, spec)
            with StateManager(home.db_path) as db:
                row = create_screening_run(db, base, spec)
            print(f"{label}: {len(grid.points):,} points on {args.workers} workers ({engine}) ...", flush=True)
            step = max(len(grid.points) // 20, 1)
            t0 = time.perf_counter()
            summary = run_screening(home, row, args.workers, engine=engine, on_progress=lambda done, total, _r: print(
                f"  {done:,}/{total:,} {time.perf_counter() - t0:.0f}s", flush=True) if done % step == 0 else None)  # fmt: skip
            wall = time.perf_counter() - t0
            with StateManager(home.db_path) as db:
                metrics = {r["point_key"]: r["metrics"] for r in db.find("sweep_results", run_id=row)}
            return grid, summary, wall, metrics

        # hard filters loose enough for a front on one year of one symbol (the seed's 50 trades, 30% drawdown
        # and PF > 1 leave none): the front re-check on NautilusTrader must run
        filters = HardFilters(min_trades=20, max_drawdown=0.5, min_profit_factor=0.9)
        grid, kernel, kernel_s, kernel_metrics = sweep(SweepSpec(max_points=args.max_points, filters=filters), "sim",
                                                       "kernel")  # fmt: skip
        sample = SweepSpec(max_points=args.baseline_points, sample_seed=0, filters=filters)
        _, nautilus, nautilus_s, nautilus_metrics = sweep(sample, "nautilus", "NautilusTrader")
        missing = [k for k in nautilus_metrics if k not in kernel_metrics]
        differ = [k for k, m in nautilus_metrics.items() if k in kernel_metrics and kernel_metrics[k] != m]
        if differ:
            raise SystemExit(f"{len(differ)} points differ between the kernel and NautilusTrader: {differ[:3]}")
        db_mb = home.db_path.stat().st_size / 2**20

    kernel_ppm = kernel.ran / kernel_s * 60
    nautilus_ppm = nautilus.ran / nautilus_s * 60
    result = {
        "benchmark": "kernel_sweep",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "work": {
            "strategy": "rsi_mean_reversion_mtf.yaml (5m + 1h + 4h, ATR trailing stop, session + funding filters)",
            "symbol": "FILUSDT",
            "timeframe": "5m",
            "start": args.start,
            "end": args.end,
            "grid_points": grid.total,
            "workers": args.workers,
            "mode": "screening",
        },
        "kernel": {
            "points": kernel.ran,
            "wall_s": kernel_s,
            "points_per_minute": kernel_ppm,
            "s_per_point": kernel_s * args.workers / kernel.ran,
            "peak_worker_rss_mb": kernel.peak_rss_mb,
            "errors": kernel.errors,
            "passed_filters": kernel.passed,
            "front_size": len(kernel.front),
            "front_checked_on_nautilus": kernel.front_checked,
            "engines": kernel.engines,
            "state_db_mb_after_both_runs": db_mb,
        },
        "nautilus_fast_path": {
            "points": nautilus.ran,
            "wall_s": nautilus_s,
            "points_per_minute": nautilus_ppm,
            "s_per_point": nautilus_s * args.workers / nautilus.ran,
            "peak_worker_rss_mb": nautilus.peak_rss_mb,
            "note": "seeded 100-point sample of the same grid, --replay active",
        },
        "identical_metrics_on_shared_points": len(nautilus_metrics) - len(missing),
        "ratio_points_per_minute_kernel_vs_nautilus": kernel_ppm / nautilus_ppm,
        "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out = ROOT / "benchmarks" / "results" / "kernel_sweep.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
