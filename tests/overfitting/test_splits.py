"""Time-series splitters: walk-forward windows, purged K-fold, combinatorial purged CV and its paths."""

from __future__ import annotations

import datetime as dt
from itertools import combinations, pairwise
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_quant.overfitting.splits import cpcv_groups, cpcv_paths, cpcv_splits, purged_kfold, walk_forward_windows

DAY = dt.timedelta(days=1)

# -- walk-forward ---------------------------------------------------------------------------------------


def test_walk_forward_two_years_gives_13_windows() -> None:
    """731 days with 270/90/30: floor((731 - 360) / 30) + 1 = 13 windows."""
    start, end = dt.date(2023, 1, 1), dt.date(2024, 12, 31)
    windows = walk_forward_windows(start, end, 270, 90, 30)
    assert (end - start).days + 1 == 731
    assert len(windows) == (731 - 360) // 30 + 1 == 13
    assert [w.index for w in windows] == list(range(13))
    assert windows[0].train_start == start
    for w in windows:
        assert (w.train_end - w.train_start).days + 1 == 270 == w.train_days
        assert (w.test_end - w.test_start).days + 1 == 90 == w.test_days
        assert w.test_start == w.train_end + DAY
    for a, b in pairwise(windows):
        assert b.train_start - a.train_start == dt.timedelta(days=30)
        assert b.test_start - a.test_start == dt.timedelta(days=30)
    assert windows[-1].test_end <= end
    assert windows[-1].test_end + dt.timedelta(days=30) > end  # a 14th window would overrun
    assert windows[-1].train_start == start + dt.timedelta(days=12 * 30)


def test_walk_forward_window_ending_exactly_on_end_is_kept() -> None:
    """`end` is inclusive: a window whose test ends on it counts."""
    start = dt.date(2024, 1, 1)
    end = start + dt.timedelta(days=9)  # 10 days
    windows = walk_forward_windows(start, end, 7, 3, 1)
    assert len(windows) == 1
    assert windows[0].test_end == end
    assert walk_forward_windows(start, end - DAY, 7, 3, 1) == []


def test_walk_forward_too_short_gives_nothing() -> None:
    """Fewer days than train + test: no window."""
    assert walk_forward_windows(dt.date(2023, 1, 1), dt.date(2023, 12, 1), 270, 90, 30) == []


@pytest.mark.parametrize(("train", "test", "step"), [(0, 90, 30), (270, 0, 30), (270, 90, 0), (-1, 90, 30), (270, -5, 30), (270, 90, -30)])  # fmt: skip
def test_walk_forward_rejects_non_positive_sizes(train: int, test: int, step: int) -> None:
    """Every size must be at least one day."""
    with pytest.raises(ValueError, match="must be >= 1"):
        walk_forward_windows(dt.date(2023, 1, 1), dt.date(2024, 12, 31), train, test, step)


@settings(max_examples=100, deadline=None)
@given(
    days=st.integers(1, 800),
    train=st.integers(1, 300),
    test=st.integers(1, 120),
    step=st.integers(1, 60),
)
def test_walk_forward_count_formula(days: int, train: int, test: int, step: int) -> None:
    """The window count is floor((days - train - test) / step) + 1 (or 0), all inside the range."""
    start = dt.date(2023, 1, 1)
    end = start + dt.timedelta(days=days - 1)
    windows = walk_forward_windows(start, end, train, test, step)
    expected = (days - train - test) // step + 1 if days >= train + test else 0
    assert len(windows) == expected
    for i, w in enumerate(windows):
        assert w.train_start == start + dt.timedelta(days=i * step)
        assert w.train_days == train
        assert w.test_days == test
        assert w.test_end <= end


# -- purged K-fold -------------------------------------------------------------------------------------


def r(a: int, b: int) -> list[int]:
    """Inclusive integer range as a list."""
    return list(range(a, b + 1))


def as_lists(folds: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[list[int], list[int]]]:
    return [(train.tolist(), test.tolist()) for train, test in folds]


