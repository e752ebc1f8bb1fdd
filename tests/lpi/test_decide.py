"""Scenario tables for the LPI decision machine (docs/specs.md#lpi-strategies): hand-drawn snapshot,
tick, fill and markout sequences with the orders both variants must send, the gates, the kill
switch, the sizing formula by hand, deterministic cancel/replace and the ablation toggles."""

from __future__ import annotations

import dataclasses
import math

import pytest

from vibe_quant.errors import ConfigError
from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.lpi.decide import (
    Cancel,
    Decider,
    Event,
    InstrumentRules,
    Market,
    MarkoutBook,
    Place,
    post_price,
    target_notional,
)
from vibe_quant.lpi.features import SignalSnapshot
from vibe_quant.lpi.params import LpiParams

MS = 1_000_000
RULES = InstrumentRules(tick=0.1, step=0.001, min_qty=0.001)
BID, ASK = 29999.9, 30000.1  # mid 30000, spread 0.067 bps
EQUITY = 100_000.0
QTY = 3.333  # min(n_max 100k, 1e5 * 0.5 * 0.0005 / (0.001^2 + 1e-4) = 247,525, 2 x 1e5) / 30000, floored


def cfg(**kw) -> LpiStrategyConfig:
    return LpiStrategyConfig(instrument_id="BTCUSDT-PERP.BINANCE", bar_type="BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL",
                             **kw)  # fmt: skip


def snap(lpi, exh, lev=math.nan, spread=0.2, mid=30000.0, sigma=0.001, age_ms=0, depth=math.nan) -> SignalSnapshot:
    return SignalSnapshot(0, 1, 0.0, 0.0, 0.0, spread, mid, depth, 0.0, 0.0, 0.0, lpi, exh, lev, sigma**2, sigma,
                          age_ms * MS, 0)  # fmt: skip


def drive(config: LpiStrategyConfig, steps) -> list[tuple]:
    """Run `steps` through a Decider; each step ``(t_ms, what, *args)`` with what in snap (SignalSnapshot),
    tick, fill (seq, qty, price), done (seq[, rejected]), mark (seq, horizon_ms, bps), touch (bid, ask).
    Returns the actions as tuples ``(t_ms, "place", seq, side, qty, price, reduce_only, reason)``,
    ``(t_ms, "cancel", seq, reason)``, ``(t_ms, EVENT_KIND, reason-or-cause)``."""
    d = Decider(config, RULES)
    bid, ask = BID, ASK
    out = []
    for t, what, *args in steps:
        mk = Market(t * MS, bid, ask, EQUITY)
        if what == "touch":
            bid, ask = args
            continue
        if what == "snap":  # emitted at its close unless the step says otherwise
            s = args[0] if args[0].ts_event else dataclasses.replace(args[0], ts_event=t * MS)
            acts = d.on_snapshot(s, mk)
        elif what == "tick":
            acts = d.on_tick(mk)
        elif what == "fill":
            acts = d.on_fill(args[0], args[1], args[2], mk) + d.on_tick(mk)
        elif what == "done":
            acts = d.on_done(args[0], mk, *args[1:])
        elif what == "mark":
            acts = d.on_markout(*args, mk)
        for a in acts:
            if isinstance(a, Place):
                assert a.ts == t * MS
                out.append((t, "place", a.seq, a.side, a.qty, a.price, a.reduce_only, a.reason))
            elif isinstance(a, Cancel):
                out.append((t, "cancel", a.seq, a.reason))
            else:
                assert isinstance(a, Event)
                out.append((t, a.kind, a.fields.get("reason", a.fields.get("cause"))))
    return out


