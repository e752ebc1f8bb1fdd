"""Discovery benchmark: genomes evaluated per minute through the discovery path (the search's ``Evaluator``
on a ``WorkerPool`` of 2 processes, compiled perp kernel) against the same genomes run one by one as
``vq backtest run`` does, and the evaluations the cache saves in a real search, in one process run.

Data: FILUSDT klines of ../shared/data ingested into a temporary home, 2023-08-01..2023-11-30, 15m bars.
``DiscoveryConfig(symbols=FILUSDT, timeframe=15m, holdout_days=30)``: every evaluation runs on the training
period 2023-08-01..2023-10-31 (92 days, 8,832 bars), screening mode, leverage 5, balance 100,000 (the
config's defaults), the whole indicator pool, up to 5 genes.

Genomes: the first ``--genomes`` distinct valid random genomes of ``genome.random_genome(random.Random(seed),
config.space)`` (valid: ``genome.check`` of the rendered document is None; distinct: ``genome.genome_key``).

1. **Discovery path**: ``service.start`` then one ``search.Evaluator`` (``--workers`` processes, executor
   ``process``), the genomes fed in batches of ``--batch`` (as generations are). The first batch includes
   the pool's start-up (spawning the workers, imports, loading the bars, numba's cached kernel); the other
   batches are steady state: genomes/min per batch, median over them (the headline) and over their sum.
   Each genome's DSL document is rendered as the search renders it (``document_name(run_id, key)``);
   the evaluator stores each result in ``discovery_genomes`` (part of the timed path, as in a search).
2. **Baseline, one by one as ``vq backtest run``**: (a) in this process, what the CLI calls after parsing
   its options: ``execute(home, plan_run(config.backtest(document, start, train_end)), specs)`` (a
   ``backtest_runs`` row, NautilusTrader, the result bundle), for the first ``--baseline-genomes`` genomes
   (default: all); (b) ``--cli-calls`` real subprocess calls of ``uv run vq --home H backtest run --strategy
   FILE.yaml <service.reproduce_args(config)> --json`` with the genome exported as YAML (what ``vq
   discover show --export`` writes): per-call overhead = CLI wall - in-process wall of the same genome.
   The metrics sharpe_ratio, total_trades and net_pnl of every baseline genome are compared with the
   discovery path's, exactly and within a relative 1e-12 (recorded; a difference is listed, not fatal:
   the kernel's equity curve can differ from NautilusTrader's by 1 ulp on some bars, which moves the
   Sharpe ratio in its 15th-16th digit while trades and net PnL stay identical).
3. **Cache in a real search**: ``service.start`` + ``run_search`` (``--population`` x ``--generations``,
   ``--seed``, a fresh pool): evaluations requested = population x (generations + 1), genomes run
   (``discovery_runs.evaluated``), cache hits (split into hits on genomes of earlier generations and
   duplicates inside one generation), the share saved, genomes/min of the whole search and the time
   spent outside evaluation (selection, variation, validation of offspring, checkpoints).

Ratios: discovery genomes/min (steady state; and including start-up) over baseline genomes/min. The
discovery path has ``--workers`` processes, the baseline one: ``ratio_per_process`` divides by the
workers. Progress goes to stderr. Writes ``benchmarks/results/discovery.json``.

    uv run python benchmarks/discovery.py [--genomes 192] [--batch 32] [--workers 2] [--baseline-genomes 0]
        [--cli-calls 3] [--population 64] [--generations 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_catalog  # noqa: E402

SYMBOL, TIMEFRAME = "FILUSDT", "15m"
START, END, HOLDOUT_DAYS = dt.date(2023, 8, 1), dt.date(2023, 11, 30), 30
COMPARED = ("sharpe_ratio", "total_trades", "net_pnl")
REL_TOL = 1e-12  # the kernel's equity curve may differ from NautilusTrader's by 1 ulp on some bars


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _numba_cache_files() -> int:
    """Numba index files of the perp kernel beside the sources (0: the workers compile it, ~2 minutes)."""
    return len(list((ROOT / "src" / "vibe_quant" / "sim" / "__pycache__").glob("*.nbi")))


def _picked(metrics: dict | None) -> dict | None:
    from vibe_quant.backtest.persist import clean

    return None if metrics is None else {k: clean(metrics.get(k)) for k in COMPARED}


def draw_genomes(config, n: int, seed: int) -> tuple[list, int]:
    """The first `n` distinct valid random genomes of ``random.Random(seed)``; also the draws it took."""
    from vibe_quant.discovery.genome import check, genome_key, random_genome, render

    rng = random.Random(seed)
    out, seen, draws = [], set(), 0
    while len(out) < n:
        draws += 1
        if draws > 100 * n:
            raise SystemExit(f"only {len(out)} distinct valid genomes in {draws} draws")
        g = random_genome(rng, config.space)
        doc = render(g, config.timeframe)
        key = genome_key(doc)
        if key in seen or check(doc) is not None:
            continue
        seen.add(key)
        out.append((key, g))
    return out, draws


def discovery_path(home, config, genomes: list, batch: int, workers: int) -> dict:
    """Part 1: the genomes through one Evaluator (one pool), in batches; timings and each genome's result."""
    from vibe_quant.discovery import service
    from vibe_quant.discovery.genome import render
    from vibe_quant.discovery.search import Evaluator, GenerationStats, Workers, document_name
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.state import StateManager

    run_id = service.start(home, config, InstrumentSpecs())
    items = [(key, g, render(g, config.timeframe, document_name(run_id, key))) for key, g in genomes]
    pool = Workers(home, config, workers, "process")  # the run's pool, as `vq discover run` keeps it
    evaluator = Evaluator(home, run_id, config, pool)
    worker_side: dict[str, dict] = {}
    store_s = 0.0
    store = evaluator._store

    def timed_store(state, key, genome, doc, result, generation):
        nonlocal store_s
        worker_side[key] = {"elapsed_s": result["elapsed_s"], "rss_mb": result["rss_mb"], "engine": result["engine"]}
        t = time.perf_counter()
        try:
            return store(state, key, genome, doc, result, generation)
        finally:
            store_s += time.perf_counter() - t

    evaluator._store = timed_store  # the instance attribute evaluate() calls: times the parent's SQLite writes
    batches = []
    t_all = time.perf_counter()
    try:
        for b, lo in enumerate(range(0, len(items), batch)):
            chunk = items[lo : lo + batch]
            stats = GenerationStats(b)
            t0 = time.perf_counter()
            evaluator.evaluate(chunk, stats)
            wall = time.perf_counter() - t0
            if stats.evaluated != len(chunk) or stats.cache_hits:
                raise SystemExit(f"batch {b}: {stats.evaluated} run, {stats.cache_hits} cache hits of {len(chunk)}")
            batches.append({"batch": b, "genomes": len(chunk), "wall_s": wall, "genomes_per_minute": len(chunk) / wall * 60,
                            "errors": stats.errors})  # fmt: skip
            say(f"  batch {b}: {len(chunk)} genomes in {wall:.2f}s ({len(chunk) / wall * 60:.0f}/min)"
                + (" incl. pool start-up" if b == 0 else ""))  # fmt: skip
        t_close = time.perf_counter()
        pool.close()
        close_s = time.perf_counter() - t_close
    finally:
        pool.close()
    total_s = time.perf_counter() - t_all
    with StateManager(home.db_path) as state:
        rows = {r["genome_key"]: r for r in state.find("discovery_genomes", run_id=run_id, role="search")}
    return {"run_id": run_id, "items": items, "batches": batches, "total_s": total_s, "close_s": close_s,
            "store_s": store_s, "worker_side": worker_side,
            "metrics": {k: _picked(r["metrics"]) for k, r in rows.items()},
            "errors": {k: r["error_message"] for k, r in rows.items() if r["error_message"]}}  # fmt: skip


