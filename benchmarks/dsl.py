"""DSL benchmark: compiled YAML strategies vs hand-written NautilusTrader strategies, same logic.

Work: every FILUSDT 1m bar in ../shared/data (21 months, 902,880 bars), through the same
runner (validation mode, retail latency, funding, liquidation), so the only difference is the
strategy object:

* EMA cross: ``ema_cross.yaml`` (10% equity notional here) vs the Python ``EmaCross``.
* RSI-MTF: ``rsi_mean_reversion_mtf.yaml`` on 1m bars (1h RSI and 4h EMA confirmation, ATR
  trailing stop, 3% target, 08-20 UTC session, no entries 5 minutes around funding) vs
  :class:`HandRsiMtf` below, the same rules written directly on ``PerpStrategy`` (it uses the
  same higher-timeframe bar builder, so the comparison isolates the DSL's interpretation cost).

Both variants of a pair must produce identical fills (checked). Each run is a spawned process,
repeated; medians of ``engine.run()`` time. Writes ``benchmarks/results/dsl.json``.

    uv run python benchmarks/dsl.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_home, inject_funding, run_in_child  # noqa: E402

EXPECTED_BARS = 902_880
EXPOSURE = 0.1


def _dsl(name: str, **override) -> dict:
    import yaml

    from vibe_quant.dsl.loader import SHIPPED_DIR

    doc = yaml.safe_load((SHIPPED_DIR / f"{name}.yaml").read_text())
    doc.update(override)
    return doc


def _config(case: str, variant: str):
    from vibe_quant.backtest.config import BacktestConfig

    common = {"symbols": ("FILUSDT",), "timeframe": "1m", "start": dt.date(2023, 2, 1), "end": dt.date(2026, 6, 30),
              "mode": "validation", "latency": "retail", "leverage": 10}  # fmt: skip
    if case == "ema_cross":
        if variant == "hand":
            return BacktestConfig(
                strategy="ema_cross", params={"fast": 20, "slow": 100, "exposure": EXPOSURE}, **common
            )
        doc = _dsl("ema_cross", timeframe="1m")
        doc["position_management"] = {"sizing": {"method": "exposure", "fraction": EXPOSURE}}
        return BacktestConfig(strategy="ema_cross", kind="dsl", document=doc, **common)
    if variant == "hand":
        return BacktestConfig(strategy="_hand_rsi_mtf:HandRsiMtf", **common)
    doc = _dsl("rsi_mean_reversion_mtf", timeframe="1m")
    doc["indicators"]["rsi"]["timeframe"] = "1m"
    return BacktestConfig(strategy="rsi_mean_reversion_mtf", kind="dsl", document=doc, **common)


def run_case(queue: mp.Queue, catalog: str, case: str, variant: str) -> None:
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    plan = plan_run(_config(case, variant))  # the hand-written strategy: module:Class on the benchmarks path
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    inject_funding(data)
    result = run_backtest(plan, data, run_id="bench")
    digest = hashlib.sha256(repr([(f.ts_ns, f.side, f.qty, f.price, f.reason) for f in result.recorder.fills]).encode())
    queue.put({"engine_run_s": result.elapsed_s, "bars": result.bars_processed, "fills": result.metrics["fills"],
               "trades": result.metrics["total_trades"], "final_equity": result.metrics["final_equity"],
               "fills_sha256": digest.hexdigest(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("ingesting FILUSDT into a temporary home ...", flush=True)
        catalog = str(fil_home(tmp).catalog)
        for case in ("ema_cross", "rsi_mtf"):
            results[case] = {}
            for variant in ("hand", "dsl"):
                print(f"measuring {case}/{variant} x{args.repeat} ...", flush=True)
                runs = [run_in_child(run_case, catalog, case, variant) for _ in range(args.repeat)]
                median = statistics.median(r["engine_run_s"] for r in runs)
                results[case][variant] = {"runs": runs, "engine_run_median_s": median,
                                          "bars_per_s_median": runs[0]["bars"] / median}  # fmt: skip
                print(f"  median {median:.2f}s, {runs[0]['bars'] / median:,.0f} bars/s, {runs[0]['fills']} fills",
                      flush=True)  # fmt: skip
    ratios, identical = {}, {}
    for case, pair in results.items():
        hand, dsl = pair["hand"], pair["dsl"]
        assert all(r["bars"] == EXPECTED_BARS for r in hand["runs"] + dsl["runs"]), "wrong bar count"
        ratios[f"{case}_dsl_throughput_vs_hand"] = dsl["bars_per_s_median"] / hand["bars_per_s_median"]
        identical[case] = hand["runs"][0]["fills_sha256"] == dsl["runs"][0]["fills_sha256"]
    summary = {
        "benchmark": "compiled DSL strategies vs hand-written ones, FILUSDT 1m, 902,880 bars, same runner",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "results": results, "ratios": ratios, "identical_fills": identical,
        "targets": {f"{k}_at_least_0.9": v >= 0.9 for k, v in ratios.items()},
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "dsl.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"ratios": ratios, "identical_fills": identical, "targets": summary["targets"]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
