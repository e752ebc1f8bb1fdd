"""Grid expansion: the DSL's sweep, CLI overrides, constraints between parameters (skipped with a
count), points the strategy rejects, sampling of large grids."""

from __future__ import annotations

import pytest
import yaml

from vibe_quant.backtest.config import parse_config
from vibe_quant.dsl.loader import SHIPPED_DIR, DslError, load_file, load_text
from vibe_quant.dsl.sweep import expand, grid_size
from vibe_quant.errors import ConfigError
from vibe_quant.screening.pipeline import SweepSpec, build_grid


def ema_cross(**extra) -> str:
    doc = yaml.safe_load((SHIPPED_DIR / "ema_cross.yaml").read_text())
    doc.update(extra)
    return yaml.safe_dump(doc, sort_keys=False)


def test_sweep_section_is_the_cartesian_product() -> None:
    analysis = load_file(SHIPPED_DIR / "rsi_mean_reversion_mtf.yaml")
    e = expand(analysis)
    assert e.total == grid_size(analysis) == 5 * 4 * 4 * 4 * 3 * 4 * 4 == len(e.points)
    assert e.points[0] == {"rsi.period": 7, "rsi_oversold_threshold": 20, "rsi_overbought_threshold": 65,
                           "ema_fast.period": 10, "ema_trend_4h.period": 30, "stop_loss.atr_multiplier": 1.5,
                           "take_profit.percent": 2.0}  # fmt: skip
    assert not e.skipped


def test_overrides_replace_and_add_axes_and_constraints_skip_with_counts() -> None:
    analysis = load_text(ema_cross(sweep={"ema_fast.period": [10, 20, 30], "ema_slow.period": [20, 30, 50]}))
    e = expand(analysis, constraints=["ema_fast.period < ema_slow.period"])
    # (10,20) (10,30) (10,50) (20,30) (20,50) (30,50) survive; (20,20) (30,20) (30,30) do not
    assert len(e.points) == 6
    assert e.total == 9
    assert e.skipped == {"constraint ema_fast.period < ema_slow.period": 3}
    e = expand(analysis, {"ema_slow.period": [25]}, ["ema_fast.period < ema_slow.period"])
    assert [p["ema_fast.period"] for p in e.points] == [10, 20]
    # a key the sweep does not vary takes the document's value (ema_slow.period: 100 in the file)
    e = expand(analysis, {"ema_fast.period": [50, 150], "ema_slow.period": [100]}, ["ema_fast.period < 120"])
    assert e.points == [{"ema_fast.period": 50, "ema_slow.period": 100}]


def test_constraints_in_the_strategy_file_are_checked_with_their_line() -> None:
    text = ema_cross(sweep={"ema_fast.period": [10, 60], "ema_slow.period": [50]},
                     sweep_constraints=["ema_fast.period < ema_slow.period"])  # fmt: skip
    e = expand(load_text(text))
    assert e.points == [{"ema_fast.period": 10, "ema_slow.period": 50}]
    bad = ema_cross(sweep_constraints=["ema_fats.period < ema_slow.period", "ema_fast.period <<< 3"])
    with pytest.raises(DslError) as info:
        load_text(bad, "s.yaml")
    message = str(info.value)
    assert "s.yaml:" in message
    assert "Did you mean 'ema_fast'" in message
    assert "KEY OP KEY-or-NUMBER" in message


def test_points_the_strategy_rejects_are_skipped_and_counted() -> None:
    with pytest.raises(
        ConfigError, match=r"0 is outside the range parameters_schema declares for ema_fast.period: \[2, 200\]"
    ):
        expand(load_text(ema_cross()), {"ema_fast.period": [0, 10]})
    analysis = load_text(ema_cross(parameters_schema={}))  # no declared range: the strategy itself decides
    e = expand(analysis, {"ema_fast.period": [0, 10]})
    assert [p["ema_fast.period"] for p in e.points] == [10, 10, 10]  # x3 ema_slow values
    assert sum(e.skipped.values()) == 3
    assert next(iter(e.skipped)).startswith("rejected by the strategy")


def test_bad_overrides_are_clear_errors() -> None:
    analysis = load_text(ema_cross())
    with pytest.raises(ConfigError, match=r"'ema_fst' is not a declared indicator.*ema_fast"):
        expand(analysis, {"ema_fst.period": [5]})
    with pytest.raises(ConfigError, match="at least one value"):
        expand(analysis, {"ema_fast.period": []})
    with pytest.raises(ConfigError, match="KEY OP KEY-or-NUMBER"):
        expand(analysis, constraints=["ema_fast.period"])


def _base(doc: dict):
    return parse_config({"strategy": doc["name"], "dsl": doc, "symbols": ["FILUSDT"], "timeframe": doc["timeframe"],
                         "start": "2023-08-01", "end": "2023-08-31", "mode": "screening"})  # fmt: skip


@pytest.mark.heavy  # heavy (11 s): sampling on small grids is tested above
def test_large_grids_are_sampled_deterministically() -> None:
    doc = yaml.safe_load((SHIPPED_DIR / "rsi_mean_reversion_mtf.yaml").read_text())
    a = build_grid(_base(doc), SweepSpec(max_points=100, sample_seed=7))
    b = build_grid(_base(doc), SweepSpec(max_points=100, sample_seed=7))
    c = build_grid(_base(doc), SweepSpec(max_points=100, sample_seed=8))
    assert a.points == b.points
    assert a.points != c.points
    assert len(a.points) == 100
    assert a.sampled_from == 15360
    assert len({str(p) for p in a.points}) == 100
    assert len(build_grid(_base(doc), SweepSpec(max_points=0)).points) == 15360


def test_a_python_strategy_grid_is_its_sweep_axes_with_constraints_and_its_own_check() -> None:
    python = parse_config({"strategy": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "5m",
                           "start": "2023-08-01", "end": "2023-08-31"})  # fmt: skip
    grid = build_grid(python, SweepSpec(overrides={"fast": [10, 20, 30], "slow": [25, 50], "exposure": [0.5]},
                                        constraints=["fast < slow"]))  # fmt: skip
    assert grid.points == [{"fast": 10, "slow": 25, "exposure": 0.5}, {"fast": 10, "slow": 50, "exposure": 0.5},
                           {"fast": 20, "slow": 25, "exposure": 0.5}, {"fast": 20, "slow": 50, "exposure": 0.5},
                           {"fast": 30, "slow": 50, "exposure": 0.5}]  # fmt: skip
    assert (grid.total, dict(grid.skipped)) == (6, {"constraint fast < slow": 1})
    # a point the strategy's own check rejects is skipped and counted; the default slow (100) bounds fast
    rejected = build_grid(python, SweepSpec(overrides={"fast": [50, 150]}))
    assert rejected.points == [{"fast": 50}]
    assert rejected.skipped == {"rejected by the strategy: ema_cross needs 0 < fast < slow, got fast=150, slow=100": 1}
    assert build_grid(python, SweepSpec()).points == [{}]  # no axis: the strategy as configured
    with pytest.raises(ConfigError, match=r"sweep key 'fats': no such parameter.*Did you mean 'fast'"):
        build_grid(python, SweepSpec(overrides={"fats": [1]}))
    with pytest.raises(ConfigError, match="'slo' is not a parameter"):
        build_grid(python, SweepSpec(overrides={"fast": [1]}, constraints=["fast < slo"]))
