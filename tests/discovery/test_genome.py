"""Genomes render to documents our validator accepts; the operators keep them valid (property tests)."""

from __future__ import annotations

import random

import msgspec
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vibe_quant.discovery.config import DiscoveryConfig
from vibe_quant.discovery.genome import (
    TEMPLATES,
    ExitRule,
    Gene,
    GenomeDoc,
    Space,
    check,
    describe,
    from_json,
    genome_key,
    random_genome,
    render,
    repair,
    to_json,
)
from vibe_quant.discovery.operators import crossover, mutate, trim
from vibe_quant.dsl.loader import load_text
from vibe_quant.errors import ConfigError

SPACE = Space("15m", higher=("1h", "4h"))
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(seeds)
def test_every_random_genome_renders_to_a_valid_document(seed: int) -> None:
    g = random_genome(random.Random(seed), SPACE)
    assert 1 <= g.complexity <= SPACE.max_genes
    doc = render(g, "15m", "prop")
    assert check(doc) is None
    # The YAML a user exports goes through the file loader (line-located checks) too.
    analysis = load_text(yaml.safe_dump(doc, sort_keys=False), "prop.yaml")
    assert analysis.name == "prop"
    assert from_json(to_json(g)) == g


@settings(max_examples=200, deadline=None)
@given(seeds, seeds)
@example(720, 3887989)  # crossover left a child with exit genes only; removing a gene then popped an empty list
def test_operators_keep_genomes_valid(seed_a: int, seed_b: int) -> None:
    rng = random.Random(seed_a)
    a, b = random_genome(rng, SPACE), random_genome(random.Random(seed_b), SPACE)
    random.seed(seed_a ^ seed_b)
    ca, cb = crossover(a, b, SPACE)
    for child in (ca, cb):
        mutant, op = mutate(child, SPACE)
        for g in (trim(child, SPACE), trim(mutant, SPACE)):
            assert g.entry, op
            assert g.complexity <= SPACE.max_genes, op
            assert len(g.exit) <= SPACE.max_exit_genes, op
            assert check(render(g, "15m")) is None, (op, describe(g))


def test_complexity_is_honoured_and_the_pool_respected() -> None:
    space = Space("5m", indicators=("RSI", "EMA"), max_genes=3)
    rng = random.Random(7)
    random.seed(7)
    for genes in (1, 2, 3):
        for _ in range(30):
            g = random_genome(rng, space, genes)
            assert g.complexity == genes
            assert {x.indicator for x in (*g.entry, *g.exit)} <= {"RSI", "EMA"}
            assert {x.other[0] for x in (*g.entry, *g.exit) if x.other} <= {"EMA"}  # pairs stay in the pool
            mutant = trim(mutate(g, space)[0], space)
            assert {x.other[0] for x in (*mutant.entry, *mutant.exit) if x.other} <= {"EMA"}


def test_short_side_mirrors_the_long_side() -> None:
    g = GenomeDoc(entry=[Gene(indicator="RSI", params={"period": 14}, op="<", threshold=30.0),
                         Gene(indicator="EMA", params={"period": 20}, op="crosses_above", other=("SMA", 100)),
                         Gene(indicator="DONCHIAN", params={"period": 20}, output="upper", op=">")],
                  direction="both", stop=ExitRule("atr_fixed", 2.0), take=ExitRule("risk_reward", 2.0),
                  session=(22, 4))  # fmt: skip
    doc = render(g, "1h", "mirror")
    assert doc["entry_conditions"]["long"] == [
        "rsi_14 < 30",
        "ema_20 crosses_above sma_100",
        "close > donchian_20.upper[1]",
    ]
    assert doc["entry_conditions"]["short"] == [
        "rsi_14 > 70",
        "ema_20 crosses_below sma_100",
        "close < donchian_20.lower[1]",
    ]
    assert doc["stop_loss"] == {"type": "atr_fixed", "atr_multiplier": 2.0, "indicator": "atr"}
    assert doc["take_profit"] == {"type": "risk_reward", "ratio": 2.0}
    assert doc["time_filters"]["allowed_sessions"] == [{"start": "22:00", "end": "02:00", "timezone": "UTC"}]
    assert check(doc) is None
    assert describe(g).startswith("both: RSI(14) < 30 AND EMA(20) crosses_above SMA(100)")


def test_the_key_is_the_rules_not_the_name() -> None:
    g = random_genome(random.Random(3), SPACE)
    assert genome_key(render(g, "15m", "a")) == genome_key(render(g, "15m", "b"))
    other = msgspec.structs.replace(g, direction="long" if g.direction != "long" else "short")
    assert genome_key(render(other, "15m")) != genome_key(render(g, "15m"))


def test_repair_fixes_what_the_operators_can_break() -> None:
    rsi = Gene(indicator="RSI", params={"period": 14}, op="<", threshold=30.0)
    broken = GenomeDoc(entry=[], exit=[rsi], take=ExitRule("risk_reward", 2.0))  # no entry, target without stop
    fixed = repair(broken)
    assert (fixed.entry, fixed.exit, fixed.take) == ([rsi], [], None)
    self_pair = Gene(indicator="EMA", params={"period": 20}, op=">", other=("EMA", 20))
    assert repair(GenomeDoc(entry=[self_pair])).entry[0].other == ("EMA", 30)
    valid = random_genome(random.Random(11), SPACE)
    assert repair(valid) is valid
    assert repair(GenomeDoc(entry=[rsi, rsi], exit=[rsi])).complexity == 2  # a copy is not a rule
    genes = [Gene(indicator="RSI", params={"period": p}, op="<", threshold=30.0) for p in (5, 7, 9, 14, 21, 28)]
    long = GenomeDoc(entry=genes[:4], exit=genes[4:])
    assert (trim(long, SPACE).complexity, len(trim(long, SPACE).exit)) == (5, 1)


def test_bad_configuration_names_the_fix() -> None:
    import datetime as dt

    base = {"symbols": ("FILUSDT",), "timeframe": "15m", "start": dt.date(2023, 8, 1), "end": dt.date(2023, 8, 31)}
    with pytest.raises(ConfigError, match="multiple of 4"):
        DiscoveryConfig(**base, population=30)
    with pytest.raises(ConfigError, match=r"RSX.*Did you mean .RSI."):
        DiscoveryConfig(**base, indicators=("RSX",))
    with pytest.raises(ConfigError, match="--higher 5m: must be a multiple"):
        DiscoveryConfig(**base, higher_timeframes=("5m",))
    with pytest.raises(ConfigError, match="--holdout-days 29 leaves 2 training"):
        DiscoveryConfig(**base, holdout_days=29)
    cfg = DiscoveryConfig(**base)
    assert (cfg.held_out, cfg.train_end, cfg.holdout_start) == (9, dt.date(2023, 8, 22), dt.date(2023, 8, 23))
    assert set(TEMPLATES) == set(cfg.indicators)
