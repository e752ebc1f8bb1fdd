"""The RL stage's jobs: train a run, evaluate it (kernel and NautilusTrader), register it, walk forward.

Everything a command or a dashboard job does with RL goes through here (the CLI only parses).
A run folder is written under a temporary name and renamed when complete (a killed training leaves
no half run); its id is a content hash of what determines the model (market, period, venue,
environment, algorithm, seed, data files, feature version), so the same request names the same run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.errors import UserError
from vibe_quant.home import Home, resolve_home
from vibe_quant.progress import Progress
from vibe_quant.rl.env import EnvConfig, EnvMarket, TradingEnv, feature_version
from vibe_quant.rl.runs import TrainingRun, read_run, runs_dir, write_json


@dataclass(frozen=True)
class Market:
    """What a policy trades: one symbol at a timeframe, a venue mode and a leverage."""

    symbol: str
    timeframe: str = "1m"
    mode: str = "screening"
    leverage: float = 3.0

    def config(self, start: dt.date, end: dt.date, kind: str = "rl", document: dict | None = None):
        from vibe_quant.backtest.config import BacktestConfig

        return BacktestConfig(strategy="rl:env", kind=kind, document=document, symbols=(self.symbol,),
                              timeframe=self.timeframe, start=start, end=end, mode=self.mode,
                              leverage=self.leverage)  # fmt: skip


def load(home: Home, market: Market, start: dt.date, end: dt.date, env: EnvConfig):
    """The plan, data and environment market of `market` over `start`..`end` (inclusive days).

    Raises
    ------
    UserError
        No catalog, no bars for the symbol or too few bars (with the command to run).
    """
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_market
    from vibe_quant.instruments.specs import InstrumentSpecs

    home.require_catalog()
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    plan = plan_market(market.config(start, end))
    data = load_market_data(home.catalog, plan, InstrumentSpecs())
    return plan, data, EnvMarket(plan, data, env)


def _run_id(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


def train_run(home: Home, market: Market, start: dt.date, end: dt.date, env: EnvConfig, config,
              progress: Progress | None = None, force: bool = False, resume: str | None = None) -> TrainingRun:  # fmt: skip
    """Train a policy on `start`..`end` and write its run folder; return the run.

    An identical request returns the existing run unless `force`. `resume` (a run id) continues that
    run's model for ``config.total_timesteps`` more steps (same algorithm and environment) into a new run.

    Raises
    ------
    UserError
        `resume` names a run of another algorithm or environment, or one without a model.
    """
    from vibe_quant.rl.train import train

    _, data, env_market = load(home, market, start, end, env)
    meta = {
        "symbol": market.symbol, "timeframe": market.timeframe, "start": start.isoformat(), "end": end.isoformat(),
        "venue": {"mode": market.mode, "leverage": market.leverage}, "env": msgspec.to_builtins(env),
        "algo": config.algo, "timesteps": config.total_timesteps, "seed": config.seed,
        "train": msgspec.to_builtins(config), "training_data_hash": data.digest, "feature_version": feature_version(),
    }  # fmt: skip
    parent = None
    if resume is not None:
        parent = read_run(home, resume)
        if not parent.has_model:
            raise UserError(f"--resume {resume}: run {parent.run_id} has no model.zip to continue from")
        for key in ("algo", "env", "symbol", "timeframe"):
            if parent.meta.get(key) != meta[key]:
                raise UserError(f"--resume {parent.run_id}: its {key} is {parent.meta.get(key)!r}, this request's "
                                f"{meta[key]!r}; resume with the same {key}")  # fmt: skip
        meta["resumed_from"] = parent.run_id
    run_id = _run_id(meta)
    final = runs_dir(home) / run_id
    if final.exists():
        if not force and (final / "model.zip").is_file():
            return read_run(home, run_id)
        shutil.rmtree(final)
    tmp = runs_dir(home) / f".{run_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    result = train(lambda i: TradingEnv(env_market), config, tmp, progress,
                   regime_vol=env_market.features[:, 11] / 100.0, resume=parent.path if parent else None)  # fmt: skip
    meta.update(run_id=run_id, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                seconds=round(time.perf_counter() - t0, 2), episodes=result.episodes,
                torch=result.torch_version, bars=env_market.n)  # fmt: skip
    write_json(tmp / "run.json", meta)
    tmp.rename(final)
    return read_run(home, run_id)


def policy_values(run: TrainingRun) -> dict:
    """The ``rl`` strategy document that runs `run`'s model as a ``PolicyStrategy``."""
    env = run.meta["env"]
    cfg = EnvConfig(**env)
    return {"name": f"rl:{run.meta.get('model_id') or run.run_id}", "policy": "model", "source": str(run.path), "action_space": cfg.action_space, "levels": cfg.levels,
            "fraction": cfg.fraction, "window": cfg.window, "ready": cfg.ready}  # fmt: skip


