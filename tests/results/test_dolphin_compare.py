"""DOLPHIN orders vs engine: the parts of each trade's PnL difference, on a hand-made table of records,
and on the orders-mode scenario of hand-drawn bars (parts computed by hand); on real hourly perpetuals:
tests/dolphin/test_compare.py."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.identifiers import InstrumentId

from tests.dolphin.test_strategy import DAY, HOUR, MIN, SYMBOLS, T0, drawn_market, iid, run_capturing
from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.ledger import build_trades
from vibe_quant.backtest.plan import plan_run
from vibe_quant.backtest.recorder import FillRecord, LiquidationRecord
from vibe_quant.dolphin.engine import Trade
from vibe_quant.errors import ConfigError
from vibe_quant.results.dolphin_compare import PARTS, compare

BAR = HOUR


def engine_trade(trade_id: int, asset: str, entry_bar: int, exit_bar: int, p0: float, pb: float, notional: float,
                 reason: str = "FIXED_TP", slip: float = 0.0002, direction: int = -1, bonus: float = 0.0) -> Trade:  # fmt: skip
    xp = pb * (1 - direction * slip)
    price_return = direction * (xp - p0) / p0
    raw = price_return + bonus
    entry_fee, exit_fee = 0.000314 * notional, (0.0005 if reason == "STOP_LOSS" else 0.00035) * notional
    return Trade(trade_id=trade_id, asset=asset, direction=direction, entry_ts=T0 + entry_bar * BAR,
                 exit_ts=T0 + exit_bar * BAR, entry_bar=entry_bar, exit_bar=exit_bar, bars_held=exit_bar - entry_bar,
                 entry_price=p0, exit_price=xp, exit_bar_price=pb, notional=notional, leverage=1.0, fraction=0.2,
                 bucket=0, vel_div=-0.03, regime_size_mult=1.0, posture="APEX", exit_reason=reason,
                 price_return=price_return, pnl_pct_raw=raw, gross=raw * notional, entry_fee=entry_fee,
                 exit_fee=exit_fee, refund_entry=bonus > 0, refund_exit=False, edge=False, edge_pct=0.0,
                 net=raw * notional - entry_fee - exit_fee, capital=0.0)  # fmt: skip


def fill(symbol: str, bar: int, side: int, qty: float, ref: float, price: float, reason: str) -> FillRecord:
    """A fill of an order sent at the close of `bar`: at the next open (economic time), seen at the next close."""
    ts = T0 + bar * BAR
    return FillRecord(ts + BAR, ts + 1, symbol, f"O-{symbol}-{bar}", side, qty, price, qty * price * 0.0005, "TAKER", "MARKET",
                      reason, ref, 0.0, f"P-{symbol}")  # fmt: skip


def test_hand_made_table_matched_liquidated_refused_open() -> None:
    """FIL: a SHORT filled at the next opens (slipped 0.01 on the exit); NEAR: a SHORT liquidated before the
    engine's exit; FIL again: refused (no fill); NEAR again: open at the end (END_OF_DATA)."""
    trades = [engine_trade(1, "FILUSDT", 10, 20, 10.0, 9.9, 1_000.0),
              engine_trade(2, "NEARUSDT", 30, 50, 2.0, 2.1, 2_000.0, reason="STOP_LOSS", slip=0.0005),
              engine_trade(3, "FILUSDT", 60, 70, 10.0, 10.0, 1_000.0, reason="MAX_HOLD"),
              engine_trade(4, "NEARUSDT", 80, 90, 2.0, 1.95, 2_000.0, reason="END_OF_DATA")]  # fmt: skip
    fills = [fill("FILUSDT", 10, -1, 100.0, 10.05, 10.05, "entry"), fill("FILUSDT", 20, 1, 100.0, 9.92, 9.93, "FIXED_TP"),
             fill("NEARUSDT", 30, -1, 1000.0, 2.01, 2.01, "entry"),
             fill("NEARUSDT", 40, 1, 1000.0, 2.2, 2.2, "liquidation"),
             fill("NEARUSDT", 80, -1, 1000.0, 1.99, 1.99, "entry")]  # fmt: skip
    liq = [LiquidationRecord(T0 + 41 * BAR, "NEARUSDT", "P-NEARUSDT", -1, 1000.0, 2.01, 2.2, 201.0, 5.0)]
    venue = build_trades(fills, [], liq, {"FILUSDT": 10.0, "NEARUSDT": 10.0})
    events = [{"ts": T0 + 60 * BAR, "type": "RISK_CHECK", "instrument": iid("FILUSDT"), "check": "insufficient_margin",
               "action": "order refused"}]  # fmt: skip
    c = compare(trades, venue, fills, liq, events, BAR)
    fil, near, refused, open_ = c.trades
    assert [t.status for t in c.trades] == ["matched", "liquidated", "refused", "open_at_end"]
    # FIL by hand: d = -1, q = 100, q_e = 100, P0 10, O1 10.05, Pb 9.9, O2 9.92
    assert fil.parts["timing_entry"] == pytest.approx(-100 * (10.0 - 10.05))  # +5: sold 0.05 higher
    assert fil.parts["timing_exit"] == pytest.approx(-100 * (9.92 - 9.9))  # -2: bought back 0.02 higher
    assert fil.parts["size"] == pytest.approx(0.0)
    assert fil.parts["fees"] == pytest.approx(1_000 * (0.000314 + 0.00035) - 0.0005 * (100 * 10.05 + 100 * 9.93))
    assert fil.parts["slippage"] == pytest.approx(100 * 9.9 * 0.0002 - 100 * 0.01)
    assert fil.venue_net == pytest.approx(-100 * (9.93 - 10.05) - 0.0005 * (100 * 10.05 + 100 * 9.93))
    # NEAR liquidated: the exit side (timing, fee with the clearance, slippage) is the liquidation part
    qe = 2_000.0 / 2.0
    assert near.parts["timing_entry"] == pytest.approx(-1000 * (2.0 - 2.01))
    assert near.parts["liquidation"] == pytest.approx(
        -1000 * (2.2 - 2.1) + (2_000 * 0.0005 - (1000 * 2.2 * 0.0005 + 5.0)) + qe * 2.1 * 0.0005
    )
    assert "timing_exit" not in near.parts
    assert (refused.refusal, refused.parts) == ("insufficient_margin", {"refused": -refused.engine_net})
    assert open_.venue_exit_ref == 1.95
    assert open_.parts["timing_exit"] == 0.0
    assert open_.venue_net == pytest.approx(-1000 * (1.95 - 1.99) - 1000 * 1.99 * 0.0005)
    assert c.counts == {"matched": 1, "liquidated": 1, "refused": 1, "open_at_end": 1, "engine_trades": 4,
                        "venue_trades": 3, "unmatched_venue": 0}  # fmt: skip
    for t in c.trades:
        assert abs(t.residual) < 1e-9
        assert math.fsum([*t.parts.values(), t.residual]) == pytest.approx(t.diff, abs=1e-12)
    assert math.fsum([*c.parts.values(), c.residual]) == pytest.approx(c.diff, abs=1e-12)
    assert abs(c.residual) < 1e-9
    assert set(c.parts) == set(PARTS)
    json.dumps(c.to_dict())  # plain data


