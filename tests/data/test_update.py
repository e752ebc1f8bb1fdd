"""``vq data update`` against a real loopback imitation of the Binance USD-M REST API.

The server (``tests/data/servers.py``) answers ``/fapi/v1/time`` with a settable clock and
``/fapi/v1/klines`` with the REAL rows of ``FILUSDT-1m-2023-09.zip`` in Binance's JSON layout,
honouring ``startTime``/``endTime``/``limit`` like Binance. So the bars an update builds from
REST pages can be compared with the bars the monthly archive file gives for the same minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import MIRROR, kline_zip
from tests.data.servers import BinanceRestApp, serve
from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
from vibe_quant.data.files import KLINES
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.data.update import MAX_ATTEMPTS, parse_since, rest_page_name, run_update
from vibe_quant.errors import UserError, VenueError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

MINUTE_MS = 60_000
NS_PER_MS = 1_000_000
INSTRUMENT = "FILUSDT-PERP.BINANCE"
AUGUST_MINUTES = 31 * 1440
AUGUST_BARS = {
    "1m": AUGUST_MINUTES,
    "5m": AUGUST_MINUTES // 5,
    "15m": AUGUST_MINUTES // 15,
    "1h": AUGUST_MINUTES // 60,
    "4h": AUGUST_MINUTES // 240,
}
LABELS = tuple(AUGUST_BARS)


def utc_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1000


SEP1 = utc_ms(2023, 9, 1)
AT_0317_30 = utc_ms(2023, 9, 1, 3, 17, 30)
AT_0430_05 = utc_ms(2023, 9, 1, 4, 30, 5)
AT_SEP2_0600_30 = utc_ms(2023, 9, 2, 6, 0, 30)  # 1800 closed minutes after SEP1: two pages


def catalog_bars(home: Home, label: str, start_ms: int | None = None, end_ms: int | None = None) -> list[tuple]:
    """Bars of `label` with close time in ``(start_ms, end_ms]`` as (close ns, o, h, l, c, v) decimals."""
    kwargs = {}
    if start_ms is not None:
        kwargs["start"] = start_ms * NS_PER_MS + 1
    if end_ms is not None:
        kwargs["end"] = end_ms * NS_PER_MS
    bar_type = TIMEFRAME_BY_LABEL[label].bar_type(INSTRUMENT)
    bars = ParquetDataCatalog(str(home.catalog)).bars([bar_type], **kwargs)
    return [(b.ts_event, *(Decimal(str(x)) for x in (b.open, b.high, b.low, b.close, b.volume))) for b in bars]


def catalog_digests(home: Home) -> dict[str, str]:
    base = home.catalog / "data"
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*.parquet")}


def table_counts(home: Home) -> dict[str, int]:
    with StateManager(home.db_path) as db:
        return {t: db.count(t) for t in ("raw_files", "ingest_units", "unit_sources", "ingest_runs")}


def ingest_month(home: Home, specs: InstrumentSpecs, month: int) -> None:
    start = dt.date(2023, month, 1)
    end = dt.date(2023, month + 1, 1)
    report = run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), (KLINES,), start, end), specs)
    assert report.files == 1


@pytest.fixture
def august_home(home: Home, specs: InstrumentSpecs) -> Home:
    """A home holding the real FILUSDT 2023-08 month: 1m coverage ends 2023-09-01 00:00."""
    ingest_month(home, specs, 8)
    return home


@pytest.fixture(scope="module")
def september_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A fresh home with the real monthly FILUSDT-1m-2023-09.zip ingested: the reference bars."""
    home = Home(tmp_path_factory.mktemp("september") / "home").ensure()
    ingest_month(home, InstrumentSpecs(), 9)
    return home


@pytest.fixture
def rest() -> BinanceRestApp:
    return BinanceRestApp(kline_zip("FILUSDT", "2023-09"), "FILUSDT", AT_0317_30)


@pytest.fixture
def rest_url(rest: BinanceRestApp) -> Iterator[str]:
    with serve(rest) as url:
        yield url


def update_args(home: Home, url: str, *extra: str, symbol: str = "FILUSDT-PERP") -> list[str]:
    return ["data", "--home", str(home.root), "--quiet", "update", "--symbol", symbol, "--rest-url", url, *extra]


