"""Bar kernels against slow, obvious references, and against NautilusTrader's own encoder."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer

from tests.conftest import kline_zip
from vibe_quant.data.bars import TIMEFRAMES, BarArrays, Timeframe, aggregate, bar_table, fixed128
from vibe_quant.data.parse import parse_klines_csv, read_member

MINUTE = 60_000


def reference_aggregate(bars: BarArrays, minutes: int, lo: int, hi: int) -> list[tuple]:
    """One bucket at a time, in plain Python."""
    step = minutes * MINUTE
    buckets: dict[int, list[int]] = {}
    for i, t in enumerate(bars.open_time_ms.tolist()):
        buckets.setdefault(t // step * step, []).append(i)
    out = []
    for start in sorted(buckets):
        if start < lo or start + step > hi:
            continue
        idx = buckets[start]
        out.append(
            (
                start,
                int(bars.open[idx[0]]),
                max(int(bars.high[i]) for i in idx),
                min(int(bars.low[i]) for i in idx),
                int(bars.close[idx[-1]]),
                sum(int(bars.volume[i]) for i in idx),
            )
        )
    return out


def random_minutes(rng: np.random.Generator, n: int, gap_prob: float) -> BarArrays:
    start = 1_690_848_000_000 + int(rng.integers(0, 500)) * MINUTE  # not bucket-aligned
    keep = rng.random(n) >= gap_prob
    times = start + np.flatnonzero(keep).astype(np.int64) * MINUTE
    m = len(times)
    o = rng.integers(1_000, 2_000, m)
    c = rng.integers(1_000, 2_000, m)
    h = np.maximum(o, c) + rng.integers(0, 50, m)
    lo = np.minimum(o, c) - rng.integers(0, 50, m)
    v = rng.integers(0, 10**9, m)
    return BarArrays(times, o, h, lo, c, v)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tf", TIMEFRAMES[1:], ids=lambda tf: tf.label)
def test_aggregate_matches_reference_with_gaps_and_partial_edges(seed: int, tf: Timeframe) -> None:
    rng = np.random.default_rng(seed)
    bars = random_minutes(rng, 3_000, gap_prob=[0.0, 0.02, 0.3][seed % 3])
    lo = int(bars.open_time_ms[0]) + int(rng.integers(0, 300)) * MINUTE
    hi = int(bars.open_time_ms[-1]) - int(rng.integers(0, 300)) * MINUTE
    got = aggregate(bars, tf, lo, hi)
    expected = reference_aggregate(bars, tf.minutes, lo, hi)
    assert list(zip(*(a.tolist() for a in got._arrays()), strict=True)) == expected
    assert len(expected) > 0


def test_aggregate_withholds_incomplete_buckets() -> None:
    # 07 minutes of data starting 00:00: the 5m bucket [00:05, 00:10) is not complete yet.
    t0 = 1_690_848_000_000
    bars = BarArrays(t0 + np.arange(7) * MINUTE, *(np.full(7, 5) for _ in range(4)), np.ones(7, np.int64))
    five = Timeframe("5m", 5)
    assert aggregate(bars, five, t0, t0 + 7 * MINUTE).open_time_ms.tolist() == [t0]
    assert aggregate(bars, five, t0, t0 + 10 * MINUTE).open_time_ms.tolist() == [t0, t0 + 5 * MINUTE]
    assert len(aggregate(bars, five, t0 + MINUTE, t0 + 7 * MINUTE)) == 0


@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=50), st.integers(0, 16))
@settings(max_examples=200, deadline=None)
def test_fixed128_equals_python_integer_encoding(values: list[int], precision: int) -> None:
    encoded = fixed128(np.array(values, dtype=np.int64), precision)
    for value, raw in zip(values, encoded.to_pylist(), strict=True):
        assert int.from_bytes(raw, "little", signed=True) == value * 10 ** (16 - precision)


@pytest.mark.parametrize("tf", TIMEFRAMES, ids=lambda tf: tf.label)
def test_bar_table_is_identical_to_nautilus_serializer_on_a_real_month(tf: Timeframe) -> None:
    path = kline_zip("FILUSDT", "2023-08")
    k = parse_klines_csv(read_member(path.read_bytes(), path.name), path.name, 3, 1)
    bars = aggregate(BarArrays.from_klines(k), tf, int(k.open_time_ms[0]), int(k.open_time_ms[-1]) + MINUTE)
    iid = "FILUSDT-PERP.BINANCE"
    ours = bar_table(bars, tf, iid, 3, 1)

    bar_type = BarType.from_str(tf.bar_type(iid))

    def price(m: int) -> Price:
        return Price(Decimal(m).scaleb(-3), 3)

    objects = [
        Bar(bar_type, price(int(bars.open[i])), price(int(bars.high[i])), price(int(bars.low[i])),
            price(int(bars.close[i])), Quantity(Decimal(int(bars.volume[i])).scaleb(-1), 1),
            (int(bars.open_time_ms[i]) + tf.step_ms) * 1_000_000, (int(bars.open_time_ms[i]) + tf.step_ms) * 1_000_000)
        for i in range(len(bars))
    ]  # fmt: skip
    reference = ArrowSerializer.serialize_batch(objects, Bar)
    if isinstance(reference, pa.RecordBatch):
        reference = pa.Table.from_batches([reference])
    assert ours.schema.equals(reference.schema, check_metadata=True)
    assert ours.equals(reference)
    assert len(bars) == {"1m": 44_640, "5m": 8_928, "15m": 2_976, "1h": 744, "4h": 186}[tf.label]
