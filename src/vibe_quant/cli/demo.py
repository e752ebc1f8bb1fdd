"""``vq demo``: the main job on the bundled real sample, extended by each stage as it lands.

Today: ingest the sample (real Binance zips) into a fresh home, show the catalog, query it
with DuckDB, rebuild it from the raw archive and prove the rebuild byte-identical, re-check
every bar (OHLC, aggregation), run one validation backtest (next-open fills, slippage,
latency, isolated-margin liquidation, funding where data exists, our own metrics), validate the
shipped YAML strategies, run the multi-timeframe one on two symbols, screen a small parameter
sweep of it in parallel (hard filters, Pareto front, rows in SQLite), filter its candidates
for overfitting (DSR, purged K-fold, CPCV, PBO, walk-forward; survivors validated), and size
and guard a strategy with the sizing presets and circuit breakers, and ingest tick and derivatives
datasets (COIN-M aggTrades, USD-M bookTicker, spot 1h klines, a generic OHLCV CSV) and stream a
slice of them into a NautilusTrader engine, and write the HTML tearsheets of the runs (vq report).
"""

from __future__ import annotations

import tempfile
import time
from importlib import resources
from pathlib import Path

import msgspec

from vibe_quant.cli.context import console

out = console()


def sample_root() -> Path:
    """Return the bundled sample (official archive layout)."""
    return Path(str(resources.files("vibe_quant").joinpath("sample_data", "binance-vision")))


