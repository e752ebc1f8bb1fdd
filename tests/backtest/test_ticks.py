"""Tick-level execution rules as scenario tables: hand-written quotes and trades in, exact fills out.

FILUSDT spec: tick 0.001, taker 0.0005, maker 0.0002; "alt" brackets (see test_scenarios.py).
Times are seconds after T0; bar ``i`` closes at ``60 * (i + 1)`` s, where the strategy acts.
"""

from __future__ import annotations

import json

import pytest
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from tests.backtest.scenario import DAY, T0, funding
from tests.backtest.tick_scenario import BUY, SELL, S, run_ticks, steady
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.ticks import TickData, merge_ticks, run_tick_backtest
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs

TAKER, MAKER = 0.0005, 0.0002
LATENCY_2S = {"latency": "custom", "latency_ns": (0, 2 * S, 0, 0)}


def only(items):
    assert len(items) == 1, items
    return items[0]


def at(sec: float) -> int:
    return T0 + round(sec * S)


# -- market orders: the touch of the first tick after the latency ------------------------------------


def test_market_orders_fill_at_the_quotes_first_after_the_latency() -> None:
    trade_rows = steady(1, 56) + steady(65, 175) + steady(185, 235)
    quote_rows = [(58, 9.999, 10.001), (61, 10.000, 10.002), (62.5, 10.004, 10.006), (63.5, 10.008, 10.010),
                  (179, 10.019, 10.021), (182.2, 10.020, 10.022), (183, 10.030, 10.032)]  # fmt: skip
    r = run_ticks(trade_rows, {"0": [["go", 1, 100.0]], "2": [["go", 0, 100.0]]}, quote_rows, **LATENCY_2S)
    entry, exit_ = r.recorder.fills
    # sent at 60 s, at the exchange at 62 s: the first quote at or after is 62.5 s, its ask
    assert (entry.ts_ns, entry.price, entry.side, entry.liquidity) == (at(62.5), 10.006, 1, "TAKER")
    assert entry.fee == pytest.approx(100 * 10.006 * TAKER)
    # sent at 180 s, at the exchange at 182 s: the 182.2 s quote's bid
    assert (exit_.ts_ns, exit_.price, exit_.side) == (at(182.2), 10.020, -1)
    assert only(r.trades).net_pnl == pytest.approx(100 * (10.020 - 10.006) - 100 * (10.006 + 10.020) * TAKER)
    assert r.extra == {"mode": "ticks", "trades": len(trade_rows), "quotes": len(quote_rows), "quotes_free": []}
    assert r.bars_processed == len(trade_rows) + len(quote_rows)
    assert not any("quotes-free" in w for w in r.warnings)


def test_quotes_free_market_orders_fill_at_the_touch_inferred_from_trades() -> None:
    # without quotes the ask is the last buyer-initiated trade, the bid the last seller-initiated one
    trade_rows = [*steady(1, 50), (55, 10.004, BUY), (58, 9.998, SELL), *steady(65, 175), (178, 10.007, BUY),
                  (179, 10.001, SELL), *steady(185, 235)]  # fmt: skip
    r = run_ticks(trade_rows, {"0": [["go", 1, 100.0]], "2": [["go", 0, 100.0]]})
    entry, exit_ = r.recorder.fills
    assert (entry.ts_ns, entry.price) == (at(60), 10.004)  # no latency (screening): at the signal, the ask
    assert (exit_.ts_ns, exit_.price) == (at(180), 10.001)  # the bid
    assert r.extra["quotes_free"] == ["FILUSDT"]
    assert "quotes-free: touch inferred from trades for FILUSDT (no bookTicker quotes in the catalog)" in r.warnings


# -- post-only limits: rest, fill when crossed; the queue draw when only touched ----------------------


TOUCH = [
    *steady(1, 56),
    (70, 9.990, SELL),  # the bid comes to our price ...
    (75, 9.990, BUY),  # ... and a buyer trades there: touched (the inferred book is 9.990/9.990)
]
# then the market leaves upwards: only the touch could have filled the order
TOUCH_THEN_AWAY = [*TOUCH, *steady(80, 175, 10.0)]
# then a seller trades below it while the ask is still at our price: our order is the bid hit
TOUCH_THEN_THROUGH = [*TOUCH, (90, 9.980, SELL), (95, 9.985, BUY), *steady(100, 175, 9.985)]


