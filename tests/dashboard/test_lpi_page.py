"""The LPI experiments page under AppTest on real bundles: a two-point sensitivity sweep (co-located
latency, fee tiers VIP0 and VIP9) of a walk-forward experiment on the proxy of the real COIN-M day
(two folds, the EMA-cross baseline; the strategy trades in the first). The page lists the bundles,
shows the stored numbers and labels, draws the stored curves; the form refuses a bad experiment with
the loader's message and launches ``vq lpi run`` on a good one; an empty home says what to run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.dashboard.test_results_pages import figures, frame_with, values
from vibe_quant.experiments.bundle import read_bundle
from vibe_quant.experiments.config import experiment_from_data
from vibe_quant.experiments.sweep import run_sweep, write_sensitivity
from vibe_quant.home import Home
from vibe_quant.jobs import kill_job, list_jobs

EXPERIMENT = {"name": "dash", "instruments": ["BTCUSDT"], "start": "2026-05-08T06:00", "end": "2026-05-08T18:00",
              "walk_forward": {"train": "6h", "test": "3h", "step": "3h", "purge": "5m"},
              "sweep": {"latency": ["co_located"], "fee_tier": ["vip0", "vip9"]}}  # fmt: skip


@pytest.fixture(scope="module")
def lpi_home(proxy_home: Home, tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, list[dict]]:
    """Read only: the proxy home with the sweep's two bundles and its sensitivity table; the grid rows."""
    home = Home(tmp_path_factory.mktemp("lpi_dash") / "home")
    shutil.copytree(proxy_home.root, home.root)
    exp = experiment_from_data(dict(EXPERIMENT), "dash")
    rows = run_sweep(home, exp)
    write_sensitivity(home, exp, rows)
    assert rows[0]["experiment_id"] == exp.experiment_id  # the first point is the experiment as written
    return home, rows


@pytest.fixture
def lpi_env(lpi_home, monkeypatch: pytest.MonkeyPatch) -> tuple[Home, list[dict]]:
    monkeypatch.setenv("VQ_HOME", str(lpi_home[0].root))
    return lpi_home


