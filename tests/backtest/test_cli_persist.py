"""``vq backtest run`` end to end on real FILUSDT bars: state-database rows, the result bundle
``runs/<run_id>/``, run identity, ``--json``, ``--run-id`` and the user errors (exit 2)."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import MIRROR, PROJECT, vq
from vibe_quant import code_version
from vibe_quant.backtest.config import parse_config
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.persist import RESULT_COLUMNS, create_run, iso
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.recorder import FillRecord, FundingRecord
from vibe_quant.cli import app, run
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

SYMBOL = "FILUSDT"
RUN = [
    "backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT-PERP", "--timeframe", "15m",
    "--start", "2023-08-01", "--end", "2023-08-14", "--param", "fast=10", "--param", "slow=40",
    "--latency", "retail", "--leverage", "5",
]  # fmt: skip
BARS_15M = 14 * 96  # 2023-08-01..2023-08-14 inclusive
FUNDING_WARNING = (
    "funding not modelled for FILUSDT: no funding rates in the catalog for 2023-08-01..2023-08-14 "
    "(vq data ingest --symbols FILUSDT --datasets fundingRate ...)"
)
NOT_YET = {"deflated_sharpe", "walk_forward_efficiency", "purged_kfold_mean_sharpe"}  # overfitting stage
CLOSED_REASONS = {"signal", "stop_loss", "take_profit", "liquidation"}
TRADE_COLUMNS = [
    "symbol", "direction", "leverage", "entry_time", "exit_time", "entry_price", "exit_price", "quantity",
    "entry_fee", "exit_fee", "funding_fees", "slippage_cost", "gross_pnl", "net_pnl", "roi_percent", "exit_reason",
]  # fmt: skip
EXIT_COLUMNS = {"exit_time", "exit_price", "gross_pnl", "net_pnl", "roi_percent", "exit_reason"}
TABLE_METRICS = (
    "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
    "max_drawdown_duration_days", "volatility_annual", "total_trades", "win_rate", "profit_factor",
    "avg_trade_duration_hours", "gross_pnl", "total_fees", "total_funding", "total_slippage", "net_pnl",
    "final_equity", "liquidations", "fills",
)  # fmt: skip
RUN_LINE = re.compile(r"^run ([0-9a-f]{16}) \(backtest_runs\.id (\d+)\): ", re.MULTILINE)
VARIABLE_TIMING = {"execution_time_seconds"}


def ns(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def run_rows(home: Home) -> list[dict]:
    with StateManager(home.db_path) as state:
        return state.find("backtest_runs")


def rows_of(home: Home, table: str, run_row: int) -> list[dict]:
    with StateManager(home.db_path) as state:
        return state.find(table, run_id=run_row)


def strategy_names(home: Home) -> list[str]:
    with StateManager(home.db_path) as state:
        return [row["name"] for row in state.find("strategies")]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding FILUSDT klines of 2023-08 (no funding rates), ingested once per module."""
    from vibe_quant.data.ingest import IngestRequest, run_ingest

    home = Home(tmp_path_factory.mktemp("ingested") / "home").ensure()
    request = IngestRequest(str(MIRROR), (SYMBOL,), ("klines",), date(2023, 8, 1), date(2023, 9, 1))
    run_ingest(home, request, InstrumentSpecs())
    return home.root


@pytest.fixture
def fresh(ingested: Path, tmp_path: Path) -> Home:
    """A private copy of the ingested home, for a test that writes."""
    return Home(Path(shutil.copytree(ingested, tmp_path / "home")))


@dataclass(frozen=True)
class Completed:
    home: Home
    code: int
    stdout: str
    stderr: str

    @property
    def run_id(self) -> str:
        return RUN_LINE.search(self.stdout).group(1)

    @property
    def run_row(self) -> int:
        return int(RUN_LINE.search(self.stdout).group(2))

    @property
    def bundle(self) -> Path:
        return self.home.runs / self.run_id

    def summary(self) -> dict:
        return json.loads((self.bundle / "summary.json").read_text())


