"""One error hierarchy for the whole product.

``UserError`` and its subclasses are problems with what the user gave us (a config, a data
file, a symbol, a date range): the CLI prints the message without a traceback and exits 2.
``VenueError`` is a retryable problem with a remote venue or archive (timeouts, 5xx): the CLI
exits 3 so scripts can retry. ``EngineMismatch`` (the perp kernel and NautilusTrader disagree)
is a bug we detect ourselves: one line, exit 1.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_VENUE_ERROR = 3


class VibeQuantError(Exception):
    """Base class of every error vibe-quant raises on purpose."""

    exit_code = 1


class UserError(VibeQuantError):
    """Bad input from the user: fixable by changing what was given, never by retrying."""

    exit_code = EXIT_USER_ERROR


class ConfigError(UserError):
    """A configuration file or option is invalid."""


class DataFileError(UserError):
    """A data file is malformed; the message names the file, the line and the fix.

    Parameters
    ----------
    path : str or Path
        The file (or ``archive.zip!member.csv``) that is wrong.
    problem : str
        What is wrong, with the offending value.
    line : int, optional
        1-based line number in the file, counting the header line if there is one.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None, fix: str | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{self.path}, line {line}" if line is not None else self.path
        message = f"{where}: {problem}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)


class ChecksumMismatchError(DataFileError):
    """A downloaded file does not match its published ``.CHECKSUM``."""


class UnknownSymbolError(UserError):
    """A symbol has no entry in ``instrument_specs.yaml``."""

    def __init__(self, symbol: str, known: Iterable[str], specs_path: str | Path):
        close = difflib.get_close_matches(symbol, list(known), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        super().__init__(
            f"unknown symbol {symbol!r}: no spec in {specs_path}.{hint} "
            "Fix: add the symbol to instrument_specs.yaml (tick_size, step_size, ...) "
            "or pass --specs with a file that has it; vibe-quant never guesses a spec."
        )
        self.symbol = symbol


class EngineMismatch(VibeQuantError):
    """The compiled perp kernel and NautilusTrader gave different metrics for the same point.

    A bug, never the user's input: the run is marked failed; the message names the point, the
    metric and both values, and says to report it and rerun with ``--engine nautilus``.
    """


class VenueError(VibeQuantError):
    """A remote venue or archive failed in a way that retrying later may fix."""

    exit_code = EXIT_VENUE_ERROR


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return `` Did you mean X?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""
