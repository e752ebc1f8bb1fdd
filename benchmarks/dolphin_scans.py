"""DOLPHIN scan builder benchmark: the batch builder against a naive per-window ``eigvalsh`` loop and the
streaming builder, on every fully covering 1h perpetual of ../shared/data, identical output required.

Data: the 140 hourly CSVs of ``../shared/data/perps-1d-1h`` (``*_USDT_1h.csv``; the two files with
non-ASCII names are skipped) imported into a temporary home with ``csv_import.run_import`` (which cuts the
delisted flat tails of FTT, RAY and WAVES). Definitions: ``ScanConfig()`` (1h rows, windows 50/150/300/750,
log returns, Pearson correlation, lambda_max / N, velocity = first difference, vel_div = v50 - v750).

Cases (universe = every perpetual covering the range and its 751-bar warm-up, ``select_universe``):

* ``champion``: 2025-12-31 .. 2026-02-25 (57 days, 1,368 rows);
* ``year``: 2025-06-01 .. 2026-05-31 (365 days, 8,760 rows; fewer assets cover it).

A case runs ``--repeats`` rounds (``--year-repeats`` for the year); a round runs each mode once in its
own spawned process under each OpenBLAS thread setting of ``--blas-threads`` (default ``all 1``: ``all``
leaves ``OPENBLAS_NUM_THREADS`` unset, so OpenBLAS uses every core, as a user's run does; ``1`` sets it to
1), settings and modes one after another, so slow spells of this shared machine fall on all alike.
Every figure is reported per setting (``by_blas_threads``): on a 2-core machine with other work running,
multithreaded OpenBLAS on these small matrices (<= 97 x 97) can be several times slower than one thread. Times are quoted as the median over rounds (every round's value is listed too). Peak RSS is
per mode (the CSV import runs in a child too, so the parent stays small): ``peak_rss_mb`` = the
process's VmHWM, interpreter and imports included (every child imports the same modules first; the RSS
right after is ``rss_after_imports_mb``), beside ``ru_maxrss_mb`` (``getrusage``; Linux carries it over
exec, so in a spawned child it starts at the parent's RSS at the fork: with a small parent the two
agree); the maximum over rounds. The modes:

1. **batch**: (a) end to end (and again with ``workers=WORKERS`` (2) processes, the CLI's default on this
   machine; ``PARALLEL_MIN_ROWS`` set to 0 so the short case uses the pool too: the CLI takes it from
   4,000 rows; its files must equal the one-process build's), ``build.build_scans(home, specs, config, start, end, directory=<fresh dir>,
   force=True)`` timed from the call to its return: universe selection (reading every symbol's catalog
   bars over the span), loading the closes, ``scan_rows`` one day at a time, writing the day Parquet
   files and the manifest; (b) compute only: ``select_universe`` + ``load_closes`` once (timed apart as
   ``load_closes_s``), then ``scans.scan_rows(config, ts, closes, warmup_rows, T - 1)`` on the
   preloaded closes (the same blocks as build_scans' day-by-day calls: blocks are whole days at 1h).
   In the first round, after the timed work and the RSS reading, one more ``build_scans`` under
   cProfile (untimed): where the time goes.
2. **naive**: ``select_universe`` + ``load_closes`` as above, then for every row t (and the row before
   the first, for the first velocity) and every window w, in a plain Python loop:
   ``np.linalg.eigvalsh(np.corrcoef(r[t - w + 1 : t + 1].T))[-1] / N`` with ``r = scans.log_returns
   (closes)`` (the batch builder's function; row t = the return into bar t), velocities by first
   difference (``np.diff``), vel_div = v50 - v750; then the same day files and manifest written with
   ``store.day_table`` / ``store.write_table`` / ``store.write_manifest``. Compute only = the loop;
   end to end = all of it. A window in which an asset's returns are all exactly 0 (``np.corrcoef`` would
   give NaN) is patched the way ``eigen.lambda_max_window`` defines it: that asset's row and column
   become the unit vector. Such windows are counted (``flat_windows``; 0 in both cases of this data).
3. **streaming** (``--streaming``, on by default): ``select_universe`` + ``load_closes``, then every bar
   of the span, warm-up included, through ``scans.StreamingScanner.push`` one at a time (it recomputes
   each window from its ring buffer with ``lambda_max_window``; the warm-up bars' work is part of its
   cost). Rows/s = scan rows / wall time of the push loop.

Identical output: the day files written by ``build_scans`` are read back and compared with the naive
rows and the streaming rows, column by column (vel_div and the four velocities: max absolute
difference; ts exactly). Every difference must be <= 1e-10: the results are written either way, then
the script exits non-zero naming the columns that are not. The in-memory ``scan_rows`` output of (1b)
must equal the files exactly, and every mode must give the same rows in every round.

Figures per case and mode: rows, assets, wall seconds (median and every round), rows/s, peak RSS MB.
Ratios: batch rows/s over naive rows/s (compute only and end to end; > 1 = batch faster) and over
streaming; ``headline`` collects them per case and setting. Machine info (CPUs, numpy, its BLAS build,
load averages at start and end) and the command line go into the results. Progress goes to stderr.
Writes ``benchmarks/results/dolphin_scans.json`` (or ``--out``).

    uv run python benchmarks/dolphin_scans.py [--cases champion year] [--repeats 3] [--year-repeats 1]
        [--blas-threads all 1] [--no-streaming] [--no-profile] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import run_in_child  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "perps-1d-1h"
CASES = {
    "champion": (dt.date(2025, 12, 31), dt.date(2026, 2, 25)),
    "year": (dt.date(2025, 6, 1), dt.date(2026, 5, 31)),
}
TOLERANCE = 1e-10
WORKERS = 2  # processes of the parallel build (this machine has 2 cores)
PROFILE_TOP = 15


def say(msg: str) -> None:
    print(f"[dolphin_scans {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _rss_mb() -> float:
    """This process's current resident set (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _peak_rss() -> dict:
    """This process's peak resident set: VmHWM, and ``ru_maxrss`` (MB).

    Linux keeps ``ru_maxrss`` across exec, so a spawned child's starts at its parent's RSS at the fork;
    VmHWM belongs to the new address space. The parent here stays small (the CSV import runs in a child
    too), so the two agree unless noted.
    """
    import resource

    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))  # fmt: skip
    return {"peak_rss_mb": round(hwm / 1024, 1),
            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def _import_all() -> float:
    """Import everything any mode uses (so no mode times an import); return the RSS after, MB."""
    import numpy  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import vibe_quant.dolphin.build
    import vibe_quant.dolphin.scans
    import vibe_quant.dolphin.store
    import vibe_quant.dolphin.universe  # noqa: F401

    return _rss_mb()


def _blas() -> dict:
    import numpy as np

    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        blas = deps["blas"]
        return {"name": blas.get("name"), "version": blas.get("version"),
                "configuration": blas.get("openblas configuration"), "lapack": deps["lapack"].get("name")}  # fmt: skip
    except Exception as exc:  # numpy's config layout is not an API
        return {"error": repr(exc)}


def machine(load_at_start: tuple[float, ...]) -> dict:
    import numpy as np

    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "numpy": np.__version__,
        "blas": _blas(),
        "thread_env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "versions": {d: _version(d) for d in ("vibe-quant", "pyarrow", "msgspec")},
    }


