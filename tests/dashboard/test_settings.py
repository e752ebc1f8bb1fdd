"""The Settings page: presets created, persisted across restarts and deleted only after confirmation;
latency presets and overfitting defaults stored; system information that never shows a secret."""

from __future__ import annotations

import yaml

from vibe_quant.backtest.latency import custom_latency_presets
from vibe_quant.overfitting.config import stored_defaults
from vibe_quant.risk.config import list_presets, save_preset_data
from vibe_quant.state import StateManager

TIGHT = {"method": "fixed_fractional", "config": {"risk_per_trade": 0.005, "max_position_pct": 0.05}}


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _sizing(home) -> dict[str, dict]:
    with StateManager(home.db_path) as state:
        return {r["name"]: r for r in list_presets(state, "sizing")}


def test_a_sizing_preset_created_on_the_page_persists_across_a_restart(dash_home, page) -> None:
    at = page("settings")
    assert at.radio(key="settings_preset_kind").value == "sizing"
    at.selectbox(key="settings_sizing_preset").set_value("+ new preset").run()
    at.text_input(key="settings_sizing_new_name").set_value("tight")
    at.text_area(key="settings_sizing_yaml_+ new preset").set_value(yaml.safe_dump(TIGHT))
    _button(at, "Save preset").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("saved sizing preset 'tight' (id ")
    stored = _sizing(dash_home)["tight"]
    assert (stored["method"], stored["config"]["risk_per_trade"], stored["config"]["max_position_pct"]) == (
        "fixed_fractional", 0.005, 0.05)  # fmt: skip
    assert stored["config"]["max_leverage"] == 20.0  # the defaults filled in, as `vq sizing save` does

    restarted = page("settings")  # a new session: nothing carried over but the database
    chooser = restarted.selectbox(key="settings_sizing_preset")
    assert "tight" in chooser.options
    chooser.set_value("tight").run()
    shown = yaml.safe_load(restarted.text_area(key="settings_sizing_yaml_tight").value)
    assert shown["config"]["risk_per_trade"] == 0.005


def test_an_invalid_preset_is_refused_with_the_field_named(dash_home, page) -> None:
    at = page("settings")
    at.selectbox(key="settings_sizing_preset").set_value("kelly").run()
    at.text_area(key="settings_sizing_yaml_kelly").set_value("method: kelly\nconfig: {kelly_fraction: 2.0}\n")
    _button(at, "Save preset").click().run()
    assert "kelly_fraction" in at.error[0].value
    assert "not saved" in at.error[0].value
    assert _sizing(dash_home)["kelly"]["config"]["kelly_fraction"] == 0.5


def test_delete_needs_a_confirmation(dash_home, page) -> None:
    with StateManager(dash_home.db_path) as state:
        save_preset_data(state, "sizing", "tight", TIGHT, "test")
    at = page("settings")
    at.selectbox(key="settings_sizing_preset").set_value("tight").run()
    _button(at, "Delete preset").click().run()
    assert "tight" in _sizing(dash_home)  # one click alone deletes nothing
    assert at.warning[0].value.startswith("Delete the sizing preset 'tight'? This cannot be undone")
    _button(at, "Cancel").click().run()
    assert "tight" in _sizing(dash_home)
    assert all(b.label != "Yes, delete preset" for b in at.button)

    _button(at, "Delete preset").click().run()
    _button(at, "Yes, delete preset").click().run()
    assert not at.exception
    assert "tight" not in _sizing(dash_home)
    assert at.success[0].value == "deleted sizing preset 'tight'"
    assert "tight" not in at.selectbox(key="settings_sizing_preset").options


