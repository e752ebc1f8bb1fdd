"""Position sizers on hand-computed numbers (docs/specs.md#position-sizing), the ATR against NautilusTrader's
own indicator, properties of the capped size over wide random inputs, and the gate's correlation
and heat helpers on fake instrument states."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.indicators import AverageTrueRange

from tests.backtest.scenario import bars
from vibe_quant.errors import ConfigError
from vibe_quant.risk.config import PortfolioRiskConfig, RiskConfig, SizingConfig, sizing_from_data
from vibe_quant.risk.gate import RiskGate, _correlation
from vibe_quant.risk.sizing import SizeRequest, atr, fixed_fractional_qty, kelly_fraction, kelly_inputs, size

# Caps that never bind, so a test sees the method's own quantity.
LOOSE = {"max_position_pct": 125.0, "max_leverage": 125.0, "max_portfolio_heat": 1.0}


def req(**kw) -> SizeRequest:
    """100,000 equity, price 100, 10x, step 0.001, no min notional, unless told otherwise."""
    base = {"equity": 100_000.0, "price": 100.0, "stop_distance": None, "leverage": 10.0, "step": 0.001,
            "min_notional": 0.0}  # fmt: skip
    return SizeRequest(**{**base, **kw})


# -- the formulas ---------------------------------------------------------------------------------


def test_fixed_fractional_qty() -> None:
    """2% of 100,000 lost over a 250 stop distance: 8 units."""
    assert fixed_fractional_qty(100_000.0, 0.02, 250.0) == pytest.approx(8.0, rel=1e-12)
    assert fixed_fractional_qty(50_000.0, 0.01, 2.0) == pytest.approx(250.0, rel=1e-12)
    assert fixed_fractional_qty(100_000.0, 0.02, 0.0) == 0.0


def test_kelly_fraction() -> None:
    """f* = (W - (1 - W) / R) * fraction."""
    assert kelly_fraction(0.55, 1.5, 0.5) == pytest.approx((0.55 - 0.45 / 1.5) * 0.5, rel=1e-12)
    assert kelly_fraction(0.55, 1.5, 0.5) == pytest.approx(0.125, rel=1e-12)
    assert kelly_fraction(0.6, 2.0, 1.0) == pytest.approx(0.4, rel=1e-12)
    assert kelly_fraction(0.3, 1.0, 0.5) == pytest.approx(-0.2, rel=1e-12)  # no edge
    assert kelly_fraction(0.5, 1.0, 1.0) == pytest.approx(0.0, abs=1e-15)  # break-even: no edge
    assert kelly_fraction(0.9, 0.0, 0.5) < 0


def test_kelly_inputs_uses_priors_until_min_trades() -> None:
    cfg = SizingConfig(method="kelly", kelly_min_trades=3, kelly_lookback=4, win_rate=0.4, payoff_ratio=2.0)
    assert kelly_inputs([], cfg) == (0.4, 2.0, False)
    assert kelly_inputs([0.1, 0.2], cfg) == (0.4, 2.0, False)
    w, r, estimated = kelly_inputs([0.03, -0.02, 0.03], cfg)  # the third trade switches to estimates
    assert estimated is True
    assert w == pytest.approx(2 / 3, rel=1e-12)
    assert r == pytest.approx(0.03 / 0.02, rel=1e-12)


def test_kelly_inputs_estimates_from_returns() -> None:
    cfg = SizingConfig(method="kelly", kelly_min_trades=3, kelly_lookback=10, win_rate=0.4, payoff_ratio=2.0)
    # wins 0.02, 0.04 (mean 0.03); losses 0.01, 0.03 (mean |loss| 0.02): W = 0.5, R = 1.5
    w, r, estimated = kelly_inputs([0.02, -0.01, 0.04, -0.03], cfg)
    assert (w, estimated) == (0.5, True)
    assert r == pytest.approx(1.5, rel=1e-12)
    # a flat trade counts as a loss of 0 (as the consecutive-loss breaker counts PnL <= 0)
    w, r, _ = kelly_inputs([0.02, 0.0, 0.04, -0.02], cfg)
    assert w == 0.5
    assert r == pytest.approx(0.03 / 0.01, rel=1e-12)
    # no loss yet: the prior R; no win: W = 0
    assert kelly_inputs([0.01, 0.02, 0.03], cfg) == (1.0, 2.0, True)
    w, _, _ = kelly_inputs([-0.01, -0.02, -0.03], cfg)
    assert w == 0.0


def test_kelly_inputs_lookback_uses_only_the_last_trades() -> None:
    cfg = SizingConfig(method="kelly", kelly_min_trades=3, kelly_lookback=4)
    old = [-0.5, -0.4, -0.3]  # outside the lookback: must not count
    w, r, _ = kelly_inputs([*old, 0.02, -0.01, 0.04, -0.03], cfg)
    assert w == 0.5
    assert r == pytest.approx(1.5, rel=1e-12)
    # a lookback shorter than kelly_min_trades would never estimate: refused
    with pytest.raises(ValueError, match="kelly_lookback"):
        SizingConfig(method="kelly", kelly_min_trades=5, kelly_lookback=4)
    with pytest.raises(ConfigError, match="kelly_lookback"):
        sizing_from_data({"method": "kelly", "config": {"kelly_min_trades": 5, "kelly_lookback": 4}}, "s.yaml")


def test_kelly_inputs_with_a_vanishing_mean_loss() -> None:
    """Losses [0.0, 5e-324] sum to 5e-324 but their mean underflows to 0.0: the prior R, no
    ZeroDivisionError (found by test_size_properties)."""
    cfg = SizingConfig(method="kelly", kelly_min_trades=1, kelly_lookback=3, payoff_ratio=1.5)
    w, r, estimated = kelly_inputs([0.0, 0.5, -5e-324], cfg)
    assert (w, r, estimated) == (pytest.approx(1 / 3), 1.5, True)


# (high, low, close); true ranges from bar 1: 1.0, 2.8 (gap up: |h - prev close|), 1.9, 2.5 (gap down)
H = [10.0, 10.5, 13.0, 12.9, 11.0]
L = [9.0, 9.8, 12.5, 11.0, 9.0]
C = [9.5, 10.2, 12.8, 11.5, 9.2]


def test_atr_hand_computed() -> None:
    assert atr(H, L, C, 1, 1) == pytest.approx(1.0, rel=1e-12)  # |10.5 - 9.5| > 10.5 - 9.8
    assert atr(H, L, C, 2, 1) == pytest.approx(2.8, rel=1e-12)  # gap: |13.0 - 10.2| beats 13.0 - 12.5
    assert atr(H, L, C, 3, 1) == pytest.approx(1.9, rel=1e-12)  # plain high - low
    assert atr(H, L, C, 4, 1) == pytest.approx(2.5, rel=1e-12)  # gap down: |9.0 - 11.5|
    assert atr(H, L, C, 3, 3) == pytest.approx((1.0 + 2.8 + 1.9) / 3, rel=1e-12)
    assert atr(H, L, C, 4, 3) == pytest.approx((2.8 + 1.9 + 2.5) / 3, rel=1e-12)
    assert atr(H, L, C, 4, 4) == pytest.approx((1.0 + 2.8 + 1.9 + 2.5) / 4, rel=1e-12)


def test_atr_none_before_enough_bars() -> None:
    assert atr(H, L, C, 0, 1) is None  # bar 0 has no previous close
    assert atr(H, L, C, 2, 3) is None
    assert atr(H, L, C, 3, 4) is None
    assert atr(H, L, C, 3, 3) is not None


def random_walk_rows(n: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    rows, close = [], 100.0
    for _ in range(n):
        o = close
        close = max(1.0, close + rng.gauss(0, 2))
        if rng.random() < 0.2:  # gaps, so |high - prev close| or |low - prev close| wins at times
            o = close = max(1.0, close + rng.choice([-6.0, 6.0]))
        h = max(o, close) + abs(rng.gauss(0, 1))
        lo = min(o, close) - abs(rng.gauss(0, 1))
        rows.append((round(o, 3), round(h, 3), round(lo, 3), round(close, 3), 100.0))
    return rows


@pytest.mark.parametrize(("period", "seed"), [(14, 1), (14, 2), (5, 3), (1, 4)])
def test_atr_matches_nautilus_average_true_range(period: int, seed: int) -> None:
    """Our ATR at bar k (k >= period) equals NautilusTrader's AverageTrueRange(period) after k + 1 bars."""
    bar_list = bars(random_walk_rows(50, seed))
    highs = [b.high.as_double() for b in bar_list]
    lows = [b.low.as_double() for b in bar_list]
    closes = [b.close.as_double() for b in bar_list]
    indicator = AverageTrueRange(period)
    compared = 0
    for k, bar in enumerate(bar_list):
        indicator.handle_bar(bar)
        ours = atr(highs, lows, closes, k, period)
        if k < period:
            assert ours is None
            continue
        assert indicator.initialized
        assert ours == pytest.approx(indicator.value, rel=1e-9), k
        compared += 1
    assert compared == 50 - period
    # the gaps make a true range differ from high - low, so the previous close really is used
    assert any(
        abs(h - pc) > h - lo or abs(lo - pc) > h - lo
        for h, lo, pc in zip(highs[1:], lows[1:], closes[:-1], strict=True)
    )


