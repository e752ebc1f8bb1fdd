"""Execution rules as scenario tables: hand-drawn bars in, exact trades and costs out.

FILUSDT spec: tick 0.001, taker 0.0005, maker 0.0002; "alt" brackets: [0, 5k) 50x mmr 1%,
[5k, 25k) 20x 2.5% (cum 75), [25k, 100k) 10x 5% (cum 700).
"""

from __future__ import annotations

import math

import pytest

from tests.backtest.scenario import MIN, T0, flat, run

TAKER, MAKER = 0.0005, 0.0002


def only(items):
    assert len(items) == 1, items
    return items[0]


# -- fills ----------------------------------------------------------------------------------------


def test_market_entry_fills_at_the_next_bar_open_not_the_signal_close() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.5, 10.6, 10.4, 10.55, 1000), (10.7, 10.8, 10.6, 10.75, 1000)]
    r = run(rows, {0: [["go", 1, 100.0]]})
    fill = only(r.recorder.fills)
    assert fill.price == 10.5  # bar 1's open; the signal bar closed at 10.0
    assert fill.reference_price == 10.5
    assert fill.ts_ns == T0 + 2 * MIN  # reported when the exchange processed bar 1
    assert fill.economic_ns == T0 + 1 * MIN + 1  # bar 1's open + the 1 ns structural latency
    assert fill.fee == pytest.approx(100 * 10.5 * TAKER)
    assert fill.liquidity == "TAKER"


def test_reversal_is_close_then_open_two_trades() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.2, 9.9, 10.1, 1000), (10.1, 10.1, 10.1, 10.1, 1000),
            (10.3, 10.3, 10.3, 10.3, 1000), (10.3, 10.3, 10.3, 10.3, 1000)]  # fmt: skip
    r = run(rows, {0: [["go", 1, 100.0]], 2: [["go", -1, 50.0]]})
    assert [(f.side, f.qty, f.price, f.reason) for f in r.recorder.fills] == [
        (1, 100.0, 10.0, "entry"), (-1, 100.0, 10.3, "signal"), (-1, 50.0, 10.3, "entry"),
    ]  # fmt: skip
    first, second = r.trades
    assert (first.direction, first.exit_reason, first.gross_pnl) == ("LONG", "signal", pytest.approx(30.0))
    assert (second.direction, second.is_closed, second.quantity) == ("SHORT", False, 50.0)


def test_validation_slippage_is_spread_impact_and_latency() -> None:
    # 21 bars alternating 10.0 / 10.1 closes: 20 changes of +-0.1, std (ddof 1) = 0.1 * sqrt(20/19).
    rows = [(10.0, 10.1, 10.0, 10.0 if i % 2 == 0 else 10.1, 1000.0) for i in range(21)]
    rows += [(10.2, 10.2, 10.2, 10.2, 1000.0), (10.2, 10.2, 10.2, 10.2, 1000.0)]
    r = run(rows, {20: [["go", 1, 250.0]]}, mode="validation", latency="retail")
    fill = only(r.recorder.fills)
    sigma = 0.1 * math.sqrt(20 / 19)
    half_spread = 0.001 / 2
    impact = 0.1 * sigma * math.sqrt(250 / 1000)
    latency = sigma * math.sqrt(0.3 / 60) * math.sqrt(2 / math.pi)  # retail: 200 ms + 100 ms insert
    expected = half_spread + impact + latency
    assert fill.slippage_estimated == pytest.approx(expected)
    assert fill.price == pytest.approx(math.ceil((10.2 + expected) / 0.001 - 1e-9) * 0.001)  # rounded against us
    assert fill.economic_ns == T0 + 21 * MIN + 300_000_000


def test_latency_longer_than_a_bar_shifts_the_fill_to_a_later_open() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.5, 10.5, 10.5, 10.5, 1000), (11.0, 11.0, 11.0, 11.0, 1000),
            (11.5, 11.5, 11.5, 11.5, 1000)]  # fmt: skip
    quick = run(rows, {0: [["go", 1, 10.0]]}, latency="co_located")
    slow = run(rows, {0: [["go", 1, 10.0]]}, latency="custom",
               latency_ns=(90 * 10**9, 0, 0, 0))  # fmt: skip
    assert only(quick.recorder.fills).price == 10.5
    assert only(slow.recorder.fills).price == 11.0  # arrives 90 s after bar 0's close: inside bar 2
    assert only(slow.recorder.fills).economic_ns == T0 + 2 * MIN + 30 * 10**9


