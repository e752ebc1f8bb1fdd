"""Replay sessions: operator commands, halt-and-alert on a strategy error, checkpoints, restarts
(in process), and a session killed with -9 at random points (real processes)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from tests.paper.conftest import day
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.home import Home
from vibe_quant.paper import store
from vibe_quant.paper.service import create_replay, run_replay
from vibe_quant.paper.session import VERIFIED, Pacing
from vibe_quant.risk import gate
from vibe_quant.state import StateManager
from vibe_quant.strategy.base import PerpStrategy, PerpStrategyConfig

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExplodingConfig(PerpStrategyConfig, frozen=True, kw_only=True):
    enter_at: int = 10
    fail_at: int = 20


class Exploding(PerpStrategy):
    """Goes long with a bracket at bar `enter_at`, raises at bar `fail_at`."""

    def setup(self) -> None:
        self.i = -1

    def on_bar(self, bar) -> None:
        self.i += 1
        if self.i == self.config.enter_at:
            self.go(bar, 1, 1000.0, stop=0.5, target=0.5)
        if self.i == self.config.fail_at:
            raise ZeroDivisionError("boom in on_bar")


def _session(home: Home, config: BacktestConfig) -> int:
    sid, _ = create_replay(home, config, None)
    return sid


def _db(home: Home) -> StateManager:
    return StateManager(home.db_path)


def _events(home: Home, sid: int) -> list[dict]:
    path = store.events_path(home.logs, sid)
    return [json.loads(line) for line in path.read_text().splitlines()]


TREND = BacktestConfig(strategy="ema_trend_atr", symbols=("FILUSDT",), timeframe="15m", start=day(1), end=day(20),
                       leverage=10)  # fmt: skip


def test_operator_commands_apply_at_bar_boundaries_and_a_restart_reproduces_them(paper_home: Home) -> None:
    sid = _session(paper_home, TREND)
    plan_at = {300: ("halt", "not today"), 500: ("resume", None), 700: ("close_all", "kill switch drill")}
    sent = set()

    def operator(done: int, total: int) -> None:
        for bar, (command, reason) in plan_at.items():
            if done >= bar and bar not in sent:
                sent.add(bar)
                with _db(paper_home) as db:
                    store.add_command(db, sid, command, reason=reason, who="test")

    pacing = Pacing(speed=None, checkpoint_s=3600, flush_s=0.0, poll_s=0.0)
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.paper.loops import run_async
    from vibe_quant.paper.session import run_session

    with _db(paper_home) as db:
        plan = store.session_plan(store.get_session(db, sid))
    data = load_market_data(paper_home.catalog, plan, InstrumentSpecs())
    first = run_async(lambda: run_session(paper_home, sid, plan, data, pacing, on_progress=operator))
    assert first.status == "finished"

    with _db(paper_home) as db:
        journal = store.applied_commands(db, sid)
        final = store.last_checkpoint(db, sid)
        fills_before = db.count("paper_fills", session_id=sid)
    # sent while the session flushed after bar N, applied at the next boundary (N + 1 bars done)
    assert [(c["command"], c["applied_bar"]) for c in journal] == [("halt", 301), ("resume", 501), ("close_all", 701)]
    assert journal[2]["result"].startswith("kill switch")
    types = [e["type"] for e in _events(paper_home, sid)]
    assert types.count("STRATEGY_HALTED") == 1
    assert types.count("STRATEGY_RESUMED") == 1
    assert types.count("KILL_SWITCH") == 1
    state = final["state"]
    assert state["positions"] == []
    assert state["open_orders"] == []
    assert {s["state"] for s in state["strategies"].values()} == {"HALTED"}
    # no entry while halted (an entry fills a bar after its signal), none after the kill switch
    ts = [b.ts_init for b in data.bars["FILUSDT"]]
    entries = [f for f in first.result.recorder.fills if f.reason == "entry"]
    assert any(f.ts_ns <= ts[301] for f in entries)
    assert not [f for f in entries if ts[301] < f.ts_ns <= ts[501]]
    assert any(ts[501] < f.ts_ns <= ts[701] for f in entries)  # it traded again after the resume
    assert not [f for f in entries if f.ts_ns > ts[701]]

    # a restart replays the journal at the same bars and reproduces the final checkpoint
    again = run_replay(paper_home, sid, Pacing(speed=None), resume=True)
    assert again.caught_up == first.bars_done
    assert again.result.recorder.fills == first.result.recorder.fills
    with _db(paper_home) as db:
        assert db.count("paper_fills", session_id=sid) == fills_before
        after = store.last_checkpoint(db, sid)["state"]
    assert {k: after[k] for k in VERIFIED} == {k: state[k] for k in VERIFIED}
    assert [e["type"] for e in _events(paper_home, sid)].count("KILL_SWITCH") == 1  # not written twice


def test_an_error_in_a_strategy_halts_it_cancels_its_orders_and_alerts(paper_home: Home) -> None:
    alerts: list[dict] = []
    gate.register_alert_hook(alerts.append)
    try:
        config = BacktestConfig(strategy=f"{__name__}:Exploding", symbols=("FILUSDT",), timeframe="15m",
                                start=day(1), end=day(3), leverage=5)  # fmt: skip
        sid = _session(paper_home, config)
        outcome = run_replay(paper_home, sid, Pacing(speed=None))
    finally:
        gate.ALERT_HOOKS.remove(alerts.append)
    errors = [e for e in _events(paper_home, sid) if e["type"] == "STRATEGY_ERROR"]
    assert len(errors) == 1
    assert "ZeroDivisionError: boom in on_bar" in errors[0]["error"]
    assert "raise ZeroDivisionError" in errors[0]["traceback"]
    assert [a["type"] for a in alerts if a["type"] != "FILL"] == ["STRATEGY_HALTED"]
    assert [a["reason"] for a in alerts if a["type"] == "FILL"] == ["entry"]  # trade alerts (kept if enabled)
    with _db(paper_home) as db:
        state = store.last_checkpoint(db, sid)["state"]
    (strategy,) = state["strategies"].values()
    assert strategy["state"] == "HALTED"
    assert strategy["reason"].startswith("error: ZeroDivisionError")
    assert state["open_orders"] == []  # the bracket's stop and take-profit were cancelled
    assert len(state["positions"]) == 1  # the position stays until an operator closes it
    assert outcome.status == "finished"


def _vq(home: Home, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "vibe_quant", "--home", str(home.root), *args], cwd=PROJECT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_running(home: Home, sid: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the session process ended early: {proc.communicate()}")
        if home.db_path.exists():
            with _db(home) as db:
                row = store.get_session(db, sid)
            # this process's session (not the row a killed one left 'running'), past its first bars
            if row["status"] == "running" and row["pid"] == proc.pid and (row["bars_done"] or 0) > 0:
                return
        time.sleep(0.05)
    raise AssertionError("the session did not start")


def test_a_session_killed_with_sigkill_and_restarted_ends_as_an_uninterrupted_one(paper_home: Home) -> None:
    rng = random.Random(int(os.environ.get("VQ_KILL_SEED", "19")))
    killed = _session(paper_home, TREND)
    # speed: the 20 days take ~4 s of wall time, long enough to be killed twice
    args = ["paper", "start", "--speed", "450000", "--checkpoint-every", "0.3", "--json"]
    proc = _vq(paper_home, *args[:2], "--resume", str(killed), *args[2:])
    kills = []
    for _ in range(2):
        _wait_running(paper_home, killed, proc)
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with _db(paper_home) as db:
            kills.append(store.get_session(db, killed)["bars_done"])
        proc = _vq(paper_home, *args[:2], "--resume", str(killed), *args[2:])
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    assert summary["caught_up_bars"] > 0
    assert 0 < kills[0] < summary["bars"]  # really killed mid-way

    clean = _session(paper_home, TREND)
    run_replay(paper_home, clean, Pacing(speed=None))
    with _db(paper_home) as db:
        a, b = store.last_checkpoint(db, killed)["state"], store.last_checkpoint(db, clean)["state"]
        assert {k: a[k] for k in (*VERIFIED, "equity")} == {k: b[k] for k in (*VERIFIED, "equity")}
        assert store.fill_records(db, killed) == store.fill_records(db, clean)
        assert store.equity_series(db, killed) == store.equity_series(db, clean)

    # the event log holds each event once (plus a line per restart)
    def strip(events: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "session"} for e in events if e["type"] != "SESSION_RESTARTED"]

    assert strip(_events(paper_home, killed)) == strip(_events(paper_home, clean))
    # one marker per restart that finished its catch-up (a process killed during its catch-up wrote none)
    markers = [e for e in _events(paper_home, killed) if e["type"] == "SESSION_RESTARTED"]
    assert 1 <= len(markers) <= 2
    assert all(m["bars_replayed"] > 0 for m in markers)


def test_stop_checkpoints_and_a_resume_finishes_as_one_run(paper_home: Home) -> None:
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.paper.loops import run_async
    from vibe_quant.paper.session import run_session

    sid = _session(paper_home, TREND)

    def operator(done: int, total: int) -> None:
        if done >= 400:
            with _db(paper_home) as db:
                if not store.commands(db, sid):
                    store.add_command(db, sid, "stop", who="test")

    with _db(paper_home) as db:
        plan = store.session_plan(store.get_session(db, sid))
    data = load_market_data(paper_home.catalog, plan, InstrumentSpecs())
    pacing = Pacing(speed=None, flush_s=0.0, poll_s=0.0)
    stopped = run_async(lambda: run_session(paper_home, sid, plan, data, pacing, on_progress=operator))
    assert stopped.status == "stopped"
    assert stopped.bars_done == 401
    with _db(paper_home) as db:
        assert store.get_session(db, sid)["status"] == "stopped"
        assert store.last_checkpoint(db, sid)["reason"] == "shutdown"
    finished = run_replay(paper_home, sid, Pacing(speed=None), resume=True)
    assert (finished.status, finished.caught_up) == ("finished", 401)
    whole = run_replay(paper_home, _session(paper_home, TREND), Pacing(speed=None))
    assert finished.result.recorder.fills == whole.result.recorder.fills
