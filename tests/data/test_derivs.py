"""Derivatives context data as exact custom data: ``metrics`` (open interest), ``bookDepth`` and the
mark / index / premium-index klines, ingested from the hand-written fixtures in
``tests/fixtures/binance`` (2024-03-01 files have a header, 2024-03-02 files do not).

Expected values are read straight from the fixture CSVs (strings -> ``Decimal``), never from the
code under test.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model.data import CustomData
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import PROJECT
from tests.data.test_ingest import snapshot
from vibe_quant.data.custom import (
    BinanceBookDepth,
    BinanceData,
    BinanceIndexPriceBar,
    BinanceMarkPriceBar,
    BinanceOiMetrics,
    BinancePremiumIndexBar,
    plain,
)
from vibe_quant.data.ingest import IngestRequest, run_ingest
from vibe_quant.data.rebuild import rebuild_from_archive
from vibe_quant.data.validate import summarize
from vibe_quant.errors import DataFileError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.state import StateManager

FIXTURES = PROJECT / "tests" / "fixtures" / "binance"
UM_DAILY = FIXTURES / "data" / "futures" / "um" / "daily"
IID = "BTCUSDT-PERP.BINANCE"
DAYS = ("2024-03-01", "2024-03-02")
NS = 1_000_000_000
MINUTE_NS = 60 * NS
DERIVS = ("metrics", "bookDepth", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
METRIC_FIELDS = (
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
# dataset -> (class, catalog folder)
PRICE_KLINES = {
    "markPriceKlines": (BinanceMarkPriceBar, "custom_binance_mark_price_bar"),
    "indexPriceKlines": (BinanceIndexPriceBar, "custom_binance_index_price_bar"),
    "premiumIndexKlines": (BinancePremiumIndexBar, "custom_binance_premium_index_bar"),
}


# -- helpers (independent of the code under test) -------------------------------------------------


def fixture_file(dataset: str, day: str) -> Path:
    if dataset in PRICE_KLINES:
        return UM_DAILY / dataset / "BTCUSDT" / "1m" / f"BTCUSDT-1m-{day}.csv"
    return UM_DAILY / dataset / "BTCUSDT" / f"BTCUSDT-{dataset}-{day}.csv"


def rel_path(dataset: str, day: str) -> Path:
    return fixture_file(dataset, day).relative_to(FIXTURES)


def data_rows(path: Path) -> list[list[str]]:
    """The CSV's data rows as strings (a header is a first line starting with a letter)."""
    lines = path.read_text().splitlines()
    if lines and lines[0][0].isalpha():
        lines = lines[1:]
    return [line.split(",") for line in lines]


def iso_ns(text: str) -> int:
    return calendar.timegm(dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timetuple()) * NS


def day_ns(day: str) -> int:
    return iso_ns(f"{day} 00:00:00")


def ingest(home: Home, specs: InstrumentSpecs, datasets: tuple[str, ...], source: Path = FIXTURES):
    return run_ingest(home, IngestRequest(str(source), ("BTCUSDT",), datasets), specs)


def query(home: Home, cls: type[BinanceData]) -> list[BinanceData]:
    result = ParquetDataCatalog(str(home.catalog)).query(cls, identifiers=[IID])
    assert all(isinstance(r, CustomData) for r in result)
    objs = [r.data for r in result]
    assert all(type(o) is cls for o in objs)
    return objs


def db_counts(home: Home) -> dict[str, int]:
    with StateManager(home.db_path) as db:
        return {t: db.count(t) for t in ("raw_files", "ingest_units", "unit_sources")}