# -- sizing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "sigma", "kw", "expected"),
    [
        (10_000.0, 0.01, {}, 12_500.0),  # 10,000 x 0.5 x 0.0005 / (1e-4 + 1e-4)
        (10_000.0, 0.0, {}, 20_000.0),  # 25,000 by the formula, capped at max_leverage 2 x E
        (1_000_000.0, 0.0, {}, 100_000.0),  # 25,000,000 by the formula, capped at n_max
        (10_000.0, 0.0, {"lambda_jump": 0.0}, 20_000.0),  # no floor and no variance: the caps decide
        (10_000.0, 0.02, {"kappa": 1.0, "mu": 0.001}, 10_000.0 * 0.001 / (4e-4 + 1e-4)),
        (10_000.0, math.nan, {}, 0.0),  # no sigma yet: nothing
        (0.0, 0.01, {}, 0.0),
    ],
)
def test_target_notional_by_hand(equity, sigma, kw, expected) -> None:
    assert target_notional(equity, sigma, cfg(**kw)) == pytest.approx(expected, rel=1e-12)


def test_post_price_never_crosses() -> None:
    assert post_price(1, 100.0, 100.5, 0.1, 0) == 100.0
    assert post_price(1, 100.0, 100.5, 0.1, 2) == 100.2
    assert post_price(1, 100.0, 100.1, 0.1, 3) == 100.0  # capped one tick below the ask
    assert post_price(-1, 100.0, 100.5, 0.1, 2) == 100.3
    assert post_price(-1, 100.0, 100.1, 0.1, 3) == 100.1  # at least one tick above the bid
    assert math.isnan(post_price(1, math.nan, 100.0, 0.1, 0))


# -- Variant A -----------------------------------------------------------------------------------------


def test_cascade_enters_with_the_pressure_and_exits_when_exhaustion_rises() -> None:
    got = drive(cfg(variant="cascade"), [
        (1000, "snap", snap(lpi=4.0, exh=-1.0)),  # sell pressure, not exhausted: short at market
        (1100, "fill", 1, QTY, 29990.0),
        (2000, "snap", snap(lpi=5.0, exh=0.9)),  # EXH still below exh_exit 1.0: hold
        (3000, "snap", snap(lpi=2.0, exh=1.5)),  # EXH crosses above 1.0: exit at market, reduce-only
        (3100, "fill", 2, QTY, 29980.0),
        (4000, "snap", snap(lpi=-4.0, exh=-2.0)),  # buy pressure: long
    ])  # fmt: skip
    assert got == [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, -1, QTY, None, False, "entry"),
        (3000, "SIGNAL", "exh_exit"),
        (3000, "place", 2, 1, QTY, None, True, "exh_exit"),
        (4000, "SIGNAL", "entry"),
        (4000, "place", 3, 1, QTY, None, False, "entry"),
    ]


def test_cascade_needs_both_conditions() -> None:
    got = drive(cfg(variant="cascade"), [
        (1000, "snap", snap(lpi=2.9, exh=-1.0)),  # |LPI| below theta 3
        (2000, "snap", snap(lpi=4.0, exh=0.1)),  # EXH above theta_exh_low 0
        (3000, "snap", snap(lpi=math.nan, exh=-1.0)),  # warm-up
        (4000, "snap", snap(lpi=-3.0, exh=0.0)),  # both at their thresholds: long
    ])  # fmt: skip
    assert got == [(4000, "SIGNAL", "entry"), (4000, "place", 1, 1, QTY, None, False, "entry")]


def test_cascade_time_stop_and_spread_gate() -> None:
    steps = [(1000, "snap", snap(lpi=4.0, exh=-1.0)), (1050, "fill", 1, QTY, 29990.0),
             (30_999, "tick"), (31_000, "tick"), (31_001, "tick")]  # fmt: skip
    assert drive(cfg(variant="cascade"), steps)[2:] == [
        (31_000, "SIGNAL", "time_stop"),
        (31_000, "place", 2, 1, QTY, None, True, "time_stop"),
    ]
    steps = [(1000, "snap", snap(lpi=4.0, exh=-1.0)), (1050, "fill", 1, QTY, 29990.0),
             (2000, "snap", snap(lpi=4.0, exh=-1.0, spread=45.0))]  # 15 bps: above 10, below the kill's 50  # fmt: skip
    assert drive(cfg(variant="cascade"), steps)[2:] == [
        (2000, "SIGNAL", "spread_gate"),
        (2000, "place", 2, 1, QTY, None, True, "spread_gate"),
    ]


