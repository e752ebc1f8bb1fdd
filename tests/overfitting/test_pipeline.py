"""The overfitting pipeline on a real screening run (FILUSDT 5m, Aug-Oct 2023): stored daily
returns, verdicts per filter in SQLite, funnel and report, walk-forward windows equal to
standalone backtests, determinism, atomicity, screening-vs-validation consistency, CLI errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tests.conftest import MIRROR
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data, slice_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.batch.worker import PointWorker, WorkerSpec
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.errors import ConfigError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.overfitting import filters as F
from vibe_quant.overfitting.config import CPCV, PBO, DeflatedSharpe, OverfittingConfig, PurgedKFold, WalkForward
from vibe_quant.overfitting.pipeline import lookback_days, run_overfitting, wfa_windows
from vibe_quant.screening.pareto import HardFilters
from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, returns_from_blob, run_screening
from vibe_quant.state import StateManager
from vibe_quant.stats import sharpe as stats
from vibe_quant.strategy.registry import find_strategy

START, END = dt.date(2023, 8, 1), dt.date(2023, 10, 31)
DAYS = (END - START).days + 1
SHORT = OverfittingConfig(
    walk_forward=WalkForward(train_window_days=42, test_window_days=14, step_days=14, min_windows=3),
    purged_kfold=PurgedKFold(n_splits=4),
)
ALL = ["wfa", "dsr", "pkfold", "pbo", "cpcv"]


def base_config(**extra):
    ref = find_strategy("rsi_mean_reversion_mtf")
    return parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                         "timeframe": "5m",
                         "start": str(START), "end": str(END), "mode": "screening", **extra})  # fmt: skip


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, int]:
    """A home with FIL klines and a finished 8-point screening run (loose hard filters)."""
    home = Home(tmp_path_factory.mktemp("overfit") / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), START, END + dt.timedelta(days=1)),
               InstrumentSpecs())  # fmt: skip
    spec = SweepSpec(overrides={"rsi.period": [14, 21], "rsi_oversold_threshold": [30, 35],
                                "stop_loss.atr_multiplier": [1.5, 2.5], "rsi_overbought_threshold": [75],
                                "take_profit.percent": [4.0], "ema_trend_4h.period": [30], "ema_fast.period": [20]},
                     max_points=8,
                     filters=HardFilters(min_trades=10, max_drawdown=0.5, min_profit_factor=0.5))  # fmt: skip
    with StateManager(home.db_path) as db:
        run_row = create_screening_run(db, base_config(), spec)
    run_screening(home, run_row, workers=2)
    return home, run_row


def rows(home: Home, run_row: int) -> list[dict]:
    with StateManager(home.db_path) as db:
        return db.find("sweep_results", run_id=run_row)


def test_every_point_stores_daily_returns_that_compound_to_its_total_return(screened) -> None:
    home, run_row = screened
    found = rows(home, run_row)
    assert len(found) == 8
    for r in found:
        returns = returns_from_blob(r["daily_returns"])
        assert returns.shape == (DAYS,)
        assert math.isclose(float(np.prod(1 + returns) - 1), r["total_return"], rel_tol=1e-9, abs_tol=1e-12)


def test_pipeline_writes_each_verdict_the_funnel_and_the_report(screened) -> None:
    home, run_row = screened
    report = run_overfitting(home, run_row, SHORT, ALL, workers=2, candidates="all")
    counts = [n for _, n in report.funnel]
    assert counts[0] == 8
    assert counts == sorted(counts, reverse=True)
    assert [name for name, _ in report.funnel] == ["in", "WFA", "DSR", "PKFold", "PBO", "CPCV"]
    assert len(report.run_level["wfa"]["windows"]) == 3  # (92 - 56) // 14 + 1
    stored = {r["id"]: r for r in rows(home, run_row)}
    # DSR recomputed independently from the stored returns: n_trials = every point of the sweep.
    all_returns = [returns_from_blob(r["daily_returns"]) for r in stored.values()]
    srs = [stats.return_moments(x)[0] for x in all_returns]
    variance = float(np.var(srs, ddof=1))
    for c in report.candidates:
        row = stored[c.id]
        assert row["overfitting_passed"] == c.alive
        assert row["passed_walk_forward"] == c.verdicts["wfa"].passed
        efficiency = c.verdicts["wfa"].figures["efficiency"]  # nan (no IS profit) is stored as NULL
        assert row["walk_forward_efficiency"] == (None if math.isnan(efficiency) else pytest.approx(efficiency))
        if "dsr" in c.verdicts:
            sr, skew, kurt, n = stats.return_moments(c.returns)
            expected = stats.deflated_sharpe_ratio(sr, 8, variance, n, skew, kurt)
            assert row["deflated_sharpe"] == pytest.approx(expected, rel=1e-9)
            assert row["passed_deflated_sharpe"] == (expected > 0.95)
        else:  # eliminated by the WFA: later filters are not run
            assert row["passed_deflated_sharpe"] is None
            assert row["deflated_sharpe"] is None
        assert row["overfitting"].keys() == c.verdicts.keys()
    with StateManager(home.db_path) as db:
        summary = db.get("backtest_runs", run_row)["overfitting"]
    assert [list(x) for x in report.funnel] == summary["funnel"]
    assert summary["n_trials"] == 8
    md = report.report_md.read_text()
    assert " -> ".join(f"{name} {n}" for name, n in report.funnel) in md
    doc = json.loads(report.report_json.read_text())
    assert len(doc["candidates"]) == 8
    assert doc["run_level"]["pbo"]["combinations"] == 12870


def test_walk_forward_window_equals_a_standalone_backtest_of_that_period(screened) -> None:
    home, _run_row = screened
    base = base_config()
    params = {"rsi.period": 14, "rsi_oversold_threshold": 35}
    window = ("2023-08-15", "2023-10-09")
    sub = msgspec.structs.replace(base, start=dt.date(2023, 8, 15), end=dt.date(2023, 10, 9), params=params)
    fresh = load_market_data(home.catalog, plan_run(sub), InstrumentSpecs())
    sliced = slice_market_data(load_market_data(home.catalog, plan_run(base), InstrumentSpecs()), plan_run(sub))
    assert [b.ts_init for b in sliced.bars["FILUSDT"]] == [b.ts_init for b in fresh.bars["FILUSDT"]]
    assert [str(b) for b in sliced.bars["FILUSDT"][:3]] == [str(b) for b in fresh.bars["FILUSDT"][:3]]
    worker = PointWorker(WorkerSpec(str(home.root), None, msgspec.to_builtins(base)))
    try:
        whole = worker.run(0, params)
        windowed = worker.run(1, params, window)
    finally:
        worker.close()
    standalone = run_backtest(plan_run(sub), fresh)
    assert windowed["error"] is None
    assert windowed["metrics"]["total_trades"] > 0
    assert windowed["metrics"]["total_return"] == standalone.metrics["total_return"]
    assert windowed["metrics"]["total_trades"] == standalone.metrics["total_trades"]
    assert windowed["returns"].shape == (56,)
    assert whole["metrics"]["total_trades"] != windowed["metrics"]["total_trades"]


def test_the_pipeline_is_deterministic(screened) -> None:
    home, run_row = screened

    def outcome() -> list:
        report = run_overfitting(home, run_row, SHORT, ["dsr", "pkfold", "wfa", "cpcv"], workers=2, candidates="all")
        return [(c.id, {n: (v.passed, json.dumps(v.figures, sort_keys=True, default=str)) for n, v in c.verdicts.items()})
                for c in report.candidates]  # fmt: skip

    assert outcome() == outcome()


def test_the_walk_forward_runs_on_the_engine_asked_for(screened, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/specs.md#where-the-kernel-runs: the kernel by default, NautilusTrader with engine="nautilus"; same verdicts."""
    from vibe_quant.overfitting import pipeline

    home, run_row = screened
    engines: list[set] = []  # per walk-forward: the engines that ran its backtests
    real_run_points = pipeline.run_points

    def spying_run_points(points, spec, workers):
        engines.append(set())
        for result in real_run_points(points, spec, workers):
            engines[-1].add(result["engine"])
            yield result

    monkeypatch.setattr(pipeline, "run_points", spying_run_points)

    def verdicts(**engine) -> list:
        report = run_overfitting(home, run_row, SHORT, ["wfa"], workers=1, candidates="front", **engine)
        return [(c.id, c.verdicts["wfa"].passed, json.dumps(c.verdicts["wfa"].figures, sort_keys=True, default=str))
                for c in report.candidates]  # fmt: skip

    sim = verdicts()
    assert sim
    assert sim == verdicts(engine="nautilus")
    assert engines == [{"sim"}, {"nautilus"}]


