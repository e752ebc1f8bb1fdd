"""``vq lpi features``: the liquidation-pressure signal trace of Binance tick files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home, get_specs, state
from vibe_quant.progress import rich_progress

lpi_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                      help="Liquidation-pressure research (LPI): the feature engine, experiments on the catalog's ticks, sweeps.")  # fmt: skip
lpi_app.callback()(common_options)
out = console()


@lpi_app.command("features")
def features_command(
    trades: Annotated[Path, typer.Argument(help="A Binance aggTrades file (CSV or the official zip).")],
    quotes: Annotated[Path | None, typer.Option("--quotes", help="A bookTicker file (CSV or zip) of the same period.")] = None,
    quotes_free: Annotated[bool, typer.Option("--quotes-free", help="No quotes: infer the touch from the trades (flagged in every snapshot).")] = False,
    clock: Annotated[str, typer.Option(help="Bucket clock: volume (close every --bucket-notional) or time (every --bucket-ms).")] = "volume",
    bucket_notional: Annotated[float, typer.Option(help="Volume clock: notional per bucket, quote currency.")] = 1_000_000.0,
    bucket_ms: Annotated[int, typer.Option(help="Time clock: bucket length, ms.")] = 1000,
    eta: Annotated[float, typer.Option(help="Impact threshold: a trade this far (fraction) through the mid is impact.")] = 0.0005,
    window: Annotated[int, typer.Option(help="Rolling z-score window, buckets.")] = 300,
    zscore: Annotated[str, typer.Option(help="Rolling z-score: mad (median/MAD) or std (mean/std).")] = "mad",
    contract_size: Annotated[float | None, typer.Option(help="Inverse (COIN-M) contract size in USD, e.g. 100 for BTCUSD_PERP (default: linear).")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the trace here (Parquet; default: TRADES stem + .lpi.parquet beside it).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Compute the LPI snapshots (LPI_fast, EXH, LEV, spread, depth proxy, RV, validity) at every bucket close."""
    from vibe_quant.lpi.params import LpiParams
    from vibe_quant.lpi.trace import trace, write_trace

    params = LpiParams(clock=clock, bucket_notional=bucket_notional, bucket_ns=bucket_ms * 1_000_000, eta=eta,
                       window=window, zscore=zscore, quotes_free=quotes_free)  # fmt: skip
    result = trace(trades, quotes, params, contract_size)
    target = output or trades.with_name(trades.name.split(".")[0] + ".lpi.parquet")
    write_trace(result, target)
    summary = {**result.summary(), "output": str(target)}
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(f"{summary['trades']:,} trades, {summary['quotes']:,} quotes -> {summary['snapshots']:,} snapshots "
              f"({clock} clock{', quotes-free' if quotes_free else ''}); LPI_fast valid in {summary['lpi_fast_valid']:,}, "
              f"median {summary['lpi_fast_p50']}, max {summary['lpi_fast_max']}")  # fmt: skip
    out.print(f"trace: {target}")


def print_experiment(summary: dict, bundle) -> None:
    """Print an experiment summary (folds beside the baseline, labels, comparison) and its bundle path."""
    agg, base = summary["aggregate"], summary.get("baseline")
    out.print(f"experiment {summary['experiment_id']}: {summary['strategy']} on {', '.join(summary['instruments'])} "
              f"{summary['start']}..{summary['end']}, {agg.get('folds', 0)} fold(s)")  # fmt: skip
    for label in summary["labels"]:
        out.print(f"[yellow]note:[/] {label}")
    from rich.table import Table

    table = Table("fold", "scored from", "to", "pnl", "return", "max dd", "fills", "maker", "trades", "baseline pnl")
    base_rows = base["folds"] if base else [{}] * len(summary["folds"])
    for row, b in zip(summary["folds"], base_rows, strict=True):
        table.add_row(str(row["fold"]), row["score_start"], row["end"], f"{row['pnl']:,.2f}", f"{row['return']:.4%}",
                      f"{row['max_drawdown']:.4%}", str(row["fills"]), str(row["maker_fills"]), str(row["trades"]),
                      f"{b['pnl']:,.2f}" if b.get("pnl") is not None else "-")  # fmt: skip
    out.print(table)
    comparison = summary.get("comparison")
    if comparison:
        out.print(f"vs {base['strategy']}: pnl difference {comparison['pnl_minus_baseline']:,.2f}, better in "
                  f"{comparison['folds_better']}/{comparison['folds']} folds")  # fmt: skip
    out.print(f"bundle: {bundle}")


