"""The ``vq`` application: the verbs registered on one typer app, and one ``main()`` that maps errors to exit codes.

Subcommands are thin: they parse options, import their stage lazily and call it. A user
error (bad option, config, data file, symbol) prints one readable message and exits 2 with no
traceback; a venue error (archive or API kept failing) exits 3; a bug we detect ourselves (the
perp kernel disagreeing with NautilusTrader) prints its message and exits 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from vibe_quant.cli.context import common_options, err_console, state
from vibe_quant.errors import VenueError, VibeQuantError

app = typer.Typer(
    name="vq",
    help="vibe-quant: Binance perpetual futures from raw history to honest backtests on NautilusTrader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.callback()(common_options)

GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
GLOBAL_VALUED = {"--home", "--specs"}


def _register() -> None:
    from vibe_quant.cli.alerts import alerts_app
    from vibe_quant.cli.backtest import backtest_app
    from vibe_quant.cli.dashboard import dashboard_command
    from vibe_quant.cli.data import data_app
    from vibe_quant.cli.demo import demo_command
    from vibe_quant.cli.discover import discover_app
    from vibe_quant.cli.dolphin import dolphin_app
    from vibe_quant.cli.dsl import dsl_app
    from vibe_quant.cli.jobs import jobs_app
    from vibe_quant.cli.lpi import lpi_app
    from vibe_quant.cli.metrics import metrics_app
    from vibe_quant.cli.overfit import overfit_app
    from vibe_quant.cli.paper import live_app, paper_app
    from vibe_quant.cli.promote import promote_command
    from vibe_quant.cli.report import report_command
    from vibe_quant.cli.risk import risk_app, sizing_app
    from vibe_quant.cli.rl import rl_app
    from vibe_quant.cli.screen import screen_app

    app.add_typer(data_app, name="data", help="Ingest, inspect, validate, rebuild and query market data.")
    app.add_typer(dsl_app, name="dsl", help="The strategy language: validate, show, schema, list, save.")
    app.add_typer(
        screen_app, name="screen", help="Parameter sweeps in parallel: hard filters, Pareto front, resumable."
    )
    app.add_typer(
        overfit_app,
        name="overfit",
        help="Overfitting filters between screening and validation: DSR, WFA, PKFold, CPCV, PBO.",
    )
    app.add_typer(backtest_app, name="backtest", help="Backtests with funding, liquidation and next-open fills.")
    app.add_typer(
        sizing_app, name="sizing", help="Position-sizing presets (fixed_fractional, kelly, atr): list, show, save."
    )
    app.add_typer(risk_app, name="risk", help="Circuit-breaker presets (seed_default, live_safety): list, show, save.")
    app.add_typer(
        jobs_app, name="jobs", help="Background jobs: start a vq command in the background, list, logs, kill."
    )
    app.add_typer(
        paper_app, name="paper", help="Paper trading on a TradingNode: start (replay), status, halt, resume, close-all."
    )
    app.command(
        "promote", help="Promotion gates: a validated run to paper, a paper-traded run to live; `list` shows them."
    )(promote_command)
    app.add_typer(lpi_app, name="lpi", help="Liquidation-pressure research: the LPI feature engine (vq lpi features).")
    app.add_typer(
        rl_app, name="rl", help="Reinforcement learning: train, evaluate on NautilusTrader, walk forward, registry."
    )
    app.add_typer(
        discover_app, name="discover", help="Genetic strategy discovery over DSL genomes with overfitting guard rails."
    )
    app.add_typer(
        dolphin_app,
        name="dolphin",
        help="DOLPHIN: correlation-eigenvalue scan tables (vel_div) and the ACB's daily factors.",
    )
    app.add_typer(metrics_app, name="metrics", help="Prometheus metrics of background jobs (vq metrics serve).")
    app.add_typer(live_app, name="live", help="Live trading of a promoted run on Binance (--confirm-live).")
    app.add_typer(alerts_app, name="alerts", help="Telegram alerts: list the stored ones, send a test message.")
    app.command("report", help="Self-contained HTML tearsheet of a stored backtest or screening sweep.")(report_command)
    app.command("dashboard", help="Start the Mission Control dashboard (Streamlit) on the home, on 127.0.0.1.")(
        dashboard_command
    )
    app.command("demo", help="Run the pipeline on the bundled real sample and print where the outputs are.")(
        demo_command
    )


_register()


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options written after a subcommand to the front.

    Click only accepts a group's options before its subcommand; users write
    ``vq data ingest ... --home DIR`` too, so ``--home/--specs/-v/-q`` are accepted anywhere
    (up to a ``--`` marker).
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUED:
            take = 1 if "=" in arg else 2
            front.extend(args[i : i + take])
            i += take
            continue
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def run(typer_app: typer.Typer, args: list[str] | None = None) -> int:
    """Run `typer_app` on `args` (default ``sys.argv[1:]``) and return the exit code.

    Usage errors are click's (message, exit 2); our user errors print one line and exit 2;
    venue errors exit 3; anything else is a bug and keeps its traceback.
    """
    state.__init__()  # options never leak from one run() to the next (tests call it repeatedly)
    argv = hoist_global_options(list(sys.argv[1:] if args is None else args))
    try:
        typer_app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except VibeQuantError as exc:
        from rich.markup import escape

        label = "venue error (retry later)" if isinstance(exc, VenueError) else "error"
        err_console.print(f"[bold red]{label}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return 0


def main() -> None:
    """Console-script entry point of ``vq``; in a background job (``VQ_JOB_ID`` set) it also beats
    and records how the command ended (:class:`~vibe_quant.jobs.session.JobSession`)."""
    if not os.environ.get("VQ_JOB_ID"):
        sys.exit(run(app))
    from vibe_quant.jobs.session import JobSession

    session = JobSession.from_env()
    if session is None:
        sys.exit(run(app))
    with session:
        session.exit_code = run(app)
    sys.exit(session.exit_code)