def write_source(root: Path, dataset: str, day: str, lines: list[str]) -> Path:
    """Write `lines` as the official file of `dataset` / `day` under the mirror layout at `root`."""
    path = root / rel_path(dataset, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def fixture_lines(dataset: str, day: str = DAYS[0]) -> list[str]:
    return fixture_file(dataset, day).read_text().splitlines()


# -- 1. metrics -------------------------------------------------------------------------------------


def test_metrics_are_exact_decimals_stamped_at_create_time(home: Home, specs: InstrumentSpecs) -> None:
    report = ingest(home, specs, ("metrics",))
    assert report.bars_written() == {"metrics": 48}
    objs = query(home, BinanceOiMetrics)
    expected = [row for day in DAYS for row in data_rows(fixture_file("metrics", day))]
    assert len(expected) == 48
    assert len(objs) == 48
    for obj, row in zip(objs, expected, strict=True):
        assert str(obj.instrument_id) == IID
        assert row[1] == "BTCUSDT"
        assert obj.ts_event == obj.ts_init == iso_ns(row[0])
        for name, text in zip(METRIC_FIELDS, row[2:], strict=True):
            value = getattr(obj, name)
            assert isinstance(value, Decimal), (name, type(value))
            assert value == Decimal(text), (row[0], name, value, text)
    first = objs[0]
    assert first.ts_event == 1709251200000000000  # 2024-03-01 00:00:00 UTC
    assert first.sum_open_interest == Decimal("81272.8830000000000000")
    assert first.sum_open_interest_value == Decimal("4971045163.8440864400000000")  # 16 decimals in the file
    assert first.sum_taker_long_short_vol_ratio == Decimal("0.82108369")


def test_metrics_header_and_headerless_days_have_the_same_structure(home: Home, specs: InstrumentSpecs) -> None:
    assert fixture_lines("metrics", DAYS[0])[0].startswith("create_time,")
    assert fixture_lines("metrics", DAYS[1])[0][0].isdigit()  # the second day has no header
    ingest(home, specs, ("metrics",))
    objs = query(home, BinanceOiMetrics)
    by_day = {day: [o for o in objs if day_ns(day) <= o.ts_event < day_ns(day) + 86400 * NS] for day in DAYS}
    offsets = {day: [o.ts_event - day_ns(day) for o in by_day[day]] for day in DAYS}
    assert offsets[DAYS[0]] == offsets[DAYS[1]] == [i * 5 * MINUTE_NS for i in range(24)]
    for a, b in zip(by_day[DAYS[0]], by_day[DAYS[1]], strict=True):
        assert sorted(a.values()) == sorted(b.values()) == sorted(METRIC_FIELDS)
        assert a.values() != b.values()  # really two different days of data
    files = sorted((home.catalog / "data" / "custom_binance_oi_metrics" / IID).glob("*.parquet"))
    assert [f.name[:10] for f in files] == list(DAYS)
    assert pq.read_schema(files[0]) == pq.read_schema(files[1])


# -- 2. bookDepth -----------------------------------------------------------------------------------


def _depth_expected() -> dict[tuple[int, int], tuple[str, str]]:
    out = {}
    for day in DAYS:
        for ts, pct, depth, notional in data_rows(fixture_file("bookDepth", day)):
            out[(iso_ns(ts), int(pct))] = (depth, notional)
    return out


def _assert_depth_catalog(objs: list[BinanceBookDepth]) -> None:
    expected = _depth_expected()
    assert len(expected) == 60
    keys = [(o.ts_event, int(o.percentage)) for o in objs]
    assert len(objs) == 60
    assert keys == sorted(keys)  # sorted by (ts, percentage)
    assert len(set(keys)) == 60  # no repeats
    assert set(keys) == set(expected)
    snapshots = sorted({ts for ts, _ in keys})
    assert len(snapshots) == 6  # 3 per file
    for ts in snapshots:
        assert [p for t, p in keys if t == ts] == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    for o in objs:
        assert o.ts_init == o.ts_event
        assert o.percentage == Decimal(int(o.percentage))
        depth, notional = expected[(o.ts_event, int(o.percentage))]
        assert (o.depth, o.notional) == (Decimal(depth), Decimal(notional))


def test_book_depth_rows_sorted_exact(home: Home, specs: InstrumentSpecs) -> None:
    report = ingest(home, specs, ("bookDepth",))
    assert report.bars_written() == {"bookDepth": 60}
    objs = query(home, BinanceBookDepth)
    _assert_depth_catalog(objs)
    # one exact spot check straight from the README / first line of the file
    first = objs[0]
    assert first.ts_event == iso_ns("2024-03-01 00:00:08")
    assert (first.percentage, first.depth, first.notional) == (
        Decimal("-5"), Decimal("16801.122"), Decimal("1001918487.37325"),
    )  # fmt: skip


# -- 3. mark / index / premium-index klines ---------------------------------------------------------


@pytest.mark.parametrize("dataset", list(PRICE_KLINES))
def test_price_klines_exact_and_stamped_at_close(home: Home, specs: InstrumentSpecs, dataset: str) -> None:
    cls, folder = PRICE_KLINES[dataset]
    report = ingest(home, specs, (dataset,))
    assert report.bars_written() == {dataset: 60}
    objs = query(home, cls)
    rows = [row for day in DAYS for row in data_rows(fixture_file(dataset, day))]
    assert len(rows) == len(objs) == 60
    for obj, row in zip(objs, rows, strict=True):
        open_ms, close_ms = int(row[0]), int(row[6])
        assert close_ms == open_ms + 59_999
        assert obj.ts_event == obj.ts_init == open_ms * 1_000_000 + MINUTE_NS  # close time, not open time
        assert obj.ts_event == (close_ms + 1) * 1_000_000
        for name, text in zip(("open", "high", "low", "close"), row[1:5], strict=True):
            assert getattr(obj, name) == Decimal(text), (row[0], name)
    # exact 8-decimal values, not snapped to the BTCUSDT-PERP tick of 0.10
    values = [getattr(o, f) for o in objs for f in ("open", "high", "low", "close")]
    off_tick = [v for v in values if v % Decimal("0.1") != 0]
    assert len(off_tick) > 200
    if dataset == "premiumIndexKlines":
        negatives = [v for v in values if v < 0]
        assert len(negatives) > 100  # the file is mostly negative
        assert objs[0].close == Decimal("-0.00010061")
        assert objs[30].high == Decimal("0.00003084")  # 2024-03-02 00:00, a positive one
    elif dataset == "markPriceKlines":
        assert objs[0].open == Decimal("61142.80698976")
        assert objs[0].ts_event == 1709251260000000000  # 2024-03-01 00:01 UTC
    else:
        assert all(v > 60_000 for v in values)
    # catalog layout: one folder per custom class and instrument
    assert cls.kind() == folder
    files = sorted((home.catalog / "data" / folder / IID).glob("*.parquet"))
    assert len(files) == 2
    others = {f for _, f in PRICE_KLINES.values()} - {folder}
    assert not any((home.catalog / "data" / f).exists() for f in others)
    for f in files:
        schema = pq.read_schema(f)
        for name in ("open", "high", "low", "close"):
            assert schema.field(name).type == pa.decimal128(38, 18)
    glob = str(home.catalog / "data" / folder / IID / "*.parquet")
    described = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()}
    assert {described[c] for c in ("open", "high", "low", "close")} == {"DECIMAL(38,18)"}
    got = duckdb.sql(f"SELECT open, high, low, close FROM read_parquet('{glob}') ORDER BY ts_event").fetchall()
    assert [tuple(r) for r in got] == [tuple(Decimal(x) for x in row[1:5]) for row in rows]


