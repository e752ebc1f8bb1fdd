"""DOLPHIN engine benchmark: the array engine against the per-bar reference loop, identical ledgers required.

Data: real scan tables built inside the run. The hourly perpetuals of ``../shared/data/perps-1d-1h``
(``*_USDT_1h.csv``; FTT, RAY, WAVES and the non-ASCII names skipped) whose bars span a table's import
range (``MANIFEST.tsv``) are imported with ``csv_import.run_import`` into a temporary ``Home``; then
``build.build_scans`` with ``ScanConfig()`` writes each table (its universe is every perpetual covering
the range and its 751-bar warm-up, ``select_universe``) and ``backtest.load_scan_data`` reads it back.

Tables:

* ``champion``: 2025-12-31 .. 2026-02-25 (the champion window; import 2025-11-28 .. 2026-02-26: 97 assets,
  1,368 rows);
* ``year`` (``--no-year`` skips it): 2025-06-01 .. 2026-05-31 (import 2025-05-01 .. 2026-05-31; fewer
  assets cover it). Skipped (and said so in the results) when its scan build takes more than
  ``--year-build-limit`` seconds (default 60): its timings would then not be worth the wait.

Cases (no ACB factor table, no order book, MC or posture provider: boost 1.0, beta 0, every day APEX):

* ``champion-honest`` / ``champion-seed``: the champion config (``load_engine_config()``), cost profile
  ``honest`` / ``seed``;
* ``signal-dense``: ``engine_config(profile="honest", vel_div_threshold=-0.002, vel_div_extreme=-0.03,
  max_hold_bars=12)``: many more bars fire (IRP ranks the universe at each candidate bar) and the
  shorter holding limit gives more trades;
* ``year-honest`` / ``year-seed`` / ``year-signal-dense``: the same configs over the year table.

Per case: one untimed warm-up run of each engine (the first ``run_array`` compiles or loads the numba
IRP kernel; its time is listed as ``warmup_array_s``), then ``--repeats`` rounds (default 5), each
timing ``array_engine.run_array`` and then ``array_engine.run_reference`` (``NDAlphaEngine``'s per-bar
loop) with ``time.perf_counter``, alternately so slow spells of this shared machine fall on both.
Figures: median and every round's seconds, rows/s (scan rows / median seconds), the speed-up
(array rows/s over reference rows/s), trades, candidate bars (``result.counts.candidates``: bars where
the signal fired and an entry was tried), exit reasons.

Identical ledgers: for every pair of runs (the warm-up and each round), ``result.trades`` lists equal,
``result.days`` equal, ``np.array_equal(result.equity)``, and also the counts and final capital; and each
engine's result must equal its warm-up's in every round. A difference is recorded with the first
differing trade (both versions in full) or day row or equity bar; the results are written either way,
then the script exits non-zero.

Also recorded: the peak RSS of this one process (``getrusage`` ``ru_maxrss``, the scan import and build
included), machine info (CPUs, load averages at start and end, numpy/numba versions), the date, the
command, the whole script's wall time, and a sha256 of each engine source file (``engine_sources_sha256``,
read at the start; ``engine_sources_changed_during_run`` says whether they differ at the end): the engine
is under development, so the trade counts belong to that version. Progress goes to stderr. Writes
``benchmarks/results/dolphin_engine.json`` (or ``--out``).

    uv run python benchmarks/dolphin_engine.py [--repeats 5] [--no-year] [--year-build-limit 60] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERPS = ROOT.parent / "shared" / "data" / "perps-1d-1h"
DELISTED = {"FTT", "RAY", "WAVES"}
FILE_LIMIT = 200
# table: (import first open, import last open, first scan day, last scan day)
TABLES = {
    "champion": ("2025-11-28 00:00", "2026-02-26 23:00", dt.date(2025, 12, 31), dt.date(2026, 2, 25)),
    "year": ("2025-05-01 00:00", "2026-05-31 23:00", dt.date(2025, 6, 1), dt.date(2026, 5, 31)),
}
DENSE = {"profile": "honest", "vel_div_threshold": -0.002, "vel_div_extreme": -0.03, "max_hold_bars": 12}
# case: (table, config overrides of the champion YAML)
CASES = {
    "champion-honest": ("champion", {"profile": "honest"}),
    "champion-seed": ("champion", {"profile": "seed"}),
    "signal-dense": ("champion", DENSE),
    "year-honest": ("year", {"profile": "honest"}),
    "year-seed": ("year", {"profile": "seed"}),
    "year-signal-dense": ("year", DENSE),
}
HEADLINE = ("rows", "assets", "array_s_median", "reference_s_median", "array_rows_per_s", "reference_rows_per_s",
            "speedup_array_over_reference", "trades", "candidates", "identical_ledgers")  # fmt: skip
ENGINE_FILES = ("array_engine.py", "engine.py", "rules.py", "engine_config.py", "providers.py", "dolphin_champion.yaml")


def say(msg: str) -> None:
    print(f"[dolphin_engine {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _ru_maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def covering(first_open: str, last_open: str, limit: int) -> list[Path]:
    """The first `limit` hourly files (by name) whose bars span first_open..last_open (MANIFEST.tsv).

    The same selection as ``tests/dolphin/conftest.covering`` (copied so the benchmark does not import tests).
    """
    out = []
    with (PERPS / "MANIFEST.tsv").open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = Path(row["path"]).name
            base = name.split("_USDT_")[0]
            if not name.endswith("_USDT_1h.csv") or base in DELISTED or not base.isascii():
                continue
            if row["first_open_utc"] <= first_open and row["last_open_utc"] >= last_open:
                out.append(PERPS / name)
    return sorted(out)[:limit]


def engine_sources() -> dict[str, str]:
    """sha256 (16 hex) of the engine's source files: which version of the engine was measured."""
    import hashlib

    src = ROOT / "src" / "vibe_quant" / "dolphin"
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(src.glob("*")) if p.name in ENGINE_FILES
    }


