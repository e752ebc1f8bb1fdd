"""Tick datasets -> NautilusTrader ``TradeTick`` / ``QuoteTick`` catalog files, streamed.

``aggTrades`` and ``trades`` (USD-M, COIN-M and spot) become ``TradeTick``: price and size
exact at the instrument's precisions, ``aggressor_side`` SELLER when ``is_buyer_maker`` (the
buyer's order rested, so the seller crossed the spread) else BUYER, ``trade_id`` the source
id, ``ts_event = ts_init`` the trade time in ns (ms and µs sources both exact). ``bookTicker``
becomes ``QuoteTick`` with ``ts_event`` = ``event_time``, or ``transaction_time`` where the
event time is missing; how many rows used which is recorded per unit.

A file is read in blocks straight out of its zip (pyarrow's streaming CSV reader), so memory
holds one block plus one output file's rows, whatever the file size. Rows are kept in
``(ts_event, id)`` order and deduplicated by source id (identical repeats are dropped and
counted; two different rows with one id are an error naming both lines). Rows out of order
inside a block are sorted and counted; a block that starts before the previous block ended
(rare) switches the unit to a whole-unit sort, also counted and logged.

Output files hold about :data:`FILE_ROWS` rows each and are cut only between two different
timestamps, so the files' closed intervals stay disjoint as NautilusTrader requires; the first
file starts at the unit's start and the last ends at its end (the unit's coverage). Encodings
match what ``ParquetDataCatalog.write_data`` writes (``tests/data/test_ticks.py`` compares).

Why not NautilusTrader's ``TradeTickDataWrangler``: it builds one Python object per row before
writing, the slow path ``benchmarks/ingest_ticks.py`` measures as the baseline.
"""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vibe_quant.data.bars import FIXED_PRECISION, NS_PER_MS, fixed128
from vibe_quant.data.catalog import StagedCatalog, data_dir, interval_filename, intervals, subtract, write_pieces
from vibe_quant.data.files import AGG_TRADES, BOOK_TICKER, TRADES, iso_ms, utc_ms
from vibe_quant.data.parse import (
    _decimal_check,
    _int_check,
    _locate_csv_problem,
    _mantissas,
    time_unit,
)
from vibe_quant.errors import DataFileError
from vibe_quant.instruments.specs import InstrumentSpec

log = logging.getLogger(__name__)

TRADE_KIND = "trade_tick"
QUOTE_KIND = "quote_tick"
BLOCK_BYTES = 8 << 20  # CSV block per streamed batch (~130k trade rows)
FILE_ROWS = 2_000_000  # rows per catalog file
TICK_ROW_GROUP = 100_000
TICK_WRITE_OPTIONS = {
    "use_dictionary": False,
    "column_encoding": {"ts_event": "DELTA_BINARY_PACKED", "ts_init": "DELTA_BINARY_PACKED"},
}
SELLER, BUYER = 2, 1  # nautilus_trader.model.enums.AggressorSide


@dataclass(frozen=True)
class Layout:
    """Positional columns of one dataset's CSV and the header names accepted at each position."""

    dataset: str
    columns: tuple[str, ...]
    headers: tuple[frozenset[str], ...]

    @property
    def is_quote(self) -> bool:
        return self.dataset == BOOK_TICKER

    @property
    def time_column(self) -> str:
        return "transaction_time" if self.is_quote else "time"


def _names(*alternatives: str) -> frozenset[str]:
    return frozenset(a.replace("_", "").lower() for a in alternatives)


_AGG = (
    ("id", _names("agg_trade_id", "aggTradeId", "a")),
    ("price", _names("price", "p")),
    ("qty", _names("quantity", "qty", "q")),
    ("first_id", _names("first_trade_id", "firstTradeId", "f")),
    ("last_id", _names("last_trade_id", "lastTradeId", "l")),
    ("time", _names("transact_time", "timestamp", "time", "T")),
    ("maker", _names("is_buyer_maker", "isBuyerMaker", "m")),
)
_TRADES = (
    ("id", _names("id", "trade_id", "tradeId")),
    ("price", _names("price")),
    ("qty", _names("qty", "quantity")),
    ("quote_qty", _names("quote_qty", "quoteQty")),
    ("time", _names("time", "transact_time", "timestamp")),
    ("maker", _names("is_buyer_maker", "isBuyerMaker")),
)
_BEST = ("best_match", _names("is_best_match", "isBestMatch", "M"))
_BOOK = (
    ("id", _names("update_id", "updateId", "u")),
    ("bid", _names("best_bid_price", "bestBidPrice", "b")),
    ("bid_qty", _names("best_bid_qty", "bestBidQty", "B")),
    ("ask", _names("best_ask_price", "bestAskPrice", "a")),
    ("ask_qty", _names("best_ask_qty", "bestAskQty", "A")),
    ("transaction_time", _names("transaction_time", "transactionTime", "T")),
    ("event_time", _names("event_time", "eventTime", "E")),
)


