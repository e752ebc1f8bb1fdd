"""Circuit breakers on hand-drawn bars through the real runner: each fires at exactly its
threshold (``>=``), one tick short of it does not, and what a halt does (cancel, flatten,
refuse, resume) is checked order by order.

FILUSDT 1m bars from tests/backtest/scenario.py (taker fee 0.0005). A long of 10,000 FIL filled
at 10.000 costs a 50 USDT fee; at close `p` the equity is 99,950 + 10,000 x (p - 10).
"""

from __future__ import annotations

import pytest

from tests.backtest.scenario import MIN, T0, flat, run
from vibe_quant.risk.config import PortfolioRiskConfig, RiskConfig, SizingConfig, StrategyRiskConfig

OFF_S = {"max_drawdown_scale_pct": None, "max_drawdown_halt_pct": None, "max_daily_loss_pct": None,
         "max_consecutive_losses": None}  # fmt: skip
OFF_P = {"max_portfolio_drawdown_pct": None, "max_portfolio_daily_loss_pct": None, "max_total_exposure_pct": None,
         "max_correlated_exposure_pct": None}  # fmt: skip


def risk(strategy: dict | None = None, portfolio: dict | None = None) -> RiskConfig:
    """Every breaker off except the ones given."""
    return RiskConfig(strategy_level=StrategyRiskConfig(**{**OFF_S, **(strategy or {})}),
                      portfolio_level=PortfolioRiskConfig(**{**OFF_P, **(portfolio or {})}))  # fmt: skip


def events(r, kind: str) -> list[dict]:
    return [e for e in r.recorder.events if e["type"] == kind]


def bars_at(*closes: float, volume: float = 1e6) -> list[tuple]:
    return [(c, c, c, c, volume) for c in closes]


def dd_rows(low: float) -> list[tuple]:
    # entry signal at bar 0 (close 10), filled at bar 1's open 10.0; bar 3 closes at `low`
    return bars_at(10.0, 10.0, 9.5, low, low, low, low, low)


# -- strategy level -------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "trips"), [(8.505, True), (8.506, False)])
def test_strategy_drawdown_halt_fires_at_exactly_15_percent(low: float, trips: bool) -> None:
    # equity at close 8.505: 99,950 - 14,950 = 85,000 = exactly 15% below the 100,000 peak
    r = run(dd_rows(low), {0: [["go", 1, 10_000.0]], 5: [["go", 1, 100.0]]},
            leverage=2, risk=risk({"max_drawdown_halt_pct": 0.15}))  # fmt: skip
    breakers = events(r, "CIRCUIT_BREAKER")
    if not trips:
        assert breakers == []
        assert [f.reason for f in r.recorder.fills] == ["entry"]
        return
    (b,) = breakers
    assert (b["ts"], b["breaker"], b["limit"], b["permanent"]) == (T0 + 4 * MIN, "drawdown_halt", 0.15, True)
    assert b["value"] == pytest.approx(0.15)
    # flattened at the next open, and the later entry is refused
    assert [(f.side, f.qty, f.price, f.reason) for f in r.recorder.fills] == [
        (1, 10_000.0, 10.0, "entry"), (-1, 10_000.0, low, "halt_drawdown_halt")]  # fmt: skip
    refused = [e for e in events(r, "RISK_CHECK") if e.get("result") == "FAIL"]
    assert [(e["ts"], e["check"]) for e in refused] == [(T0 + 6 * MIN, "strategy_halted")]
    assert r.extra["risk"]["halted_at_end"] == ["Scripted-001"]
    assert r.extra["risk"]["trips"][0]["breaker"] == "drawdown_halt"


@pytest.mark.parametrize(("limit", "scaled"), [(0.10095, True), (0.10096, False)])
def test_drawdown_scaling_halves_the_size_from_its_threshold(limit: float, scaled: bool) -> None:
    # long 10,000 at 10.0 (fee 50), closed at 9.0 (fee 45): equity 89,905 = 10.095% below the peak
    rows = bars_at(10.0, 10.0, 9.5, 9.0, 9.0, 9.0, 9.0)
    cfg = risk({"max_drawdown_scale_pct": limit, "drawdown_scale_factor": 0.5})
    r = run(rows, {0: [["go", 1, 10_000.0]], 3: [["go", 0, 0.0]], 4: [["go", 1, 1_000.0]]},
            leverage=2, risk=cfg)  # fmt: skip
    assert r.recorder.fills[1].price == 9.0
    last = r.recorder.fills[-1]
    assert (last.reason, last.qty) == ("entry", 500.0 if scaled else 1_000.0)
    assert events(r, "CIRCUIT_BREAKER") == []  # scaling is not a halt


