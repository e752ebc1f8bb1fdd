"""What the dashboard pages read: stored rows, run bundles and log files, as plain rows (no Streamlit here).

Readers never recompute (a run's numbers come from its bundle); logs are queried with DuckDB as they
lie on disk (``logs/events/<run_id>.jsonl``, ``logs/vq.log``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import platform
import re
import sqlite3
from pathlib import Path

import pandas as pd

from vibe_quant.home import Home
from vibe_quant.state import StateManager

# -- strategies ----------------------------------------------------------------------------------


def strategy_rows(state: StateManager) -> list[dict]:
    """Every stored strategy: id, name, kind, current version, number of stored versions, updated (UTC)."""
    counts = {}
    for row in state.find("strategy_versions"):
        counts[row["strategy_id"]] = counts.get(row["strategy_id"], 0) + 1
    return [{"id": r["id"], "name": r["name"], "kind": r["strategy_type"], "version": r["version"],
             "versions": counts.get(r["id"], 0), "updated": r["updated_at"], "description": r["description"] or ""}
            for r in state.find("strategies", order_by="name")]  # fmt: skip


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def strategy_versions(state: StateManager, strategy_id: int) -> list[dict]:
    """The stored versions of a strategy, oldest first, each with ``text``: the YAML it was saved as (or, for a
    document stored without its text, the document written as YAML)."""
    from vibe_quant.dsl.edit import dump

    out = []
    for row in state.find("strategy_versions", order_by="version", strategy_id=strategy_id):
        text = row["source_text"] or dump(_without_none(row["dsl_config"]))
        out.append({"version": row["version"], "sha256": row["sha256"], "created": row["created_at"], "text": text})
    return out


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff of two texts (empty when they are equal)."""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_label, new_label))


# -- runs and circuit breakers -------------------------------------------------------------------


def breaker_runs(home: Home, limit: int = 50) -> list[dict]:
    """The newest `limit` completed backtests that ran with sizing or circuit breakers, from their bundles'
    ``summary.json`` ``risk`` block: id, run id, strategy, symbols, period, trips, entry decisions."""
    from vibe_quant.backtest.persist import list_runs

    out = []
    for row in list_runs(home, limit=limit, status="completed"):
        summary_path = Path(row["bundle_path"] or "") / "summary.json"
        if not row["bundle_path"] or not summary_path.is_file():
            continue
        risk = json.loads(summary_path.read_text()).get("risk")
        if not risk:
            continue
        out.append({"id": row["id"], "run_id": row["run_hash"], "strategy": row["strategy"],
                    "symbols": ",".join(row["symbols"]), "period": f"{row['start_date']}..{row['end_date']}",
                    "trips": risk.get("trips", []), "halted_at_end": risk.get("halted_at_end", []),
                    "decisions": risk.get("decisions", {}), "config": risk.get("risk"),
                    "sizing": risk.get("sizing")})  # fmt: skip
    return out


def iso_ns(ns: int | None) -> str | None:
    """Nanoseconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC (None stays None)."""
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- LPI experiments ------------------------------------------------------------------------------


def short_label(label: str) -> str:
    """A bundle label's headline: the words before its first colon (``quotes-free``)."""
    return label.split(":", 1)[0].strip()


def experiment_rows(home: Home) -> list[dict]:
    """The experiment bundles under ``runs/``, newest first, from their ``summary.json``: id, name,
    strategy, instruments, period, folds, aggregate PnL and return, baseline PnL, the labels' headlines."""
    from vibe_quant.experiments.bundle import list_bundles

    out = []
    for path in list_bundles(home):
        s = json.loads((path / "summary.json").read_text())
        agg, base = s.get("aggregate") or {}, s.get("baseline")
        out.append({"id": s["experiment_id"], "name": s["name"], "strategy": s["strategy"],
                    "instruments": ",".join(s["instruments"]), "period": f"{s['start']}..{s['end']}",
                    "folds": len(s["folds"]), "pnl": agg.get("pnl"), "return": agg.get("return"),
                    "baseline pnl": (base or {}).get("aggregate", {}).get("pnl"),
                    "labels": ", ".join(short_label(x) for x in s.get("labels", []))})  # fmt: skip
    return out


