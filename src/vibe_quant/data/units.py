"""Catalog units: what one ingest step writes for one dataset, symbol and time span.

A unit is the parsed content of one source (an archive file, clipped to the requested range,
or one REST fetch) over a half-open span ``[start_ms, end_ms)`` that the source is known to
cover completely. Writing a unit:

* 1m bars go to the parts of the span the catalog does not cover yet; where it already does,
  the new rows must equal the stored ones (else a conflict error names the source);
* each higher timeframe gets the buckets that become complete: those inside the span, plus a
  bucket cut by the span's edge when the catalog's 1m data completes it (REST updates);
* funding rates follow the same coverage rule.

The catalog is therefore a pure function of the units replayed in order, which is how
``rebuild --from-archive`` reproduces it byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from vibe_quant.data.bars import BASE_TIMEFRAME, NS_PER_MS, TIMEFRAMES, BarArrays, Timeframe, aggregate, bar_table
from vibe_quant.data.catalog import StagedCatalog, encode_funding, intervals, read_span, subtract
from vibe_quant.data.files import KLINES, iso_ms, utc_ms
from vibe_quant.data.parse import FundingRates, Klines, parse_funding_csv, parse_klines_csv, read_member
from vibe_quant.errors import DataFileError
from vibe_quant.instruments.specs import InstrumentSpec

BAR = "bar"
FUNDING_KIND = "funding_rate_update"
NS_PER_HOUR = 3_600_000_000_000


@dataclass
class UnitResult:
    """What a unit wrote (counts per timeframe label, and for ``funding``)."""

    dataset: str
    symbol: str
    start_ms: int
    end_ms: int
    rows_in: int
    duplicates: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    written: dict[str, int] = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        return sum(self.written.values())


def mantissas_from_fixed128(arr: pa.Array | pa.ChunkedArray, precision: int) -> np.ndarray:
    """Decode Nautilus raw i128 values (fixed_size_binary[16]) to int64 mantissas at `precision`."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dec = arr.view(pa.decimal128(38, 16)).cast(pa.decimal128(38, precision))
    words = np.frombuffer(dec.buffers()[1], dtype="<i8")[2 * dec.offset : 2 * (dec.offset + len(dec))]
    return words[0::2].copy()


def _catalog_base_bars(root: Path, bar_type: str, spec: InstrumentSpec, start_ms: int, end_ms: int) -> BarArrays:
    table = read_span(root, BAR, bar_type, start_ms * NS_PER_MS + 1, end_ms * NS_PER_MS)
    if table is None or table.num_rows == 0:
        return BarArrays(*(np.empty(0, np.int64) for _ in range(6)))
    ts = table.column("ts_init").to_numpy().astype(np.int64)
    return BarArrays(
        ts // NS_PER_MS - BASE_TIMEFRAME.step_ms,
        *(mantissas_from_fixed128(table.column(c), spec.price_precision) for c in ("open", "high", "low", "close")),
        mantissas_from_fixed128(table.column("volume"), spec.size_precision),
    )


def _covered(root: Path, kind: str, identifier: str, span: tuple[int, int]) -> bool:
    return span[0] > span[1] or not subtract(span, intervals(root, kind, identifier))


def _rows_in(table: pa.Table, lo: int, hi: int) -> pa.Table:
    ts = table.column("ts_init")
    mask = pc.and_(pc.greater_equal(ts, pa.scalar(lo, pa.uint64())), pc.less_equal(ts, pa.scalar(hi, pa.uint64())))
    return table.filter(mask)


def _check_same(root: Path, kind: str, identifier: str, new: pa.Table, piece: tuple[int, int], source: str) -> None:
    old = read_span(root, kind, identifier, piece[0], piece[1])
    new_rows = _rows_in(new, *piece)
    old_rows = old if old is not None else new_rows.slice(0, 0)
    columns = [c for c in new_rows.column_names if c != "instrument_id"]
    for name in columns:
        a, b = old_rows.column(name), new_rows.column(name)
        if len(a) != len(b) or not a.equals(b):
            where = _first_difference(old_rows, new_rows)
            raise DataFileError(
                source,
                f"conflicts with {identifier} data already in the catalog ({where})",
                fix="the archive already holds different data for this span; inspect both sources, "
                "or start a fresh $VQ_HOME if the stored data is wrong",
            )


