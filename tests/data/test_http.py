"""``vq data ingest`` over HTTP against a real loopback server serving the shared archive mirror.

The server (``tests/data/servers.py``) serves ``../shared/data/binance-vision`` byte for byte,
so every URL the downloader builds is the official ``data.binance.vision`` path. Faults are
injected by the server (error statuses, a wrong ``.CHECKSUM``), never by mocking the client.
Retries use a fast policy (3 attempts, 10 ms backoff) injected through ``open_source``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vibe_quant.data.ingest as ingest_module
from tests.conftest import MIRROR, kline_zip
from tests.data.servers import ArchiveApp, serve
from vibe_quant.data.files import KLINES
from vibe_quant.data.ingest import IngestRequest, resolve_range, run_ingest
from vibe_quant.data.sources import HttpSource, LocalSource, RetryPolicy, is_url
from vibe_quant.errors import (
    ChecksumMismatchError,
    DataFileError,
    UnknownSymbolError,
    UserError,
    VenueError,
)
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

MONTHS = ("2023-08", "2023-09", "2023-10")
MINUTES = {"2023-08": 31 * 1440, "2023-09": 30 * 1440, "2023-10": 31 * 1440}
ATTEMPTS = 3
FAST_RETRY = RetryPolicy(attempts=ATTEMPTS, backoff_s=0.01)
KLINES_DIR = "/data/futures/um/monthly/klines/FILUSDT/1m"


def zip_path(month: str) -> str:
    """URL path of the official monthly FILUSDT 1m zip for `month`."""
    return f"{KLINES_DIR}/FILUSDT-1m-{month}.zip"


def published_sha256(month: str) -> str:
    path = kline_zip("FILUSDT", month)
    return path.with_name(path.name + ".CHECKSUM").read_text().split()[0]


def request(source: str, start: dt.date = dt.date(2023, 8, 1), end: dt.date = dt.date(2023, 11, 1)) -> IngestRequest:
    return IngestRequest(source, ("FILUSDT",), (KLINES,), start, end)


def cli_args(home: Home, source: str, *extra: str) -> list[str]:
    return [
        "data",
        "--home",
        str(home.root),
        "--quiet",
        "ingest",
        "--source",
        source,
        "--datasets",
        "klines",
        "--start",
        "2023-08-01",
        "--end",
        "2023-10-31",
        *extra,
    ]


def catalog_digests(home: Home) -> dict[str, str]:
    """``{path relative to catalog/data: sha256 of the bytes}`` of every catalog data file."""
    base = home.catalog / "data"
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*.parquet")}


def table_counts(home: Home) -> dict[str, int]:
    with StateManager(home.db_path) as db:
        return {table: db.count(table) for table in ("raw_files", "ingest_units", "unit_sources")}


def assert_nothing_committed(home: Home) -> None:
    assert list(home.catalog.rglob("*.parquet")) == []
    assert not (home.catalog / ".staging").exists()
    assert table_counts(home) == {"raw_files": 0, "ingest_units": 0, "unit_sources": 0}


def expected_bars(months: tuple[str, ...]) -> dict[str, int]:
    minutes = sum(MINUTES[m] for m in months)
    return {"1m": minutes, "5m": minutes // 5, "15m": minutes // 15, "1h": minutes // 60, "4h": minutes // 240}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open http(s) sources with a 3-attempt, 10 ms retry policy (the library and the CLI)."""

    def open_source(source: str, market: str = "um") -> LocalSource | HttpSource:
        return HttpSource(source, FAST_RETRY, market=market) if is_url(source) else LocalSource(source, market)

    monkeypatch.setattr(ingest_module, "open_source", open_source)


@pytest.fixture
def archive() -> ArchiveApp:
    return ArchiveApp(MIRROR)


@pytest.fixture
def archive_url(archive: ArchiveApp) -> Iterator[str]:
    with serve(archive) as url:
        yield url


