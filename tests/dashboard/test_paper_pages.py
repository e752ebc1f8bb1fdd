"""The Paper Trading and Live Trading pages under AppTest on a home with a real finished replay session (a
validation run of ema_trend_atr on FILUSDT 15m, 2023-08-01..08, replayed with ``vq paper start``, the run
promoted to paper with an override): the page shows the session's stored figures, commands are queued only
after a confirmation, the start form starts ``vq paper start`` as a job, the comparison finds exact parity,
and the Live page lists the promotion and the gates to live that still fail (docs/specs.md#promotion-gates).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import linked_home, vq
from tests.dashboard.test_results_pages import values
from vibe_quant.dashboard.pages.live import FAIL, PASS
from vibe_quant.home import Home
from vibe_quant.jobs import kill_job, list_jobs
from vibe_quant.paper import promote, store
from vibe_quant.paper.divergence import DivergenceThresholds
from vibe_quant.state import StateManager

RUN = ["backtest", "run", "--strategy", "ema_trend_atr", "--symbols", "FILUSDT-PERP", "--timeframe", "15m",
       "--start", "2023-08-01", "--end", "2023-08-08", "--json"]  # fmt: skip
STRATEGY = "EmaTrendAtr-001"


@pytest.fixture(scope="module")
def session_home(tmp_path_factory: pytest.TempPathFactory, aug_2023_catalog: Path) -> Home:
    """Read only: validation run 1, replay session 1 of it (finished), run 1 promoted to paper (overridden)."""
    home = linked_home(tmp_path_factory.mktemp("paper_dash") / "home", aug_2023_catalog)
    for args in (RUN, ["paper", "start", "--from-run", "1", "--json"],
                 ["promote", "1", "--to", "paper", "--why", "dashboard test", "--override", "no sweep here"]):  # fmt: skip
        code, out, err = vq(["--home", str(home.root), "-q", *args])
        assert code == 0, (args, out, err)
    return home


@pytest.fixture
def read_home(session_home: Home, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("VQ_HOME", str(session_home.root))
    return session_home


@pytest.fixture
def running_home(session_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A private copy whose session 1 looks running (status running, this process's pid)."""
    root = tmp_path / "home"
    shutil.copytree(session_home.root, root, symlinks=True)
    monkeypatch.setenv("VQ_HOME", str(root))
    home = Home(root)
    with StateManager(home.db_path) as db:
        store.update_session(db, 1, status="running", pid=os.getpid())
    return home


def _session(home: Home) -> dict:
    with StateManager(home.db_path) as db:
        return store.get_session(db, 1)