def _first_difference(old: pa.Table, new: pa.Table) -> str:
    old_ts = set(old.column("ts_init").to_pylist())
    new_ts = set(new.column("ts_init").to_pylist())
    if old_ts != new_ts:
        ts = min(old_ts ^ new_ts)
        side = "only in the new file" if ts in new_ts else "only in the catalog"
        return f"row at ts {ts} is {side}"
    for i in range(new.num_rows):
        if old.slice(i, 1).to_pylist() != new.slice(i, 1).to_pylist():
            return f"values differ at ts {new.column('ts_init')[i].as_py()}"
    return "tables differ"


def _write_pieces(
    staged: StagedCatalog, root: Path, kind: str, identifier: str, table: pa.Table, span: tuple[int, int], source: str
) -> int:
    """Write `table` rows into the uncovered parts of `span`; verify the covered parts."""
    if span[0] > span[1]:
        return 0
    new_pieces = subtract(span, intervals(root, kind, identifier))
    for piece in subtract(span, new_pieces):
        _check_same(root, kind, identifier, table, piece, source)
    written = 0
    for piece in new_pieces:
        rows = _rows_in(table, *piece) if len(new_pieces) > 1 or piece != span else table
        if rows.num_rows:
            staged.write_table(rows, kind, identifier, piece[0], piece[1])
            written += rows.num_rows
    return written


def _tf_span(root: Path, base_type: str, tf: Timeframe, start_ms: int, end_ms: int) -> tuple[int, int]:
    """Return the bucket span ``[from, until)`` (ms) that this unit completes for `tf`."""
    step = tf.step_ms
    lo, hi = -(-start_ms // step) * step, end_ms // step * step
    floor_start, ceil_end = start_ms // step * step, -(-end_ms // step) * step
    if floor_start < start_ms and _covered(root, BAR, base_type, (floor_start * NS_PER_MS + 1, start_ms * NS_PER_MS)):
        lo = floor_start
    if ceil_end > end_ms and _covered(root, BAR, base_type, (end_ms * NS_PER_MS + 1, ceil_end * NS_PER_MS)):
        hi = ceil_end
    return lo, hi


def write_klines_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    klines: Klines,
    start_ms: int,
    end_ms: int,
    source: str,
) -> UnitResult:
    """Stage the 1m bars of `klines` in ``[start_ms, end_ms)`` and every timeframe they complete.

    Raises
    ------
    DataFileError
        If rows overlap catalog data with different values.
    """
    iid = spec.nautilus_id
    unit = klines.slice_time(start_ms, end_ms)
    bars = BarArrays.from_klines(unit)
    result = UnitResult(
        "klines",
        spec.symbol,
        start_ms,
        end_ms,
        len(klines),
        klines.duplicates,
        int(unit.open_time_ms[0] + 60_000) * NS_PER_MS if len(unit) else None,
        int(unit.open_time_ms[-1] + 60_000) * NS_PER_MS if len(unit) else None,
    )
    base_type = BASE_TIMEFRAME.bar_type(iid)
    for tf in TIMEFRAMES:
        lo, hi = (start_ms, end_ms) if tf is BASE_TIMEFRAME else _tf_span(root, base_type, tf, start_ms, end_ms)
        if lo >= hi:
            result.written[tf.label] = 0
            continue
        source_bars = bars
        extra = []
        if lo < start_ms:
            extra.append(_catalog_base_bars(root, base_type, spec, lo, start_ms))
        if hi > end_ms:
            extra.append(_catalog_base_bars(root, base_type, spec, end_ms, hi))
        if extra:
            parts = sorted([bars, *extra], key=lambda b: b.open_time_ms[0] if len(b) else 0)
            source_bars = BarArrays.concat(parts)
        agg = aggregate(source_bars, tf, lo, hi)
        table = bar_table(agg, tf, iid, spec.price_precision, spec.size_precision)
        span = (lo * NS_PER_MS + 1, hi * NS_PER_MS)
        result.written[tf.label] = _write_pieces(staged, root, BAR, tf.bar_type(iid), table, span, source)
    return result