def baseline_inprocess(home, config, items: list) -> list[dict]:
    """Part 2a: each genome through ``execute`` as ``vq backtest run`` calls it, one by one."""
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.instruments.specs import InstrumentSpecs

    specs = InstrumentSpecs()
    out = []
    for n, (key, _, doc) in enumerate(items, 1):
        t0 = time.perf_counter()
        _, result, _ = execute(home, plan_run(config.backtest(doc, config.start, config.train_end)), specs)
        wall = time.perf_counter() - t0
        out.append({"key": key, "wall_s": wall, "metrics": _picked(result.metrics), "bars": result.bars_processed})
        if n % 8 == 0 or n == len(items):
            say(f"  {n}/{len(items)} in-process, last {wall:.2f}s")
    return out


def baseline_cli(home, config, items: list, strategies: Path) -> list[dict]:
    """Part 2b: real ``uv run vq ... backtest run`` subprocesses on YAML exports of the genomes."""
    import yaml

    from vibe_quant.discovery.service import reproduce_args

    strategies.mkdir(parents=True, exist_ok=True)
    out = []
    for key, _, doc in items:
        path = strategies / f"{doc['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        cmd = ["uv", "run", "vq", "--home", str(home.root), "backtest", "run", "--strategy", str(path),
               *shlex.split(reproduce_args(config)), "--json"]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        summary = json.loads(proc.stdout)
        out.append({"key": key, "wall_s": wall, "metrics": _picked(summary["metrics"]),
                    "engine_elapsed_s": summary.get("elapsed_s"), "command": shlex.join(cmd)})  # fmt: skip
        say(f"  CLI {len(out)}/{len(items)}: {wall:.2f}s")
    return out


