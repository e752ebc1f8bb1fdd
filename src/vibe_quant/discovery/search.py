"""The discovery search: NSGA-II over DSL genomes on the training period, checkpointed each generation
(docs/specs.md#discovery-search).

Generation 0 is ``population`` random valid genomes. Each next generation: DEAP's dominance and
crowding tournament (``selTournamentDCD``) picks parents, crossover and mutation make as many
offspring, :func:`~vibe_quant.discovery.operators.trim` repairs them and our validator checks
each one's DSL document (a rejected offspring is replaced by a random genome of the same
complexity; both counted), the offspring are evaluated, and ``selNSGA2`` keeps the best
``population`` of parents + offspring (elitist: a genome survives until better ones push it out).

Fitness: every genome is backtested in screening mode on the training period by the batch runner
(process pool or Ray; the compiled perp kernel, NautilusTrader where the kernel cannot run it).
Objectives (maximised): Sharpe minus ``occam`` per gene beyond the first, 1 - max drawdown,
profit factor capped at :data:`PF_CAP`. The hard filters are constraints: a genome failing them
is dominated by every genome passing them, and among failing genomes the smaller violation wins
(Deb's constrained domination, expressed as fitness values DEAP's operators already compare).

Cache: a genome's key is the hash of its rendered rules; a run evaluates each key once and every
later occurrence reads the stored row. Resume: the last checkpoint holds the population (keys)
and Python's random state; the search goes on from there and ends exactly as an uninterrupted run.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import msgspec
import numpy as np
from deap import tools

from vibe_quant.backtest.persist import Heartbeat, clean, now_iso
from vibe_quant.batch.executors import EXECUTORS, WorkerPool
from vibe_quant.batch.worker import WorkerSpec
from vibe_quant.discovery.config import DiscoveryConfig, parse_discovery
from vibe_quant.discovery.genome import (
    Gene,
    GenomeDoc,
    check,
    describe,
    from_json,
    genome_key,
    random_genome,
    render,
    to_json,
)
from vibe_quant.discovery.operators import Individual, crossover, mutate, trim
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.screening.pareto import rejection
from vibe_quant.screening.pipeline import returns_blob
from vibe_quant.state import StateManager

log = logging.getLogger(__name__)

PF_CAP = 5.0  # a profit factor above this (or infinite: no losing trade) counts as this
INFEASIBLE = -1e6  # every objective of a genome failing the hard filters sits below this
ERROR_VIOLATION = 10.0
STALE_HEARTBEAT_S = 60

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class Cancelled(UserError):
    """The user stopped the run (Ctrl-C or SIGTERM); the last generation checkpoint is kept."""

    exit_code = 130


@dataclass
class Evaluated:
    key: str
    feasible: bool
    violation: float
    objectives: tuple[float, float, float]
    sharpe: float | None


@dataclass
class GenerationStats:
    generation: int
    evaluated: int = 0  # genomes run in this generation
    cache_hits: int = 0  # offspring answered by the cache
    repaired: int = 0
    rejected: int = 0
    errors: int = 0
    mutations: Counter = field(default_factory=Counter)


def document_name(run_id: int, key: str) -> str:
    return f"disc{run_id}_{key[:8]}"


def fitness_of(metrics: dict | None, complexity: int, config: DiscoveryConfig) -> tuple[bool, float, tuple]:
    """(feasible, violation, objectives) of one evaluation (docs/specs.md#discovery-search)."""
    if metrics is None:
        return False, ERROR_VIOLATION, (INFEASIBLE - ERROR_VIOLATION,) * 3
    f = config.filters
    trades = metrics.get("total_trades") or 0
    dd, pf, sharpe = (_num(metrics.get(k)) for k in ("max_drawdown", "profit_factor", "sharpe_ratio"))
    violation = max(0.0, (f.min_trades - trades) / max(f.min_trades, 1))
    violation += max(0.0, dd - f.max_drawdown) if not math.isnan(dd) else 1.0
    violation += max(0.0, f.min_profit_factor - pf) if not math.isnan(pf) else 1.0
    feasible = rejection(metrics, f) is None
    if not feasible:
        violation = max(violation, 1e-6) + (1.0 if math.isnan(sharpe) else 0.0)
        return False, violation, (INFEASIBLE - violation,) * 3
    penalised = sharpe - config.occam * (complexity - 1)
    return True, 0.0, (penalised, 1.0 - dd, min(pf, PF_CAP))


def _num(v) -> float:
    return math.nan if v is None else float(v)


# -- run rows -------------------------------------------------------------------------------------------------------


def create_discovery(state: StateManager, config: DiscoveryConfig) -> int:
    """Insert a pending discovery run and return its id."""
    return state.insert("discovery_runs", {"created_at": now_iso(), "config": msgspec.to_builtins(config)})


def load_discovery(state: StateManager, run_id: int) -> tuple[DiscoveryConfig, dict]:
    row = state.get("discovery_runs", run_id)
    if row is None:
        raise UserError(f"no discovery run {run_id} in the state database (vq discover list)")
    return parse_discovery(row["config"]), row


def _refuse_if_live(row: dict) -> None:
    if row["status"] != "running" or not row.get("heartbeat_at") or row.get("pid") is None:
        return
    age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(row["heartbeat_at"])).total_seconds()
    try:
        os.kill(row["pid"], 0)
        alive = row["pid"] != os.getpid()
    except (ProcessLookupError, PermissionError):
        alive = False
    if alive and age < STALE_HEARTBEAT_S:
        raise UserError(
            f"discovery run {row['id']} is running (pid {row['pid']}); stop it first (kill {row['pid']}) or wait"
        )