def fold_table(summary: dict) -> pd.DataFrame:
    """One row per fold of ``summary.json``: the scored span, the strategy's metrics (every markout horizon
    it has), and the baseline's PnL, return and trades beside them with the difference."""
    base = summary.get("baseline") or {}
    by_fold = {row["fold"]: row for row in base.get("folds", [])}
    markouts = sorted({k for row in summary["folds"] for k in row if k.startswith("markout_")},
                      key=lambda k: int(k.split("_")[1].removesuffix("ms")))  # fmt: skip
    rows = []
    for row in summary["folds"]:
        b = by_fold.get(row["fold"], {})
        out = {"fold": row["fold"], "scored from": row["score_start"], "to": row["end"], "pnl": row["pnl"],
               "return %": _pct(row["return"]), "max DD %": _pct(row["max_drawdown"]), "Sharpe": row["sharpe_bars"],
               "fills": row["fills"], "maker fills": row["maker_fills"], "trades": row["trades"], "wins": row["wins"],
               "fees": row["fees"], "funding": row["funding"], "liquidations": row["liquidations"]}  # fmt: skip
        out.update({k.removeprefix("markout_").replace("ms_bps", " ms markout bps"): row.get(k) for k in markouts})
        if base:
            out.update({"baseline pnl": b.get("pnl"), "baseline return %": _pct(b.get("return")),
                        "baseline trades": b.get("trades"),
                        "pnl - baseline": None if row["pnl"] is None or b.get("pnl") is None else row["pnl"] - b["pnl"]})  # fmt: skip
        rows.append(out)
    return pd.DataFrame(rows)


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


# -- RL training runs and models -----------------------------------------------------------------

METRICS = ("net_return", "max_drawdown", "sharpe", "sortino", "turnover", "cvar", "n_trades", "largest_trade_share")
HIGHER_IS_BETTER = {"net_return": True, "max_drawdown": False, "sharpe": True, "sortino": True, "cvar": False,
                    "largest_trade_share": False, "positive windows": True}  # fmt: skip


def parity_verdict(evaluation: dict | None) -> str | None:
    """``identical`` or ``differs`` (the evaluation's kernel/NautilusTrader parity), None before an evaluation."""
    parity = (evaluation or {}).get("parity")
    if not parity:
        return None
    return "identical" if parity.get("identical") else "differs"


def training_run_rows(runs: list) -> list[dict]:
    """One row per :class:`vibe_quant.rl.runs.TrainingRun` (newest first as given): id, created, symbol,
    timeframe, period, algo, timesteps, whether evaluated, net return, parity verdict, registered model."""
    out = []
    for run in runs:
        m, ev = run.meta, run.evaluation
        out.append({"id": run.run_id, "created": m.get("created_at"), "symbol": m.get("symbol"),
                    "timeframe": m.get("timeframe"), "period": f"{m.get('start')}..{m.get('end')}",
                    "algo": m.get("algo"), "timesteps": m.get("timesteps"), "model": run.has_model,
                    "evaluated": ev is not None, "net return": ((ev or {}).get("metrics") or {}).get("net_return"),
                    "parity": parity_verdict(ev), "registered": m.get("model_id")})  # fmt: skip
    return out


def model_rows(models: list) -> list[dict]:
    """One row per :class:`vibe_quant.rl.registry.ModelRecord`: id, stage, market, algo, created and the
    headline metrics."""
    return [{"id": r.model_id, "stage": r.stage, "name": r.name, "symbol": r.symbol, "timeframe": r.timeframe,
             "algo": r.algo, "created": r.created_at, "net return": r.metrics.net_return,
             "max drawdown": r.metrics.max_drawdown, "sharpe": r.metrics.sharpe, "turnover": r.metrics.turnover,
             "trades": r.metrics.n_trades, "feature version": r.feature_version}
            for r in models]  # fmt: skip


def _metric_values(metrics) -> dict[str, float]:
    values = {name: float(getattr(metrics, name)) for name in METRICS}
    windows = metrics.window_returns
    values["windows"] = float(len(windows))
    values["positive windows"] = sum(1 for r in windows if r > 0) / len(windows) if windows else float("nan")
    return values


def champion_comparison(model, champion) -> pd.DataFrame:
    """A model's metrics beside its market's champion's (``Metrics`` of the registry; `champion` None when the
    market has none): metric, model, champion, delta (model - champion) and whether the model is better."""
    mine = _metric_values(model)
    theirs = None if champion is None else _metric_values(champion)
    rows = []
    for name, value in mine.items():
        other = None if theirs is None else theirs[name]
        delta = None if other is None else value - other
        better = None
        if delta is not None and name in HIGHER_IS_BETTER and delta == delta:
            better = delta > 0 if HIGHER_IS_BETTER[name] else delta < 0
        rows.append({"metric": name, "model": value, "champion": other, "delta": delta, "better": better})
    return pd.DataFrame(rows)


