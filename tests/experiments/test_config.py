"""experiment.yaml: resolution, the deterministic experiment id, walk-forward folds and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest
import yaml

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.experiments.config import (
    FEE_TIERS,
    experiment_from_data,
    experiment_from_text,
    load_experiment,
    to_ns,
)
from vibe_quant.experiments.runner import folds

EXAMPLE = Path(__file__).resolve().parents[2] / "src/vibe_quant/experiments/examples/lpi_experiment.yaml"
H = 3600 * 10**9
MINIMAL = {"name": "t", "instruments": ["BTCUSDT"], "start": "2024-03-01", "end": "2024-03-01"}


def test_shipped_example_loads_and_resolves() -> None:
    exp = load_experiment(EXAMPLE)
    r = exp.resolved()
    assert (r.execution.maker_fee, r.execution.taker_fee) == FEE_TIERS["vip0"]
    assert r.execution.latency_ms == 1.5  # co_located: base 1 ms + insert 0.5 ms
    assert r.signal["bucket_notional"] == 1_000_000
    assert r.signal["min_periods"] == 30
    assert r.start == "2023-05-16T00:00:00"
    assert r.end == "2024-04-01T00:00:00"


def test_experiment_id_is_a_function_of_the_resolved_config() -> None:
    a = experiment_from_data(dict(MINIMAL), "a")
    # the same experiment with defaults spelled out and keys in another order
    b = experiment_from_data({"end": "2024-03-01", "signal": {"window": 300, "clock": "volume"},
                              "execution": {"fee_tier": "vip0", "latency": "co_located"},
                              "start": dt.date(2024, 3, 1), "instruments": ["BTCUSDT"], "name": "t"}, "b")  # fmt: skip
    assert a.experiment_id == b.experiment_id
    assert a.experiment_id.startswith("t-")
    assert len(a.experiment_id) == 14
    c = experiment_from_data({**MINIMAL, "signal": {"eta": 0.001}}, "c")
    d = experiment_from_data({**MINIMAL, "ablations": {"oi_prior": False}}, "d")
    e = a.variant(latency="retail")
    assert len({a.experiment_id, c.experiment_id, d.experiment_id, e.experiment_id}) == 4


def test_custom_fees_and_latency_resolve_to_numbers() -> None:
    exp = experiment_from_data({**MINIMAL, "execution": {"fee_tier": "custom", "maker_fee": -0.0001,
                                                         "taker_fee": 0.0003, "latency": "custom",
                                                         "latency_ms": 75}}, "x")  # fmt: skip
    ex = exp.resolved().execution
    assert (ex.maker_fee, ex.taker_fee, ex.latency_ms) == (-0.0001, 0.0003, 75)


def test_walk_forward_folds_by_hand() -> None:
    exp = experiment_from_data({**MINIMAL, "walk_forward": {"train": "6h", "test": "4h", "step": "4h",
                                                            "purge": "30m"}}, "x")  # fmt: skip
    day = to_ns(dt.datetime(2024, 3, 1))
    got = folds(exp.resolved())
    # t = 0, 4, 8, 12 h: train 6 h + test 4 h must end by 24 h -> 4 folds (t=16 would end at 26 h)
    assert [(f.start - day) // H for f in got] == [0, 4, 8, 12]
    assert [(f.train_end - day) // H for f in got] == [6, 10, 14, 18]
    assert [(f.score_start - day) / H for f in got] == [6.5, 10.5, 14.5, 18.5]  # purge 30 m after the train end
    assert [(f.end - day) // H for f in got] == [10, 14, 18, 22]
    single = folds(experiment_from_data(dict(MINIMAL), "x").resolved())
    assert len(single) == 1
    assert single[0].score_start == single[0].start == day
    assert single[0].end == day + 24 * H


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signal": {"eta": 2}}, "signal: lpi.eta: 2 must be in [0, 1)"),
        ({"signal": {"windw": 10}}, "signal.windw: not a signal parameter"),
        ({"signal": {"quotes_free": True}}, "set ablations.quotes_free instead"),
        ({"execution": {"fee_tier": "vip12"}}, "execution.fee_tier 'vip12'"),
        ({"execution": {"latency": "fast"}}, "execution.latency 'fast'"),
        ({"execution": {"fee_tier": "custom"}}, "needs execution.maker_fee and execution.taker_fee"),
        ({"execution": {"leverag": 3}}, "execution: Object contains unknown field `leverag`"),
        ({"walk_forward": {"train": "6 hours", "test": "1h"}}, "walk_forward.train: '6 hours' is not a duration"),
        ({"walk_forward": {"train": "20h", "test": "6h"}}, "is longer than the period"),
        ({"walk_forward": {"train": "6h", "test": "1h", "purge": "1h"}}, "leaves nothing of test"),
        ({"end": "2024-02-01"}, "is not after start"),
        ({"instruments": []}, "instruments: give at least one symbol"),
        ({"strategy": "lpi_momentum"}, "strategy"),
        ({"sweep": {"fee_tier": ["vip0", "gold"]}}, "sweep.fee_tier 'gold'"),
        ({"start": "yesterday"}, "start: 'yesterday' is not a date"),
    ],
)
def test_bad_input_names_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        experiment_from_data({**MINIMAL, **change}, "exp.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("exp.yaml")


def test_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such experiment file"):
        load_experiment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninstruments: [BTCUSDT\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: not valid YAML"):
        load_experiment(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(MINIMAL))
    assert msgspec.to_builtins(load_experiment(good))["instruments"] == ["BTCUSDT"]


def test_experiment_text_is_checked_as_the_file_is() -> None:
    assert experiment_from_text(EXAMPLE.read_text(), "form") == load_experiment(EXAMPLE)
    with pytest.raises(ConfigError, match=r"^form line 3: not valid YAML \(expected ',' or '\]'"):
        experiment_from_text("name: x\ninstruments: [BTCUSDT\nstart: 2024-03-01\n", "form")
    with pytest.raises(ConfigError, match=r"^form: expected a mapping at the top level"):
        experiment_from_text("- a list", "form")
    with pytest.raises(ConfigError, match="walk_forwrd"):
        experiment_from_text(yaml.safe_dump({**MINIMAL, "walk_forwrd": {}}), "form")
