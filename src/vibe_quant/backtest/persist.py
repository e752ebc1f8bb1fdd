"""Persist a backtest: state-database rows and the result bundle ``runs/<run_id>/``.

Bundle (docs/specs.md#result-bundle, plus what later stages read): ``config_resolved.yaml``,
``manifest_ref.json``, ``summary.json``, ``fills.csv``, ``positions.csv``, ``trades.csv``,
``funding.csv``, ``equity.parquet`` (ts, equity, drawdown, exposure, margin) and ``events.jsonl`` (also hard-linked as
``logs/events/<run_id>.jsonl``, docs/specs.md#event-log). Files are staged and moved in together.
Readers never recompute: the dashboard and reports read these files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import socket
import sqlite3
import threading
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from vibe_quant import code_version
from vibe_quant.backtest.config import BacktestConfig, parse_config
from vibe_quant.backtest.engine import BacktestResult
from vibe_quant.backtest.ledger import Trade
from vibe_quant.backtest.recorder import FillRecord, FundingRecord
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.staging import OnExists, StagingArea
from vibe_quant.state import StateManager
from vibe_quant.stats.performance import drawdown_series
from vibe_quant.timeutil import iso

RESULT_COLUMNS = (
    "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
    "max_drawdown_duration_days", "volatility_annual", "total_trades", "winning_trades", "losing_trades",
    "win_rate", "profit_factor", "avg_win", "avg_loss", "largest_win", "largest_loss",
    "avg_trade_duration_hours", "max_consecutive_wins", "max_consecutive_losses", "total_fees",
    "total_funding", "total_slippage", "deflated_sharpe", "walk_forward_efficiency",
    "purged_kfold_mean_sharpe", "execution_time_seconds", "starting_balance",
)  # fmt: skip
HEARTBEAT_S = 5.0


def clean(value):
    """JSON-safe: nan/inf become None."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


# -- state database ------------------------------------------------------------------------------


def strategy_row(state: StateManager, config: BacktestConfig) -> int:
    """Return the ``strategies`` id of `config`'s strategy, creating or versioning its row.

    A strategy without a document (a Python class) gets one row, named ``kind:name`` (a DSL
    strategy may carry the same name, e.g. ema_cross.yaml). A strategy with a document (a DSL
    strategy, and later kinds that have one) is versioned by :func:`save_strategy_version`.
    """
    if config.document is None:
        key = f"{config.kind}:{config.strategy}"
        rows = state.find("strategies", name=key)
        if rows:
            return rows[0]["id"]
        return state.insert("strategies", {"name": key, "dsl_config": {config.kind: config.strategy},
                                           "strategy_type": config.kind,
                                           "description": f"{config.kind} strategy {config.strategy}"})  # fmt: skip
    return save_strategy_version(state, config.kind, config.document)[0]


def save_strategy_version(state: StateManager, kind: str, document: dict,
                          source_text: str | None = None) -> tuple[int, int, bool]:  # fmt: skip
    """Store a strategy document of `kind` under its ``name``; return ``(strategy_id, version, is_new_version)``.

    The row holds the latest document; a new document bumps ``version`` and is kept in
    ``strategy_versions`` (by content hash); an earlier document again becomes current.
    """
    import hashlib

    digest = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    name = document["name"]
    with state.transaction():
        rows = state.find("strategies", name=name)
        if rows and rows[0]["strategy_type"] != kind:  # a row of another kind from before namespacing: move it aside
            state.update("strategies", rows[0]["id"], {"name": f"{rows[0]['strategy_type']}:{name}"})
            rows = []
        if not rows:
            sid = state.insert("strategies", {"name": name, "description": document.get("description", ""),
                                              "dsl_config": document, "strategy_type": kind, "version": 1})  # fmt: skip
            state.insert("strategy_versions", {"strategy_id": sid, "version": 1, "sha256": digest, "dsl_config": document,
                                               "source_text": source_text})  # fmt: skip
            return sid, 1, True
        sid = rows[0]["id"]
        known = state.find("strategy_versions", strategy_id=sid, sha256=digest)
        if known:  # an earlier version again: it becomes the current one
            version = known[0]["version"]
            if rows[0]["version"] != version:
                state.update("strategies", sid, {"dsl_config": document, "version": version, "updated_at": now_iso()})
            return sid, version, False
        version = max([v["version"] for v in state.find("strategy_versions", strategy_id=sid)] or [0]) + 1
        state.insert("strategy_versions", {"strategy_id": sid, "version": version, "sha256": digest, "dsl_config": document,
                                           "source_text": source_text})  # fmt: skip
        state.update("strategies", sid, {"dsl_config": document, "description": document.get("description", ""),
                                         "version": version, "strategy_type": kind, "updated_at": now_iso()})  # fmt: skip
        return sid, version, True


