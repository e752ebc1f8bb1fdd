"""Telemetry benchmark: what watching a paper session costs the trading loop.

Work: a replay paper session (``vq paper start`` in process: ``service.run_replay``) of the
EMA-cross baseline in validation mode on FILUSDT 1m bars 2023-08-01..2023-10-31 (132,480 bars),
at full speed, with its status written every second as always:

* ``plain``: no exporter;
* ``metrics``: ``--metrics-port 0``: the Prometheus exporter on 127.0.0.1, the latency probe on
  the node's message bus (three histograms observed per order) and the gauges set at every flush;
  a scraper thread reads ``/metrics`` every 100 ms during the run (ten times Prometheus' usual
  rate), so serving competes with the loop as it would.

Each run in its own spawned process, variants interleaved (``--repeat`` each). Both must give the
same fills. Figures: replay bars/s (bars / session wall time), the ratio metrics/plain (medians),
scrapes served, and the size of one scrape.

Alerts: what ``AlertDispatcher.notify`` costs its caller (the trading loop) while Telegram is slow:
a real HTTP server on 127.0.0.1 answering ``sendMessage`` after 0.5 s; 2,000 notifications of
mixed kinds with the production rate limit (one message per kind a minute, the rest held and
stored); per-call wall time percentiles, against a plain Python call of the same arguments.

Writes ``benchmarks/results/telemetry.json``.

    uv run python benchmarks/telemetry.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _child import fil_catalog, run_in_child  # noqa: E402

START, END = dt.date(2023, 8, 1), dt.date(2023, 10, 31)


def _child(results, home_root: str, variant: str) -> None:
    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.home import Home
    from vibe_quant.paper.service import create_replay, run_replay
    from vibe_quant.paper.session import Pacing

    home = Home(Path(home_root))
    config = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=START, end=END,
                            params={"fast": 20, "slow": 100, "exposure": 0.1}, mode="validation", latency="retail",
                            leverage=5)  # fmt: skip
    sid, _ = create_replay(home, config, None)
    scrapes = {"n": 0, "bytes": 0}
    stop = threading.Event()
    port = None
    if variant == "metrics":
        import socket

        with socket.socket() as s:  # a free port, so the scraper knows where to look
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

        def scrape() -> None:
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                        body = r.read()
                    scrapes["n"] += 1
                    scrapes["bytes"] = len(body)
                except OSError:
                    pass  # not up yet, or gone
                stop.wait(0.1)

        threading.Thread(target=scrape, daemon=True).start()
    t0 = time.perf_counter()
    outcome = run_replay(home, sid, Pacing(speed=None), metrics_port=port)
    wall = time.perf_counter() - t0
    stop.set()
    results.put({"variant": variant, "bars": outcome.bars_done, "session_s": outcome.elapsed_s, "wall_s": wall,
                 "bars_per_s": outcome.bars_done / outcome.elapsed_s, "fills": len(outcome.result.recorder.fills),
                 "scrapes": scrapes["n"], "scrape_bytes": scrapes["bytes"]})  # fmt: skip


def _alerts_child(results, db_dir: str) -> None:
    import http.server
    import threading as th

    from vibe_quant.alerts.dispatcher import AlertDispatcher
    from vibe_quant.alerts.telegram import TelegramClient
    from vibe_quant.state import StateManager

    class Slow(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(0.5)
            body = b'{"ok": true, "result": {"message_id": 1}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    th.Thread(target=server.serve_forever, daemon=True).start()
    db = Path(db_dir) / "alerts.db"
    StateManager(db).close()  # migrated
    client = TelegramClient("1:benchmark", "1", base_url=f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5)
    dispatcher = AlertDispatcher(db, client)
    kinds = ("strategy_halt", "circuit_breaker", "error", "kill_switch")
    clock = time.perf_counter

    def plain(kind: str, text: str, **fields) -> None:
        return None

    timings = {"notify": [], "plain": []}
    for i in range(2_000):
        kind = kinds[i % len(kinds)]
        for name, call in (("notify", dispatcher.notify), ("plain", plain)):
            t0 = clock()
            call(kind, f"benchmark alert {i}", session=1, n=i)
            timings[name].append(clock() - t0)
    idle = dispatcher.wait_idle(60)
    dispatcher.close(30)
    server.shutdown()

    def pct(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {p: xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))] * 1e6
                for p, q in (("p50_us", 0.5), ("p99_us", 0.99), ("max_us", 1.0))}  # fmt: skip

    with StateManager(db) as state:
        stored = {row[0]: row[1] for row in state.conn.execute("SELECT status, count(*) FROM alerts GROUP BY status")}
    results.put({"notify": pct(timings["notify"]), "plain_call": pct(timings["plain"]), "drained": idle,
                 "stored": stored, "dropped": dispatcher.dropped})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "telemetry.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vq-bench-telemetry-") as tmp:
        root = fil_catalog(tmp, START, END)
        runs = []
        for i in range(args.repeat):
            for variant in ("plain", "metrics"):
                run = run_in_child(_child, root, variant)
                runs.append(run)
                print(f"{i + 1}/{args.repeat} {variant}: {run['bars_per_s']:,.0f} bars/s ({run['session_s']:.2f} s), "
                      f"{run['scrapes']} scrapes of {run['scrape_bytes']:,} bytes, {run['fills']} fills")  # fmt: skip
        alerts = run_in_child(_alerts_child, tmp)
        print(f"alerts: notify p50 {alerts['notify']['p50_us']:.1f} us, p99 {alerts['notify']['p99_us']:.1f} us "
              f"(plain call p50 {alerts['plain_call']['p50_us']:.2f} us) with Telegram answering in 0.5 s; "
              f"stored {alerts['stored']}")  # fmt: skip
    if len({r["fills"] for r in runs}) != 1:
        raise SystemExit(f"variants differ in fills: {[r['fills'] for r in runs]}")
    med = {v: statistics.median(r["bars_per_s"] for r in runs if r["variant"] == v) for v in ("plain", "metrics")}
    payload = {
        "benchmark": "telemetry", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "work": {"strategy": "ema_cross 20/100, exposure 0.1, validation, retail latency, 5x", "symbol": "FILUSDT",
                 "timeframe": "1m", "start": START.isoformat(), "end": END.isoformat(), "bars": runs[0]["bars"],
                 "fills": runs[0]["fills"]},
        "summary": {"plain_bars_per_s_median": med["plain"], "metrics_bars_per_s_median": med["metrics"],
                    "metrics_over_plain": med["metrics"] / med["plain"],
                    "scrapes_median": statistics.median(r["scrapes"] for r in runs if r["variant"] == "metrics")},
        "alerts": alerts,
        "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["summary"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