def _layout(dataset: str, cols: tuple) -> Layout:
    return Layout(dataset, tuple(c for c, _ in cols), tuple(h for _, h in cols))


# Keyed by (dataset, column count): spot files add isBestMatch as a last column.
LAYOUTS = {
    (AGG_TRADES, 7): _layout(AGG_TRADES, _AGG),
    (AGG_TRADES, 8): _layout(AGG_TRADES, (*_AGG, _BEST)),
    (TRADES, 6): _layout(TRADES, _TRADES),
    (TRADES, 7): _layout(TRADES, (*_TRADES, _BEST)),
    (BOOK_TICKER, 7): _layout(BOOK_TICKER, _BOOK),
}


@dataclass
class TickSource:
    """A tick file waiting to be streamed into the catalog (parsing happens while writing)."""

    dataset: str
    raw: bytes
    name: str
    layout: Layout
    header: bool


@dataclass
class TickStats:
    rows_in: int = 0
    written: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    crossed: int = 0  # bookTicker rows with bid > ask (kept, counted)
    clipped: int = 0  # rows outside the requested range (monthly file clipped)
    ts_source: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    time_unit: str | None = None

    def as_dict(self) -> dict:
        out = {
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "time_unit": self.time_unit,
        }
        if self.ts_source:
            out["ts_source"] = self.ts_source
            out["crossed"] = self.crossed
        if self.clipped:
            out["clipped"] = self.clipped
        return out


