"""Parsers for the derivatives context datasets stored as custom data (see ``custom.py``):
``metrics``, ``bookDepth`` and the mark/index/premium-index klines.

Files are small (a day of metrics is 288 rows, of bookDepth ~30k), so each is parsed whole
with pyarrow: values straight into exact ``decimal128(38, 18)``, ISO times (``2024-03-01
00:05:00``, UTC) with a strict ``%Y-%m-%d %H:%M:%S`` parser, epoch times in ms or µs. Header
and headerless files are both accepted (a header's first field has no digit). Rows are sorted
by ``(ts_event, key)``; identical repeats of one key are dropped and counted, two different
rows for one key (e.g. metrics with a duplicate ``create_time``) are an error naming both
lines.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from vibe_quant.data.bars import NS_PER_MS
from vibe_quant.data.custom import (
    VALUE_SCALE,
    VALUE_TYPE,
    BinanceBookDepth,
    BinanceData,
    BinanceIndexPriceBar,
    BinanceMarkPriceBar,
    BinanceOiMetrics,
    BinancePremiumIndexBar,
    BinancePriceBar,
)
from vibe_quant.data.files import (
    BOOK_DEPTH,
    INDEX_KLINES,
    INTERVAL_MINUTES,
    MARK_KLINES,
    METRICS,
    PREMIUM_KLINES,
    iso_ms,
    utc_ms,
)
from vibe_quant.data.parse import KLINE_COLUMNS, _decimal_check, _int_check, _locate_csv_problem, kline_open_ms
from vibe_quant.data.ticks import header_fields, is_header
from vibe_quant.errors import DataFileError
from vibe_quant.instruments.specs import InstrumentSpec

ISO_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class CustomLayout:
    dataset: str
    cls: type[BinanceData]
    columns: tuple[str, ...]
    time: str  # the time column
    iso_time: bool  # ISO string (else ms/µs epoch)
    key: str | None = None  # second sort/dedup key after the time


METRICS_LAYOUT = CustomLayout(
    METRICS, BinanceOiMetrics, ("create_time", "symbol", *BinanceOiMetrics.FIELDS), "create_time", True
)
BOOK_DEPTH_LAYOUT = CustomLayout(
    BOOK_DEPTH, BinanceBookDepth, ("timestamp", *BinanceBookDepth.FIELDS), "timestamp", True, "percentage"
)
PRICE_KLINE_CLASSES = {
    MARK_KLINES: BinanceMarkPriceBar,
    INDEX_KLINES: BinanceIndexPriceBar,
    PREMIUM_KLINES: BinancePremiumIndexBar,
}
CUSTOM_DATASETS = (METRICS, BOOK_DEPTH, *PRICE_KLINE_CLASSES)


@dataclass
class CustomRows:
    """Parsed rows of one file as a catalog-ready table of ``cls`` (sorted, deduplicated)."""

    cls: type[BinanceData]
    table: pa.Table
    rows_in: int
    duplicates: int
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def ts(self) -> np.ndarray:
        return self.table.column("ts_event").to_numpy().astype(np.int64)


def _iso_check(value: str) -> str | None:
    try:
        dt.datetime.strptime(value.strip(), ISO_FORMAT)
    except ValueError:
        return f"{value!r} is not a time like 2024-03-01 00:05:00"
    return None


def parse_custom(dataset: str, data: bytes, name: str, spec: InstrumentSpec, interval: str | None = None) -> CustomRows:
    """Parse one metrics / bookDepth / price-kline CSV for `spec`'s instrument.

    Raises
    ------
    DataFileError
        Wrong column count or header, a non-numeric or too precise value, a bad time, a metrics
        file of another symbol, inconsistent OHLC, conflicting duplicates. Names file and line.
    """
    if dataset in PRICE_KLINE_CLASSES:
        layout = CustomLayout(dataset, PRICE_KLINE_CLASSES[dataset], KLINE_COLUMNS, "open_time", False)
    else:
        layout = METRICS_LAYOUT if dataset == METRICS else BOOK_DEPTH_LAYOUT
    if not data.strip():
        return CustomRows(layout.cls, _table(layout.cls, spec, {}, np.empty(0, np.int64)), 0, 0)
    fields = header_fields(data.split(b"\n", 1)[0])
    if len(fields) != len(layout.columns):
        raise DataFileError(
            name,
            f"{len(fields)} columns where a Binance {dataset} file has {len(layout.columns)} ({', '.join(layout.columns)})",
            line=1,
            fix=f"check the file is a {dataset} file",
        )
    header = is_header(fields)
    decimals = layout.cls.FIELDS
    types: dict[str, pa.DataType] = dict.fromkeys(decimals, VALUE_TYPE)
    checks = {layout.columns.index(c): _decimal_check(VALUE_SCALE, "value") for c in decimals}
    if layout.iso_time:
        types[layout.time] = pa.timestamp("s")
        checks[layout.columns.index(layout.time)] = _iso_check
    else:
        types |= {"open_time": pa.int64(), "close_time": pa.int64()}
        checks |= {0: _int_check, 6: _int_check}
    if "symbol" in layout.columns:
        types["symbol"] = pa.string()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(layout.columns), skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(types),
                null_values=[""],
                timestamp_parsers=[ISO_FORMAT],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _locate_csv_problem(data, name, header, layout.columns, checks)
        raise DataFileError(name, f"unreadable CSV: {exc}") from exc
    line0 = 1 + int(header)
    n = table.num_rows
    for col in table.column_names:
        if table.column(col).null_count:
            i = int(np.flatnonzero(table.column(col).is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFileError(name, f"empty {col!r} field", line=line0 + i)
    if layout.iso_time:
        ts = table.column(layout.time).cast(pa.int64()).to_numpy() * 1_000_000_000
        time_unit = "iso"
    else:
        ts, time_unit = _kline_close_ns(table, name, line0, interval or "1m")
    if "symbol" in layout.columns:
        wrong = pc.not_equal(table.column("symbol"), spec.symbol).to_numpy(zero_copy_only=False)
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise DataFileError(
                name,
                f"symbol {table.column('symbol')[i].as_py()!r} where the file is for {spec.symbol}",
                line=line0 + i,
                fix="ingest each symbol's files under its own name",
            )
    if dataset in PRICE_KLINE_CLASSES:
        _check_ohlc(table, name, line0)
    lines = np.arange(line0, line0 + n, dtype=np.int64)
    key = table.column(layout.key).cast(pa.float64()).to_numpy() if layout.key else np.zeros(n)
    values = {c: table.column(c).combine_chunks() for c in decimals}
    order = np.lexsort((key, ts))
    out_of_order = int(((ts[1:] < ts[:-1]) | ((ts[1:] == ts[:-1]) & (key[1:] < key[:-1]))).sum()) if n > 1 else 0
    if out_of_order:
        ts, key, lines = ts[order], key[order], lines[order]
        idx = pa.array(order)
        values = {c: v.take(idx) for c, v in values.items()}
    dup = np.flatnonzero((ts[1:] == ts[:-1]) & (key[1:] == key[:-1])) + 1 if n > 1 else np.empty(0, np.int64)
    if len(dup):
        for c, v in values.items():
            a = v.take(pa.array(dup)).to_pylist()
            b = v.take(pa.array(dup - 1)).to_pylist()
            for k, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y:
                    what = f"{layout.time} {iso_ms(int(ts[dup[k]]) // NS_PER_MS)}"
                    if layout.key:
                        what += f" and {layout.key} {key[dup[k]]:g}"
                    raise DataFileError(
                        name,
                        f"two different rows for {what} (lines {min(lines[dup[k] - 1], lines[dup[k]])} and "
                        f"{max(lines[dup[k] - 1], lines[dup[k]])}; {c} {y} vs {x})",
                        line=int(max(lines[dup[k] - 1], lines[dup[k]])),
                        fix="the source is inconsistent; remove the wrong row or re-download",
                    )
        keep = np.ones(len(ts), dtype=bool)
        keep[dup] = False
        ts, lines = ts[keep], lines[keep]
        mask = pa.array(keep)
        values = {c: v.filter(mask) for c, v in values.items()}
    rows = CustomRows(layout.cls, _table(layout.cls, spec, values, ts), n, len(dup))
    rows.stats = {"duplicates": len(dup), "out_of_order": out_of_order, "time_unit": time_unit}
    rows.lines = lines  # type: ignore[attr-defined]
    return rows


def _kline_close_ns(table: pa.Table, name: str, line0: int, interval: str) -> tuple[np.ndarray, str]:
    if interval not in INTERVAL_MINUTES:
        raise DataFileError(name, f"interval {interval!r} is not supported ({', '.join(INTERVAL_MINUTES)})")
    step_ms = INTERVAL_MINUTES[interval] * 60_000
    open_ms, unit = kline_open_ms(table, name, line0, step_ms)
    return (open_ms + step_ms) * NS_PER_MS, unit


def _check_ohlc(table: pa.Table, name: str, line0: int) -> None:
    o, h, lo, c = (table.column(k) for k in ("open", "high", "low", "close"))
    bad = pc.or_(
        pc.or_(pc.less(h, pc.max_element_wise(o, c)), pc.greater(lo, pc.min_element_wise(o, c))), pc.less(h, lo)
    ).to_numpy(zero_copy_only=False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        values = ", ".join(f"{k}={table.column(k)[i].as_py().normalize()}" for k in ("open", "high", "low", "close"))
        raise DataFileError(
            name, f"inconsistent kline ({values}); OHLC must satisfy low <= open,close <= high", line=line0 + i
        )


def _table(cls: type[BinanceData], spec: InstrumentSpec, values: dict, ts: np.ndarray) -> pa.Table:
    n = len(ts)
    schema = cls.schema()
    ids = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([spec.nautilus_id]))
    ts_arr = pa.array(ts, pa.int64()).cast(pa.uint64())
    cols = [ids, *(values.get(k, pa.array([], VALUE_TYPE)) for k in cls.FIELDS), ts_arr, ts_arr]
    return pa.Table.from_arrays(cols, schema=schema)


def check_custom_rows(rows: CustomRows, name: str, spec: InstrumentSpec, file_lo_ms: int, file_hi_ms: int) -> None:
    """Reject rows outside the file's own period (a kline's close may equal the period end) and
    before the listing date."""
    if not len(rows):
        return
    ts = rows.ts
    closes = issubclass(rows.cls, BinancePriceBar)
    hi = file_hi_ms * NS_PER_MS
    outside = (ts <= file_lo_ms * NS_PER_MS) | (ts > hi) if closes else (ts < file_lo_ms * NS_PER_MS) | (ts >= hi)
    lines = getattr(rows, "lines", None)
    if outside.any():
        i = int(outside.argmax())
        raise DataFileError(
            name,
            f"row at {iso_ms(int(ts[i]) // NS_PER_MS)} is outside the period the file name gives",
            line=int(lines[i]) if lines is not None else None,
            fix="rename the file to its real period",
        )
    if spec.listed is not None and int(ts[0]) <= utc_ms(spec.listed) * NS_PER_MS - (0 if closes else 1):
        raise DataFileError(
            name,
            f"data starts {iso_ms(int(ts[0]) // NS_PER_MS)}, before {spec.symbol}'s listing on {spec.listed}",
            line=int(lines[0]) if lines is not None else None,
            fix=f"check the file is really {spec.symbol} data, or correct `listed` in instrument_specs.yaml",
        )