@pytest.fixture(scope="module")
def completed(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> Completed:
    """The reference command, run once in its own copy of the ingested home (read-only below)."""
    home = Home(Path(shutil.copytree(ingested, tmp_path_factory.mktemp("completed") / "home")))
    code, stdout, stderr = vq(["--home", str(home.root), *RUN])
    return Completed(home, code, stdout, stderr)


# -- 1. the command, its row, its results and trades ----------------------------------------------


def test_run_exits_0_and_prints_the_run_id_and_metrics_table(completed: Completed) -> None:
    assert completed.code == 0, completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert len(RUN_LINE.findall(completed.stdout)) == 1
    assert (
        f"run {completed.run_id} (backtest_runs.id {completed.run_row}): ema_cross FILUSDT 15m "
        "2023-08-01..2023-08-14, validation, latency retail, leverage 5x"
    ) in completed.stdout
    metrics = completed.summary()["metrics"]
    lines = {line.split()[0]: line.split()[-1] for line in completed.stdout.splitlines() if line.strip()}
    for key in TABLE_METRICS:
        assert key in lines, key
    assert lines["total_trades"] == f"{metrics['total_trades']:,}"
    assert lines["fills"] == f"{metrics['fills']:,}"
    assert lines["liquidations"] == "0"
    assert lines["final_equity"] == f"{metrics['final_equity']:,.2f}"
    assert f"warning: {FUNDING_WARNING}" in completed.stdout
    assert f"{BARS_15M:,} bars in " in completed.stdout
    assert f"bundle: {completed.bundle}" in completed.stdout


def test_run_row_is_completed_with_identity_and_timestamps(completed: Completed) -> None:
    (row,) = run_rows(completed.home)
    assert row["id"] == completed.run_row
    assert row["status"] == "completed"
    assert row["error_message"] is None
    assert row["pid"] == os.getpid()  # in-process run
    for column in ("started_at", "completed_at", "heartbeat_at"):
        assert row[column] is not None, column
    assert row["started_at"] <= row["heartbeat_at"] <= row["completed_at"]
    assert row["run_hash"] == completed.run_id
    assert row["bundle_path"] == str(completed.bundle)
    assert row["run_mode"] == "validation"
    assert row["latency_preset"] == "retail"
    assert (row["symbols"], row["timeframe"], row["start_date"], row["end_date"]) == (
        [SYMBOL], "15m", "2023-08-01", "2023-08-14",
    )  # fmt: skip
    assert row["parameters"]["params"] == {"fast": 10, "slow": 40}
    assert strategy_names(completed.home) == ["python:ema_cross"]  # a DSL strategy may be named ema_cross too


def test_one_results_row_with_every_metric_but_the_overfitting_ones(completed: Completed) -> None:
    (result,) = rows_of(completed.home, "backtest_results", completed.run_row)
    metrics = completed.summary()["metrics"]
    for column in RESULT_COLUMNS:
        if column in NOT_YET:
            assert result[column] is None, column
        else:
            assert result[column] is not None, column
    for column in set(RESULT_COLUMNS) - NOT_YET - {"max_drawdown_duration_days"}:
        assert result[column] == pytest.approx(metrics[column], rel=1e-12), column
    assert result["max_drawdown_duration_days"] == math.floor(metrics["max_drawdown_duration_days"])
    assert result["starting_balance"] == 100_000.0
    assert result["notes"] == FUNDING_WARNING
    trades = rows_of(completed.home, "trades", completed.run_row)
    closed = [t for t in trades if t["exit_time"] is not None]
    assert result["total_trades"] == len(closed) > 0
    assert result["winning_trades"] + result["losing_trades"] == len(closed)
    assert result["winning_trades"] == sum(t["net_pnl"] > 0 for t in closed)


def test_trade_rows_are_complete_and_add_up_to_the_final_equity(completed: Completed) -> None:
    trades = rows_of(completed.home, "trades", completed.run_row)
    closed = [t for t in trades if t["exit_time"] is not None]
    still_open = [t for t in trades if t["exit_time"] is None]
    summary = completed.summary()
    metrics = summary["metrics"]
    for t in closed:
        assert all(t[c] is not None for c in TRADE_COLUMNS), t
        assert t["exit_reason"] in CLOSED_REASONS, t
        assert t["entry_time"] < t["exit_time"]
        assert t["leverage"] == 5
        assert t["net_pnl"] == pytest.approx(
            t["gross_pnl"] - t["entry_fee"] - t["exit_fee"] - t["funding_fees"] - t["slippage_cost"], abs=1e-6
        )
    assert len(still_open) == metrics["open_trades"] == 1
    (position,) = still_open
    assert all(position[c] is None for c in EXIT_COLUMNS), position
    # The open trade is marked at the last bar's close, read independently from the catalog.
    config = parse_config(summary["config"])
    last_close = load_market_data(completed.home.catalog, plan_run(config), InstrumentSpecs()).bars[SYMBOL][-1].close
    sign = 1 if position["direction"] == "LONG" else -1
    open_pnl = (
        sign * position["quantity"] * (last_close.as_double() - position["entry_price"])
        - position["entry_fee"]
        - position["funding_fees"]
    )
    closed_pnl = sum(t["net_pnl"] for t in closed)
    assert metrics["net_pnl"] == pytest.approx(metrics["final_equity"] - metrics["starting_balance"], abs=1e-6)
    assert closed_pnl + open_pnl == pytest.approx(metrics["net_pnl"], abs=1e-6)
    assert closed_pnl == pytest.approx(
        metrics["gross_pnl"] - sum(t["entry_fee"] + t["exit_fee"] + t["slippage_cost"] for t in closed), abs=1e-6
    )


# -- 2. the bundle ------------------------------------------------------------------------------------


def test_bundle_holds_the_resolved_config_and_manifest_ref(completed: Completed) -> None:
    names = {p.name for p in completed.bundle.iterdir()}
    assert names == {
        "config_resolved.yaml", "manifest_ref.json", "summary.json", "fills.csv", "trades.csv",
        "positions.csv", "funding.csv", "equity.parquet", "events.jsonl",
    }  # fmt: skip
    resolved = yaml.safe_load((completed.bundle / "config_resolved.yaml").read_text())
    assert resolved["latency"] == "retail"
    assert resolved["latency_ns"] == [200_000_000, 100_000_000, 100_000_000, 100_000_000]
    assert resolved["params"] == {"fast": 10, "slow": 40}
    assert (resolved["leverage"], resolved["mode"], resolved["symbols"]) == (5.0, "validation", [SYMBOL])
    assert resolved == completed.summary()["config"]
    manifest = json.loads((completed.bundle / "manifest_ref.json").read_text())
    data = load_market_data(completed.home.catalog, plan_run(parse_config(resolved)), InstrumentSpecs())
    assert manifest["data_digest"] == data.digest
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["data_digest"])
    assert manifest["code_version"] == code_version()
    assert manifest["catalog"] == str(completed.home.catalog)


