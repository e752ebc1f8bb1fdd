"""``vq dolphin scans build|show|summary`` and ``vq dolphin acb-factors build|show``: DOLPHIN's inputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home, get_specs, state
from vibe_quant.cli.options import parse_date, with_flags
from vibe_quant.errors import UserError
from vibe_quant.progress import rich_progress

dolphin_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="DOLPHIN: correlation-eigenvalue scan tables (vel_div) and the ACB's daily factors.")  # fmt: skip
dolphin_app.callback()(common_options)
scans_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Scan tables: one Parquet file per UTC date (vel_div, window velocities, closes).")  # fmt: skip
dolphin_app.add_typer(scans_app, name="scans")
out = console()
FLAGS = {"timeframe": "--timeframe", "windows": "--windows"}


def _symbols(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "all":
        return None
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if len(set(symbols)) != len(symbols):
        raise UserError(f"--universe {text!r} names a symbol twice")
    return symbols


@with_flags(FLAGS, leading=True)
def scan_config(timeframe: str, windows: str | None):
    from vibe_quant.dolphin.config import ScanConfig

    if windows is None:
        return ScanConfig(timeframe=timeframe)
    try:
        parsed = tuple(int(w) for w in windows.split(","))
    except ValueError:
        raise UserError(f"--windows {windows!r}: give whole numbers of rows, e.g. 50,150,300,750") from None
    return ScanConfig(timeframe=timeframe, windows=parsed)


def _directory(home, timeframe: str, out_dir: Path | None) -> Path:
    from vibe_quant.dolphin.build import default_dir
    from vibe_quant.dolphin.config import ScanConfig

    return out_dir or default_dir(home, ScanConfig(timeframe=timeframe))


@scans_app.command("build")
def build_command(
    start: Annotated[str, typer.Option(help="First UTC date of the table (YYYY-MM-DD); warm-up bars are read before it.")],
    end: Annotated[str, typer.Option(help="Last UTC date (inclusive); it must be complete in the catalog.")],
    universe: Annotated[str | None, typer.Option(help="Comma-separated perpetuals, or `all` (default): every one whose bars cover the range and warm-up.")] = None,
    exclude: Annotated[str | None, typer.Option(help="Comma-separated perpetuals never taken.")] = None,
    timeframe: Annotated[str, typer.Option(help="Catalog bars, one scan row each: 1m, 5m, 15m, 1h, 4h.")] = "1h",
    windows: Annotated[str | None, typer.Option(help="Correlation windows in rows, increasing (default 50,150,300,750); vel_div = first - last.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild days already in the directory.")] = False,
    workers: Annotated[int, typer.Option(help="Processes (used from 4,000 rows; the default is every core).")] = max(1, os.cpu_count() or 1),
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:  # fmt: skip
    """Build the scan tables of whole UTC days from catalog bars (all or nothing; existing days kept unless --force)."""
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.present.dolphin import print_build

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    config = scan_config(timeframe, windows)
    first, last = parse_date("--start", start), parse_date("--end", end)
    excluded = tuple(_symbols(exclude) or ())
    home = get_home().require_catalog()
    home = get_home(writable=True)
    with rich_progress(not (state.quiet or as_json)) as progress:
        report = build_scans(home, get_specs(), config, first, last, out_dir, _symbols(universe), excluded,
                             force, progress, workers)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report.manifest, indent=1, sort_keys=True) + "\n")
        return
    print_build(report, out)


@scans_app.command("show")
def show_command(
    day: Annotated[str, typer.Argument(help="UTC date (YYYY-MM-DD).")],
    timeframe: Annotated[str, typer.Option(help="Which default directory: $VQ_HOME/dolphin/scans/<timeframe>.")] = "1h",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory.")] = None,
    assets: Annotated[int, typer.Option(help="Asset close columns to print (the first ones).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON lines.")] = False,
) -> None:  # fmt: skip
    """Print one day's scan rows and its vel_div quantiles and trigger rates."""
    from vibe_quant.dolphin import store
    from vibe_quant.present.dolphin import print_day

    date = parse_date("DATE", day)
    table = store.read_day(_directory(get_home(), timeframe, out_dir), date)
    if as_json:
        for row in table.to_pylist():
            row["ts"] = row["ts"].isoformat()
            sys.stdout.write(json.dumps(row) + "\n")
        return
    print_day(date, table, assets, out)


@scans_app.command("summary")
def summary_command(
    timeframe: Annotated[str, typer.Option(help="Which default directory: $VQ_HOME/dolphin/scans/<timeframe>.")] = "1h",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:  # fmt: skip
    """Print a scan directory's universe, days, definitions, vel_div quantiles and trigger rates."""
    from vibe_quant.dolphin import store
    from vibe_quant.present.dolphin import print_manifest

    directory = _directory(get_home(), timeframe, out_dir)
    manifest = store.read_manifest(directory)
    if manifest is None:
        raise UserError(f"{directory}: no scans; build them with `vq dolphin scans build --start ... --end ...`")
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    print_manifest(directory, manifest, out)
