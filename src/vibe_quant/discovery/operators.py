"""Genetic operators on genomes (docs/specs.md#discovery-search), for DEAP's NSGA-II.

Crossover is DEAP's messy one-point crossover on the gene lists (each parent cut at its own
point, so lengths change) plus a uniform swap of the exit block (direction, stop, target,
session). Mutation applies one operator: swap an indicator, step a parameter along its ladder,
change the operator, step the threshold (or the other moving average), change the timeframe,
add or remove a gene, change the exits, change the direction, toggle the session. Offspring
may break the genome's bounds (more than ``max_genes``, no entry gene, a risk-reward target without
a stop): :func:`trim` repairs them, and the search counts each repair and each offspring our
validator still rejects.

Randomness: DEAP's selection and crossover draw from Python's global :mod:`random`, so the
operators do too; the search seeds it and checkpoints its state each generation.
"""

from __future__ import annotations

import random

import msgspec
from deap import base, tools

from vibe_quant.discovery.genome import (
    EXIT_VALUES,
    OPS,
    PERIODS,
    SESSION_HOURS,
    SESSION_STARTS,
    STOP_TYPES,
    TAKE_TYPES,
    TEMPLATES,
    Gene,
    GenomeDoc,
    Space,
    _fix_params,
    random_exit,
    random_gene,
    repair,
)


class Fitness(base.Fitness):
    """Three objectives, all maximised: Sharpe minus the Occam penalty, 1 - max drawdown, capped profit factor."""

    weights = (1.0, 1.0, 1.0)


class Individual:
    """A genome in DEAP's shape: ``.fitness`` for the selection operators."""

    __slots__ = ("fitness", "genome", "key")

    def __init__(self, genome: GenomeDoc, key: str = ""):
        self.genome = genome
        self.key = key
        self.fitness = Fitness()

    def __repr__(self) -> str:
        return f"Individual({self.key}, {self.fitness.values})"


def crossover(a: GenomeDoc, b: GenomeDoc, space: Space) -> tuple[GenomeDoc, GenomeDoc]:
    ea, eb = list(a.entry), list(b.entry)
    tools.cxMessyOnePoint(ea, eb)
    xa, xb = list(a.exit), list(b.exit)
    if random.random() < 0.5:
        xa, xb = xb, xa
    child_a = msgspec.structs.replace(a, entry=ea, exit=xa)
    child_b = msgspec.structs.replace(b, entry=eb, exit=xb)
    for field in ("direction", "stop", "take", "session"):
        if random.random() < 0.5:
            va, vb = getattr(child_a, field), getattr(child_b, field)
            child_a = msgspec.structs.replace(child_a, **{field: vb})
            child_b = msgspec.structs.replace(child_b, **{field: va})
    return child_a, child_b


def trim(g: GenomeDoc, space: Space) -> GenomeDoc:
    """At most ``space.max_genes`` genes (exits dropped first, then the last entries), at least one entry gene."""
    entry, exit_ = list(g.entry), list(g.exit)[: space.max_exit_genes]
    while len(entry) + len(exit_) > space.max_genes:
        if exit_:
            exit_.pop()
        else:
            entry.pop()
    if not entry:
        entry = [exit_.pop(0)] if exit_ else [random_gene(random, space)]
    return repair(msgspec.structs.replace(g, entry=entry, exit=exit_))


def _step(ladder: tuple, value) -> object:
    """A neighbour of `value` on `ladder` (or a random rung when it is not on it)."""
    if value not in ladder:
        return random.choice(ladder)
    i = ladder.index(value)
    moves = [j for j in (i - 1, i + 1) if 0 <= j < len(ladder)]
    return ladder[random.choice(moves)] if moves else value


