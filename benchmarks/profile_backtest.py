"""Where the backtest benchmark's time and memory go (benchmarks/backtest.py's workload, one process).

* ``mem``: VmRSS (and VmHWM) after each step of our run: catalog read, funding, instrument
  states (``InstrumentState.from_bars``), merged bar list, bar positions, engine built,
  ``engine.add_data``, ``engine.run()``, ``module.finish``, equity curve, assembly, reports.
  With ``--tracemalloc`` also the Python allocations alive after set-up and after the run, by line.
* ``cprofile``: ``run_backtest`` (or plain) under cProfile, the top functions by own time.
* ``run``: one variant, nothing else (for ``py-spy record -- python ... run --variant ours``);
  ``--gc`` times the garbage collector's passes.

    uv run python benchmarks/profile_backtest.py mem --catalog DIR [--tracemalloc]
    uv run python benchmarks/profile_backtest.py cprofile --catalog DIR [--variant ours|plain]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from backtest import _config, proc_status_mb, run_ours, run_plain  # noqa: E402


class _Box:
    def put(self, item) -> None:
        self.item = item


def memory_steps(catalog: str, trace: bool, variant: str = "ours") -> dict:
    import nautilus_trader.backtest.engine as nt_engine

    import vibe_quant.backtest.engine as runner
    import vibe_quant.backtest.venue as venue
    from _child import inject_funding
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    rows: list[tuple[str, float, float, float]] = []
    snapshots = {}
    last = [time.perf_counter()]

    def mark(name: str) -> None:
        now = time.perf_counter()
        rows.append((name, proc_status_mb("VmRSS"), proc_status_mb("VmHWM"), now - last[0]))
        last[0] = now
        if trace and name in ("add_data", "engine.run"):
            snapshots[name] = tracemalloc.take_snapshot()

    def wrap(owner, attr: str, name: str):
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)
            mark(name)
            return out

        setattr(owner, attr, wrapped)

    class MarkedEngine(nt_engine.BacktestEngine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            mark("engine built")

        def add_venue(self, *args, **kwargs):
            super().add_venue(*args, **kwargs)
            mark("add_venue")

        def add_data(self, *args, **kwargs):
            super().add_data(*args, **kwargs)
            mark("add_data")

        def run(self, *args, **kwargs):
            super().run(*args, **kwargs)
            mark("engine.run")

    nt_engine.BacktestEngine = MarkedEngine
    wrap(runner, "instrument_states", "instrument_states (from_bars)")
    wrap(runner, "merge_bars", "merge_bars")
    wrap(venue, "bar_positions", "bar_positions")
    wrap(venue.PerpVenueModule, "finish", "module.finish")
    wrap(venue.PerpVenueModule, "equity_curve", "equity_curve")
    wrap(runner, "assemble", "assemble (ledger, metrics)")
    if trace:
        tracemalloc.start(1)
    mark("imports")
    if variant == "plain":  # catalog read, engine set-up, run, fills report (engine steps marked)
        box = _Box()
        run_plain(box, catalog)
        mark("fills report, dispose")
        for name, rss, hwm, seconds in rows:
            print(f"{name:34s} VmRSS {rss:8.1f} MB  VmHWM {hwm:8.1f} MB  {seconds:7.2f}s")
        return box.item
    plan = plan_run(_config())
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    mark("load_market_data (catalog.bars)")
    inject_funding(data)
    mark("inject_funding")
    result = runner.run_backtest(plan, data, run_id="profile")
    mark("reports, dispose")
    out = {
        "fills": result.metrics["fills"], "final_equity": result.metrics["final_equity"],
        "steps": [{"step": n, "rss_mb": round(r, 1), "hwm_mb": round(h, 1), "seconds": round(s, 3)} for n, r, h, s in rows],
    }  # fmt: skip
    prev = rows[0][1]
    for name, rss, hwm, seconds in rows:
        print(f"{name:34s} VmRSS {rss:8.1f} MB ({rss - prev:+7.1f})  VmHWM {hwm:8.1f} MB  {seconds:7.2f}s")
        prev = rss
    if trace:
        for name, snap in snapshots.items():
            stats = snap.statistics("lineno")
            total = sum(s.size for s in stats)
            print(f"\n-- Python allocations alive after {name}: {total / 2**20:.1f} MB, top lines --")
            for s in stats[:15]:
                print(f"{s.size / 2**20:8.1f} MB {s.count:9d} blocks  {s.traceback}")
        if "engine.run" in snapshots and "add_data" in snapshots:
            print("\n-- grown during engine.run(), top lines --")
            for s in snapshots["engine.run"].compare_to(snapshots["add_data"], "lineno")[:15]:
                print(f"{s.size_diff / 2**20:+8.1f} MB {s.count_diff:+9d} blocks  {s.traceback}")
    return out


def profile(catalog: str, variant: str, top: int) -> None:
    target = run_ours if variant == "ours" else run_plain
    box = _Box()
    prof = cProfile.Profile()
    prof.enable()
    target(box, catalog)
    prof.disable()
    print(json.dumps({k: v for k, v in box.item.items() if not isinstance(v, dict)}, indent=1))
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(top)
        print(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("mem", "cprofile", "run"))
    parser.add_argument("--catalog", required=True, help="a catalog with the FILUSDT 1m bars (see backtest.py)")
    parser.add_argument("--variant", choices=("ours", "plain"), default="ours")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--gc", action="store_true", help="run: time the garbage collector's passes")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    if args.what == "mem":
        memory_steps(args.catalog, args.tracemalloc, args.variant)
    elif args.what == "cprofile":
        profile(args.catalog, args.variant, args.top)
    else:
        box = _Box()
        gc_time = _time_gc() if args.gc else None
        (run_ours if args.variant == "ours" else run_plain)(box, args.catalog)
        print(json.dumps({k: v for k, v in box.item.items() if not isinstance(v, dict)}, indent=1))
        if gc_time is not None:
            print("garbage collections (generation: count, seconds):", json.dumps(gc_time))


def _time_gc() -> dict:
    """Count and time the cyclic garbage collector's passes by generation (gc.callbacks)."""
    import gc

    out = {str(g): [0, 0.0] for g in range(3)}
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            row = out[str(info["generation"])]
            row[0] += 1
            row[1] += time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    return out


if __name__ == "__main__":
    main()
