"""Live safety merge (docs/specs.md#live-safety-merge): a scenario table of tighter and looser user values per key."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.errors import ConfigError
from vibe_quant.paper.safety import LIVE_SAFETY, apply_live_safety, show
from vibe_quant.risk.config import RISK_PRESETS, RiskConfig, StrategyRiskConfig

LIMIT = LIVE_SAFETY.portfolio_level


def config(leverage: float = 3.0, leverages: dict | None = None, risk: RiskConfig | None = None) -> BacktestConfig:
    return BacktestConfig(strategy="ema_cross", symbols=("FILUSDT", "NEARUSDT"), timeframe="15m",
                          start=dt.date(2023, 8, 1), end=dt.date(2023, 8, 31), leverage=leverage,
                          leverages=leverages or {}, risk=risk)  # fmt: skip


def user_risk(**portfolio) -> RiskConfig:
    """live_safety with the given portfolio keys changed: only those keys differ from the limit."""
    return msgspec.structs.replace(LIVE_SAFETY, portfolio_level=msgspec.structs.replace(LIMIT, **portfolio))


# (key, user value, "tightened" | "loosened"): the user value differs from live_safety's on that key only.
SCENARIOS = [
    ("max_portfolio_daily_loss_pct", 0.01, "tightened"),
    ("max_portfolio_daily_loss_pct", 0.05, "loosened"),
    ("max_portfolio_daily_loss_pct", None, "loosened"),  # breaker turned off
    ("max_total_exposure_pct", 0.20, "tightened"),
    ("max_total_exposure_pct", 0.50, "loosened"),
    ("max_total_exposure_pct", None, "loosened"),
    ("max_position_notional_pct", 0.05, "tightened"),
    ("max_position_notional_pct", 0.25, "loosened"),
    ("max_leverage", 2.0, "tightened"),
    ("max_leverage", 5.0, "loosened"),
    ("max_leverage", None, "loosened"),
    ("rolling_drawdown_pct", 0.03, "tightened"),
    ("rolling_drawdown_pct", 0.08, "loosened"),
    ("rolling_drawdown_pct", None, "loosened"),
    ("rolling_hours", 48.0, "tightened"),  # the peak of a longer window
    ("rolling_hours", 12.0, "loosened"),
    ("cooldown_after_halt_hours", 24.0, "loosened"),  # live: a halt waits for a manual resume
    ("prefer_post_only", False, "loosened"),
    ("max_portfolio_drawdown_pct", 0.20, "tightened"),  # live_safety has it off: the user's breaker is kept
    ("max_correlated_exposure_pct", 0.30, "tightened"),
]


@pytest.mark.parametrize(("key", "value", "kind"), SCENARIOS, ids=[f"{k}={v}-{w}" for k, v, w in SCENARIOS])
def test_one_key_tighter_or_looser(key: str, value, kind: str) -> None:
    cfg = config(risk=user_risk(**{key: value}))
    entry = {"field": f"risk.portfolio_level.{key}", "limit": getattr(LIMIT, key), "value": value}
    if kind == "tightened":
        safe, limits = apply_live_safety(cfg)
        assert limits["tightened"] == [entry]
        assert limits["loosened"] == []
    else:
        with pytest.raises(ConfigError) as err:
            apply_live_safety(cfg)
        message = str(err.value)
        assert f"risk.portfolio_level.{key} " in message
        field = f"risk.portfolio_level.{key}"
        assert (
            f"{show(field, value)} is looser than the live safety limit {show(field, getattr(LIMIT, key))}" in message
        )
        assert '--allow-looser-limits "REASON"' in message
        safe, limits = apply_live_safety(cfg, allow_looser="tested at this setting on testnet")
        assert limits["loosened"] == [entry]
        assert limits["tightened"] == []
        assert limits["reason"] == "tested at this setting on testnet"
    assert getattr(safe.risk.portfolio_level, key) == value  # the user's value is what trades, either way
    assert limits["applied"][f"risk.portfolio_level.{key}"] == value
    others = {k: v for k, v in msgspec.to_builtins(safe.risk.portfolio_level).items() if k != key}
    assert others == {k: v for k, v in msgspec.to_builtins(LIMIT).items() if k != key}


def test_no_risk_config_trades_live_safety_and_caps_the_venue_leverage() -> None:
    safe, limits = apply_live_safety(config(leverage=10.0, leverages={"NEARUSDT": 2.0, "FILUSDT": 5.0}))
    assert safe.risk == LIVE_SAFETY
    assert (safe.leverage, safe.leverages) == (3.0, {"NEARUSDT": 2.0, "FILUSDT": 3.0})
    assert limits["capped"] == [{"field": "leverage", "limit": 3.0, "value": 10.0},
                                {"field": "leverages.FILUSDT", "limit": 3.0, "value": 5.0}]  # fmt: skip
    assert limits["tightened"] == limits["loosened"] == []
    assert limits["applied"]["leverage"] == 3.0
    assert limits["applied"]["risk.portfolio_level.prefer_post_only"] is True
    assert limits["reason"] is None


def test_an_allowed_looser_leverage_cap_lets_the_venue_leverage_through() -> None:
    safe, limits = apply_live_safety(config(leverage=5.0, risk=user_risk(max_leverage=5.0)), allow_looser="5x sized")
    assert safe.leverage == 5.0
    assert limits["capped"] == []
    assert limits["loosened"] == [{"field": "risk.portfolio_level.max_leverage", "limit": 3.0, "value": 5.0}]


def test_the_user_strategy_breakers_are_kept_and_seed_default_names_every_looser_key() -> None:
    seed_default = RISK_PRESETS["seed_default"]
    with pytest.raises(ConfigError) as err:
        apply_live_safety(config(risk=seed_default))
    for key in ("max_portfolio_daily_loss_pct", "max_total_exposure_pct", "max_position_notional_pct", "max_leverage",
                "rolling_drawdown_pct", "cooldown_after_halt_hours", "prefer_post_only"):  # fmt: skip
        assert f"risk.portfolio_level.{key} " in str(err.value)
    strategy = StrategyRiskConfig(max_drawdown_halt_pct=0.08)
    safe, limits = apply_live_safety(config(risk=RiskConfig(strategy_level=strategy, portfolio_level=LIMIT)))
    assert safe.risk.strategy_level == strategy
    assert limits["tightened"] == limits["loosened"] == []


def test_show_names_what_null_means() -> None:
    assert show("risk.portfolio_level.cooldown_after_halt_hours", None) == "null (a manual resume)"
    assert show("risk.portfolio_level.max_leverage", None) == "off (null)"
    assert show("risk.portfolio_level.max_leverage", 3.0) == "3.0"


def test_an_empty_reason_is_refused() -> None:
    with pytest.raises(ConfigError, match="--allow-looser-limits: give the reason"):
        apply_live_safety(config(), allow_looser="  ")
