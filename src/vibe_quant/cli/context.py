"""What every verb shares: the global options (``--home``, ``--specs``, ``-v``, ``-q``), logging,
and the data home and instrument specs they choose."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

PIPED_WIDTH = 160  # columns when the output is a file or a pipe (rich would assume 80 and fold words)


def console(stderr: bool = False) -> Console:
    """A console for the CLI: the terminal's width, or 160 columns when piped; paths and commands
    are never broken across lines (``soft_wrap``)."""
    out = Console(stderr=stderr, soft_wrap=True)
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out


err_console = console(stderr=True)


class State:
    """Options shared by every subcommand (set by the callbacks, reset by :func:`run`)."""

    def __init__(self) -> None:
        self.home: Path | None = None
        self.specs: Path | None = None
        self.quiet = False
        self.verbose = False


state = State()


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


def home_specs(home) -> str | None:
    """The specs file workers should read: ``--specs``, else the home's own instrument_specs.yaml, else None."""
    if state.specs is not None:
        return str(state.specs)
    path = home.root / "instrument_specs.yaml"
    return str(path) if path.exists() else None
