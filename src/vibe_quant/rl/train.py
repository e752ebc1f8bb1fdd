"""Train a policy with Stable-Baselines3 on the CPU build of torch, reproducibly.

A run writes into its folder: ``model.zip`` (SB3's save), ``config.json`` (the :class:`TrainConfig`),
TensorBoard event files under ``tb/`` and the CSVs of :mod:`vibe_quant.rl.logs` (``episodes.csv``,
``training.csv``, ``regimes.csv``). Same config, same environments, same seed: the same policy
parameters bit for bit (one torch thread, every generator seeded, env ``i`` reset with ``seed + i``).

SAC's defaults are the specified ones (docs/specs.md#rl-training-and-runs: buffer 1,000,000, batch 256, gamma 0.999,
tau 0.005, learning rate 3e-4); PPO and DQN keep SB3's defaults but for gamma 0.999 (one step is one
bar: a shorter horizon would ignore anything beyond a couple of hours of 1m bars).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.progress import Progress

ALGOS = ("sac", "ppo", "dqn")


def _need(ok: bool, field: str, value: object, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r}: {fix}")


def _check_common(prefix: str, params: Any) -> None:
    _need(params.learning_rate > 0, f"{prefix}.learning_rate", params.learning_rate, "must be > 0 (e.g. 3e-4)")
    _need(0 < params.gamma <= 1, f"{prefix}.gamma", params.gamma, "must be in (0, 1] (e.g. 0.999)")
    _need(params.batch_size >= 1, f"{prefix}.batch_size", params.batch_size, "must be >= 1")
    _need(
        len(params.net_arch) > 0 and all(int(n) >= 1 for n in params.net_arch),
        f"{prefix}.net_arch", params.net_arch, "give one or more positive layer sizes, e.g. [256, 256]",
    )  # fmt: skip


class SacParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """SAC's hyperparameters (the specified defaults, docs/specs.md#rl-training-and-runs; the rest SB3's)."""

    learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    batch_size: int = 256
    gamma: float = 0.999
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: Literal["auto"] | float = "auto"
    net_arch: tuple[int, ...] = (256, 256)  # actor and critics alike

    def __post_init__(self) -> None:
        _check_common("sac", self)
        _need(self.buffer_size >= self.batch_size, "sac.buffer_size", self.buffer_size, "must be >= sac.batch_size")
        _need(0 < self.tau <= 1, "sac.tau", self.tau, "must be in (0, 1] (e.g. 0.005)")
        _need(self.learning_starts >= 0, "sac.learning_starts", self.learning_starts, "must be >= 0")
        _need(self.train_freq >= 1, "sac.train_freq", self.train_freq, "must be >= 1")

    def kwargs(self) -> dict:
        out = msgspec.structs.asdict(self)
        return out | {"policy_kwargs": {"net_arch": list(out.pop("net_arch"))}}


class PpoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """PPO's hyperparameters (SB3's defaults but gamma 0.999)."""

    learning_rate: float = 3e-4
    n_steps: int = 2048  # per environment and rollout
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.999
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (64, 64)  # policy and value networks alike

    def __post_init__(self) -> None:
        _check_common("ppo", self)
        _need(self.n_steps >= 2, "ppo.n_steps", self.n_steps, "must be >= 2 (steps per environment and rollout)")
        _need(self.n_epochs >= 1, "ppo.n_epochs", self.n_epochs, "must be >= 1")
        _need(0 < self.gae_lambda <= 1, "ppo.gae_lambda", self.gae_lambda, "must be in (0, 1] (e.g. 0.95)")
        _need(self.clip_range > 0, "ppo.clip_range", self.clip_range, "must be > 0 (e.g. 0.2)")

    def kwargs(self) -> dict:
        out = msgspec.structs.asdict(self)
        return out | {"policy_kwargs": {"net_arch": list(out.pop("net_arch"))}}


class DqnParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """DQN's hyperparameters (SB3's defaults but gamma 0.999)."""

    learning_rate: float = 1e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    batch_size: int = 32
    gamma: float = 0.999
    tau: float = 1.0
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 10_000
    exploration_fraction: float = 0.1
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    net_arch: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        _check_common("dqn", self)
        _need(self.buffer_size >= self.batch_size, "dqn.buffer_size", self.buffer_size, "must be >= dqn.batch_size")
        _need(0 < self.tau <= 1, "dqn.tau", self.tau, "must be in (0, 1] (1.0: hard target updates)")
        _need(self.learning_starts >= 0, "dqn.learning_starts", self.learning_starts, "must be >= 0")
        _need(self.train_freq >= 1, "dqn.train_freq", self.train_freq, "must be >= 1")
        _need(
            self.target_update_interval >= 1, "dqn.target_update_interval", self.target_update_interval, "must be >= 1"
        )
        _need(
            0 < self.exploration_fraction <= 1,
            "dqn.exploration_fraction",
            self.exploration_fraction,
            "must be in (0, 1]",
        )
        for name in ("exploration_initial_eps", "exploration_final_eps"):
            _need(0 <= getattr(self, name) <= 1, f"dqn.{name}", getattr(self, name), "must be in [0, 1]")

    def kwargs(self) -> dict:
        out = msgspec.structs.asdict(self)
        return out | {"policy_kwargs": {"net_arch": list(out.pop("net_arch"))}}


class TrainConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One training run. Only the block of the chosen `algo` is used.

    Parameters
    ----------
    algo : {"sac", "ppo", "dqn"}, default "sac"
        SAC needs a continuous (Box) action space, DQN a Discrete one, PPO takes either.
    total_timesteps : int, default 100_000
        Environment steps over all environments (PPO rounds up to whole rollouts).
    seed : int, default 0
        Seeds Python, numpy, torch, the action space and env ``i`` (``reset(seed=seed + i)``).
    n_envs : int, default 1
        Environments stepped in one process (SB3's DummyVecEnv).
    device : "cpu"
        Fixed: the CPU build of torch, bit-for-bit reproducible.
    log_every : int, default 1000
        Fewest steps between two rows of ``training.csv``.
    sac, ppo, dqn : SacParams, PpoParams, DqnParams
        Each algorithm's hyperparameters and network sizes (``net_arch``).

    Raises
    ------
    ConfigError
        On a value out of range, naming the field and the fix.
    """

    algo: str = "sac"
    total_timesteps: int = 100_000
    seed: int = 0
    n_envs: int = 1
    device: str = "cpu"
    log_every: int = 1_000
    sac: SacParams = SacParams()
    ppo: PpoParams = PpoParams()
    dqn: DqnParams = DqnParams()

    def __post_init__(self) -> None:
        _need(
            self.algo in ALGOS, "algo", self.algo, f"choose one of {', '.join(ALGOS)}.{did_you_mean(self.algo, ALGOS)}"
        )
        _need(self.total_timesteps >= 1, "total_timesteps", self.total_timesteps, "must be >= 1")
        _need(self.seed >= 0, "seed", self.seed, "must be >= 0")
        _need(self.n_envs >= 1, "n_envs", self.n_envs, "must be >= 1")
        _need(
            self.device == "cpu", "device", self.device, "training runs on the CPU build of torch only; set device: cpu"
        )
        _need(self.log_every >= 1, "log_every", self.log_every, "must be >= 1")

    def params(self) -> SacParams | PpoParams | DqnParams:
        """Return the chosen algorithm's block."""
        return getattr(self, self.algo)

    def check_action_space(self, space) -> None:
        """Raise :class:`ConfigError` when `algo` cannot act in `space` (a gymnasium space)."""
        from gymnasium import spaces

        box, discrete = isinstance(space, spaces.Box), isinstance(space, spaces.Discrete)
        if self.algo == "sac" and not box:
            raise ConfigError(
                f"algo='sac' needs a continuous (Box) action space; the environment's is {space}. "
                "Fix: set algo to 'ppo' or 'dqn' for discrete actions, or give the environment a continuous "
                "target position (Box(-1, 1, (1,)))."
            )
        if self.algo == "dqn" and not discrete:
            raise ConfigError(
                f"algo='dqn' needs a Discrete action space; the environment's is {space}. "
                "Fix: set algo to 'sac' or 'ppo' for continuous actions, or give the environment discrete "
                "actions (Discrete(3): flat, long, short)."
            )
        if self.algo == "ppo" and not (box or discrete):
            raise ConfigError(
                f"algo='ppo' takes a Box or Discrete action space; the environment's is {space}. "
                "Fix: give the environment Discrete(3) or Box(-1, 1, (1,)) actions."
            )


