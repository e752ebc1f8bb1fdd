"""Condition strings of the DSL: ``rsi < 30``, ``close > ema_trend_4h``, ``macd.value crosses_above
macd.signal``, ``rsi between 40 60``, ``close > close[1]``.

Grammar (one condition per list item; the items of a list are AND-ed)::

    condition := operand OP operand | operand "between" operand operand
    OP        := ">" | "<" | ">=" | "<=" | "crosses_above" | "crosses_below"
    operand   := NUMBER | NAME ["." OUTPUT] ["[" BARS_AGO "]"]

``NAME`` is an indicator, a price field of the primary bar (open, high, low, close, volume),
``funding_rate`` (the last settled rate, a fraction) or a threshold declared in
``parameters_schema``. ``[n]`` reads the value `n` primary bars ago; a negative `n` would
read the future and is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMPARISONS = (">", "<", ">=", "<=")
CROSSES = ("crosses_above", "crosses_below")
OPERATORS = (*COMPARISONS, *CROSSES, "between")
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
BUILTINS = (*PRICE_FIELDS, "funding_rate")
MAX_BARS_AGO = 1000

_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w\[.])"
    r"|(?P<op>>=|<=|==|!=|=>|=<|>|<|=)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)(?:\[\s*(?P<ago>[-+]?\d+)\s*\])?"
    r"|(?P<bad>\S+))"
)


class ConditionSyntaxError(ValueError):
    """A condition string that does not parse; `offset` is the 0-based column inside it."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Operand:
    """A number, or a name with an optional output and bars-ago offset."""

    text: str
    offset: int  # column in the condition string
    number: float | None = None
    name: str = ""
    output: str = ""
    ago: int = 0

    @property
    def is_number(self) -> bool:
        return self.number is not None


@dataclass(frozen=True)
class Condition:
    text: str
    op: str
    operands: tuple[Operand, ...]  # 2, or 3 for between


def parse_condition(text: str) -> Condition:
    """Parse one condition string.

    Raises
    ------
    ConditionSyntaxError
        With the column of the offending token.
    """
    if not isinstance(text, str):
        raise ConditionSyntaxError(f"a condition is a string like 'rsi < 30', got {text!r}")
    tokens: list[tuple[str, str, int, str | None]] = []  # (kind, text, column, bars ago)
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = next(group for group in ("num", "op", "name", "bad") if m.group(group) is not None)
        tokens.append((kind, m.group(kind), m.start(kind), m.group("ago")))
        pos = m.end()
    if not tokens:
        raise ConditionSyntaxError("empty condition; write e.g. 'rsi < 30'")
    for kind, tok, col, _ in tokens:
        if kind == "bad":
            raise ConditionSyntaxError(f"unexpected {tok!r}", col)
        if kind == "op" and tok not in COMPARISONS:
            hint = {"==": "equality of floating-point values is almost never true; use between",
                    "!=": "use < or > (or two conditions)", "=": "use >= or <=, or between",
                    "=>": "write >=", "=<": "write <="}[tok]  # fmt: skip
            raise ConditionSyntaxError(f"operator {tok!r} is not supported: {hint}", col)
    ops = [(i, t) for i, t in enumerate(tokens) if t[0] == "op" or (t[0] == "name" and t[1] in OPERATORS[4:])]
    if len(ops) != 1:
        if not ops:
            raise ConditionSyntaxError(
                f"no operator in {text!r}; use one of {', '.join(OPERATORS)} (e.g. 'rsi < 30')", tokens[0][2]
            )
        raise ConditionSyntaxError(
            f"one operator per condition (found {', '.join(t[1] for _, t in ops)}); split it into two list items",
            ops[1][1][2],
        )
    i, (_, op, op_col, _) = ops[0]
    left, right = tokens[:i], tokens[i + 1 :]
    if len(left) != 1:
        raise ConditionSyntaxError(f"expected one operand before {op!r}", left[1][2] if left else op_col)
    want = 2 if op == "between" else 1
    if len(right) != want:
        shape = "'x between LOW HIGH'" if op == "between" else f"'x {op} y'"
        col = right[want][2] if len(right) > want else op_col + len(op)
        raise ConditionSyntaxError(f"expected {want} operand{'s' * (want > 1)} after {op!r}: write {shape}", col)
    return Condition(text, op, tuple(_operand(t) for t in (*left, *right)))


def _operand(token: tuple[str, str, int, str | None]) -> Operand:
    kind, text, col, ago = token
    if kind == "num":
        return Operand(text, col, number=float(text))
    if text in OPERATORS:
        raise ConditionSyntaxError(f"{text!r} is an operator, expected a value", col)
    name, _, output = text.partition(".")
    bars_ago = int(ago) if ago is not None else 0
    shown = f"{text}[{ago}]" if ago is not None else text
    return Operand(shown, col, name=name, output=output, ago=bars_ago)