def _mutate_gene(x: Gene, space: Space, what: str) -> Gene:
    t = TEMPLATES[x.indicator]
    if what == "indicator":
        return random_gene(random, space)
    if what == "param" and t.params:
        name = random.choice(list(t.params))
        params = _fix_params(t, {**x.params, name: _step(t.params[name], x.params.get(name))})
        return msgspec.structs.replace(x, params=params)
    if what == "op":
        return msgspec.structs.replace(x, op=random.choice([o for o in OPS if o != x.op]))
    if what == "operand":
        if t.kind == "oscillator":
            return msgspec.structs.replace(x, threshold=_step(t.thresholds, x.threshold))
        if t.pairs:
            if x.other is None:
                return msgspec.structs.replace(x, other=(random.choice(space.moving_averages), random.choice(PERIODS)))
            if random.random() < 0.3:
                return msgspec.structs.replace(x, other=None)
            return msgspec.structs.replace(x, other=(x.other[0], _step(PERIODS, x.other[1])))
        return msgspec.structs.replace(x, output=random.choice(t.outputs))
    if what == "timeframe" and len(space.timeframes) > 1:
        return msgspec.structs.replace(x, timeframe=random.choice([tf for tf in space.timeframes if tf != x.timeframe]))
    return msgspec.structs.replace(x, op=random.choice([o for o in OPS if o != x.op]))


GENE_MUTATIONS = ("indicator", "param", "param", "op", "operand", "operand", "timeframe")
MUTATIONS = ("gene", "gene", "gene", "add", "remove", "exits", "direction", "session")


def mutate(g: GenomeDoc, space: Space) -> tuple[GenomeDoc, str]:
    """One mutation of `g`; returns the mutant and the operator's name."""
    what = random.choice(MUTATIONS)
    entry, exit_ = list(g.entry), list(g.exit)
    if what == "add" and len(entry) + len(exit_) >= space.max_genes:
        what = "remove"
    if what in ("remove", "gene") and len(entry) + len(exit_) <= (1 if what == "remove" else 0):
        what = "add"
    if what == "gene":
        genes = entry + exit_
        i = random.randrange(len(genes))
        kind = random.choice(GENE_MUTATIONS)
        new = _mutate_gene(genes[i], space, kind)
        if i < len(entry):
            entry[i] = new
        else:
            exit_[i - len(entry)] = new
        what = f"gene:{kind}"
    elif what == "add":
        if random.random() < 0.7 or len(exit_) >= space.max_exit_genes:
            entry.insert(random.randint(0, len(entry)), random_gene(random, space))
        else:
            exit_.append(random_gene(random, space))
    elif what == "remove":
        if exit_ and (random.random() < 0.5 or len(entry) <= 1):  # crossover may leave no entry gene
            exit_.pop(random.randrange(len(exit_)))
        else:
            entry.pop(random.randrange(len(entry)))
    elif what == "exits":
        return _mutate_exits(g), what
    elif what == "direction":
        return msgspec.structs.replace(
            g, direction=random.choice([d for d in ("long", "short", "both") if d != g.direction])
        ), what
    elif what == "session":
        session = None if g.session is not None else (random.choice(SESSION_STARTS), random.choice(SESSION_HOURS))
        return msgspec.structs.replace(g, session=session), what
    return msgspec.structs.replace(g, entry=entry, exit=exit_), what


def _mutate_exits(g: GenomeDoc) -> GenomeDoc:
    if random.random() < 0.5:  # the stop
        stop = g.stop
        if stop is None:
            stop = random_exit(random, STOP_TYPES)
        elif random.random() < 0.25:
            stop = None
        else:
            stop = msgspec.structs.replace(stop, value=_step(EXIT_VALUES[stop.type], stop.value))
        return msgspec.structs.replace(g, stop=stop)
    take = g.take
    if take is None:
        take = random_exit(random, TAKE_TYPES if g.stop is not None else TAKE_TYPES[:2])
    elif random.random() < 0.25:
        take = None
    else:
        take = msgspec.structs.replace(take, value=_step(EXIT_VALUES[take.type], take.value))
    return msgspec.structs.replace(g, take=take)
