"""``vq dolphin backtest``: the engine over stored scan tables, with metrics and a bundle (docs/specs.md#dolphin-engine).

:func:`load_scan_data` reads a scan directory's days (contiguous dates, the manifest's universe);
:func:`load_acb_schedule` its ``acb_factors.parquet`` (boost and beta per date; without one the
engine runs with boost 1.0 and beta 0, said in the notes). :func:`run_dolphin` runs the array
engine (or the per-bar reference) and computes our standard metrics from the marked-to-market
equity curve (365-day years) with the cost breakdown; :func:`write_bundle` writes the run's
folder: ``ledger.csv``/``ledger.parquet`` (one row per trade), ``daily.csv``, ``equity.parquet``,
``summary.json`` (config, profile, metrics, costs, counts, notes). The folder is staged and renamed
into place: a failed run leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vibe_quant.dolphin.array_engine import EngineResult, ScanData, run_array, run_reference
from vibe_quant.dolphin.engine_config import EngineConfig
from vibe_quant.dolphin.providers import AcbSchedule
from vibe_quant.dolphin.store import MANIFEST, day_files, read_manifest
from vibe_quant.errors import UserError
from vibe_quant.stats.performance import NS_PER_DAY, daily_returns, performance, trade_statistics

NS_PER_S = 1_000_000_000
BUNDLE_FORMAT = "vibe-quant dolphin backtest 1"


def load_scan_data(directory: Path, start: dt.date | None = None, end: dt.date | None = None) -> ScanData:
    """The scan rows of `directory` for `start`..`end` (inclusive; default: every stored day).

    Raises
    ------
    UserError
        No scan manifest, no day in the range, a date missing inside it (naming it), or a day file
        without a universe column.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise UserError(f"{directory}: no scan tables ({MANIFEST} missing); build them with `vq dolphin scans build`")
    files = day_files(directory)
    if not files:
        raise UserError(f"{directory}: no scan files; build them with `vq dolphin scans build`")
    first, last = min(files), max(files)
    start, end = start or first, end or last
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    if start < first or end > last:
        raise UserError(f"{directory} holds {first}..{last}; --start/--end {start}..{end} reach outside it")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    missing = [d for d in days if d not in files]
    if missing:
        raise UserError(f"{directory}: no scans for {missing[0]} ({len(missing)} date(s) missing in {start}..{end}); "
                        f"rebuild with `vq dolphin scans build --start {missing[0]} --end {missing[-1]}`")  # fmt: skip
    symbols = tuple(manifest["universe"])
    ts, vel_div, closes, offsets = [], [], [], [0]
    for d in days:
        table = pq.read_table(files[d])
        absent = [s for s in ("ts", "vel_div", *symbols) if s not in table.column_names]
        if absent:
            raise UserError(
                f"{files[d]}: no column {absent[0]!r} of the manifest's universe; rebuild this day with --force"
            )
        ts.append(table.column("ts").cast(pa.int64()).to_numpy())
        vel_div.append(table.column("vel_div").to_numpy())
        closes.append(
            np.column_stack([table.column(s).to_numpy() for s in symbols]) if symbols else np.zeros((table.num_rows, 0))
        )
        offsets.append(offsets[-1] + table.num_rows)
    return ScanData(symbols, tuple(days), np.asarray(offsets, dtype=np.int64), np.concatenate(ts).astype(np.int64),
                    np.concatenate(vel_div).astype(np.float64), np.ascontiguousarray(np.concatenate(closes)))  # fmt: skip


def load_acb_schedule(directory: Path) -> tuple[AcbSchedule, str | None]:
    """The ACB's daily ``(base_boost, beta)`` from `directory`'s factor table, and a note when there is none."""
    from vibe_quant.dolphin.acb_build import FILE, read_acb_factors

    if not (directory / FILE).is_file():
        return AcbSchedule(), (f"no ACB factor table in {directory}: boost 1.0 and beta 0 every day "
                               "(build one with `vq dolphin acb-factors build`)")  # fmt: skip
    table, metadata = read_acb_factors(directory)
    dates = table.column("date").to_pylist()
    boosts, betas = table.column("base_boost").to_numpy(), table.column("beta").to_numpy()
    daily = {d: (float(b), float(beta)) for d, b, beta in zip(dates, boosts, betas, strict=True)}
    note = "ACB beta uses a full-sample threshold (LOOK-AHEAD)" if metadata.get("look_ahead") else None
    return AcbSchedule(daily), note


