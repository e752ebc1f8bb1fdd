"""Pure parsers for Binance kline and funding-rate files (CSV, or REST JSON for klines).

No I/O here: callers pass bytes and a display name (used in error messages). Numbers are
parsed from their decimal strings straight into exact integers at the instrument's precision
(pyarrow's decimal parser; never through float), so ``4.255`` at price precision 3 becomes
the integer 4255. A value with more decimals than the precision allows is an error naming
the file, line and column: vibe-quant never rounds market data.

Timestamps may be milliseconds (USD-M files) or microseconds (spot files since 2025); each
file must use one unit throughout. Output times are integer milliseconds.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from vibe_quant.errors import DataFileError

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
PRICE_COLUMNS = ("open", "high", "low", "close")

# Below 1e14 a Binance timestamp is in milliseconds (until year 5138); from 1e14 to 1e17 it is in
# microseconds. Anything else is not a plausible timestamp.
_US_THRESHOLD = 100_000_000_000_000
_MAX_US = 100_000_000_000_000_000
_MIN_MS = 1_230_768_000_000  # 2009-01-01: nothing Binance serves is older


@dataclass(frozen=True)
class Klines:
    """Parsed 1m klines of one source, sorted by open time and deduplicated.

    Prices are integer mantissas at ``price_precision`` decimals, volume at ``size_precision``.
    ``lines`` maps each kept row back to its line in the source (for later error messages).
    """

    open_time_ms: np.ndarray  # int64, shape (n,)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    lines: np.ndarray
    rows_in: int
    duplicates: int
    time_unit: str  # "ms" or "us"

    def __len__(self) -> int:
        return len(self.open_time_ms)

    def slice_time(self, start_ms: int, end_ms: int) -> Klines:
        """Return the rows with ``start_ms <= open_time < end_ms``."""
        lo, hi = np.searchsorted(self.open_time_ms, [start_ms, end_ms])
        sl = slice(int(lo), int(hi))
        return Klines(
            self.open_time_ms[sl],
            self.open[sl],
            self.high[sl],
            self.low[sl],
            self.close[sl],
            self.volume[sl],
            self.lines[sl],
            int(hi - lo),
            0,
            self.time_unit,
        )


@dataclass(frozen=True)
class FundingRates:
    """Parsed funding settlements of one file, sorted by ``calc_time``.

    ``rates`` keep the file's decimal strings exactly (as ``Decimal``).
    """

    calc_time_ms: np.ndarray  # int64
    interval_hours: np.ndarray  # int64
    rates: tuple[Decimal, ...]
    rows_in: int
    duplicates: int

    def __len__(self) -> int:
        return len(self.calc_time_ms)

    def slice_time(self, start_ms: int, end_ms: int) -> FundingRates:
        lo, hi = (int(x) for x in np.searchsorted(self.calc_time_ms, [start_ms, end_ms]))
        return FundingRates(self.calc_time_ms[lo:hi], self.interval_hours[lo:hi], self.rates[lo:hi], hi - lo, 0)


def read_member(data: bytes, name: str) -> bytes:
    """Return the CSV bytes of `data`: the single member of a zip, or `data` itself for a CSV.

    Raises
    ------
    DataFileError
        If a ``.zip`` is truncated/corrupt or does not hold exactly one CSV member.
    """
    if not name.lower().endswith(".zip"):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise DataFileError(name, f"zip holds {len(members)} files {members[:3]}, expected one CSV")
            return zf.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise DataFileError(
            name,
            f"not a readable zip ({exc}); the file is truncated or corrupt",
            fix="delete it and download it again",
        ) from exc


def _has_header(text_head: bytes) -> bool:
    first = text_head.split(b"\n", 1)[0].split(b",", 1)[0].strip().lstrip(b"\xef\xbb\xbf")
    return not first.lstrip(b"-").isdigit()


def parse_klines_csv(
    data: bytes, name: str, price_precision: int, size_precision: int, interval_ms: int = 60_000
) -> Klines:
    """Parse a Binance kline CSV (header or headerless, ms or µs timestamps).

    Two real raw lines (USD-M ``FILUSDT-1m-2023-08.csv``, with header)::

        open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore
        1690848000000,4.255,4.256,4.252,4.252,25259.1,1690848059999,107451.0165,208,5452.3,23199.1103,0

    Parameters
    ----------
    data : bytes
        The CSV bytes (use :func:`read_member` for zips).
    name : str
        Shown in error messages (file name or path).
    price_precision, size_precision : int
        Decimals allowed for prices and volume (from the instrument spec).
    interval_ms : int, default 60000
        The kline interval; ``close_time - open_time`` must be one interval minus one tick.

    Returns
    -------
    Klines
        Sorted by open time, exact duplicates removed (counted in ``duplicates``).

    Raises
    ------
    DataFileError
        On a wrong column count, a non-numeric field, too many decimals, mixed or implausible
        timestamp units, a wrong interval, inconsistent OHLC, or two different rows for one
        open time. The message names the file, the line and the fix.
    """
    header = _has_header(data[:512])
    types = {c: pa.decimal128(38, price_precision) for c in PRICE_COLUMNS}
    types.update(open_time=pa.int64(), close_time=pa.int64(), volume=pa.decimal128(38, size_precision))
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_COLUMNS), skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=["open_time", *PRICE_COLUMNS, "volume", "close_time"],
                null_values=[""],  # 'NaN'/'NA' must fail as values, not pass as missing
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _locate_csv_problem(data, name, header, KLINE_COLUMNS, _kline_field_checks(price_precision, size_precision))
        raise DataFileError(name, f"unreadable CSV: {exc}") from exc
    return _klines_from_table(table, name, header, price_precision, size_precision, interval_ms)


def parse_klines_json(
    data: bytes, name: str, price_precision: int, size_precision: int, interval_ms: int = 60_000
) -> Klines:
    """Parse a ``GET /fapi/v1/klines`` response body (a JSON array of arrays).

    A real element::

        [1690848000000,"4.255","4.256","4.252","4.252","25259.1",1690848059999,"107451.0165",208,"5452.3","23199.1103","0"]

    Numbers arrive as strings and are parsed exactly, like the CSV. "Line" in errors is the
    1-based element index in the array. Raises ``DataFileError`` like :func:`parse_klines_csv`.
    """
    try:
        rows = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise DataFileError(name, f"not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise DataFileError(name, f"expected a JSON array of klines, got {type(rows).__name__}: {str(rows)[:200]}")
    columns: dict[str, list] = {c: [] for c in ("open_time", *PRICE_COLUMNS, "volume", "close_time")}
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(KLINE_COLUMNS):
            raise DataFileError(name, f"kline {row!r:.120} has the wrong shape (need 12 fields)", line=i)
        for key, idx in (("open_time", 0), ("close_time", 6)):
            if not isinstance(row[idx], int) or isinstance(row[idx], bool) or not 0 <= row[idx] < 2**63:
                raise DataFileError(name, f"{key} {row[idx]!r} is not an integer timestamp", line=i)
            columns[key].append(row[idx])
        for key, idx in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5)):
            columns[key].append(str(row[idx]).strip())
    checks = _kline_field_checks(price_precision, size_precision)
    arrays = {}
    for key, values in columns.items():
        if key in ("open_time", "close_time"):
            arrays[key] = pa.array(values, pa.int64())
            continue
        scale = size_precision if key == "volume" else price_precision
        try:
            arrays[key] = pa.array(values, pa.string()).cast(pa.decimal128(38, scale))
        except pa.ArrowInvalid:
            idx = KLINE_COLUMNS.index(key)
            for i, value in enumerate(values, start=1):
                problem = checks[idx](value)
                if problem:
                    raise DataFileError(name, f"column {key!r}: {problem}", line=i) from None
            raise DataFileError(name, f"column {key!r}: unreadable values") from None
    return _klines_from_table(pa.table(arrays), name, False, price_precision, size_precision, interval_ms)


def combine_klines(parts: list[Klines]) -> Klines:
    """Merge parsed pages into one sorted set; identical repeats are dropped and counted.

    Raises
    ------
    DataFileError
        If two pages disagree about one open time.
    """
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Klines(*(np.empty(0, np.int64) for _ in range(7)), 0, 0, "ms")  # type: ignore[arg-type]
    fields = ("open_time_ms", "open", "high", "low", "close", "volume", "lines")
    cat = {f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}
    order = np.argsort(cat["open_time_ms"], kind="stable")
    cat = {f: a[order] for f, a in cat.items()}
    t = cat["open_time_ms"]
    dup = np.flatnonzero(t[1:] == t[:-1]) + 1
    for f in ("open", "high", "low", "close", "volume"):
        if (cat[f][dup] != cat[f][dup - 1]).any():
            k = int(dup[np.flatnonzero(cat[f][dup] != cat[f][dup - 1])[0]])
            raise DataFileError("REST pages", f"two different klines for open_time {t[k]}")
    keep = np.ones(len(t), dtype=bool)
    keep[dup] = False
    rows_in = sum(p.rows_in for p in parts)
    return Klines(
        *(cat[f][keep] for f in fields),
        rows_in,
        sum(p.duplicates for p in parts) + len(dup),
        parts[0].time_unit if parts else "ms",
    )


def kline_open_ms(table: pa.Table, name: str, line0: int, interval_ms: int) -> tuple[np.ndarray, str]:
    """Return the open times (ms) and source unit of a kline table's ``open_time``/``close_time``
    columns, after checking each row is one aligned kline of `interval_ms`."""
    open_raw = table.column("open_time").to_numpy()
    close_raw = table.column("close_time").to_numpy()
    open_ms, unit = _to_ms(open_raw, name, line0, "open_time")
    _to_ms(close_raw, name, line0, "close_time", expect_unit=unit)
    tick = 1000 if unit == "us" else 1
    bad = np.flatnonzero(close_raw - open_raw != interval_ms * tick - 1)
    if len(bad):
        i = int(bad[0])
        raise DataFileError(
            name,
            f"close_time {close_raw[i]} - open_time {open_raw[i]} is not one {interval_ms // 1000}s interval",
            line=line0 + i,
            fix="ingest files of the interval they are named for",
        )
    bad = np.flatnonzero(open_ms % interval_ms)
    if len(bad):
        i = int(bad[0])
        raise DataFileError(name, f"open_time {open_raw[i]} is not aligned to the interval", line=line0 + i)
    return open_ms, unit


def _klines_from_table(
    table: pa.Table, name: str, header: bool, price_precision: int, size_precision: int, interval_ms: int
) -> Klines:
    n = table.num_rows
    line0 = 1 + int(header)  # line of row 0
    if n == 0:
        return Klines(*(np.empty(0, np.int64) for _ in range(7)), 0, 0, "ms")  # type: ignore[arg-type]
    _reject_nulls(table, name, line0)
    open_ms, unit = kline_open_ms(table, name, line0, interval_ms)
    open_raw = table.column("open_time").to_numpy()  # as written, for messages

    cols = {}
    for key in (*PRICE_COLUMNS, "volume"):
        cols[key] = _mantissas(table.column(key), name, key, line0)
    o, h, lo, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))
    checks = (
        (lo <= 0, "low price is not positive"),
        (v < 0, "volume is negative"),
        (h < np.maximum(o, c), "high is below open or close"),
        (lo > np.minimum(o, c), "low is above open or close"),
    )
    for mask, problem in checks:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            values = ", ".join(
                f"{k}={_fmt(cols[k][i], size_precision if k == 'volume' else price_precision)}" for k in cols
            )
            raise DataFileError(
                name,
                f"{problem} ({values}); OHLC must satisfy low <= open,close <= high",
                line=line0 + i,
                fix="the file is corrupt: download it again",
            )

    lines = np.arange(line0, line0 + n, dtype=np.int64)
    order = np.argsort(open_ms, kind="stable")
    if not np.array_equal(order, np.arange(n)):
        open_ms, o, h, lo, c, v, lines = (a[order] for a in (open_ms, o, h, lo, c, v, lines))
    dup = np.flatnonzero(open_ms[1:] == open_ms[:-1]) + 1
    duplicates = len(dup)
    if duplicates:
        same = (o[dup] == o[dup - 1]) & (h[dup] == h[dup - 1]) & (lo[dup] == lo[dup - 1])
        same &= (c[dup] == c[dup - 1]) & (v[dup] == v[dup - 1])
        if not same.all():
            k = int(dup[np.flatnonzero(~same)[0]])
            raise DataFileError(
                name,
                f"two different rows for open_time {open_raw[order[k]]} (lines {lines[k - 1]} and {lines[k]})",
                line=int(lines[k]),
                fix="the source is inconsistent; remove the wrong row or re-download",
            )
        keep = np.ones(n, dtype=bool)
        keep[dup] = False
        open_ms, o, h, lo, c, v, lines = (a[keep] for a in (open_ms, o, h, lo, c, v, lines))
    return Klines(open_ms, o, h, lo, c, v, lines, n, duplicates, unit)


def _reject_nulls(table: pa.Table, name: str, line0: int) -> None:
    """Empty fields (pyarrow reads an empty line as a row of them) are errors with their line."""
    masks = {c: table.column(c).is_null().to_numpy(zero_copy_only=False) for c in table.column_names}
    if not any(m.any() for m in masks.values()):
        return
    first = min(int(np.flatnonzero(m)[0]) for m in masks.values() if m.any())
    empty = [c for c, m in masks.items() if m[first]]
    problem = "empty line" if len(empty) == len(masks) else f"empty {', '.join(repr(c) for c in empty)} field"
    raise DataFileError(name, problem, line=line0 + first)


def time_unit(raw: np.ndarray, name: str, line0: int, column: str, expect_unit: str | None = None) -> str:
    """Return the unit of Binance timestamps `raw`: ``ms`` or ``us`` (one unit per file; the first
    row decides unless `expect_unit` is given). Rejects implausible values and mixed units."""
    bad = np.flatnonzero(raw >= _MAX_US)
    if len(bad):
        i = int(bad[0])
        raise DataFileError(name, f"{column} {raw[i]} is too large for a ms or µs timestamp", line=line0 + i)
    is_us = raw >= _US_THRESHOLD
    unit = expect_unit or ("us" if is_us[0] else "ms")
    wrong = np.flatnonzero(is_us != (unit == "us"))
    if len(wrong):
        i = int(wrong[0])
        found = "microseconds" if is_us[i] else "milliseconds"
        raise DataFileError(
            name,
            f"{column} {raw[i]} is in {found} but the file's first timestamp is in "
            f"{'microseconds' if unit == 'us' else 'milliseconds'}; one file must use one unit",
            line=line0 + i,
            fix="the file mixes sources: re-download it",
        )
    ms = raw // 1000 if unit == "us" else raw
    bad = np.flatnonzero(ms < _MIN_MS)
    if len(bad):
        i = int(bad[0])
        raise DataFileError(name, f"{column} {raw[i]} is before 2009: not a Binance timestamp", line=line0 + i)
    return unit


def _to_ms(
    raw: np.ndarray, name: str, line0: int, column: str, expect_unit: str | None = None
) -> tuple[np.ndarray, str]:
    """Return Binance timestamps `raw` (ms or µs, one unit per file) in milliseconds (floored)."""
    unit = time_unit(raw, name, line0, column, expect_unit)
    ms = raw // 1000 if unit == "us" else raw
    if unit == "us" and column != "close_time" and (raw % 1000).any():  # close times end in 999
        i = int(np.flatnonzero(raw % 1000)[0])
        raise DataFileError(name, f"{column} {raw[i]} is not a whole-millisecond timestamp", line=line0 + i)
    return ms.astype(np.int64, copy=False), unit


def _mantissas(column: pa.ChunkedArray | pa.Array, name: str, key: str, line0: int) -> np.ndarray:
    """Return the unscaled integers of a decimal128 column as int64 (zero-copy view)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        i = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFileError(name, f"empty {key!r} field", line=line0 + i)
    words = np.frombuffer(arr.buffers()[1], dtype="<i8")[2 * arr.offset : 2 * (arr.offset + len(arr))]
    low, high = words[0::2], words[1::2]
    if not np.array_equal(high, low >> 63):  # the value does not fit in 64 bits
        i = int(np.flatnonzero(high != (low >> 63))[0])
        raise DataFileError(name, f"{key!r} value {arr[i]} is too large", line=line0 + i)
    return low.copy()


