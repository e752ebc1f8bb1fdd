"""Hard filters and the 3-objective Pareto front (docs/specs.md#screening-hard-filters, docs/specs.md#pareto-front)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_quant.errors import ConfigError
from vibe_quant.screening.pareto import HardFilters, objective_matrix, pareto_mask, rejection


def test_hand_made_front_with_ties_and_duplicates() -> None:
    points = np.array([
        [2.0, 0.8, 1.5],  # 0 front
        [1.0, 0.9, 1.2],  # 1 front (best drawdown)
        [2.0, 0.8, 1.5],  # 2 duplicate of 0: neither dominates the other -> front
        [2.0, 0.8, 1.4],  # 3 tie with 0 on two objectives, worse on PF -> dominated by 0
        [0.5, 0.5, 3.0],  # 4 front (best PF)
        [0.4, 0.5, 3.0],  # 5 dominated by 4 (ties on two, worse Sharpe)
        [1.0, 0.9, 1.2],  # 6 duplicate of 1 -> front
        [0.1, 0.1, 0.1],  # 7 dominated by everything
    ])  # fmt: skip
    assert pareto_mask(points).tolist() == [True, True, True, False, True, False, True, False]


def test_single_point_and_all_equal() -> None:
    assert pareto_mask(np.array([[1.0, 1.0, 1.0]])).tolist() == [True]
    assert pareto_mask(np.ones((4, 3))).all()


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a >= b) and np.any(a > b))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.integers(-3, 3)] * 3), min_size=1, max_size=40))
def test_front_property_no_member_dominated_every_other_dominated(rows) -> None:
    p = np.array(rows, dtype=float)  # small integer grid: many ties and duplicates
    mask = pareto_mask(p)
    for i in range(len(p)):
        dominated = any(_dominates(p[j], p[i]) for j in range(len(p)) if j != i)
        assert mask[i] == (not dominated)
    assert mask.any()  # a non-empty population always has a front


def test_objectives_invert_drawdown_and_treat_missing_as_worst() -> None:
    m = objective_matrix([
        {"sharpe_ratio": 1.5, "max_drawdown": 0.2, "profit_factor": math.inf},
        {"sharpe_ratio": math.nan, "max_drawdown": None, "profit_factor": 1.1},
    ])  # fmt: skip
    assert m[0].tolist() == [1.5, 0.8, math.inf]
    assert m[1].tolist() == [-math.inf, -math.inf, 1.1]


GOOD = {"total_trades": 80, "max_drawdown": 0.12, "profit_factor": 1.4, "sharpe_ratio": 1.1}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"total_trades": 49}, "trades 49 < 50"),
        ({"total_trades": 50}, None),  # at least 50
        ({"max_drawdown": 0.30}, "max drawdown 30.0% >= 30%"),  # strictly below 30%
        ({"max_drawdown": 0.2999}, None),
        ({"profit_factor": 1.0}, "profit factor 1.00 <= 1"),  # strictly above 1
        ({"profit_factor": math.nan}, "profit factor - <= 1"),
        ({"profit_factor": math.inf}, None),  # no losing trade
        ({"sharpe_ratio": math.nan}, "no Sharpe ratio (flat equity)"),
    ],
)
def test_hard_filters_at_their_thresholds(change, reason) -> None:
    assert rejection({**GOOD, **change}, HardFilters()) == reason


def test_hard_filters_are_configurable_and_checked() -> None:
    loose = HardFilters(min_trades=10, max_drawdown=0.5, min_profit_factor=0.8)
    assert rejection({**GOOD, "total_trades": 10, "max_drawdown": 0.4, "profit_factor": 0.9}, loose) is None
    with pytest.raises(ConfigError, match="fraction"):
        HardFilters(max_drawdown=30)
    with pytest.raises(ConfigError, match="min_trades"):
        HardFilters(min_trades=-1)