def test_a_failing_pipeline_leaves_the_stored_outcomes_untouched(screened) -> None:
    home, run_row = screened
    run_overfitting(home, run_row, SHORT, ["dsr", "pkfold"], workers=1, candidates="all")
    before = rows(home, run_row)
    too_long = msgspec.structs.replace(SHORT, walk_forward=WalkForward(train_window_days=80, test_window_days=30))
    with pytest.raises(ConfigError, match="min_windows"):
        run_overfitting(home, run_row, too_long, ["dsr", "wfa"], workers=1, candidates="all")
    assert rows(home, run_row) == before


def test_missing_daily_returns_are_recomputed_identically(screened) -> None:
    home, run_row = screened
    original = {r["id"]: r["daily_returns"] for r in rows(home, run_row)}
    victim = min(original)
    with StateManager(home.db_path) as db:
        db.update("sweep_results", victim, {"daily_returns": None})
    run_overfitting(home, run_row, SHORT, ["dsr"], workers=1, candidates="all")
    assert {r["id"]: r["daily_returns"] for r in rows(home, run_row)} == original


def test_survivors_are_validated_and_execution_sensitive_ones_flagged(screened) -> None:
    home, run_row = screened
    lenient = msgspec.structs.replace(SHORT, pbo=msgspec.structs.replace(SHORT.pbo, max_pbo=1.0, n_splits=4))
    report = run_overfitting(home, run_row, lenient, ["pbo"], workers=1, candidates="passed", validate=True)
    assert report.survivors, "PBO < 1.0 lets every candidate through"
    stored = {r["id"]: r for r in rows(home, run_row)}
    with StateManager(home.db_path) as db:
        for c in report.survivors:
            row = stored[c.id]
            run = db.get("backtest_runs", row["validation_run_id"])
            assert run["run_mode"] == "validation"
            assert run["status"] == "completed"
            assert run["parameters"]["params"] == row["parameters"]
            result = db.find("backtest_results", run_id=run["id"])[0]
            _, sensitive = F.execution_degradation(row["sharpe_ratio"], result["sharpe_ratio"], 0.5)
            assert row["execution_sensitive"] == sensitive
    assert "Screening vs validation" in report.report_md.read_text()