def test_purged_kfold_hand_example() -> None:
    """n=20, 4 folds, purge 1, embargo 1: 1 dropped before each fold, 2 after."""
    assert as_lists(purged_kfold(20, 4, purge=1, embargo=1)) == [
        (r(7, 19), r(0, 4)),
        (r(0, 3) + r(12, 19), r(5, 9)),
        (r(0, 8) + r(17, 19), r(10, 14)),
        (r(0, 13), r(15, 19)),
    ]


def test_purged_kfold_uneven_folds_hand_example() -> None:
    """n=10, 3 folds of sizes 3, 4, 3 with purge 2 and no embargo."""
    assert as_lists(purged_kfold(10, 3, purge=2)) == [
        (r(5, 9), r(0, 2)),
        ([0, 9], r(3, 6)),
        (r(0, 4), r(7, 9)),
    ]


def test_purged_kfold_embargo_only_after() -> None:
    """Embargo without purge drops only indices after the fold."""
    assert as_lists(purged_kfold(12, 3, purge=0, embargo=2)) == [
        (r(6, 11), r(0, 3)),
        (r(0, 3) + r(10, 11), r(4, 7)),
        (r(0, 7), r(8, 11)),
    ]


def test_purged_kfold_no_purge_is_the_complement() -> None:
    """purge = embargo = 0: train is everything outside the test fold."""
    for train, test in purged_kfold(23, 5):
        assert sorted(set(train) | set(test)) == list(range(23))
        assert not set(train) & set(test)


@pytest.mark.parametrize(("n", "k", "purge", "embargo"), [(10, 1, 0, 0), (3, 4, 0, 0), (20, 4, -1, 0), (20, 4, 0, -1)])
def test_purged_kfold_rejects_bad_input(n: int, k: int, purge: int, embargo: int) -> None:
    """Fewer than 2 folds, more folds than rows, negative purge or embargo."""
    with pytest.raises(ValueError, match=r"must be >= |cannot make"):
        purged_kfold(n, k, purge, embargo)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(2, 200), purge=st.integers(0, 15), embargo=st.integers(0, 15))
def test_purged_kfold_properties(data: st.DataObject, n: int, purge: int, embargo: int) -> None:
    """Folds partition range(n) in order, sizes differ by at most one; train drops exactly the
    test fold, `purge` before it and `purge + embargo` after it (clipped at the ends)."""
    k = data.draw(st.integers(2, min(n, 12)), label="k")
    folds = purged_kfold(n, k, purge, embargo)
    assert len(folds) == k
    tests = [test for _, test in folds]
    assert np.array_equal(np.concatenate(tests), np.arange(n))
    sizes = [len(t) for t in tests]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        a, b = int(test[0]), int(test[-1]) + 1
        assert np.array_equal(test, np.arange(a, b))
        assert not np.isin(test, train).any()
        dropped = set(range(max(a - purge, 0), min(b + purge + embargo, n)))
        assert train.tolist() == [i for i in range(n) if i not in dropped]
        assert np.all(np.diff(train) > 0)


# -- CPCV ----------------------------------------------------------------------------------------------


def test_cpcv_split_count_and_order() -> None:
    """C(6, 2) = 15 splits, test groups in lexicographic order."""
    splits = cpcv_splits(60, 6, 2)
    assert len(splits) == comb(6, 2) == 15
    assert [s.test_groups for s in splits] == list(combinations(range(6), 2))


def test_cpcv_hand_example() -> None:
    """n=12, 6 groups of 2, test groups (1, 3), purge 1, embargo 1: train is {0, 10, 11}."""
    splits = cpcv_splits(12, 6, 2, purge=1, embargo=1)
    split = next(s for s in splits if s.test_groups == (1, 3))
    assert split.test.tolist() == [2, 3, 6, 7]
    assert split.train.tolist() == [0, 10, 11]
    first = splits[0]  # (0, 1): test 0..3, dropped up to 3 + 1 + 1 + 1 = 6
    assert first.test.tolist() == [0, 1, 2, 3]
    assert first.train.tolist() == list(range(6, 12))


