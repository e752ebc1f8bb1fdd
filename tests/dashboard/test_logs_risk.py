"""The Logs and Risk & Controls pages on the session's real runs: filters return the rows the files hold,
and the breaker trips are the ones the run's bundle recorded."""

from __future__ import annotations

import datetime as dt
import json

from vibe_quant.state import StateManager


def _runs(home) -> dict[str, dict]:
    """The two backtests by label, with their event lines read straight from the files."""
    with StateManager(home.db_path) as state:
        rows = state.find("backtest_runs")
    out = {}
    for row in rows:
        events = [
            json.loads(line) for line in (home.logs / "events" / f"{row['run_hash']}.jsonl").read_text().splitlines()
        ]
        summary = json.loads((home.runs / row["run_hash"] / "summary.json").read_text())
        out["halt" if summary.get("risk") else "plain"] = {"row": row, "events": events, "summary": summary}
    return out


def test_the_event_log_filters_return_the_lines_of_the_files(read_only_home, page) -> None:
    runs = _runs(read_only_home)
    halt = runs["halt"]
    at = page("logs")
    assert sorted(at.multiselect(key="logs_runs").options) == sorted(r["row"]["run_hash"] for r in runs.values())
    total = sum(len(r["events"]) for r in runs.values())
    assert at.metric[0].value == str(min(total, 1000))

    at.multiselect(key="logs_runs").set_value([halt["row"]["run_hash"]])
    at.multiselect(key="logs_types").set_value(["FILL"])
    at.number_input(key="logs_limit").set_value(100_000).run()
    fills = [e for e in halt["events"] if e["type"] == "FILL"]
    frame = at.dataframe[0].value
    assert at.metric[0].value == str(len(fills))
    assert len(fills) > 10
    assert list(frame["time"]) == [e["time"] for e in fills]
    assert set(frame["run_id"]) == {halt["row"]["run_hash"]}

    day = dt.date(2023, 8, 14)
    at.date_input(key="logs_from").set_value(day)
    at.date_input(key="logs_to").set_value(day).run()
    assert list(at.dataframe[0].value["time"]) == [e["time"] for e in fills if e["time"].startswith("2023-08-14")]

    at.multiselect(key="logs_types").set_value([])
    at.text_input(key="logs_text").set_value("DRAWDOWN_HALT").run()  # any field, any case
    expected = [
        e for e in halt["events"] if "drawdown_halt" in json.dumps(e).lower() and e["time"].startswith("2023-08-14")
    ]
    frame = at.dataframe[0].value
    assert [json.loads(e) for e in frame["event"]] == expected
    assert "CIRCUIT_BREAKER" in {e["type"] for e in expected}
    assert len(expected) > 1


def test_the_application_log_filters_by_level_and_text(read_only_home, page) -> None:
    lines = [json.loads(line) for line in (read_only_home.logs / "vq.log").read_text().splitlines()]
    at = page("logs")
    assert at.metric[1].value == str(len(lines))
    at.multiselect(key="applog_levels").set_value(["WARNING"]).run()
    warnings = [line for line in lines if line["level"] == "WARNING"]
    frame = at.dataframe[1].value
    assert list(frame["msg"]) == [w["msg"] for w in reversed(warnings)]
    assert any("FILUSDT fundingRate: no file for 2023-08" in m for m in frame["msg"])
    at.multiselect(key="applog_levels").set_value([])
    at.text_input(key="applog_text").set_value("committed").run()
    assert list(at.dataframe[1].value["msg"]) == [line["msg"] for line in reversed(lines) if "committed" in line["msg"]]


def test_the_risk_page_lists_the_breaker_trips_of_the_runs(read_only_home, page) -> None:
    halt = _runs(read_only_home)["halt"]
    (trip,) = halt["summary"]["risk"]["trips"]
    at = page("risk")
    assert not at.error
    sizing = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert list(sizing["name"]) == ["fixed_fractional", "kelly", "atr"]
    trips = next(d.value for d in at.dataframe if "breaker" in d.value.columns)
    assert len(trips) == 1  # the run without a risk config is not listed
    row = trips.iloc[0]
    assert (row["run"], row["run id"], row["strategy"], row["scope"], row["breaker"]) == (
        halt["row"]["id"], halt["row"]["run_hash"], "ema_cross", trip["scope"], "drawdown_halt")  # fmt: skip
    assert trip["scope"] == "EmaCross-001"
    assert row["at (UTC)"] == "2023-08-14 15:00:00" == dt.datetime.fromtimestamp(trip["ts"] / 1e9, dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S")  # fmt: skip
    assert (row["value"], row["limit"], row["until"]) == (f"{trip['value']:.4f}", "0.1500", "rest of run")
    assert row["entries refused"] == halt["summary"]["risk"]["decisions"]["refused_strategy_halted"] > 0
    events = next(d.value for d in at.dataframe if "event" in d.value.columns)
    assert list(events["type"]) == ["CIRCUIT_BREAKER"]
    assert json.loads(events["event"][0])["action"] == "halt: orders cancelled, position closed"
    assert any(w.value == "halted at the end of the run: EmaCross-001" for w in at.warning)
