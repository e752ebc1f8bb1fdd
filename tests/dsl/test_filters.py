"""The vectorised time filters (what the signal table and the perp kernel ask) equal the scalar ones
(what a streaming strategy asks bar by bar), on random bar closes over two years: sessions in UTC and
in a timezone with daylight saving, sessions wrapping midnight, blocked days, minutes around funding
with known settlement times and with the 00/08/16 UTC fallback."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from vibe_quant.dsl.filters import NS_PER_MIN, EntryFilters

T0 = 1_672_531_200_000_000_000  # 2023-01-01 UTC
HOUR = 60 * NS_PER_MIN


def analysis(sessions=(), blocked=(), funding: tuple[int, int] | None = None):
    avoid = SimpleNamespace(enabled=funding is not None, minutes_before=(funding or (0, 0))[0],
                            minutes_after=(funding or (0, 0))[1])  # fmt: skip
    doc = SimpleNamespace(time_filters=SimpleNamespace(avoid_around_funding=avoid))
    return SimpleNamespace(sessions=list(sessions), blocked_days=frozenset(blocked), doc=doc)


CASES = {
    "utc session": analysis(sessions=[(8 * 60, 16 * 60 + 30, "UTC")]),
    "wrapping sessions": analysis(sessions=[(22 * 60, 2 * 60, "UTC"), (13 * 60, 14 * 60, "UTC")]),
    "new york session (DST)": analysis(sessions=[(9 * 60 + 30, 16 * 60, "America/New_York")]),
    "blocked weekend": analysis(blocked={5, 6}),
    "around funding": analysis(funding=(15, 5)),
    "everything": analysis(sessions=[(1 * 60, 23 * 60, "Asia/Tokyo")], blocked={0}, funding=(30, 0)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("with_times", [True, False], ids=["funding times", "fallback schedule"])
def test_vectorised_filters_equal_the_scalar_ones(name: str, with_times: bool) -> None:
    rng = random.Random(3)
    ts = np.array(sorted(T0 + rng.randrange(2 * 365 * 1440) * NS_PER_MIN for _ in range(6000)), dtype=np.int64)
    ts[:50] = T0 + np.arange(50) * 8 * HOUR  # exactly on settlements too
    times = [T0 + k * 8 * HOUR + 3_000_000_000 for k in range(2 * 365 * 3)] if with_times else []
    warned: list[str] = []
    scalar = EntryFilters(CASES[name], lambda: times, warned.append)
    vector = EntryFilters(CASES[name], lambda: times, warned.append)
    want = np.array([scalar.allowed(int(t), "FILUSDT") for t in ts])
    got = vector.allowed_at(ts, "FILUSDT")
    assert got.tolist() == want.tolist()
    assert 0 < want.sum() < want.size or name == "around funding"  # the filter blocks some bars, not all
    fallback = CASES[name].doc.time_filters.avoid_around_funding.enabled and not with_times
    assert len(warned) == 2 * fallback  # once per filter object, only when falling back
