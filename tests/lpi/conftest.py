"""Real inputs of the LPI tests: the COIN-M aggTrades day (quotes-free) and the bookTicker sample."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from vibe_quant.lpi import LpiInputs
from vibe_quant.lpi.inputs import aggtrades_arrays, bookticker_arrays, quotes_free_inputs

DAY = SHARED_DATA / "binance-vision/data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
BOOK = SHARED_DATA / "samples" / "BTCUSDT-bookTicker-2023-10-02-short.csv"


@pytest.fixture(scope="session")
def day_inputs() -> LpiInputs:
    """The real BTCUSD_PERP 2026-05-08 aggTrades day, 105,280 trades, contract size 100 USD."""
    return quotes_free_inputs(DAY, contract_size=100.0)


@pytest.fixture(scope="session")
def book_inputs() -> LpiInputs:
    return book_hybrid()


def book_hybrid() -> LpiInputs:
    """The real bookTicker sample (9,999 quotes, 27 s) with a trade flow to bucket.

    No real trades of that day are stored, so the trades are labelled hybrid: the real aggTrades
    rows of the first 27 s of the COIN-M day, moved onto the sample's clock (same offsets from the
    first row) and rescaled by (first mid of the sample / first trade price); notional = price x 0.01
    x quantity (a linear contract). Their prices are real relative moves, not the touch's.
    """
    q = bookticker_arrays(BOOK)
    t = aggtrades_arrays(DAY, contract_size=100.0)
    span = q["quote_ts"][-1] - q["quote_ts"][0]
    keep = t["trade_ts"] - t["trade_ts"][0] <= span
    scale = (q["bid"][0] + q["ask"][0]) * 0.5 / t["trade_price"][0]
    price = t["trade_price"][keep] * scale
    return LpiInputs(
        trade_ts=t["trade_ts"][keep] - t["trade_ts"][0] + q["quote_ts"][0],
        trade_price=price,
        trade_notional=price * 0.01 * (t["trade_notional"][keep] / 100.0),
        trade_side=t["trade_side"][keep],
        **q,
    )


def head(x: LpiInputs, n: int) -> LpiInputs:
    """The first `n` trades of `x` (other series whole)."""
    return replace(x, **{k: getattr(x, k)[:n] for k in ("trade_ts", "trade_price", "trade_notional", "trade_side")})


def slow_series(x: LpiInputs, seed: int = 7) -> LpiInputs:
    """`x` plus hand-made open interest, funding and depth series over its span (labelled synthetic:
    no real metrics/bookDepth are stored), seeded."""
    rng = np.random.default_rng(seed)
    t0, t1 = int(x.trade_ts[0]), int(x.trade_ts[-1])

    def ts(k: int) -> np.ndarray:
        return np.sort(rng.integers(t0, t1, k)).astype(np.int64)

    return replace(
        x,
        oi_ts=ts(40), oi=1e9 + rng.normal(0, 1e7, 40).cumsum(),
        funding_ts=ts(15), funding=rng.normal(1e-4, 5e-5, 15),
        depth_ts=ts(200), depth=np.abs(rng.normal(5e6, 1e6, 200)),
    )  # fmt: skip
