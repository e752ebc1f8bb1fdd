"""Shared fixtures. Tests read real data from ../shared/data (beside the project root)."""

from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
MIRROR = SHARED_DATA / "binance-vision"
CM_DAY = MIRROR / "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
PROXY_DAY = dt.date(2026, 5, 8)
UM_KLINES = MIRROR / "data" / "futures" / "um" / "monthly" / "klines"
FUNDING_FILE = MIRROR / "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"


def kline_zip(symbol: str, month: str) -> Path:
    """Return the real monthly 1m kline zip of `symbol` for `month` (``YYYY-MM``)."""
    return UM_KLINES / symbol / "1m" / f"{symbol}-1m-{month}.zip"


@pytest.fixture(scope="session")
def specs() -> InstrumentSpecs:
    return InstrumentSpecs()


@pytest.fixture(scope="session")
def aug_2023_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FILUSDT and NEARUSDT klines of August 2023 (1m to 4h), ingested once per session: read only."""
    import datetime as dt

    from vibe_quant.data.ingest import IngestRequest, run_ingest

    home = Home(tmp_path_factory.mktemp("aug_2023") / "home").ensure()
    request = IngestRequest(str(MIRROR), ("FILUSDT", "NEARUSDT"), ("klines",), dt.date(2023, 8, 1), dt.date(2023, 9, 1))
    run_ingest(home, request, InstrumentSpecs())
    return home.catalog


def linked_home(root: Path, catalog: Path) -> Home:
    """A fresh home at `root` whose catalog is a link to `catalog` (a shared one: read only)."""
    home = Home(root).ensure()
    home.catalog.rmdir()
    home.catalog.symlink_to(catalog, target_is_directory=True)
    return home


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture(scope="session", autouse=True)
def _shared_data_present() -> None:
    if not (MIRROR / "data").is_dir():
        raise RuntimeError(f"real test data not found at {SHARED_DATA}: the tests need ../shared/data")


@pytest.fixture(scope="session", autouse=True)
def _perp_kernel_compiled() -> None:
    """Compile the perp kernel once, here, before any test starts worker processes: they then load it
    from numba's on-disk cache (~1 s) instead of each compiling it (~15 s, on both cores at once)."""
    from vibe_quant.sim.session import warm_up

    warm_up()


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """``vq`` installs log handlers (one writes into the test's home); drop them after each test.

    A library calling ``logging.config.dictConfig`` in-process (import-linter's ``lint_imports``)
    disables every logger that exists at that moment; re-enable them, or later tests log nothing.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.disabled = False
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], tuple[int, str]]:
    """Run ``vq`` in-process (no $VQ_HOME); return (exit code, stdout + stderr)."""
    from vibe_quant.cli import app, run

    monkeypatch.delenv("VQ_HOME", raising=False)

    def invoke(args: list[str]) -> tuple[int, str]:
        code = run(app, args)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return invoke


def vq(args: list[str]) -> tuple[int, str, str]:
    """Run ``vq`` in-process with stdout and stderr kept apart; return (code, stdout, stderr).

    Usable from module-scoped fixtures (no capsys); the autouse fixture above restores the
    root logger after each test.
    """
    from vibe_quant.cli import app, run

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(app, args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def results_home(tmp_path_factory: pytest.TempPathFactory):
    """A home with stored backtests, a screening sweep and its overfitting report (tests/results_home.py): read only."""
    from tests.results_home import build_results_home

    return build_results_home(tmp_path_factory.mktemp("results") / "home")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never `playwright install`: nothing is downloaded).

    One per module: Playwright's sync API keeps an asyncio loop marked running on the main thread until it
    stops, and a paper session run in-process afterwards (``asyncio.run``) would refuse to start."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def telegram():
    """A real HTTP server on 127.0.0.1 speaking the Bot API's sendMessage (tests/alerts/conftest.py:FakeTelegram)."""
    from tests.alerts.conftest import FakeTelegram

    fake = FakeTelegram()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def ingest_proxy_day(root: Path, reverse_rows: bool = False) -> Home:
    """A home under `root` whose catalog holds BTCUSDT trade ticks of 2026-05-08: the USD-M proxy of
    the real COIN-M day (``data/proxy.py``), ingested with the real ingester (`reverse_rows`: the
    CSV's rows written newest first, so the ingester has to sort them)."""
    from vibe_quant.data.ingest import IngestRequest, run_ingest
    from vibe_quant.data.proxy import proxy_path, write_linear_proxy

    csv = write_linear_proxy(CM_DAY, proxy_path(root / "src", "BTCUSDT", PROXY_DAY.isoformat()))
    if reverse_rows:
        lines = csv.read_text().splitlines()
        csv.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    home = Home(root / "home").ensure()
    request = IngestRequest(str(root / "src"), ("BTCUSDT",), ("aggTrades",), PROXY_DAY, PROXY_DAY + dt.timedelta(1))
    run_ingest(home, request, InstrumentSpecs())
    return home


@pytest.fixture(scope="session")
def proxy_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """:func:`ingest_proxy_day` once per session. Read only (copy it to write)."""
    return ingest_proxy_day(tmp_path_factory.mktemp("proxy"))


REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 and a free port, nothing saved to disk; stopped at teardown."""
    import redis

    binary = shutil.which("redis-server") or REDIS_SERVER
    if not Path(binary).is_file():
        pytest.fail("redis-server is not installed: `apt-get install redis-server` (.ci/run installs it)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = (workdir / "redis.log").open("w")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", str(workdir)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10.0
        for _ in range(200):
            if proc.poll() is not None:
                tail = (workdir / "redis.log").read_text()[-2000:]
                pytest.fail(f"redis-server exited with {proc.returncode}: {tail}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {port} did not answer PING within 10 s")
            time.sleep(0.05)
        else:
            pytest.fail(f"redis-server on port {port} did not answer PING")
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
