"""Training on a toy environment that speaks the env's info contract (the real one is in rl/env.py).

SB3 and torch (and vibe_quant.rl.logs, which subclasses SB3's callback) are imported inside the tests:
the session fixture in conftest.py installs torch first, after collection.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import gymnasium as gym
import msgspec
import numpy as np
import pytest
from gymnasium import spaces

from vibe_quant.errors import ConfigError
from vibe_quant.progress import Progress
from vibe_quant.rl.train import DqnParams, PpoParams, SacParams, TrainConfig, load_policy, parse_train_config, train

EPISODE = 64
SMALL_SAC = SacParams(buffer_size=1_000, batch_size=32, learning_starts=32, net_arch=(16, 16))
SMALL_PPO = PpoParams(n_steps=64, batch_size=32, n_epochs=2, net_arch=(16, 16))
SMALL_DQN = DqnParams(
    buffer_size=1_000, batch_size=16, learning_starts=32, target_update_interval=50, net_arch=(16, 16)
)


class ToyPerp(gym.Env):
    """A random-walk price; the action sets the target position (Discrete(3): flat/long/short, or Box)."""

    def __init__(self, discrete: bool):
        self.discrete = discrete
        self.action_space = spaces.Discrete(3) if discrete else spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (8,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.price, self.position, self.equity, self.trades = 0, 100.0, 0.0, 1.0, 0
        self.returns = list(self.np_random.normal(0.0, 0.01, 8))
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([*self.returns[-7:], self.position], dtype=np.float32)

    def step(self, action):
        target = [0.0, 1.0, -1.0][int(action)] if self.discrete else float(np.clip(action[0], -1, 1))
        vol = 0.005 + 0.02 * (self.t % 32) / 32  # a regime cycle, so all three terciles fill
        ret = float(self.np_random.normal(0.0, vol))
        turnover = abs(target - self.position)
        self.trades += int(turnover > 0)
        fees, funding, pnl = 0.0004 * turnover, 0.0001 * target, target * ret
        risk, turnover_penalty = 0.1 * abs(target) * vol, 0.01 * turnover
        reward = pnl - fees - funding - risk - turnover_penalty
        self.position, self.equity, self.t = target, self.equity + pnl - fees - funding, self.t + 1
        self.returns.append(ret)
        info = {
            "equity": self.equity, "position": self.position, "target": target, "fees": fees, "funding": funding,
            "pnl": pnl, "risk_penalty": risk, "turnover_penalty": turnover_penalty, "realized_vol": vol,
            "ts": 1_700_000_000_000_000_000 + self.t * 60_000_000_000,
        }  # fmt: skip
        done = self.t >= EPISODE
        if done:
            info["n_trades"] = self.trades
        return self._obs(), reward, done, False, info


def discrete_env(i: int) -> ToyPerp:
    return ToyPerp(discrete=True)


def continuous_env(i: int) -> ToyPerp:
    return ToyPerp(discrete=False)


def rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def parameters(run: Path) -> dict:
    return {k: v.clone() for k, v in load_policy(run).policy.state_dict().items()}


def check_outputs(run: Path, steps: int) -> None:
    from vibe_quant.rl.logs import EPISODE_COLUMNS, REGIME_COLUMNS, TRAINING_COLUMNS

    assert (run / "model.zip").is_file()
    assert msgspec.json.decode((run / "config.json").read_bytes())["total_timesteps"] == steps
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    columns, episodes = rows(run / "episodes.csv")
    assert tuple(columns) == EPISODE_COLUMNS
    assert len(episodes) == steps // EPISODE
    assert {int(e["length"]) for e in episodes} == {EPISODE}
    assert all(int(e["n_trades"]) >= 0 and float(e["final_equity"]) > 0 for e in episodes)
    columns, training = rows(run / "training.csv")
    assert tuple(columns) == TRAINING_COLUMNS
    assert int(training[-1]["timesteps"]) == steps
    assert sum(int(r["steps"]) for r in training) == steps
    for r in training:
        assert float(r["share_flat"]) + float(r["share_long"]) + float(r["share_short"]) == pytest.approx(1.0)
    assert all(r["value_loss"] != "" for r in training)  # each row after a gradient step, the last one too
    columns, regimes = rows(run / "regimes.csv")
    assert tuple(columns) == REGIME_COLUMNS
    assert [r["regime"] for r in regimes] == ["low", "mid", "high"]
    assert sum(int(r["steps"]) for r in regimes) == steps
    assert all(int(r["steps"]) > 0 for r in regimes)


class RecordedProgress(Progress):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def task(self, description: str, total: int | None) -> int:
        self.calls.append(("task", description, total))
        return 0

    def update(self, task_id: int, completed: float, total: float | None = None) -> None:
        self.calls.append(("update", completed))

    def finish(self, task_id: int) -> None:
        self.calls.append(("finish",))


def test_ppo_trains_on_discrete_actions_and_writes_every_output(tmp_path: Path) -> None:
    config = TrainConfig(algo="ppo", total_timesteps=256, seed=3, ppo=SMALL_PPO, log_every=64)
    progress = RecordedProgress()
    result = train(discrete_env, config, tmp_path / "run", progress)
    assert (result.timesteps, result.episodes) == (256, 4)
    assert ("task", "train ppo (256 steps)", 256) in progress.calls
    assert progress.calls[-2:] == [("update", 256), ("finish",)]
    updates = [c[1] for c in progress.calls if c[0] == "update"]
    assert updates == sorted(updates)
    check_outputs(tmp_path / "run", 256)
    training = rows(tmp_path / "run" / "training.csv")[1]
    assert [int(r["timesteps"]) for r in training] == [64, 128, 192, 256]
    assert [float(r["n_updates"]) for r in training] == [2, 4, 6, 8]  # n_epochs=2 per rollout, the last one too
    assert all(r["entropy_loss"] != "" and r["policy_loss"] != "" for r in training)
    policy = load_policy(tmp_path / "run")
    action, _ = policy.predict(np.zeros(8, dtype=np.float32), deterministic=True)
    assert int(action) in {0, 1, 2}


def test_ppo_takes_a_continuous_target_too(tmp_path: Path) -> None:
    config = TrainConfig(algo="ppo", total_timesteps=128, seed=0, n_envs=2, ppo=SMALL_PPO)
    result = train(continuous_env, config, tmp_path / "run")
    assert result.timesteps == 128
    check_outputs(tmp_path / "run", 128)


def test_dqn_trains_on_discrete_actions(tmp_path: Path) -> None:
    config = TrainConfig(algo="dqn", total_timesteps=256, seed=1, dqn=SMALL_DQN, log_every=100)
    train(discrete_env, config, tmp_path / "run")
    check_outputs(tmp_path / "run", 256)
    last = rows(tmp_path / "run" / "training.csv")[1][-1]
    assert float(last["exploration_rate"]) == pytest.approx(0.05)
    action, _ = load_policy(tmp_path / "run" / "model.zip").predict(np.zeros(8, dtype=np.float32), deterministic=True)
    assert int(action) in {0, 1, 2}


def test_sac_trains_on_a_continuous_target(tmp_path: Path) -> None:
    config = TrainConfig(algo="sac", total_timesteps=192, seed=2, sac=SMALL_SAC, log_every=64)
    train(continuous_env, config, tmp_path / "run")
    check_outputs(tmp_path / "run", 192)
    last = rows(tmp_path / "run" / "training.csv")[1][-1]
    assert float(last["ent_coef"]) > 0
    assert last["policy_loss"] != ""
    action, _ = load_policy(tmp_path / "run").predict(np.zeros(8, dtype=np.float32), deterministic=True)
    assert action.shape == (1,)
    assert -1.0 <= float(action[0]) <= 1.0


def test_a_seeded_run_is_reproducible_bit_for_bit(tmp_path: Path) -> None:
    import torch

    config = TrainConfig(algo="sac", total_timesteps=160, seed=7, sac=SMALL_SAC)
    for name in ("a", "b"):
        train(continuous_env, config, tmp_path / name)
    first, second = parameters(tmp_path / "a"), parameters(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert (tmp_path / "a" / "episodes.csv").read_text() == (tmp_path / "b" / "episodes.csv").read_text()
    train(continuous_env, msgspec.structs.replace(config, seed=8), tmp_path / "c")
    other = parameters(tmp_path / "c")
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_sac_on_discrete_actions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"algo='sac' needs a continuous \(Box\) action space; the environment's is Discrete\(3\)\. Fix: set algo to 'ppo' or 'dqn'"):  # fmt: skip
        train(discrete_env, TrainConfig(algo="sac", total_timesteps=10), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"algo='dqn' needs a Discrete action space; the environment's is Box"):
        train(continuous_env, TrainConfig(algo="dqn", total_timesteps=10), tmp_path / "run")
    assert not (tmp_path / "run" / "model.zip").exists()


def test_bad_configs_name_the_field_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"algo='sacc': choose one of sac, ppo, dqn\. Did you mean 'sac'\?"):
        TrainConfig(algo="sacc")
    with pytest.raises(ConfigError, match=r"device='cuda': training runs on the CPU build of torch only"):
        TrainConfig(device="cuda")
    with pytest.raises(ConfigError, match=r"sac.gamma=1.5: must be in \(0, 1\]"):
        SacParams(gamma=1.5)
    with pytest.raises(ConfigError, match=r"run.yaml: Object contains unknown field `gama` - at `\$.ppo`"):
        parse_train_config({"algo": "ppo", "ppo": {"gama": 0.9}}, "run.yaml")
    with pytest.raises(ConfigError, match=r"run.yaml: n_envs=0: must be >= 1"):
        parse_train_config({"n_envs": 0}, "run.yaml")


def test_defaults_are_the_seeds() -> None:
    config = TrainConfig()
    assert config.algo == "sac"
    assert (config.sac.buffer_size, config.sac.batch_size, config.sac.gamma, config.sac.tau) == (
        1_000_000,
        256,
        0.999,
        0.005,
    )
    assert config.sac.learning_rate == 3e-4
    assert config.ppo.gamma == config.dqn.gamma == 0.999


def test_regimes_split_at_the_terciles() -> None:
    from vibe_quant.rl.logs import regime_rows, tercile_thresholds

    vol = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, np.nan])
    reward = np.array([1.0, 1.0, 2.0, 2.0, 3.0, -3.0, 100.0])
    held = np.array([0, 1, 1, 1, 0, 0, 1])
    low, high = tercile_thresholds(vol)
    assert (low, high) == pytest.approx((0.2666666, 0.4333333))
    table = regime_rows(vol, reward, held, (low, high))
    assert [(r["regime"], r["steps"], r["reward_sum"], r["time_in_position"]) for r in table] == [
        ("low", 2, 2.0, 0.5), ("mid", 2, 4.0, 1.0), ("high", 2, 0.0, 0.0),
    ]  # fmt: skip
    assert table[1]["reward_mean"] == 2.0
    empty_mid = regime_rows(vol, reward, held, (1.0, 2.0))[1]
    assert empty_mid["steps"] == 0
    assert math.isnan(empty_mid["reward_mean"])


class SeedLog(ToyPerp):
    def __init__(self, seeds: list):
        super().__init__(discrete=True)
        self.seeds = seeds

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        return super().reset(seed=seed, options=options)


def test_env_i_is_reset_with_seed_plus_i_and_regime_thresholds_can_come_from_the_data(tmp_path: Path) -> None:
    seeds: list = []
    config = TrainConfig(algo="ppo", total_timesteps=128, seed=5, n_envs=2, ppo=SMALL_PPO)
    train(lambda i: SeedLog(seeds), config, tmp_path / "run", regime_vol=np.array([0.0, 0.001, 1.0]))
    assert seeds[:2] == [5, 6]
    regimes = rows(tmp_path / "run" / "regimes.csv")[1]
    assert [float(r["vol_to"]) for r in regimes[:2]] == pytest.approx([0.000667, 0.334], abs=1e-6)
    assert [int(r["steps"]) for r in regimes] == [0, 128, 0]  # every toy vol (0.005..0.025) is mid on that scale