# -- evaluation -----------------------------------------------------------------------------------------------------


class Workers:
    """A run's batch workers over its whole period, started on first use and kept for the search and the guard rails
    (they load the data and warm their engine once). Every search point names the training period, so the search
    never reads a held-out bar; the guard rails' points name their windows and the held-out period."""

    def __init__(self, home: Home, config: DiscoveryConfig, workers: int = 2, executor: str = "process",
                 specs_path: str | None = None, address: str | None = None):  # fmt: skip
        if executor not in EXECUTORS:
            raise UserError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
        if workers < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        self.home, self.config, self.workers = home, config, workers
        self.executor, self.specs_path, self.address = executor, specs_path, address
        self.pool: WorkerPool | None = None

    def run(self, points: list[tuple]) -> Iterator[dict]:
        if self.pool is None:
            cfg = self.config
            anchor = render(_ANCHOR, cfg.timeframe, "anchor")  # the base run's document: every point brings its own
            spec = WorkerSpec(str(self.home.root), self.specs_path,
                              msgspec.to_builtins(cfg.backtest(anchor, cfg.start, cfg.end)), engine="sim")  # fmt: skip
            self.pool = WorkerPool(spec, self.workers, self.executor, self.address)
        return self.pool.run(points)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close(wait=exc[0] is None)

    def close(self, wait: bool = True) -> None:
        if self.pool is not None:
            self.pool.close(wait)
            self.pool = None


_ANCHOR = GenomeDoc(entry=[Gene(indicator="RSI", params={"period": 14}, op="<", threshold=30.0)])


