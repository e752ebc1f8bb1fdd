"""Overview, Backtests, Results and Data Lake under AppTest on a home of stored real results
(tests/results_home.py): the figures and numbers shown are the stored ones."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from vibe_quant.results import load_run, load_sweep
from vibe_quant.state import StateManager


@pytest.fixture
def results_env(results_home, monkeypatch):
    monkeypatch.setenv("VQ_HOME", str(results_home.home.root))
    return results_home


def figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(array) -> np.ndarray:
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


def frame_with(at, column: str):
    """The first table on the page with `column` (AppTest does not expose a table's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def figure_titled(at, title: str) -> dict:
    """The page's figure whose title starts with `title`."""
    return next(f for f in figures(at) if f["layout"]["title"]["text"].startswith(title))


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def kill_active_jobs(home) -> None:
    from vibe_quant.jobs import kill_job, list_jobs

    for job in list_jobs(home, active_only=True):
        kill_job(home, job.id, grace_s=2)


def trace(fig: dict, prefix: str) -> dict:
    return next(t for t in fig["data"] if t.get("name", "").startswith(prefix))


def test_sweep_view_highlights_exactly_the_pareto_rows_and_lists_every_point(results_env, page):
    at = page("results")
    s = load_sweep(results_env.home, str(results_env.sweep))
    assert at.selectbox(key="results_sweep").value == results_env.sweep
    pareto = figures(at)[0]
    front = trace(pareto, "Pareto front")
    assert sorted(values(front["customdata"]).tolist()) == sorted(s.points.loc[s.points.is_pareto_optimal == 1, "id"])
    assert len(values(trace(pareto, "points")["customdata"])) == len(s.points)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["points"] == str(len(s.points))
    assert metrics["Pareto front"] == str(int(s.points.is_pareto_optimal.sum()))
    # a Python strategy: the kernel refused it, every point ran on NautilusTrader (nothing to re-check)
    assert f"engine sim: {len(s.points)} points on NautilusTrader" in [c.value for c in at.caption]
    table = at.dataframe[0].value
    assert sorted(table["row"]) == sorted(s.points["id"])
    assert {"fast", "slow", "Sharpe", "DSR", "walk-forward"} <= set(table.columns)
    funnel = next(f for f in figures(at) if f["data"][0]["type"] == "funnel")
    assert [int(v) for v in values(funnel["data"][0]["x"])] == [n for _, n in s.overfitting["funnel"]]
    at.checkbox(key="only_front").check().run()
    assert sorted(at.dataframe[0].value["row"]) == sorted(s.points.loc[s.points.is_pareto_optimal == 1, "id"])


def test_run_view_draws_the_stored_run(results_env, page):
    at = page("results")
    at.segmented_control(key="results_view").set_value("run").run()
    at.selectbox(key="results_run").set_value(results_env.backtest).run()
    assert not at.exception
    r = load_run(results_env.home, str(results_env.backtest))
    figs = figures(at)
    assert len(figs) == 7
    equity = values(figs[0]["data"][0]["y"])
    assert equity[-1] == pytest.approx(r.metrics["final_equity"], rel=1e-12)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["total trades"] == f"{r.metrics['total_trades']:,}"
    assert metrics["final equity"] == f"{r.metrics['final_equity']:,.2f}"
    trades = frame_with(at, "exit_reason")
    assert len(trades) == len(r.trades)
    assert trades["net_pnl"].sum() == pytest.approx(r.trades["net_pnl"].sum())


def test_run_view_shows_the_overfitting_badges_of_a_validated_point(results_env, page):
    with StateManager(results_env.home.db_path) as db:
        validated = [r for r in db.find("sweep_results", run_id=results_env.sweep) if r["validation_run_id"]]
    assert validated, "the results home validates the walk-forward survivors"
    point = validated[0]
    at = page("results")
    at.segmented_control(key="results_view").set_value("run").run()
    at.selectbox(key="results_run").set_value(point["validation_run_id"]).run()
    text = " ".join(m.value for m in at.markdown)
    assert "walk-forward PASS" in text
    assert f"sweep point {point['id']}" in " ".join(c.value for c in at.caption)


def test_compare_two_runs_side_by_side(results_env, page):
    at = page("results")
    at.segmented_control(key="results_view").set_value("compare").run()
    at.multiselect(key="compare_runs").set_value([results_env.backtest, results_env.guarded]).run()
    table = at.dataframe[0].value
    a, b = (load_run(results_env.home, str(i)) for i in (results_env.backtest, results_env.guarded))
    assert table.loc["total_trades"].tolist() == [f"{a.metrics['total_trades']:,}", f"{b.metrics['total_trades']:,}"]
    fig = figures(at)[0]
    last = [values(t["y"])[-1] for t in fig["data"]]
    assert last == pytest.approx(
        [100 * (r.metrics["final_equity"] / r.metrics["starting_balance"] - 1) for r in (a, b)]
    )


def test_data_lake_shows_the_catalog_and_its_coverage(results_env, page):
    at = page("data_lake")
    catalog = frame_with(at, "first close")
    fil_1m = catalog[(catalog.symbol == "FILUSDT") & (catalog.timeframe == "1m")]
    assert fil_1m["bars"].tolist() == [31 * 1440]
    coverage = figures(at)[0]
    assert sorted(coverage["data"][0]["y"]) == ["FILUSDT", "NEARUSDT"]
    assert trace(coverage, "gap days")["name"] == "gap days (0)"
    quality = frame_with(at, "1m gaps")
    assert quality.set_index("symbol").loc["FILUSDT", "1m gaps"] == 0


def test_overview_lists_runs_and_the_breaker_trip(results_env, page):
    at = page("overview")
    runs = frame_with(at, "period")
    assert {results_env.backtest, results_env.guarded, results_env.sweep} <= set(runs["id"])
    alerts = frame_with(at, "what")
    trip = alerts[alerts["what"].str.contains(f"run {results_env.guarded}:")]
    assert trip["what"].str.contains("drawdown_halt").any()
    assert {m.label for m in at.metric} == {"catalog", "state database", "disk free", "raw archive"}


def test_backtests_page_builds_the_commands_users_would_type(results_env, page):
    from vibe_quant.dashboard.pages.backtests import validation_argv

    at = page("backtests")
    assert not at.exception
    assert at.selectbox(key="sweep_strategy").value == at.selectbox(key="sweep_strategy").options[0]
    with StateManager(results_env.home.db_path) as db:
        base = db.get("backtest_runs", results_env.sweep)["parameters"]
    argv = validation_argv(base, {"fast": 10, "slow": 80}, "retail", None, "live_safety", 3.0)
    assert argv == ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--timeframe", "15m",
                    "--start", "2023-08-01", "--end", "2023-08-31", "--mode", "validation", "--latency", "retail",
                    "--leverage", "3.0", "--param", "fast=10", "--param", "slow=80", "--risk", "live_safety"]  # fmt: skip
    assert validation_argv(base, {}, point_id=7)[-2:] == ["--validates", "7"]


def test_a_validation_run_links_to_its_sweep_point(results_home, tmp_path):
    import shutil

    from tests.conftest import vq
    from vibe_quant.dashboard.pages.backtests import validation_argv

    root = tmp_path / "home"
    shutil.copytree(results_home.home.root, root)
    with StateManager(root / "state" / "vibe_quant.db") as db:
        base = db.get("backtest_runs", results_home.sweep)["parameters"]
        point = next(r for r in db.find("sweep_results", run_id=results_home.sweep) if not r["validation_run_id"])
    argv = validation_argv(base, point["parameters"], point_id=point["id"])
    code, out, err = vq(["--home", str(root), "-q", *argv, "--json"])
    assert code == 0, err
    assert json.loads(out)["config"]["params"] == point["parameters"]
    with StateManager(root / "state" / "vibe_quant.db") as db:
        run = db.find("backtest_runs", run_hash=json.loads(out)["run_id"])[-1]
        assert db.get("sweep_results", point["id"])["validation_run_id"] == run["id"]
    code, _, err = vq(["--home", str(root), "-q", *argv[:-2], "--validates", "999999"])
    assert code == 2
    assert "no sweep point 999999" in err