# ---------------------------------------------------------------------------------------------- children


def _setup(home_root: str, start: dt.date, end: dt.date):
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.dolphin.universe import Span, load_closes, select_universe
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home, specs, config = Home(Path(home_root)), InstrumentSpecs(), ScanConfig()
    t0 = time.perf_counter()
    span = Span(config, start, end)
    universe = select_universe(home.catalog, specs, span)
    closes = load_closes(home.catalog, specs, universe.symbols, span)
    return home, specs, config, universe, closes, time.perf_counter() - t0


def _read_days(directory: Path, config) -> dict:
    """ts, vel_div and the velocities of every day file in `directory`, concatenated in date order."""
    import numpy as np
    import pyarrow.parquet as pq

    from vibe_quant.dolphin import store

    tables = [pq.read_table(p) for _, p in sorted(store.day_files(directory).items())]
    out = {"ts": np.concatenate([t.column("ts").cast("int64").to_numpy() for t in tables])}
    for name in ("vel_div", *config.velocity_columns):
        out[name] = np.concatenate([t.column(name).to_numpy() for t in tables])
    return out


def _columns(config, ts, velocities, vel_div) -> dict:
    out = {"ts": ts, "vel_div": vel_div}
    for k, name in enumerate(config.velocity_columns):
        out[name] = velocities[:, k]
    return out


