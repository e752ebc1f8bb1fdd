"""Editing a strategy through values: in place where the YAML allows it (comments kept), rewritten otherwise."""

from __future__ import annotations

import pytest

from vibe_quant.dsl.edit import edit, form_fields, from_template
from vibe_quant.dsl.loader import SHIPPED_DIR, DslError, load_file
from vibe_quant.errors import ConfigError

MTF = SHIPPED_DIR / "rsi_mean_reversion_mtf.yaml"


def test_form_fields_follow_the_parameters_schema() -> None:
    fields = {f.key: f for f in form_fields(load_file(MTF))}
    assert list(fields) == ["rsi_oversold_threshold", "rsi_overbought_threshold", "rsi.period",
                            "stop_loss.atr_multiplier", "time_filters.allowed_sessions"]  # fmt: skip
    assert (fields["rsi.period"].type, fields["rsi.period"].value, fields["rsi.period"].min) == ("integer", 14, 2)
    assert fields["time_filters.allowed_sessions"].value == [{"start": "08:00", "end": "20:00", "timezone": "UTC"}]


def test_scalar_edits_keep_every_other_line() -> None:
    a = load_file(MTF)
    b = edit(
        a, {"rsi_oversold_threshold": 25, "stop_loss.atr_multiplier": 3.0, "time_filters.blocked_days": ["Sunday"]}
    )
    changed = [(x, y) for x, y in zip(a.text.splitlines(), b.text.splitlines(), strict=True) if x != y]
    assert [y for _, y in changed] == [
        "  blocked_days: [Sunday]",
        "stop_loss: { type: atr_trailing, atr_multiplier: 3.0, indicator: atr }",
        '  rsi_oversold_threshold: { type: float, min: 5, max: 50, step: 5, default: 25, description: "RSI level for long entries" }',
    ]
    assert b.thresholds["rsi_oversold_threshold"] == 25


def test_a_block_list_is_rewritten_and_still_checked() -> None:
    b = edit(load_file(MTF), {"time_filters.allowed_sessions": [{"start": "09:00", "end": "17:00", "timezone": "UTC"}]})
    assert "# Primary execution timeframe" not in b.text  # rewritten: comments lost
    assert b.doc.time_filters.allowed_sessions[0].start == "09:00"
    with pytest.raises(DslError, match=r"rsi_mean_reversion_mtf.yaml:\d+:\d+: .*25:00"):
        edit(load_file(MTF), {"time_filters.allowed_sessions": [{"start": "25:00", "end": "17:00", "timezone": "UTC"}]})
    with pytest.raises(ConfigError, match=r"'entry_conditions.long' is not a form field"):
        edit(load_file(MTF), {"entry_conditions.long": []})


def test_from_template() -> None:
    a = from_template("ema_cross", "my_cross")
    assert a.name == "my_cross"
    assert a.text.startswith("# EMA-cross baseline")
    with pytest.raises(DslError, match=r"no shipped strategy 'ema_cros'.*Did you mean 'ema_cross'"):
        from_template("ema_cros", "x")
    with pytest.raises(DslError, match=r"^9 bad name.yaml:4:7: name: expected `str` matching regex"):
        from_template("ema_cross", "9 bad name")
