"""``vq demo`` step 18: reinforcement learning on the sample (train, judge inside NautilusTrader, register)."""

from __future__ import annotations

import datetime as dt
import time

from vibe_quant.cli.context import console, state

out = console()


def demo_rl(h) -> tuple[str, bool]:
    """Train PPO (discrete 0 flat / 1 long / 2 short) on two weeks of the sample's FILUSDT 1m bars, evaluate the
    policy on the following three days on the kernel and inside NautilusTrader (parity: the same fills and equity),
    register it as a staging model and ask the promotion rules; return the run id and the parity verdict."""
    from vibe_quant.progress import rich_progress
    from vibe_quant.rl.env import EnvConfig
    from vibe_quant.rl.promotion import promote
    from vibe_quant.rl.service import Market, evaluate_run, register_run, train_run
    from vibe_quant.rl.train import parse_train_config

    market = Market("FILUSDT", "1m", "validation", 3.0)
    env = EnvConfig(episode_bars=1440)  # one-day episodes from random starts; window 120, lambda 0.1, kappa 0.01
    config = parse_train_config({"algo": "ppo", "total_timesteps": 2048, "seed": 0,
                                 "ppo": {"n_steps": 1024, "batch_size": 128}})  # fmt: skip
    t0 = time.perf_counter()
    with rich_progress(not state.quiet) as progress:
        run = train_run(h, market, dt.date(2023, 8, 1), dt.date(2023, 8, 14), env, config, progress)
    out.print(f"trained {run.run_id}: PPO, {config.total_timesteps:,} steps on {run.meta['bars']:,} bars "
              f"(features {run.meta['feature_version']}) in {time.perf_counter() - t0:.1f}s; "
              f"curves: {run.path / 'training.csv'}, {run.path / 'episodes.csv'}, TensorBoard {run.path / 'tb'}")  # fmt: skip
    t0 = time.perf_counter()
    report = evaluate_run(h, run.run_id, dt.date(2023, 8, 15), dt.date(2023, 8, 17))
    m, parity = report["metrics"], report["parity"]
    out.print(f"evaluated on 2023-08-15..17 inside NautilusTrader ({time.perf_counter() - t0:.1f}s): net return "
              f"{m['net_return']:.2%} after fees and funding, max drawdown {m['max_drawdown']:.2%}, {m['n_trades']} trades, "
              f"turnover {m['turnover']:.0f}/year")  # fmt: skip
    same = bool(parity["identical"])
    out.print("parity, environment (kernel) vs NautilusTrader PolicyStrategy: "
              + ("[green]identical[/]" if same else "[red]DIFFERENT[/]: " + "; ".join(parity["differences"][:3]))
              + f" ({parity['fills_nautilus']} fills, max equity difference {parity['max_equity_rel_diff']})")  # fmt: skip
    if not same:
        return run.run_id, False
    record = register_run(h, run.run_id, stage="staging", name="demo-ppo")
    result = promote(h, record.model_id)
    failed = ", ".join(c.rule for c in result.decision.failed) or "none"
    out.print(f"registry: model {record.model_id} (staging, artifacts {h.root / record.artifact_path}); promotion "
              f"{'to champion' if result.decision.promote else 'refused'} (failed rules: {failed}; a few thousand steps "
              "of training is not an edge)")  # fmt: skip
    return run.run_id, True