def import_child(queue, home_root: str, paths: list[str]) -> None:
    """Import the hourly CSVs into a new home at `home_root` (in a child: the parent stays small)."""
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    home = Home(Path(home_root)).ensure()
    t0 = time.perf_counter()
    report = run_import(home, [Path(p) for p in paths], InstrumentSpecs())
    queue.put({"import_s": round(time.perf_counter() - t0, 2), "import_warnings": list(report.warnings)})


def batch_child(queue, home_root: str, start: dt.date, end: dt.date, profile: bool, work: str) -> None:
    """Mode 1, one round: build_scans end to end, then scan_rows on preloaded closes; figures and rows on `queue`."""
    import cProfile
    import pstats

    import numpy as np

    from vibe_quant.dolphin import build
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.dolphin.scans import scan_rows
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    rss_imports = _import_all()
    home, specs, config = Home(Path(home_root)), InstrumentSpecs(), ScanConfig()
    out_dir = Path(work) / "batch"
    t0 = time.perf_counter()
    report = build_scans(home, specs, config, start, end, directory=out_dir, force=True)
    e2e = time.perf_counter() - t0
    files = _read_days(out_dir, config)
    build.PARALLEL_MIN_ROWS = 0  # measure the pool on the short case too (the CLI uses it from 4,000 rows)
    t0 = time.perf_counter()
    parallel = build_scans(home, specs, config, start, end, directory=Path(work) / "batch-parallel", force=True,
                           workers=WORKERS)  # fmt: skip
    e2e_parallel = time.perf_counter() - t0
    parallel_same = _identical(files, _read_days(Path(work) / "batch-parallel", config))
    _, _, _, universe, closes, load_s = _setup(home_root, start, end)
    t0 = time.perf_counter()
    rows = scan_rows(config, closes.ts, closes.closes, config.warmup_rows, len(closes.ts) - 1)
    compute = time.perf_counter() - t0
    say(
        f"  batch: {report.rows} rows x {len(report.symbols)} assets, build_scans {e2e:.2f} s, scan_rows {compute:.2f} s"
    )
    memory = _columns(config, rows.ts, rows.velocities, rows.vel_div)
    same = all(np.array_equal(memory[c], files[c]) for c in files)
    peak = _peak_rss()
    prof = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        build_scans(home, specs, config, start, end, directory=Path(work) / "batch-profiled", force=True)
        profiler.disable()
        prof = _profile_summary(pstats.Stats(profiler))
    queue.put({
        "rows": report.rows, "assets": len(report.symbols), "bars_read": len(closes.ts),
        "symbols": list(report.symbols), "left_out": len(report.left_out),
        "vel_div_summary": report.manifest["vel_div"],
        "end_to_end_s": e2e, "end_to_end_parallel_s": e2e_parallel, "parallel_workers": parallel.workers,
        "parallel_equals_serial": parallel_same, "compute_s": compute, "load_s": load_s, "build_report_elapsed_s": report.elapsed_s,
        "memory_equals_files": same, "rss_after_imports_mb": rss_imports, **peak,
        "profile": prof, "rows_out": files, "universe_matches": list(universe.symbols) == list(report.symbols),
    })  # fmt: skip


def _profile_summary(stats) -> dict:
    """Top functions by own time, and the cumulative time of the pipeline's stages."""
    total = stats.total_tt
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:PROFILE_TOP]
    stages = {
        "select_universe": ("universe.py", "select_universe"), "load_closes": ("universe.py", "load_closes"),
        "scan_rows": ("scans.py", "scan_rows"), "lambda_max_block": ("eigen.py", "lambda_max_block"),
        "numpy eigvalsh": ("_linalg.py", "eigvalsh"), "store.day_table": ("store.py", "day_table"),
        "store.write_table": ("store.py", "write_table"), "store.write_manifest": ("store.py", "write_manifest"),
    }  # fmt: skip
    cumulative = {}
    for label, (fname, func) in stages.items():
        hits = [v for (f, _, name), v in stats.stats.items() if f.endswith(fname) and name == func]
        cumulative[label] = round(sum(v[3] for v in hits), 4)
    return {
        "run": "one extra build_scans, untimed, under cProfile (its overhead included)",
        "total_s": round(total, 3),
        "stages_cumulative_s": cumulative,
        "stages_share": {k: round(v / total, 3) for k, v in cumulative.items()},
        "top_own_time": [
            {"function": f"{Path(f).name}:{line}({name})", "calls": nc, "own_s": round(tt, 4), "cumulative_s": round(ct, 4)}
            for (f, line, name), (_, nc, tt, ct, _) in top
        ],
    }  # fmt: skip


