"""Strategy kinds: one rule for names in every command, binding and its errors, run ids by kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest
import yaml

from vibe_quant.backtest.config import BacktestConfig, parse_config
from vibe_quant.backtest.persist import save_strategy_version
from vibe_quant.backtest.plan import plan_run
from vibe_quant.dsl.loader import SHIPPED_DIR, DslError
from vibe_quant.errors import ConfigError
from vibe_quant.home import Home
from vibe_quant.risk.config import SizingConfig
from vibe_quant.state import StateManager
from vibe_quant.strategy.registry import KINDS, LegSpec, StrategySpec, bind, find_strategy, strategy_kind

DAY = dt.date(2023, 8, 1)


def config(**kw) -> BacktestConfig:
    return BacktestConfig(**{"strategy": "ema_cross", "symbols": ("FILUSDT",), "timeframe": "5m", "start": DAY,
                             "end": DAY, **kw})  # fmt: skip


def test_names_resolve_by_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path / "home").ensure()
    assert find_strategy("ema_cross").kind == "python"  # a Python strategy name wins over its YAML twin
    shipped = find_strategy("ema_cross.yaml")  # NAME.yaml not in the working directory: the shipped one
    assert (shipped.kind, shipped.name, shipped.document["timeframe"]) == ("dsl", "ema_cross", "5m")
    assert find_strategy("rsi_mean_reversion_mtf").document["additional_timeframes"] == ["1h", "4h"]
    # a file in the working directory
    doc = yaml.safe_load((SHIPPED_DIR / "bollinger_squeeze.yaml").read_text())
    doc.update(name="my_squeeze", timeframe="1h")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(tmp_path)
    assert find_strategy("mine.yaml").name == "my_squeeze"
    # a saved version shadows the shipped document of that name
    doc.update(name="rsi_mean_reversion_mtf")
    with StateManager(home.db_path) as db:
        save_strategy_version(db, "dsl", doc)
    assert find_strategy("rsi_mean_reversion_mtf", home.db_path).document["timeframe"] == "1h"
    assert find_strategy("rsi_mean_reversion_mtf").document["timeframe"] == "5m"  # no database: shipped
    with pytest.raises(
        ConfigError, match=r"unknown strategy 'rsi_mean_revrsion'.*Did you mean 'rsi_mean_reversion_mtf'"
    ):
        find_strategy("rsi_mean_revrsion", home.db_path)
    with pytest.raises(DslError, match=r"absent\.yaml"):
        find_strategy("absent.yaml")


def test_kinds_and_bindings_refuse_what_they_cannot_run() -> None:
    assert list(KINDS) == ["python", "dsl", "lpi", "rl", "dolphin"]
    with pytest.raises(ConfigError, match="kind 'genome': choose one of python, dsl, lpi, rl, dolphin"):
        config(kind="genome")
    with pytest.raises(ConfigError, match="names no scan directory"):
        plan_run(config(kind="dolphin", strategy="dolphin_champion", document={"engine": {}}))
    dolphin = plan_run(config(kind="dolphin", strategy="d", document={"scans": "/x", "engine": {"max_hold_bars": 24}}))
    assert dolphin.strategy.config.max_hold_bars == 24
    with pytest.raises(ConfigError, match="in mode 'array': it runs on its array backtest"):
        dolphin.strategy.build([], None)
    with pytest.raises(ConfigError, match=r"policy source '/nowhere\.npy' does not exist"):
        plan_run(config(kind="rl", strategy="rl:x", document={"policy": "replay", "source": "/nowhere.npy"}))
    with pytest.raises(ConfigError, match=r"no policy field 'windw'.*Did you mean 'window'"):
        plan_run(config(kind="rl", strategy="rl:x", document={"policy": "replay", "source": "/", "windw": 3}))
    with pytest.raises(ConfigError, match=r"unknown strategy kind 'dls'.*Did you mean 'dsl'"):
        strategy_kind("dls")
    with pytest.raises(ConfigError, match=r"has no parameter 'fats'.*Did you mean 'fast'"):
        plan_run(config(params={"fats": 3}))
    with pytest.raises(ConfigError, match="ema_cross needs 0 < fast < slow"):
        plan_run(config(params={"fast": 200}))
    with pytest.raises(ConfigError, match="DSL strategy 'x' has no document"):
        bind(StrategySpec(kind="dsl", name="x", symbols=("FILUSDT",), timeframe="5m"))
    with pytest.raises(ConfigError, match="cannot import nowhere:Thing"):
        plan_run(config(strategy="nowhere:Thing"))
    doc = find_strategy("ema_cross.yaml").document
    with pytest.raises(ConfigError, match="fixed_fractional sizing needs a stop-loss"):
        plan_run(config(kind="dsl", document=doc, sizing=SizingConfig(method="fixed_fractional")))


def test_runs_stored_before_kinds_read_as_dsl() -> None:
    doc = find_strategy("ema_cross.yaml").document
    old = {"strategy": "ema_cross", "dsl": doc, "symbols": ["FILUSDT"], "timeframe": "15m", "start": "2023-08-01",
           "end": "2023-08-02"}  # fmt: skip
    cfg = parse_config(old)
    assert (cfg.kind, cfg.document) == ("dsl", doc)
    assert parse_config({**old, "dsl": None}).kind == "python"


def test_bound_strategies_build_node_configs_that_round_trip() -> None:
    from nautilus_trader.trading.config import StrategyFactory

    legs = [LegSpec("FILUSDT", "FILUSDT-PERP.BINANCE", "FILUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL"),
            LegSpec("NEARUSDT", "NEARUSDT-PERP.BINANCE", "NEARUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL")]  # fmt: skip
    single = plan_run(config(symbols=("FILUSDT", "NEARUSDT"), params={"fast": 7})).strategy.importable(legs)
    assert [c.config["order_id_tag"] for c in single] == ["001", "002"]
    built = [StrategyFactory.create(c) for c in single]
    assert [(s.config.fast, s.config.instrument_id) for s in built] == [(7, legs[0].instrument_id),
                                                                        (7, legs[1].instrument_id)]  # fmt: skip
    basket = plan_run(config(strategy="ema_cross_basket", symbols=("FILUSDT", "NEARUSDT"))).strategy.importable(legs)
    (only,) = basket
    assert StrategyFactory.create(only).config.instrument_ids == ("FILUSDT-PERP.BINANCE", "NEARUSDT-PERP.BINANCE")
    doc = find_strategy("rsi_mean_reversion_mtf").document
    (dsl,) = plan_run(config(kind="dsl", document=doc, params={"rsi.period": 9})).strategy.importable(legs[:1])
    assert msgspec.json.decode(StrategyFactory.create(dsl).config.document)["indicators"]["rsi"]["period"] == 9


def test_lookback_of_each_kind() -> None:
    assert plan_run(config(params={"slow": 50})).strategy.lookback_bars == 50
    doc = find_strategy("rsi_mean_reversion_mtf").document
    # the 4h EMA's warm-up on 5m bars dominates: 4h = 48 five-minute bars per 4h bar
    bars = plan_run(config(kind="dsl", document=doc)).strategy.lookback_bars
    period = doc["indicators"]["ema_trend_4h"]["period"]
    assert bars >= period * 48


def test_each_kind_describes_its_parameters_for_forms():
    from vibe_quant.strategy.registry import find_strategy, strategy_parameters

    py = strategy_parameters(find_strategy("ema_cross"))
    assert (py["fast"].type, py["fast"].default, py["exposure"].type, py["allow_short"].type) == (
        "integer", 20, "float", "boolean")  # fmt: skip
    assert "instrument_id" not in py
    assert "order_id_tag" not in py
    dsl = strategy_parameters(find_strategy("rsi_mean_reversion_mtf"))
    rsi = dsl["rsi.period"]
    assert (rsi.type, rsi.default, rsi.min, rsi.max, rsi.sweep) == ("integer", 14, 2, 100, [7, 10, 14, 21, 28])
    assert dsl["take_profit.percent"].sweep == [2.0, 3.0, 4.0, 5.0]  # a sweep key without a schema entry