def test_latency_preset_changes_a_validation_result() -> None:
    rows = [(10.0, 10.1, 9.9, 10.0 if i % 2 == 0 else 10.08, 1000.0) for i in range(25)] + flat(3, 10.05)
    script = {21: [["go", 1, 400.0]], 24: [["go", 0, 0]]}
    fast = run(rows, script, mode="validation", latency="co_located")
    slow = run(rows, script, mode="validation", latency="retail")
    assert slow.costs["total_slippage"] > fast.costs["total_slippage"] > 0
    assert slow.metrics["net_pnl"] < fast.metrics["net_pnl"]


# -- stops, targets, fees ----------------------------------------------------------------------------


@pytest.mark.parametrize("wide", [1, 3])  # the entry bar itself, or a later one
def test_stop_and_target_in_one_bar_fills_the_stop(wide: int) -> None:
    rows = flat(5)
    rows[wide] = (10.0, 10.8, 9.2, 10.0, 100000)
    r = run(rows, {0: [["go", 1, 100.0, 0.5, 0.5]]})  # stop 9.5, target 10.5
    exit_fill = r.recorder.fills[-1]
    assert (exit_fill.reason, exit_fill.price, exit_fill.order_type) == ("stop_loss", 9.5, "STOP_MARKET")
    assert only(r.trades).exit_reason == "stop_loss"
    assert any(e["type"] == "RISK_CHECK" and e["check"] == "stop_and_target_in_one_bar" for e in r.recorder.events)


def test_stop_gapped_through_fills_at_the_open_one_tick_worse() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.0, 10.0, 10.0, 1000),
            (9.3, 9.4, 9.2, 9.35, 1000), (9.3, 9.3, 9.3, 9.3, 1000)]  # fmt: skip
    r = run(rows, {0: [["go", 1, 100.0, 0.5, None]]}, mode="validation", latency="none")
    stop = r.recorder.fills[-1]
    assert (stop.reason, stop.reference_price, stop.price) == ("stop_loss", 9.3, pytest.approx(9.299))
    trade = only(r.trades)
    assert trade.slippage_cost == pytest.approx(100 * 0.001 + 100 * (trade.entry_price - 10.0))


def test_stop_inside_the_bar_fills_at_the_trigger_one_tick_worse() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000)] * 3 + [(10.0, 10.1, 9.4, 9.6, 1000), (9.6, 9.6, 9.6, 9.6, 1000)]
    r = run(rows, {0: [["go", -1, 100.0, 0.5, None]]}, mode="validation", latency="none")
    # a short: stop 10.5 is never reached; flat at the end, still open
    assert only(r.trades).is_closed is False
    r = run(rows, {0: [["go", 1, 100.0, 0.5, None]]}, mode="validation", latency="none")
    entry, stop = r.recorder.fills
    assert entry.price == pytest.approx(10.001)  # open + half a tick of spread, rounded against us
    # trigger = signal close - 0.5, set when the bracket was sent
    assert (stop.reference_price, stop.price) == (pytest.approx(9.5), pytest.approx(9.499))


def test_bracket_watches_the_entry_bar_stop() -> None:
    # The entry fills at bar 1's open; the same bar falls through the stop: out inside bar 1.
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.1, 9.3, 9.8, 1000), *flat(2, 9.8)]
    r = run(rows, {0: [["go", 1, 100.0, 0.5, 1.0]]}, mode="validation", latency="none")
    entry, stop = r.recorder.fills
    assert (stop.reason, stop.order_type, stop.price) == ("stop_loss", "STOP_MARKET", pytest.approx(9.499))
    assert stop.ts_ns == entry.ts_ns == T0 + 2 * MIN  # both inside bar 1
    assert only(r.trades).exit_reason == "stop_loss"
    assert not any(e["type"] == "RISK_CHECK" for e in r.recorder.events)  # the target (11.0) was never reached