def create_run(state: StateManager, config: BacktestConfig) -> int:
    """Insert a pending ``backtest_runs`` row for `config`; return its id."""
    from vibe_quant.risk.config import preset_ids

    cfg = config.resolved()
    return state.insert("backtest_runs", {
        "strategy_id": strategy_row(state, cfg), "run_mode": cfg.mode, "symbols": list(cfg.symbols),
        "timeframe": cfg.timeframe, "start_date": cfg.start.isoformat(), "end_date": cfg.end.isoformat(),
        "parameters": msgspec.to_builtins(cfg), "latency_preset": cfg.latency, "status": "pending",
        **preset_ids(state, cfg.sizing, cfg.risk),
    })  # fmt: skip


def load_run_config(
    state: StateManager, run_row: int, statuses: tuple[str, ...] = ("pending", "failed")
) -> BacktestConfig:
    """Return the config of run `run_row` if its status is one of `statuses` (default: a run that can be run).

    Raises
    ------
    UserError
        No such run, or it is in another status.
    """
    row = state.get("backtest_runs", run_row)
    if row is None:
        raise UserError(f"no backtest run {run_row} in the state database")
    if row["status"] not in statuses:
        which = "pending (or failed)" if statuses == ("pending", "failed") else " or ".join(statuses)
        raise UserError(f"backtest run {run_row} is {row['status']}; only {which} runs can be used here")
    return parse_config(row["parameters"])