def machine(load_at_start: tuple[float, ...]) -> dict:
    import numba
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
        "numba": numba.__version__,
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "versions": {d: _version(d) for d in ("vibe-quant", "pyarrow", "msgspec")},
    }


def build_tables(root: Path, names: list[str], year_limit_s: float) -> tuple[dict, dict]:
    """Import the union of the tables' covering files once, build each table; return (ScanData, info) per table."""
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.dolphin.backtest import load_scan_data
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.dolphin.config import ScanConfig
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()
    home = Home(root / "home").ensure()
    files = {name: covering(TABLES[name][0], TABLES[name][1], FILE_LIMIT) for name in names}
    union = sorted(set().union(*files.values()))
    say(f"importing {len(union)} hourly perpetuals ({', '.join(f'{n}: {len(f)}' for n, f in files.items())})")
    t0 = time.perf_counter()
    run_import(home, union, specs)
    import_s = time.perf_counter() - t0
    say(f"imported in {import_s:.1f} s")
    data, info = {}, {}
    for name in names:
        _, _, start, end = TABLES[name]
        say(f"building the {name} scan table {start} .. {end}")
        t0 = time.perf_counter()
        report = build_scans(home, specs, ScanConfig(), start, end, root / f"scans-{name}")
        build_s = time.perf_counter() - t0
        entry = {
            "import_range": list(TABLES[name][:2]), "start": str(start), "end": str(end),
            "files_covering": len(files[name]), "build_s": round(build_s, 2), "scan_rows": report.rows,
            "assets": len(report.symbols), "left_out": len(report.left_out),
        }  # fmt: skip
        say(f"  {name}: {report.rows} rows x {len(report.symbols)} assets in {build_s:.1f} s")
        if name == "year" and build_s > year_limit_s:
            entry["skipped"] = f"the scan build took {build_s:.1f} s > {year_limit_s:g} s"
            say(f"  skipping the year cases: {entry['skipped']}")
            info[name] = entry
            continue
        t0 = time.perf_counter()
        data[name] = load_scan_data(root / f"scans-{name}", start, end)
        entry["load_s"] = round(time.perf_counter() - t0, 3)
        entry["rows"], entry["assets"] = len(data[name].ts), len(data[name].symbols)
        info[name] = entry
    return data, {"import_files": len(union), "import_s": round(import_s, 2), "tables": info}


