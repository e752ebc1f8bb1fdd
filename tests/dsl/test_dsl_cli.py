"""``vq dsl validate|schema|show|list|save`` (and ``python -m vibe_quant.dsl``), the JSON Schema
against the shipped strategies, and the sweep helpers (grid, grid_size, apply_params)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from tests.conftest import PROJECT
from vibe_quant.dsl import sweep
from vibe_quant.dsl.analysis import analyse
from vibe_quant.dsl.loader import SHIPPED_DIR, DslError, load_file, load_text, shipped_names
from vibe_quant.dsl.model import StrategyDoc, json_schema
from vibe_quant.errors import ConfigError
from vibe_quant.home import Home
from vibe_quant.state import StateManager

Cli = Callable[[list[str]], tuple[int, str]]
BROKEN = Path(__file__).parent / "broken"
SHIPPED = shipped_names()


@pytest.fixture
def vq(cli: Cli, home: Home) -> Cli:
    """``vq`` with ``--home`` set to the test's (empty) home."""
    return lambda args: cli(["--home", str(home.root), *args])


def shipped(name: str) -> Path:
    return SHIPPED_DIR / f"{name}.yaml"


# -- validate -----------------------------------------------------------------------------------


def test_shipped_strategies_present() -> None:
    assert {"ema_cross", "ema_trend_atr", "rsi_mean_reversion_mtf", "macd_crossover_session"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_validate_shipped(vq: Cli, name: str) -> None:
    code, output = vq(["dsl", "validate", name])
    assert code == 0, output
    assert output.startswith(f"valid: {shipped(name)}: strategy {name} v1, ")


def test_validate_by_path(vq: Cli) -> None:
    code, output = vq(["dsl", "validate", str(shipped("macd_crossover_session"))])
    assert code == 0
    assert "strategy macd_crossover_session v1, 15m + 1h, 2 indicators, sweep of 162 combinations" in output


def test_validate_broken_file(vq: Cli) -> None:
    path = BROKEN / "undeclared_indicator.yaml"
    code, output = vq(["dsl", "validate", str(path)])
    assert code == 2
    assert f"error: {path}:9:7: 'rsii' is not a declared indicator" in output
    assert "Did you mean 'rsi'?" in output
    assert "Traceback" not in output


def test_validate_reports_every_problem(vq: Cli) -> None:
    path = BROKEN / "many_problems.yaml"
    code, output = vq(["dsl", "validate", str(path)])
    assert code == 2
    assert len(re.findall(rf"^(?:error: )?{re.escape(str(path))}:\d+:\d+: ", output, re.MULTILINE)) == 8
    assert "(8 problems)" in output


def test_validate_unknown_name(vq: Cli) -> None:
    code, output = vq(["dsl", "validate", "no_such_strategy"])
    assert code == 2
    assert "not a .yaml file or a shipped strategy" in output
    assert "ema_cross" in output
    assert "Traceback" not in output


def test_validate_missing_yaml_file(vq: Cli, tmp_path: Path) -> None:
    code, output = vq(["dsl", "validate", str(tmp_path / "absent.yaml")])
    assert code == 2
    assert "no such strategy file" in output


def test_python_m_validate_broken() -> None:
    path = BROKEN / "yaml_syntax_error.yaml"
    env = {k: v for k, v in os.environ.items() if k != "VQ_HOME"}
    proc = subprocess.run(
        [sys.executable, "-m", "vibe_quant.dsl", "validate", "--no-catalog", str(path)],
        capture_output=True, text=True, cwd=PROJECT, env=env, timeout=60,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert f"{path}:6:17: YAML syntax error" in proc.stderr
    assert "Traceback" not in output


# -- schema -------------------------------------------------------------------------------------


def test_schema_prints_json(vq: Cli) -> None:
    code, output = vq(["dsl", "schema"])
    assert code == 0
    schema = json.loads(output)
    assert schema["$ref"] == "#/$defs/StrategyDoc"
    assert schema["$schema"].startswith("https://json-schema.org/")
    defs = schema["$defs"]
    assert {"StrategyDoc", "Indicator", "Conditions", "StopLoss", "Session"} <= set(defs)
    enum = defs["Indicator"]["properties"]["type"]["enum"]
    assert {"EMA", "RSI", "MACD", "BBANDS", "ATR", "ICHIMOKU"} <= set(enum)
    assert enum == sorted(enum)
    assert set(defs["StrategyDoc"]["required"]) == {"name", "timeframe", "entry_conditions"}


def test_schema_out_file(vq: Cli, tmp_path: Path) -> None:
    target = tmp_path / "strategy.schema.json"
    code, output = vq(["dsl", "schema", "--out", str(target)])
    assert code == 0
    assert f"wrote {target}" in output
    assert json.loads(target.read_text()) == json_schema()


def schema_problems(value: Any, schema: dict, defs: dict, where: str = "$") -> list[str]:
    """The subset of JSON Schema that msgspec emits ($ref, anyOf, type, enum, pattern, bounds,
    properties/required/additionalProperties, items), checked by hand (jsonschema is not a dependency)."""
    if "$ref" in schema:
        return schema_problems(value, defs[schema["$ref"].rsplit("/", 1)[-1]], defs, where)
    if "anyOf" in schema:
        options = [schema_problems(value, option, defs, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{where}: matches none of anyOf: {options}"]
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is not None:
        ok = isinstance(value, kinds[kind])
    else:
        ok = True
    if not ok:
        return [f"{where}: {value!r} is not {kind}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in enum")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    for bound, test in (("minimum", lambda v, b: v >= b), ("exclusiveMinimum", lambda v, b: v > b),
                        ("maximum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v < b)):  # fmt: skip
        if bound in schema and not test(value, schema[bound]):
            problems.append(f"{where}: {value!r} violates {bound} {schema[bound]}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        problems += [f"{where}: missing {key!r}" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in props:
                problems += schema_problems(item, props[key], defs, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: unknown key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += schema_problems(item, schema["additionalProperties"], defs, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += schema_problems(item, schema["items"], defs, f"{where}[{i}]")
    return problems


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_strategies_match_schema(name: str) -> None:
    schema = json_schema()
    data = yaml.safe_load(shipped(name).read_text())
    assert schema_problems(data, schema, schema["$defs"]) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [("unknown_top_level_key", "$: unknown key 'indicator'"), ("unknown_indicator_type", "$.indicators.rsi.type: 'RSX'"),
     ("wrong_type", "$.indicators.rsi.period: matches none of anyOf"), ("unknown_indicator_parameter", "$.indicators.ema: unknown key 'periods'")],
)  # fmt: skip
def test_schema_rejects_shape_errors(name: str, problem: str) -> None:
    schema = json_schema()
    data = yaml.safe_load((BROKEN / f"{name}.yaml").read_text())
    problems = schema_problems(data, schema, schema["$defs"])
    assert any(p.startswith(problem) for p in problems), problems


# -- show ---------------------------------------------------------------------------------------


def test_show(vq: Cli) -> None:
    code, output = vq(["dsl", "show", "rsi_mean_reversion_mtf"])
    assert code == 0, output
    assert output.startswith("rsi_mean_reversion_mtf v1: Enter on RSI extremes")
    assert "timeframe 5m, higher 1h, 4h (built from closed 5m bars)" in output
    for name in ("rsi_1h", "ema_trend_4h", "atr", "RSI", "EMA", "ATR"):
        assert name in output
    assert "entry long: rsi < rsi_oversold_threshold AND rsi_1h > 40 AND close > ema_trend_4h" in output
    assert "exit short: rsi < 50" in output
    assert "thresholds: rsi_oversold_threshold=30, rsi_overbought_threshold=70" in output
    assert "stop_loss: type=atr_trailing, atr_multiplier=2.0, indicator=atr" in output
    assert "time filters (entries only): sessions 08:00-20:00 UTC" in output
    assert "sweep: 15360 combinations of rsi.period [7, 10, 14, 21, 28]" in output
    assert "  1  " not in output  # no --grid


def test_show_grid(vq: Cli) -> None:
    code, output = vq(["dsl", "show", "ema_cross", "--grid"])
    assert code == 0
    assert "sweep: 9 combinations" in output
    rows = re.findall(r"^\s+(\d+)  (.+)$", output, re.MULTILINE)
    assert [int(i) for i, _ in rows] == list(range(1, 10))
    assert rows[0][1] == "ema_fast.period=10, ema_slow.period=50"
    assert rows[1][1] == "ema_fast.period=10, ema_slow.period=100"
    assert rows[-1][1] == "ema_fast.period=30, ema_slow.period=200"


def test_show_json(vq: Cli) -> None:
    code, output = vq(["dsl", "show", "ema_trend_atr", "--json"])
    assert code == 0
    doc = json.loads(output)
    assert doc == msgspec.to_builtins(load_file(shipped("ema_trend_atr")).doc)
    assert doc["name"] == "ema_trend_atr"
    assert doc["timeframe"] == "1m"
    assert doc["stop_loss"] == {"type": "atr_fixed", "atr_multiplier": 1.5, "indicator": "atr", "percent": None}


def test_show_broken(vq: Cli) -> None:
    code, output = vq(["dsl", "show", str(BROKEN / "lookahead_chikou.yaml")])
    assert code == 2
    assert "lookahead_chikou.yaml:9:7: ichimoku.chikou is refused as look-ahead" in output


# -- save / list --------------------------------------------------------------------------------


def rows(home: Home, table: str, **where: Any) -> list[dict]:
    with StateManager(home.db_path) as state:
        return state.find(table, **where)


def test_save_and_versions(vq: Cli, home: Home, tmp_path: Path) -> None:
    code, output = vq(["dsl", "save", "ema_cross"])
    assert code == 0, output
    assert re.match(r"stored: strategy ema_cross version 1 \(strategies\.id \d+\)", output)
    (row,) = rows(home, "strategies", name="ema_cross")
    assert (row["strategy_type"], row["version"]) == ("dsl", 1)
    assert row["dsl_config"]["indicators"]["ema_fast"]["period"] == 20
    (v1,) = rows(home, "strategy_versions", strategy_id=row["id"])
    assert v1["version"] == 1
    assert v1["source_text"] == shipped("ema_cross").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", v1["sha256"])

    code, output = vq(["dsl", "save", str(shipped("ema_cross"))])
    assert code == 0
    assert output.startswith("unchanged: strategy ema_cross version 1")
    assert len(rows(home, "strategy_versions", strategy_id=row["id"])) == 1

    changed = tmp_path / "ema_cross.yaml"
    text = shipped("ema_cross").read_text()
    assert "ema_fast: { type: EMA, period: 20," in text
    changed.write_text(text.replace("ema_fast: { type: EMA, period: 20,", "ema_fast: { type: EMA, period: 25,"))
    code, output = vq(["dsl", "save", str(changed)])
    assert code == 0
    assert output.startswith("stored: strategy ema_cross version 2")
    (row2,) = rows(home, "strategies", name="ema_cross")
    assert (row2["id"], row2["version"], row2["strategy_type"]) == (row["id"], 2, "dsl")
    assert row2["dsl_config"]["indicators"]["ema_fast"]["period"] == 25
    versions = rows(home, "strategy_versions", strategy_id=row["id"])
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["sha256"] != versions[1]["sha256"]
    assert versions[1]["source_text"] == changed.read_text()

    code, output = vq(["dsl", "save", str(changed)])
    assert output.startswith("unchanged: strategy ema_cross version 2")


def test_save_comment_only_change_is_unchanged(vq: Cli, home: Home, tmp_path: Path) -> None:
    # Versions follow the document's meaning, not its text.
    assert vq(["dsl", "save", "ema_cross"])[0] == 0
    copy = tmp_path / "copy.yaml"
    copy.write_text("# a new comment\n" + shipped("ema_cross").read_text())
    code, output = vq(["dsl", "save", str(copy)])
    assert code == 0
    assert output.startswith("unchanged: strategy ema_cross version 1")


def test_save_broken_stores_nothing(vq: Cli, home: Home) -> None:
    code, output = vq(["dsl", "save", str(BROKEN / "negative_period.yaml")])
    assert code == 2
    assert "negative_period.yaml:5:29:" in output
    assert not home.db_path.exists() or rows(home, "strategies") == []


def test_list(vq: Cli, tmp_path: Path) -> None:
    code, output = vq(["dsl", "list"])
    assert code == 0
    assert "shipped" in output
    assert "state db" not in output
    assert "ema_cross" in output
    assert "ema_trend_atr" in output

    mine = tmp_path / "mine.yaml"
    mine.write_text(shipped("ema_cross").read_text().replace("name: ema_cross", "name: my_ema", 1))
    assert vq(["dsl", "save", str(mine)])[0] == 0
    code, output = vq(["dsl", "list"])
    assert code == 0
    (line,) = [line for line in output.splitlines() if "my_ema" in line]
    assert "state db" in line
    assert "5m" in line
    assert " 1 " in line


# -- sweep --------------------------------------------------------------------------------------


def test_grid_order_and_size() -> None:
    a = load_file(shipped("ema_cross"))
    points = list(sweep.grid(a))
    assert sweep.grid_size(a) == len(points) == 9
    assert points[:4] == [
        {"ema_fast.period": 10, "ema_slow.period": 50},
        {"ema_fast.period": 10, "ema_slow.period": 100},
        {"ema_fast.period": 10, "ema_slow.period": 200},
        {"ema_fast.period": 20, "ema_slow.period": 50},
    ]
    assert list(points[0]) == list(a.doc.sweep)  # keys in file order


def test_grid_size_of_shipped() -> None:
    sizes = {name: sweep.grid_size(load_file(shipped(name))) for name in SHIPPED}
    assert sizes["rsi_mean_reversion_mtf"] == 5 * 4 * 4 * 4 * 3 * 4 * 4
    assert sizes["macd_crossover_session"] == 3 * 3 * 2 * 3 * 3
    assert sizes["bollinger_mean_reversion"] == 3**4


def test_no_sweep_is_one_empty_point() -> None:
    a = load_text("name: plain\ntimeframe: 5m\nentry_conditions:\n  long: [close > 0]\n", "plain.yaml")
    assert sweep.grid_size(a) == 1
    assert list(sweep.grid(a)) == [{}]
    assert sweep.apply_params(a, {}) is a


def test_apply_params() -> None:
    a = load_file(shipped("rsi_mean_reversion_mtf"))
    b = sweep.apply_params(a, {
        "rsi.period": 7, "ema_trend_4h.period": 80, "rsi_oversold_threshold": 25,
        "stop_loss.atr_multiplier": 2.5, "take_profit.percent": 4.0, "position_management.sizing.risk_per_trade": 0.005,
    })  # fmt: skip
    assert b.indicators["rsi"].params["period"] == 7
    assert b.indicators["ema_trend_4h"].params["period"] == 80
    assert b.thresholds["rsi_oversold_threshold"] == 25.0
    assert b.thresholds["rsi_overbought_threshold"] == 70.0
    assert b.doc.stop_loss.atr_multiplier == 2.5
    assert b.doc.take_profit.percent == 4.0
    assert b.doc.position_management.sizing.risk_per_trade == 0.005
    assert (b.source, b.text) == (a.source, a.text)
    # the original is untouched
    assert a.indicators["rsi"].params["period"] == 14
    assert a.thresholds["rsi_oversold_threshold"] == 30.0
    assert a.doc.stop_loss.atr_multiplier == 2.0


def test_apply_params_every_grid_point_of_small_sweeps() -> None:
    for name in ("ema_cross", "ema_trend_atr", "funding_aware_ema"):
        a = load_file(shipped(name))
        assert sweep.check_grid(a) == []
        for params in sweep.grid(a):
            b = sweep.apply_params(a, params)
            for key, value in params.items():
                head, _, param = key.partition(".")
                if head in b.indicators:
                    assert b.indicators[head].params[param] == value
                elif key in b.thresholds:
                    assert b.thresholds[key] == value
                else:
                    assert getattr(getattr(b.doc, head), param) == value


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("rsi.length", "RSI has no parameter 'length'"),
        ("rsii.period", "'rsii' is not a declared indicator or a sweepable section. Did you mean 'rsi'?"),
        ("oversold", "not an indicator parameter (name.param)"),
        ("stop_loss.ratio", "stop_loss has no numeric field 'ratio'"),
    ],
)
def test_apply_params_unknown_key(key: str, fragment: str) -> None:
    a = load_file(shipped("rsi_mean_reversion_mtf"))
    with pytest.raises(ConfigError) as info:
        sweep.apply_params(a, {key: 5})
    assert f"parameter {key!r}" in str(info.value)
    assert fragment in str(info.value)


def test_apply_params_no_stop_loss() -> None:
    with pytest.raises(ConfigError, match=r"'stop_loss\.percent': the strategy has no stop_loss"):
        sweep.apply_params(load_file(shipped("ema_cross")), {"stop_loss.percent": 1.0})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"ema_fast.period": -5}, "ema_fast.period = -5 is out of range"),
        ({"ema_fast.period": 0}, "ema_fast.period = 0 is out of range"),
        ({"ema_fast.period": 2.5}, "ema_fast.period must be a whole number"),
        ({"ema_fast.period": "ten"}, "Expected `int | float | null`, got `str`"),
        ({"stop_loss.atr_multiplier": -1.0}, "Expected `float` > 0.0 - at `$.stop_loss.atr_multiplier`"),
    ],
)
def test_apply_params_rejects_bad_values(params: dict, fragment: str) -> None:
    a = load_file(shipped("ema_trend_atr"))
    with pytest.raises(ConfigError) as info:
        sweep.apply_params(a, params)
    message = str(info.value)
    assert message.startswith(f"ema_trend_atr: parameters {params}")
    assert fragment in message


def test_check_grid_reports_bad_points() -> None:
    # The loader refuses such a sweep (see broken/sweep_bad_value.yaml); analyse() alone does not.
    data = yaml.safe_load(shipped("ema_cross").read_text())
    data["sweep"]["ema_fast.period"] = [10, -1]
    a, issues = analyse(msgspec.convert(data, StrategyDoc, strict=True))
    assert issues == []
    assert a is not None
    bad = sweep.check_grid(a)
    assert [params for params, _ in bad] == [{"ema_fast.period": -1, "ema_slow.period": p} for p in (50, 100, 200)]
    assert all("ema_fast.period = -1 is out of range" in problem for _, problem in bad)
    with pytest.raises(DslError, match=r"sweep ema_fast.period value -1 is outside the range parameters_schema"):
        load_text(yaml.safe_dump(data), "bad_sweep.yaml")