@dataclass
class DolphinRun:
    """A finished engine run with its metrics, costs and notes."""

    result: EngineResult
    scans: Path
    start: dt.date
    end: dt.date
    engine: str
    metrics: dict
    costs: dict
    returns: np.ndarray  # one per calendar day
    notes: list[str] = field(default_factory=list)
    scans_digest: str = ""

    @property
    def run_id(self) -> str:
        key = json.dumps([self.result.config.digest(), self.scans_digest, str(self.start), str(self.end)])
        return f"dolphin-{self.start:%Y%m%d}-{self.end:%Y%m%d}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def scans_digest(directory: Path, data: ScanData) -> str:
    manifest = read_manifest(directory) or {}
    days = manifest.get("days", {})
    key = json.dumps([list(data.symbols), [days.get(d.isoformat(), {}).get("sha256") for d in data.days]])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def run_dolphin(directory: Path, cfg: EngineConfig, start: dt.date | None = None, end: dt.date | None = None,
                engine: str = "array", acb: AcbSchedule | None = None, **providers) -> DolphinRun:  # fmt: skip
    """Run the engine over `directory`'s scans for `start`..`end` (``engine``: ``array`` or ``reference``).

    Raises
    ------
    UserError
        As :func:`load_scan_data`; an unknown `engine`.
    """
    if engine not in ("array", "reference"):
        raise UserError(f"--engine {engine!r}: choose array (fast) or reference (the per-bar loop)")
    data = load_scan_data(directory, start, end)
    notes = []
    if acb is None and cfg.use_acb:
        acb, note = load_acb_schedule(directory)
        notes += [note] if note else []
    run = (run_array if engine == "array" else run_reference)(data, cfg, acb=acb, **providers)
    start_ns = int(dt.datetime.combine(data.days[0], dt.time(), dt.UTC).timestamp()) * NS_PER_S
    end_ns = start_ns + len(data.days) * NS_PER_DAY
    metrics, costs = score(run, start_ns, end_ns)
    returns = daily_returns(run.ts, run.equity, cfg.initial_capital, start_ns)
    notes.append(f"cost profile {cfg.profile}: " + ("maker/taker blend fees and exit slips; SmartPlacer refunds and "
                 f"the legacy +{cfg.ob_edge_bps:g} bp edge drawn as the specification models them" if cfg.profile == "seed"
                 else "maker/taker blend fees and exit slips only (no refunds, no random edge)"))  # fmt: skip
    notes.append("no funding, no liquidation, fills at the scan row's close (the engine's own accounting)")
    return DolphinRun(run, directory, data.days[0], data.days[-1], engine, metrics, costs, returns, notes,
                      scans_digest(directory, data))  # fmt: skip


def score(run: EngineResult, start_ns: int, end_ns: int) -> tuple[dict, dict]:
    """Our standard metrics (equity curve, 365-day years; trade statistics) and the cost breakdown."""
    cfg, trades = run.config, run.trades
    metrics = performance(run.ts, run.equity, cfg.initial_capital, start_ns, end_ns)
    net = np.array([t.net for t in trades])
    held = np.array([t.exit_ts - t.entry_ts for t in trades], dtype=np.int64)
    metrics.update(trade_statistics(net, held))
    slip = sum(t.notional * abs(t.exit_bar_price - t.exit_price) / t.entry_price for t in trades)
    costs = {
        "profile": cfg.profile,
        "trades": len(trades),
        "price_pnl": float(sum(t.price_return * t.notional for t in trades)),
        "gross": float(sum(t.gross for t in trades)),
        "entry_fees": float(sum(t.entry_fee for t in trades)),
        "exit_fees": float(sum(t.exit_fee for t in trades)),
        "exit_slippage": float(slip),
        "refunds": float(sum(cfg.sp_refund * t.notional * (t.refund_entry + t.refund_exit) for t in trades)),
        "edge": float(sum(t.edge_pct * t.notional for t in trades)),
        "net": float(net.sum()) if len(net) else 0.0,
        "refund_entry_draws": run.counts.refund_entry,
        "refund_exit_draws": run.counts.refund_exit,
        "edge_draws": run.counts.edge,
        "funding": 0.0,
    }
    costs["fees"] = costs["entry_fees"] + costs["exit_fees"]
    metrics.update({"gross_pnl": costs["gross"], "net_pnl": costs["net"], "total_fees": costs["fees"],
                    "total_funding": 0.0, "total_slippage": costs["exit_slippage"], "final_equity": run.capital,
                    "liquidations": 0, "fills": 2 * len(trades)})  # fmt: skip
    return metrics, costs


