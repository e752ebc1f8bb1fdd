"""Parameter grids of any strategy kind: constraints between parameters and the cartesian product.

A constraint is ``KEY OP KEY-or-NUMBER`` (``ema_fast.period < ema_slow.period``); a key takes its
value from the grid point, else from the strategy (its default). Kinds supply the defaults and
the check that rejects a point (the DSL validates the document with the point applied; a Python
strategy runs its own ``check``).
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vibe_quant.errors import ConfigError, did_you_mean

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_CONSTRAINT = re.compile(r"^\s*(\S+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``left op right``: each side a parameter key or a number."""

    text: str
    left: str | float
    op: str
    right: str | float

    def holds(self, point: Mapping[str, object], default: Callable[[str], object]) -> bool:
        """Whether `point` satisfies it; keys absent from the point take ``default(key)``."""

        def value(side):
            if not isinstance(side, str):
                return side
            return point[side] if side in point else default(side)

        return _OPS[self.op](value(self.left), value(self.right))


def parse_constraint(text: str) -> Constraint:
    """Parse ``"ema_fast.period < ema_slow.period"`` (operators < <= > >= == !=).

    Raises
    ------
    ConfigError
        Not of the form ``KEY OP KEY|NUMBER``.
    """
    match = _CONSTRAINT.match(text)
    if not match:
        raise ConfigError(
            f"constraint {text!r}: write KEY OP KEY-or-NUMBER with OP one of {' '.join(_OPS)}, "
            "e.g. 'ema_fast.period < ema_slow.period'"
        )
    left, op, right = match.groups()
    return Constraint(text.strip(), _number_or_key(left), op, _number_or_key(right))


def _number_or_key(token: str) -> str | float:
    try:
        return float(token)
    except ValueError:
        return token


@dataclass
class Expansion:
    """A parameter grid after constraints: the points to run and what was skipped, with reasons."""

    points: list[dict[str, object]]
    total: int
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


def grid_points(axes: Mapping[str, list], constraints: list[Constraint], default: Callable[[str], object],
                check: Callable[[dict], object]) -> Expansion:  # fmt: skip
    """The cartesian product of `axes` (one empty point without axes). A point breaking a
    constraint, or that `check` rejects (it raises ConfigError), is skipped and counted."""
    keys = list(axes)
    out = Expansion([], math.prod(len(v) for v in axes.values()))
    for values in itertools.product(*(axes[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        broken = next((c for c in constraints if not c.holds(point, default)), None)
        if broken is not None:
            out.skipped[f"constraint {broken.text}"] += 1
            continue
        try:
            check(point)
        except ConfigError as exc:
            out.skipped[f"rejected by the strategy: {str(exc).partition(': ')[2] or exc}"] += 1
            continue
        out.points.append(point)
    return out


def checked_rules(name: str, axes: Mapping[str, list], constraints: list[str], own) -> list[Constraint]:
    """Check that every sweep key of `axes` and every key a constraint names is one of `own` (the
    strategy's parameters) and that each axis has a value; return the parsed constraints.

    Raises
    ------
    ConfigError
        An unknown key (with the parameters and a did-you-mean), an empty axis, a malformed constraint.
    """
    for key, values in axes.items():
        if key not in own:
            raise ConfigError(f"{name}: sweep key {key!r}: no such parameter; parameters: {', '.join(sorted(own))}."
                              + did_you_mean(key, own))  # fmt: skip
        if not values:
            raise ConfigError(f"{name}: sweep key {key!r}: give at least one value")
    rules = [parse_constraint(t) for t in constraints]
    for rule in rules:
        for side in (rule.left, rule.right):
            if isinstance(side, str) and side not in own:
                raise ConfigError(f"{name}: constraint {rule.text!r}: {side!r} is not a parameter"
                                  + did_you_mean(side, own))  # fmt: skip
    return rules
