"""The ``lpi`` strategy kind: names, binding and its errors, building per leg (ticks only), the
importable configs of paper/live, sweeps and form parameters (docs/specs.md#lpi-strategies)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from nautilus_trader.trading.config import StrategyFactory

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.plan import plan_run
from vibe_quant.errors import ConfigError
from vibe_quant.lpi.config import LpiStrategyConfig
from vibe_quant.lpi.kind import LPI
from vibe_quant.lpi.strategy import LpiStrategy
from vibe_quant.strategy.ports import EventLog, StrategyPorts
from vibe_quant.strategy.registry import LegSpec, StrategySpec, bind, find_strategy, strategy_parameters

TICK_LEG = LegSpec("BTCUSDT", "BTCUSDT-PERP.BINANCE", "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL")
BAR_LEG = LegSpec("BTCUSDT", "BTCUSDT-PERP.BINANCE", "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")


def spec(name: str = "lpi_reversion", **params) -> StrategySpec:
    return StrategySpec(kind="lpi", name=name, params=params, symbols=("BTCUSDT",), timeframe="1m")


def test_names_resolve() -> None:
    assert (find_strategy("lpi_reversion").kind, find_strategy("lpi_cascade").name) == ("lpi", "lpi_cascade")
    with pytest.raises(ConfigError, match=r"unknown strategy 'lpi_reverson'.*Did you mean 'lpi_reversion'"):
        find_strategy("lpi_reverson")
    plan = plan_run(BacktestConfig(strategy="lpi_reversion", kind="lpi", symbols=("BTCUSDT",), timeframe="1m",
                                   start=dt.date(2026, 5, 8), end=dt.date(2026, 5, 8), params={"theta_lpi": 2.5}))  # fmt: skip
    bound = plan.strategy
    assert (bound.precomputed, bound.has_stop_loss, bound.lookback_bars) == (False, None, None)
    assert bound.config(TICK_LEG).variant == "reversion"
    assert bound.config(TICK_LEG).theta_lpi == 2.5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"theta_lp": 2.0}, r"strategy 'lpi_reversion' has no parameter 'theta_lp'.*Did you mean 'theta_lpi'"),
        ({"variant": "cascade"}, r"no parameter 'variant' \(the variant is the strategy's name\)"),
        ({"instrument_id": "X"}, r"no parameter 'instrument_id'"),
        ({"exit_lpi": 4.0}, r"lpi.exit_lpi: 4.0 must be in \[0, theta_lpi=3.0\)"),
        ({"clock": "tick"}, r"lpi.clock: 'tick' is not one of volume, time"),
        ({"tranches": "many"}, r"strategy 'lpi_reversion' parameters: Expected `int`, got `str`"),
        ({"markout_ms": "1s,5s"}, r"lpi.markout_ms: '1s,5s' is not a list of integers"),
    ],
)
def test_bind_refuses(params, message) -> None:
    with pytest.raises(ConfigError, match=message):
        bind(spec(**params))


def test_build_per_leg_needs_ticks() -> None:
    bound = bind(spec(markout_ms="500,2000", use_lev=True))
    with pytest.raises(ConfigError, match=r"^LPI strategies need tick data: add --ticks"):
        bound.build([BAR_LEG], StrategyPorts(None, EventLog()))
    ports = StrategyPorts(None, EventLog())
    second = LegSpec("ETHUSDT", "ETHUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-INTERNAL")
    built = bound.build([TICK_LEG, second], ports)
    assert [type(s) for s in built] == [LpiStrategy, LpiStrategy]
    assert [s.config.order_id_tag for s in built] == ["001", "002"]
    assert [s.instrument_id.value for s in built] == ["BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"]
    assert built[0].ports is ports
    assert (built[0].config.markout_ms, built[0].config.use_lev, built[0].config.variant) == (
        (500, 2000),
        True,
        "reversion",
    )


def test_importable_round_trip() -> None:
    bound = bind(spec("lpi_cascade", theta_lpi=2.0, hold_ms=10_000))
    (imp,) = bound.importable([TICK_LEG])
    strategy = StrategyFactory.create(imp)
    assert isinstance(strategy, LpiStrategy)
    assert strategy.ports is None  # a node's strategy resolves its ports when it starts
    assert strategy.config == bound.config(TICK_LEG)
    assert (strategy.config.variant, strategy.config.hold_ms) == ("cascade", 10_000)


def test_code_names_every_lpi_module() -> None:
    code = bind(spec()).code()
    assert any(b"class Decider" in c for c in code)
    assert any(b"class FeatureEngine" in c for c in code)
    assert any(b"class LpiStrategyConfig" in c for c in code)


def test_sweep_skips_rejected_points() -> None:
    grid = LPI.expand(spec(), {"theta_lpi": [2.0, 3.0], "exit_lpi": [0.5, 2.5]}, [])
    assert grid.points == [{"theta_lpi": 2.0, "exit_lpi": 0.5}, {"theta_lpi": 3.0, "exit_lpi": 0.5},
                           {"theta_lpi": 3.0, "exit_lpi": 2.5}]  # fmt: skip
    assert grid.n_skipped == 1
    grid = LPI.expand(spec(), {"theta_exh_high": [1.0, 2.0]}, ["theta_exh_high > exh_exit"])
    assert grid.points == [{"theta_exh_high": 2.0}]  # exh_exit's default 1.0
    with pytest.raises(ConfigError, match=r"sweep key 'theta': no such parameter.*Did you mean"):
        LPI.expand(spec(), {"theta": [1.0]}, [])


def test_parameters_for_forms() -> None:
    params = strategy_parameters(find_strategy("lpi_cascade"))
    assert params["theta_lpi"].type == "float"
    assert params["theta_lpi"].default == 3.0
    assert (params["use_lev"].type, params["tranches"].type, params["clock"].type) == ("boolean", "integer", "string")
    assert params["markout_ms"].default == "1000,5000,30000"
    assert params["markout_guard_bps"].default == 10.0
    assert not {"variant", "instrument_id", "bar_type", "ports", "order_id_tag"} & params.keys()
    fields = {f.name for f in msgspec.structs.fields(LpiStrategyConfig)}
    assert set(params) < fields


def test_variant_subclasses_refuse_the_other_variant() -> None:
    from vibe_quant.lpi.strategy import LpiCascade, LpiReversion

    config = bind(spec("lpi_cascade")).config(TICK_LEG)
    assert LpiCascade(config).config.variant == "cascade"
    with pytest.raises(ConfigError, match="LpiReversion: config variant 'cascade', expected 'reversion'"):
        LpiReversion(config)


def test_bar_mode_backtest_is_refused(cli, tmp_path) -> None:
    from tests.conftest import MIRROR
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(tmp_path / "home").ensure()
    day = dt.date(2023, 8, 1)
    run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), day, dt.date(2023, 8, 2)), InstrumentSpecs())
    code, text = cli(["--home", str(home.root), "backtest", "run", "--strategy", "lpi_reversion", "--symbols", "FILUSDT",
                      "--timeframe", "1m", "--start", "2023-08-01", "--end", "2023-08-01", "--param", "theta_lpi=2.5"])  # fmt: skip
    assert code == 2
    assert "LPI strategies need tick data: add --ticks" in text
    assert "Traceback" not in text
