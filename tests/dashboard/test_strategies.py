"""The Strategies page on a real home: list, form, YAML editor with located errors, templates, history diffs."""

from __future__ import annotations

from vibe_quant.dsl.loader import SHIPPED_DIR
from vibe_quant.state import StateManager

NAME = "rsi_mean_reversion_mtf"
FORM = f"form_{NAME}_v1"


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _versions(home, name: str) -> list[dict]:
    with StateManager(home.db_path) as state:
        sid = state.find("strategies", name=name)[0]["id"]
        return state.find("strategy_versions", order_by="version", strategy_id=sid)


def test_the_list_holds_the_stored_strategies_and_their_versions(dash_home, page) -> None:
    at = page("strategies")
    rows = {r["name"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert set(rows) == {NAME, "python:ema_cross"}  # saved by `vq dsl save`, and by the backtests
    assert (rows[NAME]["kind"], rows[NAME]["version"], rows[NAME]["versions"]) == ("dsl", 1, 1)
    assert rows["python:ema_cross"]["kind"] == "python"
    assert at.selectbox(key="strategies_selected").value == NAME
    assert at.text_area(key=f"yaml_{NAME}_v1").value == (SHIPPED_DIR / f"{NAME}.yaml").read_text()


def test_the_form_saves_version_two_with_the_new_value_and_the_diff_shows_the_line(dash_home, page) -> None:
    at = page("strategies")
    fields = {n.label: n for n in at.number_input if n.key.startswith(FORM)}
    assert (fields["rsi.period"].value, fields["rsi.period"].min, fields["rsi.period"].max) == (14, 2, 100)
    assert (fields["rsi_oversold_threshold"].value, fields["rsi_oversold_threshold"].step) == (30.0, 5.0)
    assert [s.value for s in at.selectbox if s.key == f"{FORM}_tf_rsi_1h"] == ["1h"]  # multi-timeframe indicator
    fields["rsi.period"].set_value(21)
    at.selectbox(key=f"{FORM}_tf_ema_fast").set_value("1h")
    _button(at, "Save as a new version").click()
    at.run()
    assert not at.exception
    assert next(s.value for s in at.success) == f"stored {NAME} version 2"

    versions = _versions(dash_home, NAME)
    assert [v["version"] for v in versions] == [1, 2]
    indicators = versions[1]["dsl_config"]["indicators"]
    assert (indicators["rsi"]["period"], indicators["ema_fast"]["timeframe"]) == (21, "1h")
    assert versions[0]["dsl_config"]["indicators"]["rsi"]["period"] == 14
    with StateManager(dash_home.db_path) as state:
        assert state.find("strategies", name=NAME)[0]["version"] == 2
    # the comments and layout of the file are kept: only the changed values differ
    assert "# 5m RSI oversold" in versions[1]["source_text"]

    rows = {r["name"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert (rows[NAME]["version"], rows[NAME]["versions"]) == (2, 2)
    diff = next(c.value for c in at.code if c.value.startswith(f"--- {NAME} v1"))
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert changed == [
        "-  rsi: { type: RSI, period: 14, source: close, timeframe: 5m }",
        "-  ema_fast: { type: EMA, period: 20, source: close }",
        "+  rsi: { type: RSI, period: 21, source: close, timeframe: 5m }",
        "+  ema_fast: { type: EMA, period: 20, source: close, timeframe: 1h }",
    ]


def test_the_yaml_editor_shows_located_errors_and_saves_nothing(dash_home, page) -> None:
    at = page("strategies")
    editor = at.text_area(key=f"yaml_{NAME}_v1")
    text = editor.value
    broken = text.replace("rsi: { type: RSI, period: 14,", "rsi: { type: RSI, perod: 14,")
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "perod" in t)
    editor.set_value(broken).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors[0] == "1 problem(s): not saved"
    assert errors[1].startswith(f"line {line}, column 21 (field indicators.rsi.perod): unknown key 'perod'")
    assert "Did you mean 'period'?" in errors[1]
    assert any(c.value.startswith(f"{line:>4} |   rsi: {{ type: RSI, perod: 14") for c in at.code)
    assert all(b.label != "Save YAML as a new version" for b in at.button)
    assert len(_versions(dash_home, NAME)) == 1

    at.text_area(key=f"yaml_{NAME}_v1").set_value(
        text.replace("take_profit: { type: fixed_pct, percent: 3.0 }", "take_profit: { type: fixed_pct, percent: 4.0 }")
    ).run()
    assert next(s.value for s in at.success).startswith(f"valid: {NAME}, 5m + 1h, 4h, 5 indicators")
    _button(at, "Save YAML as a new version").click().run()
    versions = _versions(dash_home, NAME)
    assert versions[-1]["version"] == 2
    assert versions[-1]["dsl_config"]["take_profit"]["percent"] == 4.0


def test_a_new_strategy_from_a_template(dash_home, page) -> None:
    at = page("strategies")
    at.selectbox(key="new_template").set_value("ema_cross")
    at.text_input(key="new_name").set_value("my_cross")
    _button(at, "Create").click().run()
    assert not at.exception
    assert next(s.value for s in at.success) == "created strategy my_cross (version 1) from ema_cross"
    assert at.selectbox(key="strategies_selected").value == "my_cross"
    (version,) = _versions(dash_home, "my_cross")
    assert version["dsl_config"]["name"] == "my_cross"
    template = (SHIPPED_DIR / "ema_cross.yaml").read_text()
    assert version["source_text"] == template.replace("name: ema_cross\n", "name: my_cross\n")

    # a taken name is refused, nothing stored
    at.selectbox(key="new_template").set_value("ema_cross")
    at.text_input(key="new_name").set_value(NAME)
    _button(at, "Create").click().run()
    assert any(f"a strategy named '{NAME}' exists" in e.value for e in at.error)
    assert len(_versions(dash_home, NAME)) == 1