def _fmt(mantissa: int, precision: int) -> str:
    return str(Decimal(int(mantissa)).scaleb(-precision))


_WIDE = Context(prec=200)  # exact quantize of any value we can meet (the default is 28 digits)


def _decimal_check(precision: int, label: str, max_abs: Decimal | None = None):
    def check(value: str) -> str | None:
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return f"{value!r} is not a number"
        if not d.is_finite():
            return f"{value!r} is not a finite number"
        if d and d.adjusted() + 1 + precision > 38:  # decimal128 holds 38 digits
            return f"{value!r} is too large"
        if max_abs is not None and abs(d) > max_abs:
            return f"{value!r} is outside [-{max_abs}, {max_abs}]"
        if d != d.quantize(Decimal(1).scaleb(-precision), rounding="ROUND_DOWN", context=_WIDE):
            return (
                f"{value!r} has more decimals than the {label} precision {precision} allows "
                "(vibe-quant never rounds); fix the instrument's tick/step in instrument_specs.yaml "
                "if the exchange really trades at that resolution"
            )
        return None

    return check


def _int_check(value: str) -> str | None:
    v = value.strip()
    return None if v.lstrip("-").isdigit() else f"{value!r} is not an integer"


def _kline_field_checks(price_precision: int, size_precision: int) -> dict:
    price, size = _decimal_check(price_precision, "price"), _decimal_check(size_precision, "size")
    return {0: _int_check, 1: price, 2: price, 3: price, 4: price, 5: size, 6: _int_check}