@lpi_app.command("run")
def run_command(
    experiment: Annotated[Path, typer.Argument(help="experiment.yaml (instruments, period, signal, execution, ablations, walk_forward, baseline).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Run an experiment on the catalog's ticks: walk-forward folds, the EMA-cross baseline, a result bundle."""
    from vibe_quant.experiments.bundle import write_experiment_bundle
    from vibe_quant.experiments.config import load_experiment
    from vibe_quant.experiments.runner import load_data, run_experiment

    exp = load_experiment(experiment)
    home = get_home().require_catalog()
    with rich_progress(not (state.quiet or as_json)) as progress:
        data = load_data(home, exp, get_specs())
        result = run_experiment(home, exp, progress, data=data)
    _emit(result.summary(), write_experiment_bundle(get_home(writable=True), result), as_json)


@lpi_app.command("show")
def show_command(
    experiment: Annotated[str, typer.Argument(help="An experiment id (under $VQ_HOME/runs) or a bundle directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Show an experiment bundle's folds, baseline comparison and labels."""
    from vibe_quant.experiments.bundle import read_summary

    path, summary = read_summary(get_home(), experiment)
    _emit(summary, path, as_json)


def _emit(summary: dict, bundle: Path, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({**summary, "bundle": str(bundle)}) + "\n")
    else:
        print_experiment(summary, bundle)


@lpi_app.command("sweep")
def sweep_command(
    experiment: Annotated[Path, typer.Argument(help="experiment.yaml; its sweep: block gives the grid.")],
    latency: Annotated[str | None, typer.Option(help="Latency presets, comma-separated (overrides sweep.latency).")] = None,
    fee_tier: Annotated[str | None, typer.Option("--fee-tier", help="Fee tiers, comma-separated, e.g. vip0,vip4,vip9 (overrides sweep.fee_tier).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the grid as JSON.")] = False,
) -> None:  # fmt: skip
    """The latency x fee sensitivity grid: one experiment (and bundle) per point, a table of their results."""
    import msgspec

    from vibe_quant.experiments.config import experiment_from_data, load_experiment
    from vibe_quant.experiments.sweep import run_sweep, write_sensitivity

    exp = load_experiment(experiment)
    grid = {}
    if latency:
        grid["latency"] = [x.strip() for x in latency.split(",") if x.strip()]
    if fee_tier:
        grid["fee_tier"] = [x.strip() for x in fee_tier.split(",") if x.strip()]
    if grid:
        doc = msgspec.to_builtins(exp)
        doc["sweep"] = {**doc["sweep"], **grid}
        exp = experiment_from_data(doc, f"{experiment} with --latency/--fee-tier")
    home = get_home().require_catalog()
    with rich_progress(not (state.quiet or as_json)) as progress:
        rows = run_sweep(home, exp, progress, get_specs())
    table_path = write_sensitivity(get_home(writable=True), exp, rows)
    if as_json:
        sys.stdout.write(json.dumps({"points": rows, "table": str(table_path)}) + "\n")
        return
    from rich.table import Table

    table = Table(
        "latency", "ms", "fee tier", "maker", "taker", "pnl", "return", "fills", "trades", "baseline pnl", "experiment"
    )
    for r in rows:
        table.add_row(r["latency"], f"{r['latency_ms']:g}", r["fee_tier"], f"{r['maker_fee']:.5f}", f"{r['taker_fee']:.5f}",
                      f"{r['pnl']:,.2f}", f"{r['return']:.4%}", str(r["fills"]), str(r["trades"]),
                      f"{r['baseline_pnl']:,.2f}" if r["baseline_pnl"] is not None else "-", r["experiment_id"])  # fmt: skip
    out.print(table)
    out.print(f"sensitivity table: {table_path}")