# -- size(): each method ---------------------------------------------------------------------------


def test_size_fixed_fractional() -> None:
    d = size(SizingConfig(method="fixed_fractional", **LOOSE), req(stop_distance=5.0))
    assert d.qty == pytest.approx(400.0, rel=1e-12)  # 100,000 x 0.02 / 5
    assert d.method_qty == pytest.approx(400.0, rel=1e-12)
    assert (d.limits, d.refused, d.info["method"]) == ([], None, "fixed_fractional")


def test_size_atr() -> None:
    cfg = SizingConfig(method="atr", risk_per_trade=0.01, atr_multiplier=2.5, **LOOSE)
    d = size(cfg, req(atr=4.0))
    assert d.qty == pytest.approx(100_000 * 0.01 / (4.0 * 2.5), rel=1e-12)  # 100
    assert d.refused is None
    assert d.info["atr"] == 4.0


@pytest.mark.parametrize(("stop", "expected"), [(5.0, 100_000 * 0.125 / 5.0), (None, 100_000 * 0.125 / 100.0)])
def test_size_kelly_with_and_without_stop(stop: float | None, expected: float) -> None:
    """f* = 0.125 (W 0.55, R 1.5, half Kelly) of equity at risk to the stop, else as notional."""
    cfg = SizingConfig(method="kelly", win_rate=0.55, payoff_ratio=1.5, kelly_fraction=0.5, **LOOSE)
    d = size(cfg, req(stop_distance=stop))
    assert d.qty == pytest.approx(expected, rel=1e-12)  # 2,500 or 125
    assert d.refused is None
    assert d.info["kelly"] == pytest.approx(0.125, rel=1e-12)
    assert d.info["estimated"] is False


