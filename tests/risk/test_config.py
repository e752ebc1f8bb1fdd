"""Sizing and risk configurations: the file shapes, errors that name the place, the built-in
presets' numbers (docs/specs.md#risk-presets), presets in a real SQLite state database, YAML files, and
what a risk config does to a BacktestConfig."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import msgspec
import pytest
import yaml

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.errors import ConfigError, UserError
from vibe_quant.risk.config import (
    RISK_PRESETS,
    SIZING_PRESETS,
    RiskConfig,
    SizingConfig,
    ensure_presets,
    resolve_risk,
    resolve_sizing,
    risk_from_data,
    save_preset,
    sizing_from_data,
)
from vibe_quant.state import StateManager

SEED_001_SIZING = {"method": "fixed_fractional",
                   "config": {"risk_per_trade": 0.02, "max_position_pct": 0.10, "max_leverage": 20}}  # fmt: skip

SEED_001_RISK = """\
strategy_level:
  max_drawdown_scale_pct: 0.10
  max_drawdown_halt_pct: 0.15
  max_daily_loss_pct: 0.02
  max_consecutive_losses: 10
  cooldown_after_halt_hours: 24
portfolio_level:
  max_portfolio_drawdown_pct: 0.20
  max_portfolio_daily_loss_pct: 0.05
  max_total_exposure_pct: 0.50
  max_correlated_exposure_pct: 0.30
"""

CUSTOM_RISK = """\
strategy_level:
  max_drawdown_scale_pct: 0.08
  max_drawdown_halt_pct: 0.12
  max_daily_loss_pct: null
  max_consecutive_losses: 6
  cooldown_after_halt_hours: 12
portfolio_level:
  max_portfolio_drawdown_pct: 0.25
  max_portfolio_daily_loss_pct: 0.04
  max_total_exposure_pct: 0.75
  max_correlated_exposure_pct: null