# -- 4. bad input: errors name file and line, nothing changes ----------------------------------------


def _dup_different(lines: list[str]) -> list[str]:
    fields = lines[5].split(",")  # line 6 of the file
    fields[2] = "1.0000000000000000"  # another open interest for the same create_time
    return [*lines[:9], ",".join(fields), *lines[9:]]  # inserted as line 10


def _replace_line(index: int, old: str, new: str):
    def mutate(lines: list[str]) -> list[str]:
        out = list(lines)
        assert old in out[index]
        out[index] = out[index].replace(old, new, 1)
        return out

    return mutate


def _high_below_low(lines: list[str]) -> list[str]:
    out = list(lines)
    f = out[3].split(",")  # line 4
    f[2], f[3] = f[3], f[2]
    out[3] = ",".join(f)
    return out


BAD_CASES = {
    # id: (dataset, mutation, expected message regex, expected line)
    "conflicting-duplicate": (
        "metrics",
        _dup_different,
        r"two different rows for create_time 2024-03-01 00:20:00 UTC \(lines 6 and 10;",
        10,
    ),
    "malformed-create-time": (
        "metrics",
        _replace_line(4, "2024-03-01", "2024/03/01"),
        r"'2024/03/01 00:15:00' is not a time like",
        5,
    ),
    "other-symbol": (
        "metrics",
        _replace_line(4, ",BTCUSDT,", ",ETHUSDT,"),
        r"symbol 'ETHUSDT' where the file is for BTCUSDT",
        5,
    ),
    "row-outside-the-day": (
        "metrics",
        _replace_line(4, "2024-03-01", "2024-03-02"),
        r"row at 2024-03-02 00:15:00 UTC is outside the period the file name gives",
        5,
    ),
    "kline-high-below-low": ("markPriceKlines", _high_below_low, r"inconsistent kline \(open=", 4),
}


