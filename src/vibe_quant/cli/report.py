"""``vq report RUN``: a self-contained HTML tearsheet of a stored backtest or screening sweep."""

from __future__ import annotations

from typing import Annotated

import typer

from vibe_quant.cli.context import console, get_home

out = console()


def report_command(
    runs: Annotated[list[str], typer.Argument(help="Runs: backtest_runs ids, run id hashes or screening-<id> (several allowed).")],
) -> None:  # fmt: skip
    """Write report.html into each run's bundle (a sweep's into runs/screening-<id>/) from its stored results."""
    from vibe_quant.present.report import write_report

    home = get_home()
    for run in runs:
        path = write_report(home, run)
        out.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB; open it in a browser: file://{path})")
