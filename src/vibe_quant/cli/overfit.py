"""``vq overfit`` / ``python -m vibe_quant.overfitting``: DSR, walk-forward, purged K-fold,
CPCV and PBO between screening and validation."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home, home_specs, state
from vibe_quant.cli.options import EngineOption
from vibe_quant.errors import UserError

overfit_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="Overfitting filters on a screening run's candidates: DSR, WFA, purged K-fold, CPCV, PBO.")  # fmt: skip
overfit_app.callback()(common_options)
out = console()
# The pipeline's stages (overfitting.pipeline.run_overfitting's on_progress) -> progress bar labels.
STAGES = {
    "returns": "re-running points for their daily returns", "dsr": "DSR (deflated Sharpe)",
    "pkfold": "purged K-fold", "cpcv": "CPCV (combinatorial purged CV)", "pbo": "PBO (CSCV)",
    "wfa": "walk-forward backtests", "validate": "validating survivors (full costs)",
}  # fmt: skip


@overfit_app.command("run")
def run_command(
    run_id: Annotated[int, typer.Option("--run-id", help="Screening run id (backtest_runs.id, from `vq screen run`).")],
    filters: Annotated[str | None, typer.Option(help="Comma-separated, applied in this order: dsr, wfa, pkfold, cpcv, pbo (default: the config's enabled ones: dsr,wfa,pkfold).")] = None,
    config: Annotated[str | None, typer.Option("--config", help="YAML with an `overfitting:` block (thresholds, windows, folds; see docs/specs.md#overfitting-filters).")] = None,
    candidates: Annotated[str, typer.Option(help="Which points to filter: passed (the hard filters), front (Pareto) or all.")] = "passed",
    workers: Annotated[int, typer.Option(help="Parallel workers for the walk-forward backtests.")] = max(1, os.cpu_count() or 1),
    validate: Annotated[bool | None, typer.Option("--validate/--no-validate", help="Validate the survivors with full costs and flag execution-sensitive ones (default: the config's consistency.enabled).")] = None,
    engine: EngineOption = "sim",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the report JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Filter a screening run's candidates; print the funnel; store pass/fail per filter in SQLite."""
    from vibe_quant.overfitting.config import load_config, select_filters
    from vibe_quant.overfitting.pipeline import load_request
    from vibe_quant.screening.pipeline import check_engine

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    check_engine(engine)
    cfg = load_config(config, get_home().db_path)
    chosen = select_filters(cfg, filters)
    load_request(get_home(), run_id, cfg, chosen, candidates)  # every option checked before anything is written
    report = run_filters(run_id, cfg, chosen, workers, candidates, validate, quiet=as_json, engine=engine)
    if as_json:
        typer.echo(report.report_json.read_text(), nl=False)
        return
    from vibe_quant.present.overfitting import print_report  # (imports the pipeline: keep vq's start fast)

    print_report(report, out)


def run_filters(run_id: int, cfg, chosen: list[str], workers: int, candidates: str, validate: bool | None,
                quiet: bool = False, engine: str = "sim"):  # fmt: skip
    """Run the overfitting pipeline on screening run `run_id` with a progress bar per stage (its backtests on
    `engine`); return its report."""
    from vibe_quant.overfitting.pipeline import run_overfitting
    from vibe_quant.progress import rich_progress

    home = get_home(writable=True)
    specs = home_specs(home)
    with rich_progress(not (state.quiet or quiet)) as progress:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:  # the pipeline announces each stage before it starts
                tasks[stage] = progress.task(STAGES.get(stage, stage), total)
            progress.update(tasks[stage], done, total)

        return run_overfitting(home, run_id, cfg, chosen, workers, specs, candidates, validate, on_progress=tick,
                               engine=engine)  # fmt: skip


@overfit_app.command("show")
def show_command(run_id: Annotated[int, typer.Argument(help="Screening run id.")]) -> None:
    """Print the last overfitting report of a screening run."""
    from vibe_quant.state import StateManager

    home = get_home().require_state("no screening run yet (vq screen run, then vq overfit run --run-id ID)")
    with StateManager(home.db_path) as db:
        row = db.get("backtest_runs", run_id)
    if row is None:
        raise UserError(f"no backtest run {run_id} in the state database")
    if not row.get("overfitting"):
        raise UserError(f"run {run_id} has no overfitting report: vq overfit run --run-id {run_id}")
    md = home.runs / f"screening-{run_id}" / "overfitting.md"
    typer.echo(md.read_text() if md.exists() else json.dumps(row["overfitting"], indent=2))
