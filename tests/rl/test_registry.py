"""The RL model registry: content ids, artifact copies, lookups, stages and decision rows."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import msgspec
import numpy as np
import pytest

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.home import Home
from vibe_quant.rl import registry
from vibe_quant.rl.registry import (
    EvaluationReport,
    Metrics,
    ModelMeta,
    UnknownModelError,
    artifact_path,
    champion,
    content_id,
    decisions,
    get,
    list_models,
    register,
    set_stage,
)

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
METRICS = {
    "net_return": 0.2, "max_drawdown": 0.1, "sharpe": 1.5, "sortino": 2.0, "turnover": 100.0, "cvar": 0.02,
    "n_trades": 50, "largest_trade_share": 0.2, "window_returns": (0.05, 0.03, -0.01, 0.04),
}  # fmt: skip


def make_meta(name: str = "sac-btc", symbol: str = "BTCUSDT", timeframe: str = "5m", **metrics: object) -> ModelMeta:
    return ModelMeta(
        name=name,
        algo="sac",
        symbol=symbol,
        timeframe=timeframe,
        training_data_hash="d" * 64,
        feature_version="f1",
        hyperparameters={"learning_rate": 0.0003, "gamma": 0.99},
        env_config={"fee_bps": 5, "leverage": 2},
        evaluation=EvaluationReport(Metrics(**{**METRICS, **metrics}), details={"periods_per_year": 105120}),
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, Path]:
    policy, stats = tmp_path / "policy.zip", tmp_path / "vecnormalize.pkl"
    policy.write_bytes(b"PK\x03\x04 policy weights")
    stats.write_bytes(bytes(range(256)))
    return {"policy.zip": policy, "vecnormalize.pkl": stats}


def test_register_get_list_round_trip(home: Home, artifacts: dict[str, Path]) -> None:
    meta = make_meta()
    record = register(home, artifacts, meta, now=T0)

    assert len(record.model_id) == 16
    assert record.model_id == content_id(artifacts, meta)
    assert (record.stage, record.created_at, record.artifact_path) == (
        "candidate", "2026-05-01T12:00:00+00:00", f"models/{record.model_id}",
    )  # fmt: skip
    assert (record.name, record.algo, record.symbol, record.timeframe) == ("sac-btc", "sac", "BTCUSDT", "5m")
    assert (record.training_data_hash, record.feature_version) == ("d" * 64, "f1")
    assert record.hyperparameters == meta.hyperparameters
    assert record.env_config == meta.env_config
    assert record.evaluation == meta.evaluation
    assert get(home, record.model_id) == record
    assert list_models(home) == [record]
    folder = artifact_path(home, record)
    assert folder == home.root / "models" / record.model_id
    assert sorted(p.name for p in folder.iterdir()) == ["policy.zip", "vecnormalize.pkl"]
    for name, source in artifacts.items():
        assert (folder / name).read_bytes() == source.read_bytes()


def test_same_content_twice_is_one_model(home: Home, artifacts: dict[str, Path], tmp_path: Path) -> None:
    first = register(home, artifacts, make_meta(), now=T0)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    copies = {name: Path(shutil.copy(path, moved / name)) for name, path in artifacts.items()}

    again = register(home, copies, make_meta(), now=T0 + dt.timedelta(days=1))

    assert again == first  # same id, first created_at kept
    assert len(list_models(home)) == 1
    assert [p.name for p in (home.root / "models").iterdir()] == [first.model_id]  # no temp folder left


def test_a_changed_byte_or_field_is_another_model(home: Home, artifacts: dict[str, Path]) -> None:
    base = register(home, artifacts, make_meta())
    renamed = register(home, artifacts, make_meta(name="sac-btc-2"))
    artifacts["policy.zip"].write_bytes(b"PK\x03\x04 policy weightz")
    retrained = register(home, artifacts, make_meta())

    assert len({base.model_id, renamed.model_id, retrained.model_id}) == 3
    assert (artifact_path(home, retrained) / "policy.zip").read_bytes() == b"PK\x03\x04 policy weightz"
    assert (artifact_path(home, base) / "policy.zip").read_bytes() == b"PK\x03\x04 policy weights"


def test_get_accepts_a_unique_prefix(home: Home, artifacts: dict[str, Path]) -> None:
    record = register(home, artifacts, make_meta())

    assert get(home, record.model_id[:4]) == record
    assert get(home, record.model_id[:8].upper()) == record


def test_an_ambiguous_prefix_lists_the_matches(home: Home, artifacts: dict[str, Path]) -> None:
    by_first: dict[str, str] = {}
    for i in range(40):  # the ids are content hashes: find two names whose ids share the first hex
        name = f"m{i}"
        first = content_id(artifacts, make_meta(name=name))[0]
        if first in by_first:
            a, b = (
                register(home, artifacts, make_meta(name=by_first[first])),
                register(home, artifacts, make_meta(name=name)),
            )
            break
        by_first[first] = name
    else:
        pytest.fail("no two ids of 40 share a first hex digit")

    with pytest.raises(UnknownModelError, match=f"prefix '{first}' is ambiguous: ") as raised:
        get(home, first)
    assert ", ".join(sorted([a.model_id, b.model_id])) in str(raised.value)
    assert get(home, a.model_id) == a


def test_unknown_id_suggests_the_closest(home: Home, artifacts: dict[str, Path]) -> None:
    record = register(home, artifacts, make_meta())
    typo = record.model_id[:-1] + ("0" if record.model_id[-1] != "0" else "1")

    with pytest.raises(UnknownModelError, match=rf"unknown model '{typo}' in .*\. Did you mean '{record.model_id}'\?"):
        get(home, typo)
    with pytest.raises(UnknownModelError, match="unknown model 'sac-btc'"):
        get(home, "sac-btc")  # names are labels, not ids
    assert issubclass(UnknownModelError, UserError)


def test_empty_registry(tmp_path: Path) -> None:
    home = Home(tmp_path / "fresh")

    assert list_models(home) == []
    assert champion(home, "BTCUSDT", "5m") is None
    assert decisions(home) == []
    with pytest.raises(UnknownModelError, match="no model registered in"):
        get(home, "abcd")
    assert not home.root.exists()  # reading creates nothing


def test_list_filters_by_stage_and_symbol(home: Home, artifacts: dict[str, Path]) -> None:
    btc = register(home, artifacts, make_meta(), now=T0)
    eth = register(home, artifacts, make_meta(name="sac-eth", symbol="ETHUSDT"), now=T0 + dt.timedelta(seconds=1))
    staged = set_stage(home, eth.model_id, "staging", "looks good on the dashboard")

    assert list_models(home) == [btc, staged]
    assert list_models(home, symbol="ETHUSDT") == [staged]
    assert list_models(home, stage="candidate") == [btc]
    assert list_models(home, stage="staging", symbol="BTCUSDT") == []
    with pytest.raises(UserError, match=r"stage 'stagin' is not one of .* Did you mean 'staging'"):
        list_models(home, stage="stagin")


def test_set_stage_records_a_decision(home: Home, artifacts: dict[str, Path]) -> None:
    record = register(home, artifacts, make_meta())

    staged = set_stage(home, record.model_id[:6], "staging", "promising", now=T0)
    retired = set_stage(home, record.model_id, "retired", [registry.Check("manual", True, None, None, "superseded")])

    assert (staged.stage, retired.stage, get(home, record.model_id).stage) == ("staging", "retired", "retired")
    rows = decisions(home, record.model_id)
    assert [(d.decision, d.champion_id, d.model_id) for d in rows] == [
        ("staged", None, record.model_id), ("retired", None, record.model_id),
    ]  # fmt: skip
    assert rows[0].decided_at == "2026-05-01T12:00:00+00:00"
    assert rows[0].reasons == (registry.Check("manual", True, None, None, "promising"),)
    assert rows[1].reasons[0].message == "superseded"


def test_set_stage_never_crowns_and_never_repeats(home: Home, artifacts: dict[str, Path]) -> None:
    record = register(home, artifacts, make_meta())

    with pytest.raises(UserError, match="stage 'champion' is not one of staging, retired"):
        set_stage(home, record.model_id, "champion", "trust me")
    set_stage(home, record.model_id, "staging", "ok")
    with pytest.raises(UserError, match=f"model {record.model_id} is already staging"):
        set_stage(home, record.model_id, "staging", "again")
    assert [d.decision for d in decisions(home)] == ["staged"]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("../policy.zip", ConfigError, r"artifact name '../policy.zip' is not a plain file name"),
        ("dir/policy.zip", ConfigError, r"artifact name 'dir/policy.zip' is not a plain file name"),
        ("missing.zip", UserError, r"artifact 'missing.zip': no file at .*missing.zip"),
    ],
)
def test_bad_artifacts_are_refused(home: Home, tmp_path: Path, name: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        register(home, {name: tmp_path / "missing.zip"}, make_meta())
    with pytest.raises(ConfigError, match="at least one artifact file"):
        register(home, {}, make_meta())
    assert list_models(home) == []


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        (
            "largest_trade_share",
            1.5,
            r"model metadata: Expected `float` <= 1.0 - at `\$.evaluation.metrics.largest_trade_share`",
        ),
        ("max_drawdown", -0.1, r"model metadata: Expected `float` >= 0.0 - at `\$.evaluation.metrics.max_drawdown`"),
        ("net_return", float("nan"), r"metric net_return must be a finite number, got nan"),
        ("n_trades", -1, r"model metadata: Expected `int` >= 0 - at `\$.evaluation.metrics.n_trades`"),
    ],
)
def test_out_of_range_metrics_are_refused(
    home: Home, artifacts: dict[str, Path], metric: str, value: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        register(home, artifacts, make_meta(**{metric: value}))
    assert list_models(home) == []


def test_a_failed_copy_leaves_no_model(home: Home, artifacts: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real_copy = shutil.copyfile

    def copy_then_fail(source: Path, target: Path) -> Path:
        if Path(target).name == "vecnormalize.pkl":
            raise OSError(28, "No space left on device")
        return real_copy(source, target)

    monkeypatch.setattr(registry.shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        register(home, artifacts, make_meta())

    assert list(registry.models_dir(home).iterdir()) == []
    assert list_models(home) == []
    monkeypatch.undo()
    assert register(home, artifacts, make_meta()).stage == "candidate"  # and it registers cleanly afterwards


def test_a_failed_insert_removes_the_copied_artifacts(
    home: Home, artifacts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_record(row: sqlite3.Row) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(registry, "_record", failing_record)
    with pytest.raises(sqlite3.OperationalError):
        register(home, artifacts, make_meta())
    monkeypatch.undo()

    assert list(registry.models_dir(home).iterdir()) == []
    assert list_models(home) == []


@pytest.mark.parametrize("value", [np.float64(0.99), Path("/tmp/x")])
def test_hyperparameters_must_be_json(home: Home, artifacts: dict[str, Path], value: object) -> None:
    meta = msgspec.structs.replace(make_meta(), hyperparameters={"gamma": value})

    with pytest.raises(ConfigError, match=r"model metadata: .*Fix: give hyperparameters, env_config and evaluation"):
        register(home, artifacts, meta)
    assert list_models(home) == []
