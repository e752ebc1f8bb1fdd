"""``vq data import-csv``: generic OHLCV CSV files -> raw lake -> catalog bars at their native timeframe.

Input: ``timestamp,open,high,low,close,volume[,datetime]`` (header optional), ``timestamp`` the
bar OPEN time in ms or µs UTC, volume in base units — e.g. ``../shared/data/perps-1d-1h/``
(``BTC_USDT_1d.csv``). Symbol and interval come from such a name, or from ``--symbol`` /
``--interval``. The ``datetime`` column is informational and ignored.

Same machinery as ``vq data ingest``: the file is stored byte for byte in the raw lake
(``period_kind = csv-import``), parsed exactly (no rounding, OHLC and interval checks), and
written as one unit spanning its first to its last bar, all or nothing; ``rebuild
--from-archive`` replays it. A trailing run of flat zero-volume bars (a delisted contract
the exporter kept printing) is cut with a warning unless ``keep_flat_tail``.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from vibe_quant.data.archive import RawLake, sha256_hex
from vibe_quant.data.bars import NS_PER_MS, timeframe
from vibe_quant.data.catalog import StagedCatalog
from vibe_quant.data.files import INTERVAL_MINUTES, KLINES, MARKETS, VENUE
from vibe_quant.data.parse import PRICE_COLUMNS, Klines, _kline_field_checks, _klines_from_table, _locate_csv_problem
from vibe_quant.data.records import (
    ProcessedUnit,
    RawFileRecord,
    check_instrument_precision,
    commit_files,
    finish_run,
    record_failure,
    record_units,
    stage_instruments,
    start_run,
    upsert_instrument,
)
from vibe_quant.data.ticks import header_fields, is_header
from vibe_quant.data.units import UnitResult, check_rows, write_klines_unit
from vibe_quant.errors import DataFileError, UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs, normalize_symbol
from vibe_quant.lock import home_lock
from vibe_quant.progress import Progress
from vibe_quant.staging import StagingArea, clean_stale_staging
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

CSV_IMPORT = "csv-import"
OHLCV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
FLAT_TAIL_MIN = 3  # this many trailing flat zero-volume bars or more are cut
_NAME = re.compile(r"^(?P<base>[A-Za-z0-9]+)[_-](?P<quote>[A-Za-z]+)[_-](?P<interval>\d+[mhd])\.csv$")


@dataclass
class ImportReport:
    run_id: int
    units: list[UnitResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def name_hints(path: Path) -> tuple[str | None, str | None]:
    """``BTC_USDT_1d.csv`` -> (``BTCUSDT``, ``1d``); (None, None) for other names."""
    m = _NAME.match(path.name)
    if m is None:
        return None, None
    return f"{m['base']}{m['quote']}".upper(), m["interval"]


def parse_ohlcv_csv(data: bytes, name: str, spec, interval: str) -> Klines:
    """Parse a generic OHLCV CSV into :class:`~vibe_quant.data.parse.Klines` of `interval`.

    Raises
    ------
    DataFileError
        Wrong columns, bad numbers or precision, misaligned or mixed-unit timestamps,
        inconsistent OHLC, conflicting duplicate bars (file and line named).
    """
    if interval not in INTERVAL_MINUTES:
        raise UserError(f"--interval {interval!r}: choose one of {', '.join(INTERVAL_MINUTES)}")
    step_ms = INTERVAL_MINUTES[interval] * 60_000
    if not data.strip():
        raise DataFileError(name, "empty file")
    fields = [f.strip().lower() for f in header_fields(data.split(b"\n", 1)[0])]
    header = is_header(fields)
    if len(fields) not in (6, 7) or (header and tuple(fields[:6]) != OHLCV_COLUMNS):
        raise DataFileError(
            name,
            f"columns {fields[:8]} are not timestamp,open,high,low,close,volume[,datetime]",
            line=1,
            fix="export the file with those columns (timestamp = bar open time in ms)",
        )
    names = [*OHLCV_COLUMNS, "datetime"][: len(fields)]
    pp, sp = spec.price_precision, spec.size_precision
    types = {c: pa.decimal128(38, pp) for c in PRICE_COLUMNS} | {
        "timestamp": pa.int64(),
        "volume": pa.decimal128(38, sp),
    }
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(OHLCV_COLUMNS), null_values=[""]
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        checks = _kline_field_checks(pp, sp)
        _locate_csv_problem(data, name, header, tuple(names), {i: checks[i] for i in range(6)})
        raise DataFileError(name, f"unreadable CSV: {exc}") from exc
    open_time = table.column("timestamp")
    us = bool(len(open_time)) and open_time[0].as_py() >= 100_000_000_000_000
    close_time = pa.array(open_time.to_numpy() + step_ms * (1000 if us else 1) - 1, pa.int64())
    kl = pa.table(
        {
            "open_time": open_time,
            **{c: table.column(c) for c in PRICE_COLUMNS},
            "volume": table.column("volume"),
            "close_time": close_time,
        }
    )
    return _klines_from_table(kl, name, header, pp, sp, step_ms)


def flat_tail(k: Klines) -> int:
    """Number of trailing bars with zero volume and open = high = low = close = the previous close."""
    n = len(k)
    i = n
    while i > 1 and k.volume[i - 1] == 0 and k.open[i - 1] == k.high[i - 1] == k.low[i - 1] == k.close[i - 1]:
        if k.close[i - 1] != k.close[i - 2]:
            break
        i -= 1
    return n - i


def run_import(
    home: Home,
    paths: list[Path],
    specs: InstrumentSpecs,
    symbol: str | None = None,
    interval: str | None = None,
    market: str = "um",
    keep_flat_tail: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import generic OHLCV CSV files; all files commit together or none does.

    Raises
    ------
    UserError
        Missing file, no symbol/interval from the name or options, unknown symbol, a
        malformed file (``DataFileError``). Nothing is committed.
    """
    progress = progress or Progress()
    if market not in MARKETS:
        raise UserError(f"--market {market!r}: choose um, cm or spot")
    if symbol is not None and len(paths) > 1:
        raise UserError("--symbol applies to one file; name files like BTC_USDT_1h.csv to import several")
    jobs = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        hinted_symbol, hinted_interval = name_hints(path)
        sym = normalize_symbol(symbol, market) if symbol else hinted_symbol
        iv = interval or hinted_interval
        if sym is None or iv is None:
            raise UserError(
                f"{path}: cannot tell the symbol and interval from the name; pass --symbol and --interval "
                "or name it like BTC_USDT_1h.csv"
            )
        if iv not in INTERVAL_MINUTES:
            raise UserError(f"{path}: interval {iv!r} is not one of {', '.join(INTERVAL_MINUTES)}")
        jobs.append((path, specs.get(sym, market), iv))
    home.ensure()
    t0 = time.perf_counter()
    with home_lock(home.state_dir, "import-csv"), StateManager(home.db_path) as state:
        clean_stale_staging(home.catalog)
        clean_stale_staging(home.archive)
        for _, spec, _ in jobs:
            check_instrument_precision(state, spec)
        run_id = start_run(
            state,
            "import-csv",
            {"paths": [str(p) for p in paths], "market": market, "symbol": symbol, "interval": interval},
        )
        report = ImportReport(run_id)
        try:
            _import(home, jobs, state, report, keep_flat_tail, progress)
        except BaseException as exc:
            record_failure(state, run_id, exc, ", ".join(str(p) for p in paths))
            raise
        finish_run(state, run_id, None)
    report.elapsed_s = time.perf_counter() - t0
    return report