def test_bundle_summary_has_metrics_costs_and_the_funding_warning(completed: Completed) -> None:
    summary = completed.summary()
    assert summary["run_id"] == completed.run_id
    assert summary["warnings"] == [FUNDING_WARNING]
    assert summary["bars_processed"] == BARS_15M
    assert set(RESULT_COLUMNS) <= set(summary["metrics"])
    costs, metrics = summary["costs"], summary["metrics"]
    assert costs["total_funding"] == metrics["total_funding"] == 0
    for key in ("gross_pnl", "total_fees", "total_slippage", "liquidations", "fills"):
        assert costs[key] == metrics[key], key
    assert metrics["execution_time_seconds"] == summary["elapsed_s"]


def test_bundle_csvs_match_the_metrics_and_the_trade_rows(completed: Completed) -> None:
    metrics = completed.summary()["metrics"]
    fills = pd.read_csv(completed.bundle / "fills.csv")
    assert list(fills.columns) == [f.name for f in fields(FillRecord)]
    assert len(fills) == metrics["fills"] > 0
    assert fills["fee"].sum() == pytest.approx(metrics["total_fees"], rel=1e-12)
    trades = pd.read_csv(completed.bundle / "trades.csv")
    assert list(trades.columns) == TRADE_COLUMNS
    db_trades = rows_of(completed.home, "trades", completed.run_row)
    assert len(trades) == len(db_trades)
    assert trades["exit_time"].notna().sum() == metrics["total_trades"]
    assert trades["net_pnl"].sum() == pytest.approx(sum(t["net_pnl"] or 0.0 for t in db_trades), abs=1e-6)
    positions = pd.read_csv(completed.bundle / "positions.csv")
    assert len(positions) == len(db_trades)
    assert (positions["side"] == "FLAT").sum() == metrics["total_trades"]
    assert (completed.bundle / "funding.csv").is_file()


def test_bundle_funding_csv_keeps_its_header_when_empty(completed: Completed) -> None:
    funding = pd.read_csv(completed.bundle / "funding.csv")
    assert list(funding.columns) == [f.name for f in fields(FundingRecord)]
    assert len(funding) == 0