class Evaluator:
    """Evaluates genomes on the training period through the batch runner; every key once per run."""

    def __init__(self, home: Home, run_id: int, config: DiscoveryConfig, workers: Workers):
        self.home, self.run_id, self.config, self.workers = home, run_id, config, workers
        self.known: dict[str, Evaluated] = {}
        with StateManager(home.db_path) as state:
            for row in state.find("discovery_genomes", run_id=run_id, role="search"):
                self.known[row["genome_key"]] = Evaluated(row["genome_key"], bool(row["feasible"]), row["violation"],
                                                          tuple(row["objectives"]), row["sharpe_ratio"])  # fmt: skip

    def evaluate(self, genomes: list[tuple[str, GenomeDoc, dict]], stats: GenerationStats,
                 on_progress: Progress | None = None) -> dict[str, Evaluated]:  # fmt: skip
        """Evaluate the keys not evaluated yet (in order, each once); return every key's evaluation."""
        todo: dict[str, tuple[GenomeDoc, dict]] = {}
        for key, genome, doc in genomes:
            if key in self.known or key in todo:
                stats.cache_hits += 1
            else:
                todo[key] = (genome, doc)
        if todo:
            # The search's randomness is Python's global `random` (DEAP's); a library the workers start (Ray draws
            # from it when it starts) must not move it, or the executor would change the run.
            rng_state = random.getstate()
            try:
                self._run(todo, stats, on_progress)
            finally:
                random.setstate(rng_state)
        return {key: self.known[key] for key, _, _ in genomes}

    def _run(self, todo: dict, stats: GenerationStats, on_progress: Progress | None) -> None:
        keys = list(todo)
        training = (self.config.start.isoformat(), self.config.train_end.isoformat())
        points = [(i, {}, training, todo[k][1]) for i, k in enumerate(keys)]
        with StateManager(self.home.db_path) as state:
            for n, result in enumerate(self.workers.run(points), 1):
                key = keys[result["index"]]
                genome, doc = todo[key]
                self.known[key] = self._store(state, key, genome, doc, result, stats.generation)
                stats.evaluated += 1
                stats.errors += result["error"] is not None
                if on_progress is not None:
                    on_progress(f"generation {stats.generation}", n, len(points))

    def _store(
        self, state: StateManager, key: str, genome: GenomeDoc, doc: dict, result: dict, generation: int
    ) -> Evaluated:
        m = result["metrics"]
        feasible, violation, objectives = fitness_of(m, genome.complexity, self.config)
        values = {"sharpe_ratio": _finite(m, "sharpe_ratio"), "max_drawdown": _finite(m, "max_drawdown"),
                  "profit_factor": _finite(m, "profit_factor"), "total_trades": (m or {}).get("total_trades")}  # fmt: skip
        with state.transaction():
            state.insert("discovery_genomes", {
                "run_id": self.run_id, "genome_key": key, "role": "search", "generation": generation,
                "genome": to_json(genome), "document": doc, "complexity": genome.complexity,
                "description": describe(genome), "metrics": {k: clean(v) for k, v in m.items()} if m is not None else None,
                **values, "feasible": feasible, "violation": violation, "objectives": list(objectives),
                "daily_returns": returns_blob(result.get("returns")), "engine": result.get("engine"),
                "error_message": result["error"], "created_at": now_iso(),
            })  # fmt: skip
            state.conn.execute("UPDATE discovery_runs SET evaluated = evaluated + 1 WHERE id = ?", (self.run_id,))
        return Evaluated(key, feasible, violation, objectives, values["sharpe_ratio"])


def _finite(m: dict | None, key: str) -> float | None:
    v = (m or {}).get(key)
    return None if v is None or not math.isfinite(float(v)) else float(v)


# -- the search -----------------------------------------------------------------------------------------------------


@dataclass
class SearchSummary:
    run_id: int
    generations: int  # generations completed (0 = the initial population only)
    evaluated: int  # genomes run in the whole run
    cache_hits: int
    elapsed_s: float
    resumed_from: int | None = None  # the checkpointed generation this call resumed after
    history: list[dict] = field(default_factory=list)


def _individual(genome: GenomeDoc, config: DiscoveryConfig, run_id: int) -> tuple[Individual, dict]:
    key = genome_key(render(genome, config.timeframe))
    doc = render(genome, config.timeframe, document_name(run_id, key))
    return Individual(genome, key), doc


def _valid_random(config: DiscoveryConfig, genes: int | None = None) -> GenomeDoc:
    space = config.space
    for _ in range(100):
        g = random_genome(random, space, genes)
        if check(render(g, config.timeframe)) is None:
            return g
    raise RuntimeError("no valid random genome in 100 draws: the genome grammar is broken")


def initial_population(config: DiscoveryConfig, run_id: int) -> list[tuple[Individual, dict]]:
    """`population` random valid genomes, distinct where the pool allows."""
    out, seen = [], set()
    for _ in range(50 * config.population):
        ind, doc = _individual(_valid_random(config), config, run_id)
        if ind.key not in seen:
            seen.add(ind.key)
            out.append((ind, doc))
        if len(out) == config.population:
            return out
    while len(out) < config.population:  # a tiny pool: duplicates (the cache answers them)
        out.append(_individual(_valid_random(config), config, run_id))
    return out


