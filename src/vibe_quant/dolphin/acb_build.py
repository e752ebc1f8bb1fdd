"""``vq dolphin acb-factors build``: the ACB's daily factor table beside a scan directory
(docs/specs.md#dolphin-acb).

One row per UTC date of the scan directory (or ``start..end`` inside it), written to
``<scans>/acb_factors.parquet`` through a temporary file and an atomic rename; its schema metadata
holds the :class:`~vibe_quant.dolphin.acb.AcbConfig`, the inputs read (user CSVs with their sha256,
the raw-lake files, the catalog funding files) and ``look_ahead``. The w750 history always spans the
whole directory, so a row never depends on the range asked for. Inputs are read and checked before
anything is written: a bad CSV or range leaves the directory as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vibe_quant.data.archive import RawLake
from vibe_quant.data.catalog import data_dir, parse_interval_filename, read_span
from vibe_quant.data.csv_import import CSV_IMPORT
from vibe_quant.data.files import KLINES, MARKET
from vibe_quant.data.parse import KLINE_COLUMNS, _has_header, read_member, time_unit
from vibe_quant.dolphin import acb, store
from vibe_quant.dolphin.acb import AcbConfig
from vibe_quant.errors import DataFileError, UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager
from vibe_quant.timeutil import utc_day

FORMAT = "vibe-quant dolphin acb factors 1"
FILE = "acb_factors.parquet"
META_KEY = b"dolphin_acb"
NS_PER_MS = 1_000_000
FACTORS = ("funding_btc", "dvol_btc", "fng", "taker")
SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("funding_btc", pa.float64()),
        ("funding_btc_present", pa.bool_()),
        ("dvol_btc", pa.float64()),
        ("dvol_btc_present", pa.bool_()),
        ("fng", pa.float64()),
        ("fng_present", pa.bool_()),
        ("taker", pa.float64()),
        ("taker_present", pa.bool_()),
        ("signals", pa.float64()),
        ("base_boost", pa.float64()),
        ("w750_vel", pa.float64()),
        ("w750_present", pa.bool_()),
        ("w750_threshold", pa.float64()),
        ("beta", pa.float64()),
        ("look_ahead", pa.bool_()),
    ]
)
DEFINITIONS = {
    "date": "UTC date D; every value is known at D 00:00 UTC unless look_ahead",
    "funding_btc": "funding rate of funding_symbol settled at D 00:00 UTC (within funding_slack_ms), from the catalog",
    "dvol_btc": "the --dvol CSV's value for D",
    "fng": "the --fng CSV's value for D",
    "taker": "taker_definition over the 1,440 one-minute klines of taker_symbol on D-1, from the raw lake",
    "signals": "sum of the factor weights (absent factor: 0; fng under fng_confirmation)",
    "base_boost": "1 + boost_scale*log1p(signals) if signals >= boost_min_signals else 1",
    "w750_vel": "median of the longest window's velocity over the scan rows of D-1",
    "w750_threshold": "w750_percentile of present w750 values: dates before D (past) or all dates (full_sample)",
    "beta": "beta_high if w750_vel >= w750_threshold else beta_low (also when either is missing)",
}


@dataclass
class AcbReport:
    path: Path
    table: pa.Table
    metadata: dict
    notes: list[str] = field(default_factory=list)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def _day_ns(day: dt.date) -> int:
    return acb.epoch_day(day) * acb.MS_PER_DAY * NS_PER_MS


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- inputs ----------------------------------------------------------------------------------------


def read_user_csv(path: Path, option: str) -> tuple[dict[dt.date, float], dict]:
    """Read a ``date,value`` CSV; return its values and its metadata entry (path, sha256, rows).

    Raises
    ------
    UserError
        The file does not exist (``DataFileError`` for a malformed one, see :func:`acb.parse_daily_values`).
    """
    if not path.is_file():
        raise UserError(f"{option} {path}: no such file")
    data = path.read_bytes()
    values = acb.parse_daily_values(data, str(path))
    return values, {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "rows": len(values)}


def funding_at_midnight(
    catalog: Path, instrument_id: str, days: list[dt.date], slack_ms: int
) -> tuple[np.ndarray, list[dict]]:
    """Return the funding rate settled at each date's 00:00 UTC (NaN where none) and the catalog files read.

    A settlement counts for date D when its ``ts_event`` lies in ``[D 00:00, D 00:00 + slack_ms)``.
    """
    out = np.full(len(days), np.nan)
    lo, hi = _day_ns(days[0]), _day_ns(days[-1]) + slack_ms * NS_PER_MS
    table = read_span(catalog, "funding_rate_update", instrument_id, lo, hi, columns=["rate", "ts_event", "ts_init"])
    directory = data_dir(catalog, "funding_rate_update", instrument_id)
    files = []
    if directory.is_dir():
        for path in sorted(directory.glob("*.parquet")):
            span = parse_interval_filename(path.name)
            if span and span[0] <= hi and span[1] >= lo:
                files.append({"file": path.name, "sha256": _sha256(path)})
    if table is None:
        return out, files
    index = {day: i for i, day in enumerate(days)}
    for rate, ts in zip(table.column("rate").to_pylist(), table.column("ts_event").to_pylist(), strict=True):
        day = utc_day(ts)
        i = index.get(day)
        if i is not None and ts - _day_ns(day) < slack_ms * NS_PER_MS and np.isnan(out[i]):
            out[i] = float(rate)
    return out, files


def kline_flows(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return open time (ms), volume and taker-buy volume of a Binance kline CSV (header or not, ms or µs).

    Two real raw lines (USD-M ``FILUSDT-1m-2026-04.csv``, with header)::

        open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore
        1775001600000,0.831,0.832,0.831,0.832,4286.8,1775001659999,3563.2021,56,871.3,724.9216,0

    Raises
    ------
    DataFileError
        An unreadable CSV, or timestamps in mixed or implausible units.
    """
    header = _has_header(data[:512])
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_COLUMNS), skip_rows=int(header)),
            convert_options=pacsv.ConvertOptions(
                include_columns=["open_time", "volume", "taker_buy_volume"],
                column_types={"open_time": pa.int64(), "volume": pa.float64(), "taker_buy_volume": pa.float64()},
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFileError(
            name, f"unreadable kline CSV ({exc})", fix="check the lake with `vq data validate`"
        ) from None
    raw = table.column("open_time").to_numpy()
    if not len(raw):
        return raw.astype(np.int64), np.zeros(0), np.zeros(0)
    unit = time_unit(raw, name, 1 + int(header), "open_time")
    open_ms = raw // 1000 if unit == "us" else raw
    return open_ms, table.column("volume").to_numpy(), table.column("taker_buy_volume").to_numpy()


def _rest_flows(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        rows = msgspec.json.decode(data)
        return (np.array([r[0] for r in rows], dtype=np.int64), np.array([float(r[5]) for r in rows]),
                np.array([float(r[9]) for r in rows]))  # fmt: skip
    except (msgspec.DecodeError, TypeError, IndexError, KeyError, ValueError) as exc:
        raise DataFileError(
            name, f"not a REST klines page ({exc})", fix="check the lake with `vq data validate`"
        ) from None


def taker_klines(home: Home, symbol: str, first: dt.date, last: dt.date) -> tuple[tuple[np.ndarray, ...], list[dict]]:
    """Return the one-minute klines of `symbol` opened on ``first..last`` from the raw lake (open
    ms, volume, taker-buy volume; sorted, a repeated open time kept once) and the files read."""
    lo, hi = _day_ns(first), _day_ns(last + dt.timedelta(days=1))
    empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    if not home.db_path.is_file():
        return empty, []
    with StateManager(home.db_path) as state:
        rows = state.conn.execute(
            "SELECT archive_path, sha256, period_kind FROM raw_files WHERE dataset = ? AND symbol = ? AND interval = '1m' "
            "AND market = ? AND period_kind != ? AND period_start_ns < ? AND period_end_ns > ? "
            "ORDER BY period_start_ns, id",
            (KLINES, symbol, MARKET, CSV_IMPORT, hi, lo),
        ).fetchall()
    if not rows:
        return empty, []
    lake = RawLake(home.archive)
    parts, files = [], []
    for path, sha, kind in rows:
        data = lake.read(path, sha)
        name = str(lake.root / path)
        parts.append(_rest_flows(data, name) if kind == "rest" else kline_flows(read_member(data, name), name))
        files.append({"archive_path": path, "sha256": sha})
    open_ms, volume, buy = (np.concatenate([p[k] for p in parts]) for k in range(3))
    order = np.argsort(open_ms, kind="stable")
    open_ms, volume, buy = open_ms[order], volume[order], buy[order]
    keep = np.ones(len(open_ms), dtype=bool)
    keep[1:] = open_ms[1:] != open_ms[:-1]  # monthly and daily files repeat klines: the first kept
    inside = keep & (open_ms >= lo // NS_PER_MS) & (open_ms < hi // NS_PER_MS)
    return (open_ms[inside], volume[inside], buy[inside]), files


def daily_w750(directory: Path, files: dict[dt.date, Path], column: str, days: list[dt.date]) -> np.ndarray:
    """Return, per date D, the median of `column` over the scan rows of D-1 (NaN without that file)."""
    out = np.full(len(days), np.nan)
    for i, day in enumerate(days):
        path = files.get(day - dt.timedelta(days=1))
        if path is None:
            continue
        values = pq.read_table(path, columns=[column]).column(column).to_numpy()
        values = values[np.isfinite(values)]
        if values.size:
            out[i] = float(np.median(values))
    return out


# -- the stage -------------------------------------------------------------------------------------


def _scan_range(directory: Path, start: dt.date | None, end: dt.date | None):
    manifest = store.read_manifest(directory) if directory.is_dir() else None
    files = store.day_files(directory) if manifest is not None else {}
    if not files:
        raise UserError(
            f"{directory}: no scans; build them first with `vq dolphin scans build --start ... --end ...` "
            "(or pass --scans DIR)"
        )
    first, last = min(files), max(files)
    for option, day in (("--start", start), ("--end", end)):
        if day is not None and not first <= day <= last:
            raise UserError(f"{option} {day} is outside the scans in {directory} ({first}..{last}); "
                            "build those days first or choose dates inside them")  # fmt: skip
    start, end = start or first, end or last
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    return manifest, files, first, last, start, end


def build_acb_factors(
    home: Home,
    specs: InstrumentSpecs,
    config: AcbConfig,
    directory: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    dvol: Path | None = None,
    fng: Path | None = None,
) -> AcbReport:
    """Build the ACB factor table of the scan directory's dates and write ``<directory>/acb_factors.parquet``.

    Parameters
    ----------
    home : Home
        Its catalog gives funding, its raw lake and state database the one-minute klines.
    specs : InstrumentSpecs
        Maps ``funding_symbol`` to its catalog instrument id.
    config : AcbConfig
    directory : Path
        A scan directory (``vq dolphin scans build``).
    start, end : date, optional
        Rows ``start..end`` (inclusive), inside the directory's days (default: all of them).
    dvol, fng : Path, optional
        ``date,value`` CSVs (see :func:`acb.parse_daily_values`); without one the factor is absent.

    Returns
    -------
    AcbReport
        The table, its metadata, and notes on factors absent for every date.

    Raises
    ------
    UserError
        No scans in `directory`, a date outside them, a missing file, an unknown symbol; a
        ``DataFileError`` for a malformed CSV or a corrupt raw-lake file. Nothing is written then.
    """
    manifest, files, first, last, start, end = _scan_range(directory, start, end)
    inputs: dict = {}
    user = {}
    for option, name, path in (("--dvol", "dvol", dvol), ("--fng", "fng", fng)):
        user[name], inputs[name] = read_user_csv(path, option) if path is not None else ({}, None)
    instrument_id = specs.get(config.funding_symbol).nautilus_id
    specs.get(config.taker_symbol)  # an unknown symbol is a user error with a suggestion
    column = f"v{manifest['definitions']['windows'][-1]}_lambda_max_velocity"
    history = _days(first, last)
    days = _days(start, end)
    rows = slice(history.index(start), history.index(end) + 1)

    w750_all = daily_w750(directory, files, column, history)
    thresholds = acb.w750_thresholds(w750_all, config)[rows]
    w750 = w750_all[rows]
    funding, funding_files = funding_at_midnight(home.catalog, instrument_id, days, config.funding_slack_ms)
    klines, kline_files = taker_klines(
        home, config.taker_symbol, start - dt.timedelta(days=1), end - dt.timedelta(days=1)
    )
    taker = acb.daily_taker(*klines, days, config.taker_definition)
    dvol_v = np.array([user["dvol"].get(d, np.nan) for d in days], dtype=np.float64)
    fng_v = np.array([user["fng"].get(d, np.nan) for d in days], dtype=np.float64)
    signal_sum = acb.signals(funding, dvol_v, fng_v, taker, config)

    n = len(days)
    columns = {"date": days}
    for name, values in zip(FACTORS, (funding, dvol_v, fng_v, taker), strict=True):
        columns[name], columns[f"{name}_present"] = values, np.isfinite(values)
    columns.update(signals=signal_sum, base_boost=acb.base_boost(signal_sum, config), w750_vel=w750,
                   w750_present=np.isfinite(w750), w750_threshold=thresholds,
                   beta=acb.betas(w750, thresholds, config), look_ahead=np.full(n, config.look_ahead))  # fmt: skip
    present = {
        name: int(np.isfinite(v).sum())
        for name, v in zip((*FACTORS, "w750"), (funding, dvol_v, fng_v, taker, w750), strict=True)
    }
    inputs.update(
        scans={"config_digest": manifest["config_digest"], "first_day": first.isoformat(), "last_day": last.isoformat(),
               "w750_column": column, "universe": len(manifest["universe"]),
               "days_sha256": hashlib.sha256(json.dumps(manifest["days"], sort_keys=True).encode()).hexdigest()},
        funding={"symbol": config.funding_symbol, "instrument_id": instrument_id, "catalog_files": funding_files},
        taker={"symbol": config.taker_symbol, "raw_files": kline_files},
    )  # fmt: skip
    metadata = {
        "format": FORMAT,
        "config": msgspec.to_builtins(config),
        "look_ahead": config.look_ahead,
        "first_date": start.isoformat(),
        "last_date": end.isoformat(),
        "rows": n,
        "present": present,
        "definitions": DEFINITIONS,
        "inputs": inputs,
    }
    table = pa.table({name: pa.array(columns[name], SCHEMA.field(name).type) for name in SCHEMA.names})
    table = table.replace_schema_metadata({META_KEY: json.dumps(metadata, sort_keys=True)})
    path = directory / FILE
    tmp = directory / f".{FILE}.{os.getpid()}"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return AcbReport(path, table, metadata, _notes(config, present, start, end))


def _notes(config: AcbConfig, present: dict[str, int], start: dt.date, end: dt.date) -> list[str]:
    notes = []
    if not present["funding_btc"]:
        notes.append(
            f"funding_btc is absent on every date: the catalog has no {config.funding_symbol} funding settled at "
            f"00:00 UTC in {start}..{end}. Ingest it: vq data ingest --symbols {config.funding_symbol} "
            f"--datasets fundingRate --start {start} --end {end}"
        )
    if not present["taker"]:
        before = (start - dt.timedelta(days=1), end - dt.timedelta(days=1))
        notes.append(
            f"taker is absent on every date: the raw lake holds no complete day of {config.taker_symbol} 1m klines "
            f"in {before[0]}..{before[1]}. Ingest them: vq data ingest --symbols {config.taker_symbol} "
            f"--datasets klines --interval 1m --start {before[0]} --end {before[1]}"
        )
    return notes


def read_acb_factors(directory: Path) -> tuple[pa.Table, dict]:
    """Return the stored factor table of a scan directory and its metadata.

    Raises
    ------
    UserError
        No table there (with the command that builds it), or a file of another format.
    """
    path = directory / FILE
    if not path.is_file():
        raise UserError(f"{path}: no ACB factors; build them with `vq dolphin acb-factors build`")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(META_KEY)
    metadata = json.loads(raw) if raw else {}
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path}: not an ACB factor table (format {metadata.get('format')!r}, expected {FORMAT!r})")
    return table, metadata