def funding_updates(spec: InstrumentSpec, rates: FundingRates) -> list[FundingRateUpdate]:
    """Return one ``FundingRateUpdate`` per settlement; ``next_funding_ns`` = time + interval."""
    iid = InstrumentId.from_str(spec.nautilus_id)
    out = []
    for ms, hours, rate in zip(rates.calc_time_ms.tolist(), rates.interval_hours.tolist(), rates.rates, strict=True):
        ts = ms * NS_PER_MS
        out.append(FundingRateUpdate(iid, Decimal(rate), ts, ts, next_funding_ns=ts + hours * NS_PER_HOUR))
    return out


def write_funding_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    rates: FundingRates,
    start_ms: int,
    end_ms: int,
    source: str,
) -> UnitResult:
    """Stage the funding settlements of `rates` in ``[start_ms, end_ms)`` where not yet covered."""
    unit = rates.slice_time(start_ms, end_ms)
    updates = funding_updates(spec, unit)
    result = UnitResult(
        "fundingRate",
        spec.symbol,
        start_ms,
        end_ms,
        len(rates),
        rates.duplicates,
        updates[0].ts_event if updates else None,
        updates[-1].ts_event if updates else None,
    )
    span = (start_ms * NS_PER_MS, end_ms * NS_PER_MS - 1)
    iid = spec.nautilus_id
    table = pa.Table.from_batches([encode_funding(updates)]) if updates else None
    new_pieces = subtract(span, intervals(root, FUNDING_KIND, iid))
    if table is not None:
        for piece in subtract(span, new_pieces):
            _check_same(root, FUNDING_KIND, iid, table, piece, source)
    written = 0
    for a, b in new_pieces:
        chosen = [u for u in updates if a <= u.ts_init <= b]
        if chosen:
            staged.write_objects(chosen, FUNDING_KIND, iid, start_ns=a, end_ns=b)
            written += len(chosen)
    result.written["funding"] = written
    return result


def parse_source(dataset: str, raw: bytes, name: str, spec: InstrumentSpec) -> Klines | FundingRates:
    """Parse one source file's bytes (zip or CSV) for `dataset` at `spec`'s precisions."""
    data = read_member(raw, name)
    if dataset == KLINES:
        return parse_klines_csv(data, name, spec.price_precision, spec.size_precision)
    return parse_funding_csv(data, name)


def check_rows(
    parsed: Klines | FundingRates, name: str, spec: InstrumentSpec, start_ms: int | None, end_ms: int | None
) -> None:
    """Reject rows outside the file's own period and rows before the symbol's listing date."""
    times = parsed.open_time_ms if isinstance(parsed, Klines) else parsed.calc_time_ms
    if len(times) == 0:
        return
    lines = parsed.lines if isinstance(parsed, Klines) else None
    if start_ms is not None and end_ms is not None:
        outside = (times < start_ms) | (times >= end_ms)
        if outside.any():
            i = int(outside.argmax())
            raise DataFileError(
                name,
                f"row at {iso_ms(int(times[i]))} is outside the period the file name gives",
                line=int(lines[i]) if lines is not None else None,
                fix="rename the file to its real period",
            )
    if spec.listed is not None and int(times[0]) < utc_ms(spec.listed):
        raise DataFileError(
            name,
            f"data starts {iso_ms(int(times[0]))}, before {spec.symbol}'s listing on {spec.listed} (survivorship check)",
            line=int(lines[0]) if lines is not None else None,
            fix=f"check the file is really {spec.symbol} USD-M data, or correct `listed` in instrument_specs.yaml",
        )


def write_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    parsed: Klines | FundingRates,
    start_ms: int,
    end_ms: int,
    name: str,
) -> UnitResult:
    writer = write_klines_unit if isinstance(parsed, Klines) else write_funding_unit
    return writer(root, staged, spec, parsed, start_ms, end_ms, name)  # type: ignore[arg-type]
