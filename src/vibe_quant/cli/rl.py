"""``vq rl``: train a policy on our costs, evaluate it inside NautilusTrader, walk forward, the model registry."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home
from vibe_quant.cli.options import parse_date
from vibe_quant.progress import rich_progress

rl_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                     help="Reinforcement learning: train (SB3, CPU torch), evaluate on NautilusTrader, walk forward, registry.")  # fmt: skip
rl_app.callback()(common_options)
out = console()

Symbol = Annotated[str, typer.Option("--symbol", help="The perpetual to trade, e.g. FILUSDT (one symbol).")]
Timeframe = Annotated[str, typer.Option("--timeframe", help="Bar timeframe of the catalog (one step = one bar).")]
Start = Annotated[str, typer.Option("--start", help="First UTC day, YYYY-MM-DD.")]
End = Annotated[str, typer.Option("--end", help="Last UTC day (inclusive), YYYY-MM-DD.")]
Algo = Annotated[str, typer.Option("--algo", help="sac (continuous targets, the default), ppo or dqn (discrete).")]
Action = Annotated[str | None, typer.Option("--action", help="discrete (0 flat / 1 long / 2 short) or continuous "
                                                             "(target in [-1, 1]); default: continuous for sac, discrete otherwise.")]  # fmt: skip
Mode = Annotated[
    str, typer.Option("--mode", help="Slippage model: screening (coin-flip tick) or validation (volume-based).")
]


def _env(action: str | None, algo: str, window: int, episode_bars: int | None, fraction: float):
    from vibe_quant.rl.env import EnvConfig

    space = action or ("continuous" if algo == "sac" else "discrete")
    return EnvConfig(action_space=space, window=window, episode_bars=episode_bars, fraction=fraction)


def _train_config(algo: str, timesteps: int, seed: int, n_envs: int):
    from vibe_quant.rl.train import parse_train_config

    return parse_train_config({"algo": algo, "total_timesteps": timesteps, "seed": seed, "n_envs": n_envs})


@rl_app.command("train")
def train_command(
    symbol: Symbol, start: Start, end: End, timeframe: Timeframe = "1m", algo: Algo = "sac",
    timesteps: Annotated[int, typer.Option(help="Environment steps (bars) to train for.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed: the same request trains the same policy, bit for bit.")] = 0,
    action: Action = None, mode: Mode = "screening",
    leverage: Annotated[float, typer.Option(help="Isolated-margin leverage of the venue.")] = 3.0,
    window: Annotated[int, typer.Option(help="Observation window, bars (default 120).")] = 120,
    episode_bars: Annotated[int | None, typer.Option(help="Bars per episode (random starts); default: the whole period.")] = None,
    fraction: Annotated[float, typer.Option(help="Full size: notional as a fraction of equity.")] = 1.0,
    n_envs: Annotated[int, typer.Option(help="Environment copies stepped together (SB3 DummyVecEnv).")] = 1,
    force: Annotated[bool, typer.Option(help="Train again even if this exact run exists.")] = False,
    resume: Annotated[str | None, typer.Option(help="Continue this run's model for --timesteps more steps (a new run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:  # fmt: skip
    """Train a policy with Stable-Baselines3 in the environment (our fees, slippage, funding, liquidation)."""
    from vibe_quant.rl.service import Market, train_run

    home = get_home(writable=True)
    env = _env(action, algo, window, episode_bars, fraction)
    config = _train_config(algo, timesteps, seed, n_envs)
    with rich_progress(not as_json) as progress:
        run = train_run(home, Market(symbol, timeframe, mode, leverage), parse_date("--start", start),
                        parse_date("--end", end), env, config, progress, force=force, resume=resume)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps({"run_id": run.run_id, "path": str(run.path), **run.meta}, default=str) + "\n")
        return
    m = run.meta
    out.print(f"run {run.run_id}: {m['algo']} on {m['symbol']} {m['timeframe']} {m['start']}..{m['end']}, "
              f"{m['timesteps']:,} steps, {m.get('episodes', 0)} episode(s) in {m.get('seconds', 0):.1f} s")  # fmt: skip
    out.print(f"folder: {run.path} (TensorBoard: tensorboard --logdir {run.path / 'tb'})")
    out.print(f"next: vq rl evaluate {run.run_id} --start ... --end ...")


@rl_app.command("evaluate")
def evaluate_command(
    run_id: Annotated[str, typer.Argument(help="A training run id (or a unique prefix).")],
    start: Start, end: End,
    kernel_only: Annotated[bool, typer.Option("--kernel-only", help="Skip the NautilusTrader run and the parity check.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
) -> None:  # fmt: skip
    """Run the policy on the kernel and inside NautilusTrader over a period; compare them fill by fill."""
    from vibe_quant.rl.service import evaluate_run

    home = get_home(writable=True)
    report = evaluate_run(home, run_id, parse_date("--start", start), parse_date("--end", end),
                          nautilus=not kernel_only)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps({k: v for k, v in report.items() if k != "equity"}, default=str) + "\n")
        return
    print_metrics(
        report["metrics"], f"run {report['run_id']} on {report['start']}..{report['end']} ({report['engine']})"
    )
    parity = report.get("parity")
    if parity:
        verdict = "[green]identical[/]" if parity["identical"] else "[red]DIFFERENT[/]"
        out.print(f"parity kernel vs NautilusTrader: {verdict} ({parity['fills_kernel']} vs {parity['fills_nautilus']} "
                  f"fills, max equity difference {parity['max_equity_rel_diff']})")  # fmt: skip
        for line in parity["differences"]:
            out.print(f"  {line}")
        if not parity["identical"]:
            raise typer.Exit(1)


def print_metrics(metrics: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("net return", "max dd", "sharpe", "sortino", "turnover/yr", "CVaR95", "trades", "top trade"):
        table.add_column(col)
    m = metrics
    table.add_row(f"{m['net_return']:.2%}", f"{m['max_drawdown']:.2%}", f"{m['sharpe']:.2f}", f"{m['sortino']:.2f}",
                  f"{m['turnover']:.1f}", f"{m['cvar']:.2%}", str(m["n_trades"]), f"{m['largest_trade_share']:.0%}")  # fmt: skip
    out.print(table)


@rl_app.command("walk-forward")
def walk_forward_command(
    symbol: Symbol, start: Start, end: End, timeframe: Timeframe = "1m", algo: Algo = "ppo",
    train_days: Annotated[int, typer.Option(help="Training window T0->T1, days.")] = 14,
    val_days: Annotated[int, typer.Option(help="Validation window T1->T2, days.")] = 3,
    test_days: Annotated[int, typer.Option(help="Test window T2->T3, days (the roll step).")] = 3,
    timesteps: Annotated[int, typer.Option(help="Training steps per window.")] = 20_000,
    seed: int = 0, action: Action = None, mode: Mode = "screening", leverage: float = 3.0, window: int = 120,
    episode_bars: int | None = None, fraction: float = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Train T0->T1, validate T1->T2, test T2->T3 and roll forward; per-window metrics and their stability."""
    from vibe_quant.rl.service import Market, walk_forward

    home = get_home(writable=True)
    env = _env(action, algo, window, episode_bars, fraction)
    config = _train_config(algo, timesteps, seed, 1)
    with rich_progress(not as_json) as progress:
        summary = walk_forward(home, Market(symbol, timeframe, mode, leverage), parse_date("--start", start),
                               parse_date("--end", end), train_days, val_days, test_days, env, config, progress)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return
    from rich.table import Table

    table = Table("window", "run", "train", "test", "val return", "test return", "max dd", "sharpe", "sortino",
                  "turnover/yr", "CVaR95", title="walk-forward")  # fmt: skip
    for r in summary["windows"]:
        t, v = r["test_metrics"], r["val_metrics"]
        table.add_row(str(r["window"]), r["run_id"], f"{r['train_start']}..{r['train_end']}",
                      f"{r['test_start']}..{r['test_end']}", f"{v['net_return']:.2%}", f"{t['net_return']:.2%}",
                      f"{t['max_drawdown']:.2%}", f"{t['sharpe']:.2f}", f"{t['sortino']:.2f}", f"{t['turnover']:.1f}",
                      f"{t['cvar']:.2%}")  # fmt: skip
    out.print(table)
    s = summary["stability"]
    out.print(f"stability over {s['windows']} windows: test return mean {s['test_net_return_mean']:.2%}, std "
              f"{s['test_net_return_std']:.2%}, worst {s['test_net_return_min']:.2%}, positive in {s['positive_share']:.0%}")  # fmt: skip
    out.print(f"the last window's run {summary['last_run']} carries the summary: evaluate and register it to promote")