def test_cli_runs_and_explains_bad_input(screened, cli, tmp_path: Path) -> None:
    home, run_row = screened
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", str(run_row), "--filters", "dsr,pbo",
                      "--candidates", "all", "--workers", "1"])  # fmt: skip
    assert code == 0, text
    assert "funnel: in 8 -> DSR" in text
    assert "PBO" in text
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", str(run_row), "--filters", "dsr,wfz"])
    assert code != 0
    assert "unknown filter 'wfz'" in text
    assert "wfa" in text
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", str(run_row), "--engine", "bogus"])
    assert code == 2
    assert "--engine 'bogus': choose sim" in text
    assert "or nautilus" in text
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", "999", "--filters", "dsr"])
    assert code != 0
    assert "no backtest run 999" in text
    bad = tmp_path / "of.yaml"
    bad.write_text("overfitting:\n  purged_kfold:\n    n_splits: 1\n")
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", str(run_row), "--config", str(bad)])
    assert code != 0
    assert str(bad) in text
    assert "overfitting.purged_kfold.n_splits" in text
    code, text = cli(["--home", str(home.root), "overfit", "run", "--run-id", str(run_row), "--filters", "wfa"])
    assert code != 0
    assert "min_windows 8" in text
    assert "92 days" in text
    code, text = cli(["--home", str(home.root), "overfit", "show", str(run_row)])
    assert code == 0
    assert "# Overfitting filters" in text


