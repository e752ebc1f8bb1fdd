"""State database: WAL connections, the schema of docs/specs.md#state-database, migrations and ``StateManager`` CRUD."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import vibe_quant.state.db as state_db
from vibe_quant.errors import UserError
from vibe_quant.state import SCHEMA_VERSION, StateManager, connect, transaction
from vibe_quant.state.db import migrate

# docs/specs.md#state-database, column for column, plus the data stage's own tables (0001_initial.sql).
EXPECTED_COLUMNS: dict[str, list[str]] = {
    "strategies": [
        "id", "name", "description", "dsl_config", "strategy_type", "created_at", "updated_at", "is_active",
        "version",
    ],
    "strategy_versions": ["id", "strategy_id", "version", "sha256", "dsl_config", "source_text", "created_at"],
    "sizing_configs": ["id", "name", "method", "config", "created_at"],
    "risk_configs": ["id", "name", "strategy_level", "portfolio_level", "created_at"],
    "backtest_runs": [
        "id", "strategy_id", "sizing_config_id", "risk_config_id", "run_mode", "symbols", "timeframe",
        "start_date", "end_date", "parameters", "latency_preset", "status", "pid", "heartbeat_at", "started_at",
        "completed_at", "error_message", "created_at", "run_hash", "bundle_path", "sweep_spec", "overfitting", "host",
    ],
    "backtest_results": [
        "id", "run_id", "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
        "max_drawdown_duration_days", "volatility_annual", "total_trades", "winning_trades", "losing_trades",
        "win_rate", "profit_factor", "avg_win", "avg_loss", "largest_win", "largest_loss",
        "avg_trade_duration_hours", "max_consecutive_wins", "max_consecutive_losses", "total_fees",
        "total_funding", "total_slippage", "deflated_sharpe", "walk_forward_efficiency",
        "purged_kfold_mean_sharpe", "execution_time_seconds", "starting_balance", "notes", "created_at",
    ],
    "trades": [
        "id", "run_id", "symbol", "direction", "leverage", "entry_time", "exit_time", "entry_price", "exit_price",
        "quantity", "entry_fee", "exit_fee", "funding_fees", "slippage_cost", "gross_pnl", "net_pnl",
        "roi_percent", "exit_reason",
    ],
    "sweep_results": [
        "id", "run_id", "parameters", "sharpe_ratio", "sortino_ratio", "max_drawdown", "total_return",
        "profit_factor", "win_rate", "total_trades", "total_fees", "total_funding", "execution_time_seconds",
        "is_pareto_optimal", "passed_deflated_sharpe", "passed_walk_forward", "passed_purged_kfold",
        "point_key", "metrics", "passed_hard_filters", "rejected_by", "error_message", "created_at",
        "daily_returns", "deflated_sharpe", "walk_forward_efficiency", "purged_kfold_mean_sharpe", "passed_cpcv",
        "passed_pbo", "overfitting", "overfitting_passed", "execution_sensitive", "validation_run_id",
    ],
    "background_jobs": [
        "id", "run_id", "pid", "job_type", "status", "heartbeat_at", "started_at", "completed_at", "log_file",
        "error_message", "command", "label", "exit_code", "progress", "pid_started", "host",
    ],
    "instruments": [
        "id", "canonical_id", "nautilus_id", "venue", "venue_symbol", "contract", "base_currency",
        "quote_currency", "margin_currency", "tick_size", "step_size", "price_precision", "size_precision",
        "contract_multiplier", "min_notional", "maker_fee", "taker_fee", "margin_tiers", "listed_date",
        "spec_version", "spec_sha256", "updated_at",
    ],
    "raw_files": [
        "id", "sha256", "venue", "market", "dataset", "symbol", "interval", "period_kind", "period_start_ns",
        "period_end_ns", "original_name", "source", "archive_path", "size_bytes", "rows", "first_ts_ns",
        "last_ts_ns", "downloaded_at",
    ],
    "ingest_runs": [
        "id", "command", "arguments", "code_version", "status", "started_at", "finished_at", "error_message",
    ],
    "ingest_units": [
        "id", "run_id", "dataset", "symbol", "period_start_ns", "period_end_ns", "rows_in", "rows_written",
        "duplicates", "created_at",
        "market",
        "interval",
        "stats",
    ],
    "unit_sources": ["unit_id", "raw_file_id", "ordinal"],
    "ingest_errors": ["id", "run_id", "dataset", "symbol", "source", "message", "created_at"],
    "settings": ["key", "value", "updated_at"],
    "paper_sessions": ["id", "mode", "config", "feed", "limits", "from_run", "status", "pid", "host", "job_id", "error",
                       "cursor_ns", "bars_done", "bars_total", "snapshot", "heartbeat_at", "created_at", "finished_at"],
    "paper_checkpoints": ["id", "session_id", "created_at", "reason", "cursor_ns", "bars_done", "state"],
    "paper_commands": ["id", "session_id", "command", "target", "reason", "requested_by", "requested_at",
                       "applied_at", "applied_bar", "result"],
    "paper_equity": ["session_id", "ts_ns", "equity"],
    "paper_fills": ["session_id", "seq", "ts_ns", "record"],
    "promotions": ["id", "run_id", "stage", "who", "why", "evidence", "override", "created_at"],
    "alerts": ["id", "created_at", "kind", "severity", "text", "fields", "status", "sent_at", "attempts", "error"],
    "models": [
        "model_id", "name", "algo", "symbol", "timeframe", "created_at", "artifact_path", "training_data_hash",
        "feature_version", "hyperparameters", "env_config", "evaluation", "stage",
    ],
    "model_decisions": ["id", "model_id", "champion_id", "decided_at", "decision", "reasons"],
    "discovery_runs": ["id", "created_at", "completed_at", "status", "config", "generation", "evaluated", "cache_hits",
                       "pid", "host", "started_at", "heartbeat_at", "summary", "error_message"],
    "discovery_genomes": ["id", "run_id", "genome_key", "role", "generation", "genome", "document", "complexity",
                          "description", "metrics", "sharpe_ratio", "max_drawdown", "profit_factor", "total_trades",
                          "feasible", "violation", "objectives", "daily_returns", "engine", "error_message",
                          "created_at"],
    "discovery_generations": ["id", "run_id", "generation", "population", "front", "stats", "rng_state", "created_at"],
    "discovery_finalists": ["id", "run_id", "rank", "genome_key", "holdout_metrics", "checks", "passed", "reasons"],
}  # fmt: skip

DSL = {
    "name": "rsi_mean_reversion",
    "timeframe": "5m",
    "indicators": {"rsi": {"type": "RSI", "period": 14}},
    "entry": {"long": [{"left": "rsi", "operator": "<", "right": 30}]},
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "vibe_quant.db"


@pytest.fixture
def db(db_path: Path) -> StateManager:
    db_path.parent.mkdir(parents=True)
    with StateManager(db_path) as manager:
        yield manager


def add_run(db: StateManager, strategy_id: int | None = None, **overrides) -> int:
    values = {
        "strategy_id": strategy_id,
        "run_mode": "screening",
        "symbols": ["FILUSDT-PERP"],
        "timeframe": "5m",
        "start_date": "2023-08-01",
        "end_date": "2023-09-01",
        "parameters": {"rsi_period": 14},
    }
    values.update(overrides)
    return db.insert("backtest_runs", values)


def pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
    return (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA busy_timeout").fetchone()[0],
        conn.execute("PRAGMA foreign_keys").fetchone()[0],
    )


# -- connections ------------------------------------------------------------------------------


def test_every_connection_is_wal_with_busy_timeout_and_foreign_keys(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    first = connect(db_path)
    second = connect(db_path)
    try:
        assert pragmas(first) == ("wal", 5000, 1)
        assert pragmas(second) == ("wal", 5000, 1)
        assert first.row_factory is sqlite3.Row
        assert not first.in_transaction  # autocommit: writes are visible without an explicit commit
    finally:
        first.close()
        second.close()


def _open(path: str, barrier) -> str:
    barrier.wait()
    try:
        StateManager(path).close()
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # Each would switch the file to WAL and run every migration: without one-at-a-time setup,
    # "table strategies already exists" or "database is locked" in most trials.
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        for trial in range(3):
            path = tmp_path / f"{trial}.db"
            barrier = ctx.Manager().Barrier(4)
            assert list(pool.map(_open, [str(path)] * 4, [barrier] * 4)) == ["ok"] * 4
            with StateManager(path) as db:
                assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_state_manager_connection_has_the_same_pragmas(db: StateManager) -> None:
    assert pragmas(db.conn) == ("wal", 5000, 1)


def test_schema_has_every_table_and_column(db: StateManager) -> None:
    assert db.tables == sorted(EXPECTED_COLUMNS)
    for table, columns in EXPECTED_COLUMNS.items():
        actual = [row["name"] for row in db.conn.execute(f"PRAGMA table_info({table})")]
        assert actual == columns, table


def test_seed_indexes_exist(db: StateManager) -> None:
    names = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "idx_backtest_runs_strategy",
        "idx_backtest_runs_status",
        "idx_backtest_results_run",
        "idx_trades_run",
        "idx_sweep_results_run",
        "idx_sweep_results_pareto",
        "idx_background_jobs_status",
        "idx_raw_files_lookup",
        "idx_ingest_units_lookup",
    } <= names


def test_user_version_is_schema_version(db: StateManager) -> None:
    assert SCHEMA_VERSION == 12  # ... 0008_settings, 0009_paper, 0010_alerts, 0011_models, 0012_discovery
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- migrations -------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_reopening_keeps_data(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with StateManager(db_path) as first:
        sid = first.insert("strategies", {"name": "a", "dsl_config": DSL})
        assert migrate(first.conn) == SCHEMA_VERSION  # nothing pending: no "table already exists"
    with StateManager(db_path) as again:
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert again.get("strategies", sid)["dsl_config"] == DSL
        assert again.count("strategies") == 1


def _with_broken_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    real = state_db._migrations()
    broken = (
        "CREATE TABLE half_done (a INTEGER);\n"
        "INSERT INTO strategies (name, dsl_config) VALUES ('from_migration', '{}');\n"
        "SELEC oops;\n"
    )
    number = SCHEMA_VERSION + 1
    monkeypatch.setattr(state_db, "_migrations", lambda: [*real, (number, f"{number:04d}_broken.sql", broken)])


def test_failed_migration_leaves_database_at_old_version(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path.parent.mkdir(parents=True)
    with StateManager(db_path) as db:
        db.insert("strategies", {"name": "kept", "dsl_config": DSL})
    _with_broken_migration(monkeypatch)

    with pytest.raises(sqlite3.OperationalError, match='near "SELEC": syntax error'):
        connect(db_path)

    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
        assert raw.execute("SELECT name FROM strategies").fetchall() == [("kept",)]
    finally:
        raw.close()
    monkeypatch.undo()
    with StateManager(db_path) as db:  # still a healthy database at the current version
        assert [r["name"] for r in db.find("strategies")] == ["kept"]


def test_failed_migration_on_new_database_keeps_the_earlier_ones(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path.parent.mkdir(parents=True)
    _with_broken_migration(monkeypatch)
    with pytest.raises(sqlite3.OperationalError, match='near "SELEC": syntax error'):
        connect(db_path)
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert set(EXPECTED_COLUMNS) <= tables
        assert "half_done" not in tables
        assert raw.execute("SELECT count(*) FROM strategies").fetchone()[0] == 0
    finally:
        raw.close()


# -- CRUD -------------------------------------------------------------------------------------


def test_strategy_round_trip_decodes_json_and_applies_defaults(db: StateManager) -> None:
    sid = db.insert("strategies", {"name": "rsi", "description": "RSI 14", "dsl_config": DSL})
    row = db.get("strategies", sid)
    assert row["dsl_config"] == DSL
    assert isinstance(row["dsl_config"], dict)
    assert (row["name"], row["description"], row["strategy_type"]) == ("rsi", "RSI 14", None)
    assert (row["is_active"], row["version"]) == (1, 1)
    assert row["created_at"] is not None
    # Stored as canonical JSON text, so equal configs are equal rows.
    stored = db.conn.execute("SELECT dsl_config FROM strategies WHERE id = ?", (sid,)).fetchone()[0]
    assert stored.startswith('{"entry": ')


def test_get_missing_row_is_none(db: StateManager) -> None:
    assert db.get("strategies", 999) is None


def test_insert_returns_increasing_ids_and_count(db: StateManager) -> None:
    ids = [db.insert("sizing_configs", {"name": f"s{i}", "method": "kelly", "config": {"f": i}}) for i in range(3)]
    assert ids == [1, 2, 3]
    assert db.count("sizing_configs") == 3
    assert db.count("risk_configs") == 0


def test_unique_name_is_enforced(db: StateManager) -> None:
    db.insert("strategies", {"name": "rsi", "dsl_config": DSL})
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE constraint failed: strategies\.name"):
        db.insert("strategies", {"name": "rsi", "dsl_config": DSL})


def test_find_filters_and_orders(db: StateManager) -> None:
    sid = db.insert("strategies", {"name": "rsi", "dsl_config": DSL})
    a = add_run(db, sid, timeframe="5m", start_date="2023-09-01")
    b = add_run(db, sid, timeframe="1h", start_date="2023-07-01")
    c = add_run(db, sid, timeframe="5m", start_date="2023-08-01", status="completed")
    d = add_run(db, None, timeframe="5m", start_date="2023-06-01", symbols=["NEARUSDT-PERP"])

    assert [r["id"] for r in db.find("backtest_runs")] == [a, b, c, d]
    assert [r["id"] for r in db.find("backtest_runs", order_by="start_date")] == [d, b, c, a]
    assert [r["id"] for r in db.find("backtest_runs", timeframe="5m", order_by="start_date")] == [d, c, a]
    assert [r["id"] for r in db.find("backtest_runs", timeframe="5m", status="pending")] == [a, d]
    assert [r["id"] for r in db.find("backtest_runs", strategy_id=None)] == [d]  # IS NULL, not = NULL
    assert [r["id"] for r in db.find("backtest_runs", symbols=["NEARUSDT-PERP"])] == [d]  # JSON filter
    assert db.find("backtest_runs", timeframe="15m") == []
    row = db.find("backtest_runs", status="completed")[0]
    assert (row["symbols"], row["parameters"]) == (["FILUSDT-PERP"], {"rsi_period": 14})


def test_update_and_delete_return_whether_the_row_existed(db: StateManager) -> None:
    sid = db.insert("strategies", {"name": "rsi", "dsl_config": DSL})
    new_dsl = {**DSL, "timeframe": "15m"}
    assert db.update("strategies", sid, {"dsl_config": new_dsl, "version": 2}) is True
    row = db.get("strategies", sid)
    assert (row["dsl_config"], row["version"]) == (new_dsl, 2)
    assert db.update("strategies", 999, {"version": 3}) is False
    assert db.update("strategies", sid, {}) is True
    assert db.update("strategies", 999, {}) is False

    assert db.delete("strategies", sid) is True
    assert db.delete("strategies", sid) is False
    assert db.get("strategies", sid) is None
    assert db.count("strategies") == 0


def test_foreign_key_is_enforced(db: StateManager) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
        db.insert("trades", {**TRADE, "run_id": 42})


TRADE = {
    "symbol": "FILUSDT-PERP",
    "direction": "LONG",
    "entry_time": "2023-08-01T00:05:00Z",
    "entry_price": 4.255,
    "quantity": 10.0,
}


def test_deleting_a_run_cascades_to_results_trades_sweeps_and_jobs(db: StateManager) -> None:
    sid = db.insert("strategies", {"name": "rsi", "dsl_config": DSL})
    run, other = add_run(db, sid), add_run(db, sid)
    db.insert("backtest_results", {"run_id": run, "sharpe_ratio": 1.25, "total_trades": 2})
    db.insert("trades", {**TRADE, "run_id": run})
    db.insert("trades", {**TRADE, "run_id": run, "direction": "SHORT"})
    db.insert("sweep_results", {"run_id": run, "parameters": {"rsi_period": 10}})
    db.insert("background_jobs", {"run_id": run, "pid": 1234, "job_type": "screening"})
    kept = db.insert("trades", {**TRADE, "run_id": other})
    result = db.find("backtest_results", run_id=run)[0]
    assert (result["sharpe_ratio"], result["total_trades"]) == (1.25, 2)
    assert [t["direction"] for t in db.find("trades", run_id=run)] == ["LONG", "SHORT"]

    assert db.delete("backtest_runs", run) is True

    assert db.find("backtest_results", run_id=run) == []
    assert db.find("trades", run_id=run) == []
    assert db.count("sweep_results") == 0
    assert db.count("background_jobs") == 0
    assert [t["id"] for t in db.find("trades")] == [kept]
    assert db.count("backtest_runs") == 1


def test_deleting_a_referenced_strategy_is_refused(db: StateManager) -> None:
    sid = db.insert("strategies", {"name": "rsi", "dsl_config": DSL})
    add_run(db, sid)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
        db.delete("strategies", sid)


# -- user errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda db: db.insert("strategy", {"name": "x"}), "unknown table 'strategy'. Did you mean 'strategies'?"),
        (lambda db: db.get("trade", 1), "unknown table 'trade'. Did you mean 'trades'?"),
        (lambda db: db.find("backtest_run"), "unknown table 'backtest_run'. Did you mean 'backtest_runs'?"),
        (lambda db: db.count("instrument"), "unknown table 'instrument'. Did you mean 'instruments'?"),
        (lambda db: db.delete("sweep_result", 1), "unknown table 'sweep_result'. Did you mean 'sweep_results'?"),
        (
            lambda db: db.insert("strategies", {"name": "x", "dsl_confg": {}}),
            "table 'strategies' has no column 'dsl_confg'. Did you mean 'dsl_config'?",
        ),
        (
            lambda db: db.update("strategies", 1, {"is_activ": 0}),
            "table 'strategies' has no column 'is_activ'. Did you mean 'is_active'?",
        ),
        (
            lambda db: db.find("backtest_runs", timefrme="5m"),
            "table 'backtest_runs' has no column 'timefrme'. Did you mean 'timeframe'?",
        ),
        (
            lambda db: db.find("backtest_runs", order_by="start_dat"),
            "table 'backtest_runs' has no column 'start_dat'. Did you mean 'start_date'?",
        ),
        (
            lambda db: db.find("trades", order_by="id; DROP TABLE trades"),
            "table 'trades' has no column 'id; DROP TABLE trades'.",
        ),
    ],
    ids=[
        "insert-table", "get-table", "find-table", "count-table", "delete-table", "insert-column",
        "update-column", "find-column", "order-by", "order-by-injection",
    ],
)  # fmt: skip
def test_unknown_names_raise_user_error_with_a_suggestion(db: StateManager, call, message: str) -> None:
    with pytest.raises(UserError) as excinfo:
        call(db)
    assert excinfo.type is UserError
    assert str(excinfo.value) == message
    assert db.count("trades") == 0  # the table is still there


# -- transactions and concurrency -------------------------------------------------------------


def write_everything_then_fail(db: StateManager, keep: int) -> None:
    with db.transaction():
        sid = db.insert("strategies", {"name": "inside", "dsl_config": DSL})
        run = add_run(db, sid)
        db.insert("trades", {**TRADE, "run_id": run})
        db.update("strategies", keep, {"version": 7})
        db.delete("strategies", keep)
        raise ValueError("boom")


def test_transaction_rolls_back_every_write_when_the_block_raises(db: StateManager) -> None:
    keep = db.insert("strategies", {"name": "before", "dsl_config": DSL})
    with pytest.raises(ValueError, match="boom"):
        write_everything_then_fail(db, keep)
    assert not db.conn.in_transaction
    assert [r["name"] for r in db.find("strategies")] == ["before"]
    assert db.get("strategies", keep)["version"] == 1
    assert (db.count("backtest_runs"), db.count("trades")) == (0, 0)


def test_transaction_commits_when_the_block_succeeds(db: StateManager) -> None:
    with db.transaction() as same:
        assert same is db
        sid = db.insert("strategies", {"name": "inside", "dsl_config": DSL})
        add_run(db, sid)
        assert db.conn.in_transaction
    assert not db.conn.in_transaction
    assert (db.count("strategies"), db.count("backtest_runs")) == (1, 1)


def insert_strategy_then_orphan_trade(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO strategies (name, dsl_config) VALUES ('a', '{}')")
        conn.execute(
            "INSERT INTO trades (run_id, symbol, direction, entry_time, entry_price, quantity) "
            "VALUES (99, 'X', 'LONG', 't', 1, 1)"
        )


def test_transaction_function_rolls_back_on_a_constraint_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
            insert_strategy_then_orphan_trade(conn)
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM strategies").fetchone()[0] == 0
    finally:
        conn.close()


def test_two_managers_read_while_the_other_writes(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with StateManager(db_path) as writer, StateManager(db_path) as reader:
        writer.insert("strategies", {"name": "first", "dsl_config": DSL})

        # Reader mid-write: the uncommitted row is invisible and the read does not wait for the lock.
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.insert("strategies", {"name": "pending", "dsl_config": DSL})
        t0 = time.perf_counter()
        assert [r["name"] for r in reader.find("strategies")] == ["first"]
        assert time.perf_counter() - t0 < 1.0
        writer.conn.execute("COMMIT")
        assert reader.count("strategies") == 2

        # Writer commits while the reader holds a read snapshot: only WAL allows this without
        # "database is locked" (a rollback journal needs an exclusive lock to commit).
        reader.conn.execute("BEGIN")
        assert reader.count("strategies") == 2
        t0 = time.perf_counter()
        with writer.transaction():
            writer.insert("strategies", {"name": "during_read", "dsl_config": DSL})
        assert time.perf_counter() - t0 < 1.0
        assert reader.count("strategies") == 2  # snapshot isolation
        reader.conn.execute("COMMIT")
        assert [r["name"] for r in reader.find("strategies", order_by="name")] == ["during_read", "first", "pending"]
