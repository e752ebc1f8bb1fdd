"""Terminal views of DOLPHIN scan tables (``vq dolphin scans ...``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from rich.table import Table

from vibe_quant.dolphin.store import vel_div_summary


def _summary_lines(summary: dict) -> list[str]:
    if not summary.get("rows"):
        return ["vel_div: no rows"]
    q = "  ".join(f"{k}: {v:+.5f}" for k, v in summary["quantiles"].items())
    below = "  ".join(f"< {k}: {v:.2%}" for k, v in summary["below"].items())
    return [f"vel_div quantiles ({summary['rows']:,} rows)  {q}", f"rows below the signal thresholds  {below}"]


def print_build(report, out) -> None:
    m = report.manifest
    out.print(f"scans: {report.directory}")
    out.print(f"universe: {len(report.symbols)} perpetuals ({', '.join(report.symbols[:8])}"
              f"{', ...' if len(report.symbols) > 8 else ''}); {len(report.left_out)} left out (see manifest.json)")  # fmt: skip
    kept = f", {len(report.kept)} kept (use --force to rebuild)" if report.kept else ""
    procs = f" on {report.workers} processes" if report.workers > 1 else ""
    out.print(f"built {len(report.built)} day(s), {report.rows:,} rows in {report.elapsed_s:.1f} s{procs}{kept}; "
              f"directory {m['first_day']}..{m['last_day']}, {len(m['days'])} days")  # fmt: skip
    for line in _summary_lines(m["vel_div"]):
        out.print(line)


def print_manifest(directory: Path, m: dict, out) -> None:
    out.print(f"scans: {directory}")
    d = m["definitions"]
    out.print(f"{d['timeframe']} rows, windows {d['windows']}; vel_div = {d['vel_div']}")
    out.print(f"lambda_max = {d['lambda_max']}")
    out.print(f"universe: {m['n_assets']} perpetuals; {len(m['left_out'])} left out")
    out.print(f"days: {m['first_day']}..{m['last_day']} ({len(m['days'])} files, {m['rows_per_day']} rows each)")
    for line in _summary_lines(m["vel_div"]):
        out.print(line)


def print_day(day: dt.date, table, assets: int, out) -> None:
    names = table.column_names
    first_asset = names.index("instability_150") + 1
    shown = [n for n in names[:first_asset] if not n.startswith("instability")] + names[
        first_asset : first_asset + assets
    ]
    t = Table(title=f"scans {day} ({table.num_rows} rows, {len(names) - first_asset} assets)")
    for n in shown:
        t.add_column(n.replace("_lambda_max_velocity", "_vel"), justify="right")
    cols = {n: table.column(n).to_pylist() for n in shown}
    for i in range(table.num_rows):
        cells = []
        for n in shown:
            v = cols[n][i]
            if n == "ts":
                cells.append(v.strftime("%Y-%m-%d %H:%M"))
            elif n == "scan_number":
                cells.append(str(v))
            elif n in names[first_asset:]:
                cells.append(f"{v:.6g}")
            else:
                cells.append(f"{v:+.6f}")
        t.add_row(*cells)
    out.print(t)
    for line in _summary_lines(vel_div_summary(np.asarray(cols["vel_div"], dtype=float))):
        out.print(line)
