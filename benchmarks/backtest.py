"""Backtest benchmark: our runner vs a plain NautilusTrader engine, same strategy, same bars.

Work: the EMA-cross baseline (20/100, always in the market, reversing through flat, notional =
10% of equity so fees and isolated-margin liquidations do not end the run early) on every
FILUSDT 1m bar in ../shared/data (21 months, 902,880 bars).

* ours:  ``run_backtest`` in validation mode: next-open fills with the volume-slippage model,
  retail latency, funding settlement (FILUSDT has no funding file in the shared data, so an
  8-hourly schedule at +0.01% is injected to exercise it), isolated-margin liquidation checks,
  the cost ledger, event log and equity curve.
* plain: the same decisions as a bare ``Strategy`` on ``BacktestEngine`` with its defaults
  (fills at the bar close, no funding, no liquidation, ``run_analysis=False``).

Both time ``engine.run()`` only (data loading and engine set-up excluded); ours also reports
its post-run assembly (ledger, metrics). Each variant runs in its own spawned process, repeated,
medians reported. Writes ``benchmarks/results/backtest.json``.

    uv run python benchmarks/backtest.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_home, inject_funding, run_in_child  # noqa: E402

EXPECTED_BARS = 902_880
EXPOSURE = 0.1


def _config():
    from vibe_quant.backtest.config import BacktestConfig

    return BacktestConfig(
        strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=dt.date(2023, 2, 1),
        end=dt.date(2026, 6, 30), params={"fast": 20, "slow": 100, "exposure": EXPOSURE}, mode="validation", latency="retail", leverage=10,
    )  # fmt: skip


def run_ours(queue: mp.Queue, catalog: str) -> None:
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    plan = plan_run(_config())
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    inject_funding(data)
    t0 = time.perf_counter()
    result = run_backtest(plan, data, run_id="bench")
    total = time.perf_counter() - t0
    queue.put({
        "engine_run_s": result.elapsed_s, "total_s": total, "bars": result.bars_processed,
        "fills": result.metrics["fills"], "trades": result.metrics["total_trades"],
        "funding_settlements": len(result.recorder.funding), "liquidations": result.metrics["liquidations"],
        "final_equity": result.metrics["final_equity"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })  # fmt: skip


def run_plain(queue: mp.Queue, catalog: str) -> None:
    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.indicators import ExponentialMovingAverage
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Venue
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.trading.strategy import Strategy

    bar_type = BarType.from_str("FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    cat = ParquetDataCatalog(catalog)
    instrument = cat.instruments()[0]
    bars = cat.bars([str(bar_type)])

    class PlainEmaCross(Strategy):
        """The ema_cross decisions on a bare Strategy: close, then open, notional = 10% of equity."""

        def __init__(self) -> None:
            super().__init__(StrategyConfig(strategy_id="PLAIN-001"))
            self.fast, self.slow = ExponentialMovingAverage(20), ExponentialMovingAverage(100)
            self.iid = InstrumentId.from_str("FILUSDT-PERP.BINANCE")

        def on_start(self) -> None:
            self.register_indicator_for_bars(bar_type, self.fast)
            self.register_indicator_for_bars(bar_type, self.slow)
            self.subscribe_bars(bar_type)

        def on_bar(self, bar) -> None:
            if not self.slow.initialized:
                return
            direction = 1 if self.fast.value > self.slow.value else -1
            net = float(self.portfolio.net_position(self.iid))
            if (net > 0) - (net < 0) == direction:
                return
            if net:
                self.submit_order(self.order_factory.market(
                    self.iid, OrderSide.SELL if net > 0 else OrderSide.BUY, Quantity(abs(net), 1), reduce_only=True))  # fmt: skip
            equity = self.portfolio.account(Venue("BINANCE")).balance_total(USDT).as_double()
            qty = int(equity * EXPOSURE / bar.close.as_double() * 10) / 10
            if qty <= 0:  # no liquidation here: the account can reach zero
                return
            self.submit_order(self.order_factory.market(
                self.iid, OrderSide.BUY if direction > 0 else OrderSide.SELL, Quantity(qty, 1)))  # fmt: skip

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), run_analysis=False))
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN, base_currency=None,
                     starting_balances=[Money(100_000, USDT)], default_leverage=Decimal(10))  # fmt: skip
    engine.add_instrument(instrument)
    engine.add_data(bars)
    engine.add_strategy(PlainEmaCross())
    t0 = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - t0
    fills = len(engine.trader.generate_order_fills_report())
    engine.dispose()
    queue.put({"engine_run_s": seconds, "bars": len(bars), "fills": fills,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})  # fmt: skip


def measure(target, catalog: str, repeat: int) -> dict:
    runs = [run_in_child(target, catalog) for _ in range(repeat)]
    run_s = statistics.median(r["engine_run_s"] for r in runs)
    return {"runs": runs, "engine_run_median_s": run_s, "bars_per_s_median": runs[0]["bars"] / run_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("ingesting FILUSDT into a temporary home ...", flush=True)
        catalog = str(fil_home(tmp).catalog)
        results = {}
        for name, target in (("plain", run_plain), ("ours", run_ours)):
            print(f"measuring {name} x{args.repeat} ...", flush=True)
            results[name] = measure(target, catalog, args.repeat)
            print(f"  median {results[name]['engine_run_median_s']:.2f}s, "
                  f"{results[name]['bars_per_s_median']:,.0f} bars/s", flush=True)  # fmt: skip
    ours, plain = results["ours"], results["plain"]
    assert all(r["bars"] == EXPECTED_BARS for r in ours["runs"] + plain["runs"]), "wrong bar count"
    ratio = ours["bars_per_s_median"] / plain["bars_per_s_median"]
    summary = {
        "benchmark": "EMA-cross 20/100 on FILUSDT 1m, 902,880 bars: our runner vs plain NautilusTrader",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "ours": ours, "plain": plain,
        "ratios": {"ours_throughput_vs_plain": ratio},
        "targets": {"ours_at_least_0.85x_plain": ratio >= 0.85},
        "notes": "funding settlement exercised with an injected 8-hourly +0.01% schedule (no FILUSDT funding file)",
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "backtest.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"ratios": summary["ratios"], "targets": summary["targets"]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
