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
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from vibe_quant.data.bars import (
    BASE_TIMEFRAME,
    NS_PER_MS,
    TIMEFRAMES,
    BarArrays,
    Timeframe,
    aggregate,
    bar_table,
    timeframe,
)
from vibe_quant.data.catalog import (
    StagedCatalog,
    check_same,
    encode_funding,
    intervals,
    read_span,
    subtract,
    write_pieces,
)
from vibe_quant.data.derivs import CUSTOM_DATASETS, PRICE_KLINE_CLASSES, CustomRows, check_custom_rows, parse_custom
from vibe_quant.data.files import FUNDING, INTERVAL_MINUTES, KLINES, MARKET, TICK_DATASETS, iso_ms, utc_ms
from vibe_quant.data.parse import FundingRates, Klines, parse_funding_csv, parse_klines_csv, read_member
from vibe_quant.data.ticks import TickSource, open_ticks, write_ticks_unit
from vibe_quant.errors import DataFileError
from vibe_quant.instruments.specs import InstrumentSpec

BAR = "bar"
FUNDING_KIND = "funding_rate_update"
NS_PER_HOUR = 3_600_000_000_000


@dataclass
class UnitResult:
    """What a unit wrote (counts per timeframe label, and for ``funding``, ``trades``, ...).

    ``stats`` holds what the manifest reports beyond counts (out-of-order rows sorted, crossed
    quotes, the bookTicker timestamp source, the source time unit).
    """

    dataset: str
    symbol: str
    start_ms: int
    end_ms: int
    rows_in: int
    duplicates: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    written: dict[str, int] = field(default_factory=dict)
    market: str = MARKET
    interval: str | None = None
    stats: dict = field(default_factory=dict)

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
    interval: str = "1m",
) -> UnitResult:
    """Stage the 1m bars of `klines` in ``[start_ms, end_ms)`` and every timeframe they complete.

    Klines of another `interval` (spot 1h files, a generic 1d CSV) are stored at that native
    timeframe only.

    Raises
    ------
    DataFileError
        If rows overlap catalog data with different values.
    """
    iid = spec.nautilus_id
    unit = klines.slice_time(start_ms, end_ms)
    bars = BarArrays.from_klines(unit)
    native = timeframe(interval)
    result = UnitResult(
        "klines",
        spec.symbol,
        start_ms,
        end_ms,
        len(klines),
        klines.duplicates,
        int(unit.open_time_ms[0] + native.step_ms) * NS_PER_MS if len(unit) else None,
        int(unit.open_time_ms[-1] + native.step_ms) * NS_PER_MS if len(unit) else None,
        market=spec.market,
        interval=interval,
        stats={"duplicates": klines.duplicates, "time_unit": klines.time_unit},
    )
    if native is not BASE_TIMEFRAME:  # a native higher timeframe: stored as is, never aggregated
        table = bar_table(bars, native, iid, spec.price_precision, spec.size_precision)
        span = (start_ms * NS_PER_MS + 1, end_ms * NS_PER_MS)
        result.written[native.label] = write_pieces(staged, root, BAR, native.bar_type(iid), table, span, source)
        return result
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
        result.written[tf.label] = write_pieces(staged, root, BAR, tf.bar_type(iid), table, span, source)
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
        market=spec.market,
        stats={"duplicates": rates.duplicates},
    )
    span = (start_ms * NS_PER_MS, end_ms * NS_PER_MS - 1)
    iid = spec.nautilus_id
    table = pa.Table.from_batches([encode_funding(updates)]) if updates else None
    new_pieces = subtract(span, intervals(root, FUNDING_KIND, iid))
    if table is not None:
        for piece in subtract(span, new_pieces):
            check_same(root, FUNDING_KIND, iid, table, piece, source)
    written = 0
    for a, b in new_pieces:
        chosen = [u for u in updates if a <= u.ts_init <= b]
        if chosen:
            staged.write_objects(chosen, FUNDING_KIND, iid, start_ns=a, end_ns=b)
            written += len(chosen)
    result.written["funding"] = written
    return result


Parsed = Klines | FundingRates | TickSource | CustomRows