def test_daily_loss_halts_until_the_next_utc_day() -> None:
    # 1m bars over midnight: day 1 loses exactly 2% from its first close, day 2 trades again.
    n_day = 1440
    rows = bars_at(*([10.0] * 3 + [9.8] * (n_day - 3) + [9.8] * 5), volume=1e6)
    # long 10,000 at 10.0 with 50 fee: at 9.805 equity = 99,950 - 1,950 = 98,000 = -2.0% exactly
    rows[3] = (9.805, 9.805, 9.805, 9.805, 1e6)
    script = {0: [["go", 1, 10_000.0]], 10: [["go", 1, 100.0]], n_day + 1: [["go", 1, 100.0]]}
    cfg = risk({"max_daily_loss_pct": 0.02, "cooldown_after_halt_hours": 1.0})
    r = run(rows, script, leverage=2, risk=cfg)
    (halt, resumed) = events(r, "CIRCUIT_BREAKER")
    assert (halt["ts"], halt["breaker"], halt["value"]) == (T0 + 4 * MIN, "daily_loss", pytest.approx(0.02))
    assert halt["until"] == T0 + n_day * MIN + 1  # the first close of the next UTC day
    assert (resumed["ts"], resumed["action"]) == (T0 + (n_day + 1) * MIN, "resumed")
    refused = [e["ts"] for e in events(r, "RISK_CHECK") if e.get("result") == "FAIL"]
    assert refused == [T0 + 11 * MIN]
    assert [f.reason for f in r.recorder.fills] == ["entry", "halt_daily_loss", "entry"]


def test_consecutive_losses_halt_then_cooldown() -> None:
    # three losing round trips (fees alone); the halt after the 3rd lasts 5 minutes
    rows = bars_at(*([10.0] * 20))
    script = {0: [["go", 1, 100.0]], 1: [["go", 0, 0]], 2: [["go", 1, 100.0]], 3: [["go", 0, 0]],
              4: [["go", 1, 100.0]], 5: [["go", 0, 0]], 7: [["go", 1, 100.0]], 12: [["go", 1, 100.0]]}  # fmt: skip
    cfg = risk({"max_consecutive_losses": 3, "cooldown_after_halt_hours": 5 / 60})
    r = run(rows, script, risk=cfg)
    halt, resumed = events(r, "CIRCUIT_BREAKER")
    # the 3rd exit fills at bar 6's open (reported at its close, T0 + 7 min): seen at that close
    assert (halt["ts"], halt["breaker"], halt["value"], halt["limit"]) == (T0 + 7 * MIN, "consecutive_losses", 3, 3)
    assert resumed["ts"] == T0 + 12 * MIN
    refused = [e["ts"] for e in events(r, "RISK_CHECK") if e.get("result") == "FAIL"]
    assert refused == [T0 + 8 * MIN]  # bar 7's entry
    assert [f.reason for f in r.recorder.fills].count("entry") == 4  # bars 0, 2, 4 and 12


def test_a_two_loss_run_does_not_trip_a_three_loss_limit() -> None:
    rows = bars_at(*([10.0] * 12))
    script = {0: [["go", 1, 100.0]], 1: [["go", 0, 0]], 2: [["go", 1, 100.0]], 3: [["go", 0, 0]], 6: [["go", 1, 100.0]]}
    r = run(rows, script, risk=risk({"max_consecutive_losses": 3}))
    assert events(r, "CIRCUIT_BREAKER") == []


# -- portfolio level ------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "trips"), [(8.005, True), (8.006, False)])
def test_portfolio_drawdown_halts_trading_at_20_percent(low: float, trips: bool) -> None:
    # 99,950 + 10,000 x (8.005 - 10) = 80,000: exactly 20% below the peak
    r = run(dd_rows(low), {0: [["go", 1, 10_000.0]], 5: [["go", 1, 100.0]]},
            leverage=2, risk=risk(portfolio={"max_portfolio_drawdown_pct": 0.20}))  # fmt: skip
    breakers = events(r, "CIRCUIT_BREAKER")
    assert len(breakers) == (1 if trips else 0)
    if trips:
        assert (breakers[0]["level"], breakers[0]["breaker"]) == ("portfolio", "drawdown_halt")
        assert [f.reason for f in r.recorder.fills] == ["entry", "portfolio_drawdown_halt"]
        refused = [e["check"] for e in events(r, "RISK_CHECK") if e.get("result") == "FAIL"]
        assert refused == ["portfolio_halted"]
        assert r.extra["risk"]["halted_at_end"] == ["portfolio"]


