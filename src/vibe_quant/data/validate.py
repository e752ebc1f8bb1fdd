"""Catalog checks and the artifacts that describe a catalog: ``manifest.json`` and
``validation_report.md`` (both in the catalog root), and the data behind ``vq data status``.

The cheap summary (counts from Parquet metadata, gaps from the 1m close times, funding
cadence) runs after every ingest. ``deep=True`` (``vq data validate``) also decodes every bar
and re-checks OHLC consistency and that each higher timeframe equals the aggregation of the
stored 1m bars.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vibe_quant import code_version
from vibe_quant.data.bars import (
    BASE_TIMEFRAME,
    NS_PER_MS,
    TIMEFRAME_BY_LABEL,
    TIMEFRAMES,
    BarArrays,
    aggregate,
    timeframe,
)
from vibe_quant.data.catalog import data_dir, parse_interval_filename
from vibe_quant.data.custom import CUSTOM_TYPES
from vibe_quant.data.files import INTERVAL_MINUTES
from vibe_quant.home import Home
from vibe_quant.staging import write_atomic
from vibe_quant.state import StateManager

MANIFEST = "manifest.json"
REPORT = "validation_report.md"
FUNDING_KIND = "funding_rate_update"
USUAL_FUNDING_HOURS = {1, 2, 4, 8}
FUNDING_JITTER_NS = 1_000_000_000  # Binance stamps some settlements a few ms late


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.parquet"), key=lambda p: parse_interval_filename(p.name) or (0, 0))


def _read_column(files: list[Path], column: str) -> np.ndarray:
    if not files:
        return np.empty(0, np.int64)
    parts = [pq.read_table(f, columns=[column]).column(column).to_numpy() for f in files]
    return np.concatenate(parts).astype(np.int64)


def _gaps(close_ns: np.ndarray, step_ns: int) -> list[dict]:
    if len(close_ns) < 2:
        return []
    diffs = np.diff(close_ns)
    out = []
    for i in np.flatnonzero(diffs > step_ns):
        a, b = int(close_ns[i]), int(close_ns[i + 1])
        out.append({"after": iso(a), "before_open_of": iso(b - step_ns), "missing_bars": int((b - a) // step_ns - 1)})
    return out


def _funding_checks(files: list[Path]) -> dict:
    if not files:
        return {"rows": 0}
    import pyarrow as pa

    table = pa.concat_tables([pq.read_table(f, columns=["ts_event", "funding_interval_hours"]) for f in files])
    ts = table.column("ts_event").to_numpy().astype(np.int64)
    hours = table.column("funding_interval_hours").to_numpy(zero_copy_only=False)
    irregular = []
    for i in range(1, len(ts)):
        gap = int(ts[i] - ts[i - 1])
        expected = {int(hours[i]) * 3_600_000_000_000, int(hours[i - 1]) * 3_600_000_000_000}
        if not any(abs(gap - e) <= FUNDING_JITTER_NS for e in expected):
            irregular.append({"after": iso(int(ts[i - 1])), "next": iso(int(ts[i])), "hours": round(gap / 3.6e12, 3)})
    seen = sorted({int(h) for h in hours})
    return {
        "rows": len(ts),
        "first": iso(int(ts[0])),
        "last": iso(int(ts[-1])),
        "interval_hours": seen,
        "unusual_intervals": sorted(set(seen) - USUAL_FUNDING_HOURS),
        "irregular_spacing": len(irregular),
        "irregular_examples": irregular[:10],
    }


def summarize(home: Home, state: StateManager, deep: bool = False) -> dict:
    """Return the catalog's manifest: per symbol and timeframe counts and spans, gaps, funding
    cadence, the raw files behind each dataset, archive totals and error counts.

    With `deep`, also ``ohlc_violations`` and ``aggregation_mismatches`` per symbol (both must
    be zero for a healthy catalog).
    """
    instruments = {_symbol_key(row): row for row in state.find("instruments", order_by="venue_symbol")}
    symbols: dict[str, dict] = {}
    for symbol, inst in sorted(instruments.items()):
        iid = inst["nautilus_id"]
        entry: dict = {
            "instrument_id": iid,
            "canonical_id": inst["canonical_id"],
            "listed": inst["listed_date"],
            "timeframes": {},
        }
        extra = [timeframe(label) for label in INTERVAL_MINUTES if label not in TIMEFRAME_BY_LABEL]
        present = [tf for tf in extra if _files(data_dir(home.catalog, "bar", tf.bar_type(iid)))]
        for tf in sorted([*TIMEFRAMES, *present], key=lambda t: t.minutes):
            files = _files(data_dir(home.catalog, "bar", tf.bar_type(iid)))
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            spans = [parse_interval_filename(f.name) for f in files]
            entry["timeframes"][tf.label] = {
                "bar_type": tf.bar_type(iid),
                "bars": rows,
                "files": len(files),
                "first_close": iso(min(s[0] for s in spans) - 1 + tf.step_ms * NS_PER_MS) if spans else None,
                "last_close": iso(max(s[1] for s in spans)) if spans else None,
            }
        base_files = _files(data_dir(home.catalog, "bar", BASE_TIMEFRAME.bar_type(iid)))
        gaps = _gaps(_read_column(base_files, "ts_init"), BASE_TIMEFRAME.step_ms * NS_PER_MS)
        entry["gaps_1m"] = {"count": len(gaps), "missing_bars": sum(g["missing_bars"] for g in gaps), "list": gaps}
        entry["funding"] = _funding_checks(_files(data_dir(home.catalog, FUNDING_KIND, iid)))
        entry["streams"] = _streams(home, iid)
        if deep:
            entry.update(_deep_checks(home, iid, inst))
        symbols[symbol] = entry
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "catalog": str(home.catalog),
        "symbols": symbols,
        "datasets": _datasets(state),
        "archive": _archive(state),
        "ingest_errors": state.count("ingest_errors"),
    }


STREAM_KINDS = {
    "trades": "trade_tick",
    "quotes": "quote_tick",
    **{c.__name__.removeprefix("Binance"): c.kind() for c in CUSTOM_TYPES},
}
MARKET_PREFIX = {"futures-um": "", "futures-cm": "cm:", "spot": "spot:"}


def _symbol_key(inst: dict) -> str:
    """Status key of an instrument: ``BTCUSDT`` (USD-M), ``spot:BTCUSDT``, ``cm:BTCUSD_PERP``."""
    prefix = {"PERP": "", "SPOT": "spot:", "INVERSE_PERP": "cm:"}.get(inst["contract"], "")
    return prefix + inst["venue_symbol"]


def _streams(home: Home, iid: str) -> dict:
    """Rows, files and first/last event time of the tick and custom-data streams of one instrument
    (from Parquet metadata: nothing is decoded)."""
    out = {}
    for label, kind in STREAM_KINDS.items():
        files = _files(data_dir(home.catalog, kind, iid))
        if not files:
            continue
        rows, lo, hi = 0, None, None
        for f in files:
            meta = pq.ParquetFile(f).metadata
            rows += meta.num_rows
            col = meta.schema.to_arrow_schema().get_field_index("ts_event")
            for g in range(meta.num_row_groups):
                st = meta.row_group(g).column(col).statistics
                if st is not None and st.has_min_max:
                    lo = st.min if lo is None else min(lo, st.min)
                    hi = st.max if hi is None else max(hi, st.max)
        out[label] = {"rows": rows, "files": len(files), "first": iso(lo), "last": iso(hi)}
    return out


def _datasets(state: StateManager) -> dict:
    rows = state.conn.execute(
        """SELECT u.dataset, u.symbol, u.market, u.interval, u.stats, r.original_name, r.sha256, r.source, r.rows,
                  r.first_ts_ns, r.last_ts_ns, u.rows_in, u.rows_written, u.duplicates, u.period_start_ns,
                  u.period_end_ns
           FROM ingest_units u JOIN unit_sources s ON s.unit_id = u.id JOIN raw_files r ON r.id = s.raw_file_id
           ORDER BY u.market, u.dataset, u.interval, u.symbol, u.period_start_ns, s.ordinal"""
    ).fetchall()
    errors = dict(
        state.conn.execute(
            "SELECT dataset || '/' || symbol, COUNT(*) FROM ingest_errors WHERE dataset IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    out: dict[str, dict] = {}
    for row in rows:
        dataset = row["dataset"] if row["interval"] in (None, "1m") else f"{row['dataset']}@{row['interval']}"
        key = f"{dataset}/{MARKET_PREFIX.get(row['market'], row['market'] + ':')}{row['symbol']}"
        d = out.setdefault(
            key,
            {
                "files": [],
                "rows_in": 0,
                "rows_written": 0,
                "duplicates": 0,
                "min_ts": None,
                "max_ts": None,
                "errors": errors.get(key, 0),
            },
        )
        d["files"].append(
            {
                "name": row["original_name"],
                "sha256": row["sha256"],
                "source": row["source"],
                "rows": row["rows"],
                "period": [iso(row["period_start_ns"]), iso(row["period_end_ns"])],
            }
        )
        d["rows_in"] += row["rows_in"]
        d["rows_written"] += row["rows_written"]
        d["duplicates"] += row["duplicates"]
        stats = json.loads(row["stats"]) if row["stats"] else {}
        for k in ("out_of_order", "crossed", "clipped", "flat_tail_cut"):
            if stats.get(k):
                d[k] = d.get(k, 0) + stats[k]
        for field, n in (stats.get("ts_source") or {}).items():
            d.setdefault("ts_source", {})
            d["ts_source"][field] = d["ts_source"].get(field, 0) + n
        for k, v, fn in (("min_ts", row["first_ts_ns"], min), ("max_ts", row["last_ts_ns"], max)):
            if v is not None:
                d[k] = iso(v) if d[k] is None else fn(d[k], iso(v))
    return out


def _archive(state: StateManager) -> dict:
    total = state.conn.execute("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM raw_files").fetchone()
    by = state.conn.execute(
        "SELECT dataset, COUNT(*), SUM(size_bytes), MAX(downloaded_at) FROM raw_files GROUP BY dataset ORDER BY dataset"
    ).fetchall()
    return {
        "files": total[0],
        "bytes": total[1],
        "by_dataset": {r[0]: {"files": r[1], "bytes": r[2], "last_stored": r[3]} for r in by},
    }


def _deep_checks(home: Home, iid: str, inst: dict) -> dict:
    from vibe_quant.data.units import mantissas_from_fixed128

    pp, sp = inst["price_precision"], inst["size_precision"]

    def load(bar_type: str, step_ms: int) -> BarArrays:
        files = _files(data_dir(home.catalog, "bar", bar_type))
        if not files:
            return BarArrays(*(np.empty(0, np.int64) for _ in range(6)))
        import pyarrow as pa

        t = pa.concat_tables([pq.read_table(f) for f in files])
        ts = t.column("ts_init").to_numpy().astype(np.int64)
        return BarArrays(
            ts // NS_PER_MS - step_ms,
            *(mantissas_from_fixed128(t.column(c), pp) for c in ("open", "high", "low", "close")),
            mantissas_from_fixed128(t.column("volume"), sp),
        )

    base = load(BASE_TIMEFRAME.bar_type(iid), BASE_TIMEFRAME.step_ms)
    violations = 0
    mismatches = {}
    for tf in TIMEFRAMES:
        bars = base if tf is BASE_TIMEFRAME else load(tf.bar_type(iid), tf.step_ms)
        bad = (bars.high < np.maximum(bars.open, bars.close)) | (bars.low > np.minimum(bars.open, bars.close))
        bad |= (bars.low <= 0) | (bars.volume < 0)
        violations += int(bad.sum()) + int((np.diff(bars.open_time_ms) <= 0).sum())
        if tf is BASE_TIMEFRAME or len(bars) == 0:
            continue
        expected = aggregate(base, tf, int(bars.open_time_ms[0]), int(bars.open_time_ms[-1]) + tf.step_ms)
        expected = expected.select(np.isin(expected.open_time_ms, bars.open_time_ms))
        same = len(expected) == len(bars) and all(
            np.array_equal(getattr(expected, f), getattr(bars, f))
            for f in ("open_time_ms", "open", "high", "low", "close", "volume")
        )
        mismatches[tf.label] = 0 if same else max(1, abs(len(expected) - len(bars)))
    return {"ohlc_violations": violations, "aggregation_mismatches": mismatches}


def render_report(summary: dict) -> str:
    """Return ``validation_report.md`` for a :func:`summarize` result."""
    lines = [
        "# Catalog validation report",
        "",
        f"Generated {summary['generated_at']} by {summary['code_version']}.",
        "",
        "Checks enforced row by row at ingest (a failing file is rejected, nothing is written): "
        "OHLC consistency (low <= open, close <= high; positive prices; volume >= 0), "
        "no rounding (decimals within the instrument precision), one timestamp unit per file, "
        "1-minute interval and alignment, no conflicting duplicates, no data before the listing date.",
        "",
        "| symbol | timeframe | bars | first close | last close |",
        "|---|---|---:|---|---|",
    ]
    for symbol, s in summary["symbols"].items():
        for label, tf in s["timeframes"].items():
            lines.append(
                f"| {symbol} | {label} | {tf['bars']:,} | {tf['first_close'] or '-'} | {tf['last_close'] or '-'} |"
            )
    lines += [
        "",
        "## Gaps in 1m bars",
        "",
        "A gap is a jump larger than one minute between consecutive 1m bars: months missing from the "
        "source, or exchange outages. Higher timeframes are built only from complete spans.",
        "",
    ]
    for symbol, s in summary["symbols"].items():
        g = s["gaps_1m"]
        lines.append(f"- **{symbol}**: {g['count']} gap(s), {g['missing_bars']:,} missing 1m bars")
        for gap in g["list"][:50]:
            lines.append(f"  - after {gap['after']}: {gap['missing_bars']:,} bars missing")
        if g["count"] > 50:
            lines.append(f"  - ... {g['count'] - 50} more in manifest.json")
    lines += ["", "## Listing dates", ""]
    for symbol, s in summary["symbols"].items():
        lines.append(f"- {symbol}: listed {s['listed'] or 'unknown (check skipped)'}")
    lines += ["", "## Funding", ""]
    for symbol, s in summary["symbols"].items():
        f = s["funding"]
        if not f["rows"]:
            lines.append(f"- {symbol}: no funding rates in the catalog (backtests cannot charge funding)")
            continue
        verdict = "ok" if not f["irregular_spacing"] and not f["unusual_intervals"] else "CHECK"
        lines.append(
            f"- {symbol}: {f['rows']} settlements {f['first']} .. {f['last']}, intervals {f['interval_hours']} h, "
            f"{f['irregular_spacing']} irregular spacing(s) [{verdict}]"
        )
        for ex in f["irregular_examples"]:
            lines.append(f"  - {ex['after']} -> {ex['next']}: {ex['hours']} h")
    if any("ohlc_violations" in s for s in summary["symbols"].values()):
        lines += ["", "## Deep checks", ""]
        for symbol, s in summary["symbols"].items():
            lines.append(
                f"- {symbol}: OHLC/order violations {s['ohlc_violations']}, "
                f"aggregation mismatches {s['aggregation_mismatches']}"
            )
    lines += ["", "## Sources", ""]
    for key, d in summary["datasets"].items():
        extra = "".join(
            f", {d[k]:,} {label}"
            for k, label in (
                ("out_of_order", "row(s) out of order (sorted)"),
                ("crossed", "crossed quote(s) bid > ask (kept)"),
                ("clipped", "row(s) outside the requested range"),
                ("flat_tail_cut", "flat tail bar(s) cut"),
            )
            if d.get(k)
        )
        if d.get("ts_source"):
            extra += ", ts_event from " + ", ".join(f"{f} {n:,}" for f, n in sorted(d["ts_source"].items()))
        lines.append(
            f"- {key}: {len(d['files'])} file(s), {d['rows_in']:,} rows read, {d['rows_written']:,} "
            f"written, {d['duplicates']} duplicate(s) dropped{extra}, {d['errors']} error(s); "
            f"{d['min_ts']} .. {d['max_ts']}"
        )
    streams = [(sym, label, st) for sym, s in summary["symbols"].items() for label, st in s.get("streams", {}).items()]
    if streams:
        lines += ["", "## Tick and custom-data streams", "", "| instrument | stream | rows | files | first | last |"]
        lines.append("|---|---|---:|---:|---|---|")
        for sym, label, st in streams:
            lines.append(f"| {sym} | {label} | {st['rows']:,} | {st['files']} | {st['first']} | {st['last']} |")
    lines += [
        "",
        f"Raw archive: {summary['archive']['files']} file(s), {summary['archive']['bytes']:,} bytes. "
        f"Failed ingests recorded: {summary['ingest_errors']}.",
        "",
    ]
    return "\n".join(lines)


def write_artifacts(home: Home, state: StateManager, deep: bool = False) -> list[str]:
    """Write ``manifest.json`` and ``validation_report.md`` into the catalog; return warnings."""
    summary = summarize(home, state, deep=deep)
    home.catalog.mkdir(parents=True, exist_ok=True)
    write_atomic(home.catalog / MANIFEST, json.dumps(summary, indent=2, sort_keys=False) + "\n")
    write_atomic(home.catalog / REPORT, render_report(summary))
    warnings = []
    for symbol, s in summary["symbols"].items():
        f = s["funding"]
        if f.get("unusual_intervals"):
            warnings.append(f"{symbol}: unusual funding intervals {f['unusual_intervals']} h (see {REPORT})")
        if deep and (s["ohlc_violations"] or any(s["aggregation_mismatches"].values())):
            warnings.append(f"{symbol}: deep check failed (see {REPORT})")
    return warnings


def daily_coverage(home: Home, state: StateManager) -> list[dict]:
    """1m bars per symbol and UTC day against the 1,440 a full day has, from the first to the last
    day each symbol has bars (a day inside that span with no bar at all is listed with 0).

    Returns
    -------
    list of dict
        ``{"symbol", "day" (YYYY-MM-DD), "bars", "expected"}`` sorted by symbol and day.
    """
    day_ns = 86_400 * 1_000_000_000
    expected = day_ns // (BASE_TIMEFRAME.step_ms * NS_PER_MS)
    out: list[dict] = []
    instruments = {_symbol_key(row): row for row in state.find("instruments", order_by="venue_symbol")}
    for symbol, inst in sorted(instruments.items()):
        files = _files(data_dir(home.catalog, "bar", BASE_TIMEFRAME.bar_type(inst["nautilus_id"])))
        closes = _read_column(files, "ts_init")
        if not closes.size:
            continue
        days = (closes - 1) // day_ns  # a bar closing at midnight belongs to the day it opened in
        first, last = int(days.min()), int(days.max())
        counts = np.bincount(days - first, minlength=last - first + 1)
        for k, n in enumerate(counts.tolist()):
            day = dt.datetime.fromtimestamp((first + k) * 86_400, dt.UTC).date().isoformat()
            out.append({"symbol": symbol, "day": day, "bars": n, "expected": int(expected)})
    return out
