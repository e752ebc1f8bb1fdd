"""``vq discover run|top|list|show``: genetic strategy discovery over DSL genomes with overfitting guard rails."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, err_console, get_home, get_specs, home_specs, state
from vibe_quant.cli.options import parse_date, with_flags
from vibe_quant.errors import UserError
from vibe_quant.progress import rich_progress

discover_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                           help="Genetic strategy discovery (NSGA-II over DSL genomes) with overfitting guard rails.")  # fmt: skip
discover_app.callback()(common_options)
out = console()
FLAGS = {"symbols": "--symbols", "timeframe": "--timeframe", "start": "--start", "end": "--end",
         "holdout_days": "--holdout-days", "population": "--population", "generations": "--generations",
         "seed": "--seed", "indicators": "--indicators", "higher_timeframes": "--higher", "max_genes": "--max-genes",
         "occam": "--occam", "leverage": "--leverage", "min_trades": "--min-trades", "max_drawdown": "--max-dd",
         "min_profit_factor": "--min-pf", "finalists": "--finalists", "baselines": "--baselines"}  # fmt: skip


@discover_app.command("run")
def run_command(
    symbols: Annotated[str | None, typer.Option(help="Comma-separated perpetuals, e.g. FILUSDT (each genome trades all).")] = None,
    timeframe: Annotated[str, typer.Option(help="Bar timeframe of the catalog: 1m, 5m, 15m, 1h, 4h.")] = "15m",
    start: Annotated[str | None, typer.Option(help="First day (UTC) of the whole period (default: the catalog's first).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (UTC, inclusive); the last --holdout-days are held out (default: the catalog's last).")] = None,
    holdout_days: Annotated[int | None, typer.Option(help="Days at the end never seen by the search (default: 30% of the period).")] = None,
    population: Annotated[int, typer.Option(help="Genomes per generation (a multiple of 4).")] = 64,
    generations: Annotated[int, typer.Option(help="Generations after the random initial one.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the search (same seed, same run).")] = 0,
    indicators: Annotated[str | None, typer.Option(help="Indicator pool, comma-separated (default: all of RSI, STOCH, CCI, WILLR, MFI, ROC, MACD, BBANDS, EMA, SMA, WMA, DEMA, TEMA, DONCHIAN, KC, VWAP).")] = None,
    higher: Annotated[str | None, typer.Option("--higher", help="Higher timeframes genes may read, e.g. 1h,4h.")] = None,
    max_genes: Annotated[int, typer.Option(help="Indicators (genes) per strategy, at most (1-5).")] = 5,
    occam: Annotated[float, typer.Option(help="Sharpe taken off per gene beyond the first (complexity penalty).")] = 0.1,
    min_trades: Annotated[int, typer.Option(help="Hard filter (a constraint of the search): closed trades, at least.")] = 50,
    max_dd: Annotated[float, typer.Option(help="Hard filter: max drawdown below this fraction.")] = 0.30,
    min_pf: Annotated[float, typer.Option(help="Hard filter: profit factor above this.")] = 1.0,
    leverage: Annotated[float, typer.Option(help="Leverage (isolated margin).")] = 5.0,
    finalists: Annotated[int, typer.Option(help="Finalists judged by the guard rails (the last front, best Sharpe first).")] = 5,
    baselines: Annotated[int, typer.Option(help="Random genomes per finalist complexity, run on the held-out period.")] = 32,
    workers: Annotated[int, typer.Option(help="Parallel workers (processes or Ray actors).")] = max(1, os.cpu_count() or 1),
    executor: Annotated[str, typer.Option(help="process (local pool) or ray.")] = "process",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray).")] = None,
    resume: Annotated[int | None, typer.Option("--resume", help="Resume discovery run ID from its last generation checkpoint.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Search strategies on the training period, judge the finalists (DSR over every genome, PBO, walk-forward,
    the held-out period, random genomes of the same complexity); store every genome; resumable."""
    from vibe_quant.discovery import service
    from vibe_quant.present.discovery import generation_line, print_result

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if executor not in ("process", "ray"):
        raise UserError(f"--executor {executor!r}: choose process or ray")
    home = get_home().require_catalog()
    if resume is not None:
        if symbols:
            raise UserError("--resume continues a stored discovery run; do not combine it with --symbols")
        home.require_state(f"no discovery run {resume} to resume; pass the --home it ran in")
        service.get_run(home, resume)
        run_id = resume
    else:
        if not symbols:
            raise UserError("missing --symbols (or --resume RUN_ID)")
        config = build_config(home, symbols, timeframe, start, end, holdout_days, population, generations, seed,
                              indicators, higher, max_genes, occam, min_trades, max_dd, min_pf, leverage, finalists,
                              baselines)  # fmt: skip
        home = get_home(writable=True)
        run_id = service.start(home, config, get_specs())
        if not as_json:
            out.print(f"discovery run {run_id}: training {config.start}..{config.train_end}, held out "
                      f"{config.holdout_start}..{config.end}")  # fmt: skip
    home = get_home(writable=True)
    with rich_progress(not (state.quiet or as_json)) as progress:
        task = progress.task(f"discovery run {run_id}", None)

        def tick(stage: str, done: int, total: int) -> None:
            progress.update(task, done, total)

        def generation(g: dict) -> None:
            if not (state.quiet or as_json):
                out.print(generation_line(g))

        result = service.run(home, run_id, workers, executor, home_specs(home), address, tick, generation)
    if as_json:
        sys.stdout.write((home.runs / f"discovery-{run_id}" / "summary.json").read_text())
        return
    print_result(result, out)
    out.print(f"export: vq discover top {run_id} --export DIR")


