"""Tick-run benchmark: a tick backtest over the linear proxy day vs the bar run of the same period.

Work: the linear USD-M proxy (``vibe_quant.data.proxy``) of the real COIN-M BTCUSD_PERP day
2026-05-08 (105,280 trades, quotes-free), ingested with the real ingester into a temporary home;
the EMA cross (``ema_cross``, fast 5, slow 30, 1x equity, always in the market) in screening mode
on 1m bars:

* ticks: ``run_tick_backtest`` on the 105,280 trades (NautilusTrader aggregates the 1m bars);
* bars: ``run_backtest`` on the 1,439 1m bars built from the same trades (``bars_from_trades``).

Both variants run interleaved in one process (ticks, bars, ticks, ...; ``--repeat`` each, 5 by
default) after one warm-up run of each; per variant the median and min of ``engine.run()`` wall
time (``result.elapsed_s``) and of the whole call (engine set-up, run, ledger and metrics), and
the throughput in ticks/s resp. bars/s from the median run time. Results are checked: every run
of a variant gives the same fills and final equity.

    uv run python benchmarks/backtest_ticks.py [--repeat 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CM_DAY = ROOT.parent / "shared/data/binance-vision/data/futures/cm/daily/aggTrades/BTCUSD_PERP"
CM_DAY = CM_DAY / "BTCUSD_PERP-aggTrades-2026-05-08.zip"
DAY = dt.date(2026, 5, 8)
MIN = 60 * 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "backtest_ticks.json")
    args = parser.parse_args()

    from nautilus_trader.model.data import BarType

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import MarketData
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.ticks import bars_from_trades, load_tick_data, run_tick_backtest
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.proxy import proxy_path, write_linear_proxy
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_linear_proxy(CM_DAY, proxy_path(root / "src", "BTCUSDT", DAY.isoformat()))
        home = Home(root / "home").ensure()
        run_ingest(home, IngestRequest(str(root / "src"), ("BTCUSDT",), ("aggTrades",), DAY, DAY + dt.timedelta(1)),
                   specs)  # fmt: skip
        plan = plan_run(BacktestConfig(strategy="ema_cross", symbols=("BTCUSDT",), timeframe="1m", start=DAY,
                                       end=DAY, params={"fast": 5, "slow": 30}, mode="screening"))  # fmt: skip
        t0 = time.perf_counter()
        ticks = load_tick_data(home.catalog, plan, specs)
        load_s = time.perf_counter() - t0
    trades = ticks.trades["BTCUSDT"]
    bar_type = BarType.from_str(f"{ticks.specs['BTCUSDT'].nautilus_id}-1-MINUTE-LAST-EXTERNAL")
    bars = MarketData(ticks.specs, ticks.instruments, {"BTCUSDT": bars_from_trades(trades, bar_type, MIN)},
                      ticks.funding, "bars")  # fmt: skip
    variants = {
        "ticks": lambda: run_tick_backtest(plan, ticks, "bench"),
        "bars": lambda: run_backtest(plan, bars, "bench"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for call in variants.values():  # warm-up (imports, first-run caches)
        call()
    for _ in range(args.repeat):
        for name, call in variants.items():
            t0 = time.perf_counter()
            result = call()
            runs[name].append({"run_s": result.elapsed_s, "total_s": time.perf_counter() - t0,
                               "fills": int(result.metrics["fills"]), "final_equity": result.metrics["final_equity"],
                               "processed": result.bars_processed})  # fmt: skip
    summary = {}
    for name, rows in runs.items():
        if len({(r["fills"], round(r["final_equity"], 8)) for r in rows}) != 1:
            raise SystemExit(f"{name}: runs disagree: {rows}")
        run_s = [r["run_s"] for r in rows]
        total_s = [r["total_s"] for r in rows]
        n = rows[0]["processed"]
        summary[name] = {
            "items": n, "unit": "ticks" if name == "ticks" else "bars", "fills": rows[0]["fills"],
            "final_equity": rows[0]["final_equity"], "run_s_median": statistics.median(run_s), "run_s_min": min(run_s),
            "total_s_median": statistics.median(total_s), "total_s_min": min(total_s),
            "items_per_s_median": n / statistics.median(run_s),
        }  # fmt: skip
    summary["ticks_run_over_bars_run_median"] = summary["ticks"]["run_s_median"] / summary["bars"]["run_s_median"]
    out = {
        "benchmark": "backtest_ticks", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "data": {"source": str(CM_DAY.name), "proxy": "linear USD-M BTCUSDT", "trades": len(trades),
                 "bars_1m": len(bars.bars["BTCUSDT"]), "load_tick_data_s": load_s},
        "repeat": args.repeat, "summary": summary, "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