def demo_command() -> None:
    """Run the pipeline on the bundled real sample and print where the outputs are.

    Uses ``--home DIR`` when given, else a new temporary directory ($VQ_HOME is not touched).
    """
    from vibe_quant.cli.context import attach_log_file, get_specs, state
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.query import connect_catalog
    from vibe_quant.data.rebuild import rebuild_from_archive
    from vibe_quant.data.validate import summarize, write_artifacts
    from vibe_quant.errors import UserError
    from vibe_quant.home import Home
    from vibe_quant.present.data import print_status
    from vibe_quant.progress import rich_progress
    from vibe_quant.state import StateManager

    root = state.home if state.home is not None else Path(tempfile.mkdtemp(prefix="vq-demo-"))
    h = Home(root.expanduser().resolve()).check()
    if root.exists() and any(root.iterdir()) and not (root / "state").exists():
        raise UserError(f"--home {root} exists and is not a vibe-quant home; choose an empty or new directory")
    h.ensure()
    attach_log_file(h)
    specs = get_specs()
    t0 = time.perf_counter()
    out.rule("[bold]1. ingest the bundled real sample (Binance USD-M zips + checksums)")
    with rich_progress(not state.quiet) as progress:
        report = run_ingest(h, IngestRequest(str(sample_root()), None), specs, progress)
    bars = report.bars_written()
    out.print(
        f"{report.files} file(s) ingested in {report.elapsed_s:.1f}s: "
        + ", ".join(f"{k} {v:,}" for k, v in bars.items())
    )

    out.rule("[bold]2. catalog status")
    with StateManager(h.db_path) as db:
        print_status(summarize(h, db), out)

    out.rule("[bold]3. DuckDB over the catalog (exact decimals)")
    with connect_catalog(h) as con:
        frame = con.query_df(
            "SELECT instrument_id, timeframe, count(*) AS bars, min(low) AS low, max(high) AS high, "
            "sum(volume) AS volume FROM bars GROUP BY ALL ORDER BY instrument_id, min(close_time) - max(close_time)"
        )
    out.print(frame.to_string(index=False))

    out.rule("[bold]4. rebuild the catalog from the raw archive")
    with rich_progress(not state.quiet) as progress:
        rebuilt = rebuild_from_archive(h, specs, progress)
    verdict = "byte-identical" if rebuilt.byte_identical else f"DIFFERENT ({len(rebuilt.changed)} files)"
    out.print(f"{rebuilt.units} unit(s) replayed in {rebuilt.elapsed_s:.1f}s: {rebuilt.identical} files, {verdict}")

    out.rule("[bold]5. deep validation (every bar decoded and re-checked)")
    with StateManager(h.db_path) as db:
        warnings = write_artifacts(h, db, deep=True)
    out.print("all checks passed" if not warnings else "; ".join(warnings))

    out.rule("[bold]6. validation backtest: Strategy A (EMA 20/100, ATR stop/target) on FILUSDT 15m")
    import datetime as dt

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.present.backtest import print_result

    config = BacktestConfig(
        strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=dt.date(2023, 8, 1),
        end=dt.date(2023, 10, 31), mode="validation", latency="retail", leverage=5,
    )  # fmt: skip
    run_row, backtest, bundle = execute(h, plan_run(config), specs)
    print_result(run_row, backtest, bundle, out)

    out.rule("[bold]7. strategy DSL: validate the shipped YAML strategies, run the multi-timeframe one")
    from vibe_quant.dsl.loader import SHIPPED_DIR, load_file, shipped_names
    from vibe_quant.dsl.strategy import document_json
    from vibe_quant.dsl.sweep import grid_size
    from vibe_quant.strategy.python import PYTHON_STRATEGIES

    for name in shipped_names():
        a = load_file(SHIPPED_DIR / f"{name}.yaml", catalog=h.catalog)
        twin = " (DSL twin of the Python strategy)" if name in PYTHON_STRATEGIES else ""
        out.print(f"valid: {name}{twin}: {a.primary.label}{''.join(' + ' + t.label for t in a.higher)}, "
                  f"{len(a.indicators)} indicators, sweep of {grid_size(a):,}")  # fmt: skip
    mtf = load_file(SHIPPED_DIR / "rsi_mean_reversion_mtf.yaml", catalog=h.catalog)
    import json

    dsl_config = BacktestConfig(
        strategy=mtf.name, kind="dsl", document=json.loads(document_json(mtf)), symbols=("FILUSDT", "NEARUSDT"),
        timeframe=mtf.primary.label, start=dt.date(2023, 8, 1), end=dt.date(2023, 10, 31), mode="validation",
        latency="retail", leverage=5,
    )  # fmt: skip
    dsl_row, dsl_result, dsl_bundle = execute(h, plan_run(dsl_config), specs)
    print_result(dsl_row, dsl_result, dsl_bundle, out)

    out.rule(
        "[bold]8. screening: a 16-point sweep of rsi_mean_reversion_mtf on the perp kernel, 2 workers, Pareto front in SQLite"
    )
    from vibe_quant.present.screening import print_summary
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening

    screen_base = msgspec.structs.replace(dsl_config, symbols=("FILUSDT",), mode="screening", latency=None)
    # Three months of one symbol trade less than the 50-trade hard filter asks (docs/specs.md#screening-hard-filters); the demo says so.
    screen_spec = SweepSpec(
        overrides={"rsi.period": [14, 21], "rsi_oversold_threshold": [30, 35], "rsi_overbought_threshold": [75, 80],
                   "stop_loss.atr_multiplier": [1.5, 2.5], "take_profit.percent": [4.0], "ema_trend_4h.period": [30],
                   "ema_fast.period": [20]},
        filters=HardFilters(min_trades=20, max_drawdown=0.30, min_profit_factor=1.0),
    )  # fmt: skip
    with StateManager(h.db_path) as db:
        screen_row = create_screening_run(db, screen_base, screen_spec)
    out.print(f"hard filters: {msgspec.to_builtins(screen_spec.filters)} (seed default min_trades is 50)")
    screening = run_screening(h, screen_row, workers=2, specs_path=str(state.specs) if state.specs else None)
    print_summary(screening, h.runs / f"screening-{screen_row}" / "summary.json", 5, out)
    # The sweep ran on the perp kernel (and re-checked its front on NautilusTrader); a NautilusTrader
    # run replaying every bar must agree with any point.
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.persist import clean
    from vibe_quant.batch.worker import POINT_METRICS

    with StateManager(h.db_path) as db:
        check = max(db.find("sweep_results", run_id=screen_row), key=lambda r: r["total_trades"] or 0)
    check_plan = plan_run(msgspec.structs.replace(screen_base, params=check["parameters"]))
    full = run_backtest(check_plan, load_market_data(h.catalog, check_plan, specs))
    replay_same = all(clean(full.metrics[k]) == check["metrics"][k] for k in POINT_METRICS)
    out.print(
        f"check: point {check['id']} ({check['total_trades']} trades) on NautilusTrader, every bar, vs the kernel: "
        f"{'identical metrics' if replay_same else 'DIFFERENT metrics'} (net PnL {full.metrics['net_pnl']:,.2f})"
    )

    out.rule("[bold]9. overfitting filters: DSR, purged K-fold, CPCV, PBO, walk-forward, validation of survivors")
    from vibe_quant.overfitting.config import OverfittingConfig, PurgedKFold, WalkForward
    from vibe_quant.overfitting.pipeline import run_overfitting
    from vibe_quant.present.overfitting import print_report

    # Default thresholds (docs/specs.md#overfitting-filters); windows and folds sized for three months (the defaults are for two years).
    of_config = OverfittingConfig(
        walk_forward=WalkForward(train_window_days=42, test_window_days=14, step_days=14, min_windows=3),
        purged_kfold=PurgedKFold(n_splits=4),
    )  # fmt: skip
    specs_path = str(state.specs) if state.specs else None
    out.print("[bold]a.[/] the statistics on every point's stored daily returns (no backtest needed):")
    stats_report = run_overfitting(h, screen_row, of_config, ["dsr", "pkfold", "cpcv"], 2, specs_path, "all")
    print_report(stats_report, out)
    out.print(
        "[bold]b.[/] PBO over the sweep, walk-forward backtests of the candidates, survivors validated with full costs:"
    )
    overfit = run_overfitting(h, screen_row, of_config, ["pbo", "wfa"], 2, specs_path, "passed", validate=True)
    print_report(overfit, out)

    out.rule("[bold]10. position sizing and circuit breakers (presets in SQLite: vq sizing list, vq risk list)")
    risk_bundle = demo_risk(h, specs)

    out.rule("[bold]11. tick and derivatives datasets: COIN-M trades, bookTicker quotes, spot 1h klines, generic CSV")
    ticks_verdict = demo_ticks(h, specs)

    out.rule("[bold]12. one strategy layer: a portfolio strategy, strategy kinds, stored runs")
    portfolio_same = demo_strategy_layer(h, specs)

    out.rule("[bold]13. results you can see: HTML tearsheets from the stored results (vq report)")
    from vibe_quant.present.report import write_report

    reports = {}
    for label, run in (("backtest", str(run_row)), ("dsl run", str(dsl_row)), ("screening", f"screening-{screen_row}")):
        t1 = time.perf_counter()
        reports[label] = write_report(h, run)
        out.print(f"{label}: {reports[label]} ({reports[label].stat().st_size / 1e6:.1f} MB, "
                  f"{time.perf_counter() - t1:.1f}s)")  # fmt: skip

    from vibe_quant.jobs import get_job, start_job

    job_id = start_job(h, ["report", f"screening-{screen_row}"], label="demo: a report as a background job")
    deadline = time.monotonic() + 120
    while (job := get_job(h, job_id)).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    out.print(f"background job {job_id} (what the dashboard launches; vq jobs list --all): vq report "
              f"screening-{screen_row} -> {job.status}, exit {job.exit_code}, log {job.log_file}")  # fmt: skip

    out.rule("[bold]14. paper trading: a TradingNode replays a week of the sample, is killed -9 half way, restarts")
    paper_id, paper_exact = demo_paper(h, run_row)

    out.rule("[bold]15. alerts and telemetry: a session whose breaker trips, its Prometheus metrics and alerts")
    telemetry_ok = demo_telemetry(h, run_row)

    out.rule("[bold]16. liquidation-pressure research: LPI strategies on ticks, a walk-forward experiment, its bundle")
    lpi_bundle, lpi_same = demo_lpi(h, specs)

    out.rule("[bold]17. the perp kernel: one backtest on NautilusTrader and on the compiled kernel, side by side")
    kernel_same = demo_kernel(h, specs)

    out.rule("[bold]18. reinforcement learning: PPO on our costs, judged inside NautilusTrader, the model registry")
    from vibe_quant.cli.demo_rl import demo_rl

    rl_run, rl_same = demo_rl(h)

    out.rule("[bold]19. strategy discovery: NSGA-II over DSL genomes, guard rails, export and reproduce")
    from vibe_quant.cli.demo_discover import demo_discover

    discovery_run, discovery_same = demo_discover(h, specs)

    out.rule("[bold]20. DOLPHIN inputs: correlation-eigenvalue scan tables (vel_div) on 20 real hourly perpetuals")
    from vibe_quant.cli.demo_dolphin import demo_dolphin

    dolphin_dir, dolphin_same = demo_dolphin(h, specs)

    out.rule("[bold]21. DOLPHIN engine: the array backtest under both cost profiles (seed, honest), then a sweep")
    from vibe_quant.cli.demo_dolphin import demo_engine

    engine_bundle, dolphin_screen, engine_same = demo_engine(h, dolphin_dir)

    out.rule("[bold]22. DOLPHIN live: NautilusTrader orders, the feature store, the survival stack's watchdog")
    from vibe_quant.cli.demo_dolphin import demo_live

    orders_bundle, live_ok = demo_live(h, specs, dolphin_dir)

    report_lines = ("\n" + " " * 12).join(f"file://{p}  ({label})" for label, p in reports.items())
    out.rule("[bold]outputs")
    out.print(
        f"home:       {h.root}\ncatalog:    {h.catalog}\nmanifest:   {h.catalog / 'manifest.json'}\n"
        f"report:     {h.catalog / 'validation_report.md'}\nraw lake:   {h.archive}\n"
        f"state db:   {h.db_path}\nlog:        {h.logs / 'vq.log'}\nbacktest:   {bundle}\n"
        f"dsl run:    {dsl_bundle}\nscreening:  {h.runs / f'screening-{screen_row}' / 'summary.json'} "
        f"(sweep_results rows of backtest_runs.id {screen_row})\n"
        f"overfit:    {overfit.report_md} (and .json; verdicts in sweep_results)\n"
        f"risk run:   {risk_bundle / 'summary.json'} (its CIRCUIT_BREAKER events: {risk_bundle / 'events.jsonl'})\n"
        f"reports:    {report_lines}\n"
        f"lpi:        {lpi_bundle} (vq --home {h.root} lpi show {lpi_bundle.name})\n"
        f"paper:      session {paper_id}: vq --home {h.root} paper status {paper_id} (events: "
        f"{h.logs / 'events' / f'paper-{paper_id}.jsonl'})\n"
        f"rl run:     {h.root / 'rl' / 'runs' / rl_run} (vq --home {h.root} rl list; dashboard pages RL Training, Model Registry)\n"
        f"discovery:  {h.runs / f'discovery-{discovery_run}' / 'report.md'} (vq --home {h.root} discover show {discovery_run}; "
        "dashboard page Discovery)\n"
        f"dolphin:    {dolphin_dir} (vq --home {h.root} dolphin scans summary; day files + manifest.json)\n"
        f"engine:     {engine_bundle} (ledger.csv, daily.csv, summary.json; vq --home {h.root} dolphin backtest "
        f"--profile seed); DOLPHIN screening run {dolphin_screen}; orders mode: {orders_bundle}\n"
        f"dashboard:  uv run --extra dashboard vq --home {h.root} dashboard   (then open http://127.0.0.1:8501)\n"
        f"try:        uv run vq --home {h.root} data sql \"SELECT * FROM bars WHERE timeframe='4h' LIMIT 5\""
    )
    out.print(f"try:        uv run vq --home {h.root} backtest run --strategy ema_cross --symbols NEARUSDT-PERP "
              "--timeframe 5m --start 2023-08-01 --end 2023-10-31 --param fast=20 --param slow=100")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} backtest run --strategy bollinger_squeeze --symbols NEARUSDT-PERP "
              "--start 2023-08-01 --end 2023-10-31 --param bb.std=2.5   (and: uv run vq dsl show bollinger_squeeze)")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} screen run --strategy rsi_mean_reversion_mtf --symbols FILUSDT-PERP "
              "--sweep rsi.period=7,14 --max-points 50   (then: vq screen top RUN_ID --create-runs)")  # fmt: skip
    out.print(
        f"try:        uv run vq --home {h.root} overfit run --run-id {screen_row} --filters dsr,pbo --candidates all"
    )
    out.print(f"try:        uv run vq --home {h.root} backtest run --strategy ema_trend_atr --symbols FILUSDT-PERP "
              "--timeframe 15m --start 2023-08-01 --end 2023-10-31 --sizing kelly --risk live_safety")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} data sql \"SELECT count(*), min(ts_event) FROM trades\"   "
              "(views: trades, quotes, metrics, book_depth, mark_price, index_price, premium_index)")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} lpi sweep {lpi_bundle.parent / 'experiments' / 'demo.yaml'} "
              "--latency none,retail --fee-tier vip0,vip9   (latency x fee sensitivity)")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} backtest run --strategy ema_cross --symbols BTCUSDT "
              "--timeframe 1m --start 2026-05-08 --end 2026-05-08 --ticks   (any strategy on the ticks)")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} backtest list   (then: vq backtest show ID; vq screen list)")
    out.print(f"try:        uv run vq --home {h.root} rl train --symbol FILUSDT --start 2023-08-01 --end 2023-08-31 "
              f"--algo sac --timesteps 20000   (then: vq rl evaluate RUN --start 2023-09-01 --end 2023-09-07)")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} rl walk-forward --symbol FILUSDT --start 2023-08-01 --end 2023-09-30 "
              "--algo ppo --train-days 14 --val-days 3 --test-days 7 --timesteps 8192")  # fmt: skip
    out.print(f"try:        uv run vq --home {h.root} discover run --symbols FILUSDT --timeframe 15m --population 64 "
              "--generations 20 --min-trades 20   (then: vq discover top RUN --export DIR)")  # fmt: skip
    out.print(f"demo finished in {time.perf_counter() - t0:.1f}s")
    if (not rebuilt.byte_identical or warnings or not ticks_verdict or not replay_same or not portfolio_same
            or job.status != "completed" or not paper_exact or not telemetry_ok or not lpi_same
            or not kernel_same or not rl_same or not discovery_same or not dolphin_same or not engine_same or not live_ok):  # fmt: skip
        raise UserError("demo checks failed (see above)")


