"""DOLPHIN's services: the ACB processor, MC assessor and watchdog cycles on the in-process store, then the
three as background jobs against a real redis-server (start, status, stop)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import linked_home
from vibe_quant.dolphin.features import DolphinStore, InProcessFeatureStore
from vibe_quant.dolphin.services import AcbService, McService, WatchdogService, live_state, make_service, run_service
from vibe_quant.errors import UserError
from vibe_quant.home import Home

NS = 1_000_000_000
NOON = int(dt.datetime(2026, 1, 20, 12, tzinfo=dt.UTC).timestamp()) * NS


@pytest.fixture
def store():
    with DolphinStore(InProcessFeatureStore()) as s:
        yield s


@pytest.fixture(scope="module")
def acb_scans(hourly_home: Home, champion_scans: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the champion scans with an ACB table: dvol 85 (weight 1.0: boost 1.346574) on 2026-01-20 only."""
    from vibe_quant.dolphin.acb import AcbConfig
    from vibe_quant.dolphin.acb_build import build_acb_factors
    from vibe_quant.instruments.specs import InstrumentSpecs

    out = tmp_path_factory.mktemp("acb_scans") / "1h"
    shutil.copytree(champion_scans, out)
    dvol = out.parent / "dvol.csv"
    dvol.write_text("date,value\n2026-01-20,85\n2026-01-21,40\n")
    build_acb_factors(hourly_home, InstrumentSpecs(), AcbConfig(), out, dvol=dvol)
    return out


def test_acb_and_mc_cycles_write_the_dates_values(store, acb_scans: Path) -> None:
    acb = AcbService(acb_scans)
    assert acb.cycle(store, NOON)["boost"] == pytest.approx(1.346574, abs=5e-7)
    boost, beta = store.read_acb()
    assert boost == pytest.approx(1.346574, abs=5e-7)
    assert beta in (0.2, 0.8)
    assert acb.cycle(store, NOON + 86_400 * NS)["boost"] == 1.0  # the next date: dvol 40, no signal
    assert store.read_acb()[0] == 1.0
    record = McService().cycle(store, NOON)
    assert (record["status"], record["date"]) == ("OK", "2026-01-20")
    assert run_service("mc", McService(), store, cycle_s=0.0, cycles=3, clock=lambda: NOON, sleep=lambda s: None) == 3
    assert store.heartbeat_age_s("mc", NOON + 5 * NS) == 5.0


def test_watchdog_postures(store) -> None:
    dog = WatchdogService()
    assert dog.cycle(store, NOON)["posture"] == "APEX"
    assert store.read_posture()["posture"] == "APEX"
    # a stopped strategy heartbeat: HIBERNATE within the one cycle
    store.beat("strategy", NOON)
    dead = dog.cycle(store, NOON + 31 * NS)
    assert (dead["posture"], dead["sensors"]["cat1"]) == ("HIBERNATE", 0.0)
    # beating again, one-minute cycles: Rm recovers by 2% of the gap a minute, so still HIBERNATE
    rms = []
    for i in range(1, 4):
        now = NOON + (31 + 60 * i) * NS
        store.beat("strategy", now)
        cycle = dog.cycle(store, now)
        rms.append(cycle["rm"])
        assert cycle["posture"] == "HIBERNATE"
    assert rms[0] == pytest.approx(0.02 * 0.9734030064231342, abs=1e-12)
    assert rms == sorted(rms)
    # hourly cycles: Rm is back at its target at once, and the posture rises on the fifth cycle at APEX level
    postures = []
    for i in range(1, 6):
        now = NOON + (211 + 3600 * i) * NS
        store.beat("strategy", now)
        postures.append(dog.cycle(store, now)["posture"])
    assert postures == ["HIBERNATE"] * 4 + ["APEX"]


