"""Ingest semantics on real data: goldens, no-op re-ingest, incremental appends, overlaps,
range clipping, and all-or-nothing failure."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tests.conftest import MIRROR, kline_zip
from vibe_quant.data.ingest import IngestRequest, resolve_range, run_ingest
from vibe_quant.data.validate import summarize
from vibe_quant.errors import ConfigError, DataFileError, UnknownSymbolError, UserError
from vibe_quant.home import Home
from vibe_quant.instruments.specs import InstrumentSpecs
from vibe_quant.lock import home_lock
from vibe_quant.state import StateManager

FIL_1M = "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
FIL_4H = "FILUSDT-PERP.BINANCE-4-HOUR-LAST-EXTERNAL"
MINUTES_PER_DAY = 1440


def fil(start: dt.date, end: dt.date, source: Path | str = MIRROR, datasets=("klines",)) -> IngestRequest:
    return IngestRequest(source=str(source), symbols=("FILUSDT",), datasets=datasets, start=start, end=end)


def snapshot(home: Home) -> dict[str, str]:
    """sha256 of every file under catalog/ and archive/ (the state DB is compared separately)."""
    out = {}
    for root in (home.catalog, home.archive):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(home.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def db_counts(home: Home) -> dict[str, int]:
    with StateManager(home.db_path) as db:
        return {t: db.count(t) for t in ("raw_files", "ingest_units", "unit_sources", "instruments")}


def data_files(home: Home) -> dict[str, str]:
    return {k: v for k, v in snapshot(home).items() if k.startswith("catalog/data/")}


def test_three_months_goldens(home: Home, specs: InstrumentSpecs) -> None:
    report = run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 11, 1)), specs)
    days = 31 + 30 + 31
    assert report.bars_written() == {
        "1m": days * 1440, "5m": days * 288, "15m": days * 96, "1h": days * 24, "4h": days * 6,
    }  # fmt: skip
    catalog = ParquetDataCatalog(str(home.catalog))
    first = catalog.bars([FIL_1M], end=1690848060000000000)[0]
    assert (str(first.open), str(first.high), str(first.low), str(first.close), str(first.volume)) == (
        "4.255", "4.256", "4.252", "4.252", "25259.1",
    )  # fmt: skip
    assert first.ts_event == first.ts_init == 1690848060000000000  # close time 00:01, not open time
    four = catalog.bars([FIL_4H])
    assert len(four) == days * 6
    assert (
        str(four[0])
        == "FILUSDT-PERP.BINANCE-4-HOUR-LAST-EXTERNAL,4.255,4.284,4.064,4.188,9856881.5,1690862400000000000"
    )
    [instrument] = catalog.instruments()
    assert (str(instrument.id), instrument.price_precision, instrument.size_precision) == ("FILUSDT-PERP.BINANCE", 3, 1)
    with StateManager(home.db_path) as db:
        raws = db.find("raw_files", order_by="period_start_ns")
        assert [r["original_name"] for r in raws] == [f"FILUSDT-1m-2023-{m}.zip" for m in ("08", "09", "10")]
        assert raws[0]["sha256"] == kline_zip("FILUSDT", "2023-08").with_suffix(".zip.CHECKSUM").read_text().split()[0]
        assert (home.archive / raws[0]["archive_path"]).read_bytes() == kline_zip("FILUSDT", "2023-08").read_bytes()
        assert db.find("instruments")[0]["canonical_id"] == "BINANCE:FILUSDT:PERP"
    assert (home.catalog / "manifest.json").exists()
    assert (home.catalog / "validation_report.md").exists()


def test_reingest_is_a_noop(home: Home, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 10, 1)), specs)
    before, counts = data_files(home), db_counts(home)
    report = run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 10, 1)), specs)
    assert sorted(report.skipped) == ["FILUSDT-1m-2023-08.zip", "FILUSDT-1m-2023-09.zip"]
    assert report.units == []
    assert data_files(home) == before
    assert db_counts(home) == counts


def test_incremental_ingest_appends_without_rewriting(tmp_path: Path, specs: InstrumentSpecs) -> None:
    inc = Home(tmp_path / "inc").ensure()
    run_ingest(inc, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    first = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (inc.catalog / "data" / "bar").rglob("*.parquet")}
    run_ingest(inc, fil(dt.date(2023, 9, 1), dt.date(2023, 11, 1)), specs)
    for path, identity in first.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == identity, f"{path} was rewritten"
    whole = Home(tmp_path / "whole").ensure()
    run_ingest(whole, fil(dt.date(2023, 8, 1), dt.date(2023, 11, 1)), specs)
    assert data_files(inc) == data_files(whole)


def test_partial_range_clips_the_monthly_file_then_completes(home: Home, specs: InstrumentSpecs) -> None:
    report = run_ingest(home, fil(dt.date(2023, 8, 10), dt.date(2023, 8, 21)), specs)
    assert report.bars_written()["1m"] == 11 * MINUTES_PER_DAY
    assert report.bars_written()["4h"] == 11 * 6
    report = run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    assert report.bars_written()["1m"] == 20 * MINUTES_PER_DAY  # only the days not stored yet
    bars = ParquetDataCatalog(str(home.catalog)).bars([FIL_1M])
    assert len(bars) == 31 * MINUTES_PER_DAY
    assert len({b.ts_init for b in bars}) == len(bars)


def _daily_files(folder: Path, days: range, alter: int | None = None) -> None:
    """Split the real monthly CSV into official daily files (real rows; `alter` edits one day)."""
    with zipfile.ZipFile(kline_zip("FILUSDT", "2023-08")) as zf:
        text = zf.read("FILUSDT-1m-2023-08.csv").decode()
    header, *rows = text.splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    for day in days:
        chunk = rows[(day - 1) * MINUTES_PER_DAY : day * MINUTES_PER_DAY]
        if day == alter:  # hand-edited: the volume of the first minute of that day
            fields = chunk[0].split(",")
            fields[5] = "1.0"
            chunk[0] = ",".join(fields)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr(f"FILUSDT-1m-2023-08-{day:02d}.csv", "\n".join([header, *chunk]) + "\n")
        (folder / f"FILUSDT-1m-2023-08-{day:02d}.zip").write_bytes(buf.getvalue())


def test_daily_files_then_monthly_overlap_agrees(tmp_path: Path, specs: InstrumentSpecs) -> None:
    home = Home(tmp_path / "h").ensure()
    _daily_files(tmp_path / "daily", range(1, 6))
    report = run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 8, 6), tmp_path / "daily"), specs)
    assert report.files == 5
    assert report.bars_written()["1m"] == 5 * MINUTES_PER_DAY
    report = run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    assert report.bars_written()["1m"] == 26 * MINUTES_PER_DAY
    reference = Home(tmp_path / "ref").ensure()
    run_ingest(reference, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    for bar_type in (FIL_1M, FIL_4H, "FILUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"):
        got = ParquetDataCatalog(str(home.catalog)).bars([bar_type])
        want = ParquetDataCatalog(str(reference.catalog)).bars([bar_type])
        assert [str(b) for b in got] == [str(b) for b in want]


def test_conflicting_overlap_is_rejected_and_nothing_changes(tmp_path: Path, specs: InstrumentSpecs) -> None:
    home = Home(tmp_path / "h").ensure()
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    before, counts = snapshot(home), db_counts(home)
    _daily_files(tmp_path / "daily", range(3, 4), alter=3)
    with pytest.raises(
        DataFileError, match=r"conflicts with FILUSDT-PERP\.BINANCE-1-MINUTE-LAST-EXTERNAL data already in the catalog"
    ):
        run_ingest(home, fil(dt.date(2023, 8, 3), dt.date(2023, 8, 4), tmp_path / "daily"), specs)
    assert snapshot(home) == before
    assert db_counts(home) == counts


def test_failed_ingest_leaves_catalog_archive_and_db_untouched(tmp_path: Path, specs: InstrumentSpecs) -> None:
    home = Home(tmp_path / "h").ensure()
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    before, counts = snapshot(home), db_counts(home)
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = kline_zip("FILUSDT", "2023-09").read_bytes()
    (folder / "FILUSDT-1m-2023-09.zip").write_bytes(good)
    (folder / "FILUSDT-1m-2023-10.zip").write_bytes(kline_zip("FILUSDT", "2023-10").read_bytes()[:50_000])  # truncated
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        run_ingest(home, fil(dt.date(2023, 9, 1), dt.date(2023, 11, 1), folder), specs)
    assert snapshot(home) == before  # the good September file was not archived or cataloged either
    assert db_counts(home) == counts
    with StateManager(home.db_path) as db:
        runs = db.find("ingest_runs", order_by="id")
        assert runs[-1]["status"] == "failed"
        assert "truncated" in runs[-1]["error_message"]
        [error] = db.find("ingest_errors")
        summary = summarize(home, db)  # what status shows; manifest.json changes only on success
    assert (error["dataset"], error["symbol"]) == ("klines", "FILUSDT")
    assert error["source"].endswith("FILUSDT-1m-2023-10.zip")
    assert summary["ingest_errors"] == 1
    assert summary["datasets"]["klines/FILUSDT"]["errors"] == 1
    assert not (home.catalog / ".staging").exists()
    assert not (home.archive / ".staging").exists()


def test_data_before_listing_date_is_rejected(home: Home, tmp_path: Path) -> None:
    text = InstrumentSpecs().path
    custom = tmp_path / "specs.yaml"
    custom.write_text(Path(text).read_text().replace("listed: 2020-10-16", "listed: 2024-01-01"))
    with pytest.raises(DataFileError, match=r"before FILUSDT's listing on 2024-01-01") as info:
        run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), InstrumentSpecs(custom))
    assert info.value.line == 2


def test_changed_spec_precision_is_refused_until_rebuild(home: Home, tmp_path: Path, specs: InstrumentSpecs) -> None:
    run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)
    custom = tmp_path / "specs.yaml"
    original = Path(specs.path).read_text()
    entry = 'FILUSDT: {base: FIL, tick_size: "0.001", step_size: "0.1"'
    assert entry in original
    custom.write_text(original.replace(entry, 'FILUSDT: {base: FIL, tick_size: "0.0001", step_size: "0.1"'))
    with pytest.raises(ConfigError, match="rebuild --from-archive"):
        run_ingest(home, fil(dt.date(2023, 9, 1), dt.date(2023, 10, 1)), InstrumentSpecs(custom))


def test_request_errors(home: Home, specs: InstrumentSpecs) -> None:
    with pytest.raises(UnknownSymbolError, match="Did you mean FILUSDT"):
        run_ingest(
            home, IngestRequest(str(MIRROR), ("FILUSTD",), ("klines",), dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs
        )
    with pytest.raises(UserError, match="unknown dataset 'kline'"):
        run_ingest(home, IngestRequest(str(MIRROR), ("FILUSDT",), ("kline",)), specs)
    with pytest.raises(UserError, match="not a directory"):
        run_ingest(home, IngestRequest("/nonexistent/dir", ("FILUSDT",)), specs)


def test_resolve_range() -> None:
    today = dt.date(2026, 11, 21)
    assert resolve_range(today, start=dt.date(2023, 8, 1), end=dt.date(2023, 10, 31)) == (
        dt.date(2023, 8, 1),
        dt.date(2023, 11, 1),
    )
    assert resolve_range(today, years=2) == (dt.date(2024, 11, 21), today)
    assert resolve_range(today, start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 31)) == (dt.date(2026, 11, 1), today)
    assert resolve_range(today) == (None, None)
    with pytest.raises(UserError, match="is before --start"):
        resolve_range(today, start=dt.date(2023, 8, 1), end=dt.date(2023, 7, 1))
    with pytest.raises(UserError, match="not both"):
        resolve_range(today, years=1, start=dt.date(2023, 8, 1))
    with pytest.raises(UserError, match="not in the past"):
        resolve_range(today, start=dt.date(2027, 1, 1))


def test_second_writer_is_refused_while_the_home_is_locked(home: Home, specs: InstrumentSpecs) -> None:
    with home_lock(home.state_dir, "test"), pytest.raises(UserError, match="is writing to this data home"):
        run_ingest(home, fil(dt.date(2023, 8, 1), dt.date(2023, 9, 1)), specs)


def test_funding_ingest_keeps_exact_rates_and_interval(home: Home, specs: InstrumentSpecs) -> None:
    from nautilus_trader.model.data import FundingRateUpdate

    report = run_ingest(
        home,
        IngestRequest(str(MIRROR), ("BTCUSDT",), ("fundingRate",), dt.date(2026, 4, 1), dt.date(2026, 5, 1)),
        specs,
    )
    assert report.bars_written() == {"funding": 90}
    updates = ParquetDataCatalog(str(home.catalog)).query(FundingRateUpdate)
    assert len(updates) == 90
    assert str(updates[0].rate) == "-0.00003449"
    jittered = [u for u in updates if u.ts_event == 1775088000003 * 1_000_000]
    assert len(jittered) == 1  # Binance's late stamp is kept exactly
    assert all(u.next_funding_ns - u.ts_event == 8 * 3600 * 10**9 for u in updates)