def compare(a, r) -> dict:
    """Whether two results give identical ledgers; the first difference when they do not."""
    import msgspec
    import numpy as np

    out = {
        "trades": a.trades == r.trades,
        "days": a.days == r.days,
        "equity": bool(np.array_equal(a.equity, r.equity)),
        "counts": a.counts == r.counts,
        "capital": a.capital == r.capital,
    }
    out["identical"] = all(out.values())
    if not out["trades"]:
        i = next((k for k, (x, y) in enumerate(zip(a.trades, r.trades, strict=False)) if x != y),
                 min(len(a.trades), len(r.trades)))  # fmt: skip
        out["first_trade_difference"] = {
            "index": i, "array_trades": len(a.trades), "reference_trades": len(r.trades),
            "array": msgspec.to_builtins(a.trades[i]) if i < len(a.trades) else None,
            "reference": msgspec.to_builtins(r.trades[i]) if i < len(r.trades) else None,
        }  # fmt: skip
    if not out["days"]:
        i = next((k for k, (x, y) in enumerate(zip(a.days, r.days, strict=False)) if x != y),
                 min(len(a.days), len(r.days)))  # fmt: skip
        out["first_day_difference"] = {
            "index": i,
            "array": str(a.days[i]) if i < len(a.days) else None,
            "reference": str(r.days[i]) if i < len(r.days) else None,
        }
    if not out["equity"] and len(a.equity) == len(r.equity):
        i = int(np.flatnonzero(~((a.equity == r.equity) | (np.isnan(a.equity) & np.isnan(r.equity))))[0])
        out["first_equity_difference"] = {"bar": i, "array": float(a.equity[i]), "reference": float(r.equity[i])}
    if not out["counts"]:
        out["counts_array"], out["counts_reference"] = str(a.counts), str(r.counts)
    return out


