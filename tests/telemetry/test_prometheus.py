"""A real Prometheus on 127.0.0.1 scrapes a paper replay's exporter (a background job) and the jobs
exporter; PromQL holds the values the session reports, and every Grafana panel query returns a series."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.telemetry.test_exporter import DEPLOY, tool

BARS = 8 * 96
SPEED = 691_200 / 6  # the 8 replayed days in about 6 s
LINGER_S = 8.0
WAIT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of a dashboard, its template variables substituted."""
    dashboard = json.loads(path.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$session", ".*").replace("$__rate_interval", "15s")
            assert "$" not in expr, expr
            out.append((panel["title"], expr))
    return out


@pytest.fixture
def prometheus(tmp_path):
    """`start(targets)`: a Prometheus scraping {job: port} every second, with deploy's rules; its base URL."""
    binary = tool("prometheus")
    procs = []

    def start(targets: dict[str, int]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        scrape = "\n".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{p}']"
                           for job, p in targets.items())  # fmt: skip
        config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n"
                          f"  - {DEPLOY / 'prometheus' / 'rules.yml'}\nscrape_configs:\n{scrape}\n")  # fmt: skip
        log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 (closed with the process)
        procs.append((subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                                        f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
                                       stdout=log, stderr=subprocess.STDOUT), log))  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            if procs[-1][0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not become ready: {(tmp_path / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def query(url: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    body = httpx.get(f"{url}/api/v1/query", params=params, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def scalar(url: str, expr: str, at: float) -> float:
    result = query(url, expr, at)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def test_prometheus_scrapes_a_paper_session_and_every_dashboard_query_has_a_series(run_home, cli, prometheus,
                                                                                    tmp_path, monkeypatch):  # fmt: skip
    """The session's strategy breaker halts it after each losing trade (run 2's risk file): besides the
    figures, exactly one Telegram message goes out and exactly one alert rule fires (issue 20)."""
    from tests.alerts.conftest import CHAT, TOKEN, FakeTelegram
    from tests.alerts.test_end_to_end import TRIP_ON_FIRST_LOSS
    from vibe_quant.jobs import get_job, kill_job
    from vibe_quant.paper import store
    from vibe_quant.state import StateManager
    from vibe_quant.telemetry.exporter import jobs_registry, start_exporter

    risk = tmp_path / "trip.yaml"
    risk.write_text(TRIP_ON_FIRST_LOSS)
    code, out = cli(["--home", str(run_home.root), "backtest", "run", "--strategy", "ema_trend_atr", "--symbols",
                     "FILUSDT-PERP", "--timeframe", "15m", "--start", "2023-08-01", "--end", "2023-08-08", "--risk",
                     str(risk), "--json"])  # fmt: skip
    assert code == 0, out
    telegram = FakeTelegram()
    telegram.thread.start()
    for name, value in {"VQ_TELEGRAM_BOT_TOKEN": TOKEN, "VQ_TELEGRAM_CHAT_ID": CHAT,
                        "VQ_TELEGRAM_API_URL": telegram.url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)  # the background job inherits them
    jobs_exporter, jobs_port = start_exporter(jobs_registry(run_home.db_path))
    paper_port = free_port()
    url = prometheus({"vq-paper": paper_port, "vq-dashboard": jobs_port})
    job_id = None
    try:
        code, out = cli(["--home", str(run_home.root), "paper", "start", "--from-run", "2", "--speed", str(SPEED),
                         "--metrics-port", str(paper_port), "--metrics-linger", str(LINGER_S), "--detach", "--json"])  # fmt: skip
        assert code == 0, out
        started = json.loads(out.strip().splitlines()[-1])
        session, job_id = started["session"], started["job"]
        # the final snapshot (every bar done) scraped twice while the session lingers
        deadline = time.monotonic() + WAIT_S
        while True:
            last = f'vq_bars_done{{session="{session}"}}[3s]'
            done = query(url, f"count_over_time({last}) and min_over_time({last}) >= {BARS}")
            if done and float(done[0]["value"][1]) >= 2:
                at = float(done[0]["value"][0])
                break
            job = get_job(run_home, job_id)
            if job.status != "running" or time.monotonic() > deadline:
                log = Path(job.log_file).read_text()[-3000:] if job.log_file else ""
                pytest.fail(f"no two scrapes of the finished session (job {job.status}): {log}")
            time.sleep(0.5)

        with StateManager(run_home.db_path) as db:
            row = store.get_session(db, session)
            checkpoint = store.last_checkpoint(db, session)
            fills = store.fill_records(db, session)
        assert (row["status"], checkpoint["reason"], checkpoint["bars_done"]) == ("finished", "finish", BARS)
        state, snap = checkpoint["state"], row["snapshot"]
        s = f'session="{session}"'
        assert scalar(url, f"vq_equity_usdt{{{s}}}", at) == state["equity"] == snap["equity"]
        assert scalar(url, f"vq_fees_paid_usdt{{{s}}}", at) == state["costs"]["fees"] == snap["costs"]["fees"]
        assert scalar(url, f"vq_fills{{{s}}}", at) == len(fills) == snap["costs"]["fills"] > 0
        assert scalar(url, f'vq_order_events_total{{{s},event="filled"}}', at) == len(fills)
        market = [f for f in fills if f["order_type"] == "MARKET"]
        assert 0 < len(market) < len(fills)
        # every fill of an accepted (non-market) order is timed from its ack; decisions from their bar
        assert scalar(url, f"vq_ack_to_fill_seconds_count{{{s}}}", at) == len(fills) - len(market)
        decided = scalar(url, f'vq_order_events_total{{{s},event="initialized"}}', at)
        assert (
            scalar(url, f"vq_tick_to_decision_seconds_count{{{s}}}", at)
            == decided
            >= len({f["order_id"] for f in fills})
        )
        assert scalar(url, f'vq_job_heartbeat_age_seconds{{job_id="{job_id}"}}', at) < 120
        assert scalar(url, f"vq_strategy_active{{{s}}}", at) == 1.0
        rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"][0]["rules"]
        assert sorted(r["name"] for r in rules) == ["VqBreakerTripped", "VqDrawdown", "VqJobHeartbeatStale",
                                                    "VqSessionStale", "VqStrategyHalted"]  # fmt: skip
        assert all(r["health"] == "ok" for r in rules), rules
        # the breaker tripped several times: one firing alert (per session), one Telegram message
        assert len(state["breakers"]["trips"]) >= 2
        firing = query(url, 'ALERTS{alertstate="firing"}', at)
        assert [(a["metric"]["alertname"], a["metric"]["session"]) for a in firing] == [("VqBreakerTripped",
                                                                                       str(session))]  # fmt: skip

        empty = []
        for name in ("paper.json", "system.json"):
            for title, expr in panel_queries(DEPLOY / "grafana" / name):
                if not query(url, expr, at):
                    empty.append(f"{name}: {title}: {expr}")
        assert not empty, "panel queries without a series:\n" + "\n".join(empty)

        deadline = time.monotonic() + LINGER_S + 30
        while get_job(run_home, job_id).status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get_job(run_home, job_id).status == "completed"
        (message,) = telegram.messages()  # the session drained its alerts before ending
        assert "strategy breaker consecutive_losses tripped" in message
    finally:
        jobs_exporter.stop()
        telegram.server.shutdown()
        telegram.server.server_close()
        if job_id is not None and get_job(run_home, job_id).status == "running":
            kill_job(run_home, job_id)


def test_every_panel_query_is_promql_with_our_metric_names() -> None:
    known = re.compile(r"\b(vq_[a-z_]+|up)\b")
    for name in ("paper.json", "system.json"):
        dashboard = json.loads((DEPLOY / "grafana" / name).read_text())
        assert dashboard["templating"]["list"][0]["name"] == "datasource"
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for title, expr in panel_queries(DEPLOY / "grafana" / name):
            assert known.search(expr), (title, expr)