def _locate_csv_problem(data: bytes, name: str, header: bool, columns: tuple[str, ...], checks: dict) -> None:
    """Re-read a CSV slowly to find the first bad line; raise a precise ``DataFileError``."""
    text = data.decode("utf-8", errors="replace")
    for lineno, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if header and lineno == 1:
            continue
        if len(row) != len(columns):
            shown = ",".join(row)[:120]
            raise DataFileError(
                name,
                f"{len(row)} columns where {len(columns)} are expected ({shown!r})" if row else "empty line",
                line=lineno,
                fix="the file is truncated or not a Binance file of this dataset",
            )
        for idx, check in checks.items():
            problem = check(row[idx])
            if problem:
                raise DataFileError(name, f"column {columns[idx]!r}: {problem}", line=lineno)


def parse_funding_csv(data: bytes, name: str) -> FundingRates:
    """Parse a Binance ``fundingRate`` CSV.

    Two real raw lines (``BTCUSDT-fundingRate-2026-04.csv``)::

        calc_time,funding_interval_hours,last_funding_rate
        1775001600000,8,-0.00003449

    ``calc_time`` is kept exactly (Binance stamps some settlements a few ms late,
    e.g. ``1775088000003``); rates stay exact decimals.

    Raises
    ------
    DataFileError
        Wrong column count, non-numeric value, bad timestamp, a non-positive interval, or two
        different rates for one ``calc_time``.
    """
    header = _has_header(data[:512])
    # A funding rate of 100% per interval is impossible; beyond it a column is shifted.
    checks = {0: _int_check, 1: _int_check, 2: _decimal_check(18, "funding rate", max_abs=Decimal(1))}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(FUNDING_COLUMNS), skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "calc_time": pa.int64(),
                    "funding_interval_hours": pa.int64(),
                    "last_funding_rate": pa.string(),
                },
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _locate_csv_problem(data, name, header, FUNDING_COLUMNS, checks)
        raise DataFileError(name, f"unreadable CSV: {exc}") from exc
    line0 = 1 + int(header)
    n = table.num_rows
    if n == 0:
        return FundingRates(np.empty(0, np.int64), np.empty(0, np.int64), (), 0, 0)
    _reject_nulls(table, name, line0)
    calc_ms, _ = _to_ms(table.column("calc_time").to_numpy(), name, line0, "calc_time")
    hours = table.column("funding_interval_hours").to_numpy()
    if (hours <= 0).any() or (hours > 24).any():
        i = int(np.flatnonzero((hours <= 0) | (hours > 24))[0])
        raise DataFileError(name, f"funding_interval_hours {hours[i]} is not in 1..24", line=line0 + i)
    texts = table.column("last_funding_rate").to_pylist()
    rates = []
    for i, text in enumerate(texts):
        problem = checks[2](text or "")
        if problem:
            raise DataFileError(name, f"column 'last_funding_rate': {problem}", line=line0 + i)
        rates.append(Decimal(text.strip()))
    order = np.argsort(calc_ms, kind="stable")
    calc_ms, hours = calc_ms[order], hours[order]
    rates = [rates[i] for i in order]
    keep = [0]
    for k in range(1, n):
        if calc_ms[k] != calc_ms[k - 1]:
            keep.append(k)
        elif rates[k] != rates[k - 1] or hours[k] != hours[k - 1]:
            raise DataFileError(
                name,
                f"two different funding rows for calc_time {calc_ms[k]}",
                line=line0 + int(order[k]),
                fix="remove the wrong row or re-download",
            )
    idx = np.asarray(keep)
    return FundingRates(calc_ms[idx], hours[idx].astype(np.int64), tuple(rates[i] for i in keep), n, n - len(keep))