LEDGER_COLUMNS = (
    "trade_id", "asset", "direction", "entry_ts", "exit_ts", "entry_bar", "exit_bar", "bars_held", "entry_price",
    "exit_price", "exit_bar_price", "notional", "leverage", "fraction", "bucket", "vel_div", "regime_size_mult",
    "posture", "exit_reason", "price_return", "pnl_pct_raw", "gross", "entry_fee", "exit_fee", "refund_entry",
    "refund_exit", "edge", "edge_pct", "net", "capital",
)  # fmt: skip


def ledger_table(run: EngineResult) -> pa.Table:
    rows = [msgspec.to_builtins(t) for t in run.trades]
    columns = {c: [r[c] for r in rows] for c in LEDGER_COLUMNS}
    table = pa.table(columns) if rows else pa.table({c: pa.array([], pa.float64()) for c in LEDGER_COLUMNS})
    for name in ("entry_ts", "exit_ts"):
        i = table.column_names.index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.int64()).cast(pa.timestamp("ns", tz="UTC")))
    return table


def _csv_value(v) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return str(v)


def write_bundle(run: DolphinRun, root: Path) -> Path:
    """Write the run's folder under `root` (staged, then renamed; an existing folder is replaced) and return it."""
    final = root / run.run_id
    staging = root / f".{run.run_id}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        ledger = ledger_table(run.result)
        pq.write_table(ledger, staging / "ledger.parquet")
        lines = [",".join(LEDGER_COLUMNS)]
        for row in ledger.to_pylist():
            lines.append(",".join(_csv_value(row[c]) for c in LEDGER_COLUMNS))
        (staging / "ledger.csv").write_text("\n".join(lines) + "\n")
        day_lines = ["date,pnl,capital,boost,beta,mc_status,trades,posture"]
        day_lines += [f"{d.date},{d.pnl!r},{d.capital!r},{d.boost!r},{d.beta!r},{d.mc_status},{d.trades},{d.posture}"
                      for d in run.result.days]  # fmt: skip
        (staging / "daily.csv").write_text("\n".join(day_lines) + "\n")
        pq.write_table(pa.table({"ts": pa.array(run.result.ts, pa.timestamp("ns", tz="UTC")),
                                 "equity": pa.array(run.result.equity, pa.float64())}), staging / "equity.parquet")  # fmt: skip
        (staging / "summary.json").write_text(json.dumps(summary(run), indent=1, sort_keys=True, default=_clean) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def summary(run: DolphinRun) -> dict:
    return {
        "format": BUNDLE_FORMAT, "run_id": run.run_id, "scans": str(run.scans), "scans_digest": run.scans_digest,
        "start": str(run.start), "end": str(run.end), "engine": run.engine, "profile": run.result.config.profile,
        "config": msgspec.to_builtins(run.result.config), "config_digest": run.result.config.digest(),
        "universe": list(run.result.symbols), "metrics": {k: _clean(v) for k, v in run.metrics.items()},
        "costs": run.costs, "counts": {k: int(v) for k, v in asdict(run.result.counts).items()}, "notes": run.notes,
        "exit_reasons": exit_reasons(run.result.trades),
    }  # fmt: skip


def exit_reasons(trades) -> dict[str, int]:
    """Trades per exit reason, sorted by reason."""
    out: dict[str, int] = {}
    for t in trades:
        out[t.exit_reason] = out.get(t.exit_reason, 0) + 1
    return dict(sorted(out.items()))


def _clean(v):
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
