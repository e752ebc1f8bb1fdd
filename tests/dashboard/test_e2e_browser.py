"""Mission Control end to end in a real browser (Debian's chromium driven by Playwright, nothing downloaded).

A real ``vq dashboard`` serves a copy of the dashboard tests' home (FILUSDT klines of August 2023) on
127.0.0.1. The first test creates a strategy through the Strategies form, launches a small screening sweep
from the Backtests page, waits for its job, opens the Pareto plot, clicks a point, validates it as a
background job and opens that run's detail page (every figure drawn); screenshots go to the test's
``tmp_path``. The second kills a running sweep from the active jobs panel and checks that the job and every
process of its group are gone. The third starts a paper replay from the Paper Trading page and sees its equity
curve drawn. The fourth opens the LPI experiments page (no experiment yet) and launches the shipped example as a
job. Any Streamlit exception box on any page fails the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import free_port
from vibe_quant.backtest.persist import list_runs
from vibe_quant.dashboard.pages.lpi import EXAMPLE
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.jobs import kill_job, list_jobs
from vibe_quant.jobs.procs import group_members, pid_alive
from vibe_quant.state import StateManager

STARTUP_S = 30.0
FIRST_PAGE_MS = 60_000  # the first page imports pandas, plotly and the stages
RERUN_MS = 30_000
JOB_S = 120.0
EXCEPTION = '[data-testid="stException"]'
RUN_FIGURES = 7  # equity, drawdown, monthly returns, trade PnL, PnL breakdown, costs, exposure
NEW = "e2e_ema"


@pytest.fixture(scope="module")
def e2e_home(base_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A private copy of the dashboard tests' base home: these tests write to it (strategies, sweeps, jobs)."""
    root = tmp_path_factory.mktemp("e2e") / "home"
    shutil.copytree(base_home.root, root)
    return Home(root)