def _figure(at, title: str) -> dict:
    return next(f for f in figures(at) if f["layout"]["title"]["text"].startswith(title))


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_page_lists_the_bundles_and_shows_the_folds_beside_the_baseline(lpi_env, page) -> None:
    home, rows = lpi_env
    at = page("lpi")
    listing = frame_with(at, "baseline pnl")
    assert listing["id"].tolist() == [rows[1]["experiment_id"], rows[0]["experiment_id"]]  # newest first
    assert listing["labels"].tolist() == ["quotes-free, depth proxy unavailable, open-interest prior unavailable"] * 2
    assert listing["pnl"].tolist() == [rows[1]["pnl"], rows[0]["pnl"]]
    assert listing["baseline pnl"].tolist() == [rows[1]["baseline_pnl"], rows[0]["baseline_pnl"]]
    assert listing["folds"].tolist() == [2, 2]
    at.selectbox(key="lpi_experiment").set_value(rows[0]["experiment_id"]).run()
    assert not at.exception
    s = json.loads((home.runs / rows[0]["experiment_id"] / "summary.json").read_text())
    assert [w.value for w in at.warning] == s["labels"]
    assert at.warning[0].value.startswith("quotes-free: no quote ticks were used")
    folds = frame_with(at, "pnl - baseline")
    assert folds["fold"].tolist() == [0, 1]
    assert folds["scored from"].tolist() == ["2026-05-08T12:05:00", "2026-05-08T15:05:00"]
    assert folds["pnl"].tolist() == [f["pnl"] for f in s["folds"]]
    assert folds["fills"].tolist() == [f["fills"] for f in s["folds"]] == [5, 0]
    assert folds["maker fills"].tolist() == [f["maker_fills"] for f in s["folds"]]
    assert folds["baseline pnl"].tolist() == [f["pnl"] for f in s["baseline"]["folds"]]
    assert folds["1000 ms markout bps"].tolist()[0] == s["folds"][0]["markout_1000ms_bps"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PnL (USDT)"] == f"{s['aggregate']['pnl']:,.2f}"
    assert metrics["baseline PnL"] == f"{s['baseline']['aggregate']['pnl']:,.2f}"
    c = s["comparison"]
    assert any(f"better in **{c['folds_better']}/{c['folds']}** folds" in m.value for m in at.markdown)
    fills = frame_with(at, "liquidity")
    assert len(fills) == len(pd.read_csv(home.runs / rows[0]["experiment_id"] / "fills.csv"))


def test_the_figures_draw_the_stored_curves(lpi_env, page) -> None:
    home, rows = lpi_env
    at = page("lpi")
    at.selectbox(key="lpi_experiment").set_value(rows[0]["experiment_id"]).run()
    b = read_bundle(home, rows[0]["experiment_id"])
    pnl = _figure(at, "PnL per fold")
    assert [t["name"] for t in pnl["data"]] == ["strategy", "ema_cross"]
    assert list(values(pnl["data"][0]["y"])) == [f["pnl"] for f in b.summary["folds"]]
    assert list(values(pnl["data"][1]["y"])) == [f["pnl"] for f in b.summary["baseline"]["folds"]]

    assert at.selectbox(key=f"lpi-fold-{b.experiment_id}").value == 0  # the first fold that traded
    equity = _figure(at, "Fold 0: equity")
    assert [t["name"] for t in equity["data"]] == ["strategy", "baseline"]
    for t, run in zip(equity["data"], ("strategy", "baseline"), strict=True):
        stored = b.equity[(b.equity["fold"] == 0) & (b.equity["run"] == run)]["equity"].to_numpy()
        assert values(t["y"])[-1] == stored[-1]
    shaded = [(s["x0"][:19], s["x1"][:19]) for s in equity["layout"]["shapes"]]
    assert shaded == [("2026-05-08T06:00:00", "2026-05-08T12:00:00"), ("2026-05-08T12:05:00", "2026-05-08T15:00:00")]
    at.selectbox(key=f"lpi-fold-{b.experiment_id}").set_value(1).run()
    assert _figure(at, "Fold 1: equity")["layout"]["shapes"][1]["x0"].startswith("2026-05-08T15:05:00")

    signal = _figure(at, "LPI signal trace")
    trace = b.trace(["ts_event", "lpi_fast", "exh", "mid"])
    assert [(t["name"], t.get("yaxis", "y")) for t in signal["data"]] == [
        ("LPI_fast", "y"),
        ("EXH", "y"),
        ("mid", "y2"),
    ]
    assert len(trace) < 4000  # drawn whole: every snapshot, NaN gaps kept
    np.testing.assert_array_equal(values(signal["data"][2]["y"]), trace["mid"].to_numpy())
    np.testing.assert_array_equal(values(signal["data"][0]["y"]), trace["lpi_fast"].to_numpy())

    table = frame_with(at, "mean_bps").set_index("horizon_ms")
    assert table.index.tolist() == [1000, 5000, 30000]
    for horizon in (1000, 5000, 30000):
        stored = b.markouts[b.markouts["horizon_ms"] == horizon]["markout_bps"]
        assert table.loc[horizon, "fills"] == len(stored)
        assert table.loc[horizon, "mean_bps"] == pytest.approx(stored.mean(), rel=1e-12)
    histogram = _figure(at, "Fill markouts")
    assert [t["type"] for t in histogram["data"]] == ["histogram"] * 3
    assert histogram["data"][0]["name"].startswith("1,000 ms (mean ")


def test_the_sensitivity_grid_shows_for_every_point_of_the_sweep(lpi_env, page) -> None:
    _home, rows = lpi_env
    at = page("lpi")
    for row in (rows[1], rows[0]):  # the newest (a point) is chosen first, then the sweep's own experiment
        at.selectbox(key="lpi_experiment").set_value(row["experiment_id"]).run()
        heat = _figure(at, "Sensitivity: pnl")["data"][0]
        assert heat["x"] == ["vip0", "vip9"]
        assert heat["y"] == ["co_located"]
        assert values(heat["z"]).tolist() == [rows[0]["pnl"], rows[1]["pnl"]]
        assert frame_with(at, "fee_tier")["experiment_id"].tolist() == [r["experiment_id"] for r in rows]


def test_an_empty_home_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page) -> None:
    monkeypatch.setenv("VQ_HOME", str(tmp_path / "home"))
    at = page("lpi")
    assert "No LPI experiment yet" in at.info[0].value
    assert "vq lpi run src/vibe_quant/experiments/examples/lpi_experiment.yaml" in at.info[0].value
    assert at.text_area(key="lpi_yaml").value.startswith("# An LPI experiment")