def demo_kernel(h, specs) -> bool:
    """Step 17: EMA 20/100 with an ATR stop and target on every 1m bar of the sample's FILUSDT (validation costs): NautilusTrader, then the kernel (cold: numba compile; warm: a second parameter set), compared
    fill by fill and metric by metric."""
    import datetime as dt
    import json
    import time

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.engine import run_backtest
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.dsl.loader import load_file, resolve_strategy_file
    from vibe_quant.dsl.strategy import document_json
    from vibe_quant.sim import SimSession
    from vibe_quant.sim.compare import differences

    doc = json.loads(document_json(load_file(resolve_strategy_file("ema_trend_atr"))))
    plan = plan_run(BacktestConfig(strategy=doc["name"], kind="dsl", document=doc, symbols=("FILUSDT",),
                                   timeframe="1m", start=dt.date(2023, 8, 1), end=dt.date(2023, 10, 31),
                                   mode="validation", latency="retail", leverage=5))  # fmt: skip
    data = load_market_data(h.catalog, plan, specs)
    bars = sum(len(b) for b in data.bars.values())
    t0 = time.perf_counter()
    nt = run_backtest(plan, data, replay="active")
    t_nt = time.perf_counter() - t0
    t0 = time.perf_counter()
    session = SimSession(plan, data)
    sim = session.run(plan)
    t_cold = time.perf_counter() - t0
    other = plan.with_params({"ema_fast.period": 10})
    t0 = time.perf_counter()
    session.run(other)
    t_warm = time.perf_counter() - t0
    diffs = differences(nt, sim)
    out.print(f"{bars:,} 1m bars, {len(nt.recorder.fills):,} fills, {len(nt.trades):,} trades: NautilusTrader "
              f"{t_nt:.2f}s; kernel {t_cold:.2f}s cold (arrays, indicators, numba), {t_warm:.3f}s for another "
              f"parameter set ({bars / t_warm:,.0f} bars/s)")  # fmt: skip
    out.print("fills, fees, funding, liquidations, trades, metrics and equity: "
              + ("[green]identical[/]" if not diffs else "[red]DIFFERENT[/]: " + "; ".join(diffs[:3])))  # fmt: skip
    return not diffs


