"""What a training run writes beside its model, as Stable-Baselines3 callbacks (docs/specs.md#rl-training-and-runs:
episodic return, policy entropy, value loss, action distribution, performance by regime).

``episodes.csv``
    One row per finished episode: ``episode, env, timesteps, return, length, final_equity, n_trades,
    pnl, fees, funding, risk_penalty, turnover_penalty, start_ts, end_ts`` (sums over the episode's
    steps of the env's ``info``; ``timesteps`` is the run's step count when it ended).
``training.csv``
    A row at the start of a rollout once ``log_every`` steps have passed since the last row (so after the
    previous rollout's gradient steps), and one at the end:
    ``timesteps, n_updates, entropy_loss, ent_coef, exploration_rate, value_loss, policy_loss,
    share_flat, share_long, share_short, steps``. The losses are the last values SB3 logged
    (``value_loss``: PPO's ``value_loss``, SAC's ``critic_loss``, DQN's ``loss``; ``policy_loss``:
    PPO's ``policy_gradient_loss``, SAC's ``actor_loss``; entropy: PPO's ``entropy_loss``, SAC's
    ``ent_coef``, DQN's ``exploration_rate``), empty when the algorithm logs no such value. The shares
    are of the ``steps`` taken since the previous row: discrete actions 0/1/2 (flat/long/short);
    continuous ones by ``info["target"]`` below -1/3 (short), above 1/3 (long), else flat.
``regimes.csv``
    Written at the end: the steps bucketed into volatility terciles by ``info["realized_vol"]``
    (thresholds from the training data's realized vol when given, else from the values seen):
    ``regime, vol_from, vol_to, steps, reward_sum, reward_mean, time_in_position``. Steps whose
    realized vol is not finite (the warm-up) are left out.

The env's ``info`` per step (the contract): ``equity, position, target, fees, funding, pnl,
risk_penalty, turnover_penalty, realized_vol, ts`` and, at an episode's end, ``n_trades``.
"""

from __future__ import annotations

import csv
import math
from array import array
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from vibe_quant.progress import Progress

EPISODE_COLUMNS = (
    "episode", "env", "timesteps", "return", "length", "final_equity", "n_trades", "pnl", "fees", "funding",
    "risk_penalty", "turnover_penalty", "start_ts", "end_ts",
)  # fmt: skip
TRAINING_COLUMNS = (
    "timesteps", "n_updates", "entropy_loss", "ent_coef", "exploration_rate", "value_loss", "policy_loss",
    "share_flat", "share_long", "share_short", "steps",
)  # fmt: skip
REGIME_COLUMNS = ("regime", "vol_from", "vol_to", "steps", "reward_sum", "reward_mean", "time_in_position")
REGIMES = ("low", "mid", "high")
_SUMMED = ("pnl", "fees", "funding", "risk_penalty", "turnover_penalty")
# SB3's logger keys -> our columns (each algorithm logs a subset).
_LOGGED = {
    "train/n_updates": "n_updates",
    "train/entropy_loss": "entropy_loss",
    "train/ent_coef": "ent_coef",
    "rollout/exploration_rate": "exploration_rate",
    "train/value_loss": "value_loss",
    "train/critic_loss": "value_loss",
    "train/loss": "value_loss",
    "train/policy_gradient_loss": "policy_loss",
    "train/actor_loss": "policy_loss",
}
_FLAT, _LONG, _SHORT = 0, 1, 2
_THIRD = 1.0 / 3.0


