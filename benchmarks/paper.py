"""Paper benchmark: the replay paper node (a NautilusTrader TradingNode) vs the backtest engine, same strategy, same bars.

Work: the EMA-cross baseline (20/100, always in the market, notional 10% of equity) in validation
mode (volume slippage, retail latency, funding: +0.01% every 8 h injected, liquidation checks) on
FILUSDT 1m bars of ../shared/data, 2023-08-01..2023-10-31 (132,480 bars).

* backtest: ``run_backtest`` (``BacktestEngine``, our venue module and fill model).
* paper:    ``vibe_quant.paper.node.replay`` (a ``TradingNode`` with the feed's clock, the
  replay data client and the sandbox-derived execution client running the same simulated
  exchange) at full speed (``--speed max``).

Figures per variant (each run in its own spawned process, variants interleaved, ``--repeat``
runs each): replay throughput in bars/s (bars / wall time of the replay loop, set-up excluded),
node set-up time, and two latency distributions in wall time, measured by the same class-level
probes in both variants:

* tick-to-decision: from the moment the exchange receives a bar (our venue module's
  ``pre_process``, the first thing that touches a bar) to the moment the strategy creates an
  order in reaction to it (``Leg._log_order``);
* decision-to-fill: from that order's creation to its fill reaching our ledger
  (``PerpVenueModule._on_fill``). Market orders fill at the next bar's open, so at full speed this
  is the rest of the bar's processing plus the next bar's arrival (with ``--speed 1`` it would be
  a bar's length: the pacing, not the node).

Both variants must give the same fills (checked). Writes ``benchmarks/results/paper.json``.

    uv run python benchmarks/paper.py [--repeat 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_catalog, inject_funding, run_in_child  # noqa: E402

START, END = dt.date(2023, 8, 1), dt.date(2023, 10, 31)


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    xs = sorted(values)

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))]

    return {"n": len(xs), "p50_us": q(0.5) * 1e6, "p90_us": q(0.9) * 1e6, "p99_us": q(0.99) * 1e6,
            "max_us": xs[-1] * 1e6}  # fmt: skip


def _child(results, catalog: str, variant: str) -> None:
    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.venue import PerpVenueModule
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.paper.node import replay
    from vibe_quant.strategy.leg import Leg

    config = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=START, end=END,
                            params={"fast": 20, "slow": 100, "exposure": 0.1}, mode="validation", latency="retail",
                            leverage=5)  # fmt: skip
    plan = plan_run(config)
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    inject_funding(data)

    clock = time.perf_counter
    probe = {"arrival": 0.0, "decided": {}, "tick_to_decision": [], "decision_to_fill": []}
    pre_process, log_order, on_fill = PerpVenueModule.pre_process, Leg._log_order, PerpVenueModule._on_fill

    def timed_pre_process(self, data):
        probe["arrival"] = clock()
        return pre_process(self, data)

    def timed_log_order(self, order, ts, reason, track):
        now = clock()
        probe["decided"][order.client_order_id.value] = now
        probe["tick_to_decision"].append(now - probe["arrival"])
        return log_order(self, order, ts, reason, track)

    def timed_on_fill(self, event, coid, st):
        decided = probe["decided"].pop(coid, None)
        if decided is not None:
            probe["decision_to_fill"].append(clock() - decided)
        return on_fill(self, event, coid, st)

    PerpVenueModule.pre_process = timed_pre_process
    Leg._log_order = timed_log_order
    PerpVenueModule._on_fill = timed_on_fill
    t0 = time.perf_counter()
    result = run_backtest(plan, data) if variant == "backtest" else replay(plan, data)
    total = time.perf_counter() - t0
    loop = result.elapsed_s
    results.put({
        "variant": variant, "bars": result.bars_processed, "replay_s": loop, "total_s": total, "setup_s": total - loop,
        "bars_per_s": result.bars_processed / loop, "fills": len(result.recorder.fills),
        "funding": len(result.recorder.funding), "final_equity": result.metrics["final_equity"],
        "tick_to_decision": _percentiles(probe["tick_to_decision"]),
        "decision_to_fill": _percentiles(probe["decision_to_fill"]),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "paper.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vq-bench-paper-") as tmp:
        catalog = str(Path(fil_catalog(tmp, START, END)) / "catalog")
        runs = []
        for i in range(args.repeat):
            for variant in ("backtest", "paper"):
                run = run_in_child(_child, catalog, variant)
                runs.append(run)
                print(f"{i + 1}/{args.repeat} {variant}: {run['bars_per_s']:,.0f} bars/s, replay {run['replay_s']:.2f} s, "
                      f"set-up {run['setup_s']:.2f} s, tick->decision p50 {run['tick_to_decision']['p50_us']:.0f} us, "
                      f"decision->fill p50 {run['decision_to_fill']['p50_us']:.0f} us, {run['fills']} fills")  # fmt: skip
    by = {v: [r for r in runs if r["variant"] == v] for v in ("backtest", "paper")}
    for field in ("fills", "funding", "final_equity"):
        values = {r[field] for r in runs}
        if len(values) != 1:
            raise SystemExit(f"paper and backtest differ in {field}: {values}")

    def med(variant: str, key: str, sub: str | None = None) -> float:
        return statistics.median(r[key][sub] if sub else r[key] for r in by[variant])

    summary = {
        variant: {
            "bars_per_s_median": med(variant, "bars_per_s"), "bars_per_s_max": max(r["bars_per_s"] for r in by[variant]),
            "replay_s_median": med(variant, "replay_s"), "setup_s_median": med(variant, "setup_s"),
            "tick_to_decision_us": {p: med(variant, "tick_to_decision", p) for p in ("p50_us", "p90_us", "p99_us")},
            "decision_to_fill_us": {p: med(variant, "decision_to_fill", p) for p in ("p50_us", "p90_us", "p99_us")},
        }
        for variant in ("backtest", "paper")
    }  # fmt: skip
    ratios = {
        "paper_over_backtest_throughput_median": summary["paper"]["bars_per_s_median"]
        / summary["backtest"]["bars_per_s_median"],
        "paper_over_backtest_tick_to_decision_p50": summary["paper"]["tick_to_decision_us"]["p50_us"]
        / summary["backtest"]["tick_to_decision_us"]["p50_us"],
        "paper_over_backtest_decision_to_fill_p50": summary["paper"]["decision_to_fill_us"]["p50_us"]
        / summary["backtest"]["decision_to_fill_us"]["p50_us"],
    }
    payload = {
        "benchmark": "paper", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "work": {"strategy": "ema_cross 20/100, exposure 0.1, validation, retail latency, 5x", "symbol": "FILUSDT",
                 "timeframe": "1m", "start": START.isoformat(), "end": END.isoformat(), "bars": runs[0]["bars"],
                 "fills": runs[0]["fills"], "funding_settlements": runs[0]["funding"],
                 "final_equity": runs[0]["final_equity"]},
        "summary": summary, "ratios": ratios, "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps({"summary": summary, "ratios": ratios}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