def test_bracket_watches_the_entry_bar_target() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.6, 9.9, 10.5, 100000), *flat(2, 10.5), (9.0, 9.0, 8.5, 8.6, 1000)]
    r = run(rows, {0: [["go", -1, 100.0, 1.0, 0.4]]})  # a short: target 9.6 not reached
    assert only(r.trades).exit_reason == "take_profit"  # ... until the last bar
    r = run(rows, {0: [["go", 1, 100.0, 1.0, 0.4]]})  # stop 9.0, target 10.4
    _, target = r.recorder.fills  # the stop went with the target (OUO): the last bar finds nothing
    assert (target.reason, target.liquidity, target.price, target.ts_ns) == ("take_profit", "MAKER", 10.4, T0 + 2 * MIN)
    assert only(r.trades).is_closed


def test_take_profit_larger_than_the_bar_volume_fills_whole() -> None:
    # 2,000 FIL against bars of 40 FIL: NautilusTrader's own book would fill the target a
    # quarter-bar of volume at a time, and its OUO/reduce-only updates of the partly filled
    # bracket used to underflow the stop's quantity (a Rust panic that killed the process).
    rows = [
        (10.0, 10.0, 10.0, 10.0, 40),
        (10.0, 10.1, 9.95, 10.05, 40),
        (10.1, 10.6, 10.1, 10.5, 40),
        *flat(2, 10.5, 40),
    ]
    r = run(rows, {0: [["go", 1, 2000.0, 1.0, 0.4]]}, leverage=10)  # target 10.4
    _entry, target = r.recorder.fills
    assert (target.reason, target.qty, target.price, target.liquidity) == ("take_profit", 2000.0, 10.4, "MAKER")
    assert only(r.trades).is_closed


def test_stop_already_in_the_market_when_armed_exits_at_the_next_open() -> None:
    # 90 s latency: the entry sent at bar 0's close (stop 9.5) reaches the exchange in bar 2, after
    # bar 1 closed at 9.0. The exchange rejects the stop (Binance: "would immediately trigger").
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.0, 9.0, 9.0, 1000), (9.1, 9.2, 9.1, 9.1, 1000),
            (9.2, 9.2, 9.2, 9.2, 1000), (9.2, 9.2, 9.2, 9.2, 1000)]  # fmt: skip
    r = run(rows, {0: [["go", 1, 100.0, 0.5, None]]}, latency="custom",
            latency_ns=(90 * 10**9, 0, 0, 0))  # fmt: skip
    assert any(e["type"] == "ORDER_REJECTED" for e in r.recorder.events)
    entry, exit_fill = r.recorder.fills
    assert (entry.price, exit_fill.reason, exit_fill.order_type) == (9.1, "stop_loss", "MARKET")
    assert exit_fill.price == 9.2  # a market exit, sent on the rejection: it lands 90 s later, in bar 4
    assert only(r.trades).exit_reason == "stop_loss"


def test_fees_taker_on_market_maker_on_take_profit() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000)] * 3 + [(10.0, 10.6, 10.0, 10.5, 100000), (10.5, 10.5, 10.5, 10.5, 1000)]
    r = run(rows, {0: [["go", 1, 100.0, 1.0, 0.4]]})  # target 10.4
    entry, target = r.recorder.fills
    assert (entry.liquidity, entry.fee) == ("TAKER", pytest.approx(100 * 10.0 * TAKER))
    assert (target.liquidity, target.reason, target.price, target.fee) == (
        "MAKER", "take_profit", 10.4, pytest.approx(100 * 10.4 * MAKER),
    )  # fmt: skip
    trade = only(r.trades)
    assert trade.net_pnl == pytest.approx(100 * 0.4 - 100 * 10.0 * TAKER - 100 * 10.4 * MAKER)