@pytest.mark.parametrize(
    ("path", "probability", "filled_at"),
    [(TOUCH_THEN_AWAY, 1.0, 75), (TOUCH_THEN_AWAY, 0.0, None), (TOUCH_THEN_THROUGH, 1.0, 75),
     (TOUCH_THEN_THROUGH, 0.0, 90)],
)  # fmt: skip
def test_post_only_limit_rests_and_fills_when_touched_with_the_queue_probability(
    path: list, probability: float, filled_at: int | None
) -> None:
    r = run_ticks(path, {"0": [["limit", 1, 100.0, 9.990]]}, prob_fill_on_limit=probability)
    if filled_at is None:
        assert r.recorder.fills == []
        return
    fill = only(r.recorder.fills)
    assert (fill.ts_ns, fill.price, fill.liquidity, fill.order_type) == (at(filled_at), 9.990, "MAKER", "LIMIT")
    assert fill.fee == pytest.approx(100 * 9.990 * MAKER)


def test_post_only_limit_fills_when_the_quotes_cross_it() -> None:
    quote_rows = [(58, 9.995, 10.000), (70, 9.990, 10.000), (80, 9.985, 9.990), (85, 9.980, 9.985)]
    trade_rows = [*steady(1, 56), *steady(100, 175, 9.985)]
    r = run_ticks(trade_rows, {"0": [["limit", 1, 100.0, 9.990]]}, quote_rows, prob_fill_on_limit=0.0)
    # at 70 s our price is the bid (resting in the queue); at 80 s the ask comes down to it
    fill = only(r.recorder.fills)
    assert (fill.ts_ns, fill.price, fill.liquidity) == (at(80), 9.990, "MAKER")


def test_post_only_limit_that_would_take_is_rejected() -> None:
    r = run_ticks(steady(1, 175), {"0": [["limit", 1, 100.0, 10.005]]})  # above the ask of 10.0
    assert r.recorder.fills == []
    rejected = only([e for e in r.recorder.events if e["type"] == "ORDER_REJECTED"])
    assert "POST_ONLY" in rejected["reason"].upper().replace("-", "_").replace(" ", "_")


# -- funding ---------------------------------------------------------------------------------------


def test_funding_settles_at_the_snapshot_on_the_position_held_with_the_mark_before_it() -> None:
    trade_rows = [*steady(1, 170), (175, 10.2, BUY), (180, 10.5, SELL), *steady(185, 355, 10.5)]
    # snapshots at 3 min (held long 100) and 5 min (flat again after the exit at 4 min)
    r = run_ticks(trade_rows, {"0": [["go", 1, 100.0]], "3": [["go", 0, 100.0]]},
                  funding_rows=[(3, 0.001), (5, -0.002)])  # fmt: skip
    settled = only(r.recorder.funding)
    assert (settled.ts_ns, settled.signed_qty, settled.mark, settled.rate) == (at(180), 100.0, 10.2, 0.001)
    assert settled.amount == pytest.approx(100 * 10.2 * 0.001)  # 1.02 USDT paid by the long
    event = only([e for e in r.recorder.events if e["type"] == "FUNDING"])
    assert event["amount"] == pytest.approx(-1.02)
    trade = only(r.trades)
    fees = 100 * 10.0 * TAKER + 100 * 10.5 * TAKER
    assert trade.net_pnl == pytest.approx(100 * 0.5 - fees - 1.02)
    assert r.metrics["final_equity"] == pytest.approx(100_000 + 100 * 0.5 - fees - 1.02)
    assert r.metrics["total_funding"] == pytest.approx(1.02)


def test_strategies_receive_the_funding_updates_as_data() -> None:
    # NautilusTrader 1.221 replays FundingRateUpdate objects: a strategy may subscribe (e.g. a funding prior)
    r = run_ticks(steady(1, 355), {}, funding_rows=[(3, 0.001), (5, -0.002)],
                  strategy="tests.backtest.tick_scenario:FundingListener")  # fmt: skip
    seen = [(e["ts"], e["rate"]) for e in r.recorder.events if e["type"] == "FUNDING_RATE_SEEN"]
    assert seen == [(at(180), 0.001), (at(300), -0.002)]


# -- liquidation -----------------------------------------------------------------------------------


