"""``vq paper`` end to end in process: start from a validated run, status, compare, and bad input."""

from __future__ import annotations

import json

import pytest


def test_start_from_a_run_then_status_and_compare_show_exact_parity(run_home, cli) -> None:
    home = ["--home", str(run_home.root)]
    code, out = cli([*home, "paper", "start", "--from-run", "1", "--json"])
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "finished"
    assert summary["bars"] == 8 * 96
    assert summary["fills"] > 0

    code, out = cli([*home, "paper", "status", "1", "--json"])
    assert code == 0, out
    status = json.loads(out)
    assert status["liveness"] == "finished"
    assert status["from_run"] == 1
    assert status["snapshot"]["costs"]["fills"] == summary["fills"]

    code, out = cli([*home, "paper", "compare", "1", "--json"])
    assert code == 0, out
    report = json.loads(out)
    assert report["exact"] is True
    assert report["breaches"] == []
    assert report["totals"]["fills"]["paper"] == summary["fills"]

    code, out = cli([*home, "paper", "compare", "1"])
    assert "parity: exact" in out
    code, out = cli([*home, "paper", "list"])
    assert code == 0
    assert "ema_trend_atr" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["paper", "start", "--from-run", "1", "--speed", "0"], "--speed '0': must be > 0"),
        (["paper", "start", "--from-run", "1", "--speed", "fast"], "--speed 'fast': a number"),
        (["paper", "start", "--from-run", "7"], "no backtest run 7"),
        (["paper", "start", "--from-run", "1", "--strategy", "ema_cross"], "do not combine it with --strategy"),
        (["paper", "start", "--from-run", "1", "--start", "2023-08-09", "--end", "2023-08-02"], "is after --end"),
        (["paper", "start", "--feed", "sim"], "--feed 'sim': replay or testnet"),
        (["paper", "status", "9"], "no paper session 9"),
        (["paper", "close-all", "1"], "confirm with --yes"),
    ],
)
def test_bad_input_names_the_flag(run_home, cli, args, message) -> None:
    code, out = cli(["--home", str(run_home.root), *args])
    assert code != 0
    assert message in out


def test_commands_go_only_to_a_running_session(run_home, cli) -> None:
    home = ["--home", str(run_home.root)]
    assert cli([*home, "paper", "start", "--from-run", "1", "--json"])[0] == 0
    code, out = cli([*home, "paper", "halt", "1"])
    assert code != 0
    assert "session 1 is finished: commands go to a running session" in out


def test_detach_runs_the_session_as_a_background_job(run_home, cli) -> None:
    import time

    from vibe_quant.jobs import get_job
    from vibe_quant.paper import store
    from vibe_quant.state import StateManager

    code, out = cli(["--home", str(run_home.root), "paper", "start", "--from-run", "1", "--detach", "--json"])
    assert code == 0, out
    started = json.loads(out.strip().splitlines()[-1])
    deadline = time.monotonic() + 120
    while (job := get_job(run_home, started["job"])).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status == "completed", job
    assert list(job.command[:4]) == ["paper", "start", "--resume", str(started["session"])]
    with StateManager(run_home.db_path) as db:
        row = store.get_session(db, started["session"])
    assert (row["status"], row["job_id"], row["bars_done"]) == ("finished", started["job"], 8 * 96)
