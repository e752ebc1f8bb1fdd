"""The numba kernel equals the plain-Python engine bit for bit (same operations, same order), on real
data over a parameter grid, every column compared (NaN equal to NaN)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.lpi.conftest import head, slow_series
from vibe_quant.lpi import LpiParams, compute, compute_reference

GRID = list(itertools.product(("volume", "time"), ("mad", "std"), ("spread", "depth")))


def assert_identical(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    for name in a.dtype.names:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.mark.parametrize(("clock", "zscore", "exh"), GRID)
def test_kernel_equals_reference_quotes_free(day_inputs, clock, zscore, exh) -> None:
    x = slow_series(head(day_inputs, 12_000))
    params = LpiParams(
        clock=clock, bucket_notional=50_000.0, bucket_ns=2_000_000_000, zscore=zscore, exh_variant=exh,
        ld_variant="spread_depth" if exh == "depth" else "spread_mid", window=25, min_periods=5,
        rv_window=7, lev_window=10, quotes_free=True, eta=0.0001, lambda_ld=0.7, lambda_spr=0.3, lambda_liq=2.0,
    )  # fmt: skip
    a = compute(x, params)
    assert len(a) > 60  # the windows wrap around several times
    assert_identical(a, compute_reference(x, params))


@pytest.mark.parametrize(("clock", "zscore"), [("volume", "mad"), ("time", "std")])
def test_kernel_equals_reference_with_quotes(book_inputs, clock, zscore) -> None:
    params = LpiParams(clock=clock, bucket_notional=20_000.0, bucket_ns=250_000_000, zscore=zscore, window=20,
                       min_periods=4, rv_window=5, eta=0.0002)  # fmt: skip
    a = compute(book_inputs, params)
    assert len(a) > 20
    assert_identical(a, compute_reference(book_inputs, params))