def demo_paper(h, run_row: int) -> tuple[int, bool]:
    """Step 14: validated run -> replay paper session (a real ``vq paper start`` process at high speed), killed
    with SIGKILL half way, restarted (catch-up verified against its checkpoint), compared with the backtest."""
    import datetime as dt
    import os
    import signal
    import subprocess
    import sys

    import msgspec

    from vibe_quant.backtest.persist import load_run_config
    from vibe_quant.paper import store
    from vibe_quant.paper.compare import compare_session
    from vibe_quant.paper.service import create_replay, run_replay
    from vibe_quant.paper.session import Pacing
    from vibe_quant.present.paper import print_comparison
    from vibe_quant.state import StateManager

    with StateManager(h.db_path) as db:
        config = load_run_config(db, run_row, statuses=("completed",))
    config = msgspec.structs.replace(config, start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 7))
    sid, _ = create_replay(h, config, None, from_run=run_row)
    # 7 days of 15m bars in ~4 s: 150,000x real time
    argv = [sys.executable, "-m", "vibe_quant", "--home", str(h.root), "--quiet", "paper", "start", "--resume", str(sid),
            "--speed", "150000", "--checkpoint-every", "0.5"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    deadline, done = time.monotonic() + 120, 0
    with StateManager(h.db_path) as db:
        while time.monotonic() < deadline and proc.poll() is None:
            row = store.get_session(db, sid)
            done, total = row["bars_done"] or 0, row["bars_total"] or 0
            if total and done >= total // 2:
                break
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    out.print(f"session {sid} (from validation run {run_row}, {config.start}..{config.end}): `vq paper start` pid "
              f"{proc.pid} killed with SIGKILL at bar {done}/{total}")  # fmt: skip
    outcome = run_replay(h, sid, Pacing(speed=None), resume=True)
    out.print(f"restarted: {outcome.caught_up} bars replayed again and checked against the last checkpoint, then on "
              f"to the end: {outcome.status}, {len(outcome.result.recorder.fills)} fills, equity "
              f"{outcome.result.metrics['final_equity']:,.2f} USDT")  # fmt: skip
    comparison = compare_session(h, sid)
    print_comparison(comparison, out, trades=5)
    return sid, comparison.exact


def demo_telemetry(h, run_row: int) -> bool:
    """Step 15: the step-14 week again with a breaker that halts after each losing trade, served to
    Prometheus (scraped here every 0.2 s) with its alerts stored (and sent when Telegram is configured)."""
    import datetime as dt
    import re
    import shutil
    import socket
    import subprocess
    import threading
    import urllib.request

    import msgspec

    from vibe_quant.alerts import list_alerts
    from vibe_quant.backtest.persist import load_run_config
    from vibe_quant.paper.service import create_replay, run_replay
    from vibe_quant.paper.session import Pacing
    from vibe_quant.risk.config import PortfolioRiskConfig, RiskConfig, StrategyRiskConfig
    from vibe_quant.state import StateManager

    with StateManager(h.db_path) as db:
        config = load_run_config(db, run_row, statuses=("completed",))
    risk = RiskConfig(
        strategy_level=StrategyRiskConfig(max_consecutive_losses=1, max_drawdown_scale_pct=None,
                                          max_drawdown_halt_pct=None, max_daily_loss_pct=None,
                                          cooldown_after_halt_hours=2),
        portfolio_level=PortfolioRiskConfig(max_portfolio_drawdown_pct=None, max_portfolio_daily_loss_pct=None,
                                            max_total_exposure_pct=None, max_correlated_exposure_pct=None),
    )  # fmt: skip
    config = msgspec.structs.replace(config, start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 7), risk=risk)
    sid, _ = create_replay(h, config, None, from_run=run_row)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    last = {"body": ""}
    stop = threading.Event()

    def scrape() -> None:  # what Prometheus does, every 0.2 s instead of 15 s
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    last["body"] = r.read().decode()
            except OSError:
                pass
            stop.wait(0.2)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    outcome = run_replay(h, sid, Pacing(speed=86_400 * 7 / 3), metrics_port=port, metrics_linger_s=0.6)
    stop.set()
    scraper.join(5)
    wanted = ("vq_equity_usdt", "vq_fees_paid_usdt", "vq_fills", "vq_breaker_trips", "vq_strategy_active",
              "vq_tick_to_decision_seconds_count", "vq_ack_to_fill_seconds_count")  # fmt: skip
    lines = [line for line in last["body"].splitlines() if line.split("{")[0] in wanted]
    out.print(f"session {sid}: {outcome.status}, {outcome.bars_done} bars at 201,600x; its exporter "
              f"http://127.0.0.1:{port}/metrics, last scrape:")  # fmt: skip
    for line in lines:
        out.print(f"  {line}", highlight=False)
    alerts = [a for a in list_alerts(h.db_path, limit=500) if a["fields"].get("session") in (None, sid)]
    kinds = {}
    for a in alerts:
        kinds[(a["kind"], a["status"])] = kinds.get((a["kind"], a["status"]), 0) + 1
    out.print("alerts stored (vq alerts list): " + ", ".join(f"{n} {k} {st}" for (k, st), n in sorted(kinds.items()))
              + ("  (set VQ_TELEGRAM_BOT_TOKEN and VQ_TELEGRAM_CHAT_ID to receive them: one message per kind a minute)"
                 if any(st == "unconfigured" for _, st in kinds) else ""))  # fmt: skip
    promtool = shutil.which("promtool")
    rules = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
    if promtool and (rules / "rules_test.yml").exists():
        test = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=rules, capture_output=True, text=True)
        out.print(f"alert rules ({rules / 'rules.yml'}): promtool test rules -> "
                  f"{'SUCCESS' if test.returncode == 0 else test.stdout + test.stderr}")  # fmt: skip
    trips = re.search(r'vq_breaker_trips\{[^}]*scope="(?!portfolio)[^"]*"[^}]*\} (\S+)', last["body"])
    return outcome.status == "finished" and bool(lines) and trips is not None and float(trips.group(1)) > 0