@pytest.fixture(scope="module")
def server(e2e_home: Home) -> Iterator[str]:
    """``vq --home HOME dashboard --port P`` on 127.0.0.1 in its own process group; its base URL once healthy."""
    port = free_port()
    log_path = e2e_home.root.parent / "dashboard.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vibe_quant", "--home", str(e2e_home.root), "dashboard",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None and not healthy:
            with contextlib.suppress(httpx.TransportError):
                healthy = httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok"
            if not healthy:
                time.sleep(0.2)
        if not healthy:
            raise RuntimeError(f"vq dashboard did not answer on {url} within {STARTUP_S:g} s "
                               f"(exit code {proc.poll()}):\n{log_path.read_text()[-3000:]}")  # fmt: skip
        yield url
    finally:
        for job in list_jobs(e2e_home, active_only=True):  # left running by a failed test
            with contextlib.suppress(UserError):  # it ended meanwhile
                kill_job(e2e_home, job.id, grace_s=2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def tab(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A fresh browser context (no cookies, no session) and its page; the last page seen is saved as
    ``last.png`` (what a failing test was looking at)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(RERUN_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        with contextlib.suppress(PlaywrightError):
            shot(page, tmp_path / "last.png")
        context.close()


# -- helpers --------------------------------------------------------------------------------------


def no_exception(page: Page) -> None:
    """Fail on a Streamlit exception box (an uncaught error in a page script)."""
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        pytest.fail(f"Streamlit exception on {page.url}:\n" + "\n---\n".join(boxes.all_inner_texts()))


def settle(page: Page, *, timeout_ms: int = RERUN_MS) -> None:
    """Wait until the script run in progress ends (the status widget is gone), then check for exceptions."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=timeout_ms)
    no_exception(page)


def open_page(page: Page, url: str, title: str) -> None:
    """Navigate to `url` and wait for the page's title (``st.title``) and the end of its run."""
    page.goto(url)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=FIRST_PAGE_MS)
    settle(page)


def shows(page: Page, text: str, timeout_ms: int = RERUN_MS) -> None:
    """Wait for `text` on the page (after a rerun) and check for exceptions."""
    expect(page.get_by_text(text).first).to_be_visible(timeout=timeout_ms)
    settle(page)


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label` (the box is opened again if a rerun closed it;
    at most for :data:`RERUN_MS`)."""
    box = page.get_by_label(label, exact=True)
    item = page.get_by_role("option", name=option, exact=True)
    deadline = time.monotonic() + RERUN_MS / 1000
    while True:
        settle(page)
        box.click()
        try:
            item.click(timeout=3_000)
            break
        except PlaywrightError:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")
    expect(box).to_have_value(option)
    settle(page)


def type_into(page: Page, label: str, value: str) -> None:
    """Replace the text of the input labelled `label` and leave it (Tab), as a user does; Enter would submit a form."""
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")
    expect(field).to_have_value(value)
    settle(page)


def shot(page: Page, path: Path) -> Path:
    """Save the whole page as `path`: Streamlit scrolls inside its main area, so the window is made as tall
    as that area for the picture (at most 12,000 px), then put back."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(document.body.scrollHeight,
        ...[...document.querySelectorAll('[data-testid="stMain"] *')].slice(0, 50).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 12_000)})
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    print(f"screenshot: {path}")
    return path


def wait_for(what: str, check: Callable[[], object], timeout_s: float, interval_s: float = 0.25):
    """Poll `check` until it returns something truthy; return it (fail after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def job_row(home: Home, job_id: int) -> dict:
    with StateManager(home.db_path) as state:
        return state.get("background_jobs", job_id)


def newest_job(home: Home) -> dict | None:
    with StateManager(home.db_path) as state:
        rows = state.find("background_jobs")
    return max(rows, key=lambda r: r["id"]) if rows else None


def wait_for_new_job(home: Home, after: int) -> int:
    row = wait_for("a new background job row", lambda: (j := newest_job(home)) and j["id"] > after and j, 30)
    return row["id"]


def finished_job(home: Home, job_id: int, timeout_s: float = JOB_S) -> dict:
    """The job's row once it is no longer running; fail unless it completed (its log in the message)."""
    row = wait_for(f"job {job_id} to finish", lambda: (r := job_row(home, job_id))["status"] != "running" and r,
                   timeout_s, 0.5)  # fmt: skip
    log = Path(row["log_file"]).read_text() if row.get("log_file") else ""
    assert (row["status"], row["exit_code"]) == ("completed", 0), (row, log[-3000:])
    return row


def spawned_workers(pgid: int) -> list[int]:
    """Processes of group `pgid` started by multiprocessing's spawn (a sweep's pool workers)."""
    out = []
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
    return out


def last_job_id(home: Home) -> int:
    row = newest_job(home)
    return row["id"] if row else 0


def plots_drawn(page: Page, scope: str, count: int) -> None:
    """Wait until `count` plotly figures under `scope` have drawn their SVG."""
    expect(page.locator(f"{scope} .js-plotly-plot .main-svg >> nth=0")).to_be_attached(timeout=RERUN_MS)
    expect(page.locator(f"{scope} .js-plotly-plot")).to_have_count(count, timeout=RERUN_MS)
    for i in range(count):
        expect(page.locator(f"{scope} .js-plotly-plot").nth(i).locator(".main-svg").first).to_be_attached()
    no_exception(page)


def click_first_point(page: Page, plot: str) -> int:
    """Click the first marker of the plotly figure `plot` (a WebGL trace has no element to click: its pixel is
    computed from the axes) as a user does; return its ``customdata`` (the sweep row id)."""
    where = page.locator(plot).evaluate("""gd => {
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, trace = gd._fullData[0];
        const box = gd.getBoundingClientRect();
        return {x: box.left + xa._offset + xa.d2p(trace.x[0]), y: box.top + ya._offset + ya.d2p(trace.y[0]),
                id: trace.customdata[0]};
    }""")
    page.mouse.move(where["x"], where["y"])
    page.mouse.click(where["x"], where["y"])
    return int(where["id"])


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.heavy  # heavy (33 s): the browser tests below keep Chromium + Playwright in the default suite
def test_create_screen_and_inspect_a_strategy_in_a_real_browser(server, e2e_home, tab, tmp_path) -> None:
    page = tab
    # Strategies, as the server's first page (a link into a page must work before any visit of the home page):
    # a new strategy from the ema_cross template, then a parameter changed through the form
    open_page(page, f"{server}/strategies", "Strategies")
    page.get_by_text("New strategy from a shipped template").click()
    choose(page, "Template", "ema_cross")
    type_into(page, "Name", NEW)
    page.get_by_role("button", name="Create", exact=True).click()
    shows(page, f"created strategy {NEW} (version 1) from ema_cross")
    expect(page.get_by_label("Strategy", exact=True)).to_have_value(NEW)
    expect(page.get_by_role("heading", name=f"{NEW} - version 1 of 1")).to_be_visible()
    type_into(page, "ema_fast.period", "12")
    page.get_by_role("button", name="Save as a new version", exact=True).click()
    shows(page, f"stored {NEW} version 2")
    expect(page.get_by_role("heading", name=f"{NEW} - version 2 of 2")).to_be_visible()
    shot(page, tmp_path / "strategies.png")
    with StateManager(e2e_home.db_path) as state:
        (strategy,) = state.find("strategies", name=NEW)
        versions = state.find("strategy_versions", order_by="version", strategy_id=strategy["id"])
    assert (strategy["strategy_type"], strategy["version"]) == ("dsl", 2)
    assert [v["dsl_config"]["indicators"]["ema_fast"]["period"] for v in versions] == [20, 12]

    # Backtests: a 4-point sweep of the new strategy on FILUSDT (low hard filters so points pass), two workers
    before = last_job_id(e2e_home)
    open_page(page, f"{server}/backtests", "Backtests")
    choose(page, "strategy", NEW)
    expect(page.get_by_label("ema_fast.period [2..200]", exact=True)).to_have_value("10,20,30")
    type_into(page, "ema_fast.period [2..200]", "8,12")
    type_into(page, "ema_slow.period [5..1000]", "50,100")
    type_into(page, "min trades", "1")
    type_into(page, "max drawdown", "1.00")
    type_into(page, "min profit factor", "0.00")
    type_into(page, "workers", "2")
    page.get_by_role("button", name="Launch the sweep", exact=True).click()
    job = wait_for_new_job(e2e_home, before)
    shows(page, f"job {job} started: vq screen run --strategy {NEW} --symbols FILUSDT")
    expect(page.get_by_text(f"job {job}", exact=True)).to_be_visible()  # the active jobs panel lists it
    row = finished_job(e2e_home, job)
    assert "--sweep" in row["command"]
    assert "ema_fast.period=8,12" in row["command"]
    assert "ema_slow.period=50,100" in row["command"]
    sweep = next(r for r in list_runs(e2e_home, limit=50, sweeps=True) if r["strategy"] == NEW)
    assert sweep["status"] == "completed"
    with StateManager(e2e_home.db_path) as state:
        points = state.find("sweep_results", run_id=sweep["id"])
    assert sorted((p["parameters"]["ema_fast.period"], p["parameters"]["ema_slow.period"]) for p in points) == [
        (8, 50), (8, 100), (12, 50), (12, 100)]  # fmt: skip
    assert all(p["error_message"] is None for p in points)

    # Results: the sweep's Pareto plot, a point clicked, validated as a background job
    open_page(page, f"{server}/results?view=sweep&sweep={sweep['id']}", "Results")
    pareto = f".st-key-pareto-{sweep['id']}"
    plots_drawn(page, pareto, 1)
    shot(page, tmp_path / "pareto.png")
    before = last_job_id(e2e_home)
    point = click_first_point(page, f"{pareto} .js-plotly-plot")
    shows(page, "No validation run yet")
    expect(page.get_by_text(f"Sweep point {point} ·")).to_be_visible()
    shot(page, tmp_path / "pareto_point.png")
    page.get_by_role("button", name="Validate this point", exact=True).click()
    job = wait_for_new_job(e2e_home, before)
    shows(page, f"job {job} started: vq backtest run --strategy {NEW}")
    finished_job(e2e_home, job)
    run = next(r for r in list_runs(e2e_home, limit=50) if r["strategy"] == NEW)
    assert (run["status"], run["run_mode"]) == ("completed", "validation")

    # Results: the run's detail page with every figure drawn
    open_page(page, f"{server}/results?view=run&run={run['id']}", "Results")
    expect(
        page.get_by_role(
            "heading", name=re.compile(r"^Trade log \([1-9][\d,]* trades(, \d+ still open at the end)?\)$")
        )
    ).to_be_visible()
    plots_drawn(page, '[data-testid="stMain"]', RUN_FIGURES)
    shot(page, tmp_path / "run.png")


@pytest.mark.heavy  # heavy (8 s): killing a job and its workers is tested without a browser in tests/jobs
def test_kill_from_the_jobs_panel_ends_the_job_and_its_workers(server, e2e_home, tab, tmp_path) -> None:
    page = tab
    # a sweep of the Python ema_cross on 1m bars long enough to be running when it is killed (25 points, 2 workers)
    before = last_job_id(e2e_home)
    open_page(page, f"{server}/backtests", "Backtests")
    choose(page, "strategy", "ema_cross")
    choose(page, "timeframe", "1m")
    type_into(page, "fast", "5,8,13,21,34")
    type_into(page, "slow", "50,60,70,80,90")
    type_into(page, "min trades", "1")
    page.get_by_role("button", name="Launch the sweep", exact=True).click()
    job = wait_for_new_job(e2e_home, before)
    shows(page, f"job {job} started: vq screen run --strategy ema_cross")
    pgid = job_row(e2e_home, job)["pid"]  # the job's own session: its pid is its process group
    workers = wait_for(f"job {job}'s 2 worker processes", lambda: len(w := spawned_workers(pgid)) == 2 and w, 60)
    members = group_members(pgid)
    assert pgid in members
    assert set(workers) < set(members)
    assert job_row(e2e_home, job)["status"] == "running"

    page.get_by_role("button", name=f"Kill job {job}", exact=True).click()
    shows(page, f"Kill job {job} and its workers (SIGTERM, then SIGKILL)?")
    page.get_by_role("button", name=f"Yes, kill job {job}", exact=True).click()
    shows(page, f"job {job}: killed", timeout_ms=60_000)
    shot(page, tmp_path / "killed.png")
    row = wait_for(f"job {job} marked killed", lambda: (r := job_row(e2e_home, job))["status"] == "killed" and r, 30)
    assert row["error_message"].startswith("killed by vq jobs kill")
    wait_for(f"the processes of group {pgid} to end", lambda: not group_members(pgid), 30)
    assert not [pid for pid in members if pid_alive(pid)]
    expect(page.get_by_role("button", name=f"Kill job {job}", exact=True)).to_have_count(0)


@pytest.mark.heavy  # heavy (17 s): the start form is tested in tests/dashboard/test_paper_pages.py, a session's figures too
def test_a_paper_session_started_from_the_page_draws_its_equity(server, e2e_home, tab, tmp_path) -> None:
    page = tab
    open_page(page, f"{server}/paper", "Paper Trading")
    page.get_by_role("tab", name="Start paper trading").click()
    before = last_job_id(e2e_home)
    page.get_by_role("button", name="Start paper trading", exact=True).click()
    job = wait_for_new_job(e2e_home, before)
    shows(page, f"job {job} started: vq paper start --from-run")
    finished_job(e2e_home, job)
    with StateManager(e2e_home.db_path) as state:
        session = max(state.find("paper_sessions"), key=lambda r: r["id"])
    assert (session["status"], session["bars_done"]) == ("finished", session["bars_total"])
    open_page(page, f"{server}/paper?session={session['id']}", "Paper Trading")
    plots_drawn(page, f".st-key-paper-equity-{session['id']}", 1)
    expect(page.get_by_text(f"{session['snapshot']['equity']:,.2f}", exact=True)).to_be_visible()
    shot(page, tmp_path / "paper.png")


def test_the_lpi_page_says_what_to_run_and_launches_the_example(server, e2e_home, tab, tmp_path) -> None:
    page = tab
    open_page(page, f"{server}/lpi", "LPI experiments")
    shows(page, "No LPI experiment yet")
    page.get_by_role("tab", name="Run an experiment").click()
    before = last_job_id(e2e_home)
    page.get_by_role("button", name="Validate and launch", exact=True).click()
    job = wait_for_new_job(e2e_home, before)
    saved = e2e_home.runs / "experiments" / "lpi-btc-reversion.yaml"
    shows(page, f"job {job} started: vq lpi run {saved}")
    shot(page, tmp_path / "lpi.png")
    # the shipped example, checked and saved as it was shown; this home has FILUSDT klines only, so the run
    # itself stops where `vq lpi run` would, naming the missing ticks
    assert saved.read_text() == EXAMPLE.read_text()
    row = wait_for(f"job {job} to finish", lambda: (r := job_row(e2e_home, job))["status"] != "running" and r, JOB_S)
    assert row["status"] == "failed"
    assert "no trade ticks for BTCUSDT" in Path(row["log_file"]).read_text()