# -- funding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "rate", "paid"), [
    (1, 0.001, 1.0), (1, -0.001, -1.0), (-1, 0.001, -1.0), (-1, -0.001, 1.0),
])  # fmt: skip
def test_funding_sign_and_amount(direction: int, rate: float, paid: float) -> None:
    # Position opens at bar 1's open (10.0). Settlement at minute 3 (bar 3's open); mark = bar 2's close 10.2.
    rows = [(10.0, 10.0, 10.0, 10.0, 1000), (10.0, 10.0, 10.0, 10.0, 1000), (10.2, 10.2, 10.2, 10.2, 1000),
            (10.2, 10.2, 10.2, 10.2, 1000), (10.2, 10.2, 10.2, 10.2, 1000)]  # fmt: skip
    r = run(rows, {0: [["go", direction, 100.0]], 3: [["go", 0, 0]]}, funding_rows=[(3, rate)])
    settlement = only(r.recorder.funding)
    amount = direction * 100 * 10.2 * rate
    assert settlement.amount == pytest.approx(amount)
    assert math.copysign(1, settlement.amount) == paid
    trade = only(r.trades)
    assert trade.funding_fees == pytest.approx(amount)
    assert r.metrics["total_funding"] == pytest.approx(amount)
    assert trade.net_pnl == pytest.approx(trade.gross_pnl - trade.entry_fee - trade.exit_fee - amount)


def test_funding_is_not_charged_to_a_position_opened_after_the_snapshot() -> None:
    # Signal at bar 1's close (minute 2): the order fills after the minute-2 snapshot.
    rows = flat(5)
    r = run(rows, {1: [["go", 1, 100.0]]}, funding_rows=[(2, 0.01)])
    assert r.recorder.funding == []


def test_missing_funding_is_a_loud_warning() -> None:
    r = run(flat(3), {})
    assert r.warnings == [
        "funding not modelled for FILUSDT: no funding rates in the catalog for 2024-01-01..2024-01-01 "
        "(vq data ingest --symbols FILUSDT --datasets fundingRate ...)"
    ]


# -- liquidation and margin ---------------------------------------------------------------------------


def test_liquidation_at_the_isolated_margin_price_loses_exactly_the_margin() -> None:
    # Long 1000 @ 10.0 at 10x: notional 10,000 (bracket [5k, 25k): mmr 2.5%, cum 75), margin 1,000.
    # LP = (1000 + 75 - 10000) / (1000 * 0.025 - 1000) = 9.153846..., rounded down to 9.153.
    rows = [(10.0, 10.0, 10.0, 10.0, 1000)] * 3 + [(9.9, 9.9, 9.0, 9.1, 1000), (9.1, 9.1, 9.1, 9.1, 1000)]
    r = run(rows, {0: [["go", 1, 1000.0]]}, leverage=10)
    liq = only(r.recorder.liquidations)
    assert liq.liquidation_price == pytest.approx(9.153)
    assert liq.wallet == pytest.approx(1000.0)
    exit_fee = 1000 * 9.153 * TAKER
    assert liq.clearance_fee == pytest.approx(1000.0 - 1000 * (10.0 - 9.153) - exit_fee)
    trade = only(r.trades)
    assert trade.exit_reason == "liquidation"
    assert trade.net_pnl == pytest.approx(-1000.0 - 1000 * 10.0 * TAKER)  # the margin and the entry fee
    assert r.metrics["final_equity"] == pytest.approx(100_000 - 1000.0 - 1000 * 10.0 * TAKER)


def test_resting_stop_above_the_liquidation_price_fires_first() -> None:
    rows = [(10.0, 10.0, 10.0, 10.0, 1000)] * 3 + [(9.9, 9.9, 9.0, 9.1, 100000), (9.1, 9.1, 9.1, 9.1, 1000)]
    r = run(rows, {0: [["go", 1, 1000.0, 0.5, None]]}, leverage=10)
    assert r.recorder.liquidations == []
    assert only(r.trades).exit_reason == "stop_loss"


def test_entry_beyond_free_margin_is_refused_and_logged() -> None:
    r = run(flat(4), {0: [["go", 1, 99_999.0]]}, leverage=10, starting_balance=1_000.0)
    assert r.recorder.fills == []
    check = only([e for e in r.recorder.events if e["type"] == "RISK_CHECK"])
    assert check["check"] == "max_position_at_leverage"
    r = run(flat(4), {0: [["go", 1, 1_000.0]]}, leverage=10, starting_balance=500.0)
    check = only([e for e in r.recorder.events if e["type"] == "RISK_CHECK"])
    assert (check["check"], check["required"]) == ("insufficient_margin", pytest.approx(1000 + 10_000 * TAKER))
    assert r.recorder.fills == []