def parse_train_config(raw: Mapping, source: str = "training config") -> TrainConfig:
    """Build a :class:`TrainConfig` from a mapping (a parsed YAML or JSON file).

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type or a value out of range; the message names `source` and the field.
    """
    try:
        return msgspec.convert(dict(raw), TrainConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


class TrainResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`train` produced: the run's folder and its files, steps, episodes and wall time."""

    out_dir: Path
    model_path: Path
    config: TrainConfig
    timesteps: int
    episodes: int
    seconds: float
    torch_version: str


def _algorithm(algo: str):
    from stable_baselines3 import DQN, PPO, SAC

    return {"sac": SAC, "ppo": PPO, "dqn": DQN}[algo]


def _monitored(make_env: Callable[[int], Any], i: int):
    from stable_baselines3.common.monitor import Monitor

    return Monitor(make_env(i))  # adds rollout/ep_rew_mean to TensorBoard


def train(
    make_env: Callable[[int], Any],
    config: TrainConfig,
    out_dir: Path,
    progress: Progress | None = None,
    *,
    regime_vol: np.ndarray | None = None,
    resume: Path | None = None,
) -> TrainResult:
    """Train `config.algo` on the environments `make_env` builds and write the run into `out_dir`.

    Parameters
    ----------
    make_env : callable
        ``make_env(i)`` returns the i-th ``gymnasium.Env`` (``i`` in ``range(config.n_envs)``); its
        ``info`` per step follows the contract in :mod:`vibe_quant.rl.logs`.
    config : TrainConfig
        The run's settings.
    out_dir : Path
        Created when missing; gets ``model.zip``, ``config.json``, ``tb/``, ``episodes.csv``,
        ``training.csv`` and ``regimes.csv`` (an existing ``tb/`` gets a new numbered subfolder).
    progress : Progress, optional
        Sink for one task counting steps; default silent.
    regime_vol : np.ndarray, optional
        The training data's realized vol, shape ``(n,)``, for the regime terciles of ``regimes.csv``;
        default the values the environments report.
    resume : Path, optional
        A run folder whose ``model.zip`` training continues from (its weights, optimiser state and step
        count; a SAC/DQN replay buffer is not saved, so it starts empty).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        When `config.algo` cannot act in the environment's action space.
    UserError
        When torch is missing and cannot be installed, or is a CUDA build that sees a GPU.

    Notes
    -----
    Sets torch to one thread for the process (``torch.set_num_threads(1)``): bit-for-bit
    reproducibility, and the machine's other cores stay free for other runs.
    """
    from vibe_quant.rl.torch_setup import ensure_torch

    progress = progress or Progress()
    torch_version = ensure_torch(progress)
    import torch
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import DummyVecEnv

    from vibe_quant.rl.logs import ProgressReport, TrainingLogs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    set_random_seed(config.seed)
    envs = DummyVecEnv([partial(_monitored, make_env, i) for i in range(config.n_envs)])
    try:
        config.check_action_space(envs.action_space)
        from gymnasium import spaces

        policy = "MultiInputPolicy" if isinstance(envs.observation_space, spaces.Dict) else "MlpPolicy"
        if resume is not None:
            model = _algorithm(config.algo).load(Path(resume) / "model.zip", env=envs, device="cpu",
                                                 tensorboard_log=str(out_dir / "tb"))  # fmt: skip
            model.set_random_seed(config.seed)
        else:
            model = _algorithm(config.algo)(
                policy, envs, seed=config.seed, device="cpu", tensorboard_log=str(out_dir / "tb"), verbose=0,
                **config.params().kwargs(),
            )  # fmt: skip
        logs = TrainingLogs(
            out_dir, discrete=isinstance(envs.action_space, spaces.Discrete), log_every=config.log_every,
            regime_vol=regime_vol,
        )  # fmt: skip
        report = ProgressReport(
            progress, f"train {config.algo} ({config.total_timesteps:,} steps)", config.total_timesteps,
            every=max(config.total_timesteps // 200, 1),
        )  # fmt: skip
        started = time.perf_counter()
        model.learn(config.total_timesteps, callback=CallbackList([logs, report]), tb_log_name=config.algo,
                    reset_num_timesteps=resume is None)  # fmt: skip
        seconds = time.perf_counter() - started
        model_path = out_dir / "model.zip"
        model.save(model_path)
        (out_dir / "config.json").write_bytes(msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n")
    finally:
        envs.close()
    return TrainResult(
        out_dir=out_dir, model_path=model_path, config=config, timesteps=int(model.num_timesteps),
        episodes=logs.n_episodes, seconds=seconds, torch_version=torch_version,
    )  # fmt: skip


def load_policy(path: Path):
    """Load a trained model for inference on the CPU.

    Parameters
    ----------
    path : Path
        A run folder (with ``model.zip`` and ``config.json``) or its ``model.zip``.

    Returns
    -------
    stable_baselines3.common.base_class.BaseAlgorithm
        Call ``predict(obs, deterministic=True)`` for ``(action, state)``.

    Raises
    ------
    ConfigError
        When the folder lacks ``model.zip`` or ``config.json``, or the config is invalid.
    """
    from vibe_quant.rl.torch_setup import ensure_torch

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    model_path = path if path.is_file() else folder / "model.zip"
    config_path = folder / "config.json"
    for needed in (model_path, config_path):
        if not needed.is_file():
            raise ConfigError(
                f"{needed}: missing. Fix: pass a training run's folder (it has model.zip and config.json)"
            )
    config = parse_train_config(msgspec.json.decode(config_path.read_bytes()), str(config_path))
    ensure_torch()
    return _algorithm(config.algo).load(model_path, device="cpu")