def test_update_appends_closed_minutes_and_the_buckets_they_complete(
    august_home: Home, specs: InstrumentSpecs, rest: BinanceRestApp, rest_url: str
) -> None:
    report = run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    until = utc_ms(2023, 9, 1, 3, 17)
    assert (report.since_ms, report.until_ms, report.pages, report.up_to_date) == (SEP1, until, 1, False)
    assert report.result is not None
    assert report.result.written == {"1m": 197, "5m": 39, "15m": 13, "1h": 3, "4h": 0}
    expected = {
        "1m": (197, until),  # opens 00:00 .. 03:16, last close 03:17
        "5m": (39, utc_ms(2023, 9, 1, 3, 15)),
        "15m": (13, utc_ms(2023, 9, 1, 3, 15)),
        "1h": (3, utc_ms(2023, 9, 1, 3, 0)),
        "4h": (0, SEP1),  # bucket 00:00-04:00 is not complete
    }
    for label, (new, last_close) in expected.items():
        bars = catalog_bars(august_home, label)
        assert len(bars) == AUGUST_BARS[label] + new, label
        assert bars[-1][0] == last_close * NS_PER_MS, label
        closes = [b[0] for b in bars]
        assert closes == sorted(set(closes)), label
    # The new 1m bars are exactly the server's rows (prices and volumes as decimal strings).
    first_new = catalog_bars(august_home, "1m", SEP1, SEP1 + MINUTE_MS)
    row = rest.rows[rest.open_times.index(SEP1)]
    assert first_new == [((SEP1 + MINUTE_MS) * NS_PER_MS, *(Decimal(x) for x in row[1:6]))]
    klines = [q for p, q in rest.requests if p == "/fapi/v1/klines"]
    assert klines == [
        {"symbol": "FILUSDT", "interval": "1m", "startTime": str(SEP1), "endTime": str(until - 1), "limit": "1500"}
    ]


def test_second_update_completes_the_4h_bar_equal_to_the_monthly_archive(
    august_home: Home, specs: InstrumentSpecs, rest: BinanceRestApp, rest_url: str, september_home: Home
) -> None:
    run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)
    rest.server_time_ms = AT_0430_05

    report = run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    until = utc_ms(2023, 9, 1, 4, 30)
    assert (report.since_ms, report.until_ms) == (utc_ms(2023, 9, 1, 3, 17), until)
    assert report.result is not None
    assert report.result.written == {"1m": 73, "5m": 15, "15m": 5, "1h": 1, "4h": 1}
    four_hour = catalog_bars(august_home, "4h", SEP1, until)
    assert [b[0] for b in four_hour] == [utc_ms(2023, 9, 1, 4) * NS_PER_MS]
    assert four_hour == catalog_bars(september_home, "4h", SEP1, until)
    # Every bar in the span, including the 5m/15m/1h buckets that straddle both updates.
    for label, n in {"1m": 270, "5m": 54, "15m": 18, "1h": 4}.items():
        updated = catalog_bars(august_home, label, SEP1, until)
        assert len(updated) == n, label
        assert updated == catalog_bars(september_home, label, SEP1, until), label


def test_update_paginates_archives_raw_pages_and_never_stores_the_open_kline(
    august_home: Home, specs: InstrumentSpecs, rest: BinanceRestApp, rest_url: str
) -> None:
    rest.server_time_ms = AT_SEP2_0600_30
    rest.open_kline = True
    until = utc_ms(2023, 9, 2, 6, 0)
    # The server really serves the still-open kline to a client asking up to the current minute.
    probe = httpx.get(
        f"{rest_url}/fapi/v1/klines",
        params={"symbol": "FILUSDT", "interval": "1m", "startTime": until - MINUTE_MS, "endTime": until},
    ).json()
    assert [(k[0], k[5]) for k in probe] == [(until - MINUTE_MS, probe[0][5]), (until, "1.0")]
    rest.requests.clear()
    rest.kline_bodies.clear()

    report = run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    assert report.pages == 2
    assert rest.count("/fapi/v1/klines") == 2
    split = SEP1 + 1500 * MINUTE_MS
    assert [(q["startTime"], q["endTime"], q["limit"]) for p, q in rest.requests if p == "/fapi/v1/klines"] == [
        (str(SEP1), str(split - 1), "1500"),
        (str(split), str(until - 1), "1500"),
    ]
    assert report.result is not None
    assert report.result.written["1m"] == 1800
    minutes = catalog_bars(august_home, "1m", SEP1)
    assert len(minutes) == 1800
    assert minutes[-1][0] == until * NS_PER_MS  # the last closed minute (05:59 open)
    with StateManager(august_home.db_path) as db:
        pages = db.find("raw_files", order_by="period_start_ns", period_kind="rest")
    assert [(p["period_start_ns"], p["period_end_ns"], p["rows"]) for p in pages] == [
        (SEP1 * NS_PER_MS, split * NS_PER_MS, 1500),
        (split * NS_PER_MS, until * NS_PER_MS, 300),
    ]
    assert [p["original_name"] for p in pages] == [
        rest_page_name("FILUSDT", SEP1, split),
        rest_page_name("FILUSDT", split, until),
    ]
    for page, body in zip(pages, rest.kline_bodies, strict=True):
        assert page["source"].startswith(f"{rest_url}/fapi/v1/klines?symbol=FILUSDT&interval=1m&startTime=")
        stored = (august_home.archive / page["archive_path"]).read_bytes()
        assert stored == body  # byte for byte what the server sent
        assert hashlib.sha256(stored).hexdigest() == page["sha256"]
        assert page["archive_path"].startswith("binance/futures-um/klines/FILUSDT/2023/09/")