def test_size_kelly_from_trade_returns() -> None:
    cfg = SizingConfig(method="kelly", kelly_min_trades=4, win_rate=0.1, payoff_ratio=0.5, **LOOSE)  # priors: no edge
    d = size(cfg, req(trade_returns=[0.02, -0.01, 0.04, -0.03]))  # W 0.5, R 1.5: f = (0.5 - 0.5 / 1.5) / 2
    assert (d.info["estimated"], d.info["win_rate"]) == (True, 0.5)
    assert d.info["payoff_ratio"] == pytest.approx(1.5, rel=1e-12)
    assert d.method_qty == pytest.approx(100_000 * (0.5 - 0.5 / 1.5) * 0.5 / 100.0, rel=1e-12)  # 83.33...
    assert d.qty == pytest.approx(83.333, abs=1e-9)  # floored to the 0.001 step


def test_size_refusals() -> None:
    ff = SizingConfig(method="fixed_fractional", **LOOSE)
    for stop in (None, 0.0):
        d = size(ff, req(stop_distance=stop))
        assert (d.qty, d.refused) == (0.0, "no_stop_loss")
    for value in (None, 0.0):
        d = size(SizingConfig(method="atr", **LOOSE), req(atr=value, stop_distance=5.0))
        assert (d.qty, d.refused) == (0.0, "atr_not_ready")
    d = size(SizingConfig(method="kelly", win_rate=0.3, payoff_ratio=1.0, **LOOSE), req(stop_distance=5.0))
    assert (d.qty, d.refused) == (0.0, "kelly_no_edge")
    assert d.info["kelly"] < 0
    d = size(ff, req(stop_distance=5.0, equity=0.0))
    assert (d.qty, d.refused) == (0.0, "no_equity")


# -- size(): the caps ------------------------------------------------------------------------------

# fixed fractional, stop 0.5: 4,000 units = 400,000 notional = 4x equity, risk 2,000
STOP = 0.5


