"""Sizing and risk benchmark: what the entry gate and the two risk Actors cost per backtest.

Work: every FILUSDT 1m bar in ../shared/data (21 months, 902,880 bars), the EMA-cross baseline
(20/100, 10% of equity, always in the market) in validation mode (retail latency, funding
injected as in benchmarks/backtest.py), run on one reused engine (as screening does):

* baseline: no --sizing / --risk (the strategy's own sizing, no Actors);
* guarded:  --sizing atr --risk seed_default (ATR sizing with its caps at every entry, the
  strategy and portfolio Actors evaluating every breaker at every bar close).

The breakers must not fire here (their cost is the per-bar check, not a halted run trading
less), so the guarded run uses seed_default with the thresholds it never reaches on this path;
the trade count is compared. Runs alternate, medians of `--repeat`, ``engine.run()`` timed.
Writes ``benchmarks/results/risk.json``.

    uv run python benchmarks/risk.py [--repeat 3]
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
from _child import fil_home, inject_funding  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import msgspec

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.engine import EngineSession
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.risk.config import RISK_PRESETS, SIZING_PRESETS

    base = BacktestConfig(
        strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=dt.date(2023, 2, 1),
        end=dt.date(2026, 6, 30), params={"fast": 20, "slow": 100, "exposure": 0.1}, mode="validation",
        latency="retail", leverage=10,
    )  # fmt: skip
    # seed_default with breakers that stay quiet on this run: the per-bar checks still run
    quiet = msgspec.structs.replace(
        RISK_PRESETS["seed_default"],
        strategy_level=msgspec.structs.replace(RISK_PRESETS["seed_default"].strategy_level, max_drawdown_halt_pct=0.99,
                                               max_daily_loss_pct=0.99, max_consecutive_losses=10_000),
        portfolio_level=msgspec.structs.replace(RISK_PRESETS["seed_default"].portfolio_level,
                                                max_portfolio_drawdown_pct=0.99, max_portfolio_daily_loss_pct=0.99),
    )  # fmt: skip
    guarded = msgspec.structs.replace(base, sizing=SIZING_PRESETS["atr"], risk=quiet)
    with tempfile.TemporaryDirectory() as tmp:
        home = fil_home(tmp)
        plans = {"baseline": plan_run(base), "guarded": plan_run(guarded)}
        data = load_market_data(home.catalog, plans["baseline"], InstrumentSpecs())
        inject_funding(data)
        session = EngineSession(plans["baseline"], data)
        times: dict[str, list[float]] = {"baseline": [], "guarded": []}
        outcome: dict[str, dict] = {}
        for rep in range(args.repeat + 1):  # the first round warms the engine up and is not counted
            for name, plan in plans.items():
                t0 = time.perf_counter()
                result = session.run(plan)
                wall = time.perf_counter() - t0
                if rep:
                    times[name].append(result.elapsed_s)
                risk = result.extra.get("risk") or {}
                outcome[name] = {"trades": result.metrics["total_trades"], "bars": result.bars_processed,
                                 "trips": len(risk.get("trips", [])), "decisions": risk.get("decisions"),
                                 "wall_s_last": wall}  # fmt: skip
                print(
                    f"{name}: engine.run {result.elapsed_s:.2f}s, {result.metrics['total_trades']} trades", flush=True
                )
        session.dispose()
    med = {k: statistics.median(v) for k, v in times.items()}
    bars = outcome["baseline"]["bars"]
    report = {
        "benchmark": "risk",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "work": {
            "strategy": "ema_cross 20/100, 10% of equity",
            "symbol": "FILUSDT",
            "timeframe": "1m",
            "bars": bars,
            "mode": "validation, retail latency, funding injected",
            "repeat": args.repeat,
            "guarded": "--sizing atr --risk seed_default (breaker thresholds raised so none fires)",
        },
        "baseline": {
            "engine_run_s_median": med["baseline"],
            "bars_per_s": bars / med["baseline"],
            **outcome["baseline"],
        },
        "guarded": {"engine_run_s_median": med["guarded"], "bars_per_s": bars / med["guarded"], **outcome["guarded"]},
        "overhead_ratio": med["guarded"] / med["baseline"],
        "overhead_us_per_bar": (med["guarded"] - med["baseline"]) / bars * 1e6,
        "runs_s": times,
    }
    out = ROOT / "benchmarks" / "results" / "risk.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("overhead_ratio", "overhead_us_per_bar")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
