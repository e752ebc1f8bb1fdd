"""The ``vq`` command: one ``main()`` that maps errors to exit codes.

Subcommands are thin: they parse options, import their stage lazily and call it. A user
error (bad option, config, data file, symbol) prints one readable message and exits 2 with no
traceback; a venue error (archive or API kept failing) exits 3; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from vibe_quant.errors import EXIT_USER_ERROR, UserError, VibeQuantError

err_console = Console(stderr=True)

app = typer.Typer(
    name="vq",
    help="vibe-quant: Binance perpetual futures from raw history to honest backtests on NautilusTrader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class State:
    """Options shared by every subcommand (set by the root callback)."""

    home: Path | None = None
    specs: Path | None = None
    quiet: bool = False


state = State()


def setup_logging(verbose: bool, log_dir: Path | None = None) -> None:
    """Readable warnings on stderr (info with -v); full info log in ``$VQ_HOME/logs/vq.log``."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    root.addHandler(console)
    root.setLevel(logging.INFO)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "vq.log", encoding="utf-8")
        file_handler.setFormatter(
            logging.Formatter(
                '{"ts": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", "msg": %(message)r}'
            )
        )
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
    """Options accepted before any subcommand (``vq --home X data ...``, ``vq data --home X ...``)."""
    from vibe_quant.home import resolve_home

    state.home = home or state.home
    state.specs = specs or state.specs
    state.quiet = quiet or state.quiet
    resolved = resolve_home(state.home)
    setup_logging(verbose, resolved.logs if resolved.root.is_dir() else None)


app.callback()(common_options)


def get_home():
    from vibe_quant.home import resolve_home

    return resolve_home(state.home)


def get_specs():
    from vibe_quant.instruments.specs import InstrumentSpecs

    if state.specs is not None:
        return InstrumentSpecs(state.specs)
    home_specs = get_home().root / "instrument_specs.yaml"
    return InstrumentSpecs(home_specs if home_specs.exists() else None)


def _register() -> None:
    from vibe_quant.data.cli import data_app
    from vibe_quant.demo import demo_command

    app.add_typer(data_app, name="data", help="Ingest, inspect, validate, rebuild and query market data.")
    app.command("demo", help="Run the pipeline on the bundled real sample and print where the outputs are.")(
        demo_command
    )


_register()


def run(typer_app: typer.Typer, args: list[str] | None = None) -> int:
    """Run `typer_app` and return the process exit code (see the module docstring)."""
    try:
        typer_app(args=args, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        return EXIT_USER_ERROR
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except VibeQuantError as exc:
        from rich.markup import escape

        label = "error" if isinstance(exc, UserError) else "venue error (retry later)"
        err_console.print(f"[bold red]{label}:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def main() -> None:
    """Console-script entry point of ``vq``."""
    sys.exit(run(app))