def _commands(home: Home) -> list[dict]:
    with StateManager(home.db_path) as db:
        return store.commands(db, 1)


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_paper_page_shows_the_sessions_stored_figures(read_home, page) -> None:
    at = page("paper")
    row = _session(read_home)
    snap = row["snapshot"]
    assert row["status"] == "finished"
    assert at.selectbox(key="paper_session").value == 1
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["equity (USDT)"] == f"{snap['equity']:,.2f}"
    assert metrics["net PnL (USDT)"] == f"{snap['equity'] - snap['starting_balance']:+,.2f}"
    assert metrics["fees burned"] == f"{snap['costs']['fees']:,.2f}"
    assert metrics["fills"] == f"{snap['costs']['fills']:,}" != "0"
    assert metrics["bars"] == "768/768"
    assert any(m.value.startswith("feed time **2023-08-09 00:00:00 UTC**") for m in at.markdown)  # the last bar's close
    equity = values(json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"])
    with StateManager(read_home.db_path) as db:
        _, stored = store.equity_series(db, 1)
        fills = store.fill_records(db, 1)
    assert equity[-1] == pytest.approx(snap["equity"], rel=1e-12)
    assert len(equity) == len(stored) == 768
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    strategies = next(t for cols, t in tables.items() if cols[:2] == ("strategy", "state"))
    assert strategies.to_dict("records") == [{"strategy": STRATEGY, "state": "ACTIVE", "reason": "", "since": ""}]
    trades = next(t for cols, t in tables.items() if "reference_price" in cols)
    assert len(trades) == len(fills) == snap["costs"]["fills"]
    assert trades["price"].tolist() == [f["price"] for f in reversed(fills)]
    assert "Session 1 is finished: commands go to a running session only." in [c.value for c in at.caption]


def test_halt_and_close_all_are_queued_only_after_a_confirmation(running_home, page) -> None:
    at = page("paper")
    assert any("**running**" in m.value for m in at.markdown)
    at.selectbox(key="paper-target").set_value(STRATEGY)
    at.text_input(key="paper-reason").set_value("too volatile")
    _button(at, "Halt").click().run()
    assert _commands(running_home) == []  # one click arms it
    assert any(f"HALT {STRATEGY} of session 1" in w.value for w in at.warning)
    _button(at, "Yes, halt").click().run()
    assert not at.exception
    (halt,) = _commands(running_home)
    assert (halt["command"], halt["target"], halt["reason"], halt["applied_at"]) == (
        "halt",
        STRATEGY,
        "too volatile",
        None,
    )
    assert at.success[0].value.startswith(f"HALT queued for session 1 ({STRATEGY}) as command {halt['id']}")

    at.selectbox(key="paper-target").set_value("(all strategies)")
    at.text_input(key="paper-reason").set_value("")
    _button(at, "Close all").click().run()
    assert len(_commands(running_home)) == 1
    _button(at, "Cancel").click().run()
    _button(at, "Close all").click().run()
    _button(at, "Yes, close all").click().run()
    commands = _commands(running_home)
    assert [(c["command"], c["target"], c["reason"]) for c in commands] == [("halt", STRATEGY, "too volatile"),
                                                                         ("close_all", None, None)]  # fmt: skip
    journal = next(d.value for d in at.dataframe if "applied at bar" in d.value.columns)
    assert journal["command"].tolist() == ["halt", "close_all"]
    assert journal["result"].tolist() == ["pending", "pending"]


def test_the_start_form_starts_vq_paper_start_as_a_job(running_home, page) -> None:
    at = page("paper")
    assert at.selectbox(key="paper_run").value == 1
    assert any(s.value.startswith("promoted to paper by ") for s in at.success)
    at.text_input(key="paper_speed").set_value("600")
    at.number_input(key="paper_every").set_value(30.0)
    _button(at, "Start paper trading").click().run()
    assert not at.exception
    jobs = list_jobs(running_home)
    try:
        assert len(jobs) == 1
        assert jobs[0].job_type == "paper"
        assert list(jobs[0].command[-8:]) == ["paper", "start", "--from-run", "1", "--speed", "600", "--checkpoint-every",
                                        "30"]  # fmt: skip
        assert at.success[0].value.startswith(f"job {jobs[0].id} started: vq paper start --from-run 1")
    finally:
        for job in list_jobs(running_home, active_only=True):
            kill_job(running_home, job.id, grace_s=2)


def test_a_bad_speed_is_refused_before_any_job_starts(running_home, page) -> None:
    at = page("paper")
    at.text_input(key="paper_speed").set_value("fast")
    _button(at, "Start paper trading").click().run()
    assert "--speed 'fast': a number" in at.error[0].value
    assert list_jobs(running_home) == []


def test_the_comparison_with_the_validation_backtest_is_exact(read_home, page) -> None:
    at = page("paper")
    _button(at, "Compare with the validation backtest").click().run()
    assert not at.exception
    assert any(s.value.startswith("parity: exact (fills equal, funding equal, liquidations equal, equity equal)")
               for s in at.success)  # fmt: skip
    totals = next(d.value for d in at.dataframe if "figure" in d.value.columns).set_index("figure")
    fills = _session(read_home)["snapshot"]["costs"]["fills"]
    assert totals.loc["fills", "paper"] == totals.loc["fills", "backtest"] == fills
    assert (totals["diff"] == 0).all()
    pairs = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert set(pairs["status"]) == {"matched"}
    assert len(pairs) == totals.loc["trades", "paper"]


def test_the_live_page_lists_the_promotion_and_the_gates_still_failing(read_home, page) -> None:
    at = page("live")
    assert "No testnet or live session yet" in at.info[0].value
    records = next(d.value for d in at.dataframe if "stage" in d.value.columns)
    assert records[["run", "stage", "why", "override"]].to_dict("records") == [
        {"run": 1, "stage": "paper", "why": "dashboard test", "override": "no sweep here"}]  # fmt: skip
    with StateManager(read_home.db_path) as db:
        _, failures = promote.live_gate(db, 1, promote.MIN_PAPER_DAYS, lambda sid: None, DivergenceThresholds())
    assert len(failures) == 2  # no testnet days; no testnet session (the replay earns none)
    checklist = next(m.value for m in at.markdown if "promoted to paper by" in m.value).splitlines()
    assert checklist[0].startswith(f"- {PASS} promoted to paper by ")
    assert checklist[1:] == [f"- {FAIL} {f}" for f in failures]


def test_a_testnet_session_shows_its_live_safety_limits(running_home, page) -> None:
    with StateManager(running_home.db_path) as db:
        row = store.get_session(db, 1)
        limits = {"applied": {"leverage": 3.0, "risk.portfolio_level.cooldown_after_halt_hours": None},
                  "tightened": [], "loosened": [], "capped": [{"field": "leverage", "limit": 3.0, "value": 10.0}],
                  "reason": None}  # fmt: skip
        sid = store.create_session(db, "testnet", row["config"], row["feed"], limits=limits, from_run=1)
    at = page("live")
    assert at.selectbox(key="live_session").value == sid
    applied = next(d.value for d in at.dataframe if "traded" in d.value.columns)
    assert applied.to_dict("records") == [{"field": "leverage", "traded": "3.0"},
                                          {"field": "risk.portfolio_level.cooldown_after_halt_hours",
                                           "traded": "null (a manual resume)"}]  # fmt: skip
    capped = next(d.value for d in at.dataframe if "limit" in d.value.columns)
    assert capped.to_dict("records") == [{"field": "leverage", "limit": "3.0", "value": "10.0"}]
    assert "No status yet: the session has not traded a bar." in [i.value for i in at.info]
