"""Time-series splitters for the overfitting filters. Pure functions over index ranges and dates.

* :func:`walk_forward_windows`: rolling train/test windows of calendar days (docs/specs.md#walk-forward-analysis:
  train 270, test 90, step 30 -> 13 windows from two years).
* :func:`purged_kfold`: K contiguous test folds; the training set is every other observation
  except ``purge`` on each side of the test fold (an indicator's lookback reaches across the
  boundary both ways: a position opened just before the fold runs into it, an indicator just
  after it still reads it) and a further ``embargo`` after it (Lopez de Prado, AFML ch. 7).
* :func:`cpcv_splits` / :func:`cpcv_paths`: combinatorial purged CV (AFML ch. 12): ``n_groups``
  contiguous groups, every choice of ``n_test_groups`` of them as the test set (C(N, k) splits,
  each purged and embargoed like K-fold), and the k/N * C(N, k) backtest paths that stitch one
  test result per group.

scikit-learn's ``TimeSeriesSplit`` has a gap but no purge on both sides nor an embargo, and no
library we trust ships CPCV paths, so these few lines are ours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import combinations, pairwise
from math import comb

import numpy as np


@dataclass(frozen=True)
class Window:
    """One walk-forward window; dates are UTC days, `train_end` and `test_end` inclusive."""

    index: int
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date

    @property
    def train_days(self) -> int:
        return (self.test_start - self.train_start).days

    @property
    def test_days(self) -> int:
        return (self.test_end - self.test_start).days + 1


def walk_forward_windows(start: dt.date, end: dt.date, train_days: int, test_days: int, step_days: int) -> list[Window]:
    """Every window ``[t, t + train) + [t + train, t + train + test)`` with ``t = start + i * step``
    that ends on or before `end` (inclusive): floor((days - train - test) / step) + 1 of them."""
    for name, value in (("train_days", train_days), ("test_days", test_days), ("step_days", step_days)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    out = []
    t = start
    day = dt.timedelta(days=1)
    while t + dt.timedelta(days=train_days + test_days) <= end + day:
        test_start = t + dt.timedelta(days=train_days)
        out.append(Window(len(out), t, test_start - day, test_start, test_start + dt.timedelta(days=test_days) - day))
        t += dt.timedelta(days=step_days)
    return out


def _blocks(n: int, n_blocks: int) -> list[tuple[int, int]]:
    """`n_blocks` contiguous ``[a, b)`` ranges covering ``range(n)``, sizes differing by at most one."""
    edges = np.linspace(0, n, n_blocks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def _check(n: int, n_blocks: int, purge: int, embargo: int, what: str) -> None:
    if n_blocks < 2:
        raise ValueError(f"{what} must be >= 2, got {n_blocks}")
    if n < n_blocks:
        raise ValueError(f"{n} observations cannot make {n_blocks} {what.replace('n_', '')}")
    if purge < 0 or embargo < 0:
        raise ValueError(f"purge and embargo must be >= 0, got {purge} and {embargo}")


def _train_mask(n: int, test_ranges: list[tuple[int, int]], purge: int, embargo: int) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for a, b in test_ranges:
        keep[max(a - purge, 0) : min(b + purge + embargo, n)] = False
    return keep


def purged_kfold(n: int, n_splits: int = 5, purge: int = 0, embargo: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return ``(train_indices, test_indices)`` for each of `n_splits` contiguous folds of ``range(n)``."""
    _check(n, n_splits, purge, embargo, "n_splits")
    out = []
    for a, b in _blocks(n, n_splits):
        out.append((np.flatnonzero(_train_mask(n, [(a, b)], purge, embargo)), np.arange(a, b)))
    return out


@dataclass(frozen=True)
class CPCVSplit:
    train: np.ndarray
    test: np.ndarray
    test_groups: tuple[int, ...]


def cpcv_splits(n: int, n_groups: int = 6, n_test_groups: int = 2, purge: int = 0, embargo: int = 0) -> list[CPCVSplit]:
    """Every choice of `n_test_groups` of the `n_groups` contiguous groups as the test set, in
    lexicographic order; train is the rest, purged and embargoed around each test group."""
    _check(n, n_groups, purge, embargo, "n_groups")
    if not 1 <= n_test_groups < n_groups:
        raise ValueError(f"n_test_groups must be in [1, {n_groups - 1}], got {n_test_groups}")
    groups = _blocks(n, n_groups)
    out = []
    for chosen in combinations(range(n_groups), n_test_groups):
        ranges = [groups[g] for g in chosen]
        test = np.concatenate([np.arange(a, b) for a, b in ranges])
        out.append(CPCVSplit(np.flatnonzero(_train_mask(n, ranges, purge, embargo)), test, chosen))
    return out


def cpcv_groups(n: int, n_groups: int) -> list[tuple[int, int]]:
    """The ``[a, b)`` index range of each CPCV group (as :func:`cpcv_splits` cuts them)."""
    return _blocks(n, n_groups)


def cpcv_paths(n_groups: int, n_test_groups: int) -> np.ndarray:
    """Array (paths, groups): for path p and group g, the index of the split (in
    :func:`cpcv_splits` order) whose test result that path uses for g: path p takes, for every
    group, the p-th split that tests it (AFML fig. 12.2). There are
    ``k / N * C(N, k) = C(N - 1, k - 1)`` paths, and every split is used k times."""
    n_paths = comb(n_groups - 1, n_test_groups - 1)
    paths = np.full((n_paths, n_groups), -1, dtype=int)
    used = [0] * n_groups
    for s, chosen in enumerate(combinations(range(n_groups), n_test_groups)):
        for g in chosen:
            paths[used[g], g] = s
            used[g] += 1
    return paths
