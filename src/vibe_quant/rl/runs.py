"""Training runs on disk: ``$VQ_HOME/rl/runs/<run_id>/`` and what readers (CLI, dashboard) take from them.

A run folder holds ``run.json`` (what was trained on: symbol, timeframe, period, venue, environment,
algorithm, data hash, feature version), the training outputs of :func:`vibe_quant.rl.train.train`
(``model.zip``, ``config.json``, ``tb/``, ``episodes.csv``, ``training.csv``, ``regimes.csv``),
``evaluation.json`` once evaluated (:mod:`vibe_quant.rl.evaluate`) and ``walkforward.json`` for a
walk-forward run's summary. Files are written to a temporary name and renamed (a reader never sees
half a file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vibe_quant.errors import UserError, did_you_mean
from vibe_quant.home import Home


def runs_dir(home: Home) -> Path:
    return home.root / "rl" / "runs"


def write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON to `path` atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); delete the run folder or train again") from None


@dataclass(frozen=True)
class TrainingRun:
    """One training run folder and its JSON files (``evaluation``/``walkforward`` None until written)."""

    run_id: str
    path: Path
    meta: dict
    evaluation: dict | None
    walkforward: dict | None

    @property
    def has_model(self) -> bool:
        return (self.path / "model.zip").is_file()

    def csv(self, name: str) -> Path:
        """``episodes``, ``training`` or ``regimes``: the CSV's path (it may not exist yet)."""
        return self.path / f"{name}.csv"


def _load(path: Path) -> TrainingRun:
    return TrainingRun(path.name, path, _read(path / "run.json") or {}, _read(path / "evaluation.json"),
                       _read(path / "walkforward.json"))  # fmt: skip


def _names(home: Home) -> list[str]:
    root = runs_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "run.json").is_file())


def read_run(home: Home, run_id: str) -> TrainingRun:
    """The run `run_id` (or a unique prefix of it).

    Raises
    ------
    UserError
        No such run (with a did-you-mean), or an ambiguous prefix.
    """
    names = _names(home)
    matches = [n for n in names if n == run_id] or [n for n in names if n.startswith(run_id)]
    if len(matches) != 1:
        if matches:
            raise UserError(f"training run {run_id!r} is ambiguous: {', '.join(matches[:5])}; give more characters")
        raise UserError(f"no training run {run_id!r} in {runs_dir(home)}; `vq rl list` shows them."
                        + did_you_mean(run_id, names))  # fmt: skip
    return _load(runs_dir(home) / matches[0])


def list_runs(home: Home) -> list[TrainingRun]:
    """Every training run, newest first."""
    runs = [_load(runs_dir(home) / name) for name in _names(home)]
    return sorted(runs, key=lambda r: r.meta.get("created_at", ""), reverse=True)