def parse_source(dataset: str, raw: bytes, name: str, spec: InstrumentSpec, interval: str | None = "1m") -> Parsed:
    """Parse one source file's bytes (zip or CSV) for `dataset` at `spec`'s precisions.

    Tick files are only opened and checked here (header, columns); their rows are parsed while
    they stream into the catalog (:func:`~vibe_quant.data.ticks.write_ticks_unit`).
    """
    if dataset in TICK_DATASETS:
        return open_ticks(dataset, raw, name)
    data = read_member(raw, name)
    if dataset == KLINES:
        step = INTERVAL_MINUTES.get(interval or "1m")
        if step is None:
            raise DataFileError(name, f"kline interval {interval!r} is not supported ({', '.join(INTERVAL_MINUTES)})")
        return parse_klines_csv(data, name, spec.price_precision, spec.size_precision, step * 60_000)
    if dataset in CUSTOM_DATASETS:
        return parse_custom(dataset, data, name, spec, interval)
    if dataset == FUNDING:
        return parse_funding_csv(data, name)
    raise DataFileError(name, f"unknown dataset {dataset!r}")


def check_rows(parsed: Parsed, name: str, spec: InstrumentSpec, start_ms: int | None, end_ms: int | None) -> None:
    """Reject rows outside the file's own period and rows before the symbol's listing date.

    Tick rows are checked while they stream (:mod:`~vibe_quant.data.ticks`).
    """
    if isinstance(parsed, TickSource):
        return
    if isinstance(parsed, CustomRows):
        if start_ms is not None and end_ms is not None:
            check_custom_rows(parsed, name, spec, start_ms, end_ms)
        return
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
            fix=f"check the file is really {spec.symbol} data of its market, or correct `listed` in instrument_specs.yaml",
        )


def write_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    parsed: Parsed,
    start_ms: int,
    end_ms: int,
    name: str,
    file_span_ms: tuple[int, int] | None = None,
    interval: str | None = "1m",
) -> UnitResult:
    """Stage one unit ``[start_ms, end_ms)``; `file_span_ms` is the period the file speaks for."""
    if isinstance(parsed, Klines):
        return write_klines_unit(root, staged, spec, parsed, start_ms, end_ms, name, interval or "1m")
    if isinstance(parsed, FundingRates):
        return write_funding_unit(root, staged, spec, parsed, start_ms, end_ms, name)
    if isinstance(parsed, TickSource):
        stats = write_ticks_unit(root, staged, spec, parsed, start_ms, end_ms, file_span_ms or (start_ms, end_ms))
        label = "quotes" if parsed.layout.is_quote else "trades"
        return UnitResult(
            parsed.dataset,
            spec.symbol,
            start_ms,
            end_ms,
            stats.rows_in,
            stats.duplicates,
            stats.first_ts_ns,
            stats.last_ts_ns,
            {label: stats.written},
            spec.market,
            None,
            stats.as_dict(),
        )
    return write_custom_unit(root, staged, spec, parsed, start_ms, end_ms, name, interval)


def write_custom_unit(
    root: Path,
    staged: StagedCatalog,
    spec: InstrumentSpec,
    rows: CustomRows,
    start_ms: int,
    end_ms: int,
    name: str,
    interval: str | None = None,
) -> UnitResult:
    """Stage custom data rows (metrics, bookDepth, price klines) where the catalog lacks them."""
    is_bar = rows.cls in PRICE_KLINE_CLASSES.values()
    # Klines are stamped at their close: a day's klines close in (start, end].
    span = (start_ms * NS_PER_MS + 1, end_ms * NS_PER_MS) if is_bar else (start_ms * NS_PER_MS, end_ms * NS_PER_MS - 1)
    table = rows.table
    ts = rows.ts
    keep = (ts >= span[0]) & (ts <= span[1])
    if not keep.all():
        table = table.filter(pa.array(keep))
    ts = ts[keep]
    written = write_pieces(staged, root, rows.cls.kind(), spec.nautilus_id, table, span, name)
    dataset = next((ds for ds, cls in PRICE_KLINE_CLASSES.items() if cls is rows.cls), None)
    dataset = dataset or ("metrics" if rows.cls.__name__ == "BinanceOiMetrics" else "bookDepth")
    return UnitResult(
        dataset,
        spec.symbol,
        start_ms,
        end_ms,
        rows.rows_in,
        rows.duplicates,
        int(ts[0]) if len(ts) else None,
        int(ts[-1]) if len(ts) else None,
        {dataset: written},
        spec.market,
        interval if is_bar else None,
        rows.stats,
    )
