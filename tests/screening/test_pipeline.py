"""The screening pipeline on real FILUSDT 5m bars: engine reuse gives a fresh engine's results,
parallel sweep -> sweep_results + Pareto flags, resume after a kill, cancellation, Ray equals the
process pool, screening and validation agree on signals, clear CLI errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tests.conftest import MIRROR, vq
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.engine import EngineSession, run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.screening.pareto import objective_matrix, pareto_mask
from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening
from vibe_quant.state import StateManager
from vibe_quant.strategy.registry import find_strategy

START, END = dt.date(2023, 8, 1), dt.date(2023, 9, 30)
SWEEP = ["--sweep", "rsi.period=7,14", "--sweep", "stop_loss.atr_multiplier=1.5,3.0",
         "--param", "rsi_oversold_threshold=30", "--param", "rsi_overbought_threshold=70", "--param", "ema_fast.period=20",
         "--param", "ema_trend_4h.period=30", "--param", "take_profit.percent=3.0"]  # fmt: skip
# The Python ema_cross over two values of `fast`, with loose filters (a run without --start/--end
# screens the days of the catalog's first and last bars).
EMA = ["screen", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--sweep", "fast=10,20", "--workers", "1",
       "--min-trades", "1", "--max-dd", "0.9", "--min-pf", "0.1", "-q"]  # fmt: skip
ARGS = ["screen", "run", "--strategy", "rsi_mean_reversion_mtf", "--symbols", "FILUSDT", "--start", str(START),
        "--end", str(END), "--min-trades", "5", "--max-dd", "0.9", "--min-pf", "0.5", *SWEEP]  # fmt: skip


@pytest.fixture(scope="module")
def fil_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("screen") / "home").ensure()
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), START, END + dt.timedelta(days=1)),
               InstrumentSpecs())  # fmt: skip
    return home


def fresh_home(fil_home: Home, tmp_path: Path) -> Home:
    """A home sharing the module's catalog with an empty state database."""
    home = Home(tmp_path / "h").ensure()
    home.catalog.rmdir()
    home.catalog.symlink_to(fil_home.catalog, target_is_directory=True)
    return home


