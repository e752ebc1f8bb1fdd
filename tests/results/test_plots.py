"""Figures as pure functions of stored numbers: decimation keeps every extreme, monthly returns,
the cost waterfall, grouping by exit reason/side, the Pareto highlight and the coverage marks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_quant.plots.coverage import coverage_figure
from vibe_quant.plots.decimate import minmax_decimate
from vibe_quant.plots.run import cost_steps, cost_waterfall_figure, monthly_returns, pnl_by
from vibe_quant.plots.sweep import PARETO_NAME, pareto_figure

DAY_NS = 86_400 * 10**9


def test_decimation_of_a_million_bars_keeps_every_bucket_extreme_and_the_ends():
    rng = np.random.default_rng(7)
    n = 1_000_000
    y = 100_000 + np.cumsum(rng.normal(0, 50, n))
    y[654_321] -= 40_000  # a one-bar crash: striding would almost surely miss it
    x = np.arange(n, dtype=np.int64) * 60 * 10**9
    dx, dy = minmax_decimate(x, y, 4000)
    assert dx.size <= 4000
    assert np.all(np.diff(dx) > 0)
    assert dy.min() == y.min()
    assert dy.max() == y.max()
    assert (dx[0], dy[0], dx[-1], dy[-1]) == (x[0], y[0], x[-1], y[-1])
    assert 654_321 * 60 * 10**9 in set(dx.tolist())
    edges = np.linspace(0, n, 1001).astype(int)  # the same 1,000 buckets: each one's min and max are kept
    kept = set(dx.tolist())
    for a, b in itertools.pairwise(edges):
        assert x[a + int(np.argmin(y[a:b]))] in kept
        assert x[a + int(np.argmax(y[a:b]))] in kept


def test_short_curves_are_unchanged_and_lengths_must_match():
    x, y = np.arange(10), np.linspace(0, 1, 10)
    _dx, dy = minmax_decimate(x, y, 4000)
    np.testing.assert_array_equal(dy, y)
    with pytest.raises(ValueError, match="differ in length"):
        minmax_decimate(x, y[:5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400), st.integers(4, 40))
def test_decimation_is_a_subset_with_the_global_extremes(values, target):
    y = np.array(values)
    x = np.arange(y.size)
    dx, dy = minmax_decimate(x, y, target)
    np.testing.assert_array_equal(dy, y[dx])
    assert dy.min() == y.min()
    assert dy.max() == y.max()
    assert dx[-1] == x[-1]


def _ts(day: str, hour: int = 0) -> int:
    return int(pd.Timestamp(day, tz="UTC").value) + hour * 3_600 * 10**9


def test_monthly_returns_chain_month_ends_and_a_midnight_close_belongs_to_the_month_it_opened_in():
    ts = np.array([_ts("2023-01-15"), _ts("2023-02-01"), _ts("2023-02-10"), _ts("2023-03-01"), _ts("2023-03-05")])
    equity = np.array([105.0, 110.0, 120.0, 99.0, 104.0])
    got = monthly_returns(ts, equity, 100.0)["return"]
    # Jan ends at the bar closing 02-01 00:00 (110); Feb at the one closing 03-01 00:00 (99); Mar at 104
    assert got.loc[(2023, 1)] == pytest.approx(0.10)
    assert got.loc[(2023, 2)] == pytest.approx(99 / 110 - 1)
    assert got.loc[(2023, 3)] == pytest.approx(104 / 99 - 1)
    assert len(got) == 3


def test_cost_steps_sum_to_the_net_pnl_and_name_an_open_position():
    costs = {"gross_pnl": 1000.0, "total_fees": 120.0, "total_funding": -30.0, "total_slippage": 50.0}
    steps = cost_steps(costs)
    assert [label for label, _ in steps] == ["gross PnL", "fees", "funding", "slippage"]
    assert sum(v for _, v in steps) == pytest.approx(860.0)  # funding received adds
    with_open = cost_steps(costs, net_pnl=900.0)
    assert with_open[-1] == ("open position", pytest.approx(40.0))
    fig = cost_waterfall_figure(costs, net_pnl=900.0)
    assert list(fig.data[0].x)[-1] == "net PnL"
    assert fig.data[0].y[-1] == pytest.approx(900.0)


def test_pnl_by_exit_reason_counts_and_sums_closed_trades_only():
    trades = pd.DataFrame({
        "net_pnl": [10.0, -4.0, 6.0, np.nan], "exit_reason": ["take_profit", "stop_loss", "take_profit", None],
        "direction": ["LONG", "SHORT", "LONG", "LONG"], "entry_fee": [1.0, 1.0, 1.0, 1.0], "exit_fee": [1.0, 1.0, 1.0, None],
    })  # fmt: skip
    table = pnl_by(trades, "exit_reason")
    assert table.loc["take_profit"].tolist() == [2, 16.0, 1.0, 4.0]
    assert table.loc["stop_loss", "trades"] == 1
    assert "open" not in table.index
    assert pnl_by(trades, "direction").loc["LONG", "net_pnl"] == 16.0


def test_pareto_highlight_is_exactly_the_pareto_optimal_rows():
    rng = np.random.default_rng(3)
    n = 200
    points = pd.DataFrame({
        "id": np.arange(1, n + 1), "sharpe_ratio": rng.normal(0.5, 1, n), "max_drawdown": rng.uniform(0.01, 0.5, n),
        "profit_factor": rng.uniform(0.5, 2.5, n), "total_trades": rng.integers(1, 500, n),
        "is_pareto_optimal": rng.random(n) < 0.05,
    })  # fmt: skip
    points.loc[5, "profit_factor"] = np.inf
    fig = pareto_figure(points)
    front = [t for t in fig.data if t.name.startswith(PARETO_NAME)]
    assert len(front) == 1
    assert sorted(front[0].customdata.tolist()) == sorted(points.loc[points.is_pareto_optimal, "id"].tolist())
    assert len(fig.data[0].customdata) == n
    assert np.isfinite(np.asarray(fig.data[0].marker.color, dtype=float)).all()  # inf PF capped for the scale


def test_coverage_marks_every_short_day():
    rows = [{"symbol": "AAA", "day": f"2024-01-0{d}", "bars": b, "expected": 1440}
            for d, b in ((1, 1440), (2, 1300), (3, 0), (4, 1440))] + [
        {"symbol": "BBB", "day": "2024-01-02", "bars": 1440, "expected": 1440}]  # fmt: skip
    fig = coverage_figure(rows)
    heat, gaps = fig.data
    assert list(heat.y) == ["AAA", "BBB"]
    assert sorted(zip(gaps.x, gaps.y, strict=True)) == [("2024-01-02", "AAA"), ("2024-01-03", "AAA")]
    assert sorted(gaps.customdata.tolist()) == [140, 1440]