def evaluate_run(home: Home, run_id: str, start: dt.date, end: dt.date, nautilus: bool = True) -> dict:
    """Evaluate run `run_id` on `start`..`end` (kernel and NautilusTrader with the parity check); write
    ``evaluation.json`` into the run folder and return it."""
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.rl.evaluate import evaluate
    from vibe_quant.rl.train import load_policy

    run = read_run(home, run_id)
    if not run.has_model:
        raise UserError(f"run {run.run_id} has no model.zip: train it again (vq rl train)")
    meta = run.meta
    market = Market(meta["symbol"], meta["timeframe"], meta["venue"]["mode"], meta["venue"]["leverage"])
    env = EnvConfig(**meta["env"])
    plan, data, _ = load(home, market, start, end, env)
    policy_plan = plan_run(market.config(start, end, document=policy_values(run)))
    report = evaluate(load_policy(run.path), plan, data, env, policy_plan, nautilus)
    report.update(start=start.isoformat(), end=end.isoformat(), run_id=run.run_id,
                  evaluated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))  # fmt: skip
    write_json(run.path / "evaluation.json", report)
    return report


def register_run(home: Home, run_id: str, stage: str | None = None, name: str | None = None):
    """Register run `run_id`'s model (it must be evaluated, with NautilusTrader parity) as a candidate,
    then move it to `stage` (``staging``) if given; return the model record."""
    from vibe_quant.rl import registry

    run = read_run(home, run_id)
    ev = run.evaluation
    if ev is None:
        raise UserError(f"run {run.run_id} is not evaluated: vq rl evaluate {run.run_id} --start ... --end ...")
    parity = ev.get("parity")
    if not parity or not parity.get("identical"):
        raise UserError(f"run {run.run_id}: the environment and NautilusTrader disagree on its evaluation "
                        f"({(parity or {}).get('differences', 'not checked')}); it cannot be registered")  # fmt: skip
    meta = run.meta
    metrics = dict(ev["metrics"])
    if run.walkforward:
        metrics["window_returns"] = [w["metrics"]["net_return"] for w in run.walkforward.get("windows", [])]
    model_meta = registry.parse_meta({
        "name": name or f"{meta['symbol']}-{meta['algo']}-{run.run_id[:6]}", "algo": meta["algo"],
        "symbol": meta["symbol"], "timeframe": meta["timeframe"], "training_data_hash": meta["training_data_hash"],
        "feature_version": meta["feature_version"], "hyperparameters": meta["train"],
        "env_config": {**meta["env"], "venue": meta["venue"], "train_period": [meta["start"], meta["end"]]},
        "evaluation": {"metrics": metrics, "details": {"period": [ev["start"], ev["end"]], "parity": parity,
                                                      "run_id": run.run_id}},
    })  # fmt: skip
    files = {p.name: p for p in (run.path / "model.zip", run.path / "config.json", run.path / "run.json",
                                 run.path / "evaluation.json") if p.is_file()}  # fmt: skip
    record = registry.register(home, files, model_meta)
    if stage is not None and record.stage != stage:
        record = registry.set_stage(home, record.model_id, stage, f"registered from run {run.run_id}")
    meta["model_id"] = record.model_id
    write_json(run.path / "run.json", meta)
    return record


