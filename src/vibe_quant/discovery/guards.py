"""The guard rails a discovered strategy must pass after the search (docs/specs.md#discovery-guard-rails).

Finalists: the feasible first Pareto front of the last generation, best training Sharpe first,
at most ``guards.finalists``. Each is judged by:

* **DSR** on its training daily returns against every genome the run evaluated (the number of
  trials is the run's, not one generation's; the trials' Sharpe variance is generation 0's, the
  random genomes no selection has touched: :func:`dsr_trials`);
* **PBO** (CSCV) over the training daily returns of every genome evaluated: is picking the best
  in-sample genome overfit? One verdict for the run;
* **walk-forward**: the training period cut into ``wf_windows`` train/test windows, the finalist
  run from each window's train start to its test end (the training part warms it up) and scored on
  the test part (efficiency and profitable share, as the overfitting stage);
* **held-out period**: the last days of the run, never seen by the search: the finalist must make
  money there (Sharpe above 0) and
* **random baseline**: beat the ``baseline_quantile`` of the held-out Sharpe of ``baselines`` random
  genomes with its complexity (random genomes are drawn from their own seeded generator and stored
  as ``role = 'baseline'`` rows).

A finalist passes when it passes all of them; the report says which failed and why.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np

from vibe_quant.backtest.persist import clean, now_iso
from vibe_quant.discovery.config import DiscoveryConfig
from vibe_quant.discovery.genome import check, describe, genome_key, random_genome, render, to_json
from vibe_quant.home import Home
from vibe_quant.overfitting import filters as F
from vibe_quant.overfitting.config import PBO, DeflatedSharpe, WalkForward
from vibe_quant.overfitting.splits import walk_forward_windows
from vibe_quant.screening.pipeline import returns_blob, returns_from_blob
from vibe_quant.state import StateManager

Progress = Callable[[str, int, int], None]
CHECKS = ("dsr", "pbo", "walk_forward", "holdout", "baseline")


def finalists(state: StateManager, run_id: int, count: int) -> list[dict]:
    """The last generation's feasible Pareto front (search rows), best training Sharpe first, at most `count`."""
    gens = state.find("discovery_generations", order_by="generation", run_id=run_id)
    if not gens:
        return []
    front = set(gens[-1]["front"])
    rows = [r for r in state.find("discovery_genomes", run_id=run_id, role="search") if r["genome_key"] in front]
    rows.sort(key=lambda r: (-(r["sharpe_ratio"] if r["sharpe_ratio"] is not None else -math.inf), r["genome_key"]))
    return rows[:count]


def wf_layout(config: DiscoveryConfig) -> tuple[int, int, int]:
    """(train, test, step) days of the walk-forward windows inside the training period: test = step = days /
    (windows + 2) rounded down, train = 2 x test (the latest ``wf_windows`` windows are used)."""
    days = (config.train_end - config.start).days + 1
    test = days // (config.guards.wf_windows + 2)
    return 2 * test, test, test


def _baseline_genomes(config: DiscoveryConfig, complexity: int) -> list:
    """`baselines` distinct random valid genomes with `complexity` genes (their own generator: the same for a
    given seed and complexity, whatever the search did)."""
    rng = random.Random(f"baseline:{config.seed}:{complexity}")
    out, seen = [], set()
    for _ in range(50 * config.guards.baselines):
        g = random_genome(rng, config.space, complexity)
        doc = render(g, config.timeframe)
        key = genome_key(doc)
        if key not in seen and check(doc) is None:
            seen.add(key)
            out.append((key, g))
        if len(out) == config.guards.baselines:
            break
    return out


