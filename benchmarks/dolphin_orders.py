"""DOLPHIN on NautilusTrader (orders mode) against the array engine over the same real hourly bars.

Data: every hourly perpetual of ``../shared/data/perps-1d-1h`` covering 2025-11-28..2026-02-26 (the
selection of ``dolphin_engine.covering``: 97 assets) imported into a temporary home. Period
2025-12-01..2026-02-25: orders mode needs the 751-bar warm-up of its streaming scanner inside the
run, so its first scan row is on 2026-01-01; the array path builds the scan tables of 2026-01-01..
2026-02-25 (their warm-up read from the catalog) and runs ``run_array`` over them.

Cases, each in its own spawned process (clean peak RSS; ``_child.run_in_child``):

* ``orders-97`` / ``orders-50``: ``backtest.engine.run_backtest`` of ``dolphin_champion`` (orders
  mode, IRP on, validation costs) over the 97 assets / the first 50 (the specification's memory
  bound: < 4 GB at 50 assets); market data loaded first, timed apart.
* ``array-97`` / ``array-50``: ``build_scans`` (timed apart) then ``run_array`` with the champion.

Figures: seconds (median of ``--repeats`` runs inside the child, after one untimed warm-up run),
bars per second (bars of every asset), scan rows per second, trades, peak RSS. The two paths are
not expected to trade identically: orders mode fills at the next open with fees, funding and
liquidation, sized from the account (``vq dolphin compare`` explains the difference); the point is
what running the engine as NautilusTrader orders costs in time and memory. Writes
``benchmarks/results/dolphin_orders.json``.

    uv run python benchmarks/dolphin_orders.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_in_child
from dolphin_engine import covering, machine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dolphin_orders.json"
START, END = dt.date(2025, 12, 1), dt.date(2026, 2, 25)
SCAN_START = dt.date(2026, 1, 1)


def say(msg: str) -> None:
    print(f"[dolphin_orders {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def import_child(queue, home_root: str, paths: list[str]) -> None:
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(Path(home_root)).ensure()
    t0 = time.perf_counter()
    run_import(home, [Path(p) for p in paths], InstrumentSpecs())
    queue.put({"import_s": round(time.perf_counter() - t0, 2)})


def orders_child(queue, home_root: str, symbols: list[str], repeats: int) -> None:
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    config = parse_config({"strategy": "dolphin_champion", "kind": "dolphin", "symbols": symbols, "timeframe": "1h",
                           "start": START.isoformat(), "end": END.isoformat(), "mode": "validation",
                           "document": {"name": "dolphin_champion", "mode": "orders", "engine": {}}})  # fmt: skip
    plan = plan_run(config)
    t0 = time.perf_counter()
    data = load_market_data(Path(home_root) / "catalog", plan, InstrumentSpecs())
    load_s = time.perf_counter() - t0
    bars = sum(len(b) for b in data.bars.values())
    run_backtest(plan, data)  # warm-up (imports, NautilusTrader's first engine)
    times, trades = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run_backtest(plan, data)
        times.append(time.perf_counter() - t0)
        trades = result.metrics.get("total_trades")
    med = statistics.median(times)
    queue.put({"assets": len(symbols), "bars": bars, "load_s": round(load_s, 2), "run_s_median": round(med, 3),
               "run_s_all": [round(t, 3) for t in times], "bars_per_s": round(bars / med), "trades": trades,
               "net_pnl": result.metrics.get("net_pnl"), "liquidations": result.metrics.get("liquidations"),
               "peak_rss_mb": _rss_mb()})  # fmt: skip


def array_child(queue, home_root: str, symbols: list[str], repeats: int) -> None:
    from vibe_quant.dolphin.array_engine import run_array
    from vibe_quant.dolphin.backtest import load_scan_data
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.dolphin.engine_config import load_engine_config
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(Path(home_root))
    out = Path(home_root) / f"scans-{len(symbols)}"
    t0 = time.perf_counter()
    build_scans(home, InstrumentSpecs(), ScanConfig(), SCAN_START, END, out, symbols=symbols, force=True)
    build_s = time.perf_counter() - t0
    data = load_scan_data(out)
    cfg = load_engine_config()
    run_array(data, cfg)  # warm-up (the numba kernel)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run_array(data, cfg)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rows = len(data.ts)
    queue.put({"assets": len(symbols), "scan_rows": rows, "bars": rows * len(symbols), "scan_build_s": round(build_s, 2),
               "run_s_median": round(med, 5), "run_s_all": [round(t, 5) for t in times],
               "rows_per_s": round(rows / med), "bars_per_s": round(rows * len(symbols) / med),
               "trades": len(result.trades), "peak_rss_mb": _rss_mb()})  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    t_all = time.perf_counter()
    paths = covering("2025-11-28 00:00", "2026-02-26 23:00", 200)
    names = sorted(p.name.split("_USDT_")[0] + "USDT" for p in paths)
    say(f"{len(paths)} hourly perpetuals cover 2025-11-28..2026-02-26")
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = str(Path(tmp) / "home")
        imported = run_in_child(import_child, home, [str(p) for p in paths])
        say(f"imported in {imported['import_s']} s")
        for n in (len(names), 50):
            symbols = names[:n]
            say(f"orders mode, {n} assets")
            cases[f"orders-{n}"] = run_in_child(orders_child, home, symbols, args.repeats)
            say(f"  {cases[f'orders-{n}']}")
            say(f"array engine, {n} assets")
            cases[f"array-{n}"] = run_in_child(array_child, home, symbols, args.repeats)
            say(f"  {cases[f'array-{n}']}")
    n = len(names)
    doc = {
        "benchmark": "dolphin_orders",
        "description": __doc__.split("\n")[0],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["uv run python benchmarks/dolphin_orders.py", *sys.argv[1:]]),
        "machine": machine(load),
        "period": [START.isoformat(), END.isoformat()],
        "import": imported,
        "cases": cases,
        "ratios": {
            f"orders_over_array_s_{k}": round(cases[f"orders-{k}"]["run_s_median"] / cases[f"array-{k}"]["run_s_median"], 1)
            for k in (n, 50)
        },
        "wall_s": round(time.perf_counter() - t_all, 1),
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    say(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