def test_update_drops_an_open_kline_the_server_sends_past_end_time(
    august_home: Home, specs: InstrumentSpecs, rest: BinanceRestApp, rest_url: str
) -> None:
    rest.server_time_ms = AT_SEP2_0600_30
    rest.open_kline = True
    rest.honour_end_time = False  # as if endTime were not sent: the current kline comes too
    until = utc_ms(2023, 9, 2, 6, 0)

    report = run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    assert report.until_ms == until
    assert report.result is not None
    assert report.result.written["1m"] == 1800
    minutes = catalog_bars(august_home, "1m", SEP1)
    assert len(minutes) == 1800
    assert minutes[-1][0] == until * NS_PER_MS
    # The archived page still holds the extra kline byte for byte; a rebuild must drop it too.
    assert rebuild_from_archive(august_home, specs).byte_identical


def test_update_since_auto_needs_ingested_data_and_since_must_be_a_date(
    home: Home,
    specs: InstrumentSpecs,
    rest: BinanceRestApp,
    rest_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    with pytest.raises(UserError) as excinfo:
        run_update(home, "FILUSDT-PERP", None, specs, rest_url)
    assert type(excinfo.value) is UserError
    assert str(excinfo.value) == (
        f"no 1m data for FILUSDT in {home.catalog} to continue from; "
        "run `vq data ingest` first or pass --since YYYY-MM-DD"
    )

    code, output = cli(update_args(home, rest_url))
    assert code == 2
    assert "run `vq data ingest` first" in output

    with pytest.raises(UserError, match=r"^--since '2023-13-01': use 'auto' or a date YYYY-MM-DD$"):
        parse_since("2023-13-01")
    code, output = cli(update_args(home, rest_url, "--since", "2023-13-01"))
    assert code == 2
    assert "--since '2023-13-01': use 'auto' or a date YYYY-MM-DD" in output

    assert rest.requests == []  # refused before asking the venue
    assert list(home.catalog.rglob("*.parquet")) == []


def test_update_with_an_explicit_since_date_starts_an_empty_home(
    home: Home, rest: BinanceRestApp, rest_url: str, cli: Callable[[list[str]], tuple[int, str]]
) -> None:
    code, output = cli(update_args(home, rest_url, "--since", "2023-09-01"))

    assert code == 0, output
    assert "1 REST page(s)" in output
    assert len(catalog_bars(home, "1m")) == 197
    assert len(catalog_bars(home, "5m")) == 39


def test_update_since_after_the_server_clock_is_a_user_error(
    home: Home, rest: BinanceRestApp, rest_url: str, cli: Callable[[list[str]], tuple[int, str]]
) -> None:
    rest.server_time_ms = AT_0317_30
    code, output = cli(update_args(home, rest_url, "--since", "2023-09-05"))
    assert code == 2
    assert "--since 2023-09-05 is after the server's clock (2023-09-01 03:17 UTC)" in output
    assert rest.count("/fapi/v1/klines") == 0


def test_update_when_already_up_to_date_is_a_noop(
    august_home: Home,
    specs: InstrumentSpecs,
    rest: BinanceRestApp,
    rest_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    rest.server_time_ms = SEP1 + 30_000  # the 00:00 kline is still open
    digests, counts = catalog_digests(august_home), table_counts(august_home)

    report = run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    assert report.up_to_date
    assert (report.run_id, report.pages, report.result) == (None, 0, None)
    assert (report.since_ms, report.until_ms) == (SEP1, SEP1)
    code, output = cli(update_args(august_home, rest_url))
    assert code == 0
    assert "FILUSDT is up to date" in output
    assert [p for p, _ in rest.requests] == ["/fapi/v1/time", "/fapi/v1/time"]
    assert catalog_digests(august_home) == digests
    assert table_counts(august_home) == counts


def test_update_symbol_the_venue_rejects_is_a_user_error(
    home: Home,
    specs: InstrumentSpecs,
    rest: BinanceRestApp,
    rest_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
) -> None:
    # BTCUSDT has a spec, but this venue serves only FILUSDT: it answers 400 "Invalid symbol".
    with pytest.raises(UserError) as excinfo:
        run_update(home, "BTCUSDT-PERP", dt.date(2023, 9, 1), specs, rest_url)

    assert type(excinfo.value) is UserError
    assert str(excinfo.value).startswith(f"{rest_url}/fapi/v1/klines rejected the request (HTTP 400: ")
    assert "Invalid symbol." in str(excinfo.value)
    assert str(excinfo.value).endswith("); check the symbol")
    assert rest.count("/fapi/v1/klines") == 1  # a 400 is not retried
    code, output = cli(update_args(home, rest_url, "--since", "2023-09-01", symbol="BTCUSDT"))
    assert code == 2
    assert "check the symbol" in output
    assert list(home.catalog.rglob("*.parquet")) == []


@pytest.mark.parametrize("failing", ["/fapi/v1/time", "/fapi/v1/klines"])
def test_update_persistent_500_is_a_venue_error_and_commits_nothing(
    august_home: Home,
    specs: InstrumentSpecs,
    rest: BinanceRestApp,
    rest_url: str,
    cli: Callable[[list[str]], tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("vibe_quant.data.update.time.sleep", sleeps.append)
    rest.fail[failing] = 500
    digests, counts = catalog_digests(august_home), table_counts(august_home)

    with pytest.raises(VenueError) as excinfo:
        run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)

    assert type(excinfo.value) is VenueError
    message = str(excinfo.value)
    assert message.startswith(f"{rest_url}{failing}: HTTP 500: ")
    assert message.endswith(f"after {MAX_ATTEMPTS} attempts; try again later")
    assert rest.count(failing) == MAX_ATTEMPTS
    assert sleeps == [0.5, 1.0, 2.0]  # bounded, doubling backoff
    assert catalog_digests(august_home) == digests
    assert not (august_home.catalog / ".staging").exists()
    after = table_counts(august_home)
    assert {k: v for k, v in after.items() if k != "ingest_runs"} == {
        k: v for k, v in counts.items() if k != "ingest_runs"
    }
    with StateManager(august_home.db_path) as db:
        runs = db.find("ingest_runs")
        errors = db.find("ingest_errors")
    if failing == "/fapi/v1/klines":  # the run started (server time known), then failed
        assert [(r["command"], r["status"], r["error_message"]) for r in runs[1:]] == [("update", "failed", message)]
        assert [(e["run_id"], e["message"]) for e in errors] == [(runs[1]["id"], message)]  # shown by status
    else:
        assert len(runs) == 1
        assert errors == []

    rest.requests.clear()
    code, output = cli(update_args(august_home, rest_url))
    assert code == 3
    assert "venue error (retry later)" in output
    assert f"after {MAX_ATTEMPTS} attempts" in output
    assert rest.count(failing) == MAX_ATTEMPTS
    assert catalog_digests(august_home) == digests


def test_rebuild_after_updates_is_byte_identical(
    august_home: Home, specs: InstrumentSpecs, rest: BinanceRestApp, rest_url: str
) -> None:
    for server_time in (AT_0317_30, AT_0430_05, AT_SEP2_0600_30):
        rest.server_time_ms = server_time
        run_update(august_home, "FILUSDT-PERP", None, specs, rest_url)
    before = catalog_digests(august_home)
    with StateManager(august_home.db_path) as db:
        assert [r["period_kind"] for r in db.find("raw_files")] == ["monthly", "rest", "rest", "rest", "rest"]

    report = rebuild_from_archive(august_home, specs)

    assert report.byte_identical
    assert (report.units, report.raw_files) == (4, 5)
    assert (report.changed, report.added, report.removed) == ([], [], [])
    assert report.identical == len(before)  # every data file, the instrument included
    assert catalog_digests(august_home) == before
