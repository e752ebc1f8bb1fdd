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

Method (the machine is shared and noisy, so one median of 3 back-to-back runs per variant is
not to be trusted: the same plain code took 36-51 s across four such runs):

* The variants run interleaved, plain, ours, plain, ours, ... (``--repeat`` runs each, 5 by
  default), each run in its own freshly spawned process (``_child.run_in_child``): no warm
  caches, no memory carried over, and a slow spell of the machine hits both variants.
* Each child times ``engine.run()`` only (wall: ``perf_counter``; CPU: user+sys of the child
  from ``time.process_time`` around the same call), and its whole work (catalog read, engine
  set-up, run, post-run assembly: wall total). Ours also reports its set-up (``EngineSession``)
  and post-run assembly (ledger, metrics, reports) separately.
* Peak RSS is the child's own ``VmHWM`` from ``/proc/self/status`` (``ru_maxrss`` of a spawned
  child can include the parent's peak at fork), with ``VmRSS`` noted after each step. The peak
  is over the whole work (plain's includes the fills report its check builds; ours' the
  positions report its bundle needs); the peak reached by the end of ``engine.run()`` is also
  recorded for both.
* Per variant: min and median of ``engine.run()`` wall time, min and median of its CPU time,
  median wall total, median and max peak RSS. The throughput ratio is taken from the minima
  (the run least disturbed by the machine): ``plain_min / ours_min``, > 1 meaning ours is
  faster; the CPU-time ratio likewise; the RSS ratio is ours / plain (medians of VmHWM).
* Results are checked, so an optimisation that changes behaviour fails here: every run of
  ours gives 27,287 fills, 13,643 trades and final equity 7127.50312807; plain the same fills.