@pytest.mark.parametrize(
    ("caps", "qty", "limits"),
    [
        ({"max_position_pct": 3.0}, 3_000.0, ["max_position_pct"]),
        ({"max_leverage": 2.0}, 2_000.0, ["max_leverage"]),
        ({"max_portfolio_heat": 0.006}, 1_200.0, ["max_portfolio_heat"]),  # 600 of risk / 0.5
        ({"max_position_pct": 3.0, "max_leverage": 2.0, "max_portfolio_heat": 0.006}, 1_200.0,
         ["max_position_pct", "max_leverage", "max_portfolio_heat"]),
        ({"max_position_pct": 1.0, "max_leverage": 2.0, "max_portfolio_heat": 0.006}, 1_000.0, ["max_position_pct"]),
        ({"max_position_pct": 5.0, "max_leverage": 3.0, "max_portfolio_heat": 0.012}, 2_400.0,
         ["max_leverage", "max_portfolio_heat"]),
    ],
)  # fmt: skip
def test_each_cap_binds_and_is_listed_in_order(caps: dict, qty: float, limits: list[str]) -> None:
    cfg = SizingConfig(method="fixed_fractional", **{**LOOSE, **caps})
    d = size(cfg, req(stop_distance=STOP))
    assert d.method_qty == pytest.approx(4_000.0, rel=1e-12)
    assert d.qty == pytest.approx(qty, rel=1e-12)
    assert d.limits == limits
    assert d.refused is None


def test_a_cap_equal_to_the_size_does_not_bind() -> None:
    cfg = SizingConfig(method="fixed_fractional", **{**LOOSE, "max_position_pct": 4.0})  # cap 4,000 units
    d = size(cfg, req(stop_distance=STOP))
    assert (d.qty, d.method_qty) == (4_000.0, 4_000.0)
    assert d.limits == []


def test_seed_caps_bind_on_a_tight_stop() -> None:
    """The spec's fixed fractional example: 2% to a 0.5 stop wants 4x equity; max position 10% wins."""
    d = size(SizingConfig(method="fixed_fractional"), req(stop_distance=STOP))
    assert d.qty == pytest.approx(100.0, rel=1e-12)  # 10,000 notional at 100
    assert d.limits == ["max_position_pct"]


def test_heat_counts_open_risk() -> None:
    cfg = SizingConfig(method="fixed_fractional", **{**LOOSE, "max_portfolio_heat": 0.06})  # 6,000 of risk
    d = size(cfg, req(stop_distance=5.0, open_risk=5_000.0))  # 1,000 of room over 5: 200 (not 400)
    assert d.qty == pytest.approx(200.0, rel=1e-12)
    assert d.limits == ["max_portfolio_heat"]
    d = size(cfg, req(stop_distance=5.0, open_risk=3_000.0))  # room 3,000 > the 2,000 this entry risks
    assert (d.qty, d.limits) == (pytest.approx(400.0, rel=1e-12), [])
    d = size(cfg, req(stop_distance=5.0, open_risk=7_000.0))  # already over: nothing
    assert (d.qty, d.refused) == (0.0, "max_portfolio_heat")


def test_heat_without_stop_is_the_margin() -> None:
    """Without a stop an entry risks its isolated margin, notional / leverage."""
    cfg = SizingConfig(method="atr", **{**LOOSE, "max_portfolio_heat": 0.03})  # 3,000 of risk
    d = size(cfg, req(atr=2.5, leverage=10.0))  # 400 units wanted, margin 400 x 100 / 10 = 4,000
    assert d.method_qty == pytest.approx(400.0, rel=1e-12)
    assert d.qty == pytest.approx(300.0, rel=1e-12)
    assert d.limits == ["max_portfolio_heat"]
    d = size(cfg, req(atr=2.5, leverage=20.0))  # margin 2,000: fits
    assert (d.qty, d.limits) == (pytest.approx(400.0, rel=1e-12), [])


def test_drawdown_scale_halves_before_the_caps() -> None:
    cfg = SizingConfig(method="fixed_fractional", **LOOSE)
    d = size(cfg, req(stop_distance=5.0, scale=0.5))
    assert (d.qty, d.method_qty) == (pytest.approx(200.0, rel=1e-12), pytest.approx(400.0, rel=1e-12))
    assert d.limits == ["drawdown_scale"]
    capped = SizingConfig(method="fixed_fractional", **{**LOOSE, "max_position_pct": 0.3})  # 300 units
    d = size(capped, req(stop_distance=5.0, scale=0.5))
    assert d.qty == pytest.approx(200.0, rel=1e-12)  # 400 x 0.5 is already under the cap
    assert d.limits == ["drawdown_scale"]
    d = size(capped, req(stop_distance=5.0))
    assert (d.qty, d.limits) == (pytest.approx(300.0, rel=1e-12), ["max_position_pct"])


