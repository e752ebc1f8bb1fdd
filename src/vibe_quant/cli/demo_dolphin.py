"""``vq demo`` step 20: DOLPHIN's inputs on real hourly perpetuals (scan tables, batch vs streaming, ACB factors)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import numpy as np

from vibe_quant.cli.context import console, state

out = console()
FIRST, LAST = dt.date(2026, 4, 1), dt.date(2026, 4, 14)


def sample_dir() -> Path:
    return Path(str(resources.files("vibe_quant").joinpath("sample_data")))


def demo_dolphin(h, specs) -> tuple[Path, bool]:
    """Import 20 real hourly perpetuals (2026-02-27..04-14), build the scan tables of 2026-04-01..14, replay the same
    bars through the streaming builder (paper/live) and compare; return the scan directory and whether they agree."""
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.dolphin.scans import StreamingScanner
    from vibe_quant.dolphin.universe import Span, load_closes
    from vibe_quant.present.dolphin import print_build
    from vibe_quant.progress import rich_progress

    files = sorted((sample_dir() / "perps" / "dolphin").glob("*_USDT_1h.csv"))
    with rich_progress(not state.quiet) as progress:
        run_import(h, files, specs, progress=progress)
        config = ScanConfig()
        report = build_scans(h, specs, config, FIRST, LAST, progress=progress)
    out.print(f"imported {len(files)} real hourly perpetuals (vq data import-csv); warm-up {config.warmup_rows} bars "
              f"before {FIRST} (the 750-row window)")  # fmt: skip
    print_build(report, out)
    closes = load_closes(h.catalog, specs, report.symbols, Span(config, FIRST, LAST))
    scanner = StreamingScanner(config, len(report.symbols))
    rows = [r for t in range(len(closes.ts)) if (r := scanner.push(int(closes.ts[t]), closes.closes[t])) is not None]
    import pyarrow.parquet as pq

    from vibe_quant.dolphin import store

    stored = np.concatenate([pq.read_table(p, columns=["vel_div"]).column("vel_div").to_numpy()
                             for p in store.day_files(report.directory).values()])  # fmt: skip
    diff = float(np.abs(np.array([r["vel_div"] for r in rows]) - stored).max())
    same = len(rows) == len(stored) and diff <= 1e-10
    out.print(f"streaming builder (paper/live, one bar at a time): {len(rows)} rows, max |vel_div - stored| = {diff:.1e} "
              + ("[green](agree to 1e-10)[/]" if same else "[red](DIFFER)[/]"))  # fmt: skip
    day = FIRST + dt.timedelta(days=6)
    out.print(f"one day: vq --home {h.root} dolphin scans show {day}")
    acb_factors(h, specs, report.directory)
    return report.directory, same


def acb_factors(h, specs, directory: Path) -> None:
    """Ingest AVAXUSDT's 1m klines of 2026-04 (their taker volumes) and build the ACB factor table: BTCUSDT funding
    (step 1 ingested 2026-04), AVAXUSDT's taker buy/sell ratio, the daily w750 velocity and its past-only threshold."""
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.dolphin.acb import AcbConfig
    from vibe_quant.dolphin.acb_build import build_acb_factors
    from vibe_quant.present.dolphin import print_acb_build
    from vibe_quant.progress import rich_progress

    with rich_progress(not state.quiet) as progress:
        run_ingest(h, IngestRequest(str(sample_dir() / "dolphin-vision"), ("AVAXUSDT",), ("klines",)), specs, progress)
    # BTCUSDT has no 1m USD-M klines offline: the sample's AVAXUSDT stands in for the taker factor (say so).
    report = build_acb_factors(h, specs, AcbConfig(taker_symbol="AVAXUSDT"), directory)
    out.print("ACB factors (funding: BTCUSDT from the catalog; taker: AVAXUSDT's 1m klines from the raw lake, standing "
              "in for BTCUSDT's, which the sample lacks; no dvol/fng CSV given, so those weigh 0):")  # fmt: skip
    print_acb_build(report, out)
    out.print(f"the table: vq --home {h.root} dolphin acb-factors show")