def test_portfolio_halt_sets_nautilus_trading_state_halted(monkeypatch) -> None:
    from nautilus_trader.model.enums import TradingState

    from vibe_quant.risk import gate as gate_module

    seen = []
    monkeypatch.setattr(gate_module.RiskGate, "summary",
                        lambda self: seen.append(self.risk_engine.trading_state) or {"halted_at_end": []})  # fmt: skip
    run(dd_rows(8.0), {0: [["go", 1, 10_000.0]]}, leverage=2,
        risk=risk(portfolio={"max_portfolio_drawdown_pct": 0.20}))  # fmt: skip
    assert seen == [TradingState.HALTED]


def test_portfolio_daily_loss_5_percent() -> None:
    # 99,950 + 10,000 x (9.505 - 10) = 95,000: exactly 5% below the day's first close
    rows = bars_at(10.0, 10.0, 9.7, 9.505, 9.505, 9.505)
    r = run(rows, {0: [["go", 1, 10_000.0]]}, leverage=2,
            risk=risk(portfolio={"max_portfolio_daily_loss_pct": 0.05}))  # fmt: skip
    (b,) = events(r, "CIRCUIT_BREAKER")
    assert (b["ts"], b["breaker"], b["value"]) == (T0 + 4 * MIN, "daily_loss", pytest.approx(0.05))


@pytest.mark.parametrize(("qty", "passes"), [(5_000.0, True), (5_000.1, False)])
def test_total_exposure_limit_50_percent(qty: float, passes: bool) -> None:
    r = run(flat(4), {0: [["go", 1, qty]]},
            risk=risk(portfolio={"max_total_exposure_pct": 0.50}))  # fmt: skip
    check = events(r, "RISK_CHECK")[0]
    assert check["result"] == ("PASS" if passes else "FAIL")
    if not passes:
        assert check["check"] == "max_total_exposure"
        assert r.recorder.fills == []


def test_rolling_24h_drawdown_disables_for_good() -> None:
    # live safety: 5% below the peak of the last 24 h -> disabled, no resume
    rows = bars_at(10.0, 10.0, 10.2, 9.69, 9.69, 9.69, 9.69)
    cfg = risk(portfolio={"rolling_drawdown_pct": 0.05, "cooldown_after_halt_hours": None})
    r = run(rows, {0: [["go", 1, 10_000.0]], 5: [["go", 1, 10.0]]}, leverage=2, risk=cfg)
    (b,) = events(r, "CIRCUIT_BREAKER")
    # peak 99,950 + 2,000 = 101,950 at 10.2; 9.69: 96,850 -> 5.0025% below
    assert (b["breaker"], b["permanent"]) == ("rolling_drawdown", True)
    assert b["value"] == pytest.approx(1 - 96_850 / 101_950)


# -- sizing and live safety through the runner -------------------------------------------------------


def test_sizer_replaces_the_strategy_quantity() -> None:
    sizing = SizingConfig(method="fixed_fractional", risk_per_trade=0.01, max_position_pct=10.0, max_leverage=10.0,
                          max_portfolio_heat=1.0)  # fmt: skip
    r = run(flat(4), {0: [["go", 1, 1.0, 0.5, None]]}, sizing=sizing)
    # 1% of 100,000 over a 0.5 stop distance = 2,000 FIL
    assert r.recorder.fills[0].qty == 2_000.0


def test_live_safety_caps_position_notional_and_leverage() -> None:
    from vibe_quant.risk.config import RISK_PRESETS

    r = run(flat(4), {0: [["go", 1, 9_000.0]]}, leverage=10, risk=RISK_PRESETS["live_safety"])
    assert r.config.leverage == 3.0
    check = events(r, "RISK_CHECK")[0]
    assert check["limits"] == ["max_position_notional_pct"]
    assert check["qty"] == 1_000.0  # 10% of 100,000 at 10.0