@pytest.fixture(scope="module")
def ema_runs(fil_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home with two finished screening runs of :data:`EMA`: 1 without --start/--end, 2 with them."""
    home = fresh_home(fil_home, tmp_path_factory.mktemp("ema"))
    for extra in ([], ["--start", str(START), "--end", str(END)]):
        code, out, err = vq(["--home", str(home.root), *EMA, *extra])
        assert code == 0, out + err
    return home


def replace(args: list[str], old: str, new: str) -> list[str]:
    return [new if a == old else a for a in args]


def base_config(**extra):
    ref = find_strategy("rsi_mean_reversion_mtf")
    return parse_config({"strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": ["FILUSDT"],
                         "timeframe": "5m",
                         "start": str(START), "end": str(END), "mode": "screening", **extra})  # fmt: skip


def metrics_by_point(db_path: Path, run_row: int) -> dict:
    with StateManager(db_path) as db:
        return {r["point_key"]: r["metrics"] for r in db.find("sweep_results", run_id=run_row)}


def test_a_reused_engine_gives_the_results_of_a_fresh_engine(fil_home: Home) -> None:
    base = base_config()
    data = load_market_data(fil_home.catalog, plan_run(base), InstrumentSpecs())
    session = EngineSession(plan_run(base), data)
    try:
        for params in ({"rsi.period": 7}, {"rsi.period": 21, "stop_loss.atr_multiplier": 3.0}, {"rsi.period": 7}):
            config = msgspec.structs.replace(base, params=params)
            reused, fresh = session.run(plan_run(config)), run_backtest(plan_run(config), data)
            assert reused.metrics["total_trades"] > 3
            assert [msgspec.structs.asdict(f) if hasattr(f, "__struct_fields__") else f.__dict__
                    for f in reused.recorder.fills] == [f.__dict__ for f in fresh.recorder.fills]  # fmt: skip
            assert np.array_equal(reused.equity, fresh.equity)
            drop = {"execution_time_seconds"}
            assert {k: v for k, v in reused.metrics.items() if k not in drop} == {
                k: v for k, v in fresh.metrics.items() if k not in drop
            }
        assert session.runs == 3
    finally:
        session.dispose()
    with pytest.raises(ValueError, match="leverage"):
        EngineSession(plan_run(base), data).run(plan_run(msgspec.structs.replace(base, leverage=5.0)))


def test_sweep_stores_every_point_and_marks_the_pareto_front(cli, fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, output = cli(["--home", str(home.root), *ARGS, "--workers", "2", "--engine", "sim"])
    assert code == 0, output
    assert "grid 4 points" in output
    assert "engine sim: 4 points on the perp kernel" in output
    front_checked = json.loads((home.runs / "screening-1" / "summary.json").read_text())["front_checked"]
    assert front_checked > 0
    points = f"{front_checked} point{'s' * (front_checked != 1)}"
    assert f"Pareto front re-checked on NautilusTrader: {points} identical" in output
    assert "Pareto front" in output
    assert "funding not modelled" in output
    with StateManager(home.db_path) as db:
        run = db.get("backtest_runs", 1)
        rows = db.find("sweep_results", run_id=1)
    assert run["run_mode"] == "screening"
    assert run["status"] == "completed"
    assert len(rows) == 4
    assert len({r["point_key"] for r in rows}) == 4
    assert all(r["error_message"] is None and r["total_trades"] > 5 and r["execution_time_seconds"] > 0 for r in rows)
    passing = [r for r in rows if r["passed_hard_filters"]]
    assert passing
    assert all(r["rejected_by"] is None for r in passing)
    expected = pareto_mask(objective_matrix(passing))
    assert [bool(r["is_pareto_optimal"]) for r in passing] == expected.tolist()
    assert not any(r["is_pareto_optimal"] for r in rows if not r["passed_hard_filters"])
    summary = json.loads((home.runs / "screening-1" / "summary.json").read_text())
    assert (summary["engine"], summary["engines"]) == ("sim", {"sim": 4})
    assert summary["front_checked"] == summary["front_size"] == sum(bool(r["is_pareto_optimal"]) for r in rows)

    # top-N export and validation runs created for the candidates
    out = tmp_path / "top.json"
    code, output = cli(
        ["--home", str(home.root), "screen", "top", "1", "--top", "2", "--export", str(out), "--create-runs"]
    )
    assert code == 0, output
    assert out.exists()
    assert "validation_run_id" in out.read_text()
    with StateManager(home.db_path) as db:
        created = [r for r in db.find("backtest_runs") if r["run_mode"] == "validation"]
    assert len(created) == min(2, len(passing))
    assert all(r["status"] == "pending" for r in created)
    assert created[0]["parameters"]["params"] in [r["parameters"] for r in passing]


def _spawn(home: Home, *extra: str) -> subprocess.Popen:
    """A sweep in its own process, on NautilusTrader: the kernel finishes the 4 points before a
    signal could land, and killing and resuming do not depend on the engine."""
    env = {**os.environ, "VQ_HOME": str(home.root)}
    return subprocess.Popen([sys.executable, "-m", "vibe_quant.screening", *ARGS[1:], "--workers", "1", "-q",
                             "--engine", "nautilus", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def _wait_rows(db_path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db_path.exists():
            with sqlite3.connect(db_path) as con:
                try:
                    if con.execute("SELECT COUNT(*) FROM sweep_results").fetchone()[0] >= n:
                        return
                except sqlite3.OperationalError:
                    pass
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    raise AssertionError(f"no {n} sweep rows after {timeout}s")


@pytest.mark.heavy  # heavy (15 s): killing a run and resuming it is tested in the default suite on discovery (tests/discovery)
def test_resume_after_a_kill_runs_only_the_missing_points(cli, fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    proc = _spawn(home)
    _wait_rows(home.db_path, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker: a crash
    proc.wait(timeout=30)
    with StateManager(home.db_path) as db:
        before = {r["point_key"]: r["id"] for r in db.find("sweep_results", run_id=1)}
        assert db.get("backtest_runs", 1)["status"] == "running"  # nobody marked it: it crashed
    assert 2 <= len(before) < 4
    code, output = cli(["--home", str(home.root), "screen", "run", "--resume", "1", "--workers", "1"])
    assert code == 0, output
    assert f"({len(before)} already done)" in output
    with StateManager(home.db_path) as db:
        rows = db.find("sweep_results", run_id=1)
        assert db.get("backtest_runs", 1)["status"] == "completed"
    assert len(rows) == 4
    assert len({r["point_key"] for r in rows}) == 4
    assert all(before[r["point_key"]] == r["id"] for r in rows if r["point_key"] in before)  # not re-run
    # deterministic: an uninterrupted run of the same grid gives the same metrics
    other = fresh_home(fil_home, tmp_path / "other")
    with StateManager(other.db_path) as db:
        spec = SweepSpec(overrides={"rsi.period": [7, 14], "stop_loss.atr_multiplier": [1.5, 3.0],
                                    "rsi_oversold_threshold": [30], "rsi_overbought_threshold": [70],
                                    "ema_fast.period": [20], "ema_trend_4h.period": [30], "take_profit.percent": [3.0]})  # fmt: skip
        run_row = create_screening_run(db, base_config(), spec)
    run_screening(other, run_row, workers=2)
    assert metrics_by_point(other.db_path, run_row) == metrics_by_point(home.db_path, 1)


@pytest.mark.heavy  # heavy (15 s): resuming a killed sweep stays in the default suite (test_resume_after_a_kill_...)
def test_sigterm_cancels_cleanly_and_the_run_resumes(cli, fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    proc = _spawn(home)
    _wait_rows(home.db_path, 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "cancelled" in err.decode()
    assert "--resume 1" in err.decode()
    with StateManager(home.db_path) as db:
        run = db.get("backtest_runs", 1)
        kept = db.count("sweep_results", run_id=1)
    assert run["status"] == "cancelled"
    assert 1 <= kept < 4
    code, output = cli(["--home", str(home.root), "screen", "run", "--resume", "1", "--workers", "1"])
    assert code == 0, output
    with StateManager(home.db_path) as db:
        assert db.count("sweep_results", run_id=1) == 4


@pytest.mark.heavy  # heavy (~27 s, starts a private local Ray): keeps the default suite under 10 minutes; the process pool is tested by default
def test_ray_gives_the_metrics_of_the_process_pool(fil_home: Home, tmp_path: Path, monkeypatch) -> None:
    """Both run the perp kernel; under Ray its actors load the compiled kernel from this checkout's cache."""
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # read when ray is first imported (executors.py)
    pytest.importorskip("ray")  # installed with the dev group and the `ray` extra
    home = fresh_home(fil_home, tmp_path)
    spec = SweepSpec(overrides={"rsi.period": [7, 14], "stop_loss.atr_multiplier": [2.0],
                                "rsi_oversold_threshold": [30], "rsi_overbought_threshold": [70],
                                "ema_fast.period": [20], "ema_trend_4h.period": [30], "take_profit.percent": [3.0]})  # fmt: skip
    with StateManager(home.db_path) as db:
        pool_run = create_screening_run(db, base_config(), spec)
        ray_run = create_screening_run(db, base_config(), spec)
    run_screening(home, pool_run, workers=2, executor="process")
    summary = run_screening(home, ray_run, workers=2, executor="ray")
    assert summary.ran == 2
    assert summary.errors == 0
    pool, ray_metrics = metrics_by_point(home.db_path, pool_run), metrics_by_point(home.db_path, ray_run)
    assert pool == ray_metrics
    assert len(pool) == 2


@pytest.mark.heavy  # heavy (10 s): full vs active replay agree in tests/backtest/test_feed.py
def test_replay_full_stores_the_metrics_of_the_active_replay(cli, fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, output = cli(["--home", str(home.root), *ARGS, "--workers", "2", "--engine", "nautilus"])
    assert code == 0, output
    assert "replay active: the engine replayed" in output
    code, output = cli(["--home", str(home.root), *ARGS, "--workers", "1", "--replay", "full", "--engine", "nautilus"])
    assert code == 0, output
    assert "replay full: the engine replayed" in output
    active, full = metrics_by_point(home.db_path, 1), metrics_by_point(home.db_path, 2)
    assert len(active) == 4
    drop = {"execution_time_seconds"}
    assert {p: {k: v for k, v in m.items() if k not in drop} for p, m in active.items()} == {
        p: {k: v for k, v in m.items() if k not in drop} for p, m in full.items()
    }
    summary = json.loads((home.runs / "screening-1" / "summary.json").read_text())
    assert summary["replay"] == "active"
    assert 0 < summary["bars_replayed"] < summary["bars"]


def test_screening_and_validation_agree_on_signals(fil_home: Home) -> None:
    """The spec's integration test (docs/specs.md#screening-to-validation-consistency): the same parameters give > 90% the same signals in both modes."""
    data = load_market_data(fil_home.catalog, plan_run(base_config()), InstrumentSpecs())
    params = {"rsi.period": 14, "stop_loss.atr_multiplier": 2.0}
    signals = {}
    for mode in ("screening", "validation"):
        result = run_backtest(plan_run(msgspec.structs.replace(base_config(mode=mode), params=params)), data)
        signals[mode] = {(e["ts"], e["direction"]) for e in result.recorder.events if e["type"] == "SIGNAL"}
    screening, validation = signals["screening"], signals["validation"]
    assert len(validation) > 20
    same = len(screening & validation) / max(len(screening | validation), 1)
    assert same > 0.9, same


def test_cli_errors_are_clear(cli, fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    h = ["--home", str(home.root)]
    code, output = cli([*h, "screen", "run", "--strategy", "ema_cros", "--symbols", "FILUSDT"])
    assert code == 2
    assert "unknown strategy 'ema_cros'" in output
    assert "Did you mean 'ema_cross'?" in output
    code, output = cli([*h, *ARGS, "--workers", "0"])
    assert code == 2
    assert "--workers must be >= 1, got 0" in output
    code, output = cli([*h, *ARGS, "--sweep", "rsi.perod=3"])
    assert code == 2
    assert "rsi.perod" in output
    assert "period" in output
    code, output = cli([*h, *ARGS, "--constraint", "rsi.period <<< 3"])
    assert code == 2
    assert "KEY OP KEY-or-NUMBER" in output
    code, output = cli([*h, *ARGS, "--sweep", "rsi.period"])
    assert code == 2
    assert "KEY=V1,V2" in output
    code, output = cli([*h, *ARGS, "--engine", "bogus"])
    assert code == 2
    assert "--engine 'bogus': choose sim" in output
    assert "or nautilus" in output
    code, output = cli([*h, *ARGS, "--replay", "fast"])
    assert code == 2
    assert "--replay 'fast'" in output
    assert "active" in output
    code, output = cli([*h, "screen", "run", "--resume", "99"])
    assert code == 2
    assert "no backtest run 99" in output
    code, output = cli([*h, "screen", "run", "--strategy", "rsi_mean_reversion_mtf", "--symbols", "NEARUSDT"])
    assert code == 2
    assert "no 5m bars for NEARUSDT" in output
    # with --start/--end the workers would load no data: refused before the run exists
    code, output = cli([*h, *ARGS[:5], "NEARUSDT", *ARGS[6:]])
    assert code == 2, output
    assert (f"error: no 5m bars for NEARUSDT between {START} and {END} in {home.catalog}: run "
            f"`vq data ingest --symbols NEARUSDT --start {START} --end {END}`") in output  # fmt: skip
    code, output = cli([*h, *replace(replace(ARGS, str(START), "2024-01-01"), str(END), "2024-01-31")])
    assert code == 2, output
    assert (f"error: no 5m bars for FILUSDT between 2024-01-01 and 2024-01-31 in {home.catalog} (its 5m bars cover "
            f"{START}..{END}): run `vq data ingest --symbols FILUSDT --start 2024-01-01 --end 2024-01-31`") in output  # fmt: skip
    with StateManager(home.db_path) as db:
        assert db.count("backtest_runs") == 0  # nothing half-created


def pool_rounds(monkeypatch) -> list[int]:
    """Record the worker count of each process-pool round the executor starts (a round per pool)."""
    from vibe_quant.batch import executors

    rounds: list[int] = []
    real_round = executors._pool_round

    def counting_round(queue, spec, workers, lost):
        rounds.append(workers)
        yield from real_round(queue, spec, workers, lost)

    monkeypatch.setattr(executors, "_pool_round", counting_round)
    return rounds


@pytest.mark.heavy  # heavy (16 s): a slow robustness case
def test_a_worker_that_dies_does_not_fail_the_sweep(fil_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed mid-sweep (a crash, the OOM killer): its points re-run on a fresh worker."""
    import multiprocessing as mp

    from vibe_quant.batch.executors import run_points
    from vibe_quant.batch.worker import WorkerSpec

    rounds = pool_rounds(monkeypatch)

    spec = WorkerSpec(str(fil_home.root), None, msgspec.to_builtins(base_config()))
    points = [(i, {"rsi.period": p}) for i, p in enumerate((7, 10, 14, 21))]
    results = []
    for result in run_points(points, spec, workers=2):
        if not results:
            os.kill(mp.active_children()[0].pid, signal.SIGKILL)
        results.append(result)
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert [r["error"] for r in results] == [None] * 4
    assert all(r["metrics"]["total_trades"] > 0 for r in results)
    assert rounds[0] == 2
    assert 1 in rounds  # the pool broke and the lost points ran alone on fresh workers


# -- Python strategies, the default period, vq screen list ------------------------------------------


def test_a_python_strategy_is_screened_over_its_parameters(ema_runs: Home) -> None:
    with StateManager(ema_runs.db_path) as db:
        run = db.get("backtest_runs", 1)
        rows = db.find("sweep_results", run_id=1)
        strategy = db.get("strategies", run["strategy_id"])
    assert (run["run_mode"], run["status"], run["symbols"], run["timeframe"]) == (
        "screening",
        "completed",
        ["FILUSDT"],
        "5m",
    )
    assert (run["parameters"]["kind"], run["parameters"]["strategy"], strategy["name"]) == (
        "python",
        "ema_cross",
        "python:ema_cross",
    )
    assert sorted(r["parameters"]["fast"] for r in rows) == [10, 20]  # fix: stored 2 points
    assert all(r["error_message"] is None and r["total_trades"] > 0 for r in rows)
    assert len({r["total_trades"] for r in rows}) == 2  # the parameter reached the strategy
    summary = json.loads((ema_runs.runs / "screening-1" / "summary.json").read_text())
    assert (summary["engine"], summary["engines"], summary["front_checked"]) == ("sim", {"nautilus": 2}, 0)
    fallback = "engine sim: the kernel runs DSL strategies (signal tables), not the python strategy ema_cross"
    assert f"{fallback}; ran on NautilusTrader" in summary["warnings"]


def test_the_default_period_is_the_days_of_the_first_and_last_bar(ema_runs: Home) -> None:
    from vibe_quant.data.query import connect_catalog

    with connect_catalog(ema_runs) as q:
        ((first_open, last_close),) = q.con.sql(
            "SELECT min(open_time), max(close_time) FROM bars WHERE timeframe = '5m'"
        ).fetchall()
    with StateManager(ema_runs.db_path) as db:
        defaulted, explicit = db.get("backtest_runs", 1), db.get("backtest_runs", 2)
    assert first_open == dt.datetime(2023, 8, 1, 0, 0)
    assert last_close == dt.datetime(2023, 10, 1, 0, 0)  # the last bar closes at the end of 2023-09-30
    assert (defaulted["start_date"], defaulted["end_date"]) == ("2023-08-01", "2023-09-30")
    assert (explicit["start_date"], explicit["end_date"]) == (str(START), str(END))
    defaulted_metrics, explicit_metrics = metrics_by_point(ema_runs.db_path, 1), metrics_by_point(ema_runs.db_path, 2)
    assert len(defaulted_metrics) == 2
    for point, metrics in explicit_metrics.items():
        for key in ("sharpe_ratio", "cagr", "sortino_ratio", "volatility_annual", "total_return", "total_trades"):
            assert defaulted_metrics[point][key] == metrics[key], (point, key)
    assert defaulted_metrics == explicit_metrics


def test_screen_list_shows_the_runs_newest_first(ema_runs: Home, cli) -> None:
    code, output = cli(["--home", str(ema_runs.root), "screen", "list"])
    assert code == 0, output
    # id, status, strategy, symbols, tf, period (its first line: the table folds it at 80 columns), points
    cells = re.compile(r"^│\s*(\d+) │ (\S+)\s*│ (\S+)\s*│ (\S+)\s*│ (\S+)\s*│ (\S+)\s*│\s*(\d+) │")
    rows = [m.groups() for line in output.splitlines() if (m := cells.match(line))]
    assert rows == [(str(i), "completed", "ema_cross", "FILUSDT", "5m", rows[0][5], "2") for i in (2, 1)]
    assert rows[0][5].startswith("2023-08-01")
    code, output = cli(["--home", str(ema_runs.root), "screen", "list", "--json", "--limit", "1"])
    assert code == 0, output
    (row,) = json.loads(output)
    assert (row["id"], row["strategy"], row["points"], row["status"]) == (2, "ema_cross", 2, "completed")
    assert row["symbols"] == ["FILUSDT"]
    code, output = cli(["--home", str(ema_runs.root), "backtest", "list", "--json"])
    assert code == 0, output
    assert json.loads(output) == []  # sweeps are not single backtests


def test_screen_list_of_a_home_without_runs(fil_home: Home, cli, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, output = cli(["--home", str(home.root), "screen", "list"])
    assert code == 0, output
    assert "no screening run yet: vq screen run --strategy" in output
    code, output = cli(["--home", str(home.root), "screen", "list", "--json"])
    assert (code, json.loads(output)) == (0, [])


# (flag, bad value, the message): range errors name the flag that set the value
FLAG_ERRORS = [
    ("--leverage", "0.5", "--leverage: expected `float` >= 1.0 (in the backtest config)"),
    ("--leverage", "500", "--leverage: expected `float` <= 125.0 (in the backtest config)"),
    ("--balance", "-5", "--balance: expected `float` > 0.0 (in the backtest config)"),
    ("--max-dd", "2", "--max-dd: max_drawdown is a fraction in (0, 1], got 2.0 (30% is 0.30)"),
    ("--min-trades", "-1", "--min-trades: min_trades must be >= 0, got -1"),
    ("--min-pf", "-1", "--min-pf: min_profit_factor must be >= 0, got -1.0"),
    ("--max-points", "-1", "--max-points: max_points must be >= 0 (0: every point), got -1"),
]


@pytest.mark.parametrize(("flag", "value", "message"), FLAG_ERRORS, ids=[f"{f}={v}" for f, v, _ in FLAG_ERRORS])
def test_range_errors_name_the_flag(cli, fil_home: Home, tmp_path: Path, flag: str, value: str, message: str) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, output = cli(["--home", str(home.root), *EMA, flag, value])
    assert code == 2, output
    assert output.splitlines() == [f"error: {message}"]
    with StateManager(home.db_path) as db:
        assert db.count("backtest_runs") == 0


def test_a_worker_that_cannot_load_the_data_reports_it_for_each_point(fil_home: Home, monkeypatch) -> None:
    """Data missing for the whole run fails every point at once (no crash, no retry per point)."""
    from vibe_quant.batch.executors import run_points
    from vibe_quant.batch.worker import WorkerSpec

    rounds = pool_rounds(monkeypatch)
    spec = WorkerSpec(str(fil_home.root), None, msgspec.to_builtins(base_config(symbols=["NEARUSDT"])))
    results = list(run_points([(0, {"rsi.period": 7}), (1, {"rsi.period": 14})], spec, workers=1))
    assert sorted(r["index"] for r in results) == [0, 1]
    for r in results:
        assert r["error"].startswith(f"no NEARUSDT-PERP.BINANCE instrument in {fil_home.catalog}: ingest it first")
        assert r["metrics"] is None
    assert rounds == [1]  # one pool, never broken


def test_backtest_show_of_a_screening_run_points_to_screen_top(ema_runs: Home, cli) -> None:
    code, output = cli(["--home", str(ema_runs.root), "backtest", "show", "1"])
    assert code == 2
    assert output.splitlines() == [
        "error: run 1 is a screening sweep, not a backtest: vq screen top 1 shows its best points "
        "(vq screen list: the sweeps)"
    ]
    code, output = cli(["--home", str(ema_runs.root), "screen", "top", "1"])
    assert code == 0, output
    assert "fast=10" in output
    assert "fast=20" in output


def test_data_sql_sees_the_sweep_results(ema_runs: Home, cli) -> None:
    query = ("SELECT s.run_id, count(*) AS points, min(s.parameters->>'fast') AS fast, max(r.run_mode) AS mode "
             "FROM sweep_results s JOIN backtest_runs r ON r.id = s.run_id GROUP BY 1 ORDER BY 1")  # fmt: skip
    code, output = cli(["--home", str(ema_runs.root), "data", "sql", query, "--format", "json"])
    assert code == 0, output
    assert json.loads(output) == [{"run_id": i, "points": 2, "fast": "10", "mode": "screening"} for i in (1, 2)]


def test_screen_run_then_overfit_filters_the_passed_points(fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, out, err = vq(["--home", str(home.root), *EMA, "--overfit", "dsr"])
    assert code == 0, out + err
    assert "funnel: in 2 -> DSR" in out
    with StateManager(home.db_path) as db:
        report = db.get("backtest_runs", 1)["overfitting"]
        judged = [r["passed_deflated_sharpe"] for r in db.find("sweep_results", run_id=1)]
    assert report["filters"] == ["dsr"]
    assert all(v is not None for v in judged)


def test_screen_run_refuses_a_bad_overfit_filter_before_the_sweep(fil_home: Home, tmp_path: Path) -> None:
    home = fresh_home(fil_home, tmp_path)
    code, _out, err = vq(["--home", str(home.root), *EMA, "--overfit", "dsr,wfx"])
    assert code == 2
    assert "wfx" in err
    with StateManager(home.db_path) as db:
        assert db.count("backtest_runs") == 0
    code, _, err = vq(["--home", str(home.root), *EMA, "--overfit", "dsr", "--json"])
    assert code == 2
    assert "without --json" in err