def make_offspring(parents: list[Individual], config: DiscoveryConfig, run_id: int,
                   stats: GenerationStats) -> list[tuple[Individual, dict]]:  # fmt: skip
    space = config.space
    chosen = tools.selTournamentDCD(parents, len(parents))
    children: list[GenomeDoc] = []
    for a, b in zip(chosen[::2], chosen[1::2], strict=True):
        ga, gb = a.genome, b.genome
        if random.random() < config.crossover:
            ga, gb = crossover(ga, gb, space)
        for g in (ga, gb):
            if random.random() < config.mutation:
                g, op = mutate(g, space)
                stats.mutations[op] += 1
            children.append(g)
    out = []
    for g in children:
        fixed = trim(g, space)
        stats.repaired += fixed != g
        if check(render(fixed, config.timeframe)) is not None:
            stats.rejected += 1
            fixed = _valid_random(config, fixed.complexity)
        out.append(_individual(fixed, config, run_id))
    return out


def _assign(pairs: list[tuple[Individual, dict]], evaluated: dict[str, Evaluated]) -> list[Individual]:
    for ind, _ in pairs:
        ind.fitness.values = evaluated[ind.key].objectives
    return [ind for ind, _ in pairs]


def generation_stats(pop: list[Individual], evaluated: dict[str, Evaluated], stats: GenerationStats) -> dict:
    feasible = [ind for ind in pop if evaluated[ind.key].feasible]
    out = {"feasible": len(feasible), "population": len(pop), "evaluated": stats.evaluated, "cache_hits": stats.cache_hits,
           "repaired": stats.repaired, "rejected": stats.rejected, "errors": stats.errors,
           "mutations": dict(stats.mutations)}  # fmt: skip
    for j, name in enumerate(("fitness_sharpe", "one_minus_dd", "profit_factor")):
        values = np.array([ind.fitness.values[j] for ind in feasible])
        out[name] = ({"best": float(values.max()), "mean": float(values.mean()), "worst": float(values.min())}
                     if values.size else None)  # fmt: skip
    sharpes = np.array([evaluated[ind.key].sharpe for ind in feasible if evaluated[ind.key].sharpe is not None])
    out["sharpe"] = ({"best": float(sharpes.max()), "mean": float(sharpes.mean()), "worst": float(sharpes.min())}
                     if sharpes.size else None)  # fmt: skip
    return out


def first_front(pop: list[Individual], evaluated: dict[str, Evaluated]) -> list[str]:
    feasible = [ind for ind in pop if evaluated[ind.key].feasible]
    if not feasible:
        return []
    front = tools.sortNondominated(feasible, len(feasible), first_front_only=True)[0]
    return sorted({ind.key for ind in front}, key=[ind.key for ind in pop].index)


def _checkpoint(state: StateManager, run_id: int, generation: int, pop: list[Individual], front: list[str],
                stats: dict) -> None:  # fmt: skip
    version, internal, gauss = random.getstate()
    with state.transaction():
        state.insert("discovery_generations", {
            "run_id": run_id, "generation": generation, "population": [ind.key for ind in pop], "front": front,
            "stats": stats, "rng_state": [version, list(internal), gauss], "created_at": now_iso(),
        })  # fmt: skip
        state.conn.execute("UPDATE discovery_runs SET generation = ?, cache_hits = cache_hits + ? WHERE id = ?",
                           (generation, stats["cache_hits"], run_id))  # fmt: skip


def _restore(
    state: StateManager, run_id: int, config: DiscoveryConfig
) -> tuple[int, list[tuple[Individual, dict]]] | None:
    rows = state.find("discovery_generations", order_by="generation", run_id=run_id)
    if not rows:
        return None
    last = rows[-1]
    version, internal, gauss = last["rng_state"]
    random.setstate((version, tuple(internal), gauss))
    genomes = {
        r["genome_key"]: from_json(r["genome"]) for r in state.find("discovery_genomes", run_id=run_id, role="search")
    }
    pop = []
    for key in last["population"]:
        ind, doc = _individual(genomes[key], config, run_id)
        pop.append((ind, doc))
    return last["generation"], pop