def test_kill_switch_cancels_the_brackets_and_flattens(monkeypatch) -> None:
    from vibe_quant.risk import gate as gate_module

    open_at_end = []
    monkeypatch.setattr(gate_module.RiskGate, "summary",
                        lambda self: open_at_end.extend(self.legs[0].strategy.cache.orders_open()) or {})  # fmt: skip
    r = run(dd_rows(8.4), {0: [["go", 1, 10_000.0, 5.0, 5.0]]}, leverage=2,
            risk=risk({"max_drawdown_halt_pct": 0.15}))  # fmt: skip
    assert [f.reason for f in r.recorder.fills] == ["entry", "halt_drawdown_halt"]
    assert r.trades[-1].exit_reason == "halt_drawdown_halt"
    assert open_at_end == []  # the stop-loss and take-profit were cancelled


def test_a_breaker_tripped_at_a_close_blocks_that_same_close_entry() -> None:
    # the Actors run before the strategy at each bar: the reversal asked at the tripping close is refused
    r = run(dd_rows(8.505), {0: [["go", 1, 10_000.0]], 3: [["go", -1, 100.0]]},
            leverage=2, risk=risk({"max_drawdown_halt_pct": 0.15}))  # fmt: skip
    # (the halt's closing order is on its way, so the strategy cannot even send its own close)
    assert [e["ts"] for e in events(r, "RISK_CHECK")] == [T0 + MIN]  # only the first entry's check
    assert [(f.side, f.reason) for f in r.recorder.fills] == [(1, "entry"), (-1, "halt_drawdown_halt")]


# -- post-only entries (live safety) ------------------------------------------------------------------

POST_ONLY = {"prefer_post_only": True, "post_only_bars": 2}


def test_post_only_entry_rests_one_tick_below_and_fills_as_maker() -> None:
    # signal close 10.000 -> buy limit 9.999; bar 1 never goes below 10.0, bar 2 trades at 9.99
    rows = [(10.0, 10.0, 10.0, 10.0, 1e6), (10.0, 10.1, 10.0, 10.05, 1e6), (10.0, 10.0, 9.99, 9.995, 1e6),
            (10.0, 10.0, 10.0, 10.0, 1e6)]  # fmt: skip
    r = run(rows, {0: [["go", 1, 100.0, 1.0, 1.0]]}, risk=risk(portfolio=POST_ONLY))
    order = next(e for e in events(r, "ORDER") if e["reason"] == "entry")
    assert (order["order_type"], order["price"]) == ("LIMIT", 9.999)
    fill = r.recorder.fills[0]
    assert (fill.price, fill.liquidity, fill.fee) == (9.999, "MAKER", pytest.approx(100 * 9.999 * 0.0002))


def test_post_only_entry_not_filled_in_time_is_cancelled_with_its_bracket(monkeypatch) -> None:
    from vibe_quant.risk import gate as gate_module

    open_at_end = []
    monkeypatch.setattr(gate_module.RiskGate, "summary",
                        lambda self: open_at_end.extend(self.legs[0].strategy.cache.orders_open()) or {})  # fmt: skip
    rows = [(10.0, 10.0, 10.0, 10.0, 1e6)] + [(10.0, 10.1, 10.0, 10.05, 1e6)] * 3 + [(9.0, 9.0, 9.0, 9.0, 1e6)] * 2
    r = run(rows, {0: [["go", 1, 100.0, 1.0, 1.0]]}, risk=risk(portfolio=POST_ONLY))
    assert r.recorder.fills == []  # not filled in 2 bars; the later drop to 9.0 is too late
    assert open_at_end == []


def test_alert_hooks_receive_breakers_and_portfolio_refusals(monkeypatch) -> None:
    from vibe_quant.risk import gate as gate_module

    received: list[dict] = []
    monkeypatch.setattr(gate_module, "ALERT_HOOKS", [])

    def broken(event: dict) -> None:
        raise RuntimeError("telegram is down")

    gate_module.register_alert_hook(broken)  # a failing channel must not stop the others or the run
    gate_module.register_alert_hook(received.append)
    run(dd_rows(8.505), {0: [["go", 1, 10_000.0]], 5: [["go", 1, 100.0]]}, leverage=2,
        risk=risk({"max_drawdown_halt_pct": 0.15}))  # fmt: skip
    # the halt alerts once; the entries it refuses afterwards do not repeat it
    assert [(e["type"], e["breaker"]) for e in received] == [("CIRCUIT_BREAKER", "drawdown_halt")]
    received.clear()
    run(flat(4), {0: [["go", 1, 6_000.0]]},
        risk=risk(portfolio={"max_total_exposure_pct": 0.50}))  # fmt: skip
    assert [(e["type"], e["check"]) for e in received] == [("RISK_CHECK", "max_total_exposure")]