def check_rows(checks) -> pd.DataFrame:
    """The checks of a decision (``Check`` of the registry) as a table: rule, passed, value, threshold, message."""
    return pd.DataFrame([{"rule": c.rule, "passed": c.passed, "value": c.value, "threshold": c.threshold,
                          "message": c.message} for c in checks],
                        columns=["rule", "passed", "value", "threshold", "message"])  # fmt: skip


# -- discovery runs -------------------------------------------------------------------------------

CHECKS = ("dsr", "pbo", "walk_forward", "holdout", "baseline")  # the guard rails (docs/specs.md#discovery-guard-rails)
FINALIST_METRICS = ("sharpe_ratio", "sortino_ratio", "total_return", "net_pnl", "max_drawdown", "profit_factor",
                    "win_rate", "total_trades", "total_fees", "total_funding", "avg_trade_duration_hours")  # fmt: skip


def discovery_health(row: dict) -> str:
    """A discovery run's status; a ``running`` row whose process is gone or whose heartbeat is stale says so
    (``gone``/``stale``: the run stopped without marking itself, resume it)."""
    from vibe_quant.jobs.health import job_health

    return job_health(row).state


def discovery_run_rows(runs: list[dict]) -> list[dict]:
    """One row per ``discovery_runs`` row (as given, newest first): id, status (see :func:`discovery_health`),
    market, period, population, generations done of the configured ones, genomes evaluated, cache hits,
    finalists that passed, created (UTC)."""
    out = []
    for r in runs:
        c, s = r["config"], r.get("summary") or {}
        out.append({"id": r["id"], "status": discovery_health(r), "symbols": ",".join(c["symbols"]),
                    "timeframe": c["timeframe"], "period": f"{c['start']}..{c['end']}", "population": c["population"],
                    "generations": f"{r['generation'] if r['generation'] >= 0 else '-'}/{c['generations']}",
                    "evaluated": r["evaluated"], "cache hits": r["cache_hits"],
                    "passed": f"{s['passed']}/{s['finalists']}" if "passed" in s else None,
                    "created": r["created_at"]})  # fmt: skip
    return out


def generation_points(generations: list[dict]) -> list[dict]:
    """``discovery_generations`` rows as the fitness figure takes them: generation, front size and the stored
    statistics, flat."""
    return [{"generation": g["generation"], "front": len(g["front"]), **g["stats"]} for g in generations]


def discovery_genomes(state: StateManager, run_id: int, keys: list[str]) -> list[dict]:
    """The search genomes `keys` of run `run_id`, in the order of `keys` (plain rows: key, description,
    sharpe, max_drawdown, profit_factor, trades, complexity, generation first produced)."""
    if not keys:
        return []
    marks = ",".join("?" * len(keys))
    found = state.conn.execute(
        "SELECT genome_key, description, sharpe_ratio, max_drawdown, profit_factor, total_trades, complexity, "
        f"generation FROM discovery_genomes WHERE run_id = ? AND role = 'search' AND genome_key IN ({marks})",
        [run_id, *keys],
    ).fetchall()
    by_key = {row[0]: dict(zip(("key", "description", "sharpe", "max_drawdown", "profit_factor", "trades",
                                 "complexity", "generation"), row, strict=True)) for row in found}  # fmt: skip
    return [by_key[k] for k in keys if k in by_key]


def finalist_table(rows: list[dict]) -> pd.DataFrame:
    """One row per finalist (``service.finalist_rows``): rank, key, verdict, rules, genes, training and held-out
    headline metrics, and each guard rail passed or not."""
    out = []
    for f in rows:
        tm, hm, checks = f["genome"]["metrics"] or {}, f["holdout_metrics"] or {}, f["checks"] or {}
        out.append({"rank": f["rank"], "genome": f["genome_key"], "verdict": "passed" if f["passed"] else "rejected",
                    "rules": f["genome"]["description"], "genes": f["genome"]["complexity"],
                    "train Sharpe": tm.get("sharpe_ratio"), "train return": tm.get("total_return"),
                    "train max DD": tm.get("max_drawdown"), "train PF": tm.get("profit_factor"),
                    "train trades": tm.get("total_trades"), "held-out Sharpe": hm.get("sharpe_ratio"),
                    "held-out return": hm.get("total_return"), "held-out trades": hm.get("total_trades"),
                    **{name: (checks[name]["passed"] if name in checks else None) for name in CHECKS}})  # fmt: skip
    return pd.DataFrame(out)