def test_a_preset_a_run_uses_cannot_be_deleted(dash_home, page) -> None:
    with StateManager(dash_home.db_path) as state:  # as a run started with --risk seed_default records it
        preset = state.find("risk_configs", name="seed_default")[0]["id"]
        state.update("backtest_runs", state.find("backtest_runs")[0]["id"], {"risk_config_id": preset})
    at = page("settings")
    at.radio(key="settings_preset_kind").set_value("risk").run()
    assert at.selectbox(key="settings_risk_preset").options == ["seed_default", "live_safety", "+ new preset"]
    _button(at, "Delete preset").click().run()
    _button(at, "Yes, delete preset").click().run()
    assert at.error[0].value == (
        "**not deleted**: risk preset 'seed_default' is referenced by 1 backtest run(s); save over it instead"
    )
    with StateManager(dash_home.db_path) as state:
        assert state.find("risk_configs", name="seed_default")


def test_latency_presets_and_overfitting_defaults_are_stored(dash_home, page) -> None:
    at = page("settings")
    at.text_input(key="latency_name").set_value("my_vps")
    for field, ns in zip(("base", "insert", "update", "cancel"), (5_000_000, 2_000_000, 2_000_000, 1_000_000),
                         strict=True):  # fmt: skip
        at.number_input(key=f"latency_{field}").set_value(ns)
    _button(at, "Save latency preset").click().run()
    assert at.success[0].value == "saved latency preset 'my_vps'"
    table = next(d.value for d in at.dataframe if "preset" in d.value.columns)
    row = table[table["preset"] == "my_vps"].iloc[0]
    assert (row["kind"], row["base"], row["insert"], row["order travels"]) == ("custom", "5 ms", "2 ms", "7 ms")

    editor = at.text_area(key="overfit_yaml_False")
    data = yaml.safe_load(editor.value)
    assert data["pbo"] == {"enabled": False, "n_splits": 16, "max_pbo": 0.2}
    data["pbo"]["n_splits"] = 7  # odd: refused
    editor.set_value(yaml.safe_dump(data))
    _button(at, "Save overfitting defaults").click().run()
    assert "n_splits must be even" in at.error[0].value
    data["pbo"]["n_splits"] = 8
    at.text_area(key="overfit_yaml_False").set_value(yaml.safe_dump(data))
    _button(at, "Save overfitting defaults").click().run()
    assert at.success[0].value == "saved the overfitting defaults"

    restarted = page("settings")
    assert yaml.safe_load(restarted.text_area(key="overfit_yaml_True").value)["pbo"]["n_splits"] == 8
    with StateManager(dash_home.db_path) as state:
        assert custom_latency_presets(state) == {"my_vps": (5_000_000, 2_000_000, 2_000_000, 1_000_000)}
        assert stored_defaults(state).pbo.n_splits == 8


def _all_text(at) -> str:
    """Every element of the page as protobuf text (dataframes included, as their Arrow bytes)."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
            parts.append(repr(proto.SerializeToString()))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def test_system_information_never_shows_a_secret(dash_home, page, monkeypatch) -> None:
    secrets = {"BINANCE_API_SECRET": "bnsecret-7f3a9c1d2e", "VQ_TELEGRAM_TOKEN": "123456:tgtoken-AAEx9Q"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    at = page("settings")
    text = _all_text(at)
    assert "BINANCE_API_SECRET" in text
    assert "VQ_TELEGRAM_TOKEN" in text
    for value in secrets.values():
        assert value not in text  # ... their values never
    frames = [d.value for d in at.dataframe]
    versions = next(f for f in frames if list(f.columns) == ["package", "version"])
    assert dict(zip(versions["package"], versions["version"], strict=True))["vibe-quant"] == "0.1.0"
    bars = next(f for f in frames if "5m" in f.columns)
    assert bars.loc["FILUSDT", "1m"] == 44640
    assert bars.loc["FILUSDT", "4h"] == 186
    tables = next(f for f in frames if list(f.columns) == ["table", "rows"])
    rows = dict(zip(tables["table"], tables["rows"], strict=True))
    assert (rows["backtest_runs"], rows["strategies"], rows["settings"]) == (2, 2, 0)
