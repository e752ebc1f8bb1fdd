"""Promotion gates (docs/specs.md#promotion-gates): `vq promote` on real backtests of FILUSDT, August 2023."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.paper.divergence import Ledger, compare_ledgers
from vibe_quant.paper.promote import paper_days, promote, promotion
from vibe_quant.state import StateManager

START, END = dt.date(2023, 8, 1), dt.date(2023, 8, 31)
WHY = ["--why", "DSR and PBO passed, validated in August"]


@dataclasses.dataclass(frozen=True)
class Template:
    db: Path
    good: int  # validation run of the point that passed DSR and PBO
    bad: int  # validation run of the point that failed DSR
    sweep: int
    good_point: int
    ledgers: dict


@pytest.fixture(scope="module")
def template(aug_2023_catalog: Path, specs, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Two real validation runs, and a screening sweep whose points name them as their validation runs."""
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.screening.pipeline import SweepSpec, create_screening_run

    home = Home(tmp_path_factory.mktemp("promote") / "home").ensure()
    home.catalog.rmdir()
    home.catalog.symlink_to(aug_2023_catalog, target_is_directory=True)
    runs, ledgers = {}, {}
    for name, params in {"good": {"fast": 10, "slow": 40}, "bad": {"fast": 20, "slow": 100}}.items():
        cfg = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="15m", start=START, end=END,
                             params=params, mode="validation", leverage=3)  # fmt: skip
        runs[name], result, _ = execute(home, plan_run(cfg), specs)
        ledgers[name] = Ledger.from_result(result)
    base = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="15m", start=START, end=END)
    with StateManager(home.db_path) as db:
        sweep = create_screening_run(db, base, SweepSpec(overrides={"fast": [10, 20], "slow": [40, 100]}))
        db.update("backtest_runs", sweep, {"status": "completed",
                                           "overfitting": {"filters": ["dsr", "pbo"], "created_at": "2024-01-01"}})  # fmt: skip
        points = {}
        for name, passed in (("good", True), ("bad", False)):
            verdicts = {"dsr": {"passed": passed, "reason": None if passed else "DSR 0.41 <= 0.95", "dsr": 0.97 if passed else 0.41},
                        "pbo": {"passed": True, "reason": None}}  # fmt: skip
            points[name] = db.insert("sweep_results", {"run_id": sweep, "parameters": {"fast": 10}, "point_key": name,
                                                       "overfitting": verdicts, "overfitting_passed": passed,
                                                       "execution_sensitive": False, "validation_run_id": runs[name]})  # fmt: skip
    return Template(home.db_path, runs["good"], runs["bad"], sweep, points["good"], ledgers)


@pytest.fixture
def home(template: Template, tmp_path: Path) -> Home:
    """A fresh copy of the template's state database (tests write promotions and sessions)."""
    home = Home(tmp_path / "home").ensure()
    shutil.copy(template.db, home.db_path)
    return home


def rows(home: Home) -> list[dict]:
    with StateManager(home.db_path) as db:
        return db.find("promotions")


def test_a_run_that_passed_the_filters_is_promoted_to_paper_with_its_evidence(cli, home, template) -> None:
    code, out = cli(["--home", str(home.root), "promote", str(template.good), "--to", "paper", *WHY, "--who", "alice"])
    assert code == 0, out
    assert f"promoted run {template.good} to paper" in out
    row = promotion(home, template.good, "paper")
    assert row == rows(home)[0]
    assert (row["who"], row["why"], row["override"]) == ("alice", "DSR and PBO passed, validated in August", None)
    [point] = row["evidence"]["points"]
    assert point["passed"]
    assert (point["sweep_run"], point["point"]) == (template.sweep, template.good_point)
    assert set(point["filters"]) == {"dsr", "pbo"}
    assert row["evidence"]["failures"] == []
    assert promotion(home.db_path, template.good, "live") is None
    code, out = cli(["--home", str(home.root), "promote", "list"])
    assert code == 0
    assert "alice" in out
    assert f"point {template.good_point} of sweep {template.sweep}" in out
    assert "alice" in cli(["--home", str(home.root), "promote", str(template.good), "--list"])[1]
    assert "no promotions yet" in cli(["--home", str(home.root), "promote", str(template.bad), "--list"])[1]


