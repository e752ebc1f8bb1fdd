"""Strategy genomes: variable-length lists of (indicator, parameters, condition, operand) genes that
render to DSL documents (docs/specs.md#discovery-genome).

A gene is one condition on one indicator: ``RSI(14) < 30``, ``close crosses_above EMA(50)``,
``EMA(20) > SMA(100)``. A genome holds 1-5 of them: the entry genes (AND-ed), optional exit
genes (AND-ed), a direction (long, short or both: the short side is each gene's mirror), an
optional stop-loss and take-profit, and an optional UTC session filter. Every value a gene takes
comes from a ladder inside the indicator's own parameter schema (``dsl.indicators``), so a
genome is always a point of a finite, documented space, and identical genomes render to the
same canonical document (the evaluation cache's key).

:func:`render` gives the DSL document; :func:`check` runs our validator on it (no look-ahead,
valid references: the same checks ``vq dsl validate`` runs). Genomes are msgspec structs: they
round-trip through JSON for the state database and the generation checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from vibe_quant.errors import ConfigError, did_you_mean

Number = int | float

PERIODS = (5, 7, 10, 14, 20, 30, 50, 100, 200)
OSC_PERIODS = (5, 7, 9, 14, 21, 28)
FLIP = {">": "<", "<": ">", "crosses_above": "crosses_below", "crosses_below": "crosses_above"}
OPS = tuple(FLIP)


@dataclass(frozen=True)
class Template:
    """What discovery may do with one indicator type.

    ``kind`` ``oscillator``: the output is compared with a threshold from ``thresholds``; its
    mirror (the short side) is ``2 * center - threshold``. ``level``: a price-scale output,
    compared with the close or with another moving average (``pairs``). ``params``: each
    parameter's ladder (values inside the indicator's schema).
    """

    type: str
    kind: Literal["oscillator", "level"]
    outputs: tuple[str, ...]
    params: dict[str, tuple[Number, ...]]
    thresholds: tuple[float, ...] = ()
    center: float = 0.0
    mirror_output: dict[str, str] | None = None  # level outputs swapped on the short side (upper <-> lower)
    pairs: bool = False  # a moving average: may be compared with another moving average


def _ladder(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + k * step, 6) for k in range(n + 1))


_BANDS = {"upper": "lower", "lower": "upper", "middle": "middle"}
TEMPLATES: dict[str, Template] = {t.type: t for t in (
    Template("RSI", "oscillator", ("value",), {"period": OSC_PERIODS}, _ladder(10, 90, 5), 50.0),
    Template("STOCH", "oscillator", ("k", "d"), {"k": (5, 9, 14, 21), "d": (3, 5), "smooth_k": (1, 3)},
             _ladder(10, 90, 5), 50.0),
    Template("CCI", "oscillator", ("value",), {"period": (10, 14, 20, 30, 50)}, _ladder(-200, 200, 25), 0.0),
    Template("WILLR", "oscillator", ("value",), {"period": OSC_PERIODS}, _ladder(-90, -10, 5), -50.0),
    Template("MFI", "oscillator", ("value",), {"period": OSC_PERIODS}, _ladder(10, 90, 5), 50.0),
    Template("ROC", "oscillator", ("value",), {"period": (5, 10, 14, 20, 30, 50)}, _ladder(-5, 5, 0.5), 0.0),
    Template("MACD", "oscillator", ("histogram",), {"fast": (8, 12), "slow": (21, 26, 34), "signal": (5, 9)},
             (0.0,), 0.0),
    Template("BBANDS", "oscillator", ("percent_b",), {"period": (10, 20, 30), "std": (1.5, 2.0, 2.5)},
             _ladder(-0.2, 1.2, 0.1), 0.5),
    Template("EMA", "level", ("value",), {"period": PERIODS}, pairs=True),
    Template("SMA", "level", ("value",), {"period": PERIODS}, pairs=True),
    Template("WMA", "level", ("value",), {"period": PERIODS}, pairs=True),
    Template("DEMA", "level", ("value",), {"period": PERIODS}, pairs=True),
    Template("TEMA", "level", ("value",), {"period": PERIODS}, pairs=True),
    Template("DONCHIAN", "level", ("upper", "lower", "middle"), {"period": (10, 20, 30, 55)},
             mirror_output=_BANDS),
    Template("KC", "level", ("upper", "lower", "middle"),
             {"period": (10, 20, 30), "multiplier": (1.0, 1.5, 2.0, 2.5), "atr_period": (10, 14)},
             mirror_output=_BANDS),
    Template("VWAP", "level", ("value",), {}),
)}  # fmt: skip
MOVING_AVERAGES = tuple(t.type for t in TEMPLATES.values() if t.pairs)

STOP_TYPES = ("fixed_pct", "atr_fixed", "atr_trailing")
TAKE_TYPES = ("fixed_pct", "atr_fixed", "risk_reward")
EXIT_VALUES = {
    "fixed_pct": (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),  # percent
    "atr_fixed": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0),  # ATR multiples
    "atr_trailing": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    "risk_reward": (1.0, 1.5, 2.0, 3.0),  # target = ratio x stop distance
}
ATR_PERIOD = 14
SESSION_STARTS = tuple(range(0, 24, 2))
SESSION_HOURS = (4, 8, 12, 16)


class Gene(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One condition: ``indicator.output OP operand`` (long side).

    The operand is ``threshold`` (oscillators), another moving average ``other`` = (type, period),
    or the close (``level`` genes with neither). ``level`` genes read ``close OP indicator``.
    """

    indicator: str
    params: dict[str, Number] = {}
    output: str = "value"
    op: str = ">"
    threshold: float | None = None
    other: tuple[str, int] | None = None
    timeframe: str | None = None  # None: the run's timeframe


class ExitRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    value: float


class GenomeDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    entry: list[Gene]
    exit: list[Gene] = []
    direction: Literal["long", "short", "both"] = "both"
    stop: ExitRule | None = None
    take: ExitRule | None = None
    session: tuple[int, int] | None = None  # (start hour UTC, hours)

    @property
    def complexity(self) -> int:
        """Genes (entry + exit): what the Occam penalty counts and random baselines match."""
        return len(self.entry) + len(self.exit)


@dataclass(frozen=True)
class Space:
    """What a discovery run may build: indicator pool, timeframes, gene counts."""

    timeframe: str
    indicators: tuple[str, ...] = tuple(TEMPLATES)
    higher: tuple[str, ...] = ()  # additional timeframes genes may read
    max_genes: int = 5
    max_exit_genes: int = 2

    def __post_init__(self) -> None:
        for name in self.indicators:
            if name not in TEMPLATES:
                raise ConfigError(f"--indicators: {name!r} is not in the discovery pool ({', '.join(TEMPLATES)})."
                                  + did_you_mean(name, TEMPLATES))  # fmt: skip
        if not self.indicators:
            raise ConfigError("--indicators: give at least one indicator")
        if not 1 <= self.max_genes <= 5:
            raise ConfigError(f"--max-genes must be 1..5 (indicators per strategy), got {self.max_genes}")

    @property
    def timeframes(self) -> tuple[str | None, ...]:
        return (None, *self.higher)

    @property
    def moving_averages(self) -> tuple[str, ...]:
        """The pool's moving averages: what a pair gene may compare with (never an indicator outside the pool)."""
        return tuple(name for name in self.indicators if name in MOVING_AVERAGES)


# -- random construction ---------------------------------------------------------------------------------------


def random_gene(rng: random.Random, space: Space) -> Gene:
    t = TEMPLATES[rng.choice(space.indicators)]
    params = {k: rng.choice(v) for k, v in t.params.items()}
    params = _fix_params(t, params)
    output = rng.choice(t.outputs)
    op = rng.choice(OPS)
    tf = rng.choice(space.timeframes)
    if t.kind == "oscillator":
        return Gene(indicator=t.type, params=params, output=output, op=op, threshold=rng.choice(t.thresholds),
                    timeframe=tf)  # fmt: skip
    other = None
    if t.pairs and rng.random() < 0.5:
        other = (rng.choice(space.moving_averages), rng.choice(PERIODS))
    return Gene(indicator=t.type, params=params, output=output, op=op, other=other, timeframe=tf)


def random_exit(rng: random.Random, types: Sequence[str]) -> ExitRule:
    kind = rng.choice(types)
    return ExitRule(kind, rng.choice(EXIT_VALUES[kind]))