def finalist_metrics(finalist: dict) -> pd.DataFrame:
    """A finalist's training metrics beside its held-out ones (metric, training, held out): every metric either
    period stored, the headline ones first."""
    tm, hm = finalist["genome"]["metrics"] or {}, finalist["holdout_metrics"] or {}
    names = [m for m in FINALIST_METRICS if m in tm or m in hm]
    names += sorted((set(tm) | set(hm)) - set(names))
    return pd.DataFrame([{"metric": m, "training": _float(tm.get(m)), "held out": _float(hm.get(m))} for m in names],
                        columns=["metric", "training", "held out"])  # fmt: skip


def finalist_checks(finalist: dict) -> pd.DataFrame:
    """A finalist's guard-rail checks: check, passed, reason (None when passed), figures (as compact JSON)."""
    checks = finalist["checks"] or {}
    names = [c for c in CHECKS if c in checks] + sorted(set(checks) - set(CHECKS))
    return pd.DataFrame([{"check": n, "passed": bool(checks[n]["passed"]), "reason": checks[n].get("reason"),
                          "figures": json.dumps(checks[n].get("figures") or {}, default=str)} for n in names],
                        columns=["check", "passed", "reason", "figures"])  # fmt: skip


def _float(v) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


# -- paper and live sessions ----------------------------------------------------------------------


def paper_sessions(state: StateManager, modes: tuple[str, ...], limit: int = 200) -> list[dict]:
    """The newest `limit` paper sessions of `modes` (``replay``, ``testnet``, ``live``), newest first, each with
    ``liveness`` (a running row whose process is gone is ``crashed``)."""
    from vibe_quant.paper.service import liveness

    rows = sorted((r for mode in modes for r in state.find("paper_sessions", mode=mode)), key=lambda r: -r["id"])
    return [{**r, "liveness": liveness(r)} for r in rows[:limit]]


# -- logs ---------------------------------------------------------------------------------------


def event_files(home: Home) -> list[Path]:
    return sorted((home.logs / "events").glob("*.jsonl"))


def _events_sql(where: str) -> str:
    return ("SELECT json->>'time' AS time, json->>'run_id' AS run_id, json->>'type' AS type, "
            "coalesce(json->>'instrument', '') AS instrument, coalesce(json->>'strategy', json->>'scope', '') AS strategy, "
            "json::VARCHAR AS event FROM read_json_objects($files, format='newline_delimited') "
            f"WHERE {where} ORDER BY CAST(json->>'ts' AS BIGINT), run_id LIMIT $limit")  # fmt: skip


def event_facets(home: Home) -> dict:
    """The run ids, event types and first/last event day over every event log."""
    import duckdb

    files = [str(p) for p in event_files(home)]
    if not files:
        return {"runs": [], "types": [], "first": None, "last": None}
    with duckdb.connect() as con:
        types, first, last = con.execute(
            "SELECT list(DISTINCT json->>'type' ORDER BY json->>'type'), min(json->>'time'), max(json->>'time') "
            "FROM read_json_objects($files, format='newline_delimited')",
            {"files": files},
        ).fetchone()
    return {"runs": [Path(f).stem for f in files], "types": types or [],
            "first": dt.date.fromisoformat(first[:10]) if first else None,
            "last": dt.date.fromisoformat(last[:10]) if last else None}  # fmt: skip


