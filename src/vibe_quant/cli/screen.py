"""``vq screen`` / ``python -m vibe_quant.screening``: parameter sweeps with a Pareto front."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vibe_quant.cli.context import common_options, console, err_console, get_home, get_specs, home_specs, state
from vibe_quant.cli.options import (
    EngineOption,
    RiskOption,
    SizingOption,
    parse_axes,
    parse_date,
    parse_params,
    with_flags,
)
from vibe_quant.errors import UserError
from vibe_quant.present.format import fmt
from vibe_quant.present.screening import print_summary
from vibe_quant.progress import rich_progress

screen_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="Screen a strategy's parameter grid in parallel; Pareto front in SQLite.")  # fmt: skip
screen_app.callback()(common_options)
out = console()
FLAGS = {"strategy": "--strategy", "symbols": "--symbols", "timeframe": "--timeframe", "start": "--start",
         "end": "--end", "leverage": "--leverage", "starting_balance": "--balance"}  # fmt: skip
SPEC_FLAGS = {"max_points": "--max-points", "min_trades": "--min-trades", "max_drawdown": "--max-dd",
              "min_profit_factor": "--min-pf"}  # fmt: skip


@screen_app.command("run")
def run_command(
    strategy: Annotated[
        str | None, typer.Option(help="A strategy, named as for `vq backtest run`: FILE.yaml, a saved or shipped DSL name, or a Python strategy (sweep its parameters with --sweep).")
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated, e.g. FILUSDT-PERP.")] = None,
    start: Annotated[str | None, typer.Option(help="First day (UTC), YYYY-MM-DD (default: first day in the catalog).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (UTC, inclusive) (default: last day in the catalog).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Bar timeframe (default: the strategy's own).")] = None,
    workers: Annotated[int, typer.Option(help="Parallel workers (processes or Ray actors).")] = max(1, os.cpu_count() or 1),
    top: Annotated[int, typer.Option(help="Rows of the front to print.")] = 10,
    sweep: Annotated[list[str] | None, typer.Option("--sweep", help="Replace or add a sweep axis: KEY=V1,V2,... (repeatable).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Fix a parameter: KEY=VALUE (repeatable).")] = None,
    constraint: Annotated[list[str] | None, typer.Option("--constraint", help="Skip points breaking it, e.g. 'ema_fast.period < ema_slow.period' (repeatable).")] = None,
    max_points: Annotated[int, typer.Option(help="Grids larger than this are screened on a seeded random sample of this size (0: all).")] = 500,
    sample_seed: Annotated[int, typer.Option(help="Seed of that sample.")] = 0,
    min_trades: Annotated[int, typer.Option(help="Hard filter: at least this many closed trades.")] = 50,
    max_dd: Annotated[float, typer.Option(help="Hard filter: max drawdown below this fraction.")] = 0.30,
    min_pf: Annotated[float, typer.Option(help="Hard filter: profit factor above this.")] = 1.0,
    leverage: Annotated[float, typer.Option(help="Leverage (isolated margin).")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    executor: Annotated[str, typer.Option(help="process (local pool) or ray.")] = "process",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray), e.g. ray://host:10001.")] = None,
    resume: Annotated[int | None, typer.Option("--resume", help="Resume screening run ID (finished points are kept).")] = None,
    replay: Annotated[str, typer.Option(help="active: replay only the bars where the strategy can act (fast); full: every bar. Same results.")] = "active",
    engine: EngineOption = "sim",
    sizing: SizingOption = None,
    risk: RiskOption = None,
    overfit: Annotated[str | None, typer.Option("--overfit", help="Then run these overfitting filters on the points that passed the hard filters, e.g. dsr,wfa (see vq overfit run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Screen a parameter grid; print the Pareto front; store every point in sweep_results (then, with
    --overfit, filter its candidates for overfitting)."""
    from vibe_quant.screening.pipeline import (
        check_run_options,
        create_screening_run,
        load_screening_run,
        run_screening,
    )
    from vibe_quant.state import StateManager

    check_run_options(workers, executor, replay, engine)
    if overfit is not None:
        from vibe_quant.overfitting.config import load_config, select_filters

        if as_json:
            raise UserError("--overfit prints its report after the sweep's; use it without --json (vq overfit run "
                            "--json RUN_ID prints the report as JSON)")  # fmt: skip

        of_config = load_config(None, get_home().db_path)
        of_filters = select_filters(of_config, overfit)  # a bad filter name fails before the sweep runs
    home = get_home().require_catalog()  # every option is checked before anything is written
    if resume is not None:
        if strategy or symbols or sizing or risk:
            raise UserError("--resume continues a stored screening run; do not combine it with --strategy/--symbols/"
                            "--sizing/--risk")  # fmt: skip
        home.require_state(f"no screening run {resume} to resume; pass the --home it ran in")
        with StateManager(home.db_path) as db:
            load_screening_run(db, resume)
        run_row = resume
    else:
        base = build_base(home, strategy, symbols, timeframe, start, end, leverage, balance, sizing, risk)
        spec = build_spec(sweep or [], param or [], constraint or [], max_points, sample_seed, min_trades, max_dd,
                          min_pf)  # fmt: skip
        home = get_home(writable=True)
        with StateManager(home.db_path) as db:
            run_row = create_screening_run(db, base, spec)
    home = get_home(writable=True)
    specs = home_specs(home)
    with rich_progress(not (state.quiet or as_json)) as progress:
        task = progress.task(f"screening run {run_row}", None)

        def tick(done: int, total: int, result: dict) -> None:
            progress.update(task, done, total)

        summary = run_screening(home, run_row, workers, specs, executor, address, on_progress=tick, replay=replay,
                                engine=engine)  # fmt: skip
    report = home.runs / f"screening-{run_row}" / "summary.json"
    if as_json:
        typer.echo(report.read_text(), nl=False)
        return
    print_summary(summary, report, top, out)
    if overfit is not None:
        from vibe_quant.cli.overfit import run_filters
        from vibe_quant.present.overfitting import print_report

        print_report(run_filters(run_row, of_config, of_filters, workers, "passed", None, engine=engine), out)