def _open_text(raw: bytes, name: str):
    """Return a binary file object over the CSV inside `raw` (a zip streamed, or the bytes)."""
    if not name.lower().endswith(".zip"):
        return io.BytesIO(raw)
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DataFileError(name, f"zip holds {len(members)} files {members[:3]}, expected one CSV")
        return zf.open(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataFileError(
            name, f"not a readable zip ({exc}); the file is truncated or corrupt", fix="delete it and download it again"
        ) from exc


def header_fields(first_line: bytes) -> list[str]:
    return first_line.decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")


def is_header(fields: list[str]) -> bool:
    """A header's first field has no digit (data starts with an id, a timestamp or an ISO date)."""
    first = fields[0].strip()
    return bool(first) and not any(ch.isdigit() for ch in first)


def open_ticks(dataset: str, raw: bytes, name: str) -> TickSource:
    """Check the first line of a tick file (header or not, column count) without parsing it all.

    Raises
    ------
    DataFileError
        Unknown column count or header names for `dataset`, empty file, unreadable zip.
    """
    with _open_text(raw, name) as fh:
        head = fh.read(4096)
    try:
        if not head.strip():
            raise DataFileError(name, "empty file", fix="download it again")
        fields = header_fields(head.split(b"\n", 1)[0])
        layout = LAYOUTS.get((dataset, len(fields)))
        if layout is None:
            known = sorted(n for ds, n in LAYOUTS if ds == dataset)
            raise DataFileError(
                name,
                f"{len(fields)} columns where a Binance {dataset} file has {' or '.join(map(str, known))}",
                line=1,
                fix=f"check the file is a {dataset} file (--datasets) of the right market (--market)",
            )
        header = is_header(fields)
        if header:
            for i, (got, ok) in enumerate(zip(fields, layout.headers, strict=True)):
                if got.strip().replace("_", "").lower() not in ok:
                    raise DataFileError(
                        name,
                        f"header column {i + 1} is {got.strip()!r}, not a {dataset} column "
                        f"(expected one of {sorted(ok)})",
                        line=1,
                        fix=f"check the file is a Binance {dataset} file",
                    )
    except UnicodeDecodeError as exc:  # pragma: no cover - decode uses errors="replace"
        raise DataFileError(name, f"not a text CSV ({exc})") from exc
    return TickSource(dataset, raw, name, layout, header)


def _checks(layout: Layout, spec: InstrumentSpec) -> dict:
    price = _decimal_check(spec.price_precision, "price")
    size = _decimal_check(spec.size_precision, "size")
    kinds = {"id": _int_check, "price": price, "bid": price, "ask": price, "qty": size}
    kinds |= {"bid_qty": size, "ask_qty": size, "time": _int_check, "transaction_time": _int_check}
    return {i: kinds[c] for i, c in enumerate(layout.columns) if c in kinds}


def _batches(src: TickSource, spec: InstrumentSpec) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(line of the batch's first row, batch)`` from the streamed CSV."""
    layout = src.layout
    price_t, size_t = pa.decimal128(38, spec.price_precision), pa.decimal128(38, spec.size_precision)
    if layout.is_quote:
        types = {"id": pa.int64(), "bid": price_t, "bid_qty": size_t, "ask": price_t, "ask_qty": size_t}
        types |= {"transaction_time": pa.int64(), "event_time": pa.int64()}
    else:
        types = {"id": pa.int64(), "price": price_t, "qty": size_t, "time": pa.int64(), "maker": pa.bool_()}
    fh = _open_text(src.raw, src.name)
    try:
        reader = pacsv.open_csv(
            fh,
            read_options=pacsv.ReadOptions(
                column_names=list(layout.columns), skip_rows=int(src.header), block_size=BLOCK_BYTES
            ),
            # An empty line is an error (like in kline files); skipping it would shift every line number.
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(types), null_values=[""], strings_can_be_null=False
            ),
        )
        line = 1 + int(src.header)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield line, batch
            line += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        data = _open_text(src.raw, src.name).read()
        _locate_csv_problem(data, src.name, src.header, layout.columns, _checks(layout, spec))
        raise DataFileError(src.name, f"unreadable CSV: {exc}") from exc
    finally:
        fh.close()


def _ints(column: pa.Array, name: str, key: str, line0: int) -> np.ndarray:
    if column.null_count:
        i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFileError(name, f"empty {key!r} field", line=line0 + i)
    return column.to_numpy()


def _to_ns(raw: np.ndarray, unit: str | None, name: str, line0: int, column: str) -> tuple[np.ndarray, str]:
    """Return ms or µs Binance timestamps in ns, exactly; one unit per file (the first row decides)."""
    unit = time_unit(raw, name, line0, column, unit)
    return raw * (1_000 if unit == "us" else NS_PER_MS), unit


@dataclass
class _Rows:
    """Columns of tick rows as numpy arrays (mantissas for prices and sizes)."""

    ts: np.ndarray
    id: np.ndarray
    cols: dict[str, np.ndarray]
    line: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx) -> _Rows:
        return _Rows(self.ts[idx], self.id[idx], {k: v[idx] for k, v in self.cols.items()}, self.line[idx])

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        if len(parts) == 1:
            return parts[0]
        return _Rows(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.id for p in parts]),
            {k: np.concatenate([p.cols[k] for p in parts]) for k in parts[0].cols},
            np.concatenate([p.line for p in parts]),
        )