def test_a_venue_round_trip_without_an_engine_trade_is_unmatched_and_bad_step_refused() -> None:
    fills = [fill("FILUSDT", 5, 1, 10.0, 10.0, 10.0, "entry"), fill("FILUSDT", 6, -1, 10.0, 10.5, 10.5, "signal")]
    venue = build_trades(fills, [], [], {"FILUSDT": 10.0})
    c = compare([], venue, fills, [], [], BAR)
    assert c.counts["unmatched_venue"] == 1
    assert c.parts["unmatched_venue"] == pytest.approx(venue[0].net_pnl) == c.diff
    with pytest.raises(ConfigError, match="bar_ns must be a positive bar step in ns, got 0"):
        compare([], venue, fills, [], [], 0)


def test_orders_mode_scenario_parts_by_hand(monkeypatch) -> None:
    """The orders-mode scenario of two hand-drawn 1m perpetuals (opens 0.1% above the previous close, no
    random slippage, funding every 10 minutes): each trade's parts computed from the drawn bars."""
    n, windows, rate, step = 60, (5, 10), 0.0004, 0.1  # FILUSDT's size step
    data, rows = drawn_market(n)
    settles = [T0 + k * 10 * MIN for k in range(1, n // 10 + 1)]
    data.funding["FILUSDT"] = [FundingRateUpdate(InstrumentId.from_str(iid("FILUSDT")), Decimal(str(rate)), s, s,
                                                 next_funding_ns=s + 10 * MIN) for s in settles]  # fmt: skip
    engine = {"vel_div_threshold": -1e-4, "vel_div_extreme": -1.0, "lookback": 5, "irp_window": 5,
              "dc_lookback_bars": 2, "dc_enabled": False, "use_asset_selection": False,
              "dc_fallback_symbol": "FILUSDT", "fixed_tp_pct": 0.5, "stop_pct": 0.9, "max_hold_bars": 15,
              "use_acb": False, "initial_capital": 10_000.0}  # fmt: skip
    plan = plan_run(BacktestConfig(strategy="dolphin_scenario", kind="dolphin", symbols=SYMBOLS, timeframe="1m",
                                   start=DAY, end=DAY, mode="screening", prob_slippage=0.0, starting_balance=10_000.0,
                                   document={"name": "dolphin_scenario", "mode": "orders", "windows": list(windows),
                                             "engine": engine}))  # fmt: skip
    result, s = run_capturing(monkeypatch, plan, data)
    rec = result.recorder
    c = compare(s.engine.trades, result.trades, rec.fills, rec.liquidations, rec.events, plan.bar_ns)
    assert len(c.trades) >= 2
    assert rec.funding  # funding was charged on the held shorts
    fil = rows["FILUSDT"]
    for t in c.trades:
        e = next(e for e in s.engine.trades if e.trade_id == t.trade_id)
        i, k = (e.entry_ts - T0) // MIN - 1, (e.exit_ts - T0) // MIN - 1  # the signal bars
        p0, pb = fil[i][3], fil[k][3]
        if e.exit_reason == "END_OF_DATA":  # booked in the engine's ledger only: the leg is still open
            assert t.status == "open_at_end"
            o2, exit_fee = pb, 0.0
        else:
            assert t.status == "matched"
            o2, exit_fee = fil[k + 1][0], None
        o1 = fil[i + 1][0]
        q = math.floor(e.notional / p0 / step + 1e-9) * step
        qe = e.notional / p0
        exit_fee = q * o2 * 0.0005 if exit_fee is None else exit_fee
        # settlements while held; the one at the last close (the run's end) is not charged
        funding = sum(q * fil[(st - T0) // MIN - 1][3] * rate for st in settles
                      if e.entry_ts < st <= e.exit_ts and st < T0 + n * MIN)  # fmt: skip
        assert (t.direction, t.asset) == (-1, "FILUSDT")
        assert t.venue_qty == pytest.approx(q)
        assert t.parts["timing_entry"] == pytest.approx(-q * (p0 - o1), abs=1e-9)
        assert t.parts["timing_exit"] == pytest.approx(-q * (o2 - pb), abs=1e-9)
        assert t.parts["size"] == pytest.approx(-(q - qe) * (pb - p0), abs=1e-9)
        assert t.parts["fees"] == pytest.approx(e.notional * 0.000314 + e.exit_fee - q * o1 * 0.0005 - exit_fee)
        assert t.parts["slippage"] == pytest.approx(qe * pb * 0.0002)  # the engine's exit slip; the venue's is 0
        assert t.parts["funding"] == pytest.approx(funding)  # a short receives positive funding
        assert t.parts["bonuses"] == 0.0
        assert abs(t.residual) < 1e-9
    assert c.counts["refused"] == c.counts["liquidated"] == c.counts["unmatched_venue"] == 0
    assert math.fsum([*c.parts.values(), c.residual]) == pytest.approx(c.diff, abs=1e-12)
    assert abs(c.residual) < 1e-9
    assert c.parts["timing_entry"] > 0  # a short sold at an open 0.1% above the signal close