def judge(home: Home, run_id: int, workers=2, executor: str = "process", specs_path: str | None = None,
          address: str | None = None, on_progress: Progress | None = None) -> dict:  # fmt: skip
    """Judge the finalists of run `run_id` (on `workers`: a count, or the search's
    :class:`~vibe_quant.discovery.search.Workers`); store them and the run's summary; return the summary."""
    from vibe_quant.discovery.search import Workers, document_name, load_discovery

    with StateManager(home.db_path) as state:
        config, _ = load_discovery(state, run_id)
        chosen = finalists(state, run_id, config.guards.finalists)
        searched = [r for r in state.find("discovery_genomes", run_id=run_id, role="search") if r["daily_returns"]]
        stored_baselines = {r["genome_key"]: r for r in state.find("discovery_genomes", run_id=run_id, role="baseline")}
    g = config.guards
    returns = [returns_from_blob(r["daily_returns"]) for r in searched]
    summary: dict = {"trials": len(searched), "finalists": len(chosen), "train": [config.start.isoformat(), config.train_end.isoformat()],
                     "holdout": [config.holdout_start.isoformat(), config.end.isoformat()]}  # fmt: skip
    if not chosen:
        summary.update(passed=0, verdict="no feasible genome: nothing passed the hard filters on the training period")
        _store(home, run_id, [], summary)
        return summary

    # Run level: the multiple-testing population and the selection's overfitting.
    trials = dsr_trials(home, run_id, searched, returns)
    lengths = {r.size for r in returns}
    if len(lengths) == 1 and len(returns) >= 2:
        matrix = np.column_stack(returns)
        splits = min(g.pbo_splits, (matrix.shape[0] // 4) * 2)  # CSCV blocks hold >= 2 days each
        pbo = (F.pbo_filter(matrix, PBO(enabled=True, n_splits=splits, max_pbo=g.pbo_max)) if splits >= 2
               else F.Verdict(False, f"PBO: {matrix.shape[0]} training days are too few to split"))  # fmt: skip
    else:
        pbo = F.Verdict(False, "PBO needs at least two genomes with daily returns of one length")
    summary["pbo"] = {"passed": pbo.passed, "reason": pbo.reason, "figures": pbo.figures}

    # Backtests: walk-forward windows (training period) and the held-out period (finalists + random baselines).
    train_days, test_days, step = wf_layout(config)
    windows = (
        walk_forward_windows(config.start, config.train_end, train_days, test_days, step) if test_days >= 1 else []
    )
    windows = windows[-g.wf_windows :]  # days that do not divide evenly leave room for one more: keep the latest
    by_index = {w.index: w for w in windows}
    tasks: list[tuple] = []
    owner: dict[int, tuple] = {}
    for w in windows:  # window-major: each worker keeps one engine per period
        for row in chosen:
            owner[len(tasks)] = ("wf", row["genome_key"], w.index)
            tasks.append((len(tasks), {}, (w.train_start.isoformat(), w.test_end.isoformat()), row["document"]))
    holdout = (config.holdout_start.isoformat(), config.end.isoformat())
    for row in chosen:
        owner[len(tasks)] = ("holdout", row["genome_key"], None)
        tasks.append((len(tasks), {}, holdout, row["document"]))
    baselines: dict[int, list[tuple[str, object]]] = {}
    for complexity in sorted({row["complexity"] for row in chosen}):
        baselines[complexity] = _baseline_genomes(config, complexity)
        for key, genome in baselines[complexity]:
            if key in stored_baselines:
                continue
            owner[len(tasks)] = ("baseline", key, genome)
            tasks.append((len(tasks), {}, holdout, render(genome, config.timeframe, document_name(run_id, key))))
    own = not isinstance(workers, Workers)
    pool = Workers(home, config, workers, executor, specs_path, address) if own else workers
    wf_results: dict[tuple[str, int], F.WindowResult] = {}
    wf_errors: dict[str, str] = {}
    holdout_metrics: dict[str, dict | None] = {}
    holdout_errors: dict[str, str] = {}
    with StateManager(home.db_path) as state:
        for n, result in enumerate(_each(pool, tasks, own), 1):
            kind, key, extra = owner[result["index"]]
            if kind == "wf":
                if result["error"] is not None:
                    wf_errors.setdefault(key, f"window {extra}: {result['error']}")
                else:
                    wf_results[(key, extra)] = F.WindowResult(np.asarray(result["returns"]), by_index[extra].train_days)
            elif kind == "holdout":
                holdout_metrics[key] = result["metrics"]
                if result["error"] is not None:
                    holdout_errors[key] = result["error"]
            else:
                stored_baselines[key] = _store_baseline(state, run_id, key, extra, result, config)
            if on_progress is not None:
                on_progress("guard rails", n, len(tasks))

    wf_cfg = WalkForward(min_windows=max(1, len(windows)), min_efficiency=g.wf_min_efficiency,
                         min_profitable_windows_pct=g.wf_min_profitable)  # fmt: skip
    dsr_cfg = DeflatedSharpe(confidence_threshold=g.dsr_confidence)
    baseline_sharpes = {c: [_sharpe(stored_baselines[k]["metrics"]) for k, _ in keys] for c, keys in baselines.items()}
    judged = []
    for rank, row in enumerate(chosen, 1):
        key = row["genome_key"]
        checks = {}
        dsr = F.deflated_sharpe(returns_from_blob(row["daily_returns"]), trials, dsr_cfg)
        checks["dsr"] = _check(dsr)
        checks["pbo"] = _check(pbo)
        if not windows:
            checks["walk_forward"] = _check(
                F.Verdict(False, "the training period is too short for walk-forward windows")
            )
        elif key in wf_errors:
            checks["walk_forward"] = _check(F.Verdict(False, f"walk-forward run failed: {wf_errors[key]}"))
        else:
            checks["walk_forward"] = _check(
                F.walk_forward_filter([wf_results[(key, w.index)] for w in windows], wf_cfg)
            )
        hm = holdout_metrics.get(key)
        h_sharpe = _sharpe(hm)
        if key in holdout_errors:
            checks["holdout"] = _check(F.Verdict(False, f"held-out run failed: {holdout_errors[key]}"))
        else:
            ok = h_sharpe > 0
            checks["holdout"] = _check(F.Verdict(ok, None if ok else f"held-out Sharpe {h_sharpe:.2f} <= 0",
                                                 {"sharpe": h_sharpe, "total_return": (hm or {}).get("total_return"),
                                                  "total_trades": (hm or {}).get("total_trades")}))  # fmt: skip
        pool = np.array(baseline_sharpes[row["complexity"]])
        bar = float(np.quantile(pool, g.baseline_quantile)) if pool.size else math.nan
        percentile = float(np.mean(pool < h_sharpe)) if pool.size else math.nan
        ok = pool.size > 0 and h_sharpe > bar
        checks["baseline"] = _check(F.Verdict(
            bool(ok), None if ok else f"held-out Sharpe {h_sharpe:.2f} <= {g.baseline_quantile:.0%} quantile {bar:.2f} of "
            f"{pool.size} random genomes with {row['complexity']} gene(s)",
            {"sharpe": h_sharpe, "quantile": bar, "percentile": percentile, "random_median": float(np.median(pool)) if pool.size else None,
             "random": int(pool.size), "complexity": row["complexity"]}))  # fmt: skip
        reasons = [f"{name}: {c['reason']}" for name, c in checks.items() if not c["passed"]]
        judged.append({"rank": rank, "genome_key": key, "holdout_metrics": hm, "checks": checks,
                       "passed": not reasons, "reasons": reasons})  # fmt: skip
    finalist_holdout = [_sharpe(j["holdout_metrics"]) for j in judged]
    random_holdout = [s for pool in baseline_sharpes.values() for s in pool]
    summary.update(
        passed=sum(j["passed"] for j in judged),
        finalists_holdout_median_sharpe=float(np.median(finalist_holdout)),
        random_holdout_median_sharpe=float(np.median(random_holdout)) if random_holdout else None,
        wf_layout={"train_days": train_days, "test_days": test_days, "step_days": step, "windows": len(windows)},
        dsr_trials={
            "n_trials": trials.n_trials,
            "sr_variance": trials.variance,
            "sr_variance_all": F.TrialSharpes.of(returns).variance,
        },
    )
    summary["beats_random"] = (
        bool(random_holdout) and summary["finalists_holdout_median_sharpe"] > summary["random_holdout_median_sharpe"]
    )
    summary["verdict"] = (f"{summary['passed']} of {len(judged)} finalist(s) passed every guard rail" if summary["passed"]
                          else "every finalist was rejected by the guard rails")  # fmt: skip
    _store(home, run_id, judged, summary)
    return summary


def dsr_trials(home: Home, run_id: int, searched: list[dict], returns: list[np.ndarray]) -> F.TrialSharpes:
    """The DSR's multiple-testing population: N = every genome the run evaluated; the Sharpe variance of the trials =
    that of generation 0, the random genomes no selection has touched (docs/specs.md#discovery-guard-rails).

    The search's later generations cluster around its best genomes: their Sharpe spread measures what selection
    found, not how far skill-less trials scatter, and would deflate a real edge away. Falls back to every genome's
    variance when generation 0 has fewer than two finite Sharpe ratios.
    """
    with StateManager(home.db_path) as state:
        first = state.find("discovery_generations", run_id=run_id, generation=0)
    keys = set(first[0]["population"]) if first else set()
    initial = F.TrialSharpes.of([r for row, r in zip(searched, returns, strict=True) if row["genome_key"] in keys])
    every = F.TrialSharpes.of(returns)
    finite = sum(row["genome_key"] in keys and row["sharpe_ratio"] is not None for row in searched)
    if finite < 2:
        return every
    return F.TrialSharpes(every.n_trials, initial.variance, initial.mean)


def _each(pool, tasks: list, own: bool):
    try:
        if tasks:
            yield from pool.run(tasks)
    finally:
        if own:
            pool.close()


def _sharpe(metrics: dict | None) -> float:
    """A run's Sharpe for comparisons: no trades or a flat curve count as 0."""
    v = (metrics or {}).get("sharpe_ratio")
    return 0.0 if v is None or not math.isfinite(float(v)) else float(v)


def _check(v: F.Verdict) -> dict:
    return {"passed": bool(v.passed), "reason": v.reason, "figures": {k: clean(x) for k, x in v.figures.items()}}


def _store_baseline(state: StateManager, run_id: int, key: str, genome, result: dict, config: DiscoveryConfig) -> dict:
    from vibe_quant.discovery.search import document_name

    m = result["metrics"]
    row = {"run_id": run_id, "genome_key": key, "role": "baseline", "generation": -1, "genome": to_json(genome),
           "document": render(genome, config.timeframe, document_name(run_id, key)), "complexity": genome.complexity,
           "description": describe(genome), "metrics": {k: clean(v) for k, v in m.items()} if m is not None else None,
           "sharpe_ratio": _sharpe(m), "total_trades": (m or {}).get("total_trades"),
           "daily_returns": returns_blob(result.get("returns")), "engine": result.get("engine"),
           "error_message": result["error"], "created_at": now_iso()}  # fmt: skip
    state.insert("discovery_genomes", row)
    return row


def _store(home: Home, run_id: int, judged: list[dict], summary: dict) -> None:
    with StateManager(home.db_path) as state, state.transaction():
        state.conn.execute("DELETE FROM discovery_finalists WHERE run_id = ?", (run_id,))
        for j in judged:
            state.insert("discovery_finalists", {"run_id": run_id, "rank": j["rank"], "genome_key": j["genome_key"],
                                                 "holdout_metrics": {k: clean(v) for k, v in (j["holdout_metrics"] or {}).items()} or None,
                                                 "checks": j["checks"], "passed": j["passed"], "reasons": j["reasons"]})  # fmt: skip
        state.update("discovery_runs", run_id, {"summary": summary})
