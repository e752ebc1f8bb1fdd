"""The Discovery page under AppTest on one real tiny discovery run (FILUSDT 15m, August 2023, population 8,
one generation after the initial one): the fitness chart and the Pareto front show the stored generation
statistics and front, the finalists their stored metrics and guard-rail verdicts, and Export writes YAML
files the DSL loader accepts. The launch form refuses a population that is not a multiple of 4 and
starts ``vq discover run`` with the form's settings; empty homes, a run at generation 0 and a run with
no feasible genome say so, and a failed run resumes as a ``vq discover run --resume`` job. The figures
are also checked as the pure functions they are."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import linked_home
from tests.dashboard.test_results_pages import button, figure_titled, figures, frame_with, kill_active_jobs, values
from vibe_quant.dsl.loader import load_file
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.jobs import list_jobs
from vibe_quant.plots.discovery import fitness_figure, front_figure
from vibe_quant.state import StateManager

CONFIG = {"symbols": ["FILUSDT"], "timeframe": "15m", "start": "2023-08-01", "end": "2023-08-31", "population": 8,
          "generations": 1, "seed": 1, "filters": {"min_trades": 10, "max_drawdown": 0.5, "min_profit_factor": 0.0},
          "guards": {"finalists": 3, "baselines": 4}}  # fmt: skip
INFEASIBLE = {"feasible": 0, "population": 8, "evaluated": 8, "cache_hits": 0, "repaired": 0, "rejected": 0,
              "errors": 0, "mutations": {}, "sharpe": None, "fitness_sharpe": None, "one_minus_dd": None,
              "profit_factor": None}  # fmt: skip


@pytest.fixture(scope="module")
def discovered(aug_2023_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, int]:
    """A home with one completed discovery run (22 training days: 8 PBO blocks, 16 would not fit)."""
    from vibe_quant.discovery import service
    from vibe_quant.discovery.config import parse_discovery

    home = linked_home(tmp_path_factory.mktemp("discovery") / "home", aug_2023_catalog)
    run_id = service.start(home, parse_discovery(CONFIG), InstrumentSpecs())
    service.run(home, run_id, workers=1)
    return home, run_id


@pytest.fixture
def disc_env(discovered, monkeypatch: pytest.MonkeyPatch) -> tuple[Home, int]:
    monkeypatch.setenv("VQ_HOME", str(discovered[0].root))
    return discovered


def test_the_page_shows_the_fitness_the_front_and_the_finalists_verdicts(disc_env, page) -> None:
    from vibe_quant.discovery import service

    home, run_id = disc_env
    gens = service.generations(home, run_id)
    finalists = service.finalist_rows(home, run_id)
    assert len(gens) == 2
    assert finalists
    at = page("discovery")
    runs = frame_with(at, "cache hits")
    assert runs[["id", "status", "generations", "population"]].to_dict("records") == [
        {"id": run_id, "status": "completed", "generations": "1/1", "population": 8}]  # fmt: skip
    fitness = figure_titled(at, "Fitness by generation")
    assert [t["name"] for t in fitness["data"]] == ["best", "mean", "worst", "feasible genomes"]
    for trace, stat in zip(fitness["data"][:3], ("best", "mean", "worst"), strict=True):
        assert list(values(trace["y"])) == pytest.approx([g["stats"]["sharpe"][stat] for g in gens])
    assert list(values(fitness["data"][3]["y"])) == [g["stats"]["feasible"] for g in gens]
    front = figure_titled(at, "Pareto front")
    assert [c[0] for c in front["data"][0]["customdata"]] == gens[-1]["front"]
    assert frame_with(at, "description")["key"].tolist() == gens[-1]["front"]
    table = frame_with(at, "walk_forward")
    assert table["genome"].tolist() == [f["genome_key"] for f in finalists]
    assert table["verdict"].tolist() == ["passed" if f["passed"] else "rejected" for f in finalists]
    for check in ("dsr", "pbo", "walk_forward", "holdout", "baseline"):
        assert table[check].tolist() == [f["checks"][check]["passed"] for f in finalists]
    assert table["train Sharpe"].tolist() == pytest.approx([f["genome"]["metrics"]["sharpe_ratio"] for f in finalists])
    first = finalists[0]
    checks = frame_with(at, "figures").set_index("check")
    assert checks.index.tolist() == ["dsr", "pbo", "walk_forward", "holdout", "baseline"]
    for name, c in first["checks"].items():
        assert checks.loc[name, "passed"] == c["passed"]
        assert checks.loc[name, "reason"] == c["reason"]
    metrics = frame_with(at, "held out").set_index("metric")
    assert metrics.loc["sharpe_ratio", "training"] == pytest.approx(first["genome"]["metrics"]["sharpe_ratio"])
    assert metrics.loc["sharpe_ratio", "held out"] == pytest.approx(first["holdout_metrics"]["sharpe_ratio"])
    assert yaml.safe_load(next(c.value for c in at.code if c.language == "yaml")) == first["genome"]["document"]
    if not first["passed"]:
        assert any(e.value == "rejected: " + "; ".join(first["reasons"]) for e in at.error)


def test_export_writes_the_finalists_yaml_the_dsl_loader_accepts(disc_env, page) -> None:
    from vibe_quant.discovery import service

    home, run_id = disc_env
    finalists = service.finalist_rows(home, run_id)
    out = home.runs / f"discovery-{run_id}" / "export"
    at = page("discovery")
    button(at, "Export").click().run()
    assert not at.exception
    passed = [f for f in finalists if f["passed"]]
    if not passed:  # the guard rails rejected every finalist: only the reviewing export writes them
        refused = f"**not exported**: discovery run {run_id}: no finalist passed the guard rails (of {len(finalists)})"
        assert any(e.value.startswith(refused) for e in at.error)
        assert not out.exists()
    at.checkbox(key=f"discovery_export_all_{run_id}").check().run()
    button(at, "Export").click().run()
    assert not at.exception
    paths = sorted(out.glob("*.yaml"))
    assert [p.stem for p in paths] == sorted(f["genome"]["document"]["name"] for f in finalists)
    assert at.success[-1].value.startswith(f"wrote {len(finalists)} strategy file(s) into `{out}`")
    for path in paths:
        assert load_file(path, home.catalog).doc.name == path.stem


def test_the_launch_form_refuses_a_bad_population_and_starts_vq_discover_run(tmp_path, monkeypatch, page) -> None:
    home = Home(tmp_path / "home")
    monkeypatch.setenv("VQ_HOME", str(home.root))
    at = page("discovery")
    assert at.info[0].value.startswith("No discovery run yet")
    at.text_input(key="discovery_symbols").input("FILUSDT, nearusdt")
    at.date_input(key="discovery_start").set_value(dt.date(2023, 8, 1))
    at.date_input(key="discovery_end").set_value(dt.date(2023, 8, 31))
    at.number_input(key="discovery_population").set_value(30)
    button(at, "Launch discovery").click().run()
    assert at.error[0].value == ("**not launched**: population 30 is not a multiple of 4 (NSGA-II's tournament takes "
                                 "parents in pairs of pairs): choose 28 or 32")  # fmt: skip
    assert list_jobs(home) == []
    at.number_input(key="discovery_population").set_value(16)
    at.number_input(key="discovery_holdout").set_value(29)
    button(at, "Launch discovery").click().run()
    assert "--holdout-days 29 leaves 2 training day(s) of 31" in at.error[0].value  # the run's own configuration check
    assert list_jobs(home) == []
    at.number_input(key="discovery_holdout").set_value(7)
    at.number_input(key="discovery_generations").set_value(3)
    at.number_input(key="discovery_seed").set_value(5)
    at.multiselect(key="discovery_indicators").set_value(["EMA", "RSI"])
    at.number_input(key="discovery_max_genes").set_value(3)
    at.number_input(key="discovery_min_trades").set_value(20)
    at.number_input(key="discovery_max_dd").set_value(0.4)
    at.number_input(key="discovery_min_pf").set_value(1.1)
    at.number_input(key="discovery_workers").set_value(2)
    button(at, "Launch discovery").click().run()
    assert not at.exception
    jobs = list_jobs(home)
    try:
        assert len(jobs) == 1
        assert jobs[0].job_type == "discover run"
        assert list(jobs[0].command) == [
            "discover", "run", "--symbols", "FILUSDT,NEARUSDT", "--timeframe", "15m", "--start", "2023-08-01",
            "--end", "2023-08-31", "--holdout-days", "7", "--population", "16", "--generations", "3", "--seed", "5",
            "--indicators", "RSI,EMA", "--max-genes", "3", "--min-trades", "20", "--max-dd", "0.4", "--min-pf", "1.1",
            "--workers", "2"]  # fmt: skip
        assert at.success[0].value.startswith(f"job {jobs[0].id} started: vq discover run --symbols FILUSDT,NEARUSDT")
    finally:
        kill_active_jobs(home)


def test_a_run_at_generation_0_and_a_run_without_feasible_genome_say_so_and_resume(
    aug_2023_catalog, tmp_path, monkeypatch, page
) -> None:
    from vibe_quant.discovery import service
    from vibe_quant.discovery.config import parse_discovery

    home = linked_home(tmp_path / "home", aug_2023_catalog)
    monkeypatch.setenv("VQ_HOME", str(home.root))
    config = parse_discovery(CONFIG)
    failed = service.start(home, config, InstrumentSpecs())
    live = service.start(home, config, InstrumentSpecs())
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with StateManager(home.db_path) as state:
        state.insert("discovery_generations", {"run_id": failed, "generation": 0, "population": [], "front": [],
                                               "stats": INFEASIBLE, "rng_state": [3, [0], None], "created_at": now})  # fmt: skip
        state.update("discovery_runs", failed, {"status": "failed", "generation": 0, "evaluated": 8,
                                                "error_message": "worker pool died"})  # fmt: skip
        state.update("discovery_runs", live, {"status": "running", "pid": os.getpid(), "host": os.uname().nodename,
                                              "started_at": now, "heartbeat_at": now, "evaluated": 3})  # fmt: skip
    at = page("discovery")
    assert at.selectbox(key="discovery_run").value == live  # newest first
    assert any(i.value.startswith("Generation 0 is being evaluated (3 of 8 random genomes so far)") for i in at.info)
    assert not figures(at)
    assert not any(b.label == "Resume" for b in at.button)  # a live run is not resumed
    at.selectbox(key="discovery_run").set_value(failed).run()
    assert any(i.value.startswith("No feasible genome in generation 0: none passed the hard filters (at least 10 "
                                  "trades") for i in at.info)  # fmt: skip
    assert any(e.value == "**run failed**: worker pool died" for e in at.error)
    assert not any(f["layout"]["title"]["text"].startswith("Pareto front") for f in figures(at))
    at.number_input(key=f"discovery_resume_workers_{failed}").set_value(1)
    try:
        button(at, "Resume").click().run()
        assert not at.exception
        (job,) = list_jobs(home)
        assert list(job.command) == ["discover", "run", "--resume", str(failed), "--workers", "1"]
    finally:
        kill_active_jobs(home)


def test_the_fitness_figure_draws_best_mean_worst_and_the_feasible_count() -> None:
    gens = [{"generation": 0, "feasible": 0, "population": 8, "sharpe": None},
            {"generation": 1, "feasible": 3, "population": 8, "sharpe": {"best": 2.0, "mean": 0.5, "worst": -1.0},
             "fitness_sharpe": {"best": 1.9, "mean": 0.4, "worst": -1.1}}]  # fmt: skip
    fig = fitness_figure(gens)
    best, mean, worst, feasible = fig.data
    assert [t.name for t in fig.data] == ["best", "mean", "worst", "feasible genomes"]
    assert (list(best.y), list(mean.y), list(worst.y)) == ([None, 2.0], [None, 0.5], [None, -1.0])
    assert list(feasible.y) == [0, 3]
    assert feasible.yaxis == "y2"
    assert list(fitness_figure(gens, "fitness_sharpe").data[0].y) == [None, 1.9]
    with pytest.raises(ValueError, match="objective 'pf': choose one of sharpe, fitness_sharpe"):
        fitness_figure(gens, "pf")
    assert [len(t.x) for t in fitness_figure([]).data] == [0, 0, 0, 0]


def test_the_front_figure_plots_sharpe_against_drawdown_with_the_rules_on_hover() -> None:
    rows = [{"key": "a" * 20, "description": "long: RSI(14) < 30", "sharpe": 1.5, "max_drawdown": 0.1,
             "profit_factor": 1.8, "trades": 40, "complexity": 1},
            {"key": "b" * 20, "description": "both: EMA(7) crosses_above SMA(20)", "sharpe": 2.5, "max_drawdown": 0.2,
             "profit_factor": 2.1, "trades": 25, "complexity": 3}]  # fmt: skip
    (trace,) = front_figure(rows).data
    assert (list(trace.x), list(trace.y)) == ([0.1, 0.2], [1.5, 2.5])
    assert [c[1] for c in trace.customdata] == ["long: RSI(14) < 30", "both: EMA(7) crosses_above SMA(20)"]
    assert list(trace.marker.size) == [11, 17]
    assert front_figure(rows).layout.title.text == "Pareto front (2 genome(s)): training Sharpe vs max drawdown"