def list_runs(home: Home, limit: int = 20, status: str | None = None, sweeps: bool = False) -> list[dict]:
    """The newest `limit` runs (screening sweeps when `sweeps`, else single backtests) with their
    strategy name and key results; empty when the home has no state database yet.

    Raises
    ------
    UserError
        `limit` below 1.
    """
    if limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if not home.db_path.exists():
        return []
    sweep = "IS NOT NULL" if sweeps else "IS NULL"
    where, args = f"r.sweep_spec {sweep}", []
    if status is not None:
        where += " AND r.status = ?"
        args.append(status)
    with StateManager(home.db_path) as state:
        rows = state.conn.execute(
            "SELECT r.id, r.status, r.run_mode, r.symbols, r.timeframe, r.start_date, r.end_date, r.run_hash, "
            "r.bundle_path, r.error_message, r.created_at, r.parameters, b.sharpe_ratio, b.total_return, "
            "b.max_drawdown, b.total_trades, "
            "(SELECT count(*) FROM sweep_results s WHERE s.run_id = r.id) AS points "
            f"FROM backtest_runs r LEFT JOIN backtest_results b ON b.run_id = r.id WHERE {where} "
            "ORDER BY r.id DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
    out = []
    for r in rows:
        row = dict(r)
        row["symbols"] = json.loads(row["symbols"])
        row["strategy"] = json.loads(row.pop("parameters")).get("strategy", "?")
        out.append(row)
    return out


def load_summary(home: Home, run: str) -> tuple[dict, dict]:
    """A finished backtest's row and its bundle's ``summary.json``, by row id or run id hash.

    Raises
    ------
    UserError
        No such run, it has no bundle (not finished, or a screening sweep), or the bundle is gone.
    """
    if not home.db_path.exists():
        raise UserError(f"no state database in {home.root}: no run to show")
    with StateManager(home.db_path) as state:
        rows = state.find("backtest_runs", id=int(run)) if run.isdigit() else state.find("backtest_runs", run_hash=run)
    if not rows:
        raise UserError(f"no backtest run {run!r} in {home.db_path} (vq backtest list shows them)")
    row = rows[-1]
    if row.get("sweep_spec") is not None:
        raise UserError(f"run {row['id']} is a screening sweep, not a backtest: vq screen top {row['id']} shows its "
                        "best points (vq screen list: the sweeps)")  # fmt: skip
    if not row.get("bundle_path"):
        fix = ("wait for it to finish" if row["status"] == "running"
               else f"run it: vq backtest run --run-id {row['id']}")  # fmt: skip
        raise UserError(f"backtest run {row['id']} is {row['status']}: it has no results"
                        + (f" ({row['error_message']})" if row.get("error_message") else "") + f"; {fix}")  # fmt: skip
    summary = Path(row["bundle_path"]) / "summary.json"
    if not summary.is_file():
        raise UserError(f"backtest run {row['id']}: its bundle {summary.parent} is missing (deleted or moved). Fix: "
                        f"restore it, or run the same backtest again (the same options give run id {row['run_hash']} "
                        "and rewrite the bundle)")  # fmt: skip
    return row, json.loads(summary.read_text())


class Heartbeat:
    """Mark a run running (pid, host, heartbeat every few seconds) from a background thread.

    A beat the database refuses (busy past its timeout) is skipped, not fatal: a dead heartbeat
    thread would get a live run declared stale (``vibe_quant.jobs.health``).
    """

    def __init__(self, db_path: Path, run_row: int, interval_s: float = HEARTBEAT_S, table: str = "backtest_runs"):
        self.db_path, self.run_row, self.interval_s, self.table = db_path, run_row, interval_s, table
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        now = now_iso()
        with StateManager(self.db_path) as state:
            state.update(self.table, self.run_row, {"status": "running", "pid": os.getpid(), "started_at": now,
                                                         "heartbeat_at": now, "error_message": None,
                                                         "host": socket.gethostname()})  # fmt: skip
        self._thread.start()
        return self

    def _beat(self) -> None:
        with StateManager(self.db_path) as state:
            while not self._stop.wait(self.interval_s):
                try:
                    state.update(self.table, self.run_row, {"heartbeat_at": now_iso()})
                except sqlite3.OperationalError as exc:
                    logging.getLogger(__name__).warning("run %d heartbeat not written: %s", self.run_row, exc)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        self._thread.join()
        if exc is not None:
            with StateManager(self.db_path) as state:
                state.update(self.table, self.run_row, {"status": "failed", "completed_at": now_iso(),
                                                        "error_message": str(exc)[:2000]})  # fmt: skip


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def record_results(state: StateManager, run_row: int, result: BacktestResult, bundle: Path) -> int:
    """Write ``backtest_results`` and ``trades`` rows and complete the run; return the result id."""
    m = result.metrics
    values = {k: clean(m.get(k)) for k in RESULT_COLUMNS}
    values["max_drawdown_duration_days"] = int(m["max_drawdown_duration_days"])
    values["notes"] = "; ".join(result.warnings) or None
    with state.transaction():
        state.conn.execute("DELETE FROM backtest_results WHERE run_id = ?", (run_row,))
        state.conn.execute("DELETE FROM trades WHERE run_id = ?", (run_row,))
        result_id = state.insert("backtest_results", {"run_id": run_row, **values})
        for t in result.trades:
            state.insert("trades", {"run_id": run_row, **trade_row(t)})
        state.update("backtest_runs", run_row, {
            "status": "completed", "completed_at": now_iso(), "run_hash": result.run_id, "bundle_path": str(bundle),
        })  # fmt: skip
    return result_id


TRADE_COLUMNS = (
    "symbol", "direction", "leverage", "entry_time", "exit_time", "entry_price", "exit_price", "quantity",
    "entry_fee", "exit_fee", "funding_fees", "slippage_cost", "gross_pnl", "net_pnl", "roi_percent", "exit_reason",
)  # fmt: skip
# NautilusTrader's positions report columns (for runs without positions).
POSITION_COLUMNS = (
    "position_id", "trader_id", "strategy_id", "instrument_id", "account_id", "opening_order_id",
    "closing_order_id", "entry", "side", "signed_qty", "quantity", "peak_qty", "ts_init", "ts_opened",
    "ts_last", "ts_closed", "duration_ns", "avg_px_open", "avg_px_close", "realized_return",
    "realized_pnl", "commissions",
)  # fmt: skip


def _csv(rows: list[dict], record_cls) -> str:
    import pandas as pd

    return pd.DataFrame(rows, columns=[f.name for f in dataclasses.fields(record_cls)]).to_csv(index=False)


def trade_row(t: Trade) -> dict:
    return {
        "symbol": t.symbol, "direction": t.direction, "leverage": round(t.leverage),
        "entry_time": iso(t.entry_ns), "exit_time": iso(t.exit_ns), "entry_price": t.entry_price,
        "exit_price": t.exit_price, "quantity": t.quantity, "entry_fee": t.entry_fee, "exit_fee": t.exit_fee,
        "funding_fees": t.funding_fees, "slippage_cost": t.slippage_cost, "gross_pnl": t.gross_pnl,
        "net_pnl": t.net_pnl, "roi_percent": t.roi_percent, "exit_reason": t.exit_reason,
    }  # fmt: skip


# -- result bundle ---------------------------------------------------------------------------------


def write_bundle(home: Home, result: BacktestResult, data_digest: str) -> Path:
    """Write ``runs/<run_id>/`` (replacing an earlier bundle of the same id) and return it."""
    import pandas as pd

    home.runs.mkdir(parents=True, exist_ok=True)
    rid = result.run_id
    staging = StagingArea(home.runs)
    try:

        def put(name: str, text: str) -> None:
            staging.write_bytes(f"{rid}/{name}", text.encode("utf-8"), OnExists.REPLACE)

        put("config_resolved.yaml", yaml.safe_dump(msgspec.to_builtins(result.config), sort_keys=True))
        manifest = home.catalog / "manifest.json"
        put("manifest_ref.json", json.dumps({
            "catalog": str(home.catalog), "data_digest": data_digest, "code_version": code_version(),
            "catalog_manifest_generated_at": json.loads(manifest.read_text())["generated_at"] if manifest.exists() else None,
        }, indent=2) + "\n")  # fmt: skip
        summary = {
            "run_id": rid, "config": msgspec.to_builtins(result.config),
            "metrics": {k: clean(v) for k, v in result.metrics.items()},
            "costs": {k: clean(v) for k, v in result.costs.items()}, "warnings": result.warnings,
            "bars_processed": result.bars_processed, "elapsed_s": result.elapsed_s,
            "risk": result.extra.get("risk"),
        }  # fmt: skip
        if result.extra.get("mode") == "ticks":  # bars_processed counts ticks (bar bundles keep their keys)
            summary["ticks"] = {k: result.extra[k] for k in ("trades", "quotes", "quotes_free")}
        put("summary.json", json.dumps(summary, indent=2) + "\n")
        # Empty tables keep their header so every file reads back as a table.
        put("fills.csv", _csv([dataclasses.asdict(f) for f in result.recorder.fills], FillRecord))
        put(
            "trades.csv", pd.DataFrame([trade_row(t) for t in result.trades], columns=TRADE_COLUMNS).to_csv(index=False)
        )
        put("funding.csv", _csv([dataclasses.asdict(f) for f in result.recorder.funding], FundingRecord))
        positions = result.positions_report
        if positions is None or not len(positions):
            positions = pd.DataFrame(columns=POSITION_COLUMNS).set_index("position_id")
        put("positions.csv", positions.to_csv())
        columns = {
            "ts": pa.array(result.equity_ts, pa.int64()), "equity": pa.array(result.equity, pa.float64()),
            "drawdown": pa.array(drawdown_series(result.equity) if len(result.equity) else np.empty(0)),
        }  # fmt: skip
        for name in ("exposure", "margin"):  # gross notional and isolated margin at each close
            values = getattr(result.recorder, name)
            if values is not None:
                columns[name] = pa.array(values, pa.float64())
        equity = pa.table(columns)
        pq.write_table(equity, staging.path(f"{rid}/equity.parquet"))
        staging.add(f"{rid}/equity.parquet", OnExists.REPLACE)
        events = result.recorder.all_events()
        lines = (
            json.dumps({"time": iso(e["ts"]), "run_id": rid, **{k: clean(v) for k, v in e.items()}}) for e in events
        )
        put("events.jsonl", "".join(line + "\n" for line in lines))
        staging.commit()
    finally:
        staging.abort()
    bundle = home.runs / rid
    link = home.logs / "events" / f"{rid}.jsonl"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    os.link(bundle / "events.jsonl", link)
    return bundle


def sweep_point(state: StateManager, point_id: int) -> dict:
    """The ``sweep_results`` row `point_id`.

    Raises
    ------
    UserError
        No such sweep point.
    """
    row = state.get("sweep_results", point_id)
    if row is None:
        raise UserError(
            f"--validates {point_id}: no sweep point {point_id} (vq screen top RUN_ID lists a sweep's points)"
        )
    return row


def link_validation(state: StateManager, point_id: int, run_row: int) -> None:
    """Record backtest run `run_row` as the validation of sweep point `point_id` (its results show it)."""
    sweep_point(state, point_id)
    state.update("sweep_results", point_id, {"validation_run_id": run_row})
