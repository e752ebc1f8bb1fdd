"""``vq dolphin scans build``: scan tables from catalog bars, whole days at a time, all or nothing.

A directory holds one universe under one set of definitions: building more days into it reuses the
universe its manifest names; other definitions or another explicit universe are refused (use another
``--out``). Existing days are kept unless ``--force``; every day built is complete by construction, and
a day the catalog holds only in part is refused with its date and row count.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vibe_quant.dolphin import store
from vibe_quant.dolphin.config import ScanConfig
from vibe_quant.dolphin.scans import scan_rows
from vibe_quant.dolphin.universe import Span, load_closes, select_universe
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.progress import Progress

MAX_ROWS_PER_LOAD = 50_000  # bars read per pass (all of a 1h range; about a month at 1m)
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PARALLEL_MIN_ROWS = 4_000  # below this many rows a pool's start-up costs more than it saves


@dataclass
class BuildReport:
    directory: Path
    symbols: tuple[str, ...]
    left_out: dict[str, str]
    built: list[dt.date] = field(default_factory=list)
    kept: list[dt.date] = field(default_factory=list)
    rows: int = 0
    elapsed_s: float = 0.0
    workers: int = 1
    manifest: dict = field(default_factory=dict)


def default_dir(home: Home, config: ScanConfig) -> Path:
    return home.root / "dolphin" / "scans" / config.timeframe


def _check_directory(directory: Path, config: ScanConfig, symbols: list[str] | None) -> dict | None:
    manifest = store.read_manifest(directory)
    if manifest is None:
        if store.day_files(directory):
            raise UserError(f"{directory} holds day files but no {store.MANIFEST}: build into an empty --out")
        return None
    if manifest["config_digest"] != config.digest():
        raise UserError(
            f"{directory} holds scans built with other definitions ({manifest['definitions']}); "
            "build these into another --out"
        )
    if symbols is not None and list(symbols) != manifest["universe"]:
        raise UserError(
            f"{directory} holds scans of another universe ({manifest['n_assets']} assets); build this universe "
            "into another --out, or drop --universe to extend the stored one"
        )
    return manifest


def build_scans(
    home: Home,
    specs: InstrumentSpecs,
    config: ScanConfig,
    start: dt.date,
    end: dt.date,
    directory: Path | None = None,
    symbols: list[str] | None = None,
    exclude: tuple[str, ...] = (),
    force: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
) -> BuildReport:
    """Build the scan days ``start..end`` (UTC, inclusive) into `directory`.

    Raises
    ------
    UserError
        An empty range, a universe problem (see :func:`select_universe`), or a directory holding
        scans of other definitions or another universe. Nothing is written then.
    """
    progress = progress or Progress()
    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    directory = directory or default_dir(home, config)
    manifest = _check_directory(directory, config, symbols)
    span = Span(config, start, end)
    if symbols is None and manifest is not None:
        symbols = manifest["universe"]
    universe = select_universe(home.catalog, specs, span, symbols, exclude)
    left_out = {**(manifest or {}).get("left_out", {}), **universe.left_out}
    report = BuildReport(directory, universe.symbols, left_out)
    existing = store.day_files(directory)
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    todo = [d for d in days if force or d not in existing]
    report.kept = [d for d in days if d not in todo]
    t0 = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        task = progress.task(f"scan {len(universe.symbols)} assets", len(todo))
        per_load = max(1, MAX_ROWS_PER_LOAD // config.rows_per_day)
        jobs = [run for k in range(0, len(todo), per_load) for run in _runs(todo[k : k + per_load])]
        if workers > 1 and len(todo) * config.rows_per_day >= PARALLEL_MIN_ROWS:
            # runs of days are independent (each block starts from an exact anchor)
            jobs = [run for first, last in jobs for run in _split(first, last, workers)]
            workers = min(workers, len(jobs))
        else:
            workers = 1
        report.workers = workers
        if workers > 1:
            ctx = mp.get_context("spawn")
            with _one_blas_thread(), ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                futures = [pool.submit(build_run, home.catalog, specs.path, config, universe.symbols, run, staging)
                           for run in jobs]  # fmt: skip
                for future in as_completed(futures):
                    for day, rows in future.result():
                        report.built.append(day)
                        report.rows += rows
                        progress.advance(task, description=f"scans {day}")
        else:
            for run in jobs:
                for day, rows in build_run(home.catalog, specs, config, universe.symbols, run, staging):
                    report.built.append(day)
                    report.rows += rows
                    progress.advance(task, description=f"scans {day}")
        report.built.sort()
        store.commit(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.manifest = store.write_manifest(directory, config, universe.symbols, left_out)
    report.elapsed_s = time.perf_counter() - t0
    return report


def build_run(
    catalog: Path, specs, config: ScanConfig, symbols: tuple[str, ...], run: tuple[dt.date, dt.date], staging: Path
) -> list[tuple[dt.date, int]]:
    """Write the day files of the consecutive days ``run`` into `staging`; return (day, rows) pairs.

    `specs` is an :class:`InstrumentSpecs` or, in a worker process, the path of its file (None: the shipped one).
    """
    if not isinstance(specs, InstrumentSpecs):
        specs = InstrumentSpecs(specs)
    first_day, last_day = run
    closes = load_closes(catalog, specs, symbols, Span(config, first_day, last_day))
    done = []
    for day_index in range((last_day - first_day).days + 1):
        day = first_day + dt.timedelta(days=day_index)
        first = config.warmup_rows + day_index * config.rows_per_day
        rows = scan_rows(config, closes.ts, closes.closes, first, first + config.rows_per_day - 1)
        store.write_table(store.day_table(config, symbols, rows), store.day_path(staging, day))
        done.append((day, len(rows.ts)))
    return done


@contextmanager
def _one_blas_thread():
    """Workers inherit the environment at spawn: one BLAS thread each, so N workers use N cores, not N x cores
    (measured on this 2-core machine: oversubscribed BLAS threads slow eigvalsh several times under load)."""
    saved = {k: os.environ.get(k) for k in BLAS_THREADS}
    os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _split(first: dt.date, last: dt.date, parts: int) -> list[tuple[dt.date, dt.date]]:
    """Cut a run of days into about `parts` x 4 runs (so the workers finish together)."""
    days = (last - first).days + 1
    size = max(1, -(-days // (parts * 4)))
    return [
        (first + dt.timedelta(days=k), min(last, first + dt.timedelta(days=k + size - 1))) for k in range(0, days, size)
    ]


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive runs of dates as (first, last) pairs."""
    runs: list[tuple[dt.date, dt.date]] = []
    for d in days:
        if runs and runs[-1][1] + dt.timedelta(days=1) == d:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs
