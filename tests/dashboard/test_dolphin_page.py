"""The DOLPHIN page under AppTest on real scan tables (the demo's 20 hourly perpetuals, 2026-04-01..03): the vel_div
figure draws the stored rows with each threshold's share of rows, the quantile table is the manifest's and a day's
table is the day file; an empty home says how to build scans, and the form starts ``vq dolphin scans build``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.dashboard.test_results_pages import button, figure_titled, frame_with, kill_active_jobs, values
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.jobs import list_jobs

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "vibe_quant" / "sample_data" / "perps" / "dolphin"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig

    home = Home(tmp_path_factory.mktemp("dolphin_page") / "home").ensure()
    specs = InstrumentSpecs()
    run_import(home, sorted(SAMPLE.glob("*_USDT_1h.csv")), specs)
    build_scans(home, specs, ScanConfig(), dt.date(2026, 4, 1), dt.date(2026, 4, 3))
    return home


def test_the_acb_factor_table_appears_once_built(scanned: Home, monkeypatch: pytest.MonkeyPatch, page) -> None:
    from vibe_quant.dolphin.acb import AcbConfig
    from vibe_quant.dolphin.acb_build import build_acb_factors

    monkeypatch.setenv("VQ_HOME", str(scanned.root))
    directory = scanned.root / "dolphin" / "scans" / "1h"
    at = page("dolphin")
    assert any(i.value.startswith("No factor table for these scans yet") for i in at.info)
    report = build_acb_factors(scanned, InstrumentSpecs(), AcbConfig(w750_threshold_mode="full_sample"), directory)
    try:
        at = page("dolphin")
        shown = frame_with(at, "base_boost")
        assert shown["beta"].tolist() == report.table.column("beta").to_pylist()
        assert at.warning[0].value.startswith("LOOK-AHEAD")
    finally:
        (directory / "acb_factors.parquet").unlink()


def test_the_page_draws_the_stored_scans(scanned: Home, monkeypatch: pytest.MonkeyPatch, page) -> None:
    import json

    monkeypatch.setenv("VQ_HOME", str(scanned.root))
    directory = scanned.root / "dolphin" / "scans" / "1h"
    manifest = json.loads((directory / "manifest.json").read_text())
    stored = pa.concat_tables([pq.read_table(p) for p in sorted(directory.glob("*.parquet"))])
    at = page("dolphin")
    assert [m.value for m in at.metric][:3] == ["20", "3", "72"]
    fig = figure_titled(at, "vel_div = short-window")
    assert [t["name"] for t in fig["data"]] == ["vel_div", "short window", "long window"]
    np.testing.assert_array_equal(values(fig["data"][0]["y"]), stored.column("vel_div").to_numpy())
    np.testing.assert_array_equal(values(fig["data"][2]["y"]), stored.column("v750_lambda_max_velocity").to_numpy())
    notes = [a["text"] for a in fig["layout"]["annotations"]]
    assert notes[0] == f"-0.02 ({manifest['vel_div']['below']['-0.02']:.2%} of rows below)"
    quantiles = frame_with(at, "q0.5")
    assert quantiles["q0.5"].tolist() == [manifest["vel_div"]["quantiles"]["0.5"]]
    day = frame_with(at, "scan_number")
    last = pq.read_table(directory / "2026-04-03.parquet")
    assert day["scan_number"].tolist() == last.column("scan_number").to_pylist()
    assert day["AAVEUSDT"].tolist() == last.column("AAVEUSDT").to_pylist()


def test_an_empty_home_says_how_and_the_form_starts_a_build_job(tmp_path: Path, monkeypatch, page) -> None:
    home = Home(tmp_path / "home")
    monkeypatch.setenv("VQ_HOME", str(home.root))
    at = page("dolphin")
    assert at.info[0].value.startswith("No scan table yet")
    button(at, "Build scans").click().run()
    assert at.error[0].value == "**not launched**: choose a start and an end date"
    at.date_input(key="dolphin_start").set_value(dt.date(2026, 4, 1))
    at.date_input(key="dolphin_end").set_value(dt.date(2026, 4, 2))
    at.text_input(key="dolphin_universe").input("AAVEUSDT,ALGOUSDT")
    at.number_input(key="dolphin_workers").set_value(1)
    button(at, "Build scans").click().run()
    assert not at.exception
    jobs = list_jobs(home)
    try:
        assert len(jobs) == 1
        assert list(jobs[0].command) == ["dolphin", "scans", "build", "--start", "2026-04-01", "--end", "2026-04-02",
                                         "--timeframe", "1h", "--universe", "AAVEUSDT,ALGOUSDT", "--windows",
                                         "50,150,300,750", "--workers", "1"]  # fmt: skip
    finally:
        kill_active_jobs(home)


def test_an_engine_run_shows_its_costs_equity_and_ledger(scanned: Home, monkeypatch: pytest.MonkeyPatch, page) -> None:
    import shutil

    from vibe_quant.dolphin.backtest import run_dolphin, write_bundle
    from vibe_quant.dolphin.engine_config import engine_config

    monkeypatch.setenv("VQ_HOME", str(scanned.root))
    directory = scanned.root / "dolphin" / "scans" / "1h"
    at = page("dolphin")
    assert any(i.value.startswith("No engine run yet") for i in at.info)
    # a signal-dense config so that three days of 20 assets trade
    run = run_dolphin(directory, engine_config(profile="seed", lookback=10, vel_div_threshold=-0.005,
                                               max_hold_bars=6, irp_window=10, dc_lookback_bars=3))  # fmt: skip
    bundle = write_bundle(run, scanned.runs)
    try:
        assert run.costs["trades"] > 0
        at = page("dolphin")
        assert "seed" in [m.value for m in at.metric]
        assert str(run.costs["trades"]) in [m.value for m in at.metric]
        costs = frame_with(at, "entry_fees")
        assert costs["net"].tolist() == [pytest.approx(run.costs["net"], abs=1e-9)]
        ledger = frame_with(at, "exit_reason")
        assert ledger["net"].tolist() == pytest.approx([t.net for t in run.result.trades], abs=1e-12)
        fig = figure_titled(at, "Equity")
        np.testing.assert_allclose(values(fig["data"][0]["y"])[-1], run.result.equity[-1])
        days = frame_with(at, "mc_status")
        assert len(days) == 3
    finally:
        shutil.rmtree(bundle)


def test_the_engine_form_starts_a_backtest_job(scanned: Home, tmp_path: Path, monkeypatch, page) -> None:
    from tests.conftest import linked_home

    home = linked_home(tmp_path / "home", scanned.catalog)
    (home.root / "dolphin").symlink_to(scanned.root / "dolphin")
    monkeypatch.setenv("VQ_HOME", str(home.root))
    at = page("dolphin")
    at.selectbox(key="dolphin_engine_profile").set_value("seed")
    at.text_input(key="dolphin_engine_config").input(str(tmp_path / "missing.yaml"))
    button(at, "Run the engine").click().run()
    assert at.error[0].value == f"**not launched**: no config file {tmp_path / 'missing.yaml'}"
    at.text_input(key="dolphin_engine_config").input("")
    button(at, "Run the engine").click().run()
    assert not at.exception
    jobs = list_jobs(home)
    try:
        assert len(jobs) == 1
        assert list(jobs[0].command) == ["dolphin", "backtest", "--scans", str(home.root / "dolphin" / "scans" / "1h"),
                                         "--profile", "seed"]  # fmt: skip
    finally:
        kill_active_jobs(home)


def test_the_live_tab_reads_the_feature_store(tmp_path: Path, monkeypatch, page, redis_url: str) -> None:
    import redis

    from vibe_quant.dolphin.features import DolphinStore, RedisFeatureStore
    from vibe_quant.dolphin.services import WatchdogService

    with redis.Redis.from_url(redis_url) as raw:
        raw.flushdb()
    monkeypatch.setenv("VQ_HOME", str(Home(tmp_path / "home").root))
    at = page("dolphin")
    assert any(i.value.startswith("No feature store given") for i in at.info)
    with DolphinStore(RedisFeatureStore(redis_url)) as store:
        store.write_acb(1.346574, 0.8)
        store.write_mc({"date": "2026-01-20", "status": "ORANGE", "ts_ns": 0, "catastrophic_probability": 0.0,
                        "envelope_score": -0.5})  # fmt: skip
        WatchdogService().cycle(store, 1)
        store.write_result(-1, "2026-01-20", {"date": "2026-01-20", "pnl": 12.5, "capital": 10_012.5, "boost": 1.35,
                                              "beta": 0.8, "mc_status": "OK", "trades": 2})  # fmt: skip
        store.write_trade(-1, dt.datetime.now(dt.UTC).date(), 7, {"trade_id": 7, "asset": "FILUSDT", "net": 3.25,
                                                                  "exit_reason": "FIXED_TP"})  # fmt: skip
        store.write_equity(9_500.0, 10_000.0)
    monkeypatch.setenv("VQ_DOLPHIN_STORE", redis_url)
    at = page("dolphin")
    shown = {m.label: m.value for m in at.metric}
    assert shown["posture"] == "HIBERNATE"  # ORANGE with fresh data: Rm 0.487
    assert shown["Rm"] == "0.487"
    assert shown["ACB boost"] == "1.3466"
    assert shown["MC status"] == "ORANGE"
    assert frame_with(at, "cat5")["cat2"].tolist() == [0.5]
    assert frame_with(at, "mc_status")["capital"].tolist() == [10_012.5]
    assert frame_with(at, "exit_reason")["net"].tolist() == [3.25]
    assert any("strategy equity 9,500.00 (peak 10,000.00, drawdown 5.00%)" in c.value for c in at.caption)
