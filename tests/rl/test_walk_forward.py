"""Walk-forward retraining: the windows, a real two-window run whose summary reaches the promotion rules,
and a seeded training on the real environment that gives the same weights twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import linked_home
from vibe_quant.errors import UserError
from vibe_quant.rl import registry
from vibe_quant.rl.env import EnvConfig
from vibe_quant.rl.promotion import promote
from vibe_quant.rl.service import Market, evaluate_run, register_run, train_run, walk_forward, windows
from vibe_quant.rl.train import load_policy, parse_train_config

D = dt.date


def test_windows_roll_by_the_test_length_and_stay_inside_the_period() -> None:
    got = windows(D(2023, 8, 1), D(2023, 8, 20), 7, 2, 3)
    assert got == [
        (D(2023, 8, 1), D(2023, 8, 8), D(2023, 8, 10), D(2023, 8, 13)),
        (D(2023, 8, 4), D(2023, 8, 11), D(2023, 8, 13), D(2023, 8, 16)),
        (D(2023, 8, 7), D(2023, 8, 14), D(2023, 8, 16), D(2023, 8, 19)),
    ]
    assert windows(D(2023, 8, 1), D(2023, 8, 12), 7, 2, 3)[-1][3] == D(2023, 8, 13)  # last test day = the end
    with pytest.raises(UserError, match="shorter than one walk-forward window"):
        windows(D(2023, 8, 1), D(2023, 8, 5), 7, 2, 3)
    with pytest.raises(UserError, match="must be >= 1 day"):
        windows(D(2023, 8, 1), D(2023, 8, 30), 7, 0, 3)


def test_walk_forward_on_real_data_feeds_the_promotion_rules(aug_2023_catalog: Path, tmp_path: Path) -> None:
    home = linked_home(tmp_path / "home", aug_2023_catalog)
    market = Market("FILUSDT", "1m", "screening", 3.0)
    config = parse_train_config(
        {"algo": "ppo", "total_timesteps": 256, "seed": 1, "ppo": {"n_steps": 128, "batch_size": 64}}
    )
    summary = walk_forward(home, market, D(2023, 8, 1), D(2023, 8, 6), 2, 1, 1, EnvConfig(), config)
    rows = summary["windows"]
    assert [(r["train_start"], r["val_start"], r["test_start"], r["test_end"]) for r in rows] == [
        ("2023-08-01", "2023-08-03", "2023-08-04", "2023-08-04"),
        ("2023-08-02", "2023-08-04", "2023-08-05", "2023-08-05"),
        ("2023-08-03", "2023-08-05", "2023-08-06", "2023-08-06"),
    ]
    for r in rows:
        for key in ("net_return", "max_drawdown", "sharpe", "sortino", "turnover", "cvar"):
            assert key in r["test_metrics"]
            assert key in r["val_metrics"]
    tests = [r["test_metrics"]["net_return"] for r in rows]
    stability = summary["stability"]
    assert stability["windows"] == 3
    assert stability["test_net_return_min"] == min(tests)
    assert stability["positive_share"] == sum(t > 0 for t in tests) / 3
    # the last window's run carries the summary; registered, its windows reach the promotion rules
    last = summary["last_run"]
    evaluate_run(home, last, D(2023, 8, 6), D(2023, 8, 6))
    record = register_run(home, last)
    assert record.metrics.window_returns == tuple(tests)
    checks = {c.rule: c for c in promote(home, record.model_id).decision.checks}
    assert checks["window_stability"].value == pytest.approx(stability["positive_share"])
    assert registry.decisions(home, record.model_id)


def test_a_seeded_training_on_the_real_environment_gives_the_same_weights(
    aug_2023_catalog: Path, tmp_path: Path
) -> None:
    import torch

    home = linked_home(tmp_path / "home", aug_2023_catalog)
    market = Market("FILUSDT", "1m", "validation", 5.0)
    config = parse_train_config(
        {"algo": "ppo", "total_timesteps": 256, "seed": 9, "ppo": {"n_steps": 128, "batch_size": 64}}
    )
    env = EnvConfig(episode_bars=300)
    first = train_run(home, market, D(2023, 8, 1), D(2023, 8, 2), env, config)
    weights = {k: v.clone() for k, v in load_policy(first.path).policy.state_dict().items()}
    again = train_run(home, market, D(2023, 8, 1), D(2023, 8, 2), env, config, force=True)
    assert again.run_id == first.run_id  # same request, same run id
    other = load_policy(again.path).policy.state_dict()
    assert all(torch.equal(weights[k], other[k]) for k in weights)
    reseed = parse_train_config(
        {"algo": "ppo", "total_timesteps": 256, "seed": 10, "ppo": {"n_steps": 128, "batch_size": 64}}
    )
    reseeded = train_run(home, market, D(2023, 8, 1), D(2023, 8, 2), env, reseed)
    changed = load_policy(reseeded.path).policy.state_dict()
    assert any(not torch.equal(weights[k], changed[k]) for k in weights)


def test_a_training_that_fails_half_way_leaves_no_run(aug_2023_catalog: Path, tmp_path: Path, monkeypatch) -> None:
    import vibe_quant.rl.train as train_module
    from vibe_quant.rl.runs import list_runs, runs_dir

    home = linked_home(tmp_path / "home", aug_2023_catalog)

    def dies(make_env, config, out_dir, progress=None, **kw):
        (out_dir / "model.zip").write_bytes(b"half")  # what a killed run leaves behind
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", dies)
    config = parse_train_config({"algo": "ppo", "total_timesteps": 64, "seed": 1})
    with pytest.raises(KeyboardInterrupt):
        train_run(home, Market("FILUSDT"), D(2023, 8, 1), D(2023, 8, 2), EnvConfig(), config)
    assert list_runs(home) == []
    assert [p.name for p in runs_dir(home).iterdir() if not p.name.startswith(".")] == []
