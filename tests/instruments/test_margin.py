"""Isolated-margin arithmetic against the real "btc" (BTCUSDT) and "alt" (FILUSDT) schedules.

btc: [0, 50k) 125x 0.4%, [50k, 500k) 100x 0.5% (cum 50), [500k, 8M) 50x 1% (cum 2,550), ...,
[300M, 500M) 1x 50%. alt: [0, 5k) 50x 1%, [5k, 25k) 20x 2.5% (cum 75), [25k, 100k) 10x 5%
(cum 700), [100k, 250k) 5x 10% (cum 5,700), ..., [3M, 5M) 1x 50%.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vibe_quant.instruments.margin import (
    Bracket,
    bracket_for,
    brackets_from_spec,
    initial_margin,
    liquidation_price,
    maintenance_margin,
    max_leverage_for,
    max_notional_at,
)
from vibe_quant.instruments.specs import InstrumentSpecs

_SPECS = InstrumentSpecs()
BTC = brackets_from_spec(_SPECS.get("BTCUSDT"))
ALT = brackets_from_spec(_SPECS.get("FILUSDT"))
SCHEDULES = {"btc": BTC, "alt": ALT}


def test_real_schedules_are_the_documented_ones() -> None:
    assert _SPECS.get("BTCUSDT").margin_schedule == "btc"
    assert _SPECS.get("FILUSDT").margin_schedule == "alt"
    assert BTC[0] == Bracket(0.0, 50_000.0, 125, 0.004, 0.0)
    assert BTC[1] == Bracket(50_000.0, 500_000.0, 100, 0.005, 50.0)
    assert ALT[1] == Bracket(5_000.0, 25_000.0, 20, 0.025, 75.0)
    assert ALT[2] == Bracket(25_000.0, 100_000.0, 10, 0.05, 700.0)


# -- (a) + (b): properties of the liquidation price ------------------------------------------------


@st.composite
def positions(draw):
    """An isolated position opened at an allowed leverage with wallet = initial margin."""
    name = draw(st.sampled_from(sorted(SCHEDULES)))
    brackets = SCHEDULES[name]
    side = draw(st.sampled_from([1, -1]))
    entry = draw(st.floats(min_value=0.01, max_value=1e5, exclude_min=True, exclude_max=True))
    notional = draw(st.floats(min_value=1e-3, max_value=brackets[-1].cap))
    qty = notional / entry
    assume(qty > 0)
    notional = qty * entry
    # The highest leverage any bracket reaching this notional allows; any leverage in [1, top] is accepted.
    top = max(b.max_leverage for b in brackets if b.cap >= notional) if notional <= brackets[-1].cap else 0
    assume(top >= 1)
    leverage = 1.0 + draw(st.floats(min_value=0.0, max_value=1.0)) * (top - 1)
    assume(max_notional_at(leverage, brackets) >= notional)
    return name, side, qty, entry, notional / leverage


@settings(max_examples=400, deadline=None)
@given(positions())
def test_liquidation_price_lies_on_the_losing_side_of_entry(pos) -> None:
    name, side, qty, entry, wallet = pos
    lp = liquidation_price(side, qty, entry, wallet, SCHEDULES[name])
    if side > 0:
        assert 0.0 <= lp < entry
    else:
        assert lp > entry


@settings(max_examples=400, deadline=None)
@given(positions())
def test_margin_balance_equals_maintenance_margin_at_the_liquidation_price(pos) -> None:
    name, side, qty, entry, wallet = pos
    brackets = SCHEDULES[name]
    lp = liquidation_price(side, qty, entry, wallet, brackets)
    assume(lp > 0)
    balance = wallet + side * qty * (lp - entry)
    # Near 1x the balance is a difference of two ~notional-sized terms; allow their rounding too.
    assert balance == pytest.approx(maintenance_margin(qty * lp, brackets), rel=1e-6, abs=1e-12 * qty * entry)


# -- (c): closed form in the first bracket ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(SCHEDULES)),
    entry=st.floats(min_value=0.01, max_value=1e5, exclude_min=True, exclude_max=True),
    u=st.floats(min_value=0.0, max_value=1.0),
    fraction=st.floats(min_value=1e-6, max_value=0.99),
)
def test_first_bracket_long_matches_closed_form_and_seed_001_first_order(name, entry, u, fraction) -> None:
    brackets = SCHEDULES[name]
    first = brackets[0]
    assert first.cum == 0.0
    leverage = 1.0 + u * (first.max_leverage - 1)
    qty = fraction * first.cap / entry  # notional at entry (and so at LP < entry) stays in bracket 0
    mmr = first.mmr
    lp = liquidation_price(1, qty, entry, qty * entry / leverage, brackets)
    assert lp == pytest.approx(entry * (1 - 1 / leverage) / (1 - mmr), rel=1e-12, abs=1e-12 * entry)
    seed_001 = entry * (1 - 1 / leverage + mmr)
    assert abs(lp - seed_001) <= entry * mmr / leverage * 1.01


@pytest.mark.parametrize(("name", "leverage"), [("btc", 125), ("btc", 20), ("btc", 2), ("alt", 50), ("alt", 10)])
def test_first_bracket_closed_form_on_a_grid(name, leverage) -> None:
    brackets = SCHEDULES[name]
    mmr = brackets[0].mmr
    for entry, qty_fraction in itertools.product([0.02, 1.0, 97.3, 60_000.0], [0.01, 0.5, 0.99]):
        qty = qty_fraction * brackets[0].cap / entry
        lp = liquidation_price(1, qty, entry, qty * entry / leverage, brackets)
        assert lp == pytest.approx(entry * (1 - 1 / leverage) / (1 - mmr), rel=1e-12)
        assert abs(lp - entry * (1 - 1 / leverage + mmr)) <= entry * mmr / leverage * 1.01


# -- (d): hand-computed cases ----------------------------------------------------------------------


def test_filusdt_long_10x_hand_computed() -> None:
    # 1000 FIL @ 10, 10x: wallet 1,000. Bracket 0 would give LP 9.0909 (notional 9,091, outside
    # [0, 5k)); bracket 1 (mmr 2.5%, cum 75): LP = (1000 + 75 - 10000) / (25 - 1000) = 9.153846...
    lp = liquidation_price(1, 1000.0, 10.0, 1000.0, ALT)
    assert lp == pytest.approx(8925 / 975, rel=1e-12)
    assert lp == pytest.approx(9.153846153846, rel=1e-12)
    assert bracket_for(1000.0 * lp, ALT) == ALT[1]
    # margin balance 1000 - 1000 * 0.846154 = 153.846 = 9153.846 * 0.025 - 75
    assert 1000.0 + 1000.0 * (lp - 10.0) == pytest.approx(153.846153846, rel=1e-9)


def test_filusdt_short_10x_hand_computed() -> None:
    # Mirror: short 1000 FIL @ 10, 10x, wallet 1,000. Bracket 0: 11000 / 1010 = 10.89 (notional
    # 10,891, outside [0, 5k)); bracket 1: LP = (1000 + 75 + 10000) / (25 + 1000) = 10.804878...
    lp = liquidation_price(-1, 1000.0, 10.0, 1000.0, ALT)
    assert lp == pytest.approx(11075 / 1025, rel=1e-12)
    assert lp == pytest.approx(10.804878048780, rel=1e-12)
    # margin balance 1000 - 804.878 = 195.122 = 10804.878 * 0.025 - 75
    assert 1000.0 - 1000.0 * (lp - 10.0) == pytest.approx(195.12195122, rel=1e-9)
    assert maintenance_margin(1000.0 * lp, ALT) == pytest.approx(195.12195122, rel=1e-9)


def test_btcusdt_long_100x_lands_in_the_second_bracket() -> None:
    # 1 BTC @ 60,000, 100x: wallet 600. Bracket 0 gives 59,400 / 0.996 = 59,638.55 (>= 50k);
    # bracket 1 (mmr 0.5%, cum 50): (600 + 50 - 60000) / (0.005 - 1) = 59,648.24...
    lp = liquidation_price(1, 1.0, 60_000.0, 600.0, BTC)
    assert lp == pytest.approx(59_350 / 0.995, rel=1e-12)
    assert bracket_for(lp, BTC) == BTC[1]


@pytest.mark.parametrize(
    ("side", "qty", "entry", "wallet", "expected"),
    [
        # long 3 FIL @ 50,000 (2.76x), wallet 54,300: MM(100k) = 100k*5% - 700 = 100k*10% - 5700 = 4,300
        # and 54,300 + 3 * (100000/3 - 50000) = 4,300, so LP = 33,333.33 (notional exactly 100k).
        (1, 3.0, 50_000.0, 54_300.0, 100_000 / 3),
        # short 1 FIL @ 80,000 (3.29x), wallet 24,300: 24,300 - (100,000 - 80,000) = 4,300 = MM(100k).
        (-1, 1.0, 80_000.0, 24_300.0, 100_000.0),
    ],
)
def test_liquidation_notional_on_a_bracket_boundary(side, qty, entry, wallet, expected) -> None:
    assert max_notional_at(qty * entry / wallet, ALT) >= qty * entry  # an allowed position
    lp = liquidation_price(side, qty, entry, wallet, ALT)
    assert lp == pytest.approx(expected, rel=1e-9)


# -- (e): continuity of the maintenance margin -----------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_maintenance_margin_is_continuous_at_every_boundary(name) -> None:
    brackets = SCHEDULES[name]
    for prev, b in itertools.pairwise(brackets):
        assert b.floor == prev.cap
        assert b.floor * prev.mmr - prev.cum == pytest.approx(b.floor * b.mmr - b.cum, rel=1e-12)
        below = maintenance_margin(b.floor * (1 - 1e-12), brackets)
        at = maintenance_margin(b.floor, brackets)
        assert bracket_for(b.floor, brackets) == b
        assert at == pytest.approx(b.floor * b.mmr - b.cum, rel=1e-12)
        assert below == pytest.approx(at, rel=1e-9)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_maintenance_margin_is_increasing_and_below_initial_margin(name) -> None:
    brackets = SCHEDULES[name]
    grid = [b.floor + f * (b.cap - b.floor) for b in brackets for f in (0.0, 0.3, 0.999)]
    values = [maintenance_margin(n, brackets) for n in grid]
    assert all(v2 > v1 for v1, v2 in itertools.pairwise(values))
    for n, v in zip(grid[1:], values[1:], strict=True):
        assert v < initial_margin(n, max_leverage_for(n, brackets))
    assert maintenance_margin(-20_000.0, brackets) == maintenance_margin(20_000.0, brackets)


def test_maintenance_margin_hand_values() -> None:
    assert maintenance_margin(1_000.0, ALT) == pytest.approx(10.0)
    assert maintenance_margin(10_000.0, ALT) == pytest.approx(10_000 * 0.025 - 75)
    assert maintenance_margin(60_000.0, BTC) == pytest.approx(60_000 * 0.005 - 50)
    assert maintenance_margin(600_000_000.0, BTC) == pytest.approx(600e6 * 0.5 - BTC[-1].cum)  # beyond: last


# -- (f): leverage limits, unliquidatable and invalid positions ------------------------------------


@pytest.mark.parametrize(
    ("leverage", "expected"),
    [(125, 50_000.0), (100, 500_000.0), (20, 50_000_000.0), (1, 500_000_000.0), (126, 0.0), (101, 50_000.0)],
)
def test_max_notional_at_btc(leverage, expected) -> None:
    assert max_notional_at(leverage, BTC) == expected


def test_max_leverage_for_btc() -> None:
    assert max_leverage_for(49_999.0, BTC) == 125
    assert max_leverage_for(50_000.0, BTC) == 100
    assert max_leverage_for(-60_000.0, BTC) == 100
    assert max_leverage_for(1e12, BTC) == 1


def test_initial_margin() -> None:
    assert initial_margin(10_000.0, 20) == 500.0
    assert initial_margin(-10_000.0, 4.0) == 2_500.0
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="leverage must be > 0"):
            initial_margin(1.0, bad)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("notional", [10.0, 1_000.0, 4_000.0])
def test_one_x_long_with_low_mmr_cannot_be_liquidated(name, notional) -> None:
    entry = 123.4
    qty = notional / entry
    assert liquidation_price(1, qty, entry, qty * entry, SCHEDULES[name]) == 0.0
    # ... while a 1x short still has a liquidation price above entry
    assert liquidation_price(-1, qty, entry, qty * entry, SCHEDULES[name]) > entry


@pytest.mark.parametrize(("qty", "entry"), [(0.0, 10.0), (-1.0, 10.0), (1.0, 0.0), (1.0, -5.0)])
def test_invalid_qty_or_entry_raise(qty, entry) -> None:
    with pytest.raises(ValueError, match="qty > 0 and entry > 0"):
        liquidation_price(1, qty, entry, 100.0, ALT)