def test_a_failed_filter_refuses_paper_unless_overridden(cli, home, template) -> None:
    args = ["--home", str(home.root), "promote", str(template.bad), "--to", "paper", *WHY]
    code, out = cli(args)
    assert code == 2
    assert f"run {template.bad} cannot be promoted to paper" in out
    assert "dsr failed (DSR 0.41 <= 0.95)" in out
    assert "overfitting_passed is false" in out
    assert '--override "REASON"' in out
    assert rows(home) == []
    code, out = cli([*args, "--override", "regime changed since; paper will tell"])
    assert code == 0, out
    assert "gate overridden: regime changed since; paper will tell" in out
    [row] = rows(home)
    assert row["override"] == "regime changed since; paper will tell"
    assert "dsr failed (DSR 0.41 <= 0.95)" in row["evidence"]["failures"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"validation_run_id": None}, "is not the validation run of any screening point"),
        ({"execution_sensitive": True}, "flagged execution-sensitive"),
        ({"overfitting": {"dsr": {"passed": True}}}, "pbo: no verdict"),
    ],
)
def test_paper_needs_a_linked_point_with_every_verdict_and_no_execution_sensitivity(
    home, template, change, message
) -> None:
    with StateManager(home.db_path) as db:
        db.update("sweep_results", template.good_point, change)
    with pytest.raises(UserError, match=message):
        promote(home, template.good, "paper", "why")


def test_bad_requests_name_the_flag(cli, home, template) -> None:
    base = ["--home", str(home.root), "promote", str(template.good)]
    assert cli([*base, *WHY])[1].count("--to: choose paper or live") == 1
    assert "--why: say why" in cli([*base, "--to", "paper"])[1]
    code, out = cli([*base, "--to", "prod", *WHY])
    assert code == 2
    assert "--to 'prod': choose paper or live" in out
    code, out = cli(["--home", str(home.root), "promote", str(template.sweep), "--to", "paper", *WHY])
    assert code == 2
    assert "is a screening sweep" in out
    with pytest.raises(UserError, match="--min-paper-days must be >= 0, got -1"):
        promote(home, template.good, "live", "why", min_paper_days=-1)


def add_session(home: Home, run: int, mode: str, status: str, bars: int) -> int:
    with StateManager(home.db_path) as db:
        return db.insert("paper_sessions", {"mode": mode, "config": {"timeframe": "15m"}, "from_run": run,
                                            "status": status, "bars_done": bars})  # fmt: skip


def test_paper_days_count_testnet_sessions_that_ran(home, template) -> None:
    add_session(home, template.good, "testnet", "finished", 96 * 10)  # 10 days of 15m bars
    add_session(home, template.good, "testnet", "running", 48)  # half a day
    add_session(home, template.good, "replay", "finished", 96 * 30)  # a replay earns none
    add_session(home, template.good, "testnet", "crashed", 96 * 30)
    add_session(home, template.bad, "testnet", "finished", 96 * 30)  # another run's
    with StateManager(home.db_path) as db:
        days, sessions = paper_days(db, template.good)
    assert days == pytest.approx(10.5)
    assert [s["counted"] for s in sessions] == [True, True, False, False]
    assert [s["days"] for s in sessions] == pytest.approx([10, 0.5, 30, 30])


def test_live_needs_paper_days_and_a_small_divergence(cli, home, template) -> None:
    live = ["--home", str(home.root), "promote", str(template.good), "--to", "live", *WHY]
    code, out = cli([*live, "--override", "skip paper"])
    assert code == 2
    assert f"run {template.good} was never promoted to paper" in out
    promote(home, template.good, "paper", "passed", who="alice")
    code, out = cli(live)
    assert code == 2
    assert "0.00 days of paper trading (0 counted testnet session(s)), fewer than --min-paper-days 14" in out
    assert "no testnet paper session" in out
    session = add_session(home, template.good, "testnet", "finished", 96 * 15)
    good = template.ledgers["good"]
    same = compare_ledgers(good, good)
    calls = []

    def divergence(session_id: int):
        calls.append(session_id)
        return report

    report = compare_ledgers(template.ledgers["bad"], good)  # another parameter set: other trades
    with pytest.raises(UserError) as err:
        promote(home, template.good, "live", "15 days on testnet", divergence=divergence)
    assert calls == [session]
    message = str(err.value)
    assert (
        f"session {session}: trade count: paper {len(template.ledgers['bad'].trades)}, backtest {len(good.trades)}"
        in message
    )
    assert f"session {session}: net PnL differs by" in message
    assert "days of paper trading" not in message
    report = same
    row = promote(home, template.good, "live", "15 days on testnet", who="bob", divergence=divergence)
    assert (row["stage"], row["who"], row["override"]) == ("live", "bob", None)
    evidence = row["evidence"]
    assert evidence["paper_days"] == pytest.approx(15)
    assert evidence["paper_promotion"] == promotion(home, template.good, "paper")["id"]
    [s] = evidence["sessions"]
    assert s["breaches"] == []
    assert s["divergence"]["totals"]["trades"] == {"paper": len(good.trades), "backtest": len(good.trades), "diff": 0}
    assert promotion(home, template.good, "live")["id"] == row["id"]