def demo_risk(h, specs) -> Path:
    """Step 10: the three sizers on Strategy A, then the breakers on an over-levered EMA cross."""
    import datetime as dt

    from rich.table import Table

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.present.backtest import risk_lines
    from vibe_quant.risk.config import (
        RISK_PRESETS,
        SIZING_PRESETS,
        PortfolioRiskConfig,
        RiskConfig,
        StrategyRiskConfig,
    )

    def row(label: str, result) -> list[str]:
        m, decisions = result.metrics, (result.extra.get("risk") or {}).get("decisions", {})
        refused = sum(v for k, v in decisions.items() if k.startswith("refused_"))
        capped = sum(v for k, v in decisions.items() if k.startswith("limited_by_"))
        return [label, f"{m['total_trades']}", f"{refused}", f"{capped}", f"{m['total_return']:+.2%}",
                f"{m['max_drawdown']:.2%}", f"{m['total_fees']:,.0f}"]  # fmt: skip

    a = BacktestConfig(strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=dt.date(2023, 8, 1),
                       end=dt.date(2023, 10, 31), mode="validation", latency="retail", leverage=5)  # fmt: skip
    table = Table("Strategy A, FILUSDT 15m", "trades", "refused", "capped", "return", "max DD", "fees", box=None)
    table.add_row(*row("its own sizing (1x equity)", execute(h, plan_run(a), specs)[1]))
    for name, sizing in SIZING_PRESETS.items():
        table.add_row(
            *row(f"--sizing {name}", execute(h, plan_run(msgspec.structs.replace(a, sizing=sizing)), specs)[1])
        )
    out.print(table)
    out.print("fixed_fractional: 2% of equity to the ATR stop; kelly: half Kelly from its own closed trades "
              "(priors for the first 20, then no edge: no trade); atr: 2% over 2 x ATR(14); capped: entries cut "
              "to the 10%-of-equity position limit.")  # fmt: skip

    cross = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="5m", start=dt.date(2023, 8, 1),
                           end=dt.date(2023, 8, 31), params={"fast": 20, "slow": 100, "exposure": 2.0},
                           mode="validation", latency="retail")  # fmt: skip
    halt_only = RiskConfig(
        strategy_level=StrategyRiskConfig(max_drawdown_scale_pct=None, max_daily_loss_pct=None,
                                          max_consecutive_losses=None),
        portfolio_level=PortfolioRiskConfig(max_portfolio_drawdown_pct=None, max_portfolio_daily_loss_pct=None,
                                            max_total_exposure_pct=None, max_correlated_exposure_pct=None),
    )  # fmt: skip
    smaller = msgspec.structs.replace(cross, params={**cross.params, "exposure": 0.45})
    runs = [
        ("2x equity, no risk module", cross),
        ("2x, --risk seed_default", msgspec.structs.replace(cross, risk=RISK_PRESETS["seed_default"])),
        ("0.45x, --risk seed_default", msgspec.structs.replace(smaller, risk=RISK_PRESETS["seed_default"])),
        ("2x, only the 15% drawdown halt", msgspec.structs.replace(cross, risk=halt_only)),
        ("2x, --risk live_safety", msgspec.structs.replace(cross, risk=RISK_PRESETS["live_safety"])),
    ]
    table = Table("EMA cross 20/100, FILUSDT 5m, Aug 2023", "trades", "refused", "capped", "return", "max DD", "fees",
                  box=None)  # fmt: skip
    results = []
    for label, config in runs:
        _, result, bundle = execute(h, plan_run(config), specs)
        results.append((label, result, bundle))
        table.add_row(*row(label, result))
    out.print(table)
    for label, result, _ in results[1:]:
        out.print(f"[bold]{label}[/] (leverage {result.config.leverage:g}x):")
        for line in risk_lines(result.extra.get("risk")):
            out.print(f"  {line}")
    return results[3][2]