Writes every run, the summary and the targets (``ours_at_least_0.9x_plain`` from the minima,
``ours_peak_rss_at_most_1.2x_plain``) to ``benchmarks/results/backtest.json``.

    uv run python benchmarks/backtest.py [--repeat 5] [--catalog DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_home, inject_funding, run_in_child  # noqa: E402

EXPECTED_BARS = 902_880
EXPECTED = {"fills": 27_287, "trades": 13_643, "final_equity": 7127.50312807}
EXPOSURE = 0.1


def proc_status_mb(field: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` (VmHWM: this process's own peak RSS; VmRSS: now) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


class Steps:
    """Wall time and VmRSS after each named step of a child's work."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {"start": proc_status_mb("VmRSS")}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.rss_mb[name] = proc_status_mb("VmRSS")
        self.last = now

    def report(self) -> dict:
        return {"total_s": self.last - self.t0, "steps_s": self.seconds, "rss_after_step_mb": self.rss_mb,
                "peak_rss_mb": proc_status_mb("VmHWM")}  # fmt: skip


def _config():
    from vibe_quant.backtest.config import BacktestConfig

    return BacktestConfig(
        strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=dt.date(2023, 2, 1),
        end=dt.date(2026, 6, 30), params={"fast": 20, "slow": 100, "exposure": EXPOSURE}, mode="validation", latency="retail", leverage=10,
    )  # fmt: skip


def run_ours(queue: mp.Queue, catalog: str) -> None:
    steps = Steps()
    from vibe_quant.backtest.engine import EngineSession
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.instruments.specs import InstrumentSpecs

    timing: dict[str, float] = {}
    run_engine = EngineSession._run_engine

    def timed_run_engine(self, active):  # engine.run() (full replay), timed in wall and CPU time
        c0, t0 = time.process_time(), time.perf_counter()
        out = run_engine(self, active)
        timing["engine_run_s"], timing["engine_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        timing["peak_rss_at_run_end_mb"] = proc_status_mb("VmHWM")
        return out

    EngineSession._run_engine = timed_run_engine
    steps.mark("import")
    plan = plan_run(_config())
    data = load_market_data(Path(catalog), plan, InstrumentSpecs())
    inject_funding(data)
    steps.mark("load")
    # what run_backtest does, with the set-up timed apart
    session = EngineSession(plan, data, "full")
    steps.mark("setup")
    try:
        result = session.run(plan, "bench")
    finally:
        session.dispose()
    steps.mark("run_and_post")
    queue.put({
        **timing, "post_run_s": steps.seconds["run_and_post"] - timing["engine_run_s"], **steps.report(),
        "bars": result.bars_processed, "fills": result.metrics["fills"], "trades": result.metrics["total_trades"],
        "funding_settlements": len(result.recorder.funding), "liquidations": result.metrics["liquidations"],
        "final_equity": result.metrics["final_equity"],
    })  # fmt: skip


def run_plain(queue: mp.Queue, catalog: str) -> None:
    steps = Steps()
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

    steps.mark("import")
    bar_type = BarType.from_str("FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    cat = ParquetDataCatalog(catalog)
    instrument = cat.instruments()[0]
    bars = cat.bars([str(bar_type)])
    steps.mark("load")

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
    steps.mark("setup")
    c0, t0 = time.process_time(), time.perf_counter()
    engine.run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_at_run_end = proc_status_mb("VmHWM")
    fills = len(engine.trader.generate_order_fills_report())  # the check (its peak counts: plain's post-run work)
    engine.dispose()
    steps.mark("run_and_post")
    queue.put({"engine_run_s": seconds, "engine_cpu_s": cpu, "post_run_s": steps.seconds["run_and_post"] - seconds,
               "peak_rss_at_run_end_mb": peak_at_run_end, **steps.report(), "bars": len(bars), "fills": fills})  # fmt: skip


def summarise(runs: list[dict]) -> dict:
    run_s = [r["engine_run_s"] for r in runs]
    cpu_s = [r["engine_cpu_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    bars = runs[0]["bars"]
    return {
        "engine_run_min_s": min(run_s), "engine_run_median_s": statistics.median(run_s), "engine_run_max_s": max(run_s),
        "engine_cpu_min_s": min(cpu_s), "engine_cpu_median_s": statistics.median(cpu_s),
        "bars_per_s_at_min": bars / min(run_s), "bars_per_s_at_median": bars / statistics.median(run_s),
        "us_per_bar_at_min": min(run_s) / bars * 1e6, "cpu_us_per_bar_at_min": min(cpu_s) / bars * 1e6,
        "total_median_s": statistics.median(r["total_s"] for r in runs),
        "setup_median_s": statistics.median(r["steps_s"]["setup"] for r in runs),
        "load_median_s": statistics.median(r["steps_s"]["load"] for r in runs),
        "post_run_median_s": statistics.median(r["post_run_s"] for r in runs),
        "peak_rss_median_mb": statistics.median(rss), "peak_rss_max_mb": max(rss),
        "peak_rss_at_run_end_median_mb": statistics.median(r["peak_rss_at_run_end_mb"] for r in runs),
    }  # fmt: skip


def check(runs: dict[str, list[dict]]) -> None:
    """Every run replayed every bar; ours gives the recorded results, plain the same fills."""
    for name, variant in runs.items():
        for r in variant:
            assert r["bars"] == EXPECTED_BARS, f"{name}: {r['bars']} bars, expected {EXPECTED_BARS}"
            assert r["fills"] == EXPECTED["fills"], f"{name}: {r['fills']} fills, expected {EXPECTED['fills']}"
    for r in runs["ours"]:
        assert r["trades"] == EXPECTED["trades"], f"ours: {r['trades']} trades, expected {EXPECTED['trades']}"
        assert abs(r["final_equity"] - EXPECTED["final_equity"]) < 1e-8, f"ours: final equity {r['final_equity']!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant (interleaved)")
    parser.add_argument(
        "--catalog", help="an existing catalog with the FILUSDT 1m bars (default: ingest to a temp home)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "backtest.json")
    args = parser.parse_args()
    variants = {"plain": run_plain, "ours": run_ours}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        if args.catalog:
            catalog = args.catalog
        else:
            print("ingesting FILUSDT into a temporary home ...", flush=True)
            catalog = str(fil_home(tmp).catalog)
        for k in range(args.repeat):
            for name, target in variants.items():
                r = run_in_child(target, catalog)
                runs[name].append(r)
                print(f"[{k + 1}/{args.repeat}] {name:5s} engine.run {r['engine_run_s']:6.2f}s wall "
                      f"{r['engine_cpu_s']:6.2f}s cpu, total {r['total_s']:6.2f}s, "
                      f"peak RSS {r['peak_rss_mb']:7.1f} MB", flush=True)  # fmt: skip
    check(runs)
    ours, plain = summarise(runs["ours"]), summarise(runs["plain"])
    ratios = {
        "ours_throughput_vs_plain_from_min": plain["engine_run_min_s"] / ours["engine_run_min_s"],
        "ours_throughput_vs_plain_from_median": plain["engine_run_median_s"] / ours["engine_run_median_s"],
        "ours_cpu_throughput_vs_plain_from_min": plain["engine_cpu_min_s"] / ours["engine_cpu_min_s"],
        "ours_peak_rss_vs_plain": ours["peak_rss_median_mb"] / plain["peak_rss_median_mb"],
        "ours_peak_rss_at_run_end_vs_plain": ours["peak_rss_at_run_end_median_mb"]
        / plain["peak_rss_at_run_end_median_mb"],
    }
    result = {
        "benchmark": "EMA-cross 20/100 on FILUSDT 1m, 902,880 bars: our runner vs plain NautilusTrader",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform()},
        "method": "interleaved plain/ours, one spawned process per run; engine.run() wall (perf_counter) and CPU "
                  "(process_time) time; peak RSS = child's VmHWM; ratios from the minima (RSS: medians)",
        "repeat": args.repeat,
        "summary": {"ours": ours, "plain": plain, "ratios": ratios},
        "targets": {"ours_at_least_0.9x_plain": ratios["ours_throughput_vs_plain_from_min"] >= 0.9,
                    "ours_peak_rss_at_most_1.2x_plain": ratios["ours_peak_rss_vs_plain"] <= 1.2},
        "expected_results": EXPECTED,
        "runs": runs,
        "notes": "funding settlement exercised with an injected 8-hourly +0.01% schedule (no FILUSDT funding file)",
    }  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, s in (("plain", plain), ("ours", ours)):
        print(f"{name:5s} engine.run min {s['engine_run_min_s']:.2f}s median {s['engine_run_median_s']:.2f}s, "
              f"cpu min {s['engine_cpu_min_s']:.2f}s, total median {s['total_median_s']:.2f}s, "
              f"peak RSS median {s['peak_rss_median_mb']:.0f} MB", flush=True)  # fmt: skip
    print(json.dumps({"ratios": ratios, "targets": result["targets"]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
