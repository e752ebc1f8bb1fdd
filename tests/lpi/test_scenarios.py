"""Hand-drawn scenarios: a few quotes and trades, the expected IS/IB, LD, z-scores, LPI and EXH worked
out by hand (window 2, mean/std z-scores: two different values score -1 and +1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vibe_quant.lpi import FeatureEngine, LpiInputs, LpiParams, compute, compute_reference
from vibe_quant.lpi import params as P


def inputs(quotes, trades) -> LpiInputs:
    return LpiInputs(
        trade_ts=np.array([t[0] for t in trades]), trade_price=np.array([t[1] for t in trades], float),
        trade_notional=np.array([t[2] for t in trades], float), trade_side=np.array([t[3] for t in trades]),
        quote_ts=np.array([q[0] for q in quotes]), bid=np.array([q[1] for q in quotes], float),
        ask=np.array([q[2] for q in quotes], float),
    )  # fmt: skip


SMALL = {"window": 2, "min_periods": 2, "zscore": "std", "rv_window": 1, "eta": 0.001, "lambda_ld": 0.5}

# Volume clock, 250 per bucket. (ts, bid, ask) and (ts, price, notional, side).
VOLUME_QUOTES = [(1, 100.0, 101.0), (3, 99.0, 100.8), (5, 98.0, 98.5)]
VOLUME_TRADES = [
    (2, 99.8, 100, -1),  # bid 100: 99.8 < 99.9 -> impact sell 100
    (3, 101.0, 100, +1),  # the quote at t=3 comes first: ask 100.8, 101 > 100.9008 -> impact buy 100
    (4, 99.0, 100, -1),  # bid 99: 99 >= 98.901, no impact; notional 300 >= 250 closes bucket 1 at t=4
    (6, 97.8, 300, -1),  # bid 98: 97.8 < 97.902 -> impact sell 300; closes bucket 2
    (7, 98.5, 300, +1),  # ask 98.5, no impact; closes bucket 3
    (8, 98.0, 300, -1),  # no impact; closes bucket 4
]


@pytest.mark.parametrize("fn", [compute, compute_reference])
def test_volume_clock_scenario(fn) -> None:
    s = fn(inputs(VOLUME_QUOTES, VOLUME_TRADES), LpiParams(clock="volume", bucket_notional=250.0, **SMALL))
    assert s["ts_event"].tolist() == [4, 6, 7, 8]
    assert s["n_trades"].tolist() == [3, 1, 1, 1]
    assert s["impact_sell"].tolist() == [100.0, 300.0, 0.0, 0.0]
    assert s["impact_buy"].tolist() == [100.0, 0.0, 0.0, 0.0]
    assert s["spread"] == pytest.approx([1.8, 0.5, 0.5, 0.5])
    assert s["ld"] == pytest.approx([1.8 / 99.9, 0.5 / 98.25, 0.5 / 98.25, 0.5 / 98.25])
    # P: windows [0], [0, 300], [300, 0], [0, 0]; L: LD fell, then flat.
    assert s["p"][1:] == pytest.approx([1.0, -1.0, 0.0])
    assert math.isnan(s["p"][0])
    assert s["l"][1:] == pytest.approx([-1.0, 0.0, 0.0])
    assert s["lpi_fast"][1:] == pytest.approx([1.0 - 0.5, -1.0, 0.0])
    # EXH: -dLPI = 1.5 then -1 (window [1.5, -1]: z = -1); spread reversion -(s_b - s_{b-1}) = 1.3, 0, 0.
    assert s["exh"][3] == pytest.approx(-1.0 + 0.0)
    assert np.isnan(s["exh"][:3]).all()
    assert s["rv"][1] == pytest.approx(math.log(98.25 / 99.9) ** 2)
    assert s["quote_age_ns"].tolist() == [1, 1, 2, 3]
    assert s["validity_flags"][0] & P.P_WARMUP
    assert not s["validity_flags"][3] & (P.P_WARMUP | P.EXH_WARMUP)


def test_time_clock_scenario() -> None:
    quotes = [(1, 100.0, 101.0), (10, 99.0, 100.0)]
    trades = [
        (2, 99.8, 100, -1),  # impact sell 100
        (9, 101.2, 50, +1),  # ask 101: 101.2 > 101.101 -> impact buy 50
        (15, 98.8, 100, -1),  # the quote at t=10 closed bucket [0, 10) first; bid 99: impact sell 100
        (30, 100.0, 10, +1),  # closes [10, 20) at t=20; opens [30, 40), never closed
    ]
    params = LpiParams(clock="time", bucket_ns=10, **SMALL)
    for fn in (compute, compute_reference):
        s = fn(inputs(quotes, trades), params)
        assert s["ts_event"].tolist() == [10, 20]
        assert s["n_trades"].tolist() == [2, 1]
        assert s["impact_sell"].tolist() == [100.0, 100.0]
        assert s["impact_buy"].tolist() == [50.0, 0.0]
        assert s["spread"].tolist() == [1.0, 1.0]  # bucket 1 closed before the t=10 quote applied
        assert s["mid"].tolist() == [100.5, 99.5]
        assert s["p"][1] == pytest.approx(1.0)
        assert s["l"][1] == pytest.approx(1.0)
        assert s["lpi_fast"][1] == pytest.approx(1.5)
        assert s["quote_age_ns"].tolist() == [9, 10]


def test_tick_engine_protocol_and_custom_data() -> None:
    class Tick:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class Side:
        def __init__(self, name):
            self.name = name

    eng = FeatureEngine(LpiParams(clock="volume", bucket_notional=150.0, **SMALL), multiplier=1.0)
    eng.on_custom_data(Tick(ts_event=0, sum_open_interest_value="1000"))
    eng.on_custom_data(Tick(ts_event=0, sum_open_interest_value="1100"))
    eng.on_custom_data(Tick(ts_event=0, percentage="-1.00", notional="400"))
    eng.on_custom_data(Tick(ts_event=0, percentage="1.00", notional="600"))
    eng.on_quote_tick(Tick(ts_event=1, bid_price=100.0, ask_price=101.0))
    eng.on_trade_tick(Tick(ts_event=2, price=99.8, size=1.0, aggressor_side=Side("SELLER")))
    assert eng.maybe_emit_signal() is None
    eng.on_trade_tick(Tick(ts_event=3, price=101.0, size=0.5, aggressor_side=Side("BUYER")))
    snap = eng.maybe_emit_signal()
    assert snap is not None
    assert eng.maybe_emit_signal() is None
    assert (snap.ts_event, snap.n_trades, snap.impact_sell, snap.impact_buy) == (3, 2, 99.8, 0.0)
    assert snap.depth_proxy == 1000.0
    assert snap.lev == pytest.approx(1.0)
    assert not snap.validity_flags & (P.NO_LEV | P.NO_DEPTH)
