"""Unit tests of the condition grammar (:func:`vibe_quant.dsl.conditions.parse_condition`)."""

from __future__ import annotations

import pytest

from vibe_quant.dsl.conditions import ConditionSyntaxError, Operand, parse_condition


def shape(text: str) -> tuple[str, list[tuple]]:
    """(operator, [(text, offset, number, name, output, ago), ...]) of a condition."""
    c = parse_condition(text)
    assert c.text == text
    return c.op, [(o.text, o.offset, o.number, o.name, o.output, o.ago) for o in c.operands]


@pytest.mark.parametrize("op", [">", "<", ">=", "<="])
def test_comparisons(op: str) -> None:
    assert shape(f"rsi {op} 30") == (op, [("rsi", 0, None, "rsi", "", 0), ("30", 5 + len(op), 30.0, "", "", 0)])


@pytest.mark.parametrize("op", [">", "<", ">=", "<="])
def test_comparisons_without_spaces(op: str) -> None:
    assert shape(f"close{op}ema") == (
        op,
        [("close", 0, None, "close", "", 0), ("ema", 5 + len(op), None, "ema", "", 0)],
    )


@pytest.mark.parametrize("op", ["crosses_above", "crosses_below"])
def test_crosses(op: str) -> None:
    text = f"macd.value {op} macd.signal"
    assert shape(text) == (op, [
        ("macd.value", 0, None, "macd", "value", 0),
        ("macd.signal", len(f"macd.value {op} "), None, "macd", "signal", 0),
    ])  # fmt: skip


def test_between() -> None:
    assert shape("rsi between 40 60") == ("between", [
        ("rsi", 0, None, "rsi", "", 0), ("40", 12, 40.0, "", "", 0), ("60", 15, 60.0, "", "", 0),
    ])  # fmt: skip


def test_between_names_and_outputs() -> None:
    op, operands = shape("close between bb.lower bb.upper")
    assert op == "between"
    assert [(o[3], o[4]) for o in operands] == [("close", ""), ("bb", "lower"), ("bb", "upper")]


def test_bars_ago() -> None:
    assert shape("close > close[2]") == (
        ">",
        [("close", 0, None, "close", "", 0), ("close[2]", 8, None, "close", "", 2)],
    )


def test_bars_ago_with_output_and_spaces() -> None:
    _op, operands = shape("bb.upper[1] < kc.upper[ 3 ]")
    assert operands == [("bb.upper[1]", 0, None, "bb", "upper", 1), ("kc.upper[3]", 14, None, "kc", "upper", 3)]


def test_negative_bars_ago_parses_for_the_analysis_to_refuse() -> None:
    # The grammar keeps the sign; look-ahead is refused (with its location) by the analysis.
    _, operands = shape("close[-1] > close")
    assert operands[0] == ("close[-1]", 0, None, "close", "", -1)


def test_explicit_plus_bars_ago() -> None:
    _, operands = shape("close > close[+1]")
    assert operands[1][-1] == 1


@pytest.mark.parametrize(
    ("number", "value"),
    [("30", 30.0), ("-5", -5.0), ("+5", 5.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("-0.0005", -0.0005),
     ("1e-4", 1e-4), ("-1.5e-3", -1.5e-3), ("2E+2", 200.0), (".5e2", 50.0)],
)  # fmt: skip
def test_numbers(number: str, value: float) -> None:
    _, operands = shape(f"funding_rate < {number}")
    assert operands[1] == (number, 15, value, "", "", 0)


def test_negative_number_right_after_operator() -> None:
    assert shape("rsi<-5")[1][1] == ("-5", 4, -5.0, "", "", 0)


def test_number_on_the_left() -> None:
    op, operands = shape("30 > rsi")
    assert op == ">"
    assert operands[0][2] == 30.0
    assert operands[1][3] == "rsi"


def test_operand_is_number() -> None:
    assert Operand("3", 0, number=3.0).is_number
    assert not Operand("rsi", 0, name="rsi").is_number
    assert Operand("0", 0, number=0.0).is_number  # zero is a number too


def test_surrounding_whitespace() -> None:
    assert shape("  rsi < 30  ")[1] == [("rsi", 2, None, "rsi", "", 0), ("30", 8, 30.0, "", "", 0)]


@pytest.mark.parametrize(
    ("text", "fragment", "offset"),
    [
        ("", "empty condition", 0),
        ("   ", "empty condition", 0),
        ("rsi", "no operator in 'rsi'", 0),
        ("rsi 30", "no operator", 0),
        ("rsi == 30", "operator '==' is not supported: equality of floating-point", 4),
        ("rsi != 30", "operator '!=' is not supported", 4),
        ("rsi = 30", "operator '=' is not supported", 4),
        ("rsi => 30", "operator '=>' is not supported: write >=", 4),
        ("rsi =< 30", "operator '=<' is not supported: write <=", 4),
        ("20 < rsi < 30", "one operator per condition (found <, <)", 9),
        ("rsi < 30 crosses_above x", "one operator per condition (found <, crosses_above)", 9),
        ("rsi < between", "one operator per condition", 6),
        ("a b < c", "expected one operand before '<'", 2),
        ("< 30", "expected one operand before '<'", 0),
        ("between 1 2", "expected one operand before 'between'", 0),
        ("rsi <", "expected 1 operand after '<': write 'x < y'", 5),
        ("a < b c", "expected 1 operand after '<'", 6),
        ("rsi between 60", "expected 2 operands after 'between': write 'x between LOW HIGH'", 11),
        ("rsi between 1 2 3", "expected 2 operands after 'between'", 16),
        ("$x > 1", "unexpected '$x'", 0),
        ("rsi < 30%", "unexpected '%'", 8),
        ("rsi < 30abc", "unexpected '30abc'", 6),
        ("rsi < 1.5.3", "unexpected '1.5.3'", 6),
        ("rsi - 30 > 0", "unexpected '-'", 4),
        ("close > close [1]", "unexpected '[1]'", 14),
    ],
)
def test_syntax_errors(text: str, fragment: str, offset: int) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert fragment in str(info.value)
    assert info.value.offset == offset
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [30, None, ["rsi < 30"], {"rsi": 30}])
def test_not_a_string(value: object) -> None:
    with pytest.raises(ConditionSyntaxError, match="a condition is a string like 'rsi < 30'"):
        parse_condition(value)  # type: ignore[arg-type]