def search_run(home, config, workers: int) -> dict:
    """Part 3: a real search; cache figures and where its time goes."""
    from vibe_quant.discovery import search, service
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.state import StateManager

    run_id = service.start(home, config, InstrumentSpecs())
    evaluate = search.Evaluator.evaluate
    timing = {"evaluate_s": 0.0, "calls": 0, "earlier_hits": 0, "batch_duplicates": 0}

    def timed_evaluate(self, genomes, stats, on_progress=None):
        seen: set[str] = set()
        for key, _, _ in genomes:
            if key in self.known:
                timing["earlier_hits"] += 1
            elif key in seen:
                timing["batch_duplicates"] += 1
            seen.add(key)
        t0 = time.perf_counter()
        try:
            return evaluate(self, genomes, stats, on_progress)
        finally:
            timing["evaluate_s"] += time.perf_counter() - t0
            timing["calls"] += 1

    def on_generation(g: dict) -> None:
        say(f"  generation {g['generation']}: {g['evaluated']} run, {g['cache_hits']} cache hits, "
            f"{g['feasible']} feasible, {time.perf_counter() - t0:.1f}s")  # fmt: skip

    search.Evaluator.evaluate = timed_evaluate
    try:
        t0 = time.perf_counter()
        summary = search.run_search(home, run_id, workers, "process", None, on_generation=on_generation)
        wall = time.perf_counter() - t0
    finally:
        search.Evaluator.evaluate = evaluate
    with StateManager(home.db_path) as state:
        row = state.get("discovery_runs", run_id)
        errors = sum(1 for r in state.find("discovery_genomes", run_id=run_id, role="search") if r["error_message"])
    return {"run_id": run_id, "wall_s": wall, "row": row, "summary": summary, "timing": timing, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32, help="genomes per Evaluator.evaluate call (a generation)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-genomes", type=int, default=0, help="0: all the genomes")
    parser.add_argument("--cli-calls", type=int, default=3)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t_start = time.perf_counter()
    load_at_start = os.getloadavg()
    cache_files = _numba_cache_files()

    from vibe_quant.backtest.market_data import load_market_data
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.discovery.config import DiscoveryConfig
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    config = DiscoveryConfig(symbols=(SYMBOL,), timeframe=TIMEFRAME, start=START, end=END, holdout_days=HOLDOUT_DAYS,
                             population=args.population, generations=args.generations, seed=args.seed)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        say(f"ingest {SYMBOL} klines {START}..{END} ...")
        t0 = time.perf_counter()
        home = Home(Path(fil_catalog(tmp, START, END)))
        ingest_s = time.perf_counter() - t0
        genomes, draws = draw_genomes(config, args.genomes, args.seed)
        complexity = [g.complexity for _, g in genomes]

        say(f"1. discovery path: {len(genomes)} genomes, batches of {args.batch}, {args.workers} workers ...")
        disc = discovery_path(home, config, genomes, args.batch, args.workers)
        items = disc["items"]
        plan = plan_run(config.backtest(items[0][2], config.start, config.train_end))
        bars = len(load_market_data(home.catalog, plan, InstrumentSpecs()).bars[SYMBOL])

        subset = items[: args.baseline_genomes or len(items)]
        say(f"2a. baseline in-process (execute, as vq backtest run): {len(subset)} genomes one by one ...")
        t0 = time.perf_counter()
        inproc = baseline_inprocess(home, config, subset)
        inproc_s = time.perf_counter() - t0
        say(f"2b. baseline CLI: {args.cli_calls} x uv run vq backtest run ...")
        cli = baseline_cli(home, config, items[: args.cli_calls], Path(tmp) / "strategies")

        say(f"3. search: population {config.population}, {config.generations} generations, seed {config.seed} ...")
        srch = search_run(home, config, args.workers)

    # -- figures -----------------------------------------------------------------------------------------------
    batches = disc["batches"]
    steady = batches[1:]
    steady_n = sum(b["genomes"] for b in steady)
    steady_s = sum(b["wall_s"] for b in steady)
    steady_gpm_median = statistics.median(b["genomes_per_minute"] for b in steady)
    steady_gpm_sum = steady_n / steady_s * 60
    startup_s = batches[0]["wall_s"] - batches[0]["genomes"] / (steady_n / steady_s)
    disc_all_gpm = len(items) / disc["total_s"] * 60
    worker_s = [w["elapsed_s"] for w in disc["worker_side"].values()]
    engines: dict[str, int] = {}
    for w in disc["worker_side"].values():
        engines[w["engine"]] = engines.get(w["engine"], 0) + 1

    base_walls = [r["wall_s"] for r in inproc]
    base_gpm = len(inproc) / inproc_s * 60
    base_ids = {r["key"] for r in inproc}
    disc_subset_worker_s = sum(disc["worker_side"][k]["elapsed_s"] for k in base_ids)
    inproc_by_key = {r["key"]: r for r in inproc}
    cli_walls = [r["wall_s"] for r in cli]
    cli_overhead = [r["wall_s"] - inproc_by_key[r["key"]]["wall_s"] for r in cli if r["key"] in inproc_by_key]

    def compare(rows: list[dict]) -> dict:
        """Exact equality of the compared metrics, and equality within REL_TOL (float rounding)."""
        differ, beyond, worst = [], [], 0.0
        for r in rows:
            ours, theirs = disc["metrics"].get(r["key"]), r["metrics"]
            if ours == theirs:
                continue
            differ.append({"genome_key": r["key"], "discovery": ours, "baseline": theirs})
            for k in COMPARED:
                a, b = (ours or {}).get(k), (theirs or {}).get(k)
                if a == b:
                    continue
                if a is None or b is None or k == "total_trades":
                    beyond.append(r["key"])
                    continue
                rel = abs(a - b) / max(abs(a), abs(b))
                worst = max(worst, rel)
                if rel > REL_TOL:
                    beyond.append(r["key"])
        return {"genomes": len(rows), "fields": list(COMPARED), "identical_exact": len(rows) - len(differ),
                "all_equal_exact": not differ, "relative_tolerance": REL_TOL,
                "all_equal_within_tolerance": not beyond, "max_relative_difference": worst,
                "differ_exact": differ[:10]}  # fmt: skip

    row = srch["row"]
    requested = config.population * (config.generations + 1)
    timing = srch["timing"]
    result = {
        "benchmark": "discovery",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in load_at_start],
                    "versions": {d: _version(d) for d in ("vibe-quant", "nautilus_trader", "numba", "numpy", "deap",
                                                            "msgspec")}},
        "command": "uv run python benchmarks/discovery.py " + shlex.join(sys.argv[1:]),
        "work": {
            "symbol": SYMBOL, "timeframe": TIMEFRAME, "data": "../shared/data binance-vision FILUSDT klines",
            "period": [START.isoformat(), END.isoformat()], "holdout_days": HOLDOUT_DAYS,
            "evaluated_on": [config.start.isoformat(), config.train_end.isoformat()], "bars_per_evaluation": bars,
            "mode": config.mode, "leverage": config.leverage, "starting_balance": config.starting_balance,
            "workers": args.workers, "ingest_s": ingest_s,
            "genomes": {"n": len(genomes), "seed": args.seed, "draws": draws,
                        "how": "random.Random(seed) -> genome.random_genome(rng, config.space); kept when genome.check "
                               "is None and its genome_key is new",
                        "complexity_median": statistics.median(complexity),
                        "complexity_counts": {str(c): complexity.count(c) for c in sorted(set(complexity))}},
            "numba_cache_files_before_run": cache_files,
        },
        "discovery": {
            "path": "service.start + search.Evaluator.evaluate on a WorkerPool (process executor, engine sim)",
            "batch_size": args.batch, "batches": batches,
            "first_batch_incl_startup_s": batches[0]["wall_s"],
            "first_batch_genomes_per_minute": batches[0]["genomes_per_minute"],
            "startup_s_estimate": startup_s,
            "startup_note": "first batch wall minus its genomes at the steady-state rate: spawning the workers, "
                            "imports, loading the bars, loading the kernel from numba's on-disk cache (with no cache "
                            "the workers compile it first: ~111 s for an 8-genome first batch, measured once on this machine in a "
                            "fresh worktree)",
            "steady_state_genomes": steady_n, "steady_state_s": steady_s,
            "steady_state_genomes_per_minute_median": steady_gpm_median,
            "steady_state_genomes_per_minute_sum": steady_gpm_sum,
            "all_incl_startup_and_close_s": disc["total_s"], "all_incl_startup_genomes_per_minute": disc_all_gpm,
            "pool_close_s": disc["close_s"],
            "parent_store_s": disc["store_s"],
            "parent_store_ms_per_genome": disc["store_s"] / len(items) * 1000,
            "worker_s_per_genome_median": statistics.median(worker_s),
            "worker_s_per_genome_max": max(worker_s),
            "peak_worker_rss_mb": max(w["rss_mb"] for w in disc["worker_side"].values()),
            "engines": engines, "errors": len(disc["errors"]),
        },
        "baseline_inprocess": {
            "path": "vibe_quant.backtest.service.execute(home, plan_run(DiscoveryConfig.backtest(document, start, "
                    "train_end)), specs), one genome after another in this process (what vq backtest run calls: "
                    "a backtest_runs row, NautilusTrader, the bundle)",
            "genomes": len(inproc), "subset": "all" if len(inproc) == len(items) else f"the first {len(inproc)}",
            "wall_s": inproc_s, "genomes_per_minute": base_gpm,
            "s_per_genome_median": statistics.median(base_walls), "s_per_genome_max": max(base_walls),
            "discovery_worker_s_same_genomes": disc_subset_worker_s,
            "metrics_check": compare(inproc),
        },
        "baseline_cli": {
            "path": "uv run vq --home H backtest run --strategy FILE.yaml " + _reproduce(config) + " --json "
                    "(the genome exported as YAML), a subprocess each",
            "calls": len(cli), "wall_s": cli_walls, "s_per_call_median": statistics.median(cli_walls) if cli else None,
            "genomes_per_minute": len(cli) / sum(cli_walls) * 60 if cli else None,
            "overhead_s_per_call": cli_overhead,
            "overhead_s_per_call_median": statistics.median(cli_overhead) if cli_overhead else None,
            "overhead_note": "CLI wall minus the in-process execute wall of the same genome: uv, interpreter start, "
                             "imports, option parsing, loading the bars, output",
            "metrics_check": compare(cli),
        },
        "search": {
            "population": config.population, "generations": config.generations, "seed": config.seed,
            "evaluations_requested": requested, "genomes_run": row["evaluated"], "cache_hits": row["cache_hits"],
            "requested_equals_run_plus_hits": requested == row["evaluated"] + row["cache_hits"],
            "hits_on_earlier_generations": timing["earlier_hits"],
            "duplicates_within_a_generation": timing["batch_duplicates"],
            "saved_share": row["cache_hits"] / requested,
            "wall_s": srch["wall_s"], "genomes_run_per_minute": row["evaluated"] / srch["wall_s"] * 60,
            "evaluations_per_minute": requested / srch["wall_s"] * 60,
            "in_evaluate_s": timing["evaluate_s"], "outside_evaluate_s": srch["wall_s"] - timing["evaluate_s"],
            "outside_note": "selection, crossover, mutation, genome.check of every offspring, checkpoints; the "
                            "pool start-up is inside generation 0's evaluate",
            "errors": srch["errors"], "status_after_search": row["status"],
            "per_generation": [{k: g[k] for k in ("generation", "evaluated", "cache_hits", "feasible", "rejected",
                                                  "repaired", "front")} for g in srch["summary"].history],
        },
        "ratios": {
            "steady_state_vs_inprocess": steady_gpm_median / base_gpm,
            "steady_state_vs_inprocess_per_process": steady_gpm_median / args.workers / base_gpm,
            "incl_startup_vs_inprocess": disc_all_gpm / base_gpm,
            "steady_state_vs_cli": steady_gpm_median / (len(cli) / sum(cli_walls) * 60) if cli else None,
            "search_genomes_run_vs_inprocess": row["evaluated"] / srch["wall_s"] * 60 / base_gpm,
            "search_evaluations_vs_inprocess": requested / srch["wall_s"] * 60 / base_gpm,
            "note": "discovery genomes/min over baseline genomes/min; the discovery path runs on "
                    f"{args.workers} processes, the baseline on one (per_process divides by the workers)",
        },
        "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "total_runtime_s": time.perf_counter() - t_start,
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "discovery.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({"discovery_steady_gpm": steady_gpm_median, "discovery_incl_startup_gpm": disc_all_gpm,
                      "baseline_inprocess_gpm": base_gpm, "ratios": result["ratios"],
                      "cache_saved_share": result["search"]["saved_share"],
                      "total_runtime_s": result["total_runtime_s"]}, indent=2))  # fmt: skip
    say(f"written {out}")


def _reproduce(config) -> str:
    from vibe_quant.discovery.service import reproduce_args

    return reproduce_args(config)


if __name__ == "__main__":
    main()