def test_module_entry_point(screened) -> None:
    home, run_row = screened
    proc = subprocess.run(
        [sys.executable, "-m", "vibe_quant.overfitting", "--home", str(home.root), "run", "--run-id", str(run_row),
         "--filters", "dsr", "--candidates", "all", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["filters"] == ["dsr"]
    assert doc["funnel"][0] == ["in", 8]


def test_two_years_give_about_twelve_walk_forward_windows_with_the_seed_defaults() -> None:
    two_years = base_config(start="2023-01-01", end="2024-12-31")
    windows = wfa_windows(two_years, WalkForward())
    assert len(windows) == 13  # docs/specs.md#walk-forward-analysis: floor((24 - 9 - 3) / 1) + 1
    assert (windows[0].train_days, windows[0].test_days) == (270, 90)
    with pytest.raises(ConfigError, match="give 0 window"):
        wfa_windows(base_config(start="2023-01-01", end="2023-10-31"), WalkForward())


def test_purge_is_the_longest_lookback_on_its_own_timeframe() -> None:
    base = base_config()
    # ema_trend_4h.period 30 -> 31 bars of 4h = 124 h -> 6 days; 50 -> 51 x 4 h = 204 h -> 9 days
    assert lookback_days(base, [{"ema_trend_4h.period": 30}], "auto") == 6
    assert lookback_days(base, [{"ema_trend_4h.period": 30}, {"ema_trend_4h.period": 50}], "auto") == 9
    assert lookback_days(base, [], 50) == 1  # 50 x 5 min
    assert lookback_days(base, [], 300) == 2  # 1500 min
    assert lookback_days(base, [], 0) == 0


@pytest.mark.heavy  # heavy (12 s): progress of the stages; the stages themselves stay in the default suite
def test_every_stage_reports_progress_from_the_start_to_the_end(screened) -> None:
    home, run_row = screened
    with StateManager(home.db_path) as db:  # one point as if screened before daily returns were stored
        victim = min(r["id"] for r in db.find("sweep_results", run_id=run_row))
        db.update("sweep_results", victim, {"daily_returns": None})
    lenient = msgspec.structs.replace(  # every filter lets the candidates through: every stage has work
        SHORT,
        pbo=PBO(max_pbo=1.0, n_splits=4),
        deflated_sharpe=DeflatedSharpe(confidence_threshold=1e-9),
        walk_forward=msgspec.structs.replace(SHORT.walk_forward, min_efficiency=-1e9, min_profitable_windows_pct=0.0),
        purged_kfold=msgspec.structs.replace(SHORT.purged_kfold, min_mean_sharpe=-1e9, max_sharpe_std=1e9),
        cpcv=CPCV(min_mean_sharpe=-1e9, max_sharpe_std=1e9),
    )
    chosen = ["pbo", "wfa", "dsr", "pkfold", "cpcv"]
    calls: list[tuple[str, int, int]] = []
    report = run_overfitting(home, run_row, lenient, chosen, workers=2, candidates="front", validate=True,
                             on_progress=lambda stage, done, total: calls.append((stage, done, total)))  # fmt: skip
    stages = ["returns", *chosen, "validate"]
    front = report.funnel[0][1]
    assert front >= 1
    # every stage has a task before any work starts, sized by the most work it can take
    assert calls[: len(stages)] == [("returns", 0, 1), ("pbo", 0, 1), ("wfa", 0, front * 3), ("dsr", 0, front),
                                    ("pkfold", 0, front), ("cpcv", 0, 1), ("validate", 0, front)]  # fmt: skip
    alive_before = dict(zip(chosen, [front] + [n for _, n in report.funnel[1:-1]], strict=True))
    for stage in stages:
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine), stage  # never goes back
        done, total = mine[-1]
        assert done == total, (stage, mine)  # and ends complete
        expected = {"returns": 1, "pbo": 1, "cpcv": 1, "wfa": alive_before["wfa"] * 3,
                    "validate": len(report.survivors)}.get(stage, alive_before.get(stage))  # fmt: skip
        assert total == expected, (stage, total, expected)
    assert {s for s, _, _ in calls} == set(stages)
    print("DEBUG", front, report.funnel, len(report.survivors))
