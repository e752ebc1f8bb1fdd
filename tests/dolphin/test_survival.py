"""The survival stack against the digest's worked values, the hysteresis and the kill switch."""

from __future__ import annotations

import pytest

from vibe_quant.dolphin.survival import (
    Readings,
    SurvivalConfig,
    SurvivalStack,
    cat2,
    cat3,
    cat4,
    cat5,
    combine,
    drawdown_thresholds,
    posture_of,
    recover,
    sensors,
)
from vibe_quant.errors import ConfigError

CFG = SurvivalConfig()


def test_sensor_goldens() -> None:
    dds = (0, 0.02, 0.05, 0.10, 0.12, 0.158, 0.20)
    assert [round(cat5(d, CFG), 5) for d in dds] == [0.97340, 0.95257, 0.89090, 0.64566, 0.5, 0.24232, 0.08317]
    assert round(cat2("ORANGE", 9, CFG), 6) == 0.183940
    assert round(cat2("OK", 12, CFG), 6) == 0.135335
    assert cat2("RED", 0, CFG) == 0.1
    assert [round(cat4(True, t, CFG), 6) for t in (0, 30, 60, 120)] == [0.3, 0.575429, 0.742484, 0.905265]
    assert cat3(False, 0.8, 0.6, CFG) == pytest.approx(0.72, abs=1e-12)
    assert cat3(True, 1.0, 1.0, CFG) == 0.5
    # feeds not configured read 1.0 (no order book, no DVOL)
    assert cat3(None, None, None, CFG) == 1.0
    assert cat4(None, None, CFG) == 1.0
    with pytest.raises(ConfigError, match="mc_status 'AMBER'"):
        cat2("AMBER", 0, CFG)


def test_combination_and_the_collapse_penalty() -> None:
    fresh_orange = sensors(Readings(mc_status="ORANGE"), CFG)
    assert round(combine(fresh_orange, CFG), 5) == 0.48670  # Cat5(0) x 0.5: one degraded sensor, no penalty
    two = sensors(Readings(mc_status="ORANGE", ob_stale=True), CFG)
    assert combine(two, CFG) == pytest.approx(0.9734030064231342 * 0.5 * 0.5 * 0.5, abs=1e-12)


def test_recovery_and_postures() -> None:
    assert recover(0.5, 1.0, 1, CFG) == pytest.approx(0.51, abs=1e-12)
    assert recover(0.5, 1.0, 5, CFG) == pytest.approx(0.55, abs=1e-12)
    assert recover(0.9, 0.2, 1, CFG) == 0.2
    assert [posture_of(x, CFG) for x in (0.95, 0.90, 0.8, 0.75, 0.6, 0.5, 0.49)] == [
        "APEX", "APEX", "STALKER", "STALKER", "TURTLE", "TURTLE", "HIBERNATE"]  # fmt: skip
    t = drawdown_thresholds()
    assert (round(t["STALKER"], 5), round(t["TURTLE"], 5), round(t["HIBERNATE"], 5)) == (0.04676, 0.08338, 0.12)


def test_orange_with_fresh_data_hibernates_after_two_cycles() -> None:
    stack = SurvivalStack()
    assert stack.step(Readings(), 1).posture == "APEX"
    first = stack.step(Readings(mc_status="ORANGE"), 1)
    assert (first.level, first.posture, round(first.rm, 5)) == ("HIBERNATE", "APEX", 0.48670)
    assert stack.step(Readings(mc_status="ORANGE"), 1).posture == "HIBERNATE"


def test_one_cycle_above_090_does_not_promote_five_do() -> None:
    stack = SurvivalStack(rm=0.8, posture="STALKER")
    # a huge dt makes Rm jump to its target at once (the recovery cap is per minute)
    levels = [stack.step(Readings(), 100).posture for _ in range(5)]
    assert levels == ["STALKER", "STALKER", "STALKER", "STALKER", "APEX"]
    stack = SurvivalStack(rm=0.8, posture="STALKER")
    stack.step(Readings(), 100)
    assert stack.step(Readings(drawdown=0.06), 100).posture == "STALKER"  # back down: the count restarts
    assert [stack.step(Readings(), 100).posture for _ in range(5)][-1] == "APEX"


def test_a_stopped_heartbeat_hibernates_at_once() -> None:
    stack = SurvivalStack()
    stack.step(Readings(), 1)
    dead = stack.step(Readings(heartbeat_age_s=31), 1)
    assert (dead.rm, dead.posture, dead.changed) == (0.0, "HIBERNATE", True)
    assert stack.step(Readings(store_nodes=0), 1).posture == "HIBERNATE"


def test_config_refuses_disordered_thresholds() -> None:
    with pytest.raises(ConfigError, match="posture thresholds"):
        SurvivalConfig(stalker=0.95)