def random_genome(rng: random.Random, space: Space, genes: int | None = None) -> GenomeDoc:
    """A random genome; `genes` fixes its complexity (entry + exit genes), else drawn in 1..max_genes."""
    total = genes if genes is not None else rng.randint(1, space.max_genes)
    n_exit = rng.randint(0, min(space.max_exit_genes, total - 1))
    stop = random_exit(rng, STOP_TYPES) if rng.random() < 0.7 else None
    take_types = TAKE_TYPES if stop is not None else TAKE_TYPES[:2]
    take = random_exit(rng, take_types) if rng.random() < 0.6 else None
    session = (rng.choice(SESSION_STARTS), rng.choice(SESSION_HOURS)) if rng.random() < 0.2 else None
    return repair(GenomeDoc(
        entry=[random_gene(rng, space) for _ in range(total - n_exit)], exit=[random_gene(rng, space) for _ in range(n_exit)],
        direction=rng.choice(("long", "short", "both")), stop=stop, take=take, session=session,
    ))  # fmt: skip


def _fix_params(t: Template, params: dict) -> dict:
    """Keep the relations an indicator needs (MACD fast below slow)."""
    if t.type == "MACD" and params["fast"] >= params["slow"]:
        params = {**params, "fast": min(t.params["fast"])}
    return params


def repair(g: GenomeDoc) -> GenomeDoc:
    """Make a genome renderable and honest: at least one entry gene, no gene twice in a list (a copy adds
    complexity, not a rule), a risk-reward target only with a stop, no comparison of a moving average with
    itself. Never changes a valid genome."""
    entry, exit_ = list(g.entry), list(g.exit)
    if not entry and exit_:
        entry.append(exit_.pop(0))
    entry = _unique([_repair_gene(x) for x in entry])
    exit_ = _unique([_repair_gene(x) for x in exit_])
    take = g.take
    if take is not None and take.type == "risk_reward" and g.stop is None:
        take = None
    if (entry, exit_, take) == (g.entry, g.exit, g.take):
        return g
    return msgspec.structs.replace(g, entry=entry, exit=exit_, take=take)


def _unique(genes: list[Gene]) -> list[Gene]:
    out: list[Gene] = []
    for x in genes:
        if x not in out:
            out.append(x)
    return out


def _repair_gene(x: Gene) -> Gene:
    if x.other is not None and (x.other[0], x.other[1]) == (x.indicator, x.params.get("period")):
        bigger = [p for p in PERIODS if p > x.other[1]] or [PERIODS[0]]
        return msgspec.structs.replace(x, other=(x.other[0], bigger[0]))
    return x


# -- rendering ----------------------------------------------------------------------------------------------------


def render(g: GenomeDoc, timeframe: str, name: str = "discovered") -> dict:
    """The DSL document of `g` on `timeframe` (plain data: dump it as YAML or pass it as a run's document)."""
    indicators: dict[str, dict] = {}
    ids: dict[tuple, str] = {}

    def declare(type_: str, params: dict, tf: str | None) -> str:
        key = (type_, tuple(sorted(params.items())), tf)
        if key not in ids:
            order = TEMPLATES[type_].params if type_ in TEMPLATES else params
            base = type_.lower() + "".join(f"_{_short(params[k])}" for k in order)
            label = base + (f"_{tf}" if tf else "")
            ids[key] = label
            indicators[label] = {"type": type_, **params, **({"timeframe": tf} if tf else {})}
        return ids[key]

    def condition(x: Gene, short: bool) -> str:
        t = TEMPLATES[x.indicator]
        op = FLIP[x.op] if short else x.op
        ind = declare(x.indicator, x.params, x.timeframe)
        if t.kind == "oscillator":
            ref = ind if x.output == t.outputs[0] and len(t.outputs) == 1 else f"{ind}.{x.output}"
            threshold = (2 * t.center - x.threshold) if short else x.threshold
            return f"{ref} {op} {_num(threshold)}"
        output = (t.mirror_output or {}).get(x.output, x.output) if short else x.output
        ref = ind if output == "value" else f"{ind}.{output}"
        if t.type == "DONCHIAN" and output in ("upper", "lower"):
            ref += "[1]"  # the channel includes the current bar: a breakout compares with the previous bar's
        if x.other is not None:
            other = declare(x.other[0], {"period": x.other[1]}, x.timeframe)
            return f"{ref} {op} {other}"
        return f"close {op} {ref}"

    sides = {"long": ("long",), "short": ("short",), "both": ("long", "short")}[g.direction]
    entry = {side: [condition(x, side == "short") for x in g.entry] for side in sides}
    exits = {side: [condition(x, side == "short") for x in g.exit] for side in sides} if g.exit else {}
    higher = sorted({x.timeframe for x in (*g.entry, *g.exit) if x.timeframe}, key=_minutes)
    doc: dict = {"name": name, "description": describe(g), "version": 1, "timeframe": timeframe}
    if higher:
        doc["additional_timeframes"] = higher
    uses_atr = any(r is not None and r.type.startswith("atr") for r in (g.stop, g.take))
    if uses_atr:
        indicators["atr"] = {"type": "ATR", "period": ATR_PERIOD}
    doc["indicators"] = indicators
    doc["entry_conditions"] = entry
    if exits:
        doc["exit_conditions"] = exits
    if g.stop is not None:
        doc["stop_loss"] = _exit_doc(g.stop, stop=True)
    if g.take is not None:
        doc["take_profit"] = _exit_doc(g.take, stop=False)
    if g.session is not None:
        start, hours = g.session
        end = (start + hours) % 24
        doc["time_filters"] = {
            "allowed_sessions": [{"start": f"{start:02d}:00", "end": f"{end:02d}:00", "timezone": "UTC"}]
        }
    return doc


