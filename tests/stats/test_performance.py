"""Performance statistics against slow, obvious references (plain Python loops) and hand cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_quant.stats.performance import (
    NS_PER_DAY,
    annual_volatility,
    cagr,
    calmar_ratio,
    daily_closes,
    drawdown_series,
    longest_run,
    max_drawdown,
    max_drawdown_duration_ns,
    performance,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
    trade_statistics,
)

DAY = NS_PER_DAY
HOUR = DAY // 24
T0 = 1_704_067_200 * 10**9  # 2024-01-01 00:00 UTC


# -- slow references -------------------------------------------------------------------------------


def ref_mean(xs: list[float]) -> float:
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def ref_std(xs: list[float]) -> float:
    m = ref_mean(xs)
    total = 0.0
    for x in xs:
        total += (x - m) ** 2
    return math.sqrt(total / (len(xs) - 1))


def ref_sharpe(xs: list[float], periods: float) -> float:
    return ref_mean(xs) / ref_std(xs) * math.sqrt(periods)


def ref_sortino(xs: list[float], periods: float) -> float:
    total = 0.0
    for x in xs:
        if x < 0:
            total += x * x
    return ref_mean(xs) / math.sqrt(total / len(xs)) * math.sqrt(periods)


def ref_returns(values: list[float]) -> list[float]:
    out = []
    for prev, cur in itertools.pairwise(values):
        out.append(cur / prev - 1.0 if prev > 0 else -1.0)
    return out


def ref_drawdowns(values: list[float]) -> list[float]:
    out, peak = [], 0.0
    for v in values:
        v = max(v, 0.0)
        peak = max(peak, v)
        out.append(0.0 if peak == 0 else 1.0 - v / peak)
    return out


def ref_longest_run(flags: list[bool]) -> int:
    best = 0
    for i in range(len(flags)):
        j = i
        while j < len(flags) and flags[j]:
            j += 1
        best = max(best, j - i)
    return best


# -- returns, Sharpe, Sortino, volatility ----------------------------------------------------------


def test_simple_returns_matches_reference_and_steps_from_zero_give_minus_one() -> None:
    rng = np.random.default_rng(7)
    values = list(rng.uniform(50, 150, size=40))
    assert simple_returns(np.array(values)) == pytest.approx(ref_returns(values), rel=1e-12)
    assert list(simple_returns(np.array([100.0, 0.0, 50.0, 100.0]))) == [-1.0, -1.0, 1.0]
    assert simple_returns(np.array([1.0])).size == 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 10, 250])
@pytest.mark.parametrize("periods", [365, 252, 8760])
def test_sharpe_sortino_volatility_match_references_on_a_grid(seed, n, periods) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.001 * (seed - 2), 0.02, size=n)
    r[0] = -abs(r[0]) - 1e-4  # at least one loss, so the downside deviation is positive
    xs = [float(x) for x in r]
    assert sharpe_ratio(r, periods) == pytest.approx(ref_sharpe(xs, periods), rel=1e-9)
    assert sortino_ratio(r, periods) == pytest.approx(ref_sortino(xs, periods), rel=1e-9)
    assert annual_volatility(r, periods) == pytest.approx(ref_std(xs) * math.sqrt(periods), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-0.9, max_value=2.0), min_size=2, max_size=60).filter(
        lambda xs: any(x < -1e-6 for x in xs) and max(xs) - min(xs) > 1e-6
    )
)
def test_sharpe_and_sortino_match_references_property(xs) -> None:
    r = np.array(xs)
    assert sharpe_ratio(r, 365) == pytest.approx(ref_sharpe(xs, 365), rel=1e-6)
    assert sortino_ratio(r, 365) == pytest.approx(ref_sortino(xs, 365), rel=1e-6)


def test_sharpe_hand_case() -> None:
    # r = [0.01, -0.01, 0.03]: mean 0.01, sample var ((0)^2 + 0.02^2 + 0.02^2) / 2 = 0.0004 -> sd 0.02
    assert sharpe_ratio(np.array([0.01, -0.01, 0.03]), 365) == pytest.approx(0.5 * math.sqrt(365))
    # downside deviation sqrt((0 + 0.0001 + 0) / 3)
    assert sortino_ratio(np.array([0.01, -0.01, 0.03]), 365) == pytest.approx(
        0.01 / math.sqrt(0.0001 / 3) * math.sqrt(365)
    )


@pytest.mark.parametrize("r", [[], [0.05], [-0.05]])
def test_fewer_than_two_returns_give_nan(r) -> None:
    assert math.isnan(sharpe_ratio(np.array(r), 365))
    assert math.isnan(sortino_ratio(np.array(r), 365))
    assert math.isnan(annual_volatility(np.array(r), 365))


@pytest.mark.parametrize("value", [0.0, 0.5, -0.25, 0.125])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_zero_variance_gives_nan_sharpe(value, n) -> None:
    assert math.isnan(sharpe_ratio(np.full(n, value), 365))


@pytest.mark.parametrize(("value", "n"), [(0.1, 3), (0.01, 10)])
def test_constant_returns_with_inexact_mean_give_nan_sharpe(value, n) -> None:
    assert math.isnan(sharpe_ratio(np.full(n, value), 365))


def test_sortino_without_downside_is_nan() -> None:
    assert math.isnan(sortino_ratio(np.array([0.01, 0.02, 0.0]), 365))
    assert not math.isnan(sortino_ratio(np.array([0.01, 0.02, -1e-9]), 365))


# -- drawdowns -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(allow_nan=False, allow_infinity=False)), max_size=60))
def test_drawdown_series_is_always_in_unit_interval(values) -> None:
    dd = drawdown_series(np.array(values, dtype=float))
    assert dd.shape == (len(values),)
    assert np.all((dd >= 0.0) & (dd <= 1.0))
    assert max_drawdown(np.array(values, dtype=float)) == (float(dd.max()) if values else 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-100.0, max_value=1e6), min_size=1, max_size=60))
def test_drawdown_series_matches_reference(values) -> None:
    assert drawdown_series(np.array(values)) == pytest.approx(ref_drawdowns(values), abs=1e-12)


def test_max_drawdown_hand_case() -> None:
    # peaks 100 -> 120 (dd 25% at 90) -> 130 (dd 50% at 65)
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 65.0])) == pytest.approx(0.5)
    assert list(drawdown_series(np.array([100.0, 120.0, 90.0, 130.0, 65.0]))) == pytest.approx(
        [0.0, 0.0, 0.25, 0.0, 0.5]
    )
    assert max_drawdown(np.array([100.0, 110.0, 120.0])) == 0.0
    assert max_drawdown(np.array([100.0, 50.0, -10.0])) == 1.0  # wiped out (floored at 0)
    assert max_drawdown(np.array([])) == 0.0


def test_max_drawdown_duration_runs_to_the_end_when_never_recovered() -> None:
    ts = np.array([T0, T0 + DAY, T0 + 3 * DAY])
    assert max_drawdown_duration_ns(ts, np.array([100.0, 90.0, 80.0])) == 3 * DAY
    # peak on day 1, then below it until the last sample on day 10
    ts = np.array([T0, T0 + DAY, T0 + 2 * DAY, T0 + 10 * DAY])
    assert max_drawdown_duration_ns(ts, np.array([100.0, 105.0, 101.0, 104.9])) == 9 * DAY


def test_max_drawdown_duration_resets_at_recovery() -> None:
    # first drawdown recovers (equal to the peak counts) on day 2; the second, from the day-2 peak,
    # is still open at day 9: 7 days. Without the reset it would be 9 days.
    ts = np.array([T0 + d * DAY for d in (0, 1, 2, 3, 4, 9)])
    equity = np.array([100.0, 90.0, 100.0, 95.0, 96.0, 97.0])
    assert max_drawdown_duration_ns(ts, equity) == 7 * DAY


def test_max_drawdown_duration_without_drawdown_is_zero() -> None:
    ts = np.array([T0, T0 + DAY, T0 + 2 * DAY])
    assert max_drawdown_duration_ns(ts, np.array([1.0, 2.0, 3.0])) == 0
    assert max_drawdown_duration_ns(np.array([], dtype=np.int64), np.array([])) == 0


def test_max_drawdown_duration_counts_until_recovery() -> None:
    ts = np.array([T0 + d * DAY for d in (0, 1, 2, 3, 4)])
    equity = np.array([100.0, 90.0, 95.0, 110.0, 105.0])
    # drawdown 1: day 0 peak -> day 3 recovery = 3 days; drawdown 2: day 3 -> end (day 4) = 1 day
    assert max_drawdown_duration_ns(ts, equity) == 3 * DAY


# -- daily closes ----------------------------------------------------------------------------------


def test_daily_closes_picks_last_value_of_each_utc_day_and_midnight_closes_the_previous_day() -> None:
    ts = np.array([T0 + 6 * HOUR, T0 + 18 * HOUR, T0 + DAY, T0 + DAY + 1, T0 + DAY + 23 * HOUR, T0 + 2 * DAY + HOUR])
    equity = np.array([101.0, 102.0, 103.0, 104.0, 105.0, 106.0])
    #        day 0: 101, 102, 103 (stamped exactly at midnight) -> 103; day 1: 104, 105 -> 105; day 2: 106
    assert list(daily_closes(ts, equity, 100.0, T0)) == [100.0, 103.0, 105.0, 106.0]


def test_daily_closes_matches_reference_on_random_samples() -> None:
    rng = np.random.default_rng(3)
    ts = np.sort(T0 + rng.integers(0, 20 * DAY, size=500))
    ts[::50] = T0 + (ts[::50] // DAY - T0 // DAY) * DAY  # some samples exactly at midnight
    ts = np.sort(ts)
    equity = rng.uniform(90, 110, size=ts.size)
    closes: dict[int, float] = {}
    for t, e in zip(ts, equity, strict=True):
        # the instant of midnight belongs to the day it ends, but nothing before the start day
        day = max((int(t) - 1) // DAY, T0 // DAY)
        closes[day] = float(e)  # later samples overwrite: the last one of the day wins
    expected = [1000.0]
    for d in range(T0 // DAY, max(closes) + 1):  # every calendar day, carried forward when empty
        expected.append(closes.get(d, expected[-1]))
    assert list(daily_closes(ts, equity, 1000.0, T0)) == expected


def test_daily_closes_without_samples_is_the_start_equity() -> None:
    assert list(daily_closes(np.array([], dtype=np.int64), np.array([]), 1000.0, T0)) == [1000.0]


def test_daily_closes_carries_equity_over_a_day_without_samples() -> None:
    ts = np.array([T0 + 12 * HOUR, T0 + 2 * DAY + 12 * HOUR])  # nothing on day 1
    closes = daily_closes(ts, np.array([110.0, 120.0]), 100.0, T0)
    assert list(closes) == [100.0, 110.0, 110.0, 120.0]


# -- CAGR, Calmar, streaks, trade statistics -------------------------------------------------------


def test_cagr_hand_cases() -> None:
    assert cagr(100.0, 200.0, 365) == pytest.approx(1.0)
    assert cagr(100.0, 200.0, 730) == pytest.approx(math.sqrt(2) - 1)
    assert cagr(100.0, 50.0, 365) == pytest.approx(-0.5)
    assert cagr(100.0, 0.0, 10) == -1.0
    assert cagr(100.0, -5.0, 10) == -1.0
    assert math.isnan(cagr(0.0, 100.0, 10))
    assert math.isnan(cagr(100.0, 110.0, 0))


def test_calmar_ratio() -> None:
    assert calmar_ratio(0.3, 0.15) == pytest.approx(2.0)
    assert math.isnan(calmar_ratio(0.3, 0.0))
    assert math.isnan(calmar_ratio(math.nan, 0.2))


@pytest.mark.parametrize("seed", range(10))
def test_longest_run_matches_reference(seed) -> None:
    flags = list(np.random.default_rng(seed).random(int(5 + 10 * seed)) < 0.6)
    assert longest_run(np.array(flags)) == ref_longest_run(flags)
    assert longest_run(np.array([], dtype=bool)) == 0


def test_trade_statistics_hand_list() -> None:
    pnl = np.array([10.0, 20.0, 0.0, 5.0, -4.0, -6.0, -2.0, 0.0, 30.0, -8.0])
    durations = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) * 3_600_000_000_000  # hours
    s = trade_statistics(pnl, durations)
    assert s["total_trades"] == 10
    assert (s["winning_trades"], s["losing_trades"]) == (4, 4)  # zeros are neither
    assert s["win_rate"] == pytest.approx(0.4)
    assert s["profit_factor"] == pytest.approx(65.0 / 20.0)
    assert s["avg_win"] == pytest.approx(65.0 / 4)
    assert s["avg_loss"] == pytest.approx(-5.0)
    assert s["largest_win"] == 30.0
    assert s["largest_loss"] == -8.0
    assert s["avg_trade_duration_hours"] == pytest.approx(5.5)
    assert s["max_consecutive_wins"] == 2  # 10, 20 (the zero breaks the streak before 5)
    assert s["max_consecutive_losses"] == 3  # -4, -6, -2


def test_trade_statistics_without_losses_or_trades() -> None:
    s = trade_statistics(np.array([1.0, 0.0, 2.0]), np.array([0, 0, 0]))
    assert s["profit_factor"] == math.inf
    assert math.isnan(s["avg_loss"])
    assert math.isnan(s["largest_loss"])
    assert s["max_consecutive_losses"] == 0
    flat = trade_statistics(np.array([0.0, 0.0]), np.array([1, 1]))
    assert math.isnan(flat["profit_factor"])
    assert flat["win_rate"] == 0.0
    none = trade_statistics(np.array([]), np.array([]))
    assert none["total_trades"] == 0
    for key in ("win_rate", "profit_factor", "avg_win", "avg_loss", "avg_trade_duration_hours"):
        assert math.isnan(none[key]), key
    all_losses = trade_statistics(np.array([-1.0, -3.0]), np.array([1, 1]))
    assert all_losses["profit_factor"] == 0.0


# -- performance() on a hand-built curve -----------------------------------------------------------


def test_performance_on_a_hand_built_three_day_curve() -> None:
    # start 1,000 at day 0 00:00; samples: d0 12:00 1,100; d1 00:00 1,050 (closes day 0);
    # d1 12:00 990 (closes day 1); d3 00:00 1,045 (closes day 2); end d3 00:00.
    ts = np.array([T0 + 12 * HOUR, T0 + DAY, T0 + DAY + 12 * HOUR, T0 + 3 * DAY])
    equity = np.array([1100.0, 1050.0, 990.0, 1045.0])
    m = performance(ts, equity, 1000.0, T0, T0 + 3 * DAY)
    # daily closes 1000, 1050, 990, 1045 -> returns 1/20, -2/35, 1/18
    r = [1 / 20, -2 / 35, 1 / 18]
    mean = (1 / 20 - 2 / 35 + 1 / 18) / 3
    sd = math.sqrt(((1 / 20 - mean) ** 2 + (-2 / 35 - mean) ** 2 + (1 / 18 - mean) ** 2) / 2)
    downside = math.sqrt((2 / 35) ** 2 / 3)
    growth = 1.045 ** (365 / 3) - 1
    assert m["total_return"] == pytest.approx(0.045)
    assert m["cagr"] == pytest.approx(growth, rel=1e-9)
    assert m["sharpe_ratio"] == pytest.approx(mean / sd * math.sqrt(365), rel=1e-9)
    assert m["sortino_ratio"] == pytest.approx(mean / downside * math.sqrt(365), rel=1e-9)
    assert m["volatility_annual"] == pytest.approx(sd * math.sqrt(365), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(0.1)  # 1,100 -> 990
    assert m["calmar_ratio"] == pytest.approx(growth / 0.1, rel=1e-9)
    assert m["max_drawdown_duration_days"] == pytest.approx(2.5)  # d0 12:00 peak, never recovered by d3
    assert mean == pytest.approx(sum(r) / 3)


def test_performance_drawdown_includes_the_starting_balance() -> None:
    # the curve never exceeds the start: the drawdown is measured from the starting 1,000
    ts = np.array([T0 + HOUR, T0 + 2 * HOUR])
    m = performance(ts, np.array([800.0, 900.0]), 1000.0, T0, T0 + DAY)
    assert m["max_drawdown"] == pytest.approx(0.2)
    assert m["total_return"] == pytest.approx(-0.1)
    assert math.isnan(m["sharpe_ratio"])  # a single daily return
