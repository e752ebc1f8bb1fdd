"""Bar kernels: UTC-aligned aggregation of 1m bars and encoding to NautilusTrader's Arrow layout.

Everything works on exact integer mantissas (prices at the instrument's price precision,
volume at its size precision), so aggregated OHLCV is exact: open = first open, high = max,
low = min, close = last close, volume = sum, bucketed by ``floor(open_time / step)``.

The Arrow encoding reproduces what ``ParquetDataCatalog.write_data`` writes for ``Bar``
(fixed_size_binary[16] little-endian i128 at scale 10**16, uint64 times, bar-type metadata),
without building one Python ``Bar`` per row: that object path is what makes the naive
ingest slow (see benchmarks/ingest.py). ``tests/data/test_bars.py`` checks that both produce
identical tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vibe_quant.data.parse import Klines

FIXED_PRECISION = 16  # nautilus_trader.model.objects.FIXED_PRECISION with high-precision mode

MINUTE_MS = 60_000
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Timeframe:
    """A bar timeframe we store: its label (``5m``) and Nautilus step (``5-MINUTE``)."""

    label: str
    minutes: int

    @property
    def step_ms(self) -> int:
        return self.minutes * MINUTE_MS

    @property
    def nautilus_spec(self) -> str:
        if self.minutes % 1440 == 0:
            return f"{self.minutes // 1440}-DAY"
        if self.minutes % 60 == 0:
            return f"{self.minutes // 60}-HOUR"
        return f"{self.minutes}-MINUTE"

    def bar_type(self, instrument_id: str) -> str:
        return f"{instrument_id}-{self.nautilus_spec}-LAST-EXTERNAL"


TIMEFRAMES = (Timeframe("1m", 1), Timeframe("5m", 5), Timeframe("15m", 15), Timeframe("1h", 60), Timeframe("4h", 240))
BASE_TIMEFRAME = TIMEFRAMES[0]
TIMEFRAME_BY_LABEL = {tf.label: tf for tf in TIMEFRAMES}


def timeframe(label: str) -> Timeframe:
    """Return the timeframe of a Binance interval label (``1m``, ``1h``, ``1d``; see ``files.INTERVAL_MINUTES``)."""
    from vibe_quant.data.files import INTERVAL_MINUTES

    if label in TIMEFRAME_BY_LABEL:
        return TIMEFRAME_BY_LABEL[label]
    if label not in INTERVAL_MINUTES:
        raise ValueError(f"unsupported interval {label!r}; choose from {', '.join(INTERVAL_MINUTES)}")
    return Timeframe(label, INTERVAL_MINUTES[label])


@dataclass(frozen=True)
class BarArrays:
    """OHLCV mantissas of bars that share one timeframe, keyed by bar OPEN time (ms)."""

    open_time_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.open_time_ms)

    @classmethod
    def from_klines(cls, k: Klines) -> BarArrays:
        return cls(k.open_time_ms, k.open, k.high, k.low, k.close, k.volume)

    @classmethod
    def concat(cls, parts: list[BarArrays]) -> BarArrays:
        fields = ("open_time_ms", "open", "high", "low", "close", "volume")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def select(self, mask_or_slice) -> BarArrays:
        return BarArrays(*(a[mask_or_slice] for a in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.open_time_ms, self.open, self.high, self.low, self.close, self.volume)


def aggregate_nb(open_time_ms: np.ndarray, step_ms: int):
    """Return (bucket_starts, first_index, last_index) of consecutive UTC buckets of `step_ms`.

    `open_time_ms` must be sorted ascending (int64, shape (n,)). Only non-empty buckets appear.
    """
    bucket = open_time_ms // step_ms
    first = np.flatnonzero(np.diff(bucket, prepend=bucket[:1] - 1))
    last = np.append(first[1:], len(bucket)) - 1
    return bucket[first] * step_ms, first, last


def aggregate(bars: BarArrays, tf: Timeframe, complete_from_ms: int, complete_until_ms: int) -> BarArrays:
    """Aggregate 1m bars into `tf` bars, keeping only buckets known to be complete.

    A bucket ``[t, t + step)`` is emitted when ``complete_from_ms <= t`` and
    ``t + step <= complete_until_ms``: the caller states which span of 1m data is known to be
    complete (a whole archive month or day, or a REST fetch up to the server clock). Minutes
    missing inside such a span are real exchange gaps; the bucket is built from the minutes
    that exist. A bucket cut by the end of known data is withheld until more data arrives.

    Parameters
    ----------
    bars : BarArrays
        1m bars sorted by open time, no duplicates.
    tf : Timeframe
        Target timeframe (its step must be a multiple of one minute).
    complete_from_ms, complete_until_ms : int
        The complete span ``[from, until)`` in ms.
    """
    if len(bars) == 0:
        return bars
    if tf.minutes == 1:
        starts = bars.open_time_ms
        keep = (starts >= complete_from_ms) & (starts + MINUTE_MS <= complete_until_ms)
        return bars.select(keep)
    starts, first, last = aggregate_nb(bars.open_time_ms, tf.step_ms)
    keep = (starts >= complete_from_ms) & (starts + tf.step_ms <= complete_until_ms)
    starts, first, last = starts[keep], first[keep], last[keep]
    if len(starts) == 0:
        return BarArrays(*(np.empty(0, np.int64) for _ in range(6)))
    # The kept buckets are one contiguous run of rows (the span is an interval), so reduceat
    # over that slice reduces exactly each bucket's rows.
    lo, hi = int(first[0]), int(last[-1]) + 1
    idx = first - lo
    volume = bars.volume[lo:hi]
    if volume.size and int(volume.max()) > np.iinfo(np.int64).max // tf.minutes:
        raise OverflowError(f"volume mantissas too large to sum {tf.minutes} bars exactly in int64")
    return BarArrays(
        open_time_ms=starts,
        open=bars.open[first],
        high=np.maximum.reduceat(bars.high[lo:hi], idx),
        low=np.minimum.reduceat(bars.low[lo:hi], idx),
        close=bars.close[last],
        volume=np.add.reduceat(volume, idx),
    )


def fixed128(mantissas: np.ndarray, precision: int) -> pa.FixedSizeBinaryArray:
    """Encode integer mantissas at `precision` decimals as Nautilus raw i128 values.

    Nautilus stores ``value * 10**16`` as a little-endian i128; ``m * 10**-p`` is therefore the
    integer ``m * 10**(16 - p)``. pyarrow's int64 -> decimal128(38, 16 - p) cast computes exactly
    that integer, and decimal128 shares fixed_size_binary[16]'s memory layout.
    """
    dec = pa.array(mantissas, pa.int64()).cast(pa.decimal128(38, FIXED_PRECISION - precision))
    return dec.view(pa.binary(16))


def bar_schema(bar_type: str, instrument_id: str, price_precision: int, size_precision: int) -> pa.Schema:
    """Return the Arrow schema NautilusTrader 1.221 writes for bars of `bar_type`."""
    fields = [pa.field(name, pa.binary(16), nullable=False) for name in ("open", "high", "low", "close", "volume")]
    fields += [pa.field("ts_event", pa.uint64(), nullable=False), pa.field("ts_init", pa.uint64(), nullable=False)]
    metadata = {
        "bar_type": bar_type,
        "instrument_id": instrument_id,
        "price_precision": str(price_precision),
        "size_precision": str(size_precision),
    }
    return pa.schema(fields, metadata=metadata)


def bar_table(
    bars: BarArrays, tf: Timeframe, instrument_id: str, price_precision: int, size_precision: int
) -> pa.Table:
    """Return `bars` as a catalog-ready Arrow table; ``ts_event = ts_init = open + step`` (close time)."""
    schema = bar_schema(tf.bar_type(instrument_id), instrument_id, price_precision, size_precision)
    ts = pa.array((bars.open_time_ms + tf.step_ms) * NS_PER_MS, pa.int64()).cast(pa.uint64())
    columns = [fixed128(getattr(bars, name), price_precision) for name in ("open", "high", "low", "close")]
    columns += [fixed128(bars.volume, size_precision), ts, ts]
    return pa.Table.from_arrays(columns, schema=schema)
