"""The broken-strategy corpus: ``tests/dsl/broken/*.yaml`` holds one small strategy per defect.

Each file must fail to load with a :class:`DslError` that reports exactly one problem, with a
distinctive message, at the right line and column (1-based). ``token`` is the text found at
that line and column, so the table shows where each error points. ``many_problems.yaml`` has
several independent meaning problems: all of them are reported, each at its own line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe_quant.dsl.loader import DslError, load_file, load_text
from vibe_quant.errors import ConfigError, UserError

BROKEN = Path(__file__).parent / "broken"

# file: (message fragment, line, column, text at that line and column)
CASES: dict[str, tuple[str, int, int, str]] = {
    "unknown_top_level_key": ("unknown key 'indicator' in the document; allowed keys: name,", 4, 1, "indicator:"),
    "unknown_indicator_type": ("unknown indicator type 'RSX' for 'rsi'", 5, 16, "RSX"),
    "wrong_type": ("indicators.rsi.period: expected `int | float | null`, got `str`", 7, 14, "fourteen"),
    "undeclared_indicator": ("'rsii' is not a declared indicator, price field or threshold", 9, 7, "rsii"),
    "undeclared_timeframe": ("rsi_1h uses timeframe 1h, which is not declared: add it to additional_timeframes", 6, 47, "1h"),
    "invalid_session_time": ("session end '25:00' is not a time: write HH:MM", 12, 13, "25:00"),
    "invalid_timezone": ("unknown timezone 'Europe/Londn'", 13, 17, "Europe/Londn"),
    "empty_entry_conditions": ("entry_conditions has no conditions", 7, 3, "long: []"),
    "sweep_unknown_key": ("sweep key 'rsi.length': RSI has no parameter 'length' (it takes period)", 11, 3, "rsi.length"),
    "sweep_bad_value": ("sweep rsi.period value -14 is invalid: sweep_bad_value: parameters", 10, 19, "-14"),
    "sweep_outside_schema": ("sweep rsi_low value 60 is outside the range parameters_schema declares for rsi_low: [5, 50]", 10, 21, "60"),
    "negative_period": ("ema.period = -20 is out of range: it must be between 1 and 10000", 5, 29, "-20"),
    "lookahead_negative_offset": ("close[-1] reads 1 bar(s) into the future (look-ahead)", 9, 7, "close[-1]"),
    "lookahead_chikou": ("ichimoku.chikou is refused as look-ahead", 9, 7, "ichimoku.chikou"),
    "lower_timeframe_indicator": ("ema_1m is on 1m, below the primary timeframe 15m", 6, 47, "1m"),
    "unknown_indicator_parameter": ("unknown key 'periods' in indicators.ema", 7, 5, "periods"),
    "parameter_of_other_type": ("EMA has no parameter 'std' (it takes period)", 5, 33, "std"),
    "duplicate_key": ("duplicate key 'rsi' (first on line 5)", 6, 3, "rsi:"),
    "yaml_syntax_error": ("YAML syntax error: expected ',' or '}', but got ':'", 6, 17, ":"),
    "equality_operator": ("operator '==' is not supported", 8, 11, "=="),
    "two_operators": ("one operator per condition (found <, <)", 8, 16, "< 30"),
    "fixed_fractional_without_stop": ("sizing method fixed_fractional", 11, 13, "fixed_fractional"),
    "atr_stop_not_atr": ("stop_loss.indicator 'rsi' is a RSI; atr_fixed needs an ATR indicator", 13, 14, "rsi"),
    "stop_on_invalid_indicator": ("atr uses timeframe 1h, which is not declared", 6, 44, "1h"),
    "undeclared_threshold": ("'rsi_oversold' is not a declared indicator, price field or threshold", 8, 13, "rsi_oversold"),
}  # fmt: skip

# The suggestion each misspelling gets.
DID_YOU_MEAN = {
    "unknown_top_level_key": "Did you mean 'indicators'?",
    "unknown_indicator_type": "Did you mean 'RSI'?",
    "undeclared_indicator": "Did you mean 'rsi'?",
    "invalid_timezone": "Did you mean 'Europe/London'?",
    "unknown_indicator_parameter": "Did you mean 'period'?",
    "undeclared_threshold": "Did you mean 'rsi_overbought'?",
}

# many_problems.yaml: (line, column, fragment) of every problem, in report order.
MANY = [
    (5, 16, "unknown indicator type 'RSX'"),
    (6, 44, "ema uses timeframe 1h, which is not declared"),
    (7, 29, "sma.period = -5 is out of range"),
    (10, 7, "'macd' is not a declared indicator"),
    (11, 63, "stop_loss.indicator 'atr' is not a declared indicator"),
    (15, 13, "session end '25:00' is not a time"),
    (16, 17, "unknown timezone 'Mars/Olympus'"),
    (18, 3, "sweep key 'rsi_low': not an indicator parameter"),
]


def load_broken(name: str) -> DslError:
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(DslError) as info:
        load_file(path)
    assert type(info.value) is DslError
    return info.value


def test_corpus_matches_table() -> None:
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted([*CASES, "many_problems"])


@pytest.mark.parametrize("name", CASES)
def test_broken_file(name: str) -> None:
    fragment, line, col, token = CASES[name]
    path = BROKEN / f"{name}.yaml"
    exc = load_broken(name)
    assert isinstance(exc, ConfigError)
    assert isinstance(exc, UserError)
    assert exc.exit_code == 2
    assert len(exc.issues) == 1, [i.message for i in exc.issues]  # one defect, one report (no follow-on errors)
    (issue,) = exc.issues
    assert fragment in issue.message
    assert (issue.line, issue.col) == (line, col), issue.message
    assert exc.line == line
    assert path.read_text().splitlines()[line - 1][col - 1 :].startswith(token)
    assert str(exc) == f"{path}:{line}:{col}: {issue.message}"
    if name in DID_YOU_MEAN:
        assert DID_YOU_MEAN[name] in issue.message


def test_all_semantic_problems_reported_together() -> None:
    path = BROKEN / "many_problems.yaml"
    exc = load_broken("many_problems")
    assert [(i.line, i.col) for i in exc.issues] == [(line, col) for line, col, _ in MANY]
    for issue, (_, _, fragment) in zip(exc.issues, MANY, strict=True):
        assert fragment in issue.message
    lines = str(exc).splitlines()
    assert lines[-1] == f"({len(MANY)} problems)"
    assert lines[:-1] == [f"{path}:{i.line}:{i.col}: {i.message}" for i in exc.issues]


def test_shape_error_stops_at_the_first() -> None:
    # Shape/type errors are not combined with meaning checks: the first one is reported alone.
    text = (BROKEN / "wrong_type.yaml").read_text().replace("- rsi < 30", "- rsi == 30")
    with pytest.raises(DslError) as info:
        load_text(text, "typed.yaml")
    assert [(i.line, i.col) for i in info.value.issues] == [(7, 14)]


def test_source_name_in_message() -> None:
    with pytest.raises(DslError) as info:
        load_text((BROKEN / "equality_operator.yaml").read_text(), "my/strategy.yaml")
    assert str(info.value).startswith("my/strategy.yaml:8:11: operator '==' is not supported")


def test_missing_file() -> None:
    with pytest.raises(DslError, match=r"no such strategy file; shipped strategies: .*ema_cross"):
        load_file(BROKEN / "does_not_exist.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(DslError, match="a strategy file is a YAML mapping"):
        load_text("- just\n- a list\n", "list.yaml")


def test_missing_required_key() -> None:
    text = "name: no_entries\ntimeframe: 5m\n"
    with pytest.raises(DslError, match="missing required key 'entry_conditions'"):
        load_text(text, "x.yaml")
