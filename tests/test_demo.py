"""``vq demo`` runs end to end on the bundled sample and says where its outputs are."""

from __future__ import annotations

import json
import re
from pathlib import Path

from vibe_quant.cli import app, run
from vibe_quant.state import StateManager


def test_demo_runs_on_the_bundled_sample(tmp_path: Path, capsys) -> None:
    home = tmp_path / "demo-home"
    assert run(app, ["-q", "demo", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "byte-identical" in out
    assert "all checks passed" in out
    assert f"catalog:    {home.resolve() / 'catalog'}" in out
    manifest = json.loads((home / "catalog" / "manifest.json").read_text())
    assert manifest["symbols"]["FILUSDT"]["timeframes"]["1m"]["bars"] == 92 * 1440
    assert manifest["symbols"]["NEARUSDT"]["timeframes"]["4h"]["bars"] == 92 * 6
    assert manifest["symbols"]["BTCUSDT"]["funding"]["rows"] == 90
    # step 11: tick and derivatives datasets (real COIN-M day, bookTicker sample, spot 1h, generic CSV)
    assert manifest["datasets"]["aggTrades/cm:BTCUSD_PERP"]["rows_written"] == 105_280
    assert manifest["symbols"]["BTCUSDT"]["streams"]["quotes"]["rows"] == 9_999
    assert manifest["symbols"]["spot:BTCUSDT"]["timeframes"]["1h"]["bars"] == 48
    assert manifest["symbols"]["ETHUSDT"]["timeframes"]["1d"]["bars"] == 2_190
    assert "rebuild from the raw archive, ticks included: 12 unit(s), byte-identical" in out
    assert "2026-05-08 14:00-15:00 UTC: 11,441 trades" in out
    # step 6: one validation backtest with its bundle and database rows
    assert "ema_trend_atr FILUSDT 15m 2023-08-01..2023-10-31, validation, latency retail" in out
    assert "warning: funding not modelled for FILUSDT" in out
    runs = [
        b
        for b in (home / "runs").iterdir()
        if not b.name.startswith(("screening-", "discovery-", "dolphin-"))
        and (b / "summary.json").exists()
        and not (b / "markouts.csv").exists()
    ]  # not the LPI experiment (step 16)
    configs = {b: json.loads((b / "summary.json").read_text())["config"] for b in runs}
    # step 7's run is the two-symbol one (step 9 validates single-symbol survivors of the same strategy)
    bundles = {
        c["strategy"]: b
        for b, c in configs.items()
        if (c["strategy"] == "ema_trend_atr" and c.get("sizing") is None)
        or (len(c["symbols"]) == 2 and c["kind"] == "dsl")
    }  # (step 10 runs Strategy A again with each sizer; step 12 runs two-symbol Python strategies)
    assert set(bundles) == {"ema_trend_atr", "rsi_mean_reversion_mtf"}
    bundle = bundles["ema_trend_atr"]
    assert f"backtest:   {bundle.resolve()}" in out
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["metrics"]["total_trades"] > 0
    # step 7: every shipped YAML strategy validates against the catalog; the MTF one runs on two symbols
    for name in ("ema_cross (DSL twin", "rsi_mean_reversion_mtf: 5m + 1h + 4h", "bollinger_squeeze: 1h"):
        assert f"valid: {name}" in out
    assert "rsi_mean_reversion_mtf FILUSDT,NEARUSDT 5m 2023-08-01..2023-10-31" in out
    assert f"dsl run:    {bundles['rsi_mean_reversion_mtf'].resolve()}" in out
    mtf = json.loads((bundles["rsi_mean_reversion_mtf"] / "summary.json").read_text())
    assert mtf["metrics"]["total_trades"] > 0
    # step 8: a parallel screening sweep, every point stored, the front marked, summary written
    assert "screening run 3: grid 16 points, 16 valid" in out
    assert "ran 16 points (0 already done)" in out
    screening = json.loads((home / "runs" / "screening-3" / "summary.json").read_text())
    assert screening["ran"] == 16
    assert screening["errors"] == 0
    assert screening["front_size"] >= 1
    with StateManager(home / "state" / "vibe_quant.db") as db:
        rows = db.find("sweep_results", run_id=3)
        assert db.get("backtest_runs", 3)["status"] == "completed"
    assert len(rows) == 16
    assert sum(bool(r["is_pareto_optimal"]) for r in rows) == screening["front_size"]
    # step 9: overfitting filters; the statistics on the stored returns, then PBO + walk-forward + validation
    assert "funnel: in 16 -> DSR" in out
    assert "CPCV: 5 paths" in out
    assert "funnel: in 4 -> PBO" in out
    assert "walk-forward optimisation over 3 windows" in out
    with StateManager(home / "state" / "vibe_quant.db") as db:
        rows = db.find("sweep_results", run_id=3)
        summary = db.get("backtest_runs", 3)["overfitting"]
        survivors = [r for r in rows if r["overfitting_passed"]]
        validations = [db.get("backtest_runs", r["validation_run_id"]) for r in survivors]
    assert summary["filters"] == ["pbo", "wfa"]
    assert summary["funnel"][0] == ["in", 4]
    assert len(survivors) == summary["funnel"][-1][1]
    assert all(v["run_mode"] == "validation" and v["status"] == "completed" for v in validations)
    assert all(r["execution_sensitive"] is not None for r in survivors)
    assert (home / "runs" / "screening-3" / "overfitting.md").exists()
    # step 10: sizing presets and circuit breakers (runs recorded with their preset ids)
    assert "--sizing fixed_fractional" in out
    assert "--sizing kelly" in out
    assert "--sizing atr" in out
    assert "EmaCross-001 drawdown_halt at 2023-08-14T15:00:00.000Z (15.09% >= 15.00%)" in out
    assert "consecutive_losses" in out
    with StateManager(home / "state" / "vibe_quant.db") as db:
        runs = db.find("backtest_runs", run_mode="validation")
    assert {db_run["sizing_config_id"] for db_run in runs if db_run["sizing_config_id"]} == {1, 2, 3}
    assert any(db_run["risk_config_id"] == 2 for db_run in runs)  # live_safety
    assert "risk run:" in out
    # step 12: a portfolio strategy trades exactly like one strategy per symbol
    assert "python: ema_cross, ema_trend_atr, ema_cross_basket; dsl: " in out
    assert "ema_cross_basket (one PortfolioStrategy, two legs) vs ema_cross (one strategy per symbol)" in out
    assert "identical fills and equity curve" in out
    assert "vq backtest list (the 5 newest runs)" in out
    assert out.count("warning: funding not modelled for FILUSDT") == out.count("funding not modelled for FILUSDT")
    # step 13: the HTML tearsheets of the backtest, the DSL run and the sweep, and how to open the dashboard
    for path in (bundle / "report.html", bundles["rsi_mean_reversion_mtf"] / "report.html",
                 home / "runs" / "screening-3" / "report.html"):  # fmt: skip
        assert f"file://{path.resolve()}" in out
        assert 1_000_000 < path.stat().st_size < 5_000_000
    assert f"vq --home {home.resolve()} dashboard" in out
    assert "vq report screening-3 -> completed, exit 0" in out
    # step 14: a replay paper session killed with SIGKILL half way, restarted, exactly the backtest
    assert "killed with SIGKILL at bar" in out
    assert "parity: exact (fills equal, funding equal, liquidations equal, equity equal)" in out
    import sqlite3

    with sqlite3.connect(home / "state" / "vibe_quant.db") as db:
        status, bars = db.execute("SELECT status, bars_done FROM paper_sessions WHERE id = 1").fetchone()
    assert (status, bars) == ("finished", 7 * 96)
    # step 15: the same week with a tripping breaker, served to Prometheus, its alerts stored
    assert re.search(r'vq_breaker_trips\{scope="EmaTrendAtr-001",session="2"\} [1-9]', out)
    assert re.search(r'vq_equity_usdt\{session="2"\} \d', out)
    assert "alerts stored (vq alerts list): " in out
    assert "strategy_halt" in out
    # step 16: an LPI walk-forward experiment on the proxy ticks, its bundle, a byte-identical rerun
    assert "python: ema_cross, ema_trend_atr, ema_cross_basket; dsl: " in out
    assert "; lpi: lpi_cascade, lpi_reversion" in out
    lpi = next((home / "runs").glob("demo-*/summary.json"))
    lpi_summary = json.loads(lpi.read_text())
    assert len(lpi_summary["folds"]) == 6
    assert len(lpi_summary["baseline"]["folds"]) == 6
    assert any("quotes-free" in label for label in lpi_summary["labels"])
    assert "the same experiment run again: byte-identical bundle" in out
    assert f"lpi:        {lpi.parent.resolve()}" in out
    # step 19: a discovery run, its guard rails, the exported finalists, the first re-run on NautilusTrader
    with StateManager(home / "state" / "vibe_quant.db") as db:
        (disc,) = db.find("discovery_runs")
        finalists = db.find("discovery_finalists", run_id=disc["id"])
    assert disc["status"] == "completed"
    assert disc["evaluated"] + disc["cache_hits"] == 24 * 6
    assert finalists
    assert all(f["reasons"] or f["passed"] for f in finalists)
    report_dir = home / "runs" / f"discovery-{disc['id']}"
    export = report_dir / "export"
    assert len(list(export.glob("*.yaml"))) == len(finalists)
    assert re.search(r"reproduce: disc\d+_\w+\.yaml on NautilusTrader .*: identical metrics", out)
    assert f"discovery:  {(report_dir / 'report.md').resolve()}" in out
    # steps 20-21: DOLPHIN scan tables, then the engine under both cost profiles and a DOLPHIN sweep
    assert "agree to 1e-10" in out
    assert out.count("per-bar reference loop (the specification's process_bar): identical ledger and equity") == 2
    engine_runs = sorted((home / "runs").glob("dolphin-*/summary.json"))
    assert {json.loads(p.read_text())["profile"] for p in engine_runs} == {"seed", "honest"}
    assert "engine sim: 4 points on dolphin-array" in out
    # step 22: DOLPHIN as NautilusTrader orders, the services' cycles on a feature store
    assert "orders mode (vq backtest run --strategy dolphin_champion, 20 perpetuals" in out
    assert "-> Rm 0.0 -> HIBERNATE in one cycle" in out
