"""Scenario tables for the NDAlphaEngine: hand-made scan rows with exactly the expected ledgers.

Every scenario runs through both drivers (the array engine and the specification's per-bar loop)
and they must agree exactly.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from vibe_quant.dolphin.array_engine import ScanData, run_array, run_reference
from vibe_quant.dolphin.engine_config import engine_config
from vibe_quant.dolphin.providers import (
    AcbSchedule,
    AcbUpdate,
    FixtureOrderBook,
    McReport,
    ObMacro,
    ObPlacement,
    ObSignal,
    PostureSchedule,
    ScheduledAssessor,
)

DAY0 = dt.date(2026, 1, 1)
ROWS = 24
HOUR = 3_600_000_000_000
T0 = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
HONEST = engine_config()
SEED = engine_config(profile="seed")
E = 120  # the entry bar of most scenarios (day 5, hour 0)


def day_of(bar: int) -> dt.date:
    return DAY0 + dt.timedelta(days=bar // ROWS)


def table(signals: dict[int, float], days: int = 12, after: dict[int, float] | None = None,
          rising_from: int | None = None, flat: bool = False) -> ScanData:  # fmt: skip
    """Three assets: AUSDT declines 1 bp a bar (IRP's only pick, DC confirms), BUSDT and CUSDT are flat.

    `after` sets AUSDT's price relative to bar `E`'s at later bars (held until the next one);
    `rising_from` makes AUSDT rise from that bar to E by +0.76 bp in all (a DC contradiction);
    `flat` makes AUSDT flat too (no asset passes IRP).
    """
    n = days * ROWS
    vel = np.zeros(n)
    for bar, v in signals.items():
        vel[bar] = v
    a = 1.0 * (1 - 1e-4) ** np.arange(n)
    if rising_from is not None:
        a[rising_from : E + 1] = np.linspace(a[rising_from], a[rising_from] * (1 + 0.76e-4), E + 1 - rising_from)
    if after:
        base = a[E]
        for bar in sorted(after):
            a[bar:] = base * after[bar]
    if flat:
        a[:] = 1.0
    closes = np.column_stack([a, np.full(n, 2.0), np.full(n, 0.5)])
    ts = T0 + (np.arange(n, dtype=np.int64) + 1) * HOUR
    return ScanData(("AUSDT", "BUSDT", "CUSDT"), tuple(DAY0 + dt.timedelta(days=d) for d in range(days)),
                    np.arange(days + 1, dtype=np.int64) * ROWS, ts, vel, closes)  # fmt: skip


def run(data: ScanData, cfg=HONEST, **providers):
    a = run_array(data, cfg, **providers)
    b = run_reference(data, cfg, **providers)
    assert a.trades == b.trades
    assert a.days == b.days
    assert np.array_equal(a.equity, b.equity)
    assert a.counts == b.counts
    return a


def test_no_entry_before_bar_100() -> None:
    assert run(table({98: -0.03})).trades == []
    trade = run(table({99: -0.03}, after={100: 1.0})).trades[0]
    assert (trade.entry_bar, trade.asset) == (99, "AUSDT")


def test_take_profit_with_the_exit_slip_and_exact_fees() -> None:
    data = table({E: -0.03}, after={E + 1: 1.0, E + 2: 0.9906, E + 3: 0.99, E + 4: 0.99})
    result = run(data)
    (t,) = result.trades
    p = data.closes[E, 0]
    assert (t.entry_bar, t.exit_bar, t.exit_reason, t.entry_price) == (E, E + 3, "FIXED_TP", p)
    assert t.exit_price == p * 0.99 * (1.0 + 0.0002)
    assert t.price_return == (p - t.exit_price) / p
    assert t.entry_fee == 0.000314 * t.notional
    assert t.exit_fee == 0.00035 * t.notional
    assert t.net == t.price_return * t.notional - t.entry_fee - t.exit_fee  # honest: no bonuses
    assert not (t.refund_entry)
    assert not (t.refund_exit)
    assert not (t.edge)
    assert result.capital == HONEST.initial_capital + t.net
    assert result.days[5].trades == 1
    assert result.days[5].capital == result.capital


def test_stop_loss_pays_the_taker_fee_and_five_bp_slip() -> None:
    cfg = engine_config(stop_pct=0.005)
    (t,) = run(table({E: -0.03}, after={E + 1: 1.0, E + 2: 1.006}), cfg).trades
    p = t.entry_price
    assert (t.exit_bar, t.exit_reason) == (E + 2, "STOP_LOSS")
    assert t.exit_price == p * 1.006 * (1.0 + 0.0005)
    assert t.exit_fee == 0.0005 * t.notional


def test_max_hold_carries_across_days() -> None:
    (t,) = run(table({E: -0.03}, after={E + 1: 1.0})).trades
    assert (t.exit_bar, t.bars_held, t.exit_reason) == (E + 120, 120, "MAX_HOLD")
    assert t.exit_price == t.entry_price * 1.0002
    assert day_of(t.exit_bar) == day_of(t.entry_bar) + dt.timedelta(days=5)


def test_no_reentry_on_the_exit_bar() -> None:
    a = 1 - 1e-4
    after = {E + 3: 0.99 * a**3, E + 4: 0.99 * a**4, E + 5: 0.99 * a**5, E + 6: 1.0}
    trades = run(table({E: -0.03, E + 3: -0.03, E + 4: -0.03}, after=after)).trades
    assert next((t.entry_bar, t.exit_bar, t.exit_reason) for t in trades) == (E, E + 3, "FIXED_TP")
    assert trades[1].entry_bar == E + 4


def test_a_dc_contradiction_blocks_the_trade() -> None:
    result = run(table({E: -0.03}, rising_from=E - 7))
    assert result.trades == []
    assert result.counts.dc_contradict == 1
    assert len(run(table({E: -0.03}, rising_from=E - 7), engine_config(dc_skip_contradicts=False)).trades) == 1


def test_irp_without_a_passing_asset_gives_no_trade() -> None:
    result = run(table({E: -0.03, E + 5: -0.04}, flat=True))
    assert result.trades == []
    assert result.counts.no_irp_asset == 2


def test_stalker_caps_leverage_at_two() -> None:
    data = table({E: -0.06}, after={E + 1: 1.0})
    assert run(data).trades[0].leverage == 5.0
    t = run(data, posture=PostureSchedule({day_of(E): "STALKER"})).trades[0]
    assert (t.leverage, t.posture) == (2.0, "STALKER")


@pytest.mark.parametrize("gate", ["TURTLE", "RED"])
def test_turtle_or_mc_red_gives_no_entry_that_day(gate: str) -> None:
    data = table({E: -0.03, E + ROWS + 2: -0.03}, after={E + ROWS + 3: 1.0})
    provider = ({"posture": PostureSchedule({day_of(E): "TURTLE"})} if gate == "TURTLE"
                else {"mc": ScheduledAssessor({day_of(E): McReport(0.3, 0.0)})})  # fmt: skip
    result = run(data, **provider)
    assert [t.entry_bar for t in result.trades] == [E + ROWS + 2]
    assert result.counts.halted_days == 1
    assert result.days[E // ROWS].mc_status == ("RED" if gate == "RED" else "OK")


def test_orange_halves_the_regime_multiplier() -> None:
    data = table({E: -0.04}, after={E + 1: 1.0})
    acb = AcbSchedule(dict.fromkeys(data.days, (1.35, 0.8)))
    ok = run(data, acb=acb).trades[0]
    orange = run(data, acb=acb, mc=ScheduledAssessor({day_of(E): McReport(0.0, -0.5)})).trades[0]
    assert orange.regime_size_mult == ok.regime_size_mult * 0.5
    assert ok.regime_size_mult == pytest.approx(1.35 * (1 + 0.8 * (2 / 3) ** 3), abs=1e-12)


def test_hibernate_closes_the_open_position() -> None:
    data = table({E: -0.03, E + ROWS + 5: -0.03}, after={E + 1: 1.0})
    result = run(data, posture=PostureSchedule({day_of(E) + dt.timedelta(days=1): "HIBERNATE"}))
    (t,) = result.trades
    assert (t.exit_bar, t.exit_reason) == (E + ROWS, "HIBERNATE_HALT")  # first bar of the day; no entry after it


def test_subday_acb_normalization_exits_on_the_next_bar() -> None:
    data = table({E: -0.03}, after={E + 1: 1.0})
    daily = dict.fromkeys(data.days, (1.35, 0.8))
    t_update = int(data.ts[E + 4]) - HOUR // 2  # between bars E+3 and E+4: applied at E+4
    (t,) = run(data, acb=AcbSchedule(daily, [AcbUpdate(t_update, 1.0, 0.2)])).trades
    assert (t.exit_bar, t.exit_reason) == (E + 4, "SUBDAY_ACB_NORMALIZATION")
    (kept,) = run(data, acb=AcbSchedule(daily, [AcbUpdate(t_update, 1.2, 0.2)])).trades
    assert kept.exit_reason == "MAX_HOLD"
    flat = run(data, acb=AcbSchedule(daily, [AcbUpdate(int(data.ts[E - 5]), 1.0, 0.2)])).trades[0]
    assert flat.exit_reason == "MAX_HOLD"  # an update while flat closes nothing


def test_order_book_cascade_widens_tp_and_halves_the_hold() -> None:
    book = FixtureOrderBook(macro_state=ObMacro(1, 0))
    data = table({E: -0.03}, after={E + 1: 1.0, E + 3: 0.99})  # pnl 0.01: above 0.0095, below 0.0133
    (t,) = run(data, ob=book).trades
    assert (t.exit_reason, t.bars_held) == ("MAX_HOLD", 60)
    (t,) = run(table({E: -0.03}, after={E + 1: 1.0, E + 3: 0.9866}), ob=book).trades
    assert (t.exit_reason, t.exit_bar) == ("FIXED_TP", E + 3)
    (t,) = run(data).trades
    assert (t.exit_reason, t.exit_bar) == ("FIXED_TP", E + 3)  # the null order book: the fixed 0.0095


def test_order_book_persistent_contradiction_skips_and_thin_books_are_passed_over() -> None:
    data = table({E: -0.03}, after={E + 1: 1.0})
    result = run(data, ob=FixtureOrderBook(signals={"AUSDT": ObSignal(0.2, 0.7, 0.0)}))
    assert result.trades == []
    assert result.counts.ob_skip == 1
    assert len(run(data, ob=FixtureOrderBook(signals={"AUSDT": ObSignal(0.2, 0.5, 0.0)})).trades) == 1
    thin = run(data, ob=FixtureOrderBook(placements={"AUSDT": ObPlacement(0.1, 0.9)}))
    assert thin.trades == []
    assert thin.counts.no_irp_asset == 1


def test_order_book_edge_under_the_seed_profile() -> None:
    data = table({E: -0.03}, after={E + 1: 1.0, E + 3: 0.99})
    (t,) = run(data, SEED, ob=FixtureOrderBook(placements={"AUSDT": ObPlacement(0.8, 0.6)})).trades
    assert t.edge_pct == pytest.approx(0.6 * 5e-4, abs=1e-15)


def test_end_of_data_closes_at_the_last_price() -> None:
    data = table({10 * ROWS + 5: -0.03})  # the decline goes on: no take-profit in the 43 bars left
    result = run(data)
    (t,) = result.trades
    assert (t.exit_reason, t.exit_bar) == ("END_OF_DATA", len(data.ts) - 1)
    assert t.exit_price == data.closes[-1, 0] * 1.0002
    assert result.days[-1].trades == 1
    assert result.days[-1].capital == result.capital


def _trades_with_seed(seed: int, **overrides):
    data = table({E: -0.03, E + 10: -0.03, E + 20: -0.035},
                 after={E + 1: 1.0, E + 3: 0.99, E + 11: 0.99 * 0.99, E + 21: 0.99 * 0.99 * 0.99})  # fmt: skip
    return run(data, engine_config(profile="seed", seed=seed, **overrides)).trades


def test_the_legacy_edge_is_exactly_five_bp_of_notional_on_the_trades_that_drew_it() -> None:
    drew = next(s for s in range(100) if _trades_with_seed(s)[0].edge)
    on, off = _trades_with_seed(drew)[0], _trades_with_seed(drew, ob_edge_bps=0.0)[0]
    assert on.edge_pct == 0.0005
    assert not off.edge
    assert (on.refund_entry, on.refund_exit) == (off.refund_entry, off.refund_exit)  # the draws do not shift
    assert on.notional == off.notional  # the first trade: same capital
    assert on.net - off.net == pytest.approx(0.0005 * on.notional, rel=1e-12)
    for t in _trades_with_seed(drew):
        bonus = (t.refund_entry + t.refund_exit) * 0.0002 + t.edge_pct
        assert t.net == pytest.approx((t.price_return + bonus) * t.notional - t.entry_fee - t.exit_fee, rel=1e-12)
    nodraw = next(s for s in range(100) if not _trades_with_seed(s)[0].edge)
    assert _trades_with_seed(nodraw)[0].net == _trades_with_seed(nodraw, ob_edge_bps=0.0)[0].net


def test_same_seed_same_ledger_other_seed_other_draws() -> None:
    assert _trades_with_seed(42) == _trades_with_seed(42)
    draws = {tuple((t.refund_entry, t.refund_exit, t.edge) for t in _trades_with_seed(s)) for s in range(8)}
    assert len(draws) > 1


def test_drivers_agree_on_a_random_table_with_gaps_updates_and_postures() -> None:
    rng = np.random.default_rng(3)
    n, k, days = 24 * 40, 30, 40
    closes = np.cumprod(1 + rng.normal(-0.0002, 0.004, (n, k)), axis=0) * rng.uniform(0.05, 3, k)
    closes[rng.random((n, k)) < 0.02] = np.nan
    ts = T0 + (np.arange(n, dtype=np.int64) + 1) * HOUR
    dates = tuple(DAY0 + dt.timedelta(days=d) for d in range(days))
    data = ScanData(tuple(f"A{i}USDT" for i in range(k)), dates, np.arange(days + 1, dtype=np.int64) * ROWS, ts,
                    rng.normal(0, 0.015, n), closes)  # fmt: skip
    acb = AcbSchedule({d: (1.35 if i % 3 else 1.0, 0.8 if i % 2 else 0.2) for i, d in enumerate(dates)},
                      [AcbUpdate(int(ts[i * ROWS + 7]), 1.0, 0.2) for i in range(3, 40, 3)])  # fmt: skip
    posture = PostureSchedule({dates[10]: "HIBERNATE", dates[11]: "TURTLE", dates[12]: "STALKER"})
    for cfg in (engine_config(profile="seed", irp_price_mode="returns", max_hold_bars=30),
                engine_config(irp_price_mode="returns", max_hold_bars=12, fixed_tp_pct=0.004, stop_pct=0.01)):  # fmt: skip
        result = run(data, cfg, acb=acb, posture=posture)
        assert len(result.trades) >= 10
        assert {t.exit_reason for t in result.trades} >= {"FIXED_TP", "MAX_HOLD"}
    book = FixtureOrderBook(macro_state=ObMacro(0, -1), signals={"A3USDT": ObSignal(-0.3, 0.2, -0.3)})
    assert len(run(data, engine_config(irp_price_mode="returns", max_hold_bars=30), ob=book).trades) >= 5


@pytest.mark.parametrize("irp", [True, False])
def test_four_hundred_assets_run_with_and_without_irp(irp: bool) -> None:
    """The specification's scaling checks: 400 assets, with IRP ranking all of them at each signal row and
    without it (one fallback asset); both drivers agree."""
    rng = np.random.default_rng(11)
    n, k, days = 24 * 20, 400, 20
    closes = np.cumprod(1 + rng.normal(-0.0003, 0.004, (n, k)), axis=0) * rng.uniform(0.01, 5, k)
    ts = T0 + (np.arange(n, dtype=np.int64) + 1) * HOUR
    data = ScanData(tuple(f"S{i:03d}USDT" for i in range(k)), tuple(DAY0 + dt.timedelta(days=d) for d in range(days)),
                    np.arange(days + 1, dtype=np.int64) * ROWS, ts, rng.normal(0, 0.02, n), closes)  # fmt: skip
    cfg = engine_config(irp_price_mode="returns", max_hold_bars=24, use_asset_selection=irp,
                        dc_fallback_symbol="S007USDT")  # fmt: skip
    result = run(data, cfg)
    assert result.counts.candidates > 20
    assert len(result.trades) > 3
    assert irp or {t.asset for t in result.trades} == {"S007USDT"}