def _descents(ts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indexes i >= 1 where row i sorts before row i-1 by ``(ts, id)``."""
    return np.flatnonzero((ts[1:] < ts[:-1]) | ((ts[1:] == ts[:-1]) & (ids[1:] < ids[:-1]))) + 1


def _sort(rows: _Rows) -> _Rows:
    return rows.take(np.lexsort((rows.id, rows.ts)))


def _dedup(rows: _Rows, name: str, quote: bool, stats: TickStats) -> _Rows:
    """Drop identical repeats of one source key (counted); raise on two different rows for one key.

    Trades are keyed by their id, quotes by ``(ts_event, update_id)``. `rows` are sorted by
    ``(ts, id)``.
    """
    if len(rows) < 2:
        return rows
    if quote:
        dup = np.flatnonzero((rows.ts[1:] == rows.ts[:-1]) & (rows.id[1:] == rows.id[:-1])) + 1
        prev = dup - 1
    else:
        if (np.diff(rows.id) > 0).all():
            return rows
        order = np.argsort(rows.id, kind="stable")
        sid = rows.id[order]
        at = np.flatnonzero(sid[1:] == sid[:-1]) + 1
        dup, prev = order[at], order[at - 1]
    if not len(dup):
        return rows
    same = rows.ts[dup] == rows.ts[prev]
    for col in rows.cols.values():
        same &= col[dup] == col[prev]
    if not same.all():
        k = int(np.flatnonzero(~same)[0])
        a, b = sorted((int(rows.line[prev[k]]), int(rows.line[dup[k]])))
        what = f"update_id {rows.id[dup[k]]} at one event time" if quote else f"id {rows.id[dup[k]]}"
        raise DataFileError(
            name,
            f"two different rows for {what} (lines {a} and {b})",
            line=b,
            fix="the source is inconsistent; remove the wrong row or re-download",
        )
    stats.duplicates += len(dup)
    keep = np.ones(len(rows), dtype=bool)
    keep[dup] = False
    return rows.take(keep)


def _convert(
    src: TickSource, batch: pa.RecordBatch, line0: int, spec: InstrumentSpec, stats: TickStats, span_ms: tuple
) -> _Rows:
    name = src.name
    n = batch.num_rows
    ids = _ints(batch.column("id"), name, "id", line0)
    lines = np.arange(line0, line0 + n, dtype=np.int64)
    if src.layout.is_quote:
        tt = batch.column("transaction_time")
        et = batch.column("event_time")
        if et.null_count:
            missing = et.is_null().to_numpy(zero_copy_only=False)
            raw_ts = np.where(missing, tt.fill_null(0).to_numpy(), et.fill_null(0).to_numpy())
            stats.ts_source["transaction_time"] = stats.ts_source.get("transaction_time", 0) + int(missing.sum())
            stats.ts_source["event_time"] = stats.ts_source.get("event_time", 0) + int(n - missing.sum())
            if tt.null_count and (tt.is_null().to_numpy(zero_copy_only=False) & missing).any():
                i = int(np.flatnonzero(tt.is_null().to_numpy(zero_copy_only=False) & missing)[0])
                raise DataFileError(name, "both event_time and transaction_time are empty", line=line0 + i)
        else:
            raw_ts = et.to_numpy()
            stats.ts_source["event_time"] = stats.ts_source.get("event_time", 0) + n
        column = "event_time"
        cols = {key: _mantissas(batch.column(key), name, key, line0) for key in ("bid", "ask", "bid_qty", "ask_qty")}
        bad = np.flatnonzero((cols["bid"] <= 0) | (cols["ask"] <= 0) | (cols["bid_qty"] < 0) | (cols["ask_qty"] < 0))
        if len(bad):
            i = int(bad[0])
            raise DataFileError(name, "a price is not positive or a size is negative", line=line0 + i)
        stats.crossed += int((cols["bid"] > cols["ask"]).sum())
    else:
        raw_ts = _ints(batch.column("time"), name, "time", line0)
        column = "time"
        maker = batch.column("maker")
        if maker.null_count:
            i = int(np.flatnonzero(maker.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataFileError(name, "empty 'is_buyer_maker' field", line=line0 + i)
        cols = {
            "price": _mantissas(batch.column("price"), name, "price", line0),
            "qty": _mantissas(batch.column("qty"), name, "qty", line0),
            "side": np.where(maker.to_numpy(zero_copy_only=False), SELLER, BUYER).astype(np.uint8),
        }
        bad = np.flatnonzero((cols["price"] <= 0) | (cols["qty"] <= 0))
        if len(bad):
            i = int(bad[0])
            raise DataFileError(name, "price or quantity is not positive", line=line0 + i)
    ts, stats.time_unit = _to_ns(raw_ts, stats.time_unit, name, line0, column)
    lo, hi, file_lo, file_hi = span_ms
    outside = (ts < file_lo * NS_PER_MS) | (ts >= file_hi * NS_PER_MS)
    if outside.any():
        i = int(outside.argmax())
        raise DataFileError(
            name,
            f"row at {iso_ms(int(ts[i]) // NS_PER_MS)} is outside the period the file name gives",
            line=line0 + i,
            fix="rename the file to its real period",
        )
    if spec.listed is not None and int(ts.min()) < utc_ms(spec.listed) * NS_PER_MS:
        i = int(ts.argmin())
        raise DataFileError(
            name,
            f"row at {iso_ms(int(ts[i]) // NS_PER_MS)} is before {spec.symbol}'s listing on {spec.listed}",
            line=line0 + i,
            fix=f"check the file is really {spec.symbol} data, or correct `listed` in instrument_specs.yaml",
        )
    rows = _Rows(ts, ids, cols, lines)
    keep = (ts >= lo * NS_PER_MS) & (ts < hi * NS_PER_MS)
    if not keep.all():
        stats.clipped += int((~keep).sum())
        rows = rows.take(keep)
    return rows


def tick_schema(spec: InstrumentSpec, quote: bool) -> pa.Schema:
    """The Arrow schema NautilusTrader 1.221 writes for ``TradeTick`` / ``QuoteTick``."""
    fixed = [
        pa.field(n, pa.binary(16), nullable=False)
        for n in (("bid_price", "ask_price", "bid_size", "ask_size") if quote else ("price", "size"))
    ]
    if not quote:
        fixed += [
            pa.field("aggressor_side", pa.uint8(), nullable=False),
            pa.field("trade_id", pa.string(), nullable=False),
        ]
    fixed += [pa.field("ts_event", pa.uint64(), nullable=False), pa.field("ts_init", pa.uint64(), nullable=False)]
    metadata = {
        "instrument_id": spec.nautilus_id,
        "price_precision": str(spec.price_precision),
        "size_precision": str(spec.size_precision),
    }
    return pa.schema(fixed, metadata=metadata)


def tick_table(rows: _Rows, spec: InstrumentSpec, quote: bool) -> pa.Table:
    assert FIXED_PRECISION == 16
    ts = pa.array(rows.ts, pa.int64()).cast(pa.uint64())
    pp, sp = spec.price_precision, spec.size_precision
    if quote:
        c = rows.cols
        columns = [
            fixed128(c["bid"], pp),
            fixed128(c["ask"], pp),
            fixed128(c["bid_qty"], sp),
            fixed128(c["ask_qty"], sp),
        ]
    else:
        columns = [
            fixed128(rows.cols["price"], pp),
            fixed128(rows.cols["qty"], sp),
            pa.array(rows.cols["side"], pa.uint8()),
            pa.array(rows.id, pa.int64()).cast(pa.string()),
        ]
    return pa.Table.from_arrays([*columns, ts, ts], schema=tick_schema(spec, quote))


class _ChunkWriter:
    """Stage sorted rows as catalog files of about FILE_ROWS rows covering ``[lo, hi]`` ns together."""

    def __init__(self, staged: StagedCatalog, spec: InstrumentSpec, quote: bool, span: tuple[int, int]):
        self.staged, self.spec, self.quote = staged, spec, quote
        self.kind = QUOTE_KIND if quote else TRADE_KIND
        self.lo, self.hi = span
        self.buffer: list[_Rows] = []
        self.buffered = 0
        self.pending: tuple[pa.Table, int] | None = None  # (rows, their interval start)
        self.files: list[Path] = []
        self.written = 0

    def add(self, rows: _Rows) -> None:
        if not len(rows):
            return
        self.buffer.append(rows)
        self.buffered += len(rows)
        if self.buffered >= FILE_ROWS:
            allrows = _Rows.concat(self.buffer)
            cut = int(np.searchsorted(allrows.ts, allrows.ts[-1], side="left"))
            if cut == 0:  # every buffered row has one timestamp: keep filling
                return
            self._emit(allrows.take(slice(0, cut)), int(allrows.ts[cut]))
            rest = allrows.take(slice(cut, None))
            self.buffer, self.buffered = [rest], len(rest)

    def _emit(self, rows: _Rows, next_start: int) -> None:
        self._write_pending(self.lo - 1)  # the previous file ends where this one starts
        self.pending = (tick_table(rows, self.spec, self.quote), self.lo)
        self.lo = next_start

    def _write_pending(self, end: int) -> None:
        if self.pending is None:
            return
        table, start = self.pending
        rel = data_dir(Path(), self.kind, self.spec.nautilus_id) / interval_filename(start, end)
        pq.write_table(table, self.staged.path(rel), row_group_size=TICK_ROW_GROUP, **TICK_WRITE_OPTIONS)
        self.staged.add(rel)
        self.files.append(rel)
        self.written += table.num_rows
        self.pending = None

    def close(self) -> None:
        rest = _Rows.concat(self.buffer) if self.buffer else None
        if rest is not None and len(rest):
            self._write_pending(self.lo - 1)
            self.pending = (tick_table(rest, self.spec, self.quote), self.lo)
        self._write_pending(self.hi)

    def discard(self) -> None:
        for rel in self.files:
            self.staged.discard(rel)
        self.files, self.written, self.pending, self.buffer, self.buffered = [], 0, None, [], 0


class _Restart(Exception):
    """A block started before the previous one ended: redo the unit with one global sort."""


def write_ticks_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    src: TickSource,
    start_ms: int,
    end_ms: int,
    file_span_ms: tuple[int, int],
) -> TickStats:
    """Stream `src` into the catalog for the unit ``[start_ms, end_ms)``; return its statistics.

    Raises
    ------
    DataFileError
        Malformed row (file and line named), conflicting duplicates, rows outside the file's
        period or before the listing, data conflicting with the catalog.
    """
    quote = src.layout.is_quote
    kind = QUOTE_KIND if quote else TRADE_KIND
    span = (start_ms * NS_PER_MS, end_ms * NS_PER_MS - 1)
    span_ms = (start_ms, end_ms, *file_span_ms)
    if subtract(span, intervals(root, kind, spec.nautilus_id)) == [span]:
        writer = _ChunkWriter(staged, spec, quote, span)
        try:
            stats = _stream(src, spec, writer, span_ms)
        except _Restart:
            writer.discard()
            log.warning("%s: rows out of order across blocks; sorting the whole file in memory", src.name)
        else:
            return stats
    # Out of order across blocks, or the catalog already covers part of the span: whole unit.
    stats = TickStats()
    parts = []
    for line0, batch in _batches(src, spec):
        rows = _convert(src, batch, line0, spec, stats, span_ms)
        stats.rows_in += batch.num_rows
        parts.append(rows)
    rows = _Rows.concat(parts) if parts else None
    if rows is None or not len(rows):
        return stats
    stats.out_of_order += len(_descents(rows.ts, rows.id))
    rows = _dedup(_sort(rows), src.name, quote, stats)
    stats.first_ts_ns, stats.last_ts_ns = int(rows.ts[0]), int(rows.ts[-1])
    table = tick_table(rows, spec, quote)
    stats.written = write_pieces(staged, root, kind, spec.nautilus_id, table, span, src.name)
    return stats


def _stream(src: TickSource, spec: InstrumentSpec, writer: _ChunkWriter, span_ms: tuple) -> TickStats:
    stats = TickStats()
    quote = src.layout.is_quote
    last: tuple[int, int] | None = None
    max_id: int | None = None
    for line0, batch in _batches(src, spec):
        stats.rows_in += batch.num_rows
        rows = _convert(src, batch, line0, spec, stats, span_ms)
        if not len(rows):
            continue
        descents = _descents(rows.ts, rows.id)
        if len(descents):
            stats.out_of_order += len(descents)
            rows = _sort(rows)
        rows = _dedup(rows, src.name, quote, stats)
        first = (int(rows.ts[0]), int(rows.id[0]))
        if last is not None and first <= last:
            raise _Restart
        if not quote and max_id is not None and int(rows.id.min()) <= max_id:
            raise _Restart  # an id seen in an earlier block: maybe a duplicate
        last = (int(rows.ts[-1]), int(rows.id[-1]))
        max_id = int(rows.id.max()) if max_id is None else max(max_id, int(rows.id.max()))
        if stats.first_ts_ns is None:
            stats.first_ts_ns = int(rows.ts[0])
        stats.last_ts_ns = int(rows.ts[-1])
        writer.add(rows)
    writer.close()
    stats.written = writer.written
    if stats.out_of_order:
        log.warning("%s: %d row(s) out of (time, id) order were sorted", src.name, stats.out_of_order)
    if stats.crossed:
        log.warning("%s: %d quote(s) with bid > ask (kept, counted in the manifest)", src.name, stats.crossed)
    return stats