"""


# -- sizing_from_data ------------------------------------------------------------------------------


def test_sizing_seed_shape() -> None:
    cfg = sizing_from_data(SEED_001_SIZING, "sizing.yaml")
    assert cfg == SizingConfig(method="fixed_fractional", risk_per_trade=0.02, max_position_pct=0.10, max_leverage=20.0)
    assert isinstance(cfg.max_leverage, float)
    custom = sizing_from_data({"method": "kelly", "config": {"kelly_fraction": 0.25, "kelly_min_trades": 30}}, "x")
    assert (custom.method, custom.kelly_fraction, custom.kelly_min_trades) == ("kelly", 0.25, 30)
    assert custom.payoff_ratio == SizingConfig(method="kelly").payoff_ratio  # left out: the default


def test_sizing_flat_shape() -> None:
    cfg = sizing_from_data({"method": "atr", "risk_per_trade": 0.01, "atr_period": 20, "atr_multiplier": 3}, "x")
    assert (cfg.method, cfg.risk_per_trade, cfg.atr_period, cfg.atr_multiplier) == ("atr", 0.01, 20, 3.0)
    named = sizing_from_data({"method": "kelly", "name": "mine", "description": "half Kelly", "config": None}, "x")
    assert named == SizingConfig(method="kelly")


def test_sizing_unknown_method_suggests_the_right_one() -> None:
    with pytest.raises(
        ConfigError, match=r"(?i)sizing\.yaml: method 'fixed_fractionl'.*did you mean 'fixed_fractional'"
    ):
        sizing_from_data({"method": "fixed_fractionl"}, "sizing.yaml")
    with pytest.raises(ConfigError, match=r"sizing\.yaml: a sizing config needs `method:`"):
        sizing_from_data({"config": {"risk_per_trade": 0.02}}, "sizing.yaml")


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_sizing_unknown_key_names_the_place_and_the_keys(shape: str) -> None:
    data = {"method": "fixed_fractional", "config": {"risk_per_trad": 0.01}}
    if shape == "flat":
        data = {"method": "fixed_fractional", "risk_per_trad": 0.01}
    with pytest.raises(ConfigError) as exc:
        sizing_from_data(data, "presets/my_sizing.yaml")
    msg = str(exc.value)
    assert msg.startswith("presets/my_sizing.yaml:")
    assert "risk_per_trad" in msg
    assert "known keys" in msg
    assert "max_portfolio_heat" in msg  # the list of keys is there
    assert "did you mean 'risk_per_trade'" in msg.lower()


@pytest.mark.parametrize(
    ("key", "value"),
    [("risk_per_trade", 1.5), ("risk_per_trade", 0.0), ("max_leverage", 200), ("kelly_min_trades", 0),
     ("kelly_lookback", 1), ("payoff_ratio", -1.0)],
)  # fmt: skip
def test_sizing_out_of_range_names_the_key(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as exc:
        sizing_from_data({"method": "kelly", "config": {key: value}}, "s.yaml")
    assert str(exc.value).startswith("s.yaml:")
    assert key in str(exc.value)


# -- risk_from_data --------------------------------------------------------------------------------


def test_risk_seed_yaml_keys() -> None:
    cfg = risk_from_data(yaml.safe_load(SEED_001_RISK), "risk.yaml")
    assert cfg == RISK_PRESETS["seed_default"]
    custom = risk_from_data(yaml.safe_load(CUSTOM_RISK), "risk.yaml")
    s, p = custom.strategy_level, custom.portfolio_level
    assert (s.max_drawdown_scale_pct, s.max_drawdown_halt_pct, s.max_consecutive_losses) == (0.08, 0.12, 6)
    assert s.cooldown_after_halt_hours == 12.0
    assert (p.max_portfolio_drawdown_pct, p.max_portfolio_daily_loss_pct, p.max_total_exposure_pct) == (
        0.25,
        0.04,
        0.75,
    )


def test_risk_null_turns_a_breaker_off_and_a_missing_key_keeps_its_default() -> None:
    cfg = risk_from_data(yaml.safe_load(CUSTOM_RISK), "risk.yaml")
    assert cfg.strategy_level.max_daily_loss_pct is None
    assert cfg.portfolio_level.max_correlated_exposure_pct is None
    only = risk_from_data({"portfolio_level": {"max_total_exposure_pct": 0.4}}, "r.yaml")
    assert only.strategy_level == RiskConfig().strategy_level
    assert only.portfolio_level.max_total_exposure_pct == 0.4
    assert only.portfolio_level.max_portfolio_drawdown_pct == 0.20
    off = risk_from_data({"strategy_level": {"cooldown_after_halt_hours": None}}, "r.yaml")
    assert off.strategy_level.cooldown_after_halt_hours is None  # auto-disable


def test_risk_unknown_block() -> None:
    with pytest.raises(ConfigError, match=r"r\.yaml: unknown block\(s\) \['portfolio'\]"):
        risk_from_data({"strategy_level": {}, "portfolio": {"max_total_exposure_pct": 0.3}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"r\.yaml: a risk config needs"):
        risk_from_data({"portfolio": {}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"r\.yaml: a risk config needs"):
        risk_from_data([1, 2], "r.yaml")


def test_risk_unknown_key_names_the_block() -> None:
    with pytest.raises(ConfigError) as exc:
        risk_from_data({"portfolio_level": {"max_total_exposure": 0.3}}, "r.yaml")
    msg = str(exc.value)
    assert msg.startswith("r.yaml: portfolio_level:")
    assert "max_total_exposure" in msg
    assert "known keys" in msg
    assert "did you mean 'max_total_exposure_pct'" in msg.lower()
    with pytest.raises(ConfigError, match=r"r\.yaml: strategy_level: .*max_drawdown_halt_pct"):
        risk_from_data({"strategy_level": {"max_drawdown_halt_pct": 1.5}}, "r.yaml")


# -- presets ---------------------------------------------------------------------------------------


def test_seed_default_preset_has_seed_001_numbers() -> None:
    s, p = RISK_PRESETS["seed_default"].strategy_level, RISK_PRESETS["seed_default"].portfolio_level
    assert (s.max_drawdown_scale_pct, s.max_drawdown_halt_pct, s.max_daily_loss_pct, s.max_consecutive_losses,
            s.cooldown_after_halt_hours) == (0.10, 0.15, 0.02, 10, 24)  # fmt: skip
    assert s.drawdown_scale_factor == 0.5
    assert (p.max_portfolio_drawdown_pct, p.max_portfolio_daily_loss_pct, p.max_total_exposure_pct,
            p.max_correlated_exposure_pct) == (0.20, 0.05, 0.50, 0.30)  # fmt: skip


def test_live_safety_preset_has_seed_000_numbers() -> None:
    s, p = RISK_PRESETS["live_safety"].strategy_level, RISK_PRESETS["live_safety"].portfolio_level
    assert p.max_leverage == 3
    assert p.max_position_notional_pct == 0.10
    assert p.max_total_exposure_pct == 0.30
    assert p.max_portfolio_daily_loss_pct == 0.02
    assert (p.rolling_drawdown_pct, p.rolling_hours) == (0.05, 24)
    assert p.cooldown_after_halt_hours is None  # anything breached disables trading until resumed
    assert p.prefer_post_only is True
    assert s.cooldown_after_halt_hours is None


def test_sizing_presets() -> None:
    assert tuple(SIZING_PRESETS) == ("fixed_fractional", "kelly", "atr")
    assert {name: cfg.method for name, cfg in SIZING_PRESETS.items()} == {n: n for n in SIZING_PRESETS}
    ff = SIZING_PRESETS["fixed_fractional"]
    assert (ff.risk_per_trade, ff.max_position_pct, ff.max_leverage) == (0.02, 0.10, 20)  # example in docs/specs.md


# -- presets in the state database -----------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path):
    with StateManager(tmp_path / "s.db") as manager:
        yield manager


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_ensure_presets_is_idempotent(state: StateManager) -> None:
    assert (state.count("sizing_configs"), state.count("risk_configs")) == (0, 0)
    ensure_presets(state)
    assert (state.count("sizing_configs"), state.count("risk_configs")) == (3, 2)
    ensure_presets(state)
    assert (state.count("sizing_configs"), state.count("risk_configs")) == (3, 2)
    assert [r["name"] for r in state.find("sizing_configs")] == ["fixed_fractional", "kelly", "atr"]
    assert [r["name"] for r in state.find("risk_configs")] == ["seed_default", "live_safety"]


def test_resolve_builtin_presets(state: StateManager) -> None:
    cfg, row_id = resolve_sizing("kelly", state)
    assert cfg == SIZING_PRESETS["kelly"]
    assert row_id == state.find("sizing_configs", name="kelly")[0]["id"]
    for name in RISK_PRESETS:
        rcfg, rid = resolve_risk(name, state)
        assert rcfg == RISK_PRESETS[name]
        assert rid == state.find("risk_configs", name=name)[0]["id"]


def test_unknown_preset(state: StateManager) -> None:
    with pytest.raises(UserError, match=r"(?i)--risk seed_defualt: no such preset.*did you mean 'seed_default'"):
        resolve_risk("seed_defualt", state)
    with pytest.raises(
        UserError, match=r"(?i)no such preset; presets: fixed_fractional, kelly, atr.*did you mean 'atr'"
    ):
        resolve_sizing("atrr", state)


def test_save_and_edit_a_preset(state: StateManager, tmp_path: Path) -> None:
    ensure_presets(state)
    row_id = save_preset(state, "risk", "mine", write(tmp_path / "mine.yaml", CUSTOM_RISK))
    cfg, rid = resolve_risk("mine", state)
    assert rid == row_id
    assert cfg == risk_from_data(yaml.safe_load(CUSTOM_RISK), "x")
    assert cfg.strategy_level.max_drawdown_halt_pct == 0.12
    # saving again under the same name edits it
    edited = CUSTOM_RISK.replace("max_drawdown_halt_pct: 0.12", "max_drawdown_halt_pct: 0.14")
    assert save_preset(state, "risk", "mine", write(tmp_path / "mine.yaml", edited)) == row_id
    assert state.count("risk_configs") == 3
    assert resolve_risk("mine", state)[0].strategy_level.max_drawdown_halt_pct == 0.14
    # a sizing preset too
    sid = save_preset(state, "sizing", "tight", write(tmp_path / "s.yaml", yaml.safe_dump(SEED_001_SIZING)))
    scfg, got = resolve_sizing("tight", state)
    assert (got, scfg.method, scfg.max_leverage) == (sid, "fixed_fractional", 20.0)
    assert state.count("sizing_configs") == 4


def test_an_edited_builtin_survives_ensure_presets(state: StateManager, tmp_path: Path) -> None:
    ensure_presets(state)
    (before,) = state.find("risk_configs", name="seed_default")
    save_preset(state, "risk", "seed_default", write(tmp_path / "r.yaml", CUSTOM_RISK))
    ensure_presets(state)
    ensure_presets(state)
    assert state.count("risk_configs") == 2
    cfg, rid = resolve_risk("seed_default", state)
    assert rid == before["id"]
    assert cfg.strategy_level.max_drawdown_halt_pct == 0.12
    assert cfg != RISK_PRESETS["seed_default"]


def test_a_file_instead_of_a_preset(state: StateManager, tmp_path: Path) -> None:
    sizing_file = write(tmp_path / "sizing.yaml", "method: atr\nconfig:\n  atr_period: 21\n")
    cfg, row_id = resolve_sizing(str(sizing_file), state)
    assert (cfg.method, cfg.atr_period, row_id) == ("atr", 21, None)
    risk_file = write(tmp_path / "risk.yml", CUSTOM_RISK)
    rcfg, rid = resolve_risk(str(risk_file), state)
    assert (rcfg.strategy_level.max_consecutive_losses, rid) == (6, None)
    assert state.count("risk_configs") == 0  # a file is not stored


def test_yaml_syntax_error_names_the_file_and_line(state: StateManager, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "method: kelly\nconfig:\n  risk_per_trade: 0.02\n  a: b: c\n")
    with pytest.raises(ConfigError, match=re.escape(f"{bad} line 4: not valid YAML")):
        resolve_sizing(str(bad), state)
    with pytest.raises(ConfigError, match=re.escape(f"{bad} line 4")):
        save_preset(state, "sizing", "bad", bad)
    top = write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        resolve_risk(str(top), state)


def test_missing_file(state: StateManager, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        resolve_risk(str(tmp_path / "nope.yaml"), state)
    with pytest.raises(UserError, match="no such file"):
        resolve_sizing(str(tmp_path / "nope.yaml"), state)
    with pytest.raises(UserError, match="cannot read"):
        save_preset(state, "risk", "x", tmp_path / "nope.yaml")


def test_an_invalid_file_names_the_file(state: StateManager, tmp_path: Path) -> None:
    f = write(tmp_path / "r.yaml", "portfolio_level:\n  max_total_exposure: 0.3\n")
    with pytest.raises(ConfigError, match=re.escape(f"{f}: portfolio_level: ") + ".*known keys"):
        resolve_risk(str(f), state)
    with pytest.raises(ConfigError, match=re.escape(f"{f}: portfolio_level")):
        save_preset(state, "risk", "broken", f)
    assert state.count("risk_configs", name="broken") == 0


# -- BacktestConfig ---------------------------------------------------------------------------------


def backtest(**kw) -> BacktestConfig:
    return BacktestConfig(strategy="ema_cross", symbols=("FILUSDT", "BTCUSDT"), timeframe="5m",
                          start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 31), **kw)  # fmt: skip


def test_live_safety_caps_the_leverage() -> None:
    cfg = backtest(leverage=10, leverages={"FILUSDT": 20, "BTCUSDT": 2}, risk=RISK_PRESETS["live_safety"])
    resolved = cfg.resolved()
    assert resolved.leverage == 3.0
    assert resolved.leverages == {"FILUSDT": 3.0, "BTCUSDT": 2.0}
    assert resolved.leverage_for("FILUSDT") == 3.0
    free = backtest(leverage=10, leverages={"FILUSDT": 20}, risk=RISK_PRESETS["seed_default"]).resolved()
    assert (free.leverage, free.leverages) == (10.0, {"FILUSDT": 20.0})  # no cap in seed_default


def test_sizing_and_risk_are_part_of_the_run_hash() -> None:
    plain = backtest().canonical_json()
    with_sizing = backtest(sizing=SIZING_PRESETS["fixed_fractional"]).canonical_json()
    assert plain != with_sizing
    assert with_sizing != backtest(sizing=SIZING_PRESETS["kelly"]).canonical_json()
    assert with_sizing != backtest(sizing=SizingConfig(method="fixed_fractional", risk_per_trade=0.01)).canonical_json()
    assert json.loads(with_sizing)["sizing"] == msgspec.to_builtins(SIZING_PRESETS["fixed_fractional"])
    assert plain != backtest(risk=RISK_PRESETS["seed_default"]).canonical_json()
    assert (
        backtest(sizing=SIZING_PRESETS["kelly"]).canonical_json()
        == backtest(sizing=SizingConfig(method="kelly")).canonical_json()
    )
