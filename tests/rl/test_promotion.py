"""Promotion rules as a scenario table (each rule failing alone, the boundaries, no champion) and
``promote``: the champion swap in one transaction, decisions recorded with every reason."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.home import Home
from vibe_quant.rl.promotion import PromotionRules, decide, promote
from vibe_quant.rl.registry import (
    EvaluationReport,
    Metrics,
    ModelMeta,
    champion,
    decisions,
    get,
    register,
    set_stage,
)
from vibe_quant.state.db import connect

RULES = (
    "net_return_gain", "max_drawdown", "positive_net_return", "turnover", "single_trade_dominance", "window_stability",
)  # fmt: skip
# The champion, and a candidate that passes every rule against it with room to spare.
CHAMPION = {
    "net_return": 0.10, "max_drawdown": 0.10, "sharpe": 1.0, "sortino": 1.4, "turnover": 80.0, "cvar": 0.03,
    "n_trades": 40, "largest_trade_share": 0.25, "window_returns": (0.04, -0.01, 0.05),
}  # fmt: skip
CANDIDATE = {
    "net_return": 0.20, "max_drawdown": 0.09, "sharpe": 1.5, "sortino": 2.0, "turnover": 100.0, "cvar": 0.02,
    "n_trades": 50, "largest_trade_share": 0.20, "window_returns": (0.05, 0.03, -0.01, 0.04),
}  # fmt: skip
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def failed(candidate: dict, champion_metrics: dict | None, rules: PromotionRules | None = None) -> list[str]:
    return [c.rule for c in decide(candidate, champion_metrics, rules).checks if not c.passed]


def test_the_baseline_passes_every_rule() -> None:
    decision = decide(CANDIDATE, CHAMPION, PromotionRules())

    assert decision.promote
    assert [c.rule for c in decision.checks] == list(RULES)
    assert all(c.passed for c in decision.checks)
    assert decision.failed == ()


# One row per rule: the baseline with only that rule's figure moved past its bound.
@pytest.mark.parametrize(
    ("rule", "changes", "champion_changes"),
    [
        ("net_return_gain", {"net_return": 0.1499}, {}),  # +4.99 points over the champion's 10%
        ("net_return_gain", {"net_return": 0.10}, {}),  # level with the champion
        ("max_drawdown", {"max_drawdown": 0.1101}, {}),  # champion 0.10 x 1.10 = 0.11
        ("positive_net_return", {"net_return": 0.0}, {"net_return": -0.10}),  # +10 points over a losing champion
        ("positive_net_return", {"net_return": -0.04}, {"net_return": -0.20}),
        ("turnover", {"turnover": 0.99}, {}),
        ("turnover", {"turnover": 500.01}, {}),
        ("single_trade_dominance", {"largest_trade_share": 0.5001}, {}),
        ("window_stability", {"window_returns": (0.20, -0.01, -0.02, -0.03)}, {}),  # 1 of 4 positive
        ("window_stability", {"window_returns": (0.05, 0.0, 0.0)}, {}),  # a flat window is not positive
        ("window_stability", {"window_returns": (0.20,)}, {}),  # one window: too few
        ("window_stability", {"window_returns": ()}, {}),
    ],
)
def test_each_rule_fails_alone(rule: str, changes: dict, champion_changes: dict) -> None:
    decision = decide({**CANDIDATE, **changes}, {**CHAMPION, **champion_changes}, PromotionRules())

    assert not decision.promote
    assert [c.rule for c in decision.failed] == [rule]


# Exactly on a bound passes (within 1e-12: 0.10 + 0.05 is 0.15000000000000002 in floats).
@pytest.mark.parametrize(
    "changes",
    [
        {"net_return": 0.15},  # exactly +5 points
        {"max_drawdown": 0.11},  # exactly champion x 1.10
        {"turnover": 1.0},
        {"turnover": 500.0},
        {"largest_trade_share": 0.5},
        {"window_returns": (0.01, -0.01)},  # exactly half positive, exactly two windows
        {"window_returns": (0.01, 0.02)},
    ],
)
def test_a_figure_on_its_bound_passes(changes: dict) -> None:
    decision = decide({**CANDIDATE, **changes}, CHAMPION, PromotionRules())

    assert decision.promote, decision.failed


def test_the_checks_carry_value_threshold_and_message() -> None:
    checks = {c.rule: c for c in decide({**CANDIDATE, "max_drawdown": 0.12}, CHAMPION, PromotionRules()).checks}

    gain = checks["net_return_gain"]
    assert (gain.passed, gain.value, gain.threshold) == (True, pytest.approx(0.10), 0.05)
    assert gain.message == "net return +0.2000 is +0.1000 against the champion's +0.1000: at least the required +0.0500"
    dd = checks["max_drawdown"]
    assert (dd.passed, dd.value, dd.threshold) == (False, 0.12, pytest.approx(0.11))
    assert dd.message == "max drawdown 0.1200 above 0.1100 (the champion's 0.1000 + 10%)"
    assert checks["window_stability"].value == 0.75
    assert checks["window_stability"].message == "3 of 4 windows positive (75%; at least 50% needed)"


def test_no_champion_reports_the_performance_rules_passed() -> None:
    decision = decide({**CANDIDATE, "net_return": 0.01, "max_drawdown": 0.9}, None, PromotionRules())

    assert decision.promote
    first_two = decision.checks[:2]
    assert [(c.rule, c.passed, c.value) for c in first_two] == [
        ("net_return_gain", True, None), ("max_drawdown", True, None),
    ]  # fmt: skip
    assert all(c.message.startswith("no champion") for c in first_two)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"net_return": 0.0}, "positive_net_return"),
        ({"turnover": 0.0, "n_trades": 0}, "turnover"),
        ({"largest_trade_share": 0.9}, "single_trade_dominance"),
        ({"window_returns": (0.3,)}, "window_stability"),
    ],
)
def test_no_champion_still_applies_the_sanity_checks(changes: dict, rule: str) -> None:
    assert failed({**CANDIDATE, **changes}, None) == [rule]


def test_rules_are_configurable() -> None:
    strict = PromotionRules.parse({"min_net_return_gain": 0.15, "max_turnover": 50.0, "min_windows": 5})

    assert failed(CANDIDATE, CHAMPION, strict) == ["net_return_gain", "turnover", "window_stability"]
    assert PromotionRules() == PromotionRules.parse({})
    assert (PromotionRules().min_net_return_gain, PromotionRules().max_drawdown_worsening) == (0.05, 0.10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_turnover": 10.0, "max_turnover": 5.0}, "min_turnover 10.0 is above max_turnover 5.0"),
        ({"max_largest_trade_share": 1.5}, r"Expected `float` <= 1.0 - at `\$.max_largest_trade_share`"),
        ({"min_windows": 0}, r"Expected `int` >= 1 - at `\$.min_windows`"),
        ({"min_net_return_gian": 0.1}, "Object contains unknown field `min_net_return_gian`"),
    ],
)
def test_bad_rules_are_refused(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PromotionRules.parse(data)


def test_bad_metrics_are_refused() -> None:
    missing = {k: v for k, v in CANDIDATE.items() if k != "cvar"}

    with pytest.raises(ConfigError, match=r"metrics: Object missing required field `cvar`"):
        decide(missing, None)
    with pytest.raises(ConfigError, match="metric sharpe must be a finite number, got inf"):
        decide(CANDIDATE, {**CHAMPION, "sharpe": float("inf")})


# -- promote: the registry side -------------------------------------------------------------------


def register_model(home: Home, tmp_path: Path, name: str, metrics: dict, timeframe: str = "5m") -> str:
    policy = tmp_path / f"{name}.zip"
    policy.write_bytes(name.encode())
    meta = ModelMeta(
        name=name, algo="ppo", symbol="BTCUSDT", timeframe=timeframe, training_data_hash="abc", feature_version="f1",
        hyperparameters={"n_steps": 2048}, env_config={"fee_bps": 5}, evaluation=EvaluationReport(Metrics(**metrics)),
    )  # fmt: skip
    return register(home, {"policy.zip": policy}, meta).model_id


def stages(home: Home, *model_ids: str) -> list[str]:
    return [get(home, m).stage for m in model_ids]


def test_the_first_model_becomes_champion_on_the_sanity_checks(home: Home, tmp_path: Path) -> None:
    first = register_model(home, tmp_path, "first", CHAMPION)

    result = promote(home, first[:6], now=T0)

    assert result.decision.promote
    assert (result.model.stage, result.previous_champion) == ("champion", None)
    assert champion(home, "BTCUSDT", "5m") == get(home, first)
    [row] = decisions(home, first)
    assert (row.decision, row.champion_id, row.decided_at) == ("promoted", None, "2026-05-01T12:00:00+00:00")
    assert row.reasons == result.decision.checks
    assert [r.rule for r in row.reasons] == list(RULES)


def test_a_better_candidate_replaces_the_champion(home: Home, tmp_path: Path) -> None:
    old = register_model(home, tmp_path, "old", CHAMPION)
    promote(home, old)
    new = register_model(home, tmp_path, "new", CANDIDATE)
    set_stage(home, new, "staging", "ready")

    result = promote(home, new, now=T0)

    assert (result.decision.promote, result.previous_champion) == (True, old)
    assert stages(home, old, new) == ["retired", "champion"]
    assert champion(home, "BTCUSDT", "5m").model_id == new
    promoted = decisions(home, new)[-1]
    assert (promoted.decision, promoted.champion_id) == ("promoted", old)  # measured against the old champion
    assert promoted.reasons[0].value == pytest.approx(0.10)
    retired = decisions(home, old)[-1]
    assert (retired.decision, retired.champion_id) == ("retired", old)
    assert [(r.rule, r.message) for r in retired.reasons] == [("replaced", f"replaced as champion by {new}")]
    assert [d.decision for d in decisions(home)] == ["promoted", "staged", "promoted", "retired"]


def test_a_rejected_candidate_changes_no_stage(home: Home, tmp_path: Path) -> None:
    old = register_model(home, tmp_path, "old", CHAMPION)
    promote(home, old)
    weak = register_model(home, tmp_path, "weak", {**CANDIDATE, "net_return": 0.12, "turnover": 900.0})

    result = promote(home, weak)

    assert not result.decision.promote
    assert result.model == get(home, weak)
    assert stages(home, old, weak) == ["champion", "candidate"]
    rejected = decisions(home, weak)
    assert [(d.decision, d.champion_id) for d in rejected] == [("rejected", old)]
    assert [r.rule for r in rejected[0].reasons if not r.passed] == ["net_return_gain", "turnover"]
    assert len(rejected[0].reasons) == len(RULES)  # every reason, passed or not


def test_the_swap_is_one_transaction(home: Home, tmp_path: Path) -> None:
    old = register_model(home, tmp_path, "old", CHAMPION)
    promote(home, old)
    new = register_model(home, tmp_path, "new", CANDIDATE)
    conn = connect(home.db_path)  # the crowning fails after the old champion was retired
    conn.execute(
        "CREATE TRIGGER refuse_crown BEFORE UPDATE OF stage ON models WHEN NEW.stage = 'champion' "
        "BEGIN SELECT RAISE(ABORT, 'crowning refused'); END"
    )
    conn.close()
    before = decisions(home)

    with pytest.raises(sqlite3.IntegrityError, match="crowning refused"):
        promote(home, new)

    assert stages(home, old, new) == ["champion", "candidate"]  # the retirement rolled back too
    assert decisions(home) == before


def test_champions_are_per_timeframe(home: Home, tmp_path: Path) -> None:
    five = register_model(home, tmp_path, "five", CHAMPION)
    hour = register_model(home, tmp_path, "hour", CHAMPION, timeframe="1h")

    assert promote(home, five).decision.promote
    assert promote(home, hour).decision.promote  # no 1h champion yet: nothing to beat

    assert (champion(home, "BTCUSDT", "5m").model_id, champion(home, "BTCUSDT", "1h").model_id) == (five, hour)
    assert champion(home, "ETHUSDT", "5m") is None


def test_only_candidates_and_staging_models_are_promoted(home: Home, tmp_path: Path) -> None:
    model = register_model(home, tmp_path, "m", CANDIDATE)
    promote(home, model)

    with pytest.raises(UserError, match=f"model {model} is champion: only a candidate or a staging model"):
        promote(home, model)
    set_stage(home, model, "retired", "withdrawn")
    with pytest.raises(UserError, match=f"model {model} is retired"):
        promote(home, model)
    assert champion(home, "BTCUSDT", "5m") is None