def test_no_overlapping_entries() -> None:
    got = drive(cfg(variant="cascade"), [
        (1000, "snap", snap(lpi=4.0, exh=-1.0)),
        (1500, "snap", snap(lpi=6.0, exh=-3.0)),  # the entry is still on its way
        (1600, "fill", 1, QTY, 29990.0),
        (2000, "snap", snap(lpi=-6.0, exh=-3.0)),  # in a position: no second entry, no reversal
    ])  # fmt: skip
    assert got == [(1000, "SIGNAL", "entry"), (1000, "place", 1, -1, QTY, None, False, "entry")]


@pytest.mark.parametrize(
    ("s", "reason"),
    [
        (snap(lpi=4.0, exh=-1.0, age_ms=5001), "stale_data"),
        (snap(lpi=4.0, exh=-1.0, age_ms=-1), "stale_data"),  # no touch yet
        (snap(lpi=4.0, exh=-1.0, spread=31.0), "wide_spread"),  # 10.3 bps
        (snap(lpi=4.0, exh=-1.0, spread=math.nan, mid=math.nan), "wide_spread"),  # unknown spread fails
        (snap(lpi=4.0, exh=-1.0, sigma=math.nan), "no_sigma"),
    ],
)
def test_gates_block_entries(s, reason) -> None:
    for variant, exh in (("cascade", -1.0), ("reversion", 2.0)):
        s2 = SignalSnapshot(**{**s.__dict__, "exh": exh})
        assert drive(cfg(variant=variant), [(1000, "snap", s2)]) == [(1000, "SIGNAL", reason)]


def test_freshness_counts_from_the_touch_to_the_decision() -> None:
    late = dataclasses.replace(snap(lpi=4.0, exh=-1.0, age_ms=3000), ts_event=10_000 * MS)  # emitted 2.5 s late
    assert drive(cfg(variant="cascade"), [(12_000, "snap", late)])[0] == (12_000, "SIGNAL", "entry")  # 5.0 s
    assert drive(cfg(variant="cascade"), [(12_001, "snap", late)]) == [(12_001, "SIGNAL", "stale_data")]


def test_size_below_the_minimum_is_skipped() -> None:
    got = drive(cfg(variant="cascade", n_max=20.0), [(1000, "snap", snap(lpi=4.0, exh=-1.0))])  # 20 USD < 0.001 BTC
    assert got == [(1000, "SIGNAL", "size_below_min")]


# -- kill switch ---------------------------------------------------------------------------------------


def test_kill_switch_on_depth_collapse_flattens_and_cools_down() -> None:
    warm = [(i * 1000, "snap", snap(lpi=0.0, exh=0.0, depth=1e6)) for i in range(1, 31)]  # 30 = min_periods
    got = drive(cfg(variant="cascade"), [
        *warm,
        (31_000, "snap", snap(lpi=4.0, exh=-1.0, depth=1e6)),
        (31_100, "fill", 1, QTY, 29990.0),
        (32_000, "snap", snap(lpi=4.0, exh=-1.0, depth=1.9e5)),  # below 0.2 x the median 1e6
        (32_100, "fill", 2, QTY, 29995.0),
        (60_000, "snap", snap(lpi=4.0, exh=-1.0, depth=1e6)),  # within the 60 s cooldown
        (92_000, "snap", snap(lpi=4.0, exh=-1.0, depth=1e6)),
    ])  # fmt: skip
    assert got == [
        (31_000, "SIGNAL", "entry"),
        (31_000, "place", 1, -1, QTY, None, False, "entry"),
        (32_000, "KILL_SWITCH", "depth"),
        (32_000, "SIGNAL", "kill_switch"),
        (32_000, "place", 2, 1, QTY, None, True, "kill_switch"),
        (60_000, "SIGNAL", "kill_cooldown"),
        (92_000, "SIGNAL", "entry"),
        (92_000, "place", 3, -1, QTY, None, False, "entry"),
    ]


