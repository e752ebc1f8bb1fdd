"""Divergence report (docs/specs.md#divergence-report) on real backtests: FILUSDT and NEARUSDT, August 2023, 15m."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import msgspec
import pytest

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.engine import run_backtest
from vibe_quant.backtest.market_data import load_market_data
from vibe_quant.backtest.plan import plan_run
from vibe_quant.paper.divergence import DivergenceThresholds, Ledger, compare_ledgers, match_trades

BASE = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT", "NEARUSDT"), timeframe="15m",
                      start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 31), params={"fast": 10, "slow": 40},
                      mode="validation", latency="retail", leverage=3)  # fmt: skip
TAKER = 0.001
TIGHT = DivergenceThresholds(trade_count_pct=0, unmatched_pct=0, net_pnl_of_balance=0, equity_gap_of_balance=0,
                             mean_price_bps=0, cost_pct=0)  # fmt: skip


@pytest.fixture(scope="module")
def ledgers(aug_2023_catalog, specs) -> dict[str, Ledger]:
    """The validation run twice, once without latency and once at a 0.1% taker fee."""
    out = {}
    for name, change in {
        "base": {},
        "again": {},
        "no_latency": {"latency": "none"},
        "fees": {"taker_fee": TAKER},
    }.items():
        plan = plan_run(msgspec.structs.replace(BASE, **change))
        out[name] = Ledger.from_result(run_backtest(plan, load_market_data(aug_2023_catalog, plan, specs)))
    return out


def test_the_same_backtest_twice_does_not_diverge(ledgers) -> None:
    report = compare_ledgers(ledgers["again"], ledgers["base"])
    n = len(ledgers["base"].trades)
    assert n > 20
    assert len(report.matched) == len(report.pairs) == n
    assert all(entry["diff"] == 0 for entry in report.totals.values())
    assert report.max_equity_gap == 0.0
    assert report.common_equity_points == len(ledgers["base"].equity_ts)
    assert report.breaches(TIGHT) == []
    for row in report.table():
        assert row["net_pnl_diff"] in (0.0, None)
        assert row["entry_bps"] == 0.0
        assert row["fees_diff"] == 0.0
    json.dumps(report.to_dict(), allow_nan=False)


def test_latency_shifts_entries_and_slippage_and_the_report_says_so(ledgers) -> None:
    paper, back = ledgers["no_latency"], ledgers["base"]
    report = compare_ledgers(paper, back)
    assert report.totals["trades"] == {"paper": len(paper.trades), "backtest": len(back.trades),
                                       "diff": len(paper.trades) - len(back.trades)}  # fmt: skip
    assert report.totals["slippage"]["diff"] == pytest.approx(
        sum(f.side * f.qty * (f.price - f.reference_price) for f in paper.fills)
        - sum(f.side * f.qty * (f.price - f.reference_price) for f in back.fills)
    )
    # One pair by hand: the backtest's first NEARUSDT trade and the paper trade entered 0.3 s earlier
    # (retail latency: 200 ms base + 100 ms insert; none: the bar's first nanosecond).
    b = next(t for t in back.trades if t.symbol == "NEARUSDT")
    p = next(t for t in paper.trades if t.symbol == "NEARUSDT" and t.entry_ns == b.entry_ns - 299_999_999)
    row = next(r for r in report.table() if r["backtest_entry_ns"] == b.entry_ns and r["symbol"] == "NEARUSDT")
    assert row["status"] == "matched"
    assert row["paper_entry_ns"] == p.entry_ns
    sign = 1 if b.direction == "LONG" else -1
    assert row["entry_time_diff_s"] == pytest.approx(-0.299999999)
    assert row["exit_time_diff_s"] == pytest.approx((p.exit_ns - b.exit_ns) / 1e9)
    assert row["entry_bps"] == pytest.approx(sign * (p.entry_price / b.entry_price - 1) * 1e4)
    assert row["exit_bps"] == pytest.approx(-sign * (p.exit_price / b.exit_price - 1) * 1e4)
    assert row["slippage_diff"] == pytest.approx(p.slippage_cost - b.slippage_cost)
    assert row["net_pnl_diff"] == pytest.approx(p.net_pnl - b.net_pnl)
    assert row["slippage_diff"] != 0
    assert report.breaches() == []  # 0.3 s of latency is within the defaults
    breaches = report.breaches(TIGHT)
    assert any(s.startswith("net PnL differs by") for s in breaches)
    assert any(s.startswith("matched trades' prices differ by") for s in breaches)


def test_a_higher_taker_fee_breaches_the_default_thresholds(ledgers, specs) -> None:
    paper, back = ledgers["fees"], ledgers["base"]
    report = compare_ledgers(paper, back)
    fil = specs.get("FILUSDT")
    b = back.trades[0]
    pair = next(pr for pr in report.matched if pr.backtest is b)
    p = pair.paper
    assert (p.quantity, p.entry_price, p.exit_price) == (b.quantity, b.entry_price, b.exit_price)  # same fills
    row = pair.row()
    own = [f for f in back.fills if f.instrument == b.symbol][: b.fills]  # the symbol's first trade: its first fills
    assert b.fills == 2
    assert [(f.liquidity, f.economic_ns) for f in own] == [("TAKER", b.entry_ns), ("TAKER", b.exit_ns)]
    assert b.symbol == "FILUSDT"
    extra = (TAKER - float(fil.taker_fee)) * b.quantity * (b.entry_price + b.exit_price)
    assert row["fees_diff"] == pytest.approx(extra, rel=1e-9)
    assert row["net_pnl_diff"] == pytest.approx(-extra, rel=1e-9)
    assert report.totals["fees"]["diff"] == pytest.approx(
        sum(f.fee for f in paper.fills) - sum(f.fee for f in back.fills)
    )
    breaches = report.breaches()
    assert [s.split(" ")[0] for s in breaches] == ["net", "equity", "costs"]
    pnl = report.totals["net_pnl"]["diff"]
    assert pnl < -0.02 * BASE.starting_balance
    assert f"net PnL differs by {pnl:,.2f}" in breaches[0]
    loose = DivergenceThresholds(net_pnl_of_balance=0.5, equity_gap_of_balance=0.5, cost_pct=1.0)
    assert report.breaches(loose) == []


def test_trades_on_one_side_only_are_listed_and_counted(ledgers) -> None:
    back = ledgers["base"]
    dropped, added = back.trades[3], back.trades[7]
    paper = dataclasses.replace(back, trades=[t for t in back.trades if t is not dropped])
    backtest = dataclasses.replace(back, trades=[t for t in back.trades if t is not added])
    report = compare_ledgers(paper, backtest)
    table = report.table()
    assert [
        (r["status"], r["backtest_entry_ns"] or r["paper_entry_ns"]) for r in table if r["status"] != "matched"
    ] == sorted([("missing", dropped.entry_ns), ("extra", added.entry_ns)], key=lambda x: x[1])
    assert len(report.matched) == len(back.trades) - 2
    breaches = report.breaches(DivergenceThresholds(unmatched_pct=0.001))
    assert any("1 missing from paper, 1 only in paper" in s for s in breaches)
    assert report.breaches() == []  # 2 of 189 is within 20%


def test_opposite_directions_at_the_same_time_are_not_one_trade(ledgers) -> None:
    t = ledgers["base"].trades[0]
    flipped = dataclasses.replace(t, direction="LONG" if t.direction == "SHORT" else "SHORT")
    pairs = match_trades([flipped], [t])
    assert [p.status for p in pairs] == ["extra", "missing"]
    late = dataclasses.replace(t, entry_ns=t.entry_ns + 61 * 10**9)
    assert [p.status for p in match_trades([late], [t])] == ["missing", "extra"]
    assert [p.status for p in match_trades([late], [t], tolerance_ns=61 * 10**9)] == ["matched"]


def test_thresholds_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match=r"net_pnl_of_balance must be a finite number >= 0, got -0\.1"):
        DivergenceThresholds(net_pnl_of_balance=-0.1)