@rl_app.command("register")
def register_command(
    run_id: Annotated[str, typer.Argument(help="An evaluated training run (parity identical).")],
    stage: Annotated[str | None, typer.Option(help="Move it to this stage after registering: staging.")] = None,
    name: Annotated[str | None, typer.Option(help="A label (the id is the content hash).")] = None,
) -> None:  # fmt: skip
    """Register an evaluated run's model in the registry (a candidate; --stage staging to stage it)."""
    from vibe_quant.rl.service import register_run

    record = register_run(get_home(writable=True), run_id, stage, name)
    out.print(f"model {record.model_id} ({record.name}): {record.stage}; artifacts in {record.artifact_path}")


@rl_app.command("list")
def list_command(
    stage: Annotated[str | None, typer.Option(help="Only models in this stage.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:  # fmt: skip
    """The registry's models and the training runs."""
    from rich.table import Table

    from vibe_quant.rl import registry
    from vibe_quant.rl.runs import list_runs

    home = get_home()
    models = registry.list_models(home, stage=stage) if home.db_path.exists() else []
    runs = list_runs(home)
    if as_json:
        import msgspec

        sys.stdout.write(json.dumps({"models": msgspec.to_builtins(models),
                                     "runs": [{"run_id": r.run_id, **r.meta} for r in runs]}, default=str) + "\n")  # fmt: skip
        return
    table = Table("model", "name", "stage", "symbol", "tf", "algo", "net return", "max dd", "created", title="models")
    for m in models:
        table.add_row(m.model_id, m.name, m.stage, m.symbol, m.timeframe, m.algo, f"{m.metrics.net_return:.2%}",
                      f"{m.metrics.max_drawdown:.2%}", str(m.created_at))  # fmt: skip
    out.print(table if models else "no models yet: vq rl train, vq rl evaluate, vq rl register")
    table = Table("run", "symbol", "tf", "period", "algo", "steps", "evaluated", "model", title="training runs")
    for r in runs:
        m = r.meta
        ev = r.evaluation
        table.add_row(r.run_id, m["symbol"], m["timeframe"], f"{m['start']}..{m['end']}", m["algo"], f"{m['timesteps']:,}",
                      f"{ev['metrics']['net_return']:.2%}" if ev else "-", m.get("model_id", "-"))  # fmt: skip
    out.print(table if runs else "no training runs yet: vq rl train --symbol ... --start ... --end ...")


@rl_app.command("promote")
def promote_command(
    model_id: Annotated[str, typer.Argument(help="A candidate or staging model (id or prefix).")],
) -> None:
    """Apply the promotion rules against the champion of the model's symbol and timeframe; record the decision."""
    from vibe_quant.rl.promotion import promote

    result = promote(get_home(writable=True), model_id)
    for check in result.decision.checks:
        mark = "[green]pass[/]" if check.passed else "[red]fail[/]"
        out.print(f"{mark} {check.rule}: {check.message}")
    verdict = "promoted to champion" if result.decision.promote else "not promoted"
    out.print(f"model {result.model.model_id}: {verdict}"
              + (f" (retired {result.previous_champion})" if result.previous_champion and result.decision.promote else ""))  # fmt: skip
    if not result.decision.promote:
        raise typer.Exit(1)


@rl_app.command("retire")
def retire_command(
    model_id: str, reason: Annotated[str, typer.Option(help="Why (recorded).")] = "retired by hand"
) -> None:
    """Retire a model (recorded with the reason)."""
    from vibe_quant.rl.registry import set_stage

    record = set_stage(get_home(writable=True), model_id, "retired", reason)
    out.print(f"model {record.model_id}: retired")


@rl_app.command("install-torch")
def install_torch_command() -> None:
    """Install the CPU build of torch 2.13.0 into this environment (never PyPI's CUDA build)."""
    from vibe_quant.rl.torch_setup import ensure_torch

    out.print(f"torch {ensure_torch()}")
