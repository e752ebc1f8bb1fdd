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
scrapes served, and the size of one scrape. Writes ``benchmarks/results/telemetry.json``.

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
from _child import MIRROR, run_in_child  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "telemetry.json")
    args = parser.parse_args()
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs

    with tempfile.TemporaryDirectory(prefix="vq-bench-telemetry-") as tmp:
        home = Home(Path(tmp)).ensure()
        run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("klines",), START, END + dt.timedelta(days=1)),
                   InstrumentSpecs())  # fmt: skip
        runs = []
        for i in range(args.repeat):
            for variant in ("plain", "metrics"):
                run = run_in_child(_child, str(home.root), variant)
                runs.append(run)
                print(f"{i + 1}/{args.repeat} {variant}: {run['bars_per_s']:,.0f} bars/s ({run['session_s']:.2f} s), "
                      f"{run['scrapes']} scrapes of {run['scrape_bytes']:,} bytes, {run['fills']} fills")  # fmt: skip
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
        "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["summary"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