def demo_engine(h, directory: Path) -> tuple[Path, int, bool]:
    """Run the NDAlphaEngine over the step-20 scan tables under both cost profiles (the array engine checked
    against the specification's per-bar loop), then screen four engine parameter sets; return the honest run's
    bundle, the screening run id and whether the two drivers agree."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.dolphin.array_engine import run_reference
    from vibe_quant.dolphin.backtest import load_acb_schedule, load_scan_data, run_dolphin, write_bundle
    from vibe_quant.dolphin.engine_config import load_engine_config
    from vibe_quant.dolphin.kind import screening_base
    from vibe_quant.present.dolphin import print_backtest
    from vibe_quant.present.screening import print_summary
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening
    from vibe_quant.state import StateManager

    same, bundle = True, None
    for profile in ("seed", "honest"):
        cfg = load_engine_config(profile=profile)
        run = run_dolphin(directory, cfg)
        bundle = write_bundle(run, h.runs)
        print_backtest(run, bundle, out)
        reference = run_reference(load_scan_data(directory), cfg, acb=load_acb_schedule(directory)[0])
        agree = reference.trades == run.result.trades and np.array_equal(reference.equity, run.result.equity)
        same &= agree
        out.print("per-bar reference loop (the specification's process_bar): "
                  + ("[green]identical ledger and equity[/]" if agree else "[red]DIFFERENT ledger[/]"))  # fmt: skip
    base = parse_config(screening_base(directory, None, None, None))
    spec = SweepSpec(overrides={"vel_div_threshold": [-0.01, -0.02], "max_hold_bars": [24, 120]},
                     filters=HardFilters(min_trades=1, max_drawdown=0.5, min_profit_factor=0.0))  # fmt: skip
    with StateManager(h.db_path) as db:
        row = create_screening_run(db, base, spec)
    summary = run_screening(h, row, workers=1)
    print_summary(summary, h.runs / f"screening-{row}" / "summary.json", 4, out)
    out.print(f"then: vq --home {h.root} overfit run --run-id {row} --filters dsr,pbo --candidates all")
    return bundle, row, same


def demo_live(h, specs, directory: Path) -> tuple[Path, bool]:
    """DOLPHIN as NautilusTrader orders over the 20 perpetuals (2026-02-27..04-14: the streaming scanner warms up on
    the first 751 bars), then the services' cycles on an in-process feature store: the ACB processor and MC assessor
    write, the watchdog turns the sensors into a posture, a stopped strategy heartbeat hibernates at once. Returns the
    orders run's bundle and whether the watchdog behaved."""
    import json
    import time

    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.dolphin.features import DolphinStore, InProcessFeatureStore
    from vibe_quant.dolphin.services import AcbService, McService, WatchdogService

    universe = json.loads((directory / "manifest.json").read_text())["universe"]
    config = parse_config({"strategy": "dolphin_champion", "kind": "dolphin", "symbols": universe, "timeframe": "1h",
                           "start": "2026-02-27", "end": "2026-04-14", "mode": "validation",
                           "document": {"name": "dolphin_champion", "mode": "orders", "engine": {}}})  # fmt: skip
    _row, result, bundle = execute(h, plan_run(config), specs)
    m = result.metrics
    out.print(f"orders mode (vq backtest run --strategy dolphin_champion, 20 perpetuals, validation costs): "
              f"{m['total_trades']} trade(s), net {m['net_pnl']:+,.2f} USDT, fees {m['total_fees']:,.2f}, "
              f"funding {m['total_funding']:+,.2f}; fills at the next open through the perp core")  # fmt: skip
    now = time.time_ns()
    with DolphinStore(InProcessFeatureStore()) as store:
        acb = AcbService(directory).cycle(store, int(dt.datetime(2026, 4, 10, tzinfo=dt.UTC).timestamp()) * 10**9)
        mc = McService().cycle(store, now)
        dog = WatchdogService()
        healthy = dog.cycle(store, now)
        store.beat("strategy", now)
        later = now + 31 * 10**9  # the strategy stopped beating 31 s ago
        dead = dog.cycle(store, later)
    out.print(f"services on an in-process store: ACB boost {acb['boost']:.4f} beta {acb['beta']:.1f} (2026-04-10), "
              f"MC {mc['status']}; watchdog Rm {healthy['rm']:.4f} -> {healthy['posture']}; a strategy heartbeat 31 s "
              f"old -> Rm {dead['rm']:.1f} -> {dead['posture']} in one cycle (the strategy then enters nothing)")  # fmt: skip
    out.print("live: redis-server --port 6379 --bind 127.0.0.1; vq dolphin services start --store "
              "redis://127.0.0.1:6379/0 --symbols A,B,...   (dashboard: DOLPHIN page, Live tab)")  # fmt: skip
    ok = healthy["posture"] == "APEX" and dead["posture"] == "HIBERNATE"
    return bundle, ok