def tercile_thresholds(realized_vol: np.ndarray) -> tuple[float, float]:
    """Return the 1/3 and 2/3 quantiles of the finite values of `realized_vol` (shape ``(n,)``).

    Raises
    ------
    ValueError
        When no value is finite.
    """
    finite = np.asarray(realized_vol, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("no finite realized vol to compute terciles from")
    low, high = np.quantile(finite, [1 / 3, 2 / 3])
    return float(low), float(high)


def regime_rows(
    realized_vol: np.ndarray, reward: np.ndarray, in_position: np.ndarray, thresholds: tuple[float, float]
) -> list[dict]:
    """Sum rewards and time in position per volatility regime.

    Parameters
    ----------
    realized_vol, reward, in_position : np.ndarray
        One value per step, shape ``(n,)``; `in_position` is 1 when the position was not flat.
    thresholds : tuple of float
        ``(low, high)``: vol <= low is "low", vol > high is "high", the rest "mid".

    Returns
    -------
    list of dict
        One row per regime in the order low, mid, high, keys :data:`REGIME_COLUMNS`; a regime with no
        step has NaN mean and time in position.
    """
    vol = np.asarray(realized_vol, dtype=float)
    keep = np.isfinite(vol)
    vol, reward, held = vol[keep], np.asarray(reward, dtype=float)[keep], np.asarray(in_position, dtype=float)[keep]
    low, high = thresholds
    masks = (vol <= low, (vol > low) & (vol <= high), vol > high)
    bounds = ((-math.inf, low), (low, high), (high, math.inf))
    rows = []
    for name, mask, (lo, hi) in zip(REGIMES, masks, bounds, strict=True):
        n = int(mask.sum())
        rows.append(
            {
                "regime": name, "vol_from": lo, "vol_to": hi, "steps": n,
                "reward_sum": float(reward[mask].sum()),
                "reward_mean": float(reward[mask].mean()) if n else math.nan,
                "time_in_position": float(held[mask].mean()) if n else math.nan,
            }
        )  # fmt: skip
    return rows


class TrainingLogs(BaseCallback):
    """Write ``episodes.csv``, ``training.csv`` and ``regimes.csv`` into `out_dir` as training runs.

    Parameters
    ----------
    out_dir : Path
        The run's folder (exists).
    discrete : bool
        Whether actions are Discrete(3) indices (flat/long/short) or continuous targets.
    log_every : int, default 1000
        Fewest steps between two ``training.csv`` rows.
    regime_vol : np.ndarray, optional
        The training data's realized vol, shape ``(n,)``, for the tercile thresholds; default the
        values the env reported during training.
    """

    def __init__(self, out_dir: Path, discrete: bool, log_every: int = 1000, regime_vol: np.ndarray | None = None):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.discrete = discrete
        self.log_every = log_every
        self.regime_vol = None if regime_vol is None else np.asarray(regime_vol, dtype=float)
        self.n_episodes = 0

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._files = [open(self.out_dir / name, "w", newline="") for name in ("episodes.csv", "training.csv")]  # noqa: SIM115
        self._episodes = csv.DictWriter(self._files[0], EPISODE_COLUMNS)
        self._training = csv.DictWriter(self._files[1], TRAINING_COLUMNS)
        self._episodes.writeheader()
        self._training.writeheader()
        self._ret = np.zeros(n)
        self._len = np.zeros(n, dtype=np.int64)
        self._sums = np.zeros((n, len(_SUMMED)))
        self._start_ts: list[int | None] = [None] * n
        self._logged: dict[str, float] = {}
        self._counts = np.zeros(3, dtype=np.int64)
        self._last_row = 0
        self._vol, self._reward, self._held = array("d"), array("d"), array("b")

    def _on_step(self) -> bool:
        infos, rewards, dones = self.locals["infos"], self.locals["rewards"], self.locals["dones"]
        self._copy_logged()
        if self.discrete:
            self._counts += np.bincount(np.asarray(self.locals["actions"]).reshape(-1).astype(np.int64), minlength=3)[
                :3
            ]
        for i, info in enumerate(infos):
            reward = float(rewards[i])
            if not self.discrete:
                target = float(info["target"])
                self._counts[_SHORT if target < -_THIRD else _LONG if target > _THIRD else _FLAT] += 1
            self._ret[i] += reward
            self._len[i] += 1
            self._sums[i] += [float(info[key]) for key in _SUMMED]
            if self._start_ts[i] is None:
                self._start_ts[i] = int(info["ts"])
            self._vol.append(float(info["realized_vol"]))
            self._reward.append(reward)
            self._held.append(1 if float(info["position"]) != 0.0 else 0)
            if dones[i]:
                self._end_episode(i, info)
        return True

    def _end_episode(self, i: int, info: dict) -> None:
        row = {
            "episode": self.n_episodes, "env": i, "timesteps": self.num_timesteps, "return": self._ret[i],
            "length": int(self._len[i]), "final_equity": float(info["equity"]), "n_trades": int(info.get("n_trades", 0)),
            **dict(zip(_SUMMED, self._sums[i].tolist(), strict=True)),
            "start_ts": self._start_ts[i], "end_ts": int(info["ts"]),
        }  # fmt: skip
        self._episodes.writerow(row)
        self._files[0].flush()
        self.n_episodes += 1
        self._ret[i], self._len[i], self._sums[i], self._start_ts[i] = 0.0, 0, 0.0, None

    def _copy_logged(self) -> None:
        # SB3 clears its values at each dump; keep the last of each so a row never misses one.
        values = self.logger.name_to_value
        for key, column in _LOGGED.items():
            if key in values:
                self._logged[column] = float(values[key])

    def _on_rollout_start(self) -> None:
        # A rollout starts right after the previous one's gradient steps: their losses are logged now.
        self._copy_logged()
        if self.num_timesteps - self._last_row >= self.log_every:
            self._write_training_row()

    def _write_training_row(self) -> None:
        steps = int(self._counts.sum())
        shares = self._counts / steps if steps else np.full(3, math.nan)
        row = {column: self._logged.get(column, "") for column in TRAINING_COLUMNS[1:7]}
        row |= {"timesteps": self.num_timesteps, "steps": steps}
        row |= {"share_flat": shares[_FLAT], "share_long": shares[_LONG], "share_short": shares[_SHORT]}
        self._training.writerow(row)
        self._files[1].flush()
        self._counts[:] = 0
        self._last_row = self.num_timesteps

    def _on_training_end(self) -> None:
        self._copy_logged()
        if self.num_timesteps > self._last_row:
            self._write_training_row()
        for handle in self._files:
            handle.close()
        vol = np.array(self._vol, dtype=float)
        source = self.regime_vol if self.regime_vol is not None else vol
        rows = []
        if np.isfinite(source).any():
            rows = regime_rows(vol, np.array(self._reward), np.array(self._held), tercile_thresholds(source))
        with open(self.out_dir / "regimes.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, REGIME_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


class ProgressReport(BaseCallback):
    """Advance one `progress` task of `total` steps, every `every` steps and at the end."""

    def __init__(self, progress: Progress, description: str, total: int, every: int):
        super().__init__()
        self.progress, self.description, self.total, self.every = progress, description, total, every
        self._shown = 0

    def _on_training_start(self) -> None:
        self._task = self.progress.task(self.description, self.total)

    def _on_step(self) -> bool:
        if self.num_timesteps - self._shown >= self.every:
            self.progress.update(self._task, self.num_timesteps)
            self._shown = self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        self.progress.update(self._task, self.num_timesteps)
        self.progress.finish(self._task)