@pytest.fixture
def loaded_home(home: Home, specs: InstrumentSpecs) -> Home:
    """A home holding every derivatives fixture (so a failure could damage existing data)."""
    ingest(home, specs, DERIVS)
    return home


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_file_is_rejected_and_nothing_changes(
    loaded_home: Home, specs: InstrumentSpecs, tmp_path: Path, cli, case: str
) -> None:
    dataset, mutate, message, line = BAD_CASES[case]
    home = loaded_home
    source = tmp_path / "bad"
    path = write_source(source, dataset, DAYS[0], mutate(fixture_lines(dataset)))
    before, counts = snapshot(home), db_counts(home)
    assert any("custom_binance" in k for k in before)
    with pytest.raises(DataFileError, match=message) as info:
        ingest(home, specs, (dataset,), source)
    assert info.value.line == line
    assert info.value.path == str(path)
    assert f"{path}, line {line}: " in str(info.value)
    assert snapshot(home) == before
    assert db_counts(home) == counts
    code, output = cli(
        ["--home", str(home.root), "data", "ingest", "--source", str(source), "--symbols", "BTCUSDT",
         "--datasets", dataset],
    )  # fmt: skip
    assert code == 2, output
    assert "Traceback" not in output
    assert f"{path.name}, line {line}: " in output.replace("\n", "")
    assert snapshot(home) == before
    assert db_counts(home) == counts
    with StateManager(home.db_path) as db:
        assert summarize(home, db)["datasets"][f"{dataset}/BTCUSDT"]["errors"] == 2  # both failed runs logged


def test_identical_duplicate_is_dropped_and_counted(home: Home, specs: InstrumentSpecs, tmp_path: Path) -> None:
    lines = fixture_lines("metrics")
    write_source(tmp_path / "src", "metrics", DAYS[0], [*lines, lines[7]])  # line 8 repeated at the end
    report = ingest(home, specs, ("metrics",), tmp_path / "src")
    assert report.bars_written() == {"metrics": 24}
    [unit] = report.units
    assert (unit.rows_in, unit.duplicates) == (25, 1)
    objs = query(home, BinanceOiMetrics)
    assert [o.ts_event for o in objs] == [iso_ns(r[0]) for r in data_rows(fixture_file("metrics", DAYS[0]))]
    with StateManager(home.db_path) as db:
        entry = summarize(home, db)["datasets"]["metrics/BTCUSDT"]
    assert entry["duplicates"] == 1
    assert (entry["rows_in"], entry["rows_written"]) == (25, 24)
    manifest = json.loads((home.catalog / "manifest.json").read_text())
    assert manifest["datasets"]["metrics/BTCUSDT"]["duplicates"] == 1


# -- 5. out-of-order rows are sorted and counted ----------------------------------------------------


def test_shuffled_files_are_stored_sorted_and_counted(tmp_path: Path, specs: InstrumentSpecs) -> None:
    source = tmp_path / "shuffled"
    rng = random.Random(20240301)
    for dataset in ("metrics", "bookDepth"):
        for day in DAYS:
            lines = fixture_lines(dataset, day)
            header = lines[:1] if lines[0][0].isalpha() else []
            body = lines[len(header) :]
            shuffled = rng.sample(body, len(body))
            assert shuffled != body
            write_source(source, dataset, day, [*header, *shuffled])
    shuffled_home = Home(tmp_path / "shuffled-home").ensure()
    ingest(shuffled_home, specs, ("metrics", "bookDepth"), source)
    reference = Home(tmp_path / "reference").ensure()
    ingest(reference, specs, ("metrics", "bookDepth"))

    metrics = query(shuffled_home, BinanceOiMetrics)
    assert [o.ts_event for o in metrics] == sorted(o.ts_event for o in metrics)
    assert metrics == query(reference, BinanceOiMetrics)
    depth = query(shuffled_home, BinanceBookDepth)
    _assert_depth_catalog(depth)
    assert depth == query(reference, BinanceBookDepth)

    manifest = json.loads((shuffled_home.catalog / "manifest.json").read_text())
    assert manifest["datasets"]["metrics/BTCUSDT"]["out_of_order"] > 0
    assert manifest["datasets"]["bookDepth/BTCUSDT"]["out_of_order"] > 0
    assert manifest["datasets"]["metrics/BTCUSDT"]["duplicates"] == 0
    ref_manifest = json.loads((reference.catalog / "manifest.json").read_text())
    assert "out_of_order" not in ref_manifest["datasets"]["metrics/BTCUSDT"]  # sorted files: nothing flagged
    # the stored Parquet files are the same bytes whatever the row order of the source
    for kind in ("custom_binance_oi_metrics", "custom_binance_book_depth"):
        for f in sorted((reference.catalog / "data" / kind / IID).glob("*.parquet")):
            assert (shuffled_home.catalog / "data" / kind / IID / f.name).read_bytes() == f.read_bytes()


