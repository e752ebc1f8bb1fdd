"""Scan tables on disk: one Parquet file per UTC date plus ``manifest.json`` (docs/specs.md#dolphin-scans).

A day file holds exactly the day's rows (24 at 1h, 1,440 at 1m) in the specification's column order:
``ts`` (bar close, UTC), ``scan_number``, ``vel_div``, the window velocities, ``instability_50/150``
(NaN), then one float64 close column per asset. Its schema metadata holds the definitions, the
universe and the config digest; the manifest adds the days, their digests and the vel_div quantiles
and trigger rates over every day in the directory. Files are written to a staging folder and moved
in together with the manifest; the same inputs give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vibe_quant.dolphin.config import INSTABILITY_COLUMNS, ScanConfig
from vibe_quant.dolphin.scans import ScanRows
from vibe_quant.errors import UserError

FORMAT = "vibe-quant dolphin scans 1"
MANIFEST = "manifest.json"
THRESHOLDS = (-0.02, -0.05, -0.075)  # the signal gate, the extreme level, the extreme bucket
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def day_table(config: ScanConfig, symbols: tuple[str, ...], rows: ScanRows) -> pa.Table:
    """Return one day's rows as an Arrow table in file column order, with the definitions as metadata."""
    n = len(rows.ts)
    columns: dict[str, pa.Array] = {
        "ts": pa.array(rows.ts, pa.timestamp("ns", tz="UTC")),
        "scan_number": pa.array(rows.scan_number, pa.int64()),
        "vel_div": pa.array(rows.vel_div, pa.float64()),
    }
    for k, name in enumerate(config.velocity_columns):
        columns[name] = pa.array(rows.velocities[:, k], pa.float64())
    for name in INSTABILITY_COLUMNS:
        columns[name] = pa.array(np.full(n, np.nan), pa.float64())
    for j, s in enumerate(symbols):
        columns[s] = pa.array(rows.closes[:, j], pa.float64())
    meta = {"dolphin": json.dumps(file_metadata(config, symbols), sort_keys=True)}
    return pa.table(columns).replace_schema_metadata(meta)


def file_metadata(config: ScanConfig, symbols: tuple[str, ...]) -> dict:
    return {"format": FORMAT, "definitions": config.definitions(), "config_digest": config.digest(),
            "universe": list(symbols)}  # fmt: skip


def day_path(directory: Path, day: dt.date) -> Path:
    return directory / f"{day.isoformat()}.parquet"


def write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def read_manifest(directory: Path) -> dict | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); rebuild the scans into a fresh --out") from exc
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: not a scan manifest (format {manifest.get('format')!r}, expected {FORMAT!r})")
    return manifest


def day_files(directory: Path) -> dict[dt.date, Path]:
    out = {}
    for path in sorted(directory.glob("*.parquet")):
        try:
            out[dt.date.fromisoformat(path.stem)] = path
        except ValueError:
            continue
    return out


def read_day(directory: Path, day: dt.date) -> pa.Table:
    """Return one day's scan rows.

    Raises
    ------
    UserError
        No scans in `directory` or none for `day` (with the days there are).
    """
    files = day_files(directory)
    if not files:
        raise UserError(f"{directory}: no scan files; build them with `vq dolphin scans build`")
    if day not in files:
        raise UserError(f"no scans for {day} in {directory}: it holds {min(files)}..{max(files)} ({len(files)} days)")
    return pq.read_table(files[day])


def vel_div_summary(values: np.ndarray) -> dict:
    """Quantiles of vel_div and the share of rows below each signal threshold."""
    values = values[np.isfinite(values)]
    if not values.size:
        return {"rows": 0, "quantiles": {}, "below": {}}
    return {
        "rows": int(values.size),
        "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in QUANTILES},
        "below": {f"{t:g}": float(np.mean(values < t)) for t in THRESHOLDS},
    }


def write_manifest(directory: Path, config: ScanConfig, symbols: tuple[str, ...], left_out: dict[str, str]) -> dict:
    """Recompute the manifest from the day files in `directory` and write it (atomically)."""
    files = day_files(directory)
    days, values = {}, []
    for day, path in files.items():
        days[day.isoformat()] = {"rows": pq.read_metadata(path).num_rows,
                                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}  # fmt: skip
        values.append(pq.read_table(path, columns=["vel_div"]).column("vel_div").to_numpy())
    manifest = {
        **file_metadata(config, symbols),
        "n_assets": len(symbols),
        "left_out": dict(sorted(left_out.items())),
        "rows_per_day": config.rows_per_day,
        "first_day": min(days) if days else None,
        "last_day": max(days) if days else None,
        "days": days,
        "vel_div": vel_div_summary(np.concatenate(values) if values else np.zeros(0)),
    }
    tmp = directory / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, directory / MANIFEST)
    return manifest


def commit(staging: Path, directory: Path) -> None:
    """Move the staged day files into `directory` (each an atomic rename) and drop the staging folder."""
    for path in sorted(staging.glob("*.parquet")):
        os.replace(path, directory / path.name)
    shutil.rmtree(staging, ignore_errors=True)
