"""``vq overfit`` / ``python -m vibe_quant.overfitting``: DSR, walk-forward, purged K-fold,
CPCV and PBO between screening and validation."""

from __future__ import annotations

import json
import math
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vibe_quant.cli import common_options, get_home, state
from vibe_quant.errors import UserError

overfit_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="Overfitting filters on a screening run's candidates: DSR, WFA, purged K-fold, CPCV, PBO.")  # fmt: skip
overfit_app.callback()(common_options)
out = Console(soft_wrap=True)


@overfit_app.command("run")
def run_command(
    run_id: Annotated[int, typer.Option("--run-id", help="Screening run id (backtest_runs.id, from `vq screen run`).")],
    filters: Annotated[str | None, typer.Option(help="Comma-separated, applied in this order: dsr, wfa, pkfold, cpcv, pbo (default: the config's enabled ones: dsr,wfa,pkfold).")] = None,
    config: Annotated[str | None, typer.Option("--config", help="YAML with seed 001's `overfitting:` block (thresholds, windows, folds).")] = None,
    candidates: Annotated[str, typer.Option(help="Which points to filter: passed (the hard filters), front (Pareto) or all.")] = "passed",
    workers: Annotated[int, typer.Option(help="Parallel workers for the walk-forward backtests.")] = max(1, os.cpu_count() or 1),
    validate: Annotated[bool | None, typer.Option("--validate/--no-validate", help="Validate the survivors with full costs and flag execution-sensitive ones (default: the config's consistency.enabled).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the report JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Filter a screening run's candidates; print the funnel; store pass/fail per filter in SQLite."""
    from vibe_quant.overfitting.config import load_config, select_filters
    from vibe_quant.overfitting.pipeline import run_overfitting
    from vibe_quant.progress import RichProgress
    from vibe_quant.screening.cli import _home_specs

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    cfg = load_config(config)
    chosen = select_filters(cfg, filters)
    home = get_home(writable=True)
    specs = str(state.specs) if state.specs else _home_specs(home)
    quiet = state.quiet or as_json
    if quiet:
        report = run_overfitting(home, run_id, cfg, chosen, workers, specs, candidates, validate)
    else:
        with RichProgress(Console(stderr=True)) as progress:
            tasks: dict[str, object] = {}
            names = {"returns": "re-running points for their daily returns", "wfa": "walk-forward backtests",
                     "validate": "validating survivors (full costs)"}  # fmt: skip

            def tick(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.task(names[stage], total)
                progress._bars.update(tasks[stage], total=total, completed=done)

            report = run_overfitting(home, run_id, cfg, chosen, workers, specs, candidates, validate, on_progress=tick)
    if as_json:
        typer.echo(report.report_json.read_text(), nl=False)
        return
    print_report(report)


def _fmt(value, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_report(report) -> None:
    from vibe_quant.overfitting.pipeline import LABELS

    out.print(f"screening run {report.run_row} ({report.strategy}): {report.n_trials} trials, "
              f"{report.funnel[0][1]} candidates; filters: {', '.join(LABELS[f] for f in report.filters)}")  # fmt: skip
    out.print("funnel: " + " -> ".join(f"{name} {n}" for name, n in report.funnel))
    if "pbo" in report.run_level:
        p = report.run_level["pbo"]
        out.print(
            f"PBO {p['pbo']:.2f} over {p['combinations']} CSCV splits (prob. the IS best loses OOS {p['prob_oos_loss']:.2f})"
        )
    if "cpcv" in report.run_level:
        p = report.run_level["cpcv"]
        out.print(
            f"CPCV: {p['paths']} paths, mean Sharpe {_fmt(p['mean_path_sharpe'])}, std {_fmt(p['std_path_sharpe'])}"
        )
    wfa = report.run_level.get("wfa", {})
    if wfa.get("chosen_per_window"):
        out.print(f"walk-forward optimisation over {len(wfa['windows'])} windows: efficiency {_fmt(wfa['efficiency'])}, "
                  f"{wfa['profitable_windows_pct']:.0%} OOS windows profitable, OOS Sharpe {_fmt(wfa['oos_sharpe'])}")  # fmt: skip
    table = Table(title="candidates (cells: the filter's figure; red = failed)")
    table.add_column("id", justify="right")
    for f in report.filters:
        table.add_column(LABELS[f], justify="right")
    table.add_column("verdict")
    table.add_column("parameters", overflow="fold")
    varying = _varying([c.row["parameters"] for c in report.candidates])
    for c in report.candidates:
        cells = []
        for f in report.filters:
            v = c.verdicts.get(f)
            cells.append("" if v is None else f"[{'green' if v.passed else 'red'}]{_cell(f, v)}[/]")
        failed = next((v.reason for v in c.verdicts.values() if not v.passed), None)
        verdict = "[green]survives[/]" if failed is None else failed
        if c.validation is not None:
            verdict += f"; validated: Sharpe {_fmt(c.validation['screening_sharpe'])} -> {_fmt(c.validation['validation_sharpe'])} (run {c.validation['run_id']})"
            if c.validation["execution_sensitive"]:
                verdict += " [yellow]execution-sensitive[/]"
        params = ", ".join(f"{k}={v}" for k, v in c.row["parameters"].items() if k in varying) or "(no swept parameter)"
        table.add_row(str(c.id), *cells, verdict, params)
    out.print(table)
    out.print(f"report: {report.report_md}\n        {report.report_json}")
    out.print(f"done in {report.elapsed_s:.1f}s")


def _cell(name: str, v) -> str:
    f = v.figures
    if name == "dsr":
        return _fmt(f.get("dsr"), ".3f")
    if name == "wfa":
        return _fmt(f.get("efficiency")) if f else "error"
    if name == "pkfold":
        return f"{_fmt(f.get('mean_oos_sharpe'))}±{_fmt(f.get('std_oos_sharpe'))}"
    return "pass" if v.passed else "fail"


def _varying(params: list[dict]) -> set[str]:
    if not params:
        return set()
    return {k for k in params[0] if len({json.dumps(p.get(k)) for p in params}) > 1}


@overfit_app.command("show")
def show_command(run_id: Annotated[int, typer.Argument(help="Screening run id.")]) -> None:
    """Print the last overfitting report of a screening run."""
    from vibe_quant.state import StateManager

    home = get_home(writable=False)
    with StateManager(home.db_path) as db:
        row = db.get("backtest_runs", run_id)
    if row is None:
        raise UserError(f"no backtest run {run_id} in the state database")
    if not row.get("overfitting"):
        raise UserError(f"run {run_id} has no overfitting report: vq overfit run --run-id {run_id}")
    md = home.runs / f"screening-{run_id}" / "overfitting.md"
    typer.echo(md.read_text() if md.exists() else json.dumps(row["overfitting"], indent=2))