def _exit_doc(rule: ExitRule, stop: bool) -> dict:
    if rule.type == "fixed_pct":
        return {"type": "fixed_pct", "percent": rule.value}
    if rule.type == "risk_reward":
        return {"type": "risk_reward", "ratio": rule.value}
    return {"type": rule.type, "atr_multiplier": rule.value, "indicator": "atr"}


def _num(v: float) -> str:
    v = round(float(v), 6)
    return str(int(v)) if v.is_integer() else repr(v)


def _short(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).replace("-", "m").replace(".", "p") if not isinstance(v, str) else v


def _minutes(label: str) -> int:
    from vibe_quant.data.bars import TIMEFRAME_BY_LABEL

    return TIMEFRAME_BY_LABEL[label].step_ms // 60_000


def describe(g: GenomeDoc) -> str:
    """One line a human reads: ``both: RSI(14) < 30 AND close > EMA(50); stop atr_fixed 2; take fixed_pct 3``."""

    def gene(x: Gene) -> str:
        t = TEMPLATES[x.indicator]
        args = ",".join(_num(x.params[k]) for k in t.params)
        ind = (
            f"{x.indicator}({args})"
            + (f".{x.output}" if len(t.outputs) > 1 else "")
            + (f"@{x.timeframe}" if x.timeframe else "")
        )
        if t.kind == "oscillator":
            return f"{ind} {x.op} {_num(x.threshold)}"
        if x.other is not None:
            return f"{ind} {x.op} {x.other[0]}({x.other[1]})"
        return f"close {x.op} {ind}"

    parts = [f"{g.direction}: " + " AND ".join(gene(x) for x in g.entry)]
    if g.exit:
        parts.append("exit " + " AND ".join(gene(x) for x in g.exit))
    for label, rule in (("stop", g.stop), ("take", g.take)):
        if rule is not None:
            parts.append(f"{label} {rule.type} {rule.value:g}")
    if g.session is not None:
        parts.append(f"session {g.session[0]:02d}:00+{g.session[1]}h UTC")
    return "; ".join(parts)


def canonical(document: dict) -> str:
    """The document's canonical JSON without its name and description: two genomes with the same rules have the
    same key, whatever they are called."""
    body = {k: v for k, v in document.items() if k not in ("name", "description")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def genome_key(document: dict) -> str:
    return hashlib.sha256(canonical(document).encode()).hexdigest()[:20]


def check(document: dict) -> str | None:
    """Our validator's verdict on a rendered document: None when valid, else the problems (one line)."""
    from vibe_quant.dsl.strategy import compile_document

    try:
        compile_document(json.dumps(document, sort_keys=True, separators=(",", ":")))
    except ConfigError as exc:
        return str(exc)
    return None


def to_json(g: GenomeDoc) -> dict:
    return msgspec.to_builtins(g)


def from_json(data: dict) -> GenomeDoc:
    return msgspec.convert(data, GenomeDoc)