def test_kill_switch_on_spread_cancels_resting_entries() -> None:
    got = drive(cfg(variant="reversion"), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (2000, "snap", snap(lpi=4.0, exh=2.0, spread=151.0)),  # 50.3 bps
        (2001, "done", 1),
        (2500, "snap", snap(lpi=4.0, exh=2.0, spread=151.0)),  # still wide: one KILL_SWITCH event per episode
    ])  # fmt: skip
    assert got == [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, 1, 1.111, BID, False, "entry"),
        (2000, "KILL_SWITCH", "spread"),
        (2000, "SIGNAL", "kill_switch"),
        (2000, "cancel", 1, "kill_switch"),
    ]


# -- Variant B -----------------------------------------------------------------------------------------


def test_reversion_posts_tranches_against_the_pressure_and_exits_on_normalisation() -> None:
    got = drive(cfg(variant="reversion", improve_ticks=1), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),  # sell pressure exhausted: buy, post-only at bid + 1 tick
        (1200, "fill", 1, 1.111, 30000.0),
        (1300, "touch", 29999.5, 29999.8),
        (1400, "fill", 2, 1.111, 30000.0),  # the next tranche goes out at the touch of the tick after the fill
        (1700, "fill", 3, 1.111, 29999.6),
        (2000, "snap", snap(lpi=1.0, exh=0.0)),  # above exit_lpi 0.5: hold
        (3000, "snap", snap(lpi=0.4, exh=0.0)),  # normalised: market exit (maker_only False)
    ])  # fmt: skip
    assert got == [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, 1, 1.111, 30000.0, False, "entry"),
        (1200, "place", 2, 1, 1.111, 30000.0, False, "tranche"),
        (1400, "place", 3, 1, 1.111, 29999.6, False, "tranche"),
        (3000, "SIGNAL", "exit_normalised"),
        (3000, "place", 4, -1, QTY, None, True, "exit_normalised"),
    ]


def test_reversion_hard_stop_on_reacceleration_only_in_the_prior_direction() -> None:
    base = [(1000, "snap", snap(lpi=4.0, exh=2.0)), (1100, "fill", 1, 1.111, BID)]
    assert drive(cfg(variant="reversion"), [*base, (2000, "snap", snap(lpi=-6.0, exh=0.0))])[3:] == []
    assert drive(cfg(variant="reversion"), [*base, (2000, "snap", snap(lpi=5.0, exh=0.0))])[3:] == [
        (2000, "SIGNAL", "hard_stop"),
        (2000, "cancel", 2, "hard_stop"),  # the tranche resting since the fill
        (2000, "place", 3, -1, 1.111, None, True, "hard_stop"),
    ]


def test_reversion_hard_stop_replaces_a_resting_maker_exit() -> None:
    got = drive(cfg(variant="reversion", tranches=1, maker_only=True), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (1100, "fill", 1, QTY, BID),
        (2000, "snap", snap(lpi=0.2, exh=0.0)),  # normalised: post-only reduce-only exit at the ask
        (2500, "snap", snap(lpi=5.5, exh=0.0)),  # re-acceleration: cancel it, then exit at market
        (2600, "done", 2),
    ])  # fmt: skip
    assert got[2:] == [
        (2000, "SIGNAL", "exit_normalised"),
        (2000, "place", 2, -1, QTY, ASK, True, "exit_normalised"),
        (2500, "SIGNAL", "hard_stop"),
        (2500, "cancel", 2, "hard_stop"),
        (2600, "place", 3, -1, QTY, None, True, "hard_stop"),
    ]