def test_min_notional_and_step() -> None:
    cfg = SizingConfig(method="fixed_fractional", **LOOSE)
    d = size(cfg, req(stop_distance=5.0, min_notional=40_000.0))  # 400 x 100 = exactly the minimum
    assert (d.qty, d.refused) == (pytest.approx(400.0, rel=1e-12), None)
    d = size(cfg, req(stop_distance=5.0, min_notional=40_000.01))
    assert (d.qty, d.refused) == (0.0, "below_min_notional")
    assert d.method_qty == pytest.approx(400.0, rel=1e-12)
    # floored to the step: 2,000 / 3 = 666.67 -> 666.6 at step 0.1, 666 at step 1
    d = size(cfg, req(stop_distance=3.0, step=0.1))
    assert d.qty == pytest.approx(666.6, abs=1e-9)
    assert size(cfg, req(stop_distance=3.0, step=1.0)).qty == 666.0
    # 100 x 0.02 / 5 = 0.4 units, below a step of 1
    d = size(cfg, req(equity=100.0, stop_distance=5.0, step=1.0))
    assert (d.qty, d.refused) == (0.0, "size_below_step")


def test_a_quantity_of_exactly_whole_steps_is_kept() -> None:
    """Floating division (e.g. 0.3 / 0.1 = 2.9999999999999996) must not lose a step."""
    cfg = SizingConfig(method="fixed_fractional", **LOOSE)
    d = size(cfg, req(equity=1_500.0, stop_distance=100.0, step=0.1))  # 1,500 x 0.02 / 100 = 0.3
    assert d.qty == pytest.approx(0.3, abs=1e-12)


# -- size(): properties ----------------------------------------------------------------------------


@st.composite
def sizing_cases(draw):
    method = draw(st.sampled_from(["fixed_fractional", "kelly", "atr"]))
    cfg = SizingConfig(
        method=method,
        risk_per_trade=draw(st.floats(1e-4, 1.0)),
        max_position_pct=draw(st.floats(1e-3, 125.0)),
        max_leverage=draw(st.floats(1e-2, 125.0)),
        max_portfolio_heat=draw(st.floats(1e-4, 1.0)),
        kelly_fraction=draw(st.floats(0.01, 1.0)),
        kelly_min_trades=draw(st.integers(1, 20)),
        kelly_lookback=draw(st.integers(20, 40)),
        win_rate=draw(st.floats(0.0, 1.0)),
        payoff_ratio=draw(st.floats(0.05, 10.0)),
        atr_multiplier=draw(st.floats(0.1, 5.0)),
    )
    equity = draw(st.floats(1.0, 1e9))
    price = draw(st.floats(1e-4, 1e5))
    stop_frac = draw(st.none() | st.floats(1e-5, 0.9))
    atr_frac = draw(st.none() | st.floats(1e-5, 0.5))
    heat = cfg.max_portfolio_heat * equity
    request = SizeRequest(
        equity=equity,
        price=price,
        stop_distance=None if stop_frac is None else stop_frac * price,
        leverage=draw(st.floats(1.0, 125.0)),
        step=draw(st.sampled_from([0.001, 0.1, 1.0])),
        min_notional=draw(st.floats(0.0, 100.0)),
        open_risk=draw(st.floats(0.0, 1.5)) * heat,
        atr=None if atr_frac is None else atr_frac * price,
        trade_returns=draw(st.lists(st.floats(-0.5, 0.5), max_size=40)),
        scale=draw(st.sampled_from([0.5, 1.0])),
    )
    return cfg, request


@settings(max_examples=1500, deadline=None)
@given(case=sizing_cases())
def test_size_properties(case) -> None:
    cfg, r = case
    d = size(cfg, r)
    tol = 1 + 1e-9
    assert math.isfinite(d.qty)
    assert d.qty >= 0
    assert (d.refused is not None) == (d.qty == 0), d
    steps = d.qty / r.step  # whole steps, to float precision (a 1e10-step quantity carries ~1e-6 of noise)
    assert abs(steps - round(steps)) < max(1e-6, 1e-14 * steps)
    notional = d.qty * r.price
    assert notional <= cfg.max_position_pct * r.equity * tol
    assert notional <= cfg.max_leverage * r.equity * tol
    if d.qty > 0:
        entry_risk = d.qty * r.stop_distance if r.stop_distance else notional / r.leverage
        assert entry_risk + r.open_risk <= cfg.max_portfolio_heat * r.equity * tol + 1e-9 * r.open_risk
        assert notional >= r.min_notional
        if d.method_qty:  # never more than the method asked for (scaled)
            assert d.qty <= d.method_qty * r.scale * tol


