"""RL benchmark: our trading environment (``vibe_quant.rl.env.TradingEnv``) against two open-source
trading environments, vectorised, and Stable-Baselines3 training on it, in one process run.

Data: FILUSDT 1m klines of ../shared/data, 2023-08-01 to 2023-09-30 (87,840 bars), ingested into a
temporary home; funding settled on an injected 8-hourly +0.01% schedule (benchmarks/_child.py's
``inject_funding``: FILUSDT has no funding file in the shared data), so the env pays funding.
``plan_market(BacktestConfig(kind="rl", mode="validation", leverage=10))``: full costs, i.e. taker fee
on each fill, the volume slippage model, funding at each settlement, isolated-margin liquidation checks.
``EnvConfig(window=120, episode_bars=1440)``: observation 120 x 19 features + 4 portfolio values =
2,284 float32. Episodes are one day (1,440 bars, random start): uniformly random actions flip the
position on 2/3 of the steps and their costs take a whole-period episode's equity to ~0 within ~15,000
steps, after which orders are too small to fill and steps get cheaper; one-day episodes keep every
measured step a real trading step. Resets are inside the timed loops.

1. **Our env, one core** (this process): actions drawn beforehand with ``numpy.random.default_rng``
   (discrete: integers in {0 flat, 1 long, 2 short}, stepped as ``env.step(int(a))``; continuous:
   uniform target in [-1, 1], ``env.step(a)`` with a (1,) float32 array, rounded to quarters by the env).
   ``first_step_compile_s``: the first ``step`` after building the env (the env's compiled functions
   come from numba's on-disk cache when an earlier run filled it, as here; a cold cache compiles them
   once, ~20 s). Then ``--repeat``
   repeats of ``--steps`` steps each; ``steps_per_s`` = steps / wall seconds, median of the repeats
   (the headline, discrete; the issue's target is >= 120,000). Continuous actions go through
   ``actions.to_level`` in Python (clip and round), hence slower. Where the time goes: the same loop
   calling only the compiled core (``core_step_nb(env._core, level)``: the kernel's decision, fills, funding,
   liquidation and the observation write) and the cost of the observation copy ``env.step`` returns.
2. **Peers, same bars, same random actions**, installed only for this run (``uv run --with
   gym-anytrading --with gym-trading-env``); a failed import is recorded as "not installed" with the
   reason. Neither charges funding nor liquidates; neither has slippage, latency or margin.

   * gym-anytrading ``StocksEnv`` and ``ForexEnv`` (``window_size=120``, ``frame_bound`` = all bars):
     two actions (Sell/Buy) and two positions (Short/Long; in StocksEnv "Short" is out of the market);
     our long -> Buy, flat and short -> Sell. Its observation is a view of 120 x 2 floats (close and its
     difference) with no copy. Costs: StocksEnv takes 1% bid + 0.5% ask fees from its profit figure on
     each round trip (the reward carries no fee); ForexEnv a fixed 0.0003 price-unit spread, in the
     profit only. Episodes: the whole period (it has no episode length).
   * gym-trading-env ``TradingEnv`` (positions [-1, 0, 1], ``windows=120``, ``trading_fees=0.0005``,
     ``max_episode_duration=1440``, ``verbose=0``, ``render_mode=None``, ``initial_position=0``; the
     DataFrame's 19 ``feature_*`` columns are our features, so its observation is 120 x 21 float32):
     charges the fee on each position change; ``borrow_interest_rate=0``. It calls
     ``warnings.filterwarnings("error")`` on import (every warning becomes an exception in the whole
     process): the filters are restored right after importing it.

   Peers run ``--peer-repeat`` repeats of ``--steps`` steps (median); ``ratios``: ours / theirs.
3. **Vectorised**: SB3's ``DummyVecEnv`` over ``--n-envs`` (8) copies of our env sharing one
   ``EnvMarket``, random batched actions (n_envs,) per ``step``; total env steps/s = n_envs x vector
   steps / wall seconds (median of ``--repeat``). ``SubprocVecEnv`` with 2 envs in 2 forked processes
   (this machine has 2 cores; the parent only ships actions and observations).
4. **SB3 training** through ``vibe_quant.rl.train.train`` (CPU torch, one thread, seed 0):
   PPO on the discrete env (SB3 defaults but gamma 0.999: n_steps 2048, batch 64, 10 epochs, 64x64;
   ``--ppo-steps`` 8192 = 4 rollouts) and SAC on the continuous env (seed 000's defaults: 256x256, batch
   256, gamma 0.999, but ``buffer_size`` 100,000 to fit memory; ``learning_starts`` 100, ``--sac-steps``
   2000). frames/s = ``TrainResult.timesteps / TrainResult.seconds`` (``model.learn`` only).

Writes ``benchmarks/results/rl.json`` (``--quick``: one week of bars, short repeats and training, written
to ``$TMPDIR/rl-quick.json``).

    uv run --with gym-anytrading --with gym-trading-env python benchmarks/rl.py [--repeat 5] [--steps 50000] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_catalog, inject_funding  # noqa: E402

START, END, QUICK_END = dt.date(2023, 8, 1), dt.date(2023, 9, 30), dt.date(2023, 8, 7)
WINDOW, EPISODE_BARS, LEVERAGE, MODE = 120, 1440, 10.0, "validation"
SEED = 0


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _load(catalog: Path, end: dt.date):
    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_market
    from vibe_quant.instruments.specs import InstrumentSpecs

    plan = plan_market(BacktestConfig(kind="rl", strategy="rl:bench", symbols=("FILUSDT",), timeframe="1m",
                                      start=START, end=end, mode=MODE, leverage=LEVERAGE))  # fmt: skip
    data = load_market_data(catalog, plan, InstrumentSpecs())
    inject_funding(data)
    return plan, data


def _run(env, actions: np.ndarray, as_int: bool) -> float:
    """Step `env` through `actions` (resetting on episode ends); return the wall seconds."""
    env.reset(seed=SEED)
    t0 = time.perf_counter()
    if as_int:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(int(a))
            if terminated or truncated:
                env.reset()
    else:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
    return time.perf_counter() - t0


def _tally(env, actions: np.ndarray, as_int: bool) -> dict:
    """One untimed pass of ours collecting fills, fees and funding (shows the steps trade and pay funding)."""
    env.reset(seed=SEED)
    fills = fees = funding = 0.0
    for a in actions:
        _, _, terminated, truncated, info = env.step(int(a) if as_int else a)
        fees += info["fees"]
        funding += info["funding"]
        if terminated or truncated:
            fills += len(env.fills())
            env.reset()
    fills += len(env.fills())
    return {"fills": int(fills), "fills_per_step": fills / len(actions), "fees": fees, "funding": funding}


def _rates(runs: list[float], steps: int) -> dict:
    rates = [steps / w for w in runs]
    return {"steps_per_s": statistics.median(rates), "runs_steps_per_s": rates, "runs_wall_s": runs, "steps": steps}


def ours(em_d, em_c, args, actions, cont) -> dict:
    from vibe_quant.rl.actions import DISCRETE_LEVELS
    from vibe_quant.rl.env import TradingEnv, core_step_nb

    out = {}
    for name, em, acts, as_int in (("discrete", em_d, actions, True), ("continuous", em_c, cont, False)):
        env = TradingEnv(em)
        env.reset(seed=SEED)
        t0 = time.perf_counter()
        env.step(int(acts[0]) if as_int else acts[0])
        first = time.perf_counter() - t0
        _run(env, acts[: min(5000, len(acts))], as_int)  # warm
        runs = [_run(env, acts, as_int) for _ in range(args.repeat)]
        out[name] = {"first_step_compile_s": first, **_rates(runs, len(acts)), **_tally(env, acts, as_int)}
        print(f"ours {name}: {out[name]['steps_per_s']:,.0f} steps/s (first step {first:.1f}s)", flush=True)
    # where the time goes: the compiled core alone (episodes of `span` steps, reset untimed)
    env = TradingEnv(em_d)
    levels = np.array([DISCRETE_LEVELS[int(a)] for a in actions])
    span = env._span - 1
    core_runs = []
    for _ in range(args.repeat):
        wall, done = 0.0, 0
        while done < len(levels):
            env.reset(seed=SEED)
            core = env._core
            chunk = levels[done : done + span]
            t0 = time.perf_counter()
            for lv in chunk:
                core_step_nb(core, lv)
            wall += time.perf_counter() - t0
            done += len(chunk)
        core_runs.append(wall)
    obs = env._obs
    t0 = time.perf_counter()
    for _ in range(len(levels)):
        obs.copy()
    copy_s = time.perf_counter() - t0
    core = _rates(core_runs, len(levels))
    step_s = 1 / out["discrete"]["steps_per_s"]
    out["time_split_discrete"] = {
        "core_step_only_steps_per_s": core["steps_per_s"],
        "core_step_us": 1e6 / core["steps_per_s"],
        "env_step_us": 1e6 * step_s,
        "obs_copy_us": 1e6 * copy_s / len(levels),
        "python_wrapper_us": 1e6 * (step_s - 1 / core["steps_per_s"]),
        "core_share": (1 / core["steps_per_s"]) / step_s,
        "note": "core: core_step_nb(env._core, level) alone (one call of a cached njit function on the environment's numba struct: decision, fills, funding, "
        "liquidation, observation write); python_wrapper: env.step's rest (action lookup, reward, info "
        "dict, observation copy, the loop's own int(a) and done checks)",
    }
    print(f"  core only {core['steps_per_s']:,.0f} steps/s", flush=True)
    return out


def _peer_runs(env, acts, repeat: int, steps: int) -> dict:
    _run(env, acts[: min(5000, len(acts))], True)
    return _rates([_run(env, acts, True) for _ in range(repeat)], steps)


def peers(df, features: np.ndarray, names, args, actions) -> dict:
    """`df`: the bars' open/high/low/close/volume on a DatetimeIndex; `features`: our (bars, 19) matrix."""
    out = {}
    try:
        from gym_anytrading.envs import ForexEnv, StocksEnv
    except ImportError as exc:
        out["gym-anytrading"] = {"status": "not installed", "reason": f"{type(exc).__name__}: {exc}"}
    else:
        any_df = df.rename(columns=str.capitalize)  # Open, High, Low, Close, Volume
        any_acts = (actions == 1).astype(np.int64)  # long -> Buy (1); flat, short -> Sell (0)
        res = {"version": _version("gym-anytrading")}
        for name, cls in (("StocksEnv", StocksEnv), ("ForexEnv", ForexEnv)):
            try:
                env = cls(any_df, window_size=WINDOW, frame_bound=(WINDOW, len(any_df)))
                res[name] = {**_peer_runs(env, any_acts, args.peer_repeat, len(any_acts)),
                             "observation_shape": list(env.observation_space.shape)}  # fmt: skip
                print(f"gym-anytrading {name}: {res[name]['steps_per_s']:,.0f} steps/s", flush=True)
            except Exception as exc:  # a peer's failure is a result to record
                res[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        out["gym-anytrading"] = res
    filters = warnings.filters[:]
    try:
        from gym_trading_env.environments import TradingEnv as GteEnv
    except ImportError as exc:
        out["gym-trading-env"] = {"status": "not installed", "reason": f"{type(exc).__name__}: {exc}"}
    else:
        warnings.filters[:] = filters  # it sets filterwarnings("error") process-wide on import
        gdf = df.copy()
        for j, name in enumerate(names):
            gdf[f"feature_{name}"] = features[:, j]
        try:
            env = GteEnv(gdf, positions=[-1, 0, 1], windows=WINDOW, trading_fees=0.0005, borrow_interest_rate=0,
                         initial_position=0, max_episode_duration=EPISODE_BARS, verbose=0, render_mode=None)  # fmt: skip
            gte_acts = np.array([1, 2, 0])[actions]  # flat -> 0, long -> 1, short -> -1 (positions' indices)
            out["gym-trading-env"] = {"version": _version("gym-trading-env"),
                                      **_peer_runs(env, gte_acts, args.peer_repeat, len(gte_acts)),
                                      "observation_shape": list(env.observation_space.shape)}  # fmt: skip
            print(f"gym-trading-env: {out['gym-trading-env']['steps_per_s']:,.0f} steps/s", flush=True)
        except Exception as exc:
            out["gym-trading-env"] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return out


def vectorised(em_d, args) -> dict:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from vibe_quant.rl.env import TradingEnv

    rng = np.random.default_rng(SEED + 1)
    out = {}
    for name, n, make in (
        ("DummyVecEnv", args.n_envs, lambda fns: DummyVecEnv(fns)),
        ("SubprocVecEnv", 2, lambda fns: SubprocVecEnv(fns, start_method="fork")),
    ):
        vec = make([lambda: TradingEnv(em_d) for _ in range(n)])
        acts = rng.integers(0, 3, size=(args.vec_steps, n))
        try:
            vec.reset()
            for a in acts[:500]:
                vec.step(a)
            runs = []
            for _ in range(args.repeat):
                vec.reset()
                t0 = time.perf_counter()
                for a in acts:
                    vec.step(a)
                runs.append(time.perf_counter() - t0)
        finally:
            vec.close()
        r = _rates(runs, args.vec_steps * n)
        out[name] = {"n_envs": n, "vector_steps": args.vec_steps, "env_steps_per_s": r.pop("steps_per_s"), **r}
        print(f"{name} x{n}: {out[name]['env_steps_per_s']:,.0f} env steps/s", flush=True)
    return out


def training(em_d, em_c, args, tmp: Path) -> dict:
    import torch

    from vibe_quant.rl.env import TradingEnv
    from vibe_quant.rl.train import parse_train_config, train

    torch.set_num_threads(1)
    out = {}
    for name, em, raw in (
        ("ppo", em_d, {"algo": "ppo", "total_timesteps": args.ppo_steps, "seed": SEED,
                       "ppo": {"n_steps": args.ppo_n_steps}}),
        ("sac", em_c, {"algo": "sac", "total_timesteps": args.sac_steps, "seed": SEED,
                       "sac": {"buffer_size": 100_000, "learning_starts": 100}}),
    ):  # fmt: skip
        config = parse_train_config(raw)
        res = train(lambda i, em=em: TradingEnv(em), config, tmp / name)
        out[name] = {"timesteps": res.timesteps, "seconds": res.seconds, "frames_per_s": res.timesteps / res.seconds,
                     "episodes": res.episodes, "config": raw}  # fmt: skip
        print(f"{name}: {out[name]['frames_per_s']:,.0f} frames/s ({res.timesteps} in {res.seconds:.1f}s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="repeats of our env and the vec envs (median)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="repeats of each peer (median)")
    parser.add_argument("--steps", type=int, default=50_000, help="steps per repeat")
    parser.add_argument("--n-envs", type=int, default=8, help="DummyVecEnv copies")
    parser.add_argument("--vec-steps", type=int, default=10_000, help="vector steps per repeat")
    parser.add_argument("--ppo-steps", type=int, default=8192)
    parser.add_argument("--ppo-n-steps", type=int, default=2048)
    parser.add_argument("--sac-steps", type=int, default=2000)
    parser.add_argument("--skip-training", action="store_true", help="not for the recorded JSON")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: bars to {QUICK_END}, 2 repeats of 3,000 steps, 1 peer repeat, 500 vector "
                        "steps, PPO 512 steps (n_steps 256), SAC 300; written to $TMPDIR/rl-quick.json")  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    end = END
    if args.quick:
        end = QUICK_END
        args.repeat, args.peer_repeat, args.steps, args.vec_steps = 2, 1, 3000, 500
        args.ppo_steps, args.ppo_n_steps, args.sac_steps = 512, 256, 300
    out = args.out or (
        Path(tempfile.gettempdir()) / "rl-quick.json" if args.quick else ROOT / "benchmarks" / "results" / "rl.json"
    )
    t_start = time.perf_counter()
    import gymnasium
    import numba
    import stable_baselines3
    import torch

    from vibe_quant.home import Home
    from vibe_quant.rl.env import EnvConfig, EnvMarket
    from vibe_quant.rl.features import FEATURES, N_FEATURES, PORTFOLIO

    with tempfile.TemporaryDirectory() as tmp:
        print("ingesting FILUSDT 1m into a temporary home ...", flush=True)
        t0 = time.perf_counter()
        catalog = Home(Path(fil_catalog(tmp + "/home", START, end))).catalog
        plan, data = _load(catalog, end)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        em_d = EnvMarket(plan, data, EnvConfig(window=WINDOW, episode_bars=EPISODE_BARS))
        market_s = time.perf_counter() - t0
        em_c = EnvMarket(plan, data, EnvConfig(window=WINDOW, episode_bars=EPISODE_BARS, action_space="continuous"))
        bars = em_d.n
        rng = np.random.default_rng(SEED)
        actions = rng.integers(0, 3, size=args.steps)
        cont = rng.uniform(-1, 1, size=(args.steps, 1)).astype(np.float32)
        ours_res = ours(em_d, em_c, args, actions, cont)
        import pandas as pd

        mk = em_d.market
        df = pd.DataFrame({"open": mk.bo, "high": mk.bh, "low": mk.bl, "close": mk.bc,
                           "volume": np.asarray(mk.books[0].volumes, dtype=np.float64)},
                          index=pd.DatetimeIndex(np.asarray(mk.bts).astype("datetime64[ns]")))  # fmt: skip
        peers_res = peers(df, em_d.features, FEATURES, args, actions)
        vec_res = vectorised(em_d, args)
        train_res = None if args.skip_training else training(em_d, em_c, args, Path(tmp))

    headline = ours_res["discrete"]["steps_per_s"]
    ratios = {}
    for peer, res in peers_res.items():
        for name, r in [(peer, res)] if "steps_per_s" in res else [(f"{peer} {k}", v) for k, v in res.items()]:
            if isinstance(r, dict) and "steps_per_s" in r:
                ratios[f"ours_over_{name}"] = headline / r["steps_per_s"]
    result = {
        "benchmark": "rl: our TradingEnv's steps/s vs gym-anytrading and gym-trading-env, vectorised, and SB3 "
        "PPO/SAC training frames/s",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gymnasium.__version__,
            "pandas": _version("pandas"),
            "gym-anytrading": _version("gym-anytrading"),
            "gym-trading-env": _version("gym-trading-env"),
        },
        "quick": args.quick,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "data": {
            "symbol": "FILUSDT",
            "timeframe": "1m",
            "start": START.isoformat(),
            "end": end.isoformat(),
            "bars": bars,
            "funding": "injected 8-hourly +0.01% (benchmarks/_child.py inject_funding)",
            "venue": {"mode": MODE, "leverage": LEVERAGE},
            "load_s": load_s,
            "env_market_build_s": market_s,
        },
        "env": {
            "window": WINDOW,
            "episode_bars": EPISODE_BARS,
            "observation_floats": WINDOW * N_FEATURES + len(PORTFOLIO),
            "features": list(FEATURES),
            "costs": "taker fee per fill, volume slippage model, funding at settlements, isolated-margin "
            "liquidation (mode validation, leverage 10)",
        },
        "steps_per_s": headline,
        "target_steps_per_s": 120_000,
        "meets_target": headline >= 120_000,
        "headline": {
            "steps_per_s_discrete": headline,
            "steps_per_s_continuous": ours_res["continuous"]["steps_per_s"],
            "first_step_compile_s": ours_res["discrete"]["first_step_compile_s"],
            **ratios,
            "dummy_vec_env_steps_per_s": vec_res["DummyVecEnv"]["env_steps_per_s"],
            "subproc_vec_env_steps_per_s": vec_res["SubprocVecEnv"]["env_steps_per_s"],
            **(
                {}
                if train_res is None
                else {
                    "ppo_frames_per_s": train_res["ppo"]["frames_per_s"],
                    "sac_frames_per_s": train_res["sac"]["frames_per_s"],
                }
            ),
        },
        "ours": ours_res,
        "peers": peers_res,
        "ratios": ratios,
        "vectorised": vec_res,
        "training": train_res,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": time.perf_counter() - t_start,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["headline"], indent=2))
    print(f"wrote {out} ({result['wall_s']:.0f}s)")


if __name__ == "__main__":
    main()