@pytest.fixture
def writable(proxy_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    home = Home(tmp_path / "home")
    shutil.copytree(proxy_home.root, home.root)
    monkeypatch.setenv("VQ_HOME", str(home.root))
    return home


def test_a_bad_experiment_is_refused_with_the_loaders_message(writable: Home, page) -> None:
    at = page("lpi")
    at.text_area(key="lpi_yaml").input(yaml.safe_dump({**EXPERIMENT, "walk_forwrd": {"train": "6h"}}))
    _button(at, "Validate and launch").click().run()
    assert not at.exception
    assert "unknown field" in at.error[0].value
    assert "walk_forwrd" in at.error[0].value
    at.text_area(key="lpi_yaml").input("name: x\ninstruments: [BTCUSDT\nstart: 2026-05-08\n")
    _button(at, "Validate and launch").click().run()
    assert at.error[0].value.startswith("**not launched**: experiment.yaml line ")
    assert "not valid YAML" in at.error[0].value
    at.text_area(key="lpi_yaml").input(yaml.safe_dump({**EXPERIMENT, "end": "2026-05-08T05:00"}))
    _button(at, "Validate and launch").click().run()
    assert "end 2026-05-08T05:00 is not after start 2026-05-08T06:00" in at.error[0].value
    assert list_jobs(writable) == []
    assert not (writable.runs / "experiments").exists()


def test_a_good_experiment_is_saved_and_launched_as_a_job(writable: Home, page) -> None:
    text = "# from the dashboard\n" + yaml.safe_dump({**EXPERIMENT, "name": "dash run/1"})
    at = page("lpi")
    at.text_area(key="lpi_yaml").input(text)
    _button(at, "Validate and launch").click().run()
    assert not at.exception
    jobs = list_jobs(writable)
    try:
        saved = writable.runs / "experiments" / "dash-run-1.yaml"
        assert saved.read_text() == text
        assert len(jobs) == 1
        assert jobs[0].job_type == "lpi run"
        assert jobs[0].label == "lpi run dash run/1"
        assert list(jobs[0].command[-3:]) == ["lpi", "run", str(saved)]
        assert at.success[0].value == f"job {jobs[0].id} started: vq lpi run {saved}"
    finally:
        for job in list_jobs(writable, active_only=True):
            kill_job(writable, job.id, grace_s=2)


def test_an_experiment_without_baseline_shows_the_strategy_alone(lpi_home, tmp_path: Path, monkeypatch, page) -> None:
    home, rows = lpi_home
    copy = Home(tmp_path / "home")
    source = home.runs / rows[0]["experiment_id"]
    shutil.copytree(source, copy.runs / source.name)  # as `baseline: null` writes it: no baseline rows anywhere
    summary = json.loads((source / "summary.json").read_text())
    (copy.runs / source.name / "summary.json").write_text(json.dumps({**summary, "baseline": None, "comparison": None}))
    for name in ("fills.csv", "positions.csv", "account_report.csv"):
        table = pd.read_csv(source / name)
        table[table["run"] == "strategy"].to_csv(copy.runs / source.name / name, index=False)
    monkeypatch.setenv("VQ_HOME", str(copy.root))
    at = page("lpi")
    assert frame_with(at, "baseline pnl")["baseline pnl"].isna().all()
    folds = frame_with(at, "maker fills")
    assert "baseline pnl" not in folds.columns
    assert folds["pnl"].tolist() == [f["pnl"] for f in summary["folds"]]
    assert "no baseline in this experiment (`baseline: null`)" in [c.value for c in at.caption]
    assert [t["name"] for t in _figure(at, "PnL per fold")["data"]] == ["strategy"]
    assert [t["name"] for t in _figure(at, "Fold 0: equity")["data"]] == ["strategy"]
    assert {m.label: m.value for m in at.metric}["baseline PnL"] == "-"