def run_search(home: Home, run_id: int, workers: int | Workers = 2, executor: str = "process",
               specs_path: str | None = None, address: str | None = None, on_progress: Progress | None = None,
               on_generation: Callable[[dict], None] | None = None) -> SearchSummary:  # fmt: skip
    """Run (or resume) the search of discovery run `run_id` to its last generation.

    Raises
    ------
    UserError
        No such run, a bad option, or the run is live in another process.
    Cancelled
        Ctrl-C or SIGTERM: the last generation checkpoint is kept; run it again to resume.
    """
    with StateManager(home.db_path) as state:
        config, row = load_discovery(state, run_id)
    own = not isinstance(workers, Workers)  # a pool of our own is closed at the end; a caller's is kept
    pool = Workers(home, config, workers, executor, specs_path, address) if own else workers
    with StateManager(home.db_path) as state:
        _refuse_if_live(row)
        restored = _restore(state, run_id, config)
    evaluator = Evaluator(home, run_id, config, pool)
    t0 = time.perf_counter()
    history: list[dict] = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with Heartbeat(home.db_path, run_id, table="discovery_runs"), StateManager(home.db_path) as state:
            if restored is None:
                random.seed(config.seed)
                stats = GenerationStats(0)
                pairs = initial_population(config, run_id)
                evaluated = evaluator.evaluate([(i.key, i.genome, d) for i, d in pairs], stats, on_progress)
                pop = tools.selNSGA2(_assign(pairs, evaluated), config.population)  # assigns the crowding distances
                history.append(_finish_generation(state, run_id, pop, evaluator, stats, on_generation))
                start = 1
            else:
                gen, pairs = restored
                evaluated = evaluator.evaluate([(i.key, i.genome, d) for i, d in pairs], GenerationStats(gen))
                pop = _assign(pairs, evaluated)
                start = gen + 1
            for generation in range(start, config.generations + 1):
                stats = GenerationStats(generation)
                # Fronts and crowding distances of the population alone, from its checkpointed order: what a
                # resumed run computes too, so resuming changes nothing.
                pop = tools.selNSGA2(pop, len(pop))
                children = make_offspring(pop, config, run_id, stats)
                evaluated = evaluator.evaluate([(i.key, i.genome, d) for i, d in children], stats, on_progress)
                offspring = _assign(children, evaluated)
                pop = tools.selNSGA2(pop + offspring, config.population)
                history.append(_finish_generation(state, run_id, pop, evaluator, stats, on_generation))
    except KeyboardInterrupt:
        pool.close(wait=False)
        with StateManager(home.db_path) as state:
            state.update("discovery_runs", run_id, {"status": "cancelled", "completed_at": now_iso(),
                                                    "error_message": "cancelled; resume with vq discover run --resume"})  # fmt: skip
            done = state.get("discovery_runs", run_id)["generation"]
        raise Cancelled(f"discovery run {run_id} cancelled after generation {done}; resume with "
                        f"`vq discover run --resume {run_id}`") from None  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
        if own:
            pool.close()
    with StateManager(home.db_path) as state:
        row = state.get("discovery_runs", run_id)
    return SearchSummary(run_id, config.generations, row["evaluated"], row["cache_hits"], time.perf_counter() - t0,
                         restored[0] if restored else None, history)  # fmt: skip


def _finish_generation(state: StateManager, run_id: int, pop: list[Individual], evaluator: Evaluator,
                       stats: GenerationStats, on_generation) -> dict:  # fmt: skip
    evaluated = {ind.key: evaluator.known[ind.key] for ind in pop}
    figures = generation_stats(pop, evaluated, stats)
    front = first_front(pop, evaluated)
    _checkpoint(state, run_id, stats.generation, pop, front, figures)
    figures = {"generation": stats.generation, "front": len(front), **figures}
    if on_generation is not None:
        on_generation(figures)
    return figures


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