def query_events(home: Home, runs: list[str] | None = None, types: list[str] | None = None,
                 start: dt.date | None = None, end: dt.date | None = None, text: str | None = None,
                 limit: int = 1000) -> pd.DataFrame:  # fmt: skip
    """Events of the runs' event logs matching every filter given, in time order.

    Parameters
    ----------
    runs, types : list of str, optional
        Only these run ids (event-log file names) / event types (``FILL``, ``CIRCUIT_BREAKER``...).
    start, end : date, optional
        Event time (UTC) from the start of `start` to the end of `end`, inclusive.
    text : str, optional
        Case-insensitive substring of the event's JSON line.
    limit : int, default 1000

    Returns
    -------
    DataFrame
        Columns ``time, run_id, type, instrument, strategy, event`` (the whole line as JSON).
    """
    import duckdb

    files = [str(p) for p in event_files(home) if runs is None or p.stem in runs]
    columns = ["time", "run_id", "type", "instrument", "strategy", "event"]
    if not files:
        return pd.DataFrame(columns=columns)
    where, params = ["true"], {"files": files, "limit": int(limit)}
    if types is not None:
        where.append("list_contains($types, json->>'type')")
        params["types"] = list(types)
    if start is not None:
        where.append("json->>'time' >= $start")
        params["start"] = start.isoformat()
    if end is not None:
        where.append("json->>'time' < $end")
        params["end"] = (end + dt.timedelta(days=1)).isoformat()
    if text:
        where.append("contains(lower(json::VARCHAR), $text)")
        params["text"] = text.lower()
    with duckdb.connect() as con:
        return con.execute(_events_sql(" AND ".join(where)), params).df()


def app_log_path(home: Home) -> Path:
    return home.logs / "vq.log"


def query_app_log(home: Home, levels: list[str] | None = None, text: str | None = None,
                  limit: int = 1000) -> pd.DataFrame:  # fmt: skip
    """Lines of the application log (``logs/vq.log``, JSON lines ``ts, level, logger, msg[, exc]``), newest first.

    `levels` keeps those levels only; `text` is a case-insensitive substring of the logger, message or traceback.
    """
    import duckdb

    columns = ["ts", "level", "logger", "msg", "exc"]
    path = app_log_path(home)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    where, params = ["true"], {"file": str(path), "limit": int(limit)}
    if levels is not None:
        where.append("list_contains($levels, json->>'level')")
        params["levels"] = list(levels)
    if text:
        where.append("contains(lower(json::VARCHAR), $text)")
        params["text"] = text.lower()
    sql = ("SELECT json->>'ts' AS ts, json->>'level' AS level, json->>'logger' AS logger, json->>'msg' AS msg, "
           "coalesce(json->>'exc', '') AS exc FROM read_json_objects($file, format='newline_delimited') "
           f"WHERE {' AND '.join(where)} ORDER BY ts DESC LIMIT $limit")  # fmt: skip
    with duckdb.connect() as con:
        return con.execute(sql, params).df()


# -- system information --------------------------------------------------------------------------

SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSPHRASE)", re.IGNORECASE)


def versions() -> dict[str, str]:
    """Versions of vibe-quant, Python and the libraries that shape results or the dashboard."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("vibe-quant", "nautilus_trader", "pyarrow", "pandas", "duckdb", "streamlit", "plotly"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under `path` ((0, 0) if it does not exist)."""
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
            except OSError:
                continue
            files += 1
    return files, size


def catalog_info(home: Home) -> dict:
    """The catalog's files and bytes on disk, and what its ``manifest.json`` says per symbol (bars per timeframe)."""
    files, size = folder_size(home.catalog)
    manifest_path = home.catalog / "manifest.json"
    symbols = {}
    generated = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        generated = manifest.get("generated_at")
        for symbol, entry in manifest.get("symbols", {}).items():
            symbols[symbol] = {tf: v.get("bars", 0) for tf, v in entry.get("timeframes", {}).items()}
    return {"files": files, "bytes": size, "manifest_generated": generated, "bars": symbols}


def sqlite_info(home: Home, state: StateManager) -> dict:
    """The state database: file and WAL sizes, schema version, page size and count, rows per table."""
    db = home.db_path
    wal = db.with_name(db.name + "-wal")
    conn = state.conn
    rows = {}
    for table in state.tables:
        try:
            rows[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.Error:
            rows[table] = None
    return {"path": str(db), "bytes": db.stat().st_size if db.exists() else 0,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "page_size": conn.execute("PRAGMA page_size").fetchone()[0],
            "page_count": conn.execute("PRAGMA page_count").fetchone()[0],
            "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0], "rows": rows}  # fmt: skip


def credential_status() -> dict[str, str]:
    """Which credential-like environment variables (``BINANCE_*``, ``VQ_*`` naming a key, secret, token or
    password) are set: name -> ``"set"``. Values are never read into the result."""
    return {name: "set" for name in sorted(os.environ)
            if name.startswith(("BINANCE_", "VQ_")) and SECRET_NAME.search(name)}  # fmt: skip