def test_cpcv_groups_match_the_splits() -> None:
    """With one test group per split, each test set is that group's range."""
    groups = cpcv_groups(23, 5)
    assert groups[0][0] == 0
    assert groups[-1][1] == 23
    assert all(a1 == b0 for (_, b0), (a1, _) in pairwise(groups))
    for split, (a, b) in zip(cpcv_splits(23, 5, 1), groups, strict=True):
        assert split.test.tolist() == list(range(a, b))


@pytest.mark.parametrize(
    ("n", "n_groups", "k", "purge", "embargo"),
    [(20, 1, 1, 0, 0), (3, 6, 2, 0, 0), (60, 6, 0, 0, 0), (60, 6, 6, 0, 0), (60, 6, 2, -1, 0), (60, 6, 2, 0, -2)],
)
def test_cpcv_rejects_bad_input(n: int, n_groups: int, k: int, purge: int, embargo: int) -> None:
    """Fewer than 2 groups, more groups than rows, k outside [1, N - 1], negative purge/embargo."""
    with pytest.raises(ValueError, match=r"must be|cannot make"):
        cpcv_splits(n, n_groups, k, purge, embargo)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(4, 150), purge=st.integers(0, 6), embargo=st.integers(0, 6))
def test_cpcv_split_properties(data: st.DataObject, n: int, purge: int, embargo: int) -> None:
    """Test = union of the chosen groups; train never meets test and drops `purge` before and
    `purge + embargo` after every test group."""
    n_groups = data.draw(st.integers(2, min(n, 8)), label="n_groups")
    k = data.draw(st.integers(1, n_groups - 1), label="k")
    groups = cpcv_groups(n, n_groups)
    splits = cpcv_splits(n, n_groups, k, purge, embargo)
    assert len(splits) == comb(n_groups, k)
    assert [s.test_groups for s in splits] == list(combinations(range(n_groups), k))
    for split in splits:
        chosen = [groups[g] for g in split.test_groups]
        assert split.test.tolist() == [i for a, b in chosen for i in range(a, b)]
        assert not np.isin(split.train, split.test).any()
        dropped = {i for a, b in chosen for i in range(max(a - purge, 0), min(b + purge + embargo, n))}
        assert split.train.tolist() == [i for i in range(n) if i not in dropped]


def test_cpcv_paths_6_2() -> None:
    """N=6, k=2: 5 paths over 6 groups; each split used k times; column g lists the splits testing g."""
    paths = cpcv_paths(6, 2)
    assert paths.shape == (5, 6) == (2 * comb(6, 2) // 6, 6)
    check_paths(paths, 6, 2)
    assert paths[:, 0].tolist() == [0, 1, 2, 3, 4]  # (0,1) (0,2) (0,3) (0,4) (0,5)
    assert paths[:, 5].tolist() == [4, 8, 11, 13, 14]  # (0,5) (1,5) (2,5) (3,5) (4,5)
    assert paths[0].tolist() == [0, 0, 1, 2, 3, 4]  # AFML fig. 12.2: path 1 is S1 S1 S2 S3 S4 S5


def check_paths(paths: np.ndarray, n_groups: int, k: int) -> None:
    """Path invariants shared by the fixed and the property tests."""
    splits = list(combinations(range(n_groups), k))
    assert paths.shape == (comb(n_groups - 1, k - 1), n_groups)
    assert paths.shape[0] * n_groups == k * len(splits)  # k / N * C(N, k) paths
    assert (paths >= 0).all()
    counts = np.bincount(paths.ravel(), minlength=len(splits))
    assert counts.tolist() == [k] * len(splits)
    for g in range(n_groups):
        column = paths[:, g].tolist()
        assert sorted(column) == [s for s, chosen in enumerate(splits) if g in chosen]
        assert len(set(column)) == len(column)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_groups=st.integers(2, 10))
def test_cpcv_paths_properties(data: st.DataObject, n_groups: int) -> None:
    """For any (N, k), the paths use every split k times and stitch one test result per group."""
    k = data.draw(st.integers(1, n_groups - 1), label="k")
    check_paths(cpcv_paths(n_groups, k), n_groups, k)
