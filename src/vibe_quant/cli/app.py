"""The ``vq`` application: one ``main()`` that maps errors to exit codes, and the options every verb shares.

Subcommands are thin: they parse options, import their stage lazily and call it. A user
error (bad option, config, data file, symbol) prints one readable message and exits 2 with no
traceback; a venue error (archive or API kept failing) exits 3; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vibe_quant.errors import UserError, VibeQuantError

err_console = Console(stderr=True)

app = typer.Typer(
    name="vq",
    help="vibe-quant: Binance perpetual futures from raw history to honest backtests on NautilusTrader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class State:
    """Options shared by every subcommand (set by the callbacks, reset by :func:`run`)."""

    def __init__(self) -> None:
        self.home: Path | None = None
        self.specs: Path | None = None
        self.quiet = False
        self.verbose = False


state = State()
GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
GLOBAL_VALUED = {"--home", "--specs"}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line (queryable with DuckDB: ``read_json('logs/vq.log')``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(verbose: bool) -> None:
    """Readable warnings on stderr (info with ``-v``)."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    root.addHandler(console)
    root.setLevel(logging.INFO)


def attach_log_file(home) -> None:
    """Also log everything at info level to ``<home>/logs/vq.log`` (JSON lines)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    home.logs.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(home.logs / "vq.log", encoding="utf-8")
    file_handler.setFormatter(JsonLineFormatter())
    file_handler.setLevel(logging.INFO)
    root.addHandler(file_handler)


def common_options(
    home: Annotated[Path | None, typer.Option("--home", help="Data home (default $VQ_HOME, else ./data).")] = None,
    specs: Annotated[
        Path | None, typer.Option("--specs", help="instrument_specs.yaml to use instead of the packaged one.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Options shared by every command (:func:`run` also accepts them after a subcommand)."""
    # Both the root and the ``data`` group run this; a later None must not undo an earlier value.
    state.home = home or state.home
    state.specs = specs or state.specs
    state.quiet = quiet or state.quiet
    state.verbose = verbose or state.verbose
    setup_logging(state.verbose)


app.callback()(common_options)


def get_home(writable: bool = False):
    """Return the chosen home; `writable` creates its layout and starts its log file."""
    from vibe_quant.home import resolve_home

    home = resolve_home(state.home)
    if writable:
        home.ensure()
        attach_log_file(home)
    return home


def get_specs():
    from vibe_quant.instruments.specs import InstrumentSpecs

    if state.specs is not None:
        return InstrumentSpecs(state.specs)
    home_specs = get_home().root / "instrument_specs.yaml"
    return InstrumentSpecs(home_specs if home_specs.exists() else None)


def _register() -> None:
    from vibe_quant.cli.backtest import backtest_app
    from vibe_quant.cli.data import data_app
    from vibe_quant.cli.demo import demo_command
    from vibe_quant.cli.dsl import dsl_app
    from vibe_quant.cli.overfit import overfit_app
    from vibe_quant.cli.risk import risk_app, sizing_app
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

        label = "error" if isinstance(exc, UserError) else "venue error (retry later)"
        err_console.print(f"[bold red]{label}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return 0


def main() -> None:
    """Console-script entry point of ``vq``."""
    sys.exit(run(app))
