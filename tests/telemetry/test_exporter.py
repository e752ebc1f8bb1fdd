"""The exporter on 127.0.0.1, the deploy files under promtool, and the CLI's metrics flags."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from vibe_quant.errors import UserError
from vibe_quant.telemetry.exporter import PaperTelemetry, start_exporter

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: .ci/run installs Debian's prometheus package (it ships promtool); "
                    "here: apt-get install prometheus")  # fmt: skip
    return path


def test_exporter_serves_the_registry_on_loopback_and_stops() -> None:
    registry = CollectorRegistry()
    Gauge("vq_test_value", "A test gauge.", registry=registry).set(4.25)
    exporter, port = start_exporter(registry)
    try:
        assert exporter.server.server_address[0] == "127.0.0.1"
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "vq_test_value 4.25" in body
        assert "python_gc" not in body  # a dedicated registry, not the process-global one
    finally:
        exporter.stop()
    exporter.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_taken_port_is_a_user_error_and_a_non_local_address_warns(caplog) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(UserError, match=f"--metrics-port {taken}: cannot listen on 127.0.0.1:{taken}"):
            start_exporter(CollectorRegistry(), taken)
    with caplog.at_level(logging.WARNING, logger="vibe_quant.telemetry.exporter"):
        exporter, _ = start_exporter(CollectorRegistry(), 0, "127.0.0.2")  # loopback, but not the default
        exporter.stop()
    assert "binds 127.0.0.2: positions and equity are served, unauthenticated" in caplog.text
    with pytest.raises(UserError, match="--metrics-linger -1"):
        PaperTelemetry(1, 0, linger_s=-1)


def test_paper_telemetry_without_a_node_serves_the_snapshot_and_zero_latencies() -> None:
    telemetry = PaperTelemetry(3, 0)
    try:
        telemetry.update({"equity": 101.5, "balance": 100.0, "starting_balance": 100.0, "positions": [],
                          "open_orders": [], "strategies": {"S-1": {"state": "HALTED"}}, "breakers": None,
                          "costs": {"fees": 0.5}, "cursor_ns": 2_000_000_000, "bars_done": 3, "bars_total": None})  # fmt: skip
        body = httpx.get(f"http://127.0.0.1:{telemetry.port}/metrics", timeout=5).text
    finally:
        telemetry.close()
    assert 'vq_equity_usdt{session="3"} 101.5' in body
    assert 'vq_strategy_active{session="3",strategy="S-1"} 0.0' in body
    assert 'vq_fees_paid_usdt{session="3"} 0.5' in body
    assert 'vq_bars_total{session="3"} NaN' in body
    assert 'vq_ack_to_fill_seconds_count{session="3"} 0.0' in body


def test_promtool_checks_the_config_and_rules_and_the_rule_tests_pass() -> None:
    promtool = tool("promtool")
    prom = DEPLOY / "prometheus"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"],
                 ["test", "rules", "rules_test.yml"]):  # fmt: skip
        done = subprocess.run([promtool, *args], cwd=prom, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([promtool, "check", "rules", "rules.yml"], cwd=prom, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert "SUCCESS: 5 rules found" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics-port", "70000"], "--metrics-port 70000: a TCP port, 0 to 65535"),
        (["--metrics-port", "0", "--metrics-linger", "-2"], "--metrics-linger -2.0: seconds, >= 0"),
        (["--feed", "testnet", "--metrics-port", "9108"], "--metrics-port serves replay sessions"),
    ],
)
def test_bad_metrics_flags_name_the_flag(run_home, cli, args, message) -> None:
    code, out = cli(["--home", str(run_home.root), "paper", "start", "--from-run", "1", *args])
    assert code != 0
    assert message in out


def test_vq_metrics_serve_exposes_the_jobs_of_the_home(tmp_path) -> None:
    import re
    import subprocess
    import sys
    import urllib.request

    from vibe_quant.home import Home
    from vibe_quant.state import StateManager

    home = Home(tmp_path / "home").ensure()
    with StateManager(home.db_path) as db:
        db.insert("background_jobs", {"job_type": "paper", "status": "running", "pid": 1, "label": "watched",
                                      "heartbeat_at": "2020-01-01T00:00:00Z"})  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "vibe_quant", "--home", str(home.root), "metrics", "serve",
                             "--port", "0", "--seconds", "20"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)/metrics", line).group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert "vq_jobs_running 1.0" in body
    age = re.search(r'vq_job_heartbeat_age_seconds\{[^}]*label="watched"[^}]*\} (\S+)', body)
    assert age is not None
    assert float(age.group(1)) > 3600 * 24 * 365  # heartbeat from 2020