# -- 6. NautilusTrader's own writer through the registered codec -------------------------------------


def test_write_data_round_trip_through_the_registered_codec(home: Home, specs: InstrumentSpecs, tmp_path: Path) -> None:
    ingest(home, specs, ("metrics", "bookDepth", "premiumIndexKlines"))
    other = ParquetDataCatalog(str(tmp_path / "nt-catalog"))
    for cls in (BinanceOiMetrics, BinanceBookDepth, BinancePremiumIndexBar):
        objs = query(home, cls)
        assert objs
        other.write_data(objs)
        back = other.query(cls, identifiers=[IID])
        assert all(isinstance(b, CustomData) for b in back)
        assert [b.data for b in back] == objs
        assert [b.data.values() for b in back] == [o.values() for o in objs]  # values, not just the hash
        [written] = (tmp_path / "nt-catalog" / "data" / cls.kind() / IID).glob("*.parquet")
        schema = pq.read_schema(written)
        assert all(schema.field(f).type == pa.decimal128(38, 18) for f in cls.FIELDS)


def test_write_data_accepts_open_interest_values_above_ten_billion(
    home: Home, specs: InstrumentSpecs, tmp_path: Path
) -> None:
    lines = fixture_lines("metrics")
    fields = lines[1].split(",")
    fields[3] = "10234567890.1234567800000000"  # sum_open_interest_value, the file's 16-decimal style
    lines[1] = ",".join(fields)
    write_source(tmp_path / "src", "metrics", DAYS[0], lines)
    ingest(home, specs, ("metrics",), tmp_path / "src")
    objs = query(home, BinanceOiMetrics)
    assert objs[0].sum_open_interest_value == Decimal("10234567890.12345678")  # ingest and query are exact
    other = ParquetDataCatalog(str(tmp_path / "nt-catalog"))
    other.write_data(objs)
    assert [b.data for b in other.query(BinanceOiMetrics, identifiers=[IID])] == objs


def test_query_returns_values_with_more_than_28_digits_exactly(
    home: Home, specs: InstrumentSpecs, tmp_path: Path
) -> None:
    exact = "123456789012.1234567890123456"  # + "7": 12 integer and 17 decimal digits
    lines = fixture_lines("metrics")
    fields = lines[1].split(",")
    fields[3] = exact + "7"  # 29 significant digits
    lines[1] = ",".join(fields)
    write_source(tmp_path / "src", "metrics", DAYS[0], lines)
    ingest(home, specs, ("metrics",), tmp_path / "src")
    glob = str(home.catalog / "data" / "custom_binance_oi_metrics" / IID / "*.parquet")
    [(stored,)] = duckdb.sql(
        f"SELECT sum_open_interest_value FROM read_parquet('{glob}') ORDER BY ts_event LIMIT 1"
    ).fetchall()
    assert stored == Decimal(exact + "7")  # the catalog file itself is exact
    assert query(home, BinanceOiMetrics)[0].sum_open_interest_value == Decimal(exact + "7")


def test_plain_strips_zeros_and_keeps_whole_numbers_plain() -> None:
    assert str(plain(Decimal("100.000000000000000000"))) == "100"
    assert str(plain(Decimal("61234.12345678000000"))) == "61234.12345678"
    assert plain(Decimal("0.000000120000000000")) == Decimal("0.00000012")


# -- 7. rebuild from the raw archive ----------------------------------------------------------------


def test_rebuild_from_archive_is_byte_identical(loaded_home: Home, specs: InstrumentSpecs) -> None:
    home = loaded_home
    files = sorted((home.catalog / "data").rglob("*.parquet"))
    kinds = {f.parent.parent.name for f in files}
    assert kinds == {
        "crypto_perpetual",
        "custom_binance_oi_metrics",
        "custom_binance_book_depth",
        *(folder for _, folder in PRICE_KLINES.values()),
    }
    before = {f: f.read_bytes() for f in files}
    report = rebuild_from_archive(home, specs)
    assert report.units == 10  # 5 datasets x 2 days
    assert report.byte_identical, (report.changed, report.added, report.removed)
    assert report.identical == len(files) == 11
    assert {f: f.read_bytes() for f in sorted((home.catalog / "data").rglob("*.parquet"))} == before
    assert len(query(home, BinanceOiMetrics)) == 48
