"""A real home for the dashboard tests, built once per session through ``vq``: FILUSDT klines of August 2023,
the multi-timeframe RSI strategy saved, and two EMA-cross backtests (one with a 15% drawdown halt that trips,
one without risk); then one copy per test that writes, so tests never see each other's changes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import MIRROR, vq
from vibe_quant.home import Home

HALT_ONLY = """\
strategy_level: {max_drawdown_scale_pct: null, max_daily_loss_pct: null, max_consecutive_losses: null}
portfolio_level: {max_portfolio_drawdown_pct: null, max_portfolio_daily_loss_pct: null, max_total_exposure_pct: null,
                  max_correlated_exposure_pct: null}
"""
BACKTEST = ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT-PERP", "--timeframe", "5m",
            "--start", "2023-08-01", "--end", "2023-08-31", "--param", "fast=20", "--param", "slow=100",
            "--param", "exposure=2.0", "--json"]  # fmt: skip


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """Read only: the session's real home (see the module docstring)."""
    root = tmp_path_factory.mktemp("dashboard") / "home"
    halt = root.parent / "halt_only.yaml"
    halt.write_text(HALT_ONLY)
    for args in (
        [
            "data",
            "ingest",
            "--source",
            str(MIRROR),
            "--symbols",
            "FILUSDT",
            "--start",
            "2023-08-01",
            "--end",
            "2023-08-31",
        ],
        ["dsl", "save", "rsi_mean_reversion_mtf"],
        [*BACKTEST, "--risk", str(halt)],
        BACKTEST,
    ):
        code, out, err = vq(["--home", str(root), "-q", *args])
        assert code == 0, (args, out, err)
    return Home(root)


@pytest.fixture
def dash_home(base_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A private copy of the base home as ``$VQ_HOME`` (run bundles stay in the base home, as their paths say)."""
    root = tmp_path / "home"
    shutil.copytree(base_home.root, root)
    monkeypatch.setenv("VQ_HOME", str(root))
    return Home(root)


@pytest.fixture
def read_only_home(base_home: Home, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv("VQ_HOME", str(base_home.root))
    return base_home


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's script runner installs the script as ``sys.modules["__main__"]`` and leaves it there; a later
    test's spawned worker would then import that temporary script as its main module and die. Put pytest's back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def _page_script(page: str) -> None:
    import importlib

    importlib.import_module(f"vibe_quant.dashboard.pages.{page}").render()


@pytest.fixture
def page() -> Callable[[str], AppTest]:
    """``page("settings")``: a fresh session (a new AppTest, as after a restart) that renders one page, run once."""

    def start(name: str) -> AppTest:
        at = AppTest.from_function(_page_script, args=(name,), default_timeout=30).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return start