def demo_ticks(h, specs) -> bool:
    """Step 11: ingest the sample's tick/spot files and a generic CSV, show the streams, replay one
    hour of trades through a ``BacktestEngine``, rebuild from the archive. True if byte-identical."""
    import datetime as dt

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.common.actor import Actor
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import BTC
    from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType
    from nautilus_trader.model.identifiers import InstrumentId, Venue
    from nautilus_trader.model.objects import Money

    from vibe_quant.cli.context import state
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.rebuild import rebuild_from_archive
    from vibe_quant.data.slices import Stream, add_streams
    from vibe_quant.data.validate import summarize
    from vibe_quant.instruments.factory import instrument
    from vibe_quant.progress import rich_progress
    from vibe_quant.state import StateManager

    root = sample_root()
    jobs = (
        ("cm", "aggTrades", "1m", "COIN-M BTCUSD_PERP aggTrades (real day) -> TradeTick"),
        ("um", "bookTicker", "1m", "USD-M BTCUSDT bookTicker (27 s real sample) -> QuoteTick, ts_event = event_time"),
        ("spot", "klines", "1h", "spot BTCUSDT 1h klines (microsecond timestamps) -> BTCUSDT.BINANCE bars"),
    )
    with rich_progress(not state.quiet) as progress:
        for market, dataset, interval, label in jobs:
            r = run_ingest(
                h, IngestRequest(str(root), None, (dataset,), market=market, interval=interval), specs, progress
            )
            written = ", ".join(f"{k} {v:,}" for k, v in r.bars_written().items())
            out.print(f"{label}: {written} in {r.elapsed_s:.2f}s")
        imported = run_import(h, [root.parent / "perps" / "ETH_USDT_1d.csv"], specs, progress=progress)
    for u in imported.units:
        out.print(
            f"generic CSV ETH_USDT_1d.csv -> {u.rows_written:,} native 1d bars of ETHUSDT-PERP (via the raw lake)"
        )
    with StateManager(h.db_path) as db:
        summary = summarize(h, db)
    for key, d in summary["datasets"].items():
        if key.split("/")[0] in ("aggTrades", "bookTicker", "klines@1h"):
            flags = f", ts_event from {d['ts_source']}" if d.get("ts_source") else ""
            flags += f", {d.get('crossed', 0)} crossed quote(s)" if "bookTicker" in key else ""
            out.print(f"manifest {key}: {d['rows_written']:,} written, {d['duplicates']} duplicate(s), "
                      f"{d.get('out_of_order', 0)} out of order{flags}")  # fmt: skip

    out.print("[bold]a.[/] one hour of BTCUSD-PERP trades streamed from the catalog into a BacktestEngine:")
    iid = InstrumentId.from_str(specs.get("BTCUSD_PERP", "cm").nautilus_id)
    tape = {"trades": 0, "buy": 0.0, "sell": 0.0, "notional": 0.0}

    class Tape(Actor):
        def on_start(self) -> None:
            self.subscribe_trade_ticks(iid)

        def on_trade_tick(self, tick) -> None:
            size = float(tick.size)
            tape["trades"] += 1
            tape["buy" if tick.aggressor_side == AggressorSide.BUYER else "sell"] += size
            tape["notional"] += size * float(tick.price)

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, [Money(1, BTC)], base_currency=None)
    engine.add_instrument(instrument(specs.get("BTCUSD_PERP", "cm")))
    engine.add_actor(Tape())
    start = int(dt.datetime(2026, 5, 8, 14, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    add_streams(engine, h.catalog, [Stream("trades", str(iid))], start, start + 3_600_000_000_000 - 1, 600_000_000_000)
    engine.run()
    engine.dispose()
    vwap = tape["notional"] / max(tape["buy"] + tape["sell"], 1)
    out.print(f"2026-05-08 14:00-15:00 UTC: {tape['trades']:,} trades, taker buy {tape['buy']:,.0f} vs sell "
              f"{tape['sell']:,.0f} contracts, VWAP {vwap:,.1f} (read in 10-minute windows, never the whole day)")  # fmt: skip
    with rich_progress(not state.quiet) as progress:
        rebuilt = rebuild_from_archive(h, specs, progress)
    verdict = "byte-identical" if rebuilt.byte_identical else f"DIFFERENT ({len(rebuilt.changed)} files)"
    out.print(f"[bold]b.[/] rebuild from the raw archive, ticks included: {rebuilt.units} unit(s), {verdict}")
    return rebuilt.byte_identical


def demo_lpi(h, specs) -> tuple[Path, bool]:
    """Step 16: the linear proxy of the bundled COIN-M day ingested as BTCUSDT ticks, Variant B
    (post-exhaustion mean reversion) in a walk-forward experiment against the EMA-cross baseline on
    the same ticks, its bundle, and a second run compared byte for byte. Returns (bundle, identical)."""
    import datetime as dt

    import yaml

    from vibe_quant.cli.context import state
    from vibe_quant.cli.lpi import print_experiment
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.proxy import proxy_path, write_linear_proxy
    from vibe_quant.experiments.bundle import bundle_files, write_experiment_bundle
    from vibe_quant.experiments.config import load_experiment
    from vibe_quant.experiments.runner import load_data, run_experiment
    from vibe_quant.progress import rich_progress

    day = dt.date(2026, 5, 8)
    cm = sample_root() / "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
    source = h.root / "proxy-src"
    write_linear_proxy(cm, proxy_path(source, "BTCUSDT", day.isoformat()))
    with rich_progress(not state.quiet) as progress:
        report = run_ingest(h, IngestRequest(str(source), ("BTCUSDT",), ("aggTrades",), day, day + dt.timedelta(1)),
                            specs, progress)  # fmt: skip
    out.print(f"BTCUSDT ticks: the USD-M proxy of the real COIN-M BTCUSD_PERP day (its times, prices and aggressors; "
              f"quantity = contracts x 100 USD / price), {sum(report.bars_written().values()):,} trades "
              "ingested: derived data, labelled as such (no USD-M trades are bundled)")  # fmt: skip
    doc = {"name": "demo", "instruments": ["BTCUSDT"], "start": "2026-05-08", "end": "2026-05-08",
           "strategy": "lpi_reversion", "walk_forward": {"train": "6h", "test": "3h", "step": "3h", "purge": "5m"},
           "execution": {"latency": "co_located", "fee_tier": "vip0"}}  # fmt: skip
    path = h.runs / "experiments" / "demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    exp = load_experiment(path)
    data = load_data(h, exp, specs)
    with rich_progress(not state.quiet) as progress:
        result = run_experiment(h, exp, progress, data=data)
    bundle = write_experiment_bundle(h, result)
    print_experiment(result.summary(), bundle)
    again = run_experiment(h, exp, data=data)
    same = bundle_files(again) == bundle_files(result)
    out.print(f"the same experiment run again: {'byte-identical bundle' if same else 'DIFFERENT bundle'} "
              f"({len(bundle_files(result))} files: config_resolved.yaml, fills, positions, account report, markouts, "
              "signal_trace.parquet, summary.json)")  # fmt: skip
    return bundle, same


def demo_strategy_layer(h, specs) -> bool:
    """Step 12: one portfolio strategy over two symbols against one strategy per symbol on the same
    account (identical trading), the strategy kinds, and the stored runs. True if identical."""
    import datetime as dt

    import numpy as np

    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.present.backtest import runs_table
    from vibe_quant.strategy.registry import KINDS, strategy_kind

    out.print("strategy kinds (a new kind is a registry entry): " + "; ".join(
        f"{name}: {', '.join(strategy_kind(name).names(h.db_path))}" for name in KINDS))  # fmt: skip
    common = {"symbols": ("FILUSDT", "NEARUSDT"), "timeframe": "15m", "start": dt.date(2023, 8, 1),
              "end": dt.date(2023, 10, 31), "params": {"fast": 10, "slow": 40, "exposure": 0.8}, "leverage": 20}  # fmt: skip
    runs = {}
    for strategy in ("ema_cross", "ema_cross_basket"):
        _, runs[strategy], _ = execute(h, plan_run(BacktestConfig(strategy=strategy, **common)), specs)
    single, basket = runs["ema_cross"], runs["ema_cross_basket"]

    def fills(r):
        return [(f.ts_ns, f.instrument, f.side, f.qty, f.price, f.fee, f.reason) for f in r.recorder.fills]

    same = fills(single) == fills(basket) and np.array_equal(single.equity, basket.equity)
    m = basket.metrics
    out.print(f"ema_cross_basket (one PortfolioStrategy, two legs) vs ema_cross (one strategy per symbol), FILUSDT + "
              f"NEARUSDT 15m at 20x on one account: {len(basket.recorder.fills):,} fills, {m['liquidations']} "
              f"liquidation(s), net PnL {m['net_pnl']:,.2f}: "
              f"{'identical fills and equity curve' if same else 'DIFFERENT trading'}")  # fmt: skip
    out.print(
        "the same strategies run on paper/live: a TradingNode builds them from ImportableStrategyConfig "
        "(plan.strategy.importable) and they read NautilusTrader's own account (strategy/node.py)"
    )
    out.print(runs_table(list_runs(h, limit=5), "vq backtest list (the 5 newest runs)"))
    return same