@with_flags(FLAGS)
def build_base(home, strategy, symbols, timeframe, start, end, leverage, balance, sizing, risk):
    """The base backtest config of a new screening run (dates default to the bars in the catalog)."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.data.catalog import catalog_days, require_bars
    from vibe_quant.instruments.specs import normalize_symbol
    from vibe_quant.risk.config import config_fields
    from vibe_quant.strategy.registry import find_strategy

    missing = [n for n, v in (("--strategy", strategy), ("--symbols", symbols)) if not v]
    if missing:
        raise UserError(f"missing {', '.join(missing)} (or --resume RUN_ID)")
    ref = find_strategy(strategy, home.db_path)
    timeframe = timeframe or (ref.document or {}).get("timeframe") or "5m"
    syms = [normalize_symbol(s) for s in symbols.split(",") if s.strip()]
    ids = [get_specs().get(s).nautilus_id for s in syms]
    if start is None or end is None:
        first, last = catalog_days(home.catalog, ids, timeframe)
    config = parse_config({
        "strategy": ref.name, "kind": ref.kind, "document": ref.document, "symbols": syms, "timeframe": timeframe,
        "start": parse_date("--start", start).isoformat() if start else first.isoformat(),
        "end": parse_date("--end", end).isoformat() if end else last.isoformat(), "mode": "screening",
        "leverage": leverage, "starting_balance": balance, **config_fields(sizing, risk, home.db_path),
    })  # fmt: skip
    require_bars(home.catalog, ids, config.timeframe, config.start, config.end)  # workers would fail on every point
    return config


@with_flags(SPEC_FLAGS, leading=True)
def build_spec(sweep, param, constraint, max_points, sample_seed, min_trades, max_dd, min_pf):
    """The grid of a new screening run from `vq screen run`'s options (errors name the flag)."""
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec

    axes = parse_axes(sweep)
    axes.update({k: [v] for k, v in parse_params(param).items()})
    return SweepSpec(overrides=axes, constraints=list(constraint), max_points=max_points, sample_seed=sample_seed,
                     filters=HardFilters(min_trades=min_trades, max_drawdown=max_dd, min_profit_factor=min_pf))  # fmt: skip