# -- the gate: correlation -------------------------------------------------------------------------

MINUTE = 60_000_000_000


def series(returns, ts0: int = 0, start: float = 100.0, ts_step: int = MINUTE) -> SimpleNamespace:
    """A fake instrument state whose closes have exactly these bar returns (i at the last bar)."""
    closes = [start]
    for r in returns:
        closes.append(closes[-1] * (1 + r))
    ts = [ts0 + k * ts_step for k in range(len(closes))]
    return SimpleNamespace(ts=ts, closes=closes, i=len(closes) - 1)


RETS = [0.01, -0.02, 0.015, 0.003, -0.007, 0.02, -0.011, 0.004, 0.009, -0.013, 0.006, -0.001, 0.012, -0.018]
ORTHO = [0.01 * s for s in (1, -1, 1, -1) * 5]  # corr(ORTHO, BLOCKS) = 0 exactly
BLOCKS = [0.01 * s for s in (1, 1, -1, -1) * 5]


def test_correlation_perfect_and_opposite() -> None:
    a = series(RETS)
    assert _correlation(a, series(RETS, start=7.0), 500) == pytest.approx(1.0, abs=1e-9)
    assert _correlation(a, series([-r for r in RETS]), 500) == pytest.approx(-1.0, abs=1e-9)
    assert _correlation(series(ORTHO), series(BLOCKS), 500) == pytest.approx(0.0, abs=1e-9)
    rho = _correlation(a, series(RETS[::-1]), 500)
    assert rho == pytest.approx(float(np.corrcoef(RETS, RETS[::-1])[0, 1]), rel=1e-9)


def test_correlation_needs_ten_common_closes() -> None:
    a = series(RETS)  # 15 closes at minutes 0..14
    assert _correlation(a, series(RETS[:8], ts0=6 * MINUTE), 500) is None  # 9 common closes
    assert _correlation(a, series(RETS[:9], ts0=5 * MINUTE), 500) is not None  # 10
    assert _correlation(a, series(RETS, ts0=100 * MINUTE), 500) is None  # no overlap
    assert _correlation(series(RETS[:1]), series(RETS[:1]), 500) is None


def test_correlation_zero_variance_is_none() -> None:
    assert _correlation(series(RETS), series([0.0] * len(RETS)), 500) is None
    assert _correlation(series([0.0] * len(RETS)), series(RETS), 500) is None


def test_correlation_aligns_on_common_timestamps() -> None:
    """Returns are taken over the common closes up to each state's bar i."""
    a = series(RETS + RETS)  # 29 closes at minutes 0..28
    b = SimpleNamespace(ts=a.ts[::2], closes=[c * 3 for c in a.closes[::2]], i=14)  # even minutes only
    assert _correlation(a, b, 500) == pytest.approx(1.0, abs=1e-9)  # 15 common closes
    b.closes[10:] = [1.0] * 5  # closes after b's bar i are not seen yet
    b.i = 9
    assert _correlation(a, b, 500) == pytest.approx(1.0, abs=1e-9)
    assert _correlation(b, a, 500) == pytest.approx(1.0, abs=1e-9)
    b.i = 8
    assert _correlation(a, b, 500) is None  # 9 common closes
    assert _correlation(b, a, 500) is None


def test_correlation_uses_only_the_last_bars() -> None:
    """Only closes i - bars .. i count: a divergent past outside the window is ignored."""
    head = [0.02, -0.03, 0.01, 0.04, -0.02, 0.03, -0.01, 0.02, -0.04, 0.01]
    a = series(head + RETS)
    b = series([-r for r in head] + RETS)
    assert _correlation(a, b, len(RETS)) == pytest.approx(1.0, abs=1e-9)
    assert _correlation(a, b, len(RETS) + len(head)) < 0.9


# -- the gate: correlated exposure and open risk ---------------------------------------------------


