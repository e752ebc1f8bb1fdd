"""The app script with its navigation, and ``vq dashboard``: the streamlit command it runs, the warning off
localhost, the missing-extra error, and a real server answering on 127.0.0.1."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import vq
from vibe_quant.cli import dashboard as dashboard_cli
from vibe_quant.dashboard.app import PAGES


def test_every_page_is_a_module_with_render_and_the_script_is_the_packaged_one() -> None:
    assert [module for module, _, _ in PAGES] == [
        "overview", "backtests", "results", "lpi", "rl_training", "model_registry", "discovery", "dolphin", "paper", "live", "data_lake", "strategies", "risk", "logs", "settings"]  # fmt: skip
    for module, _, _ in PAGES:
        assert callable(importlib.import_module(f"vibe_quant.dashboard.pages.{module}").render)
    app = dashboard_cli.app_script()
    assert app == Path(importlib.util.find_spec("vibe_quant.dashboard").origin).parent / "entry" / "app.py"
    assert app.is_file()
    assert not (app.parent / "pages").exists()  # Streamlit would serve such a folder's scripts as pages


def test_the_app_opens_on_the_overview_and_marks_dead_runs_failed(dash_home) -> None:
    import subprocess
    import sys

    from vibe_quant.state import StateManager

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with StateManager(dash_home.db_path) as db:
        row = db.find("backtest_runs")[0]
        db.update("backtest_runs", row["id"], {"status": "running", "pid": dead.pid, "started_at": row["created_at"],
                                               "heartbeat_at": row["created_at"]})  # fmt: skip
    at = AppTest.from_file(str(dashboard_cli.app_script()), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Overview"]
    assert [c.value for c in at.sidebar.code] == [str(dash_home.root)]
    with StateManager(dash_home.db_path) as db:
        after = db.get("backtest_runs", row["id"])
    assert after["status"] == "failed"
    assert str(dead.pid) in after["error_message"]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict]]:
    """``subprocess.call`` of the dashboard command, recorded instead of run."""
    calls: list[tuple[list[str], dict]] = []

    def call(cmd: list[str], env: dict) -> int:
        calls.append((cmd, env))
        return 0

    monkeypatch.setattr(dashboard_cli.subprocess, "call", call)
    return calls


def test_vq_dashboard_runs_streamlit_on_localhost(tmp_path: Path, launched) -> None:
    code, out, err = vq(["dashboard", "--home", str(tmp_path / "home"), "--port", "8610"])
    assert code == 0, err
    ((cmd, env),) = launched
    assert cmd == [sys.executable, "-m", "streamlit", "run", str(dashboard_cli.app_script()),
                   "--server.address", "127.0.0.1", "--server.port", "8610", "--server.headless", "true",
                   "--browser.gatherUsageStats", "false"]  # fmt: skip
    assert env["VQ_HOME"] == str((tmp_path / "home").resolve())
    assert "WARNING" not in err
    assert "Mission Control on http://localhost:8610" in out


def test_vq_dashboard_warns_loudly_off_localhost(tmp_path: Path, launched) -> None:
    code, _, err = vq(["--home", str(tmp_path / "home"), "dashboard", "--address", "0.0.0.0"])
    assert code == 0
    assert launched[0][0][launched[0][0].index("--server.address") + 1] == "0.0.0.0"
    assert "WARNING: binding the dashboard to 0.0.0.0" in err
    assert "has no authentication" in " ".join(err.split())


def test_vq_dashboard_without_streamlit_names_the_extra(tmp_path: Path, launched, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "streamlit", None)  # find_spec then reports it missing
    code, _, err = vq(["--home", str(tmp_path / "home"), "dashboard"])
    assert code == 2
    assert "the dashboard needs streamlit, which is not installed. Fix: uv sync --extra dashboard" in " ".join(
        err.split()
    )
    assert launched == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vq_dashboard_serves_on_127_0_0_1(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vibe_quant", "--home", str(tmp_path / "home"), "dashboard",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, f"no answer on 127.0.0.1:{port} (exit code {proc.poll()})"
        assert (health.status_code, health.text) == (200, "ok")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