def naive_lambdas(config, closes, first: int, last: int) -> tuple:
    """lambda_max / N of rows first - 1 .. last for every window by corrcoef + eigvalsh, one at a time."""
    import numpy as np

    from vibe_quant.dolphin.scans import log_returns

    r = log_returns(closes)
    n = closes.shape[1]
    lam = np.empty((last - first + 2, len(config.windows)))
    flat_windows = 0
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat column's NaNs are patched below
        for i, t in enumerate(range(first - 1, last + 1)):
            for k, w in enumerate(config.windows):
                x = r[t - w + 1 : t + 1]
                corr = np.corrcoef(x.T)
                flat = ~np.any(x != 0.0, axis=0)
                if flat.any():
                    flat_windows += 1
                    corr[flat, :] = 0.0
                    corr[:, flat] = 0.0
                    np.fill_diagonal(corr, 1.0)
                lam[i, k] = np.linalg.eigvalsh(corr)[-1] / n
    return lam, flat_windows


def naive_child(queue, home_root: str, start: dt.date, end: dt.date, work: str) -> None:
    """Mode 2, one round: the per-window corrcoef + eigvalsh loop, end to end with the same files written."""
    import numpy as np

    from vibe_quant.dolphin import store
    from vibe_quant.dolphin.scans import ScanRows

    rss_imports = _import_all()
    t0 = time.perf_counter()
    _, _, config, universe, closes, load_s = _setup(home_root, start, end)
    first, last = config.warmup_rows, len(closes.ts) - 1
    t1 = time.perf_counter()
    lam, flat_windows = naive_lambdas(config, closes.closes, first, last)
    vel = np.diff(lam, axis=0)
    vel_div = vel[:, 0] - vel[:, -1]
    t2 = time.perf_counter()
    out_dir = Path(work) / "naive"
    out_dir.mkdir()
    per_day = config.rows_per_day
    ts = closes.ts[first : last + 1].astype(np.int64)
    day_closes = closes.closes[first : last + 1]
    for d in range(len(ts) // per_day):
        s = slice(d * per_day, (d + 1) * per_day)
        rows = ScanRows(ts=ts[s], scan_number=ts[s] // config.step_ns, velocities=vel[s], vel_div=vel_div[s],
                        closes=day_closes[s])  # fmt: skip
        path = store.day_path(out_dir, start + dt.timedelta(days=d))
        store.write_table(store.day_table(config, universe.symbols, rows), path)
    store.write_manifest(out_dir, config, universe.symbols, universe.left_out)
    t3 = time.perf_counter()
    say(f"  naive: {len(ts)} rows x {closes.closes.shape[1]} assets, loop {t2 - t1:.2f} s, end to end {t3 - t0:.2f} s")
    queue.put({
        "rows": len(ts), "assets": closes.closes.shape[1], "end_to_end_s": t3 - t0, "compute_s": t2 - t1,
        "load_s": load_s, "write_s": t3 - t2, "eigvalsh_calls": int(lam.size), "flat_windows": flat_windows,
        "rss_after_imports_mb": rss_imports, **_peak_rss(), "rows_out": _columns(config, ts, vel, vel_div),
    })  # fmt: skip


def streaming_child(queue, home_root: str, start: dt.date, end: dt.date) -> None:
    """Mode 3, one round: every bar through StreamingScanner.push, one at a time."""
    import numpy as np

    from vibe_quant.dolphin.scans import StreamingScanner

    rss_imports = _import_all()
    _, _, config, _, closes, load_s = _setup(home_root, start, end)
    scanner = StreamingScanner(config, closes.closes.shape[1])
    ts, vel = [], []
    t0 = time.perf_counter()
    for t in range(len(closes.ts)):
        row = scanner.push(int(closes.ts[t]), closes.closes[t])
        if row is not None:
            ts.append(row["ts"])
            vel.append(row["velocities"])
    wall = time.perf_counter() - t0
    say(f"  streaming: {len(ts)} rows from {len(closes.ts)} bars, {wall:.2f} s")
    vel = np.array(vel)
    queue.put({
        "rows": len(ts), "assets": closes.closes.shape[1], "bars_pushed": len(closes.ts), "compute_s": wall,
        "load_s": load_s, "rss_after_imports_mb": rss_imports, **_peak_rss(),
        "rows_out": _columns(config, np.array(ts, dtype=np.int64), vel, vel[:, 0] - vel[:, -1]),
    })  # fmt: skip


# ---------------------------------------------------------------------------------------------- parent


def _diffs(a: dict, b: dict) -> dict:
    import numpy as np

    if not np.array_equal(a["ts"], b["ts"]):
        return {"ts_identical": False}
    out = {"ts_identical": True}
    for name in a:
        if name != "ts":
            out[name] = float(np.max(np.abs(a[name] - b[name])))
    return out


def _figures(rows: int, walls: list[float]) -> dict:
    med = statistics.median(walls)
    return {"s_median": round(med, 4), "s_all": [round(x, 4) for x in walls], "rows_per_s": round(rows / med, 1)}


def _identical(a: dict, b: dict) -> bool:
    import numpy as np

    return all(np.array_equal(a[c], b[c]) for c in a)


def _max(rounds: list[dict], key: str) -> float:
    return max(r[key] for r in rounds)


def _in_child(setting: str, target, *args) -> dict:
    """``run_in_child`` with OPENBLAS_NUM_THREADS set for the child (``all``: unset)."""
    saved = os.environ.pop("OPENBLAS_NUM_THREADS", None)
    if setting != "all":
        os.environ["OPENBLAS_NUM_THREADS"] = setting
    try:
        return run_in_child(target, *args)
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        if saved is not None:
            os.environ["OPENBLAS_NUM_THREADS"] = saved


def _summary(name: str, rounds: dict[str, list[dict]], outs: dict[str, list[dict]]) -> tuple[dict, list[str]]:
    """Figures, ratios and differences of one case under one BLAS setting; and what breaks the rules."""
    batch, naive = rounds["batch"], rounds["naive"]
    rows, assets = batch[0]["rows"], batch[0]["assets"]
    files = outs["batch"][0]
    diffs = {"batch_files_vs_naive": _diffs(files, outs["naive"][0])}
    if "streaming" in outs:
        diffs["batch_files_vs_streaming"] = _diffs(files, outs["streaming"][0])
    bad = [f"{name}: {pair} {col} = {v}" for pair, d in diffs.items() for col, v in d.items()
           if (col == "ts_identical" and not v) or (col != "ts_identical" and not v <= TOLERANCE)]  # fmt: skip
    deterministic = {m: all(_identical(o[0], x) for x in o[1:]) for m, o in outs.items()}
    if not all(deterministic.values()):
        bad.append(f"{name}: a mode gave different rows in different rounds: {deterministic}")
    if not all(r["universe_matches"] for r in batch):
        bad.append(f"{name}: select_universe picked another universe than build_scans")
    if not all(r["parallel_equals_serial"] for r in batch):
        bad.append(f"{name}: build_scans on {WORKERS} processes wrote other rows than on one")
    if not all(r["memory_equals_files"] for r in batch):
        bad.append(f"{name}: scan_rows in memory differs from the day files build_scans wrote")
    if any((r["rows"], r["assets"]) != (rows, assets) for rs in rounds.values() for r in rs):
        bad.append(f"{name}: row/asset counts differ between modes or rounds")
    b_e2e = _figures(rows, [r["end_to_end_s"] for r in batch])
    b_cmp = _figures(rows, [r["compute_s"] for r in batch])
    b_par = _figures(rows, [r["end_to_end_parallel_s"] for r in batch])
    n_e2e = _figures(rows, [r["end_to_end_s"] for r in naive])
    n_cmp = _figures(rows, [r["compute_s"] for r in naive])
    calls = naive[0]["eigvalsh_calls"]
    out = {
        "batch": {
            "end_to_end": b_e2e, "compute_only": b_cmp,
            "end_to_end_parallel": {**b_par, "workers": batch[0]["parallel_workers"]},
            "load_closes_s_median": round(statistics.median(r["load_s"] for r in batch), 4),
            "build_report_elapsed_s_median": round(statistics.median(r["build_report_elapsed_s"] for r in batch), 4),
            "peak_rss_mb": _max(batch, "peak_rss_mb"), "ru_maxrss_mb": _max(batch, "ru_maxrss_mb"),
            "rss_after_imports_mb": _max(batch, "rss_after_imports_mb"),
            "memory_equals_files": all(r["memory_equals_files"] for r in batch),
        },
        "naive": {
            "end_to_end": n_e2e, "compute_only": n_cmp,
            "load_closes_s_median": round(statistics.median(r["load_s"] for r in naive), 4),
            "write_files_s_median": round(statistics.median(r["write_s"] for r in naive), 4),
            "eigvalsh_calls": calls, "ms_per_window": round(n_cmp["s_median"] / calls * 1e3, 4),
            "flat_windows": naive[0]["flat_windows"],
            "peak_rss_mb": _max(naive, "peak_rss_mb"), "ru_maxrss_mb": _max(naive, "ru_maxrss_mb"),
            "rss_after_imports_mb": _max(naive, "rss_after_imports_mb"),
        },
        "ratios": {
            "batch_over_naive_rows_per_s_compute_only": round(n_cmp["s_median"] / b_cmp["s_median"], 3),
            "batch_over_naive_rows_per_s_end_to_end": round(n_e2e["s_median"] / b_e2e["s_median"], 3),
            "batch_parallel_over_naive_rows_per_s_end_to_end": round(n_e2e["s_median"] / b_par["s_median"], 3),
        },
        "max_abs_diff": diffs, "tolerance": TOLERANCE, "deterministic_across_rounds": deterministic,
    }  # fmt: skip
    if "streaming" in rounds:
        stream = rounds["streaming"]
        s_cmp = _figures(rows, [r["compute_s"] for r in stream])
        out["streaming"] = {
            "compute_only": s_cmp, "bars_pushed_incl_warmup": stream[0]["bars_pushed"],
            "load_closes_s_median": round(statistics.median(r["load_s"] for r in stream), 4),
            "peak_rss_mb": _max(stream, "peak_rss_mb"), "ru_maxrss_mb": _max(stream, "ru_maxrss_mb"),
            "rss_after_imports_mb": _max(stream, "rss_after_imports_mb"),
        }  # fmt: skip
        out["ratios"]["batch_over_streaming_rows_per_s_compute_only"] = round(s_cmp["s_median"] / b_cmp["s_median"], 3)
    return out, bad


def run_case(
    name: str, home_root: str, repeats: int, streaming: bool, profile: bool, settings: list[str]
) -> tuple[dict, list[str]]:
    """Run `repeats` rounds of the case; a round runs every BLAS setting's modes, one spawned process each."""
    start, end = CASES[name]
    modes = ("batch", "naive", "streaming") if streaming else ("batch", "naive")
    say(f"case {name} {start}..{end}: {repeats} round(s) of {', '.join(modes)} x BLAS threads {', '.join(settings)}")
    rounds = {b: {m: [] for m in modes} for b in settings}
    for k in range(repeats):
        for b in settings:
            say(f"case {name}: round {k + 1}/{repeats}, BLAS threads {b}")
            with tempfile.TemporaryDirectory(prefix="dolphin-bench-") as work:
                first = profile and k == 0 and b == settings[0]
                rounds[b]["batch"].append(_in_child(b, batch_child, home_root, start, end, first, work))
                rounds[b]["naive"].append(_in_child(b, naive_child, home_root, start, end, work))
            if streaming:
                rounds[b]["streaming"].append(_in_child(b, streaming_child, home_root, start, end))
    outs = {b: {m: [r.pop("rows_out") for r in rs] for m, rs in by_mode.items()} for b, by_mode in rounds.items()}
    first_batch = rounds[settings[0]]["batch"][0]
    result = {
        "range": [start.isoformat(), end.isoformat()], "rows": first_batch["rows"], "assets": first_batch["assets"],
        "bars_read_incl_warmup": first_batch["bars_read"], "symbols_left_out": first_batch["left_out"],
        "universe": first_batch["symbols"], "rounds": repeats, "vel_div_summary": first_batch["vel_div_summary"],
        "by_blas_threads": {},
        "batch_rows_identical_across_blas_settings": all(
            _identical(outs[settings[0]]["batch"][0], outs[b]["batch"][0]) for b in settings),
        "profile_batch_end_to_end": {"blas_threads": settings[0], **(first_batch["profile"] or {})} if profile else None,
    }  # fmt: skip
    bad = []
    for b in settings:
        result["by_blas_threads"][b], more = _summary(f"{name} (BLAS threads {b})", rounds[b], outs[b])
        bad += more
        f = result["by_blas_threads"][b]
        worst = max(v for c, v in f["max_abs_diff"]["batch_files_vs_naive"].items() if c != "ts_identical")
        say(f"case {name}, BLAS threads {b}: {result['rows']} rows x {result['assets']} assets; batch "
            f"{f['batch']['compute_only']['rows_per_s']:.0f} rows/s compute, {f['batch']['end_to_end']['rows_per_s']:.0f} "
            f"end to end; naive {f['naive']['compute_only']['rows_per_s']:.0f} / {f['naive']['end_to_end']['rows_per_s']:.0f}; "
            f"max diff vs naive {worst:.2e}")  # fmt: skip
    return result, bad


def headline(results: dict) -> dict:
    """The figures quoted most: per case and BLAS setting, rows/s, ratios, peak RSS and the largest differences."""
    out = {}
    for name, case in results.items():
        for b, f in case["by_blas_threads"].items():
            diffs = f["max_abs_diff"]
            out[f"{name}, BLAS threads {b}"] = {
                "rows": case["rows"], "assets": case["assets"],
                "batch_rows_per_s_compute_only": f["batch"]["compute_only"]["rows_per_s"],
                "batch_rows_per_s_end_to_end": f["batch"]["end_to_end"]["rows_per_s"],
                "batch_parallel_rows_per_s_end_to_end": f["batch"]["end_to_end_parallel"]["rows_per_s"],
                "batch_parallel_workers": f["batch"]["end_to_end_parallel"]["workers"],
                "naive_rows_per_s_compute_only": f["naive"]["compute_only"]["rows_per_s"],
                "naive_rows_per_s_end_to_end": f["naive"]["end_to_end"]["rows_per_s"],
                "streaming_rows_per_s": f.get("streaming", {}).get("compute_only", {}).get("rows_per_s"),
                **f["ratios"],
                "peak_rss_mb": {m: f[m]["peak_rss_mb"] for m in ("batch", "naive", "streaming") if m in f},
                "max_abs_diff_vs_naive": max(v for c, v in diffs["batch_files_vs_naive"].items() if c != "ts_identical"),
                "max_abs_diff_vs_streaming": max(
                    (v for c, v in diffs.get("batch_files_vs_streaming", {}).items() if c != "ts_identical"), default=None),
            }  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--repeats", type=int, default=3, help="rounds for the champion window (median quoted)")
    ap.add_argument("--year-repeats", type=int, default=1, help="rounds for the full year")
    ap.add_argument("--streaming", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--blas-threads", nargs="+", default=["all", "1"],
                    help="OPENBLAS_NUM_THREADS settings to run each mode under ('all': unset, every core)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dolphin_scans.json")
    args = ap.parse_args()
    for b in args.blas_threads:
        if b != "all" and not (b.isdigit() and int(b) > 0):
            ap.error(f"--blas-threads {b!r}: give 'all' or a positive integer")
    load_at_start = os.getloadavg()
    paths = sorted(p for p in DATA.glob("*_USDT_1h.csv") if p.name.isascii())
    skipped = sorted(p.name for p in DATA.glob("*_USDT_1h.csv") if not p.name.isascii())

    t_all = time.perf_counter()
    results, failures = {}, []
    with tempfile.TemporaryDirectory(prefix="dolphin-home-") as tmp:
        say(f"importing {len(paths)} hourly CSVs into {tmp}")
        imported = run_in_child(import_child, tmp, [str(p) for p in paths])
        for name in args.cases:
            repeats = args.year_repeats if name == "year" else args.repeats
            results[name], bad = run_case(name, tmp, repeats, args.streaming, args.profile, args.blas_threads)
            failures += bad
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {
        "benchmark": "dolphin_scans",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "command": "uv run python benchmarks/dolphin_scans.py " + shlex.join(sys.argv[1:]),
        "machine": {**machine(load_at_start), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "data": {
            "files": len(paths),
            "skipped_non_ascii": skipped,
            "source": "../shared/data/perps-1d-1h/*_USDT_1h.csv",
            **imported,
        },
        "config": "ScanConfig() defaults: 1h, windows 50/150/300/750, log returns, Pearson, lambda_max/N, "
        "first-difference velocity, vel_div = v50 - v750",
        "headline": headline(results),
        "all_within_tolerance": not failures,
        "failures": failures,
        "cases": results,
        "total_s": round(time.perf_counter() - t_all, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    say(f"wrote {args.out}")
    if failures:
        raise SystemExit("batch output differs from a reference beyond 1e-10:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