@screen_app.command("top")
def top_command(
    run_id: Annotated[int, typer.Argument(help="Screening run id (backtest_runs.id).")],
    n: Annotated[int, typer.Option("--top", help="How many candidates.")] = 10,
    export: Annotated[Path | None, typer.Option(help="Write the candidates as JSON to this file.")] = None,
    create_runs: Annotated[bool, typer.Option("--create-runs", help="Create a pending validation run per candidate (run with `vq backtest run --run-id N`).")] = False,
) -> None:  # fmt: skip
    """The best N candidates of a screening run (front first, then by Sharpe), for validation."""
    import msgspec

    from vibe_quant.backtest.persist import create_run
    from vibe_quant.screening.pipeline import load_screening_run, ranked
    from vibe_quant.state import StateManager

    get_home().require_state("no screening run yet (vq screen run --strategy ... --symbols ...)")
    home = get_home(writable=create_runs or export is not None)
    with StateManager(home.db_path) as db:
        base, _spec, row = load_screening_run(db, run_id)
        if row["status"] != "completed":
            raise UserError(
                f"screening run {run_id} is {row['status']}: finish it first (vq screen run --resume {run_id})"
            )
        rows = ranked(db, run_id)[:n]
        candidates = []
        for r in rows:
            entry = {"sweep_result_id": r["id"], "parameters": r["parameters"], "pareto": bool(r["is_pareto_optimal"]),
                     "metrics": r["metrics"]}  # fmt: skip
            if create_runs:
                config = msgspec.structs.replace(base, mode="validation", params=r["parameters"], latency=None,
                                                 prob_fill_on_limit=None, prob_slippage=None, latency_ns=None)  # fmt: skip
                entry["validation_run_id"] = create_run(db, config)
            candidates.append(entry)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        tmp = export.with_suffix(export.suffix + ".tmp")
        tmp.write_text(
            json.dumps({"screening_run": run_id, "strategy": base.strategy, "candidates": candidates}, indent=2) + "\n"
        )
        tmp.replace(export)
    table = Table(title=f"screening run {run_id}: top {len(candidates)} candidates")
    for col in (
        "id",
        "front",
        "parameters",
        "sharpe",
        "max DD",
        "PF",
        "trades",
        *(("validation run",) if create_runs else ()),
    ):
        table.add_column(col)
    for c in candidates:
        m = c["metrics"] or {}
        table.add_row(str(c["sweep_result_id"]), "*" if c["pareto"] else "",
                      ", ".join(f"{k}={v}" for k, v in c["parameters"].items()), fmt(m.get("sharpe_ratio"), ",.2f"),
                      fmt(m.get("max_drawdown"), ".1%"), fmt(m.get("profit_factor"), ",.2f"), fmt(m.get("total_trades")),
                      *((str(c["validation_run_id"]),) if create_runs else ()))  # fmt: skip
    out.print(table)
    if not candidates:
        out.print("[yellow]no candidate passes the hard filters[/] (loosen --min-trades/--max-dd/--min-pf and re-run)")
    if export is not None:
        out.print(f"exported: {export}")
    if create_runs and candidates:
        out.print(f"validate: vq backtest run --run-id {candidates[0]['validation_run_id']} (one per candidate)")


@screen_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows on stdout.")] = False,
) -> None:
    """Past screening runs: strategy, symbols, period, status and points stored."""
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.jobs import reconcile
    from vibe_quant.present.jobs import reconciled_lines
    from vibe_quant.present.screening import sweeps_table

    home = get_home()
    for line in reconciled_lines(reconcile(home)):  # a sweep whose process died is shown failed, saying why
        err_console.print(line, highlight=False)
    rows = list_runs(home, limit=limit, sweeps=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    out.print(sweeps_table(rows))
    if not rows:
        out.print("no screening run yet: vq screen run --strategy rsi_mean_reversion_mtf --symbols FILUSDT-PERP")