def test_bundle_equity_has_one_row_per_bar_and_a_valid_drawdown(completed: Completed) -> None:
    metrics = completed.summary()["metrics"]
    equity = pq.read_table(completed.bundle / "equity.parquet").to_pandas()
    assert list(equity.columns) == ["ts", "equity", "drawdown", "exposure", "margin"]
    assert len(equity) == BARS_15M
    assert equity["ts"].diff().dropna().gt(0).all()
    assert equity["ts"].iloc[0] == ns("2023-08-01T00:15:00")  # first bar's close
    assert equity["ts"].iloc[-1] == ns("2023-08-15T00:00:00")  # last bar closes at the exclusive end
    assert equity["drawdown"].between(0.0, 1.0).all()
    assert equity["drawdown"].max() == pytest.approx(metrics["max_drawdown"], rel=1e-12)
    assert equity["equity"].iloc[0] == metrics["starting_balance"]
    assert equity["equity"].iloc[-1] == pytest.approx(metrics["final_equity"], rel=1e-12)


def test_bundle_events_are_json_lines_linked_into_logs(completed: Completed) -> None:
    path = completed.bundle / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events
    for event in events:
        assert {"time", "ts", "type", "run_id"} <= set(event), event
        assert event["run_id"] == completed.run_id
        assert event["time"] == iso(event["ts"])
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    counts = Counter(e["type"] for e in events)
    assert {"SIGNAL", "ORDER", "FILL", "POSITION_OPEN", "POSITION_CLOSE"} <= set(counts)
    metrics = completed.summary()["metrics"]
    assert counts["FILL"] == metrics["fills"]
    assert counts["POSITION_CLOSE"] == metrics["total_trades"]
    assert counts["POSITION_OPEN"] == metrics["total_trades"] + metrics["open_trades"]
    by_duckdb = dict(duckdb.sql(f"SELECT type, count(*) FROM read_json_auto('{path}') GROUP BY 1").fetchall())
    assert by_duckdb == dict(counts)
    link = completed.home.logs / "events" / f"{completed.run_id}.jsonl"
    assert os.path.samefile(link, path)


# -- 3. run identity ------------------------------------------------------------------------------


def test_identical_command_gives_the_same_run_id_and_results(fresh: Home, completed: Completed) -> None:
    args = ["--home", str(fresh.root), *RUN]
    code, first_out, _ = vq(args)
    assert code == 0
    first_id = RUN_LINE.search(first_out).group(1)
    bundle = fresh.runs / first_id
    first = {name: (bundle / name).read_bytes() for name in ("summary.json", "fills.csv", "trades.csv")}
    code, second_out, _ = vq(args)
    assert code == 0
    assert RUN_LINE.search(second_out).group(1) == first_id == completed.run_id  # also across homes
    assert [r["run_hash"] for r in run_rows(fresh)] == [first_id, first_id]
    one, two = json.loads(first["summary.json"]), json.loads((bundle / "summary.json").read_bytes())

    def steady(summary: dict) -> dict:
        metrics = {k: v for k, v in summary["metrics"].items() if k not in VARIABLE_TIMING}
        return {**{k: v for k, v in summary.items() if k != "elapsed_s"}, "metrics": metrics}

    assert json.dumps(steady(one), sort_keys=True) == json.dumps(steady(two), sort_keys=True)
    assert first["fills.csv"] == (bundle / "fills.csv").read_bytes()
    assert first["trades.csv"] == (bundle / "trades.csv").read_bytes()


def test_changing_one_parameter_changes_the_run_id(fresh: Home, completed: Completed) -> None:
    args = ["--home", str(fresh.root), *RUN]
    args[args.index("fast=10")] = "fast=11"
    code, stdout, _ = vq(args)
    assert code == 0
    other = RUN_LINE.search(stdout).group(1)
    assert other != completed.run_id
    assert sorted(p.name for p in fresh.runs.iterdir()) == [other]


# -- 4. --json ------------------------------------------------------------------------------------------


def test_json_prints_only_the_summary_on_stdout(fresh: Home) -> None:
    code, stdout, stderr = vq(["--home", str(fresh.root), *RUN, "--json"])
    assert code == 0, stderr
    printed = json.loads(stdout)
    (row,) = run_rows(fresh)
    summary_path = fresh.runs / row["run_hash"] / "summary.json"
    assert printed == json.loads(summary_path.read_text())
    assert stdout == summary_path.read_text()
    assert printed["run_id"] == row["run_hash"]
    assert "funding not modelled for FILUSDT" in stderr  # the log warning stays off stdout


# -- 4b. vq backtest list / show: read back, never recomputed ----------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Print the backtest views 200 columns wide (rich folds every cell of the runs table at 80)."""
    from vibe_quant.cli import backtest as backtest_cli

    monkeypatch.setattr(backtest_cli.out, "width", 200)