@with_flags(FLAGS, leading=True)
def build_config(home, symbols, timeframe, start, end, holdout_days, population, generations, seed, indicators, higher,
                 max_genes, occam, min_trades, max_dd, min_pf, leverage, finalists, baselines):  # fmt: skip
    from vibe_quant.data.catalog import catalog_days
    from vibe_quant.discovery.config import parse_discovery
    from vibe_quant.instruments.specs import normalize_symbol

    syms = [normalize_symbol(s) for s in symbols.split(",") if s.strip()]
    if start is None or end is None:
        first, last = catalog_days(home.catalog, [get_specs().get(s).nautilus_id for s in syms], timeframe)
    data = {
        "symbols": syms, "timeframe": timeframe,
        "start": parse_date("--start", start).isoformat() if start else first.isoformat(),
        "end": parse_date("--end", end).isoformat() if end else last.isoformat(),
        "holdout_days": holdout_days, "population": population, "generations": generations, "seed": seed,
        "max_genes": max_genes, "occam": occam, "leverage": leverage,
        "filters": {"min_trades": min_trades, "max_drawdown": max_dd, "min_profit_factor": min_pf},
        "guards": {"finalists": finalists, "baselines": baselines},
    }  # fmt: skip
    if indicators:
        data["indicators"] = [i.strip().upper() for i in indicators.split(",") if i.strip()]
    if higher:
        data["higher_timeframes"] = [t.strip() for t in higher.split(",") if t.strip()]
    return parse_discovery(data)


@discover_app.command("top")
def top_command(
    run_id: Annotated[int, typer.Argument(help="Discovery run id (vq discover list).")],
    export: Annotated[Path | None, typer.Option("--export", help="Write the finalists that passed as DSL YAML files into this directory.")] = None,
    include_rejected: Annotated[bool, typer.Option("--all", help="With --export: the rejected finalists too (for review).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the finalists as JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """The finalists of a discovery run with their metrics and guard-rail verdicts; export them as DSL YAML."""
    from vibe_quant.discovery import service
    from vibe_quant.present.discovery import finalists_table

    home = get_home()
    home.require_state(f"no discovery run {run_id}: no state database in this home")
    config, row = service.get_run(home, run_id)
    rows = service.finalist_rows(home, run_id)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
    else:
        out.print(finalists_table(rows))
        if not rows:
            out.print(f"run {run_id} is {row['status']} with no finalists yet" + (f"; resume: vq discover run --resume {run_id}"
                                                                                    if row["status"] != "completed" else ""))  # fmt: skip
    if export is not None:
        paths = service.export(get_home(writable=True), run_id, export, include_rejected)
        target = sys.stderr if as_json else None
        for p in paths:
            print(f"wrote {p}", file=target)
        print(f"check: vq dsl validate {paths[0]}; reproduce: vq backtest run --strategy {paths[0]} "
              f"{service.reproduce_args(config)}", file=target)  # fmt: skip


@discover_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows on stdout.")] = False) -> None:
    """Discovery runs, newest first."""
    from vibe_quant.discovery import service
    from vibe_quant.jobs import reconcile
    from vibe_quant.present.discovery import runs_table
    from vibe_quant.present.jobs import reconciled_lines

    home = get_home()
    for line in reconciled_lines(reconcile(home)):  # a run whose process died is shown failed, saying why
        err_console.print(line, highlight=False)
    rows = service.list_runs(home) if home.db_path.exists() else []
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    out.print(runs_table(rows))
    if not rows:
        out.print(
            "no discovery run yet: vq discover run --symbols FILUSDT --timeframe 15m --population 64 --generations 20"
        )


@discover_app.command("show")
def show_command(run_id: Annotated[int, typer.Argument(help="Discovery run id.")]) -> None:
    """A discovery run's generations (fitness evolution) and finalists."""
    from vibe_quant.discovery import service
    from vibe_quant.present.discovery import finalists_table, generation_line

    home = get_home()
    home.require_state(f"no discovery run {run_id}: no state database in this home")
    config, row = service.get_run(home, run_id)
    out.print(f"discovery run {run_id}: {row['status']}; {','.join(config.symbols)} {config.timeframe}, training "
              f"{config.start}..{config.train_end}, held out {config.holdout_start}..{config.end}; "
              f"{row['evaluated']} genomes evaluated, {row['cache_hits']} cache hits")  # fmt: skip
    for g in service.generations(home, run_id):
        out.print(generation_line({"generation": g["generation"], "front": len(g["front"]), **g["stats"]}))
    rows = service.finalist_rows(home, run_id)
    if rows:
        out.print(finalists_table(rows))
    if row.get("summary"):
        out.print(f"[bold]{row['summary'].get('verdict')}[/]")