def test_liquidation_on_the_tick_that_reaches_the_price_loses_exactly_the_margin() -> None:
    # Long 1000 @ 10.0 at 10x: margin 1,000, liquidation price 9.153846... -> 9.153 (test_scenarios.py)
    trade_rows = [*steady(1, 115), (120, 9.5, SELL), (125, 9.2, SELL), (130, 9.16, SELL), (135, 9.15, SELL),
                  (140, 9.0, SELL), *steady(145, 235, 9.0)]  # fmt: skip
    r = run_ticks(trade_rows, {"0": [["go", 1, 1000.0]]}, leverage=10)
    liq = only(r.recorder.liquidations)
    assert (liq.ts_ns, liq.liquidation_price, liq.wallet) == (at(135), 9.153, pytest.approx(1000.0))
    exit_fill = r.recorder.fills[-1]
    assert (exit_fill.ts_ns, exit_fill.price, exit_fill.reason) == (at(135), 9.153, "liquidation")
    assert liq.clearance_fee == pytest.approx(1000.0 - 1000 * (10.0 - 9.153) - 1000 * 9.153 * TAKER)
    trade = only(r.trades)
    assert trade.exit_reason == "liquidation"
    assert trade.net_pnl == pytest.approx(-1000.0 - 1000 * 10.0 * TAKER)  # the margin and the entry fee
    assert r.metrics["final_equity"] == pytest.approx(100_000 - 1000.0 - 1000 * 10.0 * TAKER)


def test_stop_and_target_are_matched_in_tick_order_without_a_pessimistic_rule() -> None:
    # One minute reaches both the take-profit (10.05) and the stop (9.95): on bars the stop is assumed
    # first; on ticks the target trades first here, so the target fills.
    trade_rows = [*steady(1, 115), (121, 10.06, BUY), (122, 10.05, SELL), (130, 9.94, SELL), (131, 9.94, BUY),
                  *steady(140, 235, 9.94)]  # fmt: skip
    r = run_ticks(trade_rows, {"0": [["go", 1, 100.0, 0.05, 0.05]]})
    trade = only(r.trades)
    assert trade.exit_reason == "take_profit"
    assert r.recorder.fills[-1].price == 10.05
    assert not any(e.get("check") == "stop_and_target_in_one_bar" for e in r.recorder.events)


# -- two instruments -------------------------------------------------------------------------------


def test_two_instruments_replay_merged_each_at_its_own_touch() -> None:
    data = TickData({}, {}, {}, {}, {}, "two")
    for symbol, price, offset in (("FILUSDT", 10.0, 0), ("NEARUSDT", 2.0, 1)):  # NEAR 1 ns after FIL
        spec = InstrumentSpecs().get(symbol)
        iid = InstrumentId.from_str(spec.nautilus_id)
        data.specs[symbol], data.instruments[symbol] = spec, crypto_perpetual(spec)
        data.trades[symbol] = [
            TradeTick(iid, Price(price + (0.001 if s % 2 else 0.0), spec.price_precision), Quantity(10, spec.size_precision),
                      AggressorSide.BUYER if s % 2 else AggressorSide.SELLER, TradeId(str(s)), at(s) + offset,
                      at(s) + offset)
            for s in range(1, 300, 3)
        ]  # fmt: skip
        data.quotes[symbol], data.funding[symbol] = [], funding([])
    script = json.dumps({"0": [["go", 1, 100.0]], "2": [["go", 0, 100.0]]})
    cfg = BacktestConfig(strategy="tests.backtest.tick_scenario:TickScripted", symbols=("FILUSDT", "NEARUSDT"),
                         timeframe="1m", start=DAY, end=DAY, params={"script": script}, mode="screening",
                         prob_slippage=0.0)  # fmt: skip
    replay = merge_ticks(data, cfg.symbols)
    assert [t.ts_init for t in replay] == sorted(t.ts_init for t in replay)
    r = run_tick_backtest(plan_run(cfg), data, "two")
    assert r.extra["quotes_free"] == ["FILUSDT", "NEARUSDT"]
    fills = [(f.instrument, f.side, f.price, f.ts_ns) for f in r.recorder.fills]
    # Both strategies send at the 60 s close (no latency). NautilusTrader runs the exchange's queue once
    # per time-event timestamp, after the first handler: the second instrument's order executes with
    # the next data point (the FIL trade at 61 s), at its own touch, which no NEAR trade has moved.
    assert fills == [("FILUSDT", 1, 10.001, at(60)), ("NEARUSDT", 1, 2.001, at(61)),
                     ("FILUSDT", -1, 10.0, at(180)), ("NEARUSDT", -1, 2.0, at(181))]  # fmt: skip
    assert len(r.equity) == 5  # four common bar closes (60..240 s) and the last tick