def test_list_shows_the_run_with_its_sharpe(completed: Completed, cli, wide: None) -> None:
    metrics = completed.summary()["metrics"]
    code, output = cli(["--home", str(completed.home.root), "backtest", "list"])
    assert code == 0, output
    (line,) = [line for line in output.splitlines() if completed.run_id in line]
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells == [
        str(completed.run_row), "completed", "validation", "ema_cross", SYMBOL, "15m", "2023-08-01..2023-08-14",
        f"{metrics['sharpe_ratio']:,.2f}", f"{metrics['total_return']:.1%}", f"{metrics['max_drawdown']:.1%}",
        f"{metrics['total_trades']:,}", completed.run_id,
    ]  # fmt: skip


def test_list_json_rows_and_filters(completed: Completed, cli) -> None:
    code, output = cli(["--home", str(completed.home.root), "backtest", "list", "--json"])
    assert code == 0, output
    (row,) = json.loads(output)
    metrics = completed.summary()["metrics"]
    assert (row["id"], row["run_hash"], row["status"], row["strategy"]) == (
        completed.run_row, completed.run_id, "completed", "ema_cross",
    )  # fmt: skip
    assert row["sharpe_ratio"] == pytest.approx(metrics["sharpe_ratio"], rel=1e-12)
    assert row["total_trades"] == metrics["total_trades"]
    assert row["bundle_path"] == str(completed.bundle)
    code, output = cli(["--home", str(completed.home.root), "backtest", "list", "--json", "--status", "failed"])
    assert (code, json.loads(output)) == (0, [])
    code, output = cli(["--home", str(completed.home.root), "backtest", "list", "--limit", "0"])
    assert (code, output.strip()) == (2, "error: --limit must be >= 1, got 0")


@pytest.mark.parametrize("by", ["row-id", "run-hash"])
def test_show_reprints_the_run_from_its_bundle(completed: Completed, cli, by: str) -> None:
    run = str(completed.run_row) if by == "row-id" else completed.run_id
    code, output = cli(["--home", str(completed.home.root), "backtest", "show", run])
    assert code == 0, output
    assert output == completed.stdout  # the same view as the run printed, read back from summary.json
    code, output = cli(["--home", str(completed.home.root), "backtest", "show", run, "--json"])
    assert code == 0, output
    assert json.loads(output) == completed.summary()


def test_show_of_a_run_without_results_names_the_fix(fresh: Home, completed: Completed, cli) -> None:
    h = ["--home", str(fresh.root)]
    code, output = cli([*h, "backtest", "show", "999"])
    assert (code, output.strip()) == (
        2,
        f"error: no backtest run '999' in {fresh.db_path} (vq backtest list shows them)",
    )
    run_row = pending_run(fresh)
    code, output = cli([*h, "backtest", "show", str(run_row)])
    assert (code, output.strip()) == (
        2, f"error: backtest run {run_row} is pending: it has no results; run it: vq backtest run --run-id {run_row}"
    )  # fmt: skip
    code, output = cli([*h, *RUN])  # the reference run again: same run id, its own bundle in this home
    assert code == 0, output
    shutil.rmtree(fresh.runs / completed.run_id)
    code, output = cli([*h, "backtest", "show", completed.run_id])
    assert code == 2
    assert output.strip() == (
        f"error: backtest run {run_row + 1}: its bundle {fresh.runs / completed.run_id} is missing (deleted or moved). "
        f"Fix: restore it, or run the same backtest again (the same options give run id {completed.run_id} and "
        "rewrite the bundle)"
    )
    code, output = cli([*h, *RUN, "-q"])  # the fix
    assert code == 0, output
    code, output = cli([*h, "backtest", "show", completed.run_id, "--json"])
    assert code == 0, output
    assert json.loads(output)["run_id"] == completed.run_id


def test_data_sql_sees_the_result_tables(completed: Completed, cli) -> None:
    h = ["--home", str(completed.home.root)]
    trades = rows_of(completed.home, "trades", completed.run_row)
    code, output = cli([*h, "data", "sql", "SELECT count(*) AS n FROM trades", "--format", "json"])
    assert code == 0, output
    assert json.loads(output) == [{"n": len(trades)}]
    query = ("SELECT r.run_hash, r.parameters->>'strategy' AS strategy, b.sharpe_ratio, b.total_trades, "
             "(SELECT count(*) FROM sweep_results) AS points FROM backtest_runs r JOIN backtest_results b ON b.run_id = r.id")  # fmt: skip
    code, output = cli([*h, "data", "sql", query, "--format", "json"])
    assert code == 0, output
    (row,) = json.loads(output)
    metrics = completed.summary()["metrics"]
    assert (row["run_hash"], row["strategy"], row["total_trades"], row["points"]) == (
        completed.run_id, "ema_cross", metrics["total_trades"], 0,
    )  # fmt: skip
    assert row["sharpe_ratio"] == pytest.approx(metrics["sharpe_ratio"], rel=1e-12)


