"""The cost ledger: hand-built fills in, trades and their cost split out."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibe_quant.backtest.ledger import Trade, build_trades, cost_summary
from vibe_quant.backtest.recorder import FillRecord, FundingRecord, LiquidationRecord

MIN = 60 * 10**9
T0 = 1_704_067_200 * 10**9  # 2024-01-01 00:00 UTC


def fill(
    i: int,
    side: int,
    qty: float,
    price: float,
    *,
    ref: float | None = None,
    fee: float = 0.0,
    reason: str = "signal",
    instrument: str = "FILUSDT",
    slip_est: float = 0.0,
) -> FillRecord:
    """A fill reported at minute `i` (economically 1 ns after the minute before)."""
    return FillRecord(
        ts_ns=T0 + i * MIN,
        economic_ns=T0 + (i - 1) * MIN + 1,
        instrument=instrument,
        order_id=f"O-{i}",
        side=side,
        qty=qty,
        price=price,
        fee=fee,
        liquidity="TAKER",
        order_type="MARKET",
        reason=reason,
        reference_price=price if ref is None else ref,
        slippage_estimated=slip_est,
        position_id=f"{instrument}-P",
    )


def check_split(t: Trade) -> None:
    assert t.net_pnl == pytest.approx(t.gross_pnl - t.entry_fee - t.exit_fee - t.funding_fees - t.slippage_cost)


# -- round trips -----------------------------------------------------------------------------------


def test_simple_long_round_trip() -> None:
    fills = [
        fill(1, +1, 100.0, 10.02, ref=10.00, fee=0.50, reason="entry"),
        fill(5, -1, 100.0, 10.48, ref=10.50, fee=0.52, reason="take_profit"),
    ]
    (t,) = build_trades(fills, [], [], {"FILUSDT": 5.0})
    assert (t.symbol, t.direction, t.leverage, t.quantity, t.fills) == ("FILUSDT", "LONG", 5.0, 100.0, 2)
    assert (t.entry_ns, t.exit_ns) == (T0 + 1, T0 + 4 * MIN + 1)  # economic times
    assert t.entry_price == pytest.approx(10.02)
    assert t.exit_price == pytest.approx(10.48)
    assert t.gross_pnl == pytest.approx(50.0)  # 100 * (10.50 - 10.00) at the reference prices
    assert t.slippage_cost == pytest.approx(4.0)  # 100 * 0.02 paid on entry + 100 * 0.02 on exit
    assert (t.entry_fee, t.exit_fee, t.funding_fees) == (pytest.approx(0.50), pytest.approx(0.52), 0.0)
    assert t.net_pnl == pytest.approx(44.98)  # = cash 1048 - 1002 - fees 1.02
    assert t.roi_percent == pytest.approx(44.98 / (100 * 10.02 / 5) * 100)
    assert t.exit_reason == "take_profit"
    assert t.is_closed


def test_simple_short_round_trip_with_default_leverage() -> None:
    fills = [
        fill(1, -1, 2.0, 100.0, ref=100.1, fee=0.1),
        fill(2, +1, 2.0, 90.0, ref=89.9, fee=0.09, reason="stop_loss"),
    ]
    (t,) = build_trades(fills, [], [], {})
    assert (t.direction, t.leverage) == ("SHORT", 1.0)
    assert t.gross_pnl == pytest.approx(2 * (100.1 - 89.9))
    assert t.slippage_cost == pytest.approx(-2 * (100.0 - 100.1) + 2 * (90.0 - 89.9))
    assert t.net_pnl == pytest.approx(2 * (100.0 - 90.0) - 0.19)
    assert t.roi_percent == pytest.approx(t.net_pnl / 200.0 * 100)
    assert t.exit_reason == "stop_loss"


def test_partial_exits_and_adds() -> None:
    fills = [
        fill(1, -1, 10.0, 100.0, reason="entry"),
        fill(2, +1, 5.0, 98.0, reason="take_profit"),  # partial exit: 5 left
        fill(3, -1, 20.0, 106.0, reason="entry"),  # add: 25 short
        fill(4, +1, 25.0, 97.0, reason="signal"),
    ]
    (t,) = build_trades(fills, [], [], {"FILUSDT": 2.0})
    assert t.direction == "SHORT"
    assert t.entry_price == pytest.approx((10 * 100 + 20 * 106) / 30)  # 104
    assert t.exit_price == pytest.approx((5 * 98 + 25 * 97) / 30)  # 97.1666...
    assert t.quantity == 25.0  # the largest open size, not the 30 sold in total
    assert t.gross_pnl == pytest.approx(205.0)  # 1000 - 490 + 2120 - 2425
    assert t.slippage_cost == 0.0
    assert (t.entry_ns, t.exit_ns, t.exit_reason, t.fills) == (T0 + 1, T0 + 3 * MIN + 1, "signal", 4)
    assert t.roi_percent == pytest.approx(205.0 / (25 * 104 / 2.0) * 100)


def test_reversal_inside_one_fill_is_split_with_fee_pro_rata() -> None:
    fills = [
        fill(1, +1, 100.0, 10.0, fee=0.5, reason="entry"),
        fill(2, -1, 150.0, 11.0, fee=0.825, reason="signal"),  # closes 100, opens 50 short
        fill(3, +1, 50.0, 10.5, fee=0.2625, reason="take_profit"),
    ]
    first, second = build_trades(fills, [], [], {"FILUSDT": 1.0})
    assert (first.direction, first.quantity, first.fills) == ("LONG", 100.0, 2)
    assert first.exit_fee == pytest.approx(0.825 * 100 / 150)
    assert first.gross_pnl == pytest.approx(100.0)
    assert first.net_pnl == pytest.approx(100.0 - 0.5 - 0.55)
    assert (second.direction, second.quantity, second.entry_price) == ("SHORT", 50.0, 11.0)
    assert second.entry_fee == pytest.approx(0.825 * 50 / 150)
    assert second.entry_ns == first.exit_ns == T0 + MIN + 1
    assert second.gross_pnl == pytest.approx(25.0)
    assert second.net_pnl == pytest.approx(25.0 - 0.275 - 0.2625)
    assert first.entry_fee + first.exit_fee + second.entry_fee + second.exit_fee == pytest.approx(0.5 + 0.825 + 0.2625)


def test_open_trade_at_the_end_has_no_exit_fields() -> None:
    fills = [
        fill(1, +1, 3.0, 50.0, fee=0.075, reason="entry"),
        fill(2, -1, 1.0, 55.0, fee=0.0275, reason="take_profit"),  # partial exit, still open
    ]
    (t,) = build_trades(fills, [], [], {"FILUSDT": 3.0})
    assert not t.is_closed
    assert (t.exit_ns, t.exit_price, t.gross_pnl, t.net_pnl, t.roi_percent, t.exit_reason) == (None,) * 6
    assert (t.direction, t.entry_price, t.quantity, t.entry_ns) == ("LONG", 50.0, 3.0, T0 + 1)
    assert (t.entry_fee, t.exit_fee) == (pytest.approx(0.075), pytest.approx(0.0275))


@pytest.mark.parametrize(
    ("opens", "closes"),
    [
        ([0.1, 0.2], [0.3]),
        ([0.3], [0.1, 0.2]),
        ([0.1, 0.1, 0.1], [0.3]),
        ([15184.5, 12853.6], [28038.1]),  # the real case: 15184.5 + 12853.6 = 28038.100000000002
        ([28038.1], [15184.5, 12853.6]),
        ([0.7], [0.1] * 7),
    ],
)
@pytest.mark.parametrize("side", [1, -1])
def test_float_quantities_that_sum_to_flat_close_the_trade(opens, closes, side) -> None:
    fills, i = [], 0
    for q in opens:
        i += 1
        fills.append(fill(i, side, q, 2.0))
    for q in closes:
        i += 1
        fills.append(fill(i, -side, q, 2.5, reason="stop_loss"))
    trades = build_trades(fills, [], [], {"FILUSDT": 1.0})
    assert len(trades) == 1
    (t,) = trades
    assert t.is_closed
    assert t.quantity == pytest.approx(sum(opens))
    assert t.gross_pnl == pytest.approx(side * 0.5 * sum(opens))
    assert t.fills == len(opens) + len(closes)


def test_multiple_instruments_interleaved() -> None:
    fills = [
        fill(1, +1, 0.5, 40_000.0, instrument="BTCUSDT", fee=10.0),
        fill(2, -1, 100.0, 5.0, instrument="FILUSDT", fee=0.25),
        fill(3, +1, 0.5, 41_000.0, instrument="BTCUSDT", fee=10.25),  # BTC add: 1.0 long
        fill(4, -1, 1.0, 42_000.0, instrument="BTCUSDT", fee=21.0),  # BTC flat
        fill(5, -1, 50.0, 5.2, instrument="FILUSDT", fee=0.13),  # FIL add: 150 short
        fill(6, +1, 150.0, 4.8, instrument="FILUSDT", fee=0.36),  # FIL flat
        fill(7, +1, 0.1, 43_000.0, instrument="BTCUSDT", fee=2.15),  # BTC again, left open
    ]
    btc, fil, btc2 = build_trades(fills, [], [], {"BTCUSDT": 10.0, "FILUSDT": 4.0})
    assert (btc.symbol, btc.direction, btc.quantity, btc.fills) == ("BTCUSDT", "LONG", 1.0, 3)
    assert btc.entry_price == pytest.approx(40_500.0)
    assert btc.gross_pnl == pytest.approx(1_500.0)
    assert btc.net_pnl == pytest.approx(1_500.0 - 41.25)
    assert btc.roi_percent == pytest.approx(1_458.75 / (1.0 * 40_500.0 / 10.0) * 100)
    assert (fil.symbol, fil.direction, fil.quantity, fil.fills) == ("FILUSDT", "SHORT", 150.0, 3)
    assert fil.entry_price == pytest.approx((500.0 + 260.0) / 150)
    assert fil.gross_pnl == pytest.approx(500.0 + 260.0 - 720.0)
    assert fil.net_pnl == pytest.approx(40.0 - 0.74)
    assert (btc2.symbol, btc2.is_closed, btc2.entry_price) == ("BTCUSDT", False, 43_000.0)


# -- funding and liquidations ----------------------------------------------------------------------


def test_funding_is_attributed_by_instrument_and_round_trip_number() -> None:
    fills = [
        fill(1, +1, 10.0, 10.0, fee=0.05),  # FIL trade 1
        fill(2, +1, 1.0, 100.0, instrument="BTCUSDT"),  # BTC trade 1
        fill(3, -1, 10.0, 11.0, fee=0.055),
        fill(4, -1, 10.0, 11.0),  # FIL trade 2 (short)
        fill(5, -1, 1.0, 110.0, instrument="BTCUSDT"),
        fill(6, +1, 10.0, 10.0),
        fill(7, +1, 4.0, 10.0),  # FIL trade 3, open
    ]
    funding = [
        FundingRecord(T0 + 2 * MIN, "FILUSDT", 1, 10.0, 10.5, 0.0001, 0.0105),
        FundingRecord(T0 + 2 * MIN, "BTCUSDT", 1, 1.0, 105.0, 0.0001, 0.0105),
        FundingRecord(T0 + 4 * MIN, "FILUSDT", 2, -10.0, 11.0, 0.0001, -0.011),  # short receives
        FundingRecord(T0 + 5 * MIN, "FILUSDT", 2, -10.0, 10.5, 0.0002, -0.021),
        FundingRecord(T0 + 7 * MIN, "FILUSDT", 3, 4.0, 10.0, 0.0001, 0.004),
    ]
    fil1, btc1, fil2, fil3 = build_trades(fills, funding, [], {"FILUSDT": 2.0, "BTCUSDT": 1.0})
    assert (fil1.symbol, btc1.symbol, fil2.symbol, fil3.symbol) == ("FILUSDT", "BTCUSDT", "FILUSDT", "FILUSDT")
    assert fil1.funding_fees == pytest.approx(0.0105)
    assert fil1.net_pnl == pytest.approx(10.0 - 0.105 - 0.0105)
    assert fil1.roi_percent == pytest.approx(fil1.net_pnl / (10 * 10.0 / 2.0) * 100)
    assert btc1.funding_fees == pytest.approx(0.0105)
    assert btc1.net_pnl == pytest.approx(10.0 - 0.0105)
    assert fil2.funding_fees == pytest.approx(-0.032)
    assert fil2.net_pnl == pytest.approx(10.0 + 0.032)
    assert fil3.funding_fees == pytest.approx(0.004)
    assert fil3.net_pnl is None
    for t in (fil1, btc1, fil2):
        check_split(t)


def test_liquidation_clearance_fee_is_part_of_the_exit_fee() -> None:
    fills = [
        fill(1, +1, 1000.0, 10.0, fee=5.0, reason="entry"),
        fill(9, -1, 1000.0, 9.15, ref=9.15, fee=4.575, reason="liquidation"),
        fill(10, +1, 100.0, 9.0, fee=0.45, reason="entry"),
        fill(12, -1, 100.0, 8.0, fee=0.4, reason="stop_loss"),  # same ts as a (foreign) liquidation record
    ]
    liquidations = [
        LiquidationRecord(T0 + 9 * MIN, "FILUSDT", "FILUSDT-P", 1, 1000.0, 10.0, 9.15, 1000.0, 1.23),
        LiquidationRecord(T0 + 12 * MIN, "FILUSDT", "FILUSDT-P", 1, 100.0, 9.0, 8.0, 90.0, 7.0),
    ]
    liq, normal = build_trades(fills, [], liquidations, {"FILUSDT": 10.0})
    assert liq.exit_reason == "liquidation"
    assert liq.exit_fee == pytest.approx(4.575 + 1.23)
    assert liq.net_pnl == pytest.approx(-850.0 - 5.0 - 4.575 - 1.23)
    assert liq.roi_percent == pytest.approx(liq.net_pnl / 1000.0 * 100)
    check_split(liq)
    assert normal.exit_fee == pytest.approx(0.4)  # not a liquidation fill: no clearance fee
    summary = cost_summary([liq, normal], fills, [], liquidations)
    assert summary["total_fees"] == pytest.approx(5.0 + 4.575 + 0.45 + 0.4 + 1.23 + 7.0)
    assert summary["liquidations"] == 2


def test_cost_summary_hand_case() -> None:
    fills = [
        fill(1, +1, 10.0, 10.1, ref=10.0, fee=0.05, slip_est=0.05),
        fill(2, -1, 10.0, 10.9, ref=11.0, fee=0.055, slip_est=0.08),
        fill(3, -1, 5.0, 11.0, ref=11.0, fee=0.03, slip_est=0.02),  # open short
    ]
    funding = [FundingRecord(T0 + 2 * MIN, "FILUSDT", 1, 10.0, 10.5, 0.001, 0.105)]
    trades = build_trades(fills, funding, [], {"FILUSDT": 1.0})
    s = cost_summary(trades, fills, funding, [])
    assert s == {
        "gross_pnl": pytest.approx(10.0),  # closed trade only
        "total_fees": pytest.approx(0.135),
        "total_funding": pytest.approx(0.105),
        "total_slippage": pytest.approx(1.0 + 1.0 + 0.0),
        "total_slippage_estimated": pytest.approx(0.5 + 0.8 + 0.1),
        "liquidations": 0,
        "fills": 3,
    }


# -- invariants over random fill sequences ---------------------------------------------------------


@st.composite
def fill_sequences(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    fills = []
    for i in range(1, n + 1):
        price = draw(st.floats(min_value=0.5, max_value=2_000.0))
        fills.append(
            fill(
                i,
                draw(st.sampled_from([1, -1])),
                draw(st.integers(min_value=1, max_value=300)) / 10,  # quantities on a 0.1 grid
                price,
                ref=price * (1 + draw(st.floats(min_value=-0.01, max_value=0.01))),
                fee=draw(st.floats(min_value=0.0, max_value=5.0)),
                instrument=draw(st.sampled_from(["FILUSDT", "BTCUSDT"])),
                slip_est=draw(st.floats(min_value=0.0, max_value=0.5)),
            )
        )
    return fills


def reference_ledger(fills: list[FillRecord]) -> dict[str, dict]:
    """Walk the fills in integer tenths; per symbol: closed round trips and their cash flows."""
    out: dict[str, dict] = {}
    for f in fills:
        s = out.setdefault(f.instrument, {"pos": 0, "cash": 0.0, "ref": 0.0, "closed_cash": 0.0,
                                          "closed_ref": 0.0, "closed": 0, "opened": 0})  # fmt: skip
        units = round(f.qty * 10)
        while units:
            if s["pos"] == 0:
                s["opened"] += 1
            same = s["pos"] == 0 or (s["pos"] > 0) == (f.side > 0)
            part = units if same else min(units, abs(s["pos"]))
            s["cash"] -= f.side * part / 10 * f.price
            s["ref"] -= f.side * part / 10 * f.reference_price
            s["pos"] += f.side * part
            units -= part
            if s["pos"] == 0:
                s["closed"] += 1
                s["closed_cash"] += s["cash"]
                s["closed_ref"] += s["ref"]
                s["cash"] = s["ref"] = 0.0
    return out


@settings(max_examples=250, deadline=None)
@given(fills=fill_sequences(), data=st.data())
def test_ledger_invariants_over_random_fills(fills, data) -> None:
    ref = reference_ledger(fills)
    funding = [
        FundingRecord(T0, sym, seq, 1.0, 1.0, 0.0001, data.draw(st.floats(min_value=-3.0, max_value=3.0)))
        for sym in sorted(ref)
        for seq in range(1, ref[sym]["opened"] + 1)
        if data.draw(st.booleans())
    ]
    trades = build_trades(fills, funding, [], {"FILUSDT": 3.0, "BTCUSDT": 20.0})
    closed = [t for t in trades if t.is_closed]
    assert len(trades) == sum(s["opened"] for s in ref.values())
    assert len(closed) == sum(s["closed"] for s in ref.values())
    for t in closed:
        expected = t.gross_pnl - t.entry_fee - t.exit_fee - t.funding_fees - t.slippage_cost
        assert t.net_pnl == pytest.approx(expected, rel=1e-9, abs=1e-9 * t.quantity * t.entry_price)
        assert t.entry_fee >= 0
        assert t.exit_fee >= 0
        assert t.quantity > 0
    for t in trades:
        assert t.entry_fee >= 0
        assert t.exit_fee >= 0
    scale = sum(f.qty * f.price for f in fills)
    for sym, s in ref.items():
        mine = [t for t in closed if t.symbol == sym]
        cash = sum(t.gross_pnl - t.slippage_cost for t in mine)
        assert cash == pytest.approx(s["closed_cash"], rel=1e-9, abs=1e-9 * scale)
        assert sum(t.gross_pnl for t in mine) == pytest.approx(s["closed_ref"], rel=1e-9, abs=1e-9 * scale)
    # fees are split, never created or lost
    assert sum(t.entry_fee + t.exit_fee for t in trades) == pytest.approx(sum(f.fee for f in fills), rel=1e-9)
    assert sum(t.funding_fees for t in trades) == pytest.approx(sum(r.amount for r in funding), abs=1e-9)

    summary = cost_summary(trades, fills, funding, [])
    total_fees = total_slip = total_est = total_funding = 0.0
    for f in fills:
        total_fees += f.fee
        total_slip += f.side * f.qty * (f.price - f.reference_price)
        total_est += f.qty * f.slippage_estimated
    for r in funding:
        total_funding += r.amount
    assert summary["total_fees"] == pytest.approx(total_fees, rel=1e-9)
    assert summary["total_slippage"] == pytest.approx(total_slip, rel=1e-9, abs=1e-9 * scale)
    assert sum(t.slippage_cost for t in trades) == pytest.approx(total_slip, rel=1e-9, abs=1e-9 * scale)
    assert summary["total_slippage_estimated"] == pytest.approx(total_est, rel=1e-9)
    assert summary["total_funding"] == pytest.approx(total_funding, abs=1e-12)
    assert summary["gross_pnl"] == pytest.approx(sum(t.gross_pnl for t in closed), rel=1e-12)
    assert (summary["fills"], summary["liquidations"]) == (len(fills), 0)
    assert not any(math.isnan(t.net_pnl) for t in closed)
