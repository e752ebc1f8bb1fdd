"""Settings in the state database: the generic store and the stages' typed settings on top of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe_quant.backtest.latency import (
    custom_latency_presets,
    delete_latency_preset,
    latency_presets,
    save_latency_preset,
)
from vibe_quant.errors import ConfigError, UserError
from vibe_quant.overfitting.config import OverfittingConfig, reset_defaults, save_defaults, stored_defaults
from vibe_quant.state import StateManager
from vibe_quant.state.settings import all_settings, delete_setting, get_setting, set_setting


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vibe_quant.db"


def test_a_setting_survives_reopening_and_delete_restores_the_default(db_path: Path) -> None:
    with StateManager(db_path) as state:
        assert get_setting(state, "ui.page_size", 50) == 50
        set_setting(state, "ui.page_size", 100)
        set_setting(state, "ui.page_size", {"rows": 25})  # replaces
    with StateManager(db_path) as state:
        assert get_setting(state, "ui.page_size", 50) == {"rows": 25}
        assert list(all_settings(state)) == ["ui.page_size"]
        assert delete_setting(state, "ui.page_size") is True
        assert delete_setting(state, "ui.page_size") is False
        assert get_setting(state, "ui.page_size", 50) == 50


def test_bad_keys_and_values_are_config_errors(db_path: Path) -> None:
    with StateManager(db_path) as state:
        with pytest.raises(ConfigError, match=r"setting key 'PageSize': use dotted lowercase names"):
            get_setting(state, "PageSize")
        with pytest.raises(ConfigError, match=r"setting ui.x: a value is required"):
            set_setting(state, "ui.x", None)
        with pytest.raises(ConfigError, match=r"setting ui.x: the value cannot be stored as JSON"):
            set_setting(state, "ui.x", float("nan"))


def test_custom_latency_presets(db_path: Path) -> None:
    with StateManager(db_path) as state:
        save_latency_preset(state, "my_vps", (5_000_000, 2_000_000, 2_000_000, 1_000_000))
    with StateManager(db_path) as state:
        assert custom_latency_presets(state) == {"my_vps": (5_000_000, 2_000_000, 2_000_000, 1_000_000)}
        presets = latency_presets(state)
        assert presets["retail"] == (200_000_000, 100_000_000, 100_000_000, 100_000_000)
        assert presets["my_vps"] == (5_000_000, 2_000_000, 2_000_000, 1_000_000)
        with pytest.raises(ConfigError, match=r"latency preset 'retail' is built in"):
            save_latency_preset(state, "retail", (1, 1, 1, 1))
        with pytest.raises(ConfigError, match=r"latency preset x: insert = -1 ns; give an integer in \[0, "):
            save_latency_preset(state, "x", (0, -1, 0, 0))
        with pytest.raises(UserError, match=r"latency preset 'retail' is built in and cannot be deleted"):
            delete_latency_preset(state, "retail")
        delete_latency_preset(state, "my_vps")
        assert custom_latency_presets(state) == {}


def test_overfitting_defaults(db_path: Path) -> None:
    with StateManager(db_path) as state:
        assert stored_defaults(state) == OverfittingConfig()
        saved = save_defaults(state, {"pbo": {"enabled": True, "n_splits": 8}})
        assert saved.pbo.n_splits == 8
        with pytest.raises(ConfigError, match=r"n_splits must be even"):
            save_defaults(state, {"pbo": {"n_splits": 7}})
        with pytest.raises(
            ConfigError,
            match=r"unknown section overfitting.walkforward; sections: .*, consistency\. Did you mean 'walk_forward'",
        ):
            save_defaults(state, {"walkforward": {}})
    with StateManager(db_path) as state:
        assert stored_defaults(state).pbo.n_splits == 8
        assert stored_defaults(state).pbo.enabled is True
        assert reset_defaults(state) is True
        assert stored_defaults(state) == OverfittingConfig()