# -- 5. --run-id -------------------------------------------------------------------------------------


def pending_run(home: Home) -> int:
    config = parse_config({
        "strategy": "ema_cross", "symbols": [SYMBOL], "timeframe": "1h", "start": "2023-08-01",
        "end": "2023-08-10", "params": {"fast": 5, "slow": 20},
    })  # fmt: skip
    with StateManager(home.db_path) as state:
        return create_run(state, config)


def test_run_id_completes_a_pending_row_and_refuses_to_run_it_twice(
    fresh: Home, cli: Callable[[list[str]], tuple[int, str]]
) -> None:
    run_row = pending_run(fresh)
    (row,) = run_rows(fresh)
    assert (row["status"], row["pid"], row["started_at"], row["run_hash"]) == ("pending", None, None, None)
    code, output = cli(["--home", str(fresh.root), "backtest", "run", "--run-id", str(run_row)])
    assert code == 0, output
    match = RUN_LINE.search(output)
    assert int(match.group(2)) == run_row
    assert "ema_cross FILUSDT 1h 2023-08-01..2023-08-10, validation, latency retail, leverage 10x" in output
    (row,) = run_rows(fresh)  # no second row
    assert row["status"] == "completed"
    assert row["run_hash"] == match.group(1)
    assert row["bundle_path"] == str(fresh.runs / match.group(1))
    assert len(rows_of(fresh, "backtest_results", run_row)) == 1

    code, output = cli(["--home", str(fresh.root), "backtest", "run", "--run-id", str(run_row)])
    assert code == 2
    assert f"error: backtest run {run_row} is completed; only pending (or failed) runs can be used here" in output
    assert "Traceback" not in output
    (row,) = run_rows(fresh)
    assert row["status"] == "completed"


def test_run_id_reruns_a_failed_row(fresh: Home, cli: Callable[[list[str]], tuple[int, str]]) -> None:
    run_row = pending_run(fresh)
    with StateManager(fresh.db_path) as state:
        state.update("backtest_runs", run_row, {"status": "failed", "error_message": "worker died"})
    code, output = cli(["--home", str(fresh.root), "backtest", "run", "--run-id", str(run_row)])
    assert code == 0, output
    (row,) = run_rows(fresh)
    assert (row["status"], row["error_message"]) == ("completed", None)


def test_unknown_run_id_exits_2(fresh: Home, cli: Callable[[list[str]], tuple[int, str]]) -> None:
    code, output = cli(["--home", str(fresh.root), "backtest", "run", "--run-id", "999"])
    assert code == 2
    assert "error: no backtest run 999 in the state database" in output
    assert "Traceback" not in output
    assert run_rows(fresh) == []


def test_run_id_with_strategy_exits_2(fresh: Home, cli: Callable[[list[str]], tuple[int, str]]) -> None:
    run_row = pending_run(fresh)
    code, output = cli(["--home", str(fresh.root), "backtest", "run", "--run-id", str(run_row), "--strategy",
                        "ema_cross"])  # fmt: skip
    assert code == 2
    assert "error: --run-id runs a stored configuration; do not combine it with --strategy/--symbols" in output
    assert "Traceback" not in output
    (row,) = run_rows(fresh)
    assert row["status"] == "pending"


# -- 6. user errors -----------------------------------------------------------------------------------


def replace(args: list[str], old: str, new: str) -> list[str]:
    out = list(args)
    out[out.index(old)] = new
    return out


def without(args: list[str], option: str) -> list[str]:
    i = args.index(option)
    return args[:i] + args[i + 2 :]