def run_case(name: str, data, overrides: dict, repeats: int) -> dict:
    from dataclasses import asdict

    from vibe_quant.dolphin.array_engine import run_array, run_reference
    from vibe_quant.dolphin.engine_config import load_engine_config

    cfg = load_engine_config(**overrides)
    rows = len(data.ts)
    say(f"{name}: {rows} rows x {len(data.symbols)} assets, {overrides}")
    t0 = time.perf_counter()
    a0 = run_array(data, cfg)
    warm_a = time.perf_counter() - t0
    t0 = time.perf_counter()
    r0 = run_reference(data, cfg)
    warm_r = time.perf_counter() - t0
    first = compare(a0, r0)
    say(f"  warm-up: array {warm_a:.3f} s, reference {warm_r:.3f} s, {len(a0.trades)} trades, "
        f"identical {first['identical']}")  # fmt: skip
    times_a, times_r, pairs_ok, stable = [], [], True, True
    for k in range(repeats):
        t0 = time.perf_counter()
        a = run_array(data, cfg)
        times_a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = run_reference(data, cfg)
        times_r.append(time.perf_counter() - t0)
        pairs_ok &= compare(a, r)["identical"]
        stable &= compare(a, a0)["identical"] and compare(r, r0)["identical"]
        say(f"  round {k + 1}/{repeats}: array {times_a[-1]:.4f} s, reference {times_r[-1]:.4f} s")
    med_a, med_r = statistics.median(times_a), statistics.median(times_r)
    reasons: dict[str, int] = {}
    for t in a0.trades:
        reasons[t.exit_reason] = reasons.get(t.exit_reason, 0) + 1
    ok = first["identical"] and pairs_ok and stable
    out = {
        "config_overrides": overrides,
        "config_digest": cfg.digest(),
        "rows": rows,
        "assets": len(data.symbols),
        "repeats": repeats,
        "warmup_array_s": round(warm_a, 4),
        "warmup_reference_s": round(warm_r, 4),
        "array_s_median": round(med_a, 5),
        "reference_s_median": round(med_r, 5),
        "array_s_all": [round(x, 5) for x in times_a],
        "reference_s_all": [round(x, 5) for x in times_r],
        "array_rows_per_s": round(rows / med_a, 1),
        "reference_rows_per_s": round(rows / med_r, 1),
        "speedup_array_over_reference": round(med_r / med_a, 2),
        "trades": len(a0.trades),
        "candidates": a0.counts.candidates,
        "bars_signal_fires": int((data.vel_div < cfg.vel_div_threshold).sum()),
        "counts": {k: int(v) for k, v in asdict(a0.counts).items()},
        "exit_reasons": dict(sorted(reasons.items())),
        "final_capital": a0.capital,
        "identical_ledgers": ok,
        "identical_warmup_pair": first,
        "identical_every_round": pairs_ok,
        "deterministic_across_rounds": stable,
    }
    say(f"  medians: array {med_a:.4f} s ({rows / med_a:,.0f} rows/s), reference {med_r:.4f} s "
        f"({rows / med_r:,.0f} rows/s), x{med_r / med_a:.1f}; {len(a0.trades)} trades, "
        f"{a0.counts.candidates} candidates; identical ledgers {ok}")  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-year", dest="year", action="store_false", help="skip the year table and its cases")
    ap.add_argument(
        "--year-build-limit", type=float, default=60.0, help="skip the year cases above this build time (s)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dolphin_engine.json")
    args = ap.parse_args()
    wall0 = time.perf_counter()
    sources = engine_sources()
    load_at_start = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    names = ["champion", "year"] if args.year else ["champion"]
    cases, failures = {}, []
    with tempfile.TemporaryDirectory(prefix="dolphin_engine_") as tmp:
        data, inputs = build_tables(Path(tmp), names, args.year_build_limit)
    rss_after_build = _ru_maxrss_mb()
    for name, (table, overrides) in CASES.items():
        if table not in data:
            cases[name] = {"skipped": inputs["tables"].get(table, {}).get("skipped", f"no {table} table (--no-year)")}
            continue
        cases[name] = run_case(name, data[table], overrides, args.repeats)
        if not cases[name]["identical_ledgers"]:
            failures.append(name)
    wall = time.perf_counter() - wall0
    headline = {name: {k: c[k] for k in HEADLINE} for name, c in cases.items() if "skipped" not in c}
    out = {
        "benchmark": "dolphin_engine",
        "description": __doc__.split("\n\n")[0],
        "date": started.isoformat(timespec="seconds"),
        "command": "uv run python benchmarks/dolphin_engine.py " + shlex.join(sys.argv[1:]),
        "machine": {**machine(load_at_start), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "wall_s": round(wall, 1),
        "peak_rss_mb": {"ru_maxrss_mb": _ru_maxrss_mb(), "ru_maxrss_after_build_mb": rss_after_build},
        "all_identical": not failures,
        "engine_sources_sha256": sources,
        "engine_sources_changed_during_run": engine_sources() != sources,
        "headline": headline,
        "inputs": inputs,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    say(f"wrote {args.out} (wall {wall:.1f} s)")
    if out["engine_sources_changed_during_run"]:
        say("WARNING: the engine's source files changed during the run (the figures may mix versions)")
    if failures:
        say(f"LEDGERS DIFFER: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