def _import(home: Home, jobs: list, state: StateManager, report: ImportReport, keep_flat_tail: bool, progress) -> None:
    lake = RawLake(home.archive)
    staged = StagedCatalog(home.catalog)
    lake_staging = StagingArea(home.archive)
    # A unit is "already imported" when the same bytes gave the same instrument, interval and span
    # (another --market, --symbol or --keep-flat-tail is a different unit of the same raw file).
    done = {
        tuple(row)
        for row in state.conn.execute(
            "SELECT r.sha256, u.market, u.symbol, u.interval, u.period_start_ns, u.period_end_ns FROM ingest_units u "
            "JOIN unit_sources s ON s.unit_id = u.id JOIN raw_files r ON r.id = s.raw_file_id WHERE r.period_kind = ?",
            (CSV_IMPORT,),
        ).fetchall()
    }
    task = progress.task("import OHLCV CSV", len(jobs))
    processed: list[ProcessedUnit] = []
    try:
        for path, spec, iv in jobs:
            data = path.read_bytes()
            sha = sha256_hex(data)
            progress.advance(task, description=f"import {path.name}")
            klines = parse_ohlcv_csv(data, str(path), spec, iv)
            if not len(klines):
                raise DataFileError(path, "no bars in the file")
            check_rows(klines, str(path), spec, None, None)  # no bars before the listing date
            tail = 0 if keep_flat_tail else flat_tail(klines)
            if tail < FLAT_TAIL_MIN:
                tail = 0
            step_ms = timeframe(iv).step_ms
            start_ms = int(klines.open_time_ms[0])
            end_ms = int(klines.open_time_ms[len(klines) - tail - 1]) + step_ms
            if tail:
                message = (
                    f"{path.name}: cut {tail} trailing flat zero-volume bar(s) after "
                    f"{dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC):%Y-%m-%d %H:%M} UTC (delisted?); "
                    "pass --keep-flat-tail to keep them"
                )
                log.warning(message)
                report.warnings.append(message)
            market_name = MARKETS[spec.market].name
            key = (sha, market_name, spec.symbol, iv, start_ms * NS_PER_MS, end_ms * NS_PER_MS)
            if key in done:
                report.skipped.append(path.name)
                continue
            done.add(key)
            day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
            rel = lake.relative_path(VENUE, market_name, KLINES, spec.symbol, day, sha, path.name)
            lake.stage(lake_staging, rel, data)
            result = write_klines_unit(staged.root, staged, spec, klines, start_ms, end_ms, str(path), iv)
            result.stats["flat_tail_cut"] = tail
            raw = RawFileRecord(
                sha256=sha,
                dataset=KLINES,
                symbol=spec.symbol,
                interval=iv,
                period_kind=CSV_IMPORT,
                period_start_ns=start_ms * NS_PER_MS,
                period_end_ns=end_ms * NS_PER_MS,
                original_name=path.name,
                source=str(path.resolve()),
                archive_path=rel,
                size_bytes=len(data),
                rows=klines.rows_in,
                first_ts_ns=start_ms * NS_PER_MS,
                last_ts_ns=int(klines.open_time_ms[-1]) * NS_PER_MS,
                market=market_name,
            )
            processed.append(ProcessedUnit([raw], result))
        progress.finish(task)
        touched = sorted({spec.key: spec for _, spec, _ in jobs}.items())
        stage_instruments(staged, [spec for _, spec in touched])
        with state.transaction():
            record_units(state, report.run_id, processed)
            for _, spec in touched:
                upsert_instrument(state, spec)
            commit_files(lake_staging, staged)
    finally:
        staged.abort()
        lake_staging.abort()
    report.units = [u.result for u in processed]
    if processed:
        from vibe_quant.data.validate import write_artifacts

        report.warnings.extend(write_artifacts(home, state))