# (args, exact message, whether a backtest_runs row was created before the error)
USER_ERRORS = {
    "unknown strategy": (
        replace(RUN, "ema_cross", "ema_cros"),
        "unknown strategy 'ema_cros': give a strategy file (FILE.yaml) or one of bollinger_mean_reversion, ",
        False,
    ),
    "unknown parameter": (
        replace(RUN, "fast=10", "fastt=3"),
        "strategy 'ema_cross' has no parameter 'fastt'; parameters: allow_short, exposure, fast, slow. "
        "Did you mean 'fast'?",
        False,
    ),
    "bad parameter value": (
        replace(RUN, "fast=10", "fast=abc"),
        "strategy 'ema_cross' parameters: Expected `int`, got `str` - at `$.fast`",
        False,
    ),
    "fast not below slow": (
        replace(replace(RUN, "fast=10", "fast=50"), "slow=40", "slow=20"),
        "ema_cross needs 0 < fast < slow, got fast=50, slow=20",
        False,
    ),
    "unknown timeframe": (
        replace(RUN, "15m", "7m"),
        "timeframe '7m': choose one of 1m, 5m, 15m, 1h, 4h. Did you mean '5m'?",
        False,
    ),
    "end before start": (
        replace(RUN, "2023-08-14", "2023-07-31"),
        "end 2023-07-31 is before start 2023-08-01",
        False,
    ),
    "unknown latency": (
        replace(RUN, "retail", "fast"),
        "latency 'fast': choose one of none, co_located, domestic, international, retail, custom.",
        False,
    ),
    "missing symbols": (
        without(RUN, "--symbols"),
        "missing --symbols (or pass --run-id of a pending run)",
        False,
    ),
    "leverage above the spec": (
        replace(RUN, "5", "75"),
        "leverage 75 for FILUSDT exceeds its maximum 50",
        True,
    ),
    "symbol without data": (
        replace(RUN, "FILUSDT-PERP", "NEARUSDT-PERP"),
        "no NEARUSDT-PERP.BINANCE instrument in {catalog}: ingest it first "
        "(vq data ingest --symbols NEARUSDT --start 2023-08-01 --end 2023-08-14)",
        True,
    ),
}


@pytest.mark.parametrize(("args", "message", "row_created"), list(USER_ERRORS.values()), ids=list(USER_ERRORS))
def test_user_error_exits_2_with_one_message(
    fresh: Home, cli: Callable[[list[str]], tuple[int, str]], args: list[str], message: str, row_created: bool
) -> None:
    message = message.format(catalog=fresh.catalog)
    code, output = cli(["--home", str(fresh.root), *args])
    assert code == 2, output
    assert f"error: {message}" in output
    assert "Traceback" not in output
    rows = run_rows(fresh)
    if not row_created:
        assert rows == []
        return
    (row,) = rows
    assert (row["status"], row["error_message"], row["run_hash"], row["bundle_path"]) == (
        "failed", message, None, None,
    )  # fmt: skip
    assert row["completed_at"] is not None
    assert rows_of(fresh, "backtest_results", row["id"]) == []
    assert rows_of(fresh, "trades", row["id"]) == []
    assert list(fresh.runs.iterdir()) == []


# (flag, bad value, the message): range errors name the flag that set the value, no row is created
FLAG_ERRORS = [
    ("--leverage", "0.5", "--leverage: expected `float` >= 1.0 (in the backtest config)"),
    ("--leverage", "200", "--leverage: expected `float` <= 125.0 (in the backtest config)"),
    ("--balance", "-5", "--balance: expected `float` > 0.0 (in the backtest config)"),
    ("--balance", "0", "--balance: expected `float` > 0.0 (in the backtest config)"),
    ("--maker-fee", "0.5", "--maker-fee: expected `float` <= 0.01 (in the backtest config)"),
    ("--maker-fee", "-0.5", "--maker-fee: expected `float` >= -0.01 (in the backtest config)"),
    ("--taker-fee", "2", "--taker-fee: expected `float` <= 0.01 (in the backtest config)"),
    ("--mode", "fast", "--mode: invalid enum value 'fast' (in the backtest config)"),
]


@pytest.mark.parametrize(("flag", "value", "message"), FLAG_ERRORS, ids=[f"{f}={v}" for f, v, _ in FLAG_ERRORS])
def test_range_errors_name_the_flag(fresh: Home, cli, flag: str, value: str, message: str) -> None:
    args = [*RUN, flag, value] if flag not in RUN else replace(RUN, RUN[RUN.index(flag) + 1], value)
    code, output = cli(["--home", str(fresh.root), *args])
    assert code == 2, output
    assert output.splitlines() == [f"error: {message}"]
    assert run_rows(fresh) == []


def test_missing_data_message_names_the_ingest_command(
    fresh: Home, cli: Callable[[list[str]], tuple[int, str]]
) -> None:
    code, output = cli(["--home", str(fresh.root), *replace(RUN, "FILUSDT-PERP", "NEARUSDT-PERP")])
    assert code == 2
    assert "vq data ingest --symbols NEARUSDT" in output
    (row,) = run_rows(fresh)
    assert row["status"] == "failed"
    assert "vq data ingest" in row["error_message"]