def policy_document(text: str, db_path: Path | None) -> dict:
    """The ``rl`` strategy document `text` names: a model id (or unique prefix) of the registry, a
    training run id, or a run/model directory.

    Raises
    ------
    UserError
        Nothing of that name.
    """
    from vibe_quant.rl import registry

    path = Path(text)
    if (path / "model.zip").is_file() and (path / "run.json").is_file():
        return policy_values(TrainingRun(path.name, path, json.loads((path / "run.json").read_text()), None, None))
    home = Home(db_path.parent.parent) if db_path is not None else resolve_home()  # (state/vibe_quant.db)
    try:
        record = registry.get(home, text)
        folder = registry.artifact_path(home, record)
        return policy_values(TrainingRun(record.model_id, folder, json.loads((folder / "run.json").read_text()),
                                         None, None))  # fmt: skip
    except registry.UnknownModelError:
        try:
            return policy_values(read_run(home, text))
        except UserError:
            raise UserError(
                f"rl:{text}: no model of that id in the registry and no training run of that id in "
                f"{runs_dir(home)}; `vq rl list` shows both (or give a run folder)"
            ) from None


def windows(start: dt.date, end: dt.date, train_days: int, val_days: int, test_days: int) -> list[tuple]:
    """Walk-forward windows ``(T0, T1, T2, T3)``: train T0..T1, validate T1..T2, test T2..T3 (each end
    exclusive), rolled forward by the test length while T3 stays within `end` (inclusive).

    Raises
    ------
    UserError
        A non-positive length, or a period shorter than one window.
    """
    if min(train_days, val_days, test_days) < 1:
        raise UserError(
            f"walk-forward lengths must be >= 1 day: train {train_days}, validate {val_days}, test {test_days}"
        )
    out = []
    t0 = start
    one = dt.timedelta(days=1)
    while True:
        t1 = t0 + dt.timedelta(days=train_days)
        t2 = t1 + dt.timedelta(days=val_days)
        t3 = t2 + dt.timedelta(days=test_days)
        if t3 - one > end:
            break
        out.append((t0, t1, t2, t3))
        t0 = t0 + dt.timedelta(days=test_days)
    if not out:
        raise UserError(f"{start}..{end} is shorter than one walk-forward window ({train_days + val_days + test_days} "
                        "days): a longer period or shorter windows")  # fmt: skip
    return out


def walk_forward(home: Home, market: Market, start: dt.date, end: dt.date, train_days: int, val_days: int,
                 test_days: int, env: EnvConfig, config, progress: Progress | None = None) -> dict:  # fmt: skip
    """Train on each window's T0..T1, evaluate on the kernel on T1..T2 (validation) and T2..T3 (test), roll
    forward; write the summary as ``walkforward.json`` into the last window's run (the newest model, whose
    promotion then reads the windows' test returns) and return it."""
    from vibe_quant.rl.evaluate import policy_metrics, rollout
    from vibe_quant.rl.train import load_policy
    from vibe_quant.sim.policy import run_levels

    one = dt.timedelta(days=1)
    rows = []
    run = None
    for k, (t0, t1, t2, t3) in enumerate(windows(start, end, train_days, val_days, test_days)):
        run = train_run(home, market, t0, t1 - one, env, config, progress)
        policy = load_policy(run.path)
        row = {"window": k, "run_id": run.run_id, "train_start": t0.isoformat(), "train_end": (t1 - one).isoformat()}
        for label, a, b in (("val", t1, t2), ("test", t2, t3)):
            plan, data, em = load(home, market, a, b - one, env)
            levels, _ = rollout(policy, em)
            result = run_levels(plan, data, levels, env.ready, env.fraction, market=em.market)
            row[f"{label}_start"], row[f"{label}_end"] = a.isoformat(), (b - one).isoformat()
            row[f"{label}_metrics"] = policy_metrics(result, em.starting_equity)
        row["metrics"] = row["test_metrics"]
        rows.append(row)
    tests = [r["test_metrics"]["net_return"] for r in rows]
    import numpy as np

    summary = {
        "windows": rows, "train_days": train_days, "val_days": val_days, "test_days": test_days,
        "stability": {"test_net_return_mean": float(np.mean(tests)), "test_net_return_std": float(np.std(tests)),
                      "test_net_return_min": float(np.min(tests)), "positive_share": float(np.mean(np.array(tests) > 0)),
                      "windows": len(tests)},
    }  # fmt: skip
    write_json(run.path / "walkforward.json", summary)
    summary["last_run"] = run.run_id
    return summary