def pos(symbol: str, returns, signed_qty: float, avg_px: float = 100.0, leverage: float = 10.0) -> SimpleNamespace:
    s = series(returns)
    s.symbol, s.instrument_id = symbol, SimpleNamespace(value=f"{symbol}-PERP.BINANCE")
    s.signed_qty, s.avg_px, s.leverage = signed_qty, avg_px, leverage
    s.close = s.closes[-1]
    return s


def gate(states, resting: dict | None = None, threshold: float = 0.7) -> RiskGate:
    resting = resting or {}
    account = SimpleNamespace(books=lambda: states, resting=lambda iid: resting.get(iid, {}))
    risk = RiskConfig(portfolio_level=PortfolioRiskConfig(correlation_threshold=threshold, correlation_bars=500))
    return RiskGate(None, risk, account, events=None, min_notional={}, starting_balance=100_000.0)


def test_correlated_exposure() -> None:
    new = pos("NEW", ORTHO, 0.0)
    same = pos("SAME", ORTHO, 2.0)  # long, rho +1
    short_opp = pos("SHORTOPP", [-r for r in ORTHO], -3.0)  # short, rho -1: moves with a long
    long_opp = pos("LONGOPP", [-r for r in ORTHO], 4.0)  # long, rho -1: a hedge of a long
    uncorr = pos("UNCORR", BLOCKS, 5.0)  # rho 0
    flat = pos("FLAT", ORTHO, 0.0)  # no position
    g = gate([new, same, short_opp, long_opp, uncorr, flat])
    total, members = g.correlated_exposure(new, 1, 1_000.0)
    assert members == ["SAME", "SHORTOPP"]
    assert total == pytest.approx(1_000.0 + 2.0 * same.close + 3.0 * short_opp.close, rel=1e-12)
    total, members = g.correlated_exposure(new, -1, 1_000.0)  # a new short moves with the long hedge
    assert members == ["LONGOPP"]
    assert total == pytest.approx(1_000.0 + 4.0 * long_opp.close, rel=1e-12)


def test_correlated_exposure_threshold() -> None:
    new = pos("NEW", RETS, 0.0)
    noisy = [r + 0.01 * s for r, s in zip(RETS, ((1, -1, -1, 1) * 4)[: len(RETS)], strict=True)]
    other = pos("OTHER", noisy, 1.0)
    rho = _correlation(new, other, 500)
    assert 0.1 < rho < 0.95
    assert gate([new, other], threshold=rho - 1e-6).correlated_exposure(new, 1, 0.0)[1] == ["OTHER"]
    assert gate([new, other], threshold=rho + 1e-6).correlated_exposure(new, 1, 0.0)[1] == []
    assert gate([new, other], threshold=rho).correlated_exposure(new, 1, 0.0)[1] == ["OTHER"]  # >= the threshold


def test_open_risk() -> None:
    long = pos("LONG", RETS, 2.0, avg_px=100.0)
    short = pos("SHORT", RETS, -3.0, avg_px=50.0)
    naked = pos("NAKED", RETS, 1.0, avg_px=200.0, leverage=4.0)
    in_profit = pos("PROFIT", RETS, 10.0, avg_px=100.0)
    flat = pos("FLAT", RETS, 0.0, avg_px=100.0)
    resting = {
        # worst sell stop 95: 2 x 5 (the take-profit limit and the buy stop do not protect a long)
        "LONG-PERP.BINANCE": {
            "a": ("stop", -1, 97.0),
            "b": ("stop", -1, 95.0),
            "tp": ("limit", -1, 120.0),
            "entry": ("stop", 1, 80.0),
        },
        "SHORT-PERP.BINANCE": {"a": ("stop", 1, 52.0), "b": ("stop", 1, 53.0)},  # worst buy stop 53: 3 x 3
        "NAKED-PERP.BINANCE": {"tp": ("limit", -1, 250.0)},  # no stop: margin 200 / 4 = 50
        "PROFIT-PERP.BINANCE": {"trail": ("stop", -1, 105.0)},  # stop above entry: no risk
        "FLAT-PERP.BINANCE": {"a": ("stop", -1, 1.0)},
    }
    g = gate([long, short, naked, in_profit, flat], resting)
    assert g.open_risk() == pytest.approx(10.0 + 9.0 + 50.0, rel=1e-12)
    assert g.open_risk(exclude=short) == pytest.approx(60.0, rel=1e-12)
    assert g.open_risk(exclude=naked) == pytest.approx(19.0, rel=1e-12)