def test_watchdog_reads_mc_and_drawdown(store) -> None:
    dog = WatchdogService()
    dog.cycle(store, NOON)
    store.write_mc({"date": "2026-01-20", "status": "ORANGE", "ts_ns": NOON, "catastrophic_probability": 0.0,
                    "envelope_score": -0.5})  # fmt: skip
    first = dog.cycle(store, NOON + 60 * NS)
    assert (first["level"], first["posture"], round(first["rm"], 5)) == ("HIBERNATE", "APEX", 0.48670)
    assert dog.cycle(store, NOON + 120 * NS)["posture"] == "HIBERNATE"
    dog = WatchdogService()
    store.write_mc({"date": "2026-01-20", "status": "OK", "ts_ns": NOON, "catastrophic_probability": 0.0,
                    "envelope_score": 0.0})  # fmt: skip
    store.write_equity(9_400.0, 10_000.0)  # 6% drawdown: Cat5 0.858 -> STALKER
    assert dog.cycle(store, NOON)["posture"] == "STALKER"
    live = live_state(store, NOON)
    assert live["posture"]["posture"] == "STALKER"
    assert live["mc"]["status"] == "OK"


def test_make_service_refusals() -> None:
    with pytest.raises(UserError, match="unknown DOLPHIN service 'ob'"):
        make_service("ob")
    with pytest.raises(UserError, match="give --scans"):
        make_service("acb")


def test_services_run_as_jobs_against_redis(cli, tmp_path: Path, hourly_home: Home, acb_scans: Path,
                                            redis_url: str) -> None:  # fmt: skip
    from tests.dashboard.test_results_pages import kill_active_jobs

    home = linked_home(tmp_path / "home", hourly_home.catalog)
    base = ["--home", str(home.root), "dolphin"]
    code, text = cli([*base, "services", "start", "--store", "redis://127.0.0.1:1/0", "--scans", str(acb_scans)])
    assert code != 0
    assert "redis-server --port 1 --bind 127.0.0.1" in text
    import redis

    with redis.Redis.from_url(redis_url) as raw:
        raw.flushdb()
    symbols = ",".join(json.loads((acb_scans / "manifest.json").read_text())["universe"][:5])
    code, text = cli([*base, "services", "start", "--store", redis_url, "--scans", str(acb_scans), "--cycle-s", "0.5",
                      "--symbols", symbols, "--start", "2025-12-01", "--end", "2026-01-15"])  # fmt: skip
    try:
        assert code == 0, text
        assert [line.split(":")[0] for line in text.splitlines()[:4]] == ["acb", "watchdog", "mc", "strategy"]
        deadline, state = time.monotonic() + 60, {}
        for _ in range(240):
            code, text = cli([*base, "services", "status", "--store", redis_url, "--json"])
            state = json.loads(text)
            beats = [state["heartbeats"][n] for n in ("acb", "mc", "watchdog")]
            if (state["posture"] and state["acb"] and state["mc"] and None not in beats) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert [j["service"] for j in state["jobs"]][:3] == ["acb", "watchdog", "mc"]
        assert state["posture"]["posture"] in ("APEX", "HIBERNATE")  # HIBERNATE once the finished replay stops beating
        assert state["mc"]["status"] == "OK"
        assert {"boost", "beta"} == set(state["acb"])
        assert all(state["heartbeats"][n] is not None for n in ("acb", "mc", "watchdog"))
        # the strategy (a paper replay of dolphin_live at full speed) beat, and wrote its dates after the warm-up
        from vibe_quant.dolphin.features import DolphinStore, RedisFeatureStore
        from vibe_quant.jobs import list_jobs

        deadline = time.monotonic() + 120
        for _ in range(480):
            (strategy_job,) = [j for j in list_jobs(home) if j.label == "dolphin strategy"]
            if strategy_job.status != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert strategy_job.status == "completed", strategy_job.error_message
        assert "redis://" not in " ".join(strategy_job.command)  # the URL came through the environment
        with DolphinStore(RedisFeatureStore(redis_url)) as store:
            assert store.heartbeat_age_s("strategy", time.time_ns()) is not None
            days = sorted(store.store.keys("DOLPHIN_PNL_BLUE"))
            assert days[0] >= "2026-01-01"
            assert days[-1] == "2026-01-15"
            assert store.read_equity()["equity"] > 0
        code, text = cli([*base, "services", "stop", "--grace", "5"])
        assert code == 0, text
        assert [line.split(":")[0] for line in text.splitlines()] == ["dolphin mc", "dolphin watchdog", "dolphin acb"]
        code, text = cli([*base, "services", "status"])
        assert "no DOLPHIN service running" in text
    finally:
        kill_active_jobs(home)