def test_reversion_adverse_selection_guard() -> None:
    base = [(1000, "snap", snap(lpi=4.0, exh=2.0)), (1100, "fill", 1, 1.111, BID)]
    # first horizon (1000 ms) markout -12 bps < -10: exit, cancel the resting tranche, stop adding
    got = drive(cfg(variant="reversion"), [*base, (2100, "mark", 1, 1000, -12.0), (2200, "tick")])
    assert got[3:] == [
        (2100, "SIGNAL", "adverse_selection"),
        (2100, "cancel", 2, "adverse_selection"),
        (2100, "place", 3, -1, 1.111, None, True, "adverse_selection"),
    ]
    # a later horizon, a mild markout, or the guard disabled: nothing
    for mark, kw in (((1, 5000, -50.0), {}), ((1, 1000, -9.0), {}), ((1, 1000, -50.0), {"markout_guard_bps": None})):
        assert drive(cfg(variant="reversion", **kw), [*base, (6100, "mark", *mark)])[3:] == []
    # Variant A has no guard
    a = [(1000, "snap", snap(lpi=4.0, exh=-1.0)), (1100, "fill", 1, QTY, BID), (2100, "mark", 1, 1000, -50.0)]
    assert drive(cfg(variant="cascade"), a)[2:] == []


def test_deterministic_cancel_replace_on_ttl() -> None:
    steps = [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (2999, "tick"),
        (3000, "tick"),  # 2,000 ms after it was posted: cancel
        (3001, "tick"),  # not twice
        (3050, "touch", 29999.0, 29999.2),
        (3050, "done", 1),  # cancelled: the same quantity again at the new touch
        (3060, "done", 2, True),  # rejected (post-only would cross): posted again one time-to-live later
        (5059, "tick"),
        (5060, "tick"),
        (7059, "tick"),
        (7060, "tick"),
    ]
    expected = [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, 1, 1.111, BID, False, "entry"),
        (3000, "cancel", 1, "ttl"),
        (3050, "place", 2, 1, 1.111, 29999.0, False, "tranche"),
        (5060, "place", 3, 1, 1.111, 29999.0, False, "tranche"),
        (7060, "cancel", 3, "ttl"),
    ]
    assert drive(cfg(variant="reversion"), steps) == expected
    assert drive(cfg(variant="reversion"), steps) == expected  # same inputs, same ids and times


def test_normalisation_before_any_fill_cancels_and_ends_the_trade() -> None:
    got = drive(cfg(variant="reversion"), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (2000, "snap", snap(lpi=0.1, exh=0.0)),
        (2100, "done", 1),
        (3000, "snap", snap(lpi=-4.0, exh=2.0)),  # flat and idle again: a new entry (sell)
    ])  # fmt: skip
    assert got == [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, 1, 1.111, BID, False, "entry"),
        (2000, "SIGNAL", "exit_normalised"),
        (2000, "cancel", 1, "exit_normalised"),
        (3000, "SIGNAL", "entry"),
        (3000, "place", 2, -1, 1.111, ASK, False, "entry"),
    ]


def test_fill_after_the_exit_decision_is_exited_too() -> None:
    got = drive(cfg(variant="reversion"), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (2000, "snap", snap(lpi=0.1, exh=0.0)),  # cancel sent...
        (2010, "fill", 1, 0.5, BID),  # ...but part of it filled first
        (2020, "done", 1),
    ])  # fmt: skip
    assert got[2:] == [
        (2000, "SIGNAL", "exit_normalised"),
        (2000, "cancel", 1, "exit_normalised"),
        (2020, "place", 2, -1, 0.5, None, True, "exit_normalised"),
    ]


# -- ablation toggles ----------------------------------------------------------------------------------


LEV_STEPS = [
    (1000, "snap", snap(lpi=4.0, exh=2.0, lev=math.nan)),  # no open interest: the filter fails
    (2000, "snap", snap(lpi=4.0, exh=2.0, lev=0.5)),  # below theta_lev 1.0
    (3000, "snap", snap(lpi=4.0, exh=2.0, lev=1.5)),
    (3100, "fill", 1, 1.111, BID),
    (4000, "snap", snap(lpi=0.1, exh=0.0, lev=1.5)),
]


