"""Dashboard benchmark: how fast the Results page draws a big sweep and a 900k-bar run, in a real browser.

Work (real data): every FILUSDT 1m bar in ../shared/data (21 months, 902,880 bars) backtested with
the EMA cross 20/100 in validation mode (its bundle's equity curve has one point per bar), and a
10,000-point screening sweep of the EMA cross (fast 2..101 x slow 105..600 step 5) on FILUSDT 4h
over 2023-02..2023-10, every point a real backtest (2 workers). The dashboard is served by ``vq dashboard``
on 127.0.0.1; Debian's chromium (Playwright) opens

* ``/results?view=sweep&sweep=ID``: the Pareto scatter of 10,000 points, the funnel, the table;
* ``/results?view=run&run=ID``: the metrics, every figure of the run (equity, drawdown, exposure
  ... over 902,880 bars), the trade log;

timed from navigation to every figure drawn (``.main-svg`` of each plot, the table's canvas),
each in a new tab of one browser profile (static assets cached, as for a user) and in a fresh
profile (``_cold``), medians of `--repeat`. Baseline, in the same browser: the run's raw
902,880-point equity curve as one Plotly WebGL figure (what ``plotly.express.line`` sends without
decimation) against our min/max-decimated curve (SVG, ~4,000 points), both as static pages. Also the run's HTML tearsheet: size
and time to write. Writes ``benchmarks/results/dashboard.json``.

    uv run python benchmarks/dashboard.py [--repeat 5] [--home DIR (reuse a home it built)]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from _child import fil_home  # noqa: E402

SWEEP_FAST = list(range(2, 102))  # 100 values
SWEEP_SLOW = list(range(105, 605, 5))  # 100 values -> 10,000 points


def build(home_dir: Path) -> dict:
    """The home: FILUSDT 1m catalog, the 900k-bar run, the 10,000-point sweep (skipped when already there)."""
    from vibe_quant.backtest.config import BacktestConfig
    from vibe_quant.backtest.persist import list_runs
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.home import Home
    from vibe_quant.instruments.specs import InstrumentSpecs
    from vibe_quant.progress import rich_progress
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, create_screening_run, run_screening
    from vibe_quant.state import StateManager

    home = Home(home_dir)
    timings = {}
    if not (home_dir / "catalog").exists():
        t0 = time.perf_counter()
        home = fil_home(str(home_dir))
        timings["ingest_s"] = time.perf_counter() - t0
    runs = [r for r in list_runs(home, limit=50) if r["status"] == "completed" and r["timeframe"] == "1m"]
    if runs:
        run_row = runs[0]["id"]
    else:
        config = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="1m", start=dt.date(2023, 2, 1),
                                end=dt.date(2026, 6, 30), params={"fast": 20, "slow": 100, "exposure": 0.5},
                                mode="validation", latency="retail", leverage=5)  # fmt: skip
        t0 = time.perf_counter()
        with rich_progress(True) as progress:
            run_row, _, _ = execute(home, plan_run(config), InstrumentSpecs(), progress=progress)
        timings["backtest_s"] = time.perf_counter() - t0
    sweeps = [r for r in list_runs(home, limit=50, sweeps=True) if r["points"] == len(SWEEP_FAST) * len(SWEEP_SLOW)]
    if sweeps:
        sweep_row = sweeps[0]["id"]
    else:
        base = BacktestConfig(strategy="ema_cross", symbols=("FILUSDT",), timeframe="4h", start=dt.date(2023, 2, 1),
                              end=dt.date(2023, 10, 31), mode="screening", leverage=5)  # fmt: skip
        spec = SweepSpec(overrides={"fast": SWEEP_FAST, "slow": SWEEP_SLOW}, max_points=0,
                         filters=HardFilters(min_trades=10, max_drawdown=0.5, min_profit_factor=1.0))  # fmt: skip
        with StateManager(home.db_path) as db:
            sweep_row = create_screening_run(db, base, spec)
        t0 = time.perf_counter()
        with rich_progress(True) as progress:
            task = progress.task(f"screening run {sweep_row}", None)
            run_screening(home, sweep_row, workers=2, on_progress=lambda d, t, _r: progress.update(task, d, t))
        timings["sweep_s"] = time.perf_counter() - t0
    return {"home": home, "run": run_row, "sweep": sweep_row, "timings": timings}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home_dir: Path, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "vibe_quant", "--home", str(home_dir), "dashboard", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the dashboard did not answer within 60 s")


def time_page(browser, url: str, plots: int, table: bool) -> float:
    """Seconds from navigation until `plots` Plotly figures (and the table's canvas) are drawn, in a new tab of
    `browser` (a Browser: a fresh profile, nothing cached; a BrowserContext: the user's tab with its cache)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}) if hasattr(browser, "contexts") \
        else browser.new_page()  # fmt: skip
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {plots}"
        + (" && document.querySelector('[data-testid=\"stDataFrame\"] canvas') !== null" if table else ""),
        timeout=120_000,
    )
    elapsed = time.perf_counter() - t0
    errors = page.locator('[data-testid="stException"]').count()
    page.close()
    if errors:
        raise RuntimeError(f"{url}: the page shows a Streamlit exception")
    return elapsed


def time_static(browser, html: Path) -> float:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t0 = time.perf_counter()
    page.goto(html.as_uri())
    page.wait_for_function("document.body.dataset.plotsReady === '1'", timeout=300_000)
    elapsed = time.perf_counter() - t0
    page.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="a home this script built (reused)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from vibe_quant.plots.run import equity_figure
    from vibe_quant.present.html import figure_block, page
    from vibe_quant.present.report import write_run_report
    from vibe_quant.results import load_run

    tmp = None
    if args.home is None:
        tmp = tempfile.TemporaryDirectory(prefix="vq-bench-dash-")
        args.home = Path(tmp.name) / "home"
    built = build(args.home.resolve())
    home = built["home"]
    r = load_run(home, str(built["run"]))
    t0 = time.perf_counter()
    report = write_run_report(r)
    report_s = time.perf_counter() - t0
    static = Path(tempfile.mkdtemp(prefix="vq-bench-static-"))
    ts, eq = r.equity["ts"].to_numpy(), r.equity["equity"].to_numpy()
    import pandas as pd
    import plotly.graph_objects as go

    # what plotly express does with 900k points (render_mode auto -> WebGL), without decimation
    raw = go.Figure(go.Scattergl(x=pd.to_datetime(ts, unit="ns"), y=eq, mode="lines", name="equity"))
    (static / "raw.html").write_text(page("raw", "", [("", figure_block("raw", raw))]))
    (static / "decimated.html").write_text(page("dec", "", [("", figure_block("dec", equity_figure(ts, eq)))]))
    port = free_port()
    server = serve(home.root, port)
    base = f"http://127.0.0.1:{port}"
    sweep_url, run_url = (
        f"{base}/results?view=sweep&sweep={built['sweep']}",
        f"{base}/results?view=run&run={built['run']}",
    )
    n_run_plots = 7
    times: dict[str, list[float]] = {"sweep_page": [], "run_page": [], "sweep_page_cold": [], "run_page_cold": [],
                                     "raw_equity_static": [], "decimated_equity_static": []}  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            tab = browser.new_context(viewport={"width": 1400, "height": 1000})  # a user's browser: assets cached
            time_page(tab, sweep_url, 1, True)  # the first visits load the server's caches and the browser's
            time_page(tab, run_url, n_run_plots, True)
            for _ in range(args.repeat):
                times["sweep_page"].append(time_page(tab, sweep_url, 1, True))
                times["run_page"].append(time_page(tab, run_url, n_run_plots, True))
                times["sweep_page_cold"].append(time_page(browser, sweep_url, 1, True))  # a fresh profile each time
                times["run_page_cold"].append(time_page(browser, run_url, n_run_plots, True))
                times["raw_equity_static"].append(time_static(browser, static / "raw.html"))
                times["decimated_equity_static"].append(time_static(browser, static / "decimated.html"))
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "dashboard", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "work": {"run_bars": len(r.equity), "run_trades": len(r.trades), "sweep_points": len(SWEEP_FAST) * len(SWEEP_SLOW),
                 "repeat": args.repeat},
        "build_timings_s": built["timings"],
        "seconds": times, "median_s": med,
        "targets": {"sweep_page_under_2s": med["sweep_page"] < 2.0, "run_page_under_2s": med["run_page"] < 2.0,
                    "report_under_5mb": report.stat().st_size < 5_000_000},
        "report": {"bytes": report.stat().st_size, "write_s": report_s},
        "static_html_bytes": {"raw": (static / "raw.html").stat().st_size, "decimated": (static / "decimated.html").stat().st_size},
        "ratios": {"raw_over_decimated_equity_draw": med["raw_equity_static"] / med["decimated_equity_static"]},
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "dashboard.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_s"], indent=2), json.dumps(result["targets"]), json.dumps(result["report"]))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
