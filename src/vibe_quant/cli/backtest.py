"""``vq backtest run|list|show`` (``python -m vibe_quant.validation ...``): validation-grade backtests."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, err_console, get_home, get_specs, state
from vibe_quant.cli.options import RiskOption, SizingOption, parse_date, parse_params, with_flags
from vibe_quant.errors import UserError
from vibe_quant.progress import rich_progress

backtest_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                           help="Backtests with funding, liquidation, next-open fills and our metrics.")  # fmt: skip
backtest_app.callback()(common_options)
out = console()

FLAGS = {"strategy": "--strategy", "symbols": "--symbols", "timeframe": "--timeframe", "start": "--start",
         "end": "--end", "params": "--param", "mode": "--mode", "latency": "--latency", "leverage": "--leverage",
         "starting_balance": "--balance", "maker_fee": "--maker-fee", "taker_fee": "--taker-fee"}  # fmt: skip


@backtest_app.command()
def run(
    run_id: Annotated[int | None, typer.Option("--run-id", help="Run a pending backtest_runs row by id.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="A DSL strategy file (FILE.yaml; NAME.yaml or NAME for a saved or shipped one, see `vq dsl list`) "
            "or a Python strategy: ema_cross, ema_trend_atr, ema_cross_basket (one strategy over all --symbols)."
        ),
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated, e.g. FILUSDT-PERP,NEARUSDT-PERP.")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar timeframe: 1m, 5m, 15m, 1h, 4h (default: a DSL strategy's own, else 5m).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (UTC, inclusive), YYYY-MM-DD.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="Strategy parameter NAME=VALUE (repeatable); DSL: a sweep key, e.g. rsi.period=7."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="validation (realistic fills, latency) or screening (fast, simple).")
    ] = "validation",
    latency: Annotated[
        str | None,
        typer.Option(
            help="co_located, domestic, international, retail (validation default), none, or a custom preset saved on the dashboard's Settings page."
        ),
    ] = None,
    leverage: Annotated[float, typer.Option(help="Leverage (isolated margin = notional / leverage).")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    maker_fee: Annotated[float | None, typer.Option(help="Override the spec's maker fee (rate, e.g. 0.0002).")] = None,
    taker_fee: Annotated[float | None, typer.Option(help="Override the spec's taker fee (rate, e.g. 0.0005).")] = None,
    sizing: SizingOption = None,
    risk: RiskOption = None,
    validates: Annotated[int | None, typer.Option("--validates", help="A sweep point (sweep_results id) this run validates: the point then links to this run.")] = None,
    ticks: Annotated[bool, typer.Option("--ticks", help="Replay the catalog's trade (and bookTicker quote) ticks instead of bars: fills at the touch after the latency, limits with the queue model (ingest them with --datasets aggTrades,bookTicker).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Run one backtest; print its run id and metrics; store rows and the result bundle."""
    from vibe_quant.backtest.persist import load_run_config
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.state import StateManager

    home = get_home().require_catalog()  # a home that does not exist is not created
    if run_id is not None:
        if strategy or symbols or sizing or risk:
            raise UserError("--run-id runs a stored configuration; do not combine it with --strategy/--symbols/"
                            "--sizing/--risk")  # fmt: skip
        with StateManager(home.db_path) as db:
            config = load_run_config(db, run_id)
    else:
        config = build_config(home, strategy, symbols, timeframe, start, end, param or [], mode, latency, leverage,
                              balance, maker_fee, taker_fee, sizing, risk)  # fmt: skip
    plan = plan_run(config)  # every option checked before anything is written
    if validates is not None:
        from vibe_quant.backtest.persist import link_validation, sweep_point

        home.require_state(f"--validates {validates}: no sweep point in a home without a state database")
        with StateManager(home.db_path) as db:
            sweep_point(db, validates)
    home = get_home(writable=True)
    with rich_progress(not (state.quiet or as_json)) as progress:
        run_row, result, bundle = execute(home, plan, get_specs(), run_row=run_id, progress=progress, ticks=ticks)
    if validates is not None:
        with StateManager(home.db_path) as db:
            link_validation(db, validates, run_row)
    if as_json:
        sys.stdout.write((bundle / "summary.json").read_text())
        for warning in result.warnings:  # also in the JSON; said on stderr so a terminal shows it
            err_console.print(f"warning: {warning}", style="yellow", highlight=False)
        return
    from vibe_quant.present.backtest import print_result

    print_result(run_row, result, bundle, out)


@with_flags(FLAGS)
def build_config(home, strategy, symbols, timeframe, start, end, params, mode, latency, leverage, balance, maker_fee,
                 taker_fee, sizing, risk):  # fmt: skip
    """The backtest config of `vq backtest run`'s options (errors name the flag)."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.latency import latency_fields
    from vibe_quant.instruments.specs import normalize_symbol
    from vibe_quant.risk.config import config_fields
    from vibe_quant.strategy.registry import find_strategy

    missing = [name for name, value in (("--strategy", strategy), ("--symbols", symbols), ("--start", start),
                                        ("--end", end)) if not value]  # fmt: skip
    if missing:
        raise UserError(f"missing {', '.join(missing)} (or pass --run-id of a pending run)")
    ref = find_strategy(strategy, home.db_path)
    if ref.document is not None:
        timeframe = timeframe or ref.document.get("timeframe")
    return parse_config({
        "strategy": ref.name, "kind": ref.kind, "document": ref.document,
        "symbols": [normalize_symbol(s) for s in symbols.split(",") if s.strip()], "timeframe": timeframe or "5m",
        "start": parse_date("--start", start).isoformat(), "end": parse_date("--end", end).isoformat(),
        "params": parse_params(params), "mode": mode, **latency_fields(latency, home.db_path), "leverage": leverage,
        "starting_balance": balance, "maker_fee": maker_fee, "taker_fee": taker_fee,
        **config_fields(sizing, risk, home.db_path),
    })  # fmt: skip


@backtest_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only runs with this status (pending, running, completed, failed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows on stdout.")] = False,
) -> None:  # fmt: skip
    """Past backtests (validation and screening-mode runs; screening sweeps: `vq screen list`)."""
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.jobs import reconcile
    from vibe_quant.present.backtest import runs_table
    from vibe_quant.present.jobs import reconciled_lines

    home = get_home()
    for line in reconciled_lines(reconcile(home)):  # a run whose process died is shown failed, saying why
        err_console.print(line, highlight=False)
    rows = list_runs(home, limit=limit, status=status, sweeps=False)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    out.print(runs_table(rows, "backtest runs (newest first)"))
    if not rows:
        out.print(
            "no backtest run yet: vq backtest run --strategy ema_cross --symbols FILUSDT-PERP --start ... --end ..."
        )


@backtest_app.command("show")
def show_command(
    run: Annotated[str, typer.Argument(help="A run: its backtest_runs id (e.g. 12) or its run id hash (e.g. 3f9a...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored summary.json on stdout.")] = False,
) -> None:  # fmt: skip
    """Reopen a finished backtest: its metrics, costs, warnings and bundle (read back, never recomputed)."""
    from vibe_quant.backtest.persist import load_summary
    from vibe_quant.present.backtest import print_summary

    row, summary = load_summary(get_home(), run)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    print_summary(row, summary, out)