def test_lev_filter_and_its_ablation() -> None:
    with_lev = drive(cfg(variant="reversion", use_lev=True), LEV_STEPS)
    assert with_lev[:4] == [
        (1000, "SIGNAL", "lev_filter"),
        (2000, "SIGNAL", "lev_filter"),
        (3000, "SIGNAL", "entry"),
        (3000, "place", 1, 1, 1.111, BID, False, "entry"),
    ]
    # Without the prior, the first snapshot enters; from the same state on, nothing else differs.
    without = drive(cfg(variant="reversion", use_lev=False), LEV_STEPS[:1])
    assert without == [(1000, "SIGNAL", "entry"), (1000, "place", 1, 1, 1.111, BID, False, "entry")]
    shifted = [(t + 2000 if t < 3000 else t, *rest) for t, *rest in LEV_STEPS[2:]]
    assert drive(cfg(variant="reversion", use_lev=False), shifted) == with_lev[2:]
    # Variant A never reads LEV
    a = [(1000, "snap", snap(lpi=4.0, exh=-1.0, lev=math.nan))]
    assert drive(cfg(variant="cascade", use_lev=True), a) == drive(cfg(variant="cascade"), a)


def strip_prices(actions):
    return [a[:5] + a[6:] if a[1] == "place" else a for a in actions]


def test_maker_only_changes_order_types_only() -> None:
    a_steps = [
        (1000, "snap", snap(lpi=4.0, exh=-1.0)),
        (1100, "fill", 1, QTY, ASK),
        (2000, "snap", snap(lpi=1.0, exh=2.0)),
    ]
    taker, maker = drive(cfg(variant="cascade"), a_steps), drive(cfg(variant="cascade", maker_only=True), a_steps)
    assert strip_prices(taker) == strip_prices(maker)
    assert [a[5] for a in taker if a[1] == "place"] == [None, None]
    assert [a[5] for a in maker if a[1] == "place"] == [ASK, None]  # post-only sell entry; the EXH exit stays market
    b_steps = [(1000, "snap", snap(lpi=4.0, exh=2.0)), (1100, "fill", 1, 1.111, BID),
               (2000, "snap", snap(lpi=0.1, exh=0.0)), (2050, "done", 2)]  # fmt: skip
    taker, maker = drive(cfg(variant="reversion"), b_steps), drive(cfg(variant="reversion", maker_only=True), b_steps)
    assert strip_prices(taker) == strip_prices(maker)
    assert [a[5] for a in taker if a[1] == "place"][-1] is None
    assert [a[5] for a in maker if a[1] == "place"][-1] == ASK  # post-only reduce-only normalisation exit


# -- markouts ------------------------------------------------------------------------------------------


def test_markouts_use_the_first_mid_at_or_after_the_horizon() -> None:
    book = MarkoutBook((1000, 5000))
    book.fill("O-1", 1, 100.0, 10 * MS)
    book.fill("O-2", -1, 101.0, 500 * MS)
    assert book.mid(1009 * MS, 100.5) == []  # before 10 ms + 1 s
    first = book.mid(1010 * MS, 100.5)
    assert [(m["order_id"], m["horizon_ms"], m["mid"]) for m in first] == [("O-1", 1000, 100.5)]
    assert first[0]["markout_bps"] == pytest.approx(50.0)  # bought at 100, mid 100.5: +50 bps
    assert book.mid(1600 * MS, math.nan) == []  # no mid: nothing completes
    second = book.mid(1700 * MS, 102.0)
    assert [(m["order_id"], m["horizon_ms"]) for m in second] == [("O-2", 1000)]
    assert second[0]["markout_bps"] == pytest.approx(-1e4 / 101.0)  # sold at 101, mid 102: adverse
    assert [(m["order_id"], m["horizon_ms"]) for m in book.mid(9 * 10**9, 99.0)] == [("O-1", 5000), ("O-2", 5000)]


# -- configuration -------------------------------------------------------------------------------------


