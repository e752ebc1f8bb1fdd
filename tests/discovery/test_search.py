"""The search on real bars: seeded runs are reproducible, a run killed -9 resumes and ends exactly as an
uninterrupted one, the cache never runs a genome twice, and the guard rails store their verdicts."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import linked_home
from tests.discovery.conftest import ARGS, config
from vibe_quant.discovery import service
from vibe_quant.discovery.search import Cancelled, fitness_of, initial_population, run_search
from vibe_quant.errors import UserError
from vibe_quant.jobs import reconcile
from vibe_quant.state import StateManager


def checkpoints(home, run_id: int) -> list[tuple]:
    return [(g["generation"], g["population"], g["front"], g["rng_state"])
            for g in service.generations(home, run_id)]  # fmt: skip


def genomes(home, run_id: int) -> dict[str, tuple]:
    with StateManager(home.db_path) as db:
        rows = db.find("discovery_genomes", run_id=run_id, role="search")
    return {
        r["genome_key"]: (r["sharpe_ratio"], r["total_trades"], r["metrics"] and r["metrics"]["net_pnl"]) for r in rows
    }


def test_a_run_stores_every_genome_once_and_judges_its_finalists(finished) -> None:
    home, run_id, result = finished
    with StateManager(home.db_path) as db:
        row = db.get("discovery_runs", run_id)
        keys = [r["genome_key"] for r in db.find("discovery_genomes", run_id=run_id, role="search")]
        baselines = db.find("discovery_genomes", run_id=run_id, role="baseline")
    assert row["status"] == "completed"
    gens = service.generations(home, run_id)
    assert [g["generation"] for g in gens] == list(range(7))
    # The cache: each genome once; every later occurrence was answered from the store.
    assert len(keys) == len(set(keys)) == row["evaluated"]
    asked = 8 * 7
    assert row["evaluated"] + row["cache_hits"] == asked
    assert sum(g["stats"]["evaluated"] for g in gens) == row["evaluated"]
    # Every population member is a stored genome; the front is feasible.
    with StateManager(home.db_path) as db:
        stored = {r["genome_key"]: r for r in db.find("discovery_genomes", run_id=run_id, role="search")}
    for g in gens:
        assert set(g["population"]) <= set(stored)
        assert all(stored[k]["feasible"] for k in g["front"])
    # Guard rails: finalists are the last front's best, each check recorded; DSR counts every genome of the run.
    assert result.finalists, "the fixture's run should have feasible genomes"
    assert {f["genome_key"] for f in result.finalists} <= set(gens[-1]["front"])
    for f in result.finalists:
        assert set(f["checks"]) == {"dsr", "pbo", "walk_forward", "holdout", "baseline"}
        assert f["checks"]["dsr"]["figures"]["n_trials"] == row["evaluated"]
        assert bool(f["passed"]) == (not f["reasons"])
        assert f["checks"]["baseline"]["figures"]["random"] == 4  # --baselines random genomes of its complexity
    complexities = {f["genome"]["complexity"] for f in result.finalists}
    assert sorted(b["complexity"] for b in baselines) == sorted(c for c in complexities for _ in range(4))
    assert result.summary["wf_layout"] == {"train_days": 8, "test_days": 4, "step_days": 4, "windows": 4}
    assert result.report.exists()
    assert (result.report.parent / "summary.json").exists()


def test_a_seed_gives_its_population(finished) -> None:
    """The same seed draws the same initial population (the kill test below runs a whole second run with the
    fixture's seed and checks every generation and genome); another seed another one."""
    home, run_id, _ = finished
    stored = service.generations(home, run_id)[0]["population"]
    draws = []
    for seed in (3, 3, 4):
        random.seed(seed)
        draws.append([ind.key for ind, _ in initial_population(config(seed=seed), run_id)])
    assert draws[0] == draws[1]
    assert sorted(draws[0]) == sorted(stored)  # the checkpoint holds it in NSGA-II's order
    assert sorted(draws[2]) != sorted(stored)


def test_a_run_killed_mid_search_resumes_to_the_same_end(finished, tmp_path: Path, aug_2023_catalog: Path) -> None:
    home, run_id, _ = finished
    killed = linked_home(tmp_path / "killed", aug_2023_catalog)
    env = {**os.environ, "VQ_HOME": str(killed.root)}
    proc = subprocess.Popen([sys.executable, "-m", "vibe_quant", "discover", "run", *ARGS, "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    generation = -1
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if killed.db_path.exists():
                with StateManager(killed.db_path) as db:
                    rows = db.find("discovery_runs")
                generation = rows[0]["generation"] if rows else -1
                if generation >= 1:
                    break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers, as the OOM killer or a power cut would
        proc.wait(timeout=30)
    assert 1 <= generation < 6, (
        f"not killed mid-search (generation {generation}): {proc.stderr.read().decode()[-2000:]}"
    )
    with StateManager(killed.db_path) as db:
        (row,) = db.find("discovery_runs")
    assert row["status"] == "running"  # dead, as the kill left it; the next `vq ... list` says so:
    (change,) = [c for c in reconcile(killed) if c.table == "discovery_runs"]
    assert (change.row_id, change.health) == (row["id"], "gone")
    with StateManager(killed.db_path) as db:
        assert db.get("discovery_runs", row["id"])["status"] == "failed"
    resumed = run_search(killed, row["id"], workers=2)  # the search; the guard rails are the fixture test's
    assert (resumed.resumed_from or 0) >= 1
    assert checkpoints(killed, row["id"]) == checkpoints(home, run_id)
    assert genomes(killed, row["id"]) == genomes(home, run_id)


def test_fitness_is_constrained_domination() -> None:
    cfg = config()
    good = {"total_trades": 60, "max_drawdown": 0.1, "profit_factor": 1.5, "sharpe_ratio": 2.0}
    ok, violation, objectives = fitness_of(good, 3, cfg)
    assert (ok, violation) == (True, 0.0)
    assert objectives == pytest.approx((2.0 - 0.2, 0.9, 1.5))  # Occam: 0.1 Sharpe per gene beyond the first
    assert fitness_of({**good, "profit_factor": float("inf")}, 1, cfg)[2][2] == 5.0  # capped
    few = fitness_of({**good, "total_trades": 2}, 1, cfg)
    fewer = fitness_of({**good, "total_trades": 1}, 1, cfg)
    assert not few[0]
    assert max(few[2]) < -1e5 < min(objectives)  # any feasible genome dominates any infeasible one
    assert all(a > b for a, b in zip(few[2], fewer[2], strict=True))  # the smaller violation wins
    assert fitness_of(None, 1, cfg)[1] == 10.0  # an error is the worst violation


def test_bad_runs_are_refused(finished, tmp_path: Path) -> None:
    home, run_id, _ = finished
    with pytest.raises(UserError, match="no discovery run 999"):
        run_search(home, 999)
    with pytest.raises(UserError, match="--executor 'spark'"):
        run_search(home, run_id, executor="spark")
    with StateManager(home.db_path) as db:
        db.update("discovery_runs", run_id, {"status": "running", "pid": os.getppid(),
                                             "heartbeat_at": dt.datetime.now(dt.UTC).isoformat()})  # fmt: skip
        try:
            with pytest.raises(UserError, match="is running"):
                run_search(home, run_id)
        finally:
            db.update("discovery_runs", run_id, {"status": "completed"})
    assert Cancelled.exit_code == 130


@pytest.mark.heavy  # heavy (~40 s): starts a private local Ray
def test_ray_actors_evaluate_as_the_process_pool(finished, tmp_path: Path, aug_2023_catalog: Path) -> None:
    pytest.importorskip("ray")
    home, run_id, _ = finished
    on_ray = linked_home(tmp_path / "ray", aug_2023_catalog)
    with StateManager(on_ray.db_path) as db:
        from vibe_quant.discovery.search import create_discovery

        ray_run = create_discovery(db, config(generations=1))
    run_search(on_ray, ray_run, workers=2, executor="ray")
    assert checkpoints(on_ray, ray_run) == checkpoints(home, run_id)[:2]
    ran = genomes(on_ray, ray_run)
    assert ran == {k: v for k, v in genomes(home, run_id).items() if k in ran}