def test_fast_not_below_slow_prints_no_traceback(fresh: Home, capfd: pytest.CaptureFixture[str]) -> None:
    args = replace(replace(RUN, "fast=10", "fast=50"), "slow=40", "slow=20")
    code = run(app, ["--home", str(fresh.root), *args])
    captured = capfd.readouterr()
    assert code == 2
    assert "Traceback" not in captured.out + captured.err


def test_unknown_strategy_leaves_no_strategies_row(fresh: Home, cli: Callable[[list[str]], tuple[int, str]]) -> None:
    code, _ = cli(["--home", str(fresh.root), *replace(RUN, "ema_cross", "ema_cros")])
    assert code == 2
    assert "ema_cros" not in strategy_names(fresh)


# -- 7. the module entry point -----------------------------------------------------------------


def test_validation_module_help_runs_as_a_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VQ_HOME"} | {"COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "vibe_quant.validation", "run", "--help"],
        capture_output=True, text=True, cwd=PROJECT, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for option in ("--run-id", "--strategy", "--symbols", "--timeframe", "--param", "--latency", "--json"):
        assert option in done.stdout, option


# -- DSL strategies through the same runner --------------------------------------------------------

DSL_RUN = ["backtest", "run", "--symbols", "FILUSDT-PERP", "--start", "2023-08-01", "--end", "2023-08-14",
           "--leverage", "5"]  # fmt: skip


def test_dsl_strategy_runs_and_is_stored_with_versions(fresh: Home, cli, tmp_path: Path) -> None:
    code, output = cli(["--home", str(fresh.root), *DSL_RUN, "--strategy", "ema_cross.yaml", "--param",
                        "ema_fast.period=10"])  # fmt: skip
    assert code == 0, output
    assert "ema_cross FILUSDT 5m 2023-08-01..2023-08-14" in output  # the strategy's own timeframe
    code, output = cli(["--home", str(fresh.root), *RUN])  # the Python ema_cross beside it
    assert code == 0, output
    with StateManager(fresh.db_path) as state:
        rows = {row["name"]: row for row in state.find("strategies")}
        assert set(rows) == {"ema_cross", "python:ema_cross"}
        assert (rows["ema_cross"]["strategy_type"], rows["ema_cross"]["version"]) == ("dsl", 1)
        dsl_run = state.find("backtest_runs", strategy_id=rows["ema_cross"]["id"])[0]
        assert dsl_run["status"] == "completed"
        assert dsl_run["parameters"]["document"]["indicators"]["ema_fast"]["period"] == 20  # the document as written
        assert dsl_run["parameters"]["params"] == {"ema_fast.period": 10}  # and the run's override
    edited = tmp_path / "ema_cross.yaml"
    text = (Path(__file__).parents[2] / "src/vibe_quant/dsl/strategies/ema_cross.yaml").read_text()
    edited.write_text(text.replace("period: 100", "period: 120"))
    code, output = cli(["--home", str(fresh.root), *DSL_RUN, "--strategy", str(edited)])
    assert code == 0, output
    with StateManager(fresh.db_path) as state:
        row = state.find("strategies", name="ema_cross")[0]
        assert row["version"] == 2
        assert row["dsl_config"]["indicators"]["ema_slow"]["period"] == 120
        assert len(state.find("strategy_versions", strategy_id=row["id"])) == 2


def test_dsl_bad_input_is_located_and_changes_nothing(fresh: Home, cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\ntimeframe: 5m\nindicators:\n  rsi: {type: RSI, period: 14}\n"
                      "entry_conditions:\n  long: [rsi < 30, rsx > 2]\n")  # fmt: skip
    code, output = cli(["--home", str(fresh.root), *DSL_RUN, "--strategy", str(broken)])
    assert code == 2
    assert f"{broken}:6:20: 'rsx' is not a declared indicator" in output
    assert "Did you mean 'rsi'?" in output
    code, output = cli(
        ["--home", str(fresh.root), *DSL_RUN, "--strategy", "ema_cross.yaml", "--param", "ema_fast.perod=3"]
    )
    assert code == 2
    assert "parameter 'ema_fast.perod': EMA has no parameter 'perod'" in output
    code, output = cli(["--home", str(fresh.root), *DSL_RUN, "--strategy", "ema_cross.yaml", "--timeframe", "15m"])
    assert code == 2
    assert "runs on 5m bars, the run asks for 15m" in output
    with StateManager(fresh.db_path) as state:
        assert state.count("backtest_runs") == 0
        assert state.count("strategies") == 0