def test_signal_defaults_are_the_engines() -> None:
    assert cfg().lpi_params() == LpiParams()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"variant": "momentum"}, "lpi.variant: 'momentum' is not one of cascade, reversion"),
        ({"theta_lpi": 0.0}, "lpi.theta_lpi: 0.0 must be > 0"),
        ({"exit_lpi": 3.0}, "lpi.exit_lpi: 3.0 must be in [0, theta_lpi=3.0)"),
        ({"reaccel_lpi": 2.0}, "lpi.reaccel_lpi: 2.0 must exceed theta_lpi=3.0"),
        ({"exh_exit": -1.0}, "lpi.exh_exit: -1.0 must be >= theta_exh_low=0.0"),
        ({"kappa": 1.5}, "lpi.kappa: 1.5 must be in (0, 1]"),
        ({"tranches": 0}, "lpi.tranches: 0 must be > 0"),
        ({"kill_spread_bps": 5.0}, "lpi.kill_spread_bps: 5.0 is below max_spread_bps=10.0"),
        ({"kill_depth_frac": 1.0}, "lpi.kill_depth_frac: 1.0 must be in [0, 1)"),
        ({"markout_ms": (5000, 1000)}, "lpi.markout_ms: (5000, 1000) must be positive horizons in ascending order"),
        ({"markout_guard_bps": -1.0}, "lpi.markout_guard_bps: -1.0 must be >= 0"),
        ({"window": 10}, "lpi.min_periods: 30 exceeds window 10"),
        ({"max_leverage": 0.0}, "lpi.max_leverage: 0.0 must be > 0"),
        ({"improve_ticks": -1}, "lpi.improve_ticks: -1 must be >= 0"),
    ],
)
def test_impossible_parameters(kw, message) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        cfg(**kw).check()
    assert str(err.value).startswith(message)


def test_a_denied_market_exit_is_retried_one_ttl_later_not_at_once() -> None:
    got = drive(cfg(variant="cascade"), [
        (1000, "snap", snap(lpi=4.0, exh=-1.0)),
        (1100, "fill", 1, QTY, 29990.0),
        (2000, "snap", snap(lpi=1.0, exh=2.0)),
        (2000, "done", 2, True),  # denied (synchronously): no immediate resend
        (3999, "tick"),
        (4000, "tick"),
    ])  # fmt: skip
    assert got[2:] == [
        (2000, "SIGNAL", "exh_exit"),
        (2000, "place", 2, 1, QTY, None, True, "exh_exit"),
        (4000, "place", 3, 1, QTY, None, True, "exh_exit"),
    ]


def test_a_foreign_flattening_ends_the_trade() -> None:
    d = Decider(cfg(variant="cascade"), RULES)
    mk = Market(1000 * MS, BID, ASK, EQUITY)
    d.on_snapshot(snap(lpi=4.0, exh=-1.0), mk)
    d.on_fill(1, QTY, 29990.0, mk)
    assert d.busy
    assert d.on_foreign_fill(1, QTY, mk) == []  # a risk gate bought the short back
    assert not d.busy
    assert d.trade is None


def test_partial_fills_and_maker_exit_time_to_live() -> None:
    got = drive(cfg(variant="reversion", tranches=1, maker_only=True), [
        (1000, "snap", snap(lpi=4.0, exh=2.0)),
        (1500, "fill", 1, 1.0, BID),  # part of the single tranche
        (3000, "tick"),  # its time-to-live: cancel
        (3010, "done", 1),  # the unfilled 2.333 go out again at the touch
        (3020, "fill", 2, 2.333, BID),
        (4000, "snap", snap(lpi=0.2, exh=0.0)),  # normalised: post-only exit of the whole position
        (4500, "fill", 3, 0.333, ASK),
        (6000, "tick"),  # the exit's time-to-live
        (6010, "touch", 30000.4, 30000.6),
        (6010, "done", 3),  # the rest of the position at the new ask
    ])  # fmt: skip
    assert got == [
        (1000, "SIGNAL", "entry"),
        (1000, "place", 1, 1, QTY, BID, False, "entry"),
        (3000, "cancel", 1, "ttl"),
        (3010, "place", 2, 1, 2.333, BID, False, "tranche"),
        (4000, "SIGNAL", "exit_normalised"),
        (4000, "place", 3, -1, QTY, ASK, True, "exit_normalised"),
        (6000, "cancel", 3, "ttl"),
        (6010, "place", 4, -1, 3.0, 30000.6, True, "exit_normalised"),
    ]