@pytest.fixture(scope="module")
def mirror_digests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Catalog digests of FILUSDT 2023-08..2023-10 ingested from the local mirror directory."""
    home = Home(tmp_path_factory.mktemp("mirror") / "home").ensure()
    report = run_ingest(home, request(str(MIRROR)), InstrumentSpecs())
    assert report.bars_written() == expected_bars(MONTHS)
    return catalog_digests(home)


def test_http_zip_and_csv_sources_give_identical_catalogs(
    tmp_path: Path,
    home: Home,
    specs: InstrumentSpecs,
    archive: ArchiveApp,
    archive_url: str,
    mirror_digests: dict[str, str],
) -> None:
    report = run_ingest(home, request(archive_url), specs)

    assert report.bars_written() == expected_bars(MONTHS)
    assert report.files == 3
    assert report.warnings == []
    assert report.skipped == []
    assert archive.hits == Counter({zip_path(m) + suffix: 1 for m in MONTHS for suffix in ("", ".CHECKSUM")})
    with StateManager(home.db_path) as db:
        raws = db.find("raw_files", order_by="period_start_ns")
    assert [r["source"] for r in raws] == [archive_url + zip_path(m) for m in MONTHS]
    assert [r["original_name"] for r in raws] == [f"FILUSDT-1m-{m}.zip" for m in MONTHS]
    assert [r["sha256"] for r in raws] == [published_sha256(m) for m in MONTHS]
    for raw in raws:
        stored = (home.archive / raw["archive_path"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == raw["sha256"]

    flat = tmp_path / "flat"
    flat.mkdir()
    for month in MONTHS:
        with zipfile.ZipFile(kline_zip("FILUSDT", month)) as zf:
            (member,) = zf.namelist()
            (flat / f"FILUSDT-1m-{month}.csv").write_bytes(zf.read(member))
    from_csv = Home(tmp_path / "csv").ensure()
    csv_report = run_ingest(from_csv, request(str(flat)), specs)
    assert csv_report.bars_written() == expected_bars(MONTHS)

    http_digests = catalog_digests(home)
    assert len(http_digests) == 5 * len(MONTHS) + 1  # 5 timeframes per month + the instrument
    assert http_digests == mirror_digests
    assert catalog_digests(from_csv) == http_digests


def test_http_missing_month_404_is_skipped_with_a_warning(
    home: Home, specs: InstrumentSpecs, archive: ArchiveApp, archive_url: str
) -> None:
    assert not kline_zip("FILUSDT", "2023-07").exists()  # a real gap in the mirror
    start, end = resolve_range(dt.date(2026, 1, 1), start=dt.date(2023, 7, 1), end=dt.date(2023, 8, 31))

    report = run_ingest(home, request(archive_url, start, end), specs)

    missing = archive_url + zip_path("2023-07")
    assert report.warnings == [f"{missing}: not found (404), skipped"]
    assert report.bars_written() == expected_bars(("2023-08",))
    assert [u.start_ms for u in report.units] == [1_690_848_000_000]  # 2023-08-01 00:00 UTC
    # A 404 is an answer, not a failure: asked once each, never retried.
    assert archive.hits[zip_path("2023-07") + ".CHECKSUM"] == 1
    assert archive.hits[zip_path("2023-07")] == 1
    with StateManager(home.db_path) as db:
        assert [r["source"] for r in db.find("raw_files")] == [archive_url + zip_path("2023-08")]


def test_http_persistent_500_raises_venue_error_after_bounded_retries(
    tmp_path: Path,
    home: Home,
    specs: InstrumentSpecs,
    archive: ArchiveApp,
    archive_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    archive.fail_always[zip_path("2023-09")] = 500
    failing_url = archive_url + zip_path("2023-09")

    with pytest.raises(VenueError) as excinfo:
        run_ingest(home, request(archive_url), specs)

    assert type(excinfo.value) is VenueError
    assert str(excinfo.value) == f"{failing_url}: HTTP 500 after {ATTEMPTS} attempts; try again later"
    assert archive.hits[zip_path("2023-09")] == ATTEMPTS
    assert_nothing_committed(home)
    with StateManager(home.db_path) as db:
        runs = db.find("ingest_runs")
        errors = db.find("ingest_errors")
    assert [(r["status"], r["error_message"]) for r in runs] == [("failed", str(excinfo.value))]
    assert [e["message"] for e in errors] == [str(excinfo.value)]

    archive.reset()
    cli_home = Home(tmp_path / "cli")
    code, output = cli(cli_args(cli_home, archive_url, "--symbols", "FILUSDT"))

    assert code == 3
    assert "venue error (retry later)" in output
    assert f"HTTP 500 after {ATTEMPTS} attempts" in output
    assert archive.hits[zip_path("2023-09")] == ATTEMPTS
    assert_nothing_committed(cli_home)


@pytest.mark.parametrize(
    ("suffix", "status"),
    [("", 500), (".CHECKSUM", 503), ("", 429)],
    ids=["zip-500", "checksum-503", "zip-429"],
)
def test_http_transient_failure_is_retried_and_the_ingest_succeeds(
    home: Home,
    specs: InstrumentSpecs,
    archive: ArchiveApp,
    archive_url: str,
    mirror_digests: dict[str, str],
    suffix: str,
    status: int,
) -> None:
    flaky = zip_path("2023-09") + suffix
    archive.fail_first[flaky] = deque([status])

    report = run_ingest(home, request(archive_url), specs)

    assert archive.hits[flaky] == 2
    assert archive.fail_first[flaky] == deque()
    assert report.bars_written() == expected_bars(MONTHS)
    assert catalog_digests(home) == mirror_digests
    assert table_counts(home) == {"raw_files": 3, "ingest_units": 3, "unit_sources": 3}


def test_http_checksum_mismatch_is_a_data_file_error_after_one_redownload(
    tmp_path: Path,
    home: Home,
    specs: InstrumentSpecs,
    archive: ArchiveApp,
    archive_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    wrong = "0" * 64
    archive.overrides[zip_path("2023-09") + ".CHECKSUM"] = f"{wrong}  FILUSDT-1m-2023-09.zip\n".encode()

    with pytest.raises(ChecksumMismatchError) as excinfo:
        run_ingest(home, request(archive_url), specs)

    assert isinstance(excinfo.value, DataFileError)
    message = str(excinfo.value)
    assert message.startswith(
        f"{archive_url}{zip_path('2023-09')}: sha256 {published_sha256('2023-09')} "
        f"does not match the published .CHECKSUM {wrong}"
    )
    assert "CHECKSUM" in message
    assert "Fix: the download is corrupt" in message
    assert archive.hits[zip_path("2023-09")] == 2  # downloaded once more before giving up
    assert archive.hits[zip_path("2023-09") + ".CHECKSUM"] == 1
    assert_nothing_committed(home)

    archive.reset()
    cli_home = Home(tmp_path / "cli")
    code, output = cli(cli_args(cli_home, archive_url, "--symbols", "FILUSDT"))

    assert code == 2
    assert "error:" in output
    assert "does not match the published .CHECKSUM" in output
    assert archive.hits[zip_path("2023-09")] == 2
    assert_nothing_committed(cli_home)


def test_http_rerun_is_a_noop_that_downloads_only_checksums(
    home: Home, specs: InstrumentSpecs, archive: ArchiveApp, archive_url: str
) -> None:
    first = run_ingest(home, request(archive_url), specs)
    assert first.files == 3
    digests, counts = catalog_digests(home), table_counts(home)
    archive.reset()

    second = run_ingest(home, request(archive_url), specs)

    assert sorted(second.skipped) == [f"FILUSDT-1m-{m}.zip" for m in MONTHS]
    assert second.units == []
    assert second.files == 0
    assert second.bars_written() == {}
    assert archive.hits == Counter({zip_path(m) + ".CHECKSUM": 1 for m in MONTHS})
    assert table_counts(home) == counts == {"raw_files": 3, "ingest_units": 3, "unit_sources": 3}
    assert catalog_digests(home) == digests
    with StateManager(home.db_path) as db:
        assert [r["status"] for r in db.find("ingest_runs")] == ["completed", "completed"]


def test_http_ingest_needs_known_symbols(
    home: Home,
    specs: InstrumentSpecs,
    archive: ArchiveApp,
    archive_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    with pytest.raises(UserError) as excinfo:
        run_ingest(home, IngestRequest(archive_url, None, (KLINES,), dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    assert type(excinfo.value) is UserError
    assert str(excinfo.value) == "--symbols is required when downloading (e.g. --symbols BTCUSDT,ETHUSDT)"
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol 'FILUSD'.* Did you mean FILUSDT\b"):
        run_ingest(home, IngestRequest(archive_url, ("FILUSD",), (KLINES,)), specs)

    code, output = cli(cli_args(home, archive_url))
    assert code == 2
    assert "--symbols is required when downloading" in output

    code, output = cli(cli_args(home, archive_url, "--symbols", "FILUSD"))
    assert code == 2
    assert "unknown symbol 'FILUSD'" in output
    assert "Did you mean FILUSDT," in output

    assert archive.hits == Counter()  # rejected before any download
    assert not home.db_path.exists()


def test_http_coin_m_ticks_and_spot_klines_use_the_official_urls(
    home: Home, specs: InstrumentSpecs, archive: ArchiveApp, archive_url: str
) -> None:
    """Tick and spot datasets are downloaded from their own archive folders and checksummed."""
    day = dt.date(2026, 5, 8)
    cm = run_ingest(
        home,
        IngestRequest(archive_url, ("BTCUSD_PERP",), ("aggTrades",), day, day + dt.timedelta(days=1), market="cm"),
        specs,
    )
    spot = run_ingest(
        home,
        IngestRequest(archive_url, ("BTCUSDT",), ("klines",), day, day + dt.timedelta(days=2), "spot", "1h"),
        specs,
    )

    assert cm.bars_written() == {"trades": 105_280}
    assert spot.bars_written() == {"1h": 48}
    cm_path = "/data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
    spot_paths = [f"/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-{d}.zip" for d in ("08", "09")]
    assert archive.hits == Counter({p + suffix: 1 for p in (cm_path, *spot_paths) for suffix in ("", ".CHECKSUM")})
    with StateManager(home.db_path) as db:
        raws = {r["original_name"]: r for r in db.find("raw_files")}
    assert raws["BTCUSD_PERP-aggTrades-2026-05-08.zip"]["market"] == "futures-cm"
    assert raws["BTCUSDT-1h-2026-05-08.zip"]["market"] == "spot"
    assert raws["BTCUSDT-1h-2026-05-08.zip"]["interval"] == "1h"
    published = (MIRROR / cm_path.lstrip("/")).read_bytes()
    assert raws["BTCUSD_PERP-aggTrades-2026-05-08.zip"]["sha256"] == hashlib.sha256(published).hexdigest()


def test_http_tick_months_are_planned_day_by_day() -> None:
    """A month of ticks is gigabytes: the planner asks for daily files even for whole months."""
    source = HttpSource("http://127.0.0.1:9", FAST_RETRY, market="um")
    planned, missing = source.plan("aggTrades", "BTCUSDT", dt.date(2024, 3, 1), dt.date(2024, 4, 1))
    assert missing == []
    assert len(planned) == 31
    assert {p.file.kind for p in planned} == {"daily"}
    assert planned[0].location == (
        "http://127.0.0.1:9/data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-03-01.zip"
    )
    klines, _ = source.plan("markPriceKlines", "BTCUSDT", dt.date(2024, 3, 1), dt.date(2024, 4, 1), "1m")
    assert [p.location for p in klines] == [
        "http://127.0.0.1:9/data/futures/um/monthly/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-03.zip"
    ]
    metrics, _ = source.plan("metrics", "BTCUSDT", dt.date(2024, 3, 1), dt.date(2024, 4, 1))
    assert len(metrics) == 31  # Binance publishes metrics per day only
